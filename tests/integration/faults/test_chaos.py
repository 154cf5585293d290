"""Randomized crash runs, the short version: `stratum migrate` of a multi-table plan (MariaDB
with PARTITIONS 2, PostgreSQL, a CSV file into keyless tables under ON ERROR reject) SIGKILLed
at seeded random moments, rerun until it finishes, then checked row by row
(tests/support/chaos.py). `make chaos` runs the long version."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.chaos import check_rejects, check_tables, prepare, run_chaos
from tests.support.databases import ThrowawayDatabase
from tests.support.sql import pg

pytestmark = [pytest.mark.postgres, pytest.mark.mariadb]

SEED = 20261122
KILLS = 6  # the short version; `make chaos` runs 200 and more
ROWS = 1000


@pytest.mark.timeout(300)
def test_random_kills_across_a_multi_table_plan_leave_an_exact_copy(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    plan = prepare(postgres_database.url, mariadb_database.url, tmp_path, rows=ROWS, batch=25)
    report = run_chaos(plan, seed=SEED, kills=KILLS)
    assert report["differences"] == [], "\n".join(report["differences"])
    assert report["kills"] == KILLS
    assert report["reruns"] >= KILLS
    bad = report["rejected_per_file_item"]
    assert report["rows"] == {
        "orders": ROWS,
        "events": ROWS,
        "items_full": ROWS - bad,
        "items_log": ROWS - bad,
    }
    # some round ended with a run that resumed after a kill: its totals were the whole load's
    assert report["carried"] >= 1, report

    # and the checks are not blind: a lost, a changed and a doubled row, a reject twice
    pg(
        plan.pg_url,
        "DELETE FROM orders WHERE id = 7",
        "UPDATE events SET kind = 'changed' WHERE id = 1 AND seq = 1",
        "INSERT INTO items_log SELECT * FROM items_log WHERE sku = 'S-1'",
    )
    rejects = next((tmp_path / "state").rglob("dst.items_full.rejects.jsonl"))
    with rejects.open("a", encoding="utf-8") as out:
        out.write(rejects.read_text(encoding="utf-8").splitlines()[0] + "\n")
    counts, differences = asyncio.run(check_tables(plan))
    differences += check_rejects(plan, tmp_path / "state")
    assert counts == {**report["rows"], "orders": ROWS - 1, "items_log": ROWS - bad + 1}
    expected = [
        "orders: 1 missing key(s), e.g. ['[\"7\"]']",
        f"orders: {ROWS - 1} rows, the source has {ROWS}",
        'events: 1 different key(s), e.g. [\'["1", "1"]\']',
        f"items_log: {ROWS - bad} rows expected, {ROWS - bad + 1} found; missing [], extra [",
        "rejects: dst.items_full: lines [",
    ]
    assert len(differences) == len(expected), differences
    for found, start in zip(differences, expected, strict=True):
        assert found.startswith(start), (found, start)
