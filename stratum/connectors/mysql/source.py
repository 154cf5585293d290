"""The MySQL/MariaDB sources: a table, or a query's rows, streamed in key order, resumable after
any batch.

`MySQLTableSource(url, table, key=(), *, zero_dates="null", projection=None, bounds=None,
item=None, increments_by=None)` reads one table; `MySQLQuerySource(url, sql, key=(), *,
zero_dates="null", bounds=None, item=None, increments_by=None)` the rows of a query (MIGRATE
QUERY).

`open()` introspects the table in ``information_schema``: its columns in order (types mapped as
`stratum.connectors.mysql.types` says), and its key: the primary key, else the unique key of
NOT NULL columns with the fewest columns (then by name), else none. A key given to the
constructor (the item's KEY, as table columns: see `stratum.connectors.pushdown.source_key`)
overrides the discovered one for ordering and resuming (its columns must exist and be NOT
NULL); `Schema.primary_key` stays the table's own key (as the output names it, or () when the
output leaves a column of it out).

With a `projection` (the item's options), the table source pushes the item's COLUMNS, COMPUTE
and WHERE into its SELECT (`stratum.connectors.pushdown` says what is pushed and what stays in
Python; `applied` tells which). The SELECT is then described on open, by creating an empty
temporary table from it (``CREATE TEMPORARY TABLE ... AS SELECT * FROM (<select>) AS q LIMIT
0``, then ``SHOW COLUMNS``; the user needs the CREATE TEMPORARY TABLES privilege): a column
copied as it is keeps its exact type (a JSON column stays jsonb), a COMPUTE column gets the type
and nullability the server gives it, mapped as types.py says. An expression the server refuses
(a function it does not have) fails the open with a SourceError naming it and the item.

A query is transpiled from the dialect it is written in (`Sql.dialect`) to MySQL's (run as
written when it is MySQL's) and described the same way (in the URL's database, which it needs).
With a KEY (columns it returns) it is read as ``SELECT * FROM (<query>) AS `q` [WHERE <after
the cursor>] ORDER BY <key>``, resumable like a table; without one it is run as it is and
`resumable` is False.

MODE incremental: `increments_by` is the item's CURSOR, as a column of the table or the query
(`stratum.connectors.pushdown.source_cursor` maps it back through COLUMNS renames). The rows are
then read in the order (c, k1, k2): the CURSOR column first, then the key (the KEY, else the
discovered key), which breaks ties between rows sharing one CURSOR value (several rows may
share one `updated_at`, and a batch may end between them). The cursor of a batch is
[c, k1, k2] of its last row, and a resume, or the item's next run, reads the rows strictly
after it (`c >= v AND (c > v OR (c = v AND k1 > w1) OR ...)`): those changed (their CURSOR
moved past the high-water mark) or added since. `key` is then (c, k1, k2); a CURSOR column the
projection does not output is selected as a hidden column. Refused on open (ConfigError naming
the item, the table and the column): a CURSOR that is not a column (or is a COMPUTE column), a
CURSOR column that may be NULL (a row whose CURSOR is NULL would never be read: NULL is past
no high-water mark; for a query, as the server types its result), a JSON or spatial CURSOR
column, no key to break ties, a query without KEY. A row whose CURSOR is NULL all the same
fails the read (SourceError). Without a KEY every new version of a row is appended, so the
table's schema claims no primary key (a target the engine creates can hold them all).

Each `read(after, batch_size)` runs on its own connection, in one transaction
(``START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`` at REPEATABLE READ), so every row
of one read comes from one snapshot: rows committed by others mid-read are not seen. The one
query, on an unbuffered cursor (SSCursor), fetched `batch_size` rows at a time (memory holds
one batch, never the table), is

    SELECT <columns | pushed-down projection>[, <hidden key columns>] FROM `db`.`t`
    [WHERE (<pushed-down WHERE>) AND <after the cursor> AND <after low> AND <up to high>]
    ORDER BY <key>

each condition there only when it applies (<key>: [CURSOR column,] key columns). A key (or
CURSOR) column the projection does not output is selected after it ("hidden"), for the
cursor, and stripped off the rows. The session's
net_write_timeout is raised, so a consumer that is slow to ask for the next batch (a
destination retrying) does not make the server drop the connection. The statement's `%` are
doubled: the driver formats it with the parameters.

The cursor of a batch is its last row's key, as a JSON list, one value per key column:
integers and floats as they are, Decimal as str, bytes (binary and bit keys) as hex, dates,
datetimes and times as MySQL prints them ('2024-01-31 12:00:00.250000', zero dates as read),
enum and set members as their labels. A resume decodes it by the key columns' types and reads
the rows strictly after it (`k1 >= v1 AND (k1 > v1 OR (k1 = v1 AND k2 > v2) ...)`, which the
server compares with the columns' own collations, as it orders them). A table with no key
cannot be resumed: `resumable` is False and every cursor is None.

Key ranges (PARTITIONS): `bounds=(low, high)`, two cursors (None: unbounded), limit every read
to the rows with low < key <= high, together with the read's own `after` (`<= high` is
`k1 <= v1 AND (k1 < v1 OR (k1 = v1 AND k2 < v2) ... OR (k1 = v1 AND k2 = v2 ...))`).
`split(n)` gives up to n - 1 increasing cursors that cut the rows the WHERE keeps into n
ranges of about equal row counts, computed by the server in one snapshot (the key of every
(count * i // n)-th row, by ``row_number() OVER (ORDER BY key)``). Without a key: ConfigError.
Without `increments_by` the ranges are of the plain key (PARTITIONS and MODE incremental are
never combined: the engine refuses it).

Batches' `positions` are 1-based ordinals of the rows within the read. A row holding a value
its mapped type cannot take (see types.py: a TIME past 24h, a tinyint(1) of 2) is rejected
with the reason, never dropped silently; the cursor still moves past it.

`TableRef.table` is the table; `TableRef.schema`, when given, is the database, else the URL's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Self

from stratum.connectors.base import COPY_TEXT, Column, Cursor, RawBatch, Rejected, Row, Schema
from stratum.connectors.mysql import types
from stratum.connectors.mysql._connect import MySQLConnection, connect, parse_url
from stratum.connectors.mysql._errors import describe
from stratum.connectors.mysql.text import copy_line, text_expression
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
from stratum.connectors.sql import estimate_nbytes
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import Options, Sql, TableRef
from stratum.transforms.native import rule_names
from stratum.transforms.types import same_type

__all__ = ["MySQLQuerySource", "MySQLTableSource", "quote"]

_DIALECT = "mysql"
_NET_WRITE_TIMEOUT = 3600
#: Rows of one keyset query of a keyed read (see `_read`): bounds the driver's buffering.
CHUNK_ROWS = 50_000
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


@dataclass(frozen=True, slots=True)
class _Described:
    """A column of a SELECT's result, as a table created from it holds it."""

    name: str
    type: types.MySQLType
    nullable: bool


class _MySQLReader(ABC):
    """What the table and the query source share: reads in one snapshot on an unbuffered
    cursor, cursors and bounds, split(), values converted as types.py says. A subclass's
    `open` fills in what is read (see the module docstring)."""

    def __init__(
        self,
        url: str,
        key: tuple[str, ...],
        zero_dates: str,
        bounds: Bounds | None,
        item: str | None,
        *,
        increments_by: str | None,
    ) -> None:
        self._zero_dates = zero_dates  # the item's ZERO DATES policy: null, error or a date
        self._url = url  # holds the password: never put it in a message
        self._explicit_key = tuple(key)
        self._increments_by = increments_by  # MODE incremental's CURSOR column (see the module)
        self._bounds = bounds
        self._item = item
        self._schema: Schema | None = None
        self._key: tuple[str, ...] = ()  # the columns rows are ordered and resumed by
        self._key_types: tuple[types.MySQLType, ...] = ()
        self._types: tuple[types.MySQLType, ...] = ()  # of the output's columns
        self._items: tuple[str, ...] = ()  # the select list: the output, then hidden keys
        self._width = 0
        self._key_at: tuple[int, ...] = ()
        self._from = ""  # a table, or a query in parentheses
        self._where: str | None = None  # the pushed-down WHERE
        self._plain: str | None = None  # a query without a KEY: run as it is
        self._database = ""
        self._live: set[MySQLConnection] = set()

    async def __aenter__(self) -> Self:
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
        """The columns rows are ordered and resumed by; () when none (known once open). With
        `increments_by`, the CURSOR column then the key."""
        return self._key

    @property
    def increments_by(self) -> str | None:
        """MODE incremental's CURSOR column (a source column), which the rows are ordered by
        first; None otherwise."""
        return self._increments_by

    @property
    def _who(self) -> str:
        """Who a configuration error is about: the item, else what is read."""
        return f"item '{self._item}'" if self._item else self.name

    @property
    def bounds(self) -> Bounds | None:
        """The key range a read is limited to: (low, high), key > low and key <= high."""
        return self._bounds

    @property
    @abstractmethod
    def name(self) -> str:
        """What is read, for messages."""

    @property
    def applied(self) -> frozenset[str]:
        """The item's options the source applies itself (see the table source); the query
        source applies none: the item's COLUMNS, COMPUTE and WHERE run in Python on its rows."""
        return frozenset()

    @property
    def select(self) -> str:
        """The SELECT a read from the start runs, its `%` doubled for the driver (once open)."""
        return self._select(None)[0]

    # --- lifecycle ----------------------------------------------------------------------------

    @abstractmethod
    async def open(self) -> None:
        """Learn what is read: its columns, their types, its key. Idempotent."""

    async def close(self) -> None:
        """Drop the connections of reads that were abandoned without being closed."""
        while self._live:
            self._live.pop().abort()

    async def schema(self) -> Schema:
        await self.open()
        assert self._schema is not None
        return self._schema

    # --- describing ---------------------------------------------------------------------------

    async def _describe(
        self, conn: MySQLConnection, select: str, pushed: Sequence[Pushed] = ()
    ) -> list[_Described]:
        """The columns `select` returns, as the server types them: it creates an empty
        temporary table from it (`CREATE TEMPORARY TABLE ... AS SELECT ... LIMIT 0`), reads
        its columns and drops it. When the server refuses the SELECT, the pushed-down
        expression it refuses is named (SourceError)."""
        temporary = f"{quote(self._database)}.{quote('stratum_describe_' + secrets.token_hex(8))}"
        create = (
            f"CREATE TEMPORARY TABLE {temporary} AS SELECT * FROM ({select}) AS {quote('q')} "
            "LIMIT 0"
        )
        what = f"describing the SELECT of {self.name}"
        try:
            with conn.translated(what):
                await conn.execute(create)
        except SourceError as exc:
            if not pushed:
                raise
            raise await self._refused(conn, pushed, exc) from exc
        try:
            with conn.translated(what):
                rows = await conn.fetchall(f"SHOW COLUMNS FROM {temporary}")
        finally:
            with conn.translated(what):
                await conn.execute(f"DROP TEMPORARY TABLE IF EXISTS {temporary}")
        described = []
        for row in rows:
            column_type = _text(row[1])
            data_type = re.split(r"[ (]", column_type.strip(), maxsplit=1)[0]
            described.append(
                _Described(
                    _text(row[0]),
                    types.mysql_type(column_type, data_type),
                    _text(row[2]) == "YES",
                )
            )
        return described

    async def _refused(
        self, conn: MySQLConnection, pushed: Sequence[Pushed], error: SourceError
    ) -> SourceError:
        """The error naming the first pushed-down expression the server refuses alone."""

        async def probe(sql: str) -> object:
            with conn.translated(f"checking the SELECT of {self.name}"):
                return await conn.fetchall(sql)

        who = f"item '{self._item}'" if self._item else self.name
        return await refused(
            pushed,
            probe,
            self._from,
            who=who,
            server="MySQL",
            error=error,
            describe=describe,
            limit=" LIMIT 0",
        )

    # --- reading ------------------------------------------------------------------------------

    def read(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        return self._read(after, batch_size)

    # --- the pass-through path (stratum.connectors.base.TextSource, text.py) -------------------

    def text_path(self) -> str | None:
        """None when every output column has a text expression (known once open); else why
        the item takes the typed path."""
        items = self._text_items()
        return items if isinstance(items, str) else None

    def read_text(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        """The rows with every value as PostgreSQL's text for its mapped type, formatted by
        the server (text.py); cursors and positions as `read` gives them."""
        return self._read(after, batch_size, text=True)

    async def read_again(self, after: Cursor, batch: RawBatch) -> AsyncIterator[RawBatch]:
        """The typed rows of a text batch: the keys after `after`, up to its cursor."""
        shift = batch.positions[0] - 1 if batch.positions else 0  # ordinals of the first read
        async for again in self._read(after, max(len(batch.rows), 1), upto=batch.cursor):
            again.positions = [p + shift for p in again.positions]
            again.rejected = [
                dataclasses.replace(r, position=r.position + shift) for r in again.rejected
            ]
            yield again

    def _text_items(self) -> tuple[tuple[str, ...], tuple[int, ...]] | str:
        """The select list for `read_text` and where the key's typed values are in it, or why
        there is none: the row as one line of COPY's text format, built by the server
        (`text.copy_line`), then the key's columns as the typed read has them, for the
        cursor."""
        outputs = self._outputs()
        if outputs is None:
            return "the query's columns are not known one by one"
        columns = []
        for i, (name, source) in enumerate(outputs):
            if source is None:
                return f"column {name!r} is computed in the SELECT"
            if text_expression(quote(source), self._types[i], self._zero_dates) is None:
                return f"column {name!r} ({self._types[i].column_type}) has no text form"
            columns.append((quote(source), self._types[i]))
        line = copy_line(columns, self._zero_dates)
        assert line is not None  # every column has a text form
        items = (f"{line} AS {quote('line')}", *(quote(k) for k in self._key))
        return items, tuple(range(1, 1 + len(self._key)))

    def _outputs(self) -> list[tuple[str, str | None]] | None:
        """Each output column's name and the table column it copies (None: computed);
        None when not known (a query)."""
        return None

    async def _read(
        self, after: Cursor, batch_size: int, *, text: bool = False, upto: Cursor = None
    ) -> AsyncIterator[RawBatch]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        await self.open()
        assert self._schema is not None
        names = self._schema.names
        key_indexes = self._key_at if self._key else ()
        items: tuple[str, ...] | None = None
        if text:
            found = self._text_items()
            if isinstance(found, str):
                raise SourceError(f"{self.name}: cannot read as text: {found}")
            items, text_key_at = found
            key_indexes = text_key_at if key_indexes else ()
        converters = (
            []
            if text
            else [
                (i, f)
                for i, f in enumerate(types._converter(t, self._zero_dates) for t in self._types)
                if f is not None
            ]
        )
        width = 1 if text else self._width  # text: the row is one line of COPY text
        what = f"reading {self.name}"
        # MODE incremental: a NULL CURSOR would stop every later run (checked on open where
        # the server says the column may be NULL; this guards the rest)
        null_at = key_indexes[0] if key_indexes and self._increments_by is not None else None
        # A keyed read is a run of keyset queries of CHUNK_ROWS rows each, in one snapshot: the
        # drivers read a result set as fast as the server sends it, with no flow control, so a
        # single query would hold the table in memory whenever the destination is slower.
        chunk = max(CHUNK_ROWS, batch_size) if key_indexes and self._plain is None else None
        position = after
        conn = await self._connect()
        try:
            with conn.translated(what):
                await self._snapshot(conn)
            ordinal = 0
            in_chunk = chunk or 0
            stream = None
            while True:
                if stream is None or (chunk is not None and in_chunk >= chunk):
                    sql, params = self._select(position, items=items, upto=upto)
                    if chunk is not None:
                        sql += f" LIMIT {chunk}"
                    with conn.translated(what):
                        if stream is not None:
                            await stream.close()
                        stream = await conn.stream(sql, params)
                    in_chunk = 0
                with conn.translated(what):
                    raw_rows = await stream.fetchmany(min(batch_size, chunk or batch_size))
                if not raw_rows:
                    break
                in_chunk += len(raw_rows)
                if null_at is not None and any(r[null_at] is None for r in raw_rows):
                    raise SourceError(
                        f"{what}: a row has NULL in the CURSOR column '{self._key[0]}' "
                        f"({self._who}): MODE incremental would never read it (no high-water "
                        f"mark is past NULL); make '{self._key[0]}' NOT NULL, or use MODE "
                        "upsert or full"
                    )
                if text:  # nothing to convert or cut: only the line goes to the destination
                    positions = list(range(ordinal + 1, ordinal + len(raw_rows) + 1))
                    batch = RawBatch(rows=raw_rows, positions=positions)
                else:
                    batch = _convert(raw_rows, converters, ordinal, names, width)
                batch.nbytes = estimate_nbytes(batch.rows)
                if text:  # the rows are lines of COPY's text format, built by the server
                    batch.copy_format = COPY_TEXT
                    batch.copy_data = "\n".join([row[0] for row in batch.rows]) + "\n"
                ordinal += len(raw_rows)
                if key_indexes:
                    last = raw_rows[-1]
                    batch.cursor = position = [_encode_key(last[i]) for i in key_indexes]
                yield batch
                if chunk is not None and in_chunk < chunk and len(raw_rows) < batch_size:
                    break  # the chunk came back short: the last rows were read
            with conn.translated(what):
                await conn.execute("COMMIT")
        finally:
            await self._release(conn)

    @staticmethod
    async def _snapshot(conn: MySQLConnection) -> None:
        """One consistent, read-only snapshot for what follows, until COMMIT."""
        await conn.execute(f"SET SESSION net_write_timeout = {_NET_WRITE_TIMEOUT}")
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        await conn.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")

    def _select(
        self, after: Cursor, *, items: tuple[str, ...] | None = None, upto: Cursor = None
    ) -> tuple[str, list[Any]]:
        """The read's SELECT, with `%` doubled (the driver formats it with the parameters):
        `items` instead of the typed select list, and no key past `upto` when it is given."""
        if self._plain is not None:  # a query without a KEY: as it is, whole
            if after is not None:
                raise SourceError(
                    f"{self.name}: cannot resume after {after!r}: the query has no KEY, so it "
                    "can only be read whole"
                )
            if self._bounds is not None:
                raise ConfigError(f"{self.name}: a query without a KEY cannot be read by key range")
            return _escaped(self._plain), []
        conditions = [f"({_escaped(self._where)})"] if self._where is not None else []
        params: list[Any] = []
        selected = [_escaped(item) for item in (items or self._items)]
        source = _escaped(self._from)
        if not self._key:
            if after is not None:
                raise SourceError(
                    f"{self.name}: cannot resume after {after!r}: the table has no "
                    "primary or unique key, so it can only be read whole"
                )
            if self._bounds is not None or upto is not None:
                self._check_splittable("read by key range")
            return select_sql(selected, source, conditions, ()), params
        keys = [_escaped(quote(k)) for k in self._key]
        if after is not None:
            _add(conditions, params, _after(keys, self._decode_cursor(after)))
        if self._bounds is not None:
            low, high = self._bounds
            if low is not None:
                _add(conditions, params, _after(keys, self._decode_cursor(low)))
            if high is not None:
                _add(conditions, params, _at_most(keys, self._decode_cursor(high)))
        if upto is not None:
            _add(conditions, params, _at_most(keys, self._decode_cursor(upto)))
        order = keys
        if items is not None:  # by position: the key's typed columns follow the line
            order = [str(i + 2) for i in range(len(keys))]
        return select_sql(selected, source, conditions, order), params

    def _decode_cursor(self, after: Cursor) -> list[Any]:
        if not isinstance(after, list) or len(after) != len(self._key):
            raise SourceError(
                f"{self.name}: cannot resume after {after!r}: expected a list of "
                f"{len(self._key)} value(s), one per key column {list(self._key)}"
            )
        values = []
        for column, value, t in zip(self._key, after, self._key_types, strict=True):
            try:
                values.append(_decode_key(value, t))
            except (TypeError, ValueError, InvalidOperation):
                raise SourceError(
                    f"{self.name}: cannot resume: cursor value {value!r} does not fit "
                    f"key column {column!r} ({t.column_type})"
                ) from None
        return values

    def _incremental(
        self,
        columns: Sequence[Column],
        key: tuple[str, ...],
        column_types: dict[str, types.MySQLType],
        *,
        source: str,
        computed: Sequence[str] = (),
        query: bool = False,
    ) -> tuple[str, ...]:
        """The order of a MODE incremental read: `increments_by`, then `key` (see
        `pushdown.incremental_order`, which refuses a missing or nullable CURSOR column or no
        key); ConfigError too for a CURSOR column whose values do not order like the rows'
        changes (JSON, spatial)."""
        assert self._increments_by is not None
        order = incremental_order(
            self._increments_by,
            columns,
            key,
            who=self._who,
            source=source,
            computed=computed,
            query=query,
        )
        t = column_types[order[0]]
        if t.is_json or t.data_type in _UNORDERED:
            raise ConfigError(
                f"{self._who}: the CURSOR column '{order[0]}' of {source} is of type "
                f"{t.column_type}, which a cursor cannot hold; MODE incremental needs a "
                "timestamp, date, time, integer, numeric or text column"
            )
        return order

    # --- partitions ---------------------------------------------------------------------------

    async def split(self, parts: int) -> list[Cursor]:
        """Up to `parts - 1` increasing cursors that cut the rows (those the WHERE keeps) into
        `parts` key ranges of about equal row counts: (None, c1], (c1, c2], ... (cn, None], to
        pass as `bounds`. Computed in one snapshot: the rows are counted, then the key of every
        (n * i // parts)-th row in key order is taken (row_number() over the key). Fewer
        cursors when there are fewer rows than parts. ConfigError when there is no key."""
        if parts < 1:
            raise ValueError(f"parts must be at least 1, got {parts}")
        await self.open()
        self._check_splittable("split into PARTITIONS")
        if parts == 1:
            return []
        keys = ", ".join(quote(k) for k in self._key)
        where = f" WHERE ({self._where})" if self._where is not None else ""
        number = quote("stratum_row_number")
        what = f"splitting {self.name} into {parts} parts"
        conn = await self._connect()
        try:
            with conn.translated(what):
                await self._snapshot(conn)
                ((total,),) = await conn.fetchall(f"SELECT count(*) FROM {self._from}{where}")
                rows = sorted({i * int(total) // parts for i in range(1, parts)} - {0})
                found: list[tuple[Any, ...]] = []
                if rows:
                    keys, source, where = _escaped(keys), _escaped(self._from), _escaped(where)
                    sample = (
                        f"SELECT {keys} FROM (SELECT {keys}, row_number() OVER (ORDER BY {keys}) "
                        f"AS {number} FROM {source}{where}) AS {quote('s')} "
                        f"WHERE {number} IN ({', '.join('%s' for _ in rows)}) ORDER BY {number}"
                    )
                    found = await conn.fetchall(sample, rows)
                await conn.execute("COMMIT")
        finally:
            await self._release(conn)
        return [[_encode_key(value) for value in row] for row in found]

    def _check_splittable(self, doing: str) -> None:
        if not self._key:
            raise ConfigError(
                f"{self.name} cannot be {doing}: PARTITIONS needs a primary or unique key of "
                "NOT NULL columns (or a KEY) to cut the rows into key ranges"
            )

    # --- connections --------------------------------------------------------------------------

    async def _connect(self) -> MySQLConnection:
        conn = await connect(self._url)
        self._live.add(conn)
        return conn

    async def _release(self, conn: MySQLConnection) -> None:
        self._live.discard(conn)
        await conn.close()


class MySQLTableSource(_MySQLReader):
    """Reads one table of the MySQL or MariaDB server at `url` (see the module docstring)."""

    def __init__(
        self,
        url: str,
        table: TableRef,
        key: tuple[str, ...] = (),
        *,
        zero_dates: str = "null",
        projection: Options | None = None,
        bounds: Bounds | None = None,
        item: str | None = None,
        increments_by: str | None = None,
    ) -> None:
        super().__init__(url, key, zero_dates, bounds, item, increments_by=increments_by)
        self._table = table
        self._projection = projection
        self._pushdown: Pushdown | None = None

    def __repr__(self) -> str:
        return f"MySQLTableSource(<url>, {self._table.text!r})"

    def _outputs(self) -> list[tuple[str, str | None]] | None:
        if self._pushdown is None:
            return None
        return [(o.name, o.source) for o in self._pushdown.outputs]

    @property
    def name(self) -> str:
        return f"{self._database}.{self._table.table}"

    @property
    def applied(self) -> frozenset[str]:
        """The item's options the SELECT applies ("columns", "compute", "where"); known once
        open. `stratum.connectors.pushdown.remaining_options` leaves the rest to the
        Transformer."""
        return self._pushdown.applied if self._pushdown is not None else frozenset()

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Introspect the table (and describe a pushed-down SELECT). Idempotent; no
        connection stays open."""
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

    # --- introspection ------------------------------------------------------------------------

    def _cast_to_number(self, column: str, t: types.MySQLType) -> bool:
        """Whether a CAST rule of the item gives this tinyint(1) a type other than boolean: it
        is then read as the number it holds (2 stays 2), not as a boolean that refuses 2."""
        casts = self._projection.casts if self._projection is not None else ()
        return any(
            rule_names(rule, self._table.table, column, t.column_type)
            and not same_type(rule.to, "boolean")
            for rule in casts
        )

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
        mysql_types: dict[str, types.MySQLType] = {}
        for name, data_type, column_type, nullable in rows:
            t = types.mysql_type(_text(column_type), _text(data_type), is_json=name in json_columns)
            if t.boolean and t.data_type == "tinyint" and self._cast_to_number(name, t):
                t = dataclasses.replace(t, tinyint_boolean=False)
            mysql_types[name] = t
            columns.append(
                Column(name, types._pg_type(t, name), _text(nullable) == "YES", _text(column_type))
            )
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
        if self._increments_by is not None:
            computed = [c.name for c in self._projection.compute] if self._projection else []
            key = self._incremental(
                columns, key, mysql_types, source=self._table.text, computed=computed
            )
        self._from = f"{quote(database)}.{quote(table)}"
        pushdown = plan_pushdown(columns, self._projection, _DIALECT)
        selected = selection(pushdown, key, _DIALECT)
        output: list[Column] = []
        output_types: list[types.MySQLType] = []
        by_name = {c.name: c for c in columns}
        if pushdown.applied:  # the server says what the SELECT returns, and checks it
            conditions = [f"({pushdown.where})"] if pushdown.where is not None else []
            sql = select_sql([o.sql for o in pushdown.outputs], self._from, conditions, ())
            described = await self._describe(conn, sql, pushdown.pushed)
            for result, found in zip(pushdown.outputs, described, strict=True):
                if result.source is not None:  # a column as it is keeps its exact type
                    output.append(dataclasses.replace(by_name[result.source], name=result.name))
                    output_types.append(mysql_types[result.source])
                else:
                    pg = types._pg_type(found.type, result.name)
                    output.append(Column(result.name, pg, found.nullable, found.type.column_type))
                    output_types.append(found.type)
        else:
            output = columns
            output_types = [mysql_types[c.name] for c in columns]
        copied = {o.source: o.name for o in reversed(pushdown.outputs) if o.source is not None}
        primary_key = (
            tuple(copied[k] for k in table_key) if all(k in copied for k in table_key) else ()
        )
        if self._increments_by is not None and not self._explicit_key:
            primary_key = ()  # MODE incremental without KEY appends each new version of a row
        self._items = _exact_floats(selected.items, pushdown.outputs, output_types)
        self._width, self._key_at = selected.width, selected.key_at
        self._where = pushdown.where
        self._types = tuple(output_types)
        self._key = key
        self._key_types = tuple(mysql_types[k] for k in key)
        self._pushdown = pushdown
        self._schema = Schema(tuple(output), primary_key)

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


class MySQLQuerySource(_MySQLReader):
    """The rows of a query (MIGRATE QUERY) run on the MySQL or MariaDB server at `url`: in KEY
    order and resumable with a KEY, else whole (see the module docstring)."""

    def __init__(
        self,
        url: str,
        sql: Sql,
        key: tuple[str, ...] = (),
        *,
        zero_dates: str = "null",
        bounds: Bounds | None = None,
        item: str | None = None,
        increments_by: str | None = None,
    ) -> None:
        super().__init__(url, key, zero_dates, bounds, item, increments_by=increments_by)
        self._sql = sql

    def __repr__(self) -> str:
        return f"MySQLQuerySource(<url>, item={self._item!r})"

    @property
    def name(self) -> str:
        return f"the query of item '{self._item}'" if self._item else "the query"

    async def open(self) -> None:
        """Transpile and describe the query. Idempotent; no connection stays open."""
        if self._schema is not None:
            return
        database = parse_url(self._url).database
        if not database:
            raise ConfigError(
                f"{self.name}: no database: name one in the URL (mysql://host/db); the query's "
                "columns are described in a temporary table there"
            )
        self._database = database
        text = transpile_query(self._sql, _DIALECT)
        conn = await self._connect()
        try:
            described = await self._describe(conn, text)
        finally:
            await self._release(conn)
        names = [d.name for d in described]
        key = self._explicit_key
        missing = [k for k in key if k not in names]
        if missing or len(set(key)) != len(key):
            raise ConfigError(
                f"{self.name}: KEY ({', '.join(key)}) names "
                + (f"columns the query does not return: {missing}" if missing else "a column twice")
                + f"; it returns {', '.join(names)}"
            )
        self._types = tuple(d.type for d in described)
        columns = tuple(
            Column(d.name, types._pg_type(d.type, d.name), d.nullable, d.type.column_type)
            for d in described
        )
        self._width = len(columns)
        order = key
        if self._increments_by is not None:
            order = self._incremental(
                columns,
                key,
                {d.name: d.type for d in described},
                source="the query",
                query=True,
            )
        # a FLOAT is read as the DOUBLE it stores (see _exact_floats): the query's columns are
        # then named one by one instead of `*`
        floats = any(t.data_type == "float" for t in self._types)
        items = (
            tuple(
                f"CAST({quote(n)} AS DOUBLE) AS {quote(n)}" if t.data_type == "float" else quote(n)
                for n, t in zip(names, self._types, strict=True)
            )
            if floats
            else ("*",)
        )
        if order:
            self._items = items
            self._from = f"({text}) AS {quote('q')}"
            self._key_at = tuple(names.index(k) for k in order)
            self._key_types = tuple(self._types[i] for i in self._key_at)
            self._key = order
        elif floats:
            self._plain = f"SELECT {', '.join(items)} FROM ({text}) AS {quote('q')}"
        else:
            self._plain = text
        self._schema = Schema(columns, key)


def _exact_floats(
    items: Sequence[str], outputs: Sequence[Any], output_types: Sequence[types.MySQLType]
) -> tuple[str, ...]:
    """The select list with FLOAT columns read as DOUBLE: the server prints a FLOAT with 6
    significant digits (1.2345678 arrives as 1.23457), while the DOUBLE holds the float32
    value it stores exactly, which a PostgreSQL real takes back without loss."""
    exact = list(items)
    for i, (output, t) in enumerate(zip(outputs, output_types, strict=False)):
        if output.source is not None and t.data_type == "float":
            column = quote(output.source)
            exact[i] = f"CAST({column} AS DOUBLE) AS {quote(output.name)}"
    return tuple(exact)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _convert(
    raw_rows: Sequence[Row],
    converters: list[tuple[int, Callable[[Any], Any]]],
    ordinal: int,
    names: tuple[str, ...],
    width: int,
) -> RawBatch:
    """The rows as the mapped types hold them, cut to the output's `width` (hidden key
    columns off); a row a converter refuses is rejected with the reason."""
    positions = list(range(ordinal + 1, ordinal + len(raw_rows) + 1))
    if raw_rows and len(raw_rows[0]) > width:
        raw_rows = [tuple(r)[:width] for r in raw_rows]
    if not converters:
        return RawBatch(rows=list(raw_rows), positions=positions)
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


def _escaped(sql: str) -> str:
    """SQL text for a statement the driver formats with parameters: `%` doubled."""
    return sql.replace("%", "%%")


def _add(conditions: list[str], params: list[Any], condition: tuple[str, list[Any]]) -> None:
    conditions.append(condition[0])
    params.extend(condition[1])


def _after(keys: Sequence[str], values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`key > values`, as `(k1 >= v1 AND ((k1 > v1) OR (k1 = v1 AND k2 > v2) OR ...))`: the
    leading range lets the server start at the cursor in the key's index."""
    alternatives = []
    params = [values[0]]
    for n in range(len(keys)):
        terms = [f"{k} = %s" for k in keys[:n]] + [f"{keys[n]} > %s"]
        alternatives.append("(" + " AND ".join(terms) + ")")
        params.extend(values[: n + 1])
    return f"({keys[0]} >= %s AND ({' OR '.join(alternatives)}))", params


def _at_most(keys: Sequence[str], values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`key <= values`: `k1 <= v1`, or for a composite key `(k1 <= v1 AND ((k1 < v1) OR
    (k1 = v1 AND k2 < v2) OR ... OR (k1 = v1 AND k2 = v2 ...)))`."""
    if len(keys) == 1:
        return f"{keys[0]} <= %s", [values[0]]
    alternatives = []
    params = [values[0]]
    for n in range(len(keys)):
        terms = [f"{k} = %s" for k in keys[:n]] + [f"{keys[n]} < %s"]
        alternatives.append("(" + " AND ".join(terms) + ")")
        params.extend(values[: n + 1])
    alternatives.append("(" + " AND ".join(f"{k} = %s" for k in keys) + ")")
    params.extend(values)
    return f"({keys[0]} <= %s AND ({' OR '.join(alternatives)}))", params


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


# Types whose values a cursor cannot hold in a useful order (MODE incremental's CURSOR).
_UNORDERED = frozenset({"json", *types._GEOMETRY})
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
