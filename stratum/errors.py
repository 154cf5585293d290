"""Stratum's exception tree. Retry and the circuit breaker decide by type, never by message.

    StratumError                    root of everything the engine raises on purpose
    ├── Terminal                    retrying cannot help (bad plan, bad credentials, type error)
    │   └── PlanError               the .smql file does not compile to a plan
    └── Transient                   may succeed if retried (connection reset, timeout, deadlock)

Errors of the language itself (`smql.SmqlError`) are separate: `smql` never imports `stratum`.
A PlanError wraps them with the same diagnostics.
"""

from __future__ import annotations

from collections.abc import Sequence

from smql import Diagnostic, render_all


class StratumError(Exception):
    """Root of the errors Stratum raises on purpose."""


class Terminal(StratumError):
    """An error that retrying cannot fix."""


class Transient(StratumError):
    """An error that may go away when the operation is retried."""


class PlanError(Terminal):
    """The SMQL program has errors, so no plan can be built. All of them are in `diagnostics`."""

    def __init__(self, diagnostics: Sequence[Diagnostic], source: str | None = None) -> None:
        self.diagnostics = tuple(diagnostics)
        self.source = source
        super().__init__(render_all(self.diagnostics, source))
