"""Fuzzing CsvSource: only a clear ConfigError/SourceError, or every record accounted for.

test_csv_properties.py covers csv.writer's round trip (LF and CRLF) and random bytes under valid
options. This file adds what it leaves out:

1. Files written record by record with mixed line ends (LF, CRLF and a lone CR in one file),
   an optional BOM, quoting by chance, NULL strings, in several encodings: every value comes
   back, on the line it was written on, through `read` and through `read_text` (whose COPY text,
   when a batch carries one, holds exactly the batch's rows).
2. The same files with bad records at known places (a value too many, an undecodable byte, a
   NUL, an unterminated quote at the end): each bad record is rejected once, at its line, and
   every other record comes back exact; a resume after any k records yields the tail.
3. Random options, valid or not (multi-character or equal delimiters, line ends as quotes,
   unknown or binary codecs), over random bytes: a ConfigError or a SourceError naming the
   problem, or batches whose rows and rejects have strictly increasing positions, as many as
   the final cursor says; never another exception, never a hang (the suite's timeout).
4. Empty and blank files, with or without a BOM: a SourceError with a header, no record
   without one.
5. What these tests found: a codec that needs a BOM (utf-16, utf-32) raised a bare UnicodeError
   on a file without one, which escaped the reader (an internal error in `stratum migrate`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stratum.connectors.base import RawBatch, Rejected, Row
from stratum.connectors.files import CsvSource
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import CsvOptions

_names = itertools.count()
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("csv-fuzz")


def write(workdir: Path, data: bytes) -> Path:
    path = workdir / f"{next(_names)}.csv"
    path.write_bytes(data)
    return path


@dataclass
class Result:
    names: tuple[str, ...]
    batches: list[RawBatch]

    @property
    def records(self) -> list[tuple[int, Row | Rejected]]:
        merged: list[tuple[int, Row | Rejected]] = []
        for batch in self.batches:
            merged += zip(batch.positions, batch.rows, strict=True)
            merged += ((r.position, r) for r in batch.rejected)
        return sorted(merged, key=lambda record: record[0])

    @property
    def cursor(self) -> Any:
        return self.batches[-1].cursor if self.batches else None


def read(source: CsvSource, after: int = 0, batch_size: int = 1000, text: bool = False) -> Result:
    """Everything a read (or `read_text`) yields, each batch checked on the way."""

    async def run() -> Result:
        names = (await source.schema()).names
        reader = source.read_text if text else source.read
        batches = []
        async for batch in reader(after, batch_size):
            assert len(batch.rows) == len(batch.positions)
            assert 0 < len(batch.rows) + len(batch.rejected) <= batch_size
            if text and batch.copy_data is not None:
                assert source.options.escape is None, "COPY reads an ESCAPE differently"
                assert copy_rows(batch.copy_data, source.options) == batch.rows
            batches.append(batch)
        return Result(names, batches)

    return asyncio.run(run())


def copy_rows(data: str | bytes, options: CsvOptions) -> list[Row]:
    """The rows a CSV reader with the batch's options finds in its COPY text (a blank line is
    a record only in a one-column file, and a batch with a blank line left out has no COPY
    text: here it is a one-column record)."""
    text = data.decode() if isinstance(data, bytes) else data
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=options.delimiter, quotechar=options.quote
    )
    return [tuple(None if v == options.null else v for v in row or [""]) for row in reader]


def physical_lines(text: str) -> int:
    """Line ends as the reader counts them: LF, CRLF or a lone CR."""
    return len(io.StringIO(text, newline="").readlines())


# --- 1. written record by record ----------------------------------------------------------------

ENCODINGS = {  # plan encoding -> (the codec that writes the file, characters it can hold)
    "utf-8": ("utf-8", "utf-8"),
    "utf-8-sig": ("utf-8-sig", "utf-8"),
    "latin-1": ("latin-1", "latin-1"),
    "cp1252": ("cp1252", "cp1252"),
    "utf-16": ("utf-16", "utf-8"),  # the codec writes a BOM
    "utf-16-le": ("utf-16-le", "utf-8"),
}
TERMINATORS = ["\n", "\r\n", "\r"]


@dataclass
class Written:
    """A file made by `written_files`: its bytes, the options to read it, what it holds."""

    data: bytes
    options: CsvOptions
    header: list[str] | None
    head: str  # the header record's text, terminator included ("" without a header)
    records: list[str]  # each data record's text, terminator included (the last maybe not)
    rows: list[Row]  # as the reader must give them (the NULL string as None)
    positions: list[int]
    batch_size: int


def field_text(value: str, delimiter: str, quote: str, escape: str | None, force: bool) -> str:
    special = {delimiter, quote, "\r", "\n"} | ({escape} if escape else set())
    if not force and value and not special & set(value):
        return value
    inner = value.replace(escape, escape * 2) if escape else value
    return quote + inner.replace(quote, quote * 2) + quote


@st.composite
def written_files(draw: st.DrawFn, encodings: tuple[str, ...] = tuple(ENCODINGS)) -> Written:
    encoding = draw(st.sampled_from(sorted(encodings)))
    codec, alphabet = ENCODINGS[encoding]
    delimiter, quote = draw(st.permutations([",", ";", "\t", "|", '"', "'"]))[:2]
    escape = draw(st.sampled_from([None, "\\"]))
    null = draw(st.sampled_from(["", "\\N", "NULL"]))
    special = st.sampled_from([",", ";", "\t", "|", '"', "'", "\\", "\r", "\n", "\r\n", " ", "N"])
    plain = st.characters(codec=alphabet, exclude_characters="\x00\ufeff")
    value = st.lists(special | plain, max_size=6).map("".join)
    width = draw(st.integers(1, 4))
    values = draw(st.lists(st.lists(value, min_size=width, max_size=width), max_size=10))
    header = None
    if draw(st.booleans()):
        header = draw(st.lists(value.filter(bool), min_size=width, max_size=width, unique=True))

    def record(fields: list[str]) -> str:
        texts = [
            field_text(v, delimiter, quote, escape, draw(st.booleans()) or (width == 1 and not v))
            for v in fields
        ]
        return delimiter.join(texts) + draw(st.sampled_from(TERMINATORS))

    head = "" if header is None else record(header)
    line = 1 + physical_lines(head)
    positions, records = [], []
    for fields in values:
        positions.append(line)
        records.append(record(fields))
        line += physical_lines(records[-1])
    if records and draw(st.booleans()):  # no line end after the last record
        records[-1] = records[-1].rstrip("\r\n")
    bom = "\ufeff" if encoding == "utf-8" and draw(st.booleans()) else ""  # utf-8-sig writes one
    return Written(
        data=(bom + head + "".join(records)).encode(codec),
        options=CsvOptions(
            header=header is not None,
            delimiter=delimiter,
            quote=quote,
            escape=escape,
            null=null,
            encoding=encoding,
        ),
        header=header,
        head=head,
        records=records,
        rows=[tuple(None if v == null else v for v in row) for row in values],
        positions=positions,
        batch_size=draw(st.integers(1, 6)),
    )


@SETTINGS
@given(spec=written_files(), text=st.booleans())
def test_records_with_mixed_line_ends_and_a_bom_read_back_exactly(
    workdir: Path, spec: Written, text: bool
) -> None:
    source = CsvSource(write(workdir, spec.data), spec.options)
    if spec.header is None and not spec.rows:
        assert read(source).records == []
        return
    result = read(source, batch_size=spec.batch_size, text=text)
    if spec.header is not None:
        assert list(result.names) == spec.header
    assert [row for _, row in result.records] == spec.rows
    assert [position for position, _ in result.records] == spec.positions
    assert result.cursor == (len(spec.rows) if spec.rows else None)


# --- 2. bad records at known places -------------------------------------------------------------

UNDECODABLE = {"utf-8": b"\xff", "utf-8-sig": b"\xff", "cp1252": b"\x81"}


@dataclass
class Faulty:
    data: bytes
    options: CsvOptions
    rows: list[tuple[int, Row]]  # the good records: (line, row)
    rejected: list[int]  # the lines of the bad ones
    records: int
    batch_size: int


@st.composite
def faulty_files(draw: st.DrawFn) -> Faulty:
    """A written file with faults at the end of some records (outside any quoted value, so
    that each spoils its own record only): a value too many, an undecodable byte, a NUL; and
    maybe a last record whose quote never closes."""
    spec = draw(written_files(encodings=("utf-8", "utf-8-sig", "latin-1", "cp1252")))
    codec = "utf-8" if spec.options.encoding == "utf-8-sig" else spec.options.encoding
    undecodable = UNDECODABLE.get(spec.options.encoding)
    kinds = ["ragged", "nul"] + (["undecodable"] if undecodable else [])
    data = spec.head.encode(codec)
    good, bad = [], []
    for index, record in enumerate(spec.records):
        core = record.rstrip("\r\n")
        terminator = record[len(core) :].encode(codec)
        text = core.encode(codec)
        # without a header, the first record that is not malformed sets the width: no fault
        # in the first record then
        fault = None
        if index or spec.header is not None:
            fault = draw(st.sampled_from([None, None, *kinds]))
        event(f"fault {fault}")
        if fault == "ragged":
            text += (spec.options.delimiter + "x").encode(codec)
        elif fault == "undecodable":
            assert undecodable is not None
            text += undecodable
        elif fault == "nul":
            text += b"\x00"
        if fault is None:
            good.append((spec.positions[index], spec.rows[index]))
        else:
            bad.append(spec.positions[index])
        data += text + terminator
    records = len(spec.records)
    if draw(st.booleans()):
        event("unterminated quote at the end")
        if not data.endswith((b"\n", b"\r")):
            data += b"\n"
        bad.append(physical_lines(data.decode("latin-1")) + 1)
        data += (spec.options.quote + "open\n").encode()
        records += 1
    if spec.options.encoding == "utf-8-sig":
        data = b"\xef\xbb\xbf" + data
    return Faulty(data, spec.options, good, bad, records, spec.batch_size)


@SETTINGS
@given(case=faulty_files(), text=st.booleans(), resume=st.floats(0, 1))
def test_bad_records_are_rejected_at_their_lines_and_the_rest_is_exact(
    workdir: Path, case: Faulty, text: bool, resume: float
) -> None:
    source = CsvSource(write(workdir, case.data), case.options)
    if not case.records and not case.options.header:
        assert read(source).records == []
        return
    result = read(source, batch_size=case.batch_size, text=text)
    rows = [(p, r) for p, r in result.records if not isinstance(r, Rejected)]
    rejected = [r for _, r in result.records if isinstance(r, Rejected)]
    assert rows == case.rows
    assert [r.position for r in rejected] == case.rejected
    assert all(r.reason for r in rejected)
    assert len(result.records) == case.records
    assert result.cursor == (case.records or None)
    k = round(resume * case.records)
    again = read(source, after=k, batch_size=case.batch_size, text=text)
    assert again.records == result.records[k:]


# --- 3. random options over random bytes --------------------------------------------------------

CHARS = [",", ";", '"', "'", "\\", "\t", "|", "a", "\r", "\n", "", ",,", "\x00", "é"]
CODECS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "ascii", "utf-16-le", "utf-16-be"]
CODECS += ["shift_jis", "gb18030", "cp037", "utf-7"]  # multibyte, EBCDIC, stateful
CODECS += ["utf-16", "utf-32", "idna", "undefined"]  # a BOM needed; errors that are no decode error
NOT_CODECS = ["no-such-codec", "rot13", "base64", "hex", "zlib", "bz2", ""]
PIECES = [b"a", b"1", b",", b";", b'"', b"'", b"\\", b"\r", b"\n", b"\r\n", b"\x00", b"\xff"]
PIECES += [b"\xef\xbb\xbf", b"\xc3\xa9", b"\xc3", b"\xfe\xff", b"\x81", b"NULL", b"\t", b"|"]


@st.composite
def any_options(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "header": draw(st.booleans()),
        "delimiter": draw(st.sampled_from(CHARS)),
        "quote": draw(st.sampled_from(CHARS)),
        "escape": draw(st.sampled_from([None, *CHARS])),
        "null": draw(st.sampled_from(["", "\\N", "NULL", "a"])),
        "encoding": draw(st.sampled_from(CODECS + NOT_CODECS)),
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    given_options=any_options(),
    data=st.lists(st.sampled_from(PIECES), max_size=50).map(b"".join) | st.binary(max_size=100),
    batch_size=st.integers(1, 5),
    text=st.booleans(),
)
def test_any_options_and_bytes_give_the_engines_errors_or_ordered_records(
    workdir: Path, given_options: dict[str, Any], data: bytes, batch_size: int, text: bool
) -> None:
    path = write(workdir, data)
    error: ConfigError | SourceError | None = None
    try:
        result = read(
            CsvSource(path, CsvOptions(**given_options)), batch_size=batch_size, text=text
        )
    except (ConfigError, SourceError) as exc:
        error = exc
    if error is not None:
        event(type(error).__name__)
        assert str(error)
        # a SourceError names the file; a ConfigError (options, codec) is about the plan
        assert isinstance(error, ConfigError) or str(path) in str(error)
        return
    event("records" if result.records else "no records")
    positions = [position for position, _ in result.records]
    assert positions == sorted(set(positions)), "positions strictly increasing"
    assert all(position >= 1 for position in positions)
    assert result.cursor == (len(positions) if positions else None)
    cursors = [batch.cursor for batch in result.batches]
    assert cursors == sorted(set(cursors))
    for _, record in result.records:
        if not isinstance(record, Rejected):
            assert len(record) == len(result.names)


# --- 4. empty and blank files -------------------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), max_size=6).map(b"".join),
    bom=st.booleans(),
    header=st.booleans(),
)
def test_empty_and_blank_files(workdir: Path, data: bytes, bom: bool, header: bool) -> None:
    path = write(workdir, (b"\xef\xbb\xbf" if bom else b"") + data)
    options = CsvOptions(header, ",", '"', None, "", "utf-8")
    if header:
        with pytest.raises(SourceError, match="empty: no header line"):
            read(CsvSource(path, options))
        return
    result = read(CsvSource(path, options))
    assert result.names == ()
    assert result.records == []


# --- found by these tests -----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_file_without_the_bom_its_encoding_needs_is_a_source_error(
    workdir: Path, encoding: str
) -> None:
    # the codec raises a bare UnicodeError (not a UnicodeDecodeError), which once escaped the
    # reader: `stratum migrate` ended with an internal error (exit 3)
    path = write(workdir, "a,b\n1,2\n".encode(f"{encoding}-le"))  # no BOM
    with pytest.raises(SourceError, match=f"cannot decode the file as {encoding}"):
        read(CsvSource(path, CsvOptions(True, ",", '"', None, "", encoding)))
