"""COMPUTE and WHERE: values and types of expressions, SQL NULL semantics, dialects, and the
ConfigErrors for what the evaluator cannot do."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from stratum.connectors.base import Rejected, Row
from stratum.errors import ConfigError
from tests.unit.stratum.transforms.support import NOW, batch, build, check_accounting, schema

SOURCE = schema(
    ("i", "bigint"),
    ("n", "numeric(12,2)"),
    ("f", "double precision"),
    ("s", "text"),
    ("d", "date"),
    ("ts", "timestamp"),
    ("b", "boolean"),
    ("tz", "timestamptz"),
    ("j", "jsonb"),
    ("k", "integer"),
)
ROW: Row = (
    7,
    Decimal("2.50"),
    1.5,
    "Hello",
    date(2024, 2, 29),
    datetime(2024, 3, 15, 10, 30, 45, 123456),
    True,
    datetime(2024, 1, 1, tzinfo=UTC),
    {"a": 1},
    3,
)
NULLS: Row = (None,) * len(ROW)


def compute(sql: str, row: Row = ROW, dialect: str = "postgres") -> tuple[Any, str]:
    """(value, output type) of COMPUTE x = sql on one row."""
    transformer = build(SOURCE, compute=[("x", sql)], dialect=dialect)
    out = transformer.apply(batch([row]))
    check_accounting(out)
    assert not out.rejected, out.rejected
    return out.rows[0][-1], transformer.schema.columns[-1].type


def rejected(sql: str, row: Row = ROW, dialect: str = "postgres") -> str:
    out = build(SOURCE, compute=[("x", sql)], dialect=dialect).apply(batch([row], first=42))
    check_accounting(out)
    assert [r.position for r in out.rejected] == [42]
    assert out.rejected[0].row == row
    return out.rejected[0].reason


def config_error(sql: str, dialect: str = "postgres", clause: str = "compute") -> str:
    kwargs: dict[str, Any] = {"where": sql} if clause == "where" else {"compute": [("x", sql)]}
    with pytest.raises(ConfigError) as info:
        build(SOURCE, dialect=dialect, **kwargs)
    return str(info.value)


@pytest.mark.parametrize(
    ("sql", "value", "type_"),
    [
        ("i + 1", 8, "bigint"),
        ("k * 2", 6, "integer"),
        ("i / 2", 3, "bigint"),  # integer division in PostgreSQL
        ("-i / 2", -3, "bigint"),  # truncated toward zero
        ("-7 % 3", -1, "integer"),  # the dividend's sign
        ("n * 100", Decimal("250.00"), "numeric"),
        ("n / 3", Decimal("0.83333333333333333333"), "numeric"),
        ("n + i", Decimal("9.50"), "numeric"),
        ("n + f", 4.0, "double precision"),
        ("i * 1.5", Decimal("10.5"), "numeric"),
        ("abs(-n)", Decimal("2.50"), "numeric(12,2)"),
        ("round(n)", Decimal(3), "numeric"),
        ("round(n, 1)", Decimal("2.5"), "numeric"),
        ("round(f)", 2.0, "double precision"),
        ("floor(-2.5)", Decimal(-3), "numeric"),
        ("ceil(f)", 2.0, "double precision"),
        ("greatest(i, n, 3)", Decimal(7), "numeric"),
        ("least(i, NULL)", 7, "bigint"),
        ("1e5", Decimal(100000), "numeric"),
        ("2147483648", 2147483648, "bigint"),
        ("s || ' world'", "Hello world", "text"),
        ("s || i", "Hello7", "text"),
        ("concat(s, NULL, i)", "Hello7", "text"),
        ("concat_ws('-', s, NULL, k)", "Hello-3", "text"),
        ("upper(s)", "HELLO", "text"),
        ("lower(s)", "hello", "text"),
        ("length(s)", 5, "integer"),
        ("trim('  x  ')", "x", "text"),
        ("trim(both 'x' from 'xxaxx')", "a", "text"),
        ("rtrim('a\t ')", "a\t", "text"),
        ("substring(s, 2, 3)", "ell", "text"),
        ("substring(s from 0 for 3)", "He", "text"),
        ("substr(s, -2)", "Hello", "text"),
        ("replace(s, 'l', 'L')", "HeLLo", "text"),
        ("replace(s, '', 'L')", "Hello", "text"),
        ("left(s, -2)", "Hel", "text"),
        ("right(s, 2)", "lo", "text"),
        ("position('l' in s)", 3, "integer"),
        ("date_trunc('month', ts)", datetime(2024, 3, 1), "timestamp"),
        ("date_trunc('week', d)", datetime(2024, 2, 26), "timestamp"),
        ("date_trunc('day', tz)", datetime(2024, 1, 1, tzinfo=UTC), "timestamptz"),
        ("extract(year from d)", 2024, "integer"),
        ("extract(dow from d)", 4, "integer"),
        ("extract(second from ts)", Decimal("45.123456"), "numeric"),
        ("extract(epoch from ts)", Decimal("1710498645.123456"), "numeric"),
        ("d + 1", date(2024, 3, 1), "date"),
        ("d - date '2024-01-01'", 59, "integer"),
        ("ts + interval '1 day'", datetime(2024, 3, 16, 10, 30, 45, 123456), "timestamp"),
        (
            "ts - interval '2 hours 30 minutes'",
            datetime(2024, 3, 15, 8, 0, 45, 123456),
            "timestamp",
        ),
        ("date '2024-01-31' + interval '1 month'", datetime(2024, 2, 29), "timestamp"),
        ("case when i > 5 then 'big' else 'small' end", "big", "text"),
        ("case i when 7 then n else 0 end", Decimal("2.50"), "numeric"),
        ("case when i > 100 then 1 end", None, "integer"),
        ("coalesce(NULL, i, 0)", 7, "bigint"),
        ("coalesce(n, i)", Decimal("2.50"), "numeric"),
        ("nullif(i, 7)", None, "bigint"),
        ("nullif(i, 8)", 7, "bigint"),
        ("cast('12' as int)", 12, "integer"),
        ("try_cast(s as int)", None, "integer"),
        ("cast(n as int)", 3, "integer"),
        ("s::varchar(10)", "Hello", "varchar(10)"),
        ("cast(b as text)", "true", "text"),
        ("cast(j as text)", '{"a": 1}', "text"),
        ("cast(i as numeric(5,1))", Decimal("7.0"), "numeric(5,1)"),
        ("i between 1 and 10", True, "boolean"),
        ("i not between 1 and 10", False, "boolean"),
        ("s like 'H%'", True, "boolean"),
        ("s ilike 'h_llo'", True, "boolean"),
        ("s not like '%x%'", True, "boolean"),
        ("'a%b' like 'a!%b' escape '!'", True, "boolean"),
        ("'axb' like 'a!%b' escape '!'", False, "boolean"),
        ("i in (1, 7)", True, "boolean"),
        ("i in (1, NULL)", None, "boolean"),
        ("i not in (1, NULL)", None, "boolean"),
        ("i in (k, 7)", True, "boolean"),
        ("b is true", True, "boolean"),
        ("b is not false", True, "boolean"),
        ("i is distinct from NULL", True, "boolean"),
        ("i is not distinct from 7", True, "boolean"),
        ("ts >= '2024-01-01'", True, "boolean"),
        ("d < ts", True, "boolean"),
        ("tz < ts", True, "boolean"),
        ("'NaN'::float = 'NaN'::float", True, "boolean"),
        ("cast('NaN' as double precision) > 1e308", True, "boolean"),
        ("current_date", date(2024, 6, 1), "date"),
        ("now()", NOW, "timestamptz"),
        ("NULL", None, "text"),
        ("NULL + 1", None, "integer"),
        ("'abc'", "abc", "text"),
        ("i > 1 or NULL", True, "boolean"),
        ("NULL and false", False, "boolean"),
        ("j", {"a": 1}, "jsonb"),
        ("case upper(s) when 'HELLO' then 1 else 2 end", 1, "integer"),
        ("i + 1 between 1 and 10", True, "boolean"),
        ("f * 2 between 1 and 10", True, "boolean"),
        ("nullif(i + 0, 7)", None, "bigint"),
        ("greatest(f, i)", 7.0, "double precision"),
        ("i in (1.0, 7.0)", True, "boolean"),
        ("case when f > 1 then i else n end", Decimal(7), "numeric"),
    ],
)
def test_values_and_types(sql: str, value: Any, type_: str) -> None:
    assert compute(sql) == (value, type_)


@pytest.mark.parametrize(
    ("sql", "value"),
    [
        ("i + 1", None),
        ("upper(s) || 'x'", None),
        ("coalesce(i, 5)", 5),
        ("concat(s, 'x')", "x"),
        ("s || 'x'", None),
        ("i is null", True),
        ("i is distinct from NULL", False),
        ("i in (1, 2)", None),
        ("i between 1 and 10", None),
        ("case when b then 1 else 2 end", 2),  # NULL is not TRUE
        ("case i when 1 then 'a' else 'z' end", "z"),
        ("nullif(i, 1)", None),
        ("greatest(i, 3)", 3),
        ("b and false", False),
        ("b or true", True),
        ("not b", None),
        ("try_cast(s as int)", None),
        ("s like '%'", None),
        ("case upper(s) when 'HELLO' then 1 else 2 end", 2),
        ("length(s) between 1 and 10", None),
        ("coalesce(i + 1, 0)", 0),
    ],
)
def test_null_semantics(sql: str, value: Any) -> None:
    assert compute(sql, NULLS)[0] == value


def test_nan_sorts_above_every_double_as_in_postgresql() -> None:
    row = (*ROW[:2], math.nan, *ROW[3:])
    assert compute("f > 1e308", row)[0] is True
    assert compute("f = f", row)[0] is True
    assert compute("f < 0", row)[0] is False


# --- errors on one row -----------------------------------------------------------------------


def test_evaluation_errors_reject_the_row_with_the_reason() -> None:
    zero = (0, Decimal(0), 0.0, "abc", *ROW[4:])
    assert rejected("i / (i - i)") == "COMPUTE x: division by zero"
    assert rejected("n / 0.0") == "COMPUTE x: division by zero"
    assert rejected("f / f", zero) == "COMPUTE x: division by zero"
    assert rejected("k % i", zero) == "COMPUTE x: division by zero"
    assert rejected("cast(s as int)") == "COMPUTE x: 'Hello' is not integer"
    assert rejected("s::varchar(3)") == "COMPUTE x: 'Hello' is longer than varchar(3) allows"
    assert rejected("substring(s, 1, -1)") == "COMPUTE x: negative substring length not allowed"
    assert rejected("k * 2147483647") == "COMPUTE x: 6442450941 is out of range for integer"
    assert rejected("i * 9223372036854775807") == (
        "COMPUTE x: 64563604257983430649 is out of range for bigint"
    )


def test_where_errors_reject_the_row() -> None:
    source = schema(("a", "integer"), ("b", "integer"))
    out = build(source, where="a / b > 1").apply(batch([(4, 2), (4, 0), (1, 2)], first=3))
    assert out.rows == [(4, 2)]
    assert out.rejected == [Rejected(4, "WHERE: division by zero", (4, 0))]
    assert out.filtered == 1
    check_accounting(out)


def test_a_constant_error_is_found_at_build_time() -> None:
    assert config_error("1 / 0") == (
        "COMPUTE x: '1 / 0' at line 1, column 1 cannot be evaluated: division by zero"
    )
    assert config_error("cast('x' as int)") == (
        "COMPUTE x: 'CAST('x' AS INT)' at line 1, column 6 cannot be evaluated: 'x' is not integer"
    )


# --- WHERE -----------------------------------------------------------------------------------


def test_where_keeps_only_true_rows() -> None:
    source = schema(("a", "integer"), ("s", "text"))
    rows = [(1, "x"), (None, "x"), (5, None), (7, "y"), (None, None)]
    out = build(source, where="a > 2 or s = 'x'").apply(batch(rows))
    # (None, 'x'): NULL OR TRUE = TRUE; (5, None): TRUE; (None, None): NULL -> dropped
    assert out.rows == [(1, "x"), (None, "x"), (5, None), (7, "y")]
    assert out.filtered == 1
    out = build(source, where="not (a > 2)").apply(batch(rows))
    assert out.rows == [(1, "x")]
    assert out.filtered == 4


def test_where_on_a_boolean_column() -> None:
    source = schema(("flag", "boolean"))
    out = build(source, where="flag").apply(batch([(True,), (False,), (None,)]))
    assert (out.rows, out.filtered) == ([(True,)], 2)


def test_where_must_be_a_condition() -> None:
    assert config_error("i + 1", clause="where") == (
        "WHERE: the condition must be true or false, but 'i + 1' is bigint"
    )


def test_expressions_read_source_names_not_renamed_ones() -> None:
    source = schema(("id", "integer"), ("status", "text"))
    with pytest.raises(ConfigError) as info:
        build(source, columns=[("status", "state")], where="state = 'x'")
    assert str(info.value) == (
        "WHERE: 'state' at line 1, column 1 is the name COLUMNS gives to 'status': "
        "expressions read source columns by their source names"
    )


def test_where_can_read_columns_that_columns_does_not_copy() -> None:
    source = schema(("id", "integer"), ("status", "text"))
    transformer = build(source, columns=[("id", "id")], where="status <> 'test'")
    out = transformer.apply(batch([(1, "ok"), (2, "test")]))
    assert out.rows == [(1,)]


# --- dialects --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "value", "type_"),
    [
        ("i / 2", 3.5, "double precision"),
        ("i / 0", None, "double precision"),  # MySQL division by zero is NULL
        ("i % 0", None, "bigint"),
        ("i div 2", 3, "bigint"),
        ("concat(s, NULL)", None, "text"),  # MySQL concat is NULL when an argument is
        ("greatest(i, NULL)", None, "bigint"),
        ("substr(s, -3)", "llo", "text"),  # from the end
        ("date_trunc('day', d)", date(2024, 2, 29), "date"),
        ("ifnull(i, 0)", 7, "bigint"),
        ("`i` + 1", 8, "bigint"),
        ("if(i > 1, 'a', 'b')", "a", "text"),
        ("now()", NOW, "timestamptz"),
    ],
)
def test_mysql(sql: str, value: Any, type_: str) -> None:
    assert compute(sql, dialect="mysql") == (value, type_)


def test_mysql_double_pipe_is_or() -> None:
    assert config_error("s || 'x'", dialect="mysql") == (
        "COMPUTE x: 's OR 'x'' at line 1, column 1 takes conditions, not text"
    )


def test_dialect_specific_edge_values_reject_rather_than_guess() -> None:
    assert rejected("substr(s, 0)", dialect="mysql") == (
        "COMPUTE x: substring start 0 means different things in different dialects"
    )
    assert rejected("left(s, -1)", dialect="mysql") == (
        "COMPUTE x: a negative length in LEFT means different things in dialects"
    )


def test_duckdb() -> None:
    assert compute("i / 2", dialect="duckdb") == (3.5, "double precision")
    assert compute("i // 2", dialect="duckdb") == (3, "bigint")
    assert compute("concat(s, NULL)", dialect="duckdb") == ("Hello", "text")


# --- what cannot be evaluated ----------------------------------------------------------------


SUPPORTED = (
    "; COMPUTE and WHERE take arithmetic, comparisons, AND/OR/NOT, IS NULL, IN, BETWEEN, LIKE, "
    "CASE, COALESCE, NULLIF, CAST and common text, number and date functions "
    "(see stratum/transforms/compiler.py)"
)


def test_an_unknown_function_is_named_with_its_position() -> None:
    assert config_error("i + 1 > 2 AND md5(s) = 'x'", clause="where") == (
        "WHERE: function md5() at line 1, column 15 is not supported by the transform stage"
        + SUPPORTED
    )
    assert config_error("abs(i) +\n  sha256(s)") == (
        "COMPUTE x: function sha256() at line 2, column 3 is not supported by the transform "
        "stage" + SUPPORTED
    )
    assert config_error("regexp_replace(s, 'a', 'b')").startswith(
        "COMPUTE x: function regexp_replace() at line 1, column 1 is not supported"
    )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "sum(i)",
            "COMPUTE x: function sum() at line 1, column 1 is an aggregate: COMPUTE "
            "and WHERE see one row at a time",
        ),
        (
            "row_number() over ()",
            "COMPUTE x: 'ROW_NUMBER() OVER ()' at line 1, column 1 is a "
            "window function: COMPUTE and WHERE see one row",
        ),
        (
            "i in (select 1)",
            "COMPUTE x: 'i IN (SELECT 1)' at line 1, column 1 is not "
            "supported by the transform stage (its 'query' part)" + SUPPORTED,
        ),
        ("(select 1)", "COMPUTE x: expected an expression, found a query"),
        ("x + 1", "COMPUTE x: 'x' at line 1, column 1 is not a column of the source"),
        (
            "ii + 1",
            "COMPUTE x: 'ii' at line 1, column 1 is not a column of the source (did you mean 'i'?)",
        ),
        (
            '"I" + 1',
            "COMPUTE x: 'I' at line 1, column 1 is not a column of the source (did you mean 'i'?)",
        ),
        ("t.i", "COMPUTE x: 't.i' at line 1, column 1 is qualified: name the column alone"),
        (
            "s > 5",
            "COMPUTE x: 's > 5' at line 1, column 1 compares text with integer; CAST "
            "COLUMN s TO integer (or CAST it in the expression) to use it as integer",
        ),
        (
            "s + 1",
            "COMPUTE x: 's + 1' at line 1, column 1 takes numbers, not text and "
            "integer; CAST COLUMN s TO integer (or CAST it in the expression) to use it as "
            "integer",
        ),
        ("i = 'abc'", "COMPUTE x: 'abc' is not bigint at line 1, column 1"),
        ("upper(i)", "COMPUTE x: function upper() at line 1, column 1 takes text, not bigint"),
        ("j > j", "COMPUTE x: 'j > j' at line 1, column 1 cannot compare values of type jsonb"),
        (
            "cast(d as integer)",
            "COMPUTE x: 'CAST(d AS INT)' at line 1, column 6 cannot cast date to integer",
        ),
        (
            "extract(hour from d)",
            "COMPUTE x: function extract() at line 1, column 19 cannot extract hour from a date",
        ),
        (
            "ts - ts",
            "COMPUTE x: 'ts - ts' at line 1, column 1 cannot take timestamp and "
            "timestamp (dates and timestamps take + and - with an INTERVAL constant, dates "
            "with a number of days)",
        ),
        (
            "i +",
            "COMPUTE x: invalid SQL (postgres): Required keyword: 'expression' missing "
            "for <class 'sqlglot.expressions.core.Add'>. Line 1, Col: 3.",
        ),
    ],
)
def test_config_errors(sql: str, message: str) -> None:
    assert config_error(sql) == message


def test_an_unknown_dialect_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown SQL dialect 'nosuch'"):
        build(SOURCE, compute=[("x", "1")], dialect="nosuch")
