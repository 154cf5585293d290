"""The bundled medallion and feature examples, as a user runs them: on the embedded DuckDB
default, and inside PostgreSQL when the plan's URL variable names a database. Both databases
end with the same silver, gold, feature and training rows; a second run has nothing to do."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support import databases as db
from tests.support.databases import DatabaseServer
from tests.support.sql import pg

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

#: The tables each example builds, and the order to compare their rows in.
MEDALLION = {
    "silver.orders": "SELECT order_id, customer_id, status, amount, _quality_flags "
    "FROM silver.orders ORDER BY order_id",
    "silver.orders_quarantine": "SELECT order_id, _failed_rules FROM silver.orders_quarantine "
    "ORDER BY order_id",
    "silver.customers": "SELECT customer_id, full_name, email, country FROM silver.customers "
    "ORDER BY customer_id",
    "silver.order_events": "SELECT event_id, event_type FROM silver.order_events ORDER BY 1",
    "gold.daily_revenue": "SELECT day, country, orders, revenue FROM gold.daily_revenue "
    "ORDER BY day, country",
    "gold.order_events_per_type": "SELECT event_type, events, orders "
    "FROM gold.order_events_per_type ORDER BY 1",
}
FEATURES = {
    "features.customer_orders": "SELECT customer_id, ordered_at, orders_7d, spend_7d, "
    "largest_order_30d, orders_total, last_status FROM features.customer_orders ORDER BY 1, 2",
    "training.churn": "SELECT customer_id, as_of, churned, orders_7d, spend_7d, "
    "largest_order_30d, orders_total, last_status FROM training.churn ORDER BY 1, 2",
}


def migrate(
    plan: Path, state: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    summary = plan.parent / f"{plan.stem}.summary.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "stratum", "migrate", str(plan)),
            *("--state-dir", str(state), "--summary", str(summary)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return done, {i["item"]: i for i in json.loads(summary.read_text())["items"]}


def duck_rows(path: Path, queries: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return {name: _plain(conn.execute(sql).fetchall()) for name, sql in queries.items()}


def pg_rows(url: str, queries: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    return {name: _plain(pg(url, sql)) for name, sql in queries.items()}


def _plain(rows: list[Any]) -> list[tuple[Any, ...]]:
    """Rows with numbers compared by value (DuckDB's avg is a double, a sum a HUGEINT)."""
    return [tuple(_number(v) for v in row) for row in rows]


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    return Decimal(str(value)).normalize()


@pytest.fixture
def fresh_postgres(
    request: pytest.FixtureRequest, postgres_server: DatabaseServer
) -> Iterator[str]:
    """A PostgreSQL database of the test's own (the examples share item names), dropped after."""
    name = db.unique_database_name(request.node.name)
    asyncio.run(db.create_postgres_database(name, postgres_server))
    try:
        yield postgres_server.url_for(name)
    finally:
        asyncio.run(db.drop_postgres_database(name, postgres_server))


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns("*.duckdb*"))
    return tmp_path / "examples"


def test_medallion_on_duckdb_and_postgres(
    examples: Path, tmp_path: Path, fresh_postgres: str
) -> None:
    plan = examples / "medallion.smql"
    _, items = migrate(plan, tmp_path / "state-duckdb")
    orders = items["lake.silver.orders"]["stage"]
    assert (orders["records_in"], orders["records_out"], orders["deduplicated"]) == (51, 43, 3)
    assert (orders["dropped"], orders["quarantined"], orders["flagged"]) == (3, 2, 1)
    assert orders["runs"] == "sql in lake"
    on_duckdb = duck_rows(examples / "medallion.duckdb", MEDALLION)
    assert len(on_duckdb["silver.orders"]) == 43
    assert [r[0] for r in on_duckdb["silver.orders_quarantine"]] == [50009, 50041]
    flagged = [r for r in on_duckdb["silver.orders"] if r[4] is not None]
    assert [(r[2], r[4]) for r in flagged] == [
        ("pending_review", "status IN ('new', 'paid', 'shipped', 'delivered', 'cancelled')")
    ]
    assert all(r[3] >= 0 for r in on_duckdb["silver.orders"])

    again, _ = migrate(plan, tmp_path / "state-duckdb")
    assert again.stdout.count("skipped") == 8, again.stdout

    url = {"MEDALLION_URL": fresh_postgres}
    migrate(plan, tmp_path / "state-postgres", url)
    assert pg_rows(fresh_postgres, MEDALLION) == on_duckdb


def test_features_on_duckdb_and_postgres(
    examples: Path, tmp_path: Path, fresh_postgres: str
) -> None:
    plan = examples / "features.smql"
    _, items = migrate(plan, tmp_path / "state-duckdb")
    assert items["lake.training.churn"]["rows_written"] == 14
    on_duckdb = duck_rows(examples / "feature_store.duckdb", FEATURES)
    # the label of 1099 (no order ever) and of 1027 before its first order get no features
    no_history = [(r[0], str(r[1])) for r in on_duckdb["training.churn"] if r[3] is None]
    assert (1099, "2024-03-10 00:00:00") in no_history
    assert (1027, "2024-03-01 00:00:00") in no_history
    # never a feature row from after the label's moment
    points = {(r[0], r[1]) for r in on_duckdb["features.customer_orders"]}
    for row in on_duckdb["training.churn"]:
        if row[3] is not None:
            assert any(k == row[0] and t <= row[1] for k, t in points)

    migrate(plan, tmp_path / "state-postgres", {"FEATURES_URL": fresh_postgres})
    on_postgres = pg_rows(fresh_postgres, FEATURES)
    assert on_postgres == on_duckdb
