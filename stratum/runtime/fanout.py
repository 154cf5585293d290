"""What an item that runs as several child items shares: `MIGRATE DATABASE` (a child per table,
runtime/database.py) and `PARTITIONS n` (a child per key range, runtime/partitions.py).

The parent item keeps its own checkpoint row in the destination (no rows: its one-time steps,
and for partitions the key ranges) and its own state record; each child is an ordinary item with
its own checkpoint, run by the executor's pipeline. The parent's totals are its children's sums.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio

from stratum.connectors.base import Checkpoint, Destination
from stratum.errors import ResumeRefused, StratumError
from stratum.plan.model import MigrationPlan, PlanItem
from stratum.resilience import CircuitBreaker, RetryPolicy, call_with_retry
from stratum.runtime.events import ErrorOccurred, EventBus, ItemFinished, StageReport, Totals
from stratum.runtime.pipeline import ItemResult, Outcome
from stratum.state import ItemRecord, ItemState, StateStore

T = TypeVar("T")

_STATES = {
    Outcome.FINISHED: ItemState.FINISHED,
    Outcome.SKIPPED: ItemState.FINISHED,
    Outcome.PAUSED: ItemState.PAUSED,
    Outcome.FAILED: ItemState.FAILED,
}


def add_totals(results: list[ItemResult]) -> Totals:
    sums = [0] * 8
    for r in results:
        t = r.totals
        values = (
            t.rows_read,
            t.rows_written,
            t.rows_rejected,
            t.rows_filtered,
            t.batches,
            t.nbytes,
            t.retries,
            t.failures,
        )
        sums = [a + b for a, b in zip(sums, values, strict=True)]
    return Totals(*sums)


@dataclass
class FanOutRun(ABC):
    """The parent of child items; subclasses implement `_run`."""

    plan: MigrationPlan
    item: PlanItem
    run_id: str
    destination: Destination
    store: StateStore
    bus: EventBus
    policy: RetryPolicy
    restart: bool
    children: list[ItemResult] = field(default_factory=list, init=False)
    _started: float = field(default=0.0, init=False)
    _checkpoint: Checkpoint | None = field(default=None, init=False)
    _stopping: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.breaker = CircuitBreaker(
            threshold=self.policy.breaker_threshold, cooldown=self.policy.breaker_cooldown
        )

    def stop(self) -> None:
        """No further child starts (the executor stops the running ones itself)."""
        self._stopping = True

    async def run(self) -> ItemResult:
        self._started = time.monotonic()
        try:
            return await self._run()
        except StratumError as exc:
            self.bus.publish(ErrorOccurred(self.item.name, str(exc), False))
            return await self._end(Outcome.FAILED, str(exc))

    @abstractmethod
    async def _run(self) -> ItemResult:
        """The item's own work: its children and its steps."""

    # --- shared steps ---------------------------------------------------------------------

    async def _checkpoint_to_resume(self) -> Checkpoint | None:
        """The parent's checkpoint (None: a fresh start), forgotten on --restart; a changed
        definition is refused (ResumeRefused)."""
        item = self.item
        checkpoint = await self._retry(lambda: self.destination.checkpoint(item.name))
        if self.restart and checkpoint is not None:
            await self._retry(lambda: self.destination.forget(item.name))
            return None
        if checkpoint is not None and checkpoint.item_hash != item.hash:
            raise ResumeRefused(
                item.name,
                f"its definition changed since run {checkpoint.run_id} (item hash "
                f"{checkpoint.item_hash[:12]} -> {item.hash[:12]})",
            )
        return checkpoint

    def _fresh(self) -> Checkpoint:
        return Checkpoint(self.item.name, self.item.hash, self.plan.hash, self.run_id)

    def _current(self) -> Checkpoint:
        assert self._checkpoint is not None
        return self._checkpoint

    async def _retry(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await call_with_retry(fn, policy=self.policy, breaker=self.breaker)

    def _unfinished(self) -> list[ItemResult]:
        return [r for r in self.children if r.outcome not in (Outcome.FINISHED, Outcome.SKIPPED)]

    def _verdict(self, expected: int) -> tuple[Outcome, str] | None:
        """The parent's outcome when a child did not finish (None when all did): paused when
        the run was stopped and nothing failed, else failed, naming the children."""
        unfinished = self._unfinished()
        if not unfinished and len(self.children) == expected:
            return None
        if all(r.outcome is Outcome.PAUSED for r in unfinished) and (
            self._stopping or len(self.children) < expected
        ):
            return Outcome.PAUSED, "stopped on request; run again to resume"
        failed = [r for r in unfinished if r.outcome is not Outcome.PAUSED]
        return Outcome.FAILED, (
            f"{len(failed)} of {expected} part(s) did not finish: "
            + ", ".join(r.item for r in failed)
        )

    async def _finish(self, *, skipped: bool) -> ItemResult:
        final = dataclasses.replace(self._current(), finished=True)
        await self._retry(lambda: self.destination.save_checkpoint(final))
        self._checkpoint = final
        return await self._end(Outcome.SKIPPED if skipped else Outcome.FINISHED, None)

    # --- records and the result -----------------------------------------------------------

    async def _record(self, state: ItemState, error: str | None = None) -> None:
        now = time.time()
        totals = self._totals()
        previous = await anyio.to_thread.run_sync(self.store.get_item, self.item.name)
        record = ItemRecord(
            name=self.item.name,
            hash=self.item.hash,
            state=state,
            rows_read=totals.rows_read,
            rows_written=totals.rows_written,
            rows_rejected=totals.rows_rejected,
            rows_filtered=totals.rows_filtered,
            batches=totals.batches,
            bytes=totals.nbytes,
            retries=totals.retries,
            failures=totals.failures,
            steps=self._checkpoint.steps if self._checkpoint else (),
            run_id=self.run_id,
            started_at=previous.started_at if previous and previous.run_id == self.run_id else now,
            updated_at=now,
            finished_at=now if state is ItemState.FINISHED else None,
            last_error=error,
        )
        await anyio.to_thread.run_sync(self.store.put_item, record)

    def _totals(self) -> Totals:
        """The item's totals: its children's sums (a stage adds its own work)."""
        return add_totals(self.children)

    def _report(self) -> StageReport | None:
        """What a stage did, for the summary (None for other parents)."""
        return None

    def _skip_message(self) -> str:
        return (
            f"already finished by run {self._current().run_id}; nothing to do (--restart "
            f"--item {self.item.name} loads it again)"
        )

    async def _end(self, outcome: Outcome, message: str | None) -> ItemResult:
        await self._record(_STATES[outcome], message if outcome is Outcome.FAILED else None)
        if outcome is Outcome.SKIPPED and message is None and self._checkpoint is not None:
            message = self._skip_message()
        result = ItemResult(
            self.item.name,
            outcome,
            self._totals(),
            time.monotonic() - self._started,
            message,
            stage=self._report(),
        )
        self.bus.publish(
            ItemFinished(self.item.name, outcome.value, result.totals, result.elapsed, message)
        )
        return result
