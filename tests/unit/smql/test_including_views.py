"""`INCLUDING VIEWS ('pattern', ...)` on MIGRATE DATABASE: checks, plan, hash and views."""

from __future__ import annotations

import pytest

import smql
from stratum.plan import MigrationPlan, compile_plan
from stratum.plan.model import DatabaseSource

CONNS = "CONNECTION a = 'mysql://x@h/db';\nCONNECTION w = 'postgresql://x@h/db';\n"
DATABASE = CONNS + "MIGRATE DATABASE a INTO w.raw EXCLUDING TABLES ('tmp_%'){views};\n"


def errors(source: str) -> list[str]:
    return [d.message for d in smql.check(smql.parse(CONNS + source)) if d.is_error]


def plan_of(source: str) -> MigrationPlan:
    return compile_plan(smql.parse(source, "test.smql"))


def database_source(plan: MigrationPlan) -> DatabaseSource:
    (item,) = plan.items
    assert isinstance(item.source, DatabaseSource)
    return item.source


def test_migrate_database_takes_it() -> None:
    assert errors("MIGRATE DATABASE a INTO w.raw INCLUDING VIEWS ('v_%', 'report');") == []


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("MIGRATE a.t INTO w.raw.t WHERE x > 0", "MIGRATE of a table"),
        ("MIGRATE QUERY a (SELECT 1 AS x) INTO w.raw.q", "MIGRATE QUERY"),
        ("MIGRATE FILE 'f.csv' INTO w.raw.f", "MIGRATE FILE"),
        ("STAGE w.s.t FROM w.raw.t", "STAGE ... FROM"),
    ],
)
def test_other_statements_refuse_it(statement: str, words: str) -> None:
    assert errors(f"{statement} INCLUDING VIEWS ('v_%');") == [
        f"INCLUDING VIEWS does not apply to {words}"
    ]


def test_written_twice_is_an_error() -> None:
    assert errors(
        "MIGRATE DATABASE a INTO w.raw INCLUDING VIEWS ('v_%') INCLUDING VIEWS ('x');"
    ) == ["INCLUDING VIEWS is given twice"]


def test_it_is_not_the_same_clause_as_including_tables() -> None:
    assert (
        errors("MIGRATE DATABASE a INTO w.raw INCLUDING TABLES ('t') INCLUDING VIEWS ('v');") == []
    )


def test_an_empty_pattern_is_an_error() -> None:
    assert errors("MIGRATE DATABASE a INTO w.raw INCLUDING VIEWS ('v_%', '');") == [
        "an empty view pattern matches nothing"
    ]


def test_the_plan_lists_the_patterns_in_order() -> None:
    source = database_source(plan_of(DATABASE.format(views=" INCLUDING VIEWS ('v_%', 'report')")))
    assert source.views == ("v_%", "report")
    assert source.excluding == ("tmp_%",)


def test_without_the_clause_no_view_is_created() -> None:
    assert database_source(plan_of(DATABASE.format(views=""))).views == ()


def test_the_clause_changes_the_item_hash_and_its_absence_does_not() -> None:
    without = plan_of(DATABASE.format(views=""))
    with_views = plan_of(DATABASE.format(views=" INCLUDING VIEWS ('v_%')"))
    other_views = plan_of(DATABASE.format(views=" INCLUDING VIEWS ('w_%')"))
    hashes = {p.items[0].hash for p in (without, with_views, other_views)}
    assert len(hashes) == 3
    assert len({without.hash, with_views.hash, other_views.hash}) == 3
    # the hash of an item without the clause is the one it had before the clause existed
    assert without.items[0].hash == (
        "5b73f06c5dc5e21302b9979f83846165fadc8b897d9a066425d051fc937a75c0"
    )


def test_the_text_and_json_views_show_the_patterns() -> None:
    plan = plan_of(DATABASE.format(views=" INCLUDING VIEWS ('v_%', 'report')"))
    assert "       views      'v_%', 'report' (after the tables)\n" in plan.to_text()
    assert plan.to_json()["items"][0]["source"]["views"] == ["v_%", "report"]
    without = plan_of(DATABASE.format(views=""))
    assert "views" not in without.to_text()
    assert without.to_json()["items"][0]["source"]["views"] == []
