"""Coercion to an existing target's column types.

When the target table already exists, its column types win over the item's: a CSV value that
arrives as text is converted to the target's `bigint`, `numeric(12,2)` or `timestamp` with the
same converters CAST uses, and a value that cannot be converted rejects its row, with the reason
and its source position, like any other bad row.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from stratum.connectors.base import Column, Rejected, Schema
from stratum.errors import ConfigError
from stratum.transforms.convert import CastFailed, Converter, converter, show
from stratum.transforms.transformer import TransformedBatch
from stratum.transforms.types import parse_type, same_type


@dataclass(frozen=True)
class Coercion:
    """Converts rows of `schema` (the item's) to the types of the existing target's columns."""

    schema: Schema  # the item's columns, with the target's types
    steps: tuple[tuple[int, str, Converter], ...]  # (index, column, converter) where types differ

    @classmethod
    def build(cls, schema: Schema, target: Sequence[Column], table: str) -> Coercion:
        by_name = {column.name: column for column in target}
        columns = []
        steps = []
        for index, column in enumerate(schema.columns):
            existing = by_name.get(column.name)
            if existing is None:
                close = difflib.get_close_matches(column.name, list(by_name), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(
                    f"the target {table} exists without a column '{column.name}'{hint}; its "
                    f"columns are {', '.join(by_name)} (rename with COLUMNS (x AS y), or drop "
                    "the table to let Stratum create it)"
                )
            columns.append(replace(column, type=existing.type))
            if not _same(column.type, existing.type):
                steps.append((index, column.name, converter(parse_type(existing.type))))
        return cls(replace(schema, columns=tuple(columns)), tuple(steps))

    @property
    def is_identity(self) -> bool:
        return not self.steps

    def apply(self, batch: TransformedBatch) -> TransformedBatch:
        if not self.steps:
            return batch
        rows, positions, rejected = [], [], list(batch.rejected)
        types = {name: self.schema.columns[i].type for i, name, _ in self.steps}
        for row, position in zip(batch.rows, batch.positions, strict=True):
            values = list(row)
            failed = None
            for index, name, convert in self.steps:
                if values[index] is None:
                    continue
                try:
                    values[index] = convert(values[index])
                except CastFailed:
                    failed = (
                        f"column {name}: {show(values[index])} is not {types[name]} "
                        "(the type of the existing target column)"
                    )
                    break
            if failed is not None:
                rejected.append(Rejected(position, failed, row))
                continue
            rows.append(tuple(values))
            positions.append(position)
        return replace(batch, rows=rows, positions=positions, rejected=rejected)


def _same(a: str, b: str) -> bool:
    """Same type for coercion: json and jsonb values are the same Python values."""
    return same_type(a, b) or {a.lower(), b.lower()} <= {"json", "jsonb"}
