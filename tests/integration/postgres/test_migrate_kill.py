"""kill -9 at every window of the checkpoint protocol, then a rerun: PostgreSQL ends up holding
exactly the source's rows, with no duplicates in a target that has no primary key."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import (
    ROWS,
    Migrate,
    events,
    wait_for_event,
    write_people,
    write_plan,
)

SEED = 20261121
KILLS = [  # (failpoint, batch): 4 windows x 4 seeded batches = 16 kills
    (point, at)
    for point in ("after_read", "before_commit", "after_commit", "after_state")
    for at in sorted(random.Random(f"{SEED}{point}").sample(range(1, ROWS // 250 + 1), 4))
]


def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(go())


def assert_exact(url: str, table: str, directory: Path) -> None:
    expected = write_people(directory / "expected.csv")
    rows = fetch(url, f'SELECT id, name, amount FROM "{table}" ORDER BY id')
    assert len(rows) == len(expected) == ROWS
    assert [tuple(r) for r in rows] == expected
    (checkpoint,) = fetch(url, f"SELECT * FROM stratum.checkpoints WHERE item = 'dest.{table}'")
    assert checkpoint["finished"]
    assert checkpoint["rows_read"] == checkpoint["rows_written"] == ROWS


@pytest.mark.parametrize(("point", "at"), KILLS, ids=[f"{p}@{a}" for p, a in KILLS])
def test_kill_in_a_window_then_rerun_is_exact(
    tmp_path: Path, postgres_database: ThrowawayDatabase, point: str, at: int
) -> None:
    table = f"people_{point}_{at}"
    migrate = Migrate(write_plan(tmp_path, postgres_database.url, table), tmp_path / "state")
    killed = migrate.run(f"{point}=kill@{at}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    assert_exact(postgres_database.url, table, tmp_path)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_kills_until_done_converge(
    tmp_path: Path, postgres_database: ThrowawayDatabase, seed: int
) -> None:
    table = f"people_random_{seed}"
    migrate = Migrate(write_plan(tmp_path, postgres_database.url, table), tmp_path / "state")
    kills = migrate.kill_randomly_until_done(seed, slow="after_commit=sleep:0.04@*")
    assert kills >= 1
    assert_exact(postgres_database.url, table, tmp_path)


def test_sigterm_drains_checkpoints_and_exits_5_then_resumes(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    table = "people_sigterm"
    # a queue of 2 batches, so that a stop leaves most of the file unread
    plan = write_plan(tmp_path, postgres_database.url, table, settings="SET queue_size = 2;")
    migrate = Migrate(plan, tmp_path / "state")
    process = migrate.start("after_commit=sleep:0.05@*")
    wait_for_event(process, "batch_processed")  # not a fixed sleep: start-up may be slow
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert process.returncode == 5
    (partial,) = fetch(postgres_database.url, f'SELECT count(*) AS n FROM "{table}"')
    assert 0 < partial["n"] < ROWS
    (checkpoint,) = fetch(
        postgres_database.url, f"SELECT * FROM stratum.checkpoints WHERE item = 'dest.{table}'"
    )
    assert checkpoint["rows_written"] == partial["n"]  # the checkpoint matches the data
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    assert_exact(postgres_database.url, table, tmp_path)


def test_a_second_signal_exits_at_once_and_stays_consistent(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    table = "people_two_signals"
    migrate = Migrate(write_plan(tmp_path, postgres_database.url, table), tmp_path / "state")
    process = migrate.start("after_commit=sleep:0.3@*")
    wait_for_event(process, "batch_processed")
    process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert time.monotonic() - sent < 2
    assert process.returncode != 0
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    assert_exact(postgres_database.url, table, tmp_path)


def test_a_deleted_state_store_is_rebuilt_from_the_destinations_checkpoint(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    """The destination's checkpoint wins: with the local state store gone, the rerun resumes
    after the last committed batch (it neither starts over nor guesses) and ends exact."""
    table = "people_state_deleted"
    migrate = Migrate(write_plan(tmp_path, postgres_database.url, table), tmp_path / "state")
    killed = migrate.run("after_commit=kill@9")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    shutil.rmtree(migrate.state_dir)
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    (started,) = events(done.stderr, "item_started")
    assert started["resumed_from"] == 9 * 250  # the cursor of a file: the records consumed
    assert_exact(postgres_database.url, table, tmp_path)


def test_a_second_migrate_is_refused_and_progress_reads_during_the_run(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    table = "people_locked"
    migrate = Migrate(write_plan(tmp_path, postgres_database.url, table), tmp_path / "state")
    process = migrate.start("after_commit=sleep:0.25@*")  # 24 batches: about 6 s
    try:
        wait_for_event(process, "batch_processed")  # it holds the lock by now
        second = migrate.run()
        assert second.returncode == 6
        assert "is being migrated by pid" in second.stderr
        progress = subprocess.run(
            [
                sys.executable,
                "-m",
                "stratum",
                "progress",
                str(migrate.plan),
                "--state-dir",
                str(migrate.state_dir),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert progress.returncode == 0, progress.stderr
        (items,) = json.loads(progress.stdout).values()
        assert items[0]["state"] in ("working", "idle", "finished")
    finally:
        process.communicate(timeout=60)
    assert process.returncode == 0
    assert_exact(postgres_database.url, table, tmp_path)


def test_bad_rows_are_rejected_with_line_numbers_and_the_accounting_holds(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    (tmp_path / "bad.csv").write_text(
        "id,amount\n1,1.50\n2,oops\n3,2.25,extra\n\n4,\n5,9999999999.99\n6,3.00\n"
    )
    plan = tmp_path / "bad.smql"
    plan.write_text(
        f"CONNECTION dest = '{postgres_database.url}';\n"
        "MIGRATE FILE 'bad.csv' (HEADER) INTO dest.bad ON ERROR reject\n"
        "  CAST COLUMN id TO bigint, COLUMN amount TO numeric(10,2);\n"
    )
    migrate = Migrate(plan, tmp_path / "state")
    summary_path = tmp_path / "summary.json"
    result = migrate.run()
    assert result.returncode == 0, result.stderr
    subprocess.run(
        [*migrate.command(), "--restart", "--summary", str(summary_path)],
        env=migrate.env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    (item,) = json.loads(summary_path.read_text())["items"]
    assert (item["rows_read"], item["rows_written"], item["rows_rejected"]) == (6, 3, 3)
    assert item["rows_read"] == item["rows_written"] + item["rows_rejected"] + item["rows_filtered"]
    lines = [json.loads(x) for x in Path(item["reject_file"]).read_text().splitlines()]
    assert [x["position"] for x in lines] == [3, 4, 7]
    rows = fetch(postgres_database.url, "SELECT id, amount FROM bad ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, Decimal("1.50")), (4, None), (6, Decimal("3.00"))]


def test_rows_a_constraint_refuses_are_isolated_and_the_rest_commit_once(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    fetch(
        postgres_database.url,
        "CREATE TABLE strict (id bigint PRIMARY KEY, amount numeric(10,2) NOT NULL "
        "CHECK (amount >= 0))",
    )
    (tmp_path / "strict.csv").write_text("id,amount\n1,1.00\n2,-5.00\n3,3.00\n1,9.00\n4,\n5,5.00\n")
    plan = tmp_path / "strict.smql"
    plan.write_text(
        f"CONNECTION dest = '{postgres_database.url}';\n"
        "MIGRATE FILE 'strict.csv' (HEADER) INTO dest.strict MODE append ON ERROR reject\n"
        "  CAST COLUMN id TO bigint, COLUMN amount TO numeric(10,2);\n"
    )
    migrate = Migrate(plan, tmp_path / "state")
    summary_path = tmp_path / "summary.json"
    subprocess.run(
        [*migrate.command(), "--summary", str(summary_path)],
        env=migrate.env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    (item,) = json.loads(summary_path.read_text())["items"]
    assert (item["rows_read"], item["rows_written"], item["rows_rejected"]) == (6, 3, 3)
    rejects = [json.loads(x) for x in Path(item["reject_file"]).read_text().splitlines()]
    assert sorted(x["position"] for x in rejects) == [3, 5, 6]  # check, duplicate key, not null
    rows = fetch(postgres_database.url, "SELECT id, amount FROM strict ORDER BY id")
    assert [tuple(r) for r in rows] == [
        (1, Decimal("1.00")),
        (3, Decimal("3.00")),
        (5, Decimal("5.00")),
    ]


def test_rows_are_coerced_to_an_existing_targets_column_types(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    fetch(
        postgres_database.url,
        "CREATE TABLE typed (id bigint, amount numeric(8,2), at timestamptz, note text)",
    )
    (tmp_path / "typed.csv").write_text(
        "id,amount,at\n1,2.50,2024-01-02 03:04:05+00\n2,lots,2024-01-02\n3,,\n"
    )
    plan = tmp_path / "typed.smql"
    plan.write_text(
        f"CONNECTION dest = '{postgres_database.url}';\n"
        "MIGRATE FILE 'typed.csv' (HEADER) INTO dest.typed MODE append ON ERROR reject;\n"
    )
    migrate = Migrate(plan, tmp_path / "state")
    result = migrate.run()
    assert result.returncode == 0, result.stderr
    rows = fetch(postgres_database.url, "SELECT id, amount, at, note FROM typed ORDER BY id")
    assert [(r["id"], r["amount"], r["note"]) for r in rows] == [
        (1, Decimal("2.50"), None),
        (3, None, None),
    ]
    assert rows[0]["at"].isoformat() == "2024-01-02T03:04:05+00:00"
