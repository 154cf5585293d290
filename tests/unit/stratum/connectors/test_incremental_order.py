"""MODE incremental in the table and query sources, without a database: the CURSOR mapped back
to the source's column, the read order (CURSOR column, then the key breaking ties), the hidden
CURSOR column, the MySQL row comparison after a 3-column cursor, the refusals, and the
registry passing the CURSOR only in MODE incremental."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import pytest

import smql
from smql import Mode
from stratum.connectors.base import Column
from stratum.connectors.mysql import source as mysql_source
from stratum.connectors.mysql.source import MySQLQuerySource, MySQLTableSource
from stratum.connectors.postgres.source import PostgresQuerySource, PostgresTableSource
from stratum.connectors.pushdown import (
    incremental_order,
    plan_pushdown,
    selection,
    source_cursor,
)
from stratum.connectors.registry import Connectors
from stratum.errors import ConfigError
from stratum.plan import compile_plan
from stratum.plan.model import ColumnMap, ComputedColumn, Sql
from tests.support.options import options as full_options

COLUMNS = (
    Column("id", "bigint", False),
    Column("status", "text"),
    Column("updated_at", "timestamp", False),
    Column("touched", "timestamp", True),
)

# an incremental item, CURSOR updated_at
options = functools.partial(full_options, mode=Mode.INCREMENTAL, cursor="updated_at")


def order(cursor: str, key: tuple[str, ...], **kw: Any) -> tuple[str, ...]:
    return incremental_order(cursor, COLUMNS, key, who="item 'dst.o'", source="src.o", **kw)


# --- the CURSOR as the source's column ---------------------------------------------------------


def test_source_cursor_maps_a_renamed_cursor_back() -> None:
    assert source_cursor(options()) == "updated_at"
    renamed = options(
        columns=(ColumnMap("id", "id"), ColumnMap("updated_at", "changed")), cursor="changed"
    )
    assert source_cursor(renamed) == "updated_at"
    assert source_cursor(options(cursor=None)) is None


# --- the order ----------------------------------------------------------------------------------


def test_the_cursor_column_leads_and_the_key_breaks_ties() -> None:
    assert order("updated_at", ("id",)) == ("updated_at", "id")
    assert order("updated_at", ("status", "id")) == ("updated_at", "status", "id")
    # resolved as COLUMNS resolves names: differing in case alone
    assert order("Updated_At", ("id",)) == ("updated_at", "id")
    # a cursor column that is part of the key is not compared twice
    assert order("updated_at", ("id", "updated_at")) == ("updated_at", "id")
    assert order("id", ("id",)) == ("id",)


@pytest.mark.parametrize(
    ("cursor", "key", "kw", "message"),
    [
        ("updatd_at", ("id",), {}, "CURSOR 'updatd_at' is not a column of src.o (did you mean"),
        ("changed", ("id",), {"computed": ("changed",)}, "CURSOR 'changed' is a COMPUTE column"),
        ("touched", ("id",), {}, "the CURSOR column 'touched' of src.o may be NULL"),
        ("touched", ("id",), {}, "make the column NOT NULL, or use MODE upsert or full"),
        ("updated_at", (), {}, "src.o has no key to break ties between rows sharing one"),
        ("updated_at", (), {"query": True}, "MODE incremental on a query needs a KEY"),
    ],
)
def test_refusals_name_the_item_the_source_and_the_column(
    cursor: str, key: tuple[str, ...], kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"^item 'dst\.o': ") as caught:
        order(cursor, key, **kw)
    assert message in str(caught.value)


def test_nullability_unknown_is_not_refused() -> None:
    assert order("touched", ("id",), nullability=False) == ("touched", "id")


def test_a_cursor_column_left_out_of_the_output_is_selected_hidden() -> None:
    given = options(columns=(ColumnMap("id", "order_id"), ColumnMap("status", "state")))
    pushdown = plan_pushdown(COLUMNS, given, "postgres")
    selected = selection(pushdown, ("updated_at", "id"), "postgres")
    assert selected.items == ('"id" AS "order_id"', '"status" AS "state"', '"updated_at"')
    assert selected.width == 2
    assert selected.key_at == (2, 0)
    # renamed, it is taken from the output
    given = options(columns=(ColumnMap("id", "id"), ColumnMap("updated_at", "changed")))
    selected = selection(plan_pushdown(COLUMNS, given, "mysql"), ("updated_at", "id"), "mysql")
    assert selected.items == ("`id`", "`updated_at` AS `changed`")
    assert selected.key_at == (1, 0)


# --- MySQL: strictly after (c, k1, k2) ---------------------------------------------------------


def test_mysql_reads_strictly_after_a_cursor_of_three_columns() -> None:
    sql, params = mysql_source._after(["`c`", "`k1`", "`k2`"], ["2024-01-01 00:00:00", 1, 2])
    assert sql == (
        "(`c` >= %s AND ((`c` > %s) OR (`c` = %s AND `k1` > %s) OR "
        "(`c` = %s AND `k1` = %s AND `k2` > %s)))"
    )
    v = "2024-01-01 00:00:00"
    assert params == [v, v, v, 1, v, 1, 2]


# --- the registry -------------------------------------------------------------------------------

CONNECTIONS = """\
CONNECTION pg = 'postgresql://etl@pg/shop';
CONNECTION my = 'mysql://etl@my/shop';
"""


def sources(body: str) -> dict[str, Any]:
    plan = compile_plan(smql.parse(CONNECTIONS + body, "t.smql"))
    connectors = Connectors(plan, Path(), {})
    return {item.name: connectors.source(item) for item in plan.items}


def test_the_registry_passes_the_cursor_only_in_mode_incremental() -> None:
    made = sources("""
MIGRATE pg.orders INTO my.a MODE incremental CURSOR updated_at KEY (id);
MIGRATE my.orders INTO pg.b MODE incremental CURSOR changed
  COLUMNS (id, updated_at AS changed);
MIGRATE pg.orders INTO my.c MODE upsert KEY (id);
MIGRATE QUERY pg (SELECT id, updated_at FROM orders) INTO my.d
  MODE incremental CURSOR updated_at KEY (id);
MIGRATE QUERY my (SELECT id, updated_at FROM orders) INTO pg.e
  MODE incremental CURSOR t KEY (id) COLUMNS (id, updated_at AS t);
""")
    assert isinstance(made["my.a"], PostgresTableSource)
    assert made["my.a"].increments_by == "updated_at"
    assert isinstance(made["pg.b"], MySQLTableSource)
    assert made["pg.b"].increments_by == "updated_at"
    assert isinstance(made["my.c"], PostgresTableSource)
    assert made["my.c"].increments_by is None
    assert isinstance(made["my.d"], PostgresQuerySource)
    assert made["my.d"].increments_by == "updated_at"
    assert isinstance(made["pg.e"], MySQLQuerySource)
    assert made["pg.e"].increments_by == "updated_at"


def test_a_compute_cursor_is_passed_as_written_for_the_source_to_refuse() -> None:
    given = options(compute=(ComputedColumn("changed", Sql("updated_at", "postgres")),))
    assert source_cursor(dataclasses.replace(given, cursor="changed")) == "changed"
