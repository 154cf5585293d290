"""The state store across processes: one writer per plan, and progress read during a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from stratum.errors import StateLocked
from stratum.state import ItemRecord, ItemState, StateStore, _environment

WORKER = Path(__file__).with_name("_worker.py")
REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "shop.smql"
    path.write_text("-- a plan\n")
    return path


@contextmanager
def worker(*args: object) -> Iterator[subprocess.Popen[str]]:
    """Run _worker.py in a fresh interpreter (not a fork: LMDB handles must not cross one)."""
    command = [sys.executable, str(WORKER), *map(str, args)]
    with subprocess.Popen(
        command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def ask(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Have the reader read the store once: the items it saw, and the size of its map."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write("read\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    assert not line.startswith("error"), line
    seen: dict[str, Any] = json.loads(line)
    return seen


def progress(name: str, rows: int, **fields: object) -> ItemRecord:
    return ItemRecord(name, "h1", ItemState.WORKING, rows_read=rows, **fields)  # type: ignore[arg-type]


def test_second_writer_refused_until_the_first_is_killed(tmp_path: Path, plan: Path) -> None:
    state_dir = tmp_path / "state"
    with worker("lock", state_dir, plan) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with StateStore.open(state_dir, plan) as store:
            with pytest.raises(StateLocked) as refused:
                store.lock()
            assert str(refused.value).startswith(
                f"plan {plan} is being migrated by pid {holder.pid} since "
            )
            assert str(refused.value).endswith("; wait for it or stop it")

            os.kill(holder.pid, signal.SIGKILL)  # no chance to clean up
            assert holder.wait() == -signal.SIGKILL
            store.lock()
            assert store.locked


def test_a_reader_sees_commits_while_the_writer_holds_the_lock(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, plan: Path
) -> None:
    # A small initial map, in both processes, so the writer soon grows it past what the
    # reader mapped: the reader must then adopt the new size (LMDB's MDB_MAP_RESIZED).
    small = 256 * 1024
    monkeypatch.setattr(_environment, "INITIAL_MAP_SIZE", small)
    state_dir = tmp_path / "state"
    with StateStore.open(state_dir, plan) as store:
        store.lock()
        store.put_item(progress("orders", 100))
        with worker("read", state_dir, plan, small) as reader:
            assert reader.stdout is not None
            assert reader.stdout.readline().strip() == "ready"
            assert ask(reader) == {"items": [["orders", 100]], "map_size": small}

            store.put_item(progress("orders", 200))
            store.put_item(progress("customers", 5))
            assert ask(reader)["items"] == [["customers", 5], ["orders", 200]]

            for n in range(8):  # 2 MiB: the map grows to 4 MiB
                store.put_item(progress(f"big{n}", n, last_error="e" * 256 * 1024))
            assert (store.path / "data.mdb").stat().st_size > small
            seen = ask(reader)
            assert len(seen["items"]) == 10
            assert ["big7", 7] in seen["items"]
            assert seen["map_size"] > small
            assert store.locked
