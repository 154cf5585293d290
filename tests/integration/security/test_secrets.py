"""No password reaches any output: every command, good runs and failing ones, every file left.

A PostgreSQL role and a MariaDB user get distinctive passwords (both start with `STEM`; the
PostgreSQL one holds a '/' and the MariaDB one a '#', so the URL carries them percent-encoded
and every spelling, raw or encoded, contains `STEM`). Plans name them only as `${VAR}`s. Then
`validate`, `plan`, `plan --json`, `test-conn` (table and JSON) run for every plan, and
`migrate` (JSON log lines with `--summary`, console lines with `--debug`) and `progress --json`
run for:

* a good run with rejects (ON ERROR reject and a bad row in each of three items: MariaDB ->
  PostgreSQL, PostgreSQL -> MariaDB, CSV -> PostgreSQL);
* failing runs: a missing table; a closed port; a wrong password; a password with an
  unencoded '/' or '#' (before the fix, the URL parser's "bad port" message quoted part of it);
* a run SIGKILLed after a commit, then resumed.

Every stdout and stderr, the summary files, every file under the reject directories and under
the state directories (LMDB's data files as raw bytes) and the destinations' checkpoint rows are
searched for `STEM`. The `migrate` runs use umask 022, and the reject and state files must still
be the owner's only (0600 files, 0700 directories).

The PostgreSQL side runs on the private cluster of conftest.py when it can be started, because
the shared server lets every login in without a password; on the shared server the wrong
password case is only checked for MariaDB.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncmy
import asyncpg
import pytest
from typer.testing import CliRunner

from stratum.cli.app import app
from tests.support.databases import DatabaseServer, ThrowawayDatabase, mariadb_run

STEM = "S3cr3t-zz9"
TOKEN = secrets.token_hex(4)
PG_PASSWORD = f"{STEM}-pg/{TOKEN}"  # '/' must be percent-encoded in a URL
MY_PASSWORD = f"{STEM}-my#{TOKEN}"  # so must '#'
MY_USER = f"stratum_sec_{TOKEN}"
PG_ROLE = f"stratum_sec_{TOKEN}"
PG_DATABASE = "secrets_db"
ROWS = 9  # rows of each table source; one of them bad


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    enforces_passwords: bool
    tls: bool
    admin: Any  # run statements as the superuser: admin(*sql, database=...)
    admin_url: str


@pytest.fixture(scope="module")
def postgres(request: pytest.FixtureRequest, postgres_server: DatabaseServer) -> Iterator[Postgres]:
    """A role with PG_PASSWORD owning PG_DATABASE: on the private cluster when it can be
    started (passwords checked, TLS), else on the shared server (trust)."""
    try:
        private = request.getfixturevalue("private_postgres")
    except pytest.skip.Exception:
        private = None
    if private is not None:
        target = Postgres(private.host, private.port, True, True, private.admin, private.admin_url)
    else:
        shared = postgres_server

        def admin(*statements: str, database: str = "postgres") -> None:
            asyncio.run(_pg_run(shared.url_for(database), statements))

        target = Postgres(shared.host, shared.port, False, False, admin, shared.url_for("postgres"))
    escaped = PG_PASSWORD.replace("'", "''")
    target.admin(
        f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)",
        f"DROP ROLE IF EXISTS {PG_ROLE}",
        f"CREATE ROLE {PG_ROLE} LOGIN PASSWORD '{escaped}'",
        f"CREATE DATABASE {PG_DATABASE} OWNER {PG_ROLE}",
    )
    target.admin(
        "CREATE TABLE pgsrc (id int PRIMARY KEY, v float8)",
        f"INSERT INTO pgsrc SELECT g, g / 2.0 FROM generate_series(1, {ROWS}) g",
        "UPDATE pgsrc SET v = 'NaN' WHERE id = 4",  # MySQL cannot store NaN: rejected
        f"ALTER TABLE pgsrc OWNER TO {PG_ROLE}",
        f"GRANT ALL ON SCHEMA public TO {PG_ROLE}",
        database=PG_DATABASE,
    )
    try:
        yield target
    finally:
        target.admin(
            f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)", f"DROP ROLE IF EXISTS {PG_ROLE}"
        )


async def _pg_run(url: str, statements: tuple[str, ...]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def mariadb(mariadb_database: ThrowawayDatabase) -> Iterator[ThrowawayDatabase]:
    """A user with MY_PASSWORD on the module's database, and its source table."""
    server, name = mariadb_database.server, mariadb_database.name
    asyncio.run(
        mariadb_run(
            server,
            [
                (f"DROP USER IF EXISTS '{MY_USER}'@'%'", None),
                (f"CREATE USER '{MY_USER}'@'%%' IDENTIFIED BY %s", [MY_PASSWORD]),
                (f"GRANT ALL ON `{name}`.* TO '{MY_USER}'@'%'", None),
                (
                    "CREATE TABLE mysrc (id int PRIMARY KEY, flag tinyint(1), note varchar(20))",
                    None,
                ),
                (
                    "INSERT INTO mysrc VALUES "
                    + ", ".join(
                        f"({i}, {2 if i == 5 else i % 2}, 'note {i}')" for i in range(1, ROWS + 1)
                    ),
                    None,
                ),
            ],
            database=name,
        )
    )
    try:
        yield mariadb_database
    finally:
        asyncio.run(mariadb_run(server, [(f"DROP USER IF EXISTS '{MY_USER}'@'%'", None)]))


# --- plans and runs --------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    directory: Path
    env: dict[str, str]
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (what, text)

    @property
    def plan(self) -> Path:
        return self.directory / "plan.smql"

    @property
    def state(self) -> Path:
        return self.directory / "state"

    @property
    def rejects(self) -> Path:
        return self.directory / "out" / "rejects"

    @property
    def summary(self) -> Path:
        return self.directory / "summary.json"

    def migrate(
        self, *extra: str, failpoints: str | None = None, debug: bool = False, json_log: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "stratum"] + (["--debug"] if debug else [])
        command += ["migrate", str(self.plan), "--state-dir", str(self.state)]
        command += ["--reject-dir", str(self.rejects), "--summary", str(self.summary)]
        command += ["--log-format", "json" if json_log else "console", *extra]
        env = {**os.environ, **self.env, "STRATUM_RETRY_DELAYS": "0.05,0.1"}
        env["STRATUM_BREAKER_COOLDOWN"] = "0.2"
        env.pop("STRATUM_FAILPOINTS", None)
        if failpoints:
            env["STRATUM_FAILPOINTS"] = failpoints
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=90, umask=0o022, check=False
        )
        label = f"{self.name}: migrate {' '.join(extra)} debug={debug} failpoints={failpoints}"
        self.outputs += [(f"{label} stdout", done.stdout), (f"{label} stderr", done.stderr)]
        return done

    def cli(self, *args: str) -> tuple[int, str]:
        """A command in this process (validate, plan, test-conn, progress): exit code, output."""
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300", **self.env})
        text = result.output + (getattr(result, "stderr", "") or "")
        self.outputs.append((f"{self.name}: {' '.join(args[:2])}", text))
        return result.exit_code, text


def write_plan(
    root: Path, name: str, *, pg: str, my: str, items: str, env: dict[str, str]
) -> Scenario:
    directory = root / name
    directory.mkdir()
    (directory / "bad.csv").write_text(
        "id,n\n" + "".join(f"{i},{'x' if i == 3 else i}\n" for i in range(1, ROWS + 1)),
        encoding="utf-8",
    )
    text = f"CONNECTION pg = '{pg}';\nCONNECTION my = '{my}';\n{items}"
    (directory / "plan.smql").write_text(text, encoding="utf-8")
    return Scenario(name, directory, env)


GOOD_ITEMS = """
MIGRATE my.mysrc INTO pg.public.{name}_from_my ON ERROR reject BATCH SIZE 2;
MIGRATE pg.public.pgsrc INTO my.{name}_from_pg ON ERROR reject BATCH SIZE 2;
MIGRATE FILE 'bad.csv' (HEADER) INTO pg.public.{name}_from_file
  CAST COLUMN id TO integer, COLUMN n TO integer ON ERROR reject BATCH SIZE 2;
"""


def test_no_secret_in_any_output(
    tmp_path: Path, postgres: Postgres, mariadb: ThrowawayDatabase
) -> None:
    my_server = mariadb.server
    pg_query = "?sslmode=require" if postgres.tls else ""
    pg_url = (
        f"postgresql://{PG_ROLE}:${{SEC_PG_PW}}@{postgres.host}:{postgres.port}/{PG_DATABASE}"
        + pg_query
    )
    my_url = f"mysql://{MY_USER}:${{SEC_MY_PW}}@{my_server.host}:{my_server.port}/{mariadb.name}"
    good_env = {"SEC_PG_PW": quote(PG_PASSWORD, safe=""), "SEC_MY_PW": quote(MY_PASSWORD, safe="")}
    wrong_env = {"SEC_PG_PW": f"{STEM}-wrong-pg", "SEC_MY_PW": f"{STEM}-wrong-my"}
    raw_env = {"SEC_PG_PW": PG_PASSWORD, "SEC_MY_PW": MY_PASSWORD}  # unencoded '/' and '#'
    closed = _closed_port()

    def plan(name: str, items: str, env: dict[str, str], port: int | None = None) -> Scenario:
        pg, my = pg_url, my_url
        if port is not None:
            pg = pg.replace(f":{postgres.port}/", f":{port}/")
            my = my.replace(f":{my_server.port}/", f":{port}/")
        return write_plan(tmp_path, name, pg=pg, my=my, items=items.format(name=name), env=env)

    good = plan("good", GOOD_ITEMS, good_env)
    killed = plan("killed", GOOD_ITEMS, good_env)
    missing = plan(
        "missing",
        "MIGRATE my.no_such_table INTO pg.public.x1;\nMIGRATE pg.public.no_such INTO my.x2;\n",
        good_env,
    )
    unreachable = plan("unreachable", GOOD_ITEMS, good_env, port=closed)
    wrong = plan("wrong", GOOD_ITEMS, wrong_env)
    malformed = plan("malformed", GOOD_ITEMS, raw_env)
    scenarios = [good, killed, missing, unreachable, wrong, malformed]

    # every plan: validate, plan, plan --json, test-conn, test-conn --json (in this process)
    for scenario in scenarios:
        for args in (
            ("validate", str(scenario.plan)),
            ("plan", str(scenario.plan)),
            ("plan", str(scenario.plan), "--json"),
            ("test-conn", str(scenario.plan), "--timeout", "5"),
            ("test-conn", str(scenario.plan), "--json", "--timeout", "5"),
        ):
            scenario.cli(*args)

    # the migrations, each its own process, side by side
    with ThreadPoolExecutor(max_workers=6) as pool:
        first = {
            s.name: pool.submit(
                s.migrate, failpoints="after_commit=kill@2" if s is killed else None
            )
            for s in scenarios
        }
        done = {name: future.result() for name, future in first.items()}
        again = {
            "debug": pool.submit(good.migrate, "--restart", debug=True, json_log=False),
            "resumed": pool.submit(killed.migrate, debug=True),
        }
        rerun = {name: future.result() for name, future in again.items()}
    for scenario in (good, killed):
        scenario.cli("progress", str(scenario.plan), "--state-dir", str(scenario.state), "--json")

    # the runs did what they are meant to, so the search below is not vacuous
    assert done["good"].returncode == 0, done["good"].stderr
    summary = json.loads(good.summary.read_text())
    assert [i["rows_rejected"] for i in summary["items"]] == [1, 1, 1]
    reject_lines = [p.read_text() for p in sorted(good.rejects.rglob("*.jsonl"))]
    assert [len(text.splitlines()) for text in reject_lines] == [1, 1, 1]
    assert done["killed"].returncode == -signal.SIGKILL, done["killed"].stderr
    assert rerun["resumed"].returncode == 0, rerun["resumed"].stderr
    assert rerun["debug"].returncode == 0, rerun["debug"].stderr
    assert "does not exist" in done["missing"].stdout + done["missing"].stderr
    assert done["missing"].returncode == 4
    unreachable_text = done["unreachable"].stdout + done["unreachable"].stderr
    assert done["unreachable"].returncode == 4
    assert f"127.0.0.1:{closed}" in unreachable_text
    wrong_text = done["wrong"].stdout + done["wrong"].stderr
    assert done["wrong"].returncode == 4
    assert "Access denied" in wrong_text
    if postgres.enforces_passwords:
        assert "password authentication failed" in wrong_text
    malformed_text = done["malformed"].stdout + done["malformed"].stderr
    assert done["malformed"].returncode == 4
    assert "must be percent-encoded" in malformed_text

    # now search everything
    found = []
    for scenario in scenarios:
        for what, text in scenario.outputs:
            if STEM in text:
                found.append(f"{what}: ...{_around(text, STEM)}...")
        for path in _files(scenario.directory):
            if path.name in ("plan.smql", "bad.csv"):
                continue
            if STEM.encode() in path.read_bytes():
                found.append(f"{path.relative_to(tmp_path)}")
    for row in _checkpoint_rows(postgres, mariadb):
        if STEM in row:
            found.append(f"checkpoint row: {row}")
    assert not found, "secrets found:\n" + "\n".join(found)

    # and with umask 022 the rejects and the state are still the owner's only
    for scenario in (good, killed):
        _assert_private(scenario.rejects.parent, scenario.state)


# --- helpers ---------------------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def _around(text: str, needle: str) -> str:
    at = text.index(needle)
    return text[max(0, at - 80) : at + 80].replace("\n", " ")


def _checkpoint_rows(postgres: Postgres, mariadb: ThrowawayDatabase) -> list[str]:
    async def pg_rows() -> list[str]:
        conn = await asyncpg.connect(
            postgres.admin_url.rsplit("/", 1)[0] + f"/{PG_DATABASE}", ssl=False
        )
        try:
            return [str(tuple(r)) for r in await conn.fetch("SELECT * FROM stratum.checkpoints")]
        finally:
            await conn.close()

    async def my_rows() -> list[str]:
        server = mariadb.server
        conn = await asyncmy.connect(
            host=server.host, port=server.port, user=server.user, password=server.password,
            database=mariadb.name,
        )  # fmt: skip
        try:
            async with conn.cursor() as cursor:
                await cursor.execute("SELECT * FROM stratum_checkpoints")
                return [str(tuple(r)) for r in await cursor.fetchall()]
        finally:
            conn.close()

    rows = asyncio.run(pg_rows()) + asyncio.run(my_rows())
    assert rows  # the good and the killed runs left theirs
    return rows


def _assert_private(out: Path, state: Path) -> None:
    for path in [out, *out.rglob("*"), *state.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path == out:
            continue  # made by the test
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, f"{path}: {mode:04o}, expected {expected:04o}"
