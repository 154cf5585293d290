"""MIGRATE QUERY and pushed-down table items end to end through `stratum migrate`: queries from
MariaDB and from PostgreSQL into PostgreSQL, killed mid-way and run again, load exactly the
query's rows; a MariaDB table item with COLUMNS/COMPUTE/WHERE, pushed into its SELECT, loads
the rows the Python transforms loaded before, also across a kill."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import Migrate, killed_then_done
from tests.support.sql import my, pg

ROWS = 3000


def write_plan(directory: Path, name: str, source_url: str, target_url: str, item: str) -> Path:
    path = directory / f"{name}.smql"
    path.write_text(f"CONNECTION src = '{source_url}';\nCONNECTION dst = '{target_url}';\n{item}\n")
    return path


def checkpoint(url: str, item: str) -> tuple[Any, ...]:
    (row,) = pg(
        url,
        "SELECT finished, rows_read, rows_written, rows_filtered FROM stratum.checkpoints "
        f"WHERE item = '{item}'",
    )
    return row


# (id, customer, amount) in MariaDB and PostgreSQL alike; customers 1..50 with a country
ORDERS = [(i, i % 50 + 1, Decimal(i * 37 % 10000) / 100) for i in range(1, ROWS + 1)]
ORDER_VALUES = ",".join(f"({i}, {c}, {a})" for i, c, a in ORDERS)
CUSTOMER_VALUES = ",".join(f"({c}, 'country {c % 7}', 'Cust''{c}')" for c in range(1, 51))
# the query's rows: orders not divisible by 7, with their customer's country, in id order
EXPECTED = [(i, a * 2, f"country {c % 7}", f"Cust'{c} #{i}") for i, c, a in ORDERS if i % 7 != 0]


def test_query_from_mariadb_killed_and_rerun_is_exact(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    my(
        mariadb_database.url,
        "CREATE TABLE customers (id INT PRIMARY KEY, country VARCHAR(20), name VARCHAR(20))",
        "CREATE TABLE orders (id INT PRIMARY KEY, customer INT NOT NULL, amount DECIMAL(8,2))",
        f"INSERT INTO customers VALUES {CUSTOMER_VALUES}",
        f"INSERT INTO orders VALUES {ORDER_VALUES}",
    )
    item = """MIGRATE QUERY src (
  SELECT o.id, o.amount * 2 AS doubled, c.country, CONCAT(c.name, ' #', o.id) AS label
  FROM orders o JOIN customers c ON c.id = o.customer
  WHERE o.id % 7 <> 0
) INTO dst.q_from_mariadb KEY (id) BATCH SIZE 200 DIALECT mysql;"""
    plan = write_plan(tmp_path, "q_my", mariadb_database.url, postgres_database.url, item)
    migrate = Migrate(plan, tmp_path / "state")
    assert killed_then_done(migrate, 5) == [EXPECTED[999][0]]  # after the last committed key
    rows = pg(
        postgres_database.url, "SELECT id, doubled, country, label FROM q_from_mariadb ORDER BY id"
    )
    assert rows == EXPECTED
    assert checkpoint(postgres_database.url, "dst.q_from_mariadb") == (
        True,
        len(EXPECTED),
        len(EXPECTED),
        0,
    )


def test_query_from_postgres_killed_and_rerun_is_exact(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    pg(
        url,
        "CREATE SCHEMA shop",
        "CREATE TABLE shop.customers (id int PRIMARY KEY, country text, name text)",
        "CREATE TABLE shop.orders (id int PRIMARY KEY, customer int NOT NULL, amount numeric(8,2))",
        f"INSERT INTO shop.customers VALUES {CUSTOMER_VALUES}",
        f"INSERT INTO shop.orders VALUES {ORDER_VALUES}",
    )
    item = """MIGRATE QUERY src (
  SELECT o.id, o.amount * 2 AS doubled, c.country, c.name || ' #' || o.id AS label
  FROM shop.orders o JOIN shop.customers c ON c.id = o.customer
  WHERE o.id % 7 <> 0
) INTO dst.q_from_postgres KEY (id) BATCH SIZE 200;"""
    migrate = Migrate(write_plan(tmp_path, "q_pg", url, url, item), tmp_path / "state")
    assert killed_then_done(migrate, 7) == [EXPECTED[1399][0]]
    rows = pg(url, "SELECT id, doubled, country, label FROM q_from_postgres ORDER BY id")
    assert rows == EXPECTED
    again = migrate.run()  # finished: nothing to do, nothing loaded twice
    assert again.returncode == 0, again.stderr
    assert pg(url, "SELECT count(*) FROM q_from_postgres") == [(len(EXPECTED),)]


def test_query_without_a_key_is_reloaded_whole_after_a_kill(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    pg(
        url,
        "CREATE TABLE plain_orders (id int, amount numeric(8,2))",
        "INSERT INTO plain_orders SELECT g, g FROM generate_series(1, 2000) g",
    )
    item = (
        "MIGRATE QUERY src (SELECT id, amount FROM plain_orders WHERE id > 100) "
        "INTO dst.q_keyless MODE full BATCH SIZE 100;"
    )
    migrate = Migrate(write_plan(tmp_path, "q_keyless", url, url, item), tmp_path / "state")
    assert killed_then_done(migrate, 4) is None  # no key to resume after: loaded again, whole
    rows = pg(url, "SELECT id FROM q_keyless ORDER BY id")
    assert rows == [(i,) for i in range(101, 2001)]  # no duplicates


def test_table_item_with_columns_compute_and_where_from_mariadb(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    my(
        mariadb_database.url,
        "CREATE TABLE sales (id INT PRIMARY KEY, customer INT NOT NULL, amount DECIMAL(8,2),"
        " note VARCHAR(30), flag TINYINT(1) NOT NULL)",
        "INSERT INTO sales SELECT seq, seq % 50 + 1, seq * 37 % 10000 / 100,"
        " IF(seq % 5 = 0, NULL, CONCAT('n', seq)), seq % 2 FROM seq_1_to_3000",
    )
    # KEY names the renamed output column; the source orders and resumes by `id`
    item = """MIGRATE src.sales INTO dst.sales_pushed
  KEY (sale_id)
  COLUMNS (id AS sale_id, amount, note AS remark, flag)
  COMPUTE cents = amount * 100, remark_or_dash = COALESCE(note, '-')
  WHERE amount >= 10 AND customer <> 3
  BATCH SIZE 150;"""
    plan = write_plan(tmp_path, "pushed", mariadb_database.url, postgres_database.url, item)
    migrate = Migrate(plan, tmp_path / "state")
    expected = [
        (
            i,
            Decimal(i * 37 % 10000) / 100,
            None if i % 5 == 0 else f"n{i}",
            i % 2 == 1,
            Decimal(i * 37 % 10000),
            "-" if i % 5 == 0 else f"n{i}",
        )
        for i in range(1, 3001)
        if Decimal(i * 37 % 10000) / 100 >= 10 and i % 50 + 1 != 3
    ]
    assert killed_then_done(migrate, 6) == [expected[899][0]]
    rows = pg(
        postgres_database.url,
        "SELECT sale_id, amount, remark, flag, cents, remark_or_dash FROM sales_pushed "
        "ORDER BY sale_id",
    )
    assert rows == expected  # the rows the Python transforms loaded before
    columns = pg(
        postgres_database.url,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'sales_pushed' ORDER BY ordinal_position",
    )
    assert [c for c, _ in columns] == [
        "sale_id",
        "amount",
        "remark",
        "flag",
        "cents",
        "remark_or_dash",
    ]
    # rows the source's WHERE drops are never read, so not counted as filtered
    assert checkpoint(postgres_database.url, "dst.sales_pushed") == (
        True,
        len(expected),
        len(expected),
        0,
    )


def test_a_function_the_source_lacks_fails_the_item_naming_it(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    my(mariadb_database.url, "CREATE TABLE lacking (id INT PRIMARY KEY, v INT)")
    item = "MIGRATE src.lacking INTO dst.lacking_copy COMPUTE w = no_such_fn(v);"
    plan = write_plan(tmp_path, "lacking", mariadb_database.url, postgres_database.url, item)
    result = Migrate(plan, tmp_path / "state").run()
    assert result.returncode == 4, result.stderr + result.stdout
    output = result.stdout + result.stderr
    assert "item 'dst.lacking_copy': MySQL refuses COMPUTE w 'no_such_fn(v)'" in output
    assert "Traceback" not in output
