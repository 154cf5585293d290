"""Compiling SMQL into a MigrationPlan: resolved options, sources, order, errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import smql
from smql import ExpectAction, FileFormat, ItemKind, Mode, OnError
from stratum.errors import PlanError
from stratum.plan import MigrationPlan, compile_plan, load_plan
from stratum.plan.model import (
    CastRule,
    ColumnMap,
    DatabaseSource,
    DatasetFeatures,
    DatasetSource,
    FeatureSource,
    FileSource,
    QuerySource,
    Sql,
    StageSource,
    TableRef,
)

CONNECTIONS = """\
CONNECTION src = 'mysql://etl@db/shop';
CONNECTION wh = 'postgresql://etl@wh/analytics';
CONNECTION lake = 'duckdb:///lake.duckdb';
"""


def plan_of(body: str) -> MigrationPlan:
    return compile_plan(smql.parse(CONNECTIONS + body, "t.smql"))


def test_options_resolve_item_over_set_over_builtin() -> None:
    plan = plan_of("""
SET batch_size = 500, on_error = reject, mode = append;
MIGRATE src.a INTO wh.a;
MIGRATE src.b INTO wh.b BATCH SIZE 7 ON ERROR skip MODE full;
STAGE wh.c FROM wh.a;
""")
    a, b, c = plan.item("wh.a").options, plan.item("wh.b").options, plan.item("wh.c").options
    assert (a.batch_size, a.on_error, a.mode) == (500, OnError.REJECT, Mode.APPEND)
    assert (b.batch_size, b.on_error, b.mode) == (7, OnError.SKIP, Mode.FULL)
    # SET mode is the default of MIGRATE items; a stage runs in full unless it says otherwise
    assert c.mode is Mode.FULL
    assert (a.partitions, a.zero_dates, a.dialect) == (1, "null", "postgres")
    assert plan.settings.queue_size == 64


def test_settings_do_not_reach_items_that_cannot_take_them() -> None:
    plan = plan_of("""
SET partitions = 4, zero_dates = error, on_error = reject, dialect = mysql;
MIGRATE DATABASE src INTO wh.raw;
STAGE wh.g AS SELECT 1 AS one;
ENTITY e KEY (k);
FEATURES wh.f ON e FROM wh.raw.t TIMESTAMP ts (n = count(*));
""")
    db, stage, features = (plan.item(n).options for n in ("wh.raw", "wh.g", "wh.f"))
    assert (db.partitions, db.zero_dates, db.on_error, db.dialect) == (
        4,
        "error",
        OnError.REJECT,
        None,
    )
    assert (stage.partitions, stage.zero_dates, stage.on_error, stage.batch_size) == (
        None,
        None,
        None,
        None,
    )
    assert (stage.dialect, features.dialect) == ("mysql", "mysql")
    assert (features.on_error, features.partitions) == (None, None)


def test_table_copy_keeps_every_clause() -> None:
    plan = plan_of("""
MIGRATE src.orders INTO wh.raw.orders
  MODE incremental CURSOR updated_at KEY (id)
  COLUMNS (id, status AS order_status, updated_at)
  COMPUTE cents = amount * 100
  WHERE amount > 0
  CAST COLUMN status TO text
  PARTITIONS 4 ZERO DATES AS '1970-01-01' DIALECT mysql;
""")
    item = plan.item("wh.raw.orders")
    o = item.options
    assert item.kind is ItemKind.TABLE_COPY
    assert item.target == TableRef("wh", "raw", "orders")
    assert o.key == ("id",)
    assert o.cursor == "updated_at"
    assert o.columns == (
        ColumnMap("id", "id"),
        ColumnMap("status", "order_status"),
        ColumnMap("updated_at", "updated_at"),
    )
    assert [(c.name, c.sql) for c in o.compute] == [("cents", Sql("amount * 100", "mysql"))]
    assert o.where == Sql("amount > 0", "mysql")
    assert o.casts == (CastRule("column", "status", "text"),)
    assert (o.partitions, o.zero_dates, o.dialect) == (4, "1970-01-01", "mysql")


def test_database_copy_leaves_tables_claimed_by_their_own_items() -> None:
    plan = plan_of("""
MIGRATE DATABASE src INTO wh.raw EXCLUDING TABLES ('tmp_%') INCLUDING TABLES ('%')
  CAST TYPE tinyint(1) TO boolean ZERO DATES AS ERROR;
MIGRATE src.orders INTO wh.raw.orders;
MIGRATE FILE 'c.csv' INTO wh.raw.customers;
MIGRATE src.other INTO wh.elsewhere.other;
STAGE wh.silver.orders FROM wh.raw.orders;
STAGE wh.silver.items FROM wh.raw.items;
""")
    db = plan.item("wh.raw")
    assert isinstance(db.source, DatabaseSource)
    assert db.source.claimed == ("customers", "orders")
    assert db.source.excluding == ("tmp_%",)
    assert db.source.including == ("%",)
    assert db.options.casts == (CastRule("type", "tinyint(1)", "boolean"),)
    assert db.options.zero_dates == "error"
    # a claimed table is read from its own item; an unclaimed one from the database copy
    assert [d.item for d in plan.item("wh.silver.orders").depends_on] == ["wh.raw.orders"]
    assert [d.item for d in plan.item("wh.silver.items").depends_on] == ["wh.raw"]


def test_execution_order_is_dependencies_first_then_by_name() -> None:
    plan = plan_of("""
STAGE wh.gold.g AS SELECT count(*) FROM wh.silver.s;
STAGE wh.silver.s FROM wh.raw.z;
MIGRATE src.z INTO wh.raw.z;
MIGRATE src.b INTO wh.raw.b AFTER (wh.raw.z);
MIGRATE src.a INTO wh.raw.a;
""")
    assert [i.name for i in plan.items] == [
        "wh.raw.a",
        "wh.raw.z",
        "wh.raw.b",
        "wh.silver.s",
        "wh.gold.g",
    ]
    assert [(d.item, d.reason) for d in plan.item("wh.raw.b").depends_on] == [("wh.raw.z", "AFTER")]
    assert [(d.item, d.reason) for d in plan.item("wh.gold.g").depends_on] == [
        ("wh.silver.s", "reads wh.silver.s")
    ]


def test_file_sources_infer_format_and_resolve_csv_options() -> None:
    plan = plan_of("""
MIGRATE FILE 'data/a.csv' INTO lake.a;
MIGRATE FILE 'data/b.tsv' (HEADER, QUOTE '''', ESCAPE '\\', NULL 'NA', ENCODING 'Latin1')
  INTO lake.b;
MIGRATE FILE 'data/c.parquet' INTO lake.c;
MIGRATE FILE 'data/d.data' (FORMAT jsonl) INTO lake.d;
MIGRATE FILE 'data/e.csv' (HEADER false, DELIMITER ';') INTO lake.e;
""")
    a, b, c, d, e = (plan.item(f"lake.{n}").source for n in "abcde")
    assert isinstance(a, FileSource)
    assert a.csv is not None
    assert (a.format, a.csv.header, a.csv.delimiter, a.csv.quote) == (
        FileFormat.CSV,
        False,
        ",",
        '"',
    )
    assert isinstance(b, FileSource)
    assert b.csv is not None
    assert dataclasses.astuple(b.csv) == (True, "\t", "'", "\\", "NA", "iso8859-1")
    assert isinstance(c, FileSource)
    assert (c.format, c.csv) == (FileFormat.PARQUET, None)
    assert isinstance(d, FileSource)
    assert d.format is FileFormat.JSONL
    assert isinstance(e, FileSource)
    assert e.csv is not None
    assert (e.csv.header, e.csv.delimiter) == (False, ";")


def test_query_stage_and_feature_sources() -> None:
    plan = plan_of("""
MIGRATE QUERY src (select id, total from orders where total > 0) INTO wh.q;
STAGE wh.s FROM wh.q DEDUPLICATE ON (id) ORDER BY total desc EXPECT total < 100 ELSE QUARANTINE;
ENTITY customer KEY (customer_id);
FEATURES wh.f ON customer FROM wh.s TIMESTAMP ts (
  n_7d = count(*) OVER 7 DAYS, last_total = last(total) OVER 1 HOUR, ever = max(total)
);
""")
    q, st, f = plan.item("wh.q").source, plan.item("wh.s").source, plan.item("wh.f").source
    assert isinstance(q, QuerySource)
    assert q.sql.text == "select id, total from orders where total > 0"  # runs as written
    assert q.sql.normalized == "SELECT id, total FROM orders WHERE total > 0"
    assert isinstance(st, StageSource)
    assert st.deduplicate is not None
    assert [o.normalized for o in st.deduplicate.order_by] == ["total DESC"]
    assert [(x.sql.text, x.action) for x in st.expectations] == [
        ("total < 100", ExpectAction.QUARANTINE)
    ]
    assert isinstance(f, FeatureSource)
    assert f.keys == ("customer_id",)
    assert [(x.name, x.window, x.window_seconds) for x in f.features] == [
        ("n_7d", "7 days", 7 * 86400),
        ("last_total", "1 hour", 3600),
        ("ever", None, None),
    ]


DATASETS = """
ENTITY customer KEY (customer_id);
ENTITY region KEY (country, city);
FEATURES wh.features.customer_stats ON customer FROM wh.silver.orders TIMESTAMP created_at (
  n_30d = count(*) OVER 30 DAYS, spend_90d = sum(amount) OVER 90 DAYS, ever = max(amount)
) WHERE amount > 0;
FEATURES wh.features.region_stats ON region FROM wh.silver.orders TIMESTAMP ordered_at (
  region_n = count(*)
);
STAGE wh.labels.churn AS SELECT customer_id, country, city, observed_at FROM wh.silver.churn;
DATASET wh.training.churn FROM wh.labels.churn TIMESTAMP observed_at
  FEATURES (wh.features.region_stats, wh.features."customer_stats");
"""


def test_a_dataset_carries_each_feature_tables_keys_timestamp_and_features() -> None:
    plan = plan_of(DATASETS)
    item = plan.item("wh.training.churn")
    assert item.kind is ItemKind.DATASET
    assert item.target == TableRef("wh", "training", "churn")
    assert item.source == DatasetSource(
        spine=TableRef("wh", "labels", "churn"),
        timestamp="observed_at",
        features=(  # in the order the DATASET lists them
            DatasetFeatures(
                table=TableRef("wh", "features", "region_stats"),
                keys=("country", "city"),
                timestamp="ordered_at",
                features=("region_n",),
            ),
            DatasetFeatures(
                table=TableRef("wh", "features", "customer_stats"),
                keys=("customer_id",),
                timestamp="created_at",
                features=("n_30d", "spend_90d", "ever"),
            ),
        ),
    )


def test_a_dataset_runs_after_its_feature_tables_and_its_spine() -> None:
    plan = plan_of(DATASETS)
    item = plan.item("wh.training.churn")
    assert [(d.item, d.reason) for d in item.depends_on] == [
        ("wh.features.customer_stats", "reads wh.features.customer_stats"),
        ("wh.features.region_stats", "reads wh.features.region_stats"),
        ("wh.labels.churn", "reads wh.labels.churn"),
    ]
    order = [i.name for i in plan.items]
    assert order[-1] == "wh.training.churn"


def test_a_dataset_takes_only_mode_full_and_no_row_options() -> None:
    plan = plan_of(
        "SET batch_size = 10, on_error = reject, partitions = 2, dialect = mysql, mode = append;"
        + DATASETS.replace('wh.features."customer_stats");', "wh.features.customer_stats)")
        + " MODE full NAME training AFTER (wh.labels.churn);"
    )
    item = plan.item("training")
    o = item.options
    assert o.mode is Mode.FULL
    assert (o.key, o.cursor, o.columns, o.compute, o.where, o.casts) == ((), None, (), (), None, ())
    assert (o.on_error, o.zero_dates, o.dialect, o.partitions, o.batch_size) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert [d.reason for d in item.depends_on] == [
        "reads wh.features.customer_stats",
        "reads wh.features.region_stats",
        "reads wh.labels.churn",
    ]


def test_a_dataset_naming_an_unknown_feature_table_does_not_compile() -> None:
    with pytest.raises(PlanError) as caught:
        plan_of(DATASETS.replace("wh.features.region_stats,", "wh.features.regions,"))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.message.startswith(
        "unknown feature table 'wh.features.regions' (did you mean 'wh.features.region_stats'?)"
    )


def test_an_incremental_stage_has_its_cursor() -> None:
    plan = plan_of("""
STAGE wh.silver.a FROM wh.raw.a MODE incremental CURSOR updated_at DEDUPLICATE ON (id);
STAGE wh.silver.b FROM wh.raw.b MODE incremental CURSOR seq KEY (id, line);
STAGE wh.silver.c FROM wh.raw.c DEDUPLICATE ON (id);
""")
    a, b, c = (plan.item(f"wh.silver.{n}").options for n in "abc")
    # the merge key of a stage without KEY stays its DEDUPLICATE ON columns, in its source
    assert (a.mode, a.cursor, a.key) == (Mode.INCREMENTAL, "updated_at", ())
    source = plan.item("wh.silver.a").source
    assert isinstance(source, StageSource)
    assert source.deduplicate is not None
    assert source.deduplicate.keys == ("id",)
    assert (b.mode, b.cursor, b.key) == (Mode.INCREMENTAL, "seq", ("id", "line"))
    assert (c.mode, c.cursor, c.key) == (Mode.FULL, None, ())


def test_errors_raise_plan_error_with_every_diagnostic() -> None:
    with pytest.raises(PlanError) as caught:
        plan_of("""
MIGRATE srcc.a INTO wh.a;
MIGRATE src.b INTO wh.b MODE upsert;
CONNECTION bad = 'pgsql://x@y/z';
""")
    messages = [d.message for d in caught.value.diagnostics]
    assert len(messages) == 3
    assert "unknown connection 'srcc' (did you mean 'src'?)" in messages[0]
    assert "MODE upsert needs a KEY" in messages[1]
    assert messages[2].startswith("unknown connection scheme 'pgsql'")
    assert "t.smql:" in str(caught.value)


def test_a_scheme_from_the_environment_is_not_guessed() -> None:
    plan = compile_plan(
        smql.parse("CONNECTION x = '${WAREHOUSE_URL}'; MIGRATE FILE 'a.csv' INTO x.a;", "t")
    )
    assert plan.connection("x").scheme is None
    assert plan.connection("x").variables == ("WAREHOUSE_URL",)


def test_load_plan_reports_syntax_errors_as_plan_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.smql"
    path.write_text("MIGRATE a.b INTO ;\nSET x = ;\n")
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert len(caught.value.diagnostics) == 2
