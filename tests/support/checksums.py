"""Per-row checksums that say whether a table copied by Stratum holds the source's rows.

Every row is turned into a canonical text, from which its checksum (sha256) is taken; a table
is the sorted list of its rows' checksums, a multiset (duplicate rows count, row order does not).
The canonical text is made so that the same logical value gives the same text in MariaDB/MySQL
and in PostgreSQL under Stratum's documented mapping (`stratum/connectors/mysql/types.py`):

=================================  ===========================================================
value                              canonical text
=================================  ===========================================================
NULL                               JSON null
boolean; MySQL tinyint(1), bit(1)  't' / 'f' (another tinyint(1) value stays a number, so it
                                   never matches a boolean)
integers, numeric/decimal,         the number without exponent, trailing zeros or sign of
bigint unsigned, year              zero: 1.50 and 1.5 are '1.5', 18446744073709551615 stays
                                   exact; NaN and infinities by name
double precision / DOUBLE          repr() of the float ('0.1', '1e-300')
real / FLOAT                       repr() of the value rounded to float32 (MySQL's FLOAT is
                                   read as CAST(... AS DOUBLE), the value it really stores)
text, varchar, char, enum, uuid,   the text itself (uuid, inet, interval... as PostgreSQL
and other types                    prints them)
bytea; BINARY, BLOB                '\\x' and lower-case hex
MySQL geometry                     its standard WKB (ST_AsBinary), as Stratum carries it
bit varying(n); MySQL BIT(n)       n '0'/'1' characters
date                               'YYYY-MM-DD' (year 9: '0009-12-04')
timestamp, timestamptz;            'YYYY-MM-DD HH:MM:SS.ffffff' in UTC (an aware value is
DATETIME, TIMESTAMP                converted to UTC; MySQL is read with time_zone '+00:00')
MySQL zero dates                   by the ZERO DATES policy: NULL (the default), a sentinel
('0000-00-00', '2020-00-15')       date, or "error": the row is left out (Stratum rejects it)
time; MySQL TIME within a day      'HH:MM:SS.ffffff'
json, jsonb; MySQL JSON            the document with sorted keys, no spaces, numbers as above;
                                   the JSON literal null is SQL NULL (as Stratum reads it); a
                                   document that is an array is the list of its elements, as
                                   an array is (arrays and SETs become JSON arrays in MySQL)
arrays; MySQL SET                  a JSON list of the elements' canonical texts ('a,c' -> the
                                   list ['a', 'c']; '' -> [])
=================================  ===========================================================

A row's canonical text is the JSON list of its values' canonical texts, in the order of the
column names (sorted), so column order does not matter but names must match.

API:

* ``await canonical_rows(url, table, *, schema=None, columns=None, zero_dates="null")``
  -> ``list[str]``: the canonical text of every row (unsorted);
* ``await table_checksums(url, table, *, schema=None, columns=None, zero_dates="null")``
  -> ``list[str]``: the sorted sha256 hex digests of the rows (compare two with ==);
* ``row_checksum(text: str) -> str``;
* ``await compare_tables(source_url, target_url, table, *, target_table=None,
  source_schema=None, target_schema=None, columns=None, zero_dates="null", limit=5)``
  -> ``TableDifference | None`` (None: the same rows);
* ``await compare_databases(source_url, target_url, *, tables=None, target_names=None,
  source_schema=None, target_schema=None, zero_dates="null", limit=5)``
  -> ``list[TableDifference]`` (empty: every table holds the same rows).

URLs are ``mysql://`` / ``mariadb://`` (the database is the path, or `schema`) or
``postgresql://`` (the schema is `schema`, default ``public``). Tables are read whole, in
memory: this is for test databases, not for production sizes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncmy
import asyncpg

__all__ = [
    "TableDifference",
    "canonical_rows",
    "canonical_value",
    "compare_databases",
    "compare_tables",
    "row_checksum",
    "table_checksums",
]

_EXACT = Context(prec=1000, Emax=999_999, Emin=-999_999)
_ZERO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_JSON_CHECK = re.compile(r"^\s*json_valid\(`((?:[^`]|``)+)`\)\s*$", re.IGNORECASE)
_GEOMETRY = {
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
    "geomcollection",
}
Canonical = str | list[Any] | None
Normalizer = Callable[[Any], Canonical]


class _LeaveOut(Exception):
    """The row is not in the copy by the policy (ZERO DATES AS ERROR rejects it)."""


@dataclass(frozen=True)
class TableDifference:
    """How a table differs between two databases: row counts (None: the table is missing on
    that side) and the canonical texts of up to `limit` rows found on one side only."""

    table: str
    source_rows: int | None
    target_rows: int | None
    only_in_source: tuple[str, ...] = ()
    only_in_target: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [
            f"{self.table}: {self.source_rows} rows in the source, {self.target_rows} in the target"
        ]
        lines += [f"  only in the source: {text}" for text in self.only_in_source]
        lines += [f"  only in the target: {text}" for text in self.only_in_target]
        return "\n".join(lines)


# --- canonical values -------------------------------------------------------------------------


def _number(value: int | Decimal) -> str:
    if isinstance(value, int):
        return str(value)
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "Infinity" if value > 0 else "-Infinity"
    if not value:
        return "0"
    return format(value.normalize(_EXACT), "f")


def _float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value + 0.0)  # -0.0 -> 0.0: MariaDB does not keep the sign of a zero


def _float4(value: Any) -> Canonical:
    if isinstance(value, float) and math.isfinite(value):
        try:
            return _float(struct.unpack("f", struct.pack("f", value))[0])
        except OverflowError:
            return _float(value)
    return canonical_value(value)


def _clock(hour: int, minute: int, second: int, micro: int) -> str:
    return f"{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}"


def canonical_value(value: Any) -> Canonical:
    """The canonical text of a value by its Python type (see the module's table); lists (arrays)
    give lists of canonical texts."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | Decimal):
        return _number(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        day = f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        return f"{day} {_clock(value.hour, value.minute, value.second, value.microsecond)}"
    if isinstance(value, date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if isinstance(value, time):
        return _clock(value.hour, value.minute, value.second, value.microsecond)
    if isinstance(value, timedelta):
        if timedelta(0) <= value < timedelta(days=1):
            seconds = value.seconds
            return _clock(seconds // 3600, seconds // 60 % 60, seconds % 60, value.microseconds)
        return f"duration {value}"
    if isinstance(value, list | tuple):
        return [canonical_value(v) for v in value]
    if isinstance(value, dict):
        return _json_text(value)
    if isinstance(value, set | frozenset):  # a driver that splits MySQL SETs itself
        return sorted(str(v) for v in value)
    return str(value)


def _json_text(value: Any) -> str:
    """A parsed JSON value (numbers as int/Decimal/float) in canonical JSON text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return _number(value)
    if isinstance(value, float):
        return _number(Decimal(repr(value)))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = sorted((str(k), v) for k, v in value.items())
        return (
            "{"
            + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_json_text(v)}" for k, v in items)
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _json(value: Any) -> Canonical:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8")
    document = json.loads(value, parse_float=Decimal) if isinstance(value, str) else value
    if isinstance(document, list):
        return [_element(v) for v in document]
    return None if document is None else _json_text(document)


def _element(value: Any) -> Canonical:
    """An element of a JSON array as an array's element would be: an array (or SET) carried as
    JSON (PostgreSQL -> MySQL, MySQL -> MySQL) compares equal to the array itself."""
    if isinstance(value, list):
        return [_element(v) for v in value]
    if isinstance(value, dict):
        return _json_text(value)
    if isinstance(value, float):
        return _number(Decimal(repr(value)))
    return canonical_value(value)


def _bool(value: Any) -> Canonical:
    if isinstance(value, bytes | bytearray):  # BIT(1)
        value = int.from_bytes(value, "big")
    if value in (0, 1):  # also True/False
        return "t" if value else "f"
    return canonical_value(value)  # tinyint(1) of 2: Stratum rejects it; never a boolean


def _bits(bits: int) -> Normalizer:
    def normalize(value: Any) -> Canonical:
        if isinstance(value, bytes | bytearray):
            return format(int.from_bytes(value, "big"), f"0{bits}b")
        return canonical_value(value)

    return normalize


def _mysql_set(value: Any) -> Canonical:
    if isinstance(value, str):
        return value.split(",") if value else []
    return canonical_value(value)


def _zero_dates(kind: str, policy: str) -> Normalizer:
    """A date/datetime/timestamp column's normalizer: a zero date ('0000-00-00', '2020-00-15',
    returned as text by the driver) follows the ZERO DATES policy."""
    sentinel: Canonical = None
    if policy not in ("null", "error"):
        moment = datetime.fromisoformat(policy)
        sentinel = canonical_value(moment.date() if kind == "date" else moment)

    def normalize(value: Any) -> Canonical:
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode()
        if isinstance(value, str):
            found = _ZERO_DATE.match(value)
            if found and 0 in (int(found.group(1)), int(found.group(2)), int(found.group(3))):
                if policy == "error":
                    raise _LeaveOut
                return sentinel
        return canonical_value(value)

    return normalize


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    select: str  # the expression selected
    normalize: Normalizer


def _is_mysql(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("mysql", "mariadb")


def _mq(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _pq(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _mysql_connect(url: str) -> Any:
    parts = urlsplit(url)
    conn = await asyncmy.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username) if parts.username else "root",
        password=unquote(parts.password) if parts.password else "",
        database=unquote(parts.path.lstrip("/")) or None,
        charset="utf8mb4",
        autocommit=True,
    )
    async with conn.cursor() as cursor:
        await cursor.execute("SET SESSION sql_mode = '', time_zone = '+00:00'")
    return conn


async def _mysql_fetch(conn: Any, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cursor:
        await cursor.execute(sql, tuple(args) or None)
        return [tuple(r) for r in await cursor.fetchall() or ()]


def _mysql_database(url: str, schema: str | None) -> str:
    database = schema or unquote(urlsplit(url).path.lstrip("/"))
    if not database:
        raise ValueError("a MySQL URL must name the database (or give `schema`)")
    return database


async def _mysql_columns(conn: Any, database: str, table: str, zero_dates: str) -> list[_Column]:
    rows = await _mysql_fetch(
        conn,
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (database, table),
    )
    checks = await _mysql_fetch(
        conn,
        "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s",
        (database, table),
    )
    json_columns = set()
    for (clause,) in checks:
        found = _JSON_CHECK.match(str(clause))
        if found:
            json_columns.add(found.group(1).replace("``", "`"))
    columns = []
    for raw_name, data_type, column_type in rows:
        name, kind, spelt = str(raw_name), str(data_type).lower(), str(column_type).lower()
        select = _mq(name)
        normalize: Normalizer = canonical_value
        if kind == "json" or name in json_columns:
            normalize = _json
        elif (kind == "tinyint" and spelt.startswith("tinyint(1)")) or spelt in ("bit(1)", "bit"):
            normalize = _bool
        elif kind == "bit":
            normalize = _bits(int(spelt[4:-1]))
        elif kind == "set":
            normalize = _mysql_set
        elif kind in ("date", "datetime", "timestamp"):
            normalize = _zero_dates(kind, zero_dates)
        elif kind == "float":
            select, normalize = f"CAST({select} AS DOUBLE)", _float4
        elif kind in _GEOMETRY:
            select = f"ST_AsBinary({select})"
        columns.append(_Column(name, select, normalize))
    return columns


async def _postgres_columns(conn: Any, schema: str, table: str) -> list[_Column]:
    rows = await conn.fetch(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS spelt, t.typname,
                  t.typcategory::text AS category, coalesce(e.typname, '') AS element
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_type t ON t.oid = a.atttypid
           LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
           WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
           ORDER BY a.attnum""",
        schema,
        table,
    )
    plain = {
        "bool", "int2", "int4", "int8", "numeric", "float8", "text", "varchar", "bpchar",
        "bytea", "date", "timestamp", "timestamptz", "time",
    }  # fmt: skip
    columns = []
    for row in rows:
        name, typname, element = row["attname"], row["typname"], row["element"]
        select = _pq(name)
        normalize: Normalizer = canonical_value
        if typname in ("json", "jsonb"):
            select, normalize = f"{select}::text", _json
        elif typname == "float4":
            normalize = _float4
        elif row["category"] == "A":
            if element in ("json", "jsonb"):
                select = f"{select}::text[]"
                normalize = lambda v: None if v is None else [_json(x) for x in v]  # noqa: E731
            elif element not in plain:
                select = f"{select}::text[]"
        elif typname not in plain:  # bit strings, uuid, interval, inet, enums: their text
            select = f"{select}::text"
        columns.append(_Column(name, select, normalize))
    return columns


async def _read(
    url: str, table: str, schema: str | None, columns: Sequence[str] | None, zero_dates: str
) -> list[str] | None:
    """The canonical texts of the table's rows; None when the table does not exist."""
    if _is_mysql(url):
        database = _mysql_database(url, schema)
        conn = await _mysql_connect(url)
        try:
            described = await _mysql_columns(conn, database, table, zero_dates)
            if not described:
                return None
            chosen = _choose(described, columns, table)
            sql = f"SELECT {', '.join(c.select for c in chosen)} FROM {_mq(database)}.{_mq(table)}"
            rows = await _mysql_fetch(conn, sql)
        finally:
            await conn.ensure_closed()
    else:
        schema = schema or "public"
        conn = await asyncpg.connect(url)
        try:
            described = await _postgres_columns(conn, schema, table)
            if not described:
                return None
            chosen = _choose(described, columns, table)
            sql = f"SELECT {', '.join(c.select for c in chosen)} FROM {_pq(schema)}.{_pq(table)}"
            rows = [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()
    texts = []
    for row in rows:
        try:
            values = [column.normalize(v) for column, v in zip(chosen, row, strict=True)]
        except _LeaveOut:
            continue
        texts.append(json.dumps(values, ensure_ascii=False, separators=(",", ":")))
    return texts


def _choose(described: list[_Column], columns: Sequence[str] | None, table: str) -> list[_Column]:
    by_name = {c.name: c for c in described}
    names = sorted(by_name) if columns is None else sorted(columns)
    missing = [n for n in names if n not in by_name]
    if missing:
        raise KeyError(f"{table} has no column(s) {missing}")
    return [by_name[n] for n in names]


# --- the API ----------------------------------------------------------------------------------


def row_checksum(text: str) -> str:
    """The sha256 hex digest of a row's canonical text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def canonical_rows(
    url: str,
    table: str,
    *,
    schema: str | None = None,
    columns: Sequence[str] | None = None,
    zero_dates: str = "null",
) -> list[str]:
    """The canonical text of every row of `table` (all columns, or `columns`), unsorted.
    `zero_dates` is the ZERO DATES policy the copy used: "null", "error" (rows holding a zero
    date are left out) or a sentinel 'YYYY-MM-DD[ HH:MM:SS]'; it only changes MySQL reads.
    KeyError when the table (or a column) does not exist."""
    texts = await _read(url, table, schema, columns, zero_dates)
    if texts is None:
        raise KeyError(f"no table {table!r}")
    return texts


async def table_checksums(
    url: str,
    table: str,
    *,
    schema: str | None = None,
    columns: Sequence[str] | None = None,
    zero_dates: str = "null",
) -> list[str]:
    """The sorted checksums of the rows of `table`: equal lists, equal multisets of rows."""
    rows = await canonical_rows(url, table, schema=schema, columns=columns, zero_dates=zero_dates)
    return sorted(row_checksum(text) for text in rows)


async def compare_tables(
    source_url: str,
    target_url: str,
    table: str,
    *,
    target_table: str | None = None,
    source_schema: str | None = None,
    target_schema: str | None = None,
    columns: Sequence[str] | None = None,
    zero_dates: str = "null",
    limit: int = 5,
) -> TableDifference | None:
    """None when `table` holds the same rows on both sides (as multisets), else how it
    differs. A table missing on a side has None rows there."""
    source = await _read(source_url, table, source_schema, columns, zero_dates)
    target = await _read(target_url, target_table or table, target_schema, columns, zero_dates)
    if source is not None and target is not None:
        left, right = Counter(source), Counter(target)
        if left == right:
            return None
        return TableDifference(
            table,
            len(source),
            len(target),
            tuple(sorted((left - right).elements())[:limit]),
            tuple(sorted((right - left).elements())[:limit]),
        )
    return TableDifference(
        table, None if source is None else len(source), None if target is None else len(target)
    )


async def _tables(url: str, schema: str | None) -> list[str]:
    if _is_mysql(url):
        conn = await _mysql_connect(url)
        try:
            rows = await _mysql_fetch(
                conn,
                "SELECT TABLE_NAME FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'",
                (_mysql_database(url, schema),),
            )
        finally:
            await conn.ensure_closed()
        return sorted(str(r[0]) for r in rows)
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
            schema or "public",
        )
    finally:
        await conn.close()
    return sorted(str(r[0]) for r in rows)


async def compare_databases(
    source_url: str,
    target_url: str,
    *,
    tables: Sequence[str] | None = None,
    target_names: Mapping[str, str] | None = None,
    source_schema: str | None = None,
    target_schema: str | None = None,
    zero_dates: str = "null",
    limit: int = 5,
) -> list[TableDifference]:
    """Compare `tables` (default: every base table of the source) table by table; the
    differences, in table order (an empty list: the same rows everywhere). `target_names`
    maps a source table to its name in the target (a name PostgreSQL had to shorten)."""
    names = list(tables) if tables is not None else await _tables(source_url, source_schema)
    renamed = target_names or {}
    differences = []
    for table in names:
        difference = await compare_tables(
            source_url,
            target_url,
            table,
            target_table=renamed.get(table, table),
            source_schema=source_schema,
            target_schema=target_schema,
            zero_dates=zero_dates,
            limit=limit,
        )
        if difference is not None:
            differences.append(difference)
    return differences
