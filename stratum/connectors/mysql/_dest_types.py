"""Column types and values for the MySQL/MariaDB destination.

Types arrive spelt as PostgreSQL spells them and are parsed by sqlglot (`parse_type`), so a type
string cannot smuggle SQL in. Most are written by sqlglot in MySQL's dialect; where its result is
not valid (or not faithful) MySQL DDL, this table decides:

    PostgreSQL              MySQL / MariaDB              why
    text, varchar (no n)    LONGTEXT                     TEXT stops at 64 KiB
    varchar(n), char(n)     VARCHAR(n), CHAR(n)
    bytea                   LONGBLOB                     VARBINARY needs a length
    jsonb, json             JSON                         MariaDB: LONGTEXT CHECK (JSON_VALID)
    text[] (any array)      JSON                         no arrays; stored as a JSON array
    boolean                 TINYINT(1)                   what BOOLEAN means in MySQL
    numeric (no precision)  DECIMAL(65,30)               a bare DECIMAL is DECIMAL(10,0)
    numeric(p,s)            DECIMAL(p,s)
    timestamp[(p)]          DATETIME(p, default 6)       microseconds, as PostgreSQL keeps
    timestamptz[(p)]        DATETIME(p, default 6), UTC  TIMESTAMP stops in 2038
    time[(p)], timetz       TIME(p, default 6)
    uuid                    CHAR(36)                     MySQL has no UUID type
    integer, bigint, ...    INT, BIGINT, SMALLINT, DOUBLE, FLOAT, DATE (sqlglot)

A text or bytea column in the primary key cannot be a LONGTEXT/LONGBLOB (MySQL indexes a
bounded prefix only): it becomes VARCHAR/VARBINARY sharing InnoDB's 3072-byte key limit. Every
string column of the primary key is compared byte for byte (utf8mb4_bin): 'a' and 'A' are two
keys in the source, so they must be two keys here too.

`pg_type` reads a column's MySQL type back as PostgreSQL spells it (`columns()`).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError

from stratum.connectors.base import Column, Row, Schema
from stratum.connectors.sql import json_text, parse_type

__all__ = ["column_ddl", "encode_rows", "pg_type"]

T = exp.DataType.Type
_KEY_BYTES = 3072  # InnoDB's limit on an index key (DYNAMIC rows)
_TEXT = {T.TEXT, T.MEDIUMTEXT, T.LONGTEXT, T.TINYTEXT, T.NAME}
_STRINGS = {*_TEXT, T.VARCHAR, T.CHAR, T.NVARCHAR, T.NCHAR, T.BPCHAR}
_BINARY = {T.VARBINARY, T.BINARY, T.BLOB, T.LONGBLOB, T.MEDIUMBLOB, T.TINYBLOB}
_JSON = {T.JSON, T.JSONB}
_DATETIMES = {T.TIMESTAMP, T.TIMESTAMPTZ, T.TIMESTAMPLTZ, T.DATETIME, T.DATETIME64}
_TIMES = {T.TIME, T.TIMETZ}
_FLOATS = {T.DOUBLE, T.FLOAT}


def _precision(parsed: exp.DataType, default: int) -> int:
    if parsed.expressions:
        return int(parsed.expressions[0].name)
    return default


def mysql_type(type_: str, column: str = "", *, key_bytes: int | None = None) -> str:
    """`type_` (spelt as PostgreSQL spells it) as a MySQL column type; `key_bytes` when the
    column is in the primary key (the room it has there)."""
    parsed = parse_type(type_, column)
    kind = parsed.this
    if kind == T.ARRAY or kind in _JSON:
        return "JSON"
    if kind in _STRINGS and (kind in _TEXT or not parsed.expressions):
        if key_bytes is not None:
            return f"VARCHAR({key_bytes // 4}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        return "LONGTEXT"
    if kind in _STRINGS:
        size = parsed.expressions[0].name
        name = "CHAR" if kind in (T.CHAR, T.NCHAR, T.BPCHAR) else "VARCHAR"
        collate = " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" if key_bytes is not None else ""
        return f"{name}({int(size)}){collate}"
    if kind in _BINARY:
        if key_bytes is not None:
            return f"VARBINARY({key_bytes})"
        return "LONGBLOB"
    if kind == T.BOOLEAN:
        return "TINYINT(1)"
    if kind == T.DECIMAL and not parsed.expressions:
        return "DECIMAL(65,30)"
    if kind in _DATETIMES:
        return f"DATETIME({_precision(parsed, 6)})"
    if kind in _TIMES:
        return f"TIME({_precision(parsed, 6)})"
    if kind == T.UUID:
        return "CHAR(36)"
    return parsed.sql("mysql")


def column_ddl(schema: Schema, quote: Callable[[str], str]) -> list[str]:
    """The column definitions of a CREATE TABLE for `schema`."""
    key = set(schema.primary_key)
    in_key = [c for c in schema.columns if c.name in key]
    unbounded = [c for c in in_key if _unbounded(c.type, c.name)]
    bounded = sum(_key_bytes(c) for c in in_key if c not in unbounded)
    room = max(4, (_KEY_BYTES - bounded) // max(1, len(unbounded)))
    parts = []
    for column in schema.columns:
        keyed = column.name in key
        ddl = mysql_type(column.type, column.name, key_bytes=room if keyed else None)
        null = " NOT NULL" if not column.nullable or keyed else ""
        parts.append(f"{quote(column.name)} {ddl}{null}")
    return parts


def _key_bytes(column: Column) -> int:
    """At most how many bytes a bounded key column takes in an index (roughly)."""
    parsed = parse_type(column.type, column.name)
    if parsed.this in _STRINGS and parsed.expressions:
        return 4 * int(parsed.expressions[0].name)  # utf8mb4
    return 16  # numbers, dates, times: at most 8 bytes, with room to spare


def _unbounded(type_: str, column: str) -> bool:
    parsed = parse_type(type_, column)
    return (
        parsed.this in _TEXT
        or parsed.this in _BINARY
        or (parsed.this in _STRINGS and not parsed.expressions)
    )


# --- back to PostgreSQL spellings ------------------------------------------------------------

_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|integer|bigint)\(\d+\)")
_SIMPLE = {
    "tinyint": "smallint",
    "smallint": "smallint",
    "mediumint": "integer",
    "int": "integer",
    "integer": "integer",
    "bigint": "bigint",
    "tinyint unsigned": "smallint",
    "smallint unsigned": "integer",
    "mediumint unsigned": "integer",
    "int unsigned": "bigint",
    "bigint unsigned": "numeric(20,0)",
    "double": "double precision",
    "double precision": "double precision",
    "float": "real",
    "real": "double precision",
    "date": "date",
    "datetime": "timestamp",
    "timestamp": "timestamptz",
    "time": "time",
    "year": "smallint",
    "json": "jsonb",
    "tinytext": "text",
    "text": "text",
    "mediumtext": "text",
    "longtext": "text",
    "tinyblob": "bytea",
    "blob": "bytea",
    "mediumblob": "bytea",
    "longblob": "bytea",
    "decimal(65,30)": "numeric",
    "uuid": "uuid",  # MariaDB 10.7+
}
_PARAMETERISED = re.compile(
    r"^(decimal|numeric|datetime|timestamp|time|varchar|char)\((\d+(?:,\d+)?)\)$"
)


def pg_type(column_type: str, *, is_json: bool = False) -> str:
    """A MySQL COLUMN_TYPE ("bigint(20)", "decimal(12,2)", "datetime(6)", "tinyint(1)") as
    PostgreSQL spells it ("bigint", "numeric(12,2)", "timestamp", "boolean")."""
    text = column_type.strip().lower().replace(" zerofill", "")
    if is_json:
        return "jsonb"
    if text.startswith("tinyint(1)") and "unsigned" not in text:
        return "boolean"
    text = _WIDTH.sub(r"\1", text)
    if text in _SIMPLE:
        return _SIMPLE[text]
    match = _PARAMETERISED.match(text)
    if match:
        name, args = match.groups()
        if name in ("decimal", "numeric"):
            return f"numeric({args})"
        if name == "datetime":
            return "timestamp" if args == "6" else f"timestamp({args})"
        if name == "timestamp":
            return "timestamptz" if args == "6" else f"timestamptz({args})"
        if name == "time":
            return "time" if args == "6" else f"time({args})"
        return f"{name}({args})"
    if text.startswith(("varbinary", "binary", "bit")):
        return "bytea"
    if text.startswith(("enum", "set")):
        return "text"
    try:
        return exp.DataType.build(text, dialect="mysql").sql("postgres").lower()
    except (ValueError, ParseError):  # an exotic type sqlglot does not know: keep MySQL's name
        return text


# --- values ----------------------------------------------------------------------------------

Encoder = Callable[[Any], Any]


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _json(value: Any) -> Any:
    return None if value is None else json_text(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r}: MySQL and MariaDB cannot store NaN or infinities")
    return value


def _decimal(value: Any) -> Any:
    # As fixed-point text: a Decimal sent as 1E-9 would be read as a DOUBLE literal and rounded.
    return format(value, "f") if isinstance(value, Decimal) else value


def _uuid(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def _bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, (bytearray, memoryview)) else value


def _encoder(column: Column) -> Encoder | None:
    kind = parse_type(column.type, column.name).this
    if kind == T.ARRAY or kind in _JSON:
        return _json
    if kind in _DATETIMES:
        return _utc
    if kind in _FLOATS:
        return _finite
    if kind == T.DECIMAL:
        return _decimal
    if kind == T.UUID:
        return _uuid
    if kind in _BINARY:
        return _bytes
    return None


def encode_rows(schema: Schema, rows: Sequence[Row]) -> Sequence[Row]:
    """The rows with each value as the driver must send it (raises ValueError/TypeError for a
    value no column of its type can take: a RowError)."""
    encoders = [(i, e) for i, c in enumerate(schema.columns) if (e := _encoder(c)) is not None]
    if not encoders:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for index, encode in encoders:
            value = values[index]
            if value is not None:
                values[index] = encode(value)
        out.append(tuple(values))
    return out
