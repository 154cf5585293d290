"""The package's public surface, and that importing it costs no lmdb."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import stratum.state


def test_all_matches_the_public_names() -> None:
    public = {
        name
        for name, value in vars(stratum.state).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert set(stratum.state.__all__) == public


def test_importing_the_package_does_not_import_lmdb() -> None:
    code = "import sys, stratum.state; print('lmdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
