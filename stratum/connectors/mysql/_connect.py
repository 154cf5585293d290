"""Connections to MySQL and MariaDB, the same for both drivers.

URL: ``mysql://user:password@host:port/database?driver=aiomysql&connect_timeout=10``
(``mariadb://`` is the same). Every part is optional: host 127.0.0.1, port 3306, user root,
no password, no default database. Parts are percent-decoded. Query parameters:

``driver``
    ``asyncmy`` (the default: compiled, about ten times faster) or ``aiomysql`` (pure Python).
    The `driver` argument of `connect` wins over the URL's.
``connect_timeout``
    Seconds to wait for the server when connecting (default 30).
``password_file``
    Read the password from that file (its only content, one trailing newline removed); the
    file must be the owner's only (mode 0600 or stricter). Refused together with a password in
    the URL. The file is read each time a connection is made.
``ssl-mode`` (or ``ssl_mode``)
    As MySQL's client: ``DISABLED`` (the default when neither it nor ``ssl-ca`` is given: no
    TLS), ``REQUIRED`` (TLS or nothing, the certificate unchecked), ``VERIFY_CA`` (the
    certificate must chain to ``ssl-ca``, else to the system's trusted CAs) and
    ``VERIFY_IDENTITY`` (and name the host connected to). Case and ``-``/``_`` do not matter.
    A server that does not offer TLS is refused before anything but the TCP connection is made
    (the check runs between the server's greeting and the client's credentials): a `TlsError`,
    as is a certificate that does not verify. ``PREFERRED`` is refused: it would fall back to
    an unencrypted connection silently (and asyncmy cannot fall back at all).
``ssl-ca`` (or ``ssl_ca``)
    A file of CA certificates (PEM) for VERIFY_CA and VERIFY_IDENTITY; alone it means
    VERIFY_CA, as for MySQL's client. With DISABLED or REQUIRED, which verify nothing, it is
    refused rather than silently ignored.

Any other parameter is refused (ConfigError) rather than silently ignored. Errors never quote
the URL (see `stratum.connectors._credentials`).

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
import functools
import inspect
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import anyio
import anyio.lowlevel

from stratum.connectors._credentials import (
    PASSWORD_FILE,
    TlsError,
    masked,
    read_password_file,
    readable_file,
    secret_forms,
    split_url,
    tls_failure,
)
from stratum.connectors.mysql._errors import DriverErrors, translated
from stratum.errors import ConfigError

__all__ = [
    "DRIVERS",
    "SSL_MODES",
    "MySQLConnection",
    "MySQLStream",
    "MySQLUrl",
    "connect",
    "parse_url",
    "tls_context",
]

SCHEMES = ("mysql", "mariadb")
DRIVERS = ("asyncmy", "aiomysql")
SSL_MODES = ("DISABLED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
_TLS_REQUIRED = ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
_EXTRAS = {"asyncmy": "stratum[mysql]", "aiomysql": "stratum[aiomysql]"}
_DEFAULT_CONNECT_TIMEOUT = 30.0
_CLOSE_TIMEOUT = 5.0
_SESSION = "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'"
_CLIENT_SSL = 0x0800  # the CLIENT_SSL capability flag of the server's greeting
_WHAT = "the MySQL URL"


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
    password_file: str | None = None
    ssl_mode: str = "DISABLED"
    ssl_ca: str | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def read_password(self) -> str:
        """The password to send: the URL's, or the password file's."""
        if self.password_file is not None:
            return read_password_file(self.password_file)
        return self.password


def _option(params: dict[str, str], name: str) -> str | None:
    """`ssl-mode` or `ssl_mode` (one of them), taken out of `params`."""
    dashed, underscored = name, name.replace("-", "_")
    if dashed in params and underscored in params:
        raise ConfigError(f"{_WHAT} gives both {dashed} and {underscored}: give one")
    value = params.pop(dashed, None)
    return params.pop(underscored, value)


def parse_url(url: str, *, driver: str | None = None) -> MySQLUrl:
    """Split a mysql:// or mariadb:// URL; ConfigError (never quoting the URL, which may hold a
    password) when it cannot be used."""
    parts = split_url(url, _WHAT)
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            f"the MySQL source needs a mysql:// or mariadb:// URL, not {parts.scheme}://"
        )
    if "," in parts.hostspec:
        raise ConfigError(f"{_WHAT} names more than one host")
    host, port = _host_and_port(parts.hostspec)
    params = parts.params()
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
    password_file = params.pop(PASSWORD_FILE, None)
    if password_file is not None:
        if not password_file:
            raise ConfigError(f"{_WHAT}: {PASSWORD_FILE} names no file")
        if parts.password:
            raise ConfigError(
                f"{_WHAT} gives a password and a {PASSWORD_FILE}: give only one of them"
            )
    ssl_mode, ssl_ca = _tls_options(params)
    if params:
        raise ConfigError(
            f"unknown MySQL URL parameter(s) {sorted(params)}: the supported ones are driver, "
            f"connect_timeout, {PASSWORD_FILE}, ssl-mode and ssl-ca"
        )
    return MySQLUrl(
        host=host or "127.0.0.1",
        port=port,
        user=parts.user or "root",
        password=parts.password or "",
        database=unquote(parts.path.lstrip("/")) or None,
        driver=chosen,
        connect_timeout=timeout,
        password_file=password_file,
        ssl_mode=ssl_mode,
        ssl_ca=ssl_ca,
    )


def _host_and_port(hostspec: str) -> tuple[str, int]:
    """host[:port] or [v6-address][:port]; `split_url` has checked that a port is digits."""
    if hostspec.startswith("["):
        host, _, rest = hostspec[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = hostspec.partition(":")
    port = int(port_text) if port_text else 3306
    if not 0 < port < 65536:
        raise ConfigError(f"{_WHAT} has a port out of range")
    return unquote(host), port


def _tls_options(params: dict[str, str]) -> tuple[str, str | None]:
    """ssl-mode and ssl-ca, checked; taken out of `params`."""
    mode_text = _option(params, "ssl-mode")
    ssl_ca = _option(params, "ssl-ca")
    if mode_text is None:
        mode = "VERIFY_CA" if ssl_ca else "DISABLED"
    else:
        mode = mode_text.strip().upper().replace("-", "_")
        if mode == "PREFERRED":
            raise ConfigError(
                "ssl-mode=PREFERRED (TLS only when the server offers it) is not supported: it "
                "falls back to an unencrypted connection without a word; use ssl-mode=REQUIRED "
                "(or VERIFY_CA, VERIFY_IDENTITY), or DISABLED"
            )
        if mode not in SSL_MODES:
            raise ConfigError(f"ssl-mode={mode_text!r} is not one of {', '.join(SSL_MODES)}")
    if ssl_ca is not None:
        if not ssl_ca:
            raise ConfigError(f"{_WHAT}: ssl-ca names no file")
        if mode not in ("VERIFY_CA", "VERIFY_IDENTITY"):
            raise ConfigError(
                f"ssl-ca is used to verify the server's certificate, which ssl-mode={mode} does "
                "not do: use ssl-mode=VERIFY_CA or VERIFY_IDENTITY"
            )
        readable_file(ssl_ca, "ssl-ca")
    return mode, ssl_ca


def tls_context(url: MySQLUrl) -> ssl.SSLContext | None:
    """The TLS context `url`'s ssl-mode asks for; None for DISABLED."""
    if url.ssl_mode == "DISABLED":
        return None
    if url.ssl_mode == "REQUIRED":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        context = ssl.create_default_context(cafile=url.ssl_ca)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or "unreadable"
        raise ConfigError(f"ssl-ca: cannot load {url.ssl_ca!r} ({reason})") from None
    context.check_hostname = url.ssl_mode == "VERIFY_IDENTITY"
    context.verify_mode = ssl.CERT_REQUIRED
    return context


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

    async def fetchall(
        self, sql: str, args: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement on a buffered cursor; its rows (none for SET, COMMIT...). `args`
        fill %s (a sequence) or %(name)s (a mapping) placeholders."""
        cursor = await self._cursor()
        try:
            bound = args if args is None or isinstance(args, Mapping) else tuple(args)
            await cursor.execute(sql, bound)
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


@dataclass(frozen=True, slots=True)
class Driver:
    """What `connect` needs of a driver: its connect function, its connection class and the
    coroutine method that connects an instance (for the TLS check), its exception classes and
    its unbuffered cursor."""

    name: str
    connect: Callable[..., Any]
    connection_class: type
    open_method: str
    errors: DriverErrors
    stream_cls: Any


def _import_driver(name: str) -> Driver:
    try:
        if name == "asyncmy":
            import asyncmy  # noqa: PLC0415 (drivers are imported when a connection is made)
            import asyncmy.connection  # noqa: PLC0415
            import asyncmy.cursors  # noqa: PLC0415
            import asyncmy.errors  # noqa: PLC0415

            errors = DriverErrors(asyncmy.errors.MySQLError, asyncmy.errors.InterfaceError)
            return Driver(
                name,
                asyncmy.connect,
                asyncmy.connection.Connection,
                "connect",
                errors,
                asyncmy.cursors.SSCursor,
            )
        import aiomysql  # noqa: PLC0415
        import aiomysql.connection  # noqa: PLC0415
        import pymysql.err  # type: ignore[import-untyped]  # noqa: PLC0415 (PyMySQL's errors)

        errors = DriverErrors(pymysql.err.MySQLError, pymysql.err.InterfaceError)
        return Driver(
            name,
            aiomysql.connect,
            aiomysql.connection.Connection,
            "_connect",
            errors,
            aiomysql.SSCursor,
        )
    except ImportError as exc:
        raise ConfigError(
            f"the MySQL connector's {name} driver is not installed: pip install '{_EXTRAS[name]}'"
        ) from exc


@functools.cache
def _tls_checking(base: type) -> type:
    """`base` (a driver's connection class) refusing, between the server's greeting and the
    client's credentials, a server whose greeting does not offer TLS. Given a TLS context,
    aiomysql would otherwise go on without TLS, silently, and asyncmy would start TLS anyway
    and fail with an obscure handshake error."""

    class TlsChecking(base):  # type: ignore[misc]
        stratum_where = "?"
        stratum_mode = "REQUIRED"
        stratum_checked = False

        async def _request_authentication(self) -> None:
            capabilities = getattr(self, "server_capabilities", None)
            if not isinstance(capabilities, int):
                raise TlsError(
                    f"cannot tell whether the MySQL server at {self.stratum_where} offers TLS "
                    f"with this version of the driver (ssl-mode={self.stratum_mode})"
                )
            if not capabilities & _CLIENT_SSL:
                raise TlsError(
                    f"the MySQL server at {self.stratum_where} does not offer TLS, and the URL "
                    f"asks for ssl-mode={self.stratum_mode}; no credentials were sent"
                )
            self.stratum_checked = True
            await super()._request_authentication()

    TlsChecking.__name__ = TlsChecking.__qualname__ = f"TlsChecking{base.__name__}"
    return TlsChecking


async def _open(driver: Driver, url: MySQLUrl, options: dict[str, Any]) -> Any:
    """The driver's connection. When TLS is required, through `_tls_checking`, and refused
    unless the check ran (a driver that no longer calls it must not connect unchecked)."""
    if url.ssl_mode not in _TLS_REQUIRED:
        return await driver.connect(**options)
    raw = _tls_checking(driver.connection_class)(**options)
    raw.stratum_where, raw.stratum_mode = url.where, url.ssl_mode
    await getattr(raw, driver.open_method)()
    if not raw.stratum_checked:
        with contextlib.suppress(Exception):
            raw.close()
        raise TlsError(
            f"cannot make sure the connection to the MySQL server at {url.where} uses TLS with "
            f"this version of {driver.name} (ssl-mode={url.ssl_mode})"
        )
    return raw


async def connect(
    url: str, *, driver: str | None = None, connect_timeout: float | None = None
) -> MySQLConnection:
    """A session on the server at `url`, set up as the module docstring says; `connect_timeout`
    overrides the URL's."""
    parsed = parse_url(url, driver=driver)
    chosen = _import_driver(parsed.driver)
    timeout = connect_timeout if connect_timeout is not None else parsed.connect_timeout
    password = parsed.read_password()
    database_key = "database" if parsed.driver == "asyncmy" else "db"
    options: dict[str, Any] = {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.user,
        "password": password,
        database_key: parsed.database,
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": timeout,
    }
    context = tls_context(parsed)
    if context is not None:
        options["ssl"] = context
    where = f"connecting to MySQL at {parsed.where}"
    with masked(secret_forms(password)), translated(where, chosen.errors):
        try:
            with anyio.fail_after(timeout + _CLOSE_TIMEOUT):
                raw = await _open(chosen, parsed, options)
        except Exception as exc:
            failure = tls_failure(exc) if context is not None else None
            if failure is not None:
                # asyncio closes a failed handshake's socket in its next iteration: let it run
                await anyio.lowlevel.checkpoint()
                reason = getattr(failure, "verify_message", None) or getattr(
                    failure, "reason", None
                )
                raise TlsError(
                    f"TLS with the MySQL server at {parsed.where} failed: "
                    f"{reason or type(failure).__name__} (ssl-mode={parsed.ssl_mode})"
                ) from failure
            raise
        connection = MySQLConnection(raw, parsed, chosen.errors, chosen.stream_cls)
        try:
            await connection.execute(_SESSION)
        except BaseException:
            connection.abort()
            raise
    return connection
