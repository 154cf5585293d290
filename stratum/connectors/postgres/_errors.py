"""asyncpg's exceptions, and what each means for the engine. Imported only once asyncpg is.

Server errors are listed by SQLSTATE class (the first two characters), a specific condition
before its class: every direct subclass of `asyncpg.PostgresError` is an SQLSTATE class and
appears here (tests/integration/contract/test_error_maps.py fails on one that does not), so a
class that a new asyncpg adds is reviewed rather than silently lumped in.
"""

from __future__ import annotations

import asyncpg
from asyncpg import exceptions as pg
from asyncpg.exceptions import _base

from stratum.connectors.sql import ErrorTable, Fault

__all__ = ["ERRORS", "ROOTS"]

ROW, TRANSIENT, TERMINAL, CONFIG = Fault.ROW, Fault.TRANSIENT, Fault.TERMINAL, Fault.CONFIG

# (name in asyncpg.exceptions, fault): by name, because some conditions only exist in newer
# asyncpg versions (TransactionTimeoutError came with PostgreSQL 17).
_SERVER: tuple[tuple[str, Fault], ...] = (
    # 08: the connection is gone, refused or broke its protocol
    ("PostgresConnectionError", TRANSIENT),
    # 0A: a statement prepared before a DDL change (retried with a fresh one), else unsupported
    ("InvalidCachedStatementError", TRANSIENT),
    ("FeatureNotSupportedError", TERMINAL),
    # 21: ON CONFLICT DO UPDATE met the same key twice in one statement
    ("CardinalityViolationError", ROW),
    # 22: a value its column cannot take (bad text, out of range, NUL in text, too long)
    ("DataError", ROW),
    # 23: NOT NULL, unique, primary key, foreign key, check, exclusion
    ("IntegrityConstraintViolationError", ROW),
    # 25: the server ended an idle or overlong transaction; else a bug in how we use them
    ("IdleInTransactionSessionTimeoutError", TRANSIENT),
    ("TransactionTimeoutError", TRANSIENT),
    ("InvalidTransactionStateError", TERMINAL),
    # 27, 09, 44, P0: a trigger, a view's check option or PL/pgSQL refused the row
    ("TriggeredDataChangeViolationError", ROW),
    ("TriggeredActionError", ROW),
    ("WithCheckOptionViolationError", ROW),
    ("PLPGSQLError", ROW),
    # 28: bad user or password; 3D: no such database; 3F: no such schema
    ("InvalidAuthorizationSpecificationError", TERMINAL),
    ("InvalidCatalogNameError", TERMINAL),
    ("InvalidSchemaNameError", TERMINAL),
    # 40: serialization failure, deadlock: retry the transaction
    ("TransactionRollbackError", TRANSIENT),
    # 42: permission denied, no such table or column, bad SQL
    ("SyntaxOrAccessError", TERMINAL),
    # 53: too many connections or out of memory for now; disk full and limits are not
    ("TooManyConnectionsError", TRANSIENT),
    ("OutOfMemoryError", TRANSIENT),
    ("InsufficientResourcesError", TERMINAL),
    # 54: 54000 itself is a value or row too large (e.g. for an index); the rest are statements
    ("StatementTooComplexError", TERMINAL),
    ("TooManyColumnsError", TERMINAL),
    ("TooManyArgumentsError", TERMINAL),
    ("ProgramLimitExceededError", ROW),
    # 55: a lock that could not be taken now (lock_timeout, NOWAIT); else the object's state
    ("LockNotAvailableError", TRANSIENT),
    ("ObjectNotInPrerequisiteStateError", TERMINAL),
    # 57: shutdown, crash, "starting up", cancelled (statement_timeout), terminated backend
    ("DatabaseDroppedError", TERMINAL),
    ("OperatorInterventionError", TRANSIENT),
    # 58: I/O error on the server
    ("PostgresSystemError", TERMINAL),
    # 72: snapshot too old: retry
    ("SnapshotTooOldError", TRANSIENT),
    # the rest: the destination refuses the work
    ("SQLStatementNotYetCompleteError", TERMINAL),  # 03
    ("InvalidTransactionInitiationError", TERMINAL),  # 0B
    ("LocatorError", TERMINAL),  # 0F
    ("InvalidGrantorError", TERMINAL),  # 0L
    ("InvalidRoleSpecificationError", TERMINAL),  # 0P
    ("DiagnosticsError", TERMINAL),  # 0Z
    ("InvalidArgumentForXqueryError", TERMINAL),  # 10
    ("CaseNotFoundError", TERMINAL),  # 20
    ("InvalidCursorStateError", TERMINAL),  # 24
    ("InvalidSQLStatementNameError", TERMINAL),  # 26
    ("DependentPrivilegeDescriptorsStillExistError", TERMINAL),  # 2B
    ("InvalidTransactionTerminationError", TERMINAL),  # 2D
    ("SQLRoutineError", TERMINAL),  # 2F
    ("InvalidCursorNameError", TERMINAL),  # 34
    ("ExternalRoutineError", TERMINAL),  # 38
    ("ExternalRoutineInvocationError", TERMINAL),  # 39
    ("SavepointError", TERMINAL),  # 3B
    ("ConfigFileError", TERMINAL),  # F0
    ("FDWError", TERMINAL),  # HV
    ("InternalServerError", TERMINAL),  # XX
    ("FatalPostgresError", TERMINAL),  # an error the server sent with no known SQLSTATE
)

_CLIENT: ErrorTable = (
    (_base.ClientConfigurationError, CONFIG),  # a DSN or option asyncpg cannot use
    (getattr(_base, "DataError", _base.ClientConfigurationError), ROW),  # a bad argument value
    (_base.UnsupportedClientFeatureError, TERMINAL),
    (_base.UnsupportedServerFeatureError, TERMINAL),
    (_base.InterfaceError, TRANSIENT),  # the connection is closed, or was lost mid-call
    (_base.ProtocolError, TRANSIENT),  # the server said something unexpected: reconnect
    (_base.OutdatedSchemaCacheError, TRANSIENT),  # a type changed under a cached statement
    (_base.TargetServerAttributeNotMatched, TRANSIENT),  # e.g. a failover in progress
    # "cannot switch to state ...; another operation is in progress": the protocol lost its
    # footing, typically when the server ended the session mid-COPY. A new connection helps.
    (_base.InternalClientError, TRANSIENT),
)

_NETWORK: ErrorTable = (
    (TimeoutError, TRANSIENT),  # includes asyncio.TimeoutError
    (OSError, TRANSIENT),  # refused, reset, unreachable, DNS
)

ERRORS: ErrorTable = (
    *[(getattr(pg, name), fault) for name, fault in _SERVER if hasattr(pg, name)],
    (asyncpg.PostgresError, TERMINAL),
    *_CLIENT,
    *_NETWORK,
)

#: Anything else asyncpg raises is reported as the destination refusing the work.
ROOTS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, _base.InterfaceError)
