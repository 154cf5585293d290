"""`stratum migrate` and `stratum progress`: running a plan and watching one run."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from stratum.cli.display import (
    EventLog,
    ProgressBars,
    result_notes,
    stage_notes,
    stage_table,
    summary_json,
    summary_table,
)
from stratum.cli.verify import run_verify, show, verdict
from stratum.errors import ConfigError, PlanError, StateLocked, StateStoreError
from stratum.plan import load_plan
from stratum.resilience import RetryPolicy
from stratum.runtime.executor import (
    EXIT_LOCKED,
    MigrationExecutor,
    RunOptions,
    preview,
)
from stratum.state import ItemRecord, StateStore, default_state_dir

EXIT_INVALID = 1

PlanFile = Annotated[
    Path, typer.Argument(help="the .smql file", exists=True, dir_okay=False, readable=True)
]
StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where run state is kept (default: $STRATUM_STATE_DIR or ~/.stratum/state).",
    ),
]


def migrate(
    file: PlanFile,
    item: Annotated[
        list[str] | None, typer.Option("--item", help="Run only this item (repeatable).")
    ] = None,
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Start the plan (or the --item items) over from scratch."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be done; change nothing.")
    ] = False,
    summary: Annotated[
        Path | None, typer.Option("--summary", help="Also write the run summary as JSON here.")
    ] = None,
    state_dir: StateDir = None,
    reject_dir: Annotated[
        Path | None,
        typer.Option("--reject-dir", help="Where reject files go (default: in the state dir)."),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="json or console log lines instead of progress bars (the default off a TTY).",
        ),
    ] = None,
    verify_after: Annotated[
        bool,
        typer.Option(
            "--verify", help="After a successful run, compare sources and destinations (verify)."
        ),
    ] = False,
) -> None:
    """Run a plan: load every item, checkpointing each batch; run again to resume."""
    if log_format not in (None, "json", "console"):
        raise typer.BadParameter("expected json or console", param_hint="--log-format")
    err = Console(stderr=True)
    try:
        plan = load_plan(file)
    except PlanError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_INVALID) from None
    options = RunOptions(
        state_dir=state_dir or default_state_dir(),
        items=tuple(item or ()),
        restart=restart,
        reject_dir=reject_dir,
        policy=RetryPolicy.from_env(),
    )
    executor = MigrationExecutor(plan, options)
    try:
        if dry_run:
            for name, action in anyio.run(preview, executor):
                typer.echo(f"{name}: {action}")
            return
        bars = None
        if log_format is None and err.is_terminal:
            bars = ProgressBars(err)
            executor.bus.subscribe(bars)
        else:
            executor.bus.subscribe(EventLog(log_format or "console"))
        if bars is not None:
            with bars:
                result = anyio.run(executor.run)
        else:
            result = anyio.run(executor.run)
    except StateLocked as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_LOCKED) from None
    except (ConfigError, StateStoreError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    out = Console(file=sys.stdout, width=max(Console().width, 100))
    out.print(summary_table(result, str(file)))
    stages = stage_table(result)
    if stages is not None:
        out.print(stages)
    for note in [*stage_notes(result.results), *result_notes(result.results)]:
        out.print(note, markup=False, highlight=False)
    if summary is not None:
        summary.write_text(summary_json(result, str(file)) + "\n", encoding="utf-8")
    if verify_after and result.exit_code == 0:
        checks = run_verify(plan, tuple(item or ()), 10_000)
        show(checks, as_json=False)
        raise typer.Exit(verdict(checks))
    raise typer.Exit(result.exit_code)


def progress(
    file: Annotated[
        Path | None,
        typer.Argument(help="the .smql file (without it: every plan in the state dir)"),
    ] = None,
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Annotated[
        float | None,
        typer.Option("--watch", help="Refresh every N seconds until Ctrl-C.", min=0.2),
    ] = None,
) -> None:
    """Show the state of a plan's items, also while `migrate` runs in another process."""
    directory = state_dir or default_state_dir()
    try:
        if watch is None:
            _show(file, directory, as_json)
            return
        with Live(_progress_table(file, directory), refresh_per_second=4) as live:
            while True:
                time.sleep(watch)
                live.update(_progress_table(file, directory))
    except StateStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    except KeyboardInterrupt:
        return


def _records(file: Path | None, directory: Path) -> dict[str, list[ItemRecord]]:
    plans = [file] if file is not None else StateStore.plans(directory)
    found = {}
    for plan in plans:
        with StateStore.open(directory, Path(plan), readonly=True) as store:
            found[str(plan)] = store.items()
    return found


def _show(file: Path | None, directory: Path, as_json: bool) -> None:
    records = _records(file, directory)
    if as_json:
        typer.echo(
            json.dumps(
                {plan: [json.loads(r.to_json()) for r in items] for plan, items in records.items()},
                indent=2,
            )
        )
        return
    Console(width=max(Console().width, 160)).print(_progress_table(file, directory, records))


def _progress_table(
    file: Path | None, directory: Path, records: dict[str, list[ItemRecord]] | None = None
) -> Table:
    records = records if records is not None else _records(file, directory)
    table = Table(title_justify="left", title=f"state in {directory}")
    for name in (
        "plan",
        "item",
        "state",
        "read",
        "written",
        "rejected",
        "filtered",
        "rows/s",
        "cursor",
        "last error",
    ):
        table.add_column(name)
    for plan, items in records.items():
        for record in items:
            table.add_row(
                Path(plan).name,
                record.name,
                record.state.value,
                f"{record.rows_read:,}",
                f"{record.rows_written:,}",
                f"{record.rows_rejected:,}",
                f"{record.rows_filtered:,}",
                f"{record.rows_per_second:,.0f}",
                json.dumps(record.cursor),
                record.last_error or "",
            )
    return table
