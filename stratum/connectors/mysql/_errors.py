"""MySQL/MariaDB driver exceptions, and what each means for the engine.

Both drivers (asyncmy, aiomysql through PyMySQL) raise the PEP 249 tree with the server's error
number as `args[0]`, so the source classifies by that number, then by class; never by message:

* connection-level trouble is Transient (`ConnectionLost`): the server error numbers in
  `TRANSIENT_ERRNOS` (too many connections, shutdown, lost/aborted connection, network read and
  write errors and timeouts, lock wait timeout, deadlock, killed connection), every client
  error (2000-2999: cannot connect, server has gone away, lost connection during query),
  `InterfaceError` (the connection is closed) and the OS/timeout errors underneath;
* every other driver error is Terminal: the source cannot be read (`SourceError`): bad
  credentials (1045), no such database (1049), no such table (1146), no privilege (1142)...

This module imports no driver: the caller passes its driver's root classes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stratum.errors import ConnectionLost, SourceError, StratumError

__all__ = ["TRANSIENT_ERRNOS", "DriverErrors", "describe", "errno_of", "translated"]

#: Server error numbers after which a retry, on a new connection, may succeed.
TRANSIENT_ERRNOS = frozenset(
    {
        1040,  # ER_CON_COUNT_ERROR: too many connections
        1053,  # ER_SERVER_SHUTDOWN
        1077,  # ER_NORMAL_SHUTDOWN
        1152,  # ER_ABORTING_CONNECTION
        1154,  # ER_NET_READ_ERROR_FROM_PIPE
        1156,  # ER_NET_PACKETS_OUT_OF_ORDER
        1158,  # ER_NET_READ_ERROR
        1159,  # ER_NET_READ_INTERRUPTED (net_read_timeout)
        1160,  # ER_NET_ERROR_ON_WRITE
        1161,  # ER_NET_WRITE_INTERRUPTED (net_write_timeout)
        1184,  # ER_NEW_ABORTING_CONNECTION
        1205,  # ER_LOCK_WAIT_TIMEOUT
        1213,  # ER_LOCK_DEADLOCK
        1317,  # ER_QUERY_INTERRUPTED (KILL QUERY, shutdown)
        1927,  # ER_CONNECTION_KILLED (MariaDB)
        4031,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8: idle session closed)
    }
)
_CLIENT_ERRNOS = range(2000, 3000)  # CR_*: raised by the client library about the connection


class DriverErrors:
    """A driver's exception classes: its root (MySQLError) and its InterfaceError."""

    __slots__ = ("interface", "root")

    def __init__(self, root: type[BaseException], interface: type[BaseException]) -> None:
        self.root = root
        self.interface = interface


def errno_of(exc: BaseException) -> int | None:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def describe(exc: BaseException) -> str:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return f"{args[1]} (error {args[0]})"
    return str(exc).strip() or type(exc).__name__


def is_transient(exc: BaseException, errors: DriverErrors | None) -> bool:
    if isinstance(exc, (OSError, TimeoutError, asyncio.IncompleteReadError, EOFError)):
        return True
    if errors is None or not isinstance(exc, errors.root):
        return False
    if isinstance(exc, errors.interface):
        return True
    number = errno_of(exc)
    return number is not None and (number in TRANSIENT_ERRNOS or number in _CLIENT_ERRNOS)


@contextmanager
def translated(what: str, errors: DriverErrors | None) -> Iterator[None]:
    """Translate driver exceptions raised inside into Stratum's tree (`raise ... from`).

    `what` starts the message ("reading mydb.orders"). Exceptions that are neither the
    driver's nor the network's pass through unchanged."""
    try:
        yield
    except StratumError:
        raise
    except Exception as exc:
        if is_transient(exc, errors):
            raise ConnectionLost(f"{what}: {describe(exc)}") from exc
        if errors is not None and isinstance(exc, errors.root):
            raise SourceError(f"{what}: {describe(exc)}") from exc
        raise
