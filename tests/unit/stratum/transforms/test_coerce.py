"""Rows are coerced to an existing target's column types; what cannot be converted is rejected."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from stratum.connectors.base import Column, Schema
from stratum.errors import ConfigError
from stratum.transforms import TransformedBatch
from stratum.transforms.coerce import Coercion

ITEM = Schema((Column("id", "text"), Column("amount", "text"), Column("at", "text")))
TARGET = (
    Column("id", "bigint"),
    Column("at", "timestamp"),
    Column("amount", "numeric(8,2)"),
    Column("extra", "text"),
)


def batch(*rows: tuple[object, ...]) -> TransformedBatch:
    return TransformedBatch(list(rows), list(range(2, 2 + len(rows))), [], 0, len(rows))


def test_values_take_the_target_types_and_bad_ones_are_rejected() -> None:
    coercion = Coercion.build(ITEM, TARGET, "wh.t")
    assert [c.type for c in coercion.schema.columns] == ["bigint", "numeric(8,2)", "timestamp"]
    out = coercion.apply(
        batch(("1", "2.50", "2024-01-02 03:04:05"), ("x", "1", None), ("3", None, None))
    )
    assert out.rows == [
        (1, Decimal("2.50"), dt.datetime(2024, 1, 2, 3, 4, 5)),
        (3, None, None),
    ]
    assert out.positions == [2, 4]
    (rejected,) = out.rejected
    assert rejected.position == 3
    assert rejected.reason.startswith("column id: 'x' is not bigint")
    assert out.read == len(out.rows) + len(out.rejected) + out.filtered


def test_matching_types_need_no_work() -> None:
    same = Coercion.build(ITEM, [Column(c.name, "text") for c in ITEM.columns], "wh.t")
    assert same.is_identity
    original = batch(("1", "2", "3"))
    assert same.apply(original) is original


def test_a_column_the_target_lacks_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="exists without a column 'amount'"):
        Coercion.build(
            ITEM,
            (Column("id", "bigint"), Column("at", "timestamp"), Column("amounts", "numeric")),
            "wh.t",
        )
