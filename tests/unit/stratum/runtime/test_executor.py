"""The engine's logic end to end, on in-memory connectors with injected faults.

Each test compiles a real plan, runs the real executor and pipeline, and asserts what a user
relies on: every row lands once, bad rows are kept, resumes replay nothing, refusals say why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import smql
from stratum.connectors.base import Column, Destination, Rejected, Schema, Source
from stratum.connectors.memory import (
    FaultPlan,
    FaultyDestination,
    MemoryDestination,
    MemorySource,
    SimulatedCrash,
)
from stratum.errors import ConnectionLost
from stratum.plan import MigrationPlan, compile_plan
from stratum.plan.model import PlanItem
from stratum.resilience import RetryPolicy
from stratum.runtime.events import BatchProcessed, Event, ItemStarted
from stratum.runtime.executor import (
    EXIT_FAILED,
    EXIT_OK,
    MigrationExecutor,
    RunOptions,
    RunSummary,
)
from stratum.runtime.pipeline import Outcome
from stratum.state import ItemState, StateStore

SCHEMA = Schema((Column("id", "text"), Column("name", "text")))
ROWS = [(str(i), f"name {i}") for i in range(1, 101)]


def plan_for(tmp_path: Path, clauses: str = "", settings: str = "") -> MigrationPlan:
    source = (
        "CONNECTION wh = 'duckdb:///wh.duckdb';\n"
        f"{settings}\n"
        f"MIGRATE FILE 'people.csv' (HEADER) INTO wh.people BATCH SIZE 10 {clauses};\n"
    )
    path = tmp_path / "plan.smql"
    path.write_text(source)
    return compile_plan(smql.parse(source, str(path)))


class Factory:
    """Hands the executor the same in-memory source data and destination on every run."""

    def __init__(self, destination: Destination, rows: list = ROWS) -> None:  # type: ignore[type-arg]
        self.destination_ = destination
        self.rows = rows
        self.sources: list[MemorySource] = []

    def source(self, item: PlanItem, *, bounds: object = None) -> Source:
        source = MemorySource(SCHEMA, self.rows)
        self.sources.append(source)
        return source

    def destination(self, item: PlanItem) -> Destination:
        return self.destination_


def run(
    plan: MigrationPlan,
    tmp_path: Path,
    factory: Factory,
    *,
    restart: bool = False,
    on_event: Callable[[Event], None] | None = None,
) -> RunSummary:
    options = RunOptions(
        state_dir=tmp_path / "state",
        restart=restart,
        policy=RetryPolicy.fast(),
        handle_signals=False,
    )
    executor = MigrationExecutor(plan, options, connectors=factory)
    if on_event:
        executor.bus.subscribe(on_event)
    return anyio.run(executor.run)


def loaded(destination: MemoryDestination, plan: MigrationPlan) -> list[tuple[object, ...]]:
    return sorted(destination.rows(plan.items[0].target), key=lambda row: int(str(row[0])))


def test_every_row_lands_once_and_a_rerun_does_nothing(tmp_path: Path) -> None:
    plan, destination = plan_for(tmp_path), MemoryDestination()
    summary = run(plan, tmp_path, Factory(destination))
    assert summary.exit_code == EXIT_OK
    (result,) = summary.results
    assert result.outcome is Outcome.FINISHED
    assert loaded(destination, plan) == ROWS
    assert (result.totals.rows_read, result.totals.rows_written, result.totals.batches) == (
        100,
        100,
        10,
    )
    again = run(plan, tmp_path, factory := Factory(destination))
    assert again.results[0].outcome is Outcome.SKIPPED
    assert "already finished" in (again.results[0].message or "")
    assert factory.sources[0].rows_read == 0  # nothing read from the source
    assert loaded(destination, plan) == ROWS


def test_a_crash_between_rows_and_checkpoint_replays_nothing(tmp_path: Path) -> None:
    plan, inner = plan_for(tmp_path), MemoryDestination()
    crashing = FaultyDestination(inner, FaultPlan().in_commit_window(on_call=4))
    with pytest.raises(BaseExceptionGroup) as caught:
        run(plan, tmp_path, Factory(crashing))
    assert caught.group_contains(SimulatedCrash)
    assert len(inner.rows(plan.items[0].target)) == 30  # three batches committed, not four
    summary = run(plan, tmp_path, Factory(inner))
    assert summary.exit_code == EXIT_OK
    assert loaded(inner, plan) == ROWS  # no duplicates, nothing lost


def test_the_destination_checkpoint_wins_over_the_state_store(tmp_path: Path) -> None:
    plan, destination = plan_for(tmp_path), MemoryDestination()
    run(plan, tmp_path, Factory(destination))
    with StateStore.open(tmp_path / "state", Path(plan.path)) as store:
        store.delete_item(plan.items[0].name)  # the local log lost everything
    again = run(plan, tmp_path, Factory(destination))
    assert again.results[0].outcome is Outcome.SKIPPED
    assert loaded(destination, plan) == ROWS


@pytest.mark.parametrize(
    ("on_error", "outcome", "written", "rejected"),
    [("reject", Outcome.FINISHED, 98, 2), ("skip", Outcome.FINISHED, 98, 2)],
)
def test_bad_rows_are_kept_or_counted(
    tmp_path: Path, on_error: str, outcome: Outcome, written: int, rejected: int
) -> None:
    rows: list[object] = list(ROWS)
    rows[14] = Rejected(15, "expected 2 values, found 3", "15,x,y")
    rows[57] = Rejected(58, "not valid utf-8", "58,\udcff")
    plan = plan_for(tmp_path, f"ON ERROR {on_error}")
    destination = MemoryDestination()
    summary = run(plan, tmp_path, Factory(destination, rows))
    (result,) = summary.results
    assert result.outcome is outcome
    t = result.totals
    assert (t.rows_written, t.rows_rejected) == (written, rejected)
    assert t.rows_read == t.rows_written + t.rows_rejected + t.rows_filtered
    if on_error == "reject":
        assert result.reject_file is not None
        lines = [json.loads(line) for line in Path(result.reject_file).read_text().splitlines()]
        assert [(x["position"], x["reason"]) for x in lines] == [
            (15, "expected 2 values, found 3"),
            (58, "not valid utf-8"),
        ]
    else:
        assert result.reject_file is None


def test_on_error_stop_fails_at_the_first_bad_row_and_commits_nothing_of_its_batch(
    tmp_path: Path,
) -> None:
    rows: list[object] = list(ROWS)
    rows[24] = Rejected(25, "expected 2 values, found 1", "25")
    plan, destination = plan_for(tmp_path), MemoryDestination()
    summary = run(plan, tmp_path, Factory(destination, rows))
    (result,) = summary.results
    assert summary.exit_code == EXIT_FAILED
    assert result.outcome is Outcome.FAILED
    assert "position 25: expected 2 values, found 1" in (result.message or "")
    assert len(destination.rows(plan.items[0].target)) == 20  # batches 1-2, not batch 3


def test_rows_a_constraint_refuses_are_isolated_and_the_rest_commit_once(tmp_path: Path) -> None:
    bad = {"7", "33", "34", "90"}
    destination = MemoryDestination(
        reject_when=lambda row: "id is banned" if row[0] in bad else None
    )
    plan = plan_for(tmp_path, "ON ERROR reject")
    summary = run(plan, tmp_path, Factory(destination))
    (result,) = summary.results
    assert result.outcome is Outcome.FINISHED
    assert loaded(destination, plan) == [row for row in ROWS if row[0] not in bad]
    assert result.reject_file is not None
    lines = [json.loads(line) for line in Path(result.reject_file).read_text().splitlines()]
    assert sorted(x["position"] for x in lines) == [7, 33, 34, 90]
    assert all("id is banned" in x["reason"] for x in lines)
    assert result.totals.rows_rejected == 4


def test_transient_failures_are_retried_and_counted(tmp_path: Path) -> None:
    inner = MemoryDestination()
    flaky = FaultyDestination(inner, FaultPlan().fail("write", ConnectionLost, on_call=3, times=2))
    plan = plan_for(tmp_path)
    summary = run(plan, tmp_path, Factory(flaky))
    assert summary.exit_code == EXIT_OK
    assert summary.results[0].totals.retries == 2
    assert loaded(inner, plan) == ROWS


def test_a_persistent_failure_opens_the_breaker_and_the_item_gives_up(tmp_path: Path) -> None:
    inner = MemoryDestination()
    down = FaultyDestination(inner, FaultPlan().fail("write", ConnectionLost, times=None))
    plan = plan_for(tmp_path)
    summary = run(plan, tmp_path, Factory(down))
    (result,) = summary.results
    assert result.outcome is Outcome.PAUSED
    assert "circuit breaker" in (result.message or "")
    assert inner.rows(plan.items[0].target) == []


def test_a_changed_item_is_not_resumed(tmp_path: Path) -> None:
    destination = MemoryDestination()
    crashing = FaultyDestination(destination, FaultPlan().in_commit_window(on_call=3))
    with pytest.raises(BaseExceptionGroup):
        run(plan_for(tmp_path), tmp_path, Factory(crashing))
    changed = plan_for(tmp_path, "ON ERROR skip")
    summary = run(changed, tmp_path, Factory(destination))
    (result,) = summary.results
    assert result.outcome is Outcome.FAILED
    assert "its definition changed" in (result.message or "")
    assert "--restart" in (result.message or "")
    restarted = run(changed, tmp_path, Factory(destination), restart=True)
    assert restarted.exit_code == EXIT_OK
    assert loaded(destination, changed) == ROWS


def test_a_target_emptied_behind_the_engines_back_is_refused(tmp_path: Path) -> None:
    destination = MemoryDestination()
    crashing = FaultyDestination(destination, FaultPlan().in_commit_window(on_call=3))
    plan = plan_for(tmp_path)
    with pytest.raises(BaseExceptionGroup):
        run(plan, tmp_path, Factory(crashing))
    destination.truncate_table(plan.items[0].target)
    summary = run(plan, tmp_path, Factory(destination))
    assert "emptied behind Stratum's back" in (summary.results[0].message or "")


def test_backpressure_keeps_the_queue_bounded(tmp_path: Path) -> None:
    rows = [(str(i), "x") for i in range(1, 2001)]
    inner = MemoryDestination()
    slow = FaultyDestination(inner, FaultPlan().delay("write", 0.002, times=None))
    plan = plan_for(tmp_path, settings="SET queue_size = 4;")
    ahead: list[int] = []
    factory = Factory(slow, rows)

    def watch(event: Event) -> None:
        if isinstance(event, BatchProcessed):
            ahead.append(factory.sources[0].batches_read - event.batch)

    summary = run(plan, tmp_path, factory, on_event=watch)
    assert summary.exit_code == EXIT_OK
    assert len(inner.rows(plan.items[0].target)) == 2000
    # the reader is never more than the queue (4) plus the batch in each actor's hands ahead
    assert max(ahead) <= 4 + 2


def test_item_states_are_stored(tmp_path: Path) -> None:
    plan, destination = plan_for(tmp_path), MemoryDestination()
    run(plan, tmp_path, Factory(destination))
    with StateStore.open(tmp_path / "state", Path(plan.path), readonly=True) as store:
        (record,) = store.items()
        run_record = store.last_run()
    assert record.state is ItemState.FINISHED
    assert (record.rows_written, record.batches, record.cursor) == (100, 10, 100)
    assert run_record is not None
    assert (run_record.status, run_record.exit_code) == ("completed", 0)


def test_an_upsert_batch_keeps_the_last_row_of_each_key(tmp_path: Path) -> None:
    rows = [("1", "old"), ("2", "two"), ("1", "new"), ("3", "three")]
    plan = plan_for(tmp_path, "MODE upsert KEY (id)")
    destination = MemoryDestination()
    summary = run(plan, tmp_path, Factory(destination, rows))
    (result,) = summary.results
    assert result.outcome is Outcome.FINISHED
    assert loaded(destination, plan) == [("1", "new"), ("2", "two"), ("3", "three")]
    t = result.totals
    assert (t.rows_read, t.rows_written, t.rows_rejected) == (4, 4, 0)


def test_the_default_queue_of_64_bounds_how_far_the_reader_runs_ahead(tmp_path: Path) -> None:
    rows = [(str(i), "x") for i in range(1, 3001)]  # 300 batches of 10
    inner = MemoryDestination()
    slow = FaultyDestination(inner, FaultPlan().delay("write", 0.001, times=None))
    plan = plan_for(tmp_path)
    assert plan.settings.queue_size == 64
    ahead: list[int] = []
    factory = Factory(slow, rows)

    def watch(event: Event) -> None:
        if isinstance(event, BatchProcessed):
            ahead.append(factory.sources[0].batches_read - event.batch)

    assert run(plan, tmp_path, factory, on_event=watch).exit_code == EXIT_OK
    assert len(inner.rows(plan.items[0].target)) == 3000
    assert max(ahead) >= 32  # the reader did run ahead of a slow writer...
    assert max(ahead) <= 64 + 2  # ...but never by more than the queue: memory stays flat


def test_an_incremental_item_continues_from_its_cursor(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "MODE incremental CURSOR id KEY (id)")
    destination = MemoryDestination()
    rows = list(ROWS[:40])
    assert run(plan, tmp_path, Factory(destination, rows)).exit_code == EXIT_OK
    rows += ROWS[40:]  # the source grew since
    again = run(plan, tmp_path, factory := Factory(destination, rows))
    assert again.results[0].outcome is Outcome.FINISHED
    assert factory.sources[0].rows_read == 60  # only the new rows were read
    assert loaded(destination, plan) == ROWS


def test_pause_and_resume_messages_hold_and_release_the_reader(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, settings="SET queue_size = 1;")
    inner = MemoryDestination()
    slow = FaultyDestination(inner, FaultPlan().delay("write", 0.01, times=None))
    factory = Factory(slow)
    options = RunOptions(
        state_dir=tmp_path / "state", policy=RetryPolicy.fast(), handle_signals=False
    )
    executor = MigrationExecutor(plan, options, connectors=factory)
    name = plan.items[0].name
    seen: dict[str, int] = {}
    two_batches = anyio.Event()
    executor.bus.subscribe(
        lambda e: two_batches.set() if isinstance(e, BatchProcessed) and e.batch >= 2 else None
    )

    async def main() -> RunSummary:
        async with anyio.create_task_group() as tg:
            result: list[RunSummary] = []

            async def go() -> None:
                result.append(await executor.run())

            tg.start_soon(go)
            await two_batches.wait()
            executor.pause(name)
            await anyio.sleep(0.2)
            seen["while_paused"] = factory.sources[0].batches_read
            await anyio.sleep(0.2)
            seen["later"] = factory.sources[0].batches_read
            with StateStore.open(tmp_path / "state", Path(plan.path), readonly=True) as store:
                record = store.get_item(name)
                seen["paused"] = int(record is not None and record.state is ItemState.PAUSED)
            executor.resume(name)
        return result[0]

    summary = anyio.run(main)
    assert seen["later"] == seen["while_paused"]  # nothing read while paused
    assert seen["paused"] == 1
    assert summary.exit_code == EXIT_OK
    assert loaded(inner, plan) == ROWS


class SizedMemorySource(MemorySource):
    async def total_rows(self) -> int | None:
        return 100


def test_a_source_that_knows_its_size_gives_the_display_a_total(tmp_path: Path) -> None:
    plan, destination = plan_for(tmp_path), MemoryDestination()
    factory = Factory(destination)
    factory.source = lambda item: SizedMemorySource(SCHEMA, ROWS)  # type: ignore[method-assign]
    totals: list[int | None] = []

    def watch(event: Event) -> None:
        if isinstance(event, ItemStarted):
            totals.append(event.total_rows)

    assert run(plan, tmp_path, factory, on_event=watch).exit_code == EXIT_OK
    assert totals == [100]
