"""Pushdown into MariaDB: the SELECT a table item with COLUMNS/COMPUTE/WHERE runs, its rows and
the types the server gives them (read from a temporary table created from the SELECT), hidden
key columns, resume, key ranges and split(), the query source (MIGRATE QUERY) with and without
a KEY, and SQL written in PostgreSQL's dialect transpiled to MySQL's."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from stratum.connectors.base import Column
from stratum.connectors.mysql.source import MySQLQuerySource, MySQLTableSource
from stratum.connectors.pushdown import remaining_options
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import ColumnMap, Sql
from stratum.transforms import Transformer
from tests.support.databases import ThrowawayDatabase
from tests.support.options import compute, options
from tests.support.sources import (
    assert_partition,
    key_ranges,
    read_batches,
    rows_of,
    table_ref,
    without_native,
)
from tests.support.sql import my, my_async

ROWS = 1000
NOW = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def orders(mariadb_database: ThrowawayDatabase) -> str:
    """ROWS orders; x is NULL on every third row, the day a zero date on every tenth."""
    my(
        mariadb_database.url,
        "SET SESSION sql_mode = ''",
        """CREATE TABLE orders (
            id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, amount DECIMAL(12,2),
            x INT, paid TINYINT(1) NOT NULL, doc JSON, day DATE,
            status ENUM('new', 'paid', 'sent') NOT NULL)""",
        f"""INSERT INTO orders
            SELECT seq, CONCAT('order ', seq), seq * 1.25, IF(seq % 3 = 0, NULL, seq),
                   seq % 2, JSON_OBJECT('n', seq), IF(seq % 10 = 0, '0000-00-00',
                   '2024-01-01' + INTERVAL seq DAY), ELT(1 + seq % 3, 'new', 'paid', 'sent')
            FROM seq_1_to_{ROWS}""",
    )
    return "orders"


# --- the pushed-down SELECT -------------------------------------------------------------------

PUSHED = options(
    columns=(
        ColumnMap("id", "id"),
        ColumnMap("name", "label"),
        ColumnMap("paid", "paid"),
        ColumnMap("doc", "doc"),
    ),
    compute=(
        compute("cents", "amount * 100"),
        compute("x0", "COALESCE(x, 0)"),
        compute("tag", "'%' || name || '%'"),  # PostgreSQL's || runs as CONCAT; % survives
        compute("due", "day"),
    ),
    where=Sql("amount >= 100 AND name LIKE 'order %' AND status <> 'sent'", "postgres"),
)


def _expected(i: int) -> tuple[Any, ...]:
    day = None if i % 10 == 0 else date(2024, 1, 1) + timedelta(days=i)
    return (
        i,
        f"order {i}",
        i % 2 == 1,
        {"n": i},
        Decimal(i) * Decimal("125"),
        0 if i % 3 == 0 else i,
        f"%order {i}%",
        day,
    )


@pytest.mark.asyncio
async def test_columns_compute_and_where_run_in_the_select(
    mariadb_database: ThrowawayDatabase, orders: str
) -> None:
    database = mariadb_database.name
    source = MySQLTableSource(
        mariadb_database.url, table_ref(orders), projection=PUSHED, item="w.o"
    )
    async with source:
        assert source.applied == {"columns", "compute", "where"}
        assert source.select == (
            "SELECT `id`, `name` AS `label`, `paid`, `doc`, `amount` * 100 AS `cents`, "
            "COALESCE(`x`, 0) AS `x0`, CONCAT('%%', `name`, '%%') AS `tag`, `day` AS `due` "
            f"FROM `{database}`.`orders` "
            "WHERE (`amount` >= 100 AND `name` LIKE 'order %%' AND `status` <> 'sent') "
            "ORDER BY `id`"
        )
        schema = await source.schema()
        assert without_native(schema.columns) == (
            Column("id", "integer", False),  # copied: the column's own mapping
            Column("label", "varchar(40)", False),
            Column("paid", "boolean", False),
            Column("doc", "jsonb", True),  # MariaDB's JSON stays JSON when copied
            Column("cents", "numeric(15,2)", True),  # computed: as the server types it
            Column("x0", "integer", False),
            Column("tag", "varchar(42)", False),
            Column("due", "date", True),
        )
        assert schema.primary_key == ("id",)
        batches = await read_batches(source, 100)
    expected = [_expected(i) for i in range(80, ROWS + 1) if (1 + i % 3) != 3]
    assert rows_of(batches) == expected  # values converted as for a table: bool, JSON, dates
    assert batches[0].cursor == [list(expected)[99][0]]


@pytest.mark.asyncio
async def test_same_rows_as_the_python_transforms(
    mariadb_database: ThrowawayDatabase, orders: str
) -> None:
    given = dataclasses.replace(
        PUSHED,
        compute=PUSHED.compute[:2],
        where=Sql("amount >= 100 AND x IS NOT NULL", "postgres"),
    )
    url = mariadb_database.url
    async with MySQLTableSource(url, table_ref(orders), projection=given) as pushed:
        rest = remaining_options(pushed, given)
        transformer = Transformer.build(await pushed.schema(), rest, now=NOW)
        assert transformer.is_identity
        got = [r for b in await read_batches(pushed) for r in transformer.apply(b).rows]
    async with MySQLTableSource(url, table_ref(orders)) as plain:
        python = Transformer.build(await plain.schema(), given, now=NOW)
        before = [r for b in await read_batches(plain) for r in python.apply(b).rows]
    assert got == before
    assert len(got) == 614


@pytest.mark.asyncio
async def test_hidden_key_columns_and_resume(
    mariadb_database: ThrowawayDatabase, orders: str
) -> None:
    given = options(columns=(ColumnMap("name", "name"),), where=Sql("id % 2 = 0", "postgres"))
    async with MySQLTableSource(mariadb_database.url, table_ref(orders), projection=given) as src:
        assert src.select.startswith("SELECT `name`, `id` FROM")
        assert src.select.endswith("WHERE (`id` %% 2 = 0) ORDER BY `id`")
        schema = await src.schema()
        assert schema.names == ("name",)
        assert schema.primary_key == ()
        batches = await read_batches(src, 100)
        assert rows_of(batches) == [(f"order {i}",) for i in range(2, ROWS + 1, 2)]
        assert [b.cursor for b in batches] == [[i * 200] for i in range(1, 6)]
        rest = await read_batches(src, 100, after=json.loads(json.dumps(batches[1].cursor)))
        assert rows_of(rest) == rows_of(batches)[200:]


@pytest.mark.asyncio
async def test_a_function_the_server_lacks_names_the_expression_and_the_item(
    mariadb_database: ThrowawayDatabase, orders: str
) -> None:
    given = options(compute=(compute("ok", "x + 1"), compute("bad", "no_such_function(x)")))
    source = MySQLTableSource(mariadb_database.url, table_ref(orders), projection=given, item="w.o")
    with pytest.raises(SourceError) as caught:
        await source.open()
    message = str(caught.value)
    assert message.startswith("item 'w.o': MySQL refuses COMPUTE bad 'no_such_function(x)'")
    assert "does not exist" in message


# --- key ranges and split() -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_split_cuts_the_rows_into_equal_key_ranges(
    mariadb_database: ThrowawayDatabase, orders: str
) -> None:
    url = mariadb_database.url
    async with MySQLTableSource(url, table_ref(orders)) as source:
        whole = rows_of(await read_batches(source, 500))
        assert await source.split(1) == []
        cuts = await source.split(4)
    assert cuts == [[250], [500], [750]]
    assert_partition(await key_ranges(MySQLTableSource, url, table_ref(orders), cuts), whole)
    async with MySQLTableSource(url, table_ref(orders), bounds=([100], [200])) as source:
        rows = rows_of(await read_batches(source, 30, after=[150]))
    assert [r[0] for r in rows] == list(range(151, 201))


@pytest.mark.asyncio
async def test_split_a_composite_enum_key_with_a_pushed_where(
    mariadb_database: ThrowawayDatabase, orders: str
) -> None:
    url = mariadb_database.url
    given = options(columns=(ColumnMap("id", "id"),), where=Sql("x IS NOT NULL", "postgres"))
    key = ("status", "id")  # an enum orders by its index: new, paid, sent
    async with MySQLTableSource(url, table_ref(orders), key, projection=given) as source:
        whole = rows_of(await read_batches(source, 1000))
        cuts = await source.split(5)
    assert len(whole) == 667
    assert len(cuts) == 4
    assert all(isinstance(c, list) and c[0] in ("new", "paid", "sent") for c in cuts)
    assert_partition(
        await key_ranges(MySQLTableSource, url, table_ref(orders), cuts, key=key, projection=given),
        whole,
    )


@pytest.mark.asyncio
async def test_a_table_without_a_key_cannot_be_split(mariadb_database: ThrowawayDatabase) -> None:
    url = mariadb_database.url
    await my_async(url, "CREATE TABLE heap (v INT)")
    async with MySQLTableSource(url, table_ref("heap")) as source:
        with pytest.raises(ConfigError, match="PARTITIONS needs a primary or unique key"):
            await source.split(3)
    async with MySQLTableSource(url, table_ref("heap"), bounds=(None, [1])) as source:
        with pytest.raises(ConfigError, match="PARTITIONS needs a primary or unique key"):
            await read_batches(source)


# --- the query source -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_query_with_a_key_is_read_in_key_order_and_resumes(
    mariadb_database: ThrowawayDatabase, orders: str
) -> None:
    query = Sql(
        "SELECT id AS n, doc, paid, x * 2 AS twice FROM orders WHERE id <= 500 AND name LIKE '%'",
        "mysql",
    )
    url = mariadb_database.url
    async with MySQLQuerySource(url, query, ("n",), item="q") as source:
        assert source.resumable
        assert source.applied == frozenset()
        assert source.select == (
            "SELECT * FROM (SELECT id AS n, doc, paid, x * 2 AS twice FROM orders "
            "WHERE id <= 500 AND name LIKE '%%') AS `q` ORDER BY `n`"
        )
        schema = await source.schema()
        assert without_native(schema.columns) == (
            Column("n", "integer", False),
            Column("doc", "text", True),  # MariaDB's JSON is longtext once out of its table
            Column("paid", "boolean", False),
            Column("twice", "bigint", True),
        )
        assert schema.primary_key == ("n",)
        batches = await read_batches(source, 100)
        expected = [
            (i, json.dumps({"n": i}), i % 2 == 1, None if i % 3 == 0 else 2 * i)
            for i in range(1, 501)
        ]
        assert [(r[0], json.loads(r[1]), r[2], r[3]) for r in rows_of(batches)] == [
            (n, json.loads(doc), paid, twice) for n, doc, paid, twice in expected
        ]
        assert [b.cursor for b in batches] == [[i * 100] for i in range(1, 6)]
        rest = rows_of(await read_batches(source, 100, after=[250]))
        assert [r[0] for r in rest] == list(range(251, 501))
        assert await source.split(2) == [[250]]
    async with MySQLQuerySource(url, query, ("n",), bounds=([250], None)) as source:
        assert [r[0] for r in rows_of(await read_batches(source, 1000))] == list(range(251, 501))


@pytest.mark.asyncio
async def test_query_without_a_key_runs_as_written_and_is_not_resumable(
    mariadb_database: ThrowawayDatabase, orders: str
) -> None:
    query = Sql("SELECT id, name FROM orders WHERE id <= 5 ORDER BY id DESC", "mysql")
    async with MySQLQuerySource(mariadb_database.url, query) as source:
        assert source.resumable is False
        batches = await read_batches(source, 2)
        assert rows_of(batches) == [(i, f"order {i}") for i in range(5, 0, -1)]
        assert all(b.cursor is None for b in batches)
        with pytest.raises(SourceError, match="the query has no KEY"):
            await read_batches(source, 2, after=[3])
        with pytest.raises(ConfigError, match="PARTITIONS needs"):
            await source.split(2)


@pytest.mark.asyncio
async def test_query_written_for_postgres_runs_on_mariadb(
    mariadb_database: ThrowawayDatabase, orders: str
) -> None:
    query = Sql(
        "SELECT id, COALESCE(x, 0)::bigint AS x0, '#' || id AS tag FROM orders "
        "WHERE id BETWEEN 1 AND 4",
        "postgres",
    )
    async with MySQLQuerySource(mariadb_database.url, query, ("id",)) as source:
        assert "CONCAT('#', id)" in source.select
        assert (await source.schema()).names == ("id", "x0", "tag")
        assert rows_of(await read_batches(source)) == [
            (1, 1, "#1"),
            (2, 2, "#2"),
            (3, 0, "#3"),
            (4, 4, "#4"),
        ]


@pytest.mark.asyncio
async def test_query_mistakes(mariadb_database: ThrowawayDatabase, orders: str) -> None:
    url = mariadb_database.url
    good = Sql("SELECT id FROM orders", "mysql")
    with pytest.raises(ConfigError, match=r"KEY \(nope\) names columns the query does not"):
        await MySQLQuerySource(url, good, ("nope",), item="q").open()
    missing = Sql("SELECT * FROM no_such_table_x", "mysql")
    with pytest.raises(SourceError, match=r"the query of item 'q'.*no_such_table_x"):
        await MySQLQuerySource(url, missing, item="q").open()
    server = mariadb_database.server
    with pytest.raises(ConfigError, match="no database"):
        await MySQLQuerySource(f"mysql://root@{server.host}:{server.port}", good).open()
