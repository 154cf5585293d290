"""The MySQL destination's types and values, without a server (the integration tests write
them: tests/integration/contract/test_destinations.py, tests/integration/postgres/
test_pg_types_copy.py)."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from stratum.connectors.base import Column, Schema
from stratum.connectors.mysql._dest_types import encode_rows, mysql_type, pg_type
from stratum.connectors.mysql.types import pg_type as source_pg_type  # the source's mapping


def _encode(type_: str, value: Any) -> Any:
    schema = Schema((Column("v", type_),))
    [(encoded,)] = encode_rows(schema, [(value,)])
    return encoded


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (
            [date(2024, 2, 29), date(9, 12, 4), None, "infinity"],
            '["2024-02-29","0009-12-04",null,"infinity"]',
        ),
        ([datetime(2024, 1, 1, 0, 0, 0, 120000)], '["2024-01-01T00:00:00.12"]'),
        (
            [datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))],
            '["2024-01-01T00:00:00+00:00"]',
        ),
        (
            [time(12, 0, 0, 500000, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))],
            '["12:00:00.5-03:30"]',
        ),
        ([time(23, 59, 59, 999999)], '["23:59:59.999999"]'),
        ([uuid.UUID(int=1)], '["00000000-0000-0000-0000-000000000001"]'),
        ([b"\x00\xff", bytearray(b""), memoryview(b"\x01")], '["\\\\x00ff","\\\\x","\\\\x01"]'),
        (
            [[Decimal("0.1000000000000000000001"), None], [Decimal("1.50"), date(1, 1, 1)]],
            '[[0.1000000000000000000001,null],[1.50,"0001-01-01"]]',
        ),
        (
            [ipaddress.ip_interface("10.0.0.1/24"), ipaddress.ip_network("10.0.0.0/8")],
            '["10.0.0.1/24","10.0.0.0/8"]',
        ),
        ([timedelta(days=1, seconds=3600)], '["1 day 01:00:00"]'),
    ],
)
def test_array_elements_are_written_as_postgresql_to_json_writes_them(
    value: Any, text: str
) -> None:
    assert _encode("date[]", value) == text
    assert _encode("jsonb", value) == text  # the type an existing target reads back as


@pytest.mark.parametrize("value", [[Decimal("NaN")], [float("inf")], [{1, 2}], [object()]])
def test_an_array_element_json_cannot_hold_is_refused(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        _encode("numeric[]", value)


def test_timetz_is_postgresqls_text() -> None:
    assert mysql_type("time with time zone") == "LONGTEXT"
    assert mysql_type("timetz(3)", key_bytes=400) == (
        "VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    )
    assert mysql_type("time(3)") == "TIME(3)"
    cases = {
        time(12, tzinfo=timezone(timedelta(hours=2))): "12:00:00+02",
        time(0, 0, 1, 500000, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=15))): (
            "00:00:01.5+05:30:15"
        ),
        time(6, tzinfo=UTC): "06:00:00+00",
        "08:00:00-05": "08:00:00-05",
    }
    for value, text in cases.items():
        assert _encode("timetz", value) == text


@pytest.mark.parametrize("column_type", ["year", "year(4)"])
def test_year_reads_back_as_the_mysql_source_maps_it(column_type: str) -> None:
    assert pg_type(column_type) == source_pg_type(column_type, "year") == "integer"
