"""How a batch becomes the column lists one DuckDB INSERT binds (`_encoding`)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from stratum.connectors.base import Column, Schema
from stratum.connectors.duckdb._encoding import Encoding, column_encodings, encode_columns
from stratum.errors import RowError

SCHEMA = Schema(
    (
        Column("id", "bigint"),
        Column("note", "text"),
        Column("amount", "numeric(12,2)"),
        Column("wide", "numeric"),
        Column("doc", "jsonb"),
        Column("raw", "json"),
        Column("at", "timestamptz"),
    )
)


def test_encodings_follow_the_column_types() -> None:
    assert column_encodings(SCHEMA) == (
        Encoding.NATIVE,
        Encoding.NATIVE,
        Encoding.DECIMAL,
        Encoding.DECIMAL,
        Encoding.JSON,
        Encoding.JSON,
        Encoding.NATIVE,
    )


def test_rows_become_columns_and_native_values_are_untouched() -> None:
    moment = datetime(2020, 1, 1, tzinfo=UTC)
    rows = [
        (1, 'a "quoted", value\n', Decimal("1.50"), 7, {"k": [1, "ü"]}, "text", moment),
        (2, "", None, Decimal("-1E+3"), None, [], None),
        (3, None, 2, 0.25, "a string", 1.5, None),
    ]
    columns = encode_columns(SCHEMA, rows)
    assert columns[0] == [1, 2, 3]
    assert columns[1] == ['a "quoted", value\n', "", None]  # '' and None stay apart
    assert columns[1][0] is rows[0][1]  # not copied, not escaped
    assert columns[2] == ["1.50", None, "2"]
    assert columns[3] == ["7", "-1E+3", "0.25"]
    assert columns[4] == ['{"k":[1,"ü"]}', None, '"a string"']  # a str is a JSON string
    assert columns[5] == ['"text"', "[]", "1.5"]
    assert columns[6] == [moment, None, None]


def test_other_native_values_pass_as_they_are() -> None:
    schema = Schema(
        tuple(
            Column(f"c{i}", t)
            for i, t in enumerate(
                ["boolean", "date", "time", "bytea", "double precision", "timestamp"]
            )
        )
    )
    row = (True, date(1, 1, 1), time(23, 59, 59, 999999), b"\x00\xff", -0.0, datetime(9999, 1, 1))
    columns = encode_columns(schema, [row])
    assert [column[0] for column in columns] == list(row)
    assert math.copysign(1.0, columns[4][0]) == -1.0


def test_an_empty_batch_is_empty_columns() -> None:
    assert encode_columns(SCHEMA, []) == [[] for _ in SCHEMA.columns]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ((1, "x", "1.5", None, None, None, None), "amount"),  # a str is not a number
        ((1, "x", True, None, None, None, None), "amount"),  # nor is a bool
        ((1, "x", None, None, {"x": math.nan}, None, None), "doc"),  # NaN is not JSON
        ((1, "x", None, None, {1, 2}, None, None), "doc"),  # a set is not JSON
        ((1, "x", None, None, None, None), "values"),  # one value short
    ],
)
def test_values_that_cannot_be_prepared_are_row_errors(
    row: tuple[object, ...], message: str
) -> None:
    good = (0, "ok", None, None, None, None, None)
    with pytest.raises(RowError, match=message):
        encode_columns(SCHEMA, [good, row])
