"""Reject files: one JSON-lines file per item with every row that could not be loaded.

Each line holds the row (or the raw text), the reason, its source position and the number of the
batch it belongs to. A batch's rejects are written and fsynced *before* the destination commits
the batch; when an item resumes, lines of batches past its checkpoint are dropped (those batches
are read again), so every rejected row is in the file exactly once.

The file is named for the item: `<item>.rejects.jsonl`, every character other than letters,
digits, `_`, `.` and `-` replaced by `_`. When that changed the name (or it is too long for a
file name), a digest of the item's real name is added (`pg.public._a_b_-1c2d3e4f5a6b.rejects
.jsonl`), so items whose names differ only in such characters (`a"b`, `a'b`) never share a file.

Rejected rows are the data's owner's business: files are created 0600 (made so when an older
file is looser) and the directories created for them 0700, whatever the umask.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from stratum.connectors.base import Rejected
from stratum.state._private import make_private_directories

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_SUFFIX = ".rejects.jsonl"
_MAX_STEM = 180  # with the digest and the suffix, well under the usual 255-byte name limit


def reject_path(directory: Path, item: str) -> Path:
    stem = _UNSAFE.sub("_", item)
    if stem != item or len(stem) > _MAX_STEM or stem in ("", ".", ".."):
        digest = hashlib.sha256(item.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        stem = f"{stem[:_MAX_STEM]}-{digest}"
    return directory / (stem + _SUFFIX)


def _text(value: str) -> str:
    """Undecodable bytes (kept as lone surrogates by the reader) shown as \\xNN escapes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def _value(value: Any) -> Any:
    return _text(value) if isinstance(value, str) else value


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal | dt.date | dt.time | dt.datetime):
        return value.isoformat() if not isinstance(value, Decimal) else str(value)
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    return str(value)


class RejectFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def trim(self, committed_batches: int) -> int:
        """Keep only the lines of committed batches; returns how many rows remain."""
        if not self.path.exists():
            return 0
        kept = []
        with self.path.open("r", encoding="utf-8") as lines:
            for line in lines:
                try:
                    batch = json.loads(line).get("batch", 0)
                except json.JSONDecodeError:
                    continue  # a line torn by a crash mid-write: its batch never committed
                if isinstance(batch, int) and batch <= committed_batches:
                    kept.append(line if line.endswith("\n") else line + "\n")
        tmp = self.path.with_suffix(".tmp")
        with _open_private(tmp, "w") as out:
            out.writelines(kept)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
        return len(kept)

    def append(self, item: str, run_id: str, batch: int, rejected: Iterable[Rejected]) -> None:
        lines = [
            json.dumps(
                {
                    "item": item,
                    "run_id": run_id,
                    "batch": batch,
                    "position": r.position,
                    "reason": _text(r.reason),
                    "row": _text(r.row) if isinstance(r.row, str) else [_value(v) for v in r.row],
                },
                default=_encode,
                ensure_ascii=False,
            )
            + "\n"
            for r in rejected
        ]
        if not lines:
            return
        make_private_directories(self.path.parent)
        with _open_private(self.path, "a") as out:
            out.writelines(lines)
            out.flush()
            os.fsync(out.fileno())


def _open_private(path: Path, mode: str) -> Any:
    """`path` opened for writing, 0600: created so, or made so when it existed looser."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != 0o600:
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, mode, encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
