"""The circuit breaker, driven by a fake clock: exact thresholds, cooldown, half-open probe."""

from __future__ import annotations

import anyio
import pytest

from stratum.errors import CircuitOpen
from stratum.resilience import BreakerState, CircuitBreaker, RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def breaker(threshold: int = 4, cooldown: float = 30.0) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    return CircuitBreaker(threshold, cooldown, clock=clock, name="pg"), clock


def fail(b: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        b.before_call()
        b.record_failure()


def test_starts_closed() -> None:
    b, _ = breaker()
    assert b.state is BreakerState.CLOSED
    assert (b.consecutive_failures, b.opened_count, b.retry_after) == (0, 0, 0.0)
    b.before_call()


@pytest.mark.parametrize("threshold", [1, 2, 4, 5])
def test_opens_after_exactly_threshold_consecutive_failures(threshold: int) -> None:
    b, _ = breaker(threshold=threshold)
    fail(b, threshold - 1)
    assert b.state is BreakerState.CLOSED
    b.before_call()  # still admitted
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert b.consecutive_failures == threshold
    assert b.opened_count == 1
    with pytest.raises(CircuitOpen, match="pg: circuit open"):
        b.before_call()


def test_default_threshold_is_four_not_three_not_five() -> None:
    b, _ = breaker()
    fail(b, 3)
    assert b.state is BreakerState.CLOSED
    fail(b, 1)
    assert b.state is BreakerState.OPEN
    assert b.opened_count == 1


def test_a_success_in_between_resets_the_count() -> None:
    b, _ = breaker()
    fail(b, 3)
    b.before_call()
    b.record_success()
    assert b.consecutive_failures == 0
    fail(b, 3)
    assert b.state is BreakerState.CLOSED
    assert b.opened_count == 0
    fail(b, 1)
    assert b.state is BreakerState.OPEN


def test_release_counts_nothing() -> None:
    b, _ = breaker()
    fail(b, 3)
    b.before_call()
    b.release()
    assert b.consecutive_failures == 3
    assert b.state is BreakerState.CLOSED


def test_stays_open_until_the_cooldown_has_passed() -> None:
    b, clock = breaker(cooldown=30)
    fail(b, 4)
    clock.advance(29.5)
    assert b.state is BreakerState.OPEN
    assert b.retry_after == pytest.approx(0.5)
    with pytest.raises(CircuitOpen, match=r"next probe in 0\.5 s"):
        b.before_call()
    clock.advance(0.5)
    assert b.state is BreakerState.HALF_OPEN
    assert b.retry_after == 0.0


def test_half_open_admits_one_probe_and_its_success_closes() -> None:
    b, clock = breaker()
    fail(b, 4)
    clock.advance(30)
    b.before_call()  # the probe
    assert b.probe_in_flight
    with pytest.raises(CircuitOpen, match="probe"):
        b.before_call()  # a second caller while the probe runs
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert (b.consecutive_failures, b.opened_count, b.probe_in_flight) == (0, 1, False)
    b.before_call()
    b.before_call()


def test_a_failed_probe_reopens_for_a_new_cooldown() -> None:
    b, clock = breaker()
    fail(b, 4)
    clock.advance(31)
    b.before_call()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert b.opened_count == 2
    assert b.consecutive_failures == 5
    assert b.retry_after == pytest.approx(30)  # counted from the probe's failure
    clock.advance(29.9)
    with pytest.raises(CircuitOpen):
        b.before_call()
    clock.advance(0.1)
    b.before_call()
    b.record_success()
    assert b.state is BreakerState.CLOSED


def test_a_released_probe_lets_another_probe_go() -> None:
    b, clock = breaker()
    fail(b, 4)
    clock.advance(30)
    b.before_call()
    b.release()  # e.g. cancelled
    assert b.state is BreakerState.HALF_OPEN
    b.before_call()
    assert b.probe_in_flight


def test_a_late_failure_while_open_does_not_restart_the_cooldown() -> None:
    b, clock = breaker()
    for _ in range(5):  # five calls admitted while closed
        b.before_call()
    for _ in range(4):
        b.record_failure()
    clock.advance(20)
    b.record_failure()  # the fifth comes back late
    assert b.opened_count == 1
    assert b.retry_after == pytest.approx(10)


def test_from_policy() -> None:
    b = CircuitBreaker.from_policy(RetryPolicy(breaker_threshold=2, breaker_cooldown=5))
    assert (b.threshold, b.cooldown) == (2, 5.0)


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker(0)
    with pytest.raises(ValueError, match="cooldown"):
        CircuitBreaker(4, -1)


def test_repr_shows_the_state() -> None:
    b, _ = breaker()
    fail(b, 4)
    assert "state=open" in repr(b)
    assert "opened_count=1" in repr(b)


@pytest.mark.asyncio
async def test_default_clock_is_the_event_loops() -> None:
    b = CircuitBreaker(1, cooldown=0.02)
    b.before_call()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    await anyio.sleep(0.03)
    assert b.state is BreakerState.HALF_OPEN
