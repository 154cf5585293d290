"""The PostgreSQL destination: binary COPY, with the checkpoint in the same transaction.

Connections come from a small asyncpg pool (a lost connection is replaced on the next call).
Every public method runs in one transaction on one connection:

* append, full, incremental without a key: `COPY target (columns) FROM STDIN (FORMAT binary)`
  (asyncpg's `copy_records_to_table`), then the checkpoint upsert, then COMMIT;
* upsert, incremental with a key: COPY into a temporary table (ON COMMIT DROP) shaped like the
  target, then `INSERT INTO target SELECT ... ON CONFLICT (key) DO UPDATE`, then the checkpoint,
  then COMMIT. The last row of a key in the batch wins, as if the rows were applied one by one
  (`last_row_per_key`).

A probe (`commit=False`) does the same and rolls back. The statement cache is off: asyncpg
describes a COPY's target once per call instead of trusting a description cached before a table
was dropped and created again with other types. Values are encoded as `_codecs` says.

A target Stratum creates gets the item's column types (`bit varying(n)` is read by
`connectors.sql.parse_type`, which spells it `varbit(n)`), except that a type the target
database does not have (`to_regtype` finds nothing: an enum or a domain of the source
database, which a table copy does not bring along) becomes `text`, into which the engine
converts the values exactly (an enum's label, a domain's base value as text).

Names are always qualified (`"public"."orders"` when the plan names no schema) and quoted;
names longer than PostgreSQL's 63 bytes are refused rather than silently truncated.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, TypeVar

import anyio

from smql import Mode
from stratum import failpoints
from stratum.connectors.base import (
    Capabilities,
    Checkpoint,
    Column,
    CopyFormat,
    DdlStatement,
    Row,
    Schema,
    SqlSession,
)
from stratum.connectors.postgres._connect import create_pool
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
    quote,
    quoted_list,
    target_names,
    translated,
    upsert_key,
)
from stratum.errors import ConfigError, DestinationError
from stratum.plan.model import TableRef

__all__ = ["PostgresDestination"]

T = TypeVar("T")

_DIALECT = "postgres"
_DEFAULT_SCHEMA = "public"
_STAGE = "stratum_stage"  # the temporary table an upsert batch is copied into
_CONNECT_TIMEOUT = 30.0
_CLOSE_TIMEOUT = 10.0
_ROLLBACK_TIMEOUT = 10.0

# Serialises Stratum's CREATEs between concurrent transactions (parallel items, concurrent
# first runs): two CREATE ... IF NOT EXISTS of one schema can otherwise both try to create it,
# and one fails on a unique index of the catalog. Held to the end of the transaction.
_DDL_LOCK = 0x5354_5241_5455_4D31  # "STRATUM1", any fixed 64-bit number

_COLUMNS = """
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_RELATION_EXISTS = """
SELECT EXISTS (
    SELECT 1 FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'f')
)"""
_SCHEMA_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)"


class PostgresDestination:
    """Writes batches and their checkpoints into the PostgreSQL database at `url`."""

    capabilities = Capabilities(
        transactional=True,
        copy=True,
        transactional_ddl=True,
        upsert="on_conflict",
        max_identifier_length=63,  # bytes of UTF-8, not characters
        dialect=_DIALECT,
    )

    def __init__(self, url: str, *, max_connections: int = 2) -> None:
        self._url = url  # holds the password: never put it in a message
        self._max_connections = max_connections
        self._pool: Any = None
        self._errors: ErrorTable = ()
        self._roots: tuple[type[BaseException], ...] = ()

    def __repr__(self) -> str:
        return "PostgresDestination(<url>)"

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            import asyncpg  # noqa: F401, PLC0415 (checked on open: a missing driver names its extra)
        except ImportError as exc:
            raise ConfigError(
                "the PostgreSQL destination needs asyncpg: pip install 'stratum[postgres]'"
            ) from exc
        from stratum.connectors.postgres import _codecs, _errors  # noqa: PLC0415 (asyncpg)

        self._errors, self._roots = _errors.ERRORS, _errors.ROOTS
        pool = await create_pool(
            self._url,
            translate=self._translated,
            min_size=1,
            max_size=self._max_connections,
            statement_cache_size=0,
            timeout=_CONNECT_TIMEOUT,
            init=_codecs.init_connection,
            server_settings={"application_name": "stratum"},
        )
        self._pool = pool
        try:
            await self._transaction("creating stratum.checkpoints", self._create_checkpoint_table)
        except BaseException:
            self._pool = None
            pool.terminate()
            raise

    async def _create_checkpoint_table(self, conn: Any) -> None:
        if await conn.fetchval(_RELATION_EXISTS, CHECKPOINT_SCHEMA, CHECKPOINT_TABLE):
            return  # also spares a role without CREATE the attempt
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(CHECKPOINT_SCHEMA, _DIALECT)}")
        await conn.execute(checkpoint_table_ddl(_CHECKPOINTS, _DIALECT))

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(_CLOSE_TIMEOUT) as scope:
                await pool.close()
            if scope.cancelled_caught:
                pool.terminate()

    async def __aenter__(self) -> PostgresDestination:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- checkpoints --------------------------------------------------------------------------

    async def checkpoint(self, item: str) -> Checkpoint | None:
        sql = (
            f"SELECT {quoted_list(CHECKPOINT_SELECT, _DIALECT)} FROM {_CHECKPOINTS} WHERE item = $1"
        )

        async def read(conn: Any) -> Checkpoint | None:
            row = await conn.fetchrow(sql, item)
            return None if row is None else checkpoint_from_row(tuple(row))

        return await self._transaction(f"reading the checkpoint of item {item!r}", read)

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        async def save(conn: Any) -> None:
            await self._upsert_checkpoint(conn, checkpoint)

        await self._transaction(f"saving the checkpoint of item {checkpoint.item!r}", save)

    async def forget(self, item: str) -> None:
        async def delete(conn: Any) -> None:
            await conn.execute(f"DELETE FROM {_CHECKPOINTS} WHERE item = $1", item)

        await self._transaction(f"forgetting the checkpoint of item {item!r}", delete)

    async def _upsert_checkpoint(self, conn: Any, checkpoint: Checkpoint) -> None:
        await conn.execute(_CHECKPOINT_UPSERT, *checkpoint_params(checkpoint))

    # --- schema (MIGRATE DATABASE) ------------------------------------------------------------

    async def apply_ddl(
        self, statements: Sequence[DdlStatement], checkpoint: Checkpoint | None
    ) -> None:
        """The statements not yet done, and the checkpoint that records them, in ONE
        transaction: PostgreSQL's DDL is transactional, so a crash leaves all or none."""

        async def work(conn: Any) -> None:
            for statement in statements:
                if statement.done is not None and await conn.fetchrow(statement.done):
                    continue
                with self._translated(statement.what):
                    await conn.execute(statement.sql)
            if checkpoint is not None:
                await self._upsert_checkpoint(conn, checkpoint)

        what = statements[0].what if len(statements) == 1 else f"{len(statements)} statements"
        await self._transaction(what, work)

    # --- SQL of Stratum's making (stages, feature tables) ---------------------------------------

    def relation(self, target: TableRef) -> str:
        return _qualified(*self._names(target))

    def temporary(self, name: str) -> str:
        return f"pg_temp.{quote(name, _DIALECT)}"

    async def in_transaction(self, what: str, work: Callable[[SqlSession], Awaitable[T]]) -> T:
        async def run(conn: Any) -> T:
            return await work(_Session(conn, self))

        return await self._transaction(what, run)

    # --- the target ---------------------------------------------------------------------------

    async def prepare(
        self, target: TableRef, schema: Schema, mode: Mode, checkpoint: Checkpoint
    ) -> Checkpoint:
        schema_name, table = self._names(target)
        qualified = _qualified(schema_name, table)
        quoted_schema = quote(schema_name, _DIALECT)
        # a bad type fails here, before anything is done; with "create" done there is no schema
        create = (
            "" if "create" in checkpoint.steps else create_table_sql(qualified, schema, _DIALECT)
        )

        async def steps(conn: Any) -> Checkpoint:
            done = list(checkpoint.steps)
            if "create" not in done:
                # Looked up first: CREATE ... IF NOT EXISTS of something that exists still
                # needs the privilege to create it, which a role loading an existing table
                # may well not have.
                if not await conn.fetchval(_RELATION_EXISTS, schema_name, table):
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
                    if not await conn.fetchval(_SCHEMA_EXISTS, schema_name):
                        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted_schema}")
                    known = await _known_types(conn, schema)
                    if known is not schema:
                        create_sql = create_table_sql(qualified, known, _DIALECT)
                    else:
                        create_sql = create
                    await conn.execute(create_sql)
                done.append("create")
            if mode == Mode.FULL and "truncate" not in done:
                await conn.execute(f"TRUNCATE TABLE {qualified}")
                done.append("truncate")
            prepared = replace(checkpoint, steps=tuple(done))
            await self._upsert_checkpoint(conn, prepared)
            return prepared

        return await self._transaction(f"preparing {target.text}", steps)

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
        schema_name, table = self._names(target)
        names = schema.names
        upsert = upsert_key(mode, key)
        for name in (*names, *upsert):
            check_identifier(name, self.capabilities.max_identifier_length, in_bytes=True)
        missing = [name for name in upsert if name not in names]
        if missing:
            raise ConfigError(f"{target.text}: the key column(s) {missing} are not in the rows")
        check_rows(target, schema, rows)
        what = f"writing {len(rows)} rows to {target.text}"
        qualified = _qualified(schema_name, table)

        async def work(conn: Any) -> None:
            if rows:
                with self._translated(what, rows=True):
                    if upsert:
                        await self._copy_upsert(conn, qualified, names, upsert, rows)
                    else:
                        await conn.copy_records_to_table(
                            table, records=rows, columns=names, schema_name=schema_name
                        )
            await self._upsert_checkpoint(conn, checkpoint)
            if commit:
                failpoints.hit("before_commit")  # fault-injection tests: rows sent, no COMMIT

        await self._transaction(what, work, commit=commit, rows_at_commit=True)

    async def write_text(
        self,
        target: TableRef,
        schema: Schema,
        rows: Sequence[Row],
        checkpoint: Checkpoint,
        *,
        copy: tuple[CopyFormat, str | bytes] | None = None,
    ) -> None:
        """Rows of text (str or None) through COPY ... FORMAT csv: the server parses each
        value by its column's type, so Python converts nothing. csv's C writer quotes every
        string (an empty string is "") and writes NULL as nothing at all, which COPY reads as
        NULL: the two never meet."""
        schema_name, table = self._names(target)
        names = schema.names
        for name in names:
            check_identifier(name, self.capabilities.max_identifier_length, in_bytes=True)
        what = f"writing {len(rows)} rows to {target.text}"
        fmt = copy[0] if copy is not None else CSV_WRITTEN
        if copy is not None:  # the source encoded the rows itself: sent as they are
            raw = copy[1]
            data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
        else:
            data = await anyio.to_thread.run_sync(csv_bytes, rows) if rows else b""

        async def work(conn: Any) -> None:
            if rows:
                with self._translated(what, rows=True):
                    await conn.copy_to_table(
                        table,
                        source=_chunks(data),
                        columns=names,
                        schema_name=schema_name,
                        format=fmt.format,
                        delimiter=fmt.delimiter,
                        quote=fmt.quote,
                        null=fmt.null,
                        force_null=list(names) if fmt.force_null else None,
                    )
            await self._upsert_checkpoint(conn, checkpoint)
            failpoints.hit("before_commit")

        await self._transaction(what, work, rows_at_commit=True)

    async def write_staged(  # noqa: PLR0917 - the StagingDestination protocol's signature
        self,
        target: TableRef,
        schema: Schema,
        columns: Sequence[str],
        copy: tuple[CopyFormat, str | bytes],
        select: str,
        checkpoint_of: Callable[[int], Checkpoint],
    ) -> int:
        """The batch's text into a temporary table of text columns (COPY), then `INSERT INTO
        target SELECT ...` from it, then the checkpoint of what was inserted: one transaction,
        so the transform runs in the server and the rows never reach Python."""
        from stratum.transforms.staging import STAGE_TABLE  # noqa: PLC0415 (layering)

        schema_name, table = self._names(target)
        names = schema.names
        qualified = _qualified(schema_name, table)
        fmt, raw = copy
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
        stage_columns = ", ".join(f"{quote(c, _DIALECT)} text" for c in columns)
        what = f"writing to {target.text}"

        async def work(conn: Any) -> int:
            with self._translated(what, rows=True):
                await conn.execute(
                    f"CREATE TEMPORARY TABLE {quote(STAGE_TABLE, _DIALECT)} ({stage_columns}) "
                    "ON COMMIT DROP"
                )
                await conn.copy_to_table(
                    STAGE_TABLE,
                    source=_chunks(data),
                    columns=list(columns),
                    schema_name="pg_temp",
                    format=fmt.format,
                    delimiter=fmt.delimiter,
                    quote=fmt.quote,
                    null=fmt.null,
                    force_null=list(columns) if fmt.force_null else None,
                )
                status = await conn.execute(
                    f"INSERT INTO {qualified} ({quoted_list(names, _DIALECT)}) {select}"
                )
            written = int(status.rsplit(" ", 1)[-1])
            await self._upsert_checkpoint(conn, checkpoint_of(written))
            failpoints.hit("before_commit")
            return written

        return await self._transaction(what, work, rows_at_commit=True)

    async def _copy_upsert(
        self,
        conn: Any,
        qualified: str,
        names: tuple[str, ...],
        key: tuple[str, ...],
        rows: Sequence[Row],
    ) -> None:
        columns = quoted_list(names, _DIALECT)
        stage = f"pg_temp.{quote(_STAGE, _DIALECT)}"
        # The stage has the target's column types, and no constraint: rows reach the INSERT,
        # where the target's constraints judge them.
        await conn.execute(
            f"CREATE TEMPORARY TABLE {quote(_STAGE, _DIALECT)} ON COMMIT DROP AS "
            f"SELECT {columns} FROM {qualified} WITH NO DATA"
        )
        batch = last_row_per_key(rows, names, key)
        await conn.copy_records_to_table(
            _STAGE, records=batch, columns=names, schema_name="pg_temp"
        )
        await conn.execute(
            f"INSERT INTO {qualified} ({columns}) SELECT {columns} FROM {stage} "
            + on_conflict_sql(names, key, _DIALECT)
        )

    async def row_count(self, target: TableRef) -> int:
        qualified = _qualified(*self._names(target))

        async def count(conn: Any) -> int:
            return int(await conn.fetchval(f"SELECT count(*) FROM {qualified}"))

        return await self._transaction(f"counting the rows of {target.text}", count)

    async def table_exists(self, target: TableRef) -> bool:
        schema_name, table = self._names(target)

        async def exists(conn: Any) -> bool:
            return bool(await conn.fetchval(_RELATION_EXISTS, schema_name, table))

        return await self._transaction(f"looking for {target.text}", exists)

    async def columns(self, target: TableRef) -> tuple[Column, ...] | None:
        """The existing target's columns with their types as PostgreSQL spells them, in order;
        None when it does not exist."""
        schema_name, table = self._names(target)

        async def read(conn: Any) -> tuple[Column, ...] | None:
            rows = await conn.fetch(_COLUMNS, schema_name, table)
            return tuple(Column(r["name"], r["type"], not r["notnull"]) for r in rows) or None

        return await self._transaction(f"reading the columns of {target.text}", read)

    # --- helpers ------------------------------------------------------------------------------

    def _names(self, target: TableRef) -> tuple[str, str]:
        schema_name, table = target_names(target, _DEFAULT_SCHEMA)
        for name in (schema_name, table):
            check_identifier(name, self.capabilities.max_identifier_length, in_bytes=True)
        return schema_name, table

    def _translated(self, what: str, *, rows: bool = False) -> AbstractContextManager[None]:
        return translated(what, self._errors, rows=rows, fallback=self._roots)

    async def _transaction(
        self,
        what: str,
        work: Callable[[Any], Awaitable[T]],
        *,
        commit: bool = True,
        rows_at_commit: bool = False,
    ) -> T:
        """`work(conn)` in one transaction on a pooled connection: committed, or with
        commit=False rolled back; rolled back when anything raises. With `rows_at_commit`, an
        error at COMMIT (a deferred constraint) is about the rows."""
        pool = self._pool
        if pool is None:
            raise DestinationError(f"{what}: the PostgreSQL destination is not open")
        with self._translated(what):
            async with pool.acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                try:
                    result = await work(conn)
                    if commit:
                        with self._translated(what, rows=rows_at_commit):
                            await transaction.commit()
                    else:
                        await transaction.rollback()
                except BaseException:
                    await _rollback(transaction)
                    raise
                return result


_CHUNK = 1 << 16
#: What csv_bytes writes: every string quoted, NULL as nothing (COPY's defaults for csv).
CSV_WRITTEN = CopyFormat("csv")


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    """COPY data for asyncpg in 64 KiB pieces. An async iterator, not a file: asyncpg reads a
    file in a worker thread, and each batch read that way left memory behind (the process grew
    by ~55 MB per 100 batches of 1 MB)."""
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        yield bytes(view[start : start + _CHUNK])


class _Null(float):
    """NULL for csv's writer: a number (never quoted) that prints as nothing. With
    QUOTE_NONNUMERIC every string is quoted, so COPY reads this, and only this, as NULL."""

    __slots__ = ()

    def __repr__(self) -> str:
        return ""

    __str__ = __repr__


_NULL = _Null()


def csv_bytes(rows: Sequence[Row]) -> bytes:
    """Text rows as COPY ... FORMAT csv reads them (UTF-8); runs in a worker thread."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    null = _NULL
    writer.writerows(
        row if None not in row else tuple([null if v is None else v for v in row]) for row in rows
    )
    return out.getvalue().encode("utf-8", "surrogateescape")


async def _rollback(transaction: Any) -> None:
    """Roll back after a failure, even when cancelled; the first error is the one reported (the
    pool resets or discards a connection whose rollback failed)."""
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(_ROLLBACK_TIMEOUT),
        contextlib.suppress(Exception),  # already rolled back, or the connection is gone
    ):
        await transaction.rollback()


_KNOWN_TYPES = "SELECT t, to_regtype(t) IS NOT NULL FROM unnest($1::text[]) AS t"


async def _known_types(conn: Any, schema: Schema) -> Schema:
    """`schema` with every type the target database does not have (an enum or a domain of the
    source database, which a table copy does not bring along) made `text`: such values are
    labels or base-type values, and the engine then converts them to text exactly (as its
    coercion to an existing text column does). `schema` itself when every type exists."""
    spelt = {c.name: column_type(c.type, _DIALECT, c.name) for c in schema.columns}
    rows = await conn.fetch(_KNOWN_TYPES, sorted(set(spelt.values())))
    missing = {r[0] for r in rows if not r[1]}
    if not missing:
        return schema
    columns = tuple(
        replace(c, type="text") if spelt[c.name] in missing else c for c in schema.columns
    )
    return replace(schema, columns=columns)


class _Session:
    """A transaction of `in_transaction` (stratum.connectors.base.SqlSession)."""

    def __init__(self, conn: Any, destination: PostgresDestination) -> None:
        self._conn = conn
        self._destination = destination

    async def execute(self, sql: str, *params: Any) -> None:
        await self._conn.execute(sql, *params)

    async def fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._conn.fetch(sql, *params)]

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._destination._upsert_checkpoint(self._conn, checkpoint)


def _qualified(schema_name: str, table: str) -> str:
    return f"{quote(schema_name, _DIALECT)}.{quote(table, _DIALECT)}"


_CHECKPOINTS = _qualified(CHECKPOINT_SCHEMA, CHECKPOINT_TABLE)
_CHECKPOINT_UPSERT = checkpoint_upsert_sql(_CHECKPOINTS, _DIALECT)
