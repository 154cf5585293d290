"""Every example in `examples/` validates, is already formatted, and compiles to a plan.

The examples are run through the real command line (`stratum validate`, `stratum fmt --check`,
`stratum plan`) from the repository root, so what is tested is what a user types. Examples are
found by globbing, so a new one is covered without touching this file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import smql
from stratum.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("**/*.smql"))

# `path:line:col: severity: message`, or `path: severity: message` for a file-wide problem
_HEADLINE = re.compile(r"^\S+?(?::\d+:\d+)?: (?P<severity>error|warning|note): (?P<message>.*)$")
_UNSET_VARIABLE = re.compile(r"environment variable [A-Za-z_][A-Za-z0-9_]* is not set\b")


def _relative(example: Path) -> str:
    return example.relative_to(ROOT).as_posix()


def _stratum(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(autouse=True)
def _from_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_there_are_examples() -> None:
    names = {example.name for example in EXAMPLES}
    assert {
        "quickstart.smql",
        "mysql_to_postgres.smql",
        "incremental_orders.smql",
        "csv_load.smql",
        "medallion_features.smql",
    } <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=[_relative(e) for e in EXAMPLES])
def test_validates_without_errors(example: Path) -> None:
    """No error; the only warnings allowed are for environment variables that are not set."""
    result = _stratum("validate", _relative(example))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{_relative(example)}: ok, ")
    for line in result.stderr.splitlines():
        headline = _HEADLINE.match(line)
        if headline is None:
            continue  # a source line or a caret under it
        assert headline["severity"] == "warning", line
        assert _UNSET_VARIABLE.match(headline["message"]), line


@pytest.mark.parametrize("example", EXAMPLES, ids=[_relative(e) for e in EXAMPLES])
def test_is_formatted(example: Path) -> None:
    result = _stratum("fmt", "--check", _relative(example))
    assert result.exit_code == 0, f"{result.stderr}run `stratum fmt {_relative(example)}`"
    assert result.stderr == ""


@pytest.mark.parametrize("example", EXAMPLES, ids=[_relative(e) for e in EXAMPLES])
def test_plans(example: Path) -> None:
    text = _stratum("plan", _relative(example))
    assert text.exit_code == 0, text.stderr
    assert text.stderr == ""
    assert text.stdout.startswith("plan ")

    as_json = _stratum("plan", "--json", _relative(example))
    assert as_json.exit_code == 0, as_json.stderr
    plan = json.loads(as_json.stdout)
    assert plan["path"] == _relative(example)
    assert plan["items"], "an example should migrate something"
    assert plan["order"] == [item["name"] for item in plan["items"]]


@pytest.mark.parametrize("example", EXAMPLES, ids=[_relative(e) for e in EXAMPLES])
def test_bundled_files_exist(example: Path) -> None:
    """A file an example loads by a relative path is bundled (relative to the example)."""
    program = smql.parse_file(example)
    for statement in program.statements:
        if isinstance(statement, smql.syntax.MigrateFile):
            path = Path(statement.path.value)
            if not path.is_absolute():
                assert (example.parent / path).is_file(), f"{statement.path.value} is missing"
