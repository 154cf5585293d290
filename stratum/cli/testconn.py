"""`stratum test-conn`: can each connection of a plan be reached, and may it do what the plan asks?

Every connection is probed at once (see `stratum.connectors.probe`). The DSN shown is the plan's
template with inline passwords masked: a `${VAR}` stays a `${VAR}`, so an expanded URL, and the
password in it, is never printed.

Exit codes: 0 every connection tested is reachable and holds every privilege the plan needs;
1 one is not (or the plan does not compile); 2 usage error (unknown connection name, no file).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from smql.checks import suggestion
from stratum.connectors.probe import Needs, ProbeResult, failed, needs_of, probe
from stratum.connectors.registry import Connectors
from stratum.errors import ConfigError, PlanError
from stratum.plan import MigrationPlan, load_plan

EXIT_OK = 0
EXIT_FAILED = 1


def check_connections(
    file: Annotated[
        Path, typer.Argument(help="the .smql file", exists=True, dir_okay=False, readable=True)
    ],
    connections: Annotated[
        list[str] | None,
        typer.Argument(help="connections to test (default: every connection of the plan)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for a connection.")
    ] = 5.0,
) -> None:
    """Check each connection: reachable, server version, latency, TLS, and the privileges the
    plan needs (SELECT on what it reads, CREATE/INSERT/TRUNCATE where it writes)."""
    try:
        plan = load_plan(file)
    except PlanError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_FAILED) from None
    names = _chosen(plan, connections or [])
    results = anyio.run(_probe_all, plan, file.resolve().parent, names, timeout)
    needs = {name: needs_of(plan, name) for name in names}
    if as_json:
        typer.echo(json.dumps(_json(plan, results, needs), indent=2, ensure_ascii=False))
    else:
        out = Console(file=sys.stdout, width=max(Console().width, 160))
        out.print(_table(plan, results, needs))
        good = sum(1 for r in results if r.ok)
        out.print(Text(f"{good} of {len(results)} connection{'' if len(results) == 1 else 's'} ok"))
    raise typer.Exit(EXIT_OK if all(r.ok for r in results) else EXIT_FAILED)


def _chosen(plan: MigrationPlan, asked: list[str]) -> list[str]:
    known = [c.name for c in plan.connections]
    for name in asked:
        if name not in known:
            listed = ", ".join(known) or "none"
            raise typer.BadParameter(
                f"no connection '{name}' in the plan{suggestion(name, known)}; it has: {listed}",
                param_hint="CONNECTION",
            )
    return list(dict.fromkeys(asked)) if asked else known


async def _probe_all(
    plan: MigrationPlan, base_dir: Path, names: list[str], seconds: float
) -> list[ProbeResult]:
    connectors = Connectors(plan, base_dir, os.environ)
    results: list[ProbeResult | None] = [None] * len(names)

    async def one(index: int, name: str) -> None:
        try:
            url = connectors.url(name)  # a secret from here on
        except ConfigError as exc:
            message = str(exc).removeprefix(f"connection '{name}': ")
            results[index] = failed(name, "other", message)
            return
        needs = needs_of(plan, name)
        results[index] = await probe(name, url, needs=needs, timeout=seconds, base_dir=base_dir)

    async with anyio.create_task_group() as group:
        for index, name in enumerate(names):
            group.start_soon(one, index, name)
    return [r for r in results if r is not None]


def _json(
    plan: MigrationPlan, results: list[ProbeResult], needs: dict[str, Needs]
) -> dict[str, Any]:
    connections = []
    for result in results:
        spec = plan.connection(result.name)
        entry = {"name": result.name, "dsn": spec.url, "uses": list(needs[result.name].uses)}
        entry.update(result.to_json())
        connections.append(entry)
    return {"plan": plan.path, "ok": all(r.ok for r in results), "connections": connections}


def _table(plan: MigrationPlan, results: list[ProbeResult], needs: dict[str, Needs]) -> Table:
    table = Table(title=f"connections of {plan.path}", title_justify="left")
    for column in (
        "connection",
        "dsn",
        "used as",
        "reachable",
        "problem",
        "version",
        "latency",
        "tls",
        "privileges",
    ):
        table.add_column(column, overflow="fold")
    for result in results:
        spec = plan.connection(result.name)
        problem = f"{result.cause}: {result.message}" if result.cause else ""
        privileges = Text()
        for index, (what, held) in enumerate(result.privileges):
            if index:
                privileges.append("\n")
            privileges.append("ok  " if held else "NO  ", style="green" if held else "bold red")
            privileges.append(what)
        table.add_row(
            Text(result.name),
            Text(spec.url),
            Text(", ".join(needs[result.name].uses) or "unused"),
            Text("yes", style="green") if result.reachable else Text("no", style="bold red"),
            Text(problem, style="red" if problem else ""),
            Text(result.server_version or ""),
            Text("" if result.latency_ms is None else f"{result.latency_ms:.1f} ms"),
            Text({True: "yes", False: "no", None: "-"}[result.tls]),
            privileges,
        )
    return table
