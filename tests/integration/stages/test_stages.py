"""Medallion stages end to end through `stratum migrate`, on the embedded DuckDB default and on
the real PostgreSQL server: each EXPECT action and its counts, deduplication order, MODE
incremental (only new input rows, merged by key, one batch id per run with new rows), the
bookkeeping table, a FAIL that writes nothing, a SIGKILL inside the stage's transaction, and a
stage whose input lives in MariaDB (streamed in) giving the same rows as one run inside
PostgreSQL."""

from __future__ import annotations

import json
import secrets
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import Migrate
from tests.support.sql import my, pg

ORDERS = """id,customer_id,total,status,updated_at
1,10,5.00,paid,2024-01-01 10:00:00
1,10,7.50,shipped,2024-01-02 10:00:00
2,11,-3.00,paid,2024-01-01 11:00:00
3,,4.00,new,2024-01-01 12:00:00
4,12,9.00,weird,2024-01-03 09:00:00
5,12,1.00,paid,2024-01-04 09:00:00
6,,-1.00,paid,2024-01-05 09:00:00
"""

BRONZE = """MIGRATE FILE 'orders.csv' (HEADER) INTO wh.{p}bronze.orders
  CAST COLUMN id TO bigint, COLUMN customer_id TO bigint, COLUMN total TO numeric(10,2),
    COLUMN updated_at TO timestamp;
"""

SILVER = """STAGE wh.{p}silver.orders FROM wh.{p}bronze.orders
  DEDUPLICATE ON (id) ORDER BY updated_at DESC
  EXPECT id IS NOT NULL ELSE FAIL
  EXPECT total >= 0 ELSE DROP
  EXPECT customer_id IS NOT NULL ELSE QUARANTINE
  EXPECT status IN ('new', 'paid', 'shipped') ELSE FLAG;
"""


@dataclass
class Warehouse:
    """A database the stages run in: its URL for the plan, and a way to query it."""

    kind: str
    url: str
    prefix: str  # schema names are prefixed, so tests sharing a PostgreSQL database never meet
    query: Callable[[str], list[tuple[Any, ...]]]


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        path = tmp_path / "lake.duckdb"

        def query_duckdb(sql: str) -> list[tuple[Any, ...]]:
            with duckdb.connect(str(path)) as conn:
                return [tuple(r) for r in conn.execute(sql).fetchall()]

        yield Warehouse("duckdb", "duckdb:///lake.duckdb", "", query_duckdb)
        return
    database: ThrowawayDatabase = request.getfixturevalue("postgres_database")
    prefix = f"t{secrets.token_hex(3)}_"
    yield Warehouse("postgres", database.url, prefix, lambda sql: pg(database.url, sql))


def plan(directory: Path, warehouse: Warehouse, *statements: str, data: str = ORDERS) -> Migrate:
    (directory / "orders.csv").write_text(data, encoding="utf-8")
    text = f"CONNECTION wh = '{warehouse.url}';\n\n" + "\n".join(
        s.format(p=warehouse.prefix) for s in statements
    )
    path = directory / "stages.smql"
    path.write_text(text, encoding="utf-8")
    return Migrate(path, directory / "state")


def summary_of(migrate: Migrate, *extra: str) -> dict[str, Any]:
    out = migrate.plan.parent / "summary.json"
    done = migrate.run(extra=("--summary", str(out), *extra))
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return {item["item"]: item for item in json.loads(out.read_text())["items"]}


def test_each_expect_action_and_its_counts(tmp_path: Path, warehouse: Warehouse) -> None:
    p = warehouse.prefix
    items = summary_of(plan(tmp_path, warehouse, BRONZE, SILVER))
    silver = warehouse.query(
        "SELECT id, customer_id, total, status, _quality_flags, _stratum_batch "
        f"FROM {p}silver.orders ORDER BY id"
    )
    assert silver == [
        (1, 10, Decimal("7.50"), "shipped", None, 1),  # the newer of the two versions of 1
        (4, 12, Decimal("9.00"), "weird", "status IN ('new', 'paid', 'shipped')", 1),
        (5, 12, Decimal("1.00"), "paid", None, 1),
    ]
    quarantined = warehouse.query(
        f"SELECT id, _failed_rules, _stratum_batch FROM {p}silver.orders_quarantine ORDER BY id"
    )
    assert quarantined == [
        (3, "customer_id IS NOT NULL", 1),
        (6, "total >= 0; customer_id IS NOT NULL", 1),  # dropped and quarantined: kept aside
    ]
    stage = items[f"wh.{p}silver.orders"]["stage"]
    assert {k: stage[k] for k in ("records_in", "records_out", "deduplicated", "filtered")} == {
        "records_in": 7,
        "records_out": 3,
        "deduplicated": 1,
        "filtered": 0,
    }
    assert (stage["dropped"], stage["quarantined"], stage["flagged"]) == (1, 2, 1)
    assert stage["runs"] == "sql in wh"
    assert [(r["action"], r["failed"]) for r in stage["rules"]] == [
        ("fail", 0),
        ("drop", 2),
        ("quarantine", 2),
        ("flag", 1),
    ]
    assert stage["success_rate"] == pytest.approx(3 / 7)
    booked = warehouse.query(
        "SELECT item, batch, layer, source, records_in, records_out, dropped, quarantined, "
        "flagged, checksum IS NOT NULL, rules FROM stratum.stage_batches "
        f"WHERE item = 'wh.{p}silver.orders'"
    )
    assert len(booked) == 1
    assert booked[0][:10] == (
        f"wh.{p}silver.orders",
        1,
        f"{p}silver",
        f"wh.{p}bronze.orders",
        7,
        3,
        1,
        2,
        1,
        True,
    )
    assert json.loads(booked[0][10])[1] == {"rule": "total >= 0", "action": "drop", "failed": 2}


def test_a_failing_fail_rule_writes_nothing(tmp_path: Path, warehouse: Warehouse) -> None:
    p = warehouse.prefix
    migrate = plan(
        tmp_path,
        warehouse,
        BRONZE,
        "STAGE wh.{p}silver.orders FROM wh.{p}bronze.orders\n"
        "  EXPECT total >= 0 ELSE FAIL\n  EXPECT status <> 'x' ELSE QUARANTINE;\n",
    )
    failed = migrate.run()
    assert failed.returncode == 4, failed.stderr[-2000:]
    output = " ".join((failed.stdout + failed.stderr).split())
    assert "EXPECT total >= 0 ELSE FAIL: 2 row(s) fail it" in output
    assert "total=Decimal('-3.00')" in output
    tables = warehouse.query(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{p}silver'"
    )
    assert tables == []
    assert warehouse.query(
        f"SELECT count(*) FROM stratum.stage_batches WHERE item = 'wh.{p}silver.orders'"
    ) == [(0,)]


@pytest.mark.parametrize(
    ("order", "kept"),
    [("updated_at DESC", Decimal("7.50")), ("updated_at ASC", Decimal("5.00"))],
)
def test_the_order_by_decides_which_duplicate_wins(
    tmp_path: Path, warehouse: Warehouse, order: str, kept: Decimal
) -> None:
    p = warehouse.prefix
    stage = (
        "STAGE wh.{p}silver.orders FROM wh.{p}bronze.orders\n"
        f"  DEDUPLICATE ON (id) ORDER BY {order};\n"
    )
    summary_of(plan(tmp_path, warehouse, BRONZE, stage))
    rows = warehouse.query(f"SELECT id, total FROM {p}silver.orders ORDER BY id")
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0][1] == kept


def test_deduplicate_on_two_columns_with_two_orderings(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    data = "id,customer_id,total,status,updated_at\n" + "".join(
        f"{i},{c},{t},{s},2024-01-0{d} 00:00:00\n"
        for i, c, t, s, d in [
            (1, 10, "1.00", "a", 1),
            (1, 10, "2.00", "b", 1),  # same time: the higher total wins
            (1, 11, "3.00", "c", 2),
            (1, 11, "4.00", "d", 3),
        ]
    )
    p = warehouse.prefix
    stage = (
        "STAGE wh.{p}silver.orders FROM wh.{p}bronze.orders\n"
        "  DEDUPLICATE ON (id, customer_id) ORDER BY updated_at DESC, total DESC;\n"
    )
    summary_of(plan(tmp_path, warehouse, BRONZE, stage, data=data))
    rows = warehouse.query(
        f"SELECT id, customer_id, total, status FROM {p}silver.orders ORDER BY customer_id"
    )
    assert rows == [(1, 10, Decimal("2.00"), "b"), (1, 11, Decimal("4.00"), "d")]


def test_an_incremental_stage_processes_only_new_rows(tmp_path: Path, warehouse: Warehouse) -> None:
    p = warehouse.prefix
    bronze = f"{p}raw.events"

    def add(rows: str) -> None:
        warehouse.query(f"INSERT INTO {bronze} VALUES {rows}")

    warehouse.query(f"CREATE SCHEMA IF NOT EXISTS {p}raw")
    warehouse.query(
        f"CREATE TABLE {bronze} (id bigint, amount numeric(10,2), updated_at timestamp)"
    )
    add("(1, 1.00, '2024-01-01'), (2, 2.00, '2024-01-02'), (3, 3.00, '2024-01-03')")
    stage = (
        f"STAGE wh.{p}silver.events FROM wh.{bronze}\n"
        "  MODE incremental CURSOR updated_at\n"
        "  DEDUPLICATE ON (id) ORDER BY updated_at DESC\n"
        "  EXPECT amount > 0 ELSE DROP;\n"
    )
    # downstream, an incremental stage on the silver table's batch ids
    gold = (
        f"STAGE wh.{p}gold.events FROM wh.{p}silver.events\n"
        "  MODE incremental CURSOR _stratum_batch KEY (id)\n"
        "  COMPUTE doubled = amount * 2;\n"
    )
    migrate = plan(tmp_path, warehouse, stage, gold)
    name = f"wh.{p}silver.events"

    first = summary_of(migrate)[name]["stage"]
    assert (first["batch"], first["records_in"], first["records_out"]) == (1, 3, 3)

    # a new version of 2 (twice: the later wins), a new 4, one that fails the rule
    add(
        "(2, 20.00, '2024-02-01'), (2, 21.00, '2024-02-02'), (4, 4.00, '2024-02-01'), "
        "(5, -5.00, '2024-02-01')"
    )
    second = summary_of(migrate)[name]["stage"]
    assert (second["batch"], second["records_in"], second["records_out"]) == (2, 4, 2)
    assert (second["deduplicated"], second["dropped"]) == (1, 1)
    rows = warehouse.query(f"SELECT id, amount, _stratum_batch FROM {p}silver.events ORDER BY id")
    assert rows == [
        (1, Decimal("1.00"), 1),
        (2, Decimal("21.00"), 2),
        (3, Decimal("3.00"), 1),
        (4, Decimal("4.00"), 2),
    ]

    downstream = warehouse.query(
        f"SELECT id, doubled, _stratum_batch FROM {p}gold.events ORDER BY id"
    )
    # gold's batch 2 holds exactly silver's batch 2: the new 2 and 4
    assert downstream == [
        (1, Decimal("2.00"), 1),
        (2, Decimal("42.00"), 2),
        (3, Decimal("6.00"), 1),
        (4, Decimal("8.00"), 2),
    ]
    booked_gold = warehouse.query(
        "SELECT batch, records_in FROM stratum.stage_batches "
        f"WHERE item = 'wh.{p}gold.events' ORDER BY batch"
    )
    assert booked_gold == [(1, 3), (2, 2)]

    third = summary_of(migrate)[name]["stage"]
    assert third["batch"] is None  # nothing new: no batch
    assert third["records_in"] == 0
    booked = warehouse.query(
        "SELECT batch, records_in, cursor_from, cursor_to FROM stratum.stage_batches "
        f"WHERE item = '{name}' ORDER BY batch"
    )
    assert [(b, n) for b, n, _, _ in booked] == [(1, 3), (2, 4)]
    assert booked[0][2] is None
    assert booked[1][2] == booked[0][3]


def test_a_kill_inside_the_stage_transaction_is_redone_whole(
    tmp_path: Path, warehouse: Warehouse
) -> None:
    p = warehouse.prefix
    migrate = plan(tmp_path, warehouse, BRONZE, SILVER)
    loaded = migrate.run(extra=("--item", f"wh.{p}bronze.orders"))
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    killed = migrate.run("before_commit=kill@1")  # the stage's statements sent, no COMMIT
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert warehouse.query(
        f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{p}silver'"
    ) == [(0,)]
    items = summary_of(migrate)
    assert items[f"wh.{p}silver.orders"]["stage"]["batch"] == 1
    assert warehouse.query(f"SELECT count(*) FROM {p}silver.orders") == [(3,)]
    assert warehouse.query(f"SELECT count(*) FROM {p}silver.orders_quarantine") == [(2,)]
    assert warehouse.query(
        f"SELECT count(*) FROM stratum.stage_batches WHERE item = 'wh.{p}silver.orders'"
    ) == [(1,)]


def test_a_gold_query_runs_in_the_database(tmp_path: Path, warehouse: Warehouse) -> None:
    p = warehouse.prefix
    gold = (
        "STAGE wh.{p}gold.revenue AS\n"
        "  SELECT customer_id, sum(total) AS revenue, count(*) AS orders\n"
        "  FROM wh.{p}silver.orders AS o WHERE o.status <> 'new' GROUP BY customer_id;\n"
    )
    items = summary_of(plan(tmp_path, warehouse, BRONZE, SILVER, gold))
    rows = warehouse.query(
        f"SELECT customer_id, revenue, orders FROM {p}gold.revenue ORDER BY customer_id"
    )
    assert rows == [(10, Decimal("7.50"), 1), (12, Decimal("10.00"), 2)]
    assert items[f"wh.{p}gold.revenue"]["stage"]["records_out"] == 2


def test_a_stage_streams_its_input_from_another_connection(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    """The same rows in MariaDB (streamed in) and in PostgreSQL (SQL inside it) give the same
    silver table."""
    values = (
        "(1, 10, 5.00, 'paid', '2024-01-01 10:00:00'), (1, 10, 7.50, 'shipped', "
        "'2024-01-02 10:00:00'), (2, 11, -3.00, 'paid', '2024-01-01 11:00:00'), "
        "(4, 12, 9.00, 'weird', '2024-01-03 09:00:00')"
    )
    columns = "id bigint, customer_id bigint, total numeric(10,2), status varchar(20), updated_at"
    my(
        mariadb_database.url,
        "DROP TABLE IF EXISTS orders",
        f"CREATE TABLE orders ({columns} datetime, PRIMARY KEY (id, updated_at))",
        f"INSERT INTO orders VALUES {values}",
    )
    p = f"t{secrets.token_hex(3)}_"
    pg(
        postgres_database.url,
        f"CREATE SCHEMA {p}bronze",
        f"CREATE TABLE {p}bronze.orders ({columns} timestamp)",
        f"INSERT INTO {p}bronze.orders VALUES {values}",
    )
    refine = (
        "  DEDUPLICATE ON (id) ORDER BY updated_at DESC\n"
        "  EXPECT total >= 0 ELSE DROP EXPECT status <> 'weird' ELSE FLAG;\n"
    )
    text = (
        f"CONNECTION shop = '{mariadb_database.url}';\n"
        f"CONNECTION wh = '{postgres_database.url}';\n"
        f"STAGE wh.{p}streamed.orders FROM shop.orders\n{refine}"
        f"STAGE wh.{p}local.orders FROM wh.{p}bronze.orders\n{refine}"
    )
    (tmp_path / "stages.smql").write_text(text, encoding="utf-8")
    items = summary_of(Migrate(tmp_path / "stages.smql", tmp_path / "state"))
    assert items[f"wh.{p}streamed.orders"]["stage"]["runs"] == "streamed from shop into wh"
    assert items[f"wh.{p}local.orders"]["stage"]["runs"] == "sql in wh"
    assert items[f"wh.{p}streamed.orders/input"]["state"] == "finished"
    columns_read = "id, customer_id, total, status, updated_at, _quality_flags"
    streamed = pg(
        postgres_database.url, f"SELECT {columns_read} FROM {p}streamed.orders ORDER BY id"
    )
    local = pg(postgres_database.url, f"SELECT {columns_read} FROM {p}local.orders ORDER BY id")
    assert streamed == local
    assert [r[0] for r in streamed] == [1, 4]
