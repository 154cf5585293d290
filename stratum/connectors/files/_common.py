"""What the file sources share: the async shell around a blocking scanner, cursors, streams.

Each source reads its file in a `_Scan`, a plain object driven from worker threads, one
`anyio.to_thread.run_sync` call per batch (never one per row). A scan belongs to one `read()`
call; the async generator closes it when it ends, is closed, or is abandoned.
"""

from __future__ import annotations

import gzip
import io
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TextIO

import anyio.from_thread
import anyio.to_thread

from stratum.connectors.base import Cursor, RawBatch, Schema
from stratum.errors import SourceError


class _Scan(Protocol):
    """One pass over a file, used from one worker thread at a time."""

    def next_batch(self, limit: int) -> RawBatch | None:
        """Up to `limit` records (rows and rejected rows), or None once the file is done."""
        ...

    def close(self) -> None: ...


class FileSourceBase(ABC):
    """The async side of a file source: `open` reads the schema, `read` drives a scan.

    Nothing is held open between calls: every `read()` opens the file again, so several
    reads of one source may run at once, and `close()` only ends scans that were abandoned.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._schema: Schema | None = None
        self._scans: set[_Scan] = set()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Check that the file can be read and learn its columns (the header, the first
        records). Idempotent."""
        if self._schema is None:
            self._schema = await anyio.to_thread.run_sync(self._read_schema)

    async def close(self) -> None:
        """End the scans of reads that were abandoned without being closed. Must not be
        called while a read is in progress."""
        while self._scans:
            self._scans.pop().close()

    async def schema(self) -> Schema:
        await self.open()
        assert self._schema is not None
        return self._schema

    async def read(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        schema = await self.schema()
        start = self._start_position(after)
        scan = await anyio.to_thread.run_sync(self._scan, schema, start)
        self._scans.add(scan)
        try:
            while True:
                if scan not in self._scans:
                    raise SourceError(f"{self.path}: the source was closed during a read")
                batch = await anyio.to_thread.run_sync(scan.next_batch, batch_size)
                if batch is None:
                    return
                yield batch
        finally:
            self._scans.discard(scan)
            scan.close()

    def _start_position(self, after: Cursor) -> int:
        """The cursor as a count of records (rows for Parquet) already consumed."""
        if after is None:
            return 0
        if isinstance(after, int) and not isinstance(after, bool) and after >= 0:
            return after
        raise SourceError(
            f"{self.path}: cannot resume after {after!r}: a file's cursor is the number of "
            "records already read"
        )

    @abstractmethod
    def _read_schema(self) -> Schema:
        """Runs in a worker thread."""

    @abstractmethod
    def _scan(self, schema: Schema, start: int) -> _Scan:
        """A scan positioned after `start` records. Runs in a worker thread."""


def check_cancelled() -> None:
    """In a worker thread, raise the cancellation of the task waiting for it, so that a long
    skip (a resume deep into a file) stops when the read is cancelled. Outside a worker thread
    (a scan used directly), nothing."""
    try:
        anyio.from_thread.check_cancelled()
    except RuntimeError:  # anyio's NoEventLoopError: not an anyio worker thread
        return


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed when its name ends in `.gz`."""
    try:
        if is_gzip(path):
            return gzip.open(path, "rb")
        return path.open("rb")
    except FileNotFoundError as exc:
        raise SourceError(f"file not found: {path}") from exc
    except OSError as exc:
        raise SourceError(f"cannot open {path}: {exc.strerror or exc}") from exc


def open_text(path: Path, encoding: str) -> TextIO:
    """The file as text, lines ending in LF, CRLF or CR kept as they are (newline=""), and
    undecodable bytes turned into lone surrogates (U+DC80..U+DCFF) instead of an error."""
    try:
        if is_gzip(path):
            return gzip.open(path, "rt", encoding=encoding, errors="surrogateescape", newline="")
        return path.open(encoding=encoding, errors="surrogateescape", newline="")
    except LookupError as exc:
        raise SourceError(f"{path}: unknown encoding {encoding!r}") from exc
    except FileNotFoundError as exc:
        raise SourceError(f"file not found: {path}") from exc
    except OSError as exc:
        raise SourceError(f"cannot open {path}: {exc.strerror or exc}") from exc


#: Bytes a reader of text cannot pass on: NUL (which no PostgreSQL text value holds) and lone
#: surrogates (undecodable bytes under errors="surrogateescape", or escapes like "\udc80").
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_unstorable(text: str) -> bool:
    """Whether `text` holds a NUL or a lone surrogate. Fast on clean text: a NUL is found by
    a byte scan, and only text with non-ASCII characters is encoded to look for surrogates."""
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def undecodable_bytes(text: str) -> bytes:
    """The original bytes behind the surrogate escapes in `text`, in order."""
    return bytes(ord(char) - 0xDC00 for char in text if "\udc80" <= char <= "\udcff")


def printable(text: str) -> str:
    """`text` with NUL and lone surrogates spelt as escapes (\\x00, \\xff, \\ud800), so a
    reject file can hold it."""
    return _UNSTORABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    if code == 0:
        return "\\x00"
    return f"\\u{code:04x}"


def printable_row(row: tuple[Any, ...] | str) -> tuple[Any, ...] | str:
    if isinstance(row, str):
        return printable(row)
    return tuple(printable(value) if isinstance(value, str) else value for value in row)
