"""What the shared contract suite (tests/integration/contract) does not show about DuckDB:
where its calls run, and how it names things."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

from smql import Mode
from stratum.connectors.base import Checkpoint, Column, Schema
from stratum.connectors.duckdb import DuckDBDestination
from stratum.errors import DestinationError
from stratum.plan.model import TableRef

SCHEMA = Schema((Column("id", "bigint", False), Column("note", "text")), ("id",))
CHECKPOINT = Checkpoint("item", "item-hash", "plan-hash", "run")


@pytest.mark.asyncio
async def test_duckdb_never_runs_on_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    real_upsert = DuckDBDestination._upsert_checkpoint

    def spy(self: DuckDBDestination, conn: duckdb.DuckDBPyConnection, cp: Checkpoint) -> None:
        threads.append(threading.get_ident())
        real_upsert(self, conn, cp)

    monkeypatch.setattr(DuckDBDestination, "_upsert_checkpoint", spy)
    async with DuckDBDestination(":memory:") as destination:
        target = TableRef("db", None, "t")
        prepared = await destination.prepare(target, SCHEMA, Mode.FULL, CHECKPOINT)
        await destination.write(target, SCHEMA, [(1, "a")], prepared, Mode.APPEND, ())
        await destination.save_checkpoint(prepared)
    assert len(threads) == 3
    assert loop_thread not in threads


@pytest.mark.asyncio
async def test_a_file_named_like_the_bookkeeping_schema(tmp_path: Path) -> None:
    """The database file `stratum.duckdb` is the catalog "stratum", next to the schema
    "stratum": names are qualified with the catalog, so neither is taken for the other."""
    path = tmp_path / "stratum.duckdb"
    target = TableRef("db", "stratum", "orders")
    async with DuckDBDestination(path) as destination:
        prepared = await destination.prepare(target, SCHEMA, Mode.FULL, CHECKPOINT)
        await destination.write(target, SCHEMA, [(1, "a")], prepared, Mode.APPEND, ())
        assert await destination.checkpoint("item") == prepared
        assert await destination.row_count(target) == 1
    with duckdb.connect(str(path)) as conn:
        tables = conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL"
        ).fetchall()
    assert tables == [("stratum", "checkpoints"), ("stratum", "orders")]


@pytest.mark.asyncio
async def test_table_names_match_as_duckdb_matches_them() -> None:
    """DuckDB resolves names case-insensitively, quoted or not; table_exists agrees."""
    async with DuckDBDestination(":memory:") as destination:
        await destination.prepare(
            TableRef("db", "Sales", "Orders"), SCHEMA, Mode.APPEND, CHECKPOINT
        )
        assert await destination.table_exists(TableRef("db", "sales", "orders"))
        assert not await destination.table_exists(TableRef("db", None, "orders"))


@pytest.mark.asyncio
async def test_opening_twice_and_closing_twice_are_harmless() -> None:
    destination = DuckDBDestination(":memory:")
    await destination.open()
    await destination.open()
    await destination.close()
    await destination.close()


@pytest.mark.asyncio
async def test_a_closed_destination_refuses_work() -> None:
    destination = DuckDBDestination(":memory:")
    with pytest.raises(DestinationError, match="not open"):
        await destination.checkpoint("item")


@pytest.mark.asyncio
async def test_a_file_that_cannot_be_opened_is_terminal(tmp_path: Path) -> None:
    with pytest.raises(DestinationError):
        await DuckDBDestination(tmp_path / "no" / "such" / "dir" / "x.duckdb").open()
    (tmp_path / "not-a-database.duckdb").write_text("hello, this is not DuckDB\n" * 100)
    with pytest.raises(DestinationError):
        await DuckDBDestination(tmp_path / "not-a-database.duckdb").open()


@pytest.mark.asyncio
async def test_unconstrained_numeric_keeps_nine_decimals() -> None:
    schema = Schema((Column("id", "integer", False), Column("x", "numeric")), ("id",))
    target = TableRef("db", None, "n")
    async with DuckDBDestination(":memory:") as destination:
        prepared = await destination.prepare(target, schema, Mode.APPEND, CHECKPOINT)
        from decimal import Decimal

        value = Decimal("12345678901234567890123456789.123456789")
        await destination.write(target, schema, [(1, value)], prepared, Mode.APPEND, ())
        conn = destination._conn
        assert conn is not None
        assert conn.execute("SELECT x FROM n").fetchall() == [(value,)]
