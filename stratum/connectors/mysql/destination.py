"""The MySQL/MariaDB destination: multi-row INSERTs, with the checkpoint in the same transaction.

One asyncmy session (`_connect.connect`, the source's URL parsing; `?driver=` is ignored: the
destination always writes through asyncmy), made when the destination opens and made again on
the next call after it was lost. The session is set up for writing faithfully: autocommit off,
`sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'` (a bad value raises instead of being
truncated or replaced, in every engine; backslash escapes on, as the driver's escaping needs),
`time_zone = '+00:00'`, utf8mb4. Every public method runs in one transaction:

* append, full, incremental without a key: `INSERT INTO target (columns) VALUES (...), (...)`
  (asyncmy's `executemany` packs the rows into multi-row INSERTs of at most ~1 MB each, well
  under max_allowed_packet), then the checkpoint upsert, then COMMIT;
* upsert, incremental with a key: the same INSERT with `ON DUPLICATE KEY UPDATE c = VALUES(c)`
  (the spelling MariaDB and MySQL both take). Rows apply in order, so the last row of a key in
  the batch wins. MySQL cannot name the conflict key: the target must have a primary key or
  unique index on exactly the KEY columns (checked, DestinationError otherwise, as PostgreSQL's
  ON CONFLICT refuses), and a row that collides on another unique index updates that row.

A probe (`commit=False`) does the same and rolls back.

The checkpoint table is `stratum_checkpoints` in the connection's database, not
`stratum.checkpoints`: MySQL has no schemas inside a database (a schema *is* a database), and a
`stratum` database would need the privilege to create databases, would be shared by every
database on the server, and would put a target and its checkpoint in two databases. Its
columns are those of `CHECKPOINT_COLUMNS` (cursor and steps as JSON text), with MySQL types.
Tables are created with ENGINE=InnoDB: the exactly-once promise needs a transactional engine.

TableRef.schema is a database: None means the connection's database (the URL's path). Names are
always qualified (`db`.`table`) and quoted; names longer than 64 characters are refused.

DDL is not transactional in MySQL: CREATE and TRUNCATE commit implicitly. So `prepare` records
each step in the checkpoint right after doing it, in a commit of its own (create, then
truncate), and Capabilities says transactional_ddl=False. A crash between a step and the commit
that records it is still safe: the step is done again on the next run, and both are idempotent
at that point. CREATE TABLE IF NOT EXISTS of a table that exists does nothing; a TRUNCATE
repeated loses nothing, because no batch can have committed between it and its record (the
engine writes batches only after `prepare` returned, and a batch's checkpoint carries the steps).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, TypeVar

import anyio

from smql import Mode
from stratum import failpoints
from stratum.connectors.base import Capabilities, Checkpoint, Column, DdlStatement, Row, Schema
from stratum.connectors.mysql import _dest_errors
from stratum.connectors.mysql._dest_types import column_ddl, encode_rows, pg_type
from stratum.connectors.mysql._errors import DriverErrors
from stratum.connectors.sql import (
    CHECKPOINT_COLUMNS,
    CHECKPOINT_SELECT,
    Fault,
    check_identifier,
    check_rows,
    checkpoint_from_row,
    checkpoint_params,
    quote,
    target_names,
    upsert_key,
)
from stratum.errors import (
    ConfigError,
    ConnectionLost,
    DestinationError,
    SourceError,
    StratumError,
)
from stratum.plan.model import TableRef

__all__ = ["MySQLDestination"]

T = TypeVar("T")

_DIALECT = "mysql"
_CHECKPOINT_TABLE = "stratum_checkpoints"
_SESSION = (
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
    "time_zone = '+00:00', autocommit = 0"
)
_ROLLBACK_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 5.0

#: The checkpoint table's columns as MySQL types (same names and order as CHECKPOINT_COLUMNS).
_CHECKPOINT_TYPES = {
    "item": "VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY",
    "item_hash": "TEXT NOT NULL",
    "plan_hash": "TEXT NOT NULL",
    "run_id": "TEXT NOT NULL",
    "cursor": "LONGTEXT",
    "batches": "BIGINT NOT NULL",
    "rows_read": "BIGINT NOT NULL",
    "rows_written": "BIGINT NOT NULL",
    "rows_rejected": "BIGINT NOT NULL",
    "rows_filtered": "BIGINT NOT NULL",
    "steps": "TEXT NOT NULL",
    "finished": "TINYINT(1) NOT NULL",
    "updated_at": "DATETIME(6) NOT NULL",
}

_TABLE = "SELECT engine FROM information_schema.tables WHERE table_schema = %s AND table_name = %s"
_DATABASE = "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s"
_COLUMNS = (
    "SELECT column_name, column_type, is_nullable FROM information_schema.columns "
    "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position"
)
_CHECKS = (  # MariaDB's JSON columns are LONGTEXT with CHECK (json_valid(`c`))
    "SELECT check_clause FROM information_schema.check_constraints "
    "WHERE constraint_schema = %s AND table_name = %s"
)
_JSON_CHECK = re.compile(r"^\s*json_valid\(`((?:[^`]|``)+)`\)\s*$", re.IGNORECASE)
_UNIQUE = (
    "SELECT index_name, column_name FROM information_schema.statistics "
    "WHERE table_schema = %s AND table_name = %s AND non_unique = 0 "
    "ORDER BY index_name, seq_in_index"
)


def _q(name: str) -> str:
    """`name` quoted for MySQL, with % doubled: the driver formats SQL text with %."""
    return quote(name, _DIALECT).replace("%", "%%")


def _ql(names: Sequence[str]) -> str:
    return ", ".join(_q(name) for name in names)


def _on_duplicate(names: Sequence[str], key: Sequence[str]) -> str:
    """The upsert's clause. Its `%` are NOT doubled: asyncmy's executemany cuts a multi-row
    INSERT into the part before VALUES (which it formats, so `%%` becomes `%`), the values, and
    what follows them, which it sends as it is (a column `a%b` would arrive as `a%%b`)."""
    rest = [name for name in names if name not in key] or list(key[:1])  # all key: a no-op
    plain = [quote(name, _DIALECT) for name in rest]
    return "ON DUPLICATE KEY UPDATE " + ", ".join(f"{n} = VALUES({n})" for n in plain)


class MySQLDestination:
    """Writes batches and their checkpoints into the MySQL or MariaDB database at `url`."""

    capabilities = Capabilities(
        transactional=True,
        copy=False,
        transactional_ddl=False,
        upsert="on_duplicate_key",
        max_identifier_length=64,  # characters
        dialect=_DIALECT,
    )

    def __init__(self, url: str) -> None:
        self._url = url  # holds the password: never put it in a message
        self._conn: Any = None  # _connect.MySQLConnection
        self._database = ""
        self._mariadb = False
        self._errors: DriverErrors | None = None
        self._lock = anyio.Lock()
        self._open = False
        self._unique_keys: dict[tuple[str, str, tuple[str, ...]], bool] = {}

    def __repr__(self) -> str:
        return "MySQLDestination(<url>)"

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._lock:
            if self._conn is not None:
                return
            await self._connect()
            await self._run_locked(f"creating {_CHECKPOINT_TABLE}", self._create_checkpoint_table)
            self._open = True

    async def _connect(self) -> Any:
        from stratum.connectors.mysql._connect import connect  # noqa: PLC0415 (imports asyncmy)

        try:
            conn = await connect(self._url, driver="asyncmy")
        except ConfigError as exc:
            if "not installed" in str(exc):
                raise ConfigError(
                    "the MySQL destination needs asyncmy: pip install 'stratum[mysql]'"
                ) from exc
            raise
        except SourceError as exc:  # the connector's shared connect speaks for a source
            raise DestinationError(str(exc)) from exc.__cause__
        self._errors = conn.errors
        try:
            with self._translated("setting up the MySQL session"):
                await conn.execute(_SESSION)
                await conn._raw.autocommit(False)
                rows = await conn.fetchall("SELECT DATABASE(), VERSION()")
        except BaseException:
            conn.abort()
            raise
        database, version = rows[0]
        if not database:
            conn.abort()
            raise ConfigError("the MySQL destination's URL names no database (mysql://.../db)")
        self._database = str(database)
        self._mariadb = "mariadb" in str(version).lower()
        self._conn = conn
        return conn

    async def _create_checkpoint_table(self, conn: Any) -> None:
        if await conn.fetchall(_TABLE, (self._database, _CHECKPOINT_TABLE)):
            return  # also spares a user without CREATE the attempt
        columns = ", ".join(
            f"{_q(name)} {_CHECKPOINT_TYPES[name]}" for name, _ in CHECKPOINT_COLUMNS
        )
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self._checkpoints} ({columns}) "
            "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            (),
        )

    async def close(self) -> None:
        self._open = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
                await conn.close()

    async def __aenter__(self) -> MySQLDestination:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- checkpoints --------------------------------------------------------------------------

    async def checkpoint(self, item: str) -> Checkpoint | None:
        sql = f"SELECT {_ql(CHECKPOINT_SELECT)} FROM {self._checkpoints} WHERE item = %s"

        async def read(conn: Any) -> Checkpoint | None:
            rows = await conn.fetchall(sql, (item,))
            return checkpoint_from_row(rows[0]) if rows else None

        return await self._transaction(f"reading the checkpoint of item {item!r}", read)

    async def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        async def save(conn: Any) -> None:
            await self._upsert_checkpoint(conn, checkpoint)

        await self._transaction(f"saving the checkpoint of item {checkpoint.item!r}", save)

    async def forget(self, item: str) -> None:
        async def delete(conn: Any) -> None:
            await conn.execute(f"DELETE FROM {self._checkpoints} WHERE item = %s", (item,))

        await self._transaction(f"forgetting the checkpoint of item {item!r}", delete)

    async def _upsert_checkpoint(self, conn: Any, checkpoint: Checkpoint) -> None:
        names = [name for name, _ in CHECKPOINT_COLUMNS]
        values = ", ".join(["%s"] * len(names))
        await conn.execute(
            f"INSERT INTO {self._checkpoints} ({_ql(names)}) VALUES ({values}) "
            + _on_duplicate(names, ("item",)),
            checkpoint_params(checkpoint),
        )

    # --- schema (MIGRATE DATABASE) ------------------------------------------------------------

    async def apply_ddl(
        self, statements: Sequence[DdlStatement], checkpoint: Checkpoint | None
    ) -> None:
        """Each statement not yet done, then the checkpoint. MySQL commits every DDL statement
        on its own, so a crash can leave a step half done: its `done` queries make the redo
        skip what is already there."""
        for statement in statements:

            async def one(conn: Any, statement: DdlStatement = statement) -> None:
                if statement.done is not None and await conn.fetchall(statement.done):
                    return
                with self._translated(statement.what):
                    await conn.execute(statement.sql)

            await self._transaction(statement.what, one)
        if checkpoint is not None:
            await self.save_checkpoint(checkpoint)

    # --- the target ---------------------------------------------------------------------------

    async def prepare(
        self, target: TableRef, schema: Schema, mode: Mode, checkpoint: Checkpoint
    ) -> Checkpoint:
        database, table = self._names(target)
        qualified = _qualified(database, table)
        what = f"preparing {target.text}"
        done = list(checkpoint.steps)

        async def record(conn: Any) -> Checkpoint:
            prepared = replace(checkpoint, steps=tuple(done))
            await self._upsert_checkpoint(conn, prepared)
            return prepared

        if "create" not in done:
            if not schema.columns:
                raise DestinationError(f"cannot create {target.text}: the schema has no columns")
            parts = column_ddl(schema, _q)
            if schema.primary_key:
                parts.append(f"PRIMARY KEY ({_ql(schema.primary_key)})")
            create = (
                f"CREATE TABLE IF NOT EXISTS {qualified} ({', '.join(parts)}) "
                "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            )

            async def create_table(conn: Any) -> Checkpoint:
                # Looked up first: CREATE ... IF NOT EXISTS of something that exists still needs
                # the privilege to create it, which a user loading an existing table may lack.
                existing = await conn.fetchall(_TABLE, (database, table))
                if not existing:
                    if not await conn.fetchall(_DATABASE, (database,)):
                        await conn.execute(f"CREATE DATABASE IF NOT EXISTS {_q(database)}", ())
                    await conn.execute(create, ())  # commits implicitly
                else:
                    _check_engine(target, existing[0][0])
                done.append("create")
                return await record(conn)

            checkpoint = await self._transaction(what, create_table)
        if mode == Mode.FULL and "truncate" not in done:

            async def truncate(conn: Any) -> Checkpoint:
                await conn.execute(f"TRUNCATE TABLE {qualified}", ())  # commits implicitly
                done.append("truncate")
                return await record(conn)

            return await self._transaction(what, truncate)
        return await self._transaction(what, record)

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
        database, table = self._names(target)
        names = schema.names
        upsert = upsert_key(mode, key)
        for name in (*names, *upsert):
            check_identifier(name, self.capabilities.max_identifier_length)
        missing = [name for name in upsert if name not in names]
        if missing:
            raise ConfigError(f"{target.text}: the key column(s) {missing} are not in the rows")
        check_rows(target, schema, rows)
        what = f"writing {len(rows)} rows to {target.text}"
        insert = (
            f"INSERT INTO {_qualified(database, table)} ({_ql(names)}) "
            f"VALUES ({', '.join(['%s'] * len(names))})"
        )
        if upsert:
            insert += " " + _on_duplicate(names, upsert)

        async def work(conn: Any) -> None:
            if rows:
                if upsert:
                    await self._check_unique_key(conn, target, database, table, upsert)
                with self._translated(what, rows=True):
                    encoded = encode_rows(schema, rows)
                    cursor = conn._raw.cursor()
                    try:
                        await cursor.executemany(insert, encoded)
                    finally:
                        await cursor.close()
            await self._upsert_checkpoint(conn, checkpoint)
            if commit:
                failpoints.hit("before_commit")  # fault-injection tests: rows sent, no COMMIT

        await self._transaction(what, work, commit=commit, rows_at_commit=True)

    async def _check_unique_key(
        self, conn: Any, target: TableRef, database: str, table: str, key: tuple[str, ...]
    ) -> None:
        """Refuse an upsert on a key no unique index covers exactly: MySQL would append."""
        cached = (database, table, key)
        if self._unique_keys.get(cached):
            return
        indexes: dict[str, set[str]] = {}
        for index, column in await conn.fetchall(_UNIQUE, (database, table)):
            indexes.setdefault(str(index), set()).add(str(column))
        if set(key) not in indexes.values():
            raise DestinationError(
                f"{target.text}: no primary key or unique index is on exactly the KEY "
                f"({', '.join(key)}), which an upsert into MySQL needs"
            )
        self._unique_keys[cached] = True

    async def row_count(self, target: TableRef) -> int:
        qualified = _qualified(*self._names(target))

        async def count(conn: Any) -> int:
            rows = await conn.fetchall(f"SELECT count(*) FROM {qualified}", ())
            return int(rows[0][0])

        return await self._transaction(f"counting the rows of {target.text}", count)

    async def table_exists(self, target: TableRef) -> bool:
        database, table = self._names(target)

        async def exists(conn: Any) -> bool:
            return bool(await conn.fetchall(_TABLE, (database, table)))

        return await self._transaction(f"looking for {target.text}", exists)

    async def columns(self, target: TableRef) -> tuple[Column, ...] | None:
        """The existing target's columns with their types as PostgreSQL spells them, in order;
        None when it does not exist. MariaDB's JSON columns (LONGTEXT checked by JSON_VALID)
        read as jsonb; DATETIME reads as timestamp (a timestamptz column was created as a
        DATETIME holding UTC: the values are the same), TINYINT(1) as boolean."""
        database, table = self._names(target)

        async def read(conn: Any) -> tuple[Column, ...] | None:
            rows = await conn.fetchall(_COLUMNS, (database, table))
            if not rows:
                return None
            json_columns: set[str] = set()
            if self._mariadb and any(str(r[1]).lower() == "longtext" for r in rows):
                for (clause,) in await conn.fetchall(_CHECKS, (database, table)):
                    match = _JSON_CHECK.match(str(clause))
                    if match:
                        json_columns.add(match.group(1).replace("``", "`"))
            return tuple(
                Column(str(n), pg_type(str(t), is_json=n in json_columns), nullable == "YES")
                for n, t, nullable in rows
            )

        return await self._transaction(f"reading the columns of {target.text}", read)

    # --- helpers ------------------------------------------------------------------------------

    @property
    def _checkpoints(self) -> str:
        return _qualified(self._database, _CHECKPOINT_TABLE)

    def _names(self, target: TableRef) -> tuple[str, str]:
        database, table = target_names(target, self._database)
        for name in (database, table):
            check_identifier(name, self.capabilities.max_identifier_length)
        return database, table

    def _translated(self, what: str, *, rows: bool = False) -> AbstractContextManager[None]:
        return _dest_errors.translated(what, self._errors, rows=rows)

    async def _transaction(
        self,
        what: str,
        work: Callable[[Any], Awaitable[T]],
        *,
        commit: bool = True,
        rows_at_commit: bool = False,
    ) -> T:
        async with self._lock:
            if not self._open:
                raise DestinationError(f"{what}: the MySQL destination is not open")
            return await self._run_locked(what, work, commit=commit, rows_at_commit=rows_at_commit)

    async def _run_locked(
        self,
        what: str,
        work: Callable[[Any], Awaitable[T]],
        *,
        commit: bool = True,
        rows_at_commit: bool = False,
    ) -> T:
        """`work(conn)` in one transaction (the session has autocommit off): committed, or with
        commit=False rolled back; rolled back when anything raises, and the session dropped
        when it may be broken (it is made again on the next call)."""
        with self._translated(what):
            conn = self._conn if self._conn is not None else await self._connect()
            try:
                result = await work(conn)
                with self._translated(what, rows=rows_at_commit):
                    if commit:
                        await conn._raw.commit()
                    else:
                        await conn._raw.rollback()
            except BaseException as exc:
                await self._recover(conn, exc)
                raise
            return result

    async def _recover(self, conn: Any, exc: BaseException) -> None:
        """Roll back after a failure, even when cancelled; drop the session unless the failure
        was an ordinary error on a healthy one (the first error is the one reported)."""
        cause = exc.__cause__ if isinstance(exc, StratumError) and exc.__cause__ else exc
        healthy = (
            isinstance(exc, Exception)
            and not isinstance(exc, ConnectionLost)
            and _dest_errors.fault_of(cause, self._errors) is not Fault.TRANSIENT
        )
        if healthy:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_ROLLBACK_TIMEOUT) as scope:
                try:
                    await conn._raw.rollback()
                except Exception:  # the connection is gone: drop it
                    healthy = False
            healthy = healthy and not scope.cancelled_caught
        if not healthy:
            self._conn = None
            conn.abort()


def _qualified(database: str, table: str) -> str:
    return f"{_q(database)}.{_q(table)}"


def _check_engine(target: TableRef, engine: Any) -> None:
    if engine is not None and str(engine).lower() not in ("innodb", "xtradb"):
        raise DestinationError(
            f"{target.text} uses the {engine} storage engine, which is not transactional: its "
            "rows and checkpoint could not commit together (ALTER TABLE ... ENGINE=InnoDB)"
        )
