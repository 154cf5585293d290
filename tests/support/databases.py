"""Throwaway databases on the real PostgreSQL and MariaDB servers used by the tests.

Which servers are used, and as whom, comes from two environment variables:

``STRATUM_TEST_PG_URL``
    Default ``postgresql://postgres@127.0.0.1:5432/postgres``. The path names the
    maintenance database that ``CREATE DATABASE`` / ``DROP DATABASE`` are run from.
``STRATUM_TEST_MYSQL_URL``
    Default ``mysql://root@127.0.0.1:3306/`` (root, empty password). A path, if any,
    is ignored: MariaDB needs no maintenance database.

A password may be given in the usual ``user:password@host`` form. The role must be
allowed to create and drop databases.

Every database made here is named by :func:`unique_database_name` (``stratum_t_`` +
a sanitised module name + 8 random hex digits), so concurrent runs never collide, and
a name that was left behind by a killed run is easy to recognise and drop by hand.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

import asyncmy
import asyncpg

__all__ = [
    "DEFAULT_MYSQL_URL",
    "DEFAULT_PG_URL",
    "MAX_DATABASE_NAME_LENGTH",
    "DatabaseServer",
    "ThrowawayDatabase",
    "create_mariadb_database",
    "create_postgres_database",
    "drop_mariadb_database",
    "drop_postgres_database",
    "mariadb_database_exists",
    "mariadb_server",
    "postgres_database_exists",
    "postgres_server",
    "server_reachable",
    "unique_database_name",
    "unreachable_reason",
]

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/"
PG_URL_ENV = "STRATUM_TEST_PG_URL"
MYSQL_URL_ENV = "STRATUM_TEST_MYSQL_URL"

#: PostgreSQL truncates identifiers to 63 bytes; MariaDB allows 64 characters.
MAX_DATABASE_NAME_LENGTH = 63
NAME_PREFIX = "stratum_t_"
_RANDOM_HEX_DIGITS = 8
_VALID_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_CONNECT_TIMEOUT_SECONDS = 10.0

Dialect = Literal["postgresql", "mysql"]


@dataclass(frozen=True)
class DatabaseServer:
    """Where a test database server listens, and the role the tests use on it."""

    dialect: Dialect
    host: str
    port: int
    user: str
    password: str
    #: The maintenance database to connect to for CREATE/DROP DATABASE (PostgreSQL only).
    maintenance_database: str | None

    @classmethod
    def from_url(cls, url: str) -> DatabaseServer:
        """Parse ``postgresql://`` / ``postgres://`` or ``mysql://`` / ``mariadb://`` URLs."""
        parts = urlsplit(url)
        dialect: Dialect
        if parts.scheme in ("postgresql", "postgres"):
            dialect, default_port, default_user = "postgresql", 5432, "postgres"
        elif parts.scheme in ("mysql", "mariadb"):
            dialect, default_port, default_user = "mysql", 3306, "root"
        else:
            raise ValueError(f"unsupported database URL scheme {parts.scheme!r} in {url!r}")
        database = unquote(parts.path.lstrip("/")) or None
        if dialect == "postgresql" and database is None:
            database = "postgres"
        return cls(
            dialect=dialect,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or default_port,
            user=unquote(parts.username) if parts.username else default_user,
            password=unquote(parts.password) if parts.password else "",
            maintenance_database=database if dialect == "postgresql" else None,
        )

    @property
    def label(self) -> str:
        """Human-readable name for messages, e.g. ``PostgreSQL at 127.0.0.1:5432``."""
        kind = "PostgreSQL" if self.dialect == "postgresql" else "MariaDB"
        return f"{kind} at {self.host}:{self.port}"

    def url_for(self, database: str) -> str:
        """A connection URL for ``database`` on this server, as this server's role."""
        credentials = quote(self.user, safe="")
        if self.password:
            credentials += ":" + quote(self.password, safe="")
        return f"{self.dialect}://{credentials}@{self.host}:{self.port}/{database}"


@dataclass(frozen=True)
class ThrowawayDatabase:
    """A database created for one test module and dropped after it."""

    name: str
    url: str
    server: DatabaseServer


def postgres_server() -> DatabaseServer:
    """The PostgreSQL server from ``STRATUM_TEST_PG_URL`` (or the default)."""
    return DatabaseServer.from_url(os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL)


def mariadb_server() -> DatabaseServer:
    """The MariaDB server from ``STRATUM_TEST_MYSQL_URL`` (or the default)."""
    return DatabaseServer.from_url(os.environ.get(MYSQL_URL_ENV) or DEFAULT_MYSQL_URL)


def unique_database_name(module_name: str) -> str:
    """A fresh, valid database name for a test module.

    ``tests.integration.postgres.test_copy`` -> ``stratum_t_test_copy_1f2e3d4c``. Only
    the last dotted component is used, lower-cased, with every run of characters other
    than ``[a-z0-9]`` turned into one ``_``, and cut so the whole name fits in
    :data:`MAX_DATABASE_NAME_LENGTH` characters.
    """
    last = module_name.rsplit(".", 1)[-1].lower()
    stem = re.sub(r"[^a-z0-9]+", "_", last).strip("_") or "module"
    suffix = "_" + secrets.token_hex(_RANDOM_HEX_DIGITS // 2)
    room = MAX_DATABASE_NAME_LENGTH - len(NAME_PREFIX) - len(suffix)
    name = NAME_PREFIX + stem[:room].rstrip("_") + suffix
    _check_name(name)
    return name


def _check_name(name: str) -> None:
    # Names are interpolated into DDL (identifiers cannot be bound as parameters),
    # so only the safe alphabet produced by unique_database_name is accepted.
    if _VALID_NAME.fullmatch(name) is None:
        raise ValueError(f"refusing unsafe test database name {name!r}")


def unreachable_reason(server: DatabaseServer, timeout: float = 2.0) -> str | None:
    """``None`` if a TCP connection to ``server`` opens within ``timeout`` seconds.

    Otherwise a sentence saying which server could not be reached and why, fit for a
    skip or failure message.
    """
    try:
        with socket.create_connection((server.host, server.port), timeout=timeout):
            return None
    except OSError as exc:
        env = PG_URL_ENV if server.dialect == "postgresql" else MYSQL_URL_ENV
        return f"{server.label} is not reachable ({exc}); set {env} to point the tests elsewhere"


def server_reachable(server: DatabaseServer, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to ``server`` opens within ``timeout`` seconds."""
    return unreachable_reason(server, timeout) is None


# --- PostgreSQL -----------------------------------------------------------------------


async def _postgres_maintenance_connection(server: DatabaseServer) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password or None,
        database=server.maintenance_database or "postgres",
        timeout=_CONNECT_TIMEOUT_SECONDS,
    )


async def create_postgres_database(name: str, server: DatabaseServer | None = None) -> None:
    """``CREATE DATABASE name`` on the PostgreSQL test server."""
    _check_name(name)
    conn = await _postgres_maintenance_connection(server or postgres_server())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_postgres_database(name: str, server: DatabaseServer | None = None) -> None:
    """``DROP DATABASE IF EXISTS name WITH (FORCE)``: open sessions are terminated."""
    _check_name(name)
    conn = await _postgres_maintenance_connection(server or postgres_server())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def postgres_database_exists(name: str, server: DatabaseServer | None = None) -> bool:
    """Whether ``pg_database`` lists ``name``."""
    conn = await _postgres_maintenance_connection(server or postgres_server())
    try:
        found = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    return found is not None


# --- MariaDB --------------------------------------------------------------------------


async def mariadb_run(
    server: DatabaseServer,
    statements: Sequence[tuple[str, Sequence[object] | None]],
    database: str | None = None,
) -> list[tuple[object, ...]]:
    """Run ``statements`` (sql, args) in one autocommit session; return the last one's rows."""
    conn = await asyncmy.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        database=database,
        connect_timeout=_CONNECT_TIMEOUT_SECONDS,
        autocommit=True,
    )
    rows: list[tuple[object, ...]] = []
    try:
        async with conn.cursor() as cursor:
            for sql, args in statements:
                await cursor.execute(sql, args or None)
                rows = [tuple(row) for row in await cursor.fetchall() or ()]
    finally:
        await conn.ensure_closed()
    return rows


async def _mariadb_execute(
    server: DatabaseServer, sql: str, *args: object
) -> list[tuple[object, ...]]:
    return await mariadb_run(server, [(sql, args)])


async def create_mariadb_database(name: str, server: DatabaseServer | None = None) -> None:
    """``CREATE DATABASE name`` (utf8mb4) on the MariaDB test server."""
    _check_name(name)
    await _mariadb_execute(
        server or mariadb_server(),
        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    )


async def drop_mariadb_database(name: str, server: DatabaseServer | None = None) -> None:
    """``DROP DATABASE IF EXISTS name`` on the MariaDB test server."""
    _check_name(name)
    await _mariadb_execute(server or mariadb_server(), f"DROP DATABASE IF EXISTS `{name}`")


async def mariadb_database_exists(name: str, server: DatabaseServer | None = None) -> bool:
    """Whether ``information_schema.SCHEMATA`` lists ``name``."""
    rows = await _mariadb_execute(
        server or mariadb_server(),
        "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
        name,
    )
    return bool(rows)
