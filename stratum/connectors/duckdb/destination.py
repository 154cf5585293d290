"""The DuckDB destination: a database file (or `:memory:`) written through one connection.

DuckDB's Python API is synchronous, so every call runs in a worker thread
(`anyio.to_thread.run_sync`), never on the event loop, and a lock keeps the connection to one
thread at a time. Each public method is one worker-thread call, and each transaction begins and
ends inside it: a transaction never spans two calls, so a cancelled caller cannot leave one open.
Destinations on the same file in one process (parallel items) also take turns, through a lock
per file: DuckDB would otherwise fail one of two concurrent transactions that touch the same
catalog entry or row (a "write-write conflict"), e.g. two first runs creating `stratum`.

A batch is inserted column-wise: every column is bound as one LIST parameter and unnested in SQL
(see `_encoding`), which keeps the Python values exact and is two orders of magnitude faster
than `executemany`. Upserts deduplicate the batch on the key (the last row of a key wins, as if
the rows were applied one by one) and use `INSERT ... ON CONFLICT (key) DO UPDATE`.

Names are qualified with the database's catalog (`"file"."schema"."table"`), so a schema that
happens to share the file's name cannot be mistaken for it. The session time zone is UTC: a
naive datetime written to a timestamptz column is taken as UTC.

Bit strings (`bit varying(n)`, `bit(n)`: '0'/'1' strs in rows) are stored as text, exactly as
they are (`_duckdb_schema` says why not DuckDB's BIT). A target Stratum creates gets text for
a named type DuckDB does not have (a PostgreSQL enum or domain, inet: `_known_types`).
Intervals (PostgreSQL's text in rows) and the dates 'infinity'/'-infinity' are cast by DuckDB,
which keeps months, days and microseconds apart as PostgreSQL does. JSON values are written as
JSON text by `json_exact` (`_exact_json`): a Decimal inside (a number a float cannot hold) keeps
every digit, and DuckDB's JSON keeps the text as it is.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
from sqlglot import exp
from sqlglot.errors import ParseError

from smql import Mode
from stratum import failpoints
from stratum.connectors.base import Capabilities, Checkpoint, Column, Row, Schema, SqlSession
from stratum.connectors.duckdb._encoding import encode_columns
from stratum.connectors.postgres._codecs import json_exact
from stratum.connectors.sql import (
    CHECKPOINT_SCHEMA,
    CHECKPOINT_SELECT,
    CHECKPOINT_TABLE,
    ErrorTable,
    check_identifier,
    check_rows,
    checkpoint_from_row,
    checkpoint_params,
    checkpoint_table_ddl,
    checkpoint_upsert_sql,
    column_type,
    create_table_sql,
    last_row_per_key,
    on_conflict_sql,
    parse_type,
    quote,
    quoted_list,
    target_names,
    translated,
    upsert_key,
)
from stratum.errors import ConfigError, DestinationError, RowError
from stratum.plan.model import TableRef

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

__all__ = ["DuckDBDestination"]

T = TypeVar("T")
T2 = TypeVar("T2")
A = TypeVar("A")

_DIALECT = "duckdb"
_INTERVAL = exp.DataType.Type.INTERVAL
_JSON_TYPES = {exp.DataType.Type.JSON, exp.DataType.Type.JSONB}
_NAMED_TYPES = {exp.DataType.Type.USERDEFINED, exp.DataType.Type.INET}
_DEFAULT_SCHEMA = "main"


class DuckDBDestination:
    """Writes batches and their checkpoints into a DuckDB database at `path`."""

    capabilities = Capabilities(
        transactional=True,
        copy=True,
        transactional_ddl=True,
        upsert="on_conflict",
        max_identifier_length=255,
        dialect=_DIALECT,
    )

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)  # a file, or ":memory:"
        self._conn: DuckDBPyConnection | None = None
        self._catalog = ""
        self._errors: ErrorTable = ()
        self._root: type[BaseException] | None = None
        self._lock = anyio.Lock()  # this destination's calls, one at a time
        self._file_lock = _file_lock(self._path)  # every destination's calls on this file

    def __repr__(self) -> str:
        return f"DuckDBDestination({self._path!r})"

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            import duckdb  # noqa: PLC0415 (drivers are imported when a connector opens)
        except ImportError as exc:  # pragma: no cover - duckdb is a core dependency
            raise ConfigError(
                "the DuckDB destination needs the duckdb package: pip install stratum"
            ) from exc
        from stratum.connectors.duckdb import _errors  # noqa: PLC0415 (imports duckdb)

        self._errors, self._root = _errors.ERRORS, _errors.ROOT
        async with self._lock:
            if self._conn is not None:
                return
            with self._translated(f"opening DuckDB database {self._path!r}"):
                self._conn = await anyio.to_thread.run_sync(
                    self._locked, self._open_sync, duckdb.connect
                )

    def _open_sync(self, connect: Callable[[str], DuckDBPyConnection]) -> DuckDBPyConnection:
        conn = connect(self._path)
        try:
            conn.execute("SET TimeZone = 'UTC'")
            row = conn.execute("SELECT current_database()").fetchone()
            if row is None:
                raise DestinationError(f"DuckDB database {self._path!r} names no catalog")
            self._catalog = str(row[0])
            _in_transaction(conn, self._create_checkpoint_table)
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_checkpoint_table(self, conn: DuckDBPyConnection) -> None:
        conn.execute(
            f"CREATE SCHEMA IF NOT EXISTS {quote(self._catalog, _DIALECT)}."
            f"{quote(CHECKPOINT_SCHEMA, _DIALECT)}"
        )
        conn.execute(checkpoint_table_ddl(self._checkpoints, _DIALECT))

    async def close(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with self._translated("closing the DuckDB database"):
                    await anyio.to_thread.run_sync(conn.close)

    async def __aenter__(self) -> DuckDBDestination:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- checkpoints --------------------------------------------------------------------------

    async def checkpoint(self, item: str) -> Checkpoint | None:
        sql = (
            f"SELECT {quoted_list(CHECKPOINT_SELECT, _DIALECT)} FROM {self._checkpoints} "
            "WHERE item = $1"
        )

        def read(conn: DuckDBPyConnection) -> Checkpoint | None:
            row = conn.execute(sql, [item]).fetchone()
            return None if row is None else checkpoint_from_row(row)

        return await self._call(f"reading the checkpoint of item {item!r}", read)

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._call(
            f"saving the checkpoint of item {checkpoint.item!r}",
            lambda conn: _in_transaction(conn, lambda c: self._upsert_checkpoint(c, checkpoint)),
        )

    async def forget(self, item: str) -> None:
        sql = f"DELETE FROM {self._checkpoints} WHERE item = $1"
        await self._call(
            f"forgetting the checkpoint of item {item!r}",
            lambda conn: _in_transaction(conn, lambda c: c.execute(sql, [item])),
        )

    def _upsert_checkpoint(self, conn: DuckDBPyConnection, checkpoint: Checkpoint) -> None:
        conn.execute(
            checkpoint_upsert_sql(self._checkpoints, _DIALECT), list(checkpoint_params(checkpoint))
        )

    # --- the target ---------------------------------------------------------------------------

    async def prepare(
        self, target: TableRef, schema: Schema, mode: Mode, checkpoint: Checkpoint
    ) -> Checkpoint:
        qualified = self._qualified(target)
        schema_name = quote(self._catalog, _DIALECT) + "." + quote(_schema(target), _DIALECT)
        creatable = _duckdb_schema(schema)
        create = (
            None
            if "create" in checkpoint.steps
            else create_table_sql(qualified, creatable, _DIALECT)  # a bad type fails here
        )

        def steps(conn: DuckDBPyConnection) -> Checkpoint:
            done = list(checkpoint.steps)
            if create is not None:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema_name}")
                known = _known_types(conn, creatable)
                conn.execute(
                    create if known is creatable else create_table_sql(qualified, known, _DIALECT)
                )
                done.append("create")
            if mode == Mode.FULL and "truncate" not in done:
                conn.execute(f"TRUNCATE {qualified}")
                done.append("truncate")
            prepared = replace(checkpoint, steps=tuple(done))
            self._upsert_checkpoint(conn, prepared)
            return prepared

        return await self._call(
            f"preparing {target.text}", lambda conn: _in_transaction(conn, steps)
        )

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
        upsert = upsert_key(mode, key)
        schema = _duckdb_schema(schema)
        insert = self._insert_sql(target, schema, upsert)
        what = f"writing {len(rows)} rows to {target.text}"
        check_rows(target, schema, rows)
        rows = _duckdb_intervals(schema, rows)
        sent, rows = _exact_json(schema, rows)

        def work(conn: DuckDBPyConnection) -> None:
            if rows:
                batch = last_row_per_key(rows, schema.names, upsert) if upsert else rows
                with self._translated(what, rows=True):
                    conn.execute(insert, encode_columns(sent, batch))
            self._upsert_checkpoint(conn, checkpoint)
            if commit:
                failpoints.hit("before_commit")  # fault-injection tests: rows sent, no COMMIT

        await self._call(
            what,
            lambda conn: _in_transaction(
                conn, work, commit=commit, committing=self._translated(what, rows=True)
            ),
        )

    def _insert_sql(self, target: TableRef, schema: Schema, upsert: tuple[str, ...]) -> str:
        """INSERT ... SELECT of the batch's columns, each bound as one LIST parameter ($1...);
        with ON CONFLICT for an upsert."""
        names = schema.names
        for name in (*names, *upsert):
            check_identifier(name, self.capabilities.max_identifier_length)
        missing = [name for name in upsert if name not in names]
        if missing:
            raise ConfigError(f"{target.text}: the key column(s) {missing} are not in the rows")
        values = ", ".join(
            f"CAST(UNNEST(${number}) AS {column_type(column.type, _DIALECT, column.name)})"
            for number, column in enumerate(schema.columns, start=1)
        )
        sql = f"INSERT INTO {self._qualified(target)} ({quoted_list(names, _DIALECT)}) "
        sql += f"SELECT {values}"
        if upsert:
            sql += " " + on_conflict_sql(names, upsert, _DIALECT)
        return sql

    async def row_count(self, target: TableRef) -> int:
        sql = f"SELECT count(*) FROM {self._qualified(target)}"

        def count(conn: DuckDBPyConnection) -> int:
            row = conn.execute(sql).fetchone()
            return 0 if row is None else int(row[0])

        return await self._call(f"counting the rows of {target.text}", count)

    async def table_exists(self, target: TableRef) -> bool:
        # DuckDB matches names case-insensitively, quoted or not; so does this.
        sql = (
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = $1 "
            "AND lower(schema_name) = lower($2) AND lower(table_name) = lower($3)"
        )
        params = [self._catalog, _schema(target), _table(target)]

        def exists(conn: DuckDBPyConnection) -> bool:
            row = conn.execute(sql, params).fetchone()
            return row is not None and int(row[0]) > 0

        return await self._call(f"looking for {target.text}", exists)

    async def columns(self, target: TableRef) -> tuple[Column, ...] | None:
        """The existing target's columns, types spelt as PostgreSQL spells them; None when it
        does not exist."""
        sql = (
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_catalog = $1 AND lower(table_schema) = lower($2) "
            "AND lower(table_name) = lower($3) ORDER BY ordinal_position"
        )
        params = [self._catalog, _schema(target), _table(target)]

        def read(conn: DuckDBPyConnection) -> tuple[Column, ...] | None:
            rows = conn.execute(sql, params).fetchall()
            return (
                tuple(Column(str(r[0]), _pg_type(str(r[1])), r[2] == "YES") for r in rows) or None
            )

        return await self._call(f"reading the columns of {target.text}", read)

    # --- SQL of Stratum's making (stages, feature tables) ---------------------------------------

    def relation(self, target: TableRef) -> str:
        return self._qualified(target)

    def temporary(self, name: str) -> str:
        return f"temp.main.{quote(name, _DIALECT)}"

    async def in_transaction(self, what: str, work: Callable[[SqlSession], Awaitable[T]]) -> T:
        """`work` in one transaction; this destination's lock is held throughout, each
        statement runs in a worker thread under the file's lock."""
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise DestinationError(f"{what}: the DuckDB destination is not open")

            async def call(fn: Callable[[DuckDBPyConnection], T2]) -> T2:
                with self._translated(what):
                    return await anyio.to_thread.run_sync(self._locked, fn, conn)

            await call(lambda c: c.execute("BEGIN TRANSACTION"))
            try:
                result = await work(_Session(call, self))
                await call(lambda c: c.execute("COMMIT"))
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._locked, _rollback, conn)
                raise
            return result

    # --- helpers ------------------------------------------------------------------------------

    @property
    def _checkpoints(self) -> str:
        return ".".join(
            quote(part, _DIALECT) for part in (self._catalog, CHECKPOINT_SCHEMA, CHECKPOINT_TABLE)
        )

    def _qualified(self, target: TableRef) -> str:
        limit = self.capabilities.max_identifier_length
        schema, table = _schema(target), _table(target)
        check_identifier(schema, limit)
        check_identifier(table, limit)
        return ".".join(quote(part, _DIALECT) for part in (self._catalog, schema, table))

    def _translated(self, what: str, *, rows: bool = False) -> AbstractContextManager[None]:
        return translated(what, self._errors, rows=rows, fallback=self._root)

    async def _call(self, what: str, work: Callable[[DuckDBPyConnection], T]) -> T:
        """Run `work` with the connection in a worker thread, holding the lock."""
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise DestinationError(f"{what}: the DuckDB destination is not open")
            with self._translated(what):
                return await anyio.to_thread.run_sync(self._locked, work, conn)

    def _locked(self, work: Callable[[A], T], argument: A) -> T:
        with self._file_lock:
            return work(argument)


class _Session:
    """A transaction of `in_transaction` (stratum.connectors.base.SqlSession)."""

    def __init__(
        self,
        call: Callable[[Callable[[DuckDBPyConnection], Any]], Awaitable[Any]],
        destination: DuckDBDestination,
    ) -> None:
        self._call = call
        self._destination = destination

    async def execute(self, sql: str, *params: Any) -> None:
        await self._call(lambda c: c.execute(sql, list(params)))

    async def fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        rows = await self._call(lambda c: c.execute(sql, list(params)).fetchall())
        return [tuple(row) for row in rows]

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        upsert = self._destination._upsert_checkpoint
        await self._call(lambda c: upsert(c, checkpoint))


_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(path: str) -> threading.Lock:
    """The lock shared by every destination on the database file at `path` in this process."""
    if path.startswith(":memory:"):
        return threading.Lock()  # each connection to :memory: is a database of its own
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(os.path.realpath(path), threading.Lock())


def _in_transaction(
    conn: DuckDBPyConnection,
    work: Callable[[DuckDBPyConnection], T],
    *,
    commit: bool = True,
    committing: AbstractContextManager[None] | None = None,
) -> T:
    """`work` in one transaction, committed (or, with commit=False, rolled back) at the end;
    rolled back if anything raises. `committing` wraps the COMMIT (a constraint checked at
    commit is still about the rows)."""
    conn.execute("BEGIN TRANSACTION")
    try:
        result = work(conn)
        if commit:
            with committing or contextlib.nullcontext():
                conn.execute("COMMIT")
        else:
            conn.execute("ROLLBACK")
    except BaseException:
        _rollback(conn)
        raise
    return result


def _rollback(conn: DuckDBPyConnection) -> None:
    # A failed statement or COMMIT may have ended the transaction already; the first error is
    # the one that matters, so a failing ROLLBACK is not reported over it.
    with contextlib.suppress(Exception):
        conn.execute("ROLLBACK")


def _schema(target: TableRef) -> str:
    return target_names(target, _DEFAULT_SCHEMA)[0]


def _table(target: TableRef) -> str:
    return target_names(target, _DEFAULT_SCHEMA)[1]


_BIT_STRING = re.compile(r"\s*(bit(\s+varying)?|varbit)\s*(\(\s*\d+\s*\))?\s*", re.IGNORECASE)


def _duckdb_schema(schema: Schema) -> Schema:
    """`schema` with bit strings (bit(n), bit varying(n)) as text: their values, '0'/'1' strs,
    are stored as they are. DuckDB's own BIT would hold them too, but reads back as `bit`,
    which the engine cannot match with the item's bit varying(n), so every run (which coerces
    rows to the existing target's types) would fail."""
    if not any(_BIT_STRING.fullmatch(c.type) for c in schema.columns):
        return schema
    columns = tuple(
        replace(c, type="text") if _BIT_STRING.fullmatch(c.type) else c for c in schema.columns
    )
    return replace(schema, columns=columns)


def _known_types(conn: DuckDBPyConnection, schema: Schema) -> Schema:
    """`schema` with the named types DuckDB does not have as text: a PostgreSQL enum or domain,
    citext, inet without its extension (sqlglot reads such names as user-defined types). The
    engine then converts their values to text exactly, as for an existing text column (a
    label, an address as PostgreSQL prints it). `schema` itself when DuckDB knows them all."""
    named = {
        c.name: c.type.strip().lower()
        for c in schema.columns
        if parse_type(c.type, c.name).this in _NAMED_TYPES
    }
    if not named:
        return schema
    found = conn.execute(
        "SELECT DISTINCT lower(type_name) FROM duckdb_types() WHERE lower(type_name) IN "
        f"({', '.join('?' for _ in named)})",
        list(named.values()),
    ).fetchall()
    known = {str(row[0]) for row in found}
    missing = {name for name, type_ in named.items() if type_ not in known}
    if not missing:
        return schema
    columns = tuple(replace(c, type="text") if c.name in missing else c for c in schema.columns)
    return replace(schema, columns=columns)


def _duckdb_intervals(schema: Schema, rows: Sequence[Row]) -> Sequence[Row]:
    """Intervals as PostgreSQL prints them ('-1 years +3 days') without the '+' that marks a
    positive field after a negative one: DuckDB refuses it, and reads each field with its own
    sign anyway."""
    at = [
        i
        for i, c in enumerate(schema.columns)
        if not _BIT_STRING.fullmatch(c.type) and parse_type(c.type, c.name).this == _INTERVAL
    ]
    if not at or not rows:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for i in at:
            if isinstance(values[i], str):
                values[i] = values[i].replace("+", "")
        out.append(tuple(values))
    return out


def _exact_json(schema: Schema, rows: Sequence[Row]) -> tuple[Schema, Sequence[Row]]:
    """The rows with each JSON value as JSON text written by `json_exact` (a Decimal inside, a
    number a float cannot hold, with every digit: `encode_columns`' plain encoder refuses it),
    and the schema `encode_columns` is to read them with: those columns as text, so their text
    is sent as it is (the INSERT still casts it to the column's JSON). RowError, naming the
    column, for a value that is not JSON (NaN, an object JSON has no form for)."""
    at = [
        i
        for i, c in enumerate(schema.columns)
        if not _BIT_STRING.fullmatch(c.type) and parse_type(c.type, c.name).this in _JSON_TYPES
    ]
    if not at:
        return schema, rows
    out = []
    for row in rows:
        values = list(row)
        for i in at:
            if values[i] is not None:
                try:
                    values[i] = json_exact(values[i])
                except (TypeError, ValueError) as exc:
                    raise RowError(f"column {schema.columns[i].name!r}: {exc}") from exc
        out.append(tuple(values))
    columns = tuple(replace(c, type="text") if i in at else c for i, c in enumerate(schema.columns))
    return replace(schema, columns=columns), out


def _pg_type(duck_type: str) -> str:
    """A DuckDB type name as PostgreSQL spells it (DECIMAL(12,2) -> numeric(12,2))."""
    try:
        return exp.DataType.build(duck_type, dialect="duckdb").sql("postgres").lower()
    except (ValueError, ParseError):  # an exotic type sqlglot does not know: keep DuckDB's name
        return duck_type.lower()
