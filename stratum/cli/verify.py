"""`stratum verify`: compare every finished item's source and destination (stratum.verify)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.console import Console
from rich.table import Table

from stratum.connectors.registry import Connectors
from stratum.errors import ConfigError, PlanError
from stratum.plan import load_plan
from stratum.plan.model import MigrationPlan
from stratum.verify import ItemCheck, verify_plan
from stratum.verify.run import SHOWN_KEYS

EXIT_INVALID = 1
EXIT_DIFFERENT = 3

PlanFile = Annotated[
    Path, typer.Argument(help="the .smql file", exists=True, dir_okay=False, readable=True)
]


def verify(
    file: PlanFile,
    item: Annotated[
        list[str] | None, typer.Option("--item", help="Check only this item (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows per checksummed key range.")
    ] = 10_000,
) -> None:
    """Compare each finished item's source and destination: row counts, checksums by key
    range, then the keys missing, extra or different. Exit 3 on any difference."""
    try:
        plan = load_plan(file)
    except PlanError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_INVALID) from None
    try:
        checks = run_verify(plan, tuple(item or ()), chunk_rows)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    show(checks, as_json=as_json)
    raise typer.Exit(verdict(checks))


def run_verify(plan: MigrationPlan, items: tuple[str, ...], chunk_rows: int) -> list[ItemCheck]:
    connectors = Connectors(plan, Path(plan.path).resolve().parent, dict(os.environ))

    async def run() -> list[ItemCheck]:
        return await verify_plan(plan, connectors, items, chunk_rows)

    return anyio.run(run)


def verdict(checks: list[ItemCheck]) -> int:
    if any(c.status == "error" for c in checks):
        return EXIT_INVALID
    return 0 if all(c.ok for c in checks) else EXIT_DIFFERENT


def show(checks: list[ItemCheck], *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"items": [asdict(c) for c in checks]}, indent=2, default=str))
        return
    out = Console(file=sys.stdout, width=max(Console().width, 100))
    table = Table(title="verify", title_justify="left")
    for name in ("item", "result", "source", "destination", "chunks", "missing", "extra", "diff"):
        table.add_column(name, justify="left" if name in ("item", "result") else "right")
    for c in checks:
        table.add_row(
            c.item,
            c.status,
            "-" if c.source_rows is None else f"{c.source_rows:,}",
            "-" if c.destination_rows is None else f"{c.destination_rows:,}",
            f"{c.chunks_different}/{c.chunks}" if c.chunks else "-",
            f"{len(c.missing):,}",
            f"{len(c.extra):,}",
            f"{len(c.different):,}",
        )
    out.print(table)
    for c in checks:
        notes = [] if c.how == "checksums by key" else [c.how]
        if c.message:
            notes.append(c.message)
        for label, keys in (("missing", c.missing), ("extra", c.extra), ("different", c.different)):
            if keys:
                shown = ", ".join(keys[:SHOWN_KEYS])
                more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
                notes.append(f"{label} keys: {shown}{more}")
        for note in notes:
            out.print(f"{c.item}: {note}", markup=False, highlight=False)
