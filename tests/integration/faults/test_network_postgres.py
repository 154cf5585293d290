"""Connection faults between `stratum migrate` and PostgreSQL, injected by a loopback proxy: a
reset mid-COPY and at COMMIT is retried and never loads a row twice (even into a target without
a primary key); a destination that refuses every connection opens the circuit breaker after
exactly 4 consecutive failures, and a successful probe closes it again."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
    wait_for_pause,
    window,
)
from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import BATCH, ROWS, Migrate, write_people, write_plan
from tests.support.proxy import DOWN, UP, Proxy

pytestmark = pytest.mark.postgres

COLUMNS = ("amount", "id", "name")
MAX_PAUSES = 3  # stratum/runtime/pipeline.py: the breaker's pauses before the item gives up


def people_plan(
    tmp_path: Path, database: ThrowawayDatabase, proxy: Proxy, table: str, keyed: bool
) -> Migrate:
    """The people CSV into `table` through the proxy: with `keyed`, an existing table whose
    primary key is id; else one the engine creates from the file, which has no key at all."""
    if keyed:
        execute(
            database.url,
            f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text, amount numeric(10,2))',
        )
    return Migrate(write_plan(tmp_path, proxy.url(database.url), table), tmp_path / "state")


def assert_exact(database: ThrowawayDatabase, table: str, tmp_path: Path, keyed: bool) -> None:
    expected = people_texts(write_people(tmp_path / "expected.csv"))
    assert_same_rows(expected, table_texts(database.url, table, COLUMNS), 1 if keyed else None)
    assert assert_consistent(database.url, table, f"dest.{table}") == ROWS
    keys = fetch(
        database.url,
        "SELECT count(*) AS n FROM pg_index WHERE indrelid = $1::regclass AND indisprimary",
        table,
    )
    assert keys[0]["n"] == (1 if keyed else 0)  # the case really is with / without a key


KEYED = pytest.mark.parametrize("keyed", [True, False], ids=["primary_key", "no_key"])


@KEYED
def test_a_reset_mid_copy_is_retried_and_loads_every_row_once(
    tmp_path: Path, postgres_database: ThrowawayDatabase, pg_proxy: Proxy, keyed: bool
) -> None:
    table = f"people_copy_{'keyed' if keyed else 'bare'}"
    migrate = people_plan(tmp_path, postgres_database, pg_proxy, table, keyed)
    process = start(migrate, window(4), extra=("--summary", str(tmp_path / "summary.json")))
    wait_for_batches(postgres_database.url, f"dest.{table}", 4, process)
    cut = pg_proxy.cut_after(2000, UP, once_seen=b"COPY ")  # a batch's rows half sent
    code, log = finish(process)
    assert code == 0, log[-3000:]
    assert cut.struck is not None, pg_proxy
    (error,) = errors(log)
    assert error["transient"]
    assert error["attempt"] == 1
    item = summary_item(tmp_path / "summary.json")
    assert (item["rows_read"], item["rows_written"], item["retries"]) == (ROWS, ROWS, 1)
    assert_exact(postgres_database, table, tmp_path, keyed)


@pytest.mark.parametrize(
    ("where", "keyed"),
    [("server_committed", True), ("server_committed", False), ("commit_lost", False)],
)
def test_a_reset_at_commit_never_loads_a_batch_twice(
    tmp_path: Path, postgres_database: ThrowawayDatabase, pg_proxy: Proxy, where: str, keyed: bool
) -> None:
    """server_committed: the server committed the batch, and the connection is reset before
    its reply reaches the client, so the client cannot tell; commit_lost: the client's COMMIT
    never reaches the server, which rolls the batch back."""
    table = f"people_{where}_{'keyed' if keyed else 'bare'}"
    migrate = people_plan(tmp_path, postgres_database, pg_proxy, table, keyed)
    process = start(migrate, window(4), extra=("--summary", str(tmp_path / "summary.json")))
    wait_for_batches(postgres_database.url, f"dest.{table}", 4, process)
    if where == "server_committed":
        cut = pg_proxy.cut_at(b"COMMIT\x00", DOWN)  # CommandComplete of the COMMIT
    else:
        cut = pg_proxy.cut_at(b"COMMIT", UP)
    code, log = finish(process)
    assert code == 0, log[-3000:]
    assert cut.struck is not None, pg_proxy
    (error,) = errors(log)
    assert error["transient"]
    item = summary_item(tmp_path / "summary.json")
    assert (item["rows_read"], item["rows_written"], item["batches"]) == (ROWS, ROWS, ROWS // BATCH)
    assert_exact(postgres_database, table, tmp_path, keyed)


def refuse_after(
    tmp_path: Path,
    database: ThrowawayDatabase,
    proxy: Proxy,
    table: str,
    *,
    batch: int,
    cooldown: float,
) -> tuple[Migrate, subprocess.Popen[str]]:
    """Start a run that holds still after its `batch`th batch; meanwhile the proxy starts
    refusing every connection and resets the open one, so what comes next meets a dead
    server."""
    migrate = people_plan(tmp_path, database, proxy, table, keyed=False)
    process = start(
        migrate,
        window(batch),
        env={"STRATUM_BREAKER_COOLDOWN": str(cooldown)},
        extra=("--summary", str(tmp_path / "summary.json")),
    )
    wait_for_batches(database.url, f"dest.{table}", batch, process)
    proxy.refuse()
    proxy.reset()
    return migrate, process


def test_the_breaker_opens_after_exactly_four_failures_and_the_item_pauses(
    tmp_path: Path, postgres_database: ThrowawayDatabase, pg_proxy: Proxy
) -> None:
    """The 4th consecutive failure opens the breaker: 3 retries are logged (attempts 1-3),
    none for a 4th; after each of the MAX_PAUSES pauses one probe is refused, then the item
    gives up, paused, and the run exits 4. asyncpg's pool also reconnects on its own in the
    background (its connection floor, asyncpg 0.32), so the proxy sees at least as many
    connections as the engine made, not exactly as many."""
    table = "people_breaker_open"
    migrate, process = refuse_after(
        tmp_path, postgres_database, pg_proxy, table, batch=3, cooldown=0.3
    )
    code, log = finish(process)
    assert code == 4, log[-3000:]  # engine.md: a paused item fails the run (exit 4)
    assert [e["attempt"] for e in errors(log)] == [1, 2, 3]
    item = summary_item(tmp_path / "summary.json")
    assert item["state"] == "paused"
    assert item["message"].startswith(
        f"paused by the circuit breaker: connection: circuit opened after {4 + MAX_PAUSES} "
        "consecutive transient failures, the last: "
    ), item["message"]
    assert pg_proxy.refused >= 4 + MAX_PAUSES
    assert item["rows_written"] == 3 * BATCH  # what was committed stays, counted
    assert assert_consistent(postgres_database.url, table, f"dest.{table}") == 3 * BATCH
    pg_proxy.heal()
    done = migrate.run()
    assert done.returncode == 0, done.stderr[-3000:]
    assert_exact(postgres_database, table, tmp_path, keyed=False)


@pytest.mark.parametrize("batch", [3, ROWS // BATCH], ids=["mid_item", "final_checkpoint"])
def test_a_successful_probe_closes_the_breaker_and_the_run_finishes(
    tmp_path: Path, postgres_database: ThrowawayDatabase, pg_proxy: Proxy, batch: int
) -> None:
    """The breaker opens (the item is recorded paused, "circuit open"), the server comes back
    during the cooldown, the probe succeeds and the run goes on to the end. final_checkpoint:
    the breaker opens while the finished checkpoint is saved, after the last batch."""
    table = f"people_breaker_closes_{batch}"
    migrate, process = refuse_after(
        tmp_path, postgres_database, pg_proxy, table, batch=batch, cooldown=0.5
    )
    assert wait_for_pause(migrate, f"dest.{table}", process).startswith("circuit open")
    pg_proxy.heal()
    code, log = finish(process)
    assert code == 0, log[-3000:]
    assert [e["attempt"] for e in errors(log)] == [1, 2, 3]  # opened by the 4th, then probed
    item = summary_item(tmp_path / "summary.json")
    assert item["state"] == "finished"
    assert item["retries"] == 3
    assert_exact(postgres_database, table, tmp_path, keyed=False)
