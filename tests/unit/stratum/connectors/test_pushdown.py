"""Pushdown of COLUMNS, COMPUTE and WHERE into a table source's SELECT: the SQL it builds, what
it pushes and what it leaves to the Python transforms, and the mistakes it reports as the
transforms do. Pure SQL building: no database."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest

from stratum.connectors.base import Column
from stratum.connectors.pushdown import (
    APPLIED_ALL,
    Output,
    plan_pushdown,
    remaining_options,
    select_sql,
    selection,
    source_key,
    transpile_query,
)
from stratum.errors import ConfigError
from stratum.plan.model import CastRule, ColumnMap, Options, Sql
from tests.support.options import compute, options

COLUMNS = (
    Column("id", "bigint", False),
    Column("name", "text"),
    Column("amount", "numeric(12,2)"),
    Column("x", "integer"),
    Column("Mixed Case", "text"),
)


def where(text: str, dialect: str = "postgres") -> Sql:
    return Sql(text, dialect)


# --- what is selected -------------------------------------------------------------------------


def test_no_options_select_every_column_as_it_is() -> None:
    for given in (None, options()):
        pushdown = plan_pushdown(COLUMNS, given, "postgres")
        assert pushdown.applied == frozenset()
        assert pushdown.where is None
        assert pushdown.names == ("id", "name", "amount", "x", "Mixed Case")
        assert [o.sql for o in pushdown.outputs] == [
            '"id"',
            '"name"',
            '"amount"',
            '"x"',
            '"Mixed Case"',
        ]
        assert all(o.source == o.name for o in pushdown.outputs)


def test_columns_renames_then_computes_in_the_transformers_order() -> None:
    pushdown = plan_pushdown(
        COLUMNS,
        options(
            columns=(ColumnMap("amount", "total"), ColumnMap("id", "id")),
            compute=(compute("cents", "amount * 100"), compute("label", "upper(name)")),
            where=where("amount > 10 AND name IS NOT NULL"),
        ),
        "postgres",
    )
    assert pushdown.applied == APPLIED_ALL
    assert pushdown.outputs == (
        Output("total", '"amount" AS "total"', "amount"),
        Output("id", '"id"', "id"),
        Output("cents", '"amount" * 100 AS "cents"', None),
        Output("label", 'UPPER("name") AS "label"', None),
    )
    assert pushdown.where == '"amount" > 10 AND "name" IS NOT NULL'
    assert [p.label for p in pushdown.pushed] == ["WHERE", "COMPUTE cents", "COMPUTE label"]


def test_computes_without_columns_follow_every_column() -> None:
    pushdown = plan_pushdown(COLUMNS, options(compute=(compute("y", "x + 1"),)), "postgres")
    assert pushdown.names == ("id", "name", "amount", "x", "Mixed Case", "y")
    assert pushdown.applied == {"columns", "compute"}
    assert pushdown.where is None


def test_where_alone_keeps_every_column() -> None:
    pushdown = plan_pushdown(COLUMNS, options(where=where("x = 1")), "mysql")
    assert pushdown.applied == {"where"}
    assert pushdown.where == "`x` = 1"
    assert pushdown.names == tuple(c.name for c in COLUMNS)


def test_expressions_are_transpiled_from_their_own_dialect() -> None:
    pushdown = plan_pushdown(
        COLUMNS,
        options(compute=(compute("x0", "IFNULL(x, 0)", "mysql"),), where=where("x <=> 1", "mysql")),
        "postgres",
    )
    assert pushdown.outputs[-1].sql == 'COALESCE("x", 0) AS "x0"'
    assert pushdown.where == '"x" IS NOT DISTINCT FROM 1'
    to_mysql = plan_pushdown(
        COLUMNS, options(compute=(compute("s", "name || '%'"),)), "mysql"
    ).outputs[-1]
    assert to_mysql.sql == "CONCAT(`name`, '%') AS `s`"


def test_names_resolve_as_the_transforms_resolve_them() -> None:
    # unquoted: the same name, else the only one differing in case; quoted: exact
    pushdown = plan_pushdown(
        COLUMNS,
        options(compute=(compute("a", "AMOUNT + 1"), compute("b", '"Mixed Case" || NAME'))),
        "postgres",
    )
    assert [o.sql for o in pushdown.outputs[-2:]] == [
        '"amount" + 1 AS "a"',
        '"Mixed Case" || "name" AS "b"',
    ]
    with pytest.raises(ConfigError, match=r"'Amount' is not a column of the source"):
        plan_pushdown(COLUMNS, options(compute=(compute("a", '"Amount" + 1'),)), "postgres")


def test_hostile_names_are_quoted_never_pasted() -> None:
    hostile = (Column('a";DROP TABLE x;--', "text"), Column("b`c", "integer"))
    pushdown = plan_pushdown(
        hostile,
        options(
            columns=(ColumnMap('a";DROP TABLE x;--', "out`put"), ColumnMap("b`c", "b`c")),
            where=where('"b`c" > 0'),
        ),
        "mysql",
    )
    assert pushdown.outputs[0].sql == '`a";DROP TABLE x;--` AS `out``put`'
    assert pushdown.outputs[1].sql == "`b``c`"
    assert pushdown.where == "`b``c` > 0"
    pg = plan_pushdown(
        hostile, options(columns=(ColumnMap('a";DROP TABLE x;--', "o"),)), "postgres"
    )
    assert pg.outputs[0].sql == '"a"";DROP TABLE x;--" AS "o"'


# --- the select list and the statement --------------------------------------------------------


def test_key_columns_the_output_leaves_out_are_hidden_at_the_end() -> None:
    pushdown = plan_pushdown(
        COLUMNS, options(columns=(ColumnMap("name", "n"), ColumnMap("id", "ident"))), "postgres"
    )
    chosen = selection(pushdown, ("x", "id"), "postgres")
    assert chosen.items == ('"name" AS "n"', '"id" AS "ident"', '"x"')
    assert chosen.width == 2
    assert chosen.key_at == (2, 1)  # x hidden after the output; id copied (renamed)
    everything = selection(plan_pushdown(COLUMNS, None, "postgres"), ("id",), "postgres")
    assert everything.width == len(everything.items) == 5
    assert everything.key_at == (0,)


def test_select_sql_shapes() -> None:
    assert select_sql(['"a"'], '"s"."t"', [], []) == 'SELECT "a" FROM "s"."t"'
    assert (
        select_sql(['"a"', '"b" AS "c"'], "t", ["(x > 1)", '("a") > ($1)'], ['"a"'])
        == 'SELECT "a", "b" AS "c" FROM t WHERE (x > 1) AND ("a") > ($1) ORDER BY "a"'
    )


# --- what stays in Python ---------------------------------------------------------------------


def test_cast_rules_keep_columns_and_compute_in_python() -> None:
    given = options(
        columns=(ColumnMap("x", "y"),),
        compute=(compute("c", "amount * 2"),),
        where=where("name <> ''"),
        casts=(CastRule("column", "x", "text"),),
    )
    pushdown = plan_pushdown(COLUMNS, given, "postgres")
    assert pushdown.applied == {"where"}  # WHERE reads no converted column
    assert pushdown.names == tuple(c.name for c in COLUMNS)
    rest = remaining_options(_Source(pushdown.applied), given)
    assert rest.columns == given.columns
    assert rest.compute == given.compute
    assert rest.casts == given.casts
    assert rest.where is None


@pytest.mark.parametrize(
    "rule",
    [
        CastRule("column", "X", "text"),
        CastRule("column", "orders.x", "text"),
        CastRule("type", "int", "text"),
        CastRule("type", "integer", "bigint"),
    ],
)
def test_a_where_reading_a_converted_column_stays_in_python(rule: CastRule) -> None:
    given = options(where=where("x > 1"), casts=(rule,))
    pushdown = plan_pushdown(COLUMNS, given, "postgres")
    assert pushdown.applied == frozenset()
    assert pushdown.where is None
    assert remaining_options(_Source(pushdown.applied), given) == given


def test_a_cast_matching_the_sources_own_type_name_counts() -> None:
    # a source may spell its own types (`Column.native`: tinyint(1) for a boolean), which CAST
    # TYPE rules written for that database match
    native: Any = (
        SimpleNamespace(name="id", type="integer", nullable=False, native="int(11)"),
        SimpleNamespace(name="flag", type="boolean", nullable=True, native="tinyint(1)"),
    )
    given = options(where=where("flag"), casts=(CastRule("type", "tinyint", "integer"),))
    assert plan_pushdown(native, given, "mysql").applied == frozenset()
    other = options(where=where("flag"), casts=(CastRule("type", "bigint", "integer"),))
    assert plan_pushdown(native, other, "mysql").applied == {"where"}


def test_an_expression_the_source_dialect_cannot_write_stays_in_python() -> None:
    given = options(compute=(compute("tags", "ARRAY[name, name]"),), where=where("x > 1"))
    pushdown = plan_pushdown(COLUMNS, given, "mysql")
    assert pushdown.applied == {"where"}  # arrays are not MySQL's: COMPUTE stays in Python
    assert pushdown.names == tuple(c.name for c in COLUMNS)
    assert plan_pushdown(COLUMNS, given, "postgres").applied == APPLIED_ALL
    assert plan_pushdown(COLUMNS, options(where=where("x = ANY(ARRAY[1])")), "mysql").applied == (
        frozenset()
    )


def test_remaining_options() -> None:
    given = options(
        columns=(ColumnMap("x", "y"),),
        compute=(compute("c", "1"),),
        where=where("true"),
        key=("y",),
        casts=(),
    )
    assert remaining_options(object(), given) is given  # a source that applies nothing
    assert remaining_options(_Source(frozenset()), given) is given
    rest = remaining_options(_Source(APPLIED_ALL), given)
    assert (rest.columns, rest.compute, rest.where) == ((), (), None)
    assert rest.key == ("y",)  # KEY and CURSOR name output columns: still checked


def test_source_key_maps_renamed_key_columns_back() -> None:
    given = options(columns=(ColumnMap("id", "order_id"), ColumnMap("x", "id")), key=("order_id",))
    assert source_key(given) == ("id",)
    assert source_key(dataclasses.replace(given, key=("id", "name"))) == ("x", "name")
    assert source_key(options(key=("a", "b"))) == ("a", "b")


# --- mistakes, in the transforms' words ---------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (options(columns=(ColumnMap("nope", "n"),)), "COLUMNS names 'nope', which is not a column"),
        (options(compute=(compute("c", "amout + 1"),)), r"'amout' is not a column.*'amount'"),
        (
            options(columns=(ColumnMap("amount", "total"),), compute=(compute("c", "total * 2"),)),
            "'total' is the name COLUMNS gives to 'amount'",
        ),
        (options(compute=(compute("c", "sum(x)"),)), "is an aggregate"),
        (options(compute=(compute("c", "row_number() OVER ()"),)), "is a window function"),
        (options(where=where("x IN (SELECT 1)")), "is a subquery"),
        (options(compute=(compute("c", "t.x"),)), "is qualified"),
        (options(compute=(compute("c", "generate_series(1, x)"),)), "returns a set of rows"),
        (options(compute=(compute("c", "unnest(name)"),)), "returns a set of rows"),
        (options(where=where("x > $1")), "is a parameter"),
        (options(compute=(compute("c", "SELECT 1"),)), "expected an expression, found a query"),
        (options(compute=(compute("x", "1"),)), "column 'x' is produced twice"),
        (
            options(columns=(ColumnMap("x", "a"), ColumnMap("id", "a"))),
            "column 'a' is produced twice",
        ),
    ],
)
def test_mistakes_are_reported_as_the_transforms_report_them(given: Options, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_pushdown(COLUMNS, given, "postgres")


# --- queries ----------------------------------------------------------------------------------


def test_a_query_in_the_servers_dialect_runs_as_written() -> None:
    text = "select id, name from t where name like 'a%' -- recent\n;"
    assert transpile_query(Sql(text, "postgres"), "postgres") == (
        "select id, name from t where name like 'a%' -- recent"
    )
    assert transpile_query(Sql("SELECT 1", "mysql"), "mysql") == "SELECT 1"


def test_a_query_in_another_dialect_is_transpiled() -> None:
    assert (
        transpile_query(Sql("SELECT IFNULL(x, 0) AS n FROM `t`", "mysql"), "postgres")
        == 'SELECT COALESCE(x, 0) AS n FROM "t"'
    )
    assert (
        transpile_query(Sql("SELECT a || b AS s FROM t", "postgres"), "mysql")
        == "SELECT CONCAT(a, b) AS s FROM t"
    )
    with pytest.raises(ConfigError, match="cannot be written in mysql"):
        transpile_query(Sql("SELECT ARRAY[1, 2] AS a", "postgres"), "mysql")
    with pytest.raises(ConfigError, match="not one SELECT"):
        transpile_query(Sql("SELECT 1; SELECT 2", "postgres"), "mysql")


class _Source:
    def __init__(self, applied: frozenset[str]) -> None:
        self.applied = applied
