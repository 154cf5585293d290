"""The plan's hashes: what changes them and, as much, what must not."""

from __future__ import annotations

import json

import smql
from stratum.plan import MigrationPlan, compile_plan

BASE = """\
CONNECTION legacy = 'mysql://etl:${PW}@db1/shop';
CONNECTION wh = 'postgresql://etl@wh/analytics';

SET batch_size = 5000, on_error = reject;

MIGRATE legacy.orders INTO wh.raw.orders
  MODE incremental CURSOR updated_at KEY (id)
  COLUMNS (id, status AS order_status, amount, updated_at)
  WHERE amount > 0;

MIGRATE legacy.customers INTO wh.raw.customers;

STAGE wh.silver.orders FROM wh.raw.orders
  DEDUPLICATE ON (id) ORDER BY updated_at DESC
  EXPECT amount >= 0 ELSE DROP;
"""


def plan_of(source: str) -> MigrationPlan:
    return compile_plan(smql.parse(source, "test.smql"))


def hashes(plan: MigrationPlan) -> dict[str, str]:
    return {item.name: item.hash for item in plan.items}


def test_sql_keyword_case_and_spacing_change_no_hash() -> None:
    base = plan_of(BASE)
    other = plan_of(
        BASE.replace("WHERE amount > 0", "WHERE   amount>0").replace(
            "ORDER BY updated_at DESC", "ORDER BY updated_at desc"
        )
    )
    assert hashes(other) == hashes(base)


def test_reformatting_and_comments_change_no_hash() -> None:
    messy = """\
-- a header comment
connection legacy='mysql://etl:${PW}@db1/shop'; connection wh =
   'postgresql://etl@wh/analytics';
set BATCH_SIZE = 5000 , on_error=reject;
Migrate legacy.orders   into wh.raw.orders /* inline */ mode INCREMENTAL
  cursor updated_at key(id)
  columns(id,status as order_status,amount,updated_at) where amount>0 -- a comment
  ;
migrate legacy.customers into wh.raw.customers;
stage wh.silver.orders from wh.raw.orders deduplicate on (id) order by updated_at desc
  expect amount >= 0 /* inside the SQL */ ELSE drop;
"""
    base, other = plan_of(BASE), plan_of(messy)
    assert hashes(other) == hashes(base)
    assert other.hash == base.hash


def test_reordering_independent_statements_changes_no_hash_and_no_order() -> None:
    statements = [st.strip() + ";" for st in BASE.split(";") if st.strip()]
    assert len(statements) == 6
    reordered = "\n".join(
        [statements[5], statements[3], statements[0], statements[4], statements[1], statements[2]]
    )
    base, other = plan_of(BASE), plan_of(reordered)
    assert other.hash == base.hash
    assert [i.name for i in other.items] == [i.name for i in base.items]


def test_changing_one_item_changes_only_its_hash_and_the_plans() -> None:
    base = plan_of(BASE)
    changed = plan_of(BASE.replace("WHERE amount > 0", "WHERE amount > 10"))
    different = {n for n, h in hashes(changed).items() if hashes(base)[n] != h}
    assert different == {"wh.raw.orders"}
    assert changed.hash != base.hash


def test_an_inherited_setting_changes_the_items_that_inherit_it() -> None:
    base = plan_of(BASE)
    stopped = plan_of(BASE.replace("on_error = reject", "on_error = stop"))
    assert all(hashes(stopped)[n] != h for n, h in hashes(base).items())


def test_tuning_changes_no_hash() -> None:
    base = plan_of(BASE)
    tuned = plan_of(BASE.replace("batch_size = 5000", "batch_size = 20000, parallel = 2"))
    assert hashes(tuned) == hashes(base)
    assert tuned.hash == base.hash
    assert tuned.items[0].options.batch_size == 20000
    assert tuned.settings.parallel == 2


def test_a_connection_template_changes_the_plan_hash_only() -> None:
    base = plan_of(BASE)
    moved = plan_of(BASE.replace("@wh/analytics", "@wh2/analytics"))
    assert hashes(moved) == hashes(base)
    assert moved.hash != base.hash


def test_hashes_are_stable_sha256_hex() -> None:
    plan = plan_of(BASE)
    assert plan.hash == plan_of(BASE).hash
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in [plan.hash, *hashes(plan).values()])


def test_no_secret_reaches_the_plan() -> None:
    source = BASE.replace("etl:${PW}@db1", "etl:hunter2@db1")
    plan = plan_of(source)
    rendered = json.dumps(plan.to_json()) + plan.to_text()
    assert "hunter2" not in rendered
    assert "mysql://etl:***@db1/shop" in rendered
    assert plan.hash == plan_of(BASE.replace("etl:${PW}@db1", "etl:other@db1")).hash


def test_prefixed_strings_and_names_do_not_collide() -> None:
    from smql.sql import normalize_sql

    forms = {normalize_sql(text, "postgres") for text in ("$$abc$$", "$$ABC$$", "ABC", "'abc'")}
    assert len(forms) == 4


def test_the_raw_template_is_kept_for_connecting_but_never_shown() -> None:
    plan = plan_of(BASE.replace("etl:${PW}@db1", "etl:hunter2@db1"))
    spec = plan.connection("legacy")
    assert spec.template == "mysql://etl:hunter2@db1/shop"  # what the connector expands
    assert "hunter2" not in repr(spec)
    assert "hunter2" not in json.dumps(plan.to_json())


FEATURES = """
ENTITY customer KEY (customer_id);
FEATURES wh.features.customer_stats ON customer
  FROM wh.silver.orders TIMESTAMP updated_at (
    n_30d = count(*) OVER 30 DAYS,
    spend_90d = sum(amount) OVER 90 DAYS
  );
STAGE wh.silver.refined FROM wh.raw.customers DEDUPLICATE ON (id) MODE full;
"""
DATASET = """
DATASET wh.training.churn
  FROM wh.labels.churn TIMESTAMP observed_at
  FEATURES (wh.features.customer_stats);
"""

#: The hashes these items had before DATASET and CURSOR on STAGE existed: items that use
#: neither keep their checkpoints.
PINNED = {
    "wh.raw.customers": "9c3ad30144df4fa2b0fd37a273d3e89c760d5606054a92d4f9306c36b5d6684a",
    "wh.raw.orders": "b204b57f0a49a45df79b8848b3309889e76e9fdb5e8153d5aaaa65feabe85144",
    "wh.silver.orders": "3a2f0853480e6422f529224f7ffe31dd8117e119081c0baaaca75105a654e38d",
    "wh.features.customer_stats": (
        "df1c85bda9120912ab24c107366c4aebb9c2dedadafc7ff7a901b500c8e56f06"
    ),
    "wh.silver.refined": "db07f0bda74be12c283f9bc744e3e26eb1832aefacb3b00a537eee40431e6efa",
}


def test_existing_items_keep_their_hashes() -> None:
    assert hashes(plan_of(BASE + FEATURES)) == PINNED


def test_adding_a_dataset_changes_no_other_items_hash() -> None:
    with_dataset = hashes(plan_of(BASE + FEATURES + DATASET))
    assert {n: h for n, h in with_dataset.items() if n != "wh.training.churn"} == PINNED
    assert len(with_dataset["wh.training.churn"]) == 64


def test_a_datasets_hash_is_deterministic_and_ignores_layout() -> None:
    base = hashes(plan_of(BASE + FEATURES + DATASET))["wh.training.churn"]
    messy = '\n/* x */ dataset wh.training."churn" -- y\n from wh.labels.churn timestamp ' + (
        "observed_at features(wh.features.customer_stats) mode FULL;"
    )
    assert hashes(plan_of(BASE + FEATURES + messy))["wh.training.churn"] == base
    assert hashes(plan_of(BASE + DATASET + FEATURES))["wh.training.churn"] == base


def test_a_dataset_hash_follows_what_it_joins() -> None:
    base = hashes(plan_of(BASE + FEATURES + DATASET))
    for changed in (
        DATASET.replace("observed_at", "labelled_at"),
        DATASET.replace("wh.labels.churn", "wh.labels.other"),
        DATASET.replace(";", " NAME churn_training;"),
    ):
        after = hashes(plan_of(BASE + FEATURES + changed))
        assert (
            after.get("wh.training.churn", after.get("churn_training")) != base["wh.training.churn"]
        )
    # a new feature column is a new column of the training set; a new aggregate for the same
    # column changes only the feature table
    more = FEATURES.replace("OVER 90 DAYS", "OVER 90 DAYS, extra = max(amount)")
    added = hashes(plan_of(BASE + more + DATASET))
    assert {n for n, h in added.items() if base[n] != h} == {
        "wh.features.customer_stats",
        "wh.training.churn",
    }
    redefined = hashes(plan_of(BASE + FEATURES.replace("OVER 30 DAYS", "OVER 7 DAYS") + DATASET))
    assert {n for n, h in redefined.items() if base[n] != h} == {"wh.features.customer_stats"}


def test_a_cursor_on_an_incremental_stage_changes_only_that_stage() -> None:
    stage = "STAGE wh.silver.refined FROM wh.raw.customers DEDUPLICATE ON (id) MODE full;"
    incremental = stage.replace("MODE full", "MODE incremental CURSOR updated_at")
    after = hashes(plan_of(BASE + FEATURES.replace(stage, incremental)))
    assert {n for n, h in after.items() if PINNED[n] != h} == {"wh.silver.refined"}
