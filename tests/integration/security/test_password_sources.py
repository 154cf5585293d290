"""Where a password may come from besides `${VAR}` (test_secrets.py): a password file
(`password_file=/path`, both databases) and, for PostgreSQL, libpq's `.pgpass` (`PGPASSFILE`).

PostgreSQL's cases run on the private cluster of conftest.py, whose logins need their password
(the shared server lets anyone in, so it could not tell a right password from none); MariaDB's
on the shared server, which checks passwords.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from typer.testing import CliRunner

import stratum
from stratum.cli.app import app
from stratum.connectors.mysql._connect import connect as my_connect
from stratum.connectors.postgres import PostgresDestination
from stratum.connectors.postgres._connect import connect as pg_connect
from stratum.errors import ConfigError, DestinationError, SourceError
from tests.support.databases import ThrowawayDatabase, mariadb_run

Server = Any  # conftest.PrivateServer
# characters a URL would need encoded, and a quote: in a file none of them needs anything
PASSWORD = "Pw-f1le:/#?@'%x"
USER = "stratum_pwfile"


def secret_file(directory: Path, content: str, mode: int = 0o600, name: str = "pw") -> Path:
    path = directory / name
    path.write_text(content, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def pg(private_postgres: Server) -> Server:
    escaped = PASSWORD.replace("'", "''")
    private_postgres.admin(
        "DROP DATABASE IF EXISTS pwdb",
        f"DROP ROLE IF EXISTS {USER}",
        f"CREATE ROLE {USER} LOGIN PASSWORD '{escaped}'",
        f"CREATE DATABASE pwdb OWNER {USER}",
    )
    return private_postgres


def pg_url(server: Server, query: str = "") -> str:
    return f"postgresql://{USER}@{server.host}:{server.port}/pwdb" + (f"?{query}" if query else "")


async def pg_user(url: str) -> str:
    try:
        conn = await pg_connect(url, timeout=10)
        try:
            return str(await conn.fetchval("SELECT current_user"))
        finally:
            await conn.close()
    finally:
        await anyio.sleep(0.05)  # see test_tls.settle: the private server speaks TLS


def test_postgres_password_file(pg: Server, tmp_path: Path) -> None:
    good = secret_file(tmp_path, PASSWORD + "\n")  # one trailing newline is not the password's
    assert anyio.run(pg_user, pg_url(pg, f"password_file={good}")) == USER

    # end to end: a load into the database, and test-conn, with the password from the file
    (tmp_path / "rows.csv").write_text("id\n1\n2\n", encoding="utf-8")
    plan = tmp_path / "load.smql"
    plan.write_text(
        f"CONNECTION pg = '{pg_url(pg, f'password_file={good}')}';\n"
        "MIGRATE FILE 'rows.csv' (HEADER) INTO pg.public.loaded;\n",
        encoding="utf-8",
    )
    loaded = stratum.load_plan(plan)
    summary = anyio.run(lambda: stratum.run_plan(loaded, state_dir=tmp_path / "state"))
    assert summary.exit_code == 0, [r.message for r in summary.results]
    result = CliRunner().invoke(app, ["test-conn", str(plan), "--json"], env={"COLUMNS": "300"})
    assert json.loads(result.output)["connections"][0]["ok"] is True
    assert PASSWORD not in result.output

    wrong = secret_file(tmp_path, "not-the-Pw-f1le\n", name="wrong")
    destination = PostgresDestination(pg_url(pg, f"password_file={wrong}&sslmode=disable"))
    with pytest.raises(DestinationError, match="password authentication failed") as failed:
        anyio.run(destination.open)
    assert str(failed.value).startswith(f"connecting to PostgreSQL at {pg.host}:{pg.port}: ")
    assert "not-the-Pw-f1le" not in str(failed.value)


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_a_password_file_that_cannot_be_used_is_named_never_shown(
    kind: str, tmp_path: Path
) -> None:
    """No server is needed: the file is checked before anything is sent."""
    base = (
        "postgresql://u@127.0.0.1:1/db?password_file="
        if kind == "postgresql"
        else "mysql://u@127.0.0.1:1/db?password_file="
    )

    async def attempt(url: str) -> None:
        if kind == "postgresql":
            await pg_connect(url, timeout=2)
        else:
            await my_connect(url, connect_timeout=2)

    def refused(url: str) -> str:
        with pytest.raises(ConfigError) as error:
            anyio.run(attempt, url)
        text = str(error.value)
        assert PASSWORD not in text
        assert "Pw-f1le" not in text
        return text

    loose = secret_file(tmp_path, PASSWORD, mode=0o644, name="loose")
    assert refused(base + str(loose)) == (
        f"password_file '{loose}' may be read or written by group or others (mode 0644); "
        f"make it the owner's only: chmod 600 {loose}"
    )
    group = secret_file(tmp_path, PASSWORD, mode=0o640, name="group")
    assert "mode 0640" in refused(base + str(group))
    missing = tmp_path / "missing"
    assert refused(base + str(missing)) == (
        f"password_file '{missing}' cannot be read (No such file or directory)"
    )
    assert refused(base + str(tmp_path)) == f"password_file '{tmp_path}' is not a regular file"
    empty = secret_file(tmp_path, "\n", name="empty")
    assert refused(base + str(empty)) == f"password_file '{empty}' is empty"
    good = secret_file(tmp_path, PASSWORD, name="good")
    both = base.replace("u@", "u:inline@") + str(good)
    assert "gives a password and a password_file" in refused(both)
    if os.geteuid() != 0:  # root reads any file
        unreadable = secret_file(tmp_path, PASSWORD, mode=0o000, name="unreadable")
        assert "Permission denied" in refused(base + str(unreadable))


def test_postgres_pgpass_file(pg: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq's .pgpass, which asyncpg reads when the URL has no password: PGPASSFILE names a
    0600 file; a looser one is ignored (asyncpg warns, as libpq does) and the login fails."""
    # (asyncpg 0.32 does not undo libpq's '\:' escape, so this password has no ':')
    password = "Pgpass-pw/#?@'x"
    pg.admin(f"ALTER ROLE {USER} PASSWORD '{password.replace(chr(39), chr(39) * 2)}'")
    try:
        monkeypatch.delenv("PGPASSWORD", raising=False)
        line = f"{pg.host}:{pg.port}:pwdb:{USER}:{password}\n"
        pgpass = secret_file(tmp_path, line, name="pgpass")
        monkeypatch.setenv("PGPASSFILE", str(pgpass))
        assert anyio.run(pg_user, pg_url(pg)) == USER

        pgpass.chmod(0o644)
        with (
            pytest.warns(UserWarning, match="has group or world access"),
            pytest.raises(
                asyncpg.InvalidPasswordError, match="password authentication failed"
            ) as failed,
        ):
            anyio.run(pg_user, pg_url(pg, "sslmode=disable"))
        assert password not in str(failed.value)
    finally:
        pg.admin(f"ALTER ROLE {USER} PASSWORD '{PASSWORD.replace(chr(39), chr(39) * 2)}'")


@pytest.fixture(scope="module")
def mysql_user(mariadb_database: ThrowawayDatabase) -> ThrowawayDatabase:
    server, name = mariadb_database.server, mariadb_database.name
    asyncio.run(
        mariadb_run(
            server,
            [
                (f"DROP USER IF EXISTS '{USER}'@'%'", None),
                (f"CREATE USER '{USER}'@'%%' IDENTIFIED BY %s", [PASSWORD]),
                (f"GRANT ALL ON `{name}`.* TO '{USER}'@'%'", None),
                ("CREATE TABLE src (id int PRIMARY KEY)", None),
                ("INSERT INTO src VALUES (1), (2), (3)", None),
            ],
            database=name,
        )
    )
    return mariadb_database


@pytest.mark.parametrize("driver", ["asyncmy", "aiomysql"])
def test_mysql_password_file(mysql_user: ThrowawayDatabase, tmp_path: Path, driver: str) -> None:
    server = mysql_user.server
    base = f"mysql://{USER}@{server.host}:{server.port}/{mysql_user.name}?driver={driver}"
    good = secret_file(tmp_path, PASSWORD + "\r\n")  # CRLF too: a file written on Windows

    async def current_user(url: str) -> str:
        conn = await my_connect(url)
        try:
            return str((await conn.fetchall("SELECT CURRENT_USER()"))[0][0])
        finally:
            await conn.close()

    assert anyio.run(current_user, f"{base}&password_file={good}").startswith(f"{USER}@")
    wrong = secret_file(tmp_path, "not-the-Pw-f1le", name="wrong")
    with pytest.raises(SourceError, match="Access denied") as denied:
        anyio.run(current_user, f"{base}&password_file={wrong}")
    assert "not-the-Pw-f1le" not in str(denied.value)


def test_mysql_password_file_end_to_end(mysql_user: ThrowawayDatabase, tmp_path: Path) -> None:
    server = mysql_user.server
    good = secret_file(tmp_path, PASSWORD + "\n")
    source = f"mysql://{USER}@{server.host}:{server.port}/{mysql_user.name}?password_file={good}"
    plan = tmp_path / "copy.smql"
    plan.write_text(
        f"CONNECTION my = '{source}';\nCONNECTION local = 'duckdb:///copy.duckdb';\n"
        "MIGRATE my.src INTO local.main.src;\n",
        encoding="utf-8",
    )
    loaded = stratum.load_plan(plan)
    summary = anyio.run(lambda: stratum.run_plan(loaded, state_dir=tmp_path / "state"))
    assert summary.exit_code == 0, [r.message for r in summary.results]
    assert [r.totals.rows_written for r in summary.results] == [3]
    result = CliRunner().invoke(app, ["test-conn", str(plan), "--json"], env={"COLUMNS": "300"})
    found = {c["name"]: c for c in json.loads(result.output)["connections"]}
    assert found["my"]["ok"] is True, found["my"]
    plan_text = CliRunner().invoke(app, ["plan", str(plan), "--json"]).output
    assert str(good) in plan_text  # the file's path is shown; its content never
    assert PASSWORD not in plan_text + result.output
