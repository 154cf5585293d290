"""In-memory connectors and fault-injecting wrappers, shipped for the engine's tests.

Like httpx's `MockTransport` and dlt's `dummy` destination, these let a test run the real engine
against a source and a destination it fully controls:

* `MemorySource`: rows held in a list; the cursor is the number of entries consumed.
* `MemoryDestination`: tables as lists of rows and a checkpoint table, with real transactional
  semantics: a write's rows and its checkpoint become visible together or not at all, a probe
  (`commit=False`) changes nothing, `prepare` does each one-time step once.
* `FaultySource`, `FaultyDestination`: wrappers that inject faults on a schedule (`FaultPlan`):
  an error on the Nth call of a method, "fail k times then succeed", random failures from a seed,
  delays, an error after the call took effect (a lost acknowledgement), and a hook run inside a
  `MemoryDestination` transaction between the rows and the checkpoint.
* `SimulatedCrash`: a `BaseException` (so nothing in the engine catches it) that stands for a
  SIGKILL: what survives it is exactly what was committed.

Method names a `FaultPlan` schedules: a source's "open", "close", "schema", "read" (counted when
iteration starts) and "batch" (each batch a read yields, counted over all reads, once the inner
source has produced it: a fault there loses the batch in transit); a destination's
"open", "close", "checkpoint", "prepare", "write", "save_checkpoint", "forget", "table_exists",
"row_count". Calls are numbered from 1 per method, failed calls included.
"""

from __future__ import annotations

import inspect
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeAlias

import anyio
import anyio.lowlevel

from smql import Mode
from stratum.connectors.base import (
    Capabilities,
    Checkpoint,
    Column,
    Cursor,
    Destination,
    RawBatch,
    Rejected,
    Row,
    Schema,
    Source,
)
from stratum.errors import ConnectionLost, DestinationError, RowError, SourceError
from stratum.plan.model import TableRef

__all__ = [
    "MEMORY_CAPABILITIES",
    "CommitWindow",
    "ErrorSpec",
    "FaultPlan",
    "FaultyDestination",
    "FaultySource",
    "InjectedFault",
    "InspectableDestination",
    "MemoryDestination",
    "MemorySource",
    "SimulatedCrash",
    "WindowHook",
]


class SimulatedCrash(BaseException):
    """The process dies here (a SIGKILL). Not an `Exception`: the engine must not catch it."""


# --------------------------------------------------------------------------------------------
# Source


class MemorySource:
    """A source over rows held in memory, in order.

    An entry may be a `Rejected` instead of a row: the reader "could not read" it, and it arrives
    in the batch's `rejected` list (like a malformed CSV line). The cursor is the number of
    entries consumed, rows and rejected alike, and `batch_size` counts entries. Positions default
    to the 1-based ordinal of each entry; a `Rejected` keeps its own. `batch_delay` seconds are
    slept before each batch (a slow producer).
    """

    def __init__(
        self,
        schema: Schema,
        rows: Iterable[Row | Rejected] = (),
        *,
        positions: Sequence[int] | None = None,
        batch_delay: float = 0.0,
        name: str = "memory",
    ) -> None:
        self._schema = schema
        self._entries: list[Row | Rejected] = []
        self._positions: list[int] = []
        self.batch_delay = batch_delay
        self.name = name
        self.is_open = False
        self.open_count = 0
        self.close_count = 0
        self.batches_read = 0  # batches yielded, over all reads
        self.rows_read = 0  # rows yielded (rejected entries not included)
        self.append(rows, positions=positions)

    def append(
        self, rows: Iterable[Row | Rejected], *, positions: Sequence[int] | None = None
    ) -> None:
        """Add entries at the end (new rows for an incremental run)."""
        new = [row if isinstance(row, Rejected) else tuple(row) for row in rows]
        if positions is None:
            start = len(self._entries) + 1
            new_positions = list(range(start, start + len(new)))
        else:
            new_positions = list(positions)
            if len(new_positions) != len(new):
                raise ValueError(f"{len(new_positions)} positions for {len(new)} rows")
        for entry in new:
            if not isinstance(entry, Rejected) and len(entry) != len(self._schema.columns):
                raise ValueError(
                    f"row {entry!r} has {len(entry)} values for {len(self._schema.columns)} columns"
                )
        self._entries.extend(new)
        self._positions.extend(new_positions)

    def __len__(self) -> int:
        return len(self._entries)

    async def open(self) -> None:
        await anyio.lowlevel.checkpoint()
        self.is_open = True
        self.open_count += 1

    async def close(self) -> None:
        await anyio.lowlevel.checkpoint()
        self.is_open = False
        self.close_count += 1

    async def schema(self) -> Schema:
        await anyio.lowlevel.checkpoint()
        self._require_open()
        return self._schema

    async def read(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._require_open()
        start = self._start(after)
        while start < len(self._entries):
            if self.batch_delay > 0:
                await anyio.sleep(self.batch_delay)
            else:
                await anyio.lowlevel.checkpoint()
            end = min(start + batch_size, len(self._entries))
            batch = RawBatch(rows=[], positions=[], cursor=end)
            for entry, position in zip(
                self._entries[start:end], self._positions[start:end], strict=True
            ):
                if isinstance(entry, Rejected):
                    batch.rejected.append(entry)
                else:
                    batch.rows.append(entry)
                    batch.positions.append(position)
                    batch.nbytes += len(repr(entry))
            self.batches_read += 1
            self.rows_read += len(batch.rows)
            yield batch
            start = end

    def _start(self, after: Cursor) -> int:
        if after is None:
            return 0
        if isinstance(after, bool) or not isinstance(after, int):
            raise SourceError(f"{self.name}: cursor {after!r} is not a row count")
        if not 0 <= after <= len(self._entries):
            raise SourceError(
                f"{self.name}: cursor {after} is past the {len(self._entries)} rows of the source"
            )
        return after

    def _require_open(self) -> None:
        if not self.is_open:
            raise SourceError(f"{self.name}: the source is not open")


# --------------------------------------------------------------------------------------------
# Destination

#: What an in-memory destination can do: everything transactional, like PostgreSQL.
MEMORY_CAPABILITIES = Capabilities(
    transactional=True,
    copy=False,
    transactional_ddl=True,
    upsert="on_conflict",
    max_identifier_length=63,
    dialect="postgres",
)

#: Run inside a transaction, between its data (rows, DDL) and its checkpoint, with the method
#: name ("write" or "prepare") and the checkpoint about to be written. Raising rolls it all back.
CommitWindow: TypeAlias = Callable[[str, Checkpoint], Awaitable[None]]


class InspectableDestination(Destination, Protocol):
    """A destination the engine can also ask about its tables (resume checks)."""

    async def table_exists(self, target: TableRef) -> bool: ...

    async def row_count(self, target: TableRef) -> int: ...


@dataclass(slots=True)
class _Table:
    schema: Schema
    rows: list[Row]


def _name(target: TableRef | str) -> str:
    if isinstance(target, str):
        return target
    if target.table is None:
        raise DestinationError(f"{target.text}: a table is needed, not a whole database")
    return target.text


class MemoryDestination:
    """A transactional destination in memory; see the module docstring.

    Constraints enforced on write, each raising `RowError` naming the first offending row of
    the batch (by its 0-based index): a row with the wrong number of values, `reject_when(row)`
    returning a reason, NULL in a column with `nullable=False`, a duplicate primary key (when the
    table's schema has one), the same key twice in one upsert batch. A batch that breaks one
    writes nothing. Columns are matched by name, so a write may name them in another order or
    leave out nullable ones.

    Modes: full and append insert; upsert, and incremental with a key, replace the row with the
    same key or insert. Inspection for tests: `rows(target)`, `tables`, `checkpoints`,
    `history` (every committed checkpoint, in order), `ddl` (every CREATE and TRUNCATE done),
    `commits`, `probes`; `create_table`, `drop_table` and `truncate_table` change tables behind
    the engine's back.
    """

    def __init__(
        self,
        *,
        reject_when: Callable[[Row], str | None] | None = None,
        capabilities: Capabilities = MEMORY_CAPABILITIES,
        commit_window: CommitWindow | None = None,
        name: str = "memory",
    ) -> None:
        self.capabilities = capabilities
        self.reject_when = reject_when
        self.commit_window = commit_window
        self.name = name
        self.is_open = False
        self.open_count = 0
        self.close_count = 0
        self.commits = 0  # committed transactions (write, prepare, save_checkpoint)
        self.probes = 0  # writes with commit=False
        self.ddl: list[tuple[str, str]] = []  # ("create" | "truncate", table name), in order
        self.history: list[Checkpoint] = []
        self._tables: dict[str, _Table] = {}
        self._checkpoints: dict[str, Checkpoint] = {}

    # -- inspection and set-up for tests ------------------------------------------------------

    def rows(self, target: TableRef | str) -> list[Row]:
        """A copy of the table's rows, in insertion order."""
        return list(self._table(target).rows)

    @property
    def tables(self) -> dict[str, list[Row]]:
        """A copy of every table: name (`TableRef.text`) -> rows."""
        return {name: list(table.rows) for name, table in self._tables.items()}

    @property
    def checkpoints(self) -> dict[str, Checkpoint]:
        """A copy of the checkpoint table: item -> checkpoint."""
        return dict(self._checkpoints)

    def schema_of(self, target: TableRef | str) -> Schema:
        return self._table(target).schema

    def create_table(
        self, target: TableRef | str, schema: Schema, rows: Iterable[Row] = ()
    ) -> None:
        """Create (or replace) a table directly, as if it existed before the run."""
        self._tables[_name(target)] = _Table(schema, [tuple(row) for row in rows])

    def drop_table(self, target: TableRef | str) -> None:
        del self._tables[_name(target)]

    def truncate_table(self, target: TableRef | str) -> None:
        self._table(target).rows.clear()

    # -- the Destination protocol -------------------------------------------------------------

    async def open(self) -> None:
        """Open a session. Opening again without closing is allowed: a crashed run never
        closed, and the next run opens the same destination."""
        await anyio.lowlevel.checkpoint()
        self.is_open = True
        self.open_count += 1

    async def close(self) -> None:
        await anyio.lowlevel.checkpoint()
        self.is_open = False
        self.close_count += 1

    async def checkpoint(self, item: str) -> Checkpoint | None:
        await self._enter()
        return self._checkpoints.get(item)

    async def table_exists(self, target: TableRef) -> bool:
        await self._enter()
        return _name(target) in self._tables

    async def row_count(self, target: TableRef) -> int:
        await self._enter()
        return len(self._table(target).rows)

    async def columns(self, target: TableRef) -> tuple[Column, ...] | None:
        await self._enter()
        table = self._tables.get(_name(target))
        return table.schema.columns if table is not None else None

    async def prepare(
        self, target: TableRef, schema: Schema, mode: Mode, checkpoint: Checkpoint
    ) -> Checkpoint:
        await self._enter()
        name = _name(target)
        steps = list(checkpoint.steps)
        todo: list[str] = []
        if "create" not in steps:
            if name not in self._tables:
                todo.append("create")
            steps.append("create")
        if mode is Mode.FULL and "truncate" not in steps:
            todo.append("truncate")
            steps.append("truncate")
        done = replace(checkpoint, steps=tuple(steps))
        await self._window("prepare", done)
        # the commit: nothing below awaits
        for step in todo:
            if step == "create":
                self._tables.setdefault(name, _Table(schema, []))
            else:
                self._table(name).rows.clear()
            self.ddl.append((step, name))
        self._commit(done)
        return done

    async def write(  # noqa: PLR0917 - the Destination protocol's signature
        self,
        target: TableRef,
        schema: Schema,
        rows: Sequence[Row],
        checkpoint: Checkpoint,
        mode: Mode,
        key: tuple[str, ...],
        *,
        commit: bool = True,
    ) -> None:
        await self._enter()
        name = _name(target)
        table = self._table(name)
        incoming = self._conformed(name, table.schema, schema, rows)
        upsert_key = self._upsert_key(name, table.schema, mode, key)
        plain = upsert_key is None and not table.schema.primary_key  # nothing to check
        if not plain:
            self._merged(name, table, incoming, upsert_key)  # raises what the commit would
        if not commit:
            self.probes += 1
            return
        await self._window("write", checkpoint)
        # the commit: nothing below awaits. Merged again, against the table as it is now
        # (another write may have committed while the window hook ran).
        table = self._table(name)
        if plain:
            table.rows.extend(incoming)
        else:
            table.rows = self._merged(name, table, incoming, upsert_key)
        self._commit(checkpoint)

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._enter()
        self._commit(checkpoint)

    async def forget(self, item: str) -> None:
        await self._enter()
        self._checkpoints.pop(item, None)

    # -- internals ----------------------------------------------------------------------------

    async def _enter(self) -> None:
        await anyio.lowlevel.checkpoint()
        if not self.is_open:
            raise DestinationError(f"{self.name}: the destination is not open")

    async def _window(self, method: str, checkpoint: Checkpoint) -> None:
        if self.commit_window is not None:
            await self.commit_window(method, checkpoint)

    def _commit(self, checkpoint: Checkpoint) -> None:
        self._checkpoints[checkpoint.item] = checkpoint
        self.history.append(checkpoint)
        self.commits += 1

    def _table(self, target: TableRef | str) -> _Table:
        name = _name(target)
        table = self._tables.get(name)
        if table is None:
            raise DestinationError(f"{self.name}: table {name} does not exist")
        return table

    def _conformed(
        self, name: str, columns: Schema, schema: Schema, rows: Sequence[Row]
    ) -> list[Row]:
        """The rows in the table's column order, after the row-level constraints."""
        given = schema.names
        unknown = [c for c in given if c not in columns.names]
        if unknown:
            raise DestinationError(f"{name}: no column {', '.join(map(repr, unknown))}")
        where = {column: i for i, column in enumerate(given)}
        out: list[Row] = []
        for i, row in enumerate(rows):
            if len(row) != len(given):
                raise RowError(f"{name}: batch row {i}: {len(row)} values for {len(given)} columns")
            if self.reject_when is not None:
                reason = self.reject_when(row)
                if reason is not None:
                    raise RowError(f"{name}: batch row {i}: {reason}")
            conformed = tuple(
                row[where[c.name]] if c.name in where else None for c in columns.columns
            )
            for column, value in zip(columns.columns, conformed, strict=True):
                if value is None and not column.nullable:
                    raise RowError(
                        f"{name}: batch row {i}: null value in column {column.name!r} violates "
                        "a not-null constraint"
                    )
            out.append(conformed)
        return out

    def _upsert_key(
        self, name: str, columns: Schema, mode: Mode, key: tuple[str, ...]
    ) -> tuple[int, ...] | None:
        if mode is Mode.UPSERT and not key:
            raise DestinationError(f"{name}: MODE upsert needs a key")
        if mode is Mode.UPSERT or (mode is Mode.INCREMENTAL and key):
            return self._indexes(name, columns, key)
        return None

    @staticmethod
    def _indexes(name: str, columns: Schema, key: Sequence[str]) -> tuple[int, ...]:
        names = columns.names
        missing = [c for c in key if c not in names]
        if missing:
            raise DestinationError(f"{name}: no key column {', '.join(map(repr, missing))}")
        return tuple(names.index(c) for c in key)

    def _merged(
        self, name: str, table: _Table, incoming: list[Row], upsert_key: tuple[int, ...] | None
    ) -> list[Row]:
        """The table's rows after the batch: raises RowError where a constraint would."""
        if upsert_key is None:
            merged = table.rows + incoming
        else:
            merged = list(table.rows)
            where = {_key_of(row, upsert_key): i for i, row in enumerate(merged)}
            seen: set[tuple[object, ...]] = set()
            for i, row in enumerate(incoming):
                k = _key_of(row, upsert_key)
                if k in seen:
                    raise RowError(f"{name}: batch row {i}: key {k!r} appears twice in the batch")
                seen.add(k)
                if k in where:
                    merged[where[k]] = row
                else:
                    where[k] = len(merged)
                    merged.append(row)
        if table.schema.primary_key:
            self._check_primary_key(name, table, merged, incoming)
        return merged

    def _check_primary_key(
        self, name: str, table: _Table, merged: list[Row], incoming: list[Row]
    ) -> None:
        pk = self._indexes(name, table.schema, table.schema.primary_key)
        counts = Counter(_key_of(row, pk) for row in merged)
        for i, row in enumerate(incoming):
            k = _key_of(row, pk)
            if counts[k] > 1:
                raise RowError(
                    f"{name}: batch row {i}: duplicate key {k!r} violates the primary key"
                )


def _key_of(row: Row, indexes: tuple[int, ...]) -> tuple[object, ...]:
    return tuple(row[i] for i in indexes)


# --------------------------------------------------------------------------------------------
# Fault injection

#: An error to inject: an instance (raised as is), an exception class (instantiated with a
#: message naming the method and call) or a factory.
ErrorSpec: TypeAlias = BaseException | type[BaseException] | Callable[[], BaseException]

#: A hook run in a destination's commit window, given the checkpoint about to be written.
WindowHook: TypeAlias = Callable[[Checkpoint], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class InjectedFault:
    """A fault that was injected: which call of which method, and what."""

    method: str  # "write", "batch", ... or "write:window" for a commit-window hook
    call: int
    what: str  # "error ConnectionLost", "delay 0.05 s", "hook"


@dataclass(frozen=True, slots=True)
class _Rule:
    method: str
    first: int
    times: int | None  # None: every call from `first` on
    error: ErrorSpec | None = None
    after: bool = False  # raise after the inner call took effect
    probability: float | None = None
    delay: float = 0.0
    hook: WindowHook | None = None

    def covers(self, call: int) -> bool:
        return call >= self.first and (self.times is None or call < self.first + self.times)


class FaultPlan:
    """A deterministic schedule of faults, built by chaining:

        FaultPlan(seed=7).fail("write", times=2).delay("write", 0.01).fail("batch", on_call=3)

    Rules apply in the order they were added; a call gets every matching delay, then the first
    matching error. Random failures (`fail_randomly`) draw from `random.Random(seed)` in call
    order, so the same calls give the same faults. `calls(method)` and `injected` tell a test
    what happened.
    """

    def __init__(
        self, *, seed: int = 0, sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    ) -> None:
        self._rules: list[_Rule] = []
        self._calls: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._sleep = sleep
        self.injected: list[InjectedFault] = []

    def fail(
        self,
        method: str,
        error: ErrorSpec | None = None,
        *,
        on_call: int = 1,
        times: int | None = 1,
        after: bool = False,
    ) -> FaultPlan:
        """Raise `error` (default `ConnectionLost`) on calls `on_call` .. `on_call + times - 1`
        of `method` (`times=None`: every call from `on_call` on). `fail(m, times=k)` fails k
        times, then succeeds. With `after=True` the call takes effect first and the error is
        raised when it returns: a connection lost at COMMIT, after the server committed."""
        _check_call(on_call, times)
        self._rules.append(
            _Rule(method, on_call, times, error=_error_or_default(error), after=after)
        )
        return self

    def fail_randomly(
        self,
        method: str,
        probability: float,
        error: ErrorSpec | None = None,
        *,
        after: bool = False,
    ) -> FaultPlan:
        """Raise `error` (default `ConnectionLost`) on each call of `method` with `probability`,
        drawn from the plan's seeded generator."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be between 0 and 1, got {probability}")
        self._rules.append(
            _Rule(
                method,
                1,
                None,
                error=_error_or_default(error),
                after=after,
                probability=probability,
            )
        )
        return self

    def delay(
        self, method: str, seconds: float, *, on_call: int = 1, times: int | None = None
    ) -> FaultPlan:
        """Sleep `seconds` before calls of `method` (default: every call): a slow server, a
        slow consumer ("write") or a slow producer ("batch")."""
        _check_call(on_call, times)
        if seconds < 0:
            raise ValueError(f"a delay must be >= 0, got {seconds}")
        self._rules.append(_Rule(method, on_call, times, delay=seconds))
        return self

    def in_commit_window(
        self,
        hook: WindowHook | None = None,
        *,
        method: str = "write",
        on_call: int = 1,
        times: int | None = 1,
    ) -> FaultPlan:
        """Run `hook(checkpoint)` inside the transaction of a `MemoryDestination`'s `method`
        ("write" or "prepare"), after its rows or DDL and before its checkpoint, the
        `on_call`-th time a committing call reaches that point (probes never do). The hook
        raising rolls the transaction back: neither lands. Without a hook, `SimulatedCrash`
        is raised there."""
        _check_call(on_call, times)
        self._rules.append(_Rule(f"{method}:window", on_call, times, hook=hook or _crash))
        return self

    def calls(self, method: str) -> int:
        """How many calls of `method` (or "write:window" ...) have been made so far."""
        return self._calls[method]

    def has_window_rules(self, method: str) -> bool:
        return any(rule.method == f"{method}:window" for rule in self._rules)

    # -- used by the wrappers -----------------------------------------------------------------

    async def before_call(self, method: str) -> int:
        """Count the call, sleep its delays, raise its error unless that comes after the call.
        Returns the call's number, for `after_call`."""
        self._calls[method] += 1
        call = self._calls[method]
        rules = [rule for rule in self._rules if rule.method == method and rule.covers(call)]
        for rule in rules:
            if rule.delay > 0:
                self.injected.append(InjectedFault(method, call, f"delay {rule.delay:g} s"))
                await self._sleep(rule.delay)
        self._raise_first(method, call, [rule for rule in rules if not rule.after])
        return call

    def after_call(self, method: str, call: int) -> None:
        """Raise the error scheduled after call `call` of `method`, if any."""
        rules = [
            rule
            for rule in self._rules
            if rule.method == method and rule.after and rule.covers(call)
        ]
        self._raise_first(method, call, rules)

    async def window(self, method: str, checkpoint: Checkpoint) -> None:
        """Run the commit-window hooks scheduled for this window of `method`."""
        name = f"{method}:window"
        self._calls[name] += 1
        call = self._calls[name]
        for rule in self._rules:
            if rule.method == name and rule.hook is not None and rule.covers(call):
                self.injected.append(InjectedFault(name, call, "hook"))
                outcome = rule.hook(checkpoint)
                if inspect.isawaitable(outcome):
                    await outcome

    def _raise_first(self, method: str, call: int, rules: list[_Rule]) -> None:
        for rule in rules:
            if rule.error is None:
                continue
            if rule.probability is not None and self._random.random() >= rule.probability:
                continue
            error = _make_error(rule.error, method, call)
            self.injected.append(InjectedFault(method, call, f"error {type(error).__name__}"))
            raise error


def _check_call(on_call: int, times: int | None) -> None:
    if on_call < 1:
        raise ValueError(f"calls are numbered from 1, got on_call={on_call}")
    if times is not None and times < 1:
        raise ValueError(f"times must be >= 1 (or None for every call), got {times}")


def _error_or_default(error: ErrorSpec | None) -> ErrorSpec:
    return ConnectionLost if error is None else error


def _make_error(spec: ErrorSpec, method: str, call: int) -> BaseException:
    if isinstance(spec, BaseException):
        return spec
    if isinstance(spec, type):
        error: BaseException = spec(f"injected fault: {method} call {call}")
        return error
    return spec()


def _crash(checkpoint: Checkpoint) -> None:
    raise SimulatedCrash(
        f"simulated crash between the rows and the checkpoint of item {checkpoint.item!r}"
    )


class FaultySource:
    """A `Source` that injects the faults of `faults` into the calls it passes to `inner`."""

    def __init__(self, inner: Source, faults: FaultPlan) -> None:
        self.inner = inner
        self.faults = faults

    async def open(self) -> None:
        call = await self.faults.before_call("open")
        await self.inner.open()
        self.faults.after_call("open", call)

    async def close(self) -> None:
        call = await self.faults.before_call("close")
        await self.inner.close()
        self.faults.after_call("close", call)

    async def schema(self) -> Schema:
        call = await self.faults.before_call("schema")
        result = await self.inner.schema()
        self.faults.after_call("schema", call)
        return result

    async def read(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        call = await self.faults.before_call("read")
        batches = self.inner.read(after, batch_size)
        try:
            async for batch in batches:
                # the inner source has produced the batch: a fault here loses it in transit
                batch_call = await self.faults.before_call("batch")
                self.faults.after_call("batch", batch_call)
                yield batch
        finally:
            aclose = getattr(batches, "aclose", None)
            if aclose is not None:
                await aclose()
        self.faults.after_call("read", call)


class FaultyDestination:
    """A destination that injects the faults of `faults` into the calls it passes to `inner`.

    Commit-window faults (`FaultPlan.in_commit_window`) need a `MemoryDestination` inner: the
    wrapper installs its hook as the inner's `commit_window` (chained to any hook already there),
    so it counts every window of the inner destination.
    """

    def __init__(self, inner: InspectableDestination, faults: FaultPlan) -> None:
        self.inner = inner
        self.faults = faults
        self.capabilities = inner.capabilities
        self._windowed = isinstance(inner, MemoryDestination)
        if isinstance(inner, MemoryDestination):
            previous = inner.commit_window

            async def window(method: str, checkpoint: Checkpoint) -> None:
                await faults.window(method, checkpoint)
                if previous is not None:
                    await previous(method, checkpoint)

            inner.commit_window = window

    async def open(self) -> None:
        call = await self.faults.before_call("open")
        await self.inner.open()
        self.faults.after_call("open", call)

    async def close(self) -> None:
        call = await self.faults.before_call("close")
        await self.inner.close()
        self.faults.after_call("close", call)

    async def checkpoint(self, item: str) -> Checkpoint | None:
        call = await self.faults.before_call("checkpoint")
        result = await self.inner.checkpoint(item)
        self.faults.after_call("checkpoint", call)
        return result

    async def table_exists(self, target: TableRef) -> bool:
        call = await self.faults.before_call("table_exists")
        result = await self.inner.table_exists(target)
        self.faults.after_call("table_exists", call)
        return result

    async def row_count(self, target: TableRef) -> int:
        call = await self.faults.before_call("row_count")
        result = await self.inner.row_count(target)
        self.faults.after_call("row_count", call)
        return result

    async def columns(self, target: TableRef) -> tuple[Column, ...] | None:
        call = await self.faults.before_call("columns")
        result = await self.inner.columns(target)
        self.faults.after_call("columns", call)
        return result

    async def prepare(
        self, target: TableRef, schema: Schema, mode: Mode, checkpoint: Checkpoint
    ) -> Checkpoint:
        self._check_window("prepare")
        call = await self.faults.before_call("prepare")
        result = await self.inner.prepare(target, schema, mode, checkpoint)
        self.faults.after_call("prepare", call)
        return result

    async def write(  # noqa: PLR0917 - the Destination protocol's signature
        self,
        target: TableRef,
        schema: Schema,
        rows: Sequence[Row],
        checkpoint: Checkpoint,
        mode: Mode,
        key: tuple[str, ...],
        *,
        commit: bool = True,
    ) -> None:
        self._check_window("write")
        call = await self.faults.before_call("write")
        await self.inner.write(target, schema, rows, checkpoint, mode, key, commit=commit)
        self.faults.after_call("write", call)

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        call = await self.faults.before_call("save_checkpoint")
        await self.inner.save_checkpoint(checkpoint)
        self.faults.after_call("save_checkpoint", call)

    async def forget(self, item: str) -> None:
        call = await self.faults.before_call("forget")
        await self.inner.forget(item)
        self.faults.after_call("forget", call)

    def _check_window(self, method: str) -> None:
        if not self._windowed and self.faults.has_window_rules(method):
            raise TypeError(
                f"commit-window faults on {method!r} need a MemoryDestination inside the "
                "FaultyDestination"
            )
