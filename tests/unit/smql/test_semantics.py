"""Items, reads and writes, the dependency graph, cycles and execution order."""

from __future__ import annotations

import pytest

import smql
from smql.semantics import Edge, execution_order, find_cycles

CONNS = "CONNECTION a = 'mysql://x@h/db'; CONNECTION w = 'postgresql://x@h/db';\n"


def test_item_names_default_to_the_target_and_can_be_given() -> None:
    items = smql.items_of(
        smql.parse(CONNS + "MIGRATE a.t INTO w.raw.t; MIGRATE a.u INTO w.raw.u NAME u_copy;")
    )
    assert [i.name for i in items] == ["w.raw.t", "u_copy"]


def test_a_query_reads_the_tables_it_names() -> None:
    (item,) = smql.items_of(
        smql.parse(
            CONNS + "STAGE w.gold.g AS WITH x AS (SELECT * FROM w.silver.s) "
            "SELECT * FROM x JOIN dim ON true JOIN a.other ON true;"
        )
    )
    assert sorted(r.text for r in item.reads) == ["a.other", "w.dim", "w.silver.s"]


def test_cycles_are_found_and_named() -> None:
    edges = [Edge("a", "b", ""), Edge("b", "c", ""), Edge("c", "a", ""), Edge("d", "a", "")]
    assert find_cycles("abcd", edges) == [["a", "b", "c", "a"]]
    assert find_cycles("abcd", edges[:2]) == []


def test_a_cycle_is_a_diagnostic_naming_every_item() -> None:
    program = smql.parse(CONNS + "STAGE w.s.x FROM w.s.y; STAGE w.s.y FROM w.s.x;", "c.smql")
    (diagnostic,) = smql.check(program)
    assert diagnostic.message.startswith("dependency cycle: 'w.s.x' -> 'w.s.y' -> 'w.s.x'")


def test_execution_order_needs_no_cycle() -> None:
    assert execution_order("cba", [Edge("a", "c", "")]) == ["b", "c", "a"]
    with pytest.raises(ValueError, match="acyclic"):
        execution_order("ab", [Edge("a", "b", ""), Edge("b", "a", "")])


def test_after_never_suggests_the_item_itself() -> None:
    program = smql.parse(
        CONNS
        + "MIGRATE a.t INTO w.raw.orders; STAGE w.s.orders FROM w.raw.orders AFTER (w.s.order);"
    )
    (diagnostic,) = smql.check(program)
    assert diagnostic.message.startswith("AFTER names unknown item 'w.s.order'")
    assert "'w.s.orders'" not in diagnostic.message  # the item's own name is no suggestion


# ---------------------------------------------------------------------------------------------
# DATASET

FEATURES = (
    "ENTITY customer KEY (customer_id);\n"
    "FEATURES w.features.stats ON customer FROM w.silver.orders TIMESTAMP created_at (\n"
    "  n = count(*) OVER 30 DAYS);\n"
)


def diagnostics(body: str) -> list[tuple[int, int, str]]:
    """(line, column, message) of every diagnostic, the body starting on line 2."""
    program = smql.parse(CONNS + body, "d.smql")
    return [(d.span.line, d.span.column, d.message) for d in smql.check(program) if d.span]


def test_a_dataset_reads_its_spine_and_its_feature_tables() -> None:
    program = smql.parse(
        CONNS
        + FEATURES
        + "STAGE w.labels.churn AS SELECT customer_id, at FROM w.silver.churn;\n"
        + "DATASET w.training.churn FROM w.labels.churn TIMESTAMP at FEATURES (w.features.stats);"
    )
    items = smql.items_of(program)
    dataset = items[-1]
    assert dataset.kind is smql.ItemKind.DATASET
    assert dataset.kind.value == "dataset"
    assert [r.text for r in dataset.reads] == ["w.labels.churn", "w.features.stats"]
    edges = [e for e in smql.dependency_edges(items) if e.item == "w.training.churn"]
    assert [(e.depends_on, e.reason) for e in edges] == [
        ("w.features.stats", "reads w.features.stats"),
        ("w.labels.churn", "reads w.labels.churn"),
    ]
    assert smql.check(program) == []


def test_a_dataset_feature_table_declared_later_is_found() -> None:
    body = "DATASET w.t.d FROM w.l.s TIMESTAMP at FEATURES (w.features.stats);\n" + FEATURES
    assert diagnostics(body) == []


def test_an_unknown_feature_table_is_an_error_at_its_name_with_a_suggestion() -> None:
    body = FEATURES + "DATASET w.t.d FROM w.l.s TIMESTAMP at\n  FEATURES (w.features.stat);"
    assert diagnostics(body) == [
        (
            6,
            13,
            "unknown feature table 'w.features.stat' (did you mean 'w.features.stats'?); a "
            "DATASET joins the tables that FEATURES items of the file write",
        )
    ]


def test_a_table_written_by_another_kind_of_item_is_not_a_feature_table() -> None:
    program = smql.parse(
        CONNS
        + FEATURES
        + "STAGE w.silver.c FROM w.raw.c;\n"
        + "DATASET w.t.d FROM w.l.s TIMESTAMP at FEATURES (w.features.stats, w.silver.c);",
        "d.smql",
    )
    (diagnostic,) = smql.check(program)
    assert diagnostic.message == (
        "'w.silver.c' is not a feature table; a DATASET joins the tables that FEATURES items "
        "of the file write"
    )
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.column) == (6, 67)
    (note,) = diagnostic.notes
    assert note.message == "it is written by STAGE ... FROM here"
    assert note.span is not None
    assert (note.span.line, note.span.column) == (5, 7)


def test_a_feature_table_listed_twice_is_an_error() -> None:
    program = smql.parse(
        CONNS
        + FEATURES
        + "DATASET w.t.d FROM w.l.s TIMESTAMP at\n"
        + '  FEATURES (w.features.stats, w."features".stats);',
        "d.smql",
    )
    (diagnostic,) = smql.check(program)
    assert diagnostic.message == "feature table 'w.features.stats' is listed twice"
    assert diagnostic.span is not None
    assert (diagnostic.span.line, diagnostic.span.column) == (6, 31)
    (note,) = diagnostic.notes
    assert note.message == "first listed here"


def test_a_dataset_takes_name_after_and_mode_full_only() -> None:
    body = (
        FEATURES
        + "DATASET w.t.d FROM w.l.s TIMESTAMP at FEATURES (w.features.stats)\n"
        + "  NAME d AFTER (w.features.stats) MODE full;\n"
        + "DATASET w.t.e FROM w.l.s TIMESTAMP at FEATURES (w.features.stats)\n"
        + "  MODE append BATCH SIZE 10 CURSOR at DIALECT mysql;"
    )
    assert diagnostics(body) == [
        (8, 8, "MODE append does not apply to DATASET (it takes full)"),
        (8, 15, "BATCH SIZE does not apply to DATASET"),
        (8, 29, "CURSOR does not apply to DATASET"),
        (8, 39, "DIALECT does not apply to DATASET"),
    ]


def test_set_mode_does_not_reach_a_dataset() -> None:
    body = (
        "SET mode = append;\n"
        + FEATURES
        + "DATASET w.t.d FROM w.l.s TIMESTAMP at FEATURES (w.features.stats);"
    )
    assert diagnostics(body) == []


def test_a_dataset_spine_is_a_table_that_it_does_not_write() -> None:
    body = FEATURES + "DATASET w.t.d FROM w.t.d TIMESTAMP at FEATURES (w.features.stats);"
    assert diagnostics(body) == [(5, 9, "'w.t.d' is both read and written by this item")]
    body = FEATURES + "DATASET w.t.d FROM x.s TIMESTAMP at FEATURES (w.features.stats);"
    assert diagnostics(body) == [(5, 20, "unknown connection 'x'")]


def test_a_dataset_in_a_cycle_is_reported() -> None:
    body = (
        "ENTITY customer KEY (customer_id);\n"
        "FEATURES w.features.stats ON customer FROM w.t.d TIMESTAMP at (n = count(*));\n"
        "DATASET w.t.d FROM w.l.s TIMESTAMP at FEATURES (w.features.stats);"
    )
    ((_, _, message),) = diagnostics(body)
    assert message.startswith("dependency cycle: 'w.features.stats' -> 'w.t.d' -> ")


# ---------------------------------------------------------------------------------------------
# MODE incremental on STAGE ... FROM

CURSOR_NEEDED = (
    "MODE incremental needs a CURSOR column: an incremental stage processes the input rows past "
    "the CURSOR column's high-water mark; name that column"
)
KEY_NEEDED = (
    "MODE incremental on a stage needs a key to merge new versions of a row into the target: "
    "DEDUPLICATE ON (...) or KEY (...)"
)


def test_an_incremental_stage_takes_a_cursor_and_a_key() -> None:
    assert (
        diagnostics("STAGE w.s.a FROM w.r.a MODE incremental CURSOR at DEDUPLICATE ON (id);") == []
    )
    assert diagnostics("STAGE w.s.a FROM w.r.a MODE incremental CURSOR at KEY (id);") == []


def test_an_incremental_stage_without_cursor_or_key_is_an_error_at_its_mode() -> None:
    assert diagnostics("STAGE w.s.a FROM w.r.a\n  MODE incremental;") == [
        (3, 3, CURSOR_NEEDED),
        (3, 3, KEY_NEEDED),
    ]
    assert diagnostics("STAGE w.s.a FROM w.r.a MODE incremental KEY (id);") == [
        (2, 24, CURSOR_NEEDED)
    ]


def test_a_cursor_needs_an_incremental_stage() -> None:
    assert diagnostics("STAGE w.s.a FROM w.r.a DEDUPLICATE ON (id) CURSOR at;") == [
        (2, 44, "CURSOR only applies to MODE incremental (this item is MODE full)")
    ]


def test_a_stage_cursor_is_an_input_column_and_its_merge_key_an_output_column() -> None:
    # the CURSOR is read from the input, so COLUMNS need not keep it; a KEY must be an output
    assert (
        diagnostics("STAGE w.s.a FROM w.r.a MODE incremental CURSOR at KEY (id) COLUMNS (id, x);")
        == []
    )
    (found,) = diagnostics(
        "STAGE w.s.a FROM w.r.a MODE incremental CURSOR at KEY (ident) COLUMNS (id, x);"
    )
    assert found[2].startswith("KEY column 'ident' is not among the item's columns")
    # merged by its DEDUPLICATE ON columns: COLUMNS must keep them (under any name)
    assert (
        diagnostics(
            "STAGE w.s.a FROM w.r.a MODE incremental CURSOR at DEDUPLICATE ON (id) "
            "COLUMNS (id AS order_id, x);"
        )
        == []
    )
    assert diagnostics(
        "STAGE w.s.a FROM w.r.a MODE incremental CURSOR at DEDUPLICATE ON (id, no) COLUMNS (id, x);"
    ) == [
        (
            2,
            71,
            "DEDUPLICATE column 'no' is not among the stage's COLUMNS; MODE incremental merges "
            "new rows into the target by it: keep it in COLUMNS or give a KEY (...)",
        )
    ]


def test_a_migrate_keeps_its_own_incremental_rules() -> None:
    assert diagnostics("MIGRATE a.t INTO w.r.t MODE incremental;") == [
        (
            2,
            24,
            "MODE incremental needs a CURSOR column (the value that grows with each change)",
        )
    ]
    assert diagnostics("MIGRATE a.t INTO w.r.t MODE incremental CURSOR at;") == []
