"""Running a few SQL statements on the test servers, from a test body: `pg` and `my` at once,
`pg_async` and `my_async` in a coroutine."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from stratum.connectors.mysql._connect import connect


async def pg_async(url: str, *sql: str) -> list[tuple[Any, ...]]:
    """Run the statements on PostgreSQL, in order; the rows of the last one."""
    conn = await asyncpg.connect(url)
    try:
        rows: list[tuple[Any, ...]] = []
        for statement in sql:
            rows = [tuple(r) for r in await conn.fetch(statement)]
        return rows
    finally:
        await conn.close()


async def my_async(url: str, *sql: str) -> list[tuple[Any, ...]]:
    """Run the statements on MySQL/MariaDB (autocommit), in order; the rows of the last one."""
    conn = await connect(url)
    try:
        rows: list[tuple[Any, ...]] = []
        for statement in sql:
            rows = [tuple(r) for r in await conn.fetchall(statement)]
        return rows
    finally:
        await conn.close()


def pg(url: str, *sql: str) -> list[tuple[Any, ...]]:
    """`pg_async`, outside any event loop."""
    return asyncio.run(pg_async(url, *sql))


def my(url: str, *sql: str) -> list[tuple[Any, ...]]:
    """`my_async`, outside any event loop."""
    return asyncio.run(my_async(url, *sql))
