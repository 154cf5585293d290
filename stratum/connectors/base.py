"""The connector contract: what the engine asks of a source and of a destination.

The engine never checks what kind of database it talks to; it calls these methods and reads
`Capabilities`. A source yields `RawBatch`es of rows in source order, each with the cursor a
resume restarts after. A destination writes rows *and* the item's checkpoint in one
transaction, which is what makes a batch land exactly once (see architecture/engine.md).

Values in rows are Python objects of the column's type: str, int, float, Decimal, bool,
datetime.date/datetime/time, bytes, dict/list (JSON), or None. A few types have no Python
type of their own and travel as text, exactly:

* bit strings (`bit varying(n)`, `bit(n)`): a `str` of '0'/'1' characters, most significant
  bit first, one character per bit (a MySQL BIT(n) value has exactly n, leading zeros kept);
* intervals (`interval`): a `str` in PostgreSQL's own output form ('1 year 2 mons 3 days
  04:05:06.5'), which keeps months and days apart, as a timedelta cannot;
* PostgreSQL's infinite dates and timestamps: the `str`s 'infinity' and '-infinity' (no
  Python date holds them; date.max is the real 9999-12-31).

In JSON values, a number that a float cannot hold exactly (0.1000000000000000000001) is a
Decimal; destinations write it with every digit, or reject the row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, TypeVar, runtime_checkable

from smql import Mode
from stratum.plan.model import TableRef

#: Where a resume restarts: a row count for files, the last key for tables. It is stored as JSON
#: in the destination's checkpoint, so a source encodes key values that JSON cannot hold
#: (Decimal, dates, bytes...) itself, and decodes them when it resumes.
Cursor: TypeAlias = int | str | list[Any] | None

Row: TypeAlias = tuple[Any, ...]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its name and SQL type, spelt as PostgreSQL spells it ("text", "bigint",
    "numeric(12,2)", "timestamp", "timestamptz", "boolean", "double precision", "date",
    "jsonb", "bytea"); a destination translates it to its own dialect."""

    name: str
    type: str
    nullable: bool = True
    # the type as the source database spells it ("tinyint(1) unsigned"), which CAST TYPE rules
    # match; None when the source has no types of its own (files)
    native: str | None = None


@dataclass(frozen=True, slots=True)
class Schema:
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row that cannot be loaded, kept with why and where it came from."""

    position: int  # the source line (files) or row ordinal where the row was read
    reason: str
    row: Row | str  # the values as read, or the raw text when it could not be split into values


@dataclass(frozen=True, slots=True)
class CopyFormat:
    """How COPY reads data a source encoded itself (see RawBatch.copy_data)."""

    format: str  # "text" (tab-separated, backslash escapes, \\N) or "csv"
    delimiter: str | None = None
    quote: str | None = None
    null: str | None = None
    force_null: bool = False  # csv: a quoted value equal to `null` is NULL too


COPY_TEXT = CopyFormat("text")


@dataclass(slots=True)
class RawBatch:
    """Rows as a source read them, in source order."""

    rows: list[Row]
    positions: list[int]  # source position of each row, same order
    rejected: list[Rejected] = field(default_factory=list)  # rows the reader could not read
    cursor: Cursor = None  # resume after this batch restarts here
    nbytes: int = 0
    # a TextSource's batch may come already encoded for PostgreSQL's COPY: `copy_data` in the
    # `copy_format` (the file's own CSV records, or lines of COPY's text format built by the
    # source's server), which the destination sends as it is; `rows` still say how many rows
    # it holds, and where
    copy_format: CopyFormat | None = None
    copy_data: str | bytes | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a destination can do; the planner and the engine read it, never the type."""

    transactional: bool  # rows and checkpoint can commit in one transaction
    copy: bool  # a bulk COPY path exists
    transactional_ddl: bool  # CREATE/TRUNCATE roll back with the transaction
    upsert: str  # "on_conflict" | "on_duplicate_key" | "none"
    max_identifier_length: int
    dialect: str  # sqlglot dialect name


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """An item's progress as its destination records it, committed with the rows it counts."""

    item: str
    item_hash: str
    plan_hash: str
    run_id: str
    cursor: Cursor = None
    batches: int = 0
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_filtered: int = 0
    steps: tuple[str, ...] = ()  # one-time steps already done: "create", "truncate"
    finished: bool = False


@runtime_checkable
class Source(Protocol):
    """Rows in a stable order. A source whose order cannot be resumed exactly (a table with no
    primary or unique key, a query without one) sets `resumable = False`: the engine then reloads
    the item whole instead of resuming it (see architecture/engine.md). `resumable` is read after
    `open()`, since a table source learns its key by opening."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def schema(self) -> Schema:
        """The columns the source yields, in row order."""
        ...

    def read(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        """Batches of at most `batch_size` rows, starting after `after` (None: from the
        start). Each batch's cursor is the resume point once that batch is committed."""
        ...


@runtime_checkable
class TextSource(Protocol):
    """A source that can yield every value as its text in PostgreSQL's input syntax for the
    column's type (the pass-through path: the destination parses the text, Python converts
    nothing). `read_text` reads like `read`, with the same cursors and positions; `read_again`
    gives the typed rows of one text batch again, for the engine to load them one by one when
    the destination refused the batch (it then finds and rejects the bad rows)."""

    def text_path(self) -> str | None:
        """None when every column can be read as text; else why not (a SET column...)."""
        ...

    def read_text(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]: ...

    def read_again(self, after: Cursor, batch: RawBatch) -> AsyncIterator[RawBatch]:
        """The rows of `batch` (read after `after`) as `read` gives them."""
        ...


@runtime_checkable
class SizedSource(Protocol):
    """A source that knows how many rows it holds without reading them (a Parquet file's
    metadata, a table's statistics): the progress display then shows an ETA. Optional."""

    async def total_rows(self) -> int | None: ...


@runtime_checkable
class Destination(Protocol):
    capabilities: Capabilities

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def checkpoint(self, item: str) -> Checkpoint | None:
        """The item's checkpoint row, or None if the item never committed anything here."""
        ...

    async def prepare(
        self, target: TableRef, schema: Schema, mode: Mode, checkpoint: Checkpoint
    ) -> Checkpoint:
        """One-time steps, in one transaction with the checkpoint that records them: create
        the target from `schema` when it does not exist ("create"), empty it for MODE full
        ("truncate"). Steps already in `checkpoint.steps` are never done again, and `schema` is
        only read to create the target (with "create" done it may have no columns)."""
        ...

    async def write(  # noqa: PLR0917 (the protocol mirrors the transaction's parts)
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
        """Write `rows` and `checkpoint` in one transaction (upsert on `key` for MODE upsert
        and incremental with a key). With commit=False the transaction is rolled back: a
        probe, used to find the rows that a constraint rejects. Raises RowError when the
        rows break a constraint or hold a value the column cannot take."""
        ...

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Write the checkpoint alone (e.g. `finished`), in its own transaction."""
        ...

    async def forget(self, item: str) -> None:
        """Delete the item's checkpoint (`--restart`)."""
        ...

    async def table_exists(self, target: TableRef) -> bool:
        """Whether the target exists (a resume refuses when it was dropped behind its back)."""
        ...

    async def row_count(self, target: TableRef) -> int:
        """Rows in the target (a resume refuses when it was emptied behind its back)."""
        ...

    async def columns(self, target: TableRef) -> tuple[Column, ...] | None:
        """An existing target's columns, types spelt as PostgreSQL spells them, in table order;
        None when the target does not exist. Rows are coerced to these types before writing."""
        ...


@runtime_checkable
class TextDestination(Destination, Protocol):
    """A destination that loads rows of text (str or None per value, in PostgreSQL's input
    syntax for the target's column types) through its bulk path, and parses them itself."""

    async def write_text(
        self,
        target: TableRef,
        schema: Schema,
        rows: Sequence[Row],
        checkpoint: Checkpoint,
        *,
        copy: tuple[CopyFormat, str | bytes] | None = None,
    ) -> None:
        """Load `rows` and save `checkpoint` in one transaction (MODE full and append only);
        with `copy`, send that data in that format instead (the source encoded the rows).
        Raises RowError when a value is refused: the engine then loads the batch row by row."""
        ...


@runtime_checkable
class StagingDestination(TextDestination, Protocol):
    """A destination that can run an item's transform itself over a batch of text
    (`stratum.transforms.staging`)."""

    async def write_staged(  # noqa: PLR0917 (the transaction's parts)
        self,
        target: TableRef,
        schema: Schema,
        columns: Sequence[str],
        copy: tuple[CopyFormat, str | bytes],
        select: str,
        checkpoint_of: Callable[[int], Checkpoint],
    ) -> int:
        """In one transaction: copy the batch's text (`columns`, all text) into the temporary
        stage, insert into `target` what `select` makes of it, and save `checkpoint_of(the
        number of rows inserted)`; that number. RowError when the server refuses a value."""
        ...


class DdlStatement(Protocol):
    """A schema statement (`stratum.schema.ddl.Statement`): its SQL in the destination's
    dialect, what it does (for messages), and a query that returns a row when its effect is
    already there (None when the statement is idempotent by itself)."""

    @property
    def sql(self) -> str: ...

    @property
    def what(self) -> str: ...

    @property
    def done(self) -> str | None: ...


@runtime_checkable
class SchemaDestination(Destination, Protocol):
    """A destination that can build a copied database's schema (MIGRATE DATABASE)."""

    async def apply_ddl(
        self, statements: Sequence[DdlStatement], checkpoint: Checkpoint | None
    ) -> None:
        """Run each statement whose `done` query finds nothing, then save `checkpoint` (when
        given): all in one transaction where DDL is transactional (PostgreSQL); statement by
        statement where it is not (MySQL), which `done` makes safe to redo. A statement the
        server refuses raises DestinationError naming `what`."""
        ...


class SqlSession(Protocol):
    """One open transaction of a `SqlDestination`. Parameters are `$1`, `$2`... in the SQL."""

    async def execute(self, sql: str, *params: Any) -> None: ...

    async def fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]: ...

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Write the checkpoint in this transaction."""
        ...


@runtime_checkable
class SqlDestination(Destination, Protocol):
    """A destination that runs SQL of Stratum's making inside its own database: the medallion
    stages and feature tables (`stratum.runtime.stages`)."""

    def relation(self, target: TableRef) -> str:
        """The table's name, quoted and qualified in the destination's dialect."""
        ...

    def temporary(self, name: str) -> str:
        """The name to read a temporary table `name` by (it is created with `CREATE TEMP
        TABLE` and the name quoted), never a permanent table of the same name."""
        ...

    async def in_transaction(self, what: str, work: Callable[[SqlSession], Awaitable[T]]) -> T:
        """`work` in one transaction: committed when it returns, rolled back when it raises.
        A statement the server refuses raises DestinationError naming `what`."""
        ...
