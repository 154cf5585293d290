"""MIGRATE DATABASE end to end: tables discovered, created, loaded, then keyed; foreign keys,
identity past the max id, enum checks, defaults, comments and views on the target; a rerun does
nothing, --restart loads again, and a killed run resumes to an exact copy."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import Migrate, events
from tests.support.sql import my, pg

SHOP = (
    "CREATE TABLE customers (id int unsigned AUTO_INCREMENT PRIMARY KEY, "
    "name varchar(50) NOT NULL, active tinyint(1) NOT NULL DEFAULT 1, "
    "kind enum('a','b,c','it''s') DEFAULT 'a', note text COMMENT 'free text', "
    "UNIQUE KEY uq_name (name)) COMMENT 'people who buy'",
    "CREATE TABLE orders (id bigint AUTO_INCREMENT PRIMARY KEY, "
    "customer_id int unsigned NOT NULL, total decimal(10,2) DEFAULT 0.00, "
    "KEY idx_customer (customer_id), CONSTRAINT fk_customer FOREIGN KEY (customer_id) "
    "REFERENCES customers(id) ON DELETE CASCADE)",
    "CREATE TABLE `Order Lines` (order_id bigint NOT NULL, line int NOT NULL, "
    "`select` varchar(20), PRIMARY KEY (order_id, line), "
    "CONSTRAINT fk_order FOREIGN KEY (order_id) REFERENCES orders(id))",
    "CREATE TABLE tmp_scratch (x int)",
    "CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 5",
)
CUSTOMERS = 40
ORDERS = 600


def load_source(url: str) -> None:
    kinds = ["a", "b,c", "it''s"]  # as SQL literals: the quote doubled
    customers = ",".join(
        f"('name {i}', {i % 2}, '{kinds[i % 3]}', 'é {i}')" for i in range(1, CUSTOMERS + 1)
    )
    orders = ",".join(f"({i % CUSTOMERS + 1}, {i}.25)" for i in range(1, ORDERS + 1))
    lines = ",".join(f"({o}, {n}, 'w{n}')" for o in range(1, ORDERS + 1, 3) for n in (1, 2))
    my(
        url,
        *SHOP,
        f"INSERT INTO customers (name, active, kind, note) VALUES {customers}",
        f"INSERT INTO orders (customer_id, total) VALUES {orders}",
        f"INSERT INTO `Order Lines` VALUES {lines}",
    )


def write_plan(tmp_path: Path, source: str, target: str, extra: str = "") -> Migrate:
    path = tmp_path / "database.smql"
    path.write_text(
        f"CONNECTION src = '{source}';\nCONNECTION dst = '{target}';\n"
        "MIGRATE DATABASE src INTO dst.shop\n"
        "  EXCLUDING TABLES ('tmp_%')\n"
        "  INCLUDING VIEWS ('big_%')\n"
        f"  BATCH SIZE 50 {extra};\n"
    )
    return Migrate(path, tmp_path / "state")


@pytest.fixture
def migrated(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> tuple[Migrate, str, str]:
    my(mariadb_database.url, "DROP VIEW IF EXISTS big_orders")
    my(
        mariadb_database.url,
        *(
            f"DROP TABLE IF EXISTS {t}"
            for t in ("`Order Lines`", "orders", "customers", "tmp_scratch")
        ),
    )
    pg(
        postgres_database.url,
        "DROP SCHEMA IF EXISTS shop CASCADE",
        "DROP SCHEMA IF EXISTS stratum CASCADE",
    )
    load_source(mariadb_database.url)
    migrate = write_plan(tmp_path, mariadb_database.url, postgres_database.url)
    return migrate, mariadb_database.url, postgres_database.url


def test_a_mariadb_database_arrives_whole_with_its_keys(migrated: tuple[Migrate, str, str]) -> None:
    migrate, _, target = migrated
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    finished = {e["item"]: e["state"] for e in events(done.stderr, "item_finished")}
    assert finished == {
        "dst.shop/customers": "finished",
        "dst.shop/orders": "finished",
        "dst.shop/Order Lines": "finished",
        "dst.shop": "finished",
    }
    # the rows, values mapped: tinyint(1) -> boolean, enum labels intact
    assert pg(target, "SELECT count(*) FROM shop.orders") == [(ORDERS,)]
    assert pg(target, 'SELECT count(*) FROM shop."Order Lines"') == [(2 * (ORDERS // 3),)]
    assert pg(target, "SELECT id, name, active, kind FROM shop.customers WHERE id <= 3") == [
        (1, "name 1", True, "b,c"),
        (2, "name 2", False, "it's"),
        (3, "name 3", True, "a"),
    ]
    assert pg(target, "SELECT to_regclass('shop.tmp_scratch')") == [(None,)]
    # keys, indexes and foreign keys, with their rules
    constraints = pg(
        target,
        "SELECT conrelid::regclass::text, conname, contype::text, confdeltype::text "
        "FROM pg_constraint WHERE connamespace = 'shop'::regnamespace ORDER BY 1, 2",
    )
    assert ("shop.orders", "fk_customer", "f", "c") in constraints
    # MariaDB's default rule is RESTRICT
    assert ('shop."Order Lines"', "fk_order", "f", "r") in constraints
    assert ("shop.customers", "customers_kind_check", "c", " ") in constraints
    assert {(r[0], r[2]) for r in constraints if r[2] == "p"} == {
        ("shop.customers", "p"),
        ("shop.orders", "p"),
        ('shop."Order Lines"', "p"),
    }
    indexes = {
        r[0] for r in pg(target, "SELECT indexname FROM pg_indexes WHERE schemaname = 'shop'")
    }
    assert {"uq_name", "idx_customer"} <= indexes
    # identity past the max id, the default, the enum check, the comments, the view
    assert pg(target, "INSERT INTO shop.orders (customer_id) VALUES (1) RETURNING id, total") == [
        (ORDERS + 1, 0)
    ]
    with pytest.raises(Exception, match="customers_kind_check"):
        pg(target, "INSERT INTO shop.customers (name, kind) VALUES ('x', 'nope')")
    assert pg(target, "SELECT obj_description('shop.customers'::regclass, 'pg_class')") == [
        ("people who buy",)
    ]
    assert pg(target, "SELECT count(*) FROM shop.big_orders") == [(ORDERS - 4,)]  # total > 5


def test_a_second_run_does_nothing_and_restart_loads_again(
    migrated: tuple[Migrate, str, str],
) -> None:
    migrate, source, target = migrated
    assert migrate.run().returncode == 0
    again = migrate.run()
    assert again.returncode == 0, again.stderr
    (finished,) = events(again.stderr, "item_finished")
    assert finished["item"] == "dst.shop"
    assert "nothing to do" in str(finished["message"])
    # --restart: the foreign keys are dropped so MODE full can empty the tables, then made again
    my(source, "INSERT INTO customers (name) VALUES ('late')")
    restarted = migrate.run(extra=("--restart",))
    assert restarted.returncode == 0, restarted.stderr
    assert pg(target, "SELECT count(*) FROM shop.customers") == [(CUSTOMERS + 1,)]
    assert pg(target, "SELECT count(*) FROM shop.orders") == [(ORDERS,)]
    assert pg(
        target,
        "SELECT count(*) FROM pg_constraint WHERE connamespace = 'shop'::regnamespace "
        "AND contype = 'f'",
    ) == [(2,)]


def test_a_killed_database_copy_resumes_to_an_exact_copy(
    migrated: tuple[Migrate, str, str],
) -> None:
    migrate, source, target = migrated
    killed = migrate.run("after_commit=kill@6")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    resumed = [e for e in events(done.stderr, "item_started") if e["resumed_from"] is not None]
    assert resumed, "the second run resumed no table"
    for table in ("customers", "orders", "`Order Lines`"):
        (count,) = my(source, f"SELECT count(*) FROM {table}")
        assert pg(target, f"SELECT count(*) FROM shop.{table.replace('`', chr(34))}") == [count]
    # no row twice: the primary keys, made after the data, would have refused a duplicate
    assert pg(
        target,
        "SELECT count(*) FROM pg_constraint WHERE connamespace = 'shop'::regnamespace "
        "AND contype IN ('p', 'f')",
    ) == [(5,)]
    assert pg(target, "SELECT sum(total) FROM shop.orders") == my(
        source, "SELECT sum(total) FROM orders"
    )


PG_SOURCE = (
    "CREATE SCHEMA app",
    "CREATE TYPE app.mood AS ENUM ('sad', 'ok, fine', 'it''s great')",
    "CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%')",
    "CREATE TABLE app.people (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
    "mail app.email NOT NULL UNIQUE, mood app.mood, tags text[], score numeric(12,4), "
    "seen timestamptz DEFAULT now())",
    "CREATE TABLE app.visits (id serial PRIMARY KEY, person bigint NOT NULL "
    "REFERENCES app.people(id) ON DELETE SET NULL, at date NOT NULL, doc jsonb)",
    "CREATE INDEX visits_at ON app.visits (at)",
    "INSERT INTO app.people (mail, mood, tags, score) SELECT 'p' || i || '@x.org', "
    "(ARRAY['sad','ok, fine','it''s great'])[1 + i % 3]::app.mood, ARRAY['a' || i, NULL, 'q\"x'],"
    " i / 7.0 FROM generate_series(1, 300) i",
    "INSERT INTO app.visits (person, at, doc) SELECT 1 + i % 300, DATE '2024-01-01' + i, "
    "jsonb_build_object('n', i, 'l', ARRAY[i, i + 1]) FROM generate_series(1, 900) i",
)


def test_a_postgresql_schema_copies_with_enums_domains_arrays_and_identities(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    pg(url, "DROP SCHEMA IF EXISTS app CASCADE", "DROP SCHEMA IF EXISTS copy CASCADE", *PG_SOURCE)
    path = tmp_path / "pg.smql"
    path.write_text(
        f"CONNECTION src = '{url}';\nCONNECTION dst = '{url}';\n"
        "MIGRATE DATABASE src.app INTO dst.copy BATCH SIZE 100 PARTITIONS 2;\n"
    )
    migrate = Migrate(path, tmp_path / "state")
    killed = migrate.run("after_commit=kill@5")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    for table in ("people", "visits"):
        # as JSON: an enum's label, whatever its type's schema
        assert (
            pg(
                url,
                f"SELECT to_jsonb(t)::text FROM copy.{table} t "
                f"EXCEPT SELECT to_jsonb(t)::text FROM app.{table} t",
            )
            == []
        )
        assert pg(url, f"SELECT count(*) FROM copy.{table}") == pg(
            url, f"SELECT count(*) FROM app.{table}"
        )
    # the enum is recreated in the target schema with its labels; the domain is its base type
    assert pg(
        url,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
        "'copy.people'::regclass AND attname IN ('mood', 'mail') ORDER BY attname",
    ) == [
        ("text",),
        ("copy.mood",),
    ]
    assert pg(url, "SELECT enum_range(NULL::copy.mood)::text") == [
        ('{sad,"ok, fine","it\'s great"}',)
    ]
    assert pg(url, "INSERT INTO copy.people (mail) VALUES ('new@x.org') RETURNING id") == [(301,)]
    assert pg(url, "INSERT INTO copy.visits (person, at) VALUES (1, now()) RETURNING id") == [
        (901,)
    ]
    assert pg(
        url,
        "SELECT confdeltype::text FROM pg_constraint WHERE conrelid = 'copy.visits'::regclass "
        "AND contype = 'f'",
    ) == [("n",)]


def test_a_postgresql_schema_copies_into_mariadb(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    pg(url, "DROP SCHEMA IF EXISTS app CASCADE", *PG_SOURCE)
    path = tmp_path / "back.smql"
    path.write_text(
        f"CONNECTION src = '{url}';\nCONNECTION dst = '{mariadb_database.url}';\n"
        "MIGRATE DATABASE src.app INTO dst BATCH SIZE 100;\n"
    )
    migrate = Migrate(path, tmp_path / "state")
    killed = migrate.run("after_commit=kill@4")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    assert my(mariadb_database.url, "SELECT count(*), sum(score) FROM people") == [
        tuple(pg(url, "SELECT count(*), sum(score) FROM app.people")[0])
    ]
    assert my(mariadb_database.url, "SELECT count(*) FROM visits") == [(900,)]
    assert my(
        mariadb_database.url,
        "SELECT mood, tags FROM people WHERE id = 2",
    ) == [("it's great", '["a2",null,"q\\"x"]')]
    constraints = my(
        mariadb_database.url,
        "SELECT TABLE_NAME, CONSTRAINT_TYPE FROM information_schema.TABLE_CONSTRAINTS "
        "WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1, 2",
    )
    assert ("people", "PRIMARY KEY") in constraints
    assert ("visits", "FOREIGN KEY") in constraints
    assert (
        my(mariadb_database.url, "INSERT INTO visits (person, at) VALUES (1, '2025-01-01')") == []
    )
    assert my(mariadb_database.url, "SELECT max(id) FROM visits") == [(901,)]


def test_cast_type_overrides_the_boolean_reading_of_tinyint_1(
    migrated: tuple[Migrate, str, str],
) -> None:
    migrate, source, target = migrated
    my(source, "UPDATE customers SET active = 2 WHERE id = 5")  # MySQL's BOOLEAN holds -128..127
    plan = migrate.plan.read_text().replace(
        "BATCH SIZE 50", "CAST TYPE tinyint(1) TO smallint ON ERROR reject BATCH SIZE 50"
    )
    migrate.plan.write_text(plan)
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    assert pg(target, "SELECT active, count(*) FROM shop.customers GROUP BY 1 ORDER BY 1") == [
        (0, CUSTOMERS // 2),
        (1, CUSTOMERS // 2 - 1),
        (2, 1),
    ]
    # the default, made after the data, fits the column as created: a number, not TRUE
    assert pg(target, "INSERT INTO shop.customers (name) VALUES ('new') RETURNING active") == [(1,)]


def test_dry_run_says_what_a_database_copy_would_do(migrated: tuple[Migrate, str, str]) -> None:
    migrate, _, _ = migrated
    before = migrate.run(extra=("--dry-run",))
    assert before.returncode == 0, before.stderr
    assert before.stdout.strip() == "dst.shop: start: load into dst.shop (full)"
    assert migrate.run().returncode == 0
    after = migrate.run(extra=("--dry-run",))
    assert after.stdout.startswith("dst.shop: nothing to do: finished by run ")
