"""MySQLTableSource against the real MariaDB: types, keys, batches, resume, drivers, snapshot."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from stratum.connectors.base import Column, Cursor, RawBatch, Source
from stratum.connectors.mysql import MySQLTableSource, connect, pg_type
from stratum.connectors.mysql.source import MySQLQuerySource
from stratum.errors import ConfigError, ConnectionLost, SourceError
from stratum.plan.model import Sql
from tests.support.databases import ThrowawayDatabase
from tests.support.sources import rows_of, table_ref


async def _run(url: str, *statements: str | tuple[str, Sequence[Any]]) -> None:
    conn = await connect(url)
    try:
        for statement in statements:
            sql, args = statement if isinstance(statement, tuple) else (statement, None)
            await conn.execute(sql, args)
    finally:
        await conn.close()


async def _batches(
    url: str, table: str, *, after: Cursor = None, batch_size: int = 1000, **kw: Any
) -> list[RawBatch]:
    async with MySQLTableSource(url, table_ref(table), **kw) as source:
        return [batch async for batch in source.read(after, batch_size)]


# --- types ------------------------------------------------------------------------------------

_TYPES_DDL = """
CREATE TABLE all_types (
  id INT PRIMARY KEY,
  flag TINYINT(1), ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, mui MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d12 DECIMAL(12,2), fl FLOAT, db DOUBLE,
  ch CHAR(5), vc VARCHAR(20), latin VARCHAR(20) CHARACTER SET latin1, tx TEXT, lt LONGTEXT,
  bn BINARY(3), vb VARBINARY(10), bl BLOB,
  dt DATE, dtm DATETIME(3), ts TIMESTAMP(6) NULL, tm TIME(2), yr YEAR,
  js JSON, en ENUM('a,b', 'it''s', '"q"', 'x'), st SET('a', 'b', 'c'),
  b1 BIT(1), b10 BIT(10), b64 BIT(64), geo POINT
)"""

_EXPECTED_TYPES = {
    "id": "integer",
    "flag": "boolean",
    "ti": "smallint",
    "tiu": "smallint",
    "si": "smallint",
    "siu": "integer",
    "mi": "integer",
    "mui": "integer",
    "i": "integer",
    "iu": "bigint",
    "bi": "bigint",
    "biu": "numeric(20,0)",
    "d65": "numeric(65,30)",
    "d12": "numeric(12,2)",
    "fl": "real",
    "db": "double precision",
    "ch": "varchar(5)",
    "vc": "varchar(20)",
    "latin": "varchar(20)",
    "tx": "text",
    "lt": "text",
    "bn": "bytea",
    "vb": "bytea",
    "bl": "bytea",
    "dt": "date",
    "dtm": "timestamp",
    "ts": "timestamptz",
    "tm": "time",
    "yr": "integer",
    "js": "jsonb",
    "en": "text",
    "st": "text[]",
    "b1": "boolean",
    "b10": "bit varying(10)",
    "b64": "bit varying(64)",
    "geo": "bytea",
}

_ROW_1 = """INSERT INTO all_types VALUES (
  1, 1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
  -9223372036854775808, 18446744073709551615,
  '12345678901234567890123456789012345.123456789012345678901234567891', 1234567890.12,
  1.5, 0.1, 'ab', 'héllo 😀 wörld', 'café', 'long', 'x',
  x'0001', x'00ff10', x'deadbeef',
  '0009-12-04', '2024-02-29 23:59:59.123', '2024-01-31 12:00:00.250000', '12:34:56.78', 2024,
  '{"a": [1, 2.5, "x"], "b": null}', 'a,b', 'c,a', b'1', b'1010',
  0xFFFFFFFFFFFFFFFF,
  ST_GeomFromText('POINT(1 2)'))"""
_ROW_2 = """INSERT INTO all_types (id, flag, dt, dtm, ts, tm, yr, js, en, st, b1, b10, vc)
  VALUES (2, 0, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '00:00:00', 0,
          '"text"', 'it''s', '', b'0', b'0', '')"""
_ROW_3 = """INSERT INTO all_types (id, dt, dtm, en, js)
  VALUES (3, '2020-00-15', '2020-01-00 10:00:00', '"q"', '[]')"""
_ROW_4 = "INSERT INTO all_types (id) VALUES (4)"

_EXPECTED_ROW_1 = (
    1,
    True,
    -128,
    255,
    -32768,
    65535,
    -8388608,
    16777215,
    -2147483648,
    4294967295,
    -9223372036854775808,
    Decimal("18446744073709551615"),
    Decimal("12345678901234567890123456789012345.123456789012345678901234567891"),
    Decimal("1234567890.12"),
    1.5,
    0.1,
    "ab",
    "héllo 😀 wörld",
    "café",
    "long",
    "x",
    b"\x00\x01\x00",
    b"\x00\xff\x10",
    b"\xde\xad\xbe\xef",
    date(9, 12, 4),
    datetime(2024, 2, 29, 23, 59, 59, 123000),
    datetime(2024, 1, 31, 12, 0, 0, 250000, tzinfo=UTC),
    time(12, 34, 56, 780000),
    2024,
    {"a": [1, 2.5, "x"], "b": None},
    "a,b",
    ["a", "c"],
    True,
    "0000001010",
    "1" * 64,
    bytes.fromhex("0101000000000000000000f03f0000000000000040"),  # WKB of POINT(1 2)
)


async def _make_types_table(url: str) -> None:
    await _run(url, "DROP TABLE IF EXISTS all_types", _TYPES_DDL, _ROW_1, _ROW_2, _ROW_3, _ROW_4)


@pytest.mark.asyncio
async def test_every_type_round_trips(mariadb_database: ThrowawayDatabase) -> None:
    url = mariadb_database.url
    await _make_types_table(url)
    async with MySQLTableSource(url, table_ref("all_types")) as source:
        assert isinstance(source, Source)
        schema = await source.schema()
        batches = [b async for b in source.read(None, 10)]
    assert {c.name: c.type for c in schema.columns} == _EXPECTED_TYPES
    assert schema.names == tuple(_EXPECTED_TYPES)
    assert schema.columns[0] == Column("id", "integer", nullable=False, native="int(11)")
    assert schema.primary_key == ("id",)
    assert [b.rejected for b in batches] == [[]]
    rows = rows_of(batches)
    assert rows[0] == _EXPECTED_ROW_1
    for got, want in zip(rows[0], _EXPECTED_ROW_1, strict=True):
        assert type(got) is type(want), (got, want)
    by_name = [dict(zip(schema.names, row, strict=True)) for row in rows]
    zero = by_name[1]
    assert (zero["flag"], zero["b1"], zero["b10"]) == (False, False, "0" * 10)
    assert (zero["dt"], zero["dtm"], zero["ts"]) == (None, None, None)  # zero dates -> None
    assert (zero["tm"], zero["yr"], zero["js"]) == (time(0), 0, "text")
    assert (zero["en"], zero["st"], zero["vc"]) == ("it's", [], "")
    partial = by_name[2]
    assert (partial["dt"], partial["dtm"]) == (None, None)  # partial zero dates -> None
    assert (partial["en"], partial["js"]) == ('"q"', [])
    assert rows[3] == (4,) + (None,) * (len(_EXPECTED_TYPES) - 1)
    assert [b.positions for b in batches] == [[1, 2, 3, 4]]
    assert batches[0].cursor == [4]


@pytest.mark.asyncio
async def test_both_drivers_give_identical_rows(mariadb_database: ThrowawayDatabase) -> None:
    url = mariadb_database.url
    await _make_types_table(url)
    asyncmy_rows = rows_of(await _batches(url, "all_types", batch_size=3))
    aiomysql_rows = rows_of(await _batches(url + "?driver=aiomysql", "all_types", batch_size=3))
    assert asyncmy_rows == aiomysql_rows
    assert len(asyncmy_rows) == 4


@pytest.mark.asyncio
async def test_time_outside_postgres_range_rejects_the_row(
    mariadb_database: ThrowawayDatabase,
) -> None:
    url = mariadb_database.url
    await _run(
        url,
        "CREATE TABLE times (id INT PRIMARY KEY, t TIME, b TINYINT(1))",
        "INSERT INTO times VALUES (1, '-838:59:59', 0), (2, '23:59:59', 1), (3, '24:00:00', 0),"
        " (4, '01:00:00', 2)",
    )
    batches = await _batches(url, "times")
    assert rows_of(batches) == [(2, time(23, 59, 59), True)]
    assert batches[0].positions == [2]
    rejected = batches[0].rejected
    assert [(r.position, r.row) for r in rejected] == [
        (1, (1, _td(-838, 59, 59), 0)),
        (3, (3, _td(24, 0, 0), 0)),
        (4, (4, _td(1, 0, 0), 2)),
    ]
    assert "-838:59:59" in rejected[0].reason
    assert "'b'" in rejected[2].reason
    assert batches[0].cursor == [4]  # the cursor moves past rejected rows


def _td(hours: int, minutes: int, seconds: int) -> Any:
    from datetime import timedelta

    sign = -1 if hours < 0 else 1
    return sign * timedelta(hours=abs(hours), minutes=minutes, seconds=seconds)


def test_pg_type_spellings() -> None:
    assert pg_type("tinyint(1)", "tinyint") == "boolean"
    assert pg_type("int(10) unsigned", "int") == "bigint"
    assert pg_type("bigint(20) unsigned", "bigint") == "numeric(20,0)"
    assert pg_type("decimal(10,0)", "decimal") == "numeric(10,0)"
    assert pg_type("longtext", "longtext", is_json=True) == "jsonb"
    assert pg_type("set('a','b')", "set") == "text[]"
    with pytest.raises(SourceError, match="no PostgreSQL mapping"):
        pg_type("vector(3)", "vector", column="v")


# --- keys -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_key_discovery(mariadb_database: ThrowawayDatabase) -> None:
    url = mariadb_database.url
    await _run(
        url,
        "CREATE TABLE k_pk (a INT, b VARCHAR(5), c INT NOT NULL UNIQUE, PRIMARY KEY (b, a))",
        "CREATE TABLE k_unique (x INT UNIQUE, y INT NOT NULL, z INT NOT NULL,"
        " UNIQUE KEY two (y, z), UNIQUE KEY one (z))",
        "CREATE TABLE k_none (x INT, y INT UNIQUE)",
    )
    expected = {
        "k_pk": (("b", "a"), ("b", "a")),
        "k_unique": (("z",), ("z",)),
        "k_none": ((), ()),
    }
    for table, (primary_key, key) in expected.items():
        async with MySQLTableSource(url, table_ref(table)) as source:
            schema = await source.schema()
            assert schema.primary_key == primary_key, table
            assert source.key == key, table
            assert source.resumable is bool(key), table
    async with MySQLTableSource(url, table_ref("k_pk"), key=("c",)) as source:
        assert source.key == ("c",)
        assert (await source.schema()).primary_key == ("b", "a")
        assert source.resumable
    with pytest.raises(ConfigError, match="may be NULL"):
        await MySQLTableSource(url, table_ref("k_none"), key=("x",)).open()
    with pytest.raises(ConfigError, match="does not exist"):
        await MySQLTableSource(url, table_ref("k_none"), key=("nope",)).open()


@pytest.mark.asyncio
async def test_no_key_reads_whole_with_no_cursor(mariadb_database: ThrowawayDatabase) -> None:
    url = mariadb_database.url
    await _run(url, "CREATE TABLE nokey (v INT)", "INSERT INTO nokey VALUES (3), (1), (2)")
    batches = await _batches(url, "nokey", batch_size=2)
    assert sorted(rows_of(batches)) == [(1,), (2,), (3,)]
    assert [b.cursor for b in batches] == [None, None]
    assert [b.positions for b in batches] == [[1, 2], [3]]
    async with MySQLTableSource(url, table_ref("nokey")) as source:
        with pytest.raises(SourceError, match="no primary or unique key"):
            [b async for b in source.read([1], 2)]


# --- batches and resume -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_twenty_thousand_rows_in_batches(mariadb_database: ThrowawayDatabase) -> None:
    url = mariadb_database.url
    await _run(
        url,
        "CREATE TABLE big (id INT PRIMARY KEY, label VARCHAR(20) NOT NULL)",
        "INSERT INTO big SELECT seq, CONCAT('row ', seq) FROM seq_1_to_20000",
    )
    batches = await _batches(url, "big", batch_size=1000)
    assert [len(b.rows) for b in batches] == [1000] * 20
    assert rows_of(batches) == [(i, f"row {i}") for i in range(1, 20001)]
    assert [p for b in batches for p in b.positions] == list(range(1, 20001))
    assert [b.cursor for b in batches] == [[1000 * n] for n in range(1, 21)]


_RESUME_TABLES = {
    "r_int": (
        "CREATE TABLE r_int (id BIGINT UNSIGNED PRIMARY KEY, v INT)",
        "INSERT INTO r_int SELECT seq * 7 + 18446744073709500000, seq FROM seq_1_to_500",
    ),
    "r_varchar": (
        "CREATE TABLE r_varchar (k VARCHAR(20) CHARACTER SET utf8mb4 PRIMARY KEY, v INT)",
        "INSERT INTO r_varchar SELECT CONCAT(CHAR(65 + seq % 26), 'é😀', seq), seq"
        " FROM seq_1_to_500",
    ),
    "r_datetime": (
        "CREATE TABLE r_datetime (t DATETIME(6) PRIMARY KEY, v INT)",
        "INSERT INTO r_datetime SELECT '2024-01-01' + INTERVAL seq * 1001 MICROSECOND"
        " + INTERVAL seq DAY, seq FROM seq_1_to_500",
    ),
    "r_composite": (
        "CREATE TABLE r_composite (a DATE NOT NULL, b DECIMAL(10,3) NOT NULL,"
        " c VARBINARY(4) NOT NULL, v INT, PRIMARY KEY (a, b, c))",
        "INSERT INTO r_composite SELECT '2024-01-01' + INTERVAL seq % 3 DAY, (seq % 5) / 8,"
        " UNHEX(LPAD(HEX(seq), 4, '0')), seq FROM seq_1_to_500",
    ),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("table", list(_RESUME_TABLES))
async def test_resume_after_every_kth_cursor(
    mariadb_database: ThrowawayDatabase, table: str
) -> None:
    url = mariadb_database.url
    await _run(url, *_RESUME_TABLES[table])
    full = await _batches(url, table, batch_size=23)
    everything = rows_of(full)
    assert len(everything) == 500
    read_so_far = 0
    for k, batch in enumerate(full):
        read_so_far += len(batch.rows)
        if k % 4 != 0:
            continue
        cursor = json.loads(json.dumps(batch.cursor))
        rest = rows_of(await _batches(url, table, after=cursor, batch_size=50))
        assert rest == everything[read_so_far:], (table, k, cursor)


@pytest.mark.asyncio
async def test_enum_key_resumes_in_index_order(mariadb_database: ThrowawayDatabase) -> None:
    url = mariadb_database.url
    await _run(
        url,
        "CREATE TABLE r_enum (e ENUM('zeta', 'alpha', 'mid') NOT NULL, n INT NOT NULL,"
        " PRIMARY KEY (e, n))",
        "INSERT INTO r_enum SELECT ELT(1 + seq % 3, 'zeta', 'alpha', 'mid'), seq FROM seq_1_to_30",
    )
    full = await _batches(url, "r_enum", batch_size=4)
    everything = rows_of(full)
    assert [e for e, _ in everything[:10]] == ["zeta"] * 10  # index order, not alphabetical
    seen = 0
    for batch in full:
        seen += len(batch.rows)
        rest = rows_of(await _batches(url, "r_enum", after=json.loads(json.dumps(batch.cursor))))
        assert rest == everything[seen:]


@pytest.mark.asyncio
async def test_bad_cursor_is_refused(mariadb_database: ThrowawayDatabase) -> None:
    url = mariadb_database.url
    await _run(url, "CREATE TABLE bad_cursor (id INT PRIMARY KEY)")
    async with MySQLTableSource(url, table_ref("bad_cursor")) as source:
        for cursor in (5, [1, 2], ["x"]):
            with pytest.raises(SourceError, match="cannot resume"):
                [b async for b in source.read(cursor, 10)]


# --- snapshot ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_read_sees_one_snapshot(mariadb_database: ThrowawayDatabase) -> None:
    url = mariadb_database.url
    await _run(
        url,
        "CREATE TABLE snap (id INT PRIMARY KEY, v INT)",
        "INSERT INTO snap SELECT seq, 0 FROM seq_1_to_5000",
    )
    async with MySQLTableSource(url, table_ref("snap")) as source:
        reader = source.read(None, 100)
        first = await anext(reader)
        await _run(
            url,
            "INSERT INTO snap SELECT seq, 1 FROM seq_5001_to_5100",
            "UPDATE snap SET v = 2 WHERE id > 4000",
            "DELETE FROM snap WHERE id BETWEEN 2000 AND 2100",
        )
        rest = [row async for batch in reader for row in batch.rows]
    rows = first.rows + rest
    assert rows == [(i, 0) for i in range(1, 5001)]
    after = rows_of(await _batches(url, "snap"))
    assert len(after) == 5100 - 101


@pytest.mark.asyncio
async def test_abandoned_read_releases_its_connection(
    mariadb_database: ThrowawayDatabase,
) -> None:
    url = mariadb_database.url
    await _run(
        url,
        "CREATE TABLE abandon (id INT PRIMARY KEY)",
        "INSERT INTO abandon SELECT seq FROM seq_1_to_20000",
    )
    source = MySQLTableSource(url, table_ref("abandon"))
    reader = source.read(None, 10)
    assert len((await anext(reader)).rows) == 10
    await reader.aclose()  # drops the socket rather than reading the rest
    assert not source._live
    reader = source.read(None, 10)
    await anext(reader)
    await source.close()  # a read abandoned without aclose
    assert not source._live


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_errors_name_what_is_wrong(mariadb_database: ThrowawayDatabase) -> None:
    url = mariadb_database.url
    server = mariadb_database.server
    with pytest.raises(SourceError, match="'no_such_table' does not exist"):
        await MySQLTableSource(url, table_ref("no_such_table")).open()
    with pytest.raises(SourceError, match="'no_such_db_x' does not exist"):
        await MySQLTableSource(url, table_ref("t", "no_such_db_x")).open()
    bad_login = f"mysql://stratum_no_such_user:secret@{server.host}:{server.port}/x"
    with pytest.raises(SourceError, match="Access denied") as denied:
        await MySQLTableSource(bad_login, table_ref("t")).open()
    assert "secret" not in str(denied.value)
    with pytest.raises(ConnectionLost):
        await MySQLTableSource(
            "mysql://root@127.0.0.1:1/x?connect_timeout=2", table_ref("t")
        ).open()
    with pytest.raises(ConfigError, match="unknown MySQL driver"):
        await connect(url + "?driver=mysqlclient")
    with pytest.raises(ConfigError, match="unknown MySQL URL parameter"):
        await connect(url + "?sslmode=on")
    with pytest.raises(ConfigError, match="no database"):
        await MySQLTableSource(f"mysql://root@{server.host}:{server.port}", table_ref("t")).open()


@pytest.mark.asyncio
async def test_schema_qualifies_the_database(mariadb_database: ThrowawayDatabase) -> None:
    server = mariadb_database.server
    await _run(
        mariadb_database.url,
        "CREATE TABLE `we``ird` (id INT PRIMARY KEY)",
        "INSERT INTO `we``ird` VALUES (1)",
    )
    url = f"mysql://{server.user}@{server.host}:{server.port}/"
    if server.password:
        pytest.skip("the password-less URL form is only for the default server")
    async with MySQLTableSource(url, table_ref("we`ird", mariadb_database.name)) as source:
        assert [b.rows async for b in source.read(None, 5)] == [[(1,)]]


@pytest.mark.asyncio
async def test_a_float_arrives_with_every_bit_it_stores(
    mariadb_database: ThrowawayDatabase,
) -> None:
    """The server prints FLOAT with 6 significant digits; the source reads the float32 whole."""
    conn = await connect(mariadb_database.url)
    try:
        await conn.execute("CREATE TABLE floats (id int PRIMARY KEY, f float, d double)")
        await conn.execute("INSERT INTO floats VALUES (1, 1.2345678, 1.2345678), (2, NULL, 0)")
        await conn.execute("COMMIT")
    finally:
        await conn.close()
    float32 = struct.unpack("f", struct.pack("f", 1.2345678))[0]
    assert float32 != 1.23457
    query = Sql("SELECT id, f, d FROM floats", "mysql")
    for source in (
        MySQLTableSource(mariadb_database.url, table_ref("floats")),
        MySQLQuerySource(mariadb_database.url, query, ("id",)),  # keyed: read in key order
        MySQLQuerySource(mariadb_database.url, query),  # keyless: read whole
    ):
        async with source:
            rows = [row async for batch in source.read(None, 10) for row in batch.rows]
        assert sorted(rows, key=lambda r: r[0]) == [(1, float32, 1.2345678), (2, None, 0.0)]
