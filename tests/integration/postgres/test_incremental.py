"""MODE incremental CURSOR c [KEY (k)]: each run reads only the rows whose CURSOR is past the
last run's high-water mark, in the order (c, key), the key breaking ties between rows that
share one CURSOR value across a batch boundary.

End to end through `stratum migrate`, from PostgreSQL and from MariaDB into PostgreSQL: a first
run loads everything; updated and new rows are picked up by the next run, exactly (upserted
with a KEY, appended without one); a run killed after its second commit is finished by the
next one, exactly; the refusals fail the item (exit 4) with the reason. Then the sources
themselves: the order and the cursor for each kind of CURSOR column, a resume after any
batch, a CURSOR column the output leaves out (hidden), a view, refused types."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from smql import Mode
from stratum.connectors.base import RawBatch
from stratum.connectors.mysql.source import MySQLQuerySource, MySQLTableSource
from stratum.connectors.postgres.source import PostgresQuerySource, PostgresTableSource
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import ColumnMap, Sql
from tests.support.databases import ThrowawayDatabase
from tests.support.migrate import Migrate, events
from tests.support.options import options
from tests.support.sources import read_batches, rows_of, table_ref
from tests.support.sql import my, pg

ROWS = 300
BATCH = 50
BASE = datetime(2024, 1, 1)
KINDS = ["postgres", "mariadb"]


# --- helpers ------------------------------------------------------------------------------------


class Source:
    """The source side of a test: PostgreSQL (a table in the target's database) or MariaDB."""

    def __init__(
        self, kind: str, pg_db: ThrowawayDatabase, my_db: ThrowawayDatabase | None, tag: str
    ) -> None:
        self.kind = kind
        self.url = pg_db.url if kind == "postgres" else _require(my_db).url
        self.table = f"src_{tag}"
        self.run: Callable[..., list[tuple[Any, ...]]] = pg if kind == "postgres" else my

    @property
    def timestamp(self) -> str:
        return "timestamp(3)" if self.kind == "postgres" else "datetime(3)"

    def create(self, columns: str) -> None:
        self.run(self.url, f"CREATE TABLE {self.table} ({columns})")

    def sql(self, *statements: str) -> list[tuple[Any, ...]]:
        return self.run(self.url, *statements)

    def rows(self, columns: str = "id, status, updated_at") -> list[tuple[Any, ...]]:
        return self.sql(f"SELECT {columns} FROM {self.table} ORDER BY id")


def _require(database: ThrowawayDatabase | None) -> ThrowawayDatabase:
    assert database is not None
    return database


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def mariadb_or_none(kind: str, request: pytest.FixtureRequest) -> ThrowawayDatabase | None:
    """The MariaDB database only for the MariaDB cases (a PostgreSQL case needs no server)."""
    if kind != "mariadb":
        return None
    database = request.getfixturevalue("mariadb_database")
    assert isinstance(database, ThrowawayDatabase)
    return database


def ts(minutes: float) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat(sep=" ", timespec="milliseconds")


def insert(source: Source, rows: Sequence[tuple[int, str, str]]) -> None:
    values = ", ".join(f"({i}, '{status}', '{at}')" for i, status, at in rows)
    source.sql(f"INSERT INTO {source.table} (id, status, updated_at) VALUES {values}")


def orders(source: Source) -> None:
    """ROWS orders; seven share each updated_at, so ties cross every batch boundary."""
    source.create(
        f"id int PRIMARY KEY, status varchar(20) NOT NULL, updated_at {source.timestamp} NOT NULL"
    )
    insert(source, [(i, "new", ts(i // 7)) for i in range(1, ROWS + 1)])


def write_plan(tmp_path: Path, source: Source, target_url: str, item: str) -> Migrate:
    path = tmp_path / "incremental.smql"
    path.write_text(
        f"CONNECTION src = '{source.url}';\nCONNECTION dst = '{target_url}';\n{item};\n"
    )
    return Migrate(path, tmp_path / "state")


def read_in_run(result: subprocess.CompletedProcess[str]) -> int:
    """The rows this run read (and committed): its batches' rows, not the item's totals."""
    return sum(int(e["rows_read"]) for e in events(result.stderr, "batch_processed"))


def ok(migrate: Migrate, failpoints: str | None = None) -> subprocess.CompletedProcess[str]:
    result = migrate.run(failpoints)
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def checkpoint(url: str, item: str) -> tuple[Any, ...]:
    (row,) = pg(
        url,
        "SELECT finished, rows_read, rows_written, cursor FROM stratum.checkpoints "
        f"WHERE item = '{item}'",
    )
    return row


# --- end to end: KEY (upsert) ---------------------------------------------------------------------


def test_updated_and_new_rows_are_upserted_run_after_run_and_after_a_kill(
    tmp_path: Path,
    postgres_database: ThrowawayDatabase,
    mariadb_or_none: ThrowawayDatabase | None,
    kind: str,
) -> None:
    source = Source(kind, postgres_database, mariadb_or_none, f"keyed_{kind}")
    orders(source)
    target = f"dst_keyed_{kind}"
    item = f"dst.{target}"
    migrate = write_plan(
        tmp_path,
        source,
        postgres_database.url,
        f"MIGRATE src.{source.table} INTO {item} MODE incremental CURSOR updated_at KEY (id) "
        f"BATCH SIZE {BATCH}",
    )

    def target_rows() -> list[tuple[Any, ...]]:
        return pg(postgres_database.url, f"SELECT id, status, updated_at FROM {target} ORDER BY id")

    # run 1: everything, in (updated_at, id) order
    first = ok(migrate)
    assert read_in_run(first) == ROWS
    assert target_rows() == source.rows()
    finished, rows_read, _, cursor = checkpoint(postgres_database.url, item)
    assert finished
    assert rows_read == ROWS
    assert json.loads(cursor)[1] == ROWS  # [updated_at, id] of the last row

    # run 2: 60 rows updated to one updated_at and 10 new ones sharing it (70 rows tied: the
    # first batch ends among them), then 20 new ones later
    source.sql(
        f"UPDATE {source.table} SET status = 'run2', updated_at = '{ts(10_000)}' "
        "WHERE id BETWEEN 11 AND 70"
    )
    insert(source, [(i, "run2", ts(10_000)) for i in range(301, 311)])
    insert(source, [(i, "run2", ts(10_001 + i % 4)) for i in range(311, 331)])
    second = ok(migrate)
    assert read_in_run(second) == 90
    cursors = [e["cursor"] for e in events(second.stderr, "batch_processed")]
    assert [c[1] for c in cursors] == [60, 327]  # cut at id 60 of the 70 tied rows
    assert target_rows() == source.rows()
    (started,) = events(second.stderr, "item_started")
    assert started["resumed_from"] == json.loads(cursor)  # the first run's high-water mark
    assert checkpoint(postgres_database.url, item)[1] == ROWS + 90

    # run 3 is killed after its second commit (100 of 170 rows), run 4 finishes it
    source.sql(
        f"UPDATE {source.table} SET status = 'run3', "
        f"updated_at = {_plus(source, ts(20_000), 'floor((id - 100) / 30)')} "
        "WHERE id BETWEEN 100 AND 249"
    )
    insert(source, [(i, "run3", ts(20_005)) for i in range(331, 351)])
    killed = migrate.run("after_commit=kill@2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _, read_before, _, cursor = checkpoint(postgres_database.url, item)
    assert read_before == ROWS + 90 + 100
    assert json.loads(cursor)[1] == 199  # among the 30 rows sharing one updated_at
    resumed = ok(migrate)
    (started,) = events(resumed.stderr, "item_started")
    assert started["resumed_from"] == json.loads(cursor)
    assert read_in_run(resumed) == 70
    assert target_rows() == source.rows()
    finished, rows_read, rows_written, _ = checkpoint(postgres_database.url, item)
    assert finished
    assert rows_read == rows_written == ROWS + 90 + 170

    # nothing changed: nothing read
    idle = ok(migrate)
    assert read_in_run(idle) == 0
    assert target_rows() == source.rows()


def _plus(source: Source, at: str, seconds: str) -> str:
    """SQL: the timestamp `at` plus `seconds` seconds, in the source's dialect."""
    if source.kind == "postgres":
        return f"timestamp '{at}' + ({seconds}) * interval '1 second'"
    return f"TIMESTAMP '{at}' + INTERVAL ({seconds}) SECOND"


# --- end to end: no KEY (append) -----------------------------------------------------------------


def test_without_key_each_new_version_of_a_row_is_appended(
    tmp_path: Path,
    postgres_database: ThrowawayDatabase,
    mariadb_or_none: ThrowawayDatabase | None,
    kind: str,
) -> None:
    source = Source(kind, postgres_database, mariadb_or_none, f"appended_{kind}")
    orders(source)  # its primary key breaks the ties
    target = f"dst_appended_{kind}"
    migrate = write_plan(
        tmp_path,
        source,
        postgres_database.url,
        f"MIGRATE src.{source.table} INTO dst.{target} MODE incremental CURSOR updated_at "
        f"BATCH SIZE {BATCH}",
    )
    ok(migrate)
    versions = source.rows()
    source.sql(
        f"UPDATE {source.table} SET status = 'changed', updated_at = '{ts(10_000)}' "
        "WHERE id BETWEEN 1 AND 60"
    )
    insert(source, [(i, "added", ts(10_000)) for i in range(301, 311)])
    second = ok(migrate)
    assert read_in_run(second) == 70
    versions += [row for row in source.rows() if row[1] in ("changed", "added")]
    rows = pg(postgres_database.url, f"SELECT id, status, updated_at FROM {target} ORDER BY id, 3")
    assert rows == sorted(versions, key=lambda r: (r[0], r[2]))
    # the target holds every version: the engine created it without the source's primary key
    assert pg(
        postgres_database.url,
        f"SELECT count(*) FROM pg_index WHERE indrelid = '{target}'::regclass AND indisprimary",
    ) == [(0,)]


# --- end to end: a query with a KEY, COLUMNS renaming the CURSOR ------------------------------


def test_a_query_and_a_renamed_cursor_are_read_incrementally(
    tmp_path: Path,
    postgres_database: ThrowawayDatabase,
    mariadb_or_none: ThrowawayDatabase | None,
    kind: str,
) -> None:
    source = Source(kind, postgres_database, mariadb_or_none, f"queried_{kind}")
    orders(source)
    migrate = write_plan(
        tmp_path,
        source,
        postgres_database.url,
        f"MIGRATE QUERY src (SELECT id, status, updated_at FROM {source.table} WHERE id % 2 = 0)"
        f" INTO dst.dst_queried_{kind} MODE incremental CURSOR changed KEY (order_id)"
        " COLUMNS (id AS order_id, status, updated_at AS changed) BATCH SIZE 40;\n"
        f"MIGRATE src.{source.table} INTO dst.dst_renamed_{kind} MODE incremental CURSOR changed"
        " KEY (order_id) COLUMNS (id AS order_id, status, updated_at AS changed)"
        " WHERE id % 2 = 1 BATCH SIZE 40",
    )
    ok(migrate)
    source.sql(
        f"UPDATE {source.table} SET status = 'later', updated_at = '{ts(9_000)}' "
        "WHERE id BETWEEN 101 AND 180"
    )
    second = ok(migrate)
    per_item: dict[str, int] = {}
    for e in events(second.stderr, "batch_processed"):
        per_item[e["item"]] = per_item.get(e["item"], 0) + int(e["rows_read"])
    assert per_item == {f"dst.dst_queried_{kind}": 40, f"dst.dst_renamed_{kind}": 40}
    everything = source.rows()
    for table, parity in ((f"dst_queried_{kind}", 0), (f"dst_renamed_{kind}", 1)):
        rows = pg(
            postgres_database.url, f"SELECT order_id, status, changed FROM {table} ORDER BY 1"
        )
        assert rows == [r for r in everything if r[0] % 2 == parity]


# --- end to end: refusals -------------------------------------------------------------------------

REFUSALS = [
    (
        "missing",
        "MODE incremental CURSOR updatedat KEY (id)",
        "CURSOR 'updatedat' is not a column of {table}",
    ),
    (
        "nullable",
        "MODE incremental CURSOR touched KEY (id)",
        "the CURSOR column 'touched' of {table} may be NULL",
    ),
    ("keyless", "MODE incremental CURSOR updated_at", "has no key to break ties"),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_fail_the_item_with_the_reason(
    tmp_path: Path,
    postgres_database: ThrowawayDatabase,
    mariadb_or_none: ThrowawayDatabase | None,
    kind: str,
    refusal: tuple[str, str, str],
) -> None:
    case, clauses, message = refusal
    source = Source(kind, postgres_database, mariadb_or_none, f"refused_{case}_{kind}")
    key = "" if case == "keyless" else " PRIMARY KEY"
    source.create(
        f"id int NOT NULL{key}, updated_at {source.timestamp} NOT NULL, touched {source.timestamp}"
    )
    target = f"dst_refused_{case}_{kind}"
    item = f"dst.{target}"
    migrate = write_plan(
        tmp_path, source, postgres_database.url, f"MIGRATE src.{source.table} INTO {item} {clauses}"
    )
    _refused(migrate, item, message, target_url=postgres_database.url, target=target, source=source)


def test_a_query_without_key_is_refused(
    tmp_path: Path,
    postgres_database: ThrowawayDatabase,
    mariadb_or_none: ThrowawayDatabase | None,
    kind: str,
) -> None:
    source = Source(kind, postgres_database, mariadb_or_none, f"refused_query_{kind}")
    orders(source)
    target = f"dst_refused_query_{kind}"
    item = f"dst.{target}"
    migrate = write_plan(
        tmp_path,
        source,
        postgres_database.url,
        f"MIGRATE QUERY src (SELECT id, updated_at FROM {source.table}) INTO {item} "
        "MODE incremental CURSOR updated_at",
    )
    _refused(
        migrate,
        item,
        "MODE incremental on a query needs a KEY",
        target_url=postgres_database.url,
        target=target,
    )


def _refused(
    migrate: Migrate,
    item: str,
    message: str,
    *,
    target_url: str,
    target: str,
    source: Source | None = None,
) -> None:
    failed = migrate.run()
    assert failed.returncode == 4, failed.stderr + failed.stdout
    (finished,) = events(failed.stderr, "item_finished")
    assert finished["state"] == "failed"
    text = str(finished["message"])
    assert text.startswith(f"item '{item}': "), text
    shown = "" if source is None else f"src.{source.table}"
    assert message.format(table=shown) in text, text
    assert "Traceback" not in failed.stderr + failed.stdout
    assert pg(target_url, f"SELECT to_regclass('{target}')") == [(None,)]


# --- the sources ------------------------------------------------------------------------------

PG_TYPES: list[tuple[str, Callable[[int], Any]]] = [
    ("timestamptz", lambda n: datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=n // 3)),
    ("date", lambda n: date(2024, 1, 1) + timedelta(days=n // 3)),
    ("bigint", lambda n: n // 3 * 1000),
    ("numeric(12,3)", lambda n: Decimal(n // 3) / 8),
    ("text", lambda n: f"v{n // 3:04d}"),
]


def _pg_literal(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str | date | datetime | Decimal) else str(value)


async def _read_until_error(source: Any, batch: int) -> list[RawBatch]:
    """The batches a read yields before it fails (it must fail)."""
    batches: list[RawBatch] = []
    try:
        async for one in source.read(None, batch):
            batches.append(one)
    except SourceError:
        return batches
    raise AssertionError("the read did not fail")


@pytest.mark.parametrize(("type_", "make"), PG_TYPES, ids=[t for t, _ in PG_TYPES])
def test_postgres_source_reads_in_cursor_then_key_order_and_resumes_after_any_batch(
    postgres_database: ThrowawayDatabase, type_: str, make: Callable[[int], Any]
) -> None:
    url = postgres_database.url
    table = "typed_" + "".join(ch for ch in type_ if ch.isalpha())
    values = ", ".join(f"({n}, {_pg_literal(make(n))}, 'r{n}')" for n in range(60, 0, -1))
    pg(
        url,
        f"CREATE TABLE {table} (id int PRIMARY KEY, c {type_} NOT NULL, v text)",
        f"INSERT INTO {table} VALUES {values}",
    )
    expected = sorted(((n, make(n), f"r{n}") for n in range(1, 61)), key=lambda r: (r[1], r[0]))

    async def go() -> None:
        ref = table_ref(table)
        async with PostgresTableSource(url, ref, increments_by="c", item="i") as source:
            assert source.key == ("c", "id")
            assert (
                source.select == f'SELECT "id", "c", "v" FROM "public"."{table}" ORDER BY "c", "id"'
            )
            assert (await source.schema()).primary_key == ()  # without KEY: append versions
            batches = await read_batches(source, 7)
            assert rows_of(batches) == expected
            for i, batch in enumerate(batches):
                assert batch.cursor == json.loads(json.dumps(batch.cursor))
                rest = rows_of(await read_batches(source, 7, after=batch.cursor))
                assert rest == expected[(i + 1) * 7 :]

    asyncio.run(go())


def test_postgres_cursor_column_left_out_of_the_output_is_hidden(
    postgres_database: ThrowawayDatabase,
) -> None:
    url = postgres_database.url
    pg(
        url,
        "CREATE TABLE hidden (id int PRIMARY KEY, status text, c timestamp NOT NULL)",
        "INSERT INTO hidden SELECT g, 's' || g, timestamp '2024-01-01' + (g % 5) * interval '1 h'"
        " FROM generate_series(1, 40) g",
    )
    given = options(
        mode=Mode.INCREMENTAL,
        cursor="c",
        columns=(ColumnMap("id", "order_id"), ColumnMap("status", "status")),
    )

    async def go() -> None:
        ref = table_ref("hidden")
        async with PostgresTableSource(
            url, ref, ("id",), projection=given, increments_by="c"
        ) as source:
            assert source.select == (
                'SELECT "id" AS "order_id", "status", "c" FROM "public"."hidden" ORDER BY "c", "id"'
            )
            batches = await read_batches(source, 15)
            rows = rows_of(batches)
            assert rows == sorted(
                ((g, f"s{g}") for g in range(1, 41)), key=lambda r: (r[0] % 5, r[0])
            )
            assert batches[0].cursor == ["2024-01-01T01:00:00", 31]
            rest = rows_of(await read_batches(source, 15, after=batches[0].cursor))
            assert rest == rows[15:]

    asyncio.run(go())


def test_postgres_view_and_query_fail_the_read_on_a_null_cursor(
    postgres_database: ThrowawayDatabase,
) -> None:
    url = postgres_database.url
    pg(
        url,
        "CREATE TABLE maybe (id int PRIMARY KEY, c timestamp)",
        "INSERT INTO maybe SELECT g, CASE WHEN g = 17 THEN NULL ELSE timestamp '2024-01-01' + "
        "g * interval '1 minute' END FROM generate_series(1, 30) g",
        "CREATE VIEW maybe_view AS SELECT id, c FROM maybe",
    )

    async def go() -> None:
        with pytest.raises(ConfigError, match=r"'c' of src\.maybe may be NULL"):
            async with PostgresTableSource(url, table_ref("maybe"), increments_by="c"):
                pass
        view = PostgresTableSource(url, table_ref("maybe_view"), ("id",), increments_by="c")
        query = PostgresQuerySource(
            url, Sql("SELECT id, c FROM maybe", "postgres"), ("id",), increments_by="c"
        )
        for source in (view, query):
            async with source:  # the server cannot say whether they may be NULL
                with pytest.raises(SourceError, match="a row has NULL in the CURSOR column 'c'"):
                    await read_batches(source, 10)
                # the rows before it are read (NULLs sort last), and only they
                assert len(rows_of(await _read_until_error(source, 10))) == 20

    asyncio.run(go())


def test_postgres_refuses_a_cursor_of_a_type_a_cursor_cannot_hold(
    postgres_database: ThrowawayDatabase,
) -> None:
    url = postgres_database.url
    pg(url, "CREATE TABLE spans (id int PRIMARY KEY, c interval NOT NULL)")

    async def go() -> None:
        source = PostgresTableSource(url, table_ref("spans"), increments_by="c", item="x")
        with pytest.raises(
            ConfigError, match=r"item 'x': the CURSOR column 'c' of src.spans is of type interval"
        ):
            await source.open()

    asyncio.run(go())


MY_TYPES: list[tuple[str, Callable[[int], Any]]] = [
    ("datetime(6)", lambda n: datetime(2024, 1, 1) + timedelta(microseconds=n // 3 * 250)),
    ("date", lambda n: date(2024, 1, 1) + timedelta(days=n // 3)),
    ("bigint", lambda n: n // 3 * 1000),
    ("decimal(12,3)", lambda n: Decimal(n // 3) / 8),
    ("varchar(10)", lambda n: f"v{n // 3:04d}"),
]


@pytest.mark.parametrize(("type_", "make"), MY_TYPES, ids=[t for t, _ in MY_TYPES])
def test_mariadb_source_reads_in_cursor_then_key_order_and_resumes_after_any_batch(
    mariadb_database: ThrowawayDatabase, type_: str, make: Callable[[int], Any]
) -> None:
    url = mariadb_database.url
    table = "typed_" + "".join(ch for ch in type_ if ch.isalpha())
    values = ", ".join(f"({n}, {_pg_literal(make(n))}, 'r{n}')" for n in range(60, 0, -1))
    my(
        url,
        f"CREATE TABLE {table} (id int PRIMARY KEY, c {type_} NOT NULL, v varchar(10))",
        f"INSERT INTO {table} VALUES {values}",
    )
    expected = sorted(((n, make(n), f"r{n}") for n in range(1, 61)), key=lambda r: (r[1], r[0]))

    async def go() -> None:
        ref = table_ref(table)
        async with MySQLTableSource(url, ref, increments_by="c", item="i") as source:
            assert source.key == ("c", "id")
            assert source.select.endswith("ORDER BY `c`, `id`")
            batches = await read_batches(source, 7)
            assert rows_of(batches) == expected
            for i, batch in enumerate(batches):
                rest = rows_of(
                    await read_batches(source, 7, after=json.loads(json.dumps(batch.cursor)))
                )
                assert rest == expected[(i + 1) * 7 :]
        query = Sql(f"SELECT id AS n, c, v FROM {table}", "mysql")
        async with MySQLQuerySource(url, query, ("n",), increments_by="c") as source:
            assert source.key == ("c", "n")
            batches = await read_batches(source, 9)
            assert rows_of(batches) == expected
            assert rows_of(await read_batches(source, 9, after=batches[2].cursor)) == expected[27:]

    asyncio.run(go())


def test_mariadb_cursor_hidden_nullable_and_refused_types(
    mariadb_database: ThrowawayDatabase,
) -> None:
    url = mariadb_database.url
    my(
        url,
        "CREATE TABLE m_hidden (id int PRIMARY KEY, status varchar(10), c datetime NOT NULL, "
        "maybe datetime, doc json NOT NULL)",
        "INSERT INTO m_hidden SELECT seq, concat('s', seq), '2024-01-01' + INTERVAL seq % 5 HOUR,"
        " NULL, '{}' FROM seq_1_to_40",
    )
    given = options(
        mode=Mode.INCREMENTAL,
        cursor="c",
        columns=(ColumnMap("id", "order_id"), ColumnMap("status", "status")),
    )

    async def go() -> None:
        ref = table_ref("m_hidden")
        async with MySQLTableSource(
            url, ref, ("id",), projection=given, increments_by="c", item="h"
        ) as source:
            assert source.select.startswith("SELECT `id` AS `order_id`, `status`, `c` FROM")
            batches = await read_batches(source, 15)
            rows = rows_of(batches)
            assert rows == sorted(
                ((g, f"s{g}") for g in range(1, 41)), key=lambda r: (r[0] % 5, r[0])
            )
            assert batches[0].cursor == ["2024-01-01 01:00:00", 31]
            assert rows_of(await read_batches(source, 15, after=batches[0].cursor)) == rows[15:]
        with pytest.raises(
            ConfigError, match=r"item 'h': the CURSOR column 'maybe' of src\.m_hidden may be NULL"
        ):
            await MySQLTableSource(url, ref, increments_by="maybe", item="h").open()
        with pytest.raises(ConfigError, match=r"'doc' of src\.m_hidden is of type"):
            await MySQLTableSource(url, ref, increments_by="doc", item="h").open()
        query = Sql("SELECT id, maybe FROM m_hidden", "mysql")
        with pytest.raises(ConfigError, match="'maybe' of the query may be NULL"):
            await MySQLQuerySource(url, query, ("id",), increments_by="maybe", item="h").open()

    asyncio.run(go())
