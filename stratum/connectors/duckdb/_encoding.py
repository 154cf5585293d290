"""How a batch of rows becomes the parameters of one DuckDB INSERT.

DuckDB has no COPY from a client, and `executemany` pays a statement per row (about 1,300 rows/s
here). Instead each column of the batch is bound as one LIST parameter and the INSERT unnests
them side by side:

    INSERT INTO t (a, b) SELECT CAST(UNNEST($1) AS BIGINT), CAST(UNNEST($2) AS VARCHAR)

DuckDB converts the Python values itself, in C++, and exactly: str (quotes, commas, newlines,
NULs, any unicode), int, float (every bit, inf and nan), bool, date, time, naive and aware
datetimes, bytes. Nothing goes through text, so there is no escaping to get wrong and no
empty-string-versus-NULL ambiguity. Two kinds of column are prepared in Python first:

* decimal/numeric: the values travel as text (`str(Decimal)`) and DuckDB casts them, because a
  LIST of Decimals of mixed widths could otherwise be widened to DOUBLE and lose digits;
* json/jsonb: the values (dict, list, str, number, bool) are serialised to JSON text.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any

from sqlglot import exp

from stratum.connectors.base import Row, Schema
from stratum.connectors.sql import json_text, parse_type
from stratum.errors import RowError

__all__ = ["Encoding", "column_encodings", "encode_columns"]


class Encoding(Enum):
    """How a column's values are handed to DuckDB."""

    NATIVE = "native"  # as they are: DuckDB converts the Python value
    DECIMAL = "decimal"  # as text, cast by DuckDB to the exact DECIMAL
    JSON = "json"  # serialised to JSON text


_DECIMAL_TYPES = {exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL, exp.DataType.Type.MONEY}
_JSON_TYPES = {exp.DataType.Type.JSON, exp.DataType.Type.JSONB}


@lru_cache(maxsize=1024)
def _encoding(type_: str) -> Encoding:
    kind = parse_type(type_).this
    if kind in _DECIMAL_TYPES:
        return Encoding.DECIMAL
    if kind in _JSON_TYPES:
        return Encoding.JSON
    return Encoding.NATIVE


def column_encodings(schema: Schema) -> tuple[Encoding, ...]:
    return tuple(_encoding(column.type) for column in schema.columns)


def _decimal_text(value: Any) -> str:
    if value.__class__ is Decimal:  # the usual case, first
        return str(value)
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return str(value)


def encode_columns(schema: Schema, rows: Sequence[Row]) -> list[list[Any]]:
    """The batch turned column-wise, one list per column, prepared for DuckDB.

    Raises RowError when a value cannot be prepared (a JSON column's value that is not JSON,
    a decimal column's value that is not a number, a row of the wrong width)."""
    encodings = column_encodings(schema)
    width = len(encodings)
    if not rows:
        return [[] for _ in range(width)]
    try:
        columns = [list(values) for values in zip(*rows, strict=True)]
    except ValueError as exc:
        raise RowError(f"the rows of the batch do not all have {width} values") from exc
    if len(columns) != width:
        raise RowError(f"the rows of the batch have {len(columns)} values, not {width}")
    for index, encoding in enumerate(encodings):
        if encoding is Encoding.NATIVE:
            continue
        encode = _decimal_text if encoding is Encoding.DECIMAL else json_text
        try:
            columns[index] = [None if value is None else encode(value) for value in columns[index]]
        except (TypeError, ValueError) as exc:
            name = schema.columns[index].name
            raise RowError(f"column {name!r}: {exc}") from exc
    return columns
