"""The embedding API runs a plan and reads its progress, like the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio

import stratum

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_run_plan_and_read_progress(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns("*.duckdb*"))
    plan = stratum.load_plan(tmp_path / "examples" / "quickstart.smql")
    events: list[object] = []
    summary = anyio.run(
        lambda: stratum.run_plan(plan, state_dir=tmp_path / "state", subscribers=[events.append])
    )
    assert summary.exit_code == 0
    assert [r.outcome.value for r in summary.results] == ["finished", "finished"]
    assert events  # subscribers saw the run
    records = stratum.read_progress(plan.path, tmp_path / "state")
    assert {r.name: r.state for r in records} == {
        "local.raw.customers": stratum.ItemState.FINISHED,
        "local.raw.orders": stratum.ItemState.FINISHED,
    }
