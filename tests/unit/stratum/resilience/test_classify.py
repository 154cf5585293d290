"""Transient or not: decided by type, never by message or cause."""

from __future__ import annotations

import pytest

from stratum.errors import (
    CircuitOpen,
    ConfigError,
    ConnectionLost,
    DestinationError,
    RowError,
    SourceError,
    StratumError,
    Terminal,
    Transient,
)
from stratum.resilience import is_transient


class _DriverTimeout(Transient):
    """A connector's own transient subclass."""


@pytest.mark.parametrize(
    "exc",
    [ConnectionLost("reset by peer"), Transient("deadlock"), _DriverTimeout("timed out")],
    ids=["ConnectionLost", "Transient", "subclass"],
)
def test_transient_types_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        RowError("violates not-null"),
        DestinationError("permission denied"),
        SourceError("bad credentials"),
        ConfigError("no driver"),
        Terminal("x"),
        StratumError("x"),
        CircuitOpen("open"),
        # driver and OS errors must be translated at the connector edge: never retried raw
        ConnectionResetError("connection reset"),
        TimeoutError("timeout"),
        OSError("server restarting"),
        KeyboardInterrupt(),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_everything_else_is_not(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_the_message_is_never_read() -> None:
    assert not is_transient(RowError("connection reset; deadlock detected; please retry"))


def test_the_cause_is_never_read() -> None:
    terminal = DestinationError("refused")
    terminal.__cause__ = ConnectionLost("reset")
    assert not is_transient(terminal)
    transient = ConnectionLost("reset")
    transient.__cause__ = RowError("bad value")
    assert is_transient(transient)


def test_a_group_is_transient_only_when_every_error_in_it_is() -> None:
    assert is_transient(ExceptionGroup("g", [ConnectionLost("a"), ConnectionLost("b")]))
    nested = ExceptionGroup("g", [ConnectionLost("a"), ExceptionGroup("h", [Transient("b")])])
    assert is_transient(nested)
    assert not is_transient(ExceptionGroup("g", [ConnectionLost("a"), RowError("b")]))
    assert not is_transient(BaseExceptionGroup("g", [ConnectionLost("a"), KeyboardInterrupt()]))
