"""The MySQL/MariaDB table source: one table, streamed in key order, resumable after any batch.

`open()` introspects the table in ``information_schema``: its columns in order (types mapped as
`stratum.connectors.mysql.types` says), and its key: the primary key, else the unique key of
NOT NULL columns with the fewest columns (then by name), else none. A key given to the
constructor overrides the discovered one for ordering and resuming (its columns must exist and
be NOT NULL); `Schema.primary_key` stays the table's own key.

Each `read(after, batch_size)` runs on its own connection, in one transaction
(``START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`` at REPEATABLE READ), so every row
of one read comes from one snapshot: rows committed by others mid-read are not seen. The one
query is ``SELECT <columns> FROM `db`.`t` [WHERE <after the cursor>] ORDER BY <key>`` on an
unbuffered cursor (SSCursor), fetched `batch_size` rows at a time: memory holds one batch, never
the table. The session's net_write_timeout is raised, so a consumer that is slow to ask for
the next batch (a destination retrying) does not make the server drop the connection.

The cursor of a batch is its last row's key, as a JSON list, one value per key column:
integers and floats as they are, Decimal as str, bytes (binary and bit keys) as hex, dates,
datetimes and times as MySQL prints them ('2024-01-31 12:00:00.250000', zero dates as read),
enum and set members as their labels. A resume decodes it by the key columns' types and reads
the rows strictly after it (`k1 >= v1 AND (k1 > v1 OR (k1 = v1 AND k2 > v2) ...)`, which the
server compares with the columns' own collations, as it orders them). A table with no key
cannot be resumed: `resumable` is False and every cursor is None.

Batches' `positions` are 1-based ordinals of the rows within the read. A row holding a value
its mapped type cannot take (see types.py: a TIME past 24h, a tinyint(1) of 2) is rejected
with the reason, never dropped silently; the cursor still moves past it.

`TableRef.table` is the table; `TableRef.schema`, when given, is the database, else the URL's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from stratum.connectors.base import Column, Cursor, RawBatch, Rejected, Row, Schema
from stratum.connectors.mysql import types
from stratum.connectors.mysql._connect import MySQLConnection, connect, parse_url
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import TableRef

__all__ = ["MySQLTableSource", "quote"]

_NET_WRITE_TIMEOUT = 3600  # seconds the server waits for us to take the next rows
_COLUMNS = """
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s
ORDER BY ORDINAL_POSITION"""
_INDEXES = """
SELECT INDEX_NAME, COLUMN_NAME
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND NON_UNIQUE = 0
ORDER BY INDEX_NAME, SEQ_IN_INDEX"""
_JSON_CHECKS = """
SELECT CONSTRAINT_NAME, CHECK_CLAUSE
FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s AND LEVEL = 'Column'"""
_DATABASE_EXISTS = "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s"


def quote(name: str) -> str:
    """A MySQL identifier in backticks; a backtick inside is doubled. Always data, never SQL."""
    if "\x00" in name:
        raise ConfigError(f"identifier {name!r} contains a NUL character")
    return "`" + name.replace("`", "``") + "`"


class MySQLTableSource:
    """Reads one table of the MySQL or MariaDB server at `url` (see the module docstring)."""

    def __init__(
        self, url: str, table: TableRef, key: tuple[str, ...] = (), *, zero_dates: str = "null"
    ) -> None:
        self._zero_dates = zero_dates  # the item's ZERO DATES policy: null, error or a date
        self._url = url  # holds the password: never put it in a message
        self._table = table
        self._explicit_key = tuple(key)
        self._schema: Schema | None = None
        self._key: tuple[str, ...] = ()
        self._types: tuple[types.MySQLType, ...] = ()
        self._database = ""
        self._live: set[MySQLConnection] = set()

    def __repr__(self) -> str:
        return f"MySQLTableSource(<url>, {self._table.text!r})"

    async def __aenter__(self) -> MySQLTableSource:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def resumable(self) -> bool:
        """True when rows are read in the order of a key (known once the source is open)."""
        return bool(self._explicit_key or self._key)

    @property
    def key(self) -> tuple[str, ...]:
        """The columns rows are ordered and resumed by; () when none (known once open)."""
        return self._key

    @property
    def name(self) -> str:
        return f"{self._database}.{self._table.table}"

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Introspect the table. Idempotent; no connection stays open."""
        if self._schema is not None:
            return
        table = self._table.table
        if not table:
            raise ConfigError(f"{self._table.text}: the MySQL table source needs a table name")
        database = self._table.schema or parse_url(self._url).database
        if not database:
            raise ConfigError(
                f"{self._table.text}: no database: name it in the URL (mysql://host/db) "
                "or qualify the table (db.table)"
            )
        self._database = database
        conn = await self._connect()
        try:
            with conn.translated(f"reading the columns of {self.name}"):
                await self._introspect(conn, database, table)
        finally:
            await self._release(conn)

    async def close(self) -> None:
        """Drop the connections of reads that were abandoned without being closed."""
        while self._live:
            self._live.pop().abort()

    async def schema(self) -> Schema:
        await self.open()
        assert self._schema is not None
        return self._schema

    # --- introspection ------------------------------------------------------------------------

    async def _introspect(self, conn: MySQLConnection, database: str, table: str) -> None:
        rows = await conn.fetchall(_COLUMNS, (database, table))
        if not rows:
            if not await conn.fetchall(_DATABASE_EXISTS, (database,)):
                raise SourceError(
                    f"{self._table.text}: MySQL database {database!r} does not exist "
                    "(or this user cannot see it)"
                )
            raise SourceError(
                f"{self._table.text}: MySQL table {table!r} does not exist in database "
                f"{database!r} (or this user cannot see it)"
            )
        json_columns = await self._json_columns(conn, database, table)
        columns: list[Column] = []
        mysql_types: list[types.MySQLType] = []
        for name, data_type, column_type, nullable in rows:
            t = types.mysql_type(_text(column_type), _text(data_type), is_json=name in json_columns)
            mysql_types.append(t)
            columns.append(Column(name, types._pg_type(t, name), _text(nullable) == "YES"))
        not_null = {c.name for c in columns if not c.nullable}
        indexes: dict[str, list[str]] = {}
        for index, column in await conn.fetchall(_INDEXES, (database, table)):
            indexes.setdefault(_text(index), []).append(_text(column))
        table_key: tuple[str, ...] = tuple(indexes.get("PRIMARY", ()))
        if not table_key:
            candidates = sorted(
                (len(cols), name, tuple(cols))
                for name, cols in indexes.items()
                if all(c in not_null for c in cols)
            )
            table_key = candidates[0][2] if candidates else ()
        names = [c.name for c in columns]
        key = self._explicit_key or table_key
        for column in self._explicit_key:
            if column not in names:
                raise ConfigError(f"{self._table.text}: the key column {column!r} does not exist")
            if column not in not_null:
                raise ConfigError(
                    f"{self._table.text}: the key column {column!r} may be NULL, so rows cannot "
                    "be resumed by it"
                )
        self._types = tuple(mysql_types)
        self._key = key
        self._schema = Schema(tuple(columns), table_key)

    async def _json_columns(self, conn: MySQLConnection, database: str, table: str) -> set[str]:
        """MariaDB's JSON columns: longtext with the CHECK (json_valid(col)) it adds itself."""
        version = await conn.fetchall("SELECT VERSION()")
        if "mariadb" not in _text(version[0][0]).lower():
            return set()  # MySQL has a real json type
        found: set[str] = set()
        for name, clause in await conn.fetchall(_JSON_CHECKS, (database, table)):
            if _text(clause).replace(" ", "").lower() == f"json_valid({quote(_text(name))})":
                found.add(_text(name))
        return found

    # --- reading ------------------------------------------------------------------------------

    async def read(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        await self.open()
        assert self._schema is not None
        names = self._schema.names
        key_indexes = [names.index(k) for k in self._key]
        sql, params = self._select(after)
        converters = [
            (i, f)
            for i, f in enumerate(types._converter(t, self._zero_dates) for t in self._types)
            if f is not None
        ]
        what = f"reading {self.name}"
        conn = await self._connect()
        try:
            with conn.translated(what):
                await conn.execute(f"SET SESSION net_write_timeout = {_NET_WRITE_TIMEOUT}")
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                await conn.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                stream = await conn.stream(sql, params)
            ordinal = 0
            while True:
                with conn.translated(what):
                    raw_rows = await stream.fetchmany(batch_size)
                if not raw_rows:
                    break
                batch = _convert(raw_rows, converters, ordinal, names)
                ordinal += len(raw_rows)
                if key_indexes:
                    last = raw_rows[-1]
                    batch.cursor = [_encode_key(last[i]) for i in key_indexes]
                yield batch
            with conn.translated(what):
                await conn.execute("COMMIT")
        finally:
            await self._release(conn)

    def _select(self, after: Cursor) -> tuple[str, list[Any]]:
        assert self._schema is not None
        columns = ", ".join(quote(n) for n in self._schema.names)
        sql = f"SELECT {columns} FROM {quote(self._database)}.{quote(self._table.table or '')}"
        params: list[Any] = []
        if not self._key:
            if after is not None:
                raise SourceError(
                    f"{self._table.text}: cannot resume after {after!r}: the table has no "
                    "primary or unique key, so it can only be read whole"
                )
            return sql, params
        keys = [quote(k) for k in self._key]
        if after is not None:
            values = self._decode_cursor(after)
            # k1 >= v1 AND (k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...): the leading range lets
            # the server start at the cursor in the key's index
            alternatives = []
            for n in range(len(keys)):
                terms = [f"{k} = %s" for k in keys[:n]] + [f"{keys[n]} > %s"]
                alternatives.append("(" + " AND ".join(terms) + ")")
                params.extend(values[: n + 1])
            params.insert(0, values[0])
            sql += f" WHERE {keys[0]} >= %s AND ({' OR '.join(alternatives)})"
        sql += f" ORDER BY {', '.join(keys)}"
        return sql, params

    def _decode_cursor(self, after: Cursor) -> list[Any]:
        if not isinstance(after, list) or len(after) != len(self._key):
            raise SourceError(
                f"{self._table.text}: cannot resume after {after!r}: expected a list of "
                f"{len(self._key)} value(s), one per key column {list(self._key)}"
            )
        assert self._schema is not None
        names = self._schema.names
        values = []
        for column, value in zip(self._key, after, strict=True):
            t = self._types[names.index(column)]
            try:
                values.append(_decode_key(value, t))
            except (TypeError, ValueError, InvalidOperation):
                raise SourceError(
                    f"{self._table.text}: cannot resume: cursor value {value!r} does not fit "
                    f"key column {column!r} ({t.column_type})"
                ) from None
        return values

    # --- connections --------------------------------------------------------------------------

    async def _connect(self) -> MySQLConnection:
        conn = await connect(self._url)
        self._live.add(conn)
        return conn

    async def _release(self, conn: MySQLConnection) -> None:
        self._live.discard(conn)
        await conn.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _convert(
    raw_rows: Sequence[Row],
    converters: list[tuple[int, Callable[[Any], Any]]],
    ordinal: int,
    names: tuple[str, ...],
) -> RawBatch:
    positions = list(range(ordinal + 1, ordinal + len(raw_rows) + 1))
    if not converters:
        return RawBatch(rows=[tuple(r) for r in raw_rows], positions=positions)
    rows: list[Row] = []
    kept: list[int] = []
    rejected: list[Rejected] = []
    for position, raw in zip(positions, raw_rows, strict=True):
        row = list(raw)
        try:
            for i, convert in converters:
                value = row[i]
                if value is not None:
                    row[i] = convert(value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            reason = f"column {names[i]!r}: {exc}"
            rejected.append(Rejected(position, reason, tuple(raw)))
            continue
        rows.append(tuple(row))
        kept.append(position)
    return RawBatch(rows=rows, positions=kept, rejected=rejected)


def _encode_key(value: Any) -> Any:
    """A key value as JSON can hold it (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return types.format_time(value)
    if isinstance(value, (set, frozenset)):
        return ",".join(sorted(value))
    return str(value)


_EXACT = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"}
_BYTES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit"}


def _decode_key(value: Any, t: types.MySQLType) -> Any:
    """The parameter to bind for a cursor value of a key column of type `t`."""
    kind = t.data_type
    if kind in _EXACT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("not an integer")
        return value
    if not isinstance(value, str):
        if kind in ("float", "double", "real") and isinstance(value, (int, float)):
            return float(value)
        raise TypeError("not a string")
    if kind in ("decimal", "numeric", "fixed"):
        return Decimal(value)
    if kind in _BYTES:
        return bytes.fromhex(value)
    if kind == "enum":  # ordered, and compared, by the label's index (0 for '')
        return enum_index(value, t)
    if kind == "set":  # ordered, and compared, as the bit mask of its members
        labels = types.enum_labels(t.column_type)
        return sum(1 << labels.index(m) for m in value.split(",")) if value else 0
    return value  # text; dates and times as MySQL prints them: the server parses them


def enum_index(label: str, t: types.MySQLType) -> int:
    if label == "":
        return 0
    labels = types.enum_labels(t.column_type)
    with contextlib.suppress(ValueError):
        return labels.index(label) + 1
    raise ValueError(f"{label!r} is not a label of {t.column_type}")
