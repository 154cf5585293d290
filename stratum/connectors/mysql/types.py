"""MySQL/MariaDB column types as PostgreSQL spells them, and the values rows carry for them.

The source reads ``information_schema.COLUMNS`` (DATA_TYPE, COLUMN_TYPE) and maps each column:

=====================================  ======================  ==================================
MySQL / MariaDB (COLUMN_TYPE)          Column.type             Python value in rows
=====================================  ======================  ==================================
tinyint(1) [unsigned]                  boolean                 bool: 0 -> False, 1 -> True; any
                                                               other value rejects the row
tinyint [unsigned]                     smallint                int
smallint                               smallint                int
smallint unsigned                      integer                 int
mediumint [unsigned]                   integer                 int
int                                    integer                 int
int unsigned                           bigint                  int
bigint                                 bigint                  int
bigint unsigned                        numeric(20,0)           Decimal (up to 18446744073709551615)
decimal(p,s) / numeric(p,s)            numeric(p,s)            Decimal, every digit kept
float                                  real                    float
double / real                          double precision        float
char(n), varchar(n)                    varchar(n)              str (n is in characters in both
                                                               databases; CHAR's trailing spaces
                                                               are stripped by the server)
tinytext, text, mediumtext, longtext   text                    str (any charset: the session is
                                                               utf8mb4, so latin1 etc. arrive as
                                                               Unicode)
binary(n), varbinary(n), *blob         bytea                   bytes (binary(n) keeps its 0x00
                                                               padding, as MySQL stores it)
date                                   date                    datetime.date
datetime(fsp)                          timestamp               naive datetime.datetime
timestamp(fsp)                         timestamptz             aware datetime.datetime, UTC
time(fsp)                              time                    datetime.time; see TIME below
year                                   integer                 int (0 for the zero year 0000)
json (MySQL), MariaDB's JSON alias     jsonb                   the parsed JSON value (dict, list,
(longtext CHECK json_valid(col))                               str, int, float, bool); see JSON
enum('a', ...)                         text                    str, the label exactly as defined
                                                               ('' for MySQL's invalid-value '')
set('a', ...)                          text[]                  list[str] of the members in
                                                               definition order; '' -> []
bit(1)                                 boolean                 bool
bit(n), 1 < n <= 64                    bit varying(n)          str of exactly n '0'/'1' characters,
                                                               most significant bit first, leading
                                                               zeros kept: b'101' in a bit(5) is
                                                               '00101'
geometry, point, linestring, polygon,  bytea                   bytes: standard WKB (MySQL's
multi*, geometrycollection                                     internal 4-byte SRID prefix is
                                                               dropped)
uuid, inet4, inet6 (MariaDB)           text                    str, as the server prints it
=====================================  ======================  ==================================

Any other type is refused (SourceError naming the column) rather than guessed at.

Choices worth knowing:

* **char/varchar -> varchar(n)**, not text: the declared length is part of the data's contract
  and PostgreSQL counts characters as MySQL does. CHAR is not mapped to PostgreSQL's blank-padded
  char(n): MySQL returns CHAR values without their trailing spaces, so varchar keeps the value
  the application saw.
* **ZERO DATES**: MySQL can store '0000-00-00', '0000-00-00 00:00:00' and dates with a zero part
  ('2020-00-15', '2020-01-00', year 0000). No Python date or PostgreSQL date can hold them; the
  drivers return them as text (or None). A date, datetime or timestamp with a zero year, month
  or day follows the item's ZERO DATES policy: AS NULL (the default) gives None, AS ERROR
  rejects the row (reason: "zero date '0000-00-00' (ZERO DATES AS ERROR)"), AS 'YYYY-MM-DD[
  HH:MM:SS]' gives that sentinel. No zero date ever reaches a row as anything else. Real early
  dates are not zero dates: '0009-12-04' reads as date(9, 12, 4).
* **TIME** in MySQL is a duration from -838:59:59 to 838:59:59; PostgreSQL's time is a time of
  day, 00:00:00 to 24:00:00. Values from 00:00:00 up to (not including) 24:00:00 become
  datetime.time; any other value rejects the row (with the value in the reason) instead of
  being wrapped or clipped.
* **tinyint(1)** is MySQL's BOOLEAN, so it maps to boolean; a value other than 0 or 1 (MySQL
  allows -128..127) rejects the row rather than becoming True silently.
* **JSON**: the document is parsed, so numbers become int or float, or a Decimal when a float
  would change the number (MariaDB keeps the document's text: 0.1000000000000000000001 stays
  exact), and a document that is JSON `null` becomes None, i.e. SQL NULL. MariaDB
  has no JSON type: its JSON is longtext with a `json_valid(col)` CHECK, which is how the source
  recognises it; a JSON column whose CHECK was replaced by another one reads as text.
* **bit(n)**, n > 1, is a string of bits, not a number: it maps to PostgreSQL's
  `bit varying(n)` and its values are `str`s of exactly n '0'/'1' characters (the row contract
  of `stratum.connectors.base`), so the width and the leading zeros survive. `bit varying`
  rather than `bit(n)`: it is what the issue asks for, and every value still has n bits. Every
  destination writes such strings (PostgreSQL: bit varying(n); MySQL: BIT(n); DuckDB: text).
* Values a PostgreSQL column cannot take whatever the mapping (a NUL character in text) are the
  destination's to reject.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from stratum.connectors.postgres._codecs import json_number
from stratum.errors import SourceError

__all__ = ["Converter", "MySQLType", "converter", "enum_labels", "mysql_type", "pg_type"]

#: Turns a non-NULL value as the driver returns it into the row's value. A ValueError means the
#: value cannot be carried (the row is rejected with the error as its reason).
Converter = Callable[[Any], Any]

_INTEGERS = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
_TEXT = {"tinytext", "text", "mediumtext", "longtext"}
_BINARY = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
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
_AS_TEXT = {"uuid", "inet4", "inet6"}
_ARGS = re.compile(r"\(([^)]*)\)")
_LABEL = re.compile(r"'((?:[^']|'')*)'")
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class MySQLType:
    """A column's type as MySQL describes it."""

    data_type: str  # DATA_TYPE, lower case: "int", "varchar", "enum"...
    column_type: str  # COLUMN_TYPE, lower case: "int(10) unsigned", "enum('a','b')"...
    is_json: bool = False  # MySQL's json, or MariaDB's longtext with CHECK (json_valid(col))
    # tinyint(1) read as the boolean it usually is; False when a CAST rule makes it a number
    tinyint_boolean: bool = True

    @property
    def unsigned(self) -> bool:
        return " unsigned" in self.column_type

    @property
    def args(self) -> tuple[str, ...]:
        """The numbers in parentheses: "decimal(12,2)" -> ("12", "2")."""
        if self.data_type in ("enum", "set"):
            return ()
        found = _ARGS.search(self.column_type)
        return tuple(a.strip() for a in found.group(1).split(",")) if found else ()

    @property
    def boolean(self) -> bool:
        return (self.data_type == "tinyint" and self.args == ("1",) and self.tinyint_boolean) or (
            self.data_type == "bit" and self.args in (("1",), ())
        )


def mysql_type(column_type: str, data_type: str, *, is_json: bool = False) -> MySQLType:
    # enum/set labels keep their case; everything else is compared in lower case
    kind = data_type.strip().lower()
    spelled = column_type.strip()
    if kind not in ("enum", "set"):
        spelled = spelled.lower()
    return MySQLType(kind, spelled, is_json or kind == "json")


def enum_labels(column_type: str) -> tuple[str, ...]:
    """The labels of an enum(...) or set(...) COLUMN_TYPE, in definition order."""
    start = column_type.find("(")
    body = column_type[start + 1 : column_type.rfind(")")] if start >= 0 else ""
    return tuple(m.group(1).replace("''", "'") for m in _LABEL.finditer(body))


def pg_type(column_type: str, data_type: str, *, is_json: bool = False, column: str = "") -> str:
    """The PostgreSQL spelling of a MySQL column type (the table in the module docstring).
    Raises SourceError for a type the table does not list."""
    return _pg_type(mysql_type(column_type, data_type, is_json=is_json), column)


def _pg_type(t: MySQLType, column: str) -> str:
    kind = t.data_type
    if t.is_json:
        return "jsonb"
    if t.boolean:
        return "boolean"
    if kind in _INTEGERS:
        if kind == "tinyint":
            return "smallint"
        if kind == "smallint":
            return "integer" if t.unsigned else "smallint"
        if kind == "mediumint":
            return "integer"
        if kind in ("int", "integer"):
            return "bigint" if t.unsigned else "integer"
        return "numeric(20,0)" if t.unsigned else "bigint"
    if kind in ("decimal", "numeric", "fixed"):
        precision = t.args[0] if t.args else "10"
        scale = t.args[1] if len(t.args) > 1 else "0"
        return f"numeric({precision},{scale})"
    if kind == "float":
        return "real"
    if kind in ("double", "real", "double precision"):
        return "double precision"
    if kind in ("char", "varchar"):
        return f"varchar({t.args[0]})" if t.args else "text"
    if kind in _TEXT or kind in _AS_TEXT or kind == "enum":
        return "text"
    if kind in _BINARY or kind in _GEOMETRY:
        return "bytea"
    if kind == "bit":
        return f"bit varying({_bits(t)})"
    simple = {
        "date": "date",
        "datetime": "timestamp",
        "timestamp": "timestamptz",
        "time": "time",
        "year": "integer",
        "set": "text[]",
    }
    if kind in simple:
        return simple[kind]
    where = f"column {column!r}: " if column else ""
    raise SourceError(f"{where}MySQL type {t.column_type!r} has no PostgreSQL mapping")


def _bits(t: MySQLType) -> int:
    return int(t.args[0]) if t.args else 1


def converter(
    column_type: str, data_type: str, *, is_json: bool = False, zero_dates: str = "null"
) -> Converter | None:
    """The function that turns the driver's non-NULL values of this column into the values the
    mapped type holds; None when the driver's value already is that value."""
    return _converter(mysql_type(column_type, data_type, is_json=is_json), zero_dates)


def _converter(t: MySQLType, zero_dates: str = "null") -> Converter | None:
    """The column's converter; dates apply the item's ZERO DATES policy ("null", "error" or a
    sentinel date) to zero dates."""
    convert = _base_converter(t)
    if convert is not None and t.data_type in ("date", "datetime", "timestamp"):
        return _with_zero_dates(convert, t.data_type, zero_dates)
    return convert


def _with_zero_dates(convert: Converter, kind: str, policy: str) -> Converter:
    """Converters see non-NULL values only, so a None from a date converter is a zero date."""
    if policy == "null":
        return convert
    if policy == "error":

        def refuse(value: Any) -> Any:
            result = convert(value)
            if result is None:
                text = value.decode() if isinstance(value, bytes) else str(value)
                raise ValueError(f"zero {kind} {text!r} (ZERO DATES AS ERROR)")
            return result

        return refuse
    sentinel = datetime.fromisoformat(policy)
    replacement: Any = (
        sentinel.date()
        if kind == "date"
        else sentinel.replace(tzinfo=UTC)
        if kind == "timestamp"
        else sentinel
    )

    def replace(value: Any) -> Any:
        result = convert(value)
        return replacement if result is None else result

    return replace


def _base_converter(t: MySQLType) -> Converter | None:
    kind = t.data_type
    if t.is_json:
        return _json
    if t.boolean:
        return _bit_bool if kind == "bit" else _tinyint_bool
    if kind == "bigint" and t.unsigned:
        return Decimal
    if kind == "bit":
        return _bit_string(_bits(t))
    if kind == "set":
        return _set
    if kind == "date":
        return _date
    if kind == "datetime":
        return _datetime
    if kind == "timestamp":
        return _timestamp
    if kind == "time":
        return _time
    if kind in _GEOMETRY:
        return _wkb
    return None


# --- converters -------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    return json.loads(value, parse_float=json_number)


def _tinyint_bool(value: Any) -> bool:
    if value == 1:
        return True
    if value == 0:
        return False
    raise ValueError(f"tinyint(1) value {value!r} is neither 0 nor 1, so it is not a boolean")


def _bit_bool(value: Any) -> bool:
    return bool(int.from_bytes(value, "big")) if isinstance(value, bytes) else bool(value)


def _bit_string(bits: int) -> Converter:
    """A bit(n) value (the driver gives bytes, big-endian, or an int) as n '0'/'1' characters;
    a value wider than n bits (which MySQL cannot hold) raises ValueError."""

    def convert(value: Any) -> str:
        number = int.from_bytes(value, "big") if isinstance(value, bytes) else int(value)
        if not 0 <= number < 1 << bits:
            raise ValueError(f"bit({bits}) value {number} does not fit in {bits} bits")
        return format(number, f"0{bits}b")

    return convert


def _set(value: Any) -> list[str]:
    if isinstance(value, (set, frozenset)):  # a driver that splits SETs itself
        return sorted(value)
    return value.split(",") if value else []


def _check_zero(value: Any, kind: str) -> None:
    """A value the driver could not make a date of: a ValueError unless it is a zero date,
    which becomes None (the ZERO DATES policy above)."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    head = text.split(" ", 1)[0].split("-")
    try:
        if len(head) == 3 and 0 in (int(head[0]), int(head[1]), int(head[2])):
            return
    except ValueError:
        pass
    raise ValueError(f"{kind} value {text!r} cannot be read as a {kind}")


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    _check_zero(value, "date")
    return None


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    _check_zero(value, "datetime")
    return None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):  # the session's time zone is UTC
        return value.replace(tzinfo=UTC)
    _check_zero(value, "timestamp")
    return None


def _time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, timedelta) and timedelta(0) <= value < _ONE_DAY:
        seconds = value.seconds
        return time(seconds // 3600, seconds // 60 % 60, seconds % 60, value.microseconds)
    raise ValueError(
        f"TIME value {format_time(value)} is outside PostgreSQL's time range "
        "(00:00:00 to 23:59:59.999999)"
    )


def format_time(value: Any) -> str:
    """A MySQL TIME value as MySQL prints it ('-838:59:59.000000'); other values as str()."""
    if not isinstance(value, timedelta):
        return str(value)
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    seconds = value.days * 86_400 + value.seconds
    return (
        f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        f".{value.microseconds:06d}"
    )


def _wkb(value: Any) -> bytes:
    return bytes(value[4:])  # MySQL's internal format: a 4-byte SRID, then WKB
