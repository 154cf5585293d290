"""The package's surface: what it exports, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

from stratum.connectors import files
from stratum.connectors.base import Source
from stratum.plan.model import CsvOptions


def test_all_matches_the_public_names() -> None:
    public = {
        name
        for name, value in vars(files).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert public == set(files.__all__)


def test_the_sources_satisfy_the_source_protocol() -> None:
    options = CsvOptions(True, ",", '"', None, "", "utf-8")
    path = Path("unread")  # nothing is read before open()
    for source in (
        files.CsvSource(path, options),
        files.JsonLinesSource(path),
        files.ParquetSource(path),
    ):
        assert isinstance(source, Source)


def test_importing_the_file_sources_loads_no_duckdb() -> None:
    code = "import sys, stratum.connectors.files; print('duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
