"""The `stratum` command line.

Exit codes (also in the README):
    0  success
    1  the input has errors (diagnostics printed), or `fmt --check` found a file to reformat
    2  usage error (unknown option, missing file)
    3  internal error (a bug: run again with --debug for the traceback)
    4  migrate: an item failed or was not run (the summary says which and why)
    5  migrate: interrupted by SIGINT/SIGTERM after draining; run it again to resume
    6  migrate: another process is migrating the same plan
  130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

import smql
from smql.formatter import format_source
from stratum import __version__
from stratum.cli.engine import migrate, progress
from stratum.cli.testconn import check_connections
from stratum.cli.verify import verify
from stratum.errors import PlanError
from stratum.plan import compile_plan, diagnose

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

app = typer.Typer(
    name="stratum",
    help="Stratum: declarative, resumable data migrations written in SMQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Files = Annotated[
    list[Path],
    typer.Argument(help=".smql files", exists=True, dir_okay=False, readable=True),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stratum {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def main_options(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of internal errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = {"debug": debug}


def _err(text: str) -> None:
    typer.echo(text, err=True)


def _read(path: Path) -> smql.syntax.Program | None:
    """Parse a file, printing its syntax errors; None when it does not parse."""
    try:
        return smql.parse_file(path)
    except smql.SmqlError as exc:
        _err(str(exc))
        return None


@app.command()
def validate(files: Files) -> None:
    """Check .smql files without connecting: syntax, meaning, SQL. Reports every problem."""
    failed = False
    for path in files:
        program = _read(path)
        if program is None:
            failed = True
            typer.echo(f"{path}: syntax errors")
            continue
        diagnostics = diagnose(program, os.environ)
        if diagnostics:
            _err(smql.render_all(diagnostics, program.source))
        errors = sum(1 for d in diagnostics if d.is_error)
        warnings = len(diagnostics) - errors
        items = len(smql.items_of(program))
        if errors:
            failed = True
            typer.echo(f"{path}: {_count(errors, 'error')}, {_count(warnings, 'warning')}")
        else:
            typer.echo(f"{path}: ok, {_count(items, 'item')}, {_count(warnings, 'warning')}")
    raise typer.Exit(EXIT_INVALID if failed else EXIT_OK)


@app.command()
def plan(
    file: Annotated[
        Path, typer.Argument(help="the .smql file", exists=True, dir_okay=False, readable=True)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show the compiled plan: items in execution order, hashes, dependencies, options."""
    program = _read(file)
    if program is None:
        raise typer.Exit(EXIT_INVALID)
    try:
        compiled = compile_plan(program)
    except PlanError as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INVALID) from None
    if as_json:
        typer.echo(json.dumps(compiled.to_json(), indent=2, ensure_ascii=False))
    else:
        typer.echo(compiled.to_text(), nl=False)


@app.command()
def fmt(
    files: Annotated[
        list[str], typer.Argument(help=".smql files, or - for standard input to output")
    ],
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; exit 1 if a file would change.")
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="Change nothing; print what would change.")
    ] = False,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="Print the formatted text instead of rewriting.")
    ] = False,
) -> None:
    """Rewrite .smql files in canonical style, keeping every comment."""
    failed = changed = False
    for name in files:
        if name == "-":
            source, label = sys.stdin.read(), "<stdin>"
        else:
            path = Path(name)
            if not path.is_file():
                _err(f"error: no such file: {name}")
                raise typer.Exit(EXIT_USAGE)
            data = path.read_bytes()
            try:
                source, label = data.decode("utf-8-sig"), name
            except UnicodeDecodeError as exc:
                bad = data[exc.start : exc.end]
                _err(f"{name}: error: file is not valid UTF-8 (byte {exc.start}: {bad!r})")
                failed = True
                continue
        try:
            formatted = format_source(source, label)
        except smql.SmqlError as exc:
            _err(str(exc))
            failed = True
            continue
        if name == "-" or stdout:
            typer.echo(formatted, nl=False)
            continue
        if formatted == source:
            continue
        changed = True
        if diff:
            typer.echo(
                "".join(
                    difflib.unified_diff(
                        source.splitlines(keepends=True),
                        formatted.splitlines(keepends=True),
                        f"{label} (original)",
                        f"{label} (formatted)",
                    )
                ),
                nl=False,
            )
        if check:
            _err(f"would reformat {label}")
        elif not diff:
            Path(name).write_text(formatted, encoding="utf-8")
            _err(f"reformatted {label}")
    if failed or (check and changed):
        raise typer.Exit(EXIT_INVALID)


app.command()(migrate)
app.command()(progress)
app.command(name="test-conn")(check_connections)
app.command()(verify)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def main() -> None:
    """Console entry point: no traceback for an internal error unless --debug is given."""
    debug = "--debug" in sys.argv[1:]
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(EXIT_INTERNAL)
