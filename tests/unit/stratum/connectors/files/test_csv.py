"""CsvSource: RELIABILITY's malformed-CSV faults with exact reject lines, and the CSV options."""

from __future__ import annotations

import csv
import gzip
import itertools
import threading
from pathlib import Path
from typing import Any

import pytest

from stratum.connectors.base import Column, Schema, Source
from stratum.connectors.files import CsvSource
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import CsvOptions

pytestmark = pytest.mark.asyncio


def options(**given: Any) -> CsvOptions:
    values: dict[str, Any] = {
        "header": True,
        "delimiter": ",",
        "quote": '"',
        "escape": None,
        "null": "",
        "encoding": "utf-8",
    }
    values.update(given)
    return CsvOptions(**values)


def source(tmp_path: Path, data: bytes, name: str = "data.csv", **given: Any) -> CsvSource:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return CsvSource(path, options(**given))


# --- the basics -------------------------------------------------------------------------------


async def test_header_gives_the_columns_all_text(tmp_path: Path, read: Any) -> None:
    src = source(tmp_path, b"id,name\n1,ann\n2,bob\n")
    assert isinstance(src, Source)
    assert await src.schema() == Schema((Column("id", "text"), Column("name", "text")))
    result = await read(src)
    assert result.rows == [("1", "ann"), ("2", "bob")]
    assert result.positions == [2, 3]
    assert result.rejected == []
    assert result.cursors == [2]


async def test_without_header_columns_are_numbered_from_the_first_record(
    tmp_path: Path, read: Any
) -> None:
    src = source(tmp_path, b"1,ann,x\n2,bob,y\n", header=False)
    assert (await src.schema()).names == ("column1", "column2", "column3")
    result = await read(src)
    assert result.rows == [("1", "ann", "x"), ("2", "bob", "y")]
    assert result.positions == [1, 2]


async def test_async_with_opens_and_closes(tmp_path: Path, read: Any) -> None:
    async with source(tmp_path, b"a\n1\n") as src:
        assert (await read(src)).rows == [("1",)]


async def test_batches_are_read_in_worker_threads(
    tmp_path: Path, read: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stratum.connectors.files import _csv

    threads: list[threading.Thread] = []
    next_batch = _csv._CsvScan.next_batch

    def spy(self: Any, limit: int) -> Any:
        threads.append(threading.current_thread())
        return next_batch(self, limit)

    monkeypatch.setattr(_csv._CsvScan, "next_batch", spy)
    await read(source(tmp_path, b"a\n" + b"1\n" * 10), batch_size=4)
    assert len(threads) == 4  # 4 + 4 + 2 rows, then the end: one thread call per batch
    assert threading.main_thread() not in threads


# --- RELIABILITY: malformed CSV -----------------------------------------------------------------


async def test_ragged_rows_are_rejected_with_their_lines(tmp_path: Path, read: Any) -> None:
    data = b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n"
    result = await read(source(tmp_path, data))
    assert result.rows == [("1", "2", "3"), ("10", "11", "12")]
    assert result.positions == [2, 5]
    assert [(r.position, r.reason, r.row) for r in result.rejected] == [
        (3, "expected 3 values, found 2", ("4", "5")),
        (4, "expected 3 values, found 4", ("6", "7", "8", "9")),
    ]


async def test_unterminated_quote_at_the_end_rejects_the_last_record(
    tmp_path: Path, read: Any
) -> None:
    data = b'a,b\n1,x\n2,"never closed\n'
    result = await read(source(tmp_path, data))
    assert result.rows == [("1", "x")]
    [rejected] = result.rejected
    assert rejected.position == 3
    assert "unterminated quoted value" in rejected.reason
    assert rejected.row == '2,"never closed\n'
    assert result.cursors[-1] == 2


async def test_unterminated_quote_swallows_the_lines_after_it_into_one_reject(
    tmp_path: Path, read: Any
) -> None:
    data = b'a,b\n1,x\n2,"open\n3,y\n4,z'
    result = await read(source(tmp_path, data))
    assert result.rows == [("1", "x")]
    [rejected] = result.rejected
    assert rejected.position == 3
    assert rejected.reason.endswith("(lines 3-5)")
    assert rejected.row == '2,"open\n3,y\n4,z'


async def test_text_after_a_closing_quote_is_malformed(tmp_path: Path, read: Any) -> None:
    data = b'a,b\n1,"x"y\n2,z\n'
    result = await read(source(tmp_path, data))
    assert result.rows == [("2", "z")]
    assert [(r.position, r.row) for r in result.rejected] == [(2, '1,"x"y\n')]
    assert result.rejected[0].reason.startswith("malformed CSV: ',' expected after '\"'")


async def test_a_value_over_the_field_limit_is_rejected_and_reading_goes_on(
    tmp_path: Path, read: Any
) -> None:
    # a stray quote on line 3 swallows lines until the csv module's field limit: that record
    # is rejected, and the reader starts afresh on the next line
    limit = csv.field_size_limit()
    filler = b"".join(b"%d,%s\n" % (i, b"v" * 99) for i in range(limit // 100 + 10))
    data = b'a,b\n1,ok\n2,"stray\n' + filler + b"last,row\n"
    result = await read(source(tmp_path, data))
    [rejected] = result.rejected
    assert rejected.position == 3
    assert f"longer than {limit} characters" in rejected.reason
    assert result.rows[0] == ("1", "ok")
    assert result.rows[-1] == ("last", "row")
    assert len(result.rows) + len(result.rejected) == result.cursors[-1]
    lines = data.count(b"\n")
    assert result.positions[-1] == lines
    swallowed = int(rejected.reason.rsplit("-", 1)[1].rstrip(")")) - 3 + 1
    assert len(result.rows) == lines - 1 - swallowed


async def test_crlf_and_lf_and_cr_line_ends(tmp_path: Path, read: Any) -> None:
    for i, end in enumerate([b"\r\n", b"\n", b"\r"]):
        data = end.join([b"a,b", b"1,x", b'2,"y' + end + b'z"', b"3,w", b""])
        result = await read(source(tmp_path, data, name=f"{i}.csv"))
        assert result.rows == [("1", "x"), ("2", "y" + end.decode() + "z"), ("3", "w")]
        assert result.positions == [2, 3, 5]
        assert result.rejected == []


async def test_mixed_line_ends_in_one_file(tmp_path: Path, read: Any) -> None:
    data = b'a,b\r\n1,"p\nq"\n2,"r\r\ns"\r\n3,t'
    result = await read(source(tmp_path, data))
    assert result.rows == [("1", "p\nq"), ("2", "r\r\ns"), ("3", "t")]
    assert result.positions == [2, 4, 6]


async def test_a_utf8_bom_is_not_part_of_the_first_name(tmp_path: Path, read: Any) -> None:
    src = source(tmp_path, b"\xef\xbb\xbfid,name\r\n1,ann\r\n")
    assert (await src.schema()).names == ("id", "name")
    result = await read(src)
    assert result.rows == [("1", "ann")]
    assert result.positions == [2]


async def test_a_utf8_bom_without_header(tmp_path: Path, read: Any) -> None:
    result = await read(source(tmp_path, b"\xef\xbb\xbf1,ann\n", header=False))
    assert result.rows == [("1", "ann")]
    assert result.positions == [1]


async def test_a_bom_alone_is_an_empty_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is empty: no header line"):
        await source(tmp_path, b"\xef\xbb\xbf").schema()


async def test_invalid_utf8_rejects_the_record_and_names_the_bytes(
    tmp_path: Path, read: Any
) -> None:
    data = b"id,name\n1,ann\n2,b\xffo\xfeb\n3,caf\xc3\xa9\n4,x\xc3\n"
    result = await read(source(tmp_path, data))
    assert result.rows == [("1", "ann"), ("3", "café")]
    assert result.positions == [2, 4]
    assert [(r.position, r.reason, r.row) for r in result.rejected] == [
        (3, "column 'name': cannot decode bytes b'\\xff\\xfe' as utf-8", ("2", "b\\xffo\\xfeb")),
        (5, "column 'name': cannot decode bytes b'\\xc3' as utf-8", ("4", "x\\xc3")),
    ]


async def test_invalid_utf8_in_a_ragged_or_malformed_record_is_escaped(
    tmp_path: Path, read: Any
) -> None:
    data = b'a,b\n\xff\n1,"\xfe\n'
    result = await read(source(tmp_path, data))
    assert result.rows == []
    assert [(r.position, r.row) for r in result.rejected] == [(2, ("\\xff",)), (3, '1,"\\xfe\n')]
    assert result.rejected[0].reason == "expected 2 values, found 1"


async def test_invalid_utf8_in_the_header_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"header \(line 1\) holds bytes that are not valid"):
        await source(tmp_path, b"id,n\xe4me\n1,x\n").schema()


async def test_nul_bytes_reject_the_record(tmp_path: Path, read: Any) -> None:
    data = b"a,b\n1,x\x00y\n2,ok\n\x00,3\n"
    result = await read(source(tmp_path, data))
    assert result.rows == [("2", "ok")]
    assert result.positions == [3]
    assert [(r.position, r.row) for r in result.rejected] == [
        (2, ("1", "x\\x00y")),
        (4, ("\\x00", "3")),
    ]
    assert result.rejected[0].reason == (
        "column 'b': a NUL byte (0x00), which a text value cannot hold"
    )
    assert result.rejected[1].reason.startswith("column 'a': a NUL byte")


async def test_an_empty_file_with_header_is_an_error(tmp_path: Path) -> None:
    src = source(tmp_path, b"")
    with pytest.raises(SourceError, match=r"data\.csv is empty: no header line"):
        await src.open()


async def test_an_empty_file_without_header_has_no_columns_and_no_rows(
    tmp_path: Path, read: Any
) -> None:
    for i, data in enumerate([b"", b"\n\n", b"\r\n"]):
        src = source(tmp_path, data, name=f"{i}.csv", header=False)
        assert await src.schema() == Schema(())
        assert (await read(src)).batches == []


async def test_blank_lines_are_skipped_in_a_multi_column_file(tmp_path: Path, read: Any) -> None:
    data = b"\na,b\n\n1,x\n\r\n2,y\n\n"
    result = await read(source(tmp_path, data))
    assert result.rows == [("1", "x"), ("2", "y")]
    assert result.positions == [4, 6]
    assert result.cursors == [2]


async def test_blank_lines_are_null_rows_in_a_one_column_file(tmp_path: Path, read: Any) -> None:
    result = await read(source(tmp_path, b"a\n1\n\n2\n"))
    assert result.rows == [("1",), (None,), ("2",)]
    assert result.positions == [2, 3, 4]
    result = await read(source(tmp_path, b"a\n1\n\n", name="n.csv", null="\\N"))
    assert result.rows == [("1",), ("",)]


# --- options ------------------------------------------------------------------------------------


async def test_quoted_newlines_move_the_next_line_number(tmp_path: Path, read: Any) -> None:
    data = b'id,note\n1,"one\ntwo\nthree"\n2,plain\n3,"x\r\n\r\ny"\n4,end\n'
    result = await read(source(tmp_path, data))
    assert result.rows == [
        ("1", "one\ntwo\nthree"),
        ("2", "plain"),
        ("3", "x\r\n\r\ny"),
        ("4", "end"),
    ]
    assert result.positions == [2, 5, 6, 9]


async def test_custom_delimiter_and_quote(tmp_path: Path, read: Any) -> None:
    data = b"a;b\n'x;y';'it''s'\n1;2\n"
    result = await read(source(tmp_path, data, delimiter=";", quote="'"))
    assert result.rows == [("x;y", "it's"), ("1", "2")]
    result = await read(source(tmp_path, b"a\tb\n1\t\t\n", name="t.csv", delimiter="\t"))
    assert result.rejected[0].reason == "expected 2 values, found 3"


async def test_escape_character(tmp_path: Path, read: Any) -> None:
    # the csv module's ESCAPE: the next character is literal, inside and outside quotes;
    # doubled quotes are still read as one
    data = b'a,b\n"say \\"hi\\"",x\\,y\n"back\\\\slash","dou""bled"\n'
    result = await read(source(tmp_path, data, escape="\\"))
    assert result.rows == [('say "hi"', "x,y"), ("back\\slash", 'dou"bled')]


async def test_escape_equal_to_the_quote_means_doubling(tmp_path: Path, read: Any) -> None:
    result = await read(source(tmp_path, b'a\n"x""y"\n', escape='"'))
    assert result.rows == [('x"y',)]


async def test_the_null_string(tmp_path: Path, read: Any) -> None:
    data = b'a,b,c\n\\N,,x\n"\\N","",\n'
    result = await read(source(tmp_path, data, null="\\N"))
    # csv does not tell a quoted value from an unquoted one: "\N" is NULL too
    assert result.rows == [(None, "", "x"), (None, "", "")]


async def test_with_null_empty_a_quoted_empty_string_is_null_too(tmp_path: Path, read: Any) -> None:
    # the csv module drops the quotes: "" and an empty value cannot be told apart, so both are
    # NULL under NULL '' (PostgreSQL would keep "" as ''); a NULL string such as '\N' keeps them
    result = await read(source(tmp_path, b'a,b\n"",\nx,""\n'))
    assert result.rows == [(None, None), ("x", None)]


async def test_latin1(tmp_path: Path, read: Any) -> None:
    data = "nom,ville\nZoé,Besançon\n".encode("latin-1")
    result = await read(source(tmp_path, data, encoding="iso8859-1"))
    assert result.rows == [("Zoé", "Besançon")]
    result = await read(source(tmp_path, data, name="u.csv"))  # the same bytes read as utf-8
    assert result.rows == []
    assert "cannot decode bytes b'\\xe9' as utf-8" in result.rejected[0].reason


async def test_utf16(tmp_path: Path, read: Any) -> None:
    data = "a,b\r\n1,é\r\n".encode("utf-16")
    result = await read(source(tmp_path, data, encoding="utf-16"))
    assert result.rows == [("1", "é")]


async def test_bytes_a_codec_cannot_escape_are_a_source_error(tmp_path: Path, read: Any) -> None:
    data = "a,b\n1,2\n".encode("utf-16-le") + b"\x00\xd8"  # a lone surrogate
    src = source(tmp_path, data, header=False, encoding="utf-16-le")
    with pytest.raises(SourceError, match="cannot decode the file as utf-16-le"):
        await read(src)


async def test_invalid_options(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    with pytest.raises(ConfigError, match="unknown encoding"):
        CsvSource(path, options(encoding="klingon"))
    with pytest.raises(ConfigError, match="not a text encoding"):
        CsvSource(path, options(encoding="base64"))
    with pytest.raises(ConfigError, match="must be different"):
        CsvSource(path, options(delimiter='"'))
    with pytest.raises(ConfigError, match="one character"):
        CsvSource(path, options(delimiter="\n"))


# --- the header ---------------------------------------------------------------------------------


async def test_duplicate_header_names(tmp_path: Path) -> None:
    src = source(tmp_path, b"id,a,b,a,id\n")
    with pytest.raises(SourceError) as caught:
        await src.open()
    assert str(caught.value).endswith(
        "the header (line 1) names columns more than once: 'id' (columns 1, 5), 'a' (columns 2, 4)"
    )


async def test_empty_header_names(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"empty column names, at positions 2, 4$"):
        await source(tmp_path, b'a,,b,""\n').open()
    with pytest.raises(SourceError, match=r"empty column names, at position 1$"):
        await source(tmp_path, b'""\n', name="one.csv").open()


async def test_a_malformed_header(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"cannot read the header \(line 2\): unterminated"):
        await source(tmp_path, b'\n"a,b\n').open()


async def test_the_header_is_taken_as_written(tmp_path: Path) -> None:
    names = (await source(tmp_path, b' a ,"b,c","d\ne"\n').schema()).names
    assert names == (" a ", "b,c", "d\ne")


async def test_a_header_changed_since_open_is_an_error(tmp_path: Path, read: Any) -> None:
    src = source(tmp_path, b"a,b\n1,2\n")
    await src.open()
    src.path.write_bytes(b"a,c\n1,2\n")
    with pytest.raises(SourceError, match="changed since the file was opened"):
        await read(src)


# --- cursor, resume, batches --------------------------------------------------------------------

#: every kind of record: rows, ragged rows, a bad byte, a NUL, a blank line, a multi-line value,
#: malformed quoting, and an unterminated quote at the end
MIXED = (
    b"\xef\xbb\xbfid,name\r\n"  # 1
    b"1,ann\r\n"  # 2
    b"2\r\n"  # 3 ragged
    b"3,b\xffb\r\n"  # 4 undecodable
    b"\r\n"  # 5 blank: not a record
    b'4,"multi\r\n'  # 6
    b'line"\r\n'  # 7
    b"5,x\x00\r\n"  # 8 NUL
    b'6,"bad"quote\r\n'  # 9 malformed
    b"7,,\r\n"  # 10 ragged
    b"8,\r\n"  # 11 NULL
    b'9,"no end\r\n'  # 12 unterminated
    b"10,gone\r\n"  # 13, inside the unterminated quote
)
MIXED_ROWS = [("1", "ann"), ("4", "multi\r\nline"), ("8", None)]
MIXED_ROW_LINES = [2, 6, 11]
MIXED_REJECT_LINES = [3, 4, 8, 9, 10, 12]


async def test_every_data_record_is_a_row_or_a_rejected_row(tmp_path: Path, read: Any) -> None:
    result = await read(source(tmp_path, MIXED))
    assert result.rows == MIXED_ROWS
    assert result.positions == MIXED_ROW_LINES
    assert [r.position for r in result.rejected] == MIXED_REJECT_LINES
    assert result.cursors == [9]  # 9 data records; the blank line is not one


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8, 9, 100])
async def test_batch_sizes_change_nothing_but_the_batches(
    tmp_path: Path, read: Any, batch_size: int
) -> None:
    result = await read(source(tmp_path, MIXED), batch_size=batch_size)
    assert result.rows == MIXED_ROWS
    assert result.positions == MIXED_ROW_LINES
    assert [r.position for r in result.rejected] == MIXED_REJECT_LINES
    sizes = [len(b.rows) + len(b.rejected) for b in result.batches]
    assert all(size == batch_size for size in sizes[:-1])
    cursors = [0, *result.cursors]
    assert [b - a for a, b in itertools.pairwise(cursors)] == sizes
    assert sum(b.nbytes for b in result.batches) > 0


async def test_resume_after_every_record(tmp_path: Path, read: Any) -> None:
    src = source(tmp_path, MIXED)
    whole = (await read(src, after=0, batch_size=2)).records
    assert len(whole) == 9
    for k in range(len(whole) + 1):
        tail = await read(src, after=k, batch_size=2)
        assert tail.records == whole[k:], k
        if tail.batches:
            assert tail.cursors[-1] == 9
    assert (await read(src, after=None)).records == whole


async def test_resume_past_the_end_is_an_error(tmp_path: Path, read: Any) -> None:
    src = source(tmp_path, b"a\n1\n2\n")
    assert (await read(src, after=2)).batches == []
    with pytest.raises(SourceError, match="holds only 2 records; it changed"):
        await read(src, after=3)


@pytest.mark.parametrize("cursor", ["3", -1, True, [3], 1.5])
async def test_a_cursor_that_is_not_a_record_count(
    tmp_path: Path, read: Any, cursor: object
) -> None:
    with pytest.raises(SourceError, match="a file's cursor is the number of records"):
        await read(source(tmp_path, b"a\n1\n"), after=cursor)


async def test_batch_size_must_be_positive(tmp_path: Path, read: Any) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await read(source(tmp_path, b"a\n1\n"), batch_size=0)


async def test_nbytes_counts_the_text_read(tmp_path: Path, read: Any) -> None:
    data = b"a,b\n" + b"1,xyz\n" * 100
    result = await read(source(tmp_path, data), batch_size=10)
    assert sum(b.nbytes for b in result.batches) == len(data) - len(b"a,b\n")


async def test_reads_of_one_source_are_independent(tmp_path: Path) -> None:
    src = source(tmp_path, b"a\n" + b"".join(b"%d\n" % i for i in range(10)))
    first, second = src.read(None, 3), src.read(None, 3)
    assert (await anext(first)).rows == [("0",), ("1",), ("2",)]
    assert (await anext(second)).rows == [("0",), ("1",), ("2",)]
    assert (await anext(first)).rows == [("3",), ("4",), ("5",)]
    await first.aclose()
    await second.aclose()


async def test_close_ends_abandoned_reads(tmp_path: Path) -> None:
    src = source(tmp_path, b"a\n1\n2\n")
    reading = src.read(None, 1)
    await anext(reading)
    await src.close()  # the read was left half-way without aclose()
    with pytest.raises(SourceError, match="the source was closed during a read"):
        await anext(reading)
    await reading.aclose()


# --- gzip ---------------------------------------------------------------------------------------


async def test_gzip_is_read_transparently(tmp_path: Path, read: Any) -> None:
    plain = await read(source(tmp_path, MIXED), batch_size=4)
    zipped = source(tmp_path, MIXED, name="data.csv.gz")
    assert (await read(zipped, batch_size=4)).records == plain.records
    assert (await read(zipped, after=4, batch_size=4)).records == plain.records[4:]


async def test_a_broken_gzip_file_is_a_source_error(tmp_path: Path, read: Any) -> None:
    (tmp_path / "bad.csv.gz").write_bytes(b"this is not gzip")
    with pytest.raises(SourceError, match="cannot read line 1"):
        await CsvSource(tmp_path / "bad.csv.gz", options()).open()
    truncated = gzip.compress(b"a\n" + b"1234567890\n" * 10_000)[:-100]
    (tmp_path / "cut.csv.gz").write_bytes(truncated)
    with pytest.raises(SourceError, match="cannot read line"):
        await read(CsvSource(tmp_path / "cut.csv.gz", options()))


async def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        await CsvSource(tmp_path / "nope.csv", options()).open()


async def test_a_long_skip_stops_when_the_read_is_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio
    import anyio.from_thread

    from stratum.connectors.files import _csv

    src = source(tmp_path, b"a\n" + b"1\n" * 100_000)
    await src.open()
    steps = 0
    next_batch = _csv._CsvScan.next_batch

    def spy(self: Any, limit: int) -> Any:
        nonlocal steps
        steps += 1
        anyio.from_thread.run_sync(scope.cancel)  # the read is cancelled during the skip
        return next_batch(self, limit)

    monkeypatch.setattr(_csv._CsvScan, "next_batch", spy)
    with anyio.CancelScope() as scope:
        async for _ in src.read(99_999, 10):
            pytest.fail("a cancelled read yielded a batch")
    assert scope.cancelled_caught
    assert steps == 1  # not the 13 steps of 8192 records that the whole skip takes


async def test_line_ends_across_the_decoders_chunks(tmp_path: Path, read: Any) -> None:
    # records of every length around the 8 KiB chunks the text layer decodes, so that some
    # CRLF pairs and some multi-byte characters straddle a chunk boundary
    lines = [f"{i},{'é' * (i % 37)}" for i in range(3000)]
    data = ("a,b\r\n" + "\r\n".join(lines) + "\r\n").encode()
    for name in ("big.csv", "big.csv.gz"):
        result = await read(source(tmp_path, data, name=name), batch_size=701)
        assert result.rejected == []
        assert result.rows == [(str(i), "é" * (i % 37) or None) for i in range(3000)]
        assert result.positions == list(range(2, 3002))
