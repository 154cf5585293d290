"""The `stratum` command line (Typer)."""

from stratum.cli.app import app, main

__all__ = ["app", "main"]
