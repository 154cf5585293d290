"""The pure parts of items that fan out: which tables a database copy takes, names cut to the
target's limit, and the key ranges of PARTITIONS."""

from __future__ import annotations

import pytest

from stratum.errors import ConfigError
from stratum.plan.model import DatabaseSource, TableRef
from stratum.runtime.database import chosen_tables, fit_columns, like
from stratum.runtime.partitions import ranges
from stratum.schema import Catalog, ColumnInfo, ForeignKey, IndexInfo, TableInfo


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("tmp_%", "tmp_x", True),
        ("tmp_%", "TMP_x", True),  # patterns ignore case
        ("tmp_%", "tmpx", True),  # `_` is any one character
        ("tmp_%", "tmp", False),
        ("a_c", "abc", True),
        ("a_c", "abbc", False),
        ("%_bak", "orders_bak", True),
        (r"a\_c", "a_c", True),
        (r"a\_c", "abc", False),
        ("a.c", "abc", False),  # no regular expressions
        ("%", "", True),
    ],
)
def test_like(pattern: str, name: str, expected: bool) -> None:
    assert like(pattern, name) is expected


def _table(name: str, *columns: str) -> TableInfo:
    return TableInfo(name, tuple(ColumnInfo(c, "int", "integer", False) for c in columns))


def test_chosen_tables_follow_including_excluding_and_the_plans_other_items() -> None:
    catalog = Catalog(
        "mysql", "shop", tuple(_table(n, "id") for n in ("orders", "tmp_1", "users", "logs"))
    )

    def source(including: tuple[str, ...], excluding: tuple[str, ...], claimed: tuple[str, ...]):
        return DatabaseSource(TableRef("src", None, None), including, excluding, claimed)

    assert chosen_tables(catalog, source((), ("tmp_%",), ("Users",))) == ["orders", "logs"]
    assert chosen_tables(catalog, source(("o%", "l%"), (), ())) == ["orders", "logs"]


def test_long_column_names_are_cut_everywhere_they_are_named() -> None:
    long = "a_column_name_that_goes_on_and_on_well_past_what_postgresql_allows"
    table = TableInfo(
        "t",
        (ColumnInfo("id", "int", "integer", False), ColumnInfo(long, "int", "integer", True)),
        primary_key=(long,),
        indexes=(IndexInfo("i", (long, "id"), unique=False),),
        foreign_keys=(ForeignKey("fk", (long,), "t", ("id",)),),
    )
    fitted, warnings = fit_columns(Catalog("mysql", "db", (table,)), 63)
    (cut,) = [c.name for c in fitted.tables[0].columns if c.name != "id"]
    assert len(cut.encode()) <= 63
    assert cut.startswith("a_column_name")
    assert fitted.tables[0].primary_key == (cut,)
    assert fitted.tables[0].indexes[0].columns == (cut, "id")
    assert fitted.tables[0].foreign_keys[0].columns == (cut,)
    assert warnings == [
        f"column t.{long} is longer than the target's 63-byte limit: it is created as {cut}"
    ]
    assert fit_columns(Catalog("mysql", "db", (table,)), 63)[0] == fitted  # deterministic


def test_ranges_cover_every_key_once() -> None:
    assert ranges([]) == [(None, None)]
    assert ranges([[10], [20]]) == [(None, [10]), ([10], [20]), ([20], None)]


def test_cast_rules_reach_the_catalog_the_ddl_is_made_from() -> None:
    from stratum.plan.model import CastRule
    from stratum.runtime.database import cast_catalog

    table = TableInfo(
        "t",
        (
            ColumnInfo("flag", "tinyint(1)", "boolean", False, default="1"),
            ColumnInfo("mood", "app.mood", "text", True, labels=("a", "b"), enum_type="app.mood"),
            ColumnInfo("big", "bigint(20) unsigned", "numeric(20,0)", False),
        ),
    )
    catalog = Catalog("mysql", "db", (table,))
    casts = (
        CastRule("type", "tinyint(1)", "smallint"),
        CastRule("column", "t.mood", "text"),
        CastRule("type", "bigint", "text"),
        CastRule("type", "bigint unsigned", "numeric(30,0)"),
    )
    columns = cast_catalog(catalog, casts).tables[0].columns
    assert [c.type for c in columns] == ["smallint", "text", "numeric(30,0)"]
    assert columns[1].enum_type is None  # a cast enum column is not made an enum again
    with pytest.raises(ConfigError, match="two CAST rules of the same weight"):
        cast_catalog(catalog, (CastRule("type", "bigint", "text"), CastRule("type", "int8", "x")))
