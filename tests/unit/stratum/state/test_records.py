"""Item states and their transitions; records as forward-compatible JSON."""

from __future__ import annotations

import itertools
import json

import pytest

from stratum.state import (
    ALLOWED_TRANSITIONS,
    ItemRecord,
    ItemState,
    RunRecord,
    check_transition,
)

S = ItemState

#: The table as the design states it, spelt out again so a change to the code shows up here.
EXPECTED = {
    S.PENDING: {S.WORKING, S.FAILED, S.FINISHED, S.PAUSED},
    S.WORKING: {S.IDLE, S.FINISHED, S.FAILED, S.PAUSED},
    S.IDLE: {S.WORKING, S.FINISHED, S.FAILED, S.PAUSED},
    S.PAUSED: {S.WORKING, S.IDLE, S.FAILED, S.PENDING},
    S.FAILED: {S.PENDING, S.WORKING},
    S.FINISHED: {S.PENDING, S.WORKING},
}

FULL = ItemRecord(
    name="wh.raw.orders",
    hash="abc123",
    state=S.IDLE,
    cursor=[42, "2024-01-01T00:00:00"],
    batches=1,
    rows_read=2,
    rows_written=3,
    rows_rejected=4,
    rows_filtered=5,
    bytes=6,
    retries=7,
    failures=8,
    steps=("create", "truncate"),
    run_id="run-1",
    started_at=1.5,
    updated_at=2.5,
    finished_at=3.5,
    last_error="connection reset",
    rows_per_second=123.25,
    total_rows=1000,
)


def test_transition_table_is_the_designed_one() -> None:
    assert {state: set(targets) for state, targets in ALLOWED_TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize(("old", "new"), list(itertools.product(S, S)), ids=str)
def test_check_transition_allows_exactly_the_table(old: ItemState, new: ItemState) -> None:
    if old == new or new in EXPECTED[old]:
        check_transition(old, new)
    else:
        with pytest.raises(ValueError, match=f"illegal item state transition {old} -> {new}"):
            check_transition(old, new)


def test_transition_table_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        ALLOWED_TRANSITIONS[S.PENDING] = frozenset(S)  # type: ignore[index]


def test_item_record_round_trips_every_field() -> None:
    assert ItemRecord.from_json(FULL.to_json()) == FULL
    assert ItemRecord.from_json(FULL.to_json().encode()) == FULL


def test_item_json_is_canonical() -> None:
    text = FULL.to_json()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert " " not in text.replace("connection reset", "")
    assert data["state"] == "idle"
    assert data["steps"] == ["create", "truncate"]


def test_unknown_keys_are_ignored_and_missing_ones_defaulted() -> None:
    data = json.loads(FULL.to_json())
    data["added_by_a_newer_stratum"] = {"x": 1}
    assert ItemRecord.from_json(json.dumps(data)) == FULL

    minimal = ItemRecord.from_json('{"name": "a"}')
    assert minimal == ItemRecord(name="a", hash="", state=S.PENDING)


@pytest.mark.parametrize("cursor", [None, 7, "k", [1, "a", None]])
def test_every_kind_of_cursor_round_trips(cursor: int | str | list[object] | None) -> None:
    record = ItemRecord(name="a", hash="h", cursor=cursor)
    assert ItemRecord.from_json(record.to_json()).cursor == cursor


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[]", "expected a JSON object"),
        ('{"hash": "h"}', "name"),
        ('{"name": "a", "rows_read": "12"}', "rows_read"),
        ('{"name": "a", "rows_read": true}', "rows_read"),
        ('{"name": "a", "state": "sleeping"}', "state"),
        ('{"name": "a", "steps": "create"}', "steps"),
        ('{"name": "a", "cursor": {"k": 1}}', "cursor"),
        ('{"name": "a", "started_at": "yesterday"}', "started_at"),
        ("{not json", "Expecting property name"),
    ],
)
def test_malformed_item_json_is_refused(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        ItemRecord.from_json(text)


def test_run_record_round_trips() -> None:
    run = RunRecord("r1", "ph", "/plans/shop.smql", 123, 10.0, 20.0, "completed", 0)
    assert RunRecord.from_json(run.to_json()) == run
    assert RunRecord.from_json('{"run_id": "r2", "extra": 1}') == RunRecord("r2", "", "", 0, 0.0)


def test_run_status_must_be_known() -> None:
    with pytest.raises(ValueError, match="run status 'done'"):
        RunRecord("r1", "ph", "p", 1, 1.0, status="done")
    with pytest.raises(ValueError, match="run status"):
        RunRecord.from_json('{"run_id": "r1", "status": "done"}')
