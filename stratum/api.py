"""The embedding API, mirroring the CLI: load a plan, run it, read its progress.

plan = stratum.load_plan("shop.smql")
summary = anyio.run(lambda: stratum.run_plan(plan))      # like `stratum migrate`
for record in stratum.read_progress("shop.smql"):         # like `stratum progress`
    print(record.name, record.state, record.rows_written)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stratum.plan.model import MigrationPlan
from stratum.resilience import RetryPolicy
from stratum.runtime.events import Subscriber
from stratum.runtime.executor import MigrationExecutor, RunOptions, RunSummary
from stratum.state import ItemRecord, StateStore, default_state_dir


async def run_plan(
    plan: MigrationPlan,
    *,
    state_dir: Path | None = None,
    items: Sequence[str] = (),
    restart: bool = False,
    reject_dir: Path | None = None,
    subscribers: Sequence[Subscriber] = (),
    handle_signals: bool = False,
) -> RunSummary:
    """Run the plan as `stratum migrate` does and return its summary. Signals are left to the
    embedding application unless `handle_signals`."""
    options = RunOptions(
        state_dir=state_dir or default_state_dir(),
        items=tuple(items),
        restart=restart,
        reject_dir=reject_dir,
        policy=RetryPolicy.from_env(),
        handle_signals=handle_signals,
    )
    executor = MigrationExecutor(plan, options)
    for subscriber in subscribers:
        executor.bus.subscribe(subscriber)
    return await executor.run()


def read_progress(plan_path: str | Path, state_dir: Path | None = None) -> list[ItemRecord]:
    """Each item's recorded state, read-only: safe while a run writes."""
    with StateStore.open(state_dir or default_state_dir(), Path(plan_path), readonly=True) as store:
        return store.items()
