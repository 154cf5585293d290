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
