"""Golden tests for the SMQL language: every case in `cases/` against its expected output.

Each case is a `<name>.smql` file with one or both of these next to it:

- `<name>.plan.json`: the file compiles, and this is its plan (`stratum plan --json`).
  Unless it also has an errors file, such a case must compile without any diagnostic (given no
  environment, so unset `${VAR}`s are not reported), format to a fixed point, and keep its plan
  hash (and every item hash) when formatted.
- `<name>.errors.txt`: exactly what `stratum validate` prints to stderr for it with an empty
  environment, i.e. `smql.render_all(stratum.plan.diagnose(program, env={}), source)`, or the
  rendered syntax errors when the file does not parse.

Cases are parsed under their path relative to the repository root
(`tests/smql/cases/<name>.smql`), so the expected files do not depend on where the repository
is checked out.

To add a case, write `<name>.smql` and run::

    STRATUM_UPDATE_GOLDEN=1 .venv/bin/pytest tests/smql/test_golden.py

which writes `<name>.errors.txt` when the case has an error and `<name>.plan.json` when it
compiles, and rewrites the expected files of existing cases. Then read every expected file it
wrote: a golden file that records a wrong behaviour is worse than none. A case never switches
kind on its own: to turn a plan case into an error case (or back), delete its expected file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

import smql
from smql.formatter import format_source
from stratum.plan import compile_plan, diagnose

UPDATE_ENV = "STRATUM_UPDATE_GOLDEN"
ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"
PLAN_SUFFIX = ".plan.json"
ERRORS_SUFFIX = ".errors.txt"


def updating() -> bool:
    return os.environ.get(UPDATE_ENV, "").strip() == "1"


@dataclass(frozen=True)
class Outcome:
    """What the language makes of a case: its diagnostics text and, if it compiles, its plan."""

    errors: str  # rendered diagnostics with an empty environment, "" when there are none
    has_errors: bool
    plan: dict[str, object] | None
    warnings: str  # rendered diagnostics without an environment (no unset-variable warnings)


def case_path(case: Path) -> str:
    """The path a case is parsed under: relative to the repository root, with slashes."""
    return case.relative_to(ROOT).as_posix()


def outcome(source: str, path: str) -> Outcome:
    try:
        program = smql.parse(source, path)
    except smql.SmqlSyntaxError as exc:
        return Outcome(str(exc), has_errors=True, plan=None, warnings=str(exc))
    diagnostics = diagnose(program, env={})
    has_errors = any(d.is_error for d in diagnostics)
    plan = None if has_errors else compile_plan(program).to_json()
    warnings = smql.render_all(diagnose(program), source)
    return Outcome(smql.render_all(diagnostics, source), has_errors, plan, warnings)


def plan_text(plan: dict[str, object]) -> str:
    return json.dumps(plan, indent=2, ensure_ascii=False) + "\n"


def errors_text(rendered: str) -> str:
    return rendered + "\n" if rendered else ""


def _cases() -> list[Path]:
    return sorted(CASES.glob("*.smql"))


def _plan_cases() -> list[Path]:
    return [c for c in _cases() if c.with_name(c.stem + PLAN_SUFFIX).exists()]


def _ids(cases: list[Path]) -> list[str]:
    return [c.stem for c in cases]


def _check_or_update(expected_file: Path, actual: str) -> None:
    if updating():
        if not expected_file.exists() or expected_file.read_text(encoding="utf-8") != actual:
            expected_file.write_text(actual, encoding="utf-8")
        return
    assert expected_file.exists(), (
        f"{expected_file.name} is missing; run with {UPDATE_ENV}=1 to write it, then read it"
    )
    assert actual == expected_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", _cases(), ids=_ids(_cases()))
def test_case(case: Path) -> None:
    source = case.read_text(encoding="utf-8")
    result = outcome(source, case_path(case))
    plan_file = case.with_name(case.stem + PLAN_SUFFIX)
    errors_file = case.with_name(case.stem + ERRORS_SUFFIX)
    if not plan_file.exists() and not errors_file.exists():
        assert updating(), (
            f"{case.name} has neither {plan_file.name} nor {errors_file.name}; run with "
            f"{UPDATE_ENV}=1 to write the expected output, then read it"
        )
        (errors_file if result.has_errors else plan_file).touch()

    if errors_file.exists():
        _check_or_update(errors_file, errors_text(result.errors))
    if plan_file.exists():
        assert result.plan is not None, (
            f"{case.name} is a plan case but no longer compiles:\n{result.errors}"
        )
        if not errors_file.exists():
            assert result.warnings == "", f"a plan case must compile cleanly:\n{result.warnings}"
        _check_or_update(plan_file, plan_text(result.plan))


@pytest.mark.parametrize("case", _plan_cases(), ids=_ids(_plan_cases()))
def test_formatting_is_a_fixed_point_and_keeps_hashes(case: Path) -> None:
    source = case.read_text(encoding="utf-8")
    path = case_path(case)
    formatted = format_source(source, path)
    assert format_source(formatted, path) == formatted, "formatting is not idempotent"
    before = compile_plan(smql.parse(source, path))
    after = compile_plan(smql.parse(formatted, path))
    assert after.hash == before.hash
    assert {i.name: i.hash for i in after.items} == {i.name: i.hash for i in before.items}


def test_every_expected_file_has_a_case() -> None:
    """A renamed or deleted case must not leave its expected output behind."""
    stems = {c.stem for c in _cases()}
    for expected in [*CASES.glob("*" + PLAN_SUFFIX), *CASES.glob("*" + ERRORS_SUFFIX)]:
        stem = expected.name.removesuffix(PLAN_SUFFIX).removesuffix(ERRORS_SUFFIX)
        assert stem in stems, f"{expected.name} has no {stem}.smql"
