"""`stratum test-conn` against the real MariaDB server: reachable as root (asyncmy and aiomysql),
a wrong password, an unknown database, a user missing privileges; the password is never
printed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import ThrowawayDatabase, mariadb_run
from tests.support.testconn import by_name, invoke_test_conn, write

SECRET = "Tc-my-s3cret-never-shown"
WRONG = "Tc-my-wr0ng-never-shown"


def run(plan: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    return invoke_test_conn(plan, *args, env=env, secrets=(SECRET, WRONG))


@pytest.fixture(scope="module")
def user(mariadb_database: ThrowawayDatabase) -> Iterator[str]:
    """A user with a password that may read `items` and nothing else."""
    name = f"stratum_tc_{secrets.token_hex(4)}"
    db = mariadb_database.name
    server = mariadb_database.server
    asyncio.run(
        mariadb_run(
            server,
            [
                (f"CREATE USER '{name}'@'%' IDENTIFIED BY '{SECRET}'", None),
                (f"CREATE TABLE `{db}`.items (id integer)", None),
                (f"CREATE TABLE `{db}`.hidden (id integer)", None),
                (f"GRANT SELECT ON `{db}`.items TO '{name}'@'%'", None),
            ],
        )
    )
    try:
        yield name
    finally:
        asyncio.run(mariadb_run(server, [(f"DROP USER IF EXISTS '{name}'@'%'", None)]))


def _at(db: ThrowawayDatabase) -> str:
    return f"{db.server.host}:{db.server.port}"


@pytest.mark.usefixtures("user")  # creates the tables
def test_reachable_as_root_with_either_driver(
    tmp_path: Path, mariadb_database: ThrowawayDatabase
) -> None:
    url = mariadb_database.url
    plan = write(
        tmp_path,
        f"""
CONNECTION my = '{url}';
CONNECTION my_aiomysql = '{url}?driver=aiomysql';
MIGRATE my.items INTO my.copies MODE full;
MIGRATE DATABASE my_aiomysql INTO my.copied;
""",
    )
    code, output = run(plan, "--json")
    assert code == 0, output
    for entry in by_name(output).values():
        assert entry["ok"] is True
        assert "MariaDB" in entry["server_version"]
        assert entry["latency_ms"] > 0
        assert entry["tls"] is False
        assert entry["privileges"]
        assert all(p["ok"] for p in entry["privileges"])
    found = by_name(output)
    whats = [p["what"] for p in found["my"]["privileges"]]
    assert f"SELECT on {mariadb_database.name}.items" in whats
    assert f"CREATE on database {mariadb_database.name} (for stratum_checkpoints, bookkeeping)" in (
        whats
    )
    assert found["my_aiomysql"]["privileges"] == [
        {"what": f"SELECT on every table of {mariadb_database.name}", "ok": True}
    ]


def test_wrong_password_and_unknown_database(
    tmp_path: Path, mariadb_database: ThrowawayDatabase, user: str
) -> None:
    db = mariadb_database
    plan = write(
        tmp_path,
        f"""
CONNECTION inline = 'mysql://{user}:{WRONG}@{_at(db)}/{db.name}';
CONNECTION via_env = 'mariadb://{user}:${{TC_MY_PW}}@{_at(db)}/{db.name}?driver=aiomysql';
CONNECTION nodb = 'mysql://root@{_at(db)}/stratum_tc_no_such_database';
""",
    )
    code, output = run(plan, "--json", env={"TC_MY_PW": WRONG})
    assert code == 1
    found = by_name(output)
    assert found["inline"]["cause"] == "auth"
    assert found["via_env"]["cause"] == "auth"
    assert user in found["inline"]["message"]
    assert found["nodb"]["cause"] == "database"
    assert "stratum_tc_no_such_database" in found["nodb"]["message"]


def test_missing_privileges_are_listed(
    tmp_path: Path, mariadb_database: ThrowawayDatabase, user: str
) -> None:
    db = mariadb_database
    plan = write(
        tmp_path,
        f"""
CONNECTION my = 'mysql://{user}:${{TC_MY_PW}}@{_at(db)}/{db.name}';
CONNECTION whole = 'mysql://{user}:${{TC_MY_PW}}@{_at(db)}/{db.name}';
CONNECTION out = 'duckdb:///out.duckdb';
MIGRATE my.items INTO out.main.items;
MIGRATE my.hidden INTO out.main.hidden;
MIGRATE DATABASE whole INTO out.copied;
""",
    )
    code, output = run(plan, "--json", env={"TC_MY_PW": SECRET})
    assert code == 1
    found = by_name(output)
    assert found["out"]["ok"] is True
    my, whole = found["my"], found["whole"]
    assert my["reachable"] is True
    assert my["cause"] == "privileges"
    held = {p["what"]: p["ok"] for p in my["privileges"]}
    assert held == {
        f"SELECT on {db.name}.items": True,
        # not even visible to the user: MySQL cannot tell it from a missing table
        f"SELECT on {db.name}.hidden (no such table, or none of its privileges)": False,
    }
    assert whole["privileges"] == [
        {"what": f"SELECT on the 1 visible table of {db.name}", "ok": True}
    ]
