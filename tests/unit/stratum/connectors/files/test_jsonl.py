"""JsonLinesSource: inferred schema, rejects with line numbers, resume, gzip."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stratum.connectors.base import Column, Schema, Source
from stratum.connectors.files import JsonLinesSource
from stratum.errors import SourceError

pytestmark = pytest.mark.asyncio


def source(tmp_path: Path, data: bytes | list[Any], name: str = "data.jsonl") -> JsonLinesSource:
    if isinstance(data, list):
        data = b"".join(json.dumps(value).encode() + b"\n" for value in data)
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return JsonLinesSource(path)


async def test_types_are_inferred_from_the_values(tmp_path: Path, read: Any) -> None:
    objects = [
        {"i": 1, "f": 1.5, "n": 1, "b": True, "s": "x", "o": {"k": 1}, "a": [1], "z": None},
        {"i": 2, "f": 2.5, "n": 2.5, "b": False, "s": "y", "o": [], "a": {"k": []}, "z": None},
    ]
    src = source(tmp_path, objects)
    assert isinstance(src, Source)
    assert await src.schema() == Schema(
        (
            Column("i", "bigint"),
            Column("f", "double precision"),
            Column("n", "double precision"),
            Column("b", "boolean"),
            Column("s", "text"),
            Column("o", "jsonb"),
            Column("a", "jsonb"),
            Column("z", "text"),
        )
    )
    result = await read(src)
    assert result.rows == [
        (1, 1.5, 1.0, True, "x", {"k": 1}, [1], None),
        (2, 2.5, 2.5, False, "y", [], {"k": []}, None),
    ]
    assert type(result.rows[0][2]) is float
    assert result.positions == [1, 2]


async def test_keys_in_first_seen_order_missing_keys_are_null(tmp_path: Path, read: Any) -> None:
    src = source(tmp_path, [{"b": 1}, {"a": "x", "b": 2}, {"c": True}])
    assert (await src.schema()).names == ("b", "a", "c")
    assert (await read(src)).rows == [(1, None, None), (2, "x", None), (None, None, True)]


async def test_mixed_kinds_make_text_with_json_for_non_strings(tmp_path: Path, read: Any) -> None:
    objects = [{"v": "s"}, {"v": 1}, {"v": True}, {"v": {"a": [1, "é"]}}, {"v": 1.5}, {"v": None}]
    src = source(tmp_path, objects)
    assert await src.schema() == Schema((Column("v", "text"),))
    assert (await read(src)).rows == [
        ("s",),
        ("1",),
        ("true",),
        ('{"a": [1, "é"]}',),
        ("1.5",),
        (None,),
    ]


async def test_integers_beyond_bigint_are_numeric(tmp_path: Path, read: Any) -> None:
    src = source(tmp_path, b'{"v": 1}\n{"v": 9223372036854775808}\n')
    assert await src.schema() == Schema((Column("v", "numeric"),))
    assert (await read(src)).rows == [(Decimal(1),), (Decimal(9223372036854775808),)]


async def test_blank_lines_are_skipped_but_counted(tmp_path: Path, read: Any) -> None:
    data = b'\n{"a": 1}\r\n   \n\t\r\n{"a": 2}\n\n'
    result = await read(source(tmp_path, data))
    assert result.rows == [(1,), (2,)]
    assert result.positions == [2, 5]
    assert result.cursors == [2]


async def test_a_bom_is_skipped(tmp_path: Path, read: Any) -> None:
    result = await read(source(tmp_path, b'\xef\xbb\xbf{"a": 1}\n'))
    assert result.rows == [(1,)]


async def test_bad_records_are_rejected_with_their_lines(tmp_path: Path, read: Any) -> None:
    data = (
        b'{"a": 1, "b": "x"}\n'  # 1
        b"not json\n"  # 2
        b"[1, 2]\n"  # 3
        b'"text"\n'  # 4
        b'{"a": NaN}\n'  # 5
        b'{"a": 1, "b": "\xff"}\n'  # 6
        b'{"a": 2, "b": "nul \\u0000"}\n'  # 7
        b'{"a": 3, "b": "lone \\ud800"}\n'  # 8
        b'{"a": 4, "b": "pair \\ud83d\\ude00"}\n'  # 9: a surrogate pair is fine
        b'{"a": 5, "b": "back\\\\u0000slash"}\n'  # 10: an escaped backslash, not a NUL
        b'{"a": 6\n'  # 11
    )
    result = await read(source(tmp_path, data))
    assert result.rows == [(1, "x"), (4, "pair 😀"), (5, "back\\u0000slash")]
    assert result.positions == [1, 9, 10]
    assert [(r.position, r.reason) for r in result.rejected] == [
        (2, "invalid JSON: Expecting value (column 1)"),
        (3, "expected a JSON object, found an array [1, 2]"),
        (4, 'expected a JSON object, found a string "text"'),
        (5, "invalid JSON: NaN is not JSON"),
        (6, "cannot decode bytes b'\\xff' as utf-8 (invalid start byte)"),
        (7, "a string holds \\u0000 or a lone surrogate, which PostgreSQL cannot store"),
        (8, "a string holds \\u0000 or a lone surrogate, which PostgreSQL cannot store"),
        (11, "invalid JSON: Expecting ',' delimiter (column 8)"),
    ]
    assert result.rejected[0].row == "not json"
    assert result.rejected[4].row == '{"a": 1, "b": "\\xff"}'
    assert result.cursors == [11]


async def test_later_objects_must_fit_the_schema(tmp_path: Path, read: Any) -> None:
    first = [{"id": i, "name": f"n{i}", "score": 1.5, "tags": ["t"]} for i in range(1000)]
    later = [
        {"id": 1000},  # missing keys: NULL
        {"id": 1001, "extra": 1},
        {"id": 1002, "extra": 1, "more": 2},
        {"id": "1003"},
        {"id": 1004, "score": 2},  # an integer in a double precision column: converted
        {"id": 1005, "score": "2"},
        {"id": 1006, "name": 7},  # anything in a text column: its JSON text
        {"id": 1007, "tags": "t"},
        {"id": 1.5},
        {"id": True},
    ]
    src = source(tmp_path, first + later)
    assert (await src.schema()).names == ("id", "name", "score", "tags")
    result = await read(src, batch_size=300)
    assert result.rows[1000:] == [
        (1000, None, None, None),
        (1004, None, 2.0, None),
        (1006, "7", None, None),
    ]
    assert [(r.position, r.reason) for r in result.rejected] == [
        (1002, "unexpected key 'extra'"),
        (1003, "unexpected keys 'extra', 'more'"),
        (1004, "key 'id': expected bigint, found a string \"1003\""),
        (1006, "key 'score': expected double precision, found a string \"2\""),
        (1008, "key 'tags': expected jsonb, found a string \"t\""),
        (1009, "key 'id': expected bigint, found a number 1.5"),
        (1010, "key 'id': expected bigint, found a boolean true"),
    ]
    assert result.rejected[0].row == '{"id": 1001, "extra": 1}'


async def test_only_the_first_1000_objects_make_the_schema(tmp_path: Path) -> None:
    objects = [{"a": 1}] * 999 + [{"a": 1, "b": 1}, {"c": 1}]
    assert (await source(tmp_path, objects).schema()).names == ("a", "b")


async def test_invalid_lines_do_not_count_toward_the_1000(tmp_path: Path) -> None:
    data = b"bad\n" * 5 + b'{"a": 1}\n' * 999 + b'{"b": 1}\n'
    assert (await source(tmp_path, data).schema()).names == ("a", "b")


async def test_an_empty_key_cannot_name_a_column(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="line 2: the key '' cannot name a column"):
        await source(tmp_path, b'{"a": 1}\n{"": 1}\n').open()


async def test_an_empty_file_has_no_columns_and_no_rows(tmp_path: Path, read: Any) -> None:
    src = source(tmp_path, b"\n\n")
    assert await src.schema() == Schema(())
    assert (await read(src)).batches == []


MIXED = (
    b'{"a": 1}\n'  # 1
    b"\n"  # 2: blank, not a record
    b"oops\n"  # 3
    b'{"a": 2, "b": "x"}\n'  # 4
    b'{"z": 1}\n'  # 5
    b"\n"  # 6
    b'{"b": "y"}\n'  # 7
    b"[]\n"  # 8
    b'{"a": "s"}\n'  # 9
    b'{"a": 3}'  # 10, no line end
)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
async def test_every_record_is_a_row_or_a_rejected_row(
    tmp_path: Path, read: Any, batch_size: int
) -> None:
    src = source(tmp_path, MIXED)
    result = await read(src, batch_size=batch_size)
    assert result.positions == [1, 4, 5, 7, 9, 10]
    assert [r.position for r in result.rejected] == [3, 8]
    assert result.cursors[-1] == 8
    sizes = [len(b.rows) + len(b.rejected) for b in result.batches]
    assert all(size == batch_size for size in sizes[:-1])


async def test_resume_after_every_record(tmp_path: Path, read: Any) -> None:
    src = source(tmp_path, MIXED)
    whole = (await read(src, batch_size=3)).records
    assert len(whole) == 8
    for k in range(len(whole) + 1):
        assert (await read(src, after=k, batch_size=3)).records == whole[k:], k
    with pytest.raises(SourceError, match="holds only 8 records"):
        await read(src, after=9)


async def test_gzip_is_read_transparently(tmp_path: Path, read: Any) -> None:
    plain = await read(source(tmp_path, MIXED))
    zipped = source(tmp_path, MIXED, name="data.jsonl.gz")
    assert (await read(zipped)).records == plain.records
    assert (await read(zipped, after=5)).records == plain.records[5:]


async def test_a_broken_gzip_file_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(SourceError, match="cannot read line 1"):
        await JsonLinesSource(tmp_path / "bad.jsonl.gz").open()


async def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        await JsonLinesSource(tmp_path / "none.jsonl").open()
