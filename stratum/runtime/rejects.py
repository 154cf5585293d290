"""Reject files: one JSON-lines file per item with every row that could not be loaded.

Each line holds the row (or the raw text), the reason, its source position and the number of the
batch it belongs to. A batch's rejects are written and fsynced *before* the destination commits
the batch; when an item resumes, lines of batches past its checkpoint are dropped (those batches
are read again), so every rejected row is in the file exactly once.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from stratum.connectors.base import Rejected

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def reject_path(directory: Path, item: str) -> Path:
    return directory / (_UNSAFE.sub("_", item) + ".rejects.jsonl")


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
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _open_private(self.path, "a") as out:
            out.writelines(lines)
            out.flush()
            os.fsync(out.fileno())


def _open_private(path: Path, mode: str) -> Any:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o600), mode, encoding="utf-8")
