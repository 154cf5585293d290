"""The in-memory connectors and the fault-injecting wrappers shipped for the engine's tests."""

from __future__ import annotations

import dataclasses

import anyio
import anyio.lowlevel
import pytest

from smql import Mode
from stratum.connectors.base import (
    Checkpoint,
    Column,
    Destination,
    RawBatch,
    Rejected,
    Row,
    Schema,
    Source,
)
from stratum.connectors.memory import (
    MEMORY_CAPABILITIES,
    FaultPlan,
    FaultyDestination,
    FaultySource,
    InjectedFault,
    MemoryDestination,
    MemorySource,
    SimulatedCrash,
)
from stratum.errors import (
    CircuitOpen,
    ConnectionLost,
    DestinationError,
    RowError,
    SourceError,
)
from stratum.plan.model import TableRef
from stratum.resilience import CircuitBreaker, RetryPolicy, call_with_retry

SCHEMA = Schema(
    (Column("id", "bigint", nullable=False), Column("name", "text")), primary_key=("id",)
)
NO_KEY = Schema((Column("id", "bigint"), Column("name", "text")))
T = TableRef("wh", "raw", "t")
ITEM = "wh.raw.t"


def cp(cursor: int | None = None, batches: int = 0, steps: tuple[str, ...] = ()) -> Checkpoint:
    return Checkpoint(
        item=ITEM,
        item_hash="ih",
        plan_hash="ph",
        run_id="r1",
        cursor=cursor,
        batches=batches,
        steps=steps,
    )


def rows(n: int, start: int = 1) -> list[Row]:
    return [(i, f"n{i}") for i in range(start, start + n)]


async def read_all(source: Source, after: int | None = None, size: int = 2) -> list[RawBatch]:
    return [batch async for batch in source.read(after, size)]


async def ready(
    dest: MemoryDestination | None = None, schema: Schema = SCHEMA, mode: Mode = Mode.FULL
) -> tuple[MemoryDestination, Checkpoint]:
    dest = MemoryDestination() if dest is None else dest
    await dest.open()
    return dest, await dest.prepare(T, schema, mode, cp())


# -- the protocols ----------------------------------------------------------------------------


def test_the_connectors_implement_the_protocols() -> None:
    source = MemorySource(SCHEMA, rows(3))
    dest = MemoryDestination()
    assert isinstance(source, Source)
    assert isinstance(dest, Destination)
    assert isinstance(FaultySource(source, FaultPlan()), Source)
    assert isinstance(FaultyDestination(dest, FaultPlan()), Destination)
    # statically too (mypy checks these assignments)
    typed_source: Source = source
    typed_dest: Destination = dest
    assert typed_source is source
    assert typed_dest.capabilities == MEMORY_CAPABILITIES
    assert MEMORY_CAPABILITIES.transactional


# -- MemorySource -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_source_reads_batches_with_cursors_and_positions() -> None:
    source = MemorySource(SCHEMA, rows(5))
    await source.open()
    assert await source.schema() == SCHEMA
    batches = await read_all(source)
    assert [b.rows for b in batches] == [rows(2), rows(2, 3), rows(1, 5)]
    assert [b.cursor for b in batches] == [2, 4, 5]
    assert [b.positions for b in batches] == [[1, 2], [3, 4], [5]]
    assert all(b.nbytes > 0 and b.rejected == [] for b in batches)
    assert (source.batches_read, source.rows_read) == (3, 5)


@pytest.mark.asyncio
async def test_source_resumes_after_a_cursor() -> None:
    source = MemorySource(SCHEMA, rows(5), positions=[10, 20, 30, 40, 50])
    await source.open()
    batches = await read_all(source, after=2, size=10)
    assert [(b.rows, b.positions, b.cursor) for b in batches] == [(rows(3, 3), [30, 40, 50], 5)]
    assert await read_all(source, after=5) == []  # a finished item reads nothing


@pytest.mark.asyncio
async def test_source_append_for_incremental_runs() -> None:
    source = MemorySource(SCHEMA, rows(2))
    await source.open()
    source.append(rows(2, 3))
    assert len(source) == 4
    batches = await read_all(source, after=2)
    assert [(b.rows, b.positions, b.cursor) for b in batches] == [(rows(2, 3), [3, 4], 4)]


@pytest.mark.asyncio
async def test_source_rejected_entries_arrive_in_the_batch() -> None:
    bad = Rejected(position=2, reason="ragged row", row="1,2,3")
    source = MemorySource(SCHEMA, [(1, "a"), bad, (3, "c")])
    await source.open()
    [batch] = await read_all(source, size=3)
    assert batch.rows == [(1, "a"), (3, "c")]
    assert batch.positions == [1, 3]
    assert batch.rejected == [bad]
    assert batch.cursor == 3


@pytest.mark.asyncio
async def test_source_refuses_bad_cursors_and_unopened_reads() -> None:
    source = MemorySource(SCHEMA, rows(3))
    with pytest.raises(SourceError, match="not open"):
        await read_all(source)
    await source.open()
    for cursor in ("abc", 4, -1, True):
        with pytest.raises(SourceError, match="cursor"):
            await read_all(source, after=cursor)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        await read_all(source, size=0)
    await source.close()
    assert (source.open_count, source.close_count, source.is_open) == (1, 1, False)


def test_source_refuses_rows_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="2 columns"):
        MemorySource(SCHEMA, [(1, "a", "extra")])
    with pytest.raises(ValueError, match="positions"):
        MemorySource(SCHEMA, rows(2), positions=[1])


@pytest.mark.asyncio
async def test_source_batch_delay_slows_the_producer() -> None:
    source = MemorySource(SCHEMA, rows(4), batch_delay=0.01)
    await source.open()
    start = anyio.current_time()
    await read_all(source)
    assert anyio.current_time() - start >= 0.02


# -- MemoryDestination ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_prepare_creates_once_and_records_the_steps_with_the_checkpoint() -> None:
    dest = MemoryDestination()
    await dest.open()
    assert not await dest.table_exists(T)
    done = await dest.prepare(T, SCHEMA, Mode.APPEND, cp())
    assert done.steps == ("create",)
    assert await dest.table_exists(T)
    assert await dest.checkpoint(ITEM) == done
    assert dest.ddl == [("create", "wh.raw.t")]
    assert dest.schema_of(T) == SCHEMA
    again = await dest.prepare(T, SCHEMA, Mode.APPEND, done)
    assert again.steps == ("create",)
    assert dest.ddl == [("create", "wh.raw.t")]


@pytest.mark.asyncio
async def test_full_mode_truncates_once_and_never_on_resume() -> None:
    dest = MemoryDestination()
    dest.create_table(T, SCHEMA, rows(3))
    await dest.open()
    done = await dest.prepare(T, SCHEMA, Mode.FULL, cp())
    assert done.steps == ("create", "truncate")
    assert dest.ddl == [("truncate", "wh.raw.t")]  # the table existed: no CREATE
    assert dest.rows(T) == []
    await dest.write(T, SCHEMA, rows(2), dataclasses.replace(done, cursor=2), Mode.FULL, ())
    resumed = await dest.checkpoint(ITEM)
    assert resumed is not None
    await dest.prepare(T, SCHEMA, Mode.FULL, resumed)  # a resumed run
    assert dest.rows(T) == rows(2)
    assert dest.ddl == [("truncate", "wh.raw.t")]


@pytest.mark.asyncio
async def test_append_mode_keeps_existing_rows() -> None:
    dest = MemoryDestination()
    dest.create_table(T, SCHEMA, rows(1))
    await dest.open()
    await dest.prepare(T, SCHEMA, Mode.APPEND, cp())
    assert dest.rows(T) == rows(1)
    assert dest.ddl == []


@pytest.mark.asyncio
async def test_a_write_commits_rows_and_checkpoint_together() -> None:
    dest, done = await ready()
    first = dataclasses.replace(done, cursor=2, batches=1)
    await dest.write(T, SCHEMA, rows(2), first, Mode.FULL, ())
    assert dest.rows(T) == rows(2)
    assert await dest.checkpoint(ITEM) == first
    assert await dest.row_count(T) == 2
    assert dest.history == [done, first]
    assert dest.commits == 2
    assert dest.tables == {"wh.raw.t": rows(2)}
    assert dest.checkpoints == {ITEM: first}


@pytest.mark.asyncio
async def test_a_probe_changes_nothing() -> None:
    dest, done = await ready()
    await dest.write(T, SCHEMA, rows(2), dataclasses.replace(done, cursor=2), Mode.FULL, ())
    before = (dest.tables, dest.checkpoints, dest.commits, list(dest.history))
    await dest.write(
        T, SCHEMA, rows(2, 3), dataclasses.replace(done, cursor=4), Mode.FULL, (), commit=False
    )
    assert (dest.tables, dest.checkpoints, dest.commits, dest.history) == before
    assert dest.probes == 1


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "probe"])
@pytest.mark.asyncio
async def test_reject_when_fails_the_whole_batch_naming_the_first_bad_row(commit: bool) -> None:
    dest = MemoryDestination(reject_when=lambda row: "negative id" if row[0] < 0 else None)
    dest, done = await ready(dest)
    batch = [(1, "a"), (-2, "b"), (-3, "c")]
    with pytest.raises(RowError, match=r"wh\.raw\.t: batch row 1: negative id"):
        await dest.write(
            T, SCHEMA, batch, dataclasses.replace(done, cursor=3), Mode.FULL, (), commit=commit
        )
    assert dest.rows(T) == []
    assert await dest.checkpoint(ITEM) == done


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([(1, "a"), (None, "b")], r"batch row 1: null value in column 'id'"),
        ([(1, "a"), (1, "b")], r"batch row 0: duplicate key \(1,\)"),
        ([(1, "a", "x")], r"batch row 0: 3 values for 2 columns"),
    ],
    ids=["not-null", "primary-key", "width"],
)
@pytest.mark.asyncio
async def test_constraints_raise_row_error(batch: list[Row], message: str) -> None:
    dest, done = await ready()
    with pytest.raises(RowError, match=message):
        await dest.write(T, SCHEMA, batch, done, Mode.FULL, ())
    assert await dest.row_count(T) == 0


@pytest.mark.asyncio
async def test_primary_key_is_checked_against_committed_rows() -> None:
    dest, done = await ready()
    await dest.write(T, SCHEMA, rows(2), done, Mode.FULL, ())
    with pytest.raises(RowError, match=r"batch row 1: duplicate key \(2,\)"):
        await dest.write(T, SCHEMA, [(3, "c"), (2, "again")], done, Mode.FULL, ())
    assert await dest.row_count(T) == 2


@pytest.mark.asyncio
async def test_a_table_without_a_key_takes_duplicates() -> None:
    dest, done = await ready(schema=NO_KEY)
    await dest.write(T, NO_KEY, rows(2), done, Mode.APPEND, ())
    await dest.write(T, NO_KEY, rows(2), done, Mode.APPEND, ())
    assert await dest.row_count(T) == 4


@pytest.mark.parametrize("mode", [Mode.UPSERT, Mode.INCREMENTAL])
@pytest.mark.asyncio
async def test_upsert_replaces_rows_with_the_same_key(mode: Mode) -> None:
    dest, done = await ready(schema=NO_KEY, mode=mode)
    await dest.write(T, NO_KEY, rows(3), done, mode, ("id",))
    await dest.write(T, NO_KEY, [(2, "two"), (4, "n4")], done, mode, ("id",))
    assert dest.rows(T) == [(1, "n1"), (2, "two"), (3, "n3"), (4, "n4")]
    with pytest.raises(RowError, match=r"batch row 1: key \(5,\) appears twice"):
        await dest.write(T, NO_KEY, [(5, "a"), (5, "b")], done, mode, ("id",))


@pytest.mark.asyncio
async def test_incremental_without_a_key_appends() -> None:
    dest, done = await ready(schema=NO_KEY, mode=Mode.INCREMENTAL)
    await dest.write(T, NO_KEY, rows(2), done, Mode.INCREMENTAL, ())
    await dest.write(T, NO_KEY, rows(2), done, Mode.INCREMENTAL, ())
    assert await dest.row_count(T) == 4


@pytest.mark.asyncio
async def test_columns_are_matched_by_name() -> None:
    dest, done = await ready()
    swapped = Schema((Column("name", "text"), Column("id", "bigint")))
    await dest.write(T, swapped, [("a", 1)], done, Mode.FULL, ())
    await dest.write(T, Schema((Column("id", "bigint"),)), [(2,)], done, Mode.FULL, ())
    assert dest.rows(T) == [(1, "a"), (2, None)]
    with pytest.raises(DestinationError, match="no column 'nope'"):
        await dest.write(T, Schema((Column("nope", "text"),)), [("x",)], done, Mode.FULL, ())


@pytest.mark.asyncio
async def test_destination_errors() -> None:
    dest = MemoryDestination()
    with pytest.raises(DestinationError, match="not open"):
        await dest.checkpoint(ITEM)
    await dest.open()
    with pytest.raises(DestinationError, match="does not exist"):
        await dest.write(T, SCHEMA, rows(1), cp(), Mode.FULL, ())
    with pytest.raises(DestinationError, match="does not exist"):
        await dest.row_count(T)
    with pytest.raises(DestinationError, match="a table is needed"):
        await dest.table_exists(TableRef("wh", "raw", None))
    await dest.prepare(T, NO_KEY, Mode.UPSERT, cp())
    with pytest.raises(DestinationError, match="needs a key"):
        await dest.write(T, NO_KEY, rows(1), cp(), Mode.UPSERT, ())
    with pytest.raises(DestinationError, match="no key column 'nope'"):
        await dest.write(T, NO_KEY, rows(1), cp(), Mode.UPSERT, ("nope",))


@pytest.mark.asyncio
async def test_save_checkpoint_and_forget() -> None:
    dest, done = await ready()
    finished = dataclasses.replace(done, finished=True)
    await dest.save_checkpoint(finished)
    assert await dest.checkpoint(ITEM) == finished
    await dest.forget(ITEM)
    assert await dest.checkpoint(ITEM) is None
    await dest.forget(ITEM)  # forgetting twice is fine


@pytest.mark.asyncio
async def test_behind_the_engines_back_helpers() -> None:
    dest, done = await ready()
    await dest.write(T, SCHEMA, rows(2), done, Mode.FULL, ())
    dest.truncate_table(T)
    assert await dest.row_count(T) == 0
    dest.drop_table("wh.raw.t")
    assert not await dest.table_exists(T)


@pytest.mark.asyncio
async def test_a_crashed_run_reopens_the_same_destination() -> None:
    dest, done = await ready()
    await dest.open()  # the next run; the crashed one never closed
    assert await dest.checkpoint(ITEM) == done


@pytest.mark.asyncio
async def test_the_commit_window_sees_an_uncommitted_transaction() -> None:
    seen: list[tuple[str, int, Checkpoint | None]] = []

    async def window(method: str, checkpoint: Checkpoint) -> None:
        seen.append((method, len(dest.rows(T)) if dest.tables else -1, dest.checkpoints.get(ITEM)))

    dest = MemoryDestination(commit_window=window)
    await dest.open()
    done = await dest.prepare(T, SCHEMA, Mode.FULL, cp())
    await dest.write(T, SCHEMA, rows(2), dataclasses.replace(done, cursor=2), Mode.FULL, ())
    # neither the table nor the rows are visible from outside before the commit
    assert seen == [("prepare", -1, None), ("write", 0, done)]


@pytest.mark.asyncio
async def test_concurrent_writes_all_land() -> None:
    dest, done = await ready()

    async def window(method: str, checkpoint: Checkpoint) -> None:
        await anyio.lowlevel.checkpoint()  # let the other writers interleave in their transactions

    dest.commit_window = window
    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(dest.write, T, SCHEMA, rows(2, 1 + 2 * n), done, Mode.FULL, ())
    assert sorted(dest.rows(T)) == rows(10)


# -- fault injection --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fail_on_the_nth_call_only() -> None:
    faults = FaultPlan().fail("write", on_call=2)
    inner, done = await ready()
    dest = FaultyDestination(inner, faults)
    await dest.write(T, SCHEMA, rows(1), done, Mode.FULL, ())
    with pytest.raises(ConnectionLost, match="injected fault: write call 2"):
        await dest.write(T, SCHEMA, rows(1, 2), done, Mode.FULL, ())
    await dest.write(T, SCHEMA, rows(1, 3), done, Mode.FULL, ())
    assert inner.rows(T) == [(1, "n1"), (3, "n3")]  # the failed call wrote nothing
    assert faults.calls("write") == 3
    assert faults.injected == [InjectedFault("write", 2, "error ConnectionLost")]


@pytest.mark.asyncio
async def test_fail_k_times_then_succeed_with_each_kind_of_error() -> None:
    instance = RowError("bad row")
    faults = (
        FaultPlan()
        .fail("checkpoint", times=2)
        .fail("row_count", instance, times=None)
        .fail("table_exists", lambda: ConnectionLost("from a factory"))
        .fail("forget", DestinationError)
    )
    inner, _ = await ready()
    dest = FaultyDestination(inner, faults)
    for _ in range(2):
        with pytest.raises(ConnectionLost):
            await dest.checkpoint(ITEM)
    assert await dest.checkpoint(ITEM) is not None
    for _ in range(2):
        with pytest.raises(RowError) as caught:
            await dest.row_count(T)
        assert caught.value is instance
    with pytest.raises(ConnectionLost, match="from a factory"):
        await dest.table_exists(T)
    assert await dest.table_exists(T)
    with pytest.raises(DestinationError, match="injected fault: forget call 1"):
        await dest.forget(ITEM)


@pytest.mark.asyncio
async def test_an_error_after_the_call_means_it_took_effect() -> None:
    faults = FaultPlan().fail("write", on_call=1, after=True)
    inner, done = await ready()
    dest = FaultyDestination(inner, faults)
    landed = dataclasses.replace(done, cursor=1, batches=1)
    with pytest.raises(ConnectionLost):
        await dest.write(T, SCHEMA, rows(1), landed, Mode.FULL, ())
    # the acknowledgement was lost, not the commit: the checkpoint tells the engine
    assert await dest.row_count(T) == 1
    assert await dest.checkpoint(ITEM) == landed


@pytest.mark.asyncio
async def test_random_failures_are_deterministic_for_a_seed() -> None:
    async def pattern(seed: int, probability: float = 0.5) -> list[bool]:
        faults = FaultPlan(seed=seed).fail_randomly("open", probability)
        dest = FaultyDestination(MemoryDestination(), faults)
        out = []
        for _ in range(32):
            try:
                await dest.open()
            except ConnectionLost:
                out.append(True)
            else:
                out.append(False)
        return out

    assert await pattern(7) == await pattern(7)
    assert await pattern(7) != await pattern(8)
    assert 0 < sum(await pattern(7)) < 32
    assert not any(await pattern(1, 0.0))
    assert all(await pattern(1, 1.0))
    with pytest.raises(ValueError, match="probability"):
        FaultPlan().fail_randomly("open", 1.5)


@pytest.mark.asyncio
async def test_delays_simulate_a_slow_consumer() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    faults = FaultPlan(sleep=sleep).delay("write", 0.5, on_call=2, times=2)
    inner, done = await ready()
    dest = FaultyDestination(inner, faults)
    for n in range(4):
        await dest.write(T, SCHEMA, rows(1, n + 1), done, Mode.FULL, ())
    assert slept == [0.5, 0.5]
    assert [f.call for f in faults.injected] == [2, 3]


@pytest.mark.asyncio
async def test_a_crash_in_the_commit_window_lands_neither_rows_nor_checkpoint() -> None:
    faults = FaultPlan().in_commit_window(on_call=2)
    inner, done = await ready()
    dest = FaultyDestination(inner, faults)
    first = dataclasses.replace(done, cursor=1, batches=1)
    await dest.write(T, SCHEMA, rows(1), first, Mode.FULL, ())
    await dest.write(T, SCHEMA, rows(1, 2), first, Mode.FULL, (), commit=False)  # a probe
    with pytest.raises(SimulatedCrash, match=r"item 'wh\.raw\.t'"):
        await dest.write(T, SCHEMA, rows(1, 2), dataclasses.replace(first, cursor=2), Mode.FULL, ())
    assert inner.rows(T) == rows(1)
    assert await inner.checkpoint(ITEM) == first
    assert faults.calls("write:window") == 2  # the probe never reached the window
    await dest.write(T, SCHEMA, rows(1, 2), dataclasses.replace(first, cursor=2), Mode.FULL, ())
    assert inner.rows(T) == rows(2)


@pytest.mark.asyncio
async def test_a_window_hook_on_prepare_and_hooks_chained() -> None:
    calls: list[str] = []

    async def existing(method: str, checkpoint: Checkpoint) -> None:
        calls.append(f"existing {method}")

    async def failing(checkpoint: Checkpoint) -> None:
        calls.append("hook")
        raise ConnectionLost("lost before COMMIT")

    inner = MemoryDestination(commit_window=existing)
    faults = FaultPlan().in_commit_window(failing, method="prepare")
    dest = FaultyDestination(inner, faults)
    await dest.open()
    with pytest.raises(ConnectionLost):
        await dest.prepare(T, SCHEMA, Mode.FULL, cp())
    assert not await dest.table_exists(T)
    assert await dest.checkpoint(ITEM) is None
    assert inner.ddl == []
    await dest.prepare(T, SCHEMA, Mode.FULL, cp())
    assert calls == ["hook", "existing prepare"]
    assert await dest.table_exists(T)


@pytest.mark.asyncio
async def test_window_faults_need_a_memory_destination() -> None:
    plain = FaultyDestination(MemoryDestination(), FaultPlan())
    dest = FaultyDestination(plain, FaultPlan().in_commit_window())
    await dest.open()
    with pytest.raises(TypeError, match="MemoryDestination"):
        await dest.write(T, SCHEMA, rows(1), cp(), Mode.FULL, ())


def test_fault_plan_refuses_bad_schedules() -> None:
    with pytest.raises(ValueError, match="numbered from 1"):
        FaultPlan().fail("write", on_call=0)
    with pytest.raises(ValueError, match="times"):
        FaultPlan().fail("write", times=0)
    with pytest.raises(ValueError, match="delay"):
        FaultPlan().delay("write", -1)


@pytest.mark.asyncio
async def test_faulty_source_loses_a_batch_mid_read_and_resumes() -> None:
    inner = MemorySource(SCHEMA, rows(5))
    faults = FaultPlan().fail("batch", on_call=2)
    source = FaultySource(inner, faults)
    await source.open()
    assert await source.schema() == SCHEMA
    got: list[RawBatch] = []

    async def consume() -> None:
        async for batch in source.read(None, 2):
            got.append(batch)

    with pytest.raises(ConnectionLost, match="batch call 2"):
        await consume()
    assert [b.cursor for b in got] == [2]
    rest = await read_all(source, after=2)
    assert [r for b in got + rest for r in b.rows] == rows(5)
    assert (faults.calls("read"), faults.calls("batch")) == (2, 4)
    await source.close()
    assert not inner.is_open


@pytest.mark.asyncio
async def test_faulty_source_faults_on_open_and_read() -> None:
    faults = FaultPlan().fail("open").fail("read", SourceError("table vanished"))
    source = FaultySource(MemorySource(SCHEMA, rows(2)), faults)
    with pytest.raises(ConnectionLost):
        await source.open()
    await source.open()
    with pytest.raises(SourceError, match="vanished"):
        await read_all(source)
    assert len(await read_all(source)) == 1


@pytest.mark.asyncio
async def test_faulty_source_closes_the_inner_reader_when_stopped_early() -> None:
    inner = MemorySource(SCHEMA, rows(6))
    source = FaultySource(inner, FaultPlan())
    await source.open()
    reader = source.read(None, 2)
    first = await anext(reader)
    await reader.aclose()  # type: ignore[attr-defined]
    assert first.cursor == 2
    assert inner.batches_read == 1


# -- together with the retry machinery --------------------------------------------------------


@pytest.mark.asyncio
async def test_a_write_retried_after_transient_faults_lands_once() -> None:
    faults = FaultPlan().fail("write", times=2)
    inner, done = await ready()
    dest = FaultyDestination(inner, faults)
    policy = RetryPolicy.fast()
    breaker = CircuitBreaker.from_policy(policy)
    first = dataclasses.replace(done, cursor=2, batches=1)
    await call_with_retry(
        lambda: dest.write(T, SCHEMA, rows(2), first, Mode.FULL, ()),
        policy=policy,
        breaker=breaker,
    )
    assert inner.rows(T) == rows(2)
    assert await inner.checkpoint(ITEM) == first
    assert faults.calls("write") == 3


@pytest.mark.asyncio
async def test_a_dead_destination_opens_the_breaker_after_exactly_four_writes() -> None:
    faults = FaultPlan().fail("write", times=None)
    inner, done = await ready()
    dest = FaultyDestination(inner, faults)
    policy = RetryPolicy.fast()
    breaker = CircuitBreaker.from_policy(policy)
    with pytest.raises(CircuitOpen):
        await call_with_retry(
            lambda: dest.write(T, SCHEMA, rows(1), done, Mode.FULL, ()),
            policy=policy,
            breaker=breaker,
        )
    assert faults.calls("write") == 4
    assert breaker.opened_count == 1


def test_all_names_exist() -> None:
    from stratum.connectors import memory

    assert all(hasattr(memory, name) for name in memory.__all__)
