"""stratum.schema.ddl against the real MariaDB: bare tables are created (as the MySQL destination
creates them) and loaded, every statement runs (after its `done` query), the keys, indexes,
AUTO_INCREMENT, checks, foreign keys and views are there and work; a second run finds every
`done` query satisfied."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from stratum.connectors.base import Column, Schema
from stratum.connectors.mysql import connect
from stratum.connectors.mysql._dest_types import column_ddl
from stratum.connectors.sql import quote
from stratum.schema import ddl
from stratum.schema.catalog import Catalog, ForeignKey, IndexInfo, TableInfo, ViewInfo
from tests.support.databases import ThrowawayDatabase
from tests.support.ddl import all_statements, col, run_undone
from tests.support.ddl import build as build_catalog
from tests.support.sql import my as mariadb

STRICT = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"


# A PostgreSQL source, as introspect_postgres reads it
ACCOUNTS = TableInfo(
    "accounts",
    (
        col("code", "text", False),
        col("id", "integer", False, auto_increment=True),
        col("owner", "varchar(20)"),
        col("note", "text", default="'n/a'::text"),
        col("meta", "jsonb"),
        col("mood", "text", labels=("happy", "it's ok", "a,b"), enum_type="mood", native="mood"),
        col("seen", "timestamptz", default="now()"),
        col("ref", "uuid", default="gen_random_uuid()"),
        col("tags", "text[]", default="'{}'::text[]"),
        col("odd", "integer", default="(1 + 2)"),
    ),
    primary_key=("code",),
    primary_key_name="accounts_pkey",
    indexes=(
        IndexInfo("accounts_id_key", ("id",), True),
        IndexInfo("accounts_owner_key", ("owner",), True),
        IndexInfo("accounts_note_idx", ("note",), False),
        IndexInfo("accounts_meta_idx", ("meta",), False, "gin"),
    ),
    comment="it's the accounts",
)
ENTRIES = TableInfo(
    "entries",
    (
        col("id", "bigint", False, auto_increment=True),
        col("account_code", "text", False),
        col("amount", "numeric(12,2)", False, default="0"),
    ),
    primary_key=("id",),
    primary_key_name="entries_pkey",
    foreign_keys=(
        ForeignKey("entries_account_fk", ("account_code",), "accounts", ("code",), "CASCADE"),
    ),
)
# an identity that begins no index: MySQL needs one for AUTO_INCREMENT
TICKETS = TableInfo(
    "tickets",
    (col("ref", "uuid", False), col("n", "integer", False, auto_increment=True)),
    primary_key=("ref",),
    primary_key_name="tickets_pkey",
)
PG_CATALOG = Catalog(
    "postgres",
    "public",
    (ENTRIES, ACCOUNTS, TICKETS),
    views=(
        ViewInfo(
            "account_totals",
            "SELECT a.code, count(e.id) AS n, COALESCE(sum(e.amount), 0::numeric) AS total\n"
            "   FROM accounts a\n     LEFT JOIN entries e ON e.account_code = a.code\n"
            "  GROUP BY a.code;",
            ("accounts", "entries"),
        ),
    ),
)

# A MySQL source, as introspect_mysql reads it: bigint unsigned keys (numeric(20,0) mapped)
PARENT = TableInfo(
    "parent",
    (
        col("id", "numeric(20,0)", False, auto_increment=True, native="bigint(20) unsigned"),
        col("name", "varchar(50)", False, default="'it''s \\\\ ok'"),
        col("kind", "text", labels=("x", "y"), native="enum('x','y')", default="'x'"),
        col("created", "timestamp", default="current_timestamp()", native="datetime"),
    ),
    primary_key=("id",),
    primary_key_name="PRIMARY",
    indexes=(IndexInfo("idx_name", ("name",), False, prefixes=(10,)),),
)
CHILD = TableInfo(
    "child",
    (
        col("id", "integer", False, auto_increment=True, native="int(11)"),
        col("parent_id", "numeric(20,0)", native="bigint(20) unsigned"),
    ),
    primary_key=("id",),
    primary_key_name="PRIMARY",
    indexes=(IndexInfo("idx_name", ("parent_id",), False),),
    foreign_keys=(ForeignKey("fk_parent", ("parent_id",), "parent", ("id",), "SET NULL"),),
)
HOSTILE = "we\"ird ta'ble\\%"
ODD_COLUMN = "co\"l'\\%"
ODD_LABELS = ("it's", 'a"b', "c\\d", "e,f", "100%")
ODD = TableInfo(
    HOSTILE,
    (
        col("id", "integer", False, auto_increment=True, native="int(11)"),
        col(ODD_COLUMN, "text", labels=ODD_LABELS, native="enum(...)", default="'e,f'"),
    ),
    primary_key=("id",),
    primary_key_name="PRIMARY",
    indexes=(IndexInfo("ix'\"%", (ODD_COLUMN,), False),),
    comment='it\'s "odd" \\ 100%',
)
MYSQL_CATALOG = Catalog("mysql", "legacy", (CHILD, PARENT, ODD))


def my(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """The statements run in strict mode, as the MySQL destination runs its DDL."""
    return mariadb(url, STRICT, *statements)


def error_code(url: str, sql: str) -> int:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the driver's own classes
        my(url, sql)
    return int(caught.value.args[0])


async def _apply(url: str, statements: Sequence[ddl.Statement]) -> list[str]:
    """As MySQLDestination.apply_ddl does, in strict mode."""
    conn = await connect(url)
    try:
        await conn.execute(STRICT)
        return await run_undone(statements, conn.fetchall, conn.execute)
    finally:
        await conn.close()


def apply(url: str, statements: Sequence[ddl.Statement]) -> list[str]:
    return asyncio.run(_apply(url, statements))


def bare_table(table: TableInfo, database: str) -> str:
    """CREATE TABLE as the MySQL destination writes it, with columns only."""
    schema = Schema(tuple(Column(c.name, c.type, c.nullable) for c in table.columns))
    columns = ", ".join(column_ddl(schema, lambda n: quote(n, "mysql")))
    name = f"{quote(database, 'mysql')}.{quote(table.name, 'mysql')}"
    return f"CREATE TABLE IF NOT EXISTS {name} ({columns}) ENGINE=InnoDB"


def build(url: str, catalog: Catalog, database: str, rows: dict[str, list[str]]) -> list[str]:
    def create(table: TableInfo, names: dict[str, str]) -> None:
        assert not ddl.before_data(catalog, table, database, "mysql")
        my(url, bare_table(table, database), *rows.get(table.name, []))

    return build_catalog(
        catalog, database, "mysql", create=create, apply=lambda todo: apply(url, todo)
    )


@pytest.fixture(scope="module")
def built(mariadb_database: ThrowawayDatabase) -> tuple[str, str, list[str]]:
    url, database = mariadb_database.url, mariadb_database.name
    warnings = build(
        url,
        PG_CATALOG,
        database,
        {
            "accounts": [
                "INSERT INTO accounts (code, id, owner, note, mood) VALUES "
                "('A-1', 3, 'ann', 'first', 'happy'), ('a-1', 9, 'Ann', NULL, 'it''s ok')"
            ],
            "tickets": ["INSERT INTO tickets (ref, n) VALUES ('r1', 1), ('r2', 6)"],
            "entries": [
                "INSERT INTO entries (id, account_code, amount) VALUES "
                "(1, 'A-1', 10.5), (2, 'A-1', 1), (7, 'a-1', 2)"
            ],
        },
    )
    warnings += build(
        url,
        MYSQL_CATALOG,
        database,
        {
            "parent": ["INSERT INTO parent (id, name, kind) VALUES (5, 'p5', 'x'), (8, 'p8', 'y')"],
            "child": ["INSERT INTO child (id, parent_id) VALUES (1, 5), (2, 8), (3, NULL)"],
            HOSTILE: [
                f"INSERT INTO {quote(HOSTILE, 'mysql')} ({quote(ODD_COLUMN, 'mysql')}, id) "
                "VALUES ('c\\\\d', 4), (NULL, 2)"
            ],
        },
    )
    return url, database, warnings


def columns(url: str, database: str, table: str) -> dict[str, tuple[Any, ...]]:
    rows = my(
        url,
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, EXTRA, COLLATION_NAME, COLUMN_DEFAULT "
        f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{database}' "
        f"AND TABLE_NAME = '{table}'",
    )
    return {r[0]: r[1:] for r in rows}


def test_keys_and_indexes_are_there(built: tuple[str, str, list[str]]) -> None:
    url, database, _ = built
    constraints = my(
        url,
        "SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE FROM "
        f"information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = '{database}' "
        "ORDER BY 1, 2",
    )
    assert set(constraints) >= {
        ("accounts", "PRIMARY", "PRIMARY KEY"),
        ("accounts", "accounts_id_key", "UNIQUE"),
        ("accounts", "accounts_owner_key", "UNIQUE"),
        ("accounts", "accounts_mood_chk", "CHECK"),
        ("entries", "PRIMARY", "PRIMARY KEY"),
        ("entries", "entries_account_fk", "FOREIGN KEY"),
        ("parent", "PRIMARY", "PRIMARY KEY"),
        ("parent", "parent_kind_chk", "CHECK"),
        ("child", "PRIMARY", "PRIMARY KEY"),
        ("child", "fk_parent", "FOREIGN KEY"),
    }
    stats = my(
        url,
        "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS "
        f"WHERE TABLE_SCHEMA = '{database}' ORDER BY 1, 2, SEQ_IN_INDEX",
    )
    assert ("accounts", "accounts_note_idx", "note", 768) in stats
    assert ("parent", "idx_name", "name", 10) in stats
    assert ("child", "idx_name", "parent_id", None) in stats
    assert not any(s[1] == "accounts_meta_idx" for s in stats)  # gin: left out
    rules = my(
        url,
        "SELECT CONSTRAINT_NAME, DELETE_RULE, UPDATE_RULE FROM "
        f"information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = '{database}' "
        "ORDER BY 1",
    )
    assert rules == [
        ("entries_account_fk", "CASCADE", "NO ACTION"),
        ("fk_parent", "SET NULL", "NO ACTION"),
    ]
    accounts = columns(url, database, "accounts")
    assert accounts["code"][:2] == ("varchar(768)", "NO")
    assert accounts["code"][3] == "utf8mb4_bin"
    assert accounts["owner"][3] == "utf8mb4_bin"
    entries = columns(url, database, "entries")
    assert entries["account_code"][0] == "varchar(768)"
    assert entries["account_code"][3] == "utf8mb4_bin"
    child = columns(url, database, "child")
    assert child["parent_id"][:2] == ("bigint(20) unsigned", "YES")
    parent = columns(url, database, "parent")
    assert parent["id"][0] == "bigint(20) unsigned"
    assert "auto_increment" in parent["id"][2]


def test_auto_increment_continues_past_the_largest_value(
    built: tuple[str, str, list[str]],
) -> None:
    url, _, _ = built
    assert my(url, "INSERT INTO accounts (code) VALUES ('new')", "SELECT LAST_INSERT_ID()") == [
        (10,)
    ]
    assert my(
        url, "INSERT INTO entries (account_code) VALUES ('new')", "SELECT LAST_INSERT_ID()"
    ) == [(8,)]
    assert my(url, "INSERT INTO parent (name) VALUES ('p9')", "SELECT LAST_INSERT_ID()") == [(9,)]
    assert my(url, "INSERT INTO child (parent_id) VALUES (9)", "SELECT LAST_INSERT_ID()") == [(4,)]
    (row,) = my(
        url,
        "SELECT note, seen IS NOT NULL, length(ref), tags, odd, "
        "(SELECT amount FROM entries WHERE id = 8) FROM accounts WHERE code = 'new'",
    )
    assert row[:5] == ("n/a", 1, 36, None, None)
    assert str(row[5]) == "0.00"
    (row,) = my(url, "SELECT name, kind, created IS NOT NULL FROM parent WHERE id = 9")
    assert row == ("p9", "x", 1)
    assert my(url, "SELECT name FROM parent WHERE id = 5") == [("p5",)]
    my(url, "INSERT INTO parent (kind) VALUES ('y')")
    assert my(url, "SELECT name FROM parent WHERE id = 10") == [("it's \\ ok",)]


def test_key_strings_compare_byte_for_byte(built: tuple[str, str, list[str]]) -> None:
    url, _, _ = built
    # 'A-1' and 'a-1' are two keys, 'ann' and 'Ann' two owners, as in the source
    assert my(url, "SELECT count(*) FROM accounts WHERE code IN ('A-1', 'a-1')") == [(2,)]
    assert error_code(url, "INSERT INTO accounts (code, owner) VALUES ('z', 'ann')") == 1062


def test_enum_labels_are_checked(built: tuple[str, str, list[str]]) -> None:
    url, _, _ = built
    my(url, "INSERT INTO accounts (code, mood) VALUES ('m1', 'a,b')")
    assert error_code(url, "INSERT INTO accounts (code, mood) VALUES ('m2', 'sad')") == 4025
    assert error_code(url, "INSERT INTO accounts (code, mood) VALUES ('m3', 'Happy')") == 4025
    assert error_code(url, "INSERT INTO parent (name, kind) VALUES ('q', 'z')") == 4025


def test_foreign_keys_hold(built: tuple[str, str, list[str]]) -> None:
    url, _, _ = built
    assert error_code(url, "INSERT INTO entries (account_code) VALUES ('nobody')") == 1452
    my(url, "INSERT INTO accounts (code) VALUES ('gone')")
    my(url, "INSERT INTO entries (account_code, amount) VALUES ('gone', 1)")
    my(url, "DELETE FROM accounts WHERE code = 'gone'")
    assert my(url, "SELECT count(*) FROM entries WHERE account_code = 'gone'") == [(0,)]


def test_views_return_rows(built: tuple[str, str, list[str]]) -> None:
    url, _, _ = built
    rows = my(url, "SELECT code, n, total FROM account_totals WHERE code LIKE '_-1' ORDER BY code")
    assert [(code, n, str(total)) for code, n, total in rows] == [
        ("A-1", 2, "11.50"),
        ("a-1", 1, "2.00"),
    ]


def test_comments_and_warnings(built: tuple[str, str, list[str]]) -> None:
    url, database, warnings = built
    assert my(
        url,
        "SELECT TABLE_COMMENT FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA = '{database}' AND TABLE_NAME = 'accounts'",
    ) == [("it's the accounts",)]
    text = "\n".join(warnings)
    assert "accounts_meta_idx" in text
    assert "(1 + 2)" in text
    assert "array" in text


def test_a_second_run_finds_everything_done(built: tuple[str, str, list[str]]) -> None:
    url, database, _ = built
    for catalog in (PG_CATALOG, MYSQL_CATALOG):
        todo = all_statements(catalog, database, "mysql")
        with_done = [s for s in todo if s.done is not None]
        assert len(with_done) >= 6
        for statement in with_done:
            assert statement.done is not None
            assert my(url, statement.done), statement.what
        assert apply(url, todo) == [s.what for s in with_done]
    assert my(url, "INSERT INTO parent (name) VALUES ('p11')", "SELECT LAST_INSERT_ID()") == [(11,)]


def test_a_counter_outside_any_index_gets_one(built: tuple[str, str, list[str]]) -> None:
    url, _, _ = built
    my(url, "INSERT INTO tickets (ref) VALUES ('r3')")
    assert my(url, "SELECT n FROM tickets WHERE ref = 'r3'") == [(7,)]


def test_hostile_names_work(built: tuple[str, str, list[str]]) -> None:
    url, database, _ = built
    table, column = quote(HOSTILE, "mysql"), quote(ODD_COLUMN, "mysql")
    my(url, f"INSERT INTO {table} () VALUES ()")
    assert my(url, f"SELECT id, {column} FROM {table} WHERE id = 5") == [(5, "e,f")]
    for label in ODD_LABELS:
        my(url, f"INSERT INTO {table} ({column}) VALUES ({_literal(label)})")
    assert error_code(url, f"INSERT INTO {table} ({column}) VALUES ('c')") == 4025
    assert my(url, f"SELECT {column} FROM {table} WHERE id = 4") == [("c\\d",)]
    assert my(
        url,
        "SELECT TABLE_COMMENT FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA = '{database}' AND TABLE_NAME = {_literal(HOSTILE)}",
    ) == [('it\'s "odd" \\ 100%',)]


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
