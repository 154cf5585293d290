"""What the fault-injection tests share: running `stratum migrate` with a fault timed against
its progress, and checking that the destination holds every row exactly once.

A fault is timed by polling the destination's checkpoint row (`wait_for_batches`): the run is
slowed by a `sleep:` failpoint so that the fault lands while the item is mid-way.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncmy
import asyncpg

from tests.support.checksums import canonical_rows, canonical_value, row_checksum
from tests.support.migrate import Migrate, events

RUN_TIMEOUT = 60


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def execute(url: str, sql: str) -> None:
    """One or more statements, outside any transaction (CREATE TABLESPACE needs that)."""

    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def mariadb(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements on the MariaDB database of `url`; the rows of the last one."""

    async def go() -> list[tuple[Any, ...]]:
        parts = urlsplit(url)
        conn = await asyncmy.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path.lstrip("/") or None,
            autocommit=True,
        )
        rows: list[tuple[Any, ...]] = []
        try:
            async with conn.cursor() as cursor:
                for statement in statements:
                    await cursor.execute(statement)
                    rows = [tuple(r) for r in await cursor.fetchall() or ()]
        finally:
            await conn.ensure_closed()
        return rows

    return asyncio.run(go())


def checkpoint(url: str, item: str) -> asyncpg.Record | None:
    try:
        rows = fetch(url, "SELECT * FROM stratum.checkpoints WHERE item = $1", item)
    except asyncpg.UndefinedTableError:
        return None
    return rows[0] if rows else None


def wait_for_batches(
    url: str, item: str, batches: int, process: subprocess.Popen[str], timeout: float = 20
) -> None:
    """Wait until the destination's checkpoint counts `batches` committed batches."""
    wait_for_sql(
        url,
        "SELECT EXISTS (SELECT 1 FROM stratum.checkpoints WHERE item = $1 AND batches >= $2)",
        process,
        item,
        batches,
        timeout=timeout,
    )


def wait_for_sql(
    url: str, sql: str, process: subprocess.Popen[str], *args: Any, timeout: float = 20
) -> None:
    """Wait until `sql` gives true (a table it reads that is not there yet: false), polled on
    one connection (the poll costs the run under
    test little); AssertionError when the run ends first or after `timeout` seconds."""

    async def poll() -> None:
        conn = await asyncpg.connect(url)
        try:
            deadline = time.monotonic() + timeout
            while not await _holds(conn, sql, args):
                if process.poll() is not None:
                    _, err = process.communicate()
                    raise AssertionError(f"the run ended before {sql!r} held: {err[-2000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{sql!r} did not hold within {timeout} s")
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    asyncio.run(poll())


def wait_for_pause(migrate: Migrate, item: str, process: subprocess.Popen[str]) -> str:
    """Wait until the state store (read as `stratum progress` reads it, while the run writes
    it) says the item is paused; its last error."""
    from stratum.state import ItemState, StateStore

    deadline = time.monotonic() + 20
    while process.poll() is None and time.monotonic() < deadline:
        if migrate.state_dir.exists():
            with StateStore.open(migrate.state_dir, migrate.plan.resolve(), readonly=True) as store:
                record = store.get_item(item)
            if record is not None and record.state is ItemState.PAUSED:
                return record.last_error or ""
        time.sleep(0.01)
    raise AssertionError(f"{item} was not seen paused")


async def _holds(conn: Any, sql: str, args: Sequence[Any]) -> bool:
    try:
        return bool(await conn.fetchval(sql, *args))
    except asyncpg.UndefinedTableError:  # stratum.checkpoints is made by the run
        return False


def window(batch: int, seconds: float = 0.5) -> str:
    """Failpoints that hold the run still for `seconds` right after its `batch`th commit: a
    test waits for that batch (`wait_for_batches`), then arms its fault, which strikes the
    next batch."""
    return f"after_commit=sleep:{seconds}@{batch}"


def start(
    migrate: Migrate,
    failpoints: str | None = None,
    env: dict[str, str] | None = None,
    extra: Sequence[str] = (),
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        migrate.command(tuple(extra)),
        env={**migrate.env(failpoints), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait for the run; its exit code and its JSON log (stderr)."""
    _, err = process.communicate(timeout=RUN_TIMEOUT)
    return process.returncode, err


def summary_item(path: Path) -> dict[str, Any]:
    """The one item of a `--summary` file, after checking the accounting identity."""
    (item,) = json.loads(path.read_text())["items"]
    assert item["rows_read"] == (
        item["rows_written"] + item["rows_rejected"] + item["rows_filtered"]
    ), item
    return dict(item)


def errors(log: str) -> list[dict[str, Any]]:
    return events(log, "error")


# --- what the destination holds ---------------------------------------------------------------


def people_texts(rows: Sequence[tuple[int, str, Decimal]]) -> list[str]:
    """The canonical texts (tests/support/checksums.py) of `write_people` rows: the columns
    in name order, amount, id, name."""
    return [
        json.dumps(
            [canonical_value(amount), canonical_value(i), name],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for i, name, amount in rows
    ]


def table_texts(url: str, table: str, columns: Sequence[str]) -> list[str]:
    return asyncio.run(canonical_rows(url, table, columns=columns))


def assert_same_rows(
    expected: Sequence[str], actual: Sequence[str], key_at: int | None = None
) -> None:
    """`actual` holds exactly the rows of `expected`: as multisets (a row twice is an error
    even without a key) and, with `key_at` (the key's index in the canonical list), per key by
    checksum: no key missing, none extra, none doubled, none different."""
    if key_at is not None:
        keys = Counter(json.loads(text)[key_at] for text in actual)
        doubled = sorted(k for k, n in keys.items() if n > 1)
        assert not doubled, f"keys loaded more than once: {doubled[:10]}"
        want = {json.loads(t)[key_at]: row_checksum(t) for t in expected}
        have = {json.loads(t)[key_at]: row_checksum(t) for t in actual}
        missing = sorted(set(want) - set(have))
        extra = sorted(set(have) - set(want))
        different = sorted(k for k in set(want) & set(have) if want[k] != have[k])
        assert not missing, f"keys missing: {missing[:10]}"
        assert not extra, f"keys not in the source: {extra[:10]}"
        assert not different, f"keys whose row differs: {different[:10]}"
    left, right = Counter(expected), Counter(actual)
    assert left == right, (
        f"{len(actual)} rows for {len(expected)} expected; missing "
        f"{sorted((left - right).elements())[:3]}, extra {sorted((right - left).elements())[:3]}"
    )


def assert_consistent(url: str, table: str, item: str) -> int:
    """The data matches the checkpoint that counts it (nothing lost, nothing uncounted); the
    number of rows."""
    (count,) = fetch(url, f'SELECT count(*) AS n FROM "{table}"')
    found = checkpoint(url, item)
    assert found is not None
    assert count["n"] == found["rows_written"], (count["n"], dict(found))
    assert (
        found["rows_read"]
        == found["rows_written"] + found["rows_rejected"] + found["rows_filtered"]
    )
    return int(count["n"])
