"""The pass-through path: a CSV file loaded into PostgreSQL as text that the server parses, with
the same result as the typed path (values converted in Python), the same rejects at the same
lines, and the typed path taken for a batch whose values PostgreSQL would read differently."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from stratum.runtime.pipeline import TEXT_LOAD_ENV
from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import Migrate, events
from tests.support.sql import my, pg

CASTS = (
    "CAST COLUMN id TO bigint, COLUMN amount TO numeric(10,2), COLUMN day TO date, "
    "COLUMN at TO timestamp, COLUMN paid TO boolean, COLUMN doc TO jsonb"
)


def write(tmp_path: Path, url: str, table: str, body: str, extra: str = "") -> Migrate:
    (tmp_path / f"{table}.csv").write_text("id,amount,day,at,paid,doc,note\n" + body)
    plan = tmp_path / f"{table}.smql"
    plan.write_text(
        f"CONNECTION dest = '{url}';\n"
        f"MIGRATE FILE '{table}.csv' (HEADER) INTO dest.{table} ON ERROR reject BATCH SIZE 3\n"
        f"  {CASTS} {extra};\n"
    )
    return Migrate(plan, tmp_path / f"state_{table}")


def run_with_load(migrate: Migrate, load: str) -> subprocess.CompletedProcess[str]:
    """`stratum migrate`, on the pass-through path ("text") or forced to convert every value
    in Python ("rows", STRATUM_TEXT_LOAD=off), to compare the two."""
    env = migrate.env()
    if load == "rows":
        env[TEXT_LOAD_ENV] = "off"
    return subprocess.run(
        migrate.command(), env=env, capture_output=True, text=True, timeout=120, check=False
    )


BODY = (
    '1,1.50,2024-01-02,2024-01-02 03:04:05,t,"{""a"": [1, 2.5]}","say ""hi"", ok"\n'
    "2,-0.01,2024-02-29,2024-02-29T23:59:59.123456,yes,null,\n"
    '3,7,0009-12-04,2000-01-01 00:00:00,0,"{""big"": 12345678901234567890.5}",""\n'
    '4,2.5,2024-03-03,2024-03-03 10:00:00,f,"[]","tab\there\nnewline é 😀"\n'
    "5,3,2024-04-04,2024-04-04 00:00:00,off,7,back\\slash\n"
)


def test_the_text_path_loads_what_the_typed_path_loads(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    text = write(tmp_path, url, "via_text", BODY)
    typed = write(tmp_path, url, "via_rows", BODY)
    for migrate, load in ((text, "text"), (typed, "rows")):
        done = run_with_load(migrate, load)
        assert done.returncode == 0, done.stderr
        assert [e["load"] for e in events(done.stderr, "item_started")] == [load]
    columns = "id, amount, day, at, paid, doc, note"
    assert pg(url, f"SELECT {columns} FROM via_text EXCEPT SELECT {columns} FROM via_rows") == []
    assert pg(url, "SELECT count(*) FROM via_text") == [(5,)]
    # NULL '' (the default) reads an empty value as NULL on both paths
    assert pg(url, "SELECT id FROM via_text WHERE note IS NULL ORDER BY id") == [(2,), (3,)]
    assert pg(url, "SELECT note FROM via_text WHERE id = 4") == [("tab\there\nnewline é 😀",)]


def test_a_refused_value_sends_the_batch_the_typed_way_with_its_rejects_in_line_order(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    body = (
        "1,1.50,2024-01-02,2024-01-02 03:04:05,t,1,a\n"
        "2,oops,2024-01-02,2024-01-02 03:04:05,t,1,b\n"  # not a number
        "3,1,2024-01-02,2024-01-02 03:04:05,t,1,c,extra\n"  # ragged: the reader rejects it
        "4,1,2024-13-02,2024-01-02 03:04:05,t,1,d\n"  # no month 13
        "5,1,2024-01-02,2024-01-02 03:04:05,t,1,e\n"
    )
    migrate = write(tmp_path, url, "bad", body)
    done = migrate.run(extra=("--summary", str(tmp_path / "summary.json")))
    assert done.returncode == 0, done.stderr
    (item,) = json.loads((tmp_path / "summary.json").read_text())["items"]
    assert (item["rows_read"], item["rows_written"], item["rows_rejected"]) == (5, 2, 3)
    lines = [json.loads(x) for x in Path(item["reject_file"]).read_text().splitlines()]
    assert [x["position"] for x in lines] == [3, 4, 5]
    assert "oops" in lines[0]["reason"]
    assert pg(url, "SELECT id FROM bad ORDER BY id") == [(1,), (5,)]


def test_a_timestamp_with_an_offset_is_converted_as_the_typed_path_does(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    # PostgreSQL would drop the +02:00 of a timestamp; the typed path converts it to UTC
    body = (
        "1,1,2024-01-02,2024-01-02 03:04:05+02:00,t,1,a\n2,1,2024-01-02,2024-01-02 03:04:05,t,1,b\n"
    )
    migrate = write(tmp_path, url, "offsets", body)
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    assert [str(r[0]) for r in pg(url, "SELECT at FROM offsets ORDER BY id")] == [
        "2024-01-02 01:04:05",
        "2024-01-02 03:04:05",
    ]


@pytest.mark.parametrize("transform", ["", "COMPUTE cents = amount * 100"])
def test_a_killed_text_load_resumes_exactly(
    tmp_path: Path, postgres_database: ThrowawayDatabase, transform: str
) -> None:
    """Loaded as text, and with the transform run by PostgreSQL over the staged text."""
    url = postgres_database.url
    body = "".join(f"{i},{i}.25,2024-01-02,2024-01-02 03:04:05,t,{i},n{i}\n" for i in range(1, 301))
    table = "killed_staged" if transform else "killed"
    migrate = write(tmp_path, url, table, body, transform)
    killed = migrate.run("after_commit=kill@20")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = migrate.run()
    assert done.returncode == 0, done.stderr
    assert [(e["load"], e["resumed_from"]) for e in events(done.stderr, "item_started")] == [
        ("text", 60)
    ]
    assert pg(url, f"SELECT count(*), count(DISTINCT id), sum(amount) FROM {table}") == [
        (300, 300, sum(i + 0.25 for i in range(1, 301)))
    ]


def test_mariadb_values_postgresql_refuses_are_rejected_the_typed_way(
    tmp_path: Path, postgres_database: ThrowawayDatabase, mariadb_database: ThrowawayDatabase
) -> None:
    source = mariadb_database.url
    rows = ",".join(
        f"({i}, '{'30:00:00' if i == 7 else '12:00:00'}', {2 if i == 12 else i % 2}, 'v{i}')"
        for i in range(1, 21)
    )
    my(
        source,
        "CREATE TABLE clocks (id int PRIMARY KEY, t time, flag tinyint(1), v varchar(10))",
        f"INSERT INTO clocks VALUES {rows}",
    )
    plan = tmp_path / "clocks.smql"
    plan.write_text(
        f"CONNECTION src = '{source}';\nCONNECTION dst = '{postgres_database.url}';\n"
        "MIGRATE src.clocks INTO dst.clocks ON ERROR reject BATCH SIZE 5;\n"
    )
    migrate = Migrate(plan, tmp_path / "state")
    done = migrate.run(extra=("--summary", str(tmp_path / "summary.json")))
    assert done.returncode == 0, done.stderr
    assert [e["load"] for e in events(done.stderr, "item_started")] == ["text"]
    (item,) = json.loads((tmp_path / "summary.json").read_text())["items"]
    assert (item["rows_read"], item["rows_written"], item["rows_rejected"]) == (20, 18, 2)
    lines = [json.loads(x) for x in Path(item["reject_file"]).read_text().splitlines()]
    assert [x["position"] for x in lines] == [7, 12]  # ordinals of the rows in the read
    assert "30:00:00" in lines[0]["reason"]
    ids = [r[0] for r in pg(postgres_database.url, "SELECT id FROM clocks ORDER BY id")]
    assert ids == [i for i in range(1, 21) if i not in (7, 12)]


STAGED = "COMPUTE cents = amount * 100, day_after = day + 1 WHERE paid AND note <> 'skip'"


def test_a_transform_run_by_postgresql_loads_what_the_typed_path_loads(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    body = BODY + "6,1,2024-01-01,2024-01-01 00:00:00,t,1,skip\n"
    staged = write(tmp_path, url, "staged", body, STAGED)
    done = staged.run(extra=("--summary", str(tmp_path / "staged.json")))
    assert done.returncode == 0, done.stderr
    assert [e["load"] for e in events(done.stderr, "item_started")] == ["text"]
    typed_run = run_with_load(write(tmp_path, url, "typed", body, STAGED), "rows")
    assert typed_run.returncode == 0, typed_run.stderr
    assert [e["load"] for e in events(typed_run.stderr, "item_started")] == ["rows"]
    columns = "id, amount, day, at, paid, doc, note, cents, day_after"
    assert pg(url, f"SELECT {columns} FROM staged EXCEPT SELECT {columns} FROM typed") == []
    assert pg(url, f"SELECT {columns} FROM typed EXCEPT SELECT {columns} FROM staged") == []
    (item,) = json.loads((tmp_path / "staged.json").read_text())["items"]
    # 3, 4 and 5 are not paid; 2's note is NULL (NULL <> 'skip' is not true); 6 is skipped
    assert (item["rows_read"], item["rows_written"], item["rows_filtered"]) == (6, 1, 5)


def test_a_staged_batch_the_server_refuses_is_transformed_in_python_with_its_rejects(
    tmp_path: Path, postgres_database: ThrowawayDatabase
) -> None:
    url = postgres_database.url
    body = (
        "1,1.50,2024-01-02,2024-01-02 03:04:05,t,1,a\n"
        "2,oops,2024-01-02,2024-01-02 03:04:05,t,1,b\n"
        "3,2,2024-01-02,2024-01-02 03:04:05,f,1,c\n"
    )
    migrate = write(tmp_path, url, "refused", body, STAGED)
    done = migrate.run(extra=("--summary", str(tmp_path / "summary.json")))
    assert done.returncode == 0, done.stderr
    (item,) = json.loads((tmp_path / "summary.json").read_text())["items"]
    assert (item["rows_read"], item["rows_written"], item["rows_rejected"]) == (3, 1, 1)
    assert item["rows_filtered"] == 1
    (line,) = [json.loads(x) for x in Path(item["reject_file"]).read_text().splitlines()]
    assert line["position"] == 3
    assert "oops" in line["reason"]
    assert pg(url, "SELECT id, cents FROM refused") == [(1, 150)]
