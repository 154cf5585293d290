"""The curated public surface of both packages, and what importing them costs."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import pytest

import smql
import stratum


@pytest.mark.parametrize("package", [smql, stratum], ids=["smql", "stratum"])
def test_all_matches_the_public_names(package: ModuleType) -> None:
    # everything the package namespace offers, except submodules and `from __future__`
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    } - {"annotations"}
    exported = set(package.__all__)
    assert exported <= set(vars(package)), "names in __all__ that do not exist"
    assert public <= exported, "public names missing from __all__"


def test_smql_never_imports_stratum() -> None:
    code = (
        "import sys, smql, smql.formatter; "
        "print(any(m.split('.')[0] == 'stratum' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_import_stratum_loads_no_database_driver() -> None:
    drivers = ["asyncpg", "asyncmy", "aiomysql", "lmdb", "duckdb"]
    code = f"import sys, stratum, stratum.cli; print([m for m in {drivers!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
