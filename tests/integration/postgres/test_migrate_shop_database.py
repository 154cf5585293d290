"""The issue's bar for MIGRATE DATABASE: a realistic MySQL schema of related tables, covering
every type trap (tests/support/shop_schema.py), migrates to PostgreSQL through a SIGKILL in the
middle and a rerun: row counts and per-row checksums equal for every table, and every key,
index, foreign key and sequence present."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from stratum.runtime.pipeline import TEXT_LOAD_ENV
from stratum.schema.ddl import fit_name
from stratum.schema.introspect_mysql import read_mysql_catalog
from tests.support.checksums import compare_databases
from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import Migrate
from tests.support.shop_schema import LONG_TABLE, SHOP_TABLES, SHOP_VIEWS, load_shop
from tests.support.sql import my, pg


@pytest.mark.parametrize("load", ["text", "rows"])
def test_the_shop_database_survives_a_kill_and_arrives_exact(
    tmp_path: Path,
    postgres_database: ThrowawayDatabase,
    mariadb_database: ThrowawayDatabase,
    monkeypatch: pytest.MonkeyPatch,
    load: str,
) -> None:
    """Through the pass-through path (the servers format and parse every value as text), and
    through the typed path (every value converted in Python): both exact."""
    if load == "rows":
        monkeypatch.setenv(TEXT_LOAD_ENV, "off")
    source, target = mariadb_database.url, postgres_database.url
    pg(target, "DROP SCHEMA IF EXISTS shop CASCADE", "DROP SCHEMA IF EXISTS stratum CASCADE")
    drops = [f"DROP VIEW IF EXISTS `{v}`" for v in SHOP_VIEWS]
    drops += [f"DROP TABLE IF EXISTS `{t}`" for t in SHOP_TABLES]
    my(source, "SET FOREIGN_KEY_CHECKS = 0", *drops)  # the other parameter's tables
    counts = asyncio.run(load_shop(source, rows=150))
    plan = tmp_path / "shop.smql"
    plan.write_text(
        f"CONNECTION legacy = '{source}';\nCONNECTION pg = '{target}';\n"
        "MIGRATE DATABASE legacy INTO pg.shop\n"
        "  INCLUDING VIEWS ('v_%')\n"
        "  ZERO DATES AS NULL\n"
        "  ON ERROR reject\n"
        "  PARTITIONS 3\n"
        "  BATCH SIZE 40;\n"
    )
    migrate = Migrate(plan, tmp_path / "state")
    killed = migrate.run("after_commit=kill@12")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    resumed = [e for e in lines if e.get("event") == "item_started" and e["resumed_from"]]
    assert resumed, "the rerun resumed no table after its last committed key"
    rejected = [e for e in lines if e.get("event") == "item_finished" and e["rows_rejected"]]
    assert rejected == []
    assert {e["load"] for e in lines if e.get("event") == "item_started"} == {load}
    # each keyed table was read as 3 key ranges at once; the keyless audit_log whole
    finished = {e["item"] for e in lines if e.get("event") == "item_finished"}
    assert {"pg.shop/orders#1", "pg.shop/orders#2", "pg.shop/orders#3"} <= finished
    assert "pg.shop/audit_log" in finished
    assert not any(name.startswith("pg.shop/audit_log#") for name in finished)

    # every row, every value: per-row checksums over a canonical text form, table by table
    short = fit_name(LONG_TABLE, 63)
    differences = asyncio.run(
        compare_databases(source, target, target_schema="shop", target_names={LONG_TABLE: short})
    )
    assert [str(d) for d in differences] == []
    for table, rows in counts.items():
        name = short if table == LONG_TABLE else table
        quoted = '"' + name.replace('"', '""') + '"'
        assert pg(target, f"SELECT count(*) FROM shop.{quoted}") == [(rows,)], table

    # the schema: primary keys, foreign keys (with their rules), indexes and identities
    catalog = asyncio.run(read_mysql_catalog(source, None))
    constraints = pg(
        target,
        "SELECT c.relname, k.contype::text, count(*) FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid "
        "WHERE k.connamespace = 'shop'::regnamespace GROUP BY 1, 2",
    )
    found = {(table, kind): n for table, kind, n in constraints}
    indexes = dict(
        pg(
            target,
            "SELECT tablename, count(*) FROM pg_indexes WHERE schemaname = 'shop' GROUP BY 1",
        )
    )
    identities = {
        (table, column)
        for table, column in pg(
            target,
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c "
            "ON c.oid = a.attrelid WHERE c.relnamespace = 'shop'::regnamespace "
            "AND (a.attidentity <> '' OR pg_get_serial_sequence("
            "quote_ident('shop') || '.' || quote_ident(c.relname), a.attname) IS NOT NULL)",
        )
    }
    for table in catalog.tables:
        name = short if table.name == LONG_TABLE else table.name
        if table.primary_key:
            assert found.get((name, "p")) == 1, f"{name}: no primary key"
        assert found.get((name, "f"), 0) == len(table.foreign_keys), f"{name}: foreign keys"
        spatial = sum(1 for i in table.indexes if i.method == "spatial")  # needs PostGIS
        expected = len(table.indexes) - spatial + (1 if table.primary_key else 0)
        assert indexes.get(name, 0) == expected, f"{name}: indexes"
        for column in table.columns:
            if column.auto_increment:
                assert (name, column.name) in identities, f"{name}.{column.name}: no identity"
                (max_id,) = pg(target, f'SELECT max("{column.name}") FROM shop."{name}"')[0]
                (next_id,) = pg(
                    target,
                    f"SELECT nextval(pg_get_serial_sequence('shop.\"{name}\"', '{column.name}'))",
                )[0]
                assert next_id > (max_id or 0), f"{name}.{column.name}: sequence not past max"
    # the view, created after the tables, reads them
    assert pg(target, "SELECT count(*) > 0 FROM shop.v_order_totals") == [(True,)]
