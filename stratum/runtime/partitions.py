"""`PARTITIONS n`: one table item read and written as n key ranges at once, each range a child
item with its own cursor and checkpoint.

    the parent's checkpoint (no rows) holds the key ranges, chosen once:
        first run: the source splits its rows into n ranges of about equal row counts
        (`split(n)`: n - 1 boundary keys, computed by the source database in one snapshot);
        MODE full empties the target in the same transaction that records the ranges
    children `<item>#1` .. `<item>#n`, all at once: the ordinary pipeline, each reading
        low < key <= high from its own resume cursor, in MODE append (the parent truncated)
    -> the parent is finished when every child is

The ranges are kept, not recomputed, so a resume after a crash reads exactly the ranges the
children's checkpoints count: recomputing them on changed data would move rows between ranges
and load some twice. Each child's hash is made of the parent's, its number and its range.
A source with no key cannot be split: the item fails with the reason (a `MIGRATE DATABASE` table
without a key is read whole instead: the executor's `run_whole`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from smql import Mode
from stratum.connectors.base import Checkpoint, Cursor, Schema, Source
from stratum.errors import ConfigError
from stratum.plan.model import PlanItem
from stratum.runtime.events import Notice
from stratum.runtime.fanout import FanOutRun
from stratum.runtime.pipeline import ItemResult, Outcome
from stratum.state import ItemState

Bounds = tuple[Cursor, Cursor]

#: Makes a source for an item, limited to a key range (the connector registry).
MakeSource = Callable[..., Source]
#: Runs one child through the ordinary pipeline with its source (the executor's `_run_item`).
RunPart = Callable[[PlanItem, Bounds], Awaitable[ItemResult]]
#: Runs the item as one read, when a table turns out to have no key to split by.
RunWhole = Callable[[PlanItem], Awaitable[ItemResult]]


def ranges(boundaries: list[Cursor]) -> list[Bounds]:
    """(None, b1], (b1, b2], ..., (bn, None]: every key in exactly one range."""
    edges: list[Cursor] = [None, *boundaries, None]
    return [(edges[i], edges[i + 1]) for i in range(len(boundaries) + 1)]


def part_hash(item: PlanItem, number: int, bounds: Bounds) -> str:
    digest = hashlib.sha256(item.hash.encode())
    digest.update(f"\x00{number}\x00{json.dumps(bounds, sort_keys=True)}".encode())
    return digest.hexdigest()


@dataclass
class PartitionedRun(FanOutRun):
    """One item with PARTITIONS n > 1 (see the module docstring)."""

    make_source: MakeSource = field(kw_only=True)
    run_part: RunPart = field(kw_only=True)
    run_whole: RunWhole | None = field(kw_only=True, default=None)

    async def _run(self) -> ItemResult:
        item = self.item
        parts = item.options.partitions or 1
        if item.options.mode is Mode.INCREMENTAL:
            raise ConfigError(
                f"item '{item.name}': PARTITIONS {parts} cannot be combined with MODE "
                "incremental (each run reads only the rows past the CURSOR high-water mark); "
                "use PARTITIONS 1"
            )
        checkpoint = await self._checkpoint_to_resume()
        # a finished item still runs its parts: each reports itself skipped with the totals
        # of its own checkpoint, so the item's are right in the summary
        if checkpoint is None or "split" not in checkpoint.steps:
            boundaries = await self._split(parts)
            if boundaries is None:
                assert self.run_whole is not None
                return await self.run_whole(item)
            checkpoint = await self._record_ranges(boundaries)
        self._checkpoint = dataclasses.replace(checkpoint, run_id=self.run_id)
        await self._record(ItemState.WORKING)
        stored = self._current().cursor
        assert isinstance(stored, list)
        children = self._children(ranges(stored))

        async def run(child: PlanItem, bounds: Bounds) -> None:
            self.children.append(await self.run_part(child, bounds))

        async with anyio.create_task_group() as tg:
            for child, bounds in children:
                tg.start_soon(run, child, bounds)
        self.children.sort(key=lambda r: r.item)
        verdict = self._verdict(len(children))
        if verdict is not None:
            return await self._end(*verdict)
        return await self._finish(skipped=all(r.outcome is Outcome.SKIPPED for r in self.children))

    async def _split(self, parts: int) -> list[Cursor] | None:
        """The boundary keys; None when the source has no key and the item may be read whole."""
        source = self.make_source(self.item)
        try:
            await self._retry(source.open)
            if not getattr(source, "resumable", True) and self.run_whole is not None:
                self.bus.publish(
                    Notice(
                        self.item.name,
                        f"PARTITIONS {parts} ignored: the table has no primary or unique key to "
                        "split it by, so it is read whole",
                    )
                )
                return None
            split = getattr(source, "split", None)
            if split is None:
                raise ConfigError(
                    f"item '{self.item.name}': its source cannot be read by key range, so "
                    f"PARTITIONS {parts} cannot apply; use PARTITIONS 1"
                )
            boundaries: list[Cursor] = await self._retry(lambda: split(parts))
            return boundaries
        finally:
            await source.close()

    async def _record_ranges(self, boundaries: list[Cursor]) -> Checkpoint:
        """Save the ranges in the parent's checkpoint, emptying the target in the same
        transaction for MODE full (when it exists: the children create it otherwise)."""
        item = self.item
        checkpoint = dataclasses.replace(self._fresh(), cursor=list(boundaries), steps=("split",))
        if item.options.mode is Mode.FULL and await self._retry(
            lambda: self.destination.table_exists(item.target)
        ):
            prepared = dataclasses.replace(checkpoint, steps=("split", "create"))
            # steps holding "create": prepare only truncates, in one transaction with the row
            return await self._retry(
                lambda: self.destination.prepare(item.target, Schema(()), Mode.FULL, prepared)
            )
        await self._retry(lambda: self.destination.save_checkpoint(checkpoint))
        return checkpoint

    def _children(self, bounds: list[Bounds]) -> list[tuple[PlanItem, Bounds]]:
        item = self.item
        mode = Mode.APPEND if item.options.mode is Mode.FULL else item.options.mode
        options = dataclasses.replace(item.options, mode=mode, partitions=None)
        return [
            (
                dataclasses.replace(
                    item,
                    name=f"{item.name}#{number}",
                    options=options,
                    depends_on=(),
                    hash=part_hash(item, number, part),
                ),
                part,
            )
            for number, part in enumerate(bounds, start=1)
        ]
