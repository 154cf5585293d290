"""open_file_source: a plan's FileSource to the source that reads it."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import duckdb
import pytest

from smql import FileFormat
from stratum.connectors.files import CsvSource, JsonLinesSource, ParquetSource, open_file_source
from stratum.errors import SourceError
from stratum.plan.model import CsvOptions, FileSource

pytestmark = pytest.mark.asyncio

CSV = CsvOptions(header=True, delimiter=";", quote='"', escape=None, null="", encoding="utf-8")


async def test_a_relative_path_is_relative_to_the_plan(tmp_path: Path, read: Any) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("a;b\n1;2\n")
    src = open_file_source(FileSource("data/x.csv", FileFormat.CSV, CSV), tmp_path)
    assert isinstance(src, CsvSource)
    assert src.path == tmp_path / "data" / "x.csv"
    assert (await read(src)).rows == [("1", "2")]


async def test_an_absolute_path_stays(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"a": 1}\n')
    src = open_file_source(
        FileSource(str(tmp_path / "x.jsonl"), FileFormat.JSONL, None), Path("/elsewhere")
    )
    assert isinstance(src, JsonLinesSource)
    assert src.path == tmp_path / "x.jsonl"


async def test_a_missing_file_names_both_paths(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        open_file_source(FileSource("in/../gone.csv", FileFormat.CSV, CSV), tmp_path)
    assert str(caught.value) == (
        f"file not found: {tmp_path / 'gone.csv'} (from 'in/../gone.csv' in the plan)"
    )


async def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(SourceError, match=r"not a file: .*d\.csv \(from 'd\.csv' in the plan\)"):
        open_file_source(FileSource("d.csv", FileFormat.CSV, CSV), tmp_path)


async def test_gzipped_csv_and_jsonl(tmp_path: Path, read: Any) -> None:
    (tmp_path / "x.csv.gz").write_bytes(gzip.compress(b"a;b\n1;2\n"))
    (tmp_path / "x.jsonl.gz").write_bytes(gzip.compress(b'{"a": 1}\n'))
    csv_source = open_file_source(FileSource("x.csv.gz", FileFormat.CSV, CSV), tmp_path)
    assert (await read(csv_source)).rows == [("1", "2")]
    jsonl_source = open_file_source(FileSource("x.jsonl.gz", FileFormat.JSONL, None), tmp_path)
    assert (await read(jsonl_source)).rows == [(1,)]


async def test_parquet(tmp_path: Path, read: Any) -> None:
    with duckdb.connect() as connection:
        connection.execute(f"COPY (SELECT 1 AS a) TO '{tmp_path / 'x.parquet'}' (FORMAT parquet)")
    src = open_file_source(FileSource("x.parquet", FileFormat.PARQUET, None), tmp_path)
    assert isinstance(src, ParquetSource)
    assert (await read(src)).rows == [(1,)]
    (tmp_path / "x.parquet.gz").write_bytes(b"")
    with pytest.raises(SourceError, match="gzipped Parquet file cannot be read"):
        open_file_source(FileSource("x.parquet.gz", FileFormat.PARQUET, None), tmp_path)


async def test_csv_without_options_reads_with_the_defaults(tmp_path: Path, read: Any) -> None:
    (tmp_path / "x.csv").write_text("1,\n")
    src = open_file_source(FileSource("x.csv", FileFormat.CSV, None), tmp_path)
    assert (await read(src)).rows == [("1", None)]
