"""Identifiers are quoted everywhere: tables and columns with hostile names migrate as data.

The names hold quotes of each dialect, an injection attempt, spaces, non-ASCII letters,
reserved words, and what drivers treat specially in SQL text: `%s` (MySQL drivers format SQL
with %), `$1` (asyncpg inlines parameters into a COPY by replacing `$n` in its text), a
backslash and a question mark. The key column's name is hostile too, and so are the key's
values, read in batches of 2, so every resume condition binds one. Copied, every table:
MariaDB -> PostgreSQL, PostgreSQL -> PostgreSQL (COPY's text path) and a MIGRATE DATABASE of
the MariaDB database into a hostile schema; into some of the names (`SOME`): PostgreSQL ->
MariaDB (upsert) and a CSV file -> PostgreSQL and -> DuckDB; and one item per database source
with COLUMNS/COMPUTE/WHERE pushed down. Every target must hold exactly the rows under exactly
the names, and a table `victim` on each server (and in the DuckDB file) must still be there
with its rows.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from pathlib import Path

import anyio
import asyncmy
import asyncpg
import duckdb
import pytest

import stratum
from tests.support.databases import ThrowawayDatabase, mariadb_run

NAMES = [
    'a"b',
    "a'b",
    "a`b",
    'x";DROP TABLE victim;--',
    "naïve 名前",
    "select",
    "order",
    "user",
    "with space",
    "pct%s",
    "dollar$1",
    "back\\slash",
    "q?mark",
]
KEY = "k\"$1'%s;--"
COLUMNS = [KEY, *NAMES]
#: the tables written by the other paths (every column is hostile anyway)
SOME = ['x";DROP TABLE victim;--', "a'b", "a`b", "pct%s", "dollar$1", "naïve 名前", "order"]
#: key values: text that would close a quote or a parenthesis if it were pasted into SQL
KEYS = ["'); DROP TABLE victim; --", '"); DROP TABLE victim; --', "$1", "%s%%", "k5"]


def rows_of(table: str) -> list[tuple[str, ...]]:
    """The rows of one source table, key first; every value names its table and column."""
    return [
        (key, *(f"{table}|{column}|{i}|'\";--" for column in NAMES))
        for i, key in enumerate(KEYS, start=1)
    ]


def smql(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def my_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def mysql_source(mariadb_database: ThrowawayDatabase) -> Iterator[ThrowawayDatabase]:
    """Every hostile table, and `victim`, in the module's MariaDB database; the database the
    PostgreSQL -> MariaDB items write into is dropped afterwards."""
    statements: list[tuple[str, list[object] | None]] = [
        ("CREATE TABLE victim (id int PRIMARY KEY)", None),
        ("INSERT INTO victim VALUES (1), (2)", None),
    ]
    columns = ", ".join(f"{my_ident(c)} varchar(120) NOT NULL" for c in COLUMNS)
    marks = ", ".join(["%s"] * len(COLUMNS))
    for table in NAMES:
        statements.append(
            (f"CREATE TABLE {my_ident(table)} ({columns}, PRIMARY KEY ({my_ident(KEY)}))", None)
        )
        insert = f"INSERT INTO {my_ident(table).replace('%', '%%')} VALUES ({marks})"
        statements += [(insert, list(r)) for r in rows_of(table)]
    asyncio.run(mariadb_run(mariadb_database.server, statements, database=mariadb_database.name))
    try:
        yield mariadb_database
    finally:
        out = f"{mariadb_database.name}_out"
        asyncio.run(
            mariadb_run(mariadb_database.server, [(f"DROP DATABASE IF EXISTS `{out}`", None)])
        )


@pytest.fixture(scope="module")
def postgres_source(postgres_database: ThrowawayDatabase) -> ThrowawayDatabase:
    """Every hostile table in schema `src`, and `public.victim`."""

    async def go() -> None:
        conn = await asyncpg.connect(postgres_database.url)
        try:
            await conn.execute("CREATE TABLE victim (id int PRIMARY KEY)")
            await conn.execute("INSERT INTO victim VALUES (1), (2)")
            await conn.execute("CREATE SCHEMA src")
            columns = ", ".join(f"{pg_ident(c)} text NOT NULL" for c in COLUMNS)
            for table in NAMES:
                name = f"src.{pg_ident(table)}"
                await conn.execute(
                    f"CREATE TABLE {name} ({columns}, PRIMARY KEY ({pg_ident(KEY)}))"
                )
                await conn.copy_records_to_table(table, schema_name="src", records=rows_of(table))
        finally:
            await conn.close()

    asyncio.run(go())
    return postgres_database


def write_csv(directory: Path) -> Path:
    path = directory / "hostile.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        writer.writerows(rows_of("csv"))
    return path


def test_hostile_names_migrate_as_data(
    tmp_path: Path, mysql_source: ThrowawayDatabase, postgres_source: ThrowawayDatabase
) -> None:
    write_csv(tmp_path)
    lake = tmp_path / "lake.duckdb"
    with duckdb.connect(str(lake)) as conn:
        conn.execute("CREATE TABLE victim (id int PRIMARY KEY); INSERT INTO victim VALUES (1), (2)")
    my_db, out_db = mysql_source.name, f"{mysql_source.name}_out"
    lines = [
        f"CONNECTION my = '{mysql_source.url}';",
        f"CONNECTION pg = '{postgres_source.url}';",
        "CONNECTION lake = 'duckdb:///lake.duckdb';",
        "SET batch_size = 2, parallel = 8;",
    ]
    for name in NAMES:
        n = smql(name)
        lines += [
            f"MIGRATE my.{n} INTO pg.from_my.{n};",
            f"MIGRATE pg.src.{n} INTO pg.pg2pg.{n};",
        ]
    for name in SOME:
        n = smql(name)
        lines += [
            f"MIGRATE pg.src.{n} INTO my.{smql(out_db)}.{n} MODE upsert KEY ({smql(KEY)});",
            f"MIGRATE FILE 'hostile.csv' (HEADER) INTO pg.from_csv.{n} KEY ({smql(KEY)})"
            " BATCH SIZE 1000;",
            f"MIGRATE FILE 'hostile.csv' (HEADER) INTO lake.from_csv.{n} BATCH SIZE 1000;",
        ]
    pushed = (
        f"COLUMNS ({smql(KEY)}, {smql(NAMES[3])} AS {smql(NAMES[0])}, {smql(NAMES[9])})"
        f" COMPUTE {smql(NAMES[10])} = {smql(NAMES[1])} || '%s$1'''"
        f" WHERE {smql(NAMES[5])} <> 'x'' OR 1=1 --' AND {smql(KEY)} <> '$1'"
        f" KEY ({smql(KEY)})"
    )
    lines += [
        f"MIGRATE my.{smql(NAMES[3])} INTO pg.pushed.{smql('from my')} {pushed};",
        f"MIGRATE pg.src.{smql(NAMES[3])} INTO pg.pushed.{smql('from pg')} {pushed};",
        f"MIGRATE DATABASE my INTO pg.{smql('whole' + NAMES[3])};",
    ]
    plan_path = tmp_path / "hostile.smql"
    plan_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    plan = stratum.load_plan(plan_path)
    summary = anyio.run(lambda: stratum.run_plan(plan, state_dir=tmp_path / "state"))
    failed = {r.item: r.message for r in summary.results if r.outcome.value != "finished"}
    assert not failed
    assert summary.exit_code == 0

    def expected(table: str) -> list[tuple[str, ...]]:
        return sorted(rows_of(table))

    pg_tables = asyncio.run(_pg_tables(postgres_source.url))
    for name in NAMES:
        assert pg_tables[("from_my", name)] == (COLUMNS, expected(name)), name
        assert pg_tables[("pg2pg", name)] == (COLUMNS, expected(name)), name
        assert pg_tables[("whole" + NAMES[3], name)] == (COLUMNS, expected(name)), name
    keep = [r for r in rows_of(NAMES[3]) if r[0] != "$1"]
    pushed_rows = sorted(
        (r[0], r[4], r[10], r[2] + "%s$1'") for r in keep
    )  # key, x";DROP... AS a"b, pct%s, COMPUTE dollar$1
    for source in ("from my", "from pg"):
        assert pg_tables[("pushed", source)] == (
            [KEY, NAMES[0], NAMES[9], NAMES[10]],
            pushed_rows,
        ), source
    for name in SOME:
        assert pg_tables[("from_csv", name)] == (COLUMNS, expected("csv")), name
    assert pg_tables[("public", "victim")] == (["id"], [(1,), (2,)])
    assert pg_tables[("whole" + NAMES[3], "victim")] == (["id"], [(1,), (2,)])

    my_tables = asyncio.run(_my_tables(mysql_source, out_db))
    for name in NAMES:
        assert my_tables[(my_db, name)] == (COLUMNS, expected(name)), name  # untouched
    for name in SOME:
        assert my_tables[(out_db, name)] == (COLUMNS, expected(name)), name
    assert my_tables[(my_db, "victim")] == (["id"], [(1,), (2,)])

    with duckdb.connect(str(lake), read_only=True) as conn:
        assert conn.execute("SELECT id FROM main.victim ORDER BY id").fetchall() == [(1,), (2,)]
        for name in SOME:
            relation = conn.execute(
                f"SELECT * FROM from_csv.{pg_ident(name)} ORDER BY {pg_ident(KEY)}"
            )
            names = [d[0] for d in relation.description]
            assert (names, relation.fetchall()) == (COLUMNS, expected("csv")), name


async def _pg_tables(url: str) -> dict[tuple[str, str], tuple[list[str], list[tuple[object, ...]]]]:
    """Every user table: its column names in order and its rows sorted."""
    conn = await asyncpg.connect(url)
    try:
        found = {}
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'stratum', 'src')"
        )
        for schema, table in tables:
            columns = [
                r[0]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 "
                    "AND table_name = $2 ORDER BY ordinal_position",
                    schema,
                    table,
                )
            ]
            rows = await conn.fetch(f"SELECT * FROM {pg_ident(schema)}.{pg_ident(table)}")
            found[(schema, table)] = (columns, sorted(tuple(r) for r in rows))
        return found
    finally:
        await conn.close()


async def _my_tables(
    database: ThrowawayDatabase, out: str
) -> dict[tuple[str, str], tuple[list[str], list[tuple[object, ...]]]]:
    server = database.server
    conn = await asyncmy.connect(
        host=server.host, port=server.port, user=server.user, password=server.password
    )
    try:
        found = {}
        async with conn.cursor() as cursor:
            await cursor.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema IN (%s, %s) AND table_name <> 'stratum_checkpoints'",
                (database.name, out),
            )
            for schema, table in list(await cursor.fetchall()):
                await cursor.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                    "AND table_name = %s ORDER BY ordinal_position",
                    (schema, table),
                )
                columns = [r[0] for r in await cursor.fetchall()]
                await cursor.execute(f"SELECT * FROM {my_ident(schema)}.{my_ident(table)}")
                found[(schema, table)] = (
                    columns,
                    sorted(tuple(r) for r in await cursor.fetchall()),
                )
        return found
    finally:
        conn.close()
