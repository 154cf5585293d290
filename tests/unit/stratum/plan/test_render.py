"""`stratum plan` says how each item resumes after a kill: keyless tables and queries are
reloaded whole, partitioned tables need a key."""

from __future__ import annotations

import pytest

from tests.unit.stratum.plan.test_compiler import plan_of


def resume_line(item: str) -> str:
    text = plan_of(item).to_text()
    (line,) = [line for line in text.splitlines() if line.strip().startswith("resume ")]
    return line.strip().removeprefix("resume").strip()


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            "MIGRATE src.t INTO wh.t",
            "after the last committed primary or unique key; a table with neither is reloaded "
            "whole (MODE full; other modes refuse to resume)",
        ),
        ("MIGRATE src.t INTO wh.t KEY (a, b)", "after the last committed key (a, b)"),
        (
            "MIGRATE src.t INTO wh.t PARTITIONS 3",
            "3 key ranges read at once, each after its last committed primary or unique key; a "
            "table with neither cannot be split, and the item fails",
        ),
        (
            "MIGRATE QUERY src (SELECT 1 AS a) INTO wh.t",
            "the query has no KEY: reloaded whole (MODE full; other modes refuse to resume)",
        ),
        (
            "MIGRATE QUERY src (SELECT 1 AS a) INTO wh.t KEY (a)",
            "after the last committed key (a)",
        ),
        ("MIGRATE FILE 'x.csv' INTO wh.t", "after the last committed record"),
        (
            "MIGRATE DATABASE src INTO wh.s PARTITIONS 2",
            "each table after its last committed primary or unique key (2 key ranges at once); "
            "a table with neither is reloaded whole (MODE full; other modes refuse to resume); "
            "keys, indexes and foreign keys are made after the data",
        ),
    ],
)
def test_the_plan_says_how_an_item_resumes(item: str, expected: str) -> None:
    assert resume_line(item + ";") == expected


def test_an_incremental_item_resumes_after_its_cursor_and_key() -> None:
    line = resume_line("MIGRATE src.t INTO wh.t MODE incremental CURSOR updated_at KEY (id);")
    assert line == (
        "after the last committed (updated_at, id): each run reads the rows whose updated_at is "
        "past the last one's"
    )


def item_rows(source: str, name: str) -> list[str]:
    """The rows `stratum plan` prints under one item, stripped."""
    text = plan_of(source).to_text()
    lines = text.splitlines()
    (start,) = [
        k for k, line in enumerate(lines) if line.strip().split("  ")[0].endswith(f". {name}")
    ]
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(line.strip())
    return rows


def test_a_dataset_shows_its_spine_and_each_feature_table() -> None:
    source = """
ENTITY customer KEY (customer_id);
ENTITY region KEY (country, city);
FEATURES wh.f.customers ON customer FROM wh.s.orders TIMESTAMP created_at (
  n = count(*), total = sum(amount)
);
FEATURES wh.f.regions ON region FROM wh.s.orders TIMESTAMP created_at (n = count(*));
DATASET wh.t.churn FROM wh.labels.churn TIMESTAMP observed_at
  FEATURES (wh.f.customers, wh.f.regions);
"""
    text = plan_of(source).to_text()
    assert "wh.t.churn  [dataset]  #" in text
    assert item_rows(source, "wh.t.churn") == [
        "from       wh.labels.churn, as of observed_at",
        "features   wh.f.customers (keys customer_id; 2 features)",
        "features   wh.f.regions (keys country, city; 1 feature)",
        "into       wh.t.churn",
        "mode       full",
        "runs       as SQL inside wh, in one transaction with its checkpoint",
        "resume     a stopped run does its batch again, whole",
        "after      wh.f.customers (reads wh.f.customers)",
        "after      wh.f.regions (reads wh.f.regions)",
    ]


def test_an_incremental_stage_says_what_each_run_refines() -> None:
    line = resume_line(
        "STAGE wh.s FROM wh.r MODE incremental CURSOR updated_at DEDUPLICATE ON (id, line);"
    )
    assert line == (
        "each run refines the input rows whose updated_at is past the last run's, and merges "
        "them into the target by DEDUPLICATE ON (id, line)"
    )
    line = resume_line("STAGE wh.s FROM wh.r MODE incremental CURSOR seq KEY (id);")
    assert line.endswith("merges them into the target by KEY (id)")
    rows = item_rows("STAGE wh.s FROM wh.r MODE incremental CURSOR seq KEY (id);", "wh.s")
    assert "mode       incremental, key (id), cursor seq" in rows


def test_a_stage_says_whether_it_runs_inside_its_database_or_streams_its_input_in() -> None:
    source = """
CONNECTION shop = 'mysql://root@h/shop';
STAGE wh.silver.local FROM wh.bronze.orders DEDUPLICATE ON (id);
STAGE wh.silver.remote FROM shop.orders DEDUPLICATE ON (id);
"""
    local = item_rows(source, "wh.silver.local")
    assert "runs       as SQL inside wh, in one transaction with its checkpoint" in local
    remote = item_rows(source, "wh.silver.remote")
    assert (
        "runs       streamed from shop into wh first (wh.silver.remote/input, a resumable copy "
        "of shop.orders), then as SQL inside wh, in one transaction with its checkpoint"
    ) in remote
