"""The per-module throwaway MariaDB database and the helpers behind it."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from tests.support.databases import (
    MAX_DATABASE_NAME_LENGTH,
    DatabaseServer,
    ThrowawayDatabase,
    create_mariadb_database,
    drop_mariadb_database,
    mariadb_database_exists,
    mariadb_run,
    unique_database_name,
)

_NAME = re.compile(r"stratum_t_test_throwaway_database_[0-9a-f]{8}")


async def _run(
    server: DatabaseServer,
    database: str | None,
    statements: Sequence[tuple[str, Sequence[object] | None]],
) -> list[tuple[object, ...]]:
    return await mariadb_run(server, statements, database)


@pytest.mark.asyncio
async def test_database_is_usable(mariadb_database: ThrowawayDatabase) -> None:
    rows = await _run(mariadb_database.server, mariadb_database.name, [("SELECT DATABASE()", None)])
    assert rows == [(mariadb_database.name,)]
    rows = await _run(
        mariadb_database.server,
        mariadb_database.name,
        [
            ("CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(20) NOT NULL)", None),
            ("INSERT INTO items (id, label) VALUES (%s, %s), (%s, %s)", (1, "alpha", 2, "beta")),
            ("SELECT id, label FROM items ORDER BY id", None),
        ],
    )
    assert rows == [(1, "alpha"), (2, "beta")]


@pytest.mark.asyncio
async def test_database_is_in_the_catalog(mariadb_database: ThrowawayDatabase) -> None:
    assert await mariadb_database_exists(mariadb_database.name, mariadb_database.server)


def test_database_name_is_unique_and_valid(mariadb_database: ThrowawayDatabase) -> None:
    name = mariadb_database.name
    assert _NAME.fullmatch(name), name
    assert len(name) <= MAX_DATABASE_NAME_LENGTH
    assert name not in {"mysql", "information_schema", "performance_schema", "sys", "test"}
    assert unique_database_name(__name__) != name
    assert mariadb_database.url.startswith("mysql://")
    assert mariadb_database.url.endswith(f"/{name}")


@pytest.mark.asyncio
async def test_database_is_isolated(mariadb_database: ThrowawayDatabase) -> None:
    table = f"isolation_probe_{mariadb_database.name[-8:]}"
    await _run(
        mariadb_database.server, mariadb_database.name, [(f"CREATE TABLE {table} (id INT)", None)]
    )
    where = "SELECT TABLE_SCHEMA FROM information_schema.TABLES WHERE TABLE_NAME = %s"
    rows = await _run(mariadb_database.server, None, [(where, (table,))])
    assert rows == [(mariadb_database.name,)]


@pytest.mark.asyncio
async def test_helpers_create_then_drop(mariadb_server: DatabaseServer) -> None:
    name = unique_database_name("tests.integration.mariadb.helper probe")
    assert name.startswith("stratum_t_helper_probe_")
    assert not await mariadb_database_exists(name, mariadb_server)
    await create_mariadb_database(name, mariadb_server)
    try:
        assert await mariadb_database_exists(name, mariadb_server)
        rows = await _run(
            mariadb_server,
            name,
            [("CREATE TABLE t (id INT)", None), ("SELECT COUNT(*) FROM t", None)],
        )
        assert rows == [(0,)]
    finally:
        await drop_mariadb_database(name, mariadb_server)
    assert not await mariadb_database_exists(name, mariadb_server)
    # Dropping what is already gone is not an error.
    await drop_mariadb_database(name, mariadb_server)
