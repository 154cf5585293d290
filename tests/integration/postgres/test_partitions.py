"""PARTITIONS n: a table read and written as n key ranges at once, each with its own cursor and
checkpoint; killed in the middle and run again, the target holds exactly the source's rows."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import Migrate
from tests.support.sql import my, pg

ROWS = 3000


def write_plan(tmp_path: Path, source: str, target: str, item: str) -> Migrate:
    path = tmp_path / "partitions.smql"
    path.write_text(f"CONNECTION src = '{source}';\nCONNECTION dst = '{target}';\n{item};\n")
    return Migrate(path, tmp_path / "state")


def finished(stderr: str) -> dict[str, dict[str, object]]:
    events = [json.loads(line) for line in stderr.splitlines() if '"item_finished"' in line]
    return {str(e["item"]): e for e in events}


def test_partitions_killed_and_rerun_are_exact(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    pg(
        url,
        "CREATE TABLE src_orders (id int PRIMARY KEY, amount numeric(10,2), note text)",
        f"INSERT INTO src_orders SELECT i, i * 1.25, 'n' || i FROM generate_series(1, {ROWS}) i",
    )
    migrate = write_plan(
        tmp_path, url, url, "MIGRATE src.src_orders INTO dst.dst_orders PARTITIONS 4 BATCH SIZE 100"
    )
    killed = migrate.run("after_commit=kill@9")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # the ranges were recorded before any row: three boundaries cutting 3000 rows in four
    (cursor,) = pg(url, "SELECT cursor FROM stratum.checkpoints WHERE item = 'dst.dst_orders'")[0]
    assert json.loads(cursor) == [[750], [1500], [2250]]
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    items = finished(done.stderr)
    assert {f"dst.dst_orders#{n}" for n in range(1, 5)} <= set(items)
    assert items["dst.dst_orders"]["state"] == "finished"
    assert items["dst.dst_orders"]["rows_written"] == ROWS  # the ranges' sum, over both runs
    assert pg(url, "SELECT count(*), count(DISTINCT id), sum(amount) FROM dst_orders") == pg(
        url, "SELECT count(*), count(DISTINCT id), sum(amount) FROM src_orders"
    )
    again = migrate.run()
    assert again.returncode == 0
    skipped = finished(again.stderr)
    assert "nothing to do" in str(skipped["dst.dst_orders#1"]["message"])
    # the finished item reports what its parts loaded, not zeros
    assert (skipped["dst.dst_orders"]["state"], skipped["dst.dst_orders"]["rows_written"]) == (
        "skipped",
        ROWS,
    )


def test_partitions_of_a_composite_key_from_mariadb(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    values = ",".join(f"({i % 7}, {i}, 'v{i}')" for i in range(1, 1201))
    my(
        mariadb_database.url,
        "CREATE TABLE pairs (a int NOT NULL, b int NOT NULL, v varchar(10), PRIMARY KEY (a, b))",
        f"INSERT INTO pairs VALUES {values}",
    )
    migrate = write_plan(
        tmp_path,
        mariadb_database.url,
        postgres_database.url,
        "MIGRATE src.pairs INTO dst.pairs PARTITIONS 3 BATCH SIZE 50",
    )
    killed = migrate.run("after_commit=kill@7")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    rows = pg(postgres_database.url, "SELECT a, b, v FROM pairs ORDER BY a, b")
    assert rows == sorted((i % 7, i, f"v{i}") for i in range(1, 1201))


def test_partitions_of_a_table_without_a_key_are_refused_with_the_reason(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    pg(url, "CREATE TABLE heap (x int)", "INSERT INTO heap VALUES (1), (2)")
    migrate = write_plan(tmp_path, url, url, "MIGRATE src.heap INTO dst.heap_copy PARTITIONS 2")
    failed = migrate.run()
    assert failed.returncode == 4
    message = str(finished(failed.stderr)["dst.heap_copy"]["message"])
    assert "PARTITIONS needs a primary or unique key" in message
    assert pg(url, "SELECT to_regclass('heap_copy')") == [(None,)]
