"""CSV files, read with Python's csv module (the C reader) in worker threads.

What a record is, and what becomes of it:

* Lines end in LF, CRLF or a lone CR (the file is read with newline=""); line numbers count
  them, so a quoted value spanning three lines moves the next record's line by three. Line
  endings inside quoted values are kept as written (CRLF stays CRLF).
* The reader is strict: a closing quote followed by anything but a delimiter or a line end, an
  unterminated quote at the end of the file, or a value over the csv module's field size limit
  (131,072 characters) rejects the record, with the lines it spans as raw text. The C reader
  then starts afresh on the next line, so one stray quote costs at most the lines it swallowed.
* Undecodable bytes do not stop the file: they are read as lone surrogates
  (errors="surrogateescape") and the record holding them is rejected, its reason naming the
  encoding and the bytes. A NUL byte rejects its record too (no PostgreSQL text holds one).
  In reject rows both are spelt as escapes (\\xff, \\x00).
* A record with a different number of values than the header (or than the first record,
  without a header) is rejected: "expected N values, found M".
* Blank lines hold no value and are skipped when the file has several columns (they are not
  records: the cursor does not count them). In a one-column file a blank line is a record whose
  value is empty, i.e. NULL when the NULL string is '' (as PostgreSQL's COPY reads it).
* NULL: a value equal to the NULL string is None. The csv module does not say whether a value
  was quoted, so with NULL '' both an empty value and "" are None (PostgreSQL would keep ""
  as an empty string), and with NULL '\\N' a quoted "\\N" is None too. To load empty strings,
  use a NULL string that the data does not hold. (Python 3.12's QUOTE_NOTNULL could tell
  them apart; using it only on newer interpreters would make a plan's result depend on the
  Python version, so it is not used.)
* ESCAPE follows the csv module: the escape character makes the next character literal,
  inside and outside quotes (PostgreSQL's ESCAPE acts only before a quote inside quotes).
  Doubled quotes inside quotes are read either way.
* A UTF-8 byte order mark at the start of the file is skipped. The header is the first record
  that is not a blank line, taken as written (no trimming); it must name every column once,
  and a file without one is a SourceError. Without a header the columns are column1..columnN,
  N being the width of the first record that is neither blank nor malformed.
"""

from __future__ import annotations

import codecs
import csv
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from stratum.connectors.base import Column, CopyFormat, Cursor, RawBatch, Rejected, Row, Schema
from stratum.connectors.files._common import (
    FileSourceBase,
    check_cancelled,
    has_unstorable,
    open_text,
    printable,
    printable_row,
    undecodable_bytes,
)
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import CsvOptions

#: How many records a skip (resume) reads per step; the records are parsed and dropped.
_SKIP_STEP = 8192
#: How many undecodable bytes a reason shows.
_SHOWN_BYTES = 16


class CsvSource(FileSourceBase):
    """Rows of a CSV file, every column typed "text", values str or None (the NULL string).

    Positions are the 1-based line where each record starts. The cursor is the number of data
    records consumed (rejected ones included, blank lines skipped in a multi-column file not
    counted), so `read(after=n)` resumes at record n + 1, with the file's own line numbers.
    """

    def __init__(self, path: Path, options: CsvOptions) -> None:
        super().__init__(path)
        self.options = options
        self._dialect = _dialect(options)
        self._codec = _codec(options.encoding)

    # --- the pass-through path (stratum.connectors.base.TextSource) ----------------------------

    def text_path(self) -> str | None:
        """Every value of a CSV file is text already: it can always go to a destination that
        parses text."""
        return None

    async def read_text(self, after: Cursor, batch_size: int) -> AsyncIterator[RawBatch]:
        """The rows as `read` gives them: their values are the file's text. A batch whose
        records the reader took as they are (none rejected, no blank line left out) also
        carries the file's own text of them, which COPY ... FORMAT csv reads to the same values
        (the same delimiter, quote and NULL string, and FORCE_NULL, since the reader takes a
        quoted value equal to the NULL string as NULL too), so it is sent without being written
        again. Not with an ESCAPE character: the csv module and COPY read it differently."""
        copyable = self.options.escape is None
        fmt = CopyFormat(
            "csv",
            delimiter=self.options.delimiter,
            quote=self.options.quote,
            null=self.options.null,
            force_null=True,
        )
        async for batch in self.read(after, batch_size):
            if copyable and batch.copy_data is not None:
                batch.copy_format = fmt
            else:
                batch.copy_data = None
            yield batch

    async def read_again(self, after: Cursor, batch: RawBatch) -> AsyncIterator[RawBatch]:
        """A text batch is already what `read` gives: its rows again (the reader's rejects
        were counted with the batch, so they are not repeated)."""
        yield RawBatch(list(batch.rows), list(batch.positions), [], batch.cursor, batch.nbytes)

    def _read_schema(self) -> Schema:
        with _CsvScan(self, names=None) as scan:
            if self.options.header:
                line, names = scan.header()
                _check_header(self.path, line, names, self.options.encoding)
            else:
                names = [f"column{i}" for i in range(1, scan.first_width() + 1)]
        return Schema(tuple(Column(name, "text") for name in names))

    def _scan(self, schema: Schema, start: int) -> _CsvScan:
        scan = _CsvScan(self, names=schema.names)
        try:
            if self.options.header:
                line, names = scan.header()
                if tuple(names) != schema.names:
                    raise SourceError(
                        f"{self.path}: the header (line {line}) changed since the file was "
                        f"opened: {names!r}"
                    )
            scan.skip(start)
        except BaseException:
            scan.close()
            raise
        return scan


def _codec(encoding: str) -> str:
    """The codec to decode with: the plan's, except that UTF-8 skips a leading BOM."""
    try:
        info = codecs.lookup(encoding)
    except LookupError as exc:
        raise ConfigError(f"unknown encoding {encoding!r}") from exc
    if not getattr(info, "_is_text_encoding", True):
        raise ConfigError(f"{encoding!r} is not a text encoding")
    return "utf-8-sig" if info.name == "utf-8" else info.name


def _dialect(options: CsvOptions) -> dict[str, Any]:
    escape = options.escape if options.escape != options.quote else None
    for what, char in (
        ("DELIMITER", options.delimiter),
        ("QUOTE", options.quote),
        ("ESCAPE", escape),
    ):
        if char is not None and (len(char) != 1 or char in "\r\n"):
            raise ConfigError(f"CSV {what} must be one character other than a line end: {char!r}")
    if len({options.delimiter, options.quote, escape} - {None}) != 2 + (escape is not None):
        raise ConfigError(
            "CSV DELIMITER, QUOTE and ESCAPE must be different characters: "
            f"{options.delimiter!r}, {options.quote!r}, {escape!r}"
        )
    dialect: dict[str, Any] = {
        "delimiter": options.delimiter,
        "quotechar": options.quote,
        "escapechar": escape,
        "doublequote": True,
        "quoting": csv.QUOTE_MINIMAL,
        "skipinitialspace": False,
        "strict": True,
    }
    try:
        csv.reader([], **dialect)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid CSV options: {exc}") from exc
    return dialect


def _check_header(path: Path, line: int, names: list[str], encoding: str) -> None:
    bad = [name for name in names if has_unstorable(name)]
    if bad:
        raise SourceError(
            f"{path}: the header (line {line}) holds bytes that are not valid {encoding} or a "
            f"NUL: {', '.join(repr(printable(name)) for name in bad)}"
        )
    empty = [str(i) for i, name in enumerate(names, 1) if name == ""]
    if empty:
        raise SourceError(
            f"{path}: the header (line {line}) has empty column names, at "
            f"position{'s' if len(empty) > 1 else ''} {', '.join(empty)}"
        )
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(names, 1):
        seen.setdefault(name, []).append(i)
    twice = [
        f"'{name}' (columns {', '.join(map(str, where))})"
        for name, where in seen.items()
        if len(where) > 1
    ]
    if twice:
        raise SourceError(
            f"{path}: the header (line {line}) names columns more than once: {', '.join(twice)}"
        )


class _CsvScan:
    """One pass over the file. The csv reader pulls lines from `_feed`, which keeps the lines of
    the current batch: the raw text of a record the reader cannot split, and the text that the
    batch's check for undecodable bytes and NULs looks at."""

    def __init__(self, source: CsvSource, names: tuple[str, ...] | None) -> None:
        """A scan of `source`'s file; `names` are its columns, None while they are not known
        (only `header` and `first_width` may be called then)."""
        self._path = source.path
        self._encoding = source.options.encoding
        self._null = source.options.null
        self._quote = source.options.quote
        self._names = names or ()
        self._width = len(self._names)
        self._file = open_text(source.path, source._codec)
        self._lines: list[str] = []
        self._first = 1  # the line number of self._lines[0]
        self._reader = csv.reader(self._feed(), **source._dialect)
        self._end = 0  # the line where the last record ended
        self._done = False
        self.records = 0  # data records consumed

    def __enter__(self) -> _CsvScan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _feed(self) -> Iterator[str]:
        keep = self._lines.append
        for line in self._file:
            keep(line)
            yield line

    def _next(self) -> list[str] | csv.Error | None:
        """The next record, the csv error it raised, or None at the end of the file."""
        try:
            return next(self._reader)
        except StopIteration:
            self._done = True
            return None
        except csv.Error as exc:
            return exc
        except (UnicodeError, OSError, EOFError, zlib.error) as exc:
            raise self._unreadable(exc) from exc

    def _unreadable(self, exc: Exception) -> SourceError:
        """Why the file cannot be read on (a codec that cannot escape a byte, a gzip error)."""
        line = self._reader.line_num + 1
        if isinstance(exc, UnicodeDecodeError):
            # the decoder works ahead of the csv reader: the bytes are at this line or after it
            return SourceError(
                f"{self._path}: cannot decode the file as {self._encoding} (at line {line} or "
                f"after it): {exc.reason}, bytes {exc.object[exc.start : exc.end]!r}"
            )
        if isinstance(exc, UnicodeError):  # a codec that needs a BOM (utf-16, utf-32) and lacks it
            return SourceError(
                f"{self._path}: cannot decode the file as {self._encoding} (at line {line} or "
                f"after it): {exc}"
            )
        return SourceError(f"{self._path}: cannot read line {line}: {exc}")

    def _forget_lines(self) -> str:
        """The text of the lines read since the last call, which the scan now lets go."""
        text = "".join(self._lines)
        self._lines.clear()
        self._first = self._reader.line_num + 1
        return text

    def _text(self, start: int, end: int) -> str:
        return "".join(self._lines[start - self._first : end - self._first + 1])

    def header(self) -> tuple[int, list[str]]:
        """The first record that is not a blank line, and the line it starts on."""
        while True:
            start = self._end + 1
            record = self._next()
            self._end = self._reader.line_num
            if record is None:
                raise SourceError(f"{self._path} is empty: no header line")
            if isinstance(record, csv.Error):
                reason = self._malformed(record, self._text(start, self._end))
                raise SourceError(f"{self._path}: cannot read the header (line {start}): {reason}")
            self._forget_lines()
            if record:
                return start, record

    def first_width(self) -> int:
        """The number of values of the first record that is neither blank nor malformed (0 if
        there is none): the width of a file without header."""
        while True:
            record = self._next()
            self._forget_lines()
            if record is None:
                return 0
            if isinstance(record, list) and record:
                return len(record)

    def skip(self, records: int) -> None:
        """Read and drop the first `records` data records."""
        while self.records < records:
            check_cancelled()
            if self.next_batch(min(records - self.records, _SKIP_STEP)) is None:
                raise SourceError(
                    f"{self._path}: cannot resume after record {records}: the file holds only "
                    f"{self.records} records; it changed since they were read"
                )

    def next_batch(self, limit: int) -> RawBatch | None:
        if self._done:
            return None
        reader = self._reader
        read = reader.__next__
        width = self._width
        null = self._null
        blank_is_record = width == 1
        rows: list[Row] = []
        positions: list[int] = []
        rejected: list[Rejected] = []
        end = self._end
        count = 0
        skipped = False  # a blank line left out: the batch's text is not just its records
        while count < limit:
            start = end + 1
            try:
                record = read()
            except StopIteration:
                self._done = True
                break
            except csv.Error as exc:
                end = reader.line_num
                text = self._text(start, end)
                rejected.append(Rejected(start, self._malformed(exc, text, start, end), text))
                count += 1
                continue
            except (UnicodeError, OSError, EOFError, zlib.error) as exc:
                raise self._unreadable(exc) from exc
            end = reader.line_num
            if len(record) != width or not record:
                if record:
                    reason = f"expected {width} values, found {len(record)}"
                    rejected.append(Rejected(start, reason, tuple(record)))
                    count += 1
                    continue
                if not blank_is_record:
                    skipped = True
                    continue
                record = [""]
            if null in record:
                rows.append(tuple([None if value == null else value for value in record]))
            else:
                rows.append(tuple(record))
            positions.append(start)
            count += 1
        self._end = end
        self.records += count
        text = self._forget_lines()
        if count == 0:
            return None
        if has_unstorable(text):
            rows, positions, rejected = self._reject_unstorable(rows, positions, rejected)
        batch = RawBatch(rows, positions, rejected, cursor=self.records, nbytes=len(text))
        if not rejected and not skipped:
            batch.copy_data = text  # the records exactly as the file holds them (read_text)
        return batch

    def _malformed(self, exc: csv.Error, text: str, start: int = 0, end: int = 0) -> str:
        """Why the csv reader could not split a record, in the words of the file."""
        message = str(exc)
        if message == "unexpected end of data":
            if self._quote in text:
                reason = (
                    f"unterminated quoted value: the file ends before its closing {self._quote}"
                )
            else:
                reason = "the file ends right after an escape character"
        elif message.startswith("field larger than field limit"):
            reason = (
                f"a value is longer than {csv.field_size_limit()} characters, the csv module's "
                "limit (an unterminated quote can swallow the lines that follow it)"
            )
        else:
            reason = f"malformed CSV: {message}"
        if end > start:
            reason += f" (lines {start}-{end})"
        return reason

    def _reject_unstorable(
        self, rows: list[Row], positions: list[int], rejected: list[Rejected]
    ) -> tuple[list[Row], list[int], list[Rejected]]:
        """Move the rows holding undecodable bytes or a NUL to the rejected rows (in line
        order), and make every rejected row printable."""
        kept_rows: list[Row] = []
        kept_positions: list[int] = []
        moved: list[Rejected] = []
        for row, position in zip(rows, positions, strict=True):
            problems = [
                self._unstorable_reason(i, value)
                for i, value in enumerate(row)
                if value is not None and has_unstorable(value)
            ]
            if problems:
                moved.append(Rejected(position, "; ".join(problems), printable_row(row)))
            else:
                kept_rows.append(row)
                kept_positions.append(position)
        every = [Rejected(r.position, r.reason, printable_row(r.row)) for r in rejected] + moved
        every.sort(key=lambda r: r.position)
        return kept_rows, kept_positions, every

    def _unstorable_reason(self, index: int, value: str) -> str:
        column = self._names[index] if index < len(self._names) else f"column{index + 1}"
        problems = []
        raw = undecodable_bytes(value)
        if raw:
            shown = raw[:_SHOWN_BYTES]
            more = f" and {len(raw) - len(shown)} more" if len(raw) > len(shown) else ""
            problems.append(f"cannot decode bytes {shown!r}{more} as {self._encoding}")
        if "\x00" in value:
            problems.append("a NUL byte (0x00), which a text value cannot hold")
        if not raw and "\x00" not in value:
            problems.append("a lone surrogate, which a text value cannot hold")
        return f"column '{column}': {' and '.join(problems)}"
