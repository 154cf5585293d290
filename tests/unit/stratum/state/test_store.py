"""The LMDB state store in one process: round trips, refusals, the growing map, permissions."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import lmdb
import pytest

from stratum.errors import StateLocked, StateStoreError
from stratum.state import (
    LAYOUT_VERSION,
    ItemRecord,
    ItemState,
    RunRecord,
    StateStore,
    _environment,
    default_state_dir,
    store_directory,
)

MiB = 1024 * 1024


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plans" / "shop.smql"
    path.parent.mkdir()
    path.write_text("-- a plan\n")
    return path


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state_dir: Path, plan: Path) -> Iterator[StateStore]:
    with StateStore.open(state_dir, plan) as opened:
        yield opened


def item(name: str, state: ItemState = ItemState.WORKING, **fields: object) -> ItemRecord:
    return ItemRecord(name=name, hash="h1", state=state, **fields)  # type: ignore[arg-type]


def put_raw(directory: Path, db: bytes, key: bytes, value: bytes) -> None:
    """Write behind the store's back, as another program (or a bug) might."""
    with lmdb.open(str(directory), max_dbs=8, create=False) as env:
        handle = env.open_db(db)
        with env.begin(write=True) as txn:
            txn.put(key, value, db=handle)


# --- round trips ----------------------------------------------------------------------------


def test_items_round_trip_and_list_sorted_by_name(store: StateStore) -> None:
    records = [item("b", cursor=[3, "x"], rows_read=10), item("a", cursor=5), item("c")]
    for record in records:
        store.put_item(record)
    assert store.get_item("a") == records[1]
    assert store.get_item("missing") is None
    assert [record.name for record in store.items()] == ["a", "b", "c"]
    assert store.delete_item("b") is True
    assert store.delete_item("b") is False
    assert [record.name for record in store.items()] == ["a", "c"]


def test_records_survive_reopening(state_dir: Path, plan: Path) -> None:
    with StateStore.open(state_dir, plan) as first:
        first.put_item(item("a", rows_read=7))
        first.put_run(RunRecord("r1", "ph", str(plan), os.getpid(), 1.0))
    with StateStore.open(state_dir, plan, readonly=True) as again:
        assert again.get_item("a") == item("a", rows_read=7)
        assert again.last_run() == RunRecord("r1", "ph", str(plan), os.getpid(), 1.0)


def test_a_long_item_name_is_kept_whole(store: StateStore) -> None:
    name = "wh." + "x" * 2000  # over LMDB's 511-byte key limit
    store.put_item(item(name))
    assert store.get_item(name) == item(name)
    assert [record.name for record in store.items()] == [name]


def test_runs_newest_first(store: StateStore, plan: Path) -> None:
    assert store.runs() == []
    assert store.last_run() is None
    for run_id, started in [("r1", 10.0), ("r3", 30.0), ("r2", 20.0)]:
        store.put_run(RunRecord(run_id, "ph", str(plan), 1, started))
    store.put_run(RunRecord("r3", "ph", str(plan), 1, 30.0, 31.0, "completed", 0))  # it ended
    assert [run.run_id for run in store.runs()] == ["r3", "r2", "r1"]
    last = store.last_run()
    assert last is not None
    assert (last.status, last.exit_code) == ("completed", 0)


def test_meta_records_layout_and_plan(store: StateStore, plan: Path) -> None:
    meta = store.meta()
    assert meta["layout_version"] == LAYOUT_VERSION == 1
    assert meta["plan_path"] == str(plan.resolve())
    assert isinstance(meta["created_at"], float)


def test_plans_with_a_store(state_dir: Path, plan: Path, tmp_path: Path) -> None:
    assert StateStore.plans(state_dir) == []
    other = tmp_path / "a.smql"
    for path in (plan, other):
        StateStore.open(state_dir, path).close()
    assert StateStore.plans(state_dir) == [other, plan]
    with StateStore.open(state_dir, plan):  # also while one is open in this process
        assert StateStore.plans(state_dir) == [other, plan]


def test_one_directory_per_plan_file(state_dir: Path, plan: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "shop.smql"  # same stem, another file
    directory = store_directory(state_dir, plan)
    assert directory.parent == state_dir
    assert directory.name.startswith("shop-")
    assert len(directory.name) == len("shop-") + 12
    assert store_directory(state_dir, other) != directory
    with StateStore.open(state_dir, plan) as opened:
        assert opened.path == directory


# --- item states ----------------------------------------------------------------------------


def test_put_item_records_what_the_engine_says(store: StateStore) -> None:
    # Transitions are the engine's to check (check_transition): on start-up it overwrites the
    # record with what the destination says, whatever state a crash left here.
    store.put_item(item("a", ItemState.WORKING))
    store.put_item(item("a", ItemState.PENDING))
    got = store.get_item("a")
    assert got is not None
    assert got.state is ItemState.PENDING


# --- read-only stores, closed stores, the lock in one process -------------------------------


def test_readonly_store_of_a_plan_never_run(state_dir: Path, plan: Path) -> None:
    with pytest.raises(StateStoreError, match="no run of this plan recorded under"):
        StateStore.open(state_dir, plan, readonly=True)
    assert not state_dir.exists()  # a reader creates nothing


def test_readonly_store_refuses_writes_and_the_lock(
    store: StateStore, state_dir: Path, plan: Path
) -> None:
    store.put_item(item("a"))
    with StateStore.open(state_dir, plan, readonly=True) as reader:
        assert reader.get_item("a") == item("a")
        for write in (
            lambda: reader.put_item(item("b")),
            lambda: reader.delete_item("a"),
            lambda: reader.put_run(RunRecord("r", "p", "p", 1, 1.0)),
            reader.lock,
        ):
            with pytest.raises(StateStoreError, match="read-only"):
                write()


def test_a_readonly_environment_cannot_be_reopened_for_writing(state_dir: Path, plan: Path) -> None:
    StateStore.open(state_dir, plan).close()
    reader = StateStore.open(state_dir, plan, readonly=True)
    with pytest.raises(StateStoreError, match="open read-only in this process"):
        StateStore.open(state_dir, plan)
    reader.close()
    StateStore.open(state_dir, plan).close()  # fine once the reader is closed


def test_a_closed_store_says_so(state_dir: Path, plan: Path) -> None:
    opened = StateStore.open(state_dir, plan)
    opened.close()
    opened.close()
    with pytest.raises(StateStoreError, match="is closed"):
        opened.items()


def test_the_writer_lock_is_exclusive_within_a_process_too(state_dir: Path, plan: Path) -> None:
    with StateStore.open(state_dir, plan) as first, StateStore.open(state_dir, plan) as second:
        first.lock()
        first.lock()  # already held: nothing to do
        with pytest.raises(
            StateLocked, match=rf"plan {plan} is being migrated by pid {os.getpid()} since "
        ):
            second.lock()
        assert first.locked
        assert not second.locked
        first.close()
        second.lock()
        assert second.locked


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("readonly", [False, True], ids=["writer", "reader"])
@pytest.mark.parametrize(("version", "age"), [(2, "a newer"), (0, "an older")])
def test_another_layout_version_is_refused(
    state_dir: Path, plan: Path, readonly: bool, version: int, age: str
) -> None:
    StateStore.open(state_dir, plan).close()
    directory = store_directory(state_dir, plan)
    put_raw(directory, b"meta", b"layout_version", str(version).encode())
    with pytest.raises(StateStoreError) as refused:
        StateStore.open(state_dir, plan, readonly=readonly)
    message = str(refused.value)
    assert f"{directory} has layout version {version}" in message
    assert f"reads version 1: it was written by {age} Stratum" in message
    assert f"delete {directory}" in message


def test_a_store_of_another_plan_is_refused(state_dir: Path, plan: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.smql"
    with StateStore.open(state_dir, plan) as opened:
        opened.put_item(item("a"))
    shutil.copytree(store_directory(state_dir, plan), store_directory(state_dir, other))
    with pytest.raises(StateStoreError, match=rf"belongs to plan {plan}, not {other}"):
        StateStore.open(state_dir, other)


@pytest.mark.parametrize("readonly", [False, True], ids=["writer", "reader"])
def test_a_corrupt_file_is_refused_with_advice(state_dir: Path, plan: Path, readonly: bool) -> None:
    with StateStore.open(state_dir, plan) as opened:
        opened.put_item(item("a"))
    directory = store_directory(state_dir, plan)
    data = directory / "data.mdb"
    data.write_bytes(os.urandom(data.stat().st_size))
    with pytest.raises(StateStoreError) as refused:
        StateStore.open(state_dir, plan, readonly=readonly)
    message = str(refused.value)
    assert f"state store {directory} cannot be used" in message
    assert "can be deleted safely" in message
    assert "checkpoints are authoritative" in message
    shutil.rmtree(directory)  # which is indeed the way out
    StateStore.open(state_dir, plan).close()


def test_a_corrupt_record_is_refused_with_advice(store: StateStore) -> None:
    store.put_item(item("a"))
    store.close()
    put_raw(store.path, b"items", b"b", b"\xff not json")
    with StateStore.open(store.path.parent, store.plan_path) as again:
        assert again.get_item("a") == item("a")
        with pytest.raises(StateStoreError, match=r"ItemRecord is unreadable.*deleted safely"):
            again.items()


# --- the map grows instead of failing -------------------------------------------------------


def test_the_map_grows_past_its_initial_size(store: StateStore) -> None:
    assert 32 * MiB == _environment.INITIAL_MAP_SIZE
    big = "e" * MiB
    names = [f"item{n:02}" for n in range(36)]  # 36 MiB of records
    for name in names:
        store.put_item(item(name, last_error=big))
    assert (store.path / "data.mdb").stat().st_size > 32 * MiB
    assert [record.name for record in store.items()] == names
    assert all(record.last_error == big for record in store.items())


def test_a_store_at_its_largest_size_is_refused(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path, plan: Path
) -> None:
    monkeypatch.setattr(_environment, "INITIAL_MAP_SIZE", 256 * 1024)
    monkeypatch.setattr(_environment, "MAX_MAP_SIZE", 1 * MiB)
    error = "e" * 50_000
    with StateStore.open(state_dir, plan) as opened:
        for n in range(15):  # 750 kB: the map grows to its largest, 1 MiB
            opened.put_item(item(f"item{n:03}", last_error=error))
        with pytest.raises(StateStoreError, match=r"is full \(1048576 bytes"):
            opened.put_item(item("one too many", last_error=error * 8))
        assert opened.get_item("item000") is not None  # what was written stays
        assert opened.get_item("one too many") is None


# --- threads, as the engine calls it --------------------------------------------------------


def test_puts_from_many_worker_threads(store: StateStore) -> None:
    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for worker in range(8):
                tg.start_soon(progress, worker)

    async def progress(worker: int) -> None:
        for batch in range(1, 21):
            record = item(f"t{worker}", rows_read=batch)
            await anyio.to_thread.run_sync(store.put_item, record)
            await anyio.to_thread.run_sync(store.items)

    anyio.run(main)
    assert [(record.name, record.rows_read) for record in store.items()] == [
        (f"t{worker}", 20) for worker in range(8)
    ]


# --- where it lives and who may read it -----------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_owner_only_permissions(state_dir: Path, plan: Path) -> None:
    directory = store_directory(state_dir, plan)
    directory.mkdir(parents=True, mode=0o755)
    directory.chmod(0o755)  # left loose by someone: tightened on open
    old = os.umask(0o002)
    try:
        with StateStore.open(state_dir, plan) as opened:
            opened.lock()
            assert mode(directory) == 0o700
            for name in ("data.mdb", "lock.mdb", "writer.lock"):
                assert mode(directory / name) == 0o600, name
    finally:
        os.umask(old)


def test_state_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRATUM_STATE_DIR", str(tmp_path / "custom"))
    assert default_state_dir() == tmp_path / "custom"
    monkeypatch.setenv("STRATUM_STATE_DIR", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir() == tmp_path / "home" / ".stratum" / "state"
    monkeypatch.delenv("STRATUM_STATE_DIR")
    assert default_state_dir() == tmp_path / "home" / ".stratum" / "state"
