"""PostgresTableSource against the real server: schema and key discovery, reads in key order,
resume after any batch's cursor (through JSON), one snapshot per read, one batch in memory at a
time, hostile names, and errors translated into Stratum's tree."""

from __future__ import annotations

import json
import secrets
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from asyncpg.cursor import Cursor as AsyncpgCursor

from stratum.connectors.base import Column, Cursor, SizedSource, Source
from stratum.connectors.postgres import PostgresTableSource
from stratum.errors import ConfigError, ConnectionLost, SourceError
from stratum.plan.model import TableRef
from tests.support.databases import ThrowawayDatabase
from tests.support.sources import read_batches, rows_of, table_ref, unique_name, without_native


async def _open(url: str, table: TableRef, key: tuple[str, ...] = ()) -> PostgresTableSource:
    source = PostgresTableSource(url, table, key)
    await source.open()
    return source


# --- schema and key discovery -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_schema_columns_types_and_primary_key(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    table = unique_name("orders")
    await conn.execute(
        f"""CREATE TABLE {table} (
            id bigint PRIMARY KEY, customer integer NOT NULL, amount numeric(12,2),
            note varchar(200), created timestamp, paid_at timestamptz, payload jsonb,
            data bytea, flag boolean, ratio double precision)"""
    )
    source = await _open(postgres_database.url, table_ref(table))
    try:
        assert isinstance(source, Source)
        assert isinstance(source, SizedSource)
        schema = await source.schema()
        assert without_native(schema.columns) == (
            Column("id", "bigint", False),
            Column("customer", "integer", False),
            Column("amount", "numeric(12,2)", True),
            Column("note", "character varying(200)", True),
            Column("created", "timestamp without time zone", True),
            Column("paid_at", "timestamp with time zone", True),
            Column("payload", "jsonb", True),
            Column("data", "bytea", True),
            Column("flag", "boolean", True),
            Column("ratio", "double precision", True),
        )
        assert schema.primary_key == ("id",)
        assert source.resumable is True
        assert source.key == ("id",)
        assert await source.total_rows() is None
    finally:
        await source.close()
        await source.close()  # twice is fine


@pytest.mark.asyncio
async def test_composite_primary_key_in_constraint_order(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    table = unique_name("lines")
    await conn.execute(
        f"CREATE TABLE {table} (a integer, b text, c text, PRIMARY KEY (b, a), UNIQUE (c))"
    )
    async with PostgresTableSource(postgres_database.url, table_ref(table)) as source:
        assert (await source.schema()).primary_key == ("b", "a")
        assert source.resumable


@pytest.mark.asyncio
async def test_unique_key_fallback_needs_not_null_columns(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    table = unique_name("nopk")
    await conn.execute(
        f"""CREATE TABLE {table} (
            maybe integer UNIQUE, x integer NOT NULL, y text NOT NULL, z integer NOT NULL,
            UNIQUE (x, y))"""
    )
    await conn.execute(f"CREATE UNIQUE INDEX ON {table} (z) WHERE z > 0")  # partial: no key
    await conn.execute(f"CREATE UNIQUE INDEX ON {table} ((z + 1))")  # expression: no key
    async with PostgresTableSource(postgres_database.url, table_ref(table)) as source:
        assert (await source.schema()).primary_key == ("x", "y")
        assert source.resumable


@pytest.mark.asyncio
async def test_no_key_is_not_resumable_and_has_no_cursors(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    table = unique_name("heap")
    await conn.execute(f"CREATE TABLE {table} (v integer UNIQUE, w text)")
    await conn.execute(f"INSERT INTO {table} SELECT g, g::text FROM generate_series(1, 250) g")
    source = PostgresTableSource(postgres_database.url, table_ref(table))
    assert source.resumable is False  # before open: never claims a key it does not know
    async with source:
        assert (await source.schema()).primary_key == ()
        assert source.resumable is False
        batches = await read_batches(source, 100)
        assert [len(b.rows) for b in batches] == [100, 100, 50]
        assert all(b.cursor is None for b in batches)
        assert sorted(rows_of(batches)) == [(i, str(i)) for i in range(1, 251)]
        with pytest.raises(SourceError, match="no key to resume after"):
            await read_batches(source, 100, after=[100])


@pytest.mark.asyncio
async def test_explicit_key_overrides_the_primary_key(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    table = unique_name("override")
    await conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, code text NOT NULL)")
    await conn.execute(f"INSERT INTO {table} SELECT g, md5(g::text) FROM generate_series(1, 300) g")
    source = PostgresTableSource(postgres_database.url, table_ref(table), key=("code",))
    assert source.resumable is True
    async with source:
        assert (await source.schema()).primary_key == ("code",)
        batches = await read_batches(source, 70)
        expected = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY code")]
        assert rows_of(batches) == expected
        assert batches[0].cursor == [expected[69][1]]
        rest = await read_batches(source, 70, after=json.loads(json.dumps(batches[1].cursor)))
        assert rows_of(rest) == expected[140:]


@pytest.mark.asyncio
async def test_explicit_key_must_name_usable_columns(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    table = unique_name("badkey")
    await conn.execute(f"CREATE TABLE {table} (id integer, span interval)")
    for key, message in ((("nope",), "does not have"), (("span",), "cannot be resumed")):
        source = PostgresTableSource(postgres_database.url, table_ref(table), key=key)
        with pytest.raises(ConfigError, match=message):
            await source.open()
        await source.close()


# --- reading ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_read_25k_rows_in_key_order(postgres_database: ThrowawayDatabase, conn: Any) -> None:
    table = unique_name("big")
    await conn.execute(
        f"CREATE TABLE {table} (id integer PRIMARY KEY, label text, payload jsonb, doc json)"
    )
    # inserted in random order, so the heap order is not the key order
    await conn.execute(
        f"""INSERT INTO {table}
        SELECT g, 'row ' || g, jsonb_build_object('n', g, 'tags', jsonb_build_array(g, 'x')),
               json_build_object('s', g::text)
        FROM generate_series(1, 25000) g ORDER BY random()"""
    )
    async with PostgresTableSource(postgres_database.url, table_ref(table)) as source:
        batches = await read_batches(source, 1000)
    assert [len(b.rows) for b in batches] == [1000] * 25
    rows = rows_of(batches)
    assert rows == [
        (i, f"row {i}", {"n": i, "tags": [i, "x"]}, {"s": str(i)}) for i in range(1, 25001)
    ]
    assert [p for b in batches for p in b.positions] == list(range(1, 25001))
    assert [b.cursor for b in batches] == [[i * 1000] for i in range(1, 26)]
    assert all(b.nbytes > 0 for b in batches)
    assert all(b.rejected == [] for b in batches)


# (name, column DDL of the key, SQL for the key value of row g)
_KEYS: list[tuple[str, str, str]] = [
    ("int", "k bigint", "g * 7 - 5000"),
    ("text", "k text", "(ARRAY['a','B','é','a b','Z', ''])[g % 6 + 1] || '-' || g"),
    ("timestamp", "k timestamp", "timestamp '2024-02-29 12:00' + g * interval '1.000123 sec'"),
    ("numeric", "k numeric(20,6)", "(g * 1.000001 - 700)::numeric(20,6)"),
    ("timestamptz", "k timestamptz", "timestamptz '2024-01-01 00:00+02' + g * interval '1 ms'"),
    ("uuid", "k uuid", "md5(g::text)::uuid"),
    ("bytea", "k bytea", "decode(md5(g::text), 'hex')"),
    ("date", "k date", "date '1999-12-31' + g"),
    ("float", "k double precision", "g / 3.0::float8"),
]


async def _assert_resumes(
    url: str, ref: TableRef, expected: list[tuple[Any, ...]], batch: int, every: int
) -> None:
    async with PostgresTableSource(url, ref) as source:
        batches = await read_batches(source, batch)
    assert rows_of(batches) == expected
    checked = 0
    for index in range(0, len(batches), every):
        cursor = json.loads(json.dumps(batches[index].cursor, allow_nan=False))
        async with PostgresTableSource(url, ref) as resumed:  # a new process, say
            rest = rows_of(await read_batches(resumed, batch, after=cursor))
        assert rest == expected[(index + 1) * batch :]
        checked += 1
    assert checked >= 3


@pytest.mark.asyncio
@pytest.mark.parametrize(("kind", "ddl", "value"), _KEYS, ids=[k[0] for k in _KEYS])
async def test_resume_after_every_kth_cursor(
    postgres_database: ThrowawayDatabase, conn: Any, kind: str, ddl: str, value: str
) -> None:
    table = unique_name(f"resume_{kind}")
    await conn.execute(f"CREATE TABLE {table} ({ddl} PRIMARY KEY, g integer NOT NULL)")
    await conn.execute(
        f"INSERT INTO {table} SELECT {value}, g FROM generate_series(1, 1500) g ORDER BY random()"
    )
    expected = [tuple(r) for r in await conn.fetch(f"SELECT k, g FROM {table} ORDER BY k")]
    await _assert_resumes(postgres_database.url, table_ref(table), expected, batch=100, every=4)


@pytest.mark.asyncio
async def test_resume_composite_key(postgres_database: ThrowawayDatabase, conn: Any) -> None:
    table = unique_name("resume_composite")
    await conn.execute(
        f"""CREATE TABLE {table} (
            day date, shop text COLLATE "C", n numeric, v integer, PRIMARY KEY (day, shop, n))"""
    )
    await conn.execute(
        f"""INSERT INTO {table}
        SELECT date '2024-01-01' + g % 7, 'shop ' || (g % 13), g % 11 + 0.5, g
        FROM generate_series(1, 1001) g ORDER BY random()"""
    )
    expected = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY day, shop, n")]
    await _assert_resumes(postgres_database.url, table_ref(table), expected, batch=50, every=5)
    async with PostgresTableSource(postgres_database.url, table_ref(table)) as source:
        first = (await read_batches(source, 50))[0]
    day, shop, n, _ = expected[49]
    assert first.cursor == [day.isoformat(), shop, str(n)]


@pytest.mark.asyncio
async def test_bad_cursor_is_refused(postgres_database: ThrowawayDatabase, conn: Any) -> None:
    table = unique_name("badcursor")
    await conn.execute(f"CREATE TABLE {table} (a integer, b date, PRIMARY KEY (a, b))")
    async with PostgresTableSource(postgres_database.url, table_ref(table)) as source:
        for cursor in ([1], [1, "2024-13-01"], ["x", "2024-01-01"], 5, "a"):
            with pytest.raises(SourceError, match="cursor"):
                await read_batches(source, 10, after=cursor)
        assert await read_batches(source, 10, after=[1, "2024-01-01"]) == []


@pytest.mark.asyncio
async def test_a_read_is_one_snapshot(postgres_database: ThrowawayDatabase, conn: Any) -> None:
    table = unique_name("snapshot")
    await conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, v text)")
    await conn.execute(f"INSERT INTO {table} SELECT g, 'old' FROM generate_series(1, 5000) g")
    async with PostgresTableSource(postgres_database.url, table_ref(table)) as source:
        seen: list[tuple[Any, ...]] = []
        reader = source.read(None, 500)
        async for batch in reader:
            seen.extend(batch.rows)
            if len(seen) == 500:  # another connection changes the table mid-read, and commits
                await conn.execute(
                    f"INSERT INTO {table} SELECT g, 'new' FROM generate_series(-100, 0) g"
                )
                await conn.execute(
                    f"INSERT INTO {table} SELECT g, 'new' FROM generate_series(5001, 5100) g"
                )
                await conn.execute(f"UPDATE {table} SET v = 'changed' WHERE id > 4000")
                await conn.execute(f"DELETE FROM {table} WHERE id BETWEEN 1000 AND 1999")
        assert seen == [(i, "old") for i in range(1, 5001)]
        after = rows_of(await read_batches(source, 1000))  # the next read sees the new state
    assert len(after) == 5000 - 1000 + 101 + 100
    assert after[0] == (-100, "new")


@pytest.mark.asyncio
async def test_read_runs_in_a_repeatable_read_read_only_transaction(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    table = unique_name("isolation")
    await conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY)")
    await conn.execute(f"INSERT INTO {table} SELECT generate_series(1, 20)")
    source = await _open(postgres_database.url, table_ref(table))
    try:
        async for _ in source.read(None, 5):
            inner = source._conn  # the source's own connection, mid-read
            assert inner.is_in_transaction()
            assert await inner.fetchval("SHOW transaction_isolation") == "repeatable read"
            assert await inner.fetchval("SHOW transaction_read_only") == "on"
            break
        # the read was abandoned without closing its generator: the next read still works
        assert len(rows_of(await read_batches(source, 7))) == 20
        state = await conn.fetchrow(
            "SELECT backend_xid, state FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'stratum'"
        )
        assert state is not None
        assert state["state"] == "idle"  # not "idle in transaction": the read ended it
    finally:
        await source.close()


@pytest.mark.asyncio
async def test_memory_never_more_than_one_batch(
    postgres_database: ThrowawayDatabase, conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = unique_name("huge")
    await conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, v text)")
    await conn.execute(
        f"INSERT INTO {table} SELECT g, 'value ' || g FROM generate_series(1, 200000) g"
    )
    fetches: list[tuple[int, int]] = []  # (rows asked for, rows returned)
    original = AsyncpgCursor.fetch

    async def spy(self: Any, n: int, **kwargs: Any) -> list[Any]:
        records: list[Any] = await original(self, n, **kwargs)
        fetches.append((n, len(records)))
        return records

    monkeypatch.setattr(AsyncpgCursor, "fetch", spy)
    whole_table: list[str] = []
    original_fetch = asyncpg.Connection.fetch

    async def no_whole_table(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if table in query:
            whole_table.append(query)
        return await original_fetch(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "fetch", no_whole_table)
    batch_size = 5000
    total = 0
    async with PostgresTableSource(postgres_database.url, table_ref(table)) as source:
        batches = 0
        async for batch in source.read(None, batch_size):
            batches += 1
            assert len(fetches) == batches  # the next batch is fetched only when asked for
            assert len(batch.rows) <= batch_size
            total += len(batch.rows)
            assert batch.rows[-1][0] == total
    assert total == 200_000
    assert all(n == batch_size and got <= batch_size for n, got in fetches)
    assert whole_table == []


@pytest.mark.asyncio
async def test_hostile_names(postgres_database: ThrowawayDatabase, conn: Any) -> None:
    schema = f'we"ird; schema {secrets.token_hex(3)}'
    table = f'a";DROP TABLE x;-- {secrets.token_hex(3)}'
    q_schema = '"' + schema.replace('"', '""') + '"'
    q_table = '"' + table.replace('"', '""') + '"'
    await conn.execute(f"CREATE SCHEMA {q_schema}")
    await conn.execute(
        f"""CREATE TABLE {q_schema}.{q_table} (
            "sel""ect" integer, "Mixed Case" text, "$1" text, PRIMARY KEY ("sel""ect", "$1"))"""
    )
    await conn.execute(
        f"INSERT INTO {q_schema}.{q_table} SELECT g, 'v' || g, 'k' || g % 3 "
        "FROM generate_series(1, 99) g"
    )
    ref = table_ref(table, schema)
    async with PostgresTableSource(postgres_database.url, ref) as source:
        assert (await source.schema()).names == ('sel"ect', "Mixed Case", "$1")
        assert source.key == ('sel"ect', "$1")
        batches = await read_batches(source, 10)
        assert rows_of(batches) == [(i, f"v{i}", f"k{i % 3}") for i in range(1, 100)]
        rest = await read_batches(source, 10, after=json.loads(json.dumps(batches[4].cursor)))
        assert rows_of(rest) == rows_of(batches)[50:]
    assert await conn.fetchval(f"SELECT count(*) FROM {q_schema}.{q_table}") == 99


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_missing_table_suggests_close_names(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    table = unique_name("customers")
    await conn.execute(f"CREATE TABLE {table} (id integer)")
    typo = table.replace("customers", "custmers")
    source = PostgresTableSource(postgres_database.url, table_ref(typo))
    with pytest.raises(SourceError, match=f"does not exist.*did you mean '{table}'"):
        await source.open()
    await source.close()
    source = PostgresTableSource(postgres_database.url, table_ref(table, "pubilc"))
    with pytest.raises(SourceError, match=r"no schema 'pubilc'.*did you mean 'public'"):
        await source.open()
    with pytest.raises(SourceError, match="not open"):
        await source.schema()


def _with_database(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


@pytest.mark.asyncio
async def test_connection_errors_are_translated(postgres_database: ThrowawayDatabase) -> None:
    server = postgres_database.server
    ref = table_ref("anything")
    missing = PostgresTableSource(_with_database(postgres_database.url, "no_such_db_x1"), ref)
    with pytest.raises(SourceError, match="no_such_db_x1"):
        await missing.open()
    nobody = PostgresTableSource(
        f"postgresql://nobody_{secrets.token_hex(3)}:secret-pw@{server.host}:{server.port}/x", ref
    )
    with pytest.raises(SourceError) as caught:
        await nobody.open()
    assert "secret-pw" not in str(caught.value)
    refused = PostgresTableSource(f"postgresql://u:secret-pw@{server.host}:1/x", ref)
    with pytest.raises(ConnectionLost) as lost:
        await refused.open()
    assert "secret-pw" not in str(lost.value)
    with pytest.raises(ConfigError):
        await PostgresTableSource("postgresql://u@host:notaport/x", ref).open()
    with pytest.raises(ConfigError, match="names no table"):
        await PostgresTableSource(postgres_database.url, TableRef("src", None, None)).open()


@pytest.mark.asyncio
async def test_missing_driver_names_the_extra(
    postgres_database: ThrowawayDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    source = PostgresTableSource(postgres_database.url, table_ref("x"))
    with pytest.raises(ConfigError, match=r"stratum\[postgres\]"):
        await source.open()


@pytest.mark.asyncio
async def test_permission_denied_is_a_source_error(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    if not await conn.fetchval(
        "SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user"
    ):
        pytest.skip("the test role cannot create roles")
    table, role = unique_name("secret"), unique_name("reader")
    await conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY)")
    await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'")
    try:
        server = postgres_database.server
        url = f"postgresql://{role}:pw-{role}@{server.host}:{server.port}/{postgres_database.name}"
        async with PostgresTableSource(url, table_ref(table)) as source:
            with pytest.raises(SourceError, match="permission denied"):
                await read_batches(source, 10)
    finally:
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE {role}")


@pytest.mark.asyncio
async def test_lost_connection_mid_read_is_transient_and_a_retry_resumes(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    table = unique_name("lost")
    await conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY)")
    await conn.execute(f"INSERT INTO {table} SELECT generate_series(1, 1000)")
    async with PostgresTableSource(postgres_database.url, table_ref(table)) as source:
        got: list[tuple[Any, ...]] = []
        cursors: list[Cursor] = []

        async def read_until_killed() -> None:
            async for batch in source.read(None, 100):
                got.extend(batch.rows)
                cursors.append(batch.cursor)
                if len(got) == 300:
                    await conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = 'stratum'"
                    )

        with pytest.raises(ConnectionLost):
            await read_until_killed()
        cursor = cursors[-1]
        assert cursor == [300]
        rest = rows_of(await read_batches(source, 100, after=cursor))  # reconnects
    assert got + rest == [(i,) for i in range(1, 1001)]


@pytest.mark.asyncio
async def test_values_as_asyncpg_returns_them(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    table = unique_name("values")
    await conn.execute(
        f"""CREATE TABLE {table} (id integer PRIMARY KEY, n numeric(12,2), t timestamp,
            tz timestamptz, d date, b bytea, j jsonb, s json, u uuid, nothing text)"""
    )
    await conn.execute(
        f"""INSERT INTO {table} VALUES (1, 12.50, '2024-01-02 03:04:05.678901',
            '2024-01-02 03:04:05+02', '2024-01-02', '\\x00ff', '{{"a": [1, null]}}', '"text"',
            '12345678-1234-5678-1234-567812345678', NULL)"""
    )
    async with PostgresTableSource(postgres_database.url, table_ref(table)) as source:
        (batch,) = await read_batches(source, 10)
    assert batch.rows == [
        (
            1,
            Decimal("12.50"),
            datetime(2024, 1, 2, 3, 4, 5, 678901),
            datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC),
            date(2024, 1, 2),
            b"\x00\xff",
            {"a": [1, None]},
            "text",
            UUID("12345678-1234-5678-1234-567812345678"),
            None,
        )
    ]
    assert batch.positions == [1]
    assert batch.cursor == [1]
    assert timedelta(0) == batch.rows[0][3].utcoffset()
