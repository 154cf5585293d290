"""MariaDB as the source, faults mid-read: a connection reset by the proxy, and the server
killing Stratum's connection (KILL). A keyed table's read is opened again after the last batch
it gave and the copy is exact; a table without a key cannot be resumed mid-read, so the item
fails and a rerun reloads it whole, still without a duplicate."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.faults._support import (
    assert_consistent,
    assert_same_rows,
    errors,
    finish,
    mariadb,
    start,
    summary_item,
    table_texts,
    wait_for_batches,
)
from tests.support.checksums import canonical_rows
from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import Migrate
from tests.support.proxy import DOWN, Proxy

pytestmark = [pytest.mark.postgres, pytest.mark.mariadb]

ROWS = 5000
BATCH = 200
COLUMNS = ("amount", "id", "name")


def make_source(database: ThrowawayDatabase, table: str, keyed: bool) -> None:
    key = "PRIMARY KEY" if keyed else ""
    mariadb(
        database.url,
        f"CREATE TABLE `{table}` (id int NOT NULL {key}, name varchar(200), amount decimal(10,2))",
        f"INSERT INTO `{table}` SELECT seq, concat('item ', seq, repeat(' é', seq % 40)), "
        f"seq * 1.25 FROM seq_1_to_{ROWS}",
    )


def plan(tmp_path: Path, source_url: str, target_url: str, table: str) -> Migrate:
    path = tmp_path / f"{table}.smql"
    path.write_text(
        f"CONNECTION src = '{source_url}';\n"
        f"CONNECTION dest = '{target_url}';\n"
        f"MIGRATE TABLE src.{table} INTO dest.{table} BATCH SIZE {BATCH};\n"
    )
    return Migrate(path, tmp_path / "state")


def assert_exact(
    source: ThrowawayDatabase, target: ThrowawayDatabase, table: str, keyed: bool
) -> None:
    expected = asyncio.run(canonical_rows(source.url, table, columns=COLUMNS))
    assert len(expected) == ROWS
    actual = table_texts(target.url, table, COLUMNS)
    assert_same_rows(expected, actual, key_at=1 if keyed else None)
    assert assert_consistent(target.url, table, f"dest.{table}") == ROWS


def test_a_reset_mid_read_opens_the_read_again_after_the_last_batch(
    tmp_path: Path,
    mariadb_database: ThrowawayDatabase,
    postgres_database: ThrowawayDatabase,
    mariadb_proxy: Proxy,
) -> None:
    table = "items_reset"
    make_source(mariadb_database, table, keyed=True)
    migrate = plan(tmp_path, mariadb_proxy.url(mariadb_database.url), postgres_database.url, table)
    cut = mariadb_proxy.cut_after(120_000, DOWN)  # a third of the rows: mid-result
    summary = tmp_path / "summary.json"
    code, log = finish(start(migrate, extra=("--summary", str(summary))))
    assert code == 0, log[-3000:]
    assert cut.struck is not None
    (error,) = errors(log)
    assert error["transient"]
    assert "Lost connection to MySQL server during query" in error["error"]
    assert mariadb_proxy.connections >= 3  # open, the read that was cut, the read again
    item = summary_item(summary)
    assert (item["rows_read"], item["rows_written"], item["retries"]) == (ROWS, ROWS, 1)
    started = [json.loads(x) for x in log.splitlines() if '"item_started"' in x]
    assert started[0]["resumed_from"] is None
    assert_exact(mariadb_database, postgres_database, table, keyed=True)


def test_a_reset_mid_read_of_a_table_without_key_fails_then_reloads_it_whole(
    tmp_path: Path,
    mariadb_database: ThrowawayDatabase,
    postgres_database: ThrowawayDatabase,
    mariadb_proxy: Proxy,
) -> None:
    table = "items_no_key"
    make_source(mariadb_database, table, keyed=False)
    migrate = plan(tmp_path, mariadb_proxy.url(mariadb_database.url), postgres_database.url, table)
    cut = mariadb_proxy.cut_after(120_000, DOWN)
    summary = tmp_path / "summary.json"
    code, log = finish(start(migrate, extra=("--summary", str(summary))))
    assert code == 4, log[-3000:]
    assert cut.struck is not None
    item = summary_item(summary)
    assert item["state"] == "failed"
    assert "Lost connection to MySQL server during query" in item["message"]
    assert_consistent(postgres_database.url, table, f"dest.{table}")
    done = migrate.run()
    assert done.returncode == 0, done.stderr[-3000:]
    assert_exact(mariadb_database, postgres_database, table, keyed=False)


def kill_the_reader(database: ThrowawayDatabase, process: subprocess.Popen[str]) -> int:
    """KILL Stratum's connection to `database` as soon as there is one; its id."""
    deadline = time.monotonic() + 20
    while process.poll() is None and time.monotonic() < deadline:
        found = mariadb(
            database.url,
            "SELECT id FROM information_schema.PROCESSLIST "
            f"WHERE db = '{database.name}' AND id <> CONNECTION_ID()",
        )
        if found:
            (connection,) = found[0]
            mariadb(database.url, f"KILL {int(connection)}")
            return int(connection)
        time.sleep(0.005)
    raise AssertionError("no connection of Stratum's to kill")


def test_a_killed_source_connection_reconnects_and_continues(
    tmp_path: Path, mariadb_database: ThrowawayDatabase, postgres_database: ThrowawayDatabase
) -> None:
    """KILL of Stratum's reading connection on the server once the item is under way (its
    target prepared, its read open). The server may have sent the whole result already, in
    which case the lost connection shows when the read commits: either way the read is opened
    again after the last batch it gave."""
    table = "items_killed"
    make_source(mariadb_database, table, keyed=True)
    migrate = plan(tmp_path, mariadb_database.url, postgres_database.url, table)
    summary = tmp_path / "summary.json"
    process = start(migrate, "after_read=sleep:0.02@*", extra=("--summary", str(summary)))
    wait_for_batches(postgres_database.url, f"dest.{table}", 0, process)
    kill_the_reader(mariadb_database, process)
    code, log = finish(process)
    assert code == 0, log[-3000:]
    (error,) = errors(log)
    assert error["transient"]
    item = summary_item(summary)
    assert (item["rows_read"], item["rows_written"], item["retries"]) == (ROWS, ROWS, 1)
    assert_exact(mariadb_database, postgres_database, table, keyed=True)
