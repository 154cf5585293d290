"""ParquetSource: DuckDB types spelt as PostgreSQL spells them, file order, resume by row."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from stratum.connectors.base import Column, Schema, Source
from stratum.connectors.files import ParquetSource
from stratum.errors import SourceError

pytestmark = pytest.mark.asyncio


def parquet(path: Path, select: str, options: str = "FORMAT parquet") -> Path:
    with duckdb.connect() as connection:
        connection.execute(f"COPY ({select}) TO '{path}' ({options})")
    return path


TYPES = """
SELECT
    1::BIGINT AS big, 2::INTEGER AS int, 3::SMALLINT AS small, 4::TINYINT AS tiny,
    5::UBIGINT AS ubig, 6::UINTEGER AS uint,
    'text'::VARCHAR AS txt, 1.5::DOUBLE AS dbl, 2.5::FLOAT AS flt,
    123.45::DECIMAL(12,2) AS amount, true AS flag,
    DATE '2024-02-29' AS day, TIME '12:34:56.789' AS clock,
    TIMESTAMP '2024-01-02 03:04:05.678901' AS ts,
    TIMESTAMPTZ '2024-01-02 03:04:05+02' AS tstz,
    TIMESTAMP_NS '2024-01-02 03:04:05.123456789' AS tsns,
    '\\x00\\xffab'::BLOB AS raw,
    '1b4e28ba-2fa1-11d2-883f-0016d3cca427'::UUID AS id,
    [1, 2, NULL] AS list, {'a': 1, 'b': 'x'} AS struct, MAP {'k': DATE '2024-01-01'} AS map,
    [{'d': 1.25::DECIMAL(4,2)}] AS nested,
    NULL::VARCHAR AS nothing
"""


async def test_types_and_values(tmp_path: Path, read: Any) -> None:
    src = ParquetSource(parquet(tmp_path / "types.parquet", TYPES))
    assert isinstance(src, Source)
    schema = await src.schema()
    assert [(c.name, c.type) for c in schema.columns] == [
        ("big", "bigint"),
        ("int", "integer"),
        ("small", "smallint"),
        ("tiny", "smallint"),
        ("ubig", "numeric(20,0)"),
        ("uint", "bigint"),
        ("txt", "text"),
        ("dbl", "double precision"),
        ("flt", "real"),
        ("amount", "numeric(12,2)"),
        ("flag", "boolean"),
        ("day", "date"),
        ("clock", "time"),
        ("ts", "timestamp"),
        ("tstz", "timestamptz"),
        ("tsns", "timestamp"),
        ("raw", "bytea"),
        ("id", "uuid"),
        ("list", "jsonb"),
        ("struct", "jsonb"),
        ("map", "jsonb"),
        ("nested", "jsonb"),
        ("nothing", "text"),
    ]
    result = await read(src)
    assert result.rows == [
        (
            1,
            2,
            3,
            4,
            Decimal(5),
            6,
            "text",
            1.5,
            2.5,
            Decimal("123.45"),
            True,
            dt.date(2024, 2, 29),
            dt.time(12, 34, 56, 789000),
            dt.datetime(2024, 1, 2, 3, 4, 5, 678901),
            dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=dt.UTC),
            dt.datetime(2024, 1, 2, 3, 4, 5, 123457),  # rounded to microseconds
            b"\x00\xffab",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            [1, 2, None],
            {"a": 1, "b": "x"},
            {"k": "2024-01-01"},
            [{"d": 1.25}],
            None,
        )
    ]
    assert result.positions == [1]
    assert result.cursors == [1]


async def test_hostile_column_names_are_data(tmp_path: Path, read: Any) -> None:
    select = """SELECT 1 AS "a"";DROP TABLE x;--", [1] AS "we""ird", 'v' AS "select" """
    src = ParquetSource(parquet(tmp_path / "h.parquet", select))
    assert (await src.schema()).names == ('a";DROP TABLE x;--', 'we"ird', "select")
    assert (await read(src)).rows == [(1, [1], "v")]


ROWS = 20_000


@pytest.fixture
def many(tmp_path: Path) -> Path:
    # several row groups, so that order and resume cross their boundaries
    return parquet(
        tmp_path / "many.parquet",
        f"SELECT i AS id, 'n' || i AS name FROM range({ROWS}) t(i)",
        "FORMAT parquet, ROW_GROUP_SIZE 2048",
    )


async def test_rows_come_in_file_order(many: Path, read: Any) -> None:
    with duckdb.connect() as connection:
        groups = connection.execute(f"SELECT count(*) FROM parquet_metadata('{many}')").fetchone()
    assert groups is not None
    assert groups[0] > 2
    result = await read(ParquetSource(many), batch_size=999)
    assert [row[0] for row in result.rows] == list(range(ROWS))
    assert result.positions == list(range(1, ROWS + 1))
    assert result.cursors[-1] == ROWS
    assert all(len(b.rows) == 999 for b in result.batches[:-1])
    assert all(b.nbytes > 0 for b in result.batches)


@pytest.mark.parametrize("after", [0, 1, 2047, 2048, 2049, 10_000, ROWS - 1, ROWS])
async def test_resume_at_a_row(many: Path, read: Any, after: int) -> None:
    result = await read(ParquetSource(many), after=after, batch_size=4000)
    assert [row[0] for row in result.rows] == list(range(after, ROWS))
    assert result.positions == list(range(after + 1, ROWS + 1))
    if after < ROWS:
        assert result.cursors[-1] == ROWS


async def test_resume_after_every_row_of_a_small_file(tmp_path: Path, read: Any) -> None:
    src = ParquetSource(parquet(tmp_path / "s.parquet", "SELECT i FROM range(7) t(i)"))
    whole = (await read(src, batch_size=3)).records
    for k in range(8):
        assert (await read(src, after=k, batch_size=3)).records == whole[k:]


async def test_resume_past_the_end_is_an_error(tmp_path: Path, read: Any) -> None:
    src = ParquetSource(parquet(tmp_path / "s.parquet", "SELECT i FROM range(3) t(i)"))
    with pytest.raises(SourceError, match="holds only 3 rows; it changed"):
        await read(src, after=4)


async def test_an_empty_file(tmp_path: Path, read: Any) -> None:
    src = ParquetSource(parquet(tmp_path / "e.parquet", "SELECT 1 AS a WHERE false"))
    assert await src.schema() == Schema((Column("a", "integer"),))
    assert (await read(src)).batches == []


async def test_a_column_named_file_row_number(tmp_path: Path) -> None:
    src = ParquetSource(parquet(tmp_path / "f.parquet", "SELECT 1 AS file_row_number"))
    with pytest.raises(SourceError, match="a column is named file_row_number"):
        await src.open()


async def test_not_a_parquet_file(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match="cannot read it as Parquet"):
        await ParquetSource(tmp_path / "x.parquet").open()


async def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        await ParquetSource(tmp_path / "none.parquet").open()
