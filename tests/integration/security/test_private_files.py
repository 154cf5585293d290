"""Reject files and the state store are the owner's only: files 0600, the directories made for
them 0700, whatever the umask (tried here with 000, the most permissive; test_secrets.py runs
`stratum migrate` with 022). A file or directory an older version left looser is tightened;
directories that existed already (the user's own, `--reject-dir /tmp`) are left alone. Reject
files of items whose names differ only in characters a file name cannot hold never collide.
No database is needed: the run loads a CSV file into DuckDB."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import stratum
from stratum.connectors.base import Rejected
from stratum.runtime.rejects import RejectFile, reject_path
from stratum.state import StateStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(previous)


def test_reject_files_are_private(tmp_path: Path, permissive_umask: None) -> None:
    base = tmp_path / "base"
    base.mkdir()
    base.chmod(0o755)  # the user's own directory
    directory = base / "made" / "for" / "rejects"
    rejects = RejectFile(reject_path(directory, "dst.items"))
    rejects.append("dst.items", "run-1", 1, [Rejected(3, "bad value", ("x", 1))])
    assert mode(rejects.path) == 0o600
    for made in (directory, directory.parent, directory.parent.parent):
        assert mode(made) == 0o700, made
    assert mode(base) == 0o755  # directories that existed are left as they are

    rejects.path.chmod(0o644)  # as an older version may have left it
    rejects.append("dst.items", "run-1", 2, [Rejected(9, "bad value", "raw text")])
    assert mode(rejects.path) == 0o600
    assert rejects.trim(1) == 1
    assert mode(rejects.path) == 0o600
    assert [p.name for p in directory.iterdir()] == [rejects.path.name]  # no temporary left


def test_reject_file_names_never_collide() -> None:
    names = ['pg.public."a""b"', 'pg.public."a\'b"', 'pg.public."a`b"', "pg.public.a_b"]
    paths = [reject_path(Path("/r"), name) for name in names]
    assert len(set(paths)) == len(names)
    assert paths[3] == Path("/r/pg.public.a_b.rejects.jsonl")  # a plain name keeps its file
    assert all(p.name.startswith("pg.public._a_b_-") for p in paths[:3])
    long = reject_path(Path("/r"), "x" * 1000)
    assert len(long.name.encode()) < 255
    assert reject_path(Path("/r"), "..").name != "...rejects.jsonl"


def test_the_state_store_is_private(tmp_path: Path, permissive_umask: None) -> None:
    state_dir = tmp_path / "new" / "state"
    plan = tmp_path / "plan.smql"
    plan.write_text("-- empty\n")
    with StateStore.open(state_dir, plan) as store:
        store.lock()
        for directory in (state_dir.parent, state_dir, store.path):
            assert mode(directory) == 0o700, directory
        for name in ("data.mdb", "lock.mdb", "writer.lock"):
            assert mode(store.path / name) == 0o600, name
        store_path = store.path
    for name in ("data.mdb", "lock.mdb", "writer.lock"):
        (store_path / name).chmod(0o644)
    store_path.chmod(0o755)
    with StateStore.open(state_dir, plan) as store:
        store.lock()
        assert mode(store.path) == 0o700
        for name in ("data.mdb", "lock.mdb", "writer.lock"):
            assert mode(store.path / name) == 0o600, name


def test_a_run_leaves_only_private_files(tmp_path: Path, permissive_umask: None) -> None:
    (tmp_path / "rows.csv").write_text("id\n1\nx\n3\n", encoding="utf-8")
    plan_path = tmp_path / "load.smql"
    plan_path.write_text(
        "CONNECTION lake = 'duckdb:///lake.duckdb';\n"
        "MIGRATE FILE 'rows.csv' (HEADER) INTO lake.main.rows\n"
        "  CAST COLUMN id TO integer ON ERROR reject;\n",
        encoding="utf-8",
    )
    plan = stratum.load_plan(plan_path)
    state = tmp_path / "state"
    summary = anyio.run(lambda: stratum.run_plan(plan, state_dir=state))
    assert summary.exit_code == 0
    assert [r.totals.rows_rejected for r in summary.results] == [1]
    found = sorted(state.rglob("*"))
    assert any(p.name.endswith(".rejects.jsonl") for p in found)  # default: inside the store
    for path in [state, *found]:
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path
