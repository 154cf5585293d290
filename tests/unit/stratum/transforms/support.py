"""Builders shared by the transform tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from smql import Mode
from stratum.connectors.base import Column, RawBatch, Rejected, Row, Schema
from stratum.plan.model import CastRule, ColumnMap, ComputedColumn, Options, Sql
from stratum.transforms import TransformedBatch, Transformer

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def options(
    *,
    columns: Sequence[tuple[str, str]] = (),
    compute: Sequence[tuple[str, str]] = (),
    where: str | None = None,
    casts: Sequence[tuple[str, str, str]] = (),
    key: Sequence[str] = (),
    cursor: str | None = None,
    dialect: str = "postgres",
) -> Options:
    return Options(
        mode=Mode.FULL,
        key=tuple(key),
        cursor=cursor,
        columns=tuple(ColumnMap(source, target) for source, target in columns),
        compute=tuple(ComputedColumn(name, Sql(text, dialect)) for name, text in compute),
        where=Sql(where, dialect) if where is not None else None,
        casts=tuple(CastRule(by, match, to) for by, match, to in casts),
        on_error=None,
        zero_dates=None,
        dialect=dialect,
        partitions=None,
        batch_size=None,
    )


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
