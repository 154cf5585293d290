"""`stratum test-conn` against the real PostgreSQL server: reachable as the superuser, a role that
cannot log in, an unknown database, a role missing privileges; the password is never printed."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.databases import ThrowawayDatabase
from tests.support.testconn import invoke_test_conn, write

SECRET = "Tc-pg-s3cret-never-shown"
WRONG = "Tc-pg-wr0ng-never-shown"


def run(plan: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    return invoke_test_conn(plan, *args, env=env, secrets=(SECRET, WRONG))


def only(output: str) -> dict[str, Any]:
    [entry] = json.loads(output)["connections"]
    return entry  # type: ignore[no-any-return]


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def roles(postgres_database: ThrowawayDatabase) -> Iterator[tuple[str, str]]:
    """(a login role with few privileges, a role that may not log in), both with a password."""
    suffix = secrets.token_hex(4)
    limited, nologin = f"stratum_tc_{suffix}", f"stratum_tc_nologin_{suffix}"
    url = postgres_database.url
    asyncio.run(
        _execute(
            url,
            f"CREATE ROLE {limited} LOGIN PASSWORD '{SECRET}'",
            f"CREATE ROLE {nologin} NOLOGIN PASSWORD '{SECRET}'",
            "CREATE TABLE public.items (id integer)",
            "CREATE TABLE public.hidden (id integer)",
            "CREATE TABLE public.target (id integer)",
            "CREATE SCHEMA locked",
            f"GRANT USAGE ON SCHEMA locked TO {limited}",
            f"GRANT SELECT ON public.items TO {limited}",
            f"GRANT INSERT ON public.target TO {limited}",
        )
    )
    try:
        yield limited, nologin
    finally:
        asyncio.run(
            _execute(
                url,
                f"DROP OWNED BY {limited}",
                f"DROP ROLE {limited}",
                f"DROP ROLE {nologin}",
            )
        )


def _server(db: ThrowawayDatabase) -> str:
    return f"{db.server.host}:{db.server.port}"


@pytest.mark.usefixtures("roles")  # creates the tables
def test_reachable_as_the_superuser(tmp_path: Path, postgres_database: ThrowawayDatabase) -> None:
    plan = write(
        tmp_path,
        f"""
CONNECTION pg = '{postgres_database.url}';
MIGRATE pg.public.items INTO pg.copies.items MODE full;
MIGRATE pg.public.items INTO pg.public.target MODE full;
""",
    )
    code, output = run(plan, "--json")
    assert code == 0, output
    entry = only(output)
    assert entry["ok"] is True
    assert entry["reachable"] is True
    assert entry["cause"] is None
    assert entry["server_version"]
    assert entry["latency_ms"] > 0
    assert entry["tls"] is False
    assert entry["uses"] == ["source", "destination"]
    whats = [p["what"] for p in entry["privileges"]]
    assert all(p["ok"] for p in entry["privileges"])
    assert "SELECT on public.items" in whats
    assert "TRUNCATE on public.target" in whats
    assert any(w.startswith("CREATE on database") for w in whats)  # no copies schema yet

    code, text = run(plan)
    assert code == 0
    assert "1 of 1 connection ok" in text


def test_auth_failure_names_the_cause_not_the_password(
    tmp_path: Path, postgres_database: ThrowawayDatabase, roles: tuple[str, str]
) -> None:
    # This server trusts 127.0.0.1 (pg_hba), so it checks no password; a role that may not log
    # in is refused by the same authentication step, whatever the password.
    _, nologin = roles
    db = postgres_database
    plan = write(
        tmp_path,
        f"""
CONNECTION inline = 'postgresql://{nologin}:{WRONG}@{_server(db)}/{db.name}';
CONNECTION via_env = 'postgresql://{nologin}:${{TC_PG_PW}}@{_server(db)}/{db.name}';
""",
    )
    code, output = run(plan, "--json", env={"TC_PG_PW": SECRET})
    assert code == 1
    for entry in json.loads(output)["connections"]:
        assert entry["cause"] == "auth", entry
        assert entry["reachable"] is False
        assert nologin in entry["message"]
    code, _ = run(plan, env={"TC_PG_PW": SECRET})
    assert code == 1


def test_unknown_database(tmp_path: Path, postgres_database: ThrowawayDatabase) -> None:
    url = postgres_database.server.url_for("stratum_tc_no_such_database")
    plan = write(tmp_path, f"CONNECTION pg = '{url}';\n")
    code, output = run(plan, "--json")
    assert code == 1
    entry = only(output)
    assert entry["cause"] == "database"
    assert "stratum_tc_no_such_database" in entry["message"]


def test_missing_privileges_are_listed(
    tmp_path: Path, postgres_database: ThrowawayDatabase, roles: tuple[str, str]
) -> None:
    limited, _ = roles
    db = postgres_database
    plan = write(
        tmp_path,
        f"""
CONNECTION pg = 'postgresql://{limited}:${{TC_PG_PW}}@{_server(db)}/{db.name}';
MIGRATE pg.public.items INTO pg.locked.items;
MIGRATE pg.public.hidden INTO pg.public.target MODE full;
""",
    )
    code, output = run(plan, "--json", env={"TC_PG_PW": SECRET})
    assert code == 1
    entry = only(output)
    assert entry["reachable"] is True
    assert entry["cause"] == "privileges"
    held = {p["what"]: p["ok"] for p in entry["privileges"]}
    assert held["SELECT on public.items"] is True
    assert held["SELECT on public.hidden"] is False
    assert held["CREATE on schema locked (for tables)"] is False
    assert held["INSERT on public.target"] is True
    assert held["TRUNCATE on public.target"] is False
    assert held[f"CREATE on database {db.name} (for schema stratum)"] is False
    assert "CREATE on schema locked" in entry["message"]

    code, text = run(plan, env={"TC_PG_PW": SECRET})
    assert code == 1
    assert "NO  CREATE on schema locked (for tables)" in text
    assert "ok  SELECT on public.items" in text
