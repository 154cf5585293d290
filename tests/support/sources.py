"""Reading a table source from a test body: its reference, its batches and rows, and its key
ranges read one by one."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from typing import Any

from stratum.connectors.base import Column, Cursor, RawBatch
from stratum.plan.model import TableRef


def table_ref(table: str, schema: str | None = None) -> TableRef:
    """The table on the connection `src`."""
    return TableRef("src", schema, table)


def without_native(columns: tuple[Column, ...]) -> tuple[Column, ...]:
    """The columns without the source's own type names (asserted on their own elsewhere)."""
    return tuple(dataclasses.replace(c, native=None) for c in columns)


async def read_batches(source: Any, batch: int = 100, after: Cursor = None) -> list[RawBatch]:
    """Every batch the open source reads after `after`."""
    return [b async for b in source.read(after, batch)]


def rows_of(batches: Sequence[RawBatch]) -> list[tuple[Any, ...]]:
    return [row for batch in batches for row in batch.rows]


async def key_ranges(
    source_type: Any, url: str, ref: TableRef, cuts: Sequence[Cursor], **kw: Any
) -> list[list[tuple[Any, ...]]]:
    """The rows of each key range the cuts bound (the first open below, the last above), each
    range read by a source of its own, in batches of 97."""
    parts = []
    for low, high in zip([None, *cuts], [*cuts, None], strict=True):
        async with source_type(url, ref, bounds=(low, high), **kw) as source:
            parts.append(rows_of(await read_batches(source, 97, after=low)))
    return parts


def assert_partition(parts: list[list[tuple[Any, ...]]], whole: list[tuple[Any, ...]]) -> None:
    """The ranges hold the whole, in order, with no overlap and no gap, and are even sizes."""
    assert [row for part in parts for row in part] == whole
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1, sizes


def unique_name(prefix: str) -> str:
    """A table name no other test uses: the prefix and a random suffix."""
    return f"{prefix}_{secrets.token_hex(4)}"
