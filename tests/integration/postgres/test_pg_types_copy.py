"""PostgreSQL's types through `stratum migrate`: PostgreSQL -> PostgreSQL, value by value, and
PostgreSQL -> MariaDB, with the column type each PostgreSQL type becomes and the value read
back, and the rows MariaDB cannot hold rejected with their reason (never stored changed).

The source table holds the traps: arrays (NULL elements, quotes, commas, braces, 2-D, numeric),
jsonb (nested, unicode, numbers past a float), numeric (huge precision, NaN), timestamptz,
timestamp and date (year 9, infinity), uuid, bytea with NUL bytes, a domain with a CHECK, an
enum, interval (months and days apart), inet, bit varying and bit(n). A second table holds
arrays whose elements JSON has no type for (dates, timestamps, times, uuids, bytea, nested) and
a timetz, which MariaDB has no type for either.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from stratum.connectors.postgres._codecs import interval_text, parse_interval
from tests.support import databases as db
from tests.support.databases import DatabaseServer, ThrowawayDatabase
from tests.support.migrate import Migrate
from tests.support.sql import my, pg

_SETUP = [
    "CREATE TYPE mood AS ENUM ('happy', 'sad, very', 'it''s \"ok\"')",
    "CREATE DOMAIN short_code AS text CHECK (length(VALUE) <= 8)",
    """CREATE TABLE types_src (
        id integer PRIMARY KEY,
        ints integer[],
        texts text[],
        grid integer[][],
        amounts numeric[],
        doc jsonb,
        big numeric,
        wide numeric(100, 40),
        price numeric(12, 2),
        ts_tz timestamptz,
        ts timestamp,
        day date,
        uid uuid,
        blob bytea,
        code short_code,
        feeling mood,
        span interval,
        addr inet,
        bits bit varying(12),
        nibble bit(4)
    )""",
]

_DOC_1 = (
    '{"a": {"b": [1, 2.5, "x", null, true, false]}, "uni": "é 😀 \\u00e9 \\"q\\" \\\\",'
    ' "big": 123456789012345678901234567890, "precise": 0.1000000000000000000001,'
    ' "tiny": 0.00001, "neg": -12345678901234567.5, "scaled": 1.50, "empty": {}}'
)
_BIG_1 = "12345678901234567890123456789012345.123456789012345678901234567891"

_COLUMNS = [
    "id",
    "ints",
    "texts",
    "grid",
    "amounts",
    "doc",
    "big",
    "wide",
    "price",
    "ts_tz",
    "ts",
    "day",
    "uid",
    "blob",
    "code",
    "feeling",
    "span",
    "addr",
    "bits",
    "nibble",
]


def _only(column: str, literal: str) -> str:
    """The values (after id) of a row that is NULL but for `column`."""
    return ", ".join(literal if c == column else "NULL" for c in _COLUMNS[1:])


# id -> the row's values after id, as SQL literals, in column order
_ROWS: dict[int, str] = {
    1: (
        "ARRAY[1, NULL, -2147483648, 2147483647], "
        "ARRAY['a', NULL, 'b,c', '\"q\"', 'it''s', '{x}', 'back\\slash', 'é😀', 'NULL', ''], "
        "ARRAY[[1, 2], [3, NULL]], "
        "ARRAY[1.50, -0.001, 12345678901234567890.123456789]::numeric[], "
        f"'{_DOC_1}', "
        f"'{_BIG_1}', 1.5, 1234567890.12, "
        "'2024-02-29 23:59:59.123456+05:30', '0009-12-04 01:02:03.000004', '0009-12-04', "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff0000', 'ok', 'sad, very', "
        "'1 year 2 mons 3 days 04:05:06.5', '192.168.0.1/24', B'000000000101', B'1010'"
    ),
    2: _only("id", "NULL"),
    3: (
        "'{}', '{}', '{}', '{}', '[1, \"two\", [3]]', "
        "'-0.000000000000000000000000000001', '-123.4', '-0.01', "
        "'1970-01-01 00:00:00+00', '2038-01-19 03:14:08', '2024-01-31', "
        "'00000000-0000-0000-0000-000000000000', '\\x', '', 'it''s \"ok\"', "
        "'-1 years -2 mons +3 days -04:05:06', '2001:db8::1/64', B'111111111111', B'0000'"
    ),
    4: _only("big", "'NaN'"),
    5: _only("big", "1e-40"),
    6: _only("day", "'infinity'"),
    7: _only("ts_tz", "'-infinity'"),
    8: _only("bits", "B'101'"),
    9: _only("amounts", "ARRAY[1.5, 'NaN']::numeric[]"),
    10: _only("wide", "123456789012345678901234567890123456789012345.5"),
    11: _only("ts", "'infinity'"),
}

#: Rows MariaDB cannot hold exactly, with a phrase of the reason each is rejected with.
_REFUSED_BY_MARIADB = {
    4: "NaN",  # numeric NaN
    5: "does not fit DECIMAL(65,30)",  # 1e-40 needs 40 digits after the point
    6: "infinite",  # date 'infinity'
    7: "-infinity",  # timestamptz '-infinity'
    8: "BIT(12)",  # a 3-bit varbit in a BIT(12) would gain leading zeros
    9: "NaN",  # NaN inside a numeric[] (JSON has no NaN)
    10: "does not fit DECIMAL(65,30)",  # 45 digits before the point
    11: "infinite",  # timestamp 'infinity'
}

#: PostgreSQL type -> the MariaDB COLUMN_TYPE Stratum creates for it.
_MARIADB_TYPES = {
    "id": "int(11)",
    "ints": "longtext",  # JSON (MariaDB's JSON is LONGTEXT CHECK (json_valid))
    "texts": "longtext",
    "grid": "longtext",
    "amounts": "longtext",
    "doc": "longtext",
    "big": "decimal(65,30)",
    "wide": "decimal(65,30)",
    "price": "decimal(12,2)",
    "ts_tz": "datetime(6)",
    "ts": "datetime(6)",
    "day": "date",
    "uid": "char(36)",
    "blob": "longblob",
    "code": "longtext",
    "feeling": "longtext",
    "span": "longtext",
    "addr": "longtext",
    "bits": "bit(12)",
    "nibble": "char(4)",
}
_JSON_COLUMNS = {"ints", "texts", "grid", "amounts", "doc"}


@pytest.fixture(scope="module")
def source(postgres_database: ThrowawayDatabase) -> str:
    values = ", ".join(f"({i}, {row})" for i, row in _ROWS.items())
    pg(postgres_database.url, *_SETUP, f"INSERT INTO types_src VALUES {values}")
    return postgres_database.url


@pytest.fixture(scope="module")
def fresh_postgres(postgres_server: DatabaseServer) -> Iterator[str]:
    """A second PostgreSQL database, without the source's enum and domain types."""
    name = db.unique_database_name(__name__ + "_target")
    asyncio.run(db.create_postgres_database(name, postgres_server))
    try:
        yield postgres_server.url_for(name)
    finally:
        asyncio.run(db.drop_postgres_database(name, postgres_server))


def _migrate(
    directory: Path, source_url: str, target_url: str, target: str, table: str = "types_src"
) -> Path:
    """Run one table copy (ON ERROR reject, small batches); the state directory."""
    directory.mkdir(parents=True, exist_ok=True)
    plan = directory / "copy.smql"
    plan.write_text(
        f"CONNECTION src = '{source_url}';\nCONNECTION dst = '{target_url}';\n"
        f"MIGRATE src.public.{table} INTO dst.{target} BATCH SIZE 4 ON ERROR reject;\n",
        encoding="utf-8",
    )
    state = directory / "state"
    result = Migrate(plan, state).run()
    assert result.returncode == 0, result.stderr + result.stdout
    return state


def _rejects(state: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(state.rglob("*.rejects.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def _as_text(url: str, table: str) -> list[tuple[Any, ...]]:
    """Every value in PostgreSQL's text form (the strictest comparison: an interval's months,
    a numeric's scale, a bit string's length all show); jsonb parsed, numbers as Decimals."""
    columns = ", ".join(f"{c}::text" for c in _COLUMNS)
    rows = pg(url, f"SELECT {columns} FROM {table} ORDER BY id")
    at = [_COLUMNS.index(c) for c in ("doc",)]
    out = []
    for row in rows:
        values = list(row)
        for i in at:
            if values[i] is not None:
                values[i] = json.loads(values[i], parse_float=Decimal)
        out.append(tuple(values))
    return out


def test_postgres_to_postgres_keeps_every_value(
    tmp_path: Path, source: str, fresh_postgres: str
) -> None:
    state = _migrate(tmp_path, source, fresh_postgres, "public.types_copy")
    assert _rejects(state) == []
    assert _as_text(fresh_postgres, "types_copy") == _as_text(source, "types_src")
    # the typed values too, as asyncpg reads them (NaN is never equal to itself, and jsonb
    # arrives as text, where 1.50 may be 1.5: both compared above)
    typed = ", ".join(c for c in _COLUMNS if c != "doc")
    select = f"SELECT {typed} FROM {{}} WHERE id NOT IN (4, 9) ORDER BY id"
    assert pg(fresh_postgres, select.format("types_copy")) == pg(source, select.format("types_src"))
    types = (
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = '{}'::regclass AND attnum > 0 ORDER BY attnum"
    )
    copied = dict(pg(fresh_postgres, types.format("types_copy")))
    original = dict(pg(source, types.format("types_src")))
    # the enum and the domain do not exist in the fresh database: their values are text
    assert copied == original | {"code": "text", "feeling": "text"}
    spot = pg(
        fresh_postgres, "SELECT span::text, bits::text, day::text FROM types_copy ORDER BY id"
    )
    assert spot[0] == ("1 year 2 mons 3 days 04:05:06.5", "000000000101", "0009-12-04")
    assert spot[2][0] == "-1 years -2 mons +3 days -04:05:06"


def test_postgres_to_postgres_into_the_same_database_keeps_enum_and_domain(
    tmp_path: Path, source: str
) -> None:
    _migrate(tmp_path, source, source, "public.types_same")
    assert _as_text(source, "types_same") == _as_text(source, "types_src")
    kinds = dict(
        pg(
            source,
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'types_same'::regclass AND attname IN ('code', 'feeling')",
        )
    )
    assert kinds == {"code": "short_code", "feeling": "mood"}


def test_postgres_to_mariadb_maps_each_type_and_rejects_what_cannot_be_kept(
    tmp_path: Path, source: str, mariadb_database: ThrowawayDatabase
) -> None:
    state = _migrate(tmp_path, source, mariadb_database.url, "types_copy")
    url = mariadb_database.url

    # the types created
    created = dict(
        my(
            url,
            "SELECT column_name, column_type FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = 'types_copy' "
            "ORDER BY ordinal_position",
        )
    )
    assert created == _MARIADB_TYPES
    checks = {
        str(clause)
        for (clause,) in my(
            url,
            "SELECT check_clause FROM information_schema.check_constraints "
            "WHERE constraint_schema = DATABASE() AND table_name = 'types_copy'",
        )
    }
    assert checks == {f"json_valid(`{c}`)" for c in _JSON_COLUMNS}

    # what could not be kept exactly is rejected, with the reason
    rejects = {r["position"]: r["reason"] for r in _rejects(state)}
    assert sorted(rejects) == sorted(_REFUSED_BY_MARIADB)  # ids are positions: read in id order
    for position, phrase in _REFUSED_BY_MARIADB.items():
        assert phrase in rejects[position], (position, rejects[position])

    # and every other row is there, each value as PostgreSQL had it
    rows = my(url, "SELECT * FROM types_copy ORDER BY id")
    assert [r[0] for r in rows] == [1, 2, 3]
    one, two, three = (dict(zip(_COLUMNS, row, strict=True)) for row in rows)
    for column in _JSON_COLUMNS:
        for row in (one, three):
            row[column] = json.loads(row[column], parse_float=Decimal)
    assert one == {
        "id": 1,
        "ints": [1, None, -2147483648, 2147483647],
        "texts": ["a", None, "b,c", '"q"', "it's", "{x}", "back\\slash", "é😀", "NULL", ""],
        "grid": [[1, 2], [3, None]],
        "amounts": [Decimal("1.50"), Decimal("-0.001"), Decimal("12345678901234567890.123456789")],
        "doc": json.loads(_DOC_1, parse_float=Decimal),
        "big": Decimal(_BIG_1),
        "wide": Decimal("1.5"),
        "price": Decimal("1234567890.12"),
        "ts_tz": datetime(2024, 2, 29, 18, 29, 59, 123456),  # in UTC
        "ts": datetime(9, 12, 4, 1, 2, 3, 4),
        "day": date(9, 12, 4),
        "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "blob": b"\x00\xff\x00\x00",
        "code": "ok",
        "feeling": "sad, very",
        "span": "1 year 2 mons 3 days 04:05:06.5",
        "addr": "192.168.0.1/24",
        "bits": (5).to_bytes(2, "big"),  # BIT(12) reads as 2 bytes: 0b000000000101
        "nibble": "1010",
    }
    # numbers in JSON keep every digit, as PostgreSQL's jsonb had them
    assert one["doc"]["precise"] == Decimal("0.1000000000000000000001")
    assert one["doc"]["big"] == 123456789012345678901234567890
    assert two == {"id": 2} | dict.fromkeys(_COLUMNS[1:])
    assert three == {
        "id": 3,
        "ints": [],
        "texts": [],
        "grid": [],
        "amounts": [],
        "doc": [1, "two", [3]],
        "big": Decimal("-0.000000000000000000000000000001"),
        "wide": Decimal("-123.4"),
        "price": Decimal("-0.01"),
        "ts_tz": datetime(1970, 1, 1),
        "ts": datetime(2038, 1, 19, 3, 14, 8),
        "day": date(2024, 1, 31),
        "uid": "00000000-0000-0000-0000-000000000000",
        "blob": b"",
        "code": "",
        "feeling": 'it\'s "ok"',
        "span": "-1 years -2 mons +3 days -04:05:06",
        "addr": "2001:db8::1/64",
        "bits": (4095).to_bytes(2, "big"),
        "nibble": "0000",
    }


def test_the_mariadb_copy_reads_back_as_the_source(
    tmp_path: Path, source: str, mariadb_database: ThrowawayDatabase
) -> None:
    """PostgreSQL -> MariaDB -> PostgreSQL: what MariaDB kept comes back equal, under Stratum's
    MySQL mapping (JSON -> jsonb, BIT(12) -> bit varying(12), DATETIME -> timestamp)."""
    _migrate(tmp_path / "out", source, mariadb_database.url, "types_round")
    plan = tmp_path / "back.smql"
    plan.write_text(
        f"CONNECTION src = '{mariadb_database.url}';\nCONNECTION dst = '{source}';\n"
        "MIGRATE src.types_round INTO dst.public.types_back;\n"
    )
    result = Migrate(plan, tmp_path / "state_back").run()
    assert result.returncode == 0, result.stderr + result.stdout
    back = pg(
        source,
        "SELECT id, bits::text, span, addr, uid, ts_tz, doc::text FROM types_back ORDER BY id",
    )
    original = pg(
        source,
        "SELECT id, bits::text, span::text, addr::text, uid::text, ts_tz, doc::text "
        "FROM types_src WHERE id <= 3 ORDER BY id",
    )
    assert len(back) == len(original) == 3
    for got, want in zip(back, original, strict=True):
        assert got[:5] == want[:5]
        assert (got[5] is None and want[5] is None) or got[5] == want[5].astimezone(UTC).replace(
            tzinfo=None
        )
        if want[6] is not None:
            assert json.loads(got[6], parse_float=Decimal) == json.loads(
                want[6], parse_float=Decimal
            )


_TEMPORAL_SETUP = """CREATE TABLE temporal_src (
    id integer PRIMARY KEY,
    days date[],
    stamps timestamp[],
    instants timestamptz[],
    clocks time[],
    zoned timetz[],
    uids uuid[],
    amounts numeric[],
    blobs bytea[],
    grid date[][],
    clock_tz timetz
)"""
_TEMPORAL_ARRAYS = ["days", "stamps", "instants", "clocks", "zoned", "uids", "amounts", "blobs"]
_TEMPORAL_ROWS = [
    "(1, ARRAY['2024-02-29', '0009-12-04', NULL, 'infinity']::date[], "
    "ARRAY['2024-02-29 23:59:59.12', '0009-12-04 01:02:03.000004', '-infinity']::timestamp[], "
    "ARRAY['2024-02-29 23:59:59.5+05:30', '1970-01-01 00:00:00+00']::timestamptz[], "
    "ARRAY['12:00:00.5', '23:59:59.999999', '00:00']::time[], "
    "ARRAY['12:00:00.5+02', '01:00-03:30', NULL]::timetz[], "
    "ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', NULL]::uuid[], "
    "ARRAY[0.1000000000000000000001, 12345678901234567.5, 1.50]::numeric[], "
    "ARRAY['\\x00ff'::bytea, '\\x', NULL], "
    "ARRAY[['2024-01-01', '2024-01-02'], ['2024-01-03', NULL]]::date[], "
    "'12:00:00+02')",
    "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(3, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '23:59:59.999999-03:30')",
    "(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '00:00:01.5+05:45')",
]


def test_postgres_to_mariadb_arrays_of_any_element_and_timetz(
    tmp_path: Path, source: str, mariadb_database: ThrowawayDatabase
) -> None:
    """Arrays whose elements JSON has no type for become JSON arrays holding each element as
    PostgreSQL's own to_json writes it (the oracle below), and a timetz becomes PostgreSQL's
    text of it, offset included: no row is rejected, no value is changed."""
    pg(source, _TEMPORAL_SETUP, f"INSERT INTO temporal_src VALUES {', '.join(_TEMPORAL_ROWS)}")
    state = _migrate(tmp_path, source, mariadb_database.url, "temporal_copy", "temporal_src")
    assert _rejects(state) == []
    url = mariadb_database.url
    arrays = [*_TEMPORAL_ARRAYS, "grid"]
    created = dict(
        my(
            url,
            "SELECT column_name, column_type FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = 'temporal_copy'",
        )
    )
    assert created == {"id": "int(11)", "clock_tz": "longtext"} | dict.fromkeys(arrays, "longtext")

    copied = my(url, f"SELECT id, {', '.join(arrays)}, clock_tz FROM temporal_copy ORDER BY id")
    # PostgreSQL's own JSON of each array (session in UTC), and its own text of the timetz
    wanted = pg(
        source,
        "SET TimeZone = 'UTC'",
        f"SELECT id, {', '.join(f'to_json({c})::text' for c in arrays)}, clock_tz::text "
        "FROM temporal_src ORDER BY id",
    )
    assert [row[0] for row in copied] == [row[0] for row in wanted] == [1, 2, 3, 4]
    for got, want in zip(copied, wanted, strict=True):
        for column, stored, expected in zip(["id", *arrays, "clock_tz"], got, want, strict=True):
            if column in arrays and stored is not None:
                assert json.loads(stored, parse_float=Decimal) == json.loads(
                    expected, parse_float=Decimal
                ), (got[0], column)
            else:
                assert stored == expected, (got[0], column)

    # spelt out for the first row
    one = dict(zip(["id", *arrays, "clock_tz"], copied[0], strict=True))
    assert json.loads(one["days"]) == ["2024-02-29", "0009-12-04", None, "infinity"]
    assert json.loads(one["stamps"]) == [
        "2024-02-29T23:59:59.12",
        "0009-12-04T01:02:03.000004",
        "-infinity",
    ]
    assert json.loads(one["instants"]) == [
        "2024-02-29T18:29:59.5+00:00",
        "1970-01-01T00:00:00+00:00",
    ]
    assert json.loads(one["clocks"]) == ["12:00:00.5", "23:59:59.999999", "00:00:00"]
    assert json.loads(one["zoned"]) == ["12:00:00.5+02", "01:00:00-03:30", None]
    assert json.loads(one["uids"]) == ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None]
    assert json.loads(one["amounts"], parse_float=Decimal) == [
        Decimal("0.1000000000000000000001"),
        Decimal("12345678901234567.5"),
        Decimal("1.50"),
    ]
    assert "1.50" in one["amounts"]
    assert json.loads(one["blobs"]) == ["\\x00ff", "\\x", None]
    assert json.loads(one["grid"]) == [["2024-01-01", "2024-01-02"], ["2024-01-03", None]]
    assert [row[-1] for row in copied] == [
        "12:00:00+02",
        None,
        "23:59:59.999999-03:30",
        "00:00:01.5+05:45",
    ]


def test_interval_text_is_postgresqls_own(postgres_database: ThrowawayDatabase) -> None:
    """`_codecs.interval_text` prints what PostgreSQL prints (IntervalStyle postgres), and
    `parse_interval` reads it back, for random months/days/microseconds of both signs."""
    rng = random.Random(7)
    fields = [(0, 0, 0), (12, 0, 0), (-12, 0, 0), (-14, 3, -14_706_000_000), (0, 0, -1)]
    for _ in range(500):
        fields.append(
            (
                rng.choice([0, rng.randint(-30_000, 30_000)]),
                rng.choice([0, rng.randint(-100_000, 100_000)]),
                rng.choice([0, rng.randint(-(10**14), 10**14), rng.randint(-(10**7), 10**7)]),
            )
        )

    async def check() -> None:
        conn = await asyncpg.connect(postgres_database.url)
        try:
            await conn.execute("SET IntervalStyle = 'postgres'")
            await conn.set_type_codec(
                "interval",
                schema="pg_catalog",
                encoder=lambda v: v,
                decoder=lambda v: v,
                format="tuple",
            )
            for months, days, micros in fields:
                text = interval_text(months, days, micros)
                assert await conn.fetchval("SELECT $1::interval::text", (months, days, micros)) == (
                    text
                )
                assert parse_interval(text) == (months, days, micros)
                assert await conn.fetchval("SELECT $1::text::interval", text) == (
                    months,
                    days,
                    micros,
                )
        finally:
            await conn.close()

    asyncio.run(check())
