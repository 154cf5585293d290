"""One item's pipeline: a producer actor and a consumer actor joined by a bounded stream.

    producer: source.read -> transform -> send      (obeys Start / Stop / Pause / Resume)
    consumer: receive -> write rows + checkpoint in ONE destination transaction
              -> LMDB record -> BatchProcessed event

The destination's checkpoint is authoritative: on start-up it wins over the state store, and a
batch's rows and the checkpoint that counts them commit together, so a crash anywhere replays
nothing and loses nothing. Rows a constraint refuses are isolated by probe transactions (rolled
back) until the rest of the batch commits in one transaction; see architecture/engine.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from smql import Mode, OnError
from stratum import failpoints
from stratum.connectors.base import (
    Checkpoint,
    CopyFormat,
    Cursor,
    Destination,
    RawBatch,
    Rejected,
    Row,
    Schema,
    SizedSource,
    Source,
    StagingDestination,
    TextDestination,
    TextSource,
)
from stratum.connectors.pushdown import remaining_options
from stratum.errors import CircuitOpen, ResumeRefused, RowError, SourceError, StratumError
from stratum.plan.model import MigrationPlan, PlanItem
from stratum.resilience import CircuitBreaker, RetryPolicy, call_with_retry, is_transient
from stratum.runtime.events import (
    BatchProcessed,
    ErrorOccurred,
    EventBus,
    ItemStarted,
    StageReport,
    Totals,
)
from stratum.runtime.rejects import RejectFile
from stratum.state import ItemRecord, ItemState, StateStore, check_transition
from stratum.transforms import TransformedBatch, Transformer
from stratum.transforms.coerce import Coercion
from stratum.transforms.staging import STAGE, staged_select

T = TypeVar("T")

MAX_PAUSES = 3
#: Memory in flight between an item's producer and consumer (see ByteBudget).
QUEUE_BYTES = 16 * 1024 * 1024
#: STRATUM_TEXT_LOAD=off turns the pass-through path off (every item converts its values).
TEXT_LOAD_ENV = "STRATUM_TEXT_LOAD"  # circuit-breaker pauses an item sits out before it gives up


class Control(StrEnum):
    START = "start"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"


class Outcome(StrEnum):
    FINISHED = "finished"
    SKIPPED = "skipped"  # nothing to do: finished before, and not incremental
    PAUSED = "paused"  # stopped on request or by the breaker: resumable
    FAILED = "failed"


@dataclass
class ItemResult:
    item: str
    outcome: Outcome
    totals: Totals
    elapsed: float
    message: str | None = None
    reject_file: str | None = None
    stage: StageReport | None = None  # a stage, feature table or dataset: what it did


class ItemFailed(StratumError):
    """The item cannot go on (a bad row under ON ERROR stop, or a terminal error)."""


@dataclass
class ItemRun:
    """Everything one item's run needs; built by the executor."""

    plan: MigrationPlan
    item: PlanItem
    run_id: str
    source: Source
    destination: Destination
    store: StateStore
    bus: EventBus
    policy: RetryPolicy
    rejects: RejectFile
    queue_size: int
    restart: bool = False
    source_table: str | None = None  # the table's name in a database copy (CAST COLUMN t.c)
    keys_after: bool = False  # create the target without its key: a database copy adds it last
    _control_send: MemoryObjectSendStream[Control] = field(init=False)
    _control_recv: MemoryObjectReceiveStream[Control] = field(init=False)
    _stopping: bool = field(default=False, init=False)
    _totals: Totals = field(default_factory=Totals, init=False)
    _checkpoint: Checkpoint | None = field(default=None, init=False)
    _started: float = field(default=0.0, init=False)
    _schema: Schema | None = field(default=None, init=False)
    _state: ItemState = field(default=ItemState.PENDING, init=False)  # each run starts pending
    _superseded: int = field(default=0, init=False)  # upsert rows replaced within their batch
    _text: TextSource | None = field(default=None, init=False)  # the pass-through path's source
    _staged: str | None = field(default=None, init=False)  # the staged transform's SELECT
    _budget: ByteBudget = field(default_factory=lambda: ByteBudget(QUEUE_BYTES), init=False)

    def __post_init__(self) -> None:
        self._control_send, self._control_recv = anyio.create_memory_object_stream[Control](16)
        self.breaker = CircuitBreaker(
            threshold=self.policy.breaker_threshold, cooldown=self.policy.breaker_cooldown
        )
        self.source_breaker = CircuitBreaker.from_policy(self.policy, name="source")

    # --- messages from the executor -----------------------------------------------------

    def send(self, message: Control) -> None:
        """Deliver a control message to the producer (Stop also marks the run as stopping)."""
        if message is Control.STOP:
            self._stopping = True
        # the producer may be done already, or have a full mailbox: a Stop is kept by the flag
        with contextlib.suppress(
            anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError
        ):
            self._control_send.send_nowait(message)

    # --- the run ------------------------------------------------------------------------

    async def run(self) -> ItemResult:
        self._started = time.monotonic()
        try:
            return await self._run_guarded()
        finally:
            self._control_send.close()
            self._control_recv.close()

    async def _run_guarded(self) -> ItemResult:
        try:
            return await self._run()
        except ItemFailed as exc:
            return await self._end(Outcome.FAILED, str(exc))
        except ResumeRefused as exc:
            return await self._end(Outcome.FAILED, str(exc))
        except CircuitOpen as exc:
            return await self._end(Outcome.PAUSED, f"paused by the circuit breaker: {exc}")
        except StratumError as exc:
            self.bus.publish(ErrorOccurred(self.item.name, str(exc), is_transient(exc)))
            return await self._end(Outcome.FAILED, str(exc))

    async def _run(self) -> ItemResult:
        item = self.item
        checkpoint = await self._retry(lambda: self.destination.checkpoint(item.name))
        if self.restart:
            await self._retry(lambda: self.destination.forget(item.name))
            await anyio.to_thread.run_sync(self.store.delete_item, item.name)
            if self.rejects.path.exists():
                self.rejects.path.unlink()
            checkpoint = None
        if checkpoint is not None:
            checkpoint = await self._check_resumable(checkpoint)
            if checkpoint is None:
                return await self._end(Outcome.SKIPPED, self._skip_message())
        await self._retry(self.source.open)  # before `resumable`: a source learns its key on open
        try:
            if checkpoint is not None and checkpoint.batches and not checkpoint.finished:
                checkpoint = await self._reload_if_not_resumable(checkpoint)
            fresh = Checkpoint(item.name, item.hash, self.plan.hash, self.run_id)
            checkpoint = dataclasses.replace(checkpoint or fresh, run_id=self.run_id)
            self._checkpoint = checkpoint
            self._totals = totals_of(checkpoint)
            await self._reject_file(self.rejects.trim, checkpoint.batches)
            transformer = Transformer.build(
                await self.source.schema(),
                remaining_options(self.source, item.options),  # not what the source applied
                table=self.source_table,
            )
            target_schema = self._schema = transformer.schema
            if self.keys_after:
                target_schema = self._schema = dataclasses.replace(target_schema, primary_key=())
            self._checkpoint = await self._retry(
                lambda: self.destination.prepare(
                    item.target, target_schema, item.options.mode, checkpoint
                )
            )
            # an existing target's column types win: rows are coerced to them
            existing = await self._retry(lambda: self.destination.columns(item.target))
            coercion = Coercion.build(target_schema, existing or (), item.target.text)
            if existing:
                self._schema = coercion.schema
            await self._record(ItemState.WORKING)
            total = await self.source.total_rows() if isinstance(self.source, SizedSource) else None
            self._text = self._text_source(transformer, coercion)
            self.bus.publish(
                ItemStarted(
                    item.name,
                    self._checkpoint.cursor,
                    self._totals,
                    total_rows=total,
                    load="text" if self._text is not None else "rows",
                )
            )
            send, receive = anyio.create_memory_object_stream[Queued](self.queue_size)
            self.send(Control.START)
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._produce, send, transformer, coercion)
                    tg.start_soon(self._consume, receive)
            except BaseExceptionGroup as group:
                raise _unwrap(group) from None
        finally:
            await self.source.close()
        if self._stopping:
            return await self._end(Outcome.PAUSED, "stopped on request; run again to resume")
        final = dataclasses.replace(self._current(), finished=True)
        await self._retry(lambda: self.destination.save_checkpoint(final))
        self._checkpoint = final
        return await self._end(Outcome.FINISHED, None)

    def _text_source(self, transformer: Transformer, coercion: Coercion) -> TextSource | None:
        """The source, when this item takes the pass-through path: the source reads every
        value as text, the destination parses it, and nothing is converted in Python. Only for
        plain loads (MODE full or append) whose transform the destination's parsing does
        exactly: no COLUMNS, COMPUTE or WHERE left to do, and CASTs only from text to types
        PostgreSQL reads as the engine would (`transformer.text_casts_only`)."""
        source, destination = self.source, self.destination
        if os.environ.get(TEXT_LOAD_ENV, "").strip().lower() in ("0", "off", "no"):
            return None  # the typed path for every item: to compare the two, or rule one out
        if not isinstance(source, TextSource) or not isinstance(destination, TextDestination):
            return None
        if self.item.options.mode not in (Mode.FULL, Mode.APPEND) or not coercion.is_identity:
            return None
        if source.text_path() is not None:
            return None
        if transformer.passes_text:
            return source
        if isinstance(destination, StagingDestination) and transformer.stages:
            # the transform itself runs in the destination, over the copied text
            self._staged = staged_select(
                transformer.source_schema, transformer, self.item.options, STAGE
            )
            if self._staged is not None:
                return source
        return None

    async def _check_resumable(self, checkpoint: Checkpoint) -> Checkpoint | None:
        """The checkpoint to resume from, None when there is nothing to do, or ResumeRefused."""
        item = self.item
        if checkpoint.item_hash != item.hash:
            raise ResumeRefused(
                item.name,
                f"its definition changed since run {checkpoint.run_id} (item hash "
                f"{checkpoint.item_hash[:12]} -> {item.hash[:12]})",
            )
        if "create" in checkpoint.steps and not await self._retry(
            lambda: self.destination.table_exists(item.target)
        ):
            raise ResumeRefused(
                item.name, f"its target {item.target.text} was dropped behind Stratum's back"
            )
        if checkpoint.rows_written > 0 and item.options.mode is not Mode.UPSERT:
            count = await self._retry(lambda: self.destination.row_count(item.target))
            if count == 0:
                raise ResumeRefused(
                    item.name,
                    f"its target {item.target.text} is empty although run {checkpoint.run_id} "
                    f"committed {checkpoint.rows_written} rows: it was emptied behind Stratum's "
                    "back",
                )
        if checkpoint.finished:
            if item.options.mode is not Mode.INCREMENTAL:
                self._checkpoint = checkpoint
                self._totals = totals_of(checkpoint)
                return None
            return dataclasses.replace(checkpoint, finished=False)
        return checkpoint

    async def _reload_if_not_resumable(self, checkpoint: Checkpoint) -> Checkpoint | None:
        """A source with no key to resume after (a table without a primary or unique key) is
        reloaded whole: in MODE full the target is truncated again; any other mode would load
        rows twice, so the resume is refused."""
        if getattr(self.source, "resumable", True):
            return checkpoint
        if self.item.options.mode is not Mode.FULL:
            raise ResumeRefused(
                self.item.name,
                "its source has no primary or unique key to resume after, and MODE "
                f"{self.item.options.mode.value} cannot reload it whole without loading rows twice"
                " (give it a KEY, or use MODE full)",
            )
        await self._retry(lambda: self.destination.forget(self.item.name))
        await self._reject_file(self.rejects.trim, 0)
        return None  # start over: prepare truncates again

    def _skip_message(self) -> str:
        cp = self._current()
        return (
            f"already finished by run {cp.run_id} ({cp.rows_written} rows written); nothing to "
            f"do (--restart --item {self.item.name} loads it again)"
        )

    # --- producer -----------------------------------------------------------------------

    async def _produce(
        self,
        send: MemoryObjectSendStream[Queued],
        transformer: Transformer,
        coercion: Coercion,
    ) -> None:
        async with send:
            if not await self._await_control(initial=True):
                return
            if self._text is not None:
                await self._produce_text(send, self._text, transformer, coercion)
                return
            size = self._batch_size()
            async for raw in self._batches(lambda after: self.source.read(after, size)):
                if transformer.is_identity and coercion.is_identity:
                    batch = transformer.apply(raw)
                else:
                    batch = await anyio.to_thread.run_sync(_shape, transformer, coercion, raw)
                failpoints.hit("after_read")
                if not await self._await_control():
                    break
                await self._send(send, batch)
                if self._stopping:
                    break

    async def _produce_text(
        self,
        send: MemoryObjectSendStream[Queued],
        source: TextSource,
        transformer: Transformer,
        coercion: Coercion,
    ) -> None:
        """The pass-through path: batches of text, sent as they are read; each carries how
        to read its rows again typed, should the destination refuse one of them."""
        after, size = self._current().cursor, self._batch_size()
        async for raw in self._batches(lambda after: source.read_text(after, size)):
            batch = TransformedBatch(
                raw.rows,
                raw.positions,
                raw.rejected,
                0,
                len(raw.rows) + len(raw.rejected),
                raw.cursor,
                raw.nbytes,
            )

            async def retype(
                after: Cursor = after, raw: RawBatch = raw, read: int = batch.read
            ) -> TransformedBatch:
                rows: list[Row] = []
                positions: list[int] = []
                rejected: list[Rejected] = []
                filtered = 0
                async for again in source.read_again(after, raw):
                    typed = await anyio.to_thread.run_sync(_shape, transformer, coercion, again)
                    rows += typed.rows
                    positions += typed.positions
                    rejected += typed.rejected
                    filtered += typed.filtered
                return TransformedBatch(rows, positions, rejected, filtered, read, raw.cursor)

            failpoints.hit("after_read")
            if not await self._await_control():
                break
            if self._staged is not None:
                if (
                    raw.copy_format is not None
                    and raw.copy_data is not None
                    and transformer.text_safe(raw.rows, staged=True)
                ):
                    copy_staged = (raw.copy_format, raw.copy_data)
                    await self._send(send, TextBatch(batch, retype, copy_staged, self._staged))
                else:  # a batch the file does not hand over as it is: transformed here
                    typed = await retype()
                    typed.rejected[:0] = raw.rejected
                    typed.nbytes = raw.nbytes
                    await self._send(send, typed)
            elif transformer.text_safe(raw.rows):
                copy = (
                    (raw.copy_format, raw.copy_data)
                    if raw.copy_format is not None and raw.copy_data is not None
                    else None
                )
                await self._send(send, TextBatch(batch, retype, copy))
            else:  # a value the destination would read otherwise: this batch goes typed
                typed = await retype()
                typed.rejected[:0] = raw.rejected  # the reader's, as a typed batch has them
                typed.nbytes = raw.nbytes
                await self._send(send, typed)
            after = raw.cursor
            if self._stopping:
                break

    async def _batches(
        self, read: Callable[[Cursor], AsyncIterator[RawBatch]]
    ) -> AsyncIterator[RawBatch]:
        """The source's batches from the checkpoint's cursor on. A read that fails transiently
        (a lost connection) is opened again after the last batch it gave, with the policy's
        waits and through the source's breaker; a source that cannot resume after a key fails
        the item instead, as reading it again would repeat rows already sent."""
        after = self._current().cursor
        reading: AsyncIterator[RawBatch] | None = None

        async def next_batch() -> RawBatch | None:
            nonlocal reading
            if reading is None:
                reading = read(after)
            try:
                return await anext(reading)
            except StopAsyncIteration:
                return None
            except BaseException:
                reading = None
                raise

        resumable = getattr(self.source, "resumable", True)
        while True:
            raw = await (
                self._retry(next_batch, self.source_breaker) if resumable else next_batch()
            )
            if raw is None:
                return
            yield raw
            after = raw.cursor

    async def _send(self, send: MemoryObjectSendStream[Queued], batch: Queued) -> None:
        await self._budget.acquire(_nbytes(batch))
        await send.send(batch)

    async def _await_control(self, initial: bool = False) -> bool:
        """Apply pending control messages; False when the producer must stop. Before the first
        batch it waits for Start; while paused it waits for Resume or Stop."""
        waiting = initial
        while True:
            if self._stopping:
                return False
            try:
                message = (
                    await self._control_recv.receive()
                    if waiting
                    else self._control_recv.receive_nowait()
                )
            except anyio.WouldBlock:
                return True
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return not self._stopping
            if message is Control.STOP:
                return False
            if message in (Control.START, Control.RESUME):
                if waiting:
                    await self._record(ItemState.WORKING)
                waiting = False
            elif message is Control.PAUSE:
                waiting = True
                await self._record(ItemState.PAUSED)

    # --- consumer -----------------------------------------------------------------------

    async def _consume(self, receive: MemoryObjectReceiveStream[Queued]) -> None:
        async with receive:
            async for batch in receive:
                if self._stopping:
                    failpoints.hit("during_drain")
                if isinstance(batch, TextBatch) and batch.select is not None:
                    await self._commit_staged(batch)
                elif isinstance(batch, TextBatch):
                    await self._commit(batch.batch, batch.retype, copy=batch.copy)
                else:
                    await self._commit(batch)
                await self._budget.release(_nbytes(batch))
            await self._record(ItemState.IDLE)

    async def _commit(
        self,
        batch: TransformedBatch,
        retype: Callable[[], Awaitable[TransformedBatch]] | None = None,
        *,
        copy: tuple[CopyFormat, str | bytes] | None = None,
    ) -> None:
        """Write `batch` and its checkpoint in one transaction. With `retype` the batch holds
        text for the destination to parse (the pass-through path); when it refuses a value, the
        rows are read again typed (`retype`), transformed, and loaded as any batch is."""
        item, previous = self.item, self._current()
        seq = previous.batches + 1
        on_error = item.options.on_error or OnError.STOP
        rejected = sorted(batch.rejected, key=lambda r: r.position)  # reader's and transforms'
        if rejected and on_error is OnError.STOP:
            raise ItemFailed(_stop_message(item.name, rejected[0]))
        rows, positions = self._last_per_key(list(batch.rows), list(batch.positions))

        superseded, self._superseded = self._superseded, 0

        def checkpoint_for(written: int, rejects: int) -> Checkpoint:
            written += superseded
            return dataclasses.replace(
                previous,
                cursor=batch.cursor,
                batches=seq,
                rows_read=previous.rows_read + batch.read,
                rows_written=previous.rows_written + written,
                rows_rejected=previous.rows_rejected + rejects,
                rows_filtered=previous.rows_filtered + batch.filtered,
            )

        if rejected and on_error is OnError.REJECT:  # on disk before the commit that counts them
            await self._reject_file(self.rejects.append, item.name, self.run_id, seq, rejected)
        try:
            await self._write(
                rows,
                checkpoint_for(len(rows), len(rejected)),
                commit=True,
                text=bool(retype),
                copy=copy,
            )
        except RowError:
            if retype is not None:
                typed = await retype()
                more = sorted(typed.rejected, key=lambda r: r.position)  # the transform's
                if more and on_error is OnError.STOP:
                    raise ItemFailed(_stop_message(item.name, more[0])) from None
                if more and on_error is OnError.REJECT:
                    # this batch's lines again, in the file's order (nothing of it committed)
                    merged = sorted([*rejected, *more], key=lambda r: r.position)
                    await self._reject_file(self.rejects.trim, previous.batches)
                    await self._reject_file(
                        self.rejects.append, item.name, self.run_id, seq, merged
                    )
                rejected += more
                rows, positions = list(typed.rows), list(typed.positions)
            rows, positions, refused = await self._isolate(rows, positions, checkpoint_for)
            if refused and on_error is OnError.STOP:
                raise ItemFailed(_stop_message(item.name, refused[0])) from None
            if refused and on_error is OnError.REJECT:
                await self._reject_file(self.rejects.append, item.name, self.run_id, seq, refused)
            rejected += refused
            await self._write(rows, checkpoint_for(len(rows), len(rejected)), commit=True)
        self._checkpoint = checkpoint_for(len(rows), len(rejected))
        await self._committed(previous, batch, len(rejected))

    async def _committed(
        self, previous: Checkpoint, batch: TransformedBatch, rejected: int
    ) -> None:
        """After a batch's commit: the totals, the state record, the event."""
        checkpoint = self._current()
        failpoints.hit("after_commit")
        self._totals = dataclasses.replace(
            totals_of(checkpoint),
            nbytes=self._totals.nbytes + batch.nbytes,
            retries=self._totals.retries,
            failures=self._totals.failures,
        )
        await self._record(self._state)  # working, or paused while queued batches drain
        failpoints.hit("after_state")
        self.bus.publish(
            BatchProcessed(
                self.item.name,
                checkpoint.batches,
                batch.read,
                checkpoint.rows_written - previous.rows_written,
                rejected,
                checkpoint.rows_filtered - previous.rows_filtered,
                batch.nbytes,
                batch.cursor,
                self._totals,
            )
        )

    async def _commit_staged(self, staged: TextBatch) -> None:
        """A batch whose whole transform the destination runs (`transforms/staging.py`): its
        text copied into a temporary table, the rows made by one INSERT ... SELECT, and the
        checkpoint counting what that INSERT wrote (the rest WHERE dropped), in one
        transaction. A batch the server refuses goes the typed way, row by row."""
        batch, previous = staged.batch, self._current()
        destination = self.destination
        assert isinstance(destination, StagingDestination)
        assert staged.copy is not None
        assert staged.select is not None
        assert not batch.rejected  # a file hands over its text only when nothing was rejected
        names = (await self.source.schema()).names  # the stage's columns: the file's

        def checkpoint_of(written: int) -> Checkpoint:
            return dataclasses.replace(
                previous,
                cursor=batch.cursor,
                batches=previous.batches + 1,
                rows_read=previous.rows_read + batch.read,
                rows_written=previous.rows_written + written,
                rows_filtered=previous.rows_filtered + len(batch.rows) - written,
            )

        copy, select, target, schema = staged.copy, staged.select, self.item.target, self._schema
        assert schema is not None
        try:
            written = await self._retry(
                self._at_most_once(
                    lambda: destination.write_staged(
                        target, schema, names, copy, select, checkpoint_of
                    ),
                    previous.batches + 1,
                    lambda landed: landed.rows_written - previous.rows_written,
                )
            )
        except RowError:
            typed = await staged.retype()
            typed.nbytes = batch.nbytes
            await self._commit(typed)
            return
        self._checkpoint = checkpoint_of(written)
        await self._committed(previous, batch, 0)

    def _last_per_key(self, rows: list[Row], positions: list[int]) -> tuple[list[Row], list[int]]:
        """For an upsert, the last row of each key in the batch: applying the rows one by one
        would leave exactly that one, and a database refuses to update a row twice in one
        statement. The earlier rows count as written: they were applied, then replaced."""
        key, schema = self.item.options.key, self._schema
        if (
            not key
            or schema is None
            or self.item.options.mode not in (Mode.UPSERT, Mode.INCREMENTAL)
        ):
            return rows, positions
        names = schema.names
        indexes = [names.index(column) for column in key if column in names]
        if len(indexes) != len(key):
            return rows, positions
        last: dict[tuple[object, ...], int] = {}
        for i, row in enumerate(rows):
            last[tuple(row[j] for j in indexes)] = i
        if len(last) == len(rows):
            return rows, positions
        keep = sorted(last.values())
        self._superseded = len(rows) - len(keep)
        return [rows[i] for i in keep], [positions[i] for i in keep]

    async def _write(
        self,
        rows: Sequence[Row],
        checkpoint: Checkpoint,
        commit: bool,
        text: bool = False,
        copy: tuple[CopyFormat, str | bytes] | None = None,
    ) -> None:
        item = self.item
        write: Callable[[], Awaitable[None]]
        if text:
            destination = self.destination
            assert isinstance(destination, TextDestination)
            schema = self._schema_for_write()

            def write() -> Awaitable[None]:
                return destination.write_text(item.target, schema, rows, checkpoint, copy=copy)

        else:

            def write() -> Awaitable[None]:
                return self.destination.write(
                    item.target,
                    self._schema_for_write(),
                    rows,
                    checkpoint,
                    item.options.mode,
                    item.options.key,
                    commit=commit,
                )

        if commit:
            write = self._at_most_once(write, checkpoint.batches, lambda landed: None)
        await self._retry(write)

    def _at_most_once(
        self,
        write: Callable[[], Awaitable[T]],
        batches: int,
        committed: Callable[[Checkpoint], T],
    ) -> Callable[[], Awaitable[T]]:
        """`write`, which commits the item's batch number `batches`, made safe to retry: a
        connection lost at COMMIT leaves unknown whether the server committed, so before each
        retry the destination's checkpoint is read, and a batch it already counts is not written
        again (`committed` gives the result from that checkpoint)."""
        tried = False

        async def attempt() -> T:
            nonlocal tried
            if tried:
                landed = await self.destination.checkpoint(self.item.name)
                if landed is not None and landed.batches >= batches:
                    return committed(landed)
            tried = True
            return await write()

        return attempt

    async def _isolate(
        self,
        rows: list[Row],
        positions: list[int],
        checkpoint_for: Callable[[int, int], Checkpoint],
    ) -> tuple[list[Row], list[int], list[Rejected]]:
        """Split the batch until every row a constraint refuses is found: rows are accepted
        greedily, each addition proven by a probe transaction that is rolled back, so the
        accepted set is known to commit as a whole."""
        accepted: list[tuple[Row, int]] = []
        refused: list[Rejected] = []

        async def probe(candidate: list[tuple[Row, int]]) -> str | None:
            try:
                await self._write(
                    [row for row, _ in candidate], checkpoint_for(len(candidate), 0), commit=False
                )
            except RowError as exc:
                return str(exc)
            return None

        async def add(chunk: list[tuple[Row, int]]) -> None:
            nonlocal accepted
            reason = await probe(accepted + chunk)
            if reason is None:
                accepted = accepted + chunk
            elif len(chunk) == 1:
                row, position = chunk[0]
                refused.append(Rejected(position, reason, row))
            else:
                middle = len(chunk) // 2
                await add(chunk[:middle])
                await add(chunk[middle:])

        await add(list(zip(rows, positions, strict=True)))
        return [r for r, _ in accepted], [p for _, p in accepted], refused

    # --- helpers ------------------------------------------------------------------------

    def _schema_for_write(self) -> Schema:
        assert self._schema is not None
        return self._schema

    def _batch_size(self) -> int:
        return self.item.options.batch_size or 10_000

    def _current(self) -> Checkpoint:
        assert self._checkpoint is not None
        return self._checkpoint

    async def _retry(
        self, fn: Callable[[], Awaitable[T]], breaker: CircuitBreaker | None = None
    ) -> T:
        """Transient failures retried with backoff; CircuitOpen pauses the item, up to
        MAX_PAUSES times, then the item gives up. Once a probe succeeds, the item is back in
        the state it was in before the pause. The breaker is the destination's unless another
        is given."""
        pauses = 0
        before = self._state
        while True:
            try:
                result = await call_with_retry(
                    fn,
                    policy=self.policy,
                    breaker=breaker or self.breaker,
                    on_retry=self._on_retry,
                )
            except CircuitOpen:
                pauses += 1
                if pauses > MAX_PAUSES or self._stopping:
                    raise
                await self._record(ItemState.PAUSED, "circuit open: waiting before a probe")
                await anyio.sleep(self.policy.breaker_cooldown)
                continue
            if pauses and self._state is ItemState.PAUSED:
                await self._record(before)
            return result

    async def _reject_file(self, work: Callable[..., object], *args: object) -> None:
        """`work(*args)` on the reject file, in a thread. A file that cannot be written (a full
        disk, no permission) fails the item, naming the file, before the batch whose lines it
        was to hold is committed."""
        try:
            await anyio.to_thread.run_sync(work, *args)
        except OSError as exc:
            committed = self._checkpoint.batches if self._checkpoint is not None else 0
            raise ItemFailed(
                f"item '{self.item.name}': cannot write its reject file {self.rejects.path} "
                f"({exc.strerror or exc}); nothing was committed past batch {committed}, run "
                "again once the file can be written"
            ) from exc

    def _on_retry(self, attempt: int, error: BaseException, delay: float) -> None:
        self._totals = dataclasses.replace(
            self._totals, retries=self._totals.retries + 1, failures=self._totals.failures + 1
        )
        self.bus.publish(ErrorOccurred(self.item.name, str(error), True, attempt))

    async def _record(self, state: ItemState, error: str | None = None) -> None:
        check_transition(self._state, state)  # an illegal move is an engine bug: fail loudly
        self._state = state
        cp = self._checkpoint
        now = time.time()
        elapsed = max(time.monotonic() - self._started, 1e-9)
        previous = await anyio.to_thread.run_sync(self.store.get_item, self.item.name)
        record = ItemRecord(
            name=self.item.name,
            hash=self.item.hash,
            state=state,
            cursor=cp.cursor if cp else None,
            batches=cp.batches if cp else 0,
            rows_read=cp.rows_read if cp else 0,
            rows_written=cp.rows_written if cp else 0,
            rows_rejected=cp.rows_rejected if cp else 0,
            rows_filtered=cp.rows_filtered if cp else 0,
            bytes=self._totals.nbytes,
            retries=self._totals.retries,
            failures=self._totals.failures,
            steps=cp.steps if cp else (),
            run_id=self.run_id,
            started_at=previous.started_at if previous and previous.run_id == self.run_id else now,
            updated_at=now,
            finished_at=now if state is ItemState.FINISHED else None,
            last_error=error,
            rows_per_second=self._totals.rows_written / elapsed if cp else 0.0,
        )
        await anyio.to_thread.run_sync(self.store.put_item, record)

    async def _end(self, outcome: Outcome, message: str | None) -> ItemResult:
        state = {
            Outcome.FINISHED: ItemState.FINISHED,
            Outcome.SKIPPED: ItemState.FINISHED,
            Outcome.PAUSED: ItemState.PAUSED,
            Outcome.FAILED: ItemState.FAILED,
        }[outcome]
        error = message if outcome is Outcome.FAILED else None
        await self._record(state, error)
        return ItemResult(
            self.item.name,
            outcome,
            self._totals,
            time.monotonic() - self._started,
            message,
            str(self.rejects.path) if self.rejects.path.exists() else None,
        )


class ByteBudget:
    """Memory held by batches between the producer and the consumer: the producer waits
    while a new batch would go over the limit (one batch always goes, however big), so memory
    is bounded by bytes as well as by the queue's slots: 64 slots of 10,000 rows would
    otherwise hold a large part of a table."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._changed = anyio.Condition()

    async def acquire(self, nbytes: int) -> None:
        async with self._changed:
            while self.used and self.used + nbytes > self.limit:
                await self._changed.wait()
            self.used += nbytes

    async def release(self, nbytes: int) -> None:
        async with self._changed:
            self.used -= nbytes
            self._changed.notify_all()


#: What one value costs in memory beyond its bytes (a Python object and its slot in a tuple).
_VALUE_OVERHEAD = 64


def _nbytes(batch: Queued) -> int:
    """A batch's weight in memory: its bytes, and the objects that hold them."""
    rows = batch.batch.rows if isinstance(batch, TextBatch) else batch.rows
    nbytes = batch.batch.nbytes if isinstance(batch, TextBatch) else batch.nbytes
    return nbytes + (_VALUE_OVERHEAD * len(rows) * len(rows[0]) if rows else 0)


@dataclass(frozen=True, slots=True)
class TextBatch:
    """A batch of text for the destination to parse, and how to read its rows again typed."""

    batch: TransformedBatch
    retype: Callable[[], Awaitable[TransformedBatch]]
    copy: tuple[CopyFormat, str | bytes] | None = None  # the source's encoding (RawBatch)
    select: str | None = None  # staged: the SELECT that makes the rows from the copied text


Queued = TransformedBatch | TextBatch


def _shape(transformer: Transformer, coercion: Coercion, raw: RawBatch) -> TransformedBatch:
    """A source batch as the destination takes it: transformed, then coerced (in a thread)."""
    return coercion.apply(transformer.apply(raw))


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The actors' error, out of the task group's wrapping, when all of them are ours; any
    other exception (a cancellation, an interrupt) keeps the group as it is."""
    leaves: list[BaseException] = []

    def collect(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                collect(inner)
        else:
            leaves.append(error)

    collect(group)
    # a producer blocked in send when the consumer failed (and closed the stream) raises
    # BrokenResourceError: the consumer's error is the cause, that one only its echo
    causes = [leaf for leaf in leaves if not isinstance(leaf, anyio.BrokenResourceError)]
    if causes and all(isinstance(leaf, StratumError) for leaf in causes):
        return causes[0]
    return group


def totals_of(checkpoint: Checkpoint) -> Totals:
    """An item's totals as its checkpoint counts them (across every run that resumed it)."""
    return Totals(
        rows_read=checkpoint.rows_read,
        rows_written=checkpoint.rows_written,
        rows_rejected=checkpoint.rows_rejected,
        rows_filtered=checkpoint.rows_filtered,
        batches=checkpoint.batches,
    )


def _stop_message(item: str, rejected: Rejected) -> str:
    return (
        f"item '{item}' stops at the first bad row (ON ERROR stop): position "
        f"{rejected.position}: {rejected.reason}; nothing of its batch was committed "
        "(ON ERROR reject keeps loading and writes bad rows to a reject file)"
    )


__all__ = ["Control", "ItemFailed", "ItemResult", "ItemRun", "Outcome", "SourceError"]
