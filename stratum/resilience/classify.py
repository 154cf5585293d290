"""Which errors are worth retrying: decided by type, never by message.

Connectors translate their driver's exceptions into `stratum.errors` at the connector edge
(`raise ConnectionLost(...) from exc`), so this is the only rule the engine needs: a
`stratum.errors.Transient` (e.g. `ConnectionLost`) may go away when retried; anything else,
including a driver exception that escaped translation, is not retried.
"""

from __future__ import annotations

from stratum.errors import Transient


def is_transient(exc: BaseException) -> bool:
    """True when `exc` is a `Transient` error, or an exception group (what an anyio task group
    raises) made only of transient errors. Messages and `__cause__` are never looked at."""
    if isinstance(exc, Transient):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(is_transient(inner) for inner in exc.exceptions)
    return False
