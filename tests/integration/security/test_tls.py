"""TLS options of both connectors, against private TLS servers and the shared non-TLS ones.

PostgreSQL: `sslmode=require|verify-ca|verify-full` with `sslrootcert=`; MySQL/MariaDB:
`ssl-mode=REQUIRED|VERIFY_CA|VERIFY_IDENTITY` with `ssl-ca=`. Each mode connects with TLS in
use (asked of the server), a certificate that does not verify is a TlsError (a ConfigError,
never retried), and a server without TLS is refused when the URL requires it, MySQL's before
any credential is sent. The migration and `stratum test-conn` go through the same code.
(The private servers are described in conftest.py; their certificate names `localhost` only.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

import stratum
from stratum.cli.app import app
from stratum.connectors._credentials import TlsError
from stratum.connectors.mysql._connect import connect as my_connect
from stratum.connectors.postgres._connect import connect as pg_connect
from stratum.errors import ConfigError
from tests.support.databases import DatabaseServer

Server = Any  # conftest.PrivateServer
PASSWORD = "Tls-s3cret-pw"


@pytest.fixture(scope="module")
def pg(private_postgres: Server) -> Server:
    private_postgres.admin(
        "DROP DATABASE IF EXISTS tlsdb",
        "DROP ROLE IF EXISTS tls_user",
        f"CREATE ROLE tls_user LOGIN PASSWORD '{PASSWORD}'",
        "CREATE DATABASE tlsdb OWNER tls_user",
    )
    private_postgres.admin(
        "CREATE TABLE src (id int PRIMARY KEY, v text)",
        "INSERT INTO src SELECT g, 'row ' || g FROM generate_series(1, 5) g",
        "ALTER TABLE src OWNER TO tls_user",
        database="tlsdb",
    )
    return private_postgres


@pytest.fixture(scope="module")
def my(private_mariadb: Server) -> Server:
    private_mariadb.admin(
        "DROP DATABASE IF EXISTS tlsdb",
        "CREATE DATABASE tlsdb",
        "DROP USER IF EXISTS 'tls_user'@'%'",
        f"CREATE USER 'tls_user'@'%' IDENTIFIED BY '{PASSWORD}'",
        "GRANT ALL ON tlsdb.* TO 'tls_user'@'%'",
    )
    return private_mariadb


def pg_url(server: Server, query: str, host: str = "127.0.0.1") -> str:
    return server.url("tls_user", PASSWORD, "tlsdb", host=host) + "?" + query


def my_url(server: Server, query: str, host: str = "127.0.0.1") -> str:
    return server.url("tls_user", PASSWORD, "tlsdb", host=host) + "?" + query


async def pg_uses_tls(url: str) -> bool:
    try:
        conn = await pg_connect(url, timeout=10)
        try:
            return bool(
                await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
        finally:
            await conn.close()
    finally:
        await settle()


async def my_cipher(url: str) -> str:
    try:
        conn = await my_connect(url)
        try:
            rows = await conn.fetchall("SHOW STATUS LIKE 'Ssl_cipher'")
        finally:
            await conn.close()
    finally:
        await settle()
    return str(rows[0][1]) if rows else ""


async def run(plan: Any, state: Path) -> Any:
    try:
        return await stratum.run_plan(plan, state_dir=state)
    finally:
        await settle()


async def settle() -> None:
    """Let the event loop run a little before `anyio.run` closes it: asyncio closes the socket
    of a TLS connection that failed its handshake, or was shut down, in a later callback, and a
    loop closed first leaves it open (a ResourceWarning, an error in this suite, at some later
    garbage collection). A long-running migration's loop goes on and closes it."""
    await anyio.sleep(0.05)


# --- PostgreSQL ------------------------------------------------------------------------------


def test_postgres_modes_use_tls_and_verify_the_certificate(pg: Server) -> None:
    ca, other = pg.certificates.ca, pg.certificates.other_ca
    assert anyio.run(pg_uses_tls, pg_url(pg, "sslmode=require"))
    assert anyio.run(pg_uses_tls, pg_url(pg, f"sslmode=verify-ca&sslrootcert={ca}"))
    assert anyio.run(pg_uses_tls, pg_url(pg, f"sslmode=verify-full&sslrootcert={ca}", "localhost"))
    assert not anyio.run(pg_uses_tls, pg_url(pg, "sslmode=disable"))

    with pytest.raises(TlsError, match=r"127\.0\.0\.1.*sslmode=verify-full") as wrong_name:
        anyio.run(pg_uses_tls, pg_url(pg, f"sslmode=verify-full&sslrootcert={ca}"))
    assert "127.0.0.1" in str(wrong_name.value)  # the certificate names localhost only
    with pytest.raises(TlsError, match="certificate"):
        anyio.run(pg_uses_tls, pg_url(pg, f"sslmode=verify-ca&sslrootcert={other}"))
    for error in (wrong_name.value,):
        assert PASSWORD not in str(error)


def test_postgres_tls_options_are_checked_before_connecting(pg: Server, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sslmode='required' is not one of"):
        anyio.run(pg_uses_tls, pg_url(pg, "sslmode=required"))
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(ConfigError, match=f"sslrootcert: cannot read '{missing}'"):
        anyio.run(pg_uses_tls, pg_url(pg, f"sslmode=verify-ca&sslrootcert={missing}"))


def test_postgres_require_against_a_server_without_tls(postgres_server: DatabaseServer) -> None:
    url = f"postgresql://postgres:{PASSWORD}@{postgres_server.host}:{postgres_server.port}/postgres"
    started = time.monotonic()
    with pytest.raises(TlsError, match="does not offer TLS, and the URL asks for sslmode=require"):
        anyio.run(pg_uses_tls, url + "?sslmode=require")
    assert time.monotonic() - started < 10  # refused, not retried
    assert not anyio.run(pg_uses_tls, url + "?sslmode=prefer")  # prefer falls back


# --- MySQL / MariaDB -------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["asyncmy", "aiomysql"])
def test_mysql_modes_use_tls_and_verify_the_certificate(my: Server, driver: str) -> None:
    ca, other = my.certificates.ca, my.certificates.other_ca
    d = f"driver={driver}&"
    assert anyio.run(my_cipher, my_url(my, d + "ssl-mode=REQUIRED"))
    with pytest.raises(ConfigError, match=r"ssl-mode=PREFERRED .* is not supported"):
        anyio.run(my_cipher, my_url(my, d + "ssl_mode=preferred"))
    assert anyio.run(my_cipher, my_url(my, d + f"ssl-mode=VERIFY_CA&ssl-ca={ca}"))
    assert anyio.run(my_cipher, my_url(my, d + f"ssl-ca={ca}"))  # alone: VERIFY_CA
    assert anyio.run(
        my_cipher, my_url(my, d + f"ssl-mode=verify-identity&ssl_ca={ca}", "localhost")
    )
    assert anyio.run(my_cipher, my_url(my, d.rstrip("&"))) == ""  # no TLS unless asked

    with pytest.raises(TlsError, match=r"127\.0\.0\.1.*ssl-mode=VERIFY_IDENTITY"):
        anyio.run(my_cipher, my_url(my, d + f"ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"))
    with pytest.raises(TlsError, match="certificate"):
        anyio.run(my_cipher, my_url(my, d + f"ssl-mode=VERIFY_CA&ssl-ca={other}"))


@pytest.mark.parametrize("driver", ["asyncmy", "aiomysql"])
def test_mysql_required_against_a_server_without_tls(
    mariadb_server: DatabaseServer, driver: str
) -> None:
    url = f"mysql://root:{PASSWORD}@{mariadb_server.host}:{mariadb_server.port}/?driver={driver}"
    started = time.monotonic()
    with pytest.raises(TlsError) as refused:
        anyio.run(my_cipher, url + "&ssl-mode=REQUIRED")
    assert str(refused.value) == (
        f"the MySQL server at {mariadb_server.host}:{mariadb_server.port} does not offer TLS, "
        "and the URL asks for ssl-mode=REQUIRED; no credentials were sent"
    )
    assert time.monotonic() - started < 10
    assert anyio.run(my_cipher, url.replace(f":{PASSWORD}", "") + "&ssl-mode=DISABLED") == ""


# --- through the engine and test-conn --------------------------------------------------------


def test_a_migration_and_test_conn_over_verified_tls(
    pg: Server, my: Server, tmp_path: Path
) -> None:
    ca = pg.certificates.ca
    plan = tmp_path / "tls.smql"
    source = pg_url(pg, f"sslmode=verify-full&sslrootcert={ca}", "localhost")
    target = my_url(my, f"ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}", "localhost")
    plan.write_text(
        f"CONNECTION src = '{source}';\nCONNECTION dst = '{target}';\n"
        "MIGRATE src.public.src INTO dst.tlsdb.copied;\n",
        encoding="utf-8",
    )
    loaded = stratum.load_plan(plan)
    summary = anyio.run(run, loaded, tmp_path / "state")
    assert summary.exit_code == 0, [r.message for r in summary.results]
    assert [r.totals.rows_written for r in summary.results] == [5]

    result = CliRunner().invoke(app, ["test-conn", str(plan), "--json"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    found = {c["name"]: c for c in json.loads(result.output)["connections"]}
    assert found["src"]["tls"] is True
    assert found["dst"]["tls"] is True


def test_a_certificate_that_does_not_verify_fails_the_item_at_once(
    pg: Server, tmp_path: Path
) -> None:
    plan = tmp_path / "untrusted.smql"
    other = pg.certificates.other_ca
    plan.write_text(
        f"CONNECTION dst = '{pg_url(pg, f'sslmode=verify-ca&sslrootcert={other}')}';\n"
        f"MIGRATE FILE 'rows.csv' (HEADER) INTO dst.public.untrusted;\n",
        encoding="utf-8",
    )
    (tmp_path / "rows.csv").write_text("id\n1\n", encoding="utf-8")
    loaded = stratum.load_plan(plan)
    started = time.monotonic()
    summary = anyio.run(run, loaded, tmp_path / "state")
    assert time.monotonic() - started < 10  # a TLS failure is not retried
    (result,) = summary.results
    assert result.outcome.value == "failed"
    assert "certificate" in (result.message or "")

    out = CliRunner().invoke(app, ["test-conn", str(plan), "--json"], env={"COLUMNS": "300"})
    (entry,) = json.loads(out.output)["connections"]
    assert entry["cause"] == "tls"


def test_test_conn_reports_tls_refused_by_a_server_without_it(
    mariadb_server: DatabaseServer, postgres_server: DatabaseServer, tmp_path: Path
) -> None:
    plan = tmp_path / "plain.smql"
    my_where = f"{mariadb_server.host}:{mariadb_server.port}"
    pg_where = f"{postgres_server.host}:{postgres_server.port}"
    plan.write_text(
        f"CONNECTION my = 'mysql://root@{my_where}/?ssl-mode=REQUIRED';\n"
        f"CONNECTION pg = 'postgresql://postgres@{pg_where}/postgres?sslmode=require';\n",
        encoding="utf-8",
    )
    out = CliRunner().invoke(app, ["test-conn", str(plan), "--json"], env={"COLUMNS": "300"})
    found = {c["name"]: c for c in json.loads(out.output)["connections"]}
    assert found["my"]["cause"] == "tls"
    assert "does not offer TLS" in found["my"]["message"]
    assert found["pg"]["cause"] == "tls"
