"""What a run shows: progress bars on a terminal, structured log lines otherwise, and the final
summary table. All of it subscribes to the event bus; none of it can stop a run."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from stratum.runtime.events import (
    BatchProcessed,
    ErrorOccurred,
    Event,
    ItemFinished,
    ItemStarted,
    MigrationCompleted,
    MigrationStarted,
    Notice,
    StageFinished,
    StageReport,
)
from stratum.runtime.executor import RunSummary
from stratum.runtime.pipeline import ItemResult


class ProgressBars:
    """One bar per item: rows written, rows/s, and an ETA when the size is known."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:>12,.0f} rows"),
            TextColumn("{task.fields[rate]:>10}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.started: dict[str, float] = {}

    def __enter__(self) -> ProgressBars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        if isinstance(event, ItemStarted):
            self.started[event.item] = time.monotonic()
            self.tasks[event.item] = self.progress.add_task(
                event.item, total=event.total_rows, completed=event.totals.rows_written, rate=""
            )
        elif isinstance(event, BatchProcessed) and event.item in self.tasks:
            elapsed = max(time.monotonic() - self.started[event.item], 1e-6)
            rate = f"{event.totals.rows_written / elapsed:,.0f}/s"
            self.progress.update(
                self.tasks[event.item], completed=event.totals.rows_written, rate=rate
            )
        elif isinstance(event, Notice):
            self.progress.console.print(f"note: {event.item}: {event.message}", markup=False)
        elif isinstance(event, ItemFinished) and event.item in self.tasks:
            task = self.tasks[event.item]
            self.progress.update(task, description=f"{event.item} [{event.state}]")
            if event.state == "finished":
                self.progress.update(task, total=event.totals.rows_written)


class EventLog:
    """Structured log lines (JSON or console) for every event: for pipes, files and CI."""

    def __init__(self, fmt: str, stream: TextIO = sys.stderr) -> None:
        renderer: Any = (
            structlog.processors.JSONRenderer()
            if fmt == "json"
            else structlog.dev.ConsoleRenderer(colors=False)
        )
        self.log = structlog.wrap_logger(
            structlog.PrintLogger(stream),
            processors=[structlog.processors.TimeStamper(fmt="iso"), renderer],
        )

    def __call__(self, event: Event) -> None:
        if isinstance(event, MigrationStarted):
            self.log.info(
                "migration_started",
                run_id=event.run_id,
                plan_hash=event.plan_hash,
                items=list(event.items),
            )
        elif isinstance(event, ItemStarted):
            self.log.info(
                "item_started",
                item=event.item,
                resumed_from=event.resumed_from,
                rows_written=event.totals.rows_written,
                load=event.load,
            )
        elif isinstance(event, BatchProcessed):
            self.log.info(
                "batch_processed",
                item=event.item,
                batch=event.batch,
                rows_read=event.rows_read,
                rows_written=event.rows_written,
                rows_rejected=event.rows_rejected,
                rows_filtered=event.rows_filtered,
                cursor=event.cursor,
            )
        elif isinstance(event, ItemFinished):
            self.log.info(
                "item_finished",
                item=event.item,
                state=event.state,
                rows_read=event.totals.rows_read,
                rows_written=event.totals.rows_written,
                rows_rejected=event.totals.rows_rejected,
                rows_filtered=event.totals.rows_filtered,
                seconds=round(event.elapsed, 3),
                message=event.message,
            )
        elif isinstance(event, ErrorOccurred):
            self.log.warning(
                "error",
                item=event.item,
                error=event.error,
                transient=event.transient,
                attempt=event.attempt,
            )
        elif isinstance(event, Notice):
            self.log.warning("notice", item=event.item, message=event.message)
        elif isinstance(event, StageFinished):
            self.log.info("stage_finished", item=event.item, **stage_fields(event.report))
        elif isinstance(event, MigrationCompleted):
            self.log.info(
                "migration_completed",
                run_id=event.run_id,
                status=event.status,
                exit_code=event.exit_code,
                seconds=round(event.elapsed, 3),
            )


def summary_table(summary: RunSummary, plan_path: str) -> Table:
    table = Table(
        title=f"{plan_path}  plan {summary.plan_hash[:12]}  run {summary.run_id}: {summary.status}",
        title_justify="left",
    )
    for name in ("item", "state", "read", "written", "rejected", "filtered", "time", "rows/s"):
        table.add_column(name, justify="left" if name in ("item", "state") else "right")
    for result in summary.results:
        t = result.totals
        moved = result.outcome.value != "skipped" and result.elapsed > 0
        rate = f"{t.rows_written / result.elapsed:,.0f}" if moved else "-"
        table.add_row(
            result.item,
            result.outcome.value,
            f"{t.rows_read:,}",
            f"{t.rows_written:,}",
            f"{t.rows_rejected:,}",
            f"{t.rows_filtered:,}",
            f"{result.elapsed:.2f}s",
            rate,
        )
    return table


def stage_table(summary: RunSummary) -> Table | None:
    """The stages' own figures (None when the run had none): where each ran, what it read,
    deduplicated, filtered, dropped, quarantined and flagged, and its rules' counts."""
    staged = [r for r in summary.results if r.stage is not None]
    if not staged:
        return None
    table = Table(title="stages", title_justify="left")
    headers = ("item", "batch", "in", "out", "dedup", "filter", "drop", "quarantine", "flag")
    for name in (*headers, "ok"):
        table.add_column(name, justify="left" if name == "item" else "right")
    for result in staged:
        report = result.stage
        assert report is not None
        rate = report.success_rate
        table.add_row(
            result.item,
            "-" if report.batch is None else str(report.batch),
            "-" if report.records_in is None else f"{report.records_in:,}",
            f"{report.records_out:,}",
            f"{report.deduplicated:,}",
            f"{report.filtered:,}",
            f"{report.dropped:,}",
            f"{report.quarantined:,}",
            f"{report.flagged:,}",
            "-" if rate is None else f"{rate:.1%}",
        )
    return table


def stage_notes(results: Iterable[ItemResult]) -> list[str]:
    """Where each stage ran, and one line per EXPECT rule: how many rows failed it."""
    notes = []
    for result in results:
        if result.stage is None:
            continue
        notes.append(f"{result.item}: ran as {result.stage.runs}")
        for rule in result.stage.rules:
            notes.append(
                f"{result.item}: EXPECT {rule.rule} ELSE {rule.action.upper()}: "
                f"{rule.failed:,} row(s) failed"
            )
    return notes


def stage_fields(report: StageReport) -> dict[str, Any]:
    """A stage report as plain values (log lines, the JSON summary)."""
    return {
        "kind": report.kind,
        "layer": report.layer,
        "batch": report.batch,
        "runs": report.runs,
        "records_in": report.records_in,
        "records_out": report.records_out,
        "deduplicated": report.deduplicated,
        "filtered": report.filtered,
        "dropped": report.dropped,
        "quarantined": report.quarantined,
        "flagged": report.flagged,
        "rules": [{"rule": r.rule, "action": r.action, "failed": r.failed} for r in report.rules],
        "checksum": report.checksum,
        "seconds": round(report.seconds, 3),
        "success_rate": report.success_rate,
        "rows_per_second": None
        if report.rows_per_second is None
        else round(report.rows_per_second, 1),
    }


def result_notes(results: Iterable[ItemResult]) -> list[str]:
    notes = []
    for result in results:
        if result.message:
            notes.append(f"{result.item}: {result.message}")
        if result.reject_file:
            notes.append(f"{result.item}: rejected rows are in {result.reject_file}")
    return notes


def summary_json(summary: RunSummary, plan_path: str) -> str:
    return json.dumps(
        {
            "plan": plan_path,
            "plan_hash": summary.plan_hash,
            "run_id": summary.run_id,
            "status": summary.status,
            "exit_code": summary.exit_code,
            "seconds": round(summary.elapsed, 3),
            "items": [
                {
                    "item": r.item,
                    "state": r.outcome.value,
                    "rows_read": r.totals.rows_read,
                    "rows_written": r.totals.rows_written,
                    "rows_rejected": r.totals.rows_rejected,
                    "rows_filtered": r.totals.rows_filtered,
                    "batches": r.totals.batches,
                    "bytes": r.totals.nbytes,
                    "retries": r.totals.retries,
                    "failures": r.totals.failures,
                    "rows_per_second": round(r.totals.rows_written / r.elapsed, 1)
                    if r.elapsed > 0 and r.outcome.value != "skipped"
                    else None,
                    "seconds": round(r.elapsed, 3),
                    "message": r.message,
                    "reject_file": r.reject_file,
                    "stage": None if r.stage is None else stage_fields(r.stage),
                }
                for r in summary.results
            ],
        },
        indent=2,
    )
