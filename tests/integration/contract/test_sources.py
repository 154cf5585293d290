"""The contract every source keeps, run against each real one (as test_destinations.py does for
destinations).

Every test runs on every source, each holding the same logical rows (`ROWS`: a bigint key, text
with quotes, commas, line breaks and unicode, a numeric(12,2), a date, and NULLs) in its own
medium: a CSV, a JSON Lines and a Parquet file (read through `open_file_source`, as a plan's
MIGRATE FILE is), a PostgreSQL table and query (`postgres_database`), a MariaDB table and query
(`mariadb_database`). The database sources are skipped when their server is unreachable, or fail
with STRATUM_REQUIRE_DATABASES=1. The tables are loaded in shuffled order, so that only the key
orders their rows; the files are written in key order, which is their own order.

What is checked is what the engine's resume and PARTITIONS rest on: the columns in order,
batches of at most N rows with a position each, every row once in a stable order, a resume after
any batch's cursor (through JSON, as a checkpoint keeps it) yielding exactly the rest, a source
read again giving the same rows, no resume claimed without a key, key ranges from `split()`
partitioning the rows exactly, and values coming back unaltered (as the types each source
documents: CSV yields text, JSON Lines text for what JSON has no type for).
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import duckdb
import pytest

from smql import FileFormat
from stratum.connectors.base import Cursor, RawBatch, Row, Source
from stratum.connectors.files import CsvSource, JsonLinesSource, ParquetSource, open_file_source
from stratum.connectors.mysql import MySQLTableSource, connect
from stratum.connectors.mysql.source import MySQLQuerySource
from stratum.connectors.postgres import PostgresTableSource
from stratum.connectors.postgres.source import PostgresQuerySource
from stratum.connectors.pushdown import Bounds
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import CsvOptions, FileSource, Sql
from stratum.runtime.partitions import ranges
from tests.support.databases import ThrowawayDatabase
from tests.support.sources import table_ref

pytestmark = pytest.mark.asyncio

FileSourceType: TypeAlias = CsvSource | JsonLinesSource | ParquetSource
DbSource: TypeAlias = (
    PostgresTableSource | PostgresQuerySource | MySQLTableSource | MySQLQuerySource
)
AnySource: TypeAlias = FileSourceType | DbSource

# --- the logical rows -------------------------------------------------------------------------

NAMES = ("id", "label", "amount", "day")
COUNT = 3000
BATCH = 701  # not a divisor of COUNT: the last batch is short

#: Text that a file format, a quoting rule or a driver could get wrong.
LABELS = (
    'say "hello"',
    "it's",
    "a,b,c",
    "semi;colon",
    "naïve café",
    "日本語のテキスト",
    "emoji 😀🎉 (4-byte UTF-8)",
    "tab\there",
    "line one\nline two",
    "crlf\r\nline",
    "  padded  ",
    "",
    "back\\slash",
    "100% %s %% %(x)s",
    "NULL",
    "null",
    '{"json": [1, 2]}',
    'ends with a quote"',
    '"',
    "Ωmega ß ẞ",
    "' OR 1=1; --",
)


def _rows() -> list[Row]:
    """COUNT rows in key order: (id, label, amount, day), NULLs in every nullable column."""
    ids = [-(2**40), *((i - 1000) * 7 for i in range(1, COUNT - 1)), 2**53 + 1]
    amounts = {1: Decimal("9999999999.99"), 2: Decimal("-9999999999.99"), 4: Decimal("0.00")}
    days = {1: date(1000, 1, 1), 2: date(9999, 12, 31), 4: date(2024, 2, 29)}
    rows: list[Row] = []
    for i, key in enumerate(ids):
        label: str | None = f"row {i}"
        if i % 17 == 5:
            label = None
        elif i % 3 == 0:
            label = LABELS[(i // 3) % len(LABELS)]
        amount: Decimal | None = Decimal((i * 7919) % 2_000_001 - 1_000_000).scaleb(-2)
        if i in amounts:
            amount = amounts[i]
        elif i % 11 == 3:
            amount = None
        day: date | None = date(1970, 1, 1) + timedelta(days=(i * 37) % 30_000)
        if i in days:
            day = days[i]
        elif i % 13 == 7:
            day = None
        rows.append((key, label, amount, day))
    return rows


ROWS = _rows()


def _text(value: Any) -> str | None:
    """A value as a text file holds it."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _as_csv(row: Row) -> Row:
    return tuple(_text(v) for v in row)


def _as_jsonl(row: Row) -> Row:
    key, label, amount, day = row
    return (key, label, _text(amount), _text(day))


def _csv_lines(rows: Sequence[Row]) -> list[int]:
    """The line each record of the CSV file starts on: after the header, and after the line
    breaks inside quoted values (CRLF is one)."""
    lines, line = [], 2
    for row in rows:
        lines.append(line)
        line += 1 + sum(len(re.findall(r"\r\n|\r|\n", v)) for v in row if isinstance(v, str))
    return lines


# --- the media --------------------------------------------------------------------------------

CSV_OPTIONS = CsvOptions(
    header=True, delimiter=",", quote='"', escape=None, null="\\N", encoding="utf-8"
)


@dataclass(frozen=True)
class Files:
    csv: Path
    jsonl: Path
    parquet: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    directory = tmp_path_factory.mktemp("sources")
    found = Files(directory / "rows.csv", directory / "rows.jsonl", directory / "rows.parquet")
    with found.csv.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(NAMES)
        writer.writerows(
            tuple(CSV_OPTIONS.null if v is None else v for v in _as_csv(row)) for row in ROWS
        )
    with found.jsonl.open("w", encoding="utf-8") as out:
        for row in ROWS:
            out.write(json.dumps(dict(zip(NAMES, _as_jsonl(row), strict=True))) + "\n")
    with duckdb.connect() as connection:
        connection.execute(
            "CREATE TABLE t (id BIGINT, label VARCHAR, amount DECIMAL(12,2), day DATE)"
        )
        for start in range(0, COUNT, 500):
            chunk = ROWS[start : start + 500]
            values = ", ".join(["(?, ?, CAST(? AS DECIMAL(12,2)), CAST(? AS DATE))"] * len(chunk))
            args = [value for row in chunk for value in (row[0], row[1], *map(_text, row[2:]))]
            connection.execute(f"INSERT INTO t VALUES {values}", args)
        connection.execute(f"COPY t TO '{found.parquet}' (FORMAT parquet, ROW_GROUP_SIZE 1024)")
    return found


def _shuffled() -> list[Row]:
    rows = list(ROWS)
    random.Random(20240229).shuffle(rows)
    return rows


#: The tables every database holds: keyed by a primary key, with no key at all, and with a
#: UNIQUE key on a column that may be NULL (not usable as a key either).
PG_TABLES = {
    "src_rows": "id bigint PRIMARY KEY, label text, amount numeric(12,2), day date",
    "src_nokey": "id bigint NOT NULL, label text, amount numeric(12,2), day date",
    "src_nullable_key": "id bigint UNIQUE, label text, amount numeric(12,2), day date",
}
MY_TABLES = {
    "src_rows": "id BIGINT NOT NULL PRIMARY KEY, label TEXT, amount DECIMAL(12,2), day DATE",
    "src_nokey": "id BIGINT NOT NULL, label TEXT, amount DECIMAL(12,2), day DATE",
    "src_nullable_key": "id BIGINT NULL UNIQUE, label TEXT, amount DECIMAL(12,2), day DATE",
}
#: The query sources' query: every row of src_rows (the LIKE's `%` is there for MySQL's
#: drivers, which format statements with `%`).
QUERY = "SELECT id, label, amount, day FROM src_rows WHERE label IS NULL OR label NOT LIKE 'zz%'"


@pytest.fixture(scope="module")
def postgres_tables(postgres_database: ThrowawayDatabase) -> str:
    async def load() -> None:
        conn = await asyncpg.connect(postgres_database.url)
        try:
            for table, columns in PG_TABLES.items():
                await conn.execute(f"CREATE TABLE {table} ({columns})")
                # dates and decimals as text, cast by the server: asyncpg's own codecs would
                # store date.max as 'infinity'
                rows = _shuffled()
                await conn.execute(
                    f"INSERT INTO {table} SELECT * FROM unnest($1::bigint[], $2::text[], "
                    "$3::text[]::numeric[], $4::text[]::date[])",
                    *([_text(row[i]) if i >= 2 else row[i] for row in rows] for i in range(4)),
                )
        finally:
            await conn.close()

    asyncio.run(load())
    return postgres_database.url


@pytest.fixture(scope="module")
def mariadb_tables(mariadb_database: ThrowawayDatabase) -> str:
    async def load() -> None:
        conn = await connect(mariadb_database.url)
        try:
            for table, columns in MY_TABLES.items():
                await conn.execute(
                    f"CREATE TABLE {table} ({columns}) "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
                rows = _shuffled()
                for start in range(0, COUNT, 500):
                    chunk = rows[start : start + 500]
                    values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
                    args = [value for row in chunk for value in row]
                    await conn.execute(f"INSERT INTO {table} VALUES {values}", args)
        finally:
            await conn.close()

    asyncio.run(load())
    return mariadb_database.url


# --- the sources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A source under test: how to make it (a fresh object, as a new run would), and what it
    must yield."""

    name: str
    make: Callable[[], AnySource]
    expected: list[Row]  # ROWS as this source yields them
    types: tuple[str, ...]  # the schema's column types
    #: the positions of a full read: where each row is in the file (its line, its row), or the
    #: 1-based ordinal of the row within the read, as the database sources number them
    positions: list[int] = field(default_factory=lambda: list(range(1, COUNT + 1)))
    #: whether positions are ordinals within each read (they restart at 1 on a resume) rather
    #: than places in the file
    ordinals: bool = True
    file: bool = False
    #: the same rows read without a usable key (database sources only)
    keyless: tuple[tuple[str, Callable[[], DbSource]], ...] = ()
    #: the keyed source limited to a key range (database sources only)
    bounded: Callable[[Bounds | None], DbSource] | None = None


def _file_source(path: Path, format: FileFormat, options: CsvOptions | None) -> FileSourceType:
    source = open_file_source(FileSource(path.name, format, options), path.parent)
    assert isinstance(source, CsvSource | JsonLinesSource | ParquetSource)
    return source


def _file_case(kind: str, files: Files) -> Case:
    if kind == "csv":
        return Case(
            kind,
            lambda: _file_source(files.csv, FileFormat.CSV, CSV_OPTIONS),
            [_as_csv(row) for row in ROWS],
            ("text", "text", "text", "text"),
            positions=_csv_lines([_as_csv(row) for row in ROWS]),
            ordinals=False,
            file=True,
        )
    if kind == "jsonl":
        return Case(
            kind,
            lambda: _file_source(files.jsonl, FileFormat.JSONL, None),
            [_as_jsonl(row) for row in ROWS],
            ("bigint", "text", "text", "text"),
            ordinals=False,  # one object per line: its line
            file=True,
        )
    return Case(
        kind,
        lambda: _file_source(files.parquet, FileFormat.PARQUET, None),
        list(ROWS),
        ("bigint", "text", "numeric(12,2)", "date"),
        ordinals=False,  # the row's place in the file
        file=True,
    )


def _database_case(
    kind: str,
    url: str,
    table_source: Callable[..., DbSource],
    query_source: Callable[..., DbSource],
    query_types: tuple[str, ...],
) -> Case:
    """The table source (kind ...-table) or the query source on the server at `url`."""
    dialect = "postgres" if kind.startswith("postgres") else "mysql"
    if kind.endswith("-table"):

        def table(bounds: Bounds | None) -> DbSource:
            return table_source(url, table_ref("src_rows"), bounds=bounds)

        return Case(
            kind,
            lambda: table(None),
            list(ROWS),
            ("bigint", "text", "numeric(12,2)", "date"),
            keyless=(
                ("no key", lambda: table_source(url, table_ref("src_nokey"))),
                ("nullable unique key", lambda: table_source(url, table_ref("src_nullable_key"))),
            ),
            bounded=table,
        )

    def query(bounds: Bounds | None) -> DbSource:
        return query_source(url, Sql(QUERY, dialect), ("id",), bounds=bounds, item="q")

    return Case(
        kind,
        lambda: query(None),
        list(ROWS),
        query_types,
        keyless=(("no KEY", lambda: query_source(url, Sql(QUERY, dialect))),),
        bounded=query,
    )


def _postgres_case(kind: str, url: str) -> Case:
    # a query's result types carry no typmod
    types = ("bigint", "text", "numeric", "date")
    return _database_case(kind, url, PostgresTableSource, PostgresQuerySource, types)


def _mariadb_case(kind: str, url: str) -> Case:
    types = ("bigint", "text", "numeric(12,2)", "date")
    return _database_case(kind, url, MySQLTableSource, MySQLQuerySource, types)


KEYED = [
    pytest.param("postgres-table", marks=pytest.mark.postgres),
    pytest.param("postgres-query", marks=pytest.mark.postgres),
    pytest.param("mariadb-table", marks=pytest.mark.mariadb),
    pytest.param("mariadb-query", marks=pytest.mark.mariadb),
]
SOURCES = ["csv", "jsonl", "parquet", *KEYED]


@pytest.fixture(params=SOURCES)
def case(request: pytest.FixtureRequest) -> Case:
    kind: str = request.param
    if kind.startswith("postgres"):
        # The conftest's fixtures (through postgres_tables): skipped without a server, a failure
        # when databases are required. Resolved in a plain fixture: they run their own loop.
        return _postgres_case(kind, request.getfixturevalue("postgres_tables"))
    if kind.startswith("mariadb"):
        return _mariadb_case(kind, request.getfixturevalue("mariadb_tables"))
    return _file_case(kind, request.getfixturevalue("files"))


# --- helpers ----------------------------------------------------------------------------------


async def _read(source: AnySource, batch_size: int = BATCH, after: Cursor = None) -> list[RawBatch]:
    return [batch async for batch in source.read(after, batch_size)]


async def _read_fresh(case: Case, batch_size: int = BATCH, after: Cursor = None) -> list[RawBatch]:
    async with case.make() as source:
        return await _read(source, batch_size, after)


def _flat(batches: Sequence[RawBatch]) -> list[Row]:
    return [row for batch in batches for row in batch.rows]


def _json(cursor: Any) -> Any:
    """The cursor as a checkpoint gives it back."""
    return json.loads(json.dumps(cursor))


class Interrupted(Exception):
    pass


async def _fail_after_one_batch(source: AnySource) -> None:
    async for _ in source.read(None, BATCH):
        raise Interrupted


# --- 1. open, schema, close -------------------------------------------------------------------


async def test_open_schema_close_and_async_with(case: Case) -> None:
    source = case.make()
    assert isinstance(source, Source)
    await source.close()  # never opened: nothing to close
    await source.open()
    await source.open()  # a retried open is harmless
    try:
        schema = await source.schema()
        assert schema.names == NAMES
        assert tuple(c.type for c in schema.columns) == case.types
        assert getattr(source, "resumable", True) is True  # the key is found on open
    finally:
        await source.close()
    await source.close()  # idempotent

    async with case.make() as again:
        assert (await again.schema()).names == NAMES
        first = await anext(aiter(again.read(None, 10)))
        assert len(first.rows) == 10
    await again.close()  # after `async with` closed it: still harmless


# --- 2. reading everything --------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 1000, BATCH, COUNT + 1])
async def test_reads_every_row_once_in_a_stable_order(case: Case, batch_size: int) -> None:
    if batch_size == 1:  # one row per batch: only the start, to stay fast
        async with case.make() as source:
            reader = source.read(None, 1)
            batches = [await anext(reader) for _ in range(5)]
            await reader.aclose()  # type: ignore[attr-defined]
        assert [len(b.rows) for b in batches] == [1] * 5
        assert _flat(batches) == case.expected[:5]
        return

    batches = await _read_fresh(case, batch_size)
    for batch in batches:
        assert 0 < len(batch.rows) <= batch_size
        assert len(batch.positions) == len(batch.rows)
        assert batch.rejected == []
        assert batch.cursor is not None  # a resumable source: every batch can be resumed after
    positions = [p for batch in batches for p in batch.positions]
    assert positions == case.positions
    rows = _flat(batches)
    assert len(rows) == COUNT
    assert [row[0] for row in rows] == [row[0] for row in case.expected]  # once each, key order
    assert len({row[0] for row in rows}) == COUNT


# --- 3. resume after any batch ----------------------------------------------------------------


async def test_resume_after_every_batch_yields_exactly_the_rest(case: Case) -> None:
    batches = await _read_fresh(case)
    rows = _flat(batches)
    assert len(batches) == -(-COUNT // BATCH)
    consumed = 0
    for k, batch in enumerate(batches):
        consumed += len(batch.rows)
        cursor = _json(batch.cursor)
        assert cursor == batch.cursor, f"batch {k}: the cursor changes through JSON"
        # a new run resumes on a new source object, with another batch size perhaps
        rest = await _read_fresh(case, 997, after=cursor)
        assert _flat(rest) == rows[consumed:], f"resuming after batch {k} ({cursor!r})"
        positions = [p for b in rest for p in b.positions]
        if case.ordinals:
            assert positions == list(range(1, COUNT - consumed + 1)), f"after batch {k}"
        else:  # the file's own positions
            assert positions == case.positions[consumed:], f"after batch {k}"


# --- 4. read again ----------------------------------------------------------------------------


async def test_a_source_read_again_gives_the_same_rows(case: Case) -> None:
    async with case.make() as source:
        first = await _read(source)
        # a read that fails part-way (the consumer raises after one batch, leaving it unclosed)
        with pytest.raises(Interrupted):
            await _fail_after_one_batch(source)
        second = await _read(source)
        # and a resume on the same object
        third = await _read(source, BATCH, after=_json(first[1].cursor))
    assert _flat(second) == _flat(first)
    assert [b.positions for b in second] == [b.positions for b in first]
    assert [b.cursor for b in second] == [b.cursor for b in first]
    assert _flat(third) == _flat(first)[len(first[0].rows) + len(first[1].rows) :]


# --- 5. without a key -------------------------------------------------------------------------


async def test_without_a_key_no_resume_is_claimed_and_everything_is_read(case: Case) -> None:
    if case.file:
        # a file has no key: it is resumable by record count
        async with case.make() as source:
            assert getattr(source, "resumable", True) is True
            batches = await _read(source)
        counts = [len(b.rows) for b in batches]
        assert [b.cursor for b in batches] == [sum(counts[: i + 1]) for i in range(len(counts))]
        assert _flat(batches) == case.expected
        return

    assert case.keyless
    for what, make in case.keyless:
        async with make() as source:
            assert source.resumable is False, what
            assert (await source.schema()).names == NAMES
            batches = await _read(source)
            with pytest.raises(SourceError):
                await _read(source, BATCH, after=[0])
        for batch in batches:
            assert 0 < len(batch.rows) <= BATCH, what
            assert len(batch.positions) == len(batch.rows), what
            assert batch.cursor is None, what
        # no key, no order: every row once, in whatever order
        assert sorted(_flat(batches), key=lambda row: row[0]) == case.expected, what


# --- 6. key ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", KEYED, indirect=True)
@pytest.mark.parametrize("parts", [1, 2, 5])
async def test_split_ranges_partition_the_rows_exactly(case: Case, parts: int) -> None:
    assert case.bounded is not None
    async with case.bounded(None) as source:
        full = _flat(await _read(source, 1000))
        boundaries = _json(await source.split(parts))
    assert len(boundaries) == parts - 1
    keys = [b[0] for b in boundaries]
    assert keys == sorted(set(keys)), "boundaries must increase"

    pieces: list[list[Row]] = []
    for bounds in ranges(boundaries):
        async with case.bounded(bounds) as part:
            batches = await _read(part, 250)
            if len(batches) > 1:  # a resume within a range stays within it
                rest = await _read(part, 250, after=_json(batches[0].cursor))
                assert _flat(rest) == _flat(batches)[len(batches[0].rows) :], bounds
        pieces.append(_flat(batches))
    assert [row for piece in pieces for row in piece] == full  # every row in exactly one range
    for piece in pieces:
        assert abs(len(piece) - COUNT / parts) <= 1, [len(p) for p in pieces]


@pytest.mark.parametrize("case", KEYED, indirect=True)
async def test_a_source_without_a_key_cannot_be_split(case: Case) -> None:
    for what, make in case.keyless:
        async with make() as source:
            with pytest.raises(ConfigError):
                await source.split(2)
            assert source.resumable is False, what


# --- 7. values --------------------------------------------------------------------------------


def _same(expected: Any, got: Any) -> bool:
    if type(expected) is not type(got) or expected != got:
        return False
    return not isinstance(expected, Decimal) or str(expected) == str(got)  # the scale too


async def test_values_come_back_unaltered(case: Case) -> None:
    rows = _flat(await _read_fresh(case, 1000))
    assert len(rows) == len(case.expected)
    altered = [
        (want[0], NAMES[i], want[i], got[i])
        for want, got in zip(case.expected, rows, strict=True)
        for i in range(len(NAMES))
        if not _same(want[i], got[i])
    ]
    assert altered == [], f"{len(altered)} values altered (key, column, expected, got)"
    # every kind of value is there to be checked
    assert {row[1] for row in case.expected} >= {_text(label) for label in LABELS} | {None}
    assert any(row[2] is None for row in rows)
    assert any(row[3] is None for row in rows)
