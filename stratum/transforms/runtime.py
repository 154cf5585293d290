"""Helpers that compiled COMPUTE and WHERE expressions call at run time.

Each takes values that are not NULL unless it says otherwise (the compiled code tests for NULL
before calling), follows PostgreSQL's semantics, and raises `EvalError` (or an ArithmeticError)
for a value it cannot take: the row is then rejected with that reason.
"""

from __future__ import annotations

import calendar
import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from stratum.transforms.convert import CastFailed, to_text


class EvalError(Exception):
    """An expression cannot be evaluated on a row (the reason is the message)."""


#: What a failing expression raises on one row; anything else is a bug and stops the batch.
EVAL_ERRORS: tuple[type[Exception], ...] = (
    ArithmeticError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    EvalError,
    CastFailed,
)


def why(error: Exception) -> str:
    """The reason a row is rejected for `error`, in the user's words."""
    if isinstance(error, CastFailed):
        return error.reason
    if isinstance(error, ZeroDivisionError):  # decimal.DivisionByZero is one too
        return "division by zero"
    if isinstance(error, InvalidOperation):
        return "invalid numeric operation"
    if isinstance(error, OverflowError):
        return "value out of range"
    if isinstance(error, TypeError | AttributeError | IndexError):
        return f"cannot evaluate ({type(error).__name__}: {error})"
    return str(error) or type(error).__name__


# --- arithmetic -----------------------------------------------------------------------------


def idiv(a: Any, b: Any) -> Any:
    """Integer division truncating toward zero (PostgreSQL int / int, MySQL DIV)."""
    if b == 0:
        raise ZeroDivisionError
    if a.__class__ is int and b.__class__ is int:
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    return int((Decimal(a) / Decimal(b)).to_integral_value(rounding=ROUND_DOWN))


def imod(a: int, b: int) -> int:
    """Remainder with the sign of the dividend (PostgreSQL %, unlike Python's)."""
    if b == 0:
        raise ZeroDivisionError
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def nmod(a: Any, b: Any) -> Decimal:
    if b == 0:
        raise ZeroDivisionError
    return Decimal(a) % Decimal(b)  # Decimal's remainder has the dividend's sign


def fmod(a: float, b: float) -> float:
    if b == 0:
        raise ZeroDivisionError
    return math.fmod(a, b)


def ndiv(a: Any, b: Any) -> Decimal:
    """numeric division: at least 20 significant digits and the operands' scales, rounded half
    away from zero (close to PostgreSQL's select_div_scale)."""
    if b == 0:
        raise ZeroDivisionError
    a, b = Decimal(a), Decimal(b)
    quotient: Decimal = a / b
    if not quotient:
        return Decimal(0)
    scale = max(
        20 - 1 - quotient.adjusted(),
        -_exponent(a),
        -_exponent(b),
        0,
    )
    return quotient.quantize(Decimal(1).scaleb(-min(scale, 1000)), rounding=ROUND_HALF_UP)


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def round_numeric(value: Decimal, digits: int = 0) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def round_float(value: float, digits: int | None = None) -> float:
    if not math.isfinite(value):
        return value
    return float(round(value)) if digits is None else round(value, digits)


def floor_numeric(value: Decimal) -> Decimal:
    return value.to_integral_value(rounding=ROUND_FLOOR)


def ceil_numeric(value: Decimal) -> Decimal:
    return value.to_integral_value(rounding=ROUND_CEILING)


def floor_float(value: float) -> float:
    return float(math.floor(value)) if math.isfinite(value) else value


def ceil_float(value: float) -> float:
    return float(math.ceil(value)) if math.isfinite(value) else value


def greatest(values: Sequence[Any], ignore_nulls: bool) -> Any:
    present = [v for v in values if v is not None]
    if not present or (not ignore_nulls and len(present) < len(values)):
        return None
    return max(present)


def least(values: Sequence[Any], ignore_nulls: bool) -> Any:
    present = [v for v in values if v is not None]
    if not present or (not ignore_nulls and len(present) < len(values)):
        return None
    return min(present)


# --- comparison -----------------------------------------------------------------------------


def in3(value: Any, items: Sequence[Any]) -> bool | None:
    """`value IN (items)` with SQL NULL semantics; value may be None."""
    if value is None:
        return None
    unknown = False
    for item in items:
        if item is None:
            unknown = True
        elif value == item:
            return True
    return None if unknown else False


def not_distinct(a: Any, b: Any) -> bool:
    """`a IS NOT DISTINCT FROM b`; either may be None."""
    if a is None or b is None:
        return a is None and b is None
    return bool(a == b)


def like_regex(pattern: str, escape: str | None, ignore_case: bool) -> re.Pattern[str]:
    """The regular expression of a LIKE pattern (`%`, `_`, and the escape character)."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if escape is not None and char == escape:
            following = next(chars, None)
            if following is None:
                raise EvalError("LIKE pattern must not end with escape character")
            out.append(re.escape(following))
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(out), flags)


@functools.lru_cache(maxsize=256)
def _like_cached(pattern: str, escape: str | None, ignore_case: bool) -> re.Pattern[str]:
    return like_regex(pattern, escape, ignore_case)


def like(value: str, pattern: str, escape: str | None, ignore_case: bool) -> bool:
    return _like_cached(pattern, escape, ignore_case).fullmatch(value) is not None


# --- text -----------------------------------------------------------------------------------


def text(value: Any) -> str:
    return value if value.__class__ is str else to_text(value)


def json_text(value: Any) -> str:
    import json  # noqa: PLC0415 (only JSON columns cast to text need it)

    return json.dumps(value, ensure_ascii=False)


def substr_pg(value: str, start: int, length: int | None = None) -> str:
    """PostgreSQL substring: characters start..start+length-1, counting from 1; positions before
    the first character count but select nothing."""
    if length is None:
        return value[max(start - 1, 0) :]
    if length < 0:
        raise EvalError("negative substring length not allowed")
    end = start + length  # exclusive, 1-based
    return value[max(start - 1, 0) : max(end - 1, 0)]


def substr_from_end(value: str, start: int, length: int | None = None) -> str:
    """MySQL/DuckDB/SQLite substring: a negative start counts from the end. A zero start or a
    negative length means different things in those dialects, so it is refused."""
    if start == 0:
        raise EvalError("substring start 0 means different things in different dialects")
    if length is not None and length < 0:
        raise EvalError("negative substring length not allowed")
    begin = start - 1 if start > 0 else max(len(value) + start, 0)
    return value[begin:] if length is None else value[begin : begin + length]


def left(value: str, n: int, negative_empty: bool, strict: bool) -> str:
    if n < 0:
        if negative_empty:
            return ""
        if strict:
            raise EvalError("a negative length in LEFT means different things in dialects")
    return value[:n]


def right(value: str, n: int, negative_empty: bool, strict: bool) -> str:
    if n < 0:
        if negative_empty:
            return ""
        if strict:
            raise EvalError("a negative length in RIGHT means different things in dialects")
        return value[-n:]
    return value[len(value) - n :] if n else ""


def replace(value: str, old: str, new: str) -> str:
    return value.replace(old, new) if old else value


def concat_ws(separator: str, parts: Sequence[Any], skip_nulls: bool) -> str | None:
    if not skip_nulls and any(part is None for part in parts):
        return None
    return separator.join(text(part) for part in parts if part is not None)


# --- dates and times ------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1)
_EPOCH_TZ = datetime(1970, 1, 1, tzinfo=UTC)


def date_to_timestamp(value: date) -> datetime:
    return datetime(value.year, value.month, value.day)


def to_timestamptz(value: date) -> datetime:
    """A date (midnight) or a naive timestamp taken as UTC; an aware one unchanged."""
    if value.__class__ is date:
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def add_days(value: date, days: int) -> date:
    try:
        return value + timedelta(days=days)
    except OverflowError as exc:
        raise EvalError("date out of range") from exc


def days_between(a: date, b: date) -> int:
    return (a - b).days


@dataclass(frozen=True, slots=True)
class Interval:
    """An interval constant: months, days and microseconds, as PostgreSQL keeps them."""

    months: int = 0
    days: int = 0
    micros: int = 0

    def __neg__(self) -> Interval:
        return Interval(-self.months, -self.days, -self.micros)

    def __str__(self) -> str:
        return f"{self.months} mons {self.days} days {self.micros / 1e6} secs"


def add_interval(value: date, interval: Interval) -> datetime:
    """`value + interval`: months first (the day clamped to the month's end), then days, then
    time. A date becomes a timestamp at midnight."""
    moment = value if isinstance(value, datetime) else date_to_timestamp(value)
    try:
        if interval.months:
            total = moment.year * 12 + moment.month - 1 + interval.months
            year, month = divmod(total, 12)
            month += 1
            day = min(moment.day, calendar.monthrange(year, month)[1])
            moment = moment.replace(year=year, month=month, day=day)
        return moment + timedelta(days=interval.days, microseconds=interval.micros)
    except (OverflowError, ValueError) as exc:
        raise EvalError("timestamp out of range") from exc


def _fields(value: Any) -> datetime | time:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return date_to_timestamp(value)
    return value  # type: ignore[no-any-return]


def extract(unit: str) -> Callable[[Any], Any]:
    """EXTRACT(unit FROM value): integers for whole fields, numeric for second, millisecond
    and epoch."""
    return _EXTRACT[unit]


def _epoch(value: Any) -> Decimal:
    moment = _fields(value)
    if isinstance(moment, time):
        seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
        return Decimal(seconds) + Decimal(moment.microsecond).scaleb(-6)
    delta = moment - (_EPOCH_TZ if moment.tzinfo else _EPOCH)
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return Decimal(micros).scaleb(-6)


_EXTRACT: dict[str, Callable[[Any], Any]] = {
    "year": lambda v: v.year,
    "month": lambda v: v.month,
    "day": lambda v: v.day,
    "hour": lambda v: _fields(v).hour,
    "minute": lambda v: _fields(v).minute,
    "second": lambda v: Decimal(_fields(v).second) + Decimal(_fields(v).microsecond).scaleb(-6),
    "millisecond": lambda v: (
        Decimal(_fields(v).second * 1000) + Decimal(_fields(v).microsecond).scaleb(-3)
    ),
    "microsecond": lambda v: _fields(v).second * 1_000_000 + _fields(v).microsecond,
    "quarter": lambda v: (v.month - 1) // 3 + 1,
    "week": lambda v: v.isocalendar()[1],
    "isoyear": lambda v: v.isocalendar()[0],
    "dow": lambda v: v.isoweekday() % 7,
    "isodow": lambda v: v.isoweekday(),
    "doy": lambda v: v.timetuple().tm_yday,
    "decade": lambda v: v.year // 10,
    "century": lambda v: (v.year + 99) // 100,
    "millennium": lambda v: (v.year + 999) // 1000,
    "epoch": _epoch,
}

#: Units EXTRACT reads from a time of day (the others need a date).
TIME_UNITS = frozenset({"hour", "minute", "second", "millisecond", "microsecond", "epoch"})
#: Units EXTRACT reads from a date (not those of a time of day, as in PostgreSQL).
DATE_UNITS = frozenset(_EXTRACT) - {"hour", "minute", "second", "millisecond", "microsecond"}
NUMERIC_UNITS = frozenset({"second", "millisecond", "epoch"})


def truncate(unit: str) -> Callable[[datetime], datetime]:
    """date_trunc(unit, value) on a timestamp (aware ones are truncated in UTC)."""
    return _TRUNC[unit]


def _trunc_week(v: datetime) -> datetime:
    start = v - timedelta(days=v.weekday())
    return start.replace(hour=0, minute=0, second=0, microsecond=0)


_TRUNC: dict[str, Callable[[datetime], datetime]] = {
    "microsecond": lambda v: v,
    "millisecond": lambda v: v.replace(microsecond=v.microsecond // 1000 * 1000),
    "second": lambda v: v.replace(microsecond=0),
    "minute": lambda v: v.replace(second=0, microsecond=0),
    "hour": lambda v: v.replace(minute=0, second=0, microsecond=0),
    "day": lambda v: v.replace(hour=0, minute=0, second=0, microsecond=0),
    "week": _trunc_week,
    "month": lambda v: v.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
    "quarter": lambda v: v.replace(
        month=(v.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0, second=0, microsecond=0
    ),
    "year": lambda v: v.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
    "decade": lambda v: v.replace(
        year=v.year // 10 * 10, month=1, day=1, hour=0, minute=0, second=0, microsecond=0
    ),
    "century": lambda v: v.replace(
        year=(v.year - 1) // 100 * 100 + 1,
        month=1,
        day=1,
        hour=0,
        minute=0,
        second=0,
        microsecond=0,
    ),
}

UNIT_ALIASES = {
    "years": "year",
    "yr": "year",
    "yrs": "year",
    "y": "year",
    "months": "month",
    "mon": "month",
    "mons": "month",
    "days": "day",
    "d": "day",
    "hours": "hour",
    "hr": "hour",
    "hrs": "hour",
    "h": "hour",
    "minutes": "minute",
    "min": "minute",
    "mins": "minute",
    "m": "minute",
    "seconds": "second",
    "sec": "second",
    "secs": "second",
    "s": "second",
    "milliseconds": "millisecond",
    "ms": "millisecond",
    "microseconds": "microsecond",
    "us": "microsecond",
    "weeks": "week",
    "w": "week",
    "quarters": "quarter",
    "qtr": "quarter",
    "decades": "decade",
    "centuries": "century",
    "millennia": "millennium",
    "weekday": "dow",
    "dayofweek": "dow",
    "dayofyear": "doy",
    "isodayofweek": "isodow",
    "week_iso": "week",
    "yearofweekiso": "isoyear",
}


def unit_name(text: str) -> str:
    lowered = text.lower()
    return UNIT_ALIASES.get(lowered, lowered)


_INTERVAL_PART = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*([a-z]+)?\s*", re.IGNORECASE)
_MICROS = {
    "week": 7 * 86_400_000_000,
    "day": 86_400_000_000,
    "hour": 3_600_000_000,
    "minute": 60_000_000,
    "second": 1_000_000,
    "millisecond": 1_000,
    "microsecond": 1,
}


def parse_interval(text: str, unit: str | None) -> Interval:
    """An interval literal: '1 day', '2 hours 30 minutes', or '3' with a unit (INTERVAL '3'
    MONTH). Raises ValueError for any other form."""
    months = days = micros = 0
    position = 0
    parts = 0
    while position < len(text):
        match = _INTERVAL_PART.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"invalid interval '{text}'")
        number, word = match.group(1), match.group(2)
        name = unit_name(word or unit or "")
        position = match.end()
        parts += 1
        amount = Decimal(number)
        if name in ("year", "month", "decade", "century", "millennium"):
            factor = {"year": 12, "month": 1, "decade": 120, "century": 1200, "millennium": 12000}
            total = amount * factor[name]
            if total != total.to_integral_value():
                raise ValueError(f"fractional months in interval '{text}'")
            months += int(total)
        elif name == "day" and amount == amount.to_integral_value():
            days += int(amount)
        elif name in _MICROS:
            micros += int(amount * _MICROS[name])
        else:
            raise ValueError(f"invalid interval '{text}'")
    if not parts:
        raise ValueError(f"invalid interval '{text}'")
    return Interval(months, days, micros)
