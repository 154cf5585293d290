"""Column types and values for the MySQL/MariaDB destination.

Types arrive spelt as PostgreSQL spells them and are parsed by sqlglot (`parse_type`), so a type
string cannot smuggle SQL in. Most are written by sqlglot in MySQL's dialect; where its result is
not valid (or not faithful) MySQL DDL, this table decides. The last column says what a value
becomes, and which values are refused (the row is rejected with the reason, never changed):

===========================  ============================  =====================================
PostgreSQL                   MySQL / MariaDB               values
===========================  ============================  =====================================
text, varchar (no n)         LONGTEXT                      as they are (TEXT stops at 64 KiB)
varchar(n), char(n)          VARCHAR(n), CHAR(n)           as they are
bytea                        LONGBLOB                      every byte, NULs included (VARBINARY
                                                           needs a length)
jsonb, json                  JSON (MariaDB: LONGTEXT       JSON text; a Decimal inside is
                             CHECK (JSON_VALID))           written with every digit
any array (integer[],        JSON                          a JSON array (MySQL has no arrays),
text[], date[], ...)                                       nested for 2-D arrays, NULL elements
                                                           as null, each element as PostgreSQL's
                                                           to_json writes it: numbers and
                                                           booleans as they are (a numeric with
                                                           every digit); text, uuid, interval,
                                                           inet and bit strings as their text;
                                                           dates, timestamps and times in ISO
                                                           8601 ('2024-02-29',
                                                           '2024-02-29T23:59:59.5', a
                                                           timestamptz in UTC with its offset,
                                                           '...T18:29:59.5+00:00', a timetz as
                                                           '12:00:00+02', 'infinity' as is);
                                                           bytea as its hex text ('\\x00ff').
                                                           An element JSON cannot hold exactly
                                                           (NaN, an infinity) is refused
boolean                      TINYINT(1)                    what BOOLEAN means in MySQL
smallint, integer, bigint    SMALLINT, INT, BIGINT         as they are
real, double precision       FLOAT, DOUBLE                 NaN and infinities refused
numeric(p,s), p <= 65,       DECIMAL(p,s)                  every digit
s <= min(p, 30)
numeric (no precision), or   DECIMAL(65,30)                a bare DECIMAL is DECIMAL(10,0); a
numeric(p,s) past MySQL's                                  value that needs more than 35 digits
limits                                                     before the point or 30 after, NaN or
                                                           an infinity is refused (MySQL would
                                                           round the fraction without an error)
timestamp[(p)]               DATETIME(p, default 6)        microseconds, as PostgreSQL keeps
timestamptz[(p)]             DATETIME(p, default 6), UTC   converted to UTC (TIMESTAMP stops in
                                                           2038); read back as timestamp
date                         DATE                          'infinity'/'-infinity' refused
                                                           (likewise for the timestamps)
time[(p)]                    TIME(p, default 6)
timetz                       LONGTEXT                      PostgreSQL's text ('12:00:00+02',
                                                           '23:59:59.5-03:30'): TIME holds no
                                                           offset, and one dropped or folded
                                                           into the time would change the value
uuid                         CHAR(36)                      the canonical text; CHAR(36), not
                                                           MariaDB's UUID: MySQL has none
bit varying(n), n <= 64,     BIT(n)                        the '0'/'1' string as a number; a
and bit(1)                                                 value of other than n bits (varbit
                                                           holds shorter ones) is refused: BIT(n)
                                                           would pad it with leading zeros
bit(n), n > 1                CHAR(n)                       the '0'/'1' text (BIT(n) reads back as
                                                           bit varying(n), another type)
bit varying (no n, n > 64)   LONGTEXT                      the '0'/'1' text (BIT stops at 64)
interval                     LONGTEXT                      PostgreSQL's text ('1 year 2 mons')
inet, cidr, macaddr, xml,    LONGTEXT                      PostgreSQL's text (MariaDB's INET6
money                                                      holds no netmask)
enum and domain types,       LONGTEXT                      the label / the base value as text
other unknown names
===========================  ============================  =====================================

A text or bytea column in the primary key cannot be a LONGTEXT/LONGBLOB (MySQL indexes a
bounded prefix only): it becomes VARCHAR/VARBINARY sharing InnoDB's 3072-byte key limit. Every
string column of the primary key is compared byte for byte (utf8mb4_bin): 'a' and 'A' are two
keys in the source, so they must be two keys here too.

`pg_type` reads a column's MySQL type back as PostgreSQL spells it (`columns()`), the way the
MySQL source maps it (`stratum.connectors.mysql.types`): BIT(1) is boolean, BIT(n) is bit
varying(n), DECIMAL(65,30) is numeric, YEAR is integer (as the source reads it, so rows read
from a YEAR column need no coercion to be written into one). Rows are coerced to those types
before they are written, so a bit varying(1) column's '1' arrives as True, a uuid as its text,
an array as the JSON value (a list, its elements unchanged), a timetz as PostgreSQL's text.
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError

from stratum.connectors.base import Column, Row, Schema
from stratum.connectors.postgres._codecs import (
    INFINITY,
    NEGATIVE_INFINITY,
    interval_text,
    json_exact,
)
from stratum.connectors.sql import parse_type

__all__ = ["column_ddl", "encode_rows", "pg_type"]

T = exp.DataType.Type
_KEY_BYTES = 3072  # InnoDB's limit on an index key (DYNAMIC rows)
_TEXT = {T.TEXT, T.MEDIUMTEXT, T.LONGTEXT, T.TINYTEXT, T.NAME}
_STRINGS = {*_TEXT, T.VARCHAR, T.CHAR, T.NVARCHAR, T.NCHAR, T.BPCHAR}
_BINARY = {T.VARBINARY, T.BINARY, T.BLOB, T.LONGBLOB, T.MEDIUMBLOB, T.TINYBLOB}
_JSON = {T.JSON, T.JSONB}
_DATETIMES = {T.TIMESTAMP, T.TIMESTAMPTZ, T.TIMESTAMPLTZ, T.DATETIME, T.DATETIME64}
_FLOATS = {T.DOUBLE, T.FLOAT}
#: Kept as PostgreSQL's text: MySQL has no such type (or none that holds every value).
_AS_TEXT = {T.INTERVAL, T.INET, T.USERDEFINED, T.XML, T.MONEY, T.TIMETZ}
_MAX_PRECISION = 65  # DECIMAL's limits
_MAX_SCALE = 30
_BIT_TYPE = re.compile(
    r"\s*(?:(?P<varying>bit\s+varying|varbit)|bit)\s*(?:\(\s*(?P<bits>\d+)\s*\))?\s*",
    re.IGNORECASE,
)
_MAX_BITS = 64  # BIT's


def _bit_type(type_: str) -> tuple[bool, int | None] | None:
    """(varying, bits) of a bit string type (bits None: no limit), None for other types."""
    found = _BIT_TYPE.fullmatch(type_)
    if found is None:
        return None
    varying = found.group("varying") is not None
    bits = found.group("bits")
    return varying, int(bits) if bits else (None if varying else 1)


def _bit_column(bits: tuple[bool, int | None]) -> int | None:
    """The n of the BIT(n) column a bit string type becomes; None when it is kept as text."""
    varying, n = bits
    if n is not None and (n == 1 or (varying and n <= _MAX_BITS)):
        return n
    return None


def _decimal_size(parsed: exp.DataType) -> tuple[int, int, bool]:
    """(precision, scale) of the DECIMAL a numeric becomes, and whether it holds every value of
    the numeric (False: values are checked one by one)."""
    args = [int(e.name) for e in parsed.expressions] if parsed.expressions else []
    if args:
        precision, scale = args[0], args[1] if len(args) > 1 else 0
        if 1 <= precision <= _MAX_PRECISION and 0 <= scale <= min(precision, _MAX_SCALE):
            return precision, scale, True
    return _MAX_PRECISION, _MAX_SCALE, False


def _precision(parsed: exp.DataType, default: int) -> int:
    if parsed.expressions:
        return int(parsed.expressions[0].name)
    return default


def mysql_type(type_: str, column: str = "", *, key_bytes: int | None = None) -> str:
    """`type_` (spelt as PostgreSQL spells it) as a MySQL column type; `key_bytes` when the
    column is in the primary key (the room it has there)."""
    bits = _bit_type(type_)
    if bits is not None:
        n = _bit_column(bits)
        if n is not None:
            return f"BIT({n})"
        if bits[1] is not None and not bits[0]:  # bit(n), n > 1: its text, n characters
            return mysql_type(f"char({bits[1]})", column, key_bytes=key_bytes)
        return mysql_type("text", column, key_bytes=key_bytes)
    parsed = parse_type(type_, column)
    kind = parsed.this
    if kind == T.ARRAY or kind in _JSON:
        return "JSON"
    if kind in _AS_TEXT or (kind in _STRINGS and (kind in _TEXT or not parsed.expressions)):
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
    if kind == T.DECIMAL:
        precision, scale, _ = _decimal_size(parsed)
        return f"DECIMAL({precision},{scale})"
    if kind in _DATETIMES:
        return f"DATETIME({_precision(parsed, 6)})"
    if kind == T.TIME:
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
    bits = _bit_type(column.type)
    if bits is not None:  # BIT(n): 8 bytes at most; bit(n) as CHAR(n): 4n
        return 4 * bits[1] if _bit_column(bits) is None and bits[1] is not None else 16
    parsed = parse_type(column.type, column.name)
    if parsed.this in _STRINGS and parsed.expressions:
        return 4 * int(parsed.expressions[0].name)  # utf8mb4
    return 16  # numbers, dates, times: at most 8 bytes, with room to spare


def _unbounded(type_: str, column: str) -> bool:
    bits = _bit_type(type_)
    if bits is not None:  # bit varying without a length, or past 64 bits: LONGTEXT
        return bits[0] and _bit_column(bits) is None
    parsed = parse_type(type_, column)
    return (
        parsed.this in _TEXT
        or parsed.this in _BINARY
        or parsed.this in _AS_TEXT
        or (parsed.this in _STRINGS and not parsed.expressions)
    )


# --- back to PostgreSQL spellings ------------------------------------------------------------

_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|integer|bigint|year)\(\d+\)")
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
    "year": "integer",  # as the MySQL source maps it (types.py): no needless coercion
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
    bit = re.fullmatch(r"bit(?:\((\d+)\))?", text)
    if bit:
        bits = int(bit.group(1) or 1)
        return "boolean" if bits == 1 else f"bit varying({bits})"
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
    if text.startswith(("varbinary", "binary")):
        return "bytea"
    if text.startswith(("enum", "set")):
        return "text"
    try:
        return exp.DataType.build(text, dialect="mysql").sql("postgres").lower()
    except (ValueError, ParseError):  # an exotic type sqlglot does not know: keep MySQL's name
        return text


# --- values ----------------------------------------------------------------------------------

Encoder = Callable[[Any], Any]


def _finite_date(value: Any) -> Any:
    if value.__class__ is str and value in (INFINITY, NEGATIVE_INFINITY):
        raise ValueError(f"{value!r}: MySQL and MariaDB have no infinite dates")
    return value


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return _finite_date(value)


def _date(value: Any) -> Any:
    if isinstance(value, datetime):  # MySQL would drop the time of day without a word
        raise TypeError(f"a date column takes a datetime.date, not the datetime {value}")
    return value if isinstance(value, date) else _finite_date(value)


def _json(value: Any) -> Any:
    """JSON text: a JSON value as it is (a Decimal with every digit), and an array's elements
    that JSON has no type for as PostgreSQL's to_json writes them (`_json_value`)."""
    if value is None:
        return None
    try:
        return json_exact(value)
    except TypeError:  # a date, a UUID, bytes...: only arrays hold them
        return json_exact(_json_value(value))


def _fraction(micro: int) -> str:
    return ("." + f"{micro:06d}".rstrip("0")) if micro else ""


def _clock(value: time | datetime) -> str:
    """'HH:MM:SS[.f]', the fraction without its trailing zeros, as PostgreSQL prints it."""
    return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}" + _fraction(value.microsecond)


def _offset(value: time) -> str:
    """A time's UTC offset as PostgreSQL prints a timetz's: '+02', '-03:30', '+05:30:15'."""
    delta = value.utcoffset() or timedelta(0)  # a naive time in a timetz column is UTC
    seconds = int(delta.total_seconds())
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{'-' if seconds < 0 else '+'}{hours:02d}"
    if minutes or secs:
        text += f":{minutes:02d}"
    if secs:
        text += f":{secs:02d}"
    return text


def _timetz_text(value: Any) -> Any:
    """A timetz as PostgreSQL's text ('12:00:00+02'); a str (text already) as it is."""
    if isinstance(value, time):
        return _clock(value) + _offset(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"a timetz column takes a datetime.time, not {type(value).__name__}")


def _day(value: date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _json_value(value: Any) -> Any:
    """`value` with what JSON has no type for written as PostgreSQL's to_json writes it (with
    the session in UTC): dates, timestamps and times in ISO 8601 (a timestamptz converted to
    UTC, '+00:00'; a timetz with its offset as PostgreSQL prints it), UUIDs, network addresses
    and intervals as their text, bytea as '\\x' and its hex digits. Lists (nested arrays) and
    dicts are walked; JSON's own values are kept (a Decimal, written with every digit by
    `json_exact`). Anything else raises TypeError: no value is guessed at."""
    if value is None or isinstance(value, str | bool | int | float | Decimal):
        return value
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, datetime):
        offset = ""
        if value.tzinfo is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError as exc:
                raise ValueError(f"{value} cannot be converted to UTC") from exc
            offset = "+00:00"
        return f"{_day(value)}T{_clock(value)}{offset}"
    if isinstance(value, date):
        return _day(value)
    if isinstance(value, time):
        return _clock(value) + ("" if value.tzinfo is None else _offset(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, timedelta):
        micros = value.seconds * 1_000_000 + value.microseconds
        return interval_text(0, value.days, micros)
    if isinstance(
        value,
        ipaddress.IPv4Address
        | ipaddress.IPv6Address
        | ipaddress.IPv4Interface
        | ipaddress.IPv6Interface
        | ipaddress.IPv4Network
        | ipaddress.IPv6Network,
    ):
        return str(value)
    raise TypeError(f"{type(value).__name__} value {str(value)[:60]!r} has no JSON form")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r}: MySQL and MariaDB cannot store NaN or infinities")
    return value


_EXACT = Context(prec=1000, Emax=999_999, Emin=-999_999)


def _decimal_encoder(precision: int, scale: int) -> Encoder:
    """Decimals as fixed-point text (a Decimal sent as 1E-9 would be read as a DOUBLE literal and
    rounded), refused when DECIMAL(precision, scale) cannot hold them exactly: MySQL rounds an
    extra fraction digit with a mere note, even in strict mode."""
    quantum = Decimal(1).scaleb(-scale)
    whole = precision - scale

    def encode(value: Any) -> Any:
        if not isinstance(value, Decimal):
            return value
        if not value.is_finite():
            raise ValueError(f"{value}: MySQL and MariaDB cannot store NaN or infinities")
        try:
            fits = value.quantize(quantum, context=_EXACT) == value
        except InvalidOperation:
            fits = False
        if not fits or (value and value.adjusted() >= whole):
            raise ValueError(
                f"{format(value, 'f')} does not fit DECIMAL({precision},{scale}) exactly "
                f"({whole} digits before the point, {scale} after)"
            )
        return format(value, "f")

    return encode


def _bit_encoder(bits: int) -> Encoder:
    """A '0'/'1' string of exactly `bits` characters as the number a BIT(bits) column stores."""

    def encode(value: Any) -> Any:
        if isinstance(value, bool):
            value = "1" if value else "0"
        if not isinstance(value, str):
            raise TypeError(f"a bit string is a str of 0s and 1s, not {type(value).__name__}")
        if value.strip("01") or not value:
            raise ValueError(f"{value[:70]!r} is not a bit string (only 0s and 1s)")
        if len(value) != bits:
            raise ValueError(
                f"bit string {value[:70]!r} has {len(value)} bits: BIT({bits}) would store "
                f"{bits}, padded with leading zeros"
            )
        return int(value, 2)

    return encode


def _bit_text(value: Any) -> Any:
    if not isinstance(value, str) or value.strip("01"):
        raise ValueError(f"{str(value)[:70]!r} is not a bit string (only 0s and 1s)")
    return value


def _uuid(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def _bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, (bytearray, memoryview)) else value


def _encoder(column: Column) -> Encoder | None:
    bits = _bit_type(column.type)
    if bits is not None:
        n = _bit_column(bits)
        return _bit_text if n is None else _bit_encoder(n)
    parsed = parse_type(column.type, column.name)
    kind = parsed.this
    if kind == T.ARRAY or kind in _JSON:
        return _json
    if kind in _DATETIMES:
        return _utc
    if kind == T.TIMETZ:
        return _timetz_text
    if kind == T.DATE:
        return _date
    if kind in _FLOATS:
        return _finite
    if kind == T.DECIMAL:
        precision, scale, _ = _decimal_size(parsed)
        return _decimal_encoder(precision, scale)
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
