"""The per-module throwaway PostgreSQL database and the helpers behind it."""

from __future__ import annotations

import re

import asyncpg
import pytest

from tests.support.databases import (
    MAX_DATABASE_NAME_LENGTH,
    DatabaseServer,
    ThrowawayDatabase,
    create_postgres_database,
    drop_postgres_database,
    postgres_database_exists,
    unique_database_name,
)

_NAME = re.compile(r"stratum_t_test_throwaway_database_[0-9a-f]{8}")


@pytest.mark.asyncio
async def test_database_is_usable(postgres_database: ThrowawayDatabase) -> None:
    conn = await asyncpg.connect(postgres_database.url)
    try:
        assert await conn.fetchval("SELECT current_database()") == postgres_database.name
        await conn.execute("CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL)")
        await conn.executemany(
            "INSERT INTO items (id, label) VALUES ($1, $2)", [(1, "alpha"), (2, "beta")]
        )
        rows = await conn.fetch("SELECT id, label FROM items ORDER BY id")
    finally:
        await conn.close()
    assert [tuple(row) for row in rows] == [(1, "alpha"), (2, "beta")]


@pytest.mark.asyncio
async def test_database_is_in_the_catalog(postgres_database: ThrowawayDatabase) -> None:
    assert await postgres_database_exists(postgres_database.name, postgres_database.server)


def test_database_name_is_unique_and_valid(postgres_database: ThrowawayDatabase) -> None:
    name = postgres_database.name
    assert _NAME.fullmatch(name), name
    assert len(name) <= MAX_DATABASE_NAME_LENGTH
    assert name not in {"postgres", "template0", "template1", "test", "root"}
    assert unique_database_name(__name__) != name
    assert postgres_database.url.startswith("postgresql://")
    assert postgres_database.url.endswith(f"/{name}")


@pytest.mark.asyncio
async def test_database_is_isolated(postgres_database: ThrowawayDatabase) -> None:
    table = f"isolation_probe_{postgres_database.name[-8:]}"
    own = await asyncpg.connect(postgres_database.url)
    try:
        await own.execute(f"CREATE TABLE {table} (id integer)")
        assert await own.fetchval("SELECT to_regclass($1)::text", table) == table
    finally:
        await own.close()
    maintenance_db = postgres_database.server.maintenance_database or "postgres"
    other = await asyncpg.connect(postgres_database.server.url_for(maintenance_db))
    try:
        assert await other.fetchval("SELECT to_regclass($1)::text", table) is None
    finally:
        await other.close()


@pytest.mark.asyncio
async def test_helpers_create_then_drop(postgres_server: DatabaseServer) -> None:
    name = unique_database_name("tests.integration.postgres.helper probe")
    assert name.startswith("stratum_t_helper_probe_")
    assert not await postgres_database_exists(name, postgres_server)
    await create_postgres_database(name, postgres_server)
    try:
        assert await postgres_database_exists(name, postgres_server)
        # An open session must not stop the drop: it is WITH (FORCE).
        session = await asyncpg.connect(postgres_server.url_for(name))
        try:
            await drop_postgres_database(name, postgres_server)
        finally:
            await session.close()
    finally:
        await drop_postgres_database(name, postgres_server)
    assert not await postgres_database_exists(name, postgres_server)
    # Dropping what is already gone is not an error.
    await drop_postgres_database(name, postgres_server)


def test_unique_database_name_shapes() -> None:
    long_name = unique_database_name("pkg.test_" + "x" * 200)
    assert len(long_name) == MAX_DATABASE_NAME_LENGTH
    weird = unique_database_name("tests.Test-Ünïcode Módule!!")
    assert re.fullmatch(r"stratum_t_test_n_code_m_dule_[0-9a-f]{8}", weird), weird
    assert unique_database_name("...").startswith("stratum_t_module_")
    names = {unique_database_name("same_module") for _ in range(50)}
    assert len(names) == 50
