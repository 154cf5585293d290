"""Running a few SQL statements on the test servers, synchronously, from a test body."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from stratum.connectors.mysql._connect import connect


def pg(url: str, *sql: str) -> list[tuple[Any, ...]]:
    """Run the statements on PostgreSQL, in order; the rows of the last one."""

    async def go() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url)
        try:
            rows: list[tuple[Any, ...]] = []
            for statement in sql:
                rows = [tuple(r) for r in await conn.fetch(statement)]
            return rows
        finally:
            await conn.close()

    return asyncio.run(go())


def my(url: str, *sql: str) -> list[tuple[Any, ...]]:
    """Run the statements on MySQL/MariaDB (autocommit), in order; the rows of the last one."""

    async def go() -> list[tuple[Any, ...]]:
        conn = await connect(url)
        try:
            rows: list[tuple[Any, ...]] = []
            for statement in sql:
                rows = [tuple(r) for r in await conn.fetchall(statement)]
            return rows
        finally:
            await conn.close()

    return asyncio.run(go())
