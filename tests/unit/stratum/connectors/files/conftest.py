"""Helpers shared by the file-source tests: read a source to the end, keeping every batch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from stratum.connectors.base import Cursor, RawBatch, Rejected, Row, Source


@dataclass
class Read:
    """Everything a `read()` yielded."""

    batches: list[RawBatch] = field(default_factory=list)

    @property
    def rows(self) -> list[Row]:
        return [row for batch in self.batches for row in batch.rows]

    @property
    def positions(self) -> list[int]:
        return [position for batch in self.batches for position in batch.positions]

    @property
    def rejected(self) -> list[Rejected]:
        return [rejected for batch in self.batches for rejected in batch.rejected]

    @property
    def cursors(self) -> list[Cursor]:
        return [batch.cursor for batch in self.batches]

    @property
    def records(self) -> list[tuple[int, Any]]:
        """Rows and rejected rows in file order: (position, row) or (position, Rejected)."""
        merged: list[tuple[int, Any]] = [
            *zip(self.positions, self.rows, strict=True),
            *((r.position, r) for r in self.rejected),
        ]
        return sorted(merged, key=lambda record: record[0])


async def read_all(source: Source, after: Cursor = None, batch_size: int = 1000) -> Read:
    result = Read()
    async for batch in source.read(after, batch_size):
        assert len(batch.rows) == len(batch.positions)
        assert 0 < len(batch.rows) + len(batch.rejected) <= batch_size
        result.batches.append(batch)
    return result


ReadAll = Callable[..., Awaitable[Read]]


@pytest.fixture
def read() -> ReadAll:
    return read_all
