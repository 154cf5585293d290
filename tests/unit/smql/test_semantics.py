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
