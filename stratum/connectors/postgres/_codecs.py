"""How values are encoded on every connection of the PostgreSQL destination.

asyncpg's defaults are kept, except where they would change a value silently or refuse one that
`Row` allows:

* json, jsonb: the value is the JSON value itself (dict, list, str, number, bool) and is
  serialised with `json_text`; by default asyncpg wants JSON text. A `str` is therefore a JSON
  string, and SQL NULL is None.
* timestamptz: a naive datetime is UTC. asyncpg takes it as the *client machine's* local time,
  so the same row would load differently on another machine.
* timestamp: an aware datetime is converted to UTC and stored without its zone (asyncpg refuses
  it); a naive one is stored as it is.

datetime.max and datetime.min stand for 'infinity' and '-infinity', as in asyncpg.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from stratum.connectors.sql import json_text

__all__ = ["init_connection"]

_EPOCH = datetime(2000, 1, 1)  # PostgreSQL's
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
_INFINITY = 0x7FFF_FFFF_FFFF_FFFF
_NEGATIVE_INFINITY = -0x8000_0000_0000_0000


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise TypeError(f"expected a datetime.date or datetime.datetime, got {type(value).__name__}")


def encode_timestamp(value: Any) -> tuple[int]:
    moment = _as_datetime(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    elif moment == datetime.max:
        return (_INFINITY,)
    elif moment == datetime.min:
        return (_NEGATIVE_INFINITY,)
    return (_micros(moment - _EPOCH),)


def decode_timestamp(value: tuple[int]) -> datetime:
    micros = value[0]
    if micros == _INFINITY:
        return datetime.max
    if micros == _NEGATIVE_INFINITY:
        return datetime.min
    return _EPOCH + timedelta(microseconds=micros)


def encode_timestamptz(value: Any) -> tuple[int]:
    moment = _as_datetime(value)
    if moment.tzinfo is None:
        if moment == datetime.max:
            return (_INFINITY,)
        if moment == datetime.min:
            return (_NEGATIVE_INFINITY,)
        moment = moment.replace(tzinfo=UTC)
    return (_micros(moment - _EPOCH_UTC),)


def decode_timestamptz(value: tuple[int]) -> datetime:
    micros = value[0]
    if micros == _INFINITY:
        return datetime.max.replace(tzinfo=UTC)
    if micros == _NEGATIVE_INFINITY:
        return datetime.min.replace(tzinfo=UTC)
    return _EPOCH_UTC + timedelta(microseconds=micros)


def encode_json(value: Any) -> bytes:
    return json_text(value).encode("utf-8")


def decode_json(data: bytes) -> Any:
    return json.loads(data)


def encode_jsonb(value: Any) -> bytes:
    return b"\x01" + json_text(value).encode("utf-8")  # jsonb's binary format: version 1, text


def decode_jsonb(data: bytes) -> Any:
    return json.loads(data[1:])


async def init_connection(conn: Any) -> None:
    """Install the codecs on a new connection of the pool."""
    for name, encoder, decoder, format_ in (
        ("json", encode_json, decode_json, "binary"),
        ("jsonb", encode_jsonb, decode_jsonb, "binary"),
        ("timestamp", encode_timestamp, decode_timestamp, "tuple"),
        ("timestamptz", encode_timestamptz, decode_timestamptz, "tuple"),
    ):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=encoder, decoder=decoder, format=format_
        )
