"""`stratum verify` against the real servers: a MariaDB -> PostgreSQL copy with renames, a
COMPUTE and a WHERE, and a PostgreSQL -> PostgreSQL copy with a composite text key, are
checked equal after `stratum migrate`; rows deleted, added and changed behind Stratum's back are
reported by their exact keys, with exit 3; `migrate --verify` verifies after loading; a file load
is checked by its count; a stage is not compared."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import Migrate
from tests.support.sql import my, pg

ROWS = 240


def stratum(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratum", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def verify_json(plan: Path, *extra: str) -> tuple[int, dict[str, dict[str, Any]]]:
    done = stratum("verify", str(plan), "--json", "--chunk-rows", "50", *extra)
    assert done.returncode in (0, 3), done.stderr + done.stdout
    return done.returncode, {i["item"]: i for i in json.loads(done.stdout)["items"]}


def test_verify_finds_exactly_what_changed_behind_stratums_back(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    my(
        mariadb_database.url,
        "DROP TABLE IF EXISTS orders",
        "CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount decimal(12,2), "
        "note varchar(40), at datetime(6), paid tinyint(1), doc json, score double)",
        "INSERT INTO orders VALUES "
        + ", ".join(
            f"({i}, {i % 7}, {i * 1.25:.2f}, {'NULL' if i % 5 == 0 else repr(f'n{i}')}, "
            f"'2024-01-01 00:00:00' + INTERVAL {i} MINUTE, {i % 2}, "
            f'\'{{"k": {i}, "a": [1, 2.5]}}\', {i / 3})'
            for i in range(1, ROWS + 1)
        ),
    )
    p = f"v{secrets.token_hex(3)}"
    pg(
        postgres_database.url,
        f"CREATE SCHEMA {p}",
        f"CREATE TABLE {p}.src (region text, code text, qty int, PRIMARY KEY (region, code))",
        f"INSERT INTO {p}.src SELECT CASE WHEN g % 2 = 0 THEN 'Ä' ELSE 'b' END, 'c' || g, g "
        "FROM generate_series(1, 120) g",
    )
    plan = tmp_path / "v.smql"
    plan.write_text(
        f"CONNECTION shop = '{mariadb_database.url}';\n"
        f"CONNECTION wh = '{postgres_database.url}';\n"
        "CONNECTION lake = 'duckdb:///lake.duckdb';\n"
        f"MIGRATE shop.orders INTO wh.{p}.orders BATCH SIZE 40;\n"
        "MIGRATE shop.orders INTO lake.main.orders;\n"
        f"MIGRATE DATABASE shop INTO wh.{p}_db INCLUDING TABLES ('orders');\n"
        f"MIGRATE shop.orders INTO wh.{p}.shaped\n"
        "  COLUMNS (id AS order_id, amount AS total, note)\n"
        "  COMPUTE cents = amount * 100\n"
        "  WHERE customer_id > 2;\n"
        f"MIGRATE wh.{p}.src INTO wh.{p}.copy;\n"
        f"STAGE wh.{p}.silver FROM wh.{p}.orders DEDUPLICATE ON (id);\n",
        encoding="utf-8",
    )
    done = Migrate(plan, tmp_path / "state").run(extra=("--verify",))
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    assert "verify" in done.stdout

    code, items = verify_json(plan)
    assert code == 0
    orders = items[f"wh.{p}.orders"]
    assert (orders["status"], orders["source_rows"], orders["destination_rows"]) == (
        "ok",
        ROWS,
        ROWS,
    )
    assert orders["chunks"] == ROWS // 50 + 1
    assert items[f"wh.{p}.shaped"]["status"] == "ok"
    assert items[f"wh.{p}.copy"]["status"] == "ok"
    assert items[f"wh.{p}.silver"]["status"] == "skipped"
    assert items["lake.main.orders"]["status"] == "ok"
    assert items[f"wh.{p}_db/orders"]["status"] == "ok"  # a database copy: table by table
    assert items[f"wh.{p}_db/orders"]["destination_rows"] == ROWS

    pg(
        postgres_database.url,
        f"DELETE FROM {p}.orders WHERE id IN (7, 100)",
        f"INSERT INTO {p}.orders (id) VALUES (1000)",
        f"UPDATE {p}.orders SET note = 'changed' WHERE id = 42",
        f'UPDATE {p}.orders SET doc = \'{{"k": 43, "a": [1, 2.6]}}\' WHERE id = 43',
        f"UPDATE {p}.orders SET at = at + interval '1 microsecond' WHERE id = 44",
        f"UPDATE {p}.shaped SET cents = cents + 1 WHERE order_id = 52",
        f"UPDATE {p}.copy SET qty = 0 WHERE region = 'Ä' AND code = 'c8'",
        f"DELETE FROM {p}.copy WHERE region = 'b' AND code = 'c9'",
        f"DELETE FROM {p}_db.orders WHERE id = 3",
    )
    with duckdb.connect(str(tmp_path / "lake.duckdb")) as lake:
        lake.execute("UPDATE main.orders SET score = score * 1.0000001 WHERE id = 5")
    code, items = verify_json(plan)
    assert code == 3
    assert items["lake.main.orders"]["different"] == ["5"]
    assert items[f"wh.{p}_db/orders"]["missing"] == ["3"]
    orders = items[f"wh.{p}.orders"]
    assert orders["status"] == "different"
    assert (orders["missing"], orders["extra"]) == (["100", "7"], ["1000"])
    assert sorted(orders["different"], key=int) == ["42", "43", "44"]
    shaped = items[f"wh.{p}.shaped"]
    assert (shaped["missing"], shaped["extra"], shaped["different"]) == ([], [], ["52"])
    copy = items[f"wh.{p}.copy"]
    assert (copy["missing"], copy["different"]) == (["b, c9"], ["Ä, c8"])

    one = stratum("verify", str(plan), "--item", f"wh.{p}.shaped")
    assert one.returncode == 3
    assert "different keys: 52" in one.stdout
    unknown = stratum("verify", str(plan), "--item", "nope")
    assert unknown.returncode == 1
    assert "no item named 'nope'" in unknown.stderr


def test_a_file_load_is_verified_by_its_count(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    p = f"f{secrets.token_hex(3)}"
    (tmp_path / "people.csv").write_text("id,name\n1,a\n2,b\nx,c\n3,d\n", encoding="utf-8")
    plan = tmp_path / "f.smql"
    plan.write_text(
        f"CONNECTION wh = '{postgres_database.url}';\n"
        f"MIGRATE FILE 'people.csv' (HEADER) INTO wh.{p}.people\n"
        "  CAST COLUMN id TO bigint ON ERROR reject;\n",
        encoding="utf-8",
    )
    done = Migrate(plan, tmp_path / "state").run()
    assert done.returncode == 0, done.stderr[-2000:]
    code, items = verify_json(plan)
    item = items[f"wh.{p}.people"]
    assert (code, item["status"], item["destination_rows"]) == (0, "ok", 3)
    assert item["how"].startswith("row count")
    pg(postgres_database.url, f"DELETE FROM {p}.people WHERE id = 2")
    code, items = verify_json(plan)
    assert (code, items[f"wh.{p}.people"]["status"]) == (3, "different")
