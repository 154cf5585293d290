"""A gold stage's query, as the database runs it: written in one dialect, generated in the
database's, its tables renamed from the plan's names to the database's, a table of another
connection refused with the reason."""

from __future__ import annotations

import pytest

from stratum.errors import ConfigError
from stratum.plan.model import Sql, TableRef
from stratum.stages.stage_sql import query_sql


def relation(ref: TableRef) -> str:
    return f'"cat"."{ref.schema or "main"}"."{ref.table}"'


def run(text: str, *, read: str = "postgres", write: str = "duckdb") -> str:
    return query_sql(
        Sql(text, read),
        dialect=write,
        home="wh",
        connections=("wh", "shop"),
        relation=relation,
        label="item 'wh.gold.x'",
    )


def test_tables_are_renamed_and_aliases_kept() -> None:
    sql = run("SELECT o.id FROM wh.silver.orders AS o JOIN silver.customers c ON c.id = o.id")
    assert '"cat"."silver"."orders" AS o' in sql
    assert '"cat"."silver"."customers" AS c' in sql


def test_a_two_part_name_on_a_connection_is_its_default_schema() -> None:
    assert '"cat"."main"."orders"' in run("SELECT * FROM wh.orders")


def test_a_cte_is_not_a_table() -> None:
    sql = run("WITH recent AS (SELECT * FROM wh.s.orders) SELECT count(*) FROM recent")
    assert '"cat"."s"."orders"' in sql
    assert "FROM recent" in sql


def test_the_query_is_written_in_the_database_dialect() -> None:
    sql = run("SELECT IFNULL(`total`, 0) AS t FROM wh.s.orders", read="mysql", write="postgres")
    assert "COALESCE" in sql
    assert "`" not in sql


def test_a_table_of_another_connection_is_refused_with_the_way_out() -> None:
    with pytest.raises(ConfigError, match=r"reads shop\.s\.orders from connection 'shop'.*MIGRATE"):
        run("SELECT * FROM shop.s.orders")
