"""Fixtures of the PostgreSQL tests: a connection to the module's throwaway database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest_asyncio

from tests.support.databases import ThrowawayDatabase


@pytest_asyncio.fixture
async def conn(postgres_database: ThrowawayDatabase) -> AsyncIterator[Any]:
    """An asyncpg connection to the module's database, closed after the test."""
    connection = await asyncpg.connect(postgres_database.url)
    try:
        yield connection
    finally:
        await connection.close()
