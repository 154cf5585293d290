"""A Parquet file's row count comes from its metadata, for the progress ETA."""

from __future__ import annotations

from pathlib import Path

import anyio
import duckdb

from stratum.connectors.base import SizedSource
from stratum.connectors.files import ParquetSource


def test_parquet_knows_its_row_count_without_a_scan(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    duckdb.execute(f"COPY (SELECT range AS id FROM range(1234)) TO '{path}' (ROW_GROUP_SIZE 500)")
    source = ParquetSource(path)
    assert isinstance(source, SizedSource)

    async def main() -> int | None:
        await source.open()
        try:
            return await source.total_rows()
        finally:
            await source.close()

    assert anyio.run(main) == 1234
