"""RetryPolicy: the promised waits, the cap, validation and the environment overrides."""

from __future__ import annotations

import dataclasses

import pytest

from stratum.errors import ConfigError
from stratum.resilience import RetryPolicy


def test_defaults_are_the_reliability_promise() -> None:
    policy = RetryPolicy()
    assert policy.delays == (1, 2, 4, 8, 16, 30)
    assert policy.max_attempts == 10
    assert policy.breaker_threshold == 4
    assert policy.breaker_cooldown == 30


def test_delay_follows_the_sequence_then_keeps_the_last() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n) for n in range(1, 11)] == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    with pytest.raises(ValueError, match="start at 1"):
        policy.delay(0)


def test_fast_is_the_same_shape_in_milliseconds() -> None:
    fast = RetryPolicy.fast()
    assert fast.delays == tuple(d / 1000 for d in RetryPolicy().delays)
    assert fast.breaker_cooldown == pytest.approx(0.03)
    assert fast.breaker_threshold == 4


def test_the_policy_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryPolicy().max_attempts = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delays": ()},
        {"delays": (1.0, -1.0)},
        {"delays": (float("inf"),)},
        {"max_attempts": 0},
        {"breaker_threshold": 0},
        {"breaker_cooldown": -1.0},
    ],
    ids=["no-delays", "negative-delay", "infinite-delay", "no-attempts", "threshold-0", "cooldown"],
)
def test_unusable_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_from_env_reads_every_variable() -> None:
    policy = RetryPolicy.from_env(
        {
            "STRATUM_RETRY_DELAYS": "0.01, 0.02",
            "STRATUM_RETRY_MAX_ATTEMPTS": "5",
            "STRATUM_BREAKER_THRESHOLD": "3",
            "STRATUM_BREAKER_COOLDOWN": "0.5",
        }
    )
    assert policy == RetryPolicy(
        delays=(0.01, 0.02), max_attempts=5, breaker_threshold=3, breaker_cooldown=0.5
    )
    assert policy.delay(7) == 0.02


def test_from_env_keeps_defaults_for_unset_or_empty_variables() -> None:
    assert RetryPolicy.from_env({}) == RetryPolicy()
    assert RetryPolicy.from_env({"STRATUM_RETRY_DELAYS": "  "}) == RetryPolicy()
    base = RetryPolicy.fast()
    assert RetryPolicy.from_env({"STRATUM_BREAKER_COOLDOWN": "1"}, base=base) == (
        dataclasses.replace(base, breaker_cooldown=1.0)
    )


def test_from_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATUM_RETRY_DELAYS", "0.01,0.02")
    monkeypatch.delenv("STRATUM_RETRY_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("STRATUM_BREAKER_THRESHOLD", raising=False)
    monkeypatch.setenv("STRATUM_BREAKER_COOLDOWN", "0.05")
    policy = RetryPolicy.from_env()
    assert policy.delays == (0.01, 0.02)
    assert policy.breaker_cooldown == 0.05


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STRATUM_RETRY_DELAYS", "1,,2"),
        ("STRATUM_RETRY_DELAYS", "1,-2"),
        ("STRATUM_RETRY_MAX_ATTEMPTS", "ten"),
        ("STRATUM_RETRY_MAX_ATTEMPTS", "0"),
        ("STRATUM_BREAKER_THRESHOLD", "2.5"),
        ("STRATUM_BREAKER_COOLDOWN", "soon"),
    ],
)
def test_from_env_names_the_bad_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        RetryPolicy.from_env({name: value})


def test_as_dict() -> None:
    assert RetryPolicy().as_dict() == {
        "delays": (1, 2, 4, 8, 16, 30),
        "max_attempts": 10,
        "breaker_threshold": 4,
        "breaker_cooldown": 30,
    }


def test_from_env_names_only_the_bad_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        RetryPolicy.from_env({"STRATUM_RETRY_DELAYS": "0.1", "STRATUM_BREAKER_COOLDOWN": "-1"})
    assert "STRATUM_BREAKER_COOLDOWN='-1'" in str(caught.value)
    assert "STRATUM_RETRY_DELAYS" not in str(caught.value)
