"""A full disk, simulated with tiny tmpfs mounts (the tests run as root): under the reject file,
and under the destination's table (a PostgreSQL tablespace). The item fails with a message that
says what is full, nothing is committed past the last good batch, and a rerun once there is
room again converges."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.faults._support import (
    assert_consistent,
    assert_same_rows,
    execute,
    fetch,
    finish,
    people_texts,
    start,
    summary_item,
    table_texts,
)
from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import BATCH, ROWS, Migrate, write_people, write_plan

pytestmark = pytest.mark.postgres


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@contextmanager
def tmpfs(directory: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on `directory` (made if need be), unmounted afterwards; the
    test is skipped when this system cannot mount one (not root, no mount privilege)."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False, capture_output=True)


def grow(directory: Path, size: str) -> None:
    remounted = _mount("-o", f"remount,size={size}", str(directory))
    assert remounted.returncode == 0, remounted.stderr


def write_with_bad_rows(directory: Path) -> tuple[Path, list[int]]:
    """3000 rows with long names, every 10th one with an amount that is not a number; the plan
    rejects them (ON ERROR reject). The bad rows' ids."""
    bad = []
    with (directory / "loose.csv").open("w", encoding="utf-8") as out:
        out.write("id,name,amount\n")
        for i in range(1, 3001):
            amount = f"{i}.25"
            if i % 10 == 0:
                amount = "oops"
                bad.append(i)
            out.write(f"{i},{'n' * 300} {i},{amount}\n")
    return directory / "loose.csv", bad


def test_a_full_disk_under_the_reject_file_fails_the_item_naming_the_file(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    _, bad = write_with_bad_rows(tmp_path)
    plan = tmp_path / "loose.smql"
    plan.write_text(
        f"CONNECTION dest = '{url}';\n"
        f"MIGRATE FILE 'loose.csv' (HEADER) INTO dest.loose ON ERROR reject BATCH SIZE {BATCH}\n"
        "  CAST COLUMN id TO bigint, COLUMN amount TO numeric(10,2);\n"
    )
    migrate = Migrate(plan, tmp_path / "state")
    summary = tmp_path / "summary.json"
    extra = ("--reject-dir", str(tmp_path / "rejects"), "--summary", str(summary))
    with tmpfs(tmp_path / "rejects", "64k") as rejects:
        code, log = finish(start(migrate, extra=extra))
        assert code == 4, log[-3000:]
        item = summary_item(summary)
        reject_file = rejects / "dest.loose.rejects.jsonl"
        assert item["state"] == "failed"
        assert f"cannot write its reject file {reject_file}" in item["message"]
        assert "No space left on device" in item["message"]
        committed = assert_consistent(url, "loose", "dest.loose")
        assert 0 < committed < 2700  # it failed mid-item; what was committed is counted
        grow(rejects, "2m")
        code, log = finish(start(migrate, extra=extra))
        assert code == 0, log[-3000:]
        item = summary_item(summary)
        assert (item["rows_written"], item["rows_rejected"]) == (2700, 300)
        lines = [json.loads(x) for x in reject_file.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["position"] for line in lines) == [i + 1 for i in bad]  # once each
    rows = fetch(url, "SELECT id FROM loose ORDER BY id")
    assert [r["id"] for r in rows] == [i for i in range(1, 3001) if i % 10]
    assert assert_consistent(url, "loose", "dest.loose") == 2700


@contextmanager
def tiny_tablespace(database: ThrowawayDatabase, size: str) -> Iterator[tuple[str, Path]]:
    """A tablespace on a tmpfs of `size` that the PostgreSQL server (on this host, running as
    the `postgres` user) can write; dropped and unmounted afterwards."""
    if database.server.host not in ("127.0.0.1", "localhost"):
        pytest.skip("the PostgreSQL server is not on this host: its disk cannot be filled")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user on this host to own the tablespace's directory")
    parent = Path(tempfile.mkdtemp(prefix="stratum-ts-", dir="/tmp"))
    parent.chmod(0o755)  # pytest's tmp_path is root's only: the server could not reach it
    name = f"tiny_{parent.name.rsplit('-', 1)[-1].lower()}"
    try:
        with tmpfs(parent / "space", size) as space:
            os.chown(space, owner.pw_uid, owner.pw_gid)
            space.chmod(0o700)
            execute(database.url, f"CREATE TABLESPACE {name} LOCATION '{space}'")
            try:
                yield name, space
            finally:
                execute(database.url, "DROP TABLE IF EXISTS people_full")
                execute(database.url, f"DROP TABLESPACE IF EXISTS {name}")
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_a_full_tablespace_fails_the_item_clearly_and_a_rerun_after_freeing_space_converges(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    with tiny_tablespace(postgres_database, "256k") as (tablespace, space):
        execute(
            url,
            "CREATE TABLE people_full (id bigint, name text, amount numeric(10,2)) "
            f"TABLESPACE {tablespace}",
        )
        migrate = Migrate(write_plan(tmp_path, url, "people_full"), tmp_path / "state")
        summary = tmp_path / "summary.json"
        code, log = finish(start(migrate, extra=("--summary", str(summary))))
        assert code == 4, log[-3000:]
        item = summary_item(summary)
        assert item["state"] == "failed"
        assert item["message"].startswith(f"writing {BATCH} rows to dest.people_full: ")
        assert "could not extend file" in item["message"]
        assert "No space left on device" in item["message"]
        assert item["retries"] == 0  # a full disk is not transient: no retry
        committed = assert_consistent(url, "people_full", "dest.people_full")
        assert 0 < committed < ROWS
        grow(space, "8m")
        code, log = finish(start(migrate, extra=("--summary", str(summary))))
        assert code == 0, log[-3000:]
        expected = people_texts(write_people(tmp_path / "expected.csv"))
        actual = table_texts(url, "people_full", ("amount", "id", "name"))
        assert_same_rows(expected, actual)
        assert assert_consistent(url, "people_full", "dest.people_full") == ROWS
