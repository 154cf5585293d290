"""The LMDB state store: the engine's local write-ahead log and progress store.

The destination's checkpoint row is authoritative (it commits with the rows it counts); this
store records the same progress right after each destination commit, so `stratum progress` can
show it without a connection to the destination, and so a new run can reconcile with it. A
crash between the destination commit and the write here loses nothing: on start-up the
destination's checkpoint wins. Losing the whole store loses nothing either, which is why every
"cannot be used" error says the directory can be deleted.

Layout: one LMDB environment per plan file, `<state_dir>/<stem>-<sha256(resolved path)[:12]>/`
(0o700, files 0o600: item names, cursors and errors are the owner's business), with the named
databases `meta` (layout version, plan path, creation time), `items` (an `ItemRecord` as JSON
per item name) and `runs` (a `RunRecord` per run id). A future layout must keep `meta` and its
`layout_version` key, which is how an older Stratum knows to refuse it.

Every method is synchronous and fast (one short LMDB transaction); each `put_*` commits and
fsyncs before it returns. The engine must not block its event loop on them, so it calls them
through `anyio.to_thread.run_sync(store.put_item, record)`; they are safe to call from several
worker threads at once (an internal lock serialises them). Readers in other processes
(`stratum progress`) open the store with `readonly=True` while the writer runs: LMDB readers
see the last committed state and never block the writer nor wait for it.

One writer per plan: `lock()` takes an flock() that the kernel releases when the holder dies.
Do not fork with a store open (LMDB handles must not cross fork(); py-lmdb even refuses to open
the environment again in the child); open it in the child instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from stratum.errors import StateStoreError
from stratum.state._errors import unusable
from stratum.state._private import make_private_directories
from stratum.state._writer_lock import WriterLock
from stratum.state.records import ItemRecord, RunRecord

if TYPE_CHECKING:
    from stratum.state._environment import Database, Environment, Transaction

#: The layout this code reads and writes. Bump it when a record's meaning changes in a way
#: that `from_json`'s "ignore unknown, default missing" cannot absorb.
LAYOUT_VERSION = 1

STATE_DIR_ENV = "STRATUM_STATE_DIR"

_R = TypeVar("_R", ItemRecord, RunRecord)

_META, _ITEMS, _RUNS = b"meta", b"items", b"runs"
#: Longer keys are stored as a digest: LMDB refuses keys over 511 bytes.
_MAX_KEY_BYTES = 400
_HASHED_KEY_PREFIX = b"\x00sha256:"


def default_state_dir() -> Path:
    """`$STRATUM_STATE_DIR` when set, else `~/.stratum/state`."""
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".stratum" / "state"


def store_directory(state_dir: Path, plan_path: Path) -> Path:
    """The environment of the plan at `plan_path`: named for the file's stem, so a person can
    tell the stores apart, and for a digest of its resolved path, so two `etl.smql` in
    different folders never share one."""
    resolved = Path(plan_path).resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    return Path(state_dir) / f"{resolved.stem}-{digest}"


class StateStore:
    """The state of one plan's runs. Open it with `StateStore.open`; close it (or use it as a
    context manager), which also releases the writer lock."""

    def __init__(
        self,
        directory: Path,
        plan_path: Path,
        env: Environment,
        dbs: tuple[Database, Database],
        meta: dict[str, Any],
        *,
        readonly: bool,
    ) -> None:
        self.path = directory  # the environment's directory
        self.plan_path = plan_path
        self.readonly = readonly
        self._env: Environment | None = env
        self._items, self._runs = dbs
        self._meta = meta
        self._writer_lock = WriterLock(directory / "writer.lock")

    # --- opening and closing ----------------------------------------------------------------

    @classmethod
    def open(cls, state_dir: Path, plan_path: Path, *, readonly: bool = False) -> StateStore:
        """Open (for a writer: create) the store of `plan_path` under `state_dir`. Refused
        with StateStoreError when it is unreadable, of another layout version, recorded for
        another plan, or (read-only) when no run of this plan was ever recorded."""
        from stratum.state import _environment  # noqa: PLC0415 (lmdb loads when a store opens)

        plan = Path(plan_path).resolve()
        directory = store_directory(Path(state_dir).absolute(), plan)
        if readonly:
            _require_existing(directory)
        else:
            _make_private_directory(directory)
        env = _environment.acquire(directory, readonly=readonly)
        try:
            meta, dbs = _prepare(env, plan, readonly=readonly)
            if not readonly:
                _make_files_private(directory)
        except BaseException:
            env.release()
            raise
        return cls(directory, plan, env, dbs, meta, readonly=readonly)

    @staticmethod
    def plans(state_dir: Path) -> list[Path]:
        """The plan files that have a store under `state_dir`, sorted: what `stratum progress`
        shows when it is given no plan. Only the meta records are read, so a store of another
        layout version is listed (and refused when it is opened)."""
        from stratum.state import _environment  # noqa: PLC0415 (lmdb loads when a store opens)

        if not Path(state_dir).is_dir():
            return []
        found = []
        for directory in sorted(Path(state_dir).absolute().iterdir()):
            if (directory / "data.mdb").is_file():
                env = _environment.acquire(directory, readonly=True)
                try:
                    plan = _recorded_plan(env)
                finally:
                    env.release()
                if plan is not None:
                    found.append(plan)
        return sorted(found)

    def lock(self) -> None:
        """Become the plan's only writer, or raise StateLocked naming the process that is.
        Held until `close()`, or until this process dies."""
        self._open_env()
        if self.readonly:
            raise StateStoreError(
                f"state store {self.path} is open read-only; open it for writing to take "
                "the writer lock"
            )
        self._writer_lock.acquire(self.plan_path)

    @property
    def locked(self) -> bool:
        """Whether this store holds the writer lock."""
        return self._writer_lock.held

    def close(self) -> None:
        """Release the writer lock and the environment. Calling it again does nothing."""
        self._writer_lock.release()
        env, self._env = self._env, None
        if env is not None:
            env.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "locked" if self.locked else "writable"
        return f"<StateStore {self.path} {mode}{' closed' if self._env is None else ''}>"

    # --- records ----------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """The meta record: `layout_version`, `plan_path`, `created_at`."""
        self._open_env()
        return dict(self._meta)

    def get_item(self, name: str) -> ItemRecord | None:
        key = _key(name)
        raw = self._open_env().read(lambda txn: txn.get(key, db=self._items))
        return None if raw is None else self._decode_item(raw)

    def put_item(self, record: ItemRecord) -> None:
        """Record an item's progress, durably, replacing what was recorded. The store does not
        police state transitions: it is a log of what the engine says, and on start-up the
        engine overwrites it with what the destination's checkpoint says, whatever the
        recorded state; the engine checks its own moves with `check_transition`."""
        key, value = _key(record.name), record.to_json().encode()
        self._writable_env().write(lambda txn: txn.put(key, value, db=self._items))

    def delete_item(self, name: str) -> bool:
        """Forget an item (`--restart`); whether there was a record to forget."""
        key = _key(name)
        return self._writable_env().write(lambda txn: txn.delete(key, db=self._items))

    def items(self) -> list[ItemRecord]:
        """Every item on record, sorted by name."""
        raws = self._open_env().read(lambda txn: list(txn.cursor(db=self._items)))
        return sorted((self._decode_item(raw) for _, raw in raws), key=lambda item: item.name)

    def put_run(self, run: RunRecord) -> None:
        """Record a run (at its start, and again when it ends), durably."""
        key, value = _key(run.run_id), run.to_json().encode()
        self._writable_env().write(lambda txn: txn.put(key, value, db=self._runs))

    def runs(self) -> list[RunRecord]:
        """Every run on record, newest first."""
        raws = self._open_env().read(lambda txn: list(txn.cursor(db=self._runs)))
        runs = (self._decode(RunRecord, raw) for _, raw in raws)
        return sorted(runs, key=lambda run: (run.started_at, run.run_id), reverse=True)

    def last_run(self) -> RunRecord | None:
        runs = self.runs()
        return runs[0] if runs else None

    # --- helpers ----------------------------------------------------------------------------

    def _open_env(self) -> Environment:
        if self._env is None:
            raise StateStoreError(f"state store {self.path} is closed")
        return self._env

    def _writable_env(self) -> Environment:
        env = self._open_env()
        if self.readonly:
            raise StateStoreError(f"state store {self.path} is open read-only: cannot write")
        return env

    def _decode_item(self, raw: bytes) -> ItemRecord:
        return self._decode(ItemRecord, raw)

    def _decode(self, kind: type[_R], raw: bytes) -> _R:
        try:
            return kind.from_json(raw)
        except ValueError as exc:
            raise unusable(self.path, f"a stored {kind.__name__} is unreadable ({exc})") from exc


# --- opening ----------------------------------------------------------------------------------


def _require_existing(directory: Path) -> None:
    if not (directory / "data.mdb").is_file():
        raise StateStoreError(f"no run of this plan recorded under {directory}")


def _make_private_directory(directory: Path) -> None:
    """Create the store's directory, owner-only even if it existed with a looser mode, and the
    state directory above it (and its missing parents) 0700 whatever the umask: another user
    who could write there could swap a store for one of their own. Parents that exist already
    are left alone (they may be the user's own, or `/tmp`)."""
    try:
        make_private_directories(directory.parent)
        directory.mkdir(mode=0o700, exist_ok=True)
        directory.chmod(0o700)
    except OSError as exc:
        raise StateStoreError(f"cannot create the state store {directory}: {exc}") from exc


def _make_files_private(directory: Path) -> None:
    """LMDB creates its files with our mode minus the umask; make them exactly 0o600, also
    when an older Stratum or a copy left them looser."""
    try:
        for name in ("data.mdb", "lock.mdb"):
            (directory / name).chmod(0o600)
    except OSError as exc:
        raise StateStoreError(f"cannot restrict the state store {directory}: {exc}") from exc


def _prepare(
    env: Environment, plan: Path, *, readonly: bool
) -> tuple[dict[str, Any], tuple[Database, Database]]:
    """Check the meta record (writing it into a new store) and open the record databases.
    The writer creates the databases before the meta record, so a reader that finds the meta
    record finds them too."""
    meta_db = env.db(_META, create=not readonly)
    if meta_db is None:
        raise StateStoreError(f"no run of this plan recorded under {env.directory}")
    meta = env.read(lambda txn: _read_meta(env, txn, meta_db))
    if meta:
        _check_meta(env.directory, plan, meta)
    elif readonly:
        raise StateStoreError(f"no run of this plan recorded under {env.directory}")
    items, runs = env.db(_ITEMS, create=not readonly), env.db(_RUNS, create=not readonly)
    if items is None or runs is None:
        raise unusable(env.directory, "its item or run database is missing")
    if not meta:
        meta = env.write(lambda txn: _init_meta(env, txn, meta_db, plan))
        _check_meta(env.directory, plan, meta)  # another writer may have initialised it first
    return meta, (items, runs)


def _recorded_plan(env: Environment) -> Path | None:
    """The plan path in a store's meta record; None for a store still being created."""
    meta_db = env.db(_META, create=False)
    meta = {} if meta_db is None else env.read(lambda txn: _read_meta(env, txn, meta_db))
    if not meta:
        return None
    if not isinstance(meta.get("plan_path"), str):
        raise unusable(env.directory, f"its meta record names no plan: {meta!r}")
    return Path(meta["plan_path"])


def _read_meta(env: Environment, txn: Transaction, meta_db: Database) -> dict[str, Any]:
    try:
        return {key.decode(): json.loads(value) for key, value in txn.cursor(db=meta_db)}
    except ValueError as exc:
        raise unusable(env.directory, f"its meta record is unreadable ({exc})") from exc


def _init_meta(env: Environment, txn: Transaction, meta_db: Database, plan: Path) -> dict[str, Any]:
    """Write the meta record of a new store, unless another writer just did."""
    meta = _read_meta(env, txn, meta_db)
    if meta:
        return meta
    meta = {"layout_version": LAYOUT_VERSION, "plan_path": str(plan), "created_at": time.time()}
    for key, value in meta.items():
        txn.put(key.encode(), json.dumps(value).encode(), db=meta_db)
    return meta


def _check_meta(directory: Path, plan: Path, meta: dict[str, Any]) -> None:
    """Refuse a store this code cannot read, or one that belongs to another plan file."""
    version = meta.get("layout_version")
    if version != LAYOUT_VERSION:
        if type(version) is not int:
            raise unusable(directory, f"its meta record has no layout version: {meta!r}")
        age = "a newer" if version > LAYOUT_VERSION else "an older"
        raise StateStoreError(
            f"state store {directory} has layout version {version}, but this Stratum reads "
            f"version {LAYOUT_VERSION}: it was written by {age} Stratum. Run that version, or "
            f"delete {directory}: the destination's checkpoints are authoritative, so the next "
            "run rebuilds it from them"
        )
    recorded = meta.get("plan_path")
    if recorded != str(plan):
        raise StateStoreError(
            f"state store {directory} belongs to plan {recorded}, not {plan} (was it copied or "
            f"moved?); delete {directory} and the next run rebuilds it from the destination's "
            "checkpoints, which are authoritative"
        )


def _key(name: str) -> bytes:
    """The LMDB key of an item name or run id."""
    if not name:
        raise ValueError("an item name or run id cannot be empty")
    encoded = name.encode()
    if len(encoded) <= _MAX_KEY_BYTES:
        return encoded
    return _HASHED_KEY_PREFIX + hashlib.sha256(encoded).digest()
