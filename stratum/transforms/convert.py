"""Value conversions: a Python value of one SQL type into the Python value of another.

Used by CAST rules (on source columns) and by CAST/TRY_CAST inside COMPUTE and WHERE. A
converter is made once per (column, target type) and called with a value that is not None; it
returns the converted value or raises `CastFailed` with the reason ("'abc' is not
numeric(12,2)"). Conversions follow PostgreSQL's input rules, except where noted:

* integers: optional sign, ASCII digits (underscores between digits allowed, as in
  PostgreSQL 16), surrounding spaces; from numeric, rounded half away from zero; from double,
  rounded half to even; range-checked for smallint/integer/bigint.
* numeric(p,s): any decimal or exponent form; rounded half away from zero to s digits, then
  refused when it needs more than p digits. NaN and infinities are refused (not only with a
  precision, as PostgreSQL does): not every destination stores them.
* double precision/real: decimal or exponent forms, 'NaN', 'Infinity', '-Infinity', 'inf'.
* boolean: t/f, true/false, y/n, yes/no, on/off, 1/0 (any case, surrounding spaces); from an
  integer, nonzero is true.
* date: 'YYYY-MM-DD' (and the other ISO 8601 forms); a date with a time keeps the date.
* timestamp: ISO 8601, 'YYYY-MM-DD HH:MM:SS[.ffffff]' or with 'T'; a date alone is midnight.
  A value with an offset is converted to UTC and the offset dropped (PostgreSQL ignores the
  offset instead: converting keeps the instant).
* timestamptz: ISO 8601 with an offset ('+02', '+05:30', 'Z'); a value without one is taken
  as UTC. Values are returned in UTC.
* time: 'HH:MM[:SS[.ffffff]]'.
* jsonb: JSON text (json.loads; NaN and Infinity are not JSON and are refused). The value is
  what json.loads returns, so the JSON literal null becomes SQL NULL.
* bytea: '\\x' followed by hex digit pairs, or PostgreSQL's escape format.
* text: PostgreSQL's text output ('true', '12.50', '2024-01-02 03:04:05', '{"a": 1}').
* varchar(n)/char(n): text, refused when longer than n characters (char(n) is space-padded).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any, NoReturn

from stratum.transforms.types import Kind, SqlType

Converter = Callable[[Any], Any]

#: Arithmetic on numeric values runs in this context: PostgreSQL's numeric is exact up to
#: 131072 digits, Python's default context rounds to 28.
DECIMAL_CONTEXT = Context(prec=2000, rounding=ROUND_HALF_UP, Emax=999_999, Emin=-999_999)

_SHOW_MAX = 60


class CastFailed(Exception):
    """A value that cannot be converted; `reason` says why ("'abc' is not integer")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def show(value: Any) -> str:
    """A value as a rejection reason quotes it: strings in single quotes, long ones cut."""
    if isinstance(value, str):
        text = value if len(value) <= _SHOW_MAX else value[: _SHOW_MAX - 3] + "..."
        return "'" + text + "'"
    if isinstance(value, bytes | bytearray | memoryview):
        return show("\\x" + bytes(value)[: _SHOW_MAX // 2].hex())
    try:
        text = to_text(value)
    except CastFailed:
        text = repr(value)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def _not(value: Any, target: SqlType) -> NoReturn:
    raise CastFailed(f"{show(value)} is not {target.name}")


def _out_of_range(value: Any, target: SqlType) -> NoReturn:
    raise CastFailed(f"{show(value)} is out of range for {target.name}")


# --- text output ---------------------------------------------------------------------------


def _fraction(micro: int) -> str:
    return ("." + f"{micro:06d}".rstrip("0")) if micro else ""


def _offset(value: datetime | time) -> str:
    delta = value.utcoffset()
    if delta is None:
        return ""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}"
    if minutes or secs:
        text += f":{minutes:02d}"
    if secs:
        text += f":{secs:02d}"
    return text


def float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def decimal_text(value: Decimal) -> str:
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "Infinity" if value > 0 else "-Infinity"
    return format(value, "f")


def to_text(value: Any) -> str:
    """A value as PostgreSQL writes it as text."""
    cls = value.__class__
    if cls is str:
        return str(value)
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return str(value)
    if cls is Decimal:
        return decimal_text(value)
    if cls is float:
        return float_text(value)
    if cls is datetime:
        return (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
            + _fraction(value.microsecond)
            + _offset(value)
        )
    if cls is date:
        return str(value.isoformat())
    if cls is time:
        clock = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
        return clock + _fraction(value.microsecond) + _offset(value)
    if cls is dict or cls is list:
        return json.dumps(value, ensure_ascii=False)
    if cls is bytes or cls is bytearray or cls is memoryview:
        return "\\x" + bytes(value).hex()
    if cls is timedelta:
        return str(value)
    if isinstance(value, str | int | float | Decimal | dict | list):  # subclasses
        return to_text(_base(value))
    return str(value)


def _base(value: Any) -> Any:
    """A value of a subclass (an IntEnum, a str subclass) as its base type."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Decimal):
        return Decimal(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


# --- converters -----------------------------------------------------------------------------


def converter(target: SqlType) -> Converter:
    """The function converting a non-NULL value to `target`, raising CastFailed."""
    kind = target.kind
    if kind is Kind.INT:
        return _int_converter(target)
    if kind is Kind.NUMERIC:
        return _numeric_converter(target)
    if kind is Kind.FLOAT:
        return _float_converter(target)
    if kind is Kind.BOOL:
        return _bool_converter(target)
    if kind is Kind.TEXT:
        return _text_converter(target)
    if kind is Kind.DATE:
        return _date_converter(target)
    if kind is Kind.TIMESTAMP:
        return _timestamp_converter(target, aware=False)
    if kind is Kind.TIMESTAMPTZ:
        return _timestamp_converter(target, aware=True)
    if kind is Kind.TIME:
        return _time_converter(target)
    if kind is Kind.JSON:
        return _json_converter(target)
    if kind is Kind.BYTES:
        return _bytes_converter(target)
    raise ValueError(f"cannot convert values to {target.name}")


def can_convert(target: SqlType) -> bool:
    return target.kind not in (Kind.OTHER, Kind.NULL, Kind.INTERVAL)


def _int_converter(target: SqlType) -> Converter:
    low, high = target.int_bounds

    def convert(value: Any) -> int:
        result: int
        cls = value.__class__
        if cls is int:
            result = value
        elif cls is str:
            text = value.strip()
            if not text.isascii():
                _not(value, target)
            try:
                result = int(text)
            except ValueError:
                _not(value, target)
        elif cls is bool:
            result = int(value)
        elif cls is Decimal:
            if not value.is_finite():
                _out_of_range(value, target)
            result = int(value.to_integral_value(rounding=ROUND_HALF_UP))
        elif cls is float:
            if not math.isfinite(value):
                _out_of_range(value, target)
            result = round(value)
        elif isinstance(value, str | int | float | Decimal):
            return convert(_base(value))
        else:
            _not(value, target)
        if not low <= result <= high:
            _out_of_range(value, target)
        return result

    return convert


def _numeric_converter(target: SqlType) -> Converter:
    precision, scale = target.precision, target.scale
    quantum = Decimal(1).scaleb(-scale) if scale is not None else None
    limit = None
    if precision is not None and scale is not None:
        limit = Decimal(10) ** (precision - scale)
    one = Decimal(1)

    def convert(value: Any) -> Decimal:
        number: Decimal
        cls = value.__class__
        if cls is Decimal:
            number = value
        elif cls is str:
            text = value.strip()
            if not text.isascii():
                _not(value, target)
            try:
                number = Decimal(text)
            except InvalidOperation:
                _not(value, target)
        elif cls is int:
            number = Decimal(value)
        elif cls is float:
            if not math.isfinite(value):
                _out_of_range(value, target)
            number = Decimal(format(value, ".15g"))  # as PostgreSQL: 15 significant digits
        elif cls is not bool and isinstance(value, str | int | float | Decimal):
            return convert(_base(value))
        else:
            _not(value, target)
        if not number.is_finite():
            _out_of_range(value, target)
        try:
            if quantum is not None:
                number = number.quantize(quantum, rounding=ROUND_HALF_UP, context=DECIMAL_CONTEXT)
                if limit is not None and abs(number) >= limit:
                    _out_of_range(value, target)
            elif isinstance(exponent := number.as_tuple().exponent, int) and exponent > 0:
                number = number.quantize(one, context=DECIMAL_CONTEXT)  # 1E+5 -> 100000
        except InvalidOperation:
            _out_of_range(value, target)
        return number

    return convert


_FLOAT4_MAX = 3.4028234663852886e38
_NONZERO = re.compile(r"[1-9]")


def _float_converter(target: SqlType) -> Converter:
    single = target.name == "real"

    def convert(value: Any) -> float:
        result: float
        cls = value.__class__
        if cls is float:
            result = value
        elif cls is str:
            text = value.strip()
            if not text.isascii():
                _not(value, target)
            try:
                result = float(text)
            except ValueError:
                _not(value, target)
            if (math.isinf(result) and "inf" not in text.lower()) or (
                result == 0.0 and _NONZERO.search(text.lower().partition("e")[0])
            ):
                _out_of_range(value, target)  # 1e400, 1e-400: PostgreSQL refuses both
        elif cls is int or cls is Decimal:
            try:
                result = float(value)
            except OverflowError:
                _out_of_range(value, target)
            if math.isinf(result) and not (cls is Decimal and value.is_infinite()):
                _out_of_range(value, target)
        elif cls is not bool and isinstance(value, str | int | float | Decimal):
            return convert(_base(value))
        else:
            _not(value, target)
        if single and math.isfinite(result) and abs(result) > _FLOAT4_MAX:
            _out_of_range(value, target)
        return result

    return convert


_BOOLEANS = {
    "t": True,
    "true": True,
    "y": True,
    "yes": True,
    "on": True,
    "1": True,
    "f": False,
    "false": False,
    "n": False,
    "no": False,
    "off": False,
    "0": False,
}


def _bool_converter(target: SqlType) -> Converter:
    def convert(value: Any) -> bool:
        cls = value.__class__
        if cls is bool:
            return bool(value)
        if cls is str:
            result: bool | None = _BOOLEANS.get(value.strip().lower())
            if result is None:
                _not(value, target)
            return result
        if cls is int:
            return bool(value != 0)
        if isinstance(value, str | int):
            return convert(_base(value))
        _not(value, target)

    return convert


def _text_converter(target: SqlType) -> Converter:
    length = target.precision
    pad = target.name.startswith("char(")

    def convert(value: Any) -> str:
        text = value if value.__class__ is str else to_text(value)
        if length is not None:
            if len(text) > length:
                raise CastFailed(f"{show(value)} is longer than {target.name} allows")
            if pad:
                text = text.ljust(length)
        return text

    return convert


def _date_converter(target: SqlType) -> Converter:
    def convert(value: Any) -> date:
        cls = value.__class__
        if cls is date:
            return value  # type: ignore[no-any-return]
        if cls is str:
            text = value.strip()
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                _not(value, target)
            return _utc_naive(moment).date()
        if cls is datetime:
            return _utc_naive(value).date()
        _not(value, target)

    return convert


def _utc_naive(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _round_micro(value: datetime, digits: int | None) -> datetime:
    if digits is None or digits >= 6:
        return value
    step = 10 ** (6 - digits)
    micro = value.microsecond
    rounded = (micro + step // 2) // step * step  # half up, as PostgreSQL
    if rounded == micro:
        return value
    return value.replace(microsecond=0) + timedelta(microseconds=rounded)


def _timestamp_converter(target: SqlType, *, aware: bool) -> Converter:
    digits = target.precision

    def convert(value: Any) -> datetime:
        cls = value.__class__
        if cls is str:
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                _not(value, target)
        elif cls is datetime:
            moment = value
        elif cls is date:
            moment = datetime(value.year, value.month, value.day)
        else:
            _not(value, target)
        if aware:
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        else:
            moment = _utc_naive(moment)
        try:
            return _round_micro(moment, digits)
        except OverflowError:
            _out_of_range(value, target)

    return convert


def _time_converter(target: SqlType) -> Converter:
    def convert(value: Any) -> time:
        cls = value.__class__
        if cls is time:
            return value.replace(tzinfo=None)  # type: ignore[no-any-return]
        if cls is str:
            text = value.strip()
            if ":" not in text:  # '1000' reads as 10:00 in Python, not in PostgreSQL
                _not(value, target)
            try:
                return time.fromisoformat(text).replace(tzinfo=None)
            except ValueError:
                _not(value, target)
        if cls is datetime:
            return _utc_naive(value).time()
        _not(value, target)

    return convert


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def json_number(text: str) -> float | Decimal:
    """A JSON number with a fraction or an exponent: a float when the float's shortest text is
    the same number, else the exact Decimal (`json.loads(..., parse_float=json_number)`)."""
    number = float(text)
    if math.isfinite(number):
        try:
            if Decimal(repr(number)) == Decimal(text):
                return number
        except InvalidOperation:  # pragma: no cover - json only hands over valid numbers
            pass
    return Decimal(text)


def _json_converter(target: SqlType) -> Converter:
    def convert(value: Any) -> Any:
        cls = value.__class__
        if cls is dict or cls is list:
            return value
        if cls is str or cls is bytes:
            try:
                # a number a float cannot hold exactly stays a Decimal, every digit kept
                return json.loads(value, parse_constant=_no_constant, parse_float=json_number)
            except (ValueError, UnicodeDecodeError):
                _not(value, target)
        if cls is bool or cls is int:
            return value
        if cls is float:
            if not math.isfinite(value):
                _not(value, target)
            return value
        if cls is Decimal:
            if not value.is_finite():
                _not(value, target)
            return value
        _not(value, target)

    return convert


_ESCAPE = re.compile(rb"\\(\\|[0-3][0-7]{2})")


def _bytes_converter(target: SqlType) -> Converter:
    def convert(value: Any) -> bytes:
        cls = value.__class__
        if cls is bytes:
            return value  # type: ignore[no-any-return]
        if cls is bytearray or cls is memoryview:
            return bytes(value)
        if cls is str:
            if value.startswith("\\x"):
                try:
                    return bytes.fromhex(value[2:])
                except ValueError:
                    _not(value, target)
            raw = value.encode()
            parts = _ESCAPE.split(raw)
            out = bytearray()
            for index, part in enumerate(parts):
                if index % 2 == 0:
                    if b"\\" in part:
                        _not(value, target)
                    out += part
                else:
                    out.append(92 if part == b"\\" else int(part, 8))
            return bytes(out)
        _not(value, target)

    return convert
