"""stratum.schema.ddl against the real PostgreSQL: bare tables are created and loaded, every
statement runs (after its `done` query), the keys, indexes, sequences, checks, foreign keys and
views are there and work; a second run finds every `done` query satisfied."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest

from stratum.connectors.base import Column, Schema
from stratum.connectors.sql import create_table_sql, quote
from stratum.schema import ddl
from stratum.schema.catalog import Catalog, ForeignKey, IndexInfo, TableInfo, ViewInfo
from tests.support.databases import ThrowawayDatabase
from tests.support.ddl import all_statements, col, run_undone
from tests.support.ddl import build as build_catalog
from tests.support.sql import pg

LONG = "lignes_de_commande_" + "é" * 30  # 79 bytes: cut on PostgreSQL


# A MySQL source, as introspect_mysql reads it
CUSTOMERS = TableInfo(
    "customers",
    (
        col("id", "numeric(20,0)", False, auto_increment=True, native="bigint(20) unsigned"),
        col("email", "varchar(100)", False),
        col("bio", "text", comment="free text, it's long"),
        col("created", "timestamp", False, default="current_timestamp()", native="datetime"),
        col("active", "boolean", False, default="1", native="tinyint(1)"),
        col("token", "varchar(36)", default="uuid()"),
        col(
            "status",
            "text",
            default="'new'",
            labels=("new", "it's", "a,b"),
            native="enum('new','it''s','a,b')",
        ),
    ),
    primary_key=("id",),
    primary_key_name="PRIMARY",
    indexes=(
        IndexInfo("email", ("email",), True),
        IndexInfo("idx_c", ("created",), False),
        IndexInfo("idx_bio", ("bio",), False, prefixes=(20,)),
        IndexInfo("ft_bio", ("bio",), False, "fulltext"),
    ),
    comment="people who buy",
)
ORDERS = TableInfo(
    "orders",
    (
        col("id", "integer", False, auto_increment=True, native="int(11)"),
        col("customer_id", "numeric(20,0)", False, native="bigint(20) unsigned"),
        col("note", "varchar(20)", default="'it''s'"),
        col("created", "timestamp", default="'2020-01-01 00:00:00'", native="datetime"),
    ),
    primary_key=("id",),
    primary_key_name="PRIMARY",
    indexes=(IndexInfo("idx_c", ("customer_id",), False),),
    foreign_keys=(
        ForeignKey("fk_customer", ("customer_id",), "customers", ("id",), "CASCADE", "RESTRICT"),
    ),
)
LINES = TableInfo(
    LONG,
    (
        col("order_id", "integer", False, native="int(11)"),
        col("line", "integer", False, native="int(11)"),
        col("qty", "integer", default="1", native="int(11)"),
    ),
    primary_key=("order_id", "line"),
    primary_key_name="PRIMARY",
    foreign_keys=(ForeignKey("fk_" + LONG, ("order_id",), "orders", ("id",), "CASCADE"),),
)
HOSTILE = "we\"ird ta'ble\\%"
ODD_COLUMN = "co\"l'\\"
ODD_LABELS = ("it's", 'a"b', "c\\d", "e,f")
ODD = TableInfo(
    HOSTILE,
    (
        col("id", "integer", False, auto_increment=True, native="int(11)"),
        col(ODD_COLUMN, "text", labels=ODD_LABELS, native="enum(...)", default="'e,f'"),
    ),
    primary_key=("id",),
    primary_key_name="PRIMARY",
    indexes=(IndexInfo("ix'\"", (ODD_COLUMN,), False),),
    comment='it\'s "odd" \\',
)
MYSQL_CATALOG = Catalog(
    "mysql",
    "shop",
    (LINES, ORDERS, CUSTOMERS, ODD),
    views=(
        ViewInfo(
            "big_spenders",
            "select `shop`.`customer_orders`.`email` AS `email`,count(0) AS `n` "
            "from `shop`.`customer_orders` group by `shop`.`customer_orders`.`email`",
            ("customer_orders",),
        ),
        ViewInfo(
            "customer_orders",
            "select `shop`.`orders`.`id` AS `id`,`shop`.`customers`.`email` AS `email`,"
            "ifnull(`shop`.`orders`.`note`,_utf8mb4'-') AS `note`,`shop`.`" + LONG + "`.`qty` "
            "AS `qty` from ((`shop`.`orders` join `shop`.`customers` "
            "on(`shop`.`customers`.`id` = `shop`.`orders`.`customer_id`)) left join "
            "`shop`.`" + LONG + "` on(`shop`.`" + LONG + "`.`order_id` = `shop`.`orders`.`id`))",
            ("customers", LONG, "orders"),
        ),
    ),
)

# A PostgreSQL source, as introspect_postgres reads it: an enum column and a serial
MOODS = TableInfo(
    "moods",
    (
        col("id", "integer", False, auto_increment=True),
        col(
            "mood",
            "text",
            False,
            labels=("happy", "it's ok"),
            enum_type="mood",
            default=("'happy'::mood"),
            native="mood",
        ),
        col("label", "character varying(10)", default="'x'::character varying"),
    ),
    primary_key=("id",),
    primary_key_name="moods_pkey",
    indexes=(IndexInfo("moods_mood_idx", ("mood",), False),),
)
PG_CATALOG = Catalog(
    "postgres",
    "public",
    (MOODS,),
    views=(
        ViewInfo(
            "happy",
            "SELECT moods.id, moods.mood FROM moods WHERE moods.mood = 'happy'::mood",
            ("moods",),
        ),
    ),
)


async def _apply(url: str, statements: Sequence[ddl.Statement]) -> list[str]:
    """As PostgresDestination.apply_ddl does: in one transaction."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            return await run_undone(statements, conn.fetchrow, conn.execute)
    finally:
        await conn.close()


def apply(url: str, statements: Sequence[ddl.Statement]) -> list[str]:
    return asyncio.run(_apply(url, statements))


def bare_table(catalog: Catalog, table: TableInfo, schema: str, names: dict[str, str]) -> str:
    columns = tuple(Column(c.name, c.type, c.nullable) for c in table.columns)
    qualified = f"{quote(schema, 'postgres')}.{quote(names[table.name], 'postgres')}"
    return create_table_sql(qualified, Schema(columns), "postgres")


def build(url: str, catalog: Catalog, schema: str, rows: dict[str, list[str]]) -> list[str]:
    """Everything, as MIGRATE DATABASE does it; the warnings."""
    pg(url, f"CREATE SCHEMA IF NOT EXISTS {quote(schema, 'postgres')}")

    def create(table: TableInfo, names: dict[str, str]) -> None:
        pg(url, bare_table(catalog, table, schema, names), *rows.get(table.name, []))

    return build_catalog(
        catalog, schema, "postgres", create=create, apply=lambda todo: apply(url, todo)
    )


@pytest.fixture(scope="module")
def built(postgres_database: ThrowawayDatabase) -> tuple[str, list[str]]:
    url = postgres_database.url
    names, _ = ddl.target_names(MYSQL_CATALOG, 63)
    lines = quote(names[LONG], "postgres")
    warnings = build(
        url,
        MYSQL_CATALOG,
        "tgt_my",
        {
            "customers": [
                "INSERT INTO tgt_my.customers (id, email, bio, created, active, status) VALUES "
                "(7, 'a@x', 'first', now(), true, 'new'), (41, 'b@x', NULL, now(), false, 'a,b')"
            ],
            "orders": [
                "INSERT INTO tgt_my.orders (id, customer_id, note) VALUES "
                "(3, 7, 'one'), (10, 41, NULL), (11, 41, 'three')"
            ],
            LONG: [
                f"INSERT INTO tgt_my.{lines} (order_id, line, qty) "
                "VALUES (3, 1, 1), (3, 2, 1), (10, 1, 1)"
            ],
            HOSTILE: [
                f"INSERT INTO tgt_my.{quote(HOSTILE, 'postgres')} "
                f"(id, {quote(ODD_COLUMN, 'postgres')}) VALUES (4, 'c\\d'), (2, NULL)"
            ],
        },
    )
    warnings += build(
        url,
        PG_CATALOG,
        "tgt_pg",
        {"moods": ["INSERT INTO tgt_pg.moods (id, mood) VALUES (1, 'happy'), (5, 'it''s ok')"]},
    )
    return url, warnings


def test_keys_and_indexes_are_there(built: tuple[str, list[str]]) -> None:
    url, _ = built
    constraints = pg(
        url,
        "SELECT r.relname, c.conname, c.contype::text, c.confdeltype::text, c.confupdtype::text "
        "FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid "
        "JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = 'tgt_my' "
        "ORDER BY 1, 2",
    )
    names, _ = ddl.target_names(MYSQL_CATALOG, 63)
    long = names[LONG]
    assert len(long.encode()) <= 63
    assert (long, ddl.fit_name(f"{long}_pkey", 63), "p", " ", " ") in constraints
    assert ("customers", "customers_pkey", "p", " ", " ") in constraints
    assert ("customers", "customers_status_check", "c", " ", " ") in constraints
    assert ("orders", "fk_customer", "f", "c", "r") in constraints
    assert ("orders", "orders_pkey", "p", " ", " ") in constraints
    fk_long = [c for c in constraints if c[0] == long and c[2] == "f"]
    assert len(fk_long) == 1
    assert len(fk_long[0][1].encode()) <= 63
    indexes = dict(
        pg(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'tgt_my'")
    )
    # idx_c is on two tables: prefixed with the table's name on both
    assert "customers_idx_c" in indexes
    assert "orders_idx_c" in indexes
    assert "CREATE UNIQUE INDEX email ON tgt_my.customers USING btree (email)" in indexes.values()
    assert indexes["idx_bio"] == "CREATE INDEX idx_bio ON tgt_my.customers USING btree (bio)"
    assert "to_tsvector('simple'::regconfig, bio)" in indexes["ft_bio"]
    assert "USING gin" in indexes["ft_bio"]


def test_counters_continue_past_the_largest_value(built: tuple[str, list[str]]) -> None:
    url, _ = built
    (row,) = pg(
        url,
        "INSERT INTO tgt_my.customers (email) VALUES ('new@x') "
        "RETURNING id, created IS NOT NULL, active, length(token), status",
    )
    assert row == (42, True, True, 36, "new")  # numeric(20,0): a sequence of its own
    (row,) = pg(
        url, "INSERT INTO tgt_my.orders (customer_id) VALUES (7) RETURNING id, note, created"
    )
    assert row[:2] == (12, "it's")
    assert str(row[2]) == "2020-01-01 00:00:00"
    identity = pg(
        url,
        "SELECT attidentity::text FROM pg_attribute WHERE attrelid = 'tgt_my.orders'::regclass "
        "AND attname = 'id'",
    )
    assert identity == [("d",)]
    (row,) = pg(url, "INSERT INTO tgt_pg.moods DEFAULT VALUES RETURNING id, mood::text, label")
    assert row == (6, "happy", "x")


def test_enum_labels_are_checked(built: tuple[str, list[str]]) -> None:
    url, _ = built
    pg(url, "INSERT INTO tgt_my.customers (email, status) VALUES ('q@x', 'it''s')")
    with pytest.raises(asyncpg.CheckViolationError):
        pg(url, "INSERT INTO tgt_my.customers (email, status) VALUES ('r@x', 'New')")
    with pytest.raises(asyncpg.InvalidTextRepresentationError):
        pg(url, "INSERT INTO tgt_pg.moods (mood) VALUES ('sad')")
    assert pg(
        url,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'tgt_pg.moods'::regclass AND attname = 'mood'",
    ) == [("tgt_pg.mood",)]
    assert pg(url, "SELECT enum_range(NULL::tgt_pg.mood)::text") == [('{happy,"it\'s ok"}',)]


def test_foreign_keys_hold(built: tuple[str, list[str]]) -> None:
    url, _ = built
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        pg(url, "INSERT INTO tgt_my.orders (customer_id) VALUES (999)")


def test_views_return_rows(built: tuple[str, list[str]]) -> None:
    url, _ = built
    rows = pg(
        url,
        "SELECT id, email, note, qty FROM tgt_my.customer_orders WHERE id <= 11 ORDER BY id, qty",
    )
    assert rows == [
        (3, "a@x", "one", 1),
        (3, "a@x", "one", 1),
        (10, "b@x", "-", 1),
        (11, "b@x", "three", None),
    ]
    assert pg(url, "SELECT email, n FROM tgt_my.big_spenders ORDER BY email") == pg(
        url, "SELECT email, count(*) FROM tgt_my.customer_orders GROUP BY email ORDER BY email"
    )
    assert pg(url, "SELECT id, mood::text FROM tgt_pg.happy ORDER BY id")[0] == (1, "happy")


def test_comments_are_there(built: tuple[str, list[str]]) -> None:
    url, _ = built
    assert pg(
        url,
        "SELECT obj_description('tgt_my.customers'::regclass), "
        "col_description('tgt_my.customers'::regclass, 3)",
    ) == [("people who buy", "free text, it's long")]


def test_warnings_name_what_was_renamed(built: tuple[str, list[str]]) -> None:
    _, warnings = built
    assert any(LONG in w and "bytes long" in w for w in warnings)
    assert any("'idx_c'" in w and "customers_idx_c" in w for w in warnings)


def test_a_second_run_finds_everything_done(built: tuple[str, list[str]]) -> None:
    url, _ = built
    for catalog, schema in ((MYSQL_CATALOG, "tgt_my"), (PG_CATALOG, "tgt_pg")):
        statements = all_statements(catalog, schema, "postgres")
        with_done = [s for s in statements if s.done is not None]
        assert len(with_done) >= 4
        for statement in with_done:
            assert statement.done is not None
            assert pg(url, statement.done), statement.what
        skipped = apply(url, statements)  # the idempotent ones run again, harmlessly
        assert skipped == [s.what for s in with_done]
    # the counters are still past the largest value
    (row,) = pg(url, "INSERT INTO tgt_my.orders (customer_id) VALUES (7) RETURNING id")
    assert row[0] > 12


def test_hostile_names_work(built: tuple[str, list[str]]) -> None:
    url, _ = built
    table = f"tgt_my.{quote(HOSTILE, 'postgres')}"
    column = quote(ODD_COLUMN, "postgres")
    (row,) = pg(url, f"INSERT INTO {table} DEFAULT VALUES RETURNING id, {column}")
    assert row == (5, "e,f")
    for label in ODD_LABELS:
        pg(url, f"INSERT INTO {table} ({column}) VALUES ({_literal(label)})")
    with pytest.raises(asyncpg.CheckViolationError):
        pg(url, f"INSERT INTO {table} ({column}) VALUES ('c')")
    assert pg(url, f"SELECT obj_description({_literal(table)}::regclass)") == [('it\'s "odd" \\',)]
    assert pg(url, "SELECT indexname FROM pg_indexes WHERE indexname = 'ix''\"'") == [("ix'\"",)]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
