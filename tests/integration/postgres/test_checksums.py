"""The shop fixture, copied MariaDB -> PostgreSQL table by table, checked with the per-row
checksums of `tests.support.checksums`: equal after the copy, different once one value of the
copy changes (so the checker can fail)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.support.checksums import (
    canonical_rows,
    compare_databases,
    compare_tables,
    table_checksums,
)
from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import Migrate
from tests.support.shop_schema import LONG_TABLE, NOTES_TABLE, SHOP_TABLES, SHOP_VIEWS, load_shop

#: The copied tables: every MySQL type trap of the fixture is in one of them (zero dates, SET,
#: ENUM, JSON, BIT(1), BIT(n), YEAR, BIGINT UNSIGNED, DECIMAL(65,30), FLOAT, BLOB, POINT,
#: latin1, emoji, TIMESTAMP), plus a table without any key whose duplicate rows count.
COPIED = ("customers", "products", "addresses", "audit_log")


async def _pg_execute(url: str, sql: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.execute(sql))
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def copied(
    tmp_path_factory: pytest.TempPathFactory,
    mariadb_database: ThrowawayDatabase,
    postgres_database: ThrowawayDatabase,
) -> dict[str, int]:
    """The shop loaded into MariaDB, and COPIED migrated to PostgreSQL; the source's counts."""
    counts = asyncio.run(load_shop(mariadb_database.url, rows=80))
    directory = tmp_path_factory.mktemp("checksums")
    plan = directory / "shop.smql"
    plan.write_text(
        f"CONNECTION shop = '{mariadb_database.url}';\n"
        f"CONNECTION wh = '{postgres_database.url}';\n"
        + "".join(f"MIGRATE shop.{t} INTO wh.public.{t} BATCH SIZE 50;\n" for t in COPIED),
        encoding="utf-8",
    )
    result = Migrate(plan, directory / "state").run()
    assert result.returncode == 0, result.stderr + result.stdout
    return counts


def test_the_fixture_is_deterministic_and_complete(
    copied: dict[str, int], mariadb_database: ThrowawayDatabase
) -> None:
    assert tuple(copied) == SHOP_TABLES
    assert 1000 <= sum(copied.values()) <= 5000
    assert all(count > 0 for count in copied.values())
    # the reserved-word table reads like any other
    notes = asyncio.run(canonical_rows(mariadb_database.url, NOTES_TABLE))
    assert len(notes) == copied[NOTES_TABLE]


def test_the_copies_have_the_same_row_checksums(
    copied: dict[str, int],
    mariadb_database: ThrowawayDatabase,
    postgres_database: ThrowawayDatabase,
) -> None:
    for table in COPIED:
        source = asyncio.run(table_checksums(mariadb_database.url, table))
        target = asyncio.run(table_checksums(postgres_database.url, table))
        assert len(source) == copied[table], table
        assert source == target, table
    assert (
        asyncio.run(compare_databases(mariadb_database.url, postgres_database.url, tables=COPIED))
        == []
    )


def test_the_canonical_form_of_the_traps(
    copied: dict[str, int],
    mariadb_database: ThrowawayDatabase,
    postgres_database: ThrowawayDatabase,
) -> None:
    """A few rows by hand: the same text on both sides, and the text the mapping promises."""
    columns = ["birth_date", "id", "newsletter", "preferences", "signup_year", "updated_at"]
    for url in (mariadb_database.url, postgres_database.url):
        rows = sorted(asyncio.run(canonical_rows(url, "customers", columns=columns)))
        by_id = {row.split(",")[1]: row for row in rows}
        # zero date -> NULL, YEAR 2155, TIMESTAMP(3) at its limit, in UTC
        assert by_id['"1"'].startswith('[null,"1","f","{')
        assert by_id['"1"'].endswith('"2155","2038-01-19 03:14:07.999000"]')
        # partial zero date -> NULL; the JSON literal null -> SQL NULL
        assert by_id['"2"'] == '[null,"2","f",null,"1901","1970-01-01 00:00:01.000000"]'
        # a real date of year 9; BIT(1) b'1' -> true; a JSON string; the zero YEAR 0000 -> 0
        assert by_id['"3"'] == '["0009-12-04","3","t","\\"just a JSON string\\"","0",null]'
    bits = asyncio.run(canonical_rows(postgres_database.url, "products", columns=["flags"]))
    assert all(len(row) == len('["00000000"]') for row in bits)  # BIT(8): 8 bits, zeros kept


def test_a_changed_value_makes_the_checksums_differ(
    copied: dict[str, int],
    mariadb_database: ThrowawayDatabase,
    postgres_database: ThrowawayDatabase,
) -> None:
    source, target = mariadb_database.url, postgres_database.url
    before = asyncio.run(table_checksums(target, "products"))
    changed = asyncio.run(
        _pg_execute(target, "UPDATE products SET cost = cost + 1e-30 WHERE id = 1")
    )
    assert changed == "UPDATE 1"
    assert asyncio.run(table_checksums(target, "products")) != before
    difference = asyncio.run(compare_tables(source, target, "products"))
    assert difference is not None
    assert (difference.source_rows, difference.target_rows) == (copied["products"],) * 2
    assert len(difference.only_in_source) == len(difference.only_in_target) == 1
    assert (
        "12345678901234567890123456789012345.12345678901234567890123456789"
        in (difference.only_in_source[0])
    )
    assert (
        "12345678901234567890123456789012345.123456789012345678901234567891"
        in (difference.only_in_target[0])
    )

    # a row lost from the table without a key: the multiset sees it, even among duplicates
    asyncio.run(
        _pg_execute(
            target,
            "DELETE FROM audit_log WHERE ctid = (SELECT max(ctid) FROM audit_log WHERE "
            "(at, actor, action) IN (SELECT at, actor, action FROM audit_log "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1))",
        )
    )
    differences = asyncio.run(compare_databases(source, target, tables=COPIED))
    assert [d.table for d in differences] == ["products", "audit_log"]
    lost = differences[1]
    assert (lost.source_rows, lost.target_rows) == (copied["audit_log"], copied["audit_log"] - 1)
    assert len(lost.only_in_source) == 1
    assert lost.only_in_target == ()
    # and a table missing on one side is a difference too
    (missing,) = asyncio.run(compare_databases(source, target, tables=["reviews"]))
    assert (missing.source_rows, missing.target_rows) == (copied["reviews"], None)


def test_zero_dates_follow_the_policy_given(mariadb_database: ThrowawayDatabase) -> None:
    """The same source under ZERO DATES AS '1970-01-01' or AS ERROR, as the copy would be."""
    url = mariadb_database.url
    columns = ["birth_date", "id"]
    null = asyncio.run(canonical_rows(url, "customers", columns=columns))
    sentinel = asyncio.run(
        canonical_rows(url, "customers", columns=columns, zero_dates="1970-01-01")
    )
    error = asyncio.run(canonical_rows(url, "customers", columns=columns, zero_dates="error"))
    assert '[null,"1"]' in null
    assert '["1970-01-01","1"]' in sentinel
    assert not any(row.endswith(',"1"]') for row in error)  # the row would be rejected
    assert len(error) == len(null) - 3  # '0000-00-00', '2020-00-15', '2020-01-00'


def test_the_view_and_the_long_name_exist(
    copied: dict[str, int], mariadb_database: ThrowawayDatabase
) -> None:
    url = mariadb_database.url
    assert len(LONG_TABLE.encode()) == 64  # one byte past PostgreSQL's limit
    assert len(asyncio.run(canonical_rows(url, LONG_TABLE))) == copied[LONG_TABLE]
    (view,) = SHOP_VIEWS
    assert len(asyncio.run(canonical_rows(url, view))) == copied["orders"]
