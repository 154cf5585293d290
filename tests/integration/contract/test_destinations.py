"""The contract every destination keeps, run against each real one (dlt's destinations_configs).

`duckdb` runs in a temporary file; `postgres` in the module's throwaway database on the real
server (`postgres_database`), and `mysql` in the module's throwaway MariaDB database
(`mariadb_database`), so each is skipped when its server is unreachable, or fails with
STRATUM_REQUIRE_DATABASES=1. Each test works on tables and items of its own (`Harness.name`),
so the tests share the PostgreSQL database without seeing each other.

What is checked is what the engine's exactly-once promise rests on: rows and checkpoint commit
together or not at all, a probe leaves nothing, one-time steps never repeat, values round-trip
exactly, bad rows raise RowError with nothing committed, and names are data, never SQL.
"""

from __future__ import annotations

import json
import math
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
import pytest_asyncio

from smql import Mode
from stratum.connectors.base import Checkpoint, Column, Destination, Row, Schema
from stratum.connectors.duckdb import DuckDBDestination
from stratum.connectors.mysql.destination import MySQLDestination
from stratum.connectors.postgres import PostgresDestination
from stratum.errors import ConfigError, DestinationError, RowError
from stratum.plan.model import TableRef
from tests.support.databases import DatabaseServer, ThrowawayDatabase

AnyDestination = PostgresDestination | DuckDBDestination | MySQLDestination


@dataclass
class Harness:
    """A destination under test, and a way to look at its database behind its back."""

    kind: str
    destination: AnyDestination
    make: Callable[[], AnyDestination]  # another destination on the same database
    fetch: Callable[[TableRef, Schema], Awaitable[list[Row]]]  # rows, ordered by column 1
    execute: Callable[[str], Awaitable[None]]  # raw SQL, in its own transaction
    suffix: str
    default_schema: str  # where a TableRef without a schema lands
    query: Callable[[str], Awaitable[list[Row]]]  # raw SQL's rows, as the driver reads them

    def name(self, base: str) -> str:
        """`base` made unique to this test."""
        return f"{base}_{self.suffix}"

    def table(self, base: str, schema: str | None = None) -> TableRef:
        return TableRef("target", schema, self.name(base))

    def checkpoint(self, base: str = "item", **changes: Any) -> Checkpoint:
        fields: dict[str, Any] = {
            "item": self.name(base),
            "item_hash": "item-hash",
            "plan_hash": "plan-hash",
            "run_id": "run-1",
        }
        return Checkpoint(**(fields | changes))


# --- the two destinations -----------------------------------------------------------------------


def _select_list(schema: Schema, dialect: str, quote: Callable[[str], str]) -> str:
    parts = []
    for column in schema.columns:
        name = quote(column.name)
        if dialect == "duckdb" and column.type in ("timestamptz", "timestamp with time zone"):
            name = f"({name} AT TIME ZONE 'UTC')"  # reading TIMESTAMPTZ into Python needs pytz
        parts.append(name)
    return ", ".join(parts)


def _qualified(target: TableRef, default_schema: str) -> str:
    parts = (target.schema or default_schema, target.table or "")
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _json_columns(schema: Schema) -> list[int]:
    return [i for i, c in enumerate(schema.columns) if c.type in ("json", "jsonb")]


async def _duckdb_harness(path: Path, suffix: str) -> AsyncIterator[Harness]:
    import duckdb

    async def fetch(target: TableRef, schema: Schema) -> list[Row]:
        with duckdb.connect(str(path)) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            rows = conn.execute(
                f"SELECT {_select_list(schema, 'duckdb', _quote)} "
                f"FROM {_qualified(target, 'main')} ORDER BY 1"
            ).fetchall()
        # timestamptz was read as its UTC wall time (see _select_list)
        tz_columns = [i for i, c in enumerate(schema.columns) if c.type == "timestamptz"]
        json_columns = _json_columns(schema)
        out = []
        for row in rows:
            values = list(row)
            for i in tz_columns:
                if values[i] is not None:
                    values[i] = values[i].replace(tzinfo=UTC)
            for i in json_columns:
                if values[i] is not None:
                    values[i] = json.loads(values[i])
            out.append(tuple(values))
        return out

    async def execute(sql: str) -> None:
        with duckdb.connect(str(path)) as conn:
            conn.execute(sql)

    async def query(sql: str) -> list[Row]:
        with duckdb.connect(str(path)) as conn:
            return [tuple(row) for row in conn.execute(sql).fetchall()]

    destination = DuckDBDestination(path)
    await destination.open()
    try:
        yield Harness(
            "duckdb",
            destination,
            lambda: DuckDBDestination(path),
            fetch,
            execute,
            suffix,
            "main",
            query,
        )
    finally:
        await destination.close()


async def _postgres_harness(url: str, suffix: str) -> AsyncIterator[Harness]:
    import asyncpg

    async def connect() -> Any:
        conn = await asyncpg.connect(url)
        for name in ("json", "jsonb"):
            await conn.set_type_codec(
                name, schema="pg_catalog", encoder=json.dumps, decoder=json.loads
            )
        return conn

    async def fetch(target: TableRef, schema: Schema) -> list[Row]:
        conn = await connect()
        try:
            rows = await conn.fetch(
                f"SELECT {_select_list(schema, 'postgres', _quote)} "
                f"FROM {_qualified(target, 'public')} ORDER BY 1"
            )
        finally:
            await conn.close()
        # asyncpg reads uuid as its own UUID class; the value is what is compared
        return [
            tuple(uuid.UUID(str(v)) if isinstance(v, uuid.UUID) else v for v in row) for row in rows
        ]

    async def execute(sql: str) -> None:
        conn = await connect()
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def query(sql: str) -> list[Row]:
        conn = await connect()
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    destination = PostgresDestination(url)
    await destination.open()
    try:
        yield Harness(
            "postgres",
            destination,
            lambda: PostgresDestination(url),
            fetch,
            execute,
            suffix,
            "public",
            query,
        )
    finally:
        await destination.close()


async def _mysql_harness(url: str, suffix: str) -> AsyncIterator[Harness]:
    import asyncmy

    server = DatabaseServer.from_url(url)
    database = url.rsplit("/", 1)[1]

    async def connect() -> Any:
        # ANSI_QUOTES: the tests' raw SQL quotes names with double quotes, as elsewhere
        return await asyncmy.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
            database=database,
            charset="utf8mb4",
            autocommit=True,
            init_command="SET sql_mode = 'ANSI_QUOTES', time_zone = '+00:00'",
        )

    async def fetch(target: TableRef, schema: Schema) -> list[Row]:
        conn = await connect()
        try:
            async with conn.cursor() as cursor:
                await cursor.execute(
                    f"SELECT {_select_list(schema, 'mysql', _quote)} "
                    f"FROM {_qualified(target, database)} ORDER BY 1"
                )
                rows = await cursor.fetchall()
        finally:
            await conn.ensure_closed()
        # what MySQL has no type for is read back as the column's type says: TINYINT(1) as
        # bool, TIME (read as a timedelta) as time, JSON text, CHAR(36) uuids, UTC DATETIMEs
        types = [column.type for column in schema.columns]
        out = []
        for row in rows:
            values = list(row)
            for i, type_ in enumerate(types):
                value = values[i]
                if value is None:
                    continue
                if type_ == "boolean":
                    values[i] = bool(value)
                elif type_ == "time":
                    values[i] = (datetime.min + value).time()
                elif type_ in ("json", "jsonb"):
                    values[i] = json.loads(value)
                elif type_ == "uuid":
                    values[i] = uuid.UUID(value)
                elif type_ == "timestamptz":
                    values[i] = value.replace(tzinfo=UTC)
            out.append(tuple(values))
        return out

    async def execute(sql: str) -> None:
        conn = await connect()
        try:
            async with conn.cursor() as cursor:
                await cursor.execute(sql)
        finally:
            await conn.ensure_closed()

    async def query(sql: str) -> list[Row]:
        conn = await connect()
        try:
            async with conn.cursor() as cursor:
                await cursor.execute(sql)
                return [tuple(row) for row in await cursor.fetchall() or ()]
        finally:
            await conn.ensure_closed()

    destination = MySQLDestination(url)
    await destination.open()
    try:
        yield Harness(
            "mysql",
            destination,
            lambda: MySQLDestination(url),
            fetch,
            execute,
            suffix,
            database,
            query,
        )
    finally:
        await destination.close()
        # the databases the test created (a schema is a database in MySQL) go with it
        conn = await connect()
        try:
            async with conn.cursor() as cursor:
                await cursor.execute(
                    "SELECT schema_name FROM information_schema.schemata "
                    "WHERE RIGHT(schema_name, %s) = %s",
                    (len(suffix) + 1, "_" + suffix),
                )
                for (name,) in await cursor.fetchall():
                    await cursor.execute("DROP DATABASE " + _quote(name))
        finally:
            await conn.ensure_closed()


@pytest.fixture(
    params=[
        "duckdb",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mariadb),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """The kind of destination, and where its database is: a file, or a URL."""
    if request.param == "duckdb":
        return "duckdb", str(tmp_path / "target.duckdb")
    if request.param == "mysql":
        mariadb: ThrowawayDatabase = request.getfixturevalue("mariadb_database")
        return "mysql", mariadb.url
    # The conftest's fixture: skipped without a server, a failure when databases are required.
    # Resolved here, in a plain fixture, because it runs its own event loop.
    database: ThrowawayDatabase = request.getfixturevalue("postgres_database")
    return "postgres", database.url


@pytest_asyncio.fixture
async def harness(backend: tuple[str, str]) -> AsyncIterator[Harness]:
    kind, where = backend
    suffix = secrets.token_hex(4)
    if kind == "duckdb":
        harnesses = _duckdb_harness(Path(where), suffix)
    elif kind == "mysql":
        harnesses = _mysql_harness(where, suffix)
    else:
        harnesses = _postgres_harness(where, suffix)
    async for h in harnesses:
        yield h


ORDERS = Schema(
    (
        Column("id", "bigint", nullable=False),
        Column("label", "text", nullable=False),
        Column("amount", "numeric(12,2)"),
    ),
    primary_key=("id",),
)


def _orders(*ids: int, label: str = "row") -> list[Row]:
    return [(i, f"{label} {i}", Decimal(i) / 100) for i in ids]


async def _prepared(
    h: Harness, base: str = "orders", schema: Schema = ORDERS, mode: Mode = Mode.APPEND
) -> tuple[TableRef, Checkpoint]:
    target = h.table(base)
    checkpoint = await h.destination.prepare(target, schema, mode, h.checkpoint(base))
    return target, checkpoint


# --- the shape --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_is_a_destination_with_its_capabilities(harness: Harness) -> None:
    destination = harness.destination
    assert isinstance(destination, Destination)
    capabilities = destination.capabilities
    assert capabilities.dialect == harness.kind
    assert capabilities.transactional
    if harness.kind == "mysql":
        # MySQL differs: no COPY (multi-row INSERTs), DDL commits implicitly, and an upsert is
        # INSERT ... ON DUPLICATE KEY UPDATE
        assert not capabilities.copy
        assert not capabilities.transactional_ddl
        assert capabilities.upsert == "on_duplicate_key"
    else:
        assert capabilities.copy
        assert capabilities.transactional_ddl
        assert capabilities.upsert == "on_conflict"
    expected_length = {"duckdb": 255, "postgres": 63, "mysql": 64}[harness.kind]
    assert capabilities.max_identifier_length == expected_length


# --- checkpoints ------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "cursor", [None, 0, 12345678901, "2024-01-01T00:00:00", ["a", 1, None, 2.5, ["nested"]]]
)
async def test_checkpoint_round_trip(harness: Harness, cursor: Any) -> None:
    destination = harness.destination
    assert await destination.checkpoint(harness.name("item")) is None
    saved = harness.checkpoint(
        cursor=cursor,
        batches=3,
        rows_read=10,
        rows_written=7,
        rows_rejected=2,
        rows_filtered=1,
        steps=("create", "truncate"),
        finished=True,
    )
    await destination.save_checkpoint(saved)
    assert await destination.checkpoint(saved.item) == saved

    later = replace(saved, run_id="run-2", batches=4, finished=False, steps=("create",))
    await destination.save_checkpoint(later)
    assert await destination.checkpoint(saved.item) == later


@pytest.mark.asyncio
async def test_checkpoints_survive_reopening(harness: Harness) -> None:
    saved = harness.checkpoint(cursor=[1, "x"], batches=1)
    await harness.destination.save_checkpoint(saved)
    again = harness.make()
    await again.open()
    try:
        assert await again.checkpoint(saved.item) == saved
    finally:
        await again.close()


@pytest.mark.asyncio
async def test_forget(harness: Harness) -> None:
    destination = harness.destination
    kept, dropped = harness.checkpoint("kept"), harness.checkpoint("dropped")
    await destination.save_checkpoint(kept)
    await destination.save_checkpoint(dropped)
    await destination.forget(dropped.item)
    assert await destination.checkpoint(dropped.item) is None
    assert await destination.checkpoint(kept.item) == kept
    await destination.forget(harness.name("never-saved"))  # nothing to forget: no error


# --- prepare ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_prepare_creates_and_truncates_once_and_never_again(harness: Harness) -> None:
    destination = harness.destination
    target = harness.table("full")
    assert not await destination.table_exists(target)

    first = await destination.prepare(target, ORDERS, Mode.FULL, harness.checkpoint("full"))
    assert first.steps == ("create", "truncate")
    assert await destination.checkpoint(first.item) == first
    assert await destination.table_exists(target)
    assert await destination.row_count(target) == 0

    await destination.write(target, ORDERS, _orders(1, 2, 3), first, Mode.FULL, ())
    # a resume: the checkpoint says both steps are done, so neither happens again
    second = await destination.prepare(target, ORDERS, Mode.FULL, first)
    assert second.steps == ("create", "truncate")
    assert await destination.row_count(target) == 3

    # even when the table has gone behind the engine's back, "create" is not redone (the
    # engine notices with table_exists and refuses to resume)
    await harness.execute(f"DROP TABLE {_qualified(target, _default_schema(harness))}")
    third = await destination.prepare(target, ORDERS, Mode.FULL, second)
    assert third.steps == ("create", "truncate")
    assert not await destination.table_exists(target)


@pytest.mark.asyncio
async def test_prepare_truncates_a_full_target_that_exists_already(harness: Harness) -> None:
    destination = harness.destination
    target, checkpoint = await _prepared(harness, "existing")
    await destination.write(target, ORDERS, _orders(1, 2), checkpoint, Mode.APPEND, ())

    # a new run of the item in full mode: the table is there, so it is only emptied
    fresh = harness.checkpoint("existing", run_id="run-2")
    prepared = await destination.prepare(target, ORDERS, Mode.FULL, fresh)
    assert prepared.steps == ("create", "truncate")
    assert await destination.row_count(target) == 0
    # the same keys load again
    await destination.write(target, ORDERS, _orders(1, 2), prepared, Mode.FULL, ())
    assert await harness.fetch(target, ORDERS) == _orders(1, 2)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", [Mode.APPEND, Mode.INCREMENTAL, Mode.UPSERT])
async def test_prepare_never_truncates_other_modes(harness: Harness, mode: Mode) -> None:
    destination = harness.destination
    target, checkpoint = await _prepared(harness, "kept")
    await destination.write(target, ORDERS, _orders(1, 2), checkpoint, Mode.APPEND, ())
    prepared = await destination.prepare(target, ORDERS, mode, harness.checkpoint("other"))
    assert prepared.steps == ("create",)
    assert await destination.row_count(target) == 2


@pytest.mark.asyncio
async def test_prepare_creates_the_schema_and_a_table_without_a_key(harness: Harness) -> None:
    destination = harness.destination
    schema_name = harness.name("stage")
    target = TableRef("target", schema_name, "events")
    keyless = Schema((Column("n", "integer"), Column("note", "text")))
    await destination.prepare(target, keyless, Mode.APPEND, harness.checkpoint())
    checkpoint = harness.checkpoint()
    # no primary key: the same row twice is two rows
    await destination.write(target, keyless, [(1, "a"), (1, "a")], checkpoint, Mode.APPEND, ())
    assert await harness.fetch(target, keyless) == [(1, "a"), (1, "a")]


# --- write: exactly once ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_write_commits_rows_and_checkpoint_together(harness: Harness) -> None:
    destination = harness.destination
    target, prepared = await _prepared(harness)
    batch = replace(prepared, cursor=[2], batches=1, rows_read=2, rows_written=2)
    await destination.write(target, ORDERS, _orders(1, 2), batch, Mode.APPEND, ())
    assert await harness.fetch(target, ORDERS) == _orders(1, 2)
    assert await destination.checkpoint(batch.item) == batch
    assert await destination.row_count(target) == 2


@pytest.mark.asyncio
async def test_a_probe_leaves_neither_rows_nor_checkpoint(harness: Harness) -> None:
    destination = harness.destination
    target, prepared = await _prepared(harness)
    probe = replace(prepared, cursor=[3], batches=1)
    await destination.write(target, ORDERS, _orders(1, 2, 3), probe, Mode.APPEND, (), commit=False)
    assert await destination.row_count(target) == 0
    assert await destination.checkpoint(prepared.item) == prepared

    upsert_probe = replace(prepared, cursor=[4], batches=1)
    await destination.write(
        target, ORDERS, _orders(4), upsert_probe, Mode.UPSERT, ("id",), commit=False
    )
    assert await destination.row_count(target) == 0
    assert await destination.checkpoint(prepared.item) == prepared


class InjectedFault(Exception):
    pass


@pytest.mark.asyncio
@pytest.mark.parametrize(("mode", "key"), [(Mode.APPEND, ()), (Mode.UPSERT, ("id",))])
async def test_a_failure_between_rows_and_checkpoint_leaves_neither(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, mode: Mode, key: tuple[str, ...]
) -> None:
    destination = harness.destination
    target, prepared = await _prepared(harness)

    def fail(*args: object) -> None:
        raise InjectedFault("the process dies between the rows and the checkpoint")

    with monkeypatch.context() as patch:
        patch.setattr(destination, "_upsert_checkpoint", fail)
        with pytest.raises(InjectedFault):
            await destination.write(
                target, ORDERS, _orders(1, 2), replace(prepared, batches=1), mode, key
            )
    assert await destination.row_count(target) == 0
    assert await destination.checkpoint(prepared.item) == prepared

    # the destination is still usable, and the batch replays cleanly
    again = replace(prepared, batches=1, cursor=[2])
    await destination.write(target, ORDERS, _orders(1, 2), again, mode, key)
    assert await harness.fetch(target, ORDERS) == _orders(1, 2)
    assert await destination.checkpoint(prepared.item) == again


@pytest.mark.asyncio
async def test_an_empty_batch_still_commits_its_checkpoint(harness: Harness) -> None:
    destination = harness.destination
    target, prepared = await _prepared(harness)
    batch = replace(prepared, batches=1, rows_read=5, rows_filtered=5, cursor=[5])
    await destination.write(target, ORDERS, [], batch, Mode.APPEND, ())
    assert await destination.checkpoint(prepared.item) == batch
    assert await destination.row_count(target) == 0


# --- upsert -----------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", [Mode.UPSERT, Mode.INCREMENTAL])
async def test_upsert_updates_in_place(harness: Harness, mode: Mode) -> None:
    destination = harness.destination
    target, prepared = await _prepared(harness, mode=mode)
    await destination.write(target, ORDERS, _orders(1, 2, 3), prepared, mode, ("id",))
    # 2 changes, 4 is new, and 4 comes twice: the later row wins, as if applied in order
    batch = [(2, "changed", Decimal("9.99")), (4, "first", None), (4, "second", Decimal("4.00"))]
    await destination.write(target, ORDERS, batch, prepared, mode, ("id",))
    assert await harness.fetch(target, ORDERS) == [
        (1, "row 1", Decimal("0.01")),
        (2, "changed", Decimal("9.99")),
        (3, "row 3", Decimal("0.03")),
        (4, "second", Decimal("4.00")),
    ]


@pytest.mark.asyncio
async def test_upsert_when_every_column_is_the_key(harness: Harness) -> None:
    destination = harness.destination
    pairs = Schema((Column("a", "integer", False), Column("b", "text", False)), ("a", "b"))
    target, prepared = await _prepared(harness, "pairs", pairs)
    await destination.write(target, pairs, [(1, "x"), (1, "x")], prepared, Mode.UPSERT, ("a", "b"))
    await destination.write(target, pairs, [(1, "x"), (2, "y")], prepared, Mode.UPSERT, ("a", "b"))
    assert await harness.fetch(target, pairs) == [(1, "x"), (2, "y")]


@pytest.mark.asyncio
async def test_incremental_without_a_key_appends(harness: Harness) -> None:
    destination = harness.destination
    keyless = Schema((Column("n", "integer"),))
    target, prepared = await _prepared(harness, "log", keyless, Mode.INCREMENTAL)
    await destination.write(target, keyless, [(1,), (2,)], prepared, Mode.INCREMENTAL, ())
    await destination.write(target, keyless, [(2,)], prepared, Mode.INCREMENTAL, ())
    assert await harness.fetch(target, keyless) == [(1,), (2,), (2,)]


@pytest.mark.asyncio
async def test_upsert_without_a_key_is_refused(harness: Harness) -> None:
    target, prepared = await _prepared(harness)
    with pytest.raises(ConfigError, match="KEY"):
        await harness.destination.write(target, ORDERS, _orders(1), prepared, Mode.UPSERT, ())


# --- values -----------------------------------------------------------------------------------

VALUES = Schema(
    (
        Column("id", "integer", nullable=False),
        Column("text", "text"),
        Column("big", "bigint"),
        Column("small", "smallint"),
        Column("float", "double precision"),
        Column("money", "numeric(20,6)"),
        Column("wide", "numeric(38,9)"),
        Column("flag", "boolean"),
        Column("day", "date"),
        Column("moment", "timestamp"),
        Column("instant", "timestamptz"),
        Column("clock", "time"),
        Column("blob", "bytea"),
        Column("doc", "jsonb"),
        Column("raw_json", "json"),
        Column("uid", "uuid"),
        Column("label", "varchar(200)"),
    ),
    primary_key=("id",),
)

TRICKY_TEXT = [
    "",
    'quote " and double "" quotes',
    "comma, separated, values",
    "line\nbreak and\r\ncrlf and lone\rcr",
    "tab\there",
    "back\\slash \\N \\\\ and \\x00",
    "NULL",
    "null",
    "ünïcödé — ✓ 😀 𝔘 中文 عربى",
    "'single' quotes; DROP TABLE x; --",
    " leading and trailing spaces ",
    "\u2028line separator\u2029",
    "x" * 10_000,
]

PARIS = timezone(timedelta(hours=2))
BEHIND = timezone(-timedelta(hours=3, minutes=30))


def _value_rows() -> list[Row]:
    rows: list[Row] = [
        (
            1,
            "plain",
            -(2**63),
            -(2**15),
            0.1,
            Decimal("12345678901234.123456"),
            Decimal("12345678901234567890123456789.123456789"),
            True,
            date(1, 1, 1),
            datetime(1, 1, 1, 0, 0, 0),
            datetime(2020, 1, 1, 12, 0, tzinfo=UTC),
            time(0, 0),
            b"",
            {"a": [1, 2.5, "x", None, True], "ü": {"nested": "\"'\\"}},
            [1, "two", {"3": 3}],
            uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            "",
        ),
        (
            2,
            "",  # the empty string, not NULL
            2**63 - 1,
            2**15 - 1,
            -0.0,
            Decimal("-0.000001"),
            Decimal("-1.5"),
            False,
            date(9999, 12, 31),
            datetime(9999, 12, 31, 23, 59, 59, 999999),
            datetime(2020, 6, 1, 12, 30, 15, 123456, tzinfo=PARIS),
            time(23, 59, 59, 999999),
            bytes(range(256)),
            "a JSON string, not an object",
            42,
            uuid.UUID("00000000-0000-0000-0000-000000000000"),
            'varchar, with "quotes" and\nnewline',
        ),
        (3, *([None] * (len(VALUES.columns) - 1))),  # NULL everywhere but the key
        (
            4,
            "x",
            0,
            0,
            5e-324,
            Decimal("0"),
            Decimal("0.000000001"),
            None,
            date(2024, 2, 29),
            datetime(2024, 2, 29, 1, 2, 3, 4),
            datetime(1999, 12, 31, 23, 0, tzinfo=BEHIND),
            time(12, 34, 56, 7),
            b"\x00\x01\xff\\x00,\"'\n",
            {},
            [],
            None,
            None,
        ),
        (
            5,
            "",
            1,
            1,
            1.7976931348623157e308,
            None,
            None,
            True,
            None,
            None,
            None,
            None,
            b"\x00",
            {"empty": ""},
            "",
            None,
            "",
        ),
        (
            6,
            None,
            None,
            None,
            float("inf"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
        (
            7,
            None,
            None,
            None,
            float("-inf"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
    ]
    for offset, text in enumerate(TRICKY_TEXT):
        row = [100 + offset, text] + [None] * (len(VALUES.columns) - 2)
        row[-1] = text[:200]
        rows.append(tuple(row))
    return rows


@pytest.mark.asyncio
@pytest.mark.parametrize(("mode", "key"), [(Mode.APPEND, ()), (Mode.UPSERT, ("id",))])
async def test_every_value_type_round_trips_exactly(
    harness: Harness, mode: Mode, key: tuple[str, ...]
) -> None:
    destination = harness.destination
    target, prepared = await _prepared(harness, "values", VALUES)
    rows = _value_rows()
    expected = rows
    if harness.kind == "mysql":
        # MySQL differs: its DOUBLE holds no infinities (test_nan_round_trips: a RowError), so
        # those two rows send NULL; and MariaDB stores -0.0 as 0.0 (the sign of zero is lost)
        rows = [_finite_floats(row) for row in rows]
        expected = [_finite_floats(row, negative_zero=0.0) for row in rows]
    await destination.write(target, VALUES, rows, prepared, mode, key)
    fetched = await harness.fetch(target, VALUES)
    assert len(fetched) == len(rows)
    for sent, got in zip(expected, fetched, strict=True):
        for column, a, b in zip(VALUES.columns, sent, got, strict=True):
            assert _same(a, b), f"row {sent[0]}, column {column.name}: sent {a!r}, got {b!r}"
            if isinstance(a, datetime) and a.tzinfo is not None:
                assert b.utcoffset() == timedelta(0)  # an instant, read back in UTC


def _finite_floats(row: Row, negative_zero: float | None = None) -> Row:
    index = VALUES.names.index("float")
    value = row[index]
    if isinstance(value, float) and math.isinf(value):
        value = None
    elif negative_zero is not None and value == 0.0 and math.copysign(1.0, value) < 0:
        value = negative_zero
    return (*row[:index], value, *row[index + 1 :])


@pytest.mark.asyncio
async def test_nan_round_trips(harness: Harness) -> None:
    schema = Schema((Column("id", "integer", False), Column("x", "double precision")), ("id",))
    target, prepared = await _prepared(harness, "nan", schema)
    if harness.kind == "mysql":
        # MySQL differs: its DOUBLE cannot hold NaN or the infinities, so they are bad values
        for value in (math.nan, math.inf, -math.inf):
            with pytest.raises(RowError):
                await harness.destination.write(
                    target, schema, [(1, value)], prepared, Mode.APPEND, ()
                )
        assert await harness.destination.row_count(target) == 0
        return
    await harness.destination.write(target, schema, [(1, math.nan)], prepared, Mode.APPEND, ())
    [(_, value)] = await harness.fetch(target, schema)
    assert math.isnan(value)


@pytest.mark.asyncio
async def test_timestamps_across_zones_are_converted_to_utc(harness: Harness) -> None:
    """A naive datetime in a timestamptz column is UTC (never the machine's local time); an
    aware one in a timestamp column is stored as its UTC wall time."""
    schema = Schema(
        (
            Column("id", "integer", False),
            Column("instant", "timestamptz"),
            Column("moment", "timestamp"),
            Column("day_instant", "timestamptz"),
        ),
        ("id",),
    )
    target, prepared = await _prepared(harness, "zones", schema)
    row = (1, datetime(2020, 1, 1, 12, 0), datetime(2020, 1, 1, 12, 0, tzinfo=PARIS), None)
    await harness.destination.write(target, schema, [row], prepared, Mode.APPEND, ())
    assert await harness.fetch(target, schema) == [
        (1, datetime(2020, 1, 1, 12, 0, tzinfo=UTC), datetime(2020, 1, 1, 10, 0), None)
    ]


def _same(sent: Any, got: Any) -> bool:
    if isinstance(sent, float) and isinstance(got, float):
        return math.copysign(1.0, sent) == math.copysign(1.0, got) and sent == got
    if isinstance(got, memoryview):
        got = bytes(got)
    return type(sent) is type(got) and sent == got if sent is not None else got is None


# --- bad rows ---------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("case", "rows"),
    [
        ("not null", [(1, "ok", None), (2, None, None)]),
        ("duplicate key in the batch", [(1, "a", None), (1, "b", None)]),
        ("duplicate of a committed key", [(5, "again", None)]),
        ("text in a bigint", [("not a number", "x", None)]),
        ("bigint out of range", [(2**63, "x", None)]),
        ("amount out of range", [(6, "x", Decimal("1e20"))]),
        ("short row", [(8, "x")]),
    ],
)
async def test_bad_rows_raise_row_error_and_commit_nothing(
    harness: Harness, case: str, rows: list[Row]
) -> None:
    destination = harness.destination
    target, prepared = await _prepared(harness)
    committed = replace(prepared, batches=1, cursor=[5])
    await destination.write(target, ORDERS, _orders(5), committed, Mode.APPEND, ())

    with pytest.raises(RowError):
        await destination.write(
            target, ORDERS, rows, replace(committed, batches=2, cursor=[9]), Mode.APPEND, ()
        )
    assert await harness.fetch(target, ORDERS) == _orders(5)
    assert await destination.checkpoint(prepared.item) == committed

    # the destination goes on: the next batch commits
    after = replace(committed, batches=2, cursor=[10])
    await destination.write(target, ORDERS, _orders(10), after, Mode.APPEND, ())
    assert await destination.row_count(target) == 2


@pytest.mark.asyncio
async def test_nul_in_text(harness: Harness) -> None:
    """PostgreSQL's text cannot hold NUL: a RowError. DuckDB's can: the value round-trips."""
    destination = harness.destination
    target, prepared = await _prepared(harness)
    rows = [(1, "nul \x00 byte", None)]
    if harness.kind == "postgres":
        with pytest.raises(RowError):
            await destination.write(target, ORDERS, rows, prepared, Mode.APPEND, ())
        assert await destination.row_count(target) == 0
    else:
        await destination.write(target, ORDERS, rows, prepared, Mode.APPEND, ())
        assert await harness.fetch(target, ORDERS) == rows


@pytest.mark.asyncio
async def test_bad_rows_in_an_upsert_raise_row_error(harness: Harness) -> None:
    destination = harness.destination
    target, prepared = await _prepared(harness)
    with pytest.raises(RowError):
        await destination.write(target, ORDERS, [(1, None, None)], prepared, Mode.UPSERT, ("id",))
    assert await destination.row_count(target) == 0


@pytest.mark.asyncio
async def test_a_json_value_that_is_not_json_is_a_row_error(harness: Harness) -> None:
    schema = Schema((Column("id", "integer", False), Column("doc", "jsonb")), ("id",))
    target, prepared = await _prepared(harness, "docs", schema)
    with pytest.raises(RowError):
        await harness.destination.write(
            target, schema, [(1, {"x": math.inf})], prepared, Mode.APPEND, ()
        )


#: JSON numbers a float cannot hold: every digit must reach the database.
EXACT_JSON = {
    "precise": Decimal("0.1000000000000000000001"),
    "big": Decimal("12345678901234567.5"),
    "huge": 123456789012345678901234567890,
    "listed": [
        Decimal("1.50"),
        Decimal("-1E-40"),
        0.5,
        None,
        {"deep": Decimal("2.0000000000000001")},
    ],
}


@pytest.mark.asyncio
async def test_json_numbers_a_float_cannot_hold_keep_every_digit(harness: Harness) -> None:
    """A Decimal inside a JSON value is written with every digit (not refused, not rounded)."""
    schema = Schema(
        (Column("id", "integer", False), Column("doc", "jsonb"), Column("raw", "json")), ("id",)
    )
    target, prepared = await _prepared(harness, "exact_json", schema)
    rows = [
        (1, EXACT_JSON, [Decimal("0.1000000000000000000001")]),
        (2, Decimal("12345678901234567.5"), Decimal("-0.30000000000000000000000000001")),
    ]
    await harness.destination.write(target, schema, rows, prepared, Mode.APPEND, ())
    as_text = {
        "duckdb": "CAST({} AS VARCHAR)",
        "postgres": "{}::text",
        "mysql": "{}",  # MariaDB's JSON is LONGTEXT
    }[harness.kind]
    stored = await harness.query(
        f"SELECT id, {as_text.format('doc')}, {as_text.format('raw')} "
        f"FROM {_qualified(target, harness.default_schema)} ORDER BY id"
    )
    parsed = [
        (id_, json.loads(doc, parse_float=Decimal), json.loads(raw, parse_float=Decimal))
        for id_, doc, raw in stored
    ]
    assert parsed == rows
    assert "0.1000000000000000000001" in stored[0][1]
    assert "12345678901234567.5" in stored[1][1]


# --- names ------------------------------------------------------------------------------------

HOSTILE = 'a";DROP TABLE x;--'


@pytest.mark.asyncio
async def test_hostile_identifiers_are_names_not_sql(harness: Harness) -> None:
    destination = harness.destination
    default_schema = _default_schema(harness)
    sentinel = TableRef("target", None, "x")
    await harness.execute(
        f"CREATE TABLE IF NOT EXISTS {_qualified(sentinel, default_schema)} (n int)"
    )

    schema_name = harness.name('s";DROP SCHEMA public CASCADE;--')
    target = TableRef("target", schema_name, harness.name(HOSTILE))
    hostile = Schema(
        (
            Column(HOSTILE, "integer", nullable=False),
            Column("select", "text"),
            Column("Mixed Case", "text"),
            Column("with space", "text"),
            Column("ünï'\"`[]", "text"),
        ),
        primary_key=(HOSTILE,),
    )
    checkpoint = harness.checkpoint(HOSTILE)
    prepared = await destination.prepare(target, hostile, Mode.FULL, checkpoint)
    rows = [(1, "a", "b", "c", "d"), (2, HOSTILE, "'", '"', ";")]
    await destination.write(target, hostile, rows, prepared, Mode.APPEND, ())
    await destination.write(
        target, hostile, [(2, "upserted", None, None, None)], prepared, Mode.UPSERT, (HOSTILE,)
    )

    assert await destination.table_exists(target)
    assert await destination.row_count(target) == 2
    assert await harness.fetch(target, hostile) == [
        (1, "a", "b", "c", "d"),
        (2, "upserted", None, None, None),
    ]
    assert await destination.table_exists(sentinel)  # nothing was dropped
    assert await destination.checkpoint(checkpoint.item) == prepared


@pytest.mark.asyncio
async def test_names_too_long_are_refused_not_truncated(harness: Harness) -> None:
    limit = harness.destination.capabilities.max_identifier_length
    target = TableRef("target", None, "t" * (limit + 1))
    with pytest.raises(DestinationError, match="long"):
        await harness.destination.prepare(target, ORDERS, Mode.APPEND, harness.checkpoint())
    fits = TableRef("target", None, harness.name("é" * 10))
    await harness.destination.prepare(fits, ORDERS, Mode.APPEND, harness.checkpoint())
    assert await harness.destination.table_exists(fits)


@pytest.mark.asyncio
async def test_table_exists_and_row_count(harness: Harness) -> None:
    destination = harness.destination
    target, prepared = await _prepared(harness)
    assert await destination.table_exists(target)
    assert not await destination.table_exists(harness.table("missing"))
    assert await destination.row_count(target) == 0
    await destination.write(target, ORDERS, _orders(*range(1, 101)), prepared, Mode.APPEND, ())
    assert await destination.row_count(target) == 100
    with pytest.raises(DestinationError):
        await destination.row_count(harness.table("missing"))


def _default_schema(harness: Harness) -> str:
    return harness.default_schema


# --- parallel items ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_parallel_items_on_one_database(harness: Harness) -> None:
    """Parallel items each have a destination of their own on the same database: their first
    opens and CREATEs (of one new schema) race, and must not fail one another."""
    schema_name = harness.name("shared")

    async def item(number: int) -> int:
        destination = harness.make()
        await destination.open()
        try:
            target = TableRef("target", schema_name, f"t{number}")
            checkpoint = harness.checkpoint(f"parallel{number}")
            prepared = await destination.prepare(target, ORDERS, Mode.FULL, checkpoint)
            for batch in range(5):
                rows = _orders(*range(batch * 10, batch * 10 + 10))
                key = ("id",) if number % 2 else ()
                mode = Mode.UPSERT if number % 2 else Mode.APPEND
                await destination.write(target, ORDERS, rows, prepared, mode, key)
            return await destination.row_count(target)
        finally:
            await destination.close()

    counts: list[int] = []

    async def run(number: int) -> None:
        counts.append(await item(number))

    async with anyio.create_task_group() as group:
        for number in range(4):
            group.start_soon(run, number)
    assert counts == [50, 50, 50, 50]


# --- one-time steps and crashes ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_crash_between_a_step_and_its_checkpoint_is_safe(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after CREATE/TRUNCATE but before the checkpoint recording it: the next
    prepare does the step again without harm, and the item's rows load once."""
    destination = harness.destination
    target = harness.table("crash")
    fresh = harness.checkpoint("crash")

    def fail(*args: object) -> None:
        raise InjectedFault("the process dies before the checkpoint")

    with monkeypatch.context() as patch:
        patch.setattr(destination, "_upsert_checkpoint", fail)
        with pytest.raises(InjectedFault):
            await destination.prepare(target, ORDERS, Mode.FULL, fresh)
    assert await destination.checkpoint(fresh.item) is None
    if destination.capabilities.transactional_ddl:
        assert not await destination.table_exists(target)  # the CREATE rolled back
    # else (MySQL): the CREATE committed by itself; CREATE TABLE IF NOT EXISTS is idempotent

    prepared = await destination.prepare(target, ORDERS, Mode.FULL, fresh)
    assert prepared.steps == ("create", "truncate")
    batch = replace(prepared, batches=1, cursor=[2])
    await destination.write(target, ORDERS, _orders(1, 2), batch, Mode.FULL, ())
    assert await harness.fetch(target, ORDERS) == _orders(1, 2)


@pytest.mark.asyncio
async def test_upsert_on_a_key_without_a_unique_index_is_refused(harness: Harness) -> None:
    destination = harness.destination
    keyless = Schema((Column("n", "integer"), Column("note", "text")))
    target, prepared = await _prepared(harness, "nokey", keyless)
    with pytest.raises(DestinationError):
        await destination.write(target, keyless, [(1, "a")], prepared, Mode.UPSERT, ("n",))
    assert await destination.row_count(target) == 0


# --- MySQL only -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend", [pytest.param("mysql", marks=pytest.mark.mariadb)], indirect=True
)  # MySQL only: the other destinations are not asked at all (CI allows no skip)
@pytest.mark.asyncio
async def test_mysql_columns_read_back_as_postgresql_spells_them(harness: Harness) -> None:
    target, _ = await _prepared(harness, "types", VALUES)
    columns = await harness.destination.columns(target)
    assert columns is not None
    assert {c.name: c.type for c in columns} == {
        "id": "integer",
        "text": "text",
        "big": "bigint",
        "small": "smallint",
        "float": "double precision",
        "money": "numeric(20,6)",
        "wide": "numeric(38,9)",
        "flag": "boolean",
        "day": "date",
        "moment": "timestamp",
        "instant": "timestamp",  # a DATETIME(6) holding UTC
        "clock": "time",
        "blob": "bytea",
        "doc": "jsonb",
        "raw_json": "jsonb",
        "uid": "char(36)",
        "label": "varchar(200)",
    }
    assert [c.nullable for c in columns] == [False] + [True] * (len(VALUES.columns) - 1)
    assert await harness.destination.columns(harness.table("missing")) is None


@pytest.mark.parametrize(
    ("errno", "cls", "fault"),
    [
        (1062, "IntegrityError", "row"),  # duplicate key
        (1048, "IntegrityError", "row"),  # NOT NULL
        (1264, "DataError", "row"),  # out of range
        (1366, "DataError", "row"),  # incorrect integer value
        (1292, "OperationalError", "row"),  # incorrect datetime value
        (4025, "OperationalError", "row"),  # MariaDB CHECK (JSON_VALID)
        (2006, "OperationalError", "transient"),  # server has gone away
        (2013, "OperationalError", "transient"),  # lost connection during query
        (1205, "OperationalError", "transient"),  # lock wait timeout
        (1213, "OperationalError", "transient"),  # deadlock
        (1927, "OperationalError", "transient"),  # connection killed
        (1045, "OperationalError", "terminal"),  # access denied
        (1049, "OperationalError", "terminal"),  # unknown database
        (1146, "ProgrammingError", "terminal"),  # no such table
    ],
)
def test_mysql_error_mapping(errno: int, cls: str, fault: str) -> None:
    import asyncmy.errors

    from stratum.connectors.mysql import _dest_errors
    from stratum.connectors.mysql._errors import DriverErrors
    from stratum.errors import ConnectionLost

    errors = DriverErrors(asyncmy.errors.MySQLError, asyncmy.errors.InterfaceError)
    exc = getattr(asyncmy.errors, cls)(errno, "message")
    expected = {"row": RowError, "transient": ConnectionLost, "terminal": DestinationError}[fault]
    with pytest.raises(expected), _dest_errors.translated("writing", errors, rows=True):
        raise exc
    if fault == "row":  # outside the rows' statement, a row fault is the destination refusing
        with pytest.raises(DestinationError) as caught, _dest_errors.translated("reading", errors):
            raise exc
        assert not isinstance(caught.value, RowError)
    with pytest.raises(ConnectionLost), _dest_errors.translated("writing", errors, rows=True):
        raise asyncmy.errors.InterfaceError(0, "")


@pytest.mark.parametrize(
    "backend", [pytest.param("mysql", marks=pytest.mark.mariadb)], indirect=True
)  # MySQL only: the other destinations are not asked at all (CI allows no skip)
@pytest.mark.asyncio
async def test_mysql_connection_errors(harness: Harness) -> None:
    from urllib.parse import urlsplit, urlunsplit

    from stratum.errors import ConnectionLost

    assert isinstance(harness.destination, MySQLDestination)
    url = harness.destination._url
    parts = urlsplit(url)
    unknown = urlunsplit(parts._replace(path="/" + harness.name("missing_db")))
    with pytest.raises(DestinationError, match="1049"):
        await MySQLDestination(unknown).open()
    denied = urlunsplit(parts._replace(netloc=f"nobody_{harness.suffix}:x@{parts.hostname}"))
    with pytest.raises(DestinationError, match=r"(?i)access denied"):
        await MySQLDestination(denied).open()
    refused = urlunsplit(parts._replace(netloc=f"root@{parts.hostname}:1"))
    with pytest.raises(ConnectionLost):
        await MySQLDestination(refused).open()

    # the session is killed behind its back: ConnectionLost, then the next call reconnects
    destination = harness.destination
    [(session,)] = await _mysql_rows(harness, destination, "SELECT CONNECTION_ID()")
    await harness.execute(f"KILL {int(session)}")
    with pytest.raises(ConnectionLost):
        await destination.checkpoint(harness.name("item"))
    assert await destination.checkpoint(harness.name("item")) is None


async def _mysql_rows(harness: Harness, destination: Any, sql: str) -> list[Row]:
    async def read(conn: Any) -> list[Row]:
        return list(await conn.fetchall(sql))

    return await destination._transaction("test", read)  # type: ignore[no-any-return]


ARRAYS = Schema(
    (
        Column("id", "integer", nullable=False),
        Column("days", "date[]"),
        Column("stamps", "timestamp[]"),
        Column("instants", "timestamptz[]"),
        Column("clocks", "time[]"),
        Column("zoned", "time with time zone[]"),
        Column("uids", "uuid[]"),
        Column("amounts", "numeric[]"),
        Column("blobs", "bytea[]"),
        Column("grid", "date[][]"),
    ),
    primary_key=("id",),
)
#: PostgreSQL's row values for ARRAYS (as its source reads them), after the id.
ARRAY_VALUES: tuple[Any, ...] = (
    [date(2024, 2, 29), date(9, 12, 4), None, "infinity"],
    [datetime(2024, 2, 29, 23, 59, 59, 120000), datetime(9, 12, 4, 1, 2, 3, 4), "-infinity"],
    [
        datetime(2024, 2, 29, 18, 29, 59, 500000, tzinfo=UTC),
        datetime(2020, 6, 1, 12, 30, tzinfo=PARIS),
    ],
    [time(12, 0, 0, 500000), time(23, 59, 59, 999999), time(0, 0)],
    [time(12, 0, 0, 500000, tzinfo=PARIS), time(1, 0, tzinfo=BEHIND)],
    [uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), None],
    [Decimal("0.1000000000000000000001"), Decimal("12345678901234567.5"), Decimal("1.50")],
    [b"\x00\xff", b"", None],
    [[date(2024, 1, 1), date(2024, 1, 2)], [date(2024, 1, 3), None]],
)
#: The JSON each array becomes: what PostgreSQL's to_json gives for it (session in UTC).
ARRAY_JSON: tuple[Any, ...] = (
    ["2024-02-29", "0009-12-04", None, "infinity"],
    ["2024-02-29T23:59:59.12", "0009-12-04T01:02:03.000004", "-infinity"],
    ["2024-02-29T18:29:59.5+00:00", "2020-06-01T10:30:00+00:00"],
    ["12:00:00.5", "23:59:59.999999", "00:00:00"],
    ["12:00:00.5+02", "01:00:00-03:30"],
    ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None],
    [Decimal("0.1000000000000000000001"), Decimal("12345678901234567.5"), Decimal("1.50")],
    ["\\x00ff", "\\x", None],
    [["2024-01-01", "2024-01-02"], ["2024-01-03", None]],
)


@pytest.mark.parametrize(
    "backend", [pytest.param("mysql", marks=pytest.mark.mariadb)], indirect=True
)  # MySQL only: it has no arrays, so they become JSON
@pytest.mark.asyncio
async def test_mysql_arrays_become_json_with_every_element_kept(harness: Harness) -> None:
    """Arrays of dates, timestamps, times, uuids, numerics and bytea are JSON arrays, each
    element as PostgreSQL's to_json writes it; written with the item's types, and with the
    existing target's (jsonb: what the engine coerces rows to once the table exists)."""
    destination = harness.destination
    target, prepared = await _prepared(harness, "arrays", ARRAYS)
    existing = await destination.columns(target)
    assert existing is not None
    assert {c.name: c.type for c in existing} == {"id": "integer"} | dict.fromkeys(
        ARRAYS.names[1:], "jsonb"
    )
    as_existing = replace(ARRAYS, columns=existing)
    await destination.write(target, ARRAYS, [(1, *ARRAY_VALUES)], prepared, Mode.APPEND, ())
    await destination.write(target, as_existing, [(2, *ARRAY_VALUES)], prepared, Mode.APPEND, ())
    stored = await harness.query(
        f"SELECT * FROM {_qualified(target, harness.default_schema)} ORDER BY id"
    )
    assert [row[0] for row in stored] == [1, 2]
    for row in stored:
        parsed = tuple(json.loads(text, parse_float=Decimal) for text in row[1:])
        for column, got, want in zip(ARRAYS.names[1:], parsed, ARRAY_JSON, strict=True):
            assert got == want, column
        assert "0.1000000000000000000001" in row[ARRAYS.names.index("amounts")]
        assert "1.50" in row[ARRAYS.names.index("amounts")]

    # an element no JSON holds exactly is refused, never changed
    for bad in ([Decimal("NaN")], [math.nan], [{1, 2}]):
        row = (3, *([None] * (len(ARRAYS.columns) - 2)), bad)
        with pytest.raises(RowError):
            await destination.write(target, ARRAYS, [row], prepared, Mode.APPEND, ())
    assert await destination.row_count(target) == 2


@pytest.mark.parametrize(
    "backend", [pytest.param("mysql", marks=pytest.mark.mariadb)], indirect=True
)  # MySQL only: its TIME holds no offset
@pytest.mark.asyncio
async def test_mysql_timetz_is_kept_as_postgresqls_text(harness: Harness) -> None:
    """A timetz is PostgreSQL's text of it ('12:00:00+02') in a text column: TIME would drop
    the offset. As a key column too (a VARCHAR then)."""
    destination = harness.destination
    schema = Schema((Column("id", "integer", False), Column("at", "time with time zone")), ("id",))
    keyed = Schema((Column("at", "timetz(3)", False),), ("at",))
    target, prepared = await _prepared(harness, "clocks", schema)
    keyed_target, keyed_prepared = await _prepared(harness, "keyed_clocks", keyed)
    values = [
        time(12, 0, tzinfo=PARIS),
        time(23, 59, 59, 999999, tzinfo=BEHIND),
        time(0, 0, 1, 500000, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=15))),
        time(6, 0, tzinfo=UTC),
        "08:00:00-05",  # already text: a row coerced to the existing column's type
    ]
    texts = [
        "12:00:00+02",
        "23:59:59.999999-03:30",
        "00:00:01.5+05:30:15",
        "06:00:00+00",
        "08:00:00-05",
    ]
    rows = [(i, value) for i, value in enumerate(values, start=1)]
    await destination.write(target, schema, rows, prepared, Mode.APPEND, ())
    await destination.write(
        keyed_target, keyed, [(value,) for value in values], keyed_prepared, Mode.APPEND, ()
    )
    stored = await harness.query(
        f"SELECT id, at FROM {_qualified(target, harness.default_schema)} ORDER BY id"
    )
    assert stored == list(enumerate(texts, start=1))
    keys = await harness.query(f"SELECT at FROM {_qualified(keyed_target, harness.default_schema)}")
    assert sorted(at for (at,) in keys) == sorted(texts)
    columns = await destination.columns(target)
    assert columns is not None
    assert [c.type for c in columns] == ["integer", "text"]


@pytest.mark.parametrize(
    "backend", [pytest.param("mysql", marks=pytest.mark.mariadb)], indirect=True
)  # MySQL only: YEAR is MySQL's
@pytest.mark.asyncio
async def test_mysql_year_reads_back_as_the_mysql_source_maps_it(harness: Harness) -> None:
    """An existing YEAR column reads back as the type the MySQL source gives YEAR (integer), so
    a MySQL -> MySQL copy into a table with a YEAR column needs no coercion."""
    from stratum.connectors.mysql.source import MySQLTableSource
    from stratum.transforms.coerce import Coercion

    destination = harness.destination
    assert isinstance(destination, MySQLDestination)
    target = harness.table("years")
    qualified = _qualified(target, harness.default_schema)
    await harness.execute(f"CREATE TABLE {qualified} (id INT PRIMARY KEY, yr YEAR)")
    source = MySQLTableSource(destination._url, TableRef("src", None, target.table))
    try:
        read = await source.schema()
    finally:
        await source.close()
    existing = await destination.columns(target)
    assert existing is not None
    assert {c.name: c.type for c in existing} == {c.name: c.type for c in read.columns}
    assert {c.name: c.type for c in existing} == {"id": "integer", "yr": "integer"}
    assert Coercion.build(read, existing, target.text).is_identity

    prepared = await destination.prepare(target, read, Mode.APPEND, harness.checkpoint("years"))
    rows = [(1, 1901), (2, 2155), (3, 0)]
    await destination.write(target, read, rows, prepared, Mode.APPEND, ())
    assert await harness.query(f"SELECT id, yr FROM {qualified} ORDER BY id") == rows
