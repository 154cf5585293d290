"""The command line: output, exit codes, and no traceback without --debug."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stratum.cli import app

runner = CliRunner()

GOOD = """\
CONNECTION src = 'mysql://etl:${SRC_PW}@db/shop';
CONNECTION wh = 'postgresql://etl@wh/analytics';
MIGRATE src.orders INTO wh.raw.orders MODE upsert KEY (id);
STAGE wh.silver.orders FROM wh.raw.orders EXPECT amount >= 0 ELSE DROP;
"""


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.smql"
    path.write_text(GOOD)
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.smql"
    path.write_text(GOOD.replace("MIGRATE src.", "MIGRATE scr.").replace("KEY (id)", ""))
    return path


def test_validate_reports_ok_and_warnings(good: Path) -> None:
    result = runner.invoke(app, ["validate", str(good)], env={"SRC_PW": "x"})
    assert result.exit_code == 0
    assert f"{good}: ok, 2 items, 0 warnings" in result.stdout


def test_validate_warns_about_unset_variables(good: Path) -> None:
    result = runner.invoke(app, ["validate", str(good)], env={})
    assert result.exit_code == 0
    assert "warning: environment variable SRC_PW is not set" in result.stderr


def test_validate_reports_every_error_and_exits_1(bad: Path) -> None:
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "error: unknown connection 'scr' (did you mean 'src'?)" in result.stderr
    assert "error: MODE upsert needs a KEY" in result.stderr
    assert f"{bad}: 2 errors" in result.stdout


def test_plan_text_and_json(good: Path) -> None:
    text = runner.invoke(app, ["plan", str(good)])
    assert text.exit_code == 0
    assert "1. wh.raw.orders  [table copy]" in text.stdout
    as_json = runner.invoke(app, ["plan", str(good), "--json"])
    assert as_json.exit_code == 0
    data = json.loads(as_json.stdout)
    assert data["order"] == ["wh.raw.orders", "wh.silver.orders"]
    assert text.stdout.startswith(f"plan {data['hash'][:12]}")


def test_plan_of_an_invalid_file_exits_1(bad: Path) -> None:
    result = runner.invoke(app, ["plan", str(bad)])
    assert result.exit_code == 1
    assert "unknown connection 'scr'" in result.stderr


def test_fmt_rewrites_check_and_diff(tmp_path: Path) -> None:
    path = tmp_path / "messy.smql"
    path.write_text(
        "connection wh='duckdb:///w.duckdb';  -- keep me\nmigrate file 'a.csv' into wh.a;\n"
    )
    check = runner.invoke(app, ["fmt", "--check", str(path)])
    assert check.exit_code == 1
    assert f"would reformat {path}" in check.stderr
    diff = runner.invoke(app, ["fmt", "--diff", str(path)])
    assert diff.exit_code == 0
    assert "+CONNECTION wh = 'duckdb:///w.duckdb';  -- keep me" in diff.stdout
    assert path.read_text().startswith("connection")  # --check and --diff change nothing
    assert runner.invoke(app, ["fmt", str(path)]).exit_code == 0
    assert "-- keep me" in path.read_text()
    assert runner.invoke(app, ["fmt", "--check", str(path)]).exit_code == 0


def test_fmt_stdin_to_stdout() -> None:
    result = runner.invoke(app, ["fmt", "-"], input="set batch_size=5;")
    assert result.exit_code == 0
    assert result.stdout == "SET batch_size = 5;\n"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["validate", str(tmp_path / "missing.smql")]).exit_code == 2
    assert runner.invoke(app, ["plan", "--nope", "x"]).exit_code == 2
    assert runner.invoke(app, ["fmt", str(tmp_path / "missing.smql")]).exit_code == 2


def test_commands_need_their_file() -> None:
    for command in ("migrate", "test-conn", "plan", "validate"):
        assert runner.invoke(app, [command]).exit_code == 2


def test_console_script_prints_no_traceback(bad: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stratum", "plan", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "unknown connection 'scr'" in result.stderr


def test_migrate_dry_run_says_what_it_would_do_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n2\n")
    plan = tmp_path / "p.smql"
    plan.write_text(
        "CONNECTION d = 'duckdb:///d.duckdb';\nMIGRATE FILE 'a.csv' (HEADER) INTO d.a;\n"
        "MIGRATE FILE 'b.csv' (HEADER) INTO d.b;\n"
    )
    state = tmp_path / "state"
    result = runner.invoke(app, ["migrate", str(plan), "--dry-run", "--state-dir", str(state)])
    assert result.exit_code == 0
    assert "d.a: start: load into d.a (full)" in result.stdout
    assert "d.b: cannot run: file not found" in result.stdout
    assert not state.exists()
    assert runner.invoke(app, ["migrate", str(plan), "--state-dir", str(state)]).exit_code == 4
    again = runner.invoke(app, ["migrate", str(plan), "--dry-run", "--state-dir", str(state)])
    assert "d.a: nothing to do: finished by run" in again.stdout


def test_an_incremental_file_item_is_refused_not_half_done(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,ts\n1,2024-01-01\n")
    plan = tmp_path / "p.smql"
    plan.write_text(
        "CONNECTION d = 'duckdb:///d.duckdb';\n"
        "MIGRATE FILE 'a.csv' (HEADER) INTO d.a MODE incremental CURSOR ts;\n"
    )
    result = runner.invoke(
        app, ["migrate", str(plan), "--state-dir", str(tmp_path / "s"), "--log-format", "json"]
    )
    assert result.exit_code == 4
    assert "MODE incremental" in result.stdout
