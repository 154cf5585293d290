"""MySQL/MariaDB values as PostgreSQL's text input, written by the MySQL server itself.

The pass-through path (`stratum.connectors.base.TextSource`) loads a table into PostgreSQL
without converting a value in Python: the SELECT below gives every column as the text PostgreSQL
reads into the mapped type (`types.py`), and PostgreSQL parses it. Each expression must give the
same value the typed path gives, or text PostgreSQL refuses (the engine then loads that batch
the typed way, which rejects the row with its reason). The MySQL server does the formatting,
so it costs the loader's Python nothing.

=====================================  =====================================================
MySQL type (mapped type)               select expression, and why
=====================================  =====================================================
integers, year, tinyint(1) as a        the column: ints, which csv writes as digits; a
number                                 tinyint(1) boolean holds 0/1, which PostgreSQL's
                                       boolean reads (any other value it refuses: typed path)
decimal                                CAST(c AS CHAR): every digit, and no Decimal object
float                                  CAST(c AS DOUBLE): the float32 it stores, exactly (the
                                       server prints a FLOAT with 6 digits)
double                                 the column (a Python float: written with repr, exact)
char, varchar, text, enum, uuid, inet  the column (text; PostgreSQL refuses a NUL: typed path)
binary, varbinary, blob, geometry      CONCAT('\\x', HEX(c)), ST_AsBinary first for geometry
                                       (standard WKB, as the typed path gives)
date, datetime                         the text, or by the ZERO DATES policy for a zero date or
                                       one with a zero part: NULL, the sentinel, or (ERROR) the
                                       zero date itself, which PostgreSQL refuses: typed path
timestamp (timestamptz)                the text with '+00' (the session's time zone is UTC)
time                                   the text from 00:00:00 up to 24:00:00 (excluded); any
                                       other value is given as text PostgreSQL refuses
json (jsonb)                           the document; NULL for the JSON literal null (the
                                       typed path reads it as SQL NULL)
bit(1) (boolean)                       c + 0: 0 or 1
bit(n) (bit varying(n))                LPAD(BIN(c + 0), n, '0'): the n bits
set (text[])                           '{' || c || '}' when every label is a plain word;
                                       otherwise the table takes the typed path
=====================================  =====================================================
"""

from __future__ import annotations

import re
from datetime import datetime

from stratum.connectors.mysql import types

__all__ = ["copy_line", "text_expression"]

_PLAIN_LABEL = re.compile(r"[A-Za-z0-9_]+")
_AS_IS = types._INTEGERS | {"year", "double", "real", "double precision", "char", "varchar"}
_STRINGS = types._TEXT | types._AS_TEXT | {"enum"}


def text_expression(column: str, t: types.MySQLType, zero_dates: str) -> str | None:
    """The select expression giving `column` (quoted) as PostgreSQL text, or None when this
    type has none (the item then takes the typed path)."""
    kind = t.data_type
    if t.is_json:
        return f"IF(JSON_TYPE({column}) = 'NULL', NULL, {column})"
    if kind == "bit":
        if t.boolean:
            return f"{column} + 0"
        bits = int(t.args[0]) if t.args else 1
        return f"LPAD(BIN({column} + 0), {bits}, '0')"
    if kind in _AS_IS or kind in _STRINGS:
        return column
    if kind in ("decimal", "numeric", "fixed"):
        return f"CAST({column} AS CHAR)"
    if kind == "float":
        return f"CAST({column} AS DOUBLE)"
    if kind in types._BINARY:
        return f"CONCAT('\\\\x', HEX({column}))"
    if kind in types._GEOMETRY:
        return f"CONCAT('\\\\x', HEX(ST_AsBinary({column})))"
    if kind in ("date", "datetime", "timestamp"):
        return _dated(column, kind, zero_dates)
    if kind == "time":
        return (
            f"IF({column} < '00:00:00' OR {column} >= '24:00:00', "
            f"CONCAT('out of range: ', {column}), CAST({column} AS CHAR))"
        )
    if kind == "set":
        labels = types.enum_labels(t.column_type)
        if all(_PLAIN_LABEL.fullmatch(label) for label in labels):
            return f"CONCAT('{{', {column}, '}}')"
        return None
    return None


def _dated(column: str, kind: str, zero_dates: str) -> str:
    text = f"CAST({column} AS CHAR)"
    zero = (
        f"(LEFT({text}, 4) = '0000' OR SUBSTRING({text}, 6, 2) = '00' "
        f"OR SUBSTRING({text}, 9, 2) = '00')"
    )
    value = f"CONCAT({text}, '+00')" if kind == "timestamp" else text
    if zero_dates == "error":
        return value  # a zero date PostgreSQL refuses: the typed path rejects its row
    if zero_dates == "null":
        return f"IF({zero}, NULL, {value})"
    moment = datetime.fromisoformat(zero_dates)  # checked to be a date when the plan compiled
    sentinel = moment.date().isoformat() if kind == "date" else moment.isoformat(sep=" ")
    if kind == "timestamp":
        sentinel += "+00"
    return f"IF({zero}, '{sentinel}', {value})"


#: Kinds whose text never holds a backslash, a tab or a line end: numbers, dates and bits.
#: Every other value is escaped for COPY's text format (bytea's own '\\x' prefix included).
_PLAIN_TEXT = types._INTEGERS | {
    "year",
    "decimal",
    "numeric",
    "fixed",
    "float",
    "double",
    "real",
    "double precision",
    "date",
    "datetime",
    "timestamp",
    "bit",
}


def copy_line(columns: list[tuple[str, types.MySQLType]], zero_dates: str) -> str | None:
    """One expression giving a whole row as a line of COPY's text format: each column's text
    (`text_expression`) with backslash, tab, LF and CR escaped, NULL as \\N, tab-separated. The
    server builds the line, so loading it costs Python one join per batch. None when a column
    has no text form."""
    parts = []
    for column, t in columns:
        expression = text_expression(column, t, zero_dates)
        if expression is None:
            return None
        if t.data_type not in _PLAIN_TEXT or t.is_json:
            expression = (
                f"REPLACE(REPLACE(REPLACE(REPLACE({expression}, '\\\\', '\\\\\\\\'), "
                f"'\\t', '\\\\t'), '\\n', '\\\\n'), '\\r', '\\\\r')"
            )
        parts.append(f"IFNULL({expression}, '\\\\N')")
    return "CONCAT(" + ", '\\t', ".join(parts) + ")"
