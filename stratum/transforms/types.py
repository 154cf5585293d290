"""SQL types as the transform stage sees them: what Python values a column holds, and how
PostgreSQL spells the type.

Type names (source column types, CAST rule types) are read with sqlglot as PostgreSQL spells
them (`stratum.connectors.base.Column`), so `int`, `int4` and `integer` are one type, and
`numeric(12, 2)` is `numeric(12,2)`. A type the transform stage cannot produce values of (uuid,
arrays, intervals, ...) is `Kind.OTHER`: such a column is copied as it is, but expressions and
CAST rules cannot use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from sqlglot import exp
from sqlglot.errors import SqlglotError

#: Dialects tried, in order, to read a type name: PostgreSQL first (the spelling of `Column`),
#: then MySQL for its own names (`year`, `tinyint(1)` reads in both).
_TYPE_DIALECTS = ("postgres", "mysql")


class Kind(Enum):
    """What Python values a column of the type holds."""

    BOOL = "bool"  # bool
    INT = "int"  # int
    NUMERIC = "numeric"  # decimal.Decimal
    FLOAT = "float"  # float
    TEXT = "text"  # str
    DATE = "date"  # datetime.date
    TIMESTAMP = "timestamp"  # datetime.datetime, naive
    TIMESTAMPTZ = "timestamptz"  # datetime.datetime, aware (UTC)
    TIME = "time"  # datetime.time, naive
    JSON = "json"  # what json.loads returns
    BYTES = "bytes"  # bytes
    INTERVAL = "interval"  # an interval constant (expressions only)
    NULL = "null"  # the type of a bare NULL: adopts the type it meets
    OTHER = "other"  # copied as is; expressions cannot use it


@dataclass(frozen=True, slots=True)
class SqlType:
    kind: Kind
    name: str  # as PostgreSQL spells it: "bigint", "numeric(12,2)", "double precision"
    precision: int | None = None  # numeric(p,s): p; varchar(n)/char(n): n; timestamp(p): p
    scale: int | None = None  # numeric(p,s): s

    @property
    def is_number(self) -> bool:
        return self.kind in (Kind.INT, Kind.NUMERIC, Kind.FLOAT)

    @property
    def int_bounds(self) -> tuple[int, int]:
        """The range of an integer type (bigint for any other name)."""
        bits = {"smallint": 16, "integer": 32}.get(self.name, 64)
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def __str__(self) -> str:
        return self.name


BOOLEAN = SqlType(Kind.BOOL, "boolean")
SMALLINT = SqlType(Kind.INT, "smallint")
INTEGER = SqlType(Kind.INT, "integer")
BIGINT = SqlType(Kind.INT, "bigint")
NUMERIC = SqlType(Kind.NUMERIC, "numeric")
REAL = SqlType(Kind.FLOAT, "real")
DOUBLE = SqlType(Kind.FLOAT, "double precision")
TEXT = SqlType(Kind.TEXT, "text")
DATE = SqlType(Kind.DATE, "date")
TIMESTAMP = SqlType(Kind.TIMESTAMP, "timestamp")
TIMESTAMPTZ = SqlType(Kind.TIMESTAMPTZ, "timestamptz")
TIME = SqlType(Kind.TIME, "time")
JSONB = SqlType(Kind.JSON, "jsonb")
BYTEA = SqlType(Kind.BYTES, "bytea")
INTERVAL = SqlType(Kind.INTERVAL, "interval")
NULL = SqlType(Kind.NULL, "text")  # a column that is only ever NULL is created as text

_INT_RANK = {"smallint": 0, "integer": 1, "bigint": 2}

D = exp.DType
_SIMPLE: dict[exp.DType, SqlType] = {
    D.BOOLEAN: BOOLEAN,
    D.TINYINT: SMALLINT,
    D.UTINYINT: SMALLINT,
    D.SMALLINT: SMALLINT,
    D.USMALLINT: INTEGER,
    D.MEDIUMINT: INTEGER,
    D.UMEDIUMINT: INTEGER,
    D.INT: INTEGER,
    D.UINT: BIGINT,
    D.BIGINT: BIGINT,
    D.SERIAL: INTEGER,
    D.BIGSERIAL: BIGINT,
    D.SMALLSERIAL: SMALLINT,
    D.UBIGINT: SqlType(Kind.NUMERIC, "numeric(20,0)", 20, 0),
    D.INT128: SqlType(Kind.NUMERIC, "numeric(39,0)", 39, 0),
    D.UINT128: SqlType(Kind.NUMERIC, "numeric(39,0)", 39, 0),
    D.DOUBLE: DOUBLE,
    D.FLOAT: REAL,
    D.TEXT: TEXT,
    D.NAME: TEXT,
    D.MEDIUMTEXT: TEXT,
    D.LONGTEXT: TEXT,
    D.TINYTEXT: TEXT,
    D.DATE: DATE,
    D.DATETIME: TIMESTAMP,
    D.TIMESTAMPNTZ: TIMESTAMP,
    D.TIMESTAMP: TIMESTAMP,
    D.TIMESTAMPTZ: TIMESTAMPTZ,
    D.TIMESTAMPLTZ: TIMESTAMPTZ,
    D.TIME: TIME,
    D.JSON: JSONB,
    D.JSONB: JSONB,
    D.VARBINARY: BYTEA,
    D.BINARY: BYTEA,
    D.BLOB: BYTEA,
    D.MEDIUMBLOB: BYTEA,
    D.LONGBLOB: BYTEA,
    D.TINYBLOB: BYTEA,
}
_TIMESTAMPS = {D.DATETIME: TIMESTAMP, D.TIMESTAMP: TIMESTAMP, D.TIMESTAMPNTZ: TIMESTAMP}
_TIMESTAMPS_TZ = {D.TIMESTAMPTZ: TIMESTAMPTZ, D.TIMESTAMPLTZ: TIMESTAMPTZ}
_STRINGS = {D.VARCHAR: "varchar", D.NVARCHAR: "varchar", D.CHAR: "char", D.NCHAR: "char"}


def _params(datatype: exp.DataType) -> list[int] | None:
    params: list[int] = []
    for param in datatype.expressions:
        try:
            params.append(int(param.sql()))
        except ValueError:
            return None
    return params


def from_datatype(datatype: exp.DataType, spelling: str | None = None) -> SqlType:
    """The SqlType of a sqlglot DataType; `spelling` names an OTHER type (default: sqlglot's
    PostgreSQL spelling of it)."""
    dtype = datatype.this
    params = _params(datatype)
    if params is None:
        return _other(datatype, spelling)
    if dtype is D.DECIMAL:
        if not params:
            return NUMERIC
        if len(params) > 2 or not 1 <= params[0] <= 1000:
            return _other(datatype, spelling)
        precision, scale = params[0], params[1] if len(params) == 2 else 0
        if not 0 <= scale <= precision:
            return _other(datatype, spelling)
        return SqlType(Kind.NUMERIC, f"numeric({precision},{scale})", precision, scale)
    if dtype in _STRINGS:
        if not params:
            return TEXT
        if len(params) != 1 or params[0] < 1:
            return _other(datatype, spelling)
        return SqlType(Kind.TEXT, f"{_STRINGS[dtype]}({params[0]})", params[0])
    if dtype in _TIMESTAMPS or dtype in _TIMESTAMPS_TZ:
        base = _TIMESTAMPS.get(dtype) or _TIMESTAMPS_TZ[dtype]
        if not params:
            return base
        if len(params) != 1 or not 0 <= params[0] <= 6:
            return _other(datatype, spelling)
        return SqlType(base.kind, f"{base.name}({params[0]})", params[0])
    if dtype in (D.TINYINT, D.UTINYINT, D.SMALLINT, D.INT, D.BIGINT, D.MEDIUMINT):
        return _SIMPLE[dtype]  # a display width, as in tinyint(1), changes no value
    if dtype in (D.FLOAT, D.DOUBLE) and len(params) == 1:
        return REAL if params[0] <= 24 else DOUBLE  # float(p)
    if dtype in (D.BINARY, D.VARBINARY) and len(params) == 1:
        return BYTEA
    if params or dtype not in _SIMPLE:
        return _other(datatype, spelling)
    return _SIMPLE[dtype]


def _other(datatype: exp.DataType, spelling: str | None) -> SqlType:
    return SqlType(Kind.OTHER, spelling or datatype.sql("postgres").lower())


def build_datatype(text: str) -> exp.DataType | None:
    """sqlglot's reading of a type name, or None when no dialect reads it."""
    for dialect in _TYPE_DIALECTS:
        try:
            return exp.DataType.build(text, dialect=dialect)
        except (SqlglotError, ValueError, KeyError):
            continue
    return None


def parse_type(text: str) -> SqlType:
    """The type a column of type `text` holds (Kind.OTHER when the transform stage does not
    know it: such a type keeps the spelling it was given)."""
    datatype = build_datatype(text)
    if datatype is None:
        return SqlType(Kind.OTHER, spelling(text))
    return from_datatype(datatype, spelling(text))


def spelling(text: str) -> str:
    """A type name lowercased, single-spaced, without spaces inside its arguments."""
    text = " ".join(text.lower().split())
    return re.sub(r"\s*([(),])\s*", r"\1", text)


def same_type(a: str, b: str) -> bool:
    """Whether two type names name the same type: `int` and `integer`, `numeric(12, 2)` and
    `decimal(12,2)`; `tinyint(1)` and `tinyint` are different (CAST TYPE matches exactly)."""
    if spelling(a) == spelling(b):
        return True
    da, db = build_datatype(a), build_datatype(b)
    return da is not None and db is not None and da == db


def unify_numbers(a: SqlType, b: SqlType) -> SqlType:
    """The type of arithmetic on two numbers, as PostgreSQL resolves it: int < numeric < float,
    the wider integer of two integers, unconstrained numeric for any numeric result."""
    if Kind.FLOAT in (a.kind, b.kind):
        return REAL if a == b == REAL else DOUBLE
    if Kind.NUMERIC in (a.kind, b.kind):
        return NUMERIC
    return a if _INT_RANK.get(a.name, 2) >= _INT_RANK.get(b.name, 2) else b


def widest_int(a: SqlType, b: SqlType) -> SqlType:
    return a if _INT_RANK.get(a.name, 2) >= _INT_RANK.get(b.name, 2) else b
