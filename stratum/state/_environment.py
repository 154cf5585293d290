"""The only module that imports `lmdb`: one shared, crash-safe environment per directory.

`stratum.state.store` imports this module when a store is opened, so `import stratum` (and
the CLI) never load lmdb.

Why a process-wide registry: LMDB's locks are POSIX fcntl() locks, owned by the (process, file)
pair, so one process must never open an environment twice; closing the second handle would
release the first one's locks, and another process could then reinitialise the lock table under
it. py-lmdb refuses a second open ("already open in this process"). So every `StateStore` of
one directory in this process shares one `Environment`, reference counted, and its transactions
are serialised by one thread lock: that also makes growing the map safe, which LMDB allows only
when no transaction of the process is active.

Errors from lmdb never leave this module: they become `StateStoreError`s that name the directory
and say it can be deleted, because the destination's checkpoints are authoritative.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import lmdb

from stratum.errors import StateStoreError
from stratum.state._errors import advice, unusable

_T = TypeVar("_T")

#: A fresh environment's map. LMDB maps the whole size up front (address space, not disk: the
#: data file grows only as pages are written, since writemap is off).
INITIAL_MAP_SIZE = 32 * 1024 * 1024
#: The map doubles on MapFullError up to this; beyond it the store is refused as full.
MAX_MAP_SIZE = 4 * 1024 * 1024 * 1024
#: Named databases per environment; the layout uses three, the rest leave room for a new layout.
MAX_DBS = 8
MAX_READERS = 126
#: A reader that loses the race with a writer growing the map retries this many times.
_RESIZE_RETRIES = 8

if TYPE_CHECKING:
    Transaction: TypeAlias = lmdb.Transaction[bytes]
    Database: TypeAlias = lmdb._Database


class Environment:
    """One open LMDB environment, shared by the stores of its directory in this process."""

    def __init__(self, directory: Path, env: lmdb.Environment, readonly: bool) -> None:
        self.directory = directory
        self.readonly = readonly
        self._env = env
        self._lock = threading.Lock()
        self._dbs: dict[bytes, Database] = {}
        self._users = 1

    @classmethod
    def open(cls, directory: Path, *, readonly: bool) -> Environment:
        """Open with the crash-safe settings: every commit fsyncs data and meta pages
        (sync, metasync) and pages are written with write(), not through a writable map
        (writemap off), so a stray pointer cannot scribble on the file."""
        try:
            env = lmdb.open(
                str(directory),
                map_size=INITIAL_MAP_SIZE,
                subdir=True,
                readonly=readonly,
                create=False,  # the store makes the directory itself, 0o700 (lmdb would use mode)
                mode=0o600,
                sync=True,
                metasync=True,
                writemap=False,
                lock=True,
                max_dbs=MAX_DBS,
                max_readers=MAX_READERS,
            )
            if not readonly:
                env.reader_check()  # free the slots of dead readers, so their pages are reused
        except lmdb.Error as exc:
            raise unusable(directory, _describe(exc)) from exc
        return cls(directory, env, readonly)

    def db(self, name: bytes, *, create: bool) -> Database | None:
        """A named database, or None when it does not exist and `create` is false."""
        with self._lock:
            if name not in self._dbs:
                try:
                    self._dbs[name] = self._env.open_db(name, create=create)
                except lmdb.NotFoundError:
                    return None
                except lmdb.Error as exc:
                    raise unusable(self.directory, _describe(exc)) from exc
            return self._dbs[name]

    def read(self, work: Callable[[Transaction], _T]) -> _T:
        """Run `work` in a read transaction: a consistent snapshot, never blocked by the
        writer (another process may be writing right now)."""
        with self._lock:
            for _ in range(_RESIZE_RETRIES):
                try:
                    with self._env.begin() as txn:
                        return work(txn)
                except lmdb.MapResizedError:
                    self._env.set_mapsize(0)  # another process grew the map: adopt its size
                except lmdb.Error as exc:
                    raise unusable(self.directory, _describe(exc)) from exc
            raise unusable(self.directory, "the map keeps being resized while reading")

    def write(self, work: Callable[[Transaction], _T]) -> _T:
        """Run `work` in a write transaction and commit it: durable when this returns. When
        the map is full it is doubled and `work` runs again (the failed attempt was aborted,
        so nothing of it remains)."""
        with self._lock:
            while True:
                try:
                    with self._env.begin(write=True) as txn:
                        return work(txn)
                except lmdb.MapFullError:
                    self._grow()
                except lmdb.MapResizedError:
                    self._env.set_mapsize(0)
                except lmdb.Error as exc:
                    raise unusable(self.directory, _describe(exc)) from exc

    def map_size(self) -> int:
        with self._lock:
            return self._env.info()["map_size"]

    def _grow(self) -> None:
        size = self._env.info()["map_size"]
        if size >= MAX_MAP_SIZE:
            raise StateStoreError(
                f"state store {self.directory} is full ({size} bytes, the most it may grow "
                f"to); {advice(self.directory)}"
            )
        self._env.reader_check()
        self._env.set_mapsize(min(size * 2, MAX_MAP_SIZE))

    def release(self) -> None:
        """Drop one user of the shared environment; the last one closes it."""
        _release(self)

    def _close(self) -> None:
        with self._lock:  # waits for a transaction another thread is running
            self._dbs.clear()
            self._env.close()


def _describe(exc: lmdb.Error) -> str:
    """lmdb's reason ("MDB_INVALID: File is not an LMDB file"), without the C function or
    path it prefixes to its message, since the caller names the directory already."""
    return exc.reason if exc.code else str(exc)


# --- the registry ---------------------------------------------------------------------------

_OPEN: dict[Path, Environment] = {}
_OPEN_LOCK = threading.Lock()


def acquire(directory: Path, *, readonly: bool) -> Environment:
    """The environment of `directory`, opened once per process and shared. A read-only
    environment cannot serve a writer, so that case is refused instead of reopened."""
    with _OPEN_LOCK:
        shared = _OPEN.get(directory)
        if shared is None:
            shared = _OPEN[directory] = Environment.open(directory, readonly=readonly)
        elif shared.readonly and not readonly:
            raise StateStoreError(
                f"state store {directory} is open read-only in this process; close that store "
                "before opening it for writing"
            )
        else:
            shared._users += 1
        return shared


def _release(shared: Environment) -> None:
    with _OPEN_LOCK:
        shared._users -= 1
        if shared._users == 0:
            del _OPEN[shared.directory]
            shared._close()
