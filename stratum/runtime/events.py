"""The event bus: what happens during a run, for the progress display, logs and metrics.

Publishers (the executor and the item pipelines) call `EventBus.publish`; subscribers are plain
callables called in order, on the event loop, so they must be quick (a progress bar update, a log
line, a counter). A subscriber that raises is reported once and dropped, never allowed to break
the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from stratum.connectors.base import Cursor


@dataclass(frozen=True, slots=True)
class Totals:
    """An item's running totals (they survive resumes: counted from its checkpoint)."""

    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_filtered: int = 0
    batches: int = 0
    nbytes: int = 0
    retries: int = 0
    failures: int = 0


@dataclass(frozen=True, slots=True)
class MigrationStarted:
    run_id: str
    plan_hash: str
    items: tuple[str, ...]
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class ItemStarted:
    item: str
    resumed_from: Cursor
    totals: Totals
    total_rows: int | None = None
    # "text": the destination parses the source's text (the pass-through path); "rows": values
    # converted in Python
    load: str = "rows"
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class BatchProcessed:
    item: str
    batch: int
    rows_read: int
    rows_written: int
    rows_rejected: int
    rows_filtered: int
    nbytes: int
    cursor: Cursor
    totals: Totals
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class ItemFinished:
    item: str
    state: str  # an ItemState value, or "skipped"
    totals: Totals
    elapsed: float
    message: str | None = None
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class RuleCount:
    """How many rows of a stage's batch failed one EXPECT rule."""

    rule: str  # the condition, as written (normalised)
    action: str  # drop | fail | flag | quarantine
    failed: int


@dataclass(frozen=True, slots=True)
class StageReport:
    """What one run of a stage, feature table or dataset did (`stratum.runtime.stages`); the
    same figures go to the destination's bookkeeping table, `stratum.stage_batches`."""

    kind: str  # "stage", "features", "dataset"
    layer: str  # the target's schema: bronze, silver, gold, features...
    batch: int | None  # None: nothing new to process (MODE incremental)
    runs: str  # where the SQL ran: "sql in <connection>" or "streamed from <c> into <c>"
    records_in: int | None  # rows read from the input (None: a query's, not counted)
    records_out: int
    deduplicated: int = 0
    filtered: int = 0
    dropped: int = 0
    quarantined: int = 0
    flagged: int = 0
    rules: tuple[RuleCount, ...] = ()
    checksum: str | None = None
    seconds: float = 0.0

    @property
    def success_rate(self) -> float | None:
        """The share of the rows read that reached the target (None when not counted, and
        for feature tables and datasets, whose rows are points in time, not input rows)."""
        if self.kind != "stage" or not self.records_in:
            return None
        return self.records_out / self.records_in

    @property
    def rows_per_second(self) -> float | None:
        rows = self.records_in if self.records_in is not None else self.records_out
        return rows / self.seconds if self.seconds > 0 else None


@dataclass(frozen=True, slots=True)
class StageFinished:
    item: str
    report: StageReport
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a user should know that is not an error (a name truncated to fit the
    target, a default that could not be translated)."""

    item: str
    message: str
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class ErrorOccurred:
    item: str | None
    error: str
    transient: bool
    attempt: int = 0
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class MigrationCompleted:
    run_id: str
    status: str
    exit_code: int
    elapsed: float
    at: float = field(default_factory=time.time)


Event: TypeAlias = (
    MigrationStarted
    | ItemStarted
    | BatchProcessed
    | ItemFinished
    | ErrorOccurred
    | Notice
    | StageFinished
    | MigrationCompleted
)
Subscriber: TypeAlias = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.dropped: list[tuple[Subscriber, BaseException]] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception as exc:  # a display bug must not stop a migration
                self._subscribers.remove(subscriber)
                self.dropped.append((subscriber, exc))
