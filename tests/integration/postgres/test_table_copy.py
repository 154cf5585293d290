"""Table copies end to end through `stratum migrate`: PostgreSQL -> PostgreSQL, MariaDB ->
PostgreSQL and PostgreSQL -> MariaDB, each killed in the middle and run again: the destination
ends up with exactly the source's rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import Migrate, killed_then_done
from tests.support.sql import my, pg

ROWS = 3000


EXPECTED = [(i, f'name {i}, "q" é', Decimal(i * 7 % 10000) / 100) for i in range(1, ROWS + 1)]
INSERT_VALUES = ",".join(
    "({}, '{}', {})".format(i, name.replace("'", "''"), amount) for i, name, amount in EXPECTED
)


def plan(directory: Path, source_url: str, target_url: str, source: str, target: str) -> Path:
    path = directory / "copy.smql"
    path.write_text(
        f"CONNECTION src = '{source_url}';\nCONNECTION dst = '{target_url}';\n"
        f"MIGRATE src.{source} INTO dst.{target} BATCH SIZE 200;\n"
    )
    return path


def test_postgres_to_postgres(tmp_path: Path, postgres_database: ThrowawayDatabase) -> None:
    url = postgres_database.url
    pg(
        url,
        "CREATE SCHEMA src",
        "CREATE TABLE src.people (id bigint PRIMARY KEY, name text, amount numeric(8,2))",
        f"INSERT INTO src.people VALUES {INSERT_VALUES}",
    )
    migrate = Migrate(plan(tmp_path, url, url, "src.people", "public.people_pg"), tmp_path / "s")
    assert killed_then_done(migrate, 7) == [1400]  # resumed after the last committed key
    assert pg(url, "SELECT id, name, amount FROM public.people_pg ORDER BY id") == EXPECTED


def test_mariadb_to_postgres(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    my(
        mariadb_database.url,
        "CREATE TABLE people (id bigint PRIMARY KEY, name varchar(100), "
        "amount decimal(8,2)) CHARACTER SET utf8mb4",
        f"INSERT INTO people VALUES {INSERT_VALUES}",
    )
    migrate = Migrate(
        plan(tmp_path, mariadb_database.url, postgres_database.url, "people", "people_my"),
        tmp_path / "s",
    )
    assert killed_then_done(migrate, 5) == [1000]
    rows = pg(postgres_database.url, "SELECT id, name, amount FROM people_my ORDER BY id")
    assert rows == EXPECTED


def test_postgres_to_mariadb(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    pg(
        url,
        "CREATE TABLE people_out (id bigint PRIMARY KEY, name text, amount numeric(8,2))",
        f"INSERT INTO people_out VALUES {INSERT_VALUES}",
    )
    migrate = Migrate(
        plan(tmp_path, url, mariadb_database.url, "people_out", "people_in"), tmp_path / "s"
    )
    assert killed_then_done(migrate, 9) == [1800]
    rows = my(mariadb_database.url, "SELECT id, name, amount FROM people_in ORDER BY id")
    assert rows == EXPECTED


def test_a_table_without_a_key_is_reloaded_whole_after_a_kill(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    pg(
        url,
        "CREATE TABLE keyless (id bigint, name text, amount numeric(8,2))",
        f"INSERT INTO keyless VALUES {INSERT_VALUES}",
    )
    migrate = Migrate(plan(tmp_path, url, url, "keyless", "keyless_copy"), tmp_path / "s")
    assert killed_then_done(migrate, 4) is None  # no key to resume after: reloaded whole
    rows = pg(url, "SELECT id, name, amount FROM keyless_copy ORDER BY id")
    assert rows == EXPECTED  # no duplicates: the partial load was truncated and redone


def test_zero_dates_follow_the_items_policy(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    my(
        mariadb_database.url,
        "SET SESSION sql_mode = ''",
        "CREATE TABLE events (id int PRIMARY KEY, day date, at datetime)",
        "INSERT INTO events VALUES (1, '2024-05-06', '2024-05-06 07:08:09'), "
        "(2, '0000-00-00', '0000-00-00 00:00:00'), (3, '2020-00-15', NULL), "
        "(4, '0009-12-04', '0009-12-04 01:02:03')",
    )
    expected_days = {
        "NULL": [dt.date(2024, 5, 6), None, None, dt.date(9, 12, 4)],
        "'1970-01-01'": [
            dt.date(2024, 5, 6),
            dt.date(1970, 1, 1),
            dt.date(1970, 1, 1),
            dt.date(9, 12, 4),
        ],
        "ERROR": [dt.date(2024, 5, 6), dt.date(9, 12, 4)],
    }
    for n, (policy, days) in enumerate(expected_days.items()):
        target = f"events_{n}"
        path = tmp_path / f"zero_{n}.smql"
        path.write_text(
            f"CONNECTION src = '{mariadb_database.url}';\n"
            f"CONNECTION dst = '{postgres_database.url}';\n"
            f"MIGRATE src.events INTO dst.{target} ZERO DATES AS {policy} ON ERROR reject;\n"
        )
        result = Migrate(path, tmp_path / f"state_{n}").run()
        assert result.returncode == 0, result.stderr + result.stdout
        rows = pg(postgres_database.url, f"SELECT day FROM {target} ORDER BY id")
        assert [r[0] for r in rows] == days, policy
