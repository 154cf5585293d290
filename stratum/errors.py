"""Stratum's exception tree. Retry and the circuit breaker decide by type, never by message.

    StratumError                    root of everything the engine raises on purpose
    ├── Terminal                    retrying cannot help
    │   ├── PlanError               the .smql file does not compile to a plan
    │   ├── ConfigError             a connection or option cannot be used (bad URL, no driver)
    │   ├── ResumeRefused           the state on record does not match the plan being run
    │   ├── StateLocked             another `stratum migrate` of the same plan is running
    │   ├── StateStoreError         the state store is unreadable, corrupt or of another version
    │   ├── SourceError             the source cannot be read (missing file, bad credentials)
    │   ├── DestinationError        the destination refuses the work (permissions, DDL)
    │   └── RowError                rows break a constraint or hold a value a column cannot take
    └── Transient                   may succeed if retried
        └── ConnectionLost          reset, refused, timed out, server restarting, deadlock
    CircuitOpen                     too many consecutive transient failures: the item pauses

Errors of the language itself (`smql.SmqlError`) are separate: `smql` never imports `stratum`.
A PlanError wraps them with the same diagnostics. Driver exceptions are translated into this tree
at the connector edge (`raise ... from exc`).
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


class ConfigError(Terminal):
    """A connection or an option cannot be used as given."""


class ResumeRefused(Terminal):
    """What is on record (checkpoint, state store) does not belong to the plan being run."""

    def __init__(self, item: str, reason: str) -> None:
        self.item = item
        self.reason = reason
        super().__init__(
            f"item '{item}': cannot resume: {reason}; run with --restart --item {item} to start "
            "it over"
        )


class StateLocked(Terminal):
    """Another process is running this plan."""


class StateStoreError(Terminal):
    """The state store cannot be used (unreadable, corrupt, another layout version)."""


class SourceError(Terminal):
    """The source cannot be read."""


class DestinationError(Terminal):
    """The destination refuses the work."""


class RowError(Terminal):
    """Some rows break a constraint or hold a value a column cannot take. The engine isolates
    the offending rows and rejects them; the other rows of the batch still load."""


class ConnectionLost(Transient):
    """The connection failed in a way that a retry may fix."""


class CircuitOpen(StratumError):
    """The circuit breaker is open after repeated transient failures: the item pauses."""
