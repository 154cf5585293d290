"""asyncpg's exceptions, translated at the PostgreSQL destination's edge (httpx's
map_httpcore_exceptions test): every class asyncpg defines is accounted for, the ones that steer
retries and rejects map where they must, and real failures arrive as Stratum's errors."""

from __future__ import annotations

import inspect
import secrets
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from asyncpg import exceptions as pg
from asyncpg.exceptions import _base

from smql import Mode
from stratum.connectors.base import Checkpoint, Column, Schema
from stratum.connectors.postgres import PostgresDestination
from stratum.connectors.postgres._errors import _SERVER, ERRORS
from stratum.connectors.sql import classify, translated
from stratum.errors import (
    ConfigError,
    ConnectionLost,
    DestinationError,
    RowError,
    StratumError,
)
from stratum.plan.model import TableRef
from tests.support.databases import ThrowawayDatabase


def _asyncpg_exception_classes() -> list[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for module in (pg, _base, asyncpg):
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, Exception) and value.__module__.startswith("asyncpg"):
                found.add(value)
    warnings = (_base.InterfaceWarning, _base.PostgresLogMessage)
    return sorted(
        (cls for cls in found if not issubclass(cls, warnings)),
        key=lambda cls: (cls.__module__, cls.__qualname__),
    )


def test_every_sqlstate_class_is_mapped_by_name() -> None:
    """Each direct subclass of PostgresError is one SQLSTATE class; each must be reviewed and
    listed, so that a class a new asyncpg adds fails here instead of being lumped in."""
    listed = {name for name, _ in _SERVER}
    families = sorted(cls.__name__ for cls in asyncpg.PostgresError.__subclasses__())
    assert [name for name in families if name not in listed] == []


def test_every_asyncpg_exception_is_classified() -> None:
    classes = _asyncpg_exception_classes()
    assert len(classes) > 250  # asyncpg's whole tree was found
    assert [cls for cls in classes if classify(_instance(cls), ERRORS) is None] == []


IMPORTANT: list[tuple[type[BaseException], type[StratumError]]] = [
    # the rows
    (pg.UniqueViolationError, RowError),
    (pg.NotNullViolationError, RowError),
    (pg.ForeignKeyViolationError, RowError),
    (pg.CheckViolationError, RowError),
    (pg.IntegrityConstraintViolationError, RowError),
    (pg.DataError, RowError),
    (pg.InvalidTextRepresentationError, RowError),
    (pg.NumericValueOutOfRangeError, RowError),
    (pg.StringDataRightTruncationError, RowError),
    (pg.CharacterNotInRepertoireError, RowError),
    (pg.InvalidDatetimeFormatError, RowError),
    (pg.DatetimeFieldOverflowError, RowError),
    (pg.UntranslatableCharacterError, RowError),
    (pg.ProgramLimitExceededError, RowError),
    (pg.RaiseError, RowError),
    (_base.DataError, RowError),
    (TypeError, RowError),  # asyncpg's binary COPY refuses a value of the wrong type
    (OverflowError, RowError),
    # the connection: retried
    (pg.ConnectionDoesNotExistError, ConnectionLost),
    (pg.ConnectionFailureError, ConnectionLost),
    (pg.ClientCannotConnectError, ConnectionLost),
    (pg.PostgresConnectionError, ConnectionLost),
    (_base.InterfaceError, ConnectionLost),
    (pg.CannotConnectNowError, ConnectionLost),
    (pg.AdminShutdownError, ConnectionLost),
    (pg.CrashShutdownError, ConnectionLost),
    (pg.QueryCanceledError, ConnectionLost),
    (pg.SerializationError, ConnectionLost),
    (pg.DeadlockDetectedError, ConnectionLost),
    (pg.LockNotAvailableError, ConnectionLost),
    (pg.TooManyConnectionsError, ConnectionLost),
    (pg.IdleInTransactionSessionTimeoutError, ConnectionLost),
    (pg.InvalidCachedStatementError, ConnectionLost),
    (_base.OutdatedSchemaCacheError, ConnectionLost),
    (_base.ProtocolError, ConnectionLost),
    (_base.InternalClientError, ConnectionLost),
    (ConnectionResetError, ConnectionLost),
    (ConnectionRefusedError, ConnectionLost),
    (OSError, ConnectionLost),
    (TimeoutError, ConnectionLost),
    # the destination refuses: terminal
    (pg.InvalidPasswordError, DestinationError),
    (pg.InvalidAuthorizationSpecificationError, DestinationError),
    (pg.InvalidCatalogNameError, DestinationError),
    (pg.InsufficientPrivilegeError, DestinationError),
    (pg.UndefinedTableError, DestinationError),
    (pg.UndefinedColumnError, DestinationError),
    (pg.PostgresSyntaxError, DestinationError),
    (pg.DiskFullError, DestinationError),
    (pg.DatabaseDroppedError, DestinationError),
    (pg.ReadOnlySQLTransactionError, DestinationError),
    (pg.FeatureNotSupportedError, DestinationError),
    (pg.TooManyColumnsError, DestinationError),
    (pg.InternalServerError, DestinationError),
    (pg.UnknownPostgresError, DestinationError),
    (_base.ClientConfigurationError, ConfigError),
]


@pytest.mark.parametrize(
    ("driver", "expected"), IMPORTANT, ids=[cls.__name__ for cls, _ in IMPORTANT]
)
def test_important_exceptions_map_where_they_must(
    driver: type[BaseException], expected: type[StratumError]
) -> None:
    original = _instance(driver)
    with pytest.raises(expected) as caught, translated("writing", ERRORS, rows=True):
        raise original
    assert caught.value.__cause__ is original
    assert str(caught.value).startswith("writing: ")


def test_row_faults_outside_a_write_are_the_destination_refusing() -> None:
    with pytest.raises(DestinationError), translated("preparing", ERRORS):
        raise _instance(pg.UniqueViolationError)
    with pytest.raises(TypeError), translated("preparing", ERRORS):
        raise TypeError("a bug, not a row")


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), translated("writing", ERRORS, rows=True):
        raise KeyError("not the driver's")
    with pytest.raises(RowError, match="kept"), translated("writing", ERRORS, rows=True):
        raise RowError("kept as it is")


def test_the_server_detail_is_kept_in_the_message() -> None:
    error = pg.UniqueViolationError("duplicate key value violates unique constraint")
    error.detail = "Key (id)=(1) already exists."
    with pytest.raises(RowError, match=r"already exists"), translated("w", ERRORS, rows=True):
        raise error


def _instance(cls: type[BaseException]) -> BaseException:
    return cls("message")


# --- drivers are imported lazily --------------------------------------------------------------


def test_importing_the_connectors_imports_no_driver() -> None:
    code = (
        "import sys, stratum.connectors.postgres, stratum.connectors.duckdb; "
        "print([m for m in ('asyncpg', 'duckdb') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.asyncio
async def test_a_missing_asyncpg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # `import asyncpg` now fails
    destination = PostgresDestination("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ConfigError, match=r"stratum\[postgres\]"):
        await destination.open()


# --- real failures ----------------------------------------------------------------------------

SECRET = "hunter2-secret"


def _with(url: str, *, user: str | None = None, database: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    userinfo = f"{user or parts.username}:{SECRET}"
    path = f"/{database}" if database else parts.path
    return urlunsplit((parts.scheme, f"{userinfo}@{netloc}", path, "", ""))


def _chain(error: BaseException) -> str:
    texts = []
    current: BaseException | None = error
    while current is not None:
        texts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_an_unknown_role_is_terminal(postgres_database: ThrowawayDatabase) -> None:
    destination = PostgresDestination(_with(postgres_database.url, user="stratum_no_such_role"))
    with pytest.raises(DestinationError) as caught:
        await destination.open()
    assert SECRET not in _chain(caught.value)
    assert SECRET not in repr(destination)


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_a_missing_database_is_terminal(postgres_database: ThrowawayDatabase) -> None:
    url = _with(postgres_database.url, database="stratum_no_such_database")
    with pytest.raises(DestinationError, match="does not exist") as caught:
        await PostgresDestination(url).open()
    assert SECRET not in _chain(caught.value)


@pytest.mark.asyncio
async def test_a_refused_connection_is_transient() -> None:
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:1/postgres"
    with pytest.raises(ConnectionLost) as caught:
        await PostgresDestination(url).open()
    assert SECRET not in _chain(caught.value)


@pytest.mark.asyncio
async def test_a_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        await PostgresDestination(f"postgresql://u:{SECRET}@host:notaport/db").open()


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_a_terminated_backend_is_transient_and_the_next_call_reconnects(
    postgres_database: ThrowawayDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = Schema((Column("id", "integer", False),), ("id",))
    target = TableRef("target", None, "terminated")
    destination = PostgresDestination(postgres_database.url)
    await destination.open()
    try:
        checkpoint = await destination.prepare(
            target, schema, Mode.APPEND, Checkpoint("terminated", "h", "p", "r")
        )
        # between calls: the next call works, or fails as transient (when the client has not
        # yet seen the connection close) and the one after it works on a new connection
        admin = await asyncpg.connect(postgres_database.url)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'stratum' AND datname = current_database()"
            )
        finally:
            await admin.close()
        try:
            await destination.write(target, schema, [(1,)], checkpoint, Mode.APPEND, ())
        except ConnectionLost:
            await destination.write(target, schema, [(1,)], checkpoint, Mode.APPEND, ())

        # in the middle of a write, after the rows: ConnectionLost, and nothing committed
        async def die(conn: asyncpg.Connection, _: Checkpoint) -> None:
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

        with monkeypatch.context() as patch:
            patch.setattr(destination, "_upsert_checkpoint", die)
            with pytest.raises(ConnectionLost):
                await destination.write(target, schema, [(2,)], checkpoint, Mode.APPEND, ())
        await destination.write(target, schema, [(3,)], checkpoint, Mode.APPEND, ())
        assert await destination.row_count(target) == 2
    finally:
        await destination.close()


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_a_role_that_may_only_load_an_existing_table(
    postgres_database: ThrowawayDatabase,
) -> None:
    """No CREATE on the database or its schemas: the bookkeeping table and the target exist,
    and the role may write them. Nothing asks for a privilege it does not need; a CREATE it
    would need is refused as terminal."""
    role = f"stratum_loader_{secrets.token_hex(4)}"
    schema = Schema((Column("id", "integer", False),), ("id",))
    target = TableRef("target", None, "preexisting")
    owner = PostgresDestination(postgres_database.url)
    await owner.open()  # creates stratum.checkpoints
    await owner.close()
    admin = await asyncpg.connect(postgres_database.url)
    try:
        await admin.execute(
            f"CREATE ROLE {role} LOGIN; "
            "CREATE TABLE public.preexisting (id integer PRIMARY KEY); "
            f"REVOKE CREATE ON SCHEMA public FROM PUBLIC; "
            f"REVOKE CREATE ON DATABASE {postgres_database.name} FROM PUBLIC; "
            f"GRANT USAGE ON SCHEMA public, stratum TO {role}; "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON public.preexisting, stratum.checkpoints "
            f"TO {role}"
        )
        url = _with(postgres_database.url, user=role).replace(f":{SECRET}", "")
        destination = PostgresDestination(url)
        await destination.open()
        try:
            checkpoint = Checkpoint("loader", "h", "p", "r")
            prepared = await destination.prepare(target, schema, Mode.APPEND, checkpoint)
            assert prepared.steps == ("create",)
            await destination.write(target, schema, [(1,)], prepared, Mode.UPSERT, ("id",))
            assert await destination.row_count(target) == 1
            with pytest.raises(DestinationError, match="permission denied"):
                await destination.prepare(
                    TableRef("target", None, "new_table"), schema, Mode.APPEND, checkpoint
                )
        finally:
            await destination.close()
    finally:
        await admin.execute(
            f"DROP TABLE public.preexisting; "
            f"REVOKE ALL ON stratum.checkpoints FROM {role}; "
            f"REVOKE ALL ON SCHEMA public, stratum FROM {role}; DROP ROLE {role}"
        )
        await admin.close()
