"""A circuit breaker: after repeated transient failures, stop calling and let the item pause.

    CLOSED --(threshold consecutive failures)--> OPEN --(cooldown passed)--> HALF_OPEN
      ^                                           ^                              |
      |                                           +---- the probe fails ---------+
      +------------------- the probe succeeds ------------------------------------+

Closed: every call is admitted; a success resets the count of consecutive failures. Open:
`before_call` raises `CircuitOpen` until `cooldown` seconds have passed since it opened. Half-open:
one call, the probe, is admitted (others get `CircuitOpen` while it runs); its success closes the
breaker, its failure opens it again for a new cooldown.

Only what the caller reports counts: `record_failure` for a transient failure, `record_success`
for a success, `release` for an admitted call that ended without a verdict (cancelled, or a
terminal error that says nothing about the connection). Time comes from `clock`
(`anyio.current_time` by default), so a test with a fake clock is deterministic. The breaker
does no I/O and never awaits; it is shared safely by the tasks of one event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import anyio

from stratum.errors import CircuitOpen
from stratum.resilience.policy import RetryPolicy


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Opens after exactly `threshold` consecutive failures; see the module docstring."""

    def __init__(
        self,
        threshold: int = 4,
        cooldown: float = 30.0,
        *,
        clock: Callable[[], float] = anyio.current_time,
        name: str = "connection",
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be >= 1, got {threshold}")
        if cooldown < 0:
            raise ValueError(f"cooldown must be >= 0, got {cooldown}")
        self._threshold = threshold
        self._cooldown = float(cooldown)
        self._clock = clock
        self.name = name
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._consecutive_failures = 0
        self._opened_count = 0

    @classmethod
    def from_policy(
        cls,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float] = anyio.current_time,
        name: str = "connection",
    ) -> CircuitBreaker:
        return cls(policy.breaker_threshold, policy.breaker_cooldown, clock=clock, name=name)

    @property
    def threshold(self) -> int:
        return self._threshold

    @property
    def cooldown(self) -> float:
        return self._cooldown

    @property
    def state(self) -> BreakerState:
        """The state now: an open breaker whose cooldown has passed reads as half-open."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._cooldown:
            self._state = BreakerState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Transient failures since the last success."""
        return self._consecutive_failures

    @property
    def opened_count(self) -> int:
        """How many times the breaker has opened (re-opening after a failed probe included)."""
        return self._opened_count

    @property
    def probe_in_flight(self) -> bool:
        return self._probe_in_flight

    @property
    def retry_after(self) -> float:
        """Seconds until a probe will be admitted: 0 unless the breaker is open."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._cooldown - self._clock())

    def before_call(self) -> None:
        """Admit a call or raise `CircuitOpen`. In half-open state the admitted call is the
        probe, and further calls are refused until it is reported."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.OPEN:
            raise CircuitOpen(
                f"{self.name}: circuit open after {self._consecutive_failures} consecutive "
                f"transient failures; next probe in {self.retry_after:.3g} s"
            )
        if self._probe_in_flight:
            raise CircuitOpen(f"{self.name}: circuit half-open, a probe call is in flight")
        self._probe_in_flight = True

    def record_success(self) -> None:
        """A call succeeded: the count of consecutive failures restarts and the breaker closes."""
        self._consecutive_failures = 0
        self._probe_in_flight = False
        self._state = BreakerState.CLOSED

    def record_failure(self) -> None:
        """A call failed transiently. Opens the breaker at `threshold` consecutive failures, or
        at once when half-open. A failure reported while already open (a call admitted before
        it opened) is counted but does not restart the cooldown."""
        self._consecutive_failures += 1
        state = self.state
        self._probe_in_flight = False
        if state is BreakerState.HALF_OPEN or (
            state is BreakerState.CLOSED and self._consecutive_failures >= self._threshold
        ):
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._opened_count += 1

    def release(self) -> None:
        """An admitted call ended without telling whether the connection works (cancelled, or a
        terminal error): nothing is counted, and a half-open breaker admits a new probe."""
        self._probe_in_flight = False

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(name={self.name!r}, state={self.state.value}, "
            f"consecutive_failures={self._consecutive_failures}, "
            f"opened_count={self._opened_count})"
        )
