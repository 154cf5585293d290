"""One writer per plan: an exclusive flock() on `<store>/writer.lock`.

flock() rather than a pid file: the kernel drops the lock when its holder dies, however it dies
(SIGKILL, OOM killer, power loss), so there is never a stale lock to clean up and no pid to
second-guess. The file's content (the holder's pid and start time) is only for the message a
refused process prints. flock() locks belong to the open file description, so a second lock
from the same process is refused too, and this lock is independent of LMDB's fcntl() locks.
The descriptor is close-on-exec, so a program the engine runs does not inherit the lock (a
forked child would share it; forking with an open store is not supported anyway).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import time
from pathlib import Path

from stratum.errors import StateLocked, StateStoreError

_HOLDER_MAX_BYTES = 4096


class WriterLock:
    """The writer lock of one store directory, held from `acquire` to `release`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, plan_path: Path) -> None:
        """Take the lock without waiting; StateLocked names the holder when another has it."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateStoreError(f"cannot open the writer lock {self.path}: {exc}") from exc
        try:
            if os.fstat(fd).st_mode & 0o077:  # left looser by an older Stratum, or a copy
                os.fchmod(fd, 0o600)
        except OSError as exc:
            os.close(fd)
            raise StateStoreError(f"cannot restrict the writer lock {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StateLocked(
                f"plan {plan_path} is being migrated by {holder}; wait for it or stop it"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StateStoreError(f"cannot lock {self.path}: {exc}") from exc
        _record_holder(fd)
        self._fd = fd

    def release(self) -> None:
        """Let the next writer in. Emptying the file first means a stale description can
        never be shown for a lock nobody holds."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)


def _record_holder(fd: int) -> None:
    data = json.dumps({"pid": os.getpid(), "since": time.time()}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _holder(fd: int) -> str:
    """ "pid N since <time>", from what the holder wrote; it may not have written yet, or the
    file may hold anything, so every failure ends in a vaguer description, never an error."""
    try:
        data = json.loads(os.pread(fd, _HOLDER_MAX_BYTES, 0))
        pid, since = int(data["pid"]), float(data["since"])
        when = dt.datetime.fromtimestamp(since).astimezone()
    except (OSError, ValueError, TypeError, KeyError, OverflowError):
        return "another process"
    return f"pid {pid} since {when.isoformat(sep=' ', timespec='seconds')}"
