"""Builders shared by the transform tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from stratum.connectors.base import Column, RawBatch, Rejected, Row, Schema
from stratum.transforms import TransformedBatch, Transformer
from tests.support.options import options

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def schema(*columns: tuple[str, str], key: Sequence[str] = ()) -> Schema:
    return Schema(tuple(Column(name, type_) for name, type_ in columns), tuple(key))


def batch(
    rows: Sequence[Row],
    *,
    first: int = 1,
    rejected: Sequence[Rejected] = (),
    cursor: Any = None,
    nbytes: int = 0,
) -> RawBatch:
    return RawBatch(
        list(rows), list(range(first, first + len(rows))), list(rejected), cursor, nbytes
    )


def build(source: Schema, **kwargs: Any) -> Transformer:
    table = kwargs.pop("table", None)
    return Transformer.build(source, options(**kwargs), table=table, now=NOW)


def check_accounting(out: TransformedBatch) -> None:
    assert out.read == len(out.rows) + len(out.rejected) + out.filtered
    assert len(out.rows) == len(out.positions)
