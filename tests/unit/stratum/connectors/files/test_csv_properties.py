"""Properties of CsvSource.

1. What csv.writer writes, in any dialect and encoding, comes back value for value, on the lines
   it was written on.
2. Whatever the bytes, the reader ends with a SourceError exactly when one is due (no header,
   a bad header, bytes the codec cannot even escape), or else with rows + rejected rows that
   number the data records the csv module sees, never a crash, a hang or a silent drop; and a
   resume after any k records yields exactly the tail.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stratum.connectors.base import Rejected, Row
from stratum.connectors.files import CsvSource
from stratum.errors import SourceError
from stratum.plan.model import CsvOptions

_names = itertools.count()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("csv-properties")


def write(workdir: Path, data: bytes, gz: bool) -> Path:
    path = workdir / f"{next(_names)}.csv{'.gz' if gz else ''}"
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def read(source: CsvSource, after: int = 0, batch_size: int = 1000) -> Any:
    """(schema names, merged records in file order, final cursor)."""

    async def run() -> Any:
        names = (await source.schema()).names
        records: list[tuple[int, Row | Rejected]] = []
        cursor: Any = after
        async for batch in source.read(after, batch_size):
            assert len(batch.rows) + len(batch.rejected) <= batch_size
            records += zip(batch.positions, batch.rows, strict=True)
            records += ((r.position, r) for r in batch.rejected)
            cursor = batch.cursor
        records.sort(key=lambda record: record[0])
        return names, records, cursor

    return asyncio.run(run())


def physical_lines(text: str) -> int:
    """Lines as the reader counts them: ended by LF, CRLF or a lone CR."""
    return len(io.StringIO(text, newline="").readlines())


# --- 1. round trip ------------------------------------------------------------------------------

ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-8", "iso8859-1": "latin-1", "cp1252": "cp1252"}


@st.composite
def written_files(draw: st.DrawFn) -> dict[str, Any]:
    encoding = draw(st.sampled_from(sorted(ENCODINGS)))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    quote = draw(st.sampled_from(['"', "'"]))
    escape = draw(st.sampled_from([None, "\\"]))
    terminator = draw(st.sampled_from(["\r\n", "\n"]))
    special = st.sampled_from([",", ";", "\t", "|", '"', "'", "\\", "\r", "\n", " ", "N"])
    plain = st.characters(codec=ENCODINGS[encoding], exclude_characters="\x00\ufeff")
    # csv.writer leaves a lone CR unquoted when the line terminator is LF: no CR then
    value = st.text(special | plain, max_size=8).map(
        lambda v: v.replace("\r", "") if terminator == "\n" else v
    )
    width = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(value, min_size=width, max_size=width), max_size=12))
    header = draw(st.booleans())
    names = draw(st.lists(value.filter(bool), min_size=width, max_size=width, unique=True))
    return {
        "encoding": encoding,
        "delimiter": delimiter,
        "quote": quote,
        "escape": escape,
        "terminator": terminator,
        "quoting": draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        "rows": [row for row in rows if "\\N" not in row],
        "header": names if header else None,
        "gz": draw(st.booleans()),
        "batch_size": draw(st.integers(1, 5)),
    }


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=written_files())
def test_what_csv_writer_writes_reads_back(workdir: Path, spec: dict[str, Any]) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(
        out,
        delimiter=spec["delimiter"],
        quotechar=spec["quote"],
        escapechar=spec["escape"],
        doublequote=spec["escape"] is None,
        lineterminator=spec["terminator"],
        quoting=spec["quoting"],
    )
    line = 1
    if spec["header"] is not None:
        writer.writerow(spec["header"])
        line += physical_lines(out.getvalue())
    positions = []
    for row in spec["rows"]:
        positions.append(line)
        before = len(out.getvalue())
        writer.writerow(row)
        line += physical_lines(out.getvalue()[before:])
    path = write(workdir, out.getvalue().encode(spec["encoding"]), spec["gz"])
    options = CsvOptions(
        header=spec["header"] is not None,
        delimiter=spec["delimiter"],
        quote=spec["quote"],
        escape=spec["escape"],
        null="\\N",
        encoding=spec["encoding"],
    )
    source = CsvSource(path, options)
    if spec["header"] is None and not spec["rows"]:
        assert read(source)[1] == []
        return
    names, records, cursor = read(source, batch_size=spec["batch_size"])
    if spec["header"] is not None:
        assert list(names) == spec["header"]
    assert [row for _, row in records] == [tuple(row) for row in spec["rows"]]
    assert [position for position, _ in records] == positions
    assert cursor == len(spec["rows"])


# --- 2. any bytes -------------------------------------------------------------------------------

PIECES = [b"a", b"b1", b",", b";", b'"', b"'", b"\\", b"\r", b"\n", b"\r\n", b" ", b"\x00"]
PIECES += [b"\xff", b"\xc3\xa9", b"\xc3", b"\xef\xbb\xbf", b"\\N", b"\x81"]


@st.composite
def any_files(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(
        st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join) | st.binary(max_size=120)
    )
    delimiter, quote = draw(st.permutations([",", ";", '"', "'"]))[:2]
    escape = draw(st.sampled_from([None, "\\"]))
    return {
        "data": data,
        "options": CsvOptions(
            header=draw(st.booleans()),
            delimiter=delimiter,
            quote=quote,
            escape=escape,
            null=draw(st.sampled_from(["", "\\N", "a"])),
            encoding=draw(st.sampled_from(["utf-8", "iso8859-1", "cp1252", "ascii", "utf-16-le"])),
        ),
        "gz": draw(st.booleans()),
        "batch_size": draw(st.integers(1, 7)),
        "resume": draw(st.floats(0, 1)),
    }


def csv_records(data: bytes, options: CsvOptions) -> Iterator[list[str] | None]:
    """What the csv module sees: records, and None for each record it cannot split."""
    encoding = "utf-8-sig" if options.encoding == "utf-8" else options.encoding
    text = io.TextIOWrapper(
        io.BytesIO(data), encoding=encoding, errors="surrogateescape", newline=""
    )
    escape = options.escape if options.escape != options.quote else None
    reader = csv.reader(
        text, delimiter=options.delimiter, quotechar=options.quote, escapechar=escape, strict=True
    )
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield None


def unstorable(value: str) -> bool:
    return "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value)


def expected_records(data: bytes, options: CsvOptions) -> int | None:
    """How many data records the file holds, or None when reading it must be a SourceError."""
    try:
        records = list(csv_records(data, options))
    except UnicodeDecodeError:
        return None
    if options.header:
        while records and records[0] == []:
            records.pop(0)
        if not records or records[0] is None:
            return None
        names = records.pop(0)
        if "" in names or len(set(names)) < len(names) or any(map(unstorable, names)):
            return None
        width = len(names)
    else:
        width = next((len(r) for r in records if r), 0)
    return sum(1 for record in records if record != [] or width == 1)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=any_files())
def test_any_bytes_give_an_error_or_every_record(workdir: Path, spec: dict[str, Any]) -> None:
    options: CsvOptions = spec["options"]
    data: bytes = spec["data"]
    expected = expected_records(data, options)
    source = CsvSource(write(workdir, data, spec["gz"]), options)
    error: SourceError | None = None
    try:
        names, records, cursor = read(source, batch_size=spec["batch_size"])
    except SourceError as exc:
        error = exc
    if error is not None:
        event("SourceError")
        assert expected is None, f"unexpected SourceError: {error}"
        assert str(source.path) in str(error)
        return
    assert expected is not None, "a SourceError was due"
    event("rows and rejects" if any(isinstance(r, Rejected) for _, r in records) else "rows only")
    assert len(records) == expected
    assert cursor == expected
    text_lines = max(1, physical_lines(data.decode("latin-1")))
    positions = [position for position, _ in records]
    assert positions == sorted(set(positions))
    assert all(1 <= position <= text_lines for position in positions)
    for _, record in records:
        if isinstance(record, Rejected):
            values = [record.row] if isinstance(record.row, str) else record.row
            assert not any(unstorable(v) for v in values if isinstance(v, str))
            assert record.reason
        else:
            assert len(record) == len(names)
            assert not any(unstorable(v) for v in record if v is not None)
            assert options.null not in record
    k = round(spec["resume"] * expected)
    assert read(source, after=k, batch_size=spec["batch_size"])[1] == records[k:]
