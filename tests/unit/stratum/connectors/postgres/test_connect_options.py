"""PostgreSQL URLs: the password goes to asyncpg on its own (never in the DSN), password_file,
sslmode and the certificate files checked before connecting, and a server that answers TLS with
'N' named as such. (Against real servers: tests/integration/security/.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from stratum.connectors._credentials import TlsError
from stratum.connectors.postgres import PostgresDestination, PostgresTableSource
from stratum.connectors.postgres._connect import _explain_tls, connect, parse_url
from stratum.errors import ConfigError
from stratum.plan.model import TableRef

SECRET = "S3cr3t-pg-unit"


def test_the_password_is_taken_out_of_the_dsn() -> None:
    url = parse_url(f"postgresql://etl:{SECRET}%2Fx@db:5433,db2/analytics?sslmode=require")
    assert url.password == f"{SECRET}/x"
    assert url.dsn == "postgresql://etl@db:5433,db2/analytics?sslmode=require"
    assert url.hosts == (("db", 5433), ("db2", 5432))
    assert url.where == "db:5433, db2:5432"
    assert SECRET not in repr(url)
    query = parse_url(f"postgres://etl@db/analytics?password={SECRET}&application_name=x")
    assert (query.password, query.dsn) == (SECRET, "postgres://etl@db/analytics?application_name=x")
    bare = parse_url("postgresql://etl@db/analytics")  # asyncpg: PGPASSWORD, then .pgpass
    assert bare.password is None
    assert bare.read_password() is None
    assert parse_url("postgresql:///analytics?host=/run/postgresql").hosts == ()


def test_password_file(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    url = parse_url(f"postgresql://etl@db/x?password_file={path}&sslmode=disable")
    assert url.dsn == "postgresql://etl@db/x?sslmode=disable"
    assert url.password_file == str(path)
    assert url.read_password() == SECRET
    with pytest.raises(ConfigError, match="gives a password and a password_file"):
        parse_url(f"postgresql://etl:inline@db/x?password_file={path}")
    with pytest.raises(ConfigError, match="gives a password and a password_file"):
        parse_url(f"postgresql://etl@db/x?password=inline&password_file={path}")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sslmode=on", "sslmode='on' is not one of disable, allow, prefer, require, verify-ca"),
        ("sslrootcert={tmp}/none.pem", "sslrootcert: cannot read '{tmp}/none.pem' (No such file"),
        ("sslcert={tmp}", "sslcert: cannot read '{tmp}' (Is a directory)"),
        ("password_file=", "password_file names no file"),
    ],
)
def test_options_refused(tmp_path: Path, query: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_url("postgresql://etl@db/x?" + query.format(tmp=tmp_path))
    assert message.format(tmp=tmp_path) in str(error.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SECRET}/x@h:5432/db",
        f"postgresql://u:{SECRET}#x@h/db",
        f"postgresql://u:{SECRET}?x@h/db",
        f"postgresql://u@h:{SECRET}/db",
        f"mysql://u:{SECRET}@h/db",  # the scheme: named, the rest not quoted
    ],
)
def test_a_url_that_cannot_be_used_is_never_quoted(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_url(url)
    assert SECRET not in str(error.value)


def test_connect_gives_asyncpg_the_password_apart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    async def fake_connect(dsn: str, **options: Any) -> str:
        calls.append((dsn, options))
        return "connection"

    monkeypatch.setattr(asyncpg, "connect", fake_connect)
    path = tmp_path / "pw"
    path.write_text("from-the-file\n")
    path.chmod(0o600)

    async def go() -> None:
        await connect(f"postgresql://etl:{SECRET}@db/x", timeout=3)
        await connect(f"postgresql://etl@db/x?password_file={path}")
        await connect("postgresql://etl@db/x")

    anyio.run(go)
    assert calls == [
        ("postgresql://etl@db/x", {"password": SECRET, "timeout": 3}),
        ("postgresql://etl@db/x", {"password": "from-the-file"}),
        ("postgresql://etl@db/x", {"password": None}),
    ]


def test_connectors_never_show_the_url() -> None:
    url = f"postgresql://etl:{SECRET}@db/x"
    assert SECRET not in repr(PostgresDestination(url))
    assert SECRET not in repr(PostgresTableSource(url, TableRef("c", "s", "t")))


async def _answering(answer: bytes) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8)  # the SSLRequest
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("answer", "refused"), [(b"N", True), (b"S", False)])
def test_a_refused_tls_upgrade_is_named(answer: bytes, refused: bool) -> None:
    async def go() -> None:
        async for port in _answering(answer):
            url = parse_url(f"postgresql://etl:{SECRET}@127.0.0.1:{port}/x?sslmode=require")
            upgrade = ConnectionError("rejected SSL upgrade")
            if refused:
                with pytest.raises(TlsError) as error:
                    await _explain_tls(url, upgrade)
                assert str(error.value) == (
                    f"the PostgreSQL server at 127.0.0.1:{port} does not offer TLS, and the URL "
                    "asks for sslmode=require"
                )
            else:
                await _explain_tls(url, upgrade)  # not TLS trouble: the caller re-raises
            # a reset is not a refused upgrade; nor is anything when TLS is only preferred
            await _explain_tls(url, ConnectionResetError())
            await _explain_tls(parse_url(f"postgresql://e@127.0.0.1:{port}/x"), upgrade)

    asyncio.run(go())
