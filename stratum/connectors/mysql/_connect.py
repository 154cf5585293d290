"""Connections to MySQL and MariaDB, the same for both drivers.

URL: ``mysql://user:password@host:port/database?driver=aiomysql&connect_timeout=10``
(``mariadb://`` is the same). Every part is optional: host 127.0.0.1, port 3306, user root,
no password, no default database. Parts are percent-decoded. Query parameters:

``driver``
    ``asyncmy`` (the default: compiled, about ten times faster) or ``aiomysql`` (pure Python).
    The `driver` argument of `connect` wins over the URL's.
``connect_timeout``
    Seconds to wait for the server when connecting (default 30).

Any other parameter is refused (ConfigError) rather than silently ignored.

Every session is set up for reading faithfully:

* charset utf8mb4 (every Unicode character, emoji included; latin1 and other columns are
  converted by the server);
* ``time_zone = '+00:00'``: TIMESTAMP values arrive in UTC;
* ``sql_mode = 'NO_ENGINE_SUBSTITUTION'``: no NO_ZERO_DATE / NO_ZERO_IN_DATE / strict mode (zero
  dates can be read and compared), and none of the modes that change how SQL text or values
  are read (ANSI_QUOTES, NO_BACKSLASH_ESCAPES, PAD_CHAR_TO_FULL_LENGTH, ORACLE...);
* autocommit on: reads open their own transaction explicitly.

Drivers are imported when a connection is made; a missing one raises ConfigError naming the
extra that installs it. Streaming reads use each driver's unbuffered cursor (SSCursor), so a
result is never held whole in memory.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import anyio

from stratum.connectors.mysql._errors import DriverErrors, translated
from stratum.errors import ConfigError

__all__ = ["DRIVERS", "MySQLConnection", "MySQLStream", "MySQLUrl", "connect", "parse_url"]

SCHEMES = ("mysql", "mariadb")
DRIVERS = ("asyncmy", "aiomysql")
_EXTRAS = {"asyncmy": "stratum[mysql]", "aiomysql": "stratum[aiomysql]"}
_DEFAULT_CONNECT_TIMEOUT = 30.0
_CLOSE_TIMEOUT = 5.0
_SESSION = "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'"


@dataclass(frozen=True, slots=True)
class MySQLUrl:
    """A parsed connection URL. The password never appears in repr()."""

    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = field(default="", repr=False)
    database: str | None = None
    driver: str = "asyncmy"
    connect_timeout: float = _DEFAULT_CONNECT_TIMEOUT

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def parse_url(url: str, *, driver: str | None = None) -> MySQLUrl:
    """Split a mysql:// or mariadb:// URL; ConfigError (never quoting the URL, which may hold a
    password) when it cannot be used."""
    try:
        parts = urlsplit(url)
        port = parts.port or 3306
    except ValueError as exc:
        raise ConfigError(f"the MySQL URL cannot be used: {exc}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise ConfigError(
            f"the MySQL source needs a mysql:// or mariadb:// URL, not {parts.scheme}://"
        )
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    chosen = (driver or params.pop("driver", None) or "asyncmy").lower()
    params.pop("driver", None)
    if chosen not in DRIVERS:
        raise ConfigError(f"unknown MySQL driver {chosen!r}: use one of {', '.join(DRIVERS)}")
    timeout = _DEFAULT_CONNECT_TIMEOUT
    if "connect_timeout" in params:
        text = params.pop("connect_timeout")
        try:
            timeout = float(text)
        except ValueError:
            raise ConfigError(f"connect_timeout={text!r} is not a number of seconds") from None
        if timeout <= 0:
            raise ConfigError(f"connect_timeout={text!r} must be positive")
    if params:
        raise ConfigError(
            f"unknown MySQL URL parameter(s) {sorted(params)}: "
            "the supported ones are driver and connect_timeout"
        )
    database = unquote(parts.path.lstrip("/")) or None
    return MySQLUrl(
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username) if parts.username else "root",
        password=unquote(parts.password) if parts.password else "",
        database=database,
        driver=chosen,
        connect_timeout=timeout,
    )


class MySQLStream:
    """An unbuffered result: rows come from the socket as they are fetched."""

    def __init__(self, connection: MySQLConnection, cursor: Any) -> None:
        self._connection = connection
        self._cursor = cursor
        self.done = False

    async def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        if self.done:
            return []
        with self._connection.translated("reading rows"):
            rows = await self._cursor.fetchmany(size)
        if not rows:
            self.done = True
        return list(rows)

    async def close(self) -> None:
        """Read off what is left of the result, so the session can run the next query."""
        if not self.done:
            with self._connection.translated("reading rows"):
                await self._cursor.close()
            self.done = True


class MySQLConnection:
    """One session on one driver; the source's code is the same for both drivers."""

    def __init__(self, raw: Any, url: MySQLUrl, errors: DriverErrors, stream_cls: Any) -> None:
        self._raw = raw
        self.url = url
        self.errors = errors
        self._stream_cls = stream_cls
        self._stream: MySQLStream | None = None

    @property
    def driver(self) -> str:
        return self.url.driver

    def translated(self, what: str) -> contextlib.AbstractContextManager[None]:
        return translated(what, self.errors)

    async def execute(self, sql: str, args: Sequence[Any] | None = None) -> None:
        await self.fetchall(sql, args)

    async def fetchall(self, sql: str, args: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement on a buffered cursor; its rows (none for SET, COMMIT...)."""
        cursor = await self._cursor()
        try:
            await cursor.execute(sql, tuple(args) if args is not None else None)
            return list(await cursor.fetchall() or ())
        finally:
            await cursor.close()

    async def stream(self, sql: str, args: Sequence[Any] | None = None) -> MySQLStream:
        """Run a SELECT on an unbuffered cursor (SSCursor). Until the stream is read to the
        end, the connection can run nothing else."""
        cursor = await self._cursor(self._stream_cls)
        await cursor.execute(sql, tuple(args) if args is not None else None)
        self._stream = MySQLStream(self, cursor)
        return self._stream

    async def _cursor(self, *cls: Any) -> Any:
        cursor = self._raw.cursor(*cls)
        if inspect.isawaitable(cursor):  # aiomysql: a context manager that is awaited
            cursor = await cursor
        return cursor

    async def close(self) -> None:
        """Say goodbye to the server, unless a result is still being streamed: reading it to
        its end could take long, so the socket is dropped instead."""
        if self._stream is not None and not self._stream.done:
            self.abort()
            return
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(_CLOSE_TIMEOUT) as scope,
            contextlib.suppress(Exception),
        ):
            await self._raw.ensure_closed()
        if scope.cancelled_caught:
            self.abort()

    def abort(self) -> None:
        """Drop the socket at once; the server rolls the session's transaction back."""
        with contextlib.suppress(Exception):
            self._raw.close()


def _import_driver(name: str) -> tuple[Any, DriverErrors, Any]:
    """The driver's connect function, its exception classes and its unbuffered cursor."""
    try:
        if name == "asyncmy":
            import asyncmy  # noqa: PLC0415 (drivers are imported when a connection is made)
            import asyncmy.cursors  # noqa: PLC0415
            import asyncmy.errors  # noqa: PLC0415

            errors = DriverErrors(asyncmy.errors.MySQLError, asyncmy.errors.InterfaceError)
            return asyncmy.connect, errors, asyncmy.cursors.SSCursor
        import aiomysql  # noqa: PLC0415
        import pymysql.err  # type: ignore[import-untyped]  # noqa: PLC0415 (PyMySQL's errors)

        errors = DriverErrors(pymysql.err.MySQLError, pymysql.err.InterfaceError)
        return aiomysql.connect, errors, aiomysql.SSCursor
    except ImportError as exc:
        raise ConfigError(
            f"the MySQL connector's {name} driver is not installed: pip install '{_EXTRAS[name]}'"
        ) from exc


async def connect(url: str, *, driver: str | None = None) -> MySQLConnection:
    """A session on the server at `url`, set up as the module docstring says."""
    parsed = parse_url(url, driver=driver)
    connect_fn, errors, stream_cls = _import_driver(parsed.driver)
    database_key = "database" if parsed.driver == "asyncmy" else "db"
    options: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.user,
        "password": parsed.password,
        database_key: parsed.database,
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": parsed.connect_timeout,
    }
    with translated(f"connecting to MySQL at {parsed.where}", errors):
        with anyio.fail_after(parsed.connect_timeout + _CLOSE_TIMEOUT):
            raw = await connect_fn(**options)
        connection = MySQLConnection(raw, parsed, errors, stream_cls)
        try:
            await connection.execute(_SESSION)
        except BaseException:
            connection.abort()
            raise
    return connection
