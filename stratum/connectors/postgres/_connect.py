"""Connections to PostgreSQL: the URL, where the password comes from, and TLS.

URL: ``postgresql://user:password@host:port/database?sslmode=verify-full&sslrootcert=ca.pem``
(``postgres://`` is the same), read by asyncpg as libpq reads it, with these additions:

``password_file=/path``
    Read the password from that file (its only content, one trailing newline removed); the file
    must be the owner's only (mode 0600 or stricter). Refused together with a password in the
    URL. The file is read each time a connection is made.

The password is taken out of the URL and given to asyncpg on its own, so no message asyncpg
builds from the URL can quote it. Without a password in the URL (or a password file), asyncpg
looks where libpq does: ``PGPASSWORD``, then the ``.pgpass``-format file named by ``passfile=``
or ``PGPASSFILE``, else ``~/.pgpass`` (ignored, with a warning, unless it is the owner's only).

TLS (``sslmode``, as libpq): ``disable``, ``allow``, ``prefer`` (asyncpg's default: TLS when
the server offers it, unverified), ``require`` (TLS or nothing, unverified), ``verify-ca`` (the
server's certificate must chain to ``sslrootcert``, else ``~/.postgresql/root.crt``) and
``verify-full`` (and name the host connected to). ``sslcert``/``sslkey`` give a client
certificate. An unknown ``sslmode`` or an unreadable ``sslrootcert``/``sslcert``/``sslkey``/
``sslcrl`` file is a ConfigError before anything is sent; a server that refuses TLS when the URL
requires it, or a certificate that does not verify, is a `TlsError` (never retried). Other query
parameters are asyncpg's (libpq's names), or server settings.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
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
from stratum.errors import ConfigError

__all__ = ["SSLMODES", "PostgresUrl", "connect", "create_pool", "parse_url"]

SCHEMES = ("postgresql", "postgres")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_TLS_REQUIRED = ("require", "verify-ca", "verify-full")
_FILE_OPTIONS = ("sslrootcert", "sslcert", "sslkey", "sslcrl")
_WHAT = "the PostgreSQL URL"
_DEFAULT_PORT = 5432
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # the SSLRequest message of the protocol
_TLS_PROBE_TIMEOUT = 5.0

Translate = Callable[[str], AbstractContextManager[None]]


@dataclass(frozen=True, slots=True)
class PostgresUrl:
    """A parsed PostgreSQL URL. `dsn` is the URL without its password (and without Stratum's
    own options), for asyncpg; neither it nor the password appears in repr()."""

    dsn: str = field(repr=False)
    password: str | None = field(repr=False)
    password_file: str | None
    sslmode: str | None
    hosts: tuple[tuple[str, int], ...]  # the TCP hosts named, for messages

    @property
    def where(self) -> str:
        if not self.hosts:
            return "its default address"
        return ", ".join(f"{host}:{port}" for host, port in self.hosts)

    def read_password(self) -> str | None:
        """The password to send: the URL's, the password file's, or None (asyncpg then looks
        in PGPASSWORD and the .pgpass file)."""
        if self.password_file is not None:
            return read_password_file(self.password_file)
        return self.password


def parse_url(url: str) -> PostgresUrl:
    """Split a postgresql:// URL (a secret) as the module docstring says; ConfigError, never
    quoting the URL, when it cannot be used."""
    parts = split_url(url, _WHAT)
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"{_WHAT} must start with postgresql:// or postgres://")
    params = parts.params()
    password = parts.password
    if "password" in params:  # libpq's ?password=: taken out of the DSN like the user info's
        password = params["password"]
    password_file = params.get(PASSWORD_FILE)
    if password_file is not None:
        if not password_file:
            raise ConfigError(f"{_WHAT}: {PASSWORD_FILE} names no file")
        if password:
            raise ConfigError(
                f"{_WHAT} gives a password and a {PASSWORD_FILE}: give only one of them"
            )
    sslmode = params.get("sslmode")
    if sslmode is not None and sslmode not in SSLMODES:
        raise ConfigError(f"sslmode={sslmode!r} is not one of {', '.join(SSLMODES)}")
    for option in _FILE_OPTIONS:
        if params.get(option):
            readable_file(params[option], option)
    return PostgresUrl(
        dsn=parts.rebuilt(drop=(PASSWORD_FILE, "password")),
        password=password or None,
        password_file=password_file,
        sslmode=sslmode,
        hosts=_hosts(parts.hostspec),
    )


def _hosts(hostspec: str) -> tuple[tuple[str, int], ...]:
    found = []
    for spec in hostspec.split(","):
        if not spec or spec.startswith("/") or spec.startswith("%2F"):
            continue  # a Unix socket
        if spec.startswith("["):
            host, _, rest = spec[1:].partition("]")
            port_text = rest.removeprefix(":")
        else:
            host, _, port_text = spec.partition(":")
        port = int(port_text) if port_text else int(os.environ.get("PGPORT") or _DEFAULT_PORT)
        found.append((unquote(host), port))
    return tuple(found)


async def connect(url: str, *, translate: Translate | None = None, **options: Any) -> Any:
    """An asyncpg connection to `url`, made as the module docstring says. `options` go to
    `asyncpg.connect`; `translate(what)` (a connector's error translation) wraps the attempt,
    else driver exceptions pass through (TLS trouble is a TlsError either way)."""
    import asyncpg  # noqa: PLC0415 (imported when a connection is made)

    return await _attempt(
        url, translate, lambda dsn, password: asyncpg.connect(dsn, password=password, **options)
    )


async def create_pool(url: str, *, translate: Translate | None = None, **options: Any) -> Any:
    """An asyncpg pool on `url` (its first connections made before this returns), made as
    `connect` makes a connection; `options` go to `asyncpg.create_pool`."""
    import asyncpg  # noqa: PLC0415 (imported when a connection is made)

    return await _attempt(
        url, translate, lambda dsn, password: asyncpg.create_pool(dsn, password=password, **options)
    )


async def _attempt(url: str, translate: Translate | None, make: Callable[[str, Any], Any]) -> Any:
    parsed = parse_url(url)
    password = parsed.read_password()
    what = f"connecting to PostgreSQL at {parsed.where}"
    translation = translate(what) if translate is not None else nullcontext()
    with masked(secret_forms(password, parsed.password)), translation:
        try:
            return await make(parsed.dsn, password)
        except Exception as exc:
            await _explain_tls(parsed, exc)  # first: a certificate error is a ValueError too
            if isinstance(exc, ValueError):  # a DSN asyncpg cannot read; it holds no password
                raise ConfigError(f"{_WHAT} cannot be used: {exc}") from None
            raise


async def _explain_tls(parsed: PostgresUrl, exc: Exception) -> None:
    """Raise TlsError when `exc` is TLS trouble: a certificate that does not verify, or (a
    bare ConnectionError, as asyncpg reports a refused upgrade) a server that answers the
    protocol's SSLRequest with 'N' when the URL requires TLS."""
    failure = tls_failure(exc)
    if failure is not None:
        # asyncio closes the socket of a failed handshake in its next iteration: let it run,
        # or a caller whose loop ends now leaves the socket to the garbage collector
        await anyio.lowlevel.checkpoint()
        reason = getattr(failure, "verify_message", None) or getattr(failure, "reason", None)
        raise TlsError(
            f"TLS with the PostgreSQL server at {parsed.where} failed: "
            f"{reason or type(failure).__name__} (sslmode={parsed.sslmode or 'prefer'})"
        ) from failure
    if type(exc) is not ConnectionError or parsed.sslmode not in _TLS_REQUIRED:
        return
    for host, port in parsed.hosts:
        if await _offers_tls(host, port) is False:
            raise TlsError(
                f"the PostgreSQL server at {host}:{port} does not offer TLS, and the URL asks "
                f"for sslmode={parsed.sslmode}"
            ) from None


async def _offers_tls(host: str, port: int) -> bool | None:
    """Whether the server answers an SSLRequest with 'S'; None when it cannot be asked."""
    try:
        with anyio.fail_after(_TLS_PROBE_TIMEOUT):
            async with await anyio.connect_tcp(host, port) as stream:
                await stream.send(_SSL_REQUEST)
                answer = await stream.receive(1)
    except Exception:
        return None
    return {b"S": True, b"N": False}.get(answer[:1])
