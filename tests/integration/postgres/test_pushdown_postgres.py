"""Pushdown into PostgreSQL: the SELECT a table item with COLUMNS/COMPUTE/WHERE runs, its rows
and the types the server gives them, hidden key columns, resume, key ranges and split(), the
query source (MIGRATE QUERY) with and without a KEY, and SQL written in another dialect."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from stratum.connectors.base import Column
from stratum.connectors.postgres.source import PostgresQuerySource, PostgresTableSource
from stratum.connectors.pushdown import remaining_options
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import CastRule, ColumnMap, Sql
from stratum.transforms import Transformer
from tests.support.databases import ThrowawayDatabase
from tests.support.options import compute, options
from tests.support.sources import (
    assert_partition,
    key_ranges,
    read_batches,
    rows_of,
    table_ref,
    unique_name,
    without_native,
)

ROWS = 1000
NOW = datetime(2024, 6, 1, tzinfo=UTC)


@pytest_asyncio.fixture
async def orders(conn: Any) -> str:
    """A table of ROWS orders in random heap order; x is NULL on every third row."""
    table = unique_name("orders")
    await conn.execute(
        "DO $$ BEGIN CREATE DOMAIN cents AS numeric(14,0); EXCEPTION "
        "WHEN duplicate_object THEN NULL; END $$"
    )
    await conn.execute(
        f"""CREATE TABLE {table} (
            id bigint PRIMARY KEY, name varchar(40) NOT NULL, amount numeric(12,2),
            x integer, created timestamp NOT NULL)"""
    )
    await conn.execute(
        f"""INSERT INTO {table}
        SELECT g, 'order ' || g, g * 1.25, CASE WHEN g % 3 = 0 THEN NULL ELSE g END,
               timestamp '2024-01-01' + g * interval '1 hour'
        FROM generate_series(1, {ROWS}) g ORDER BY random()"""
    )
    return table


# --- the pushed-down SELECT -------------------------------------------------------------------

PUSHED = options(
    columns=(ColumnMap("id", "id"), ColumnMap("name", "label"), ColumnMap("amount", "amount")),
    compute=(
        compute("cents", "amount * 100"),
        compute("x0", "IFNULL(x, 0)", "mysql"),  # MySQL's IFNULL runs as COALESCE
        compute("shout", "upper(name) || '!'"),
        compute("money", "(amount * 100)::cents"),
    ),
    where=Sql("amount >= 100 AND created < '2024-02-01'", "postgres"),
)


@pytest.mark.asyncio
async def test_columns_compute_and_where_run_in_the_select(
    postgres_database: ThrowawayDatabase, conn: Any, orders: str
) -> None:
    source = PostgresTableSource(
        postgres_database.url, table_ref(orders), projection=PUSHED, item="wh.orders"
    )
    async with source:
        assert source.applied == {"columns", "compute", "where"}
        assert source.select == (
            'SELECT "id", "name" AS "label", "amount", "amount" * 100 AS "cents", '
            'COALESCE("x", 0) AS "x0", UPPER("name") || \'!\' AS "shout", '
            'CAST(("amount" * 100) AS cents) AS "money" '
            f'FROM "public"."{orders}" '
            'WHERE ("amount" >= 100 AND "created" < \'2024-02-01\') ORDER BY "id"'
        )
        schema = await source.schema()
        assert without_native(schema.columns) == (
            Column("id", "bigint", False),  # copied: the column's own type and nullability
            Column("label", "character varying(40)", False),
            Column("amount", "numeric(12,2)", True),
            Column("cents", "numeric"),  # computed: the server's type, nullable
            Column("x0", "integer"),
            Column("shout", "text"),
            Column("money", "numeric"),  # a domain: its base type (without its modifier)
        )
        assert schema.primary_key == ("id",)
        batches = await read_batches(source, 100)
    expected = [
        (
            i,
            f"order {i}",
            Decimal(i) * Decimal("1.25"),
            Decimal(i) * Decimal("125"),
            0 if i % 3 == 0 else i,
            f"ORDER {i}!",
            Decimal(i) * Decimal("125"),
        )
        for i in range(80, 744)  # amount >= 100 from 80 on; created < Feb from 744 down
    ]
    assert rows_of(batches) == expected
    assert [b.cursor for b in batches][:2] == [[179], [279]]


@pytest.mark.asyncio
async def test_same_rows_as_the_python_transforms(
    postgres_database: ThrowawayDatabase, orders: str
) -> None:
    python_options = dataclasses.replace(
        PUSHED, compute=PUSHED.compute[:3]
    )  # the transforms have no domain `cents`
    url = postgres_database.url
    async with PostgresTableSource(url, table_ref(orders), projection=python_options) as pushed:
        rest = remaining_options(pushed, python_options)
        assert (rest.columns, rest.compute, rest.where) == ((), (), None)
        transformer = Transformer.build(await pushed.schema(), rest, now=NOW)
        assert transformer.is_identity
        got = [r for b in await read_batches(pushed) for r in transformer.apply(b).rows]
    async with PostgresTableSource(url, table_ref(orders)) as plain:
        assert plain.applied == frozenset()
        python = Transformer.build(await plain.schema(), python_options, now=NOW)
        before = [r for b in await read_batches(plain) for r in python.apply(b).rows]
    assert got == before
    assert len(got) == 664


@pytest.mark.asyncio
async def test_key_columns_left_out_are_hidden_and_stripped(
    postgres_database: ThrowawayDatabase, orders: str
) -> None:
    given = options(columns=(ColumnMap("name", "name"),), where=Sql("id % 2 = 0", "postgres"))
    async with PostgresTableSource(
        postgres_database.url, table_ref(orders), projection=given
    ) as src:
        assert src.select == (
            f'SELECT "name", "id" FROM "public"."{orders}" WHERE ("id" % 2 = 0) ORDER BY "id"'
        )
        schema = await src.schema()
        assert schema.names == ("name",)
        assert schema.primary_key == ()  # the key is not in the output
        batches = await read_batches(src, 100)
        assert all(len(row) == 1 for row in rows_of(batches))
        assert rows_of(batches) == [(f"order {i}",) for i in range(2, ROWS + 1, 2)]
        assert [b.cursor for b in batches] == [[i * 200] for i in range(1, 6)]
        rest = await read_batches(src, 100, after=json.loads(json.dumps(batches[1].cursor)))
        assert rows_of(rest) == rows_of(batches)[200:]


@pytest.mark.asyncio
async def test_a_renamed_key_is_read_from_its_output_column(
    postgres_database: ThrowawayDatabase, orders: str
) -> None:
    given = options(columns=(ColumnMap("id", "order_id"), ColumnMap("x", "x")))
    async with PostgresTableSource(
        postgres_database.url, table_ref(orders), ("id",), projection=given
    ) as src:
        assert src.select.startswith('SELECT "id" AS "order_id", "x" FROM')
        assert (await src.schema()).primary_key == ("order_id",)
        batches = await read_batches(src, 300)
        assert [b.cursor for b in batches] == [[300], [600], [900], [1000]]
        rest = await read_batches(src, 300, after=[600])
        assert [r[0] for r in rows_of(rest)] == list(range(601, ROWS + 1))


@pytest.mark.asyncio
async def test_cast_rules_keep_the_projection_in_python(
    postgres_database: ThrowawayDatabase, orders: str
) -> None:
    given = options(
        columns=(ColumnMap("id", "id"), ColumnMap("x", "x")),
        where=Sql("id <= 10", "postgres"),
        casts=(CastRule("column", "x", "text"),),
    )
    async with PostgresTableSource(
        postgres_database.url, table_ref(orders), projection=given
    ) as src:
        assert src.applied == {"where"}
        assert (await src.schema()).names == ("id", "name", "amount", "x", "created")
        rest = remaining_options(src, given)
        assert rest.where is None
        assert rest.columns == given.columns
        transformer = Transformer.build(await src.schema(), rest, now=NOW)
        rows = [r for b in await read_batches(src) for r in transformer.apply(b).rows]
    assert rows == [(i, None if i % 3 == 0 else str(i)) for i in range(1, 11)]


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_function_the_server_lacks_names_the_expression_and_the_item(
    postgres_database: ThrowawayDatabase, orders: str
) -> None:
    given = options(
        compute=(compute("ok", "x + 1"), compute("bad", "no_such_function(x)")),
        where=Sql("x > 0", "postgres"),
    )
    source = PostgresTableSource(
        postgres_database.url, table_ref(orders), projection=given, item="w.o"
    )
    with pytest.raises(SourceError) as caught:
        await source.open()
    message = str(caught.value)
    assert message.startswith("item 'w.o': PostgreSQL refuses COMPUTE bad 'no_such_function(x)'")
    assert "does not exist" in message
    await source.close()
    bad_where = options(where=Sql("levenshtein_x(name) > 1", "postgres"))
    source = PostgresTableSource(
        postgres_database.url, table_ref(orders), projection=bad_where, item="w.o"
    )
    with pytest.raises(SourceError, match=r"item 'w.o': PostgreSQL refuses WHERE 'levensh"):
        await source.open()
    await source.close()


@pytest.mark.asyncio
async def test_a_set_returning_compute_is_refused(
    postgres_database: ThrowawayDatabase, orders: str
) -> None:
    given = options(compute=(compute("each", "jsonb_array_elements('[1, 2]'::jsonb)"),))
    source = PostgresTableSource(
        postgres_database.url, table_ref(orders), projection=given, item="i"
    )
    with pytest.raises(ConfigError, match=r"COMPUTE each .* returns a set of rows"):
        await source.open()
    await source.close()


# --- key ranges and split() -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_split_cuts_the_rows_into_equal_key_ranges(
    postgres_database: ThrowawayDatabase, orders: str
) -> None:
    url = postgres_database.url
    async with PostgresTableSource(url, table_ref(orders)) as source:
        whole = rows_of(await read_batches(source, 500))
        assert await source.split(1) == []
        cuts = await source.split(4)
        assert cuts == [[250], [500], [750]]
        assert await source.split(7) == sorted(await source.split(7))
    assert_partition(await key_ranges(PostgresTableSource, url, table_ref(orders), cuts), whole)
    async with PostgresTableSource(url, table_ref(orders), bounds=([100], [200])) as source:
        assert '("id") > ($1) AND ("id") <= ($2) ORDER BY' in source.select
        # a resume inside the range: after the cursor, still up to the range's end
        rows = rows_of(await read_batches(source, 30, after=[150]))
        assert [r[0] for r in rows] == list(range(151, 201))


@pytest.mark.asyncio
async def test_split_with_a_pushed_down_where(
    postgres_database: ThrowawayDatabase, orders: str
) -> None:
    url = postgres_database.url
    given = options(columns=(ColumnMap("name", "name"),), where=Sql("x IS NOT NULL", "postgres"))
    async with PostgresTableSource(url, table_ref(orders), projection=given) as source:
        whole = rows_of(await read_batches(source, 1000))
        cuts = await source.split(5)
    assert len(whole) == 667
    assert len(cuts) == 4
    assert_partition(
        await key_ranges(PostgresTableSource, url, table_ref(orders), cuts, projection=given), whole
    )


@pytest.mark.asyncio
async def test_split_a_composite_key(postgres_database: ThrowawayDatabase, conn: Any) -> None:
    table = unique_name("composite")
    await conn.execute(f"CREATE TABLE {table} (a text, b integer, v integer, PRIMARY KEY (a, b))")
    await conn.execute(
        f"INSERT INTO {table} SELECT (ARRAY['x', 'é', 'A'])[g % 3 + 1], g % 50, g "
        "FROM generate_series(1, 150) g"
    )
    url = postgres_database.url
    async with PostgresTableSource(url, table_ref(table)) as source:
        whole = rows_of(await read_batches(source, 1000))
        cuts = await source.split(6)
        assert len(cuts) == 5
        assert all(isinstance(c, list) and len(c) == 2 for c in cuts)
        assert await source.split(500) == [[row[0], row[1]] for row in whole[:-1]]  # few rows
    assert_partition(await key_ranges(PostgresTableSource, url, table_ref(table), cuts), whole)


@pytest.mark.asyncio
async def test_a_table_without_a_key_cannot_be_split(
    postgres_database: ThrowawayDatabase, conn: Any
) -> None:
    table = unique_name("heap")
    await conn.execute(f"CREATE TABLE {table} (v integer)")
    async with PostgresTableSource(postgres_database.url, table_ref(table)) as source:
        with pytest.raises(ConfigError, match="PARTITIONS needs a primary or unique key"):
            await source.split(2)
    source = PostgresTableSource(postgres_database.url, table_ref(table), bounds=(None, [3]))
    async with source:
        with pytest.raises(ConfigError, match="PARTITIONS needs a primary or unique key"):
            await read_batches(source)


# --- the query source -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_query_with_a_key_is_read_in_key_order_and_resumes(
    postgres_database: ThrowawayDatabase, orders: str
) -> None:
    query = Sql(f"SELECT id AS n, name, x * 2 AS twice FROM {orders} WHERE id <= 500", "postgres")
    async with PostgresQuerySource(postgres_database.url, query, ("n",), item="q") as source:
        assert source.resumable
        assert source.applied == frozenset()
        assert source.select == f'SELECT * FROM ({query.text}) AS "q" ORDER BY "n"'
        schema = await source.schema()
        assert without_native(schema.columns) == (
            Column("n", "bigint"),
            Column("name", "character varying"),
            Column("twice", "integer"),
        )
        assert schema.primary_key == ("n",)
        batches = await read_batches(source, 100)
        expected = [(i, f"order {i}", None if i % 3 == 0 else 2 * i) for i in range(1, 501)]
        assert rows_of(batches) == expected
        assert [b.cursor for b in batches] == [[i * 100] for i in range(1, 6)]
        assert rows_of(await read_batches(source, 100, after=[250])) == expected[250:]
        cuts = await source.split(2)
        assert cuts == [[250]]
    parts = []
    for bounds in ((None, [250]), ([250], None)):
        async with PostgresQuerySource(postgres_database.url, query, ("n",), bounds=bounds) as q:
            parts.append(rows_of(await read_batches(q, 1000)))
    assert parts == [expected[:250], expected[250:]]


@pytest.mark.asyncio
async def test_query_without_a_key_runs_as_written_and_is_not_resumable(
    postgres_database: ThrowawayDatabase, orders: str
) -> None:
    query = Sql(f"SELECT id, name FROM {orders} WHERE id <= 5 ORDER BY id DESC;", "postgres")
    async with PostgresQuerySource(postgres_database.url, query) as source:
        assert source.resumable is False
        assert source.select == query.text.rstrip(";")
        batches = await read_batches(source, 2)
        assert rows_of(batches) == [(i, f"order {i}") for i in range(5, 0, -1)]
        assert all(b.cursor is None for b in batches)
        with pytest.raises(SourceError, match="no KEY to resume after"):
            await read_batches(source, 2, after=[3])
        with pytest.raises(ConfigError, match="PARTITIONS needs"):
            await source.split(2)


@pytest.mark.asyncio
async def test_query_written_for_mysql_runs_on_postgres(
    postgres_database: ThrowawayDatabase, orders: str
) -> None:
    query = Sql(
        f"SELECT id, IFNULL(x, 0) AS x0, CONCAT('#', id) AS tag FROM `{orders}` "
        "WHERE id BETWEEN 1 AND 4",
        "mysql",
    )
    async with PostgresQuerySource(postgres_database.url, query, ("id",)) as source:
        assert "COALESCE(x, 0)" in source.select
        assert (await source.schema()).names == ("id", "x0", "tag")
        assert rows_of(await read_batches(source)) == [
            (1, 1, "#1"),
            (2, 2, "#2"),
            (3, 0, "#3"),
            (4, 4, "#4"),
        ]


@pytest.mark.asyncio
async def test_query_mistakes(postgres_database: ThrowawayDatabase, orders: str) -> None:
    url = postgres_database.url
    good = Sql(f"SELECT id, interval '1 day' * id AS span FROM {orders}", "postgres")
    with pytest.raises(ConfigError, match=r"KEY \(nope\) names columns the query does not"):
        await PostgresQuerySource(url, good, ("nope",), item="q").open()
    with pytest.raises(ConfigError, match="cannot be resumed after"):
        await PostgresQuerySource(url, good, ("span",), item="q").open()
    missing = Sql("SELECT * FROM no_such_table_x", "postgres")
    with pytest.raises(SourceError, match=r"the query of item 'q'.*no_such_table_x"):
        await PostgresQuerySource(url, missing, item="q").open()
