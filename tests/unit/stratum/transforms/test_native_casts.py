"""CAST TYPE rules match the type as the source database spells it, most specific rule first."""

from __future__ import annotations

import pytest

from stratum.connectors.base import Column, Schema
from stratum.errors import ConfigError
from stratum.transforms.native import parts, specificity
from tests.unit.stratum.transforms.support import batch, build


@pytest.mark.parametrize(
    ("rule", "native", "expected"),
    [
        ("tinyint(1)", "tinyint(1)", 1),
        ("tinyint(1)", "tinyint(1) unsigned", 1),
        ("tinyint(1)", "tinyint(4)", None),
        ("tinyint", "tinyint(4)", 0),
        ("bigint unsigned", "bigint(20) unsigned", 1),
        ("bigint unsigned", "bigint(20)", None),
        ("bigint", "bigint(20) unsigned", 0),
        ("int", "int(11)", 0),
        ("integer", "int(11)", 0),  # aliases are one type
        ("datetime", "datetime(6)", 0),
        ("DATETIME(6)", "datetime(6)", 1),
        ("character varying", "character varying(20)", 0),
        ("timestamp with time zone", "timestamp(3) with time zone", 0),
        ("smallint", "tinyint(4)", None),
        ("enum", "enum('a','b,c')", 0),
    ],
)
def test_specificity(rule: str, native: str, expected: int | None) -> None:
    assert specificity(rule, native) == expected


def test_parts_keep_arguments_with_parentheses_and_spaces() -> None:
    assert parts("ENUM('a', 'b)')  ") == ("enum", "'a','b)'", frozenset())
    assert parts("int(10) unsigned zerofill") == ("int", "10", frozenset({"unsigned", "zerofill"}))


def mysql_schema() -> Schema:
    return Schema(
        (
            Column("flag", "boolean", native="tinyint(1)"),
            Column("small", "smallint", native="tinyint(4)"),
            Column("big", "numeric(20,0)", native="bigint(20) unsigned"),
            Column("signed", "bigint", native="bigint(20)"),
        )
    )


def test_a_rule_matches_the_native_type_not_the_mapped_one() -> None:
    # `smallint` is the mapped type of tinyint(4) but not its native type: the rule is for
    # the source's smallint columns, of which there are none
    transformer = build(mysql_schema(), casts=[("type", "smallint", "text")])
    assert [c.type for c in transformer.schema.columns] == [
        "boolean",
        "smallint",
        "numeric(20,0)",
        "bigint",
    ]
    transformer = build(mysql_schema(), casts=[("type", "tinyint(4)", "text")])
    assert transformer.schema.columns[1].type == "text"


def test_the_most_specific_rule_wins_whatever_the_order() -> None:
    rules = [("type", "bigint", "text"), ("type", "bigint unsigned", "numeric(30,0)")]
    for casts in (rules, rules[::-1]):
        transformer = build(mysql_schema(), casts=casts)
        types = {c.name: c.type for c in transformer.schema.columns}
        assert types["big"] == "numeric(30,0)"
        assert types["signed"] == "text"
        out = transformer.apply(batch([(True, 1, 18446744073709551615, -5)]))
        assert out.rows == [(True, 1, 18446744073709551615, "-5")]


def test_two_equally_specific_rules_with_different_targets_are_refused() -> None:
    with pytest.raises(ConfigError, match="two CAST rules"):
        build(mysql_schema(), casts=[("type", "bigint", "text"), ("type", "int8", "numeric")])


def test_a_column_without_a_native_type_matches_by_its_type() -> None:
    transformer = build(Schema((Column("n", "integer"),)), casts=[("type", "int4", "bigint")])
    assert transformer.schema.columns[0].type == "bigint"
