"""How values are encoded and decoded on the PostgreSQL connections (destination and source).

asyncpg's defaults are kept, except where they would change a value silently or refuse one that
`Row` allows:

* json, jsonb: the value is the JSON value itself (dict, list, str, number, bool) and is
  serialised with `json_text`; by default asyncpg wants JSON text. A `str` is therefore a JSON
  string, and SQL NULL is None.
* timestamptz: a naive datetime is UTC. asyncpg takes it as the *client machine's* local time,
  so the same row would load differently on another machine. Values read are aware, in UTC.
* timestamp: an aware datetime is converted to UTC and stored without its zone (asyncpg refuses
  it); a naive one is stored as it is.
* date, timestamp, timestamptz: PostgreSQL's 'infinity' and '-infinity' are the strs
  'infinity' and '-infinity' (`INFINITY`, `NEGATIVE_INFINITY`), both ways. asyncpg reads them
  as date.max / datetime.max (and min), which a real '9999-12-31' or '0001-01-01 00:00:00'
  also is: one of the two would be changed into the other. A destination that has no infinite
  dates (MySQL) refuses the row instead of storing 9999-12-31.
* bit, bit varying: the value is a str of '0'/'1' characters (the row contract of
  `stratum.connectors.base`), read and written in the types' binary format; asyncpg's own
  codec wants an `asyncpg.BitString` and refuses a str. A BitString is still accepted.
* interval: the value is a str in PostgreSQL's output form ('1 year 2 mons 3 days
  04:05:06.5', IntervalStyle postgres, whatever the session's style), made from and parsed
  back into the type's three fields (months, days, microseconds). asyncpg's timedelta folds
  months into 30 days and years into 365: '1 year' would come back as '365 days'. A timedelta
  is still accepted when writing (days and microseconds, no months).
* json/jsonb numbers: a number that a float would change (0.1000000000000000000001, or
  12345678901234567.5) is decoded as a Decimal, and Decimals are written with every digit
  (`json_exact`); other numbers are int and float, as `json.loads` gives them. Trailing zeros
  of a float's text are not kept ('1.50' reads as 1.5): jsonb compares them equal.

The source installs the same codecs on its connection (`install_value_codecs`, plus json), so
what it reads is what the destination writes.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from stratum.connectors.sql import json_text
from stratum.transforms.convert import json_number

__all__ = [
    "INFINITY",
    "NEGATIVE_INFINITY",
    "decode_bits",
    "decode_interval",
    "encode_bits",
    "encode_interval",
    "init_connection",
    "install_value_codecs",
    "interval_text",
    "json_exact",
    "json_number",
    "parse_interval",
]

_EPOCH = datetime(2000, 1, 1)  # PostgreSQL's
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
_EPOCH_DATE = date(2000, 1, 1).toordinal()
_INFINITY = 0x7FFF_FFFF_FFFF_FFFF
_NEGATIVE_INFINITY = -0x8000_0000_0000_0000
_DATE_INFINITY = 0x7FFF_FFFF
_DATE_NEGATIVE_INFINITY = -0x8000_0000

#: How PostgreSQL's infinite dates and timestamps travel in rows (no Python date holds them).
INFINITY = "infinity"
NEGATIVE_INFINITY = "-infinity"


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _infinity(value: Any, positive: int, negative: int) -> int | None:
    """The type's infinity for 'infinity' and '-infinity'; None for any other value."""
    if value.__class__ is str:
        if value == INFINITY:
            return positive
        if value == NEGATIVE_INFINITY:
            return negative
        raise ValueError(f"{value!r} is not a date or time (only 'infinity' and '-infinity' are)")
    return None


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise TypeError(f"expected a datetime.date or datetime.datetime, got {type(value).__name__}")


def encode_date(value: Any) -> tuple[int]:
    infinite = _infinity(value, _DATE_INFINITY, _DATE_NEGATIVE_INFINITY)
    if infinite is not None:
        return (infinite,)
    if isinstance(value, datetime):
        raise TypeError("expected a datetime.date, got a datetime.datetime")
    if not isinstance(value, date):
        raise TypeError(f"expected a datetime.date, got {type(value).__name__}")
    return (value.toordinal() - _EPOCH_DATE,)


def decode_date(value: tuple[int]) -> date | str:
    days = value[0]
    if days == _DATE_INFINITY:
        return INFINITY
    if days == _DATE_NEGATIVE_INFINITY:
        return NEGATIVE_INFINITY
    return date.fromordinal(days + _EPOCH_DATE)


def encode_timestamp(value: Any) -> tuple[int]:
    infinite = _infinity(value, _INFINITY, _NEGATIVE_INFINITY)
    if infinite is not None:
        return (infinite,)
    moment = _as_datetime(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (_micros(moment - _EPOCH),)


def decode_timestamp(value: tuple[int]) -> datetime | str:
    micros = value[0]
    if micros == _INFINITY:
        return INFINITY
    if micros == _NEGATIVE_INFINITY:
        return NEGATIVE_INFINITY
    return _EPOCH + timedelta(microseconds=micros)


def encode_timestamptz(value: Any) -> tuple[int]:
    infinite = _infinity(value, _INFINITY, _NEGATIVE_INFINITY)
    if infinite is not None:
        return (infinite,)
    moment = _as_datetime(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (_micros(moment - _EPOCH_UTC),)


def decode_timestamptz(value: tuple[int]) -> datetime | str:
    micros = value[0]
    if micros == _INFINITY:
        return INFINITY
    if micros == _NEGATIVE_INFINITY:
        return NEGATIVE_INFINITY
    return _EPOCH_UTC + timedelta(microseconds=micros)


# --- json ------------------------------------------------------------------------------------


def json_exact(value: Any) -> str:
    """`json_text`, except that a Decimal anywhere in the value is written with every digit (a
    non-finite one is refused: ValueError, as for a NaN float)."""
    try:
        return json_text(value)
    except TypeError:
        if not _holds_decimal(value):
            raise
    return _exact(value)


def _holds_decimal(value: Any) -> bool:
    if isinstance(value, Decimal):
        return True
    if isinstance(value, dict):
        return any(_holds_decimal(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_decimal(v) for v in value)
    return False


def _exact(value: Any) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return str(value)  # '1.50', '1E+5', '-0': all JSON numbers
    if isinstance(value, dict):
        return "{" + ",".join(f"{_key(k)}:{_exact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_exact(v) for v in value) + "]"
    return json_text(value)


def _key(key: Any) -> str:
    """A dict key as json writes it: a str as a JSON string, others as json converts them."""
    return json_text(key) if isinstance(key, str) else json_text({key: 0})[1:-3]


def _json_loads(data: bytes) -> Any:
    return json.loads(data, parse_float=json_number)


def encode_json(value: Any) -> bytes:
    return json_exact(value).encode("utf-8")


def decode_json(data: bytes) -> Any:
    return _json_loads(data)


def encode_jsonb(value: Any) -> bytes:
    return b"\x01" + json_exact(value).encode("utf-8")  # jsonb's binary format: version 1, text


def decode_jsonb(data: bytes) -> Any:
    return _json_loads(data[1:])


# --- bit strings ------------------------------------------------------------------------------


def encode_bits(value: Any) -> bytes:
    """A str of '0'/'1' (or an asyncpg.BitString) in bit/varbit's binary format: the number of
    bits (int4), then the bits, most significant first, the last byte padded with zeros."""
    if not isinstance(value, str):
        as_string = getattr(value, "as_string", None)  # asyncpg.BitString, which groups by 4
        if as_string is None:
            raise TypeError(f"a bit string is a str of 0s and 1s, not {type(value).__name__}")
        value = str(as_string()).replace(" ", "")
    if value.strip("01"):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise ValueError(f"{shown!r} is not a bit string (only 0s and 1s)")
    bits = len(value)
    padded = value + "0" * (-bits % 8)
    body = int(padded, 2).to_bytes(len(padded) // 8, "big") if padded else b""
    return bits.to_bytes(4, "big") + body


def decode_bits(data: bytes) -> str:
    bits = int.from_bytes(data[:4], "big")
    body = data[4:]
    return format(int.from_bytes(body, "big"), f"0{8 * len(body)}b")[:bits] if bits else ""


# --- intervals --------------------------------------------------------------------------------

_HOUR = 3_600_000_000
_MINUTE = 60_000_000
_SECOND = 1_000_000
_INTERVAL = re.compile(
    r"\s*(?:(?P<years>[+-]?\d+) years?)?"
    r"\s*(?:(?P<months>[+-]?\d+) mons?)?"
    r"\s*(?:(?P<days>[+-]?\d+) days?)?"
    r"\s*(?:(?P<sign>[+-]?)(?P<hours>\d+):(?P<minutes>\d\d):(?P<seconds>\d\d)"
    r"(?:\.(?P<fraction>\d{1,6}))?)?\s*"
)


def interval_text(months: int, days: int, microseconds: int) -> str:
    """An interval's fields as PostgreSQL prints them with IntervalStyle postgres (its
    EncodeInterval): '1 year 2 mons 3 days 04:05:06.5', '-1 years -2 mons +3 days -04:05:06',
    '00:00:00'. A field after a negative one carries an explicit '+'."""
    years = -(-months // 12) if months < 0 else months // 12  # truncated towards zero, as C
    parts = []
    before_negative = False
    for number, unit in ((years, "year"), (months - 12 * years, "mon"), (days, "day")):
        if number:
            plus = "+" if before_negative and number > 0 else ""
            parts.append(f"{plus}{number} {unit}{'' if number == 1 else 's'}")
            before_negative = number < 0
    if not parts or microseconds:
        sign = "-" if microseconds < 0 else ("+" if before_negative else "")
        rest = abs(microseconds)
        hours, rest = divmod(rest, _HOUR)
        minutes, rest = divmod(rest, _MINUTE)
        seconds, fraction = divmod(rest, _SECOND)
        clock = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
        if fraction:
            clock += "." + f"{fraction:06d}".rstrip("0")
        parts.append(clock)
    return " ".join(parts)


def parse_interval(text: str) -> tuple[int, int, int]:
    """(months, days, microseconds) of an interval written as `interval_text` writes it;
    ValueError for any other text."""
    found = _INTERVAL.fullmatch(text)
    if found is None or not text.strip():
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ValueError(
            f"{shown!r} is not an interval in PostgreSQL's output form ('1 year 2 mons 3 days "
            "04:05:06.5')"
        )
    field = found.groupdict()
    months = 12 * int(field["years"] or 0) + int(field["months"] or 0)
    micros = 0
    if field["hours"] is not None:
        micros = (
            int(field["hours"]) * _HOUR
            + int(field["minutes"]) * _MINUTE
            + int(field["seconds"]) * _SECOND
            + int((field["fraction"] or "").ljust(6, "0"))
        )
        if field["sign"] == "-":
            micros = -micros
    return months, int(field["days"] or 0), micros


def encode_interval(value: Any) -> tuple[int, int, int]:
    if isinstance(value, str):
        return parse_interval(value)
    if isinstance(value, timedelta):
        return (0, value.days, value.seconds * _SECOND + value.microseconds)
    raise TypeError(f"an interval is a str or a timedelta, not {type(value).__name__}")


def decode_interval(value: tuple[int, int, int]) -> str:
    months, days, microseconds = value
    return interval_text(months, days, microseconds)


# --- installing -------------------------------------------------------------------------------


async def install_value_codecs(conn: Any) -> None:
    """The date, timestamp, timestamptz, bit, bit varying and interval codecs (both ways), on
    any connection: the source reads values with them, the destination writes them."""
    for name, encoder, decoder, format_ in (
        ("date", encode_date, decode_date, "tuple"),
        ("timestamp", encode_timestamp, decode_timestamp, "tuple"),
        ("timestamptz", encode_timestamptz, decode_timestamptz, "tuple"),
        ("bit", encode_bits, decode_bits, "binary"),
        ("varbit", encode_bits, decode_bits, "binary"),
        ("interval", encode_interval, decode_interval, "tuple"),
    ):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=encoder, decoder=decoder, format=format_
        )


async def init_connection(conn: Any) -> None:
    """Install the codecs on a new connection of the pool."""
    for name, encoder, decoder, format_ in (
        ("json", encode_json, decode_json, "binary"),
        ("jsonb", encode_jsonb, decode_jsonb, "binary"),
    ):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=encoder, decoder=decoder, format=format_
        )
    await install_value_codecs(conn)
