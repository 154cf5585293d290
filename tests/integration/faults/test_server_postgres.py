"""Faults the PostgreSQL server itself causes mid-item: Stratum's backend terminated, a lock
held by another session, a statement_timeout that cancels the write. Each run ends with every
row loaded once, or paused with a clear message and every committed row counted."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import asyncpg
import pytest

from tests.integration.faults._support import (
    assert_consistent,
    assert_same_rows,
    errors,
    execute,
    fetch,
    finish,
    people_texts,
    start,
    summary_item,
    table_texts,
    wait_for_batches,
    wait_for_sql,
    window,
)
from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import BATCH, ROWS, Migrate, write_people, write_plan

pytestmark = pytest.mark.postgres

MAX_PAUSES = 3  # stratum/runtime/pipeline.py
STRATUM_IN_TRANSACTION = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'stratum' "
    "AND datname = current_database() AND state = 'idle in transaction')"
)
STRATUM_WAITS_FOR_A_LOCK = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'stratum' "
    "AND datname = current_database() AND wait_event_type = 'Lock')"
)


def people(tmp_path: Path, database: ThrowawayDatabase, table: str) -> Migrate:
    return Migrate(write_plan(tmp_path, database.url, table), tmp_path / "state")


def assert_exact(database: ThrowawayDatabase, table: str, tmp_path: Path) -> None:
    expected = people_texts(write_people(tmp_path / "expected.csv"))
    assert_same_rows(expected, table_texts(database.url, table, ("amount", "id", "name")))
    assert assert_consistent(database.url, table, f"dest.{table}") == ROWS


async def hold_lock(url: str, table: str, process: subprocess.Popen[str], seconds: float) -> bool:
    """Lock `table` (ACCESS EXCLUSIVE) in a transaction of another session for `seconds`, or
    until the run ends when `seconds` is 0; whether Stratum was seen waiting for the lock."""
    holder = await asyncpg.connect(url)
    watcher = await asyncpg.connect(url)
    seen = False
    try:
        async with holder.transaction():
            await holder.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
            deadline = time.monotonic() + (seconds or 60)
            while time.monotonic() < deadline and process.poll() is None:
                seen = seen or bool(await watcher.fetchval(STRATUM_WAITS_FOR_A_LOCK))
                await asyncio.sleep(0.02)
    finally:
        await holder.close()
        await watcher.close()
    return seen


def test_a_terminated_backend_mid_transaction_reconnects_and_continues(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    """pg_terminate_backend of Stratum's connection while a batch's rows are sent and not yet
    committed: that transaction is lost, the batch is written again on a new connection."""
    table = "people_terminated"
    url = postgres_database.url
    migrate = people(tmp_path, postgres_database, table)
    summary = tmp_path / "summary.json"
    process = start(migrate, "before_commit=sleep:0.5@5", extra=("--summary", str(summary)))
    wait_for_batches(url, f"dest.{table}", 4, process)
    wait_for_sql(url, STRATUM_IN_TRANSACTION, process)  # batch 5's, held before its COMMIT
    terminated = fetch(
        url,
        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity "
        "WHERE application_name = 'stratum' AND datname = current_database()",
    )
    assert terminated
    assert all(row["done"] for row in terminated)
    code, log = finish(process)
    assert code == 0, log[-3000:]
    (error,) = errors(log)
    assert error["transient"]
    assert "terminating connection due to administrator command" in error["error"]
    item = summary_item(summary)
    assert (item["rows_written"], item["retries"]) == (ROWS, 1)
    assert_exact(postgres_database, table, tmp_path)


def test_a_lock_held_by_another_session_makes_the_run_wait_then_finish(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    table = "people_locked_out"
    url = postgres_database.url
    migrate = people(tmp_path, postgres_database, table)
    summary = tmp_path / "summary.json"
    process = start(migrate, window(4), extra=("--summary", str(summary)))
    wait_for_batches(url, f"dest.{table}", 4, process)
    held = time.monotonic()
    assert asyncio.run(hold_lock(url, table, process, seconds=1.5))  # Stratum waited on it
    assert process.poll() is None  # still waiting when the lock was released
    code, log = finish(process)
    assert code == 0, log[-3000:]
    assert time.monotonic() - held >= 1.5
    assert errors(log) == []  # it waited: nothing failed, nothing was retried
    assert summary_item(summary)["retries"] == 0
    assert_exact(postgres_database, table, tmp_path)


def test_a_statement_timeout_under_a_held_lock_is_retried_then_pauses_the_item(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    """With statement_timeout = 100ms and the target locked by another session for longer
    than the whole retry schedule, every write is cancelled: retried (transient), then the
    breaker opens and the item pauses with the server's message. Nothing of the cancelled
    batches is there; a rerun once the lock is gone loads every row once."""
    table = "people_statement_timeout"
    url = postgres_database.url
    database = postgres_database.name
    migrate = people(tmp_path, postgres_database, table)
    summary = tmp_path / "summary.json"
    execute(url, f'ALTER DATABASE "{database}" SET statement_timeout = 100')
    try:
        process = start(migrate, window(4), extra=("--summary", str(summary)))
        wait_for_batches(url, f"dest.{table}", 4, process)
        asyncio.run(hold_lock(url, table, process, seconds=0))
        code, log = finish(process)
    finally:
        execute(url, f'ALTER DATABASE "{database}" RESET statement_timeout')
    assert code == 4, log[-3000:]
    retried = errors(log)
    assert [e["attempt"] for e in retried] == [1, 2, 3]
    assert all("canceling statement due to statement timeout" in e["error"] for e in retried)
    item = summary_item(summary)
    assert item["state"] == "paused"
    assert item["message"].startswith("paused by the circuit breaker: ")
    assert item["message"].endswith("canceling statement due to statement timeout")
    assert item["rows_written"] == 4 * BATCH
    assert assert_consistent(url, table, f"dest.{table}") == 4 * BATCH
    done = migrate.run()
    assert done.returncode == 0, done.stderr[-3000:]
    assert_exact(postgres_database, table, tmp_path)
