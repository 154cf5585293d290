"""Running `stratum test-conn` in tests, and checking that no secret reaches its output."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from stratum.cli.app import app


def invoke_test_conn(
    plan: Path, *args: str, env: dict[str, str] | None = None, secrets: Iterable[str] = ()
) -> tuple[int, str]:
    """Exit code and output (stdout + stderr) of `stratum test-conn PLAN ARGS`; fails if any of
    `secrets` is printed."""
    wide = {"COLUMNS": "400", **(env or {})}  # rich wraps table cells to the terminal's width
    result = CliRunner().invoke(app, ["test-conn", str(plan), *args], env=wide)
    output = result.output + (getattr(result, "stderr", "") or "")
    for secret in secrets:
        assert secret not in output
    return result.exit_code, output


def write(tmp_path: Path, text: str) -> Path:
    plan = tmp_path / "plan.smql"
    plan.write_text(text, encoding="utf-8")
    return plan


def by_name(output: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(output)["connections"]}
