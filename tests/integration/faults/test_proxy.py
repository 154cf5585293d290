"""The fault-injection proxy itself (tests/support/proxy.py), in front of PostgreSQL: each
control does what it says, counts what it did, and the proxy shuts down cleanly."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from tests.support.databases import DatabaseServer, ThrowawayDatabase
from tests.support.proxy import DOWN, UP, Proxy

pytestmark = pytest.mark.postgres

LOST = (asyncpg.ConnectionDoesNotExistError, ConnectionError)


@pytest_asyncio.fixture
async def marks(postgres_database: ThrowawayDatabase) -> AsyncIterator[str]:
    """A table for rows the tests write through the proxy; its name."""
    conn = await asyncpg.connect(postgres_database.url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS marks (note text)")
        await conn.execute("TRUNCATE marks")
        yield "marks"
    finally:
        await conn.close()


async def notes(database: ThrowawayDatabase) -> list[str]:
    conn = await asyncpg.connect(database.url)
    try:
        return [r["note"] for r in await conn.fetch("SELECT note FROM marks ORDER BY note")]
    finally:
        await conn.close()


@pytest.mark.asyncio
async def test_reset_refuse_and_heal(postgres_database: ThrowawayDatabase, pg_proxy: Proxy) -> None:
    url = pg_proxy.url(postgres_database.url)
    conn = await asyncpg.connect(url)
    assert await conn.fetchval("SELECT 1") == 1
    assert pg_proxy.open_connections == 1
    assert pg_proxy.reset() == 1
    with pytest.raises(LOST):
        await conn.fetchval("SELECT 1")
    pg_proxy.refuse(times=2)
    for _ in range(2):
        with pytest.raises(LOST):
            await asyncpg.connect(url)
    conn = await asyncpg.connect(url)  # the third is let through
    assert await conn.fetchval("SELECT 2") == 2
    await conn.close()
    assert (pg_proxy.connections, pg_proxy.refused, pg_proxy.resets) == (4, 2, 3)
    assert [what for _, _, what in pg_proxy.log] == [
        "accepted",
        "reset",
        "refused",
        "reset",
        "refused",
        "reset",
        "accepted",
    ]


@pytest.mark.asyncio
async def test_cut_after_forwards_exactly_that_many_bytes_of_the_chosen_connection(
    postgres_database: ThrowawayDatabase, pg_proxy: Proxy
) -> None:
    url = pg_proxy.url(postgres_database.url)
    bystander = await asyncpg.connect(url)
    cut = pg_proxy.cut_after(5000, DOWN, connection=1)  # the next connection, not this one
    victim = await asyncpg.connect(url)
    before = pg_proxy.bytes_down
    with pytest.raises(LOST):
        await victim.fetch("SELECT repeat('x', 1000) FROM generate_series(1, 20)")
    assert cut.struck is not None
    number, sent = cut.struck
    assert number == 2
    assert pg_proxy.bytes_down - before <= 5000
    assert sent >= 5000  # the handshake's bytes count too: the cut came 5000 bytes later
    assert await bystander.fetchval("SELECT 3") == 3
    await bystander.close()


@pytest.mark.asyncio
async def test_cut_at_a_pattern_drops_it_or_lets_it_through_first(
    postgres_database: ThrowawayDatabase, pg_proxy: Proxy, marks: str
) -> None:
    url = pg_proxy.url(postgres_database.url)
    conn = await asyncpg.connect(url)
    pg_proxy.cut_at(b"COMMIT", UP)  # the server never sees the COMMIT: rolled back
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute(f"INSERT INTO {marks} VALUES ('rolled back')")
    with pytest.raises(LOST):
        await transaction.commit()
    conn = await asyncpg.connect(url)
    pg_proxy.cut_at(b"COMMIT\x00", DOWN)  # the server committed; the client cannot know
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute(f"INSERT INTO {marks} VALUES ('committed')")
    with pytest.raises(LOST):
        await transaction.commit()
    assert await notes(postgres_database) == ["committed"]
    conn = await asyncpg.connect(url)
    cut = pg_proxy.cut_at(b"SELECT", UP, skip=1)  # the second SELECT
    assert await conn.fetchval("SELECT 4") == 4
    with pytest.raises(LOST):
        await conn.fetchval("SELECT 5")
    assert cut.struck is not None


@pytest.mark.asyncio
async def test_stall_and_slow_delay_the_bytes(
    postgres_database: ThrowawayDatabase, pg_proxy: Proxy
) -> None:
    conn = await asyncpg.connect(pg_proxy.url(postgres_database.url))
    pg_proxy.stall(0.3)
    started = time.monotonic()
    assert await conn.fetchval("SELECT 1") == 1
    assert time.monotonic() - started >= 0.3
    pg_proxy.slow(50_000)
    started = time.monotonic()
    rows = await conn.fetch("SELECT repeat('x', 1000) FROM generate_series(1, 20)")
    assert len(rows) == 20
    assert time.monotonic() - started >= 0.35  # 20 kB at 50 kB/s
    pg_proxy.heal()
    started = time.monotonic()
    await conn.fetch("SELECT repeat('x', 1000) FROM generate_series(1, 20)")
    assert time.monotonic() - started < 0.3
    await conn.close()


def test_close_resets_what_is_open_and_frees_the_port(postgres_server: DatabaseServer) -> None:
    with Proxy(postgres_server.port, postgres_server.host) as proxy:
        port = proxy.port
        client = socket.create_connection(("127.0.0.1", port))
        proxy.wait_for(lambda p: p.open_connections == 1)
    try:
        client.settimeout(5)
        assert client.recv(1) == b""
    except ConnectionResetError:
        pass  # reset: what close() does to what is open
    finally:
        client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
