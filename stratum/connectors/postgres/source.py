"""The PostgreSQL table source: one consistent snapshot per read, keyset-paginated by its key.

`PostgresTableSource(url, table, key=())` reads one table (or view) on one asyncpg connection:

* open() connects and introspects the table: its columns in order, with their types as
  `format_type` spells them and their nullability, and the key the rows are ordered and
  resumed by. The key is the explicit `key` (the item's KEY option) when given, else the
  primary key (composite allowed), else the unique key with the fewest columns (then the oldest)
  whose columns are all NOT NULL and which has no predicate or expression, else none.
* read(after, batch_size) runs in ONE `REPEATABLE READ READ ONLY` transaction, through a
  server-side cursor fetched `batch_size` rows at a time (a batch is fetched only when the
  previous one has been taken, so the source never holds more than one batch):

      SELECT <columns> FROM <schema>.<table> [WHERE (k1, k2) > ($1, $2)] ORDER BY k1, k2

  Without a key there is no ORDER BY, every cursor is None and `resumable` is False: the
  engine then reloads the item whole instead of resuming it. The transaction is rolled back
  (nothing was written) when the read ends, fails, is cancelled or is abandoned (at the next
  read or at close()). One read at a time per source.
  An explicit KEY is trusted to be unique and NOT NULL, as a discovered one is: a duplicate
  key value at a batch boundary, or a NULL, would be skipped by a resume.
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
import difflib
import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import anyio

from stratum.connectors.base import Column, Cursor, RawBatch, Row, Schema
from stratum.connectors.sql import ErrorTable, quote, translated
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import TableRef

__all__ = ["PostgresTableSource"]

_DIALECT = "postgres"
_DEFAULT_SCHEMA = "public"
_CONNECT_TIMEOUT = 30.0
_CLOSE_TIMEOUT = 10.0
_ROLLBACK_TIMEOUT = 10.0
_SAMPLE = 16  # rows of a batch measured for its nbytes estimate

_RELATION = """
SELECT c.oid FROM pg_catalog.pg_class c
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


# --- the source -------------------------------------------------------------------------------


class PostgresTableSource:
    """Rows of one PostgreSQL table at `url`, in key order (see the module's docstring)."""

    def __init__(self, url: str, table: TableRef, key: tuple[str, ...] = ()) -> None:
        self._url = url  # holds the password: never put it in a message
        self._table = table
        self._explicit_key = tuple(key)
        self._conn: Any = None
        self._errors: ErrorTable = ()
        self._roots: tuple[type[BaseException], ...] = ()
        self._schema: Schema | None = None
        self._key: tuple[_KeyColumn, ...] = ()
        self._resumable = bool(key)
        self._select = ""
        self._transaction: Any = None  # the transaction of the read in progress
        # Serialises the statements of a read with the late clean-up of an abandoned one.
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"PostgresTableSource(<url>, {self._table.text!r})"

    @property
    def resumable(self) -> bool:
        """Whether a read can start after a cursor. Known once open; before, True only for an
        explicit key (never claim a key a table might not have)."""
        return self._resumable

    @property
    def key(self) -> tuple[str, ...]:
        """The columns the rows are ordered (and resumed) by; () when none."""
        return self._schema.primary_key if self._schema is not None else self._explicit_key

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        try:
            import asyncpg  # noqa: PLC0415 (drivers are imported when a connector opens)
        except ImportError as exc:
            raise ConfigError(
                "the PostgreSQL source needs asyncpg: pip install 'stratum[postgres]'"
            ) from exc
        from stratum.connectors.postgres import _errors  # noqa: PLC0415 (imports asyncpg)

        self._errors, self._roots = _errors.ERRORS, _errors.ROOTS
        schema_name, table = self._names()
        with self._translated("connecting to PostgreSQL"):
            try:
                conn = await asyncpg.connect(
                    self._url,
                    timeout=_CONNECT_TIMEOUT,
                    statement_cache_size=0,  # a table altered between reads is described anew
                    server_settings={"application_name": "stratum"},
                )
            except ValueError as exc:  # a DSN that urllib cannot split; the message is safe
                raise ConfigError(f"the PostgreSQL URL cannot be used: {exc}") from exc
        try:
            with self._translated(f"reading the definition of {self._table.text}"):
                await _install_codecs(conn)
                if self._schema is None:
                    await self._introspect(conn, schema_name, table)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn

    async def _introspect(self, conn: Any, schema_name: str, table: str) -> None:
        oid = await conn.fetchval(_RELATION, schema_name, table)
        if oid is None:
            raise SourceError(await self._missing(conn, schema_name, table))
        rows = await conn.fetch(_COLUMNS, oid)
        columns = tuple(Column(r["name"], r["type"], not r["notnull"]) for r in rows)
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
        self._schema = Schema(columns, primary_key=key)
        usable = [(name, decoders[name]) for name in key]
        self._key = tuple(
            _KeyColumn(name, types[name], decode) for name, decode in usable if decode is not None
        )
        self._resumable = bool(key) and len(self._key) == len(key)
        self._select = (
            f"SELECT {', '.join(quote(c.name, _DIALECT) for c in columns)} "
            f"FROM {quote(schema_name, _DIALECT)}.{quote(table, _DIALECT)}"
        )

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

    async def __aenter__(self) -> PostgresTableSource:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- reading ------------------------------------------------------------------------------

    async def schema(self) -> Schema:
        if self._schema is None:
            raise SourceError(f"{self._table.text}: the PostgreSQL source is not open")
        return self._schema

    async def total_rows(self) -> int | None:
        """None: PostgreSQL knows no exact row count short of a full scan (see the module)."""
        return None

    def read(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        return self._read(after, batch_size)

    async def _read(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        what = f"reading {self._table.text}"
        if self._schema is None:
            raise SourceError(f"{what}: the PostgreSQL source is not open")
        sql, args = self._query(after, what)
        if self._conn is None or self._conn.is_closed():
            await self.open()  # the connection was lost: a retried read reconnects
        conn = self._conn
        key_at = [self._schema.names.index(k.name) for k in self._key] if self._resumable else []
        transaction = conn.transaction(isolation="repeatable_read", readonly=True)
        async with self._lock:
            # A read left unfinished (its generator never closed) still holds its transaction.
            await self._end(self._transaction)
            with self._translated(what):
                await transaction.start()
            self._transaction = transaction
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
                rows: list[Row] = [tuple(r) for r in records]
                del records
                last = rows[-1]
                next_cursor: Cursor = (
                    encode_cursor([last[i] for i in key_at]) if self._resumable else None
                )
                positions = list(range(ordinal + 1, ordinal + len(rows) + 1))
                ordinal += len(rows)
                yield RawBatch(rows, positions, cursor=next_cursor, nbytes=_estimate(rows))
                del rows
                if len(positions) < batch_size:
                    break
        finally:
            # Also when the consumer stops early, fails, is cancelled, or the generator is
            # finalised late (by then another read may have ended this transaction already).
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    await self._end(transaction)

    def _query(self, after: Cursor, what: str) -> tuple[str, list[Any]]:
        assert self._schema is not None
        key = self._schema.primary_key
        order = f" ORDER BY {', '.join(quote(k, _DIALECT) for k in key)}" if key else ""
        if after is None:
            return self._select + order, []
        if not self._resumable:
            raise SourceError(
                f"{what}: cannot resume after {after!r}: the table has no key to resume after "
                "(the item must be reloaded whole)"
            )
        values = decode_cursor(after, self._key, what)
        columns = ", ".join(quote(k.name, _DIALECT) for k in self._key)
        params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        return f"{self._select} WHERE ({columns}) > ({params}){order}", values

    async def _end(self, transaction: Any) -> None:
        """Roll back a read's transaction (read-only: nothing to commit), with `_lock` held, so
        it never interleaves another read's statements on the connection."""
        if transaction is None:
            return
        if self._transaction is transaction:
            self._transaction = None
        await _rollback(transaction)

    # --- helpers ------------------------------------------------------------------------------

    def _names(self) -> tuple[str, str]:
        if self._table.table is None:
            raise ConfigError(f"{self._table.text} names no table to read")
        return self._table.schema or _DEFAULT_SCHEMA, self._table.table

    def _translated(self, what: str, *, values: bool = False) -> AbstractContextManager[None]:
        """Driver exceptions as Stratum's: ConnectionLost, ConfigError, else SourceError. With
        `values`, Python's conversion errors (a value asyncpg cannot decode) are SourceError."""
        return translated(
            what, self._errors, values=values, fallback=self._roots, terminal=SourceError
        )


async def _install_codecs(conn: Any) -> None:
    """json and jsonb arrive as Python objects (dict, list, str, number, bool)."""
    from stratum.connectors.postgres import _codecs  # noqa: PLC0415 (with the driver)

    for name, encoder, decoder in (
        ("json", _codecs.encode_json, _codecs.decode_json),
        ("jsonb", _codecs.encode_jsonb, _codecs.decode_jsonb),
    ):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=encoder, decoder=decoder, format="binary"
        )


async def _rollback(transaction: Any) -> None:
    """End a read's transaction, even when cancelled; nothing to do when it already ended (or
    the connection is gone, which ends it too)."""
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(_ROLLBACK_TIMEOUT),
        contextlib.suppress(Exception),
    ):
        await transaction.rollback()  # when already ended, asyncpg refuses without a round trip


def _estimate(rows: Sequence[Row]) -> int:
    """Roughly the batch's size: `len(str(value))` summed over up to `_SAMPLE` rows spread over
    the batch, scaled to its length."""
    if not rows:
        return 0
    step = max(1, len(rows) // _SAMPLE)
    sample = rows[::step]
    measured = sum(len(str(v)) for row in sample for v in row if v is not None)
    return measured * len(rows) // len(sample)
