"""The README's first command: the quickstart migrates the bundled CSV files into DuckDB, on a
machine with no database server, and a second run has nothing to do."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def migrate(plan: Path, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratum", "migrate", str(plan), "--state-dir", str(state), *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_quickstart_loads_and_a_rerun_does_nothing(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns("*.duckdb*"))
    plan = tmp_path / "examples" / "quickstart.smql"
    first = migrate(plan, tmp_path / "state", "--summary", str(tmp_path / "s.json"))
    assert first.returncode == 0, first.stderr
    items = {i["item"]: i for i in json.loads((tmp_path / "s.json").read_text())["items"]}
    assert items["local.raw.customers"]["state"] == "finished"
    assert items["local.raw.orders"]["rows_written"] == 51
    database = tmp_path / "examples" / "quickstart.duckdb"
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.sql(
            "SELECT count(*), count(DISTINCT customer_id) FROM raw.customers"
        ).fetchall() == [(30, 30)]
        total = con.execute("SELECT count(*), sum(amount) FROM raw.orders").fetchall()[0]
        assert total is not None
        assert total[0] == 51
        assert isinstance(total[1], Decimal)
    second = migrate(plan, tmp_path / "state")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("skipped") == 2
    assert "nothing to do" in second.stdout
