"""`stratum test-conn` without a database server: refused, DNS, unset ${VAR}, usage errors,
DuckDB files, the JSON shape. (The servers' own cases are in postgres/ and mariadb/.)"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.support.testconn import by_name, invoke_test_conn, write

SECRET = "Tc-s3cret-never-shown"


def run(plan: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    return invoke_test_conn(plan, *args, env=env, secrets=(SECRET,))


def test_refused_dns_and_unset_variable_are_failures_with_their_cause(tmp_path: Path) -> None:
    plan = write(
        tmp_path,
        f"""
CONNECTION refused = 'postgresql://postgres:{SECRET}@127.0.0.1:1/postgres';
CONNECTION my_refused = 'mysql://root:${{TC_PW}}@127.0.0.1:1/shop';
CONNECTION nowhere = 'postgresql://postgres:${{TC_PW}}@stratum-no-such-host.invalid/postgres';
CONNECTION unset = 'postgresql://postgres:${{TC_UNSET_PASSWORD}}@127.0.0.1:1/postgres';
""",
    )
    code, output = run(plan, "--json", "--timeout", "3", env={"TC_PW": SECRET})
    assert code == 1
    found = by_name(output)
    assert found["refused"]["cause"] == "refused"
    assert found["my_refused"]["cause"] == "refused"
    assert found["nowhere"]["cause"] == "dns"
    assert found["unset"]["cause"] == "other"
    assert found["unset"]["message"] == "environment variable TC_UNSET_PASSWORD is not set"
    assert all(not c["ok"] and not c["reachable"] for c in found.values())
    # the DSN is the template: inline passwords masked, ${VAR}s not expanded
    assert found["refused"]["dsn"] == "postgresql://postgres:***@127.0.0.1:1/postgres"
    assert found["nowhere"]["dsn"].startswith("postgresql://postgres:${TC_PW}@")

    code, text = run(plan, env={"TC_PW": SECRET})
    assert code == 1
    assert "connection refused by 127.0.0.1:1" in text
    assert "environment variable TC_UNSET_PASSWORD is not set" in text
    assert "0 of 4 connections ok" in text


def test_json_shape(tmp_path: Path) -> None:
    plan = write(tmp_path, "CONNECTION pg = 'postgresql://postgres@127.0.0.1:1/postgres';\n")
    code, output = run(plan, "--json")
    assert code == 1
    document = json.loads(output)
    assert set(document) == {"plan", "ok", "connections"}
    assert document["ok"] is False
    [entry] = document["connections"]
    assert set(entry) == {
        "name",
        "dsn",
        "uses",
        "ok",
        "reachable",
        "cause",
        "message",
        "server_version",
        "latency_ms",
        "tls",
        "privileges",
    }
    assert entry["uses"] == []
    assert entry["privileges"] == []


def test_only_the_named_connections_and_did_you_mean(tmp_path: Path) -> None:
    plan = write(
        tmp_path,
        "CONNECTION warehouse = 'postgresql://postgres@127.0.0.1:1/postgres';\n"
        "CONNECTION local = 'duckdb:///local.duckdb';\n",
    )
    code, output = run(plan, "local", "--json")
    assert code == 0, output
    assert list(by_name(output)) == ["local"]

    code, output = run(plan, "warehose")
    assert code == 2
    assert "no connection 'warehose' in the plan (did you mean 'warehouse'?)" in output

    code, output = run(tmp_path / "missing.smql")
    assert code == 2


def test_duckdb_reads_and_writes(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "lake.duckdb")) as con:
        con.execute("CREATE TABLE orders (id integer)")
    plan = write(
        tmp_path,
        """
CONNECTION lake = 'duckdb:///lake.duckdb';
CONNECTION out = 'duckdb:///new/../out.duckdb';
MIGRATE lake.orders INTO out.main.orders;
MIGRATE lake.customers INTO out.main.customers;
""",
    )
    (tmp_path / "new").mkdir()
    code, output = run(plan, "--json")
    assert code == 1  # lake.customers does not exist
    found = by_name(output)
    lake, out = found["lake"], found["out"]
    assert lake["reachable"] is True
    assert lake["server_version"] == duckdb.__version__
    assert lake["latency_ms"] is not None
    assert lake["tls"] is None
    assert lake["uses"] == ["source"]
    assert sorted(lake["privileges"], key=lambda p: p["what"]) == [
        {"what": "SELECT on customers (not found)", "ok": False},
        {"what": "SELECT on orders", "ok": True},
    ]
    assert lake["cause"] == "privileges"
    assert out["ok"] is True
    assert out["uses"] == ["destination"]
    assert out["privileges"] == [{"what": "create out.duckdb", "ok": True}]
    assert not (tmp_path / "out.duckdb").exists()  # a probe creates nothing

    code, output = run(plan, "out")
    assert code == 0, output


def test_duckdb_in_a_missing_directory_is_unreachable(tmp_path: Path) -> None:
    plan = write(tmp_path, "CONNECTION d = 'duckdb:///nope/x.duckdb';\n")
    code, output = run(plan, "--json")
    assert code == 1
    [entry] = json.loads(output)["connections"]
    assert entry["reachable"] is False
    assert entry["cause"] == "database"


@pytest.mark.parametrize("flag", [[], ["--json"]])
def test_a_plan_that_does_not_compile_exits_1(tmp_path: Path, flag: list[str]) -> None:
    plan = write(tmp_path, "CONNECTION x = 'nosuch://h/db';\n")
    code, _ = run(plan, *flag)
    assert code == 1
