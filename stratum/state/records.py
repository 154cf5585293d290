"""What the state store records: one `ItemRecord` per plan item and one `RunRecord` per run.

Records are frozen values; the store keeps them as JSON with sorted keys, so a record can be
read by `jq` and diffed. Decoding is forward compatible: keys this version does not know are
ignored and keys it expects but does not find take their defaults, so a newer Stratum may add a
field without a new layout version. A value of the wrong type is refused (ValueError) rather
than carried into the engine, where it would fail far from its cause.

The destination's checkpoint row, not this record, is authoritative: an `ItemRecord` says what
the engine last knew, for `stratum progress` and for reconciling on start-up.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Self, TypeVar

from stratum.connectors.base import Cursor


class ItemState(StrEnum):
    """Where an item is in its life. `idle` means "waiting for more input" (an incremental item
    between polls); `paused` means the circuit breaker opened and the item waits for a probe."""

    PENDING = "pending"
    WORKING = "working"
    IDLE = "idle"
    FINISHED = "finished"
    FAILED = "failed"
    PAUSED = "paused"


_S = ItemState

#: The moves an item may make. Staying in a state is always allowed (progress updates).
#: `finished -> pending | working` is a `--restart` or an incremental rerun.
ALLOWED_TRANSITIONS: Mapping[ItemState, frozenset[ItemState]] = MappingProxyType(
    {
        # finished: nothing to do (done by an earlier run); paused: stopped before it started
        _S.PENDING: frozenset({_S.WORKING, _S.FAILED, _S.FINISHED, _S.PAUSED}),
        _S.WORKING: frozenset({_S.IDLE, _S.FINISHED, _S.FAILED, _S.PAUSED}),
        _S.IDLE: frozenset({_S.WORKING, _S.FINISHED, _S.FAILED, _S.PAUSED}),
        # idle: a Stop while paused, and the consumer has drained what was queued
        _S.PAUSED: frozenset({_S.WORKING, _S.IDLE, _S.FAILED, _S.PENDING}),
        _S.FAILED: frozenset({_S.PENDING, _S.WORKING}),
        _S.FINISHED: frozenset({_S.PENDING, _S.WORKING}),
    }
)


def check_transition(old: ItemState, new: ItemState) -> None:
    """Raise ValueError when an item may not go from `old` to `new`: such a write is an engine
    bug, and recording it would make the progress log lie."""
    if old != new and new not in ALLOWED_TRANSITIONS[old]:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[old]))
        raise ValueError(f"illegal item state transition {old} -> {new} (from {old}: {allowed})")


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """An item's progress as the engine last recorded it, after a destination commit."""

    name: str
    hash: str
    state: ItemState = ItemState.PENDING
    cursor: Cursor = None
    batches: int = 0
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_filtered: int = 0
    bytes: int = 0
    retries: int = 0
    failures: int = 0
    steps: tuple[str, ...] = ()  # one-time steps already done: "create", "truncate"
    run_id: str = ""
    started_at: float | None = None
    updated_at: float | None = None
    finished_at: float | None = None
    last_error: str | None = None  # already redacted by the engine: no secrets here
    rows_per_second: float = 0.0
    total_rows: int | None = None  # the item's size when known, for an ETA

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace."""
        return _dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | builtins.bytes) -> Self:
        """Decode a stored record; ValueError if it is not one."""
        return _build(cls, _decode(text, _ITEM_FIELDS, {"hash": ""}))


#: The statuses a run can end in ("running" while it lasts, or after a crash).
RUN_STATUSES = frozenset({"running", "completed", "failed", "interrupted"})


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One `stratum migrate` invocation, so `stratum progress` can say what ran, when and how
    it ended. A record still "running" whose pid is gone is a run that crashed."""

    run_id: str
    plan_hash: str
    plan_path: str
    pid: int
    started_at: float
    ended_at: float | None = None
    status: str = "running"
    exit_code: int | None = None

    def __post_init__(self) -> None:
        if self.status not in RUN_STATUSES:
            raise ValueError(f"run status {self.status!r} is not one of {sorted(RUN_STATUSES)}")

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace."""
        return _dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | builtins.bytes) -> Self:
        """Decode a stored record; ValueError if it is not one."""
        return _build(cls, _decode(text, _RUN_FIELDS, _RUN_DEFAULTS))


# --- decoding -------------------------------------------------------------------------------

_T = TypeVar("_T")

#: A field's check-and-convert: returns the value to store, raises ValueError on a wrong type.
_Convert = Callable[[Any], Any]


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _decode(
    text: str | bytes, converters: Mapping[str, _Convert], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """The constructor arguments found in JSON `text`: unknown keys ignored, `defaults` for
    missing ones that have no default in the class, types checked."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    values = dict(defaults)
    for key, convert in converters.items():
        if key in data:
            try:
                values[key] = convert(data[key])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"field {key!r}: {exc}") from exc
    return values


def _build(cls: Callable[..., _T], values: dict[str, Any]) -> _T:
    try:
        return cls(**values)
    except TypeError as exc:  # a required field (the name, the run id) is missing
        raise ValueError(str(exc)) from exc


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, found {value!r}")
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, found {value!r}")
    return float(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, found {value!r}")
    return value


def _optional(convert: _Convert) -> _Convert:
    return lambda value: None if value is None else convert(value)


def _cursor(value: Any) -> Cursor:
    if value is None or isinstance(value, str | list) or type(value) is int:
        return value
    raise TypeError(f"expected an int, a string, a list or null, found {value!r}")


def _steps(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of strings, found {value!r}")
    return tuple(_str(step) for step in value)


_COUNTS = (
    "batches",
    "rows_read",
    "rows_written",
    "rows_rejected",
    "rows_filtered",
    "bytes",
    "retries",
    "failures",
)

_ITEM_FIELDS: Mapping[str, _Convert] = MappingProxyType(
    {
        "name": _str,
        "hash": _str,
        "state": ItemState,
        "cursor": _cursor,
        **dict.fromkeys(_COUNTS, _int),
        "steps": _steps,
        "run_id": _str,
        "started_at": _optional(_float),
        "updated_at": _optional(_float),
        "finished_at": _optional(_float),
        "last_error": _optional(_str),
        "rows_per_second": _float,
        "total_rows": _optional(_int),
    }
)

_RUN_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"plan_hash": "", "plan_path": "", "pid": 0, "started_at": 0.0}
)

_RUN_FIELDS: Mapping[str, _Convert] = MappingProxyType(
    {
        "run_id": _str,
        "plan_hash": _str,
        "plan_path": _str,
        "pid": _int,
        "started_at": _float,
        "ended_at": _optional(_float),
        "status": _str,
        "exit_code": _optional(_int),
    }
)
