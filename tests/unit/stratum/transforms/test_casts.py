"""CAST rules: every target type, with values that convert and values that reject the row
(exact reasons, at the row's source position)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from stratum.connectors.base import Column, Rejected
from stratum.errors import ConfigError
from tests.unit.stratum.transforms.support import batch, build, check_accounting, schema


def cast(to: str, values: list[Any], source: str = "text") -> tuple[list[Any], list[Any]]:
    """(converted values, (position, reason) of the rejected) for CAST COLUMN v TO `to`; the
    rows are at positions 100, 101, ..."""
    transformer = build(schema(("v", source)), casts=[("column", "v", to)])
    out = transformer.apply(batch([(v,) for v in values], first=100))
    check_accounting(out)
    assert [r.row for r in out.rejected] == [(values[r.position - 100],) for r in out.rejected]
    return [row[0] for row in out.rows], [(r.position, r.reason) for r in out.rejected]


def test_bigint() -> None:
    values = ["1", " -42 ", "+7", "9223372036854775807", None, "1.5", "abc", "", "١٢"]
    assert cast("bigint", values) == (
        [1, -42, 7, 9223372036854775807, None],
        [
            (105, "column v: '1.5' is not bigint"),
            (106, "column v: 'abc' is not bigint"),
            (107, "column v: '' is not bigint"),
            (108, "column v: '١٢' is not bigint"),
        ],
    )
    assert cast("bigint", ["9223372036854775808"])[1] == [
        (100, "column v: '9223372036854775808' is out of range for bigint")
    ]


def test_integer_and_smallint_ranges() -> None:
    assert cast("integer", ["2147483647", "-2147483648", "2147483648"]) == (
        [2147483647, -2147483648],
        [(102, "column v: '2147483648' is out of range for integer")],
    )
    assert cast("int2", ["32767", "-32769"]) == (
        [32767],
        [(101, "column v: '-32769' is out of range for smallint")],
    )


def test_integers_from_numbers_round_as_postgresql_does() -> None:
    values = [Decimal("2.5"), Decimal("-2.5"), 2.5, 3.5, True, 7]
    assert cast("bigint", values, source="numeric") == ([3, -3, 2, 4, 1, 7], [])
    assert cast("integer", [float("inf")], source="double precision")[1] == [
        (100, "column v: Infinity is out of range for integer")
    ]


def test_numeric_with_precision_and_scale() -> None:
    values = ["12.345", "12.355", "-0.005", "1e3", " 5 ", "9999999999.99", "0"]
    assert cast("numeric(12,2)", values) == (
        [
            Decimal("12.35"),  # half away from zero
            Decimal("12.36"),
            Decimal("-0.01"),
            Decimal("1000.00"),
            Decimal("5.00"),
            Decimal("9999999999.99"),
            Decimal("0.00"),
        ],
        [],
    )
    bad = ["abc", "9999999999.995", "10000000000", "NaN", "Infinity", "1,5"]
    assert cast("numeric(12,2)", bad) == (
        [],
        [
            (100, "column v: 'abc' is not numeric(12,2)"),
            (101, "column v: '9999999999.995' is out of range for numeric(12,2)"),
            (102, "column v: '10000000000' is out of range for numeric(12,2)"),
            (103, "column v: 'NaN' is out of range for numeric(12,2)"),
            (104, "column v: 'Infinity' is out of range for numeric(12,2)"),
            (105, "column v: '1,5' is not numeric(12,2)"),
        ],
    )


def test_numeric_checks_values_that_already_are_decimals() -> None:
    values = [Decimal("1.005"), 3, 0.1 + 0.2, Decimal("123456")]
    assert cast("numeric(5,2)", values, source="numeric") == (
        [Decimal("1.01"), Decimal("3.00"), Decimal("0.30")],
        [(103, "column v: 123456 is out of range for numeric(5,2)")],
    )


def test_unconstrained_numeric_and_decimal_spelling() -> None:
    transformer = build(schema(("v", "text")), casts=[("column", "v", "decimal")])
    assert transformer.schema.columns == (Column("v", "numeric"),)
    assert cast("numeric", ["1e5", "1.50", "-0.1"])[0] == [
        Decimal(100000),
        Decimal("1.50"),
        Decimal("-0.1"),
    ]


def test_double_precision_and_real() -> None:
    good, bad = cast(
        "double precision", ["1.5", "-2e3", "NaN", "Infinity", "-Infinity", "inf", "x", "1e400"]
    )
    assert good[:2] == [1.5, -2000.0]
    assert str(good[2]) == "nan"
    assert good[3:] == [float("inf"), float("-inf"), float("inf")]
    assert bad == [
        (106, "column v: 'x' is not double precision"),
        (107, "column v: '1e400' is out of range for double precision"),
    ]
    assert cast("real", ["3.4e38", "1e39"]) == (
        [3.4e38],
        [(101, "column v: '1e39' is out of range for real")],
    )
    assert cast("float8", [Decimal("1.25"), 3], source="numeric") == ([1.25, 3.0], [])


def test_boolean() -> None:
    values = ["t", "F", "TRUE", "false", "yes", "No", "1", "0", " on ", "OFF", "y", "n"]
    assert cast("boolean", values) == (
        [True, False, True, False, True, False, True, False, True, False, True, False],
        [],
    )
    assert cast("bool", ["maybe", "2"]) == (
        [],
        [(100, "column v: 'maybe' is not boolean"), (101, "column v: '2' is not boolean")],
    )


def test_boolean_from_tinyint_by_type_rule() -> None:
    source = schema(("flag", "tinyint(1)"), ("level", "tinyint"))
    transformer = build(source, casts=[("type", "tinyint(1)", "boolean")])
    assert transformer.schema.columns == (Column("flag", "boolean"), Column("level", "tinyint"))
    assert transformer.apply(batch([(0, 0), (1, 1), (5, 5)])).rows == [
        (False, 0),
        (True, 1),
        (True, 5),
    ]


def test_date() -> None:
    values = ["2024-02-29", " 2024-01-05 ", "2024-01-01 10:00:00", "20240102"]
    assert cast("date", values) == (
        [date(2024, 2, 29), date(2024, 1, 5), date(2024, 1, 1), date(2024, 1, 2)],
        [],
    )
    assert cast("date", ["2023-02-29", "01/02/2024", ""]) == (
        [],
        [
            (100, "column v: '2023-02-29' is not date"),
            (101, "column v: '01/02/2024' is not date"),
            (102, "column v: '' is not date"),
        ],
    )
    moment = datetime(2024, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    assert cast("date", [moment], source="timestamptz")[0] == [date(2024, 1, 2)]  # in UTC


def test_timestamp() -> None:
    values = [
        "2024-01-01 10:00:00",
        "2024-01-01T10:00:00.123456",
        "2024-01-01",
        "2024-01-01 10:00:00+02",  # converted to UTC, offset dropped
        "2024-01-01 10:00:00Z",
        date(2024, 3, 1),
    ]
    assert cast("timestamp", values) == (
        [
            datetime(2024, 1, 1, 10),
            datetime(2024, 1, 1, 10, 0, 0, 123456),
            datetime(2024, 1, 1),
            datetime(2024, 1, 1, 8),
            datetime(2024, 1, 1, 10),
            datetime(2024, 3, 1),
        ],
        [],
    )
    assert cast("timestamp", ["garbage", "2024-13-01 00:00"])[1] == [
        (100, "column v: 'garbage' is not timestamp"),
        (101, "column v: '2024-13-01 00:00' is not timestamp"),
    ]
    assert cast("datetime", ["2024-01-01 00:00:00"])[0] == [datetime(2024, 1, 1)]
    assert cast("timestamp(0)", ["2024-01-01 10:00:00.6"])[0] == [datetime(2024, 1, 1, 10, 0, 1)]


def test_timestamptz_takes_naive_values_as_utc() -> None:
    values = ["2024-01-01 10:00:00+02", "2024-01-01 10:00:00", "2024-01-01T10:00:00Z"]
    assert cast("timestamp with time zone", values) == (
        [
            datetime(2024, 1, 1, 8, tzinfo=UTC),
            datetime(2024, 1, 1, 10, tzinfo=UTC),
            datetime(2024, 1, 1, 10, tzinfo=UTC),
        ],
        [],
    )
    assert cast("timestamptz", ["soon"])[1] == [(100, "column v: 'soon' is not timestamptz")]


def test_time() -> None:
    assert cast("time", ["10:00", "23:59:59.5", "25:00", "1000"]) == (
        [time(10), time(23, 59, 59, 500000)],
        [(102, "column v: '25:00' is not time"), (103, "column v: '1000' is not time")],
    )


def test_jsonb() -> None:
    good, bad = cast("jsonb", ['{"a": 1}', "[1, 2]", "5", '"x"', "NaN", "{bad"])
    assert good == [{"a": 1}, [1, 2], 5, "x"]
    assert bad == [(104, "column v: 'NaN' is not jsonb"), (105, "column v: '{bad' is not jsonb")]
    assert cast("json", ["null"])[0] == [None]  # JSON null becomes SQL NULL


def test_json_numbers_a_float_cannot_hold_stay_exact() -> None:
    good, _ = cast("jsonb", ['{"big": 12345678901234567890.5, "small": 2.5}', "0.1"])
    assert good == [{"big": Decimal("12345678901234567890.5"), "small": 2.5}, 0.1]
    assert isinstance(good[0]["small"], float)


def test_bytea() -> None:
    values = ["\\x0aff", "abc", "a\\\\b", "a\\101", "\\xzz", "a\\b"]
    assert cast("bytea", values) == (
        [b"\n\xff", b"abc", b"a\\b", b"aA"],
        [(104, "column v: '\\xzz' is not bytea"), (105, "column v: 'a\\b' is not bytea")],
    )


def test_text_writes_values_as_postgresql_does() -> None:
    values = [
        1,
        1.5,
        100.0,
        float("nan"),
        True,
        Decimal("1E+5"),
        date(2024, 1, 1),
        datetime(2024, 1, 1, 10, 0, 0, 500000),
        datetime(2024, 1, 1, 10, tzinfo=UTC),
        time(8, 30),
        {"a": [1]},
        b"\x01",
    ]
    assert cast("text", values, source="bigint")[0] == [
        "1",
        "1.5",
        "100",
        "NaN",
        "true",
        "100000",
        "2024-01-01",
        "2024-01-01 10:00:00.5",
        "2024-01-01 10:00:00+00",
        "08:30:00",
        '{"a": [1]}',
        "\\x01",
    ]


def test_varchar_and_char_lengths() -> None:
    assert cast("varchar(3)", ["abc", "abcd"]) == (
        ["abc"],
        [(101, "column v: 'abcd' is longer than varchar(3) allows")],
    )
    assert cast("character(3)", ["a"])[0] == ["a  "]


def test_long_values_are_cut_in_reasons() -> None:
    _, bad = cast("integer", ["x" * 100])
    assert bad == [(100, "column v: '" + "x" * 57 + "...' is not integer")]


# --- which columns a rule applies to ---------------------------------------------------------


SOURCE = schema(("id", "int"), ("amount", "text"), ("note", "text"), ("n", "integer"))


def test_a_type_this_stage_does_not_know_is_converted_by_its_values() -> None:
    source = schema(("y", "year"), ("u", "uuid"))
    transformer = build(source, casts=[("type", "year", "integer"), ("column", "u", "text")])
    assert transformer.schema.columns == (Column("y", "integer"), Column("u", "text"))
    out = transformer.apply(batch([(2024, UUID(int=1)), ("1999", None)]))
    assert out.rows == [(2024, "00000000-0000-0000-0000-000000000001"), (1999, None)]


def test_cast_type_matches_normalised_types() -> None:
    transformer = build(SOURCE, casts=[("type", "INTEGER", "bigint")])
    assert [c.type for c in transformer.schema.columns] == ["bigint", "text", "text", "bigint"]


def test_a_column_rule_wins_over_a_type_rule() -> None:
    transformer = build(
        SOURCE, casts=[("column", "n", "text"), ("type", "integer", "numeric(10,2)")]
    )
    assert [c.type for c in transformer.schema.columns] == [
        "numeric(10,2)",
        "text",
        "text",
        "text",
    ]
    assert transformer.apply(batch([(1, "x", "y", 2)])).rows == [(Decimal("1.00"), "x", "y", "2")]


def test_cast_column_matches_the_source_name_before_renames() -> None:
    transformer = build(
        SOURCE,
        columns=[("amount", "total")],
        casts=[("column", "amount", "numeric(6,2)")],
    )
    assert transformer.schema.columns == (Column("total", "numeric(6,2)"),)


def test_cast_column_of_a_database_copy_names_the_table() -> None:
    rules = [("column", "orders.amount", "numeric(6,2)"), ("column", "users.note", "integer")]
    orders = build(SOURCE, casts=rules, table="orders")
    assert [c.type for c in orders.schema.columns] == ["int", "numeric(6,2)", "text", "integer"]
    quoted = build(SOURCE, casts=[("column", '"Orders".amount', "bigint")], table="shop.Orders")
    assert quoted.schema.columns[1].type == "bigint"


def test_cast_column_with_a_table_outside_a_database_copy_is_an_error() -> None:
    with pytest.raises(ConfigError, match="names a table's column"):
        build(SOURCE, casts=[("column", "orders.amount", "numeric(6,2)")])


def test_cast_column_not_a_column_suggests_one() -> None:
    with pytest.raises(ConfigError) as info:
        build(SOURCE, casts=[("column", "ammount", "bigint")])
    assert str(info.value) == (
        "CAST COLUMN ammount TO bigint names 'ammount', which is not a column of the source "
        "(did you mean 'amount'?); the source has id, amount, note, n"
    )


def test_two_rules_for_one_column_are_an_error() -> None:
    with pytest.raises(ConfigError, match="column n has two CAST rules"):
        build(SOURCE, casts=[("column", "n", "text"), ("column", "n", "bigint")])


def test_a_target_type_the_stage_cannot_produce_is_an_error() -> None:
    with pytest.raises(ConfigError, match="cannot convert values to uuid"):
        build(SOURCE, casts=[("column", "note", "uuid")])
    with pytest.raises(ConfigError, match="column id is int, which cannot be cast to date"):
        build(SOURCE, casts=[("column", "id", "date")])


# --- casts and the other clauses -------------------------------------------------------------


def test_where_and_compute_see_cast_values() -> None:
    transformer = build(
        SOURCE,
        casts=[("column", "amount", "numeric(8,2)")],
        where="amount >= 10",
        compute=[("cents", "amount * 100")],
    )
    out = transformer.apply(batch([(1, "12.5", None, 1), (2, "9.99", None, 2)]))
    assert out.rows == [(1, Decimal("12.50"), None, 1, Decimal("1250.00"))]
    assert out.filtered == 1


def test_a_row_where_drops_is_not_rejected_for_a_column_where_does_not_read() -> None:
    transformer = build(SOURCE, casts=[("column", "amount", "numeric(8,2)")], where="note = 'keep'")
    out = transformer.apply(batch([(1, "oops", "drop", 1), (2, "bad", "keep", 2)], first=7))
    assert out.filtered == 1
    assert out.rejected == [
        Rejected(8, "column amount: 'bad' is not numeric(8,2)", (2, "bad", "keep", 2))
    ]
    check_accounting(out)


def test_a_cast_on_a_column_that_is_not_copied_or_read_does_nothing() -> None:
    transformer = build(SOURCE, columns=[("id", "id")], casts=[("column", "amount", "bigint")])
    assert transformer.apply(batch([(1, "not a number", None, 1)])).rows == [(1,)]
