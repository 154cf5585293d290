"""One text for one value, whatever the database: what `stratum verify` hashes on each side.

A value is written in the form the *destination's* column type gives it, by SQL that each
database runs itself, so that a MySQL `DECIMAL(12,2)` and a PostgreSQL `numeric(12,2)` holding
the same number give the same text, and so do a MySQL `TINYINT(1)` 1 and a PostgreSQL `true`:

* integer: its decimal digits;
* numeric: its digits, without trailing zeros after the point, nor a point left alone ("1.5",
  "2");
* float: 12 significant digits as '<mantissa>e<exponent>' ("1.5e3"; databases print doubles
  differently, and 12 digits are what each computes the same);
* boolean: "t" or "f" (a MySQL number: 0 is "f", anything else "t");
* date: YYYY-MM-DD; timestamp: YYYY-MM-DD HH:MM:SS.ffffff; timestamptz: the same in UTC;
  time: HH:MM:SS.ffffff;
* bytes: lower-case hex;
* anything else: the database's own text of it. For text that is exact; for JSON, MySQL and
  PostgreSQL both print sorted keys with ", " and ": "; another type may print differently in
  two databases, and is then reported as a difference (a false alarm, never a missed one).

A row is the md5 of its columns' texts joined by the unit separator (U+001F), NULL written as
the record separator (U+001E), so NULL and '' differ. A chunk of rows is the count and the sum
of the first 32 bits of each row's md5: order-independent, and the same number in every
database.
"""

from __future__ import annotations

from collections.abc import Sequence

from stratum.transforms.types import Kind, SqlType

__all__ = ["DIALECTS", "as_text", "canonical", "row_hash"]

DIALECTS = ("postgres", "mysql", "duckdb")


def canonical(expr: str, kind: SqlType, dialect: str) -> str:
    """SQL giving the canonical text of `expr` (a value of a column of type `kind` on the
    destination, or the source expression that fills it) in `dialect`."""
    k = kind.kind
    if k is Kind.INT:
        return as_text(expr, dialect)
    if k is Kind.NUMERIC:
        return _trim_zeros(as_text(expr, dialect), dialect)
    if k is Kind.FLOAT:
        return _float_text(expr, dialect)
    if k is Kind.BOOL:
        return f"CASE WHEN ({expr}) IS NULL THEN NULL WHEN ({expr}) THEN 't' ELSE 'f' END"
    if k is Kind.DATE:
        return _format(expr, dialect, date=True)
    if k is Kind.TIMESTAMP:
        return _format(expr, dialect)
    if k is Kind.TIMESTAMPTZ:
        if dialect == "postgres":
            return _format(f"(({expr}) AT TIME ZONE 'UTC')", dialect)
        if dialect == "duckdb":
            return _format(f"timezone('UTC', {expr})", dialect)
        return _format(expr, dialect)  # MySQL TIMESTAMP: the session is in UTC
    if k is Kind.TIME:
        if dialect == "postgres":
            return f"to_char(CAST({expr} AS time), 'HH24:MI:SS.US')"
        if dialect == "duckdb":
            moment = f"CAST(DATE '2000-01-01' + CAST({expr} AS TIME) AS TIMESTAMP)"
            return f"strftime({moment}, '%H:%M:%S.%f')"
        return f"TIME_FORMAT({expr}, '%H:%i:%s.%f')"
    if k is Kind.BYTES:
        if dialect == "postgres":
            return f"encode({expr}, 'hex')"
        return f"lower(hex({expr}))"
    return as_text(expr, dialect)


def row_hash(texts: Sequence[str], dialect: str) -> str:
    """SQL for the row's 32-bit hash (a non-negative integer) over its canonical texts."""
    parts = ", ".join(f"COALESCE({t}, {_chr(30, dialect)})" for t in texts)
    digest = f"md5(CONCAT_WS({_chr(31, dialect)}, {parts}))"
    if dialect == "postgres":
        return f"('x' || substr({digest}, 1, 8))::bit(32)::bigint"
    if dialect == "duckdb":
        return f"CAST(('0x' || substr({digest}, 1, 8)) AS BIGINT)"
    return f"CAST(CONV(SUBSTRING({digest}, 1, 8), 16, 10) AS UNSIGNED)"


def _chr(code: int, dialect: str) -> str:
    return f"CHAR({code})" if dialect == "mysql" else f"chr({code})"


def as_text(expr: str, dialect: str) -> str:
    """`expr` cast to the dialect's text type."""
    return f"CAST({expr} AS CHAR)" if dialect == "mysql" else f"CAST({expr} AS TEXT)"


def _trim_zeros(text: str, dialect: str) -> str:
    """'1.50' -> '1.5', '2.00' -> '2', '-0.0' -> '-0', '120' -> '120' (no point: kept)."""
    if dialect == "mysql":
        trimmed = f"TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {text}))"
        return f"CASE WHEN LOCATE('.', {text}) > 0 THEN {trimmed} ELSE {text} END"
    trimmed = f"rtrim(rtrim({text}, '0'), '.')"
    return f"CASE WHEN strpos({text}, '.') > 0 THEN {trimmed} ELSE {text} END"


def _float_text(expr: str, dialect: str) -> str:
    """A double as 12 significant digits: '<mantissa, no trailing zeros>e<exponent>' ('0' for
    zero), computed the same way in each database."""
    if dialect == "mysql":
        exponent = f"CAST(FLOOR(LOG10(ABS({expr}))) AS SIGNED)"
        mantissa = f"CAST(ROUND(({expr}) / POW(10, {exponent}), 11) AS DECIMAL(30,11))"
    elif dialect == "duckdb":
        exponent = f"CAST(floor(log10(abs({expr}))) AS BIGINT)"
        mantissa = f"CAST(round(({expr}) / pow(10, {exponent}), 11) AS DECIMAL(30,11))"
    else:
        exponent = f"CAST(floor(log(abs({expr}))) AS BIGINT)"
        mantissa = f"round(CAST(({expr}) / power(10, {exponent}) AS NUMERIC), 11)"
    text = _trim_zeros(as_text(mantissa, dialect), dialect)
    joined = (
        f"CONCAT({text}, 'e', {as_text(exponent, dialect)})"
        if dialect == "mysql"
        else f"{text} || 'e' || {as_text(exponent, dialect)}"
    )
    return f"CASE WHEN ({expr}) IS NULL THEN NULL WHEN ({expr}) = 0 THEN '0' ELSE {joined} END"


def _format(expr: str, dialect: str, *, date: bool = False) -> str:
    if dialect == "postgres":
        return f"to_char({expr}, '{'YYYY-MM-DD' if date else 'YYYY-MM-DD HH24:MI:SS.US'}')"
    if dialect == "duckdb":
        return f"strftime({expr}, '{'%Y-%m-%d' if date else '%Y-%m-%d %H:%M:%S.%f'}')"
    return f"DATE_FORMAT({expr}, '{'%Y-%m-%d' if date else '%Y-%m-%d %H:%i:%s.%f'}')"
