"""The PostgreSQL sources: one consistent snapshot per read, keyset-paginated by their key.

`PostgresTableSource(url, table, key=(), *, projection=None, bounds=None, item=None,
increments_by=None)` reads one table (or view), and `PostgresQuerySource(url, sql, key=(), *,
bounds=None, item=None, increments_by=None)` the rows of a query (MIGRATE QUERY), each on one
asyncpg connection:

* open() connects and describes what is read. A table: its columns in order, with their types
  as `format_type` spells them and their nullability, and the key the rows are ordered and
  resumed by. The key is the explicit `key` (the item's KEY option, as table columns: see
  `stratum.connectors.pushdown.source_key`) when given, else the primary key (composite
  allowed), else the unique key with the fewest columns (then the oldest) whose columns are all
  NOT NULL and which has no predicate or expression, else none. A query: its text transpiled
  from the dialect it is written in (`Sql.dialect`) to PostgreSQL's (as written when it is
  PostgreSQL's), prepared (not run) to learn its columns and their types (`format_type` of the
  result's type oids, a domain as its base type; every column nullable); its key is the KEY,
  which must name columns it returns, else none.
* MODE incremental: `increments_by` is the item's CURSOR, as a column of the table or the query
  (`stratum.connectors.pushdown.source_cursor` maps it back through COLUMNS renames). The rows
  are then read in the order (c, k1, k2): the CURSOR column first, then the key above (the
  KEY, else the primary or unique key), which breaks ties between rows sharing one CURSOR
  value (several rows may share one `updated_at`, and a batch may end between them). The
  cursor of a batch is [c, k1, k2] of its last row, and a resume, or the item's next run,
  reads `(c, k1, k2) > ($1, $2, $3)`: the rows changed (their CURSOR moved past the
  high-water mark) or added since. `key` is then (c, k1, k2). Refused on open (ConfigError
  naming the item, the table and the column): a CURSOR that is not a column (or is a COMPUTE
  column), a CURSOR column that may be NULL (a row whose CURSOR is NULL would never be read),
  one of a type a cursor cannot hold (see "Cursors"), no key to break ties, a query without
  KEY. A view's and a query's columns are never known to be NOT NULL: there a row whose
  CURSOR is NULL fails the read instead (SourceError; NULLs sort last, so nothing before it
  is skipped). Without a KEY every new version of a row is appended, so the table's schema
  claims no primary key (a target the engine creates can hold them all).
* With a `projection` (the item's options), the table source pushes the item's COLUMNS,
  COMPUTE and WHERE into its SELECT (`stratum.connectors.pushdown` says what is pushed and
  what stays in Python); `applied` tells which. The SELECT is then prepared on open: the
  COMPUTE columns' types are the server's (a column copied as it is keeps its exact type), and
  an expression the server refuses (a function it does not have) fails the open with a
  SourceError naming that expression and the item.
* read(after, batch_size) runs in ONE `REPEATABLE READ READ ONLY` transaction, through a
  server-side cursor fetched `batch_size` rows at a time (a batch is fetched only when the
  previous one has been taken, so the source never holds more than one batch). A table:

      SELECT <columns | pushed-down projection>[, <hidden key columns>]
      FROM <schema>.<table>
      [WHERE (<pushed-down WHERE>) AND (k1, k2) > ($1, $2) AND (k1, k2) > (low) AND
             (k1, k2) <= (high)]
      ORDER BY k1, k2

  where each condition is there only when it applies: the WHERE when pushed down, `> $1` after
  a cursor, `> low` and `<= high` within `bounds`; with `increments_by` the CURSOR column leads
  every row comparison and the ORDER BY: `(c, k1, k2) > ($1, $2, $3) ORDER BY c, k1, k2`. A
  key (or CURSOR) column the projection does not output is selected after it ("hidden"), for
  the cursor, and stripped off the rows. A query with a KEY: `SELECT * FROM (<query>) AS "q"
  [WHERE (key) > (...) ...] ORDER BY key` (key: [c,] KEY); without one, the query as it is.
  Without a key there is no ORDER BY, every cursor is None and `resumable` is False: the
  engine then reloads the item whole instead of resuming it. The transaction is rolled back
  (nothing was written) when the read ends, fails, is cancelled or is abandoned (at the next
  read or at close()). One read at a time per source.
  An explicit KEY is trusted to be unique and NOT NULL, as a discovered one is: a duplicate
  key value at a batch boundary, or a NULL, would be skipped by a resume.
* Key ranges (PARTITIONS): `bounds=(low, high)`, two cursors (or None: unbounded), limits every
  read to the rows with low < key <= high, together with the read's own `after`. `split(n)`
  gives up to n - 1 increasing cursors that cut the rows the WHERE keeps into n ranges of
  about equal row counts, computed by the server in one snapshot (the key of every
  (count * i // n)-th row, by `row_number()` over the key). A source without a usable key
  cannot be split or bounded: ConfigError. Without `increments_by` the ranges are of the plain
  key (PARTITIONS and MODE incremental are never combined: the engine refuses it).
* Cursors are the last row's key values as JSON values: int, str, bool and (finite) float as
  they are; Decimal, date, datetime, time and UUID as their ISO/str form; bytes as hex; a
  non-finite float as "NaN"/"Infinity"/"-Infinity". On resume they are decoded back by the key
  columns' types, so `(k1, k2) > ($1, $2)` compares typed values, exactly. A key column of a
  type that cannot be decoded back (interval, inet, arrays, json...) is refused when named in
  KEY; a discovered key of such a type makes the source non-resumable (it still reads in key
  order).
* Values are what asyncpg returns, except json/jsonb, which are decoded into Python objects.
* positions are the 1-based ordinal of the row within this read; nbytes is an estimate: the
  summed `len(str(value))` of up to `_SAMPLE` evenly spread rows of the batch, scaled to the
  batch's length (cheap, and good enough for a throughput figure).
* total_rows() is None: `pg_class.reltuples` is only the planner's estimate (and -1 or 0 before
  the first ANALYZE), and an exact `count(*)` costs a full scan.

Driver errors are translated at the edge: a lost or refused connection is ConnectionLost; bad
credentials, a missing database, a missing privilege or table is SourceError; a URL asyncpg
cannot use is ConfigError. The URL holds the password: it is never put in a message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Self
from uuid import UUID

import anyio

from stratum.connectors.base import COPY_TEXT, Column, Cursor, RawBatch, Row, Schema
from stratum.connectors.postgres._connect import connect
from stratum.connectors.pushdown import (
    Bounds,
    Pushdown,
    Pushed,
    incremental_order,
    plan_pushdown,
    refused,
    select_sql,
    selection,
    transpile_query,
)
from stratum.connectors.sql import ErrorTable, estimate_nbytes, quote, translated
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import Options, Sql, TableRef

__all__ = ["PostgresQuerySource", "PostgresTableSource"]

_DIALECT = "postgres"
_DEFAULT_SCHEMA = "public"
_CONNECT_TIMEOUT = 30.0
_CLOSE_TIMEOUT = 10.0
_ROLLBACK_TIMEOUT = 10.0

_RELATION = """
SELECT c.oid, c.relkind::text AS relkind FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""
_RELATIONS_OF_SCHEMA = """
SELECT c.relname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""
_SCHEMAS = "SELECT nspname FROM pg_catalog.pg_namespace"
# The base type of a domain (one level), so that a domain over text decodes like text.
_COLUMNS = """
SELECT a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS notnull,
       coalesce(b.typname, t.typname) AS base,
       coalesce(b.typtype, t.typtype) AS kind
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
# Unique indexes usable as a key: valid, not partial, on columns only (no expressions); INCLUDE
# columns are not part of the key. The primary key first, then the fewest columns, the oldest.
_UNIQUE_KEYS = """
SELECT i.indisprimary AS primary,
       array_agg(a.attname ORDER BY k.ord) AS columns,
       bool_and(a.attnotnull) AS notnull
FROM pg_catalog.pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid
  AND i.indpred IS NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts
GROUP BY i.indexrelid, i.indisprimary
ORDER BY i.indisprimary DESC, count(*), i.indexrelid
"""

# The type of each column of a prepared statement's result: a domain as its base type.
_TYPES = """
SELECT t.oid,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
            ELSE format_type(t.oid, NULL) END AS type,
       coalesce(b.typname, t.typname) AS base,
       coalesce(b.typtype, t.typtype) AS kind
FROM pg_catalog.pg_type t
LEFT JOIN pg_catalog.pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
WHERE t.oid = ANY($1::oid[])
"""

# --- cursor values ----------------------------------------------------------------------------

_INTEGERS = frozenset({"int2", "int4", "int8", "oid"})
_FLOATS = frozenset({"float4", "float8"})
_STRINGS = frozenset({"text", "varchar", "bpchar", "name", "char", "citext", "money"})


def encode_value(value: Any) -> Any:
    """A key value as a JSON value (see the module's docstring)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    raise SourceError(f"a key value of type {type(value).__name__} cannot be kept in a cursor")


def _decoder(base: str, kind: str) -> Callable[[Any], Any] | None:
    """How a JSON cursor value of a column of base type `base` is turned back into the value
    asyncpg returned; None when that type cannot be a resumable key."""
    if base in _INTEGERS:
        return _typed(int, int)
    if base in _FLOATS:
        return _typed((int, float, str), float)
    if base == "numeric":
        return _typed((int, str), Decimal)
    if base == "bool":
        return _typed(bool, bool)
    if base in _STRINGS or kind == "e":  # an enum's value is its label
        return _typed(str, str)
    parsers: dict[str, Callable[[str], Any]] = {
        "date": date.fromisoformat,
        "timestamp": datetime.fromisoformat,
        "timestamptz": datetime.fromisoformat,
        "time": time.fromisoformat,
        "timetz": time.fromisoformat,
        "uuid": UUID,
        "bytea": bytes.fromhex,
    }
    parser = parsers.get(base)
    return None if parser is None else _typed(str, parser)


def _typed(
    accepted: type | tuple[type, ...], convert: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        if not isinstance(value, accepted) or (isinstance(value, bool) and accepted is int):
            raise TypeError(f"unexpected {type(value).__name__}")
        return convert(value)

    return decode


@dataclass(frozen=True, slots=True)
class _KeyColumn:
    name: str
    type: str
    decode: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Described:
    """A column of a prepared statement's result."""

    name: str
    type: str  # as format_type spells it
    base: str  # the base type's name (a domain's base)
    kind: str  # the base type's typtype


def encode_cursor(values: Sequence[Any]) -> list[Any]:
    """The last row's key values as a JSON-able cursor."""
    return [encode_value(v) for v in values]


def decode_cursor(cursor: Cursor, key: Sequence[_KeyColumn], what: str) -> list[Any]:
    """The typed key values of a cursor `encode_cursor` made; SourceError when it does not fit
    the key (another key, a corrupted checkpoint)."""
    if not isinstance(cursor, list) or len(cursor) != len(key):
        raise SourceError(
            f"{what}: the cursor {cursor!r} does not fit the key "
            f"({', '.join(k.name for k in key)}); restart the item"
        )
    values = []
    for column, value in zip(key, cursor, strict=True):
        try:
            values.append(column.decode(value))
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise SourceError(
                f"{what}: the cursor value {value!r} cannot be read back as a {column.type} "
                f"(key column {column.name!r}): {exc}; restart the item"
            ) from exc
    return values


# --- the sources ----------------------------------------------------------------------------


#: What COPY's text format escapes in a value, as SQL literals: (what the text holds, what the
#: line carries instead). Backslash first, so that the other escapes are not doubled.
_COPY_ESCAPES = (
    ("'\\'", "'\\\\'"),
    ("E'\\t'", "'\\t'"),
    ("E'\\n'", "'\\n'"),
    ("E'\\r'", "'\\r'"),
)


def _type_name(param: Any) -> str:
    """A parameter's type (asyncpg's Type) as a qualified, quoted name: an array by its
    element type's `_name` spelling, as the catalog names it."""
    name = str(param.name)
    if name.endswith("[]"):
        name = "_" + name[:-2]
    return f"{quote(str(param.schema), _DIALECT)}.{quote(name, _DIALECT)}"


class _PostgresReader(ABC):
    """What the table and the query source share: the connection, the read in one snapshot
    through a server-side cursor, cursors and bounds, split() and error translation. A
    subclass's `_introspect` fills in what is read (see the module's docstring)."""

    def __init__(
        self,
        url: str,
        key: tuple[str, ...],
        bounds: Bounds | None,
        item: str | None,
        *,
        increments_by: str | None,
    ) -> None:
        self._url = url  # holds the password: never put it in a message
        self._explicit_key = tuple(key)
        self._increments_by = increments_by  # MODE incremental's CURSOR column (see the module)
        self._bounds = bounds
        self._item = item
        self._conn: Any = None
        self._errors: ErrorTable = ()
        self._roots: tuple[type[BaseException], ...] = ()
        self._schema: Schema | None = None
        self._order: tuple[str, ...] = ()  # the columns rows are ordered by
        self._key: tuple[_KeyColumn, ...] = ()  # ... those of them a cursor can hold
        self._resumable = bool(key)
        self._items: tuple[str, ...] = ()  # the select list: the output, then hidden keys
        self._width = 0  # the output's columns
        self._key_at: tuple[int, ...] = ()  # each key column's place in a selected row
        self._from = ""  # what is selected from: a table, or a query in parentheses
        self._where: str | None = None  # the pushed-down WHERE
        self._plain: str | None = None  # a query without a KEY: run as it is
        self._transaction: Any = None  # the transaction of the read in progress
        # Serialises the statements of a read with the late clean-up of an abandoned one.
        self._lock = anyio.Lock()

    @property
    @abstractmethod
    def _name(self) -> str:
        """What is read, for messages."""

    @property
    def _who(self) -> str:
        """Who a configuration error is about: the item, else what is read."""
        return f"item '{self._item}'" if self._item else self._name

    @property
    def increments_by(self) -> str | None:
        """MODE incremental's CURSOR column (a source column), which the rows are ordered by
        first; None otherwise."""
        return self._increments_by

    @property
    def resumable(self) -> bool:
        """Whether a read can start after a cursor. Known once open; before, True only for an
        explicit key (never claim a key a table might not have)."""
        return self._resumable

    @property
    def key(self) -> tuple[str, ...]:
        """The columns the rows are ordered (and resumed) by; () when none. With
        `increments_by`, the CURSOR column then the key."""
        return self._order if self._schema is not None else self._explicit_key

    @property
    def bounds(self) -> Bounds | None:
        """The key range a read is limited to: (low, high), key > low and key <= high."""
        return self._bounds

    @property
    def applied(self) -> frozenset[str]:
        """The item's options the source applies itself (see the table source); the query
        source applies none: the item's COLUMNS, COMPUTE and WHERE run in Python on its rows."""
        return frozenset()

    @property
    def select(self) -> str:
        """The SELECT a read from the start runs (known once open)."""
        return self._query(None, "select")[0]

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        try:
            import asyncpg  # noqa: F401, PLC0415 (checked on open: a missing driver names its extra)
        except ImportError as exc:
            raise ConfigError(
                "the PostgreSQL source needs asyncpg: pip install 'stratum[postgres]'"
            ) from exc
        from stratum.connectors.postgres import _errors  # noqa: PLC0415 (imports asyncpg)

        self._errors, self._roots = _errors.ERRORS, _errors.ROOTS
        self._check_names()
        conn = await connect(
            self._url,
            translate=self._translated,
            timeout=_CONNECT_TIMEOUT,
            statement_cache_size=0,  # a table altered between reads is described anew
            server_settings={"application_name": "stratum"},
        )
        try:
            with self._translated(f"reading the definition of {self._name}"):
                await _install_codecs(conn)
                if self._schema is None:
                    await self._introspect(conn)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn

    def _check_names(self) -> None:  # noqa: B027 (a hook: a query has nothing to check)
        """ConfigError for what cannot be read at all, before connecting."""

    @abstractmethod
    async def _introspect(self, conn: Any) -> None:
        """Describe what is read, on `conn`: its columns, their types, its key."""

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self._transaction = None
        if conn is None or conn.is_closed():
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(_CLOSE_TIMEOUT) as scope:
                with contextlib.suppress(Exception):  # closing ends the transaction too
                    await conn.close(timeout=_CLOSE_TIMEOUT)
            if scope.cancelled_caught or not conn.is_closed():
                conn.terminate()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- describing ---------------------------------------------------------------------------

    async def _describe(
        self, conn: Any, sql: str, pushed: Sequence[Pushed] = ()
    ) -> list[_Described]:
        """The columns `sql` returns, with their types as the server resolves them (a domain
        as its base type), from the prepared statement, without running it. When the server
        refuses it, the pushed-down expression it refuses is named (SourceError)."""
        try:
            with self._translated(f"describing the SELECT of {self._name}"):
                statement = await conn.prepare(sql)
                attributes = statement.get_attributes()
                oids = sorted({attribute.type.oid for attribute in attributes})
                types = {r["oid"]: r for r in await conn.fetch(_TYPES, oids)}
        except SourceError as exc:
            if not pushed:
                raise
            raise await self._refused(conn, pushed, exc) from exc
        if pushed:
            await self._check_one_row_each(conn, sql, pushed)
        return [
            _Described(
                a.name,
                types[a.type.oid]["type"],
                types[a.type.oid]["base"],
                types[a.type.oid]["kind"],
            )
            for a in attributes
        ]

    async def _check_one_row_each(self, conn: Any, sql: str, pushed: Sequence[Pushed]) -> None:
        """ConfigError when a COMPUTE holds a set-returning function, which would turn one
        row into several: its plan has more ProjectSet nodes than the table's (a view may have
        its own)."""
        computes = [p for p in pushed if p.label != "WHERE"]
        if not computes:
            return

        async def sets(statement: str) -> int:
            with self._translated(f"describing the SELECT of {self._name}"):
                plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {statement}")
            text = plan if isinstance(plan, str) else json.dumps(plan)
            return text.count('"ProjectSet"')

        table = await sets(f"SELECT 1 FROM {self._from}")
        if await sets(sql) <= table:
            return
        who = f"item '{self._item}'" if self._item else self._name
        for expression in computes:
            if await sets(f"SELECT {expression.sql} FROM {self._from}") > table:
                raise ConfigError(
                    f"{who}: {expression.label} {expression.written!r} returns a set of rows "
                    "(a set-returning function): COMPUTE sees one row at a time"
                )
        raise ConfigError(f"{who}: the pushed-down COMPUTE would return a set of rows per row")

    async def _refused(
        self, conn: Any, pushed: Sequence[Pushed], error: SourceError
    ) -> SourceError:
        """The error naming the first pushed-down expression the server refuses alone."""

        async def probe(sql: str) -> object:
            with self._translated(f"checking the SELECT of {self._name}"):
                return await conn.prepare(sql)  # prepared, not run

        who = f"item '{self._item}'" if self._item else self._name
        return await refused(
            pushed,
            probe,
            self._from,
            who=who,
            server="PostgreSQL",
            error=error,
            describe=_describe_error,
        )

    # --- reading ------------------------------------------------------------------------------

    async def schema(self) -> Schema:
        if self._schema is None:
            raise SourceError(f"{self._name}: the PostgreSQL source is not open")
        return self._schema

    async def total_rows(self) -> int | None:
        """None: PostgreSQL knows no exact row count short of a full scan (see the module)."""
        return None

    def read(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        return self._read(after, batch_size)

    # --- the pass-through path (stratum.connectors.base.TextSource) ----------------------------

    def text_path(self) -> str | None:
        """None when every output column can be read as its text (known once open): the
        server's text output of a type is its own input syntax, so another PostgreSQL reads it
        back as the same value."""
        items = self._text_items()
        return items if isinstance(items, str) else None

    def read_text(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        """The rows with every value as PostgreSQL prints it (`::text`); cursors and
        positions as `read` gives them."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if self._resumable and not isinstance(self._text_items(), str):  # keyed: COPY by range
            return self._read_copy(after, batch_size)
        return self._read(after, batch_size, text=True)

    async def _read_copy(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        """A keyed table as COPY's own text output, `batch_size` rows at a time, in one
        snapshot: for each batch the server finds the key `batch_size` rows on (an index scan),
        then runs `COPY (SELECT ... WHERE key > last AND key <= that ORDER BY key) TO STDOUT`;
        the batch's cursor is that key, its rows the lines COPY wrote (COPY escapes line ends
        inside values, so a line is a row). No value is touched in Python, or built by SQL."""
        what = f"reading {self._name}"
        if self._schema is None:
            raise SourceError(f"{what}: the PostgreSQL source is not open")
        found = self._text_items()
        if isinstance(found, str):
            raise SourceError(f"{what}: cannot read as text: {found}")
        columns = tuple(self._items[: self._width])
        keys = tuple(quote(k, _DIALECT) for k in self._order)
        if self._conn is None or self._conn.is_closed():
            await self.open()
        conn = self._conn
        transaction = await self._begin(conn, what)
        position, ordinal = after, 0
        try:
            while True:
                sql, args = self._query(position, what, items=keys, by_table=True)
                async with self._lock:
                    with self._translated(what):
                        last = await conn.fetchrow(f"{sql} OFFSET {batch_size - 1} LIMIT 1", *args)
                        if last is None:  # fewer rows left than a batch: up to the last one
                            where = sql[: sql.rindex(" ORDER BY ")]
                            reverse = ", ".join(f"{self._from}.{k} DESC" for k in keys)
                            last = await conn.fetchrow(f"{where} ORDER BY {reverse} LIMIT 1", *args)
                if last is None:
                    break
                upto = encode_cursor(list(last))
                pieces: list[bytes] = []

                async def keep(piece: bytes, pieces: list[bytes] = pieces) -> None:
                    pieces.append(piece)

                async with self._lock:
                    with self._translated(what, values=True):
                        sql = await self._inlined(conn, position, what, columns, upto)
                        await conn.copy_from_query(sql, output=keep, format="text")
                data = b"".join(pieces)
                count = data.count(b"\n")
                positions = list(range(ordinal + 1, ordinal + count + 1))
                ordinal += count
                batch = RawBatch([()] * count, positions, cursor=upto, nbytes=len(data))
                batch.copy_format, batch.copy_data = COPY_TEXT, data
                yield batch
                position = upto
        finally:
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    await self._end(transaction)

    async def _inlined(
        self, conn: Any, after: Cursor, what: str, items: tuple[str, ...], upto: Cursor
    ) -> str:
        """The SELECT of a COPY batch with its key values written in as literals: COPY takes
        no parameters. Not asyncpg's `copy_from_query(sql, *args)`, which replaces every `$n`
        in the text, also inside quoted names (a column `price$1` would become `price'42'`,
        and a key value holding `"` could then end the name and add SQL of its own): the
        literals are put where the parameters are when the SQL is built. The server spells
        each value (`quote_literal(value::type::text)`, the parameter's type as the prepared
        SELECT says), so the text is exact for every type a cursor holds."""
        sql, args = self._query(after, what, items=items, upto=upto, by_table=True)
        if not args:
            return sql
        statement = await conn.prepare(sql)
        types = [_type_name(t) for t in statement.get_parameters()]
        spelt = ", ".join(f"quote_literal(${i}::{t}::text)" for i, t in enumerate(types, 1))
        texts = await conn.fetchrow(f"SELECT {spelt}", *args)
        literals = [
            f"{'NULL' if text is None else text}::{t}" for text, t in zip(texts, types, strict=True)
        ]
        sql, _ = self._query(
            after,
            what,
            items=items,
            upto=upto,
            by_table=True,
            parameter=lambda i: literals[i - 1],
        )
        return sql

    async def read_again(self, after: Cursor, batch: RawBatch) -> AsyncIterator[RawBatch]:
        """The typed rows of a text batch: the keys after `after`, up to its cursor."""
        shift = batch.positions[0] - 1 if batch.positions else 0  # ordinals of the first read
        async for again in self._read(after, max(len(batch.rows), 1), upto=batch.cursor):
            again.positions = [p + shift for p in again.positions]
            yield again

    def _text_items(self) -> tuple[str, ...] | str:
        """The select list for `read_text`, or why there is none: the row as one line of COPY's
        text format, built by the server (each column's text, backslash, tab, LF and CR
        escaped, NULL as \\N), then the key's own values, typed, for the cursor."""
        pushdown = getattr(self, "_pushdown", None)
        if pushdown is None:
            return "the query's columns are not known one by one"
        fields = []
        for output in pushdown.outputs:
            if output.source is None:
                return f"column {output.name!r} is computed in the SELECT"
            value = f"{quote(output.source, _DIALECT)}::text"
            for found, written in _COPY_ESCAPES:
                value = f"replace({value}, {found}, {written})"
            fields.append(f"coalesce({value}, '\\N')")
        line = "concat_ws(E'\\t', " + ", ".join(fields) + ")"
        return (f"{line} AS {quote('line', _DIALECT)}", *(quote(k, _DIALECT) for k in self._order))

    async def _read(
        self, after: Cursor, batch_size: int, *, text: bool = False, upto: Cursor = None
    ) -> AsyncIterator[RawBatch]:
        what = f"reading {self._name}"
        if self._schema is None:
            raise SourceError(f"{what}: the PostgreSQL source is not open")
        items: tuple[str, ...] | None = None
        if text:
            found = self._text_items()
            if isinstance(found, str):
                raise SourceError(f"{what}: cannot read as text: {found}")
            items = found
        sql, args = self._query(after, what, items=items, upto=upto)
        if self._conn is None or self._conn.is_closed():
            await self.open()  # the connection was lost: a retried read reconnects
        conn = self._conn
        key_at = self._key_at if self._resumable else ()
        if text and key_at:  # the typed key columns come after the line
            key_at = tuple(range(1, 1 + len(key_at)))
        width = (1 if text else self._width) if self._plain is None else None
        # MODE incremental: a NULL CURSOR (possible only where the server cannot say, a view or
        # a query) would stop every later run; NULLs sort last, so nothing is skipped before it
        null_at = key_at[0] if key_at and self._increments_by is not None else None
        transaction = await self._begin(conn, what)
        try:
            async with self._lock:
                with self._translated(what):
                    cursor = await conn.cursor(sql, *args)
            ordinal = 0
            while True:
                async with self._lock:
                    with self._translated(what, values=True):
                        records = await cursor.fetch(batch_size)
                if not records:
                    break
                if null_at is not None and any(r[null_at] is None for r in records):
                    raise SourceError(self._null_cursor(what))
                last = records[-1]
                next_cursor: Cursor = encode_cursor([last[i] for i in key_at]) if key_at else None
                if width is not None and width < len(last):
                    rows: list[Row] = [tuple(r)[:width] for r in records]  # hidden keys off
                else:
                    rows = [tuple(r) for r in records]
                del records, last
                positions = list(range(ordinal + 1, ordinal + len(rows) + 1))
                ordinal += len(rows)
                batch = RawBatch(rows, positions, cursor=next_cursor, nbytes=estimate_nbytes(rows))
                if text:  # the rows are lines of COPY's text format, built by the server
                    batch.copy_format = COPY_TEXT
                    batch.copy_data = "\n".join([row[0] for row in rows]) + "\n"
                yield batch
                del rows
                if len(positions) < batch_size:
                    break
        finally:
            # Also when the consumer stops early, fails, is cancelled, or the generator is
            # finalised late (by then another read may have ended this transaction already).
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    await self._end(transaction)

    async def _begin(self, conn: Any, what: str) -> Any:
        """Start a read's snapshot: one REPEATABLE READ READ ONLY transaction."""
        transaction = conn.transaction(isolation="repeatable_read", readonly=True)
        async with self._lock:
            # A read left unfinished (its generator never closed) still holds its transaction.
            await self._end(self._transaction)
            with self._translated(what):
                await transaction.start()
            self._transaction = transaction
        return transaction

    def _null_cursor(self, what: str) -> str:
        column = self._order[0]
        return (
            f"{what}: a row has NULL in the CURSOR column '{column}' ({self._who}): MODE "
            f"incremental would never read it (no high-water mark is past NULL); make "
            f"'{column}' NOT NULL (coalesce it in a query), or use MODE upsert or full"
        )

    def _incremental(
        self,
        columns: Sequence[Column],
        key: tuple[str, ...],
        decoders: dict[str, Callable[[Any], Any] | None],
        types: dict[str, str],
        *,
        computed: Sequence[str] = (),
        nullability: bool = True,
        query: bool = False,
    ) -> tuple[str, ...]:
        """The order of a MODE incremental read: `increments_by`, then `key` (see
        `pushdown.incremental_order`, which refuses a missing or nullable CURSOR column or no
        key); ConfigError too when one of them is of a type a cursor cannot hold."""
        assert self._increments_by is not None
        source = "the query" if query else self._name
        order = incremental_order(
            self._increments_by,
            columns,
            key,
            who=self._who,
            source=source,
            computed=computed,
            nullability=nullability,
            query=query,
        )
        cursor = order[0]
        if decoders[cursor] is None:
            raise ConfigError(
                f"{self._who}: the CURSOR column '{cursor}' of {source} is of type "
                f"{types[cursor]}, which a cursor cannot hold; MODE incremental needs a "
                "timestamp, date, time, integer, numeric or text column"
            )
        unusable = [k for k in order[1:] if decoders[k] is None]
        if unusable:
            raise ConfigError(
                f"{self._who}: MODE incremental resumes after the key of {source}, and its "
                "column(s) "
                + ", ".join(f"'{k}' ({types[k]})" for k in unusable)
                + " cannot be kept in a cursor; give the item a KEY of other columns"
            )
        return order

    def _query(
        self,
        after: Cursor,
        what: str,
        *,
        items: tuple[str, ...] | None = None,
        upto: Cursor = None,
        by_table: bool = False,
        parameter: Callable[[int], str] = lambda i: f"${i}",
    ) -> tuple[str, list[Any]]:
        """The read's SELECT: `items` instead of the typed select list, no key past `upto`
        when it is given, ordered by the table's key columns named through the table when
        `by_table` (else by the key's place in the select list). `parameter(n)` writes the
        n-th parameter (by default `$n`)."""
        if self._plain is not None:  # a query without a KEY: as it is, whole
            if after is not None:
                raise SourceError(
                    f"{what}: cannot resume after {after!r}: the query has no KEY to resume "
                    "after (the item must be reloaded whole)"
                )
            if self._bounds is not None:
                raise ConfigError(f"{what}: a query without a KEY cannot be read by key range")
            return self._plain, []
        conditions = [f"({self._where})"] if self._where is not None else []
        args: list[Any] = []

        def compare(operator: str, cursor: Cursor) -> None:
            values = decode_cursor(cursor, self._key, what)
            columns = ", ".join(quote(k.name, _DIALECT) for k in self._key)
            first = len(args) + 1
            params = ", ".join(parameter(i) for i in range(first, first + len(values)))
            conditions.append(f"({columns}) {operator} ({params})")
            args.extend(values)

        if after is not None:
            if not self._resumable:
                raise SourceError(
                    f"{what}: cannot resume after {after!r}: the table has no key to resume "
                    "after (the item must be reloaded whole)"
                )
            compare(">", after)
        if self._bounds is not None:
            self._check_splittable("read by key range")
            low, high = self._bounds
            if low is not None:
                compare(">", low)
            if high is not None:
                compare("<=", high)
        if upto is not None:
            self._check_splittable("read by key range")
            compare("<=", upto)
        order = [quote(k, _DIALECT) for k in self._order]
        if by_table:  # the table's own key columns, whatever the select list calls its columns
            order = [f"{self._from}.{k}" for k in order]
        elif items is not None:  # by position: the key's typed columns follow the line
            order = [str(i + 2) for i in range(len(self._order))]
        return select_sql(items or self._items, self._from, conditions, order), args

    async def _end(self, transaction: Any) -> None:
        """Roll back a read's transaction (read-only: nothing to commit), with `_lock` held, so
        it never interleaves another read's statements on the connection."""
        if transaction is None:
            return
        if self._transaction is transaction:
            self._transaction = None
        await _rollback(transaction)

    # --- partitions ---------------------------------------------------------------------------

    async def split(self, parts: int) -> list[Cursor]:
        """Up to `parts - 1` increasing cursors that cut the rows (those the WHERE keeps) into
        `parts` key ranges of about equal row counts: (None, c1], (c1, c2], ... (cn, None], to
        pass as `bounds`. Computed in one snapshot: the rows are counted, then the key of every
        (n * i // parts)-th row in key order is taken (row_number() over the key). Fewer
        cursors when there are fewer rows than parts. ConfigError when there is no key.
        Ends a read left unfinished on this source, as a new read does."""
        if parts < 1:
            raise ValueError(f"parts must be at least 1, got {parts}")
        what = f"splitting {self._name} into {parts} parts"
        if self._conn is None or self._conn.is_closed():
            await self.open()
        self._check_splittable("split into PARTITIONS")
        if parts == 1:
            return []
        columns = ", ".join(quote(k.name, _DIALECT) for k in self._key)
        where = f" WHERE ({self._where})" if self._where is not None else ""
        number = quote("stratum_row_number", _DIALECT)
        count = f"SELECT count(*) FROM {self._from}{where}"
        sample = (
            f"SELECT {columns} FROM (SELECT {columns}, row_number() OVER (ORDER BY {columns}) "
            f"AS {number} FROM {self._from}{where}) AS {quote('s', _DIALECT)} "
            f"WHERE {number} = ANY($1::bigint[]) ORDER BY {number}"
        )
        conn = self._conn
        transaction = await self._begin(conn, what)
        try:
            async with self._lock:
                with self._translated(what, values=True):
                    total = await conn.fetchval(count)
                    rows = {i * total // parts for i in range(1, parts)} - {0}
                    found = await conn.fetch(sample, sorted(rows)) if rows else []
        finally:
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    await self._end(transaction)
        return [encode_cursor(list(record)) for record in found]

    def _check_splittable(self, doing: str) -> None:
        if not self._order:
            raise ConfigError(
                f"{self._name} cannot be {doing}: PARTITIONS needs a primary or unique key "
                "of NOT NULL columns (or a KEY) to cut the rows into key ranges"
            )
        if not self._resumable:
            raise ConfigError(
                f"{self._name} cannot be {doing}: its key "
                f"({', '.join(self._order)}) has a column of a type that cannot be a cursor; "
                "give it a KEY of other columns"
            )

    # --- helpers ------------------------------------------------------------------------------

    def _translated(self, what: str, *, values: bool = False) -> AbstractContextManager[None]:
        """Driver exceptions as Stratum's: ConnectionLost, ConfigError, else SourceError. With
        `values`, Python's conversion errors (a value asyncpg cannot decode) are SourceError."""
        return translated(
            what, self._errors, values=values, fallback=self._roots, terminal=SourceError
        )


class PostgresTableSource(_PostgresReader):
    """Rows of one PostgreSQL table at `url`, in key order (see the module's docstring)."""

    def __init__(
        self,
        url: str,
        table: TableRef,
        key: tuple[str, ...] = (),
        *,
        projection: Options | None = None,
        bounds: Bounds | None = None,
        item: str | None = None,
        increments_by: str | None = None,
    ) -> None:
        super().__init__(url, key, bounds, item, increments_by=increments_by)
        self._table = table
        self._projection = projection
        self._pushdown: Pushdown | None = None

    def __repr__(self) -> str:
        return f"PostgresTableSource(<url>, {self._table.text!r})"

    @property
    def _name(self) -> str:
        return self._table.text

    @property
    def applied(self) -> frozenset[str]:
        """The item's options the SELECT applies ("columns", "compute", "where"); known once
        open. `stratum.connectors.pushdown.remaining_options` leaves the rest to the
        Transformer."""
        return self._pushdown.applied if self._pushdown is not None else frozenset()

    def _check_names(self) -> None:
        self._names()

    async def _introspect(self, conn: Any) -> None:
        schema_name, table = self._names()
        relation = await conn.fetchrow(_RELATION, schema_name, table)
        if relation is None:
            raise SourceError(await self._missing(conn, schema_name, table))
        oid = relation["oid"]
        rows = await conn.fetch(_COLUMNS, oid)
        columns = tuple(Column(r["name"], r["type"], not r["notnull"], r["type"]) for r in rows)
        decoders = {r["name"]: _decoder(r["base"], r["kind"]) for r in rows}
        types = {c.name: c.type for c in columns}
        if self._explicit_key:
            key = self._explicit_key
            missing = [name for name in key if name not in types]
            if missing or len(set(key)) != len(key):
                raise ConfigError(
                    f"{self._table.text}: KEY ({', '.join(key)}) names "
                    + (
                        f"columns the table does not have: {missing}"
                        if missing
                        else "a column twice"
                    )
                )
            unusable = [name for name in key if decoders[name] is None]
            if unusable:
                raise ConfigError(
                    f"{self._table.text}: KEY column(s) "
                    + ", ".join(f"{n!r} ({types[n]})" for n in unusable)
                    + " cannot be resumed after; name columns of another type"
                )
        else:
            key = ()
            for index in await conn.fetch(_UNIQUE_KEYS, oid):
                if index["primary"] or index["notnull"]:
                    key = tuple(index["columns"])
                    break
        order = key
        if self._increments_by is not None:
            computed = [c.name for c in self._projection.compute] if self._projection else []
            order = self._incremental(
                columns,
                key,
                decoders,
                types,
                computed=computed,
                # a view's columns are never NOT NULL in the catalog: read() checks them
                nullability=relation["relkind"] in ("r", "p", "f"),
            )
        usable = [(name, decoders[name]) for name in order]
        self._key = tuple(
            _KeyColumn(name, types[name], decode) for name, decode in usable if decode is not None
        )
        self._order = order
        self._resumable = bool(order) and len(self._key) == len(order)
        self._from = f"{quote(schema_name, _DIALECT)}.{quote(table, _DIALECT)}"
        pushdown = plan_pushdown(columns, self._projection, _DIALECT)
        selected = selection(pushdown, order, _DIALECT)
        self._items, self._width, self._key_at = selected.items, selected.width, selected.key_at
        self._where = pushdown.where
        by_name = {c.name: c for c in columns}
        output: list[Column] = []
        if pushdown.applied:  # the server says what the SELECT returns, and checks it
            outputs = [o.sql for o in pushdown.outputs]
            conditions = [f"({pushdown.where})"] if pushdown.where is not None else []
            sql = select_sql(outputs, self._from, conditions, ())
            described = await self._describe(conn, sql, pushdown.pushed)
            for result, described_column in zip(pushdown.outputs, described, strict=True):
                if result.source is not None:  # a column as it is keeps its exact type
                    output.append(dataclasses.replace(by_name[result.source], name=result.name))
                else:
                    output.append(
                        Column(result.name, described_column.type, native=described_column.type)
                    )
        else:
            output = list(columns)
        copied = {o.source: o.name for o in reversed(pushdown.outputs) if o.source is not None}
        primary_key = tuple(copied[k] for k in key) if all(k in copied for k in key) else ()
        if self._increments_by is not None and not self._explicit_key:
            primary_key = ()  # MODE incremental without KEY appends each new version of a row
        self._pushdown = pushdown
        self._schema = Schema(tuple(output), primary_key=primary_key)

    async def _missing(self, conn: Any, schema_name: str, table: str) -> str:
        tables = [r[0] for r in await conn.fetch(_RELATIONS_OF_SCHEMA, schema_name)]
        message = f"the source table {self._table.text} does not exist"
        if tables:
            close = difflib.get_close_matches(table, tables, n=3)
            if close:
                message += f" (did you mean {', '.join(repr(t) for t in close)}?)"
            return message
        schemas = [r[0] for r in await conn.fetch(_SCHEMAS)]
        if schema_name not in schemas:
            message += f": there is no schema {schema_name!r}"
            close = difflib.get_close_matches(schema_name, schemas, n=3)
            if close:
                message += f" (did you mean {', '.join(repr(s) for s in close)}?)"
        return message

    def _names(self) -> tuple[str, str]:
        if self._table.table is None:
            raise ConfigError(f"{self._table.text} names no table to read")
        return self._table.schema or _DEFAULT_SCHEMA, self._table.table


class PostgresQuerySource(_PostgresReader):
    """The rows of a query (MIGRATE QUERY) run on the PostgreSQL server at `url`: in KEY order
    and resumable with a KEY, else whole (see the module's docstring)."""

    def __init__(
        self,
        url: str,
        sql: Sql,
        key: tuple[str, ...] = (),
        *,
        bounds: Bounds | None = None,
        item: str | None = None,
        increments_by: str | None = None,
    ) -> None:
        super().__init__(url, key, bounds, item, increments_by=increments_by)
        self._sql = sql
        self._text = ""

    def __repr__(self) -> str:
        return f"PostgresQuerySource(<url>, item={self._item!r})"

    @property
    def _name(self) -> str:
        return f"the query of item '{self._item}'" if self._item else "the query"

    async def _introspect(self, conn: Any) -> None:
        text = transpile_query(self._sql, _DIALECT)
        described = await self._describe(conn, text)
        columns = tuple(Column(d.name, d.type, native=d.type) for d in described)
        names = [d.name for d in described]
        by_name = {d.name: d for d in described}
        decoders = {d.name: _decoder(d.base, d.kind) for d in described}
        key = self._explicit_key
        if key:
            missing = [k for k in key if k not in names]
            if missing or len(set(key)) != len(key):
                raise ConfigError(
                    f"{self._name}: KEY ({', '.join(key)}) names "
                    + (
                        f"columns the query does not return: {missing}"
                        if missing
                        else "a column twice"
                    )
                    + f"; it returns {', '.join(names)}"
                )
            unusable = [k for k in key if decoders[k] is None]
            if unusable:
                raise ConfigError(
                    f"{self._name}: KEY column(s) "
                    + ", ".join(f"{k!r} ({by_name[k].type})" for k in unusable)
                    + " cannot be resumed after; name columns of another type"
                )
        order = key
        if self._increments_by is not None:  # a query's columns may all be NULL: read() checks
            types = {d.name: d.type for d in described}
            order = self._incremental(columns, key, decoders, types, nullability=False, query=True)
        if order:
            self._key = tuple(
                _KeyColumn(k, by_name[k].type, decode)
                for k in order
                if (decode := decoders[k]) is not None
            )
            self._order = order
            self._resumable = True
            self._items = ("*",)
            self._width = len(columns)
            self._key_at = tuple(names.index(k) for k in order)
            self._from = f"({text}) AS {quote('q', _DIALECT)}"
        else:
            self._plain = text
            self._resumable = False
            self._width = len(columns)
        self._text = text
        self._schema = Schema(columns, primary_key=key)


async def _install_codecs(conn: Any) -> None:
    """json and jsonb arrive as Python objects (dict, list, str, number, bool); bit strings,
    intervals and infinite dates as the destination writes them (`_codecs`: '0101', '1 year 2
    mons', 'infinity')."""
    from stratum.connectors.postgres import _codecs  # noqa: PLC0415 (with the driver)

    for name, encoder, decoder in (
        ("json", _codecs.encode_json, _codecs.decode_json),
        ("jsonb", _codecs.encode_jsonb, _codecs.decode_jsonb),
    ):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=encoder, decoder=decoder, format="binary"
        )
    await _codecs.install_value_codecs(conn)


async def _rollback(transaction: Any) -> None:
    """End a read's transaction, even when cancelled; nothing to do when it already ended (or
    the connection is gone, which ends it too)."""
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(_ROLLBACK_TIMEOUT),
        contextlib.suppress(Exception),
    ):
        await transaction.rollback()  # when already ended, asyncpg refuses without a round trip


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    detail = getattr(exc, "detail", None)
    return f"{text} ({detail})" if isinstance(detail, str) and detail else text
