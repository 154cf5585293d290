"""call_with_retry: exactly the policy's waits, the breaker on every attempt, no retry of
terminal errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest
from tenacity import RetryError

from stratum.errors import CircuitOpen, ConnectionLost, RowError, StratumError
from stratum.resilience import BreakerState, CircuitBreaker, RetryPolicy, call_with_retry


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """An injected sleep: records the waits and advances the fake clock, never really waits."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.delays: list[float] = []
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.clock is not None:
            self.clock.now += seconds


class Flaky:
    """Raises the errors made by `make_error` for the first `failures` calls, then returns 42."""

    def __init__(
        self,
        failures: int | None,
        make_error: Callable[[int], BaseException] = lambda n: ConnectionLost(f"reset {n}"),
    ) -> None:
        self.failures = failures
        self.make_error = make_error
        self.calls = 0
        self.errors: list[BaseException] = []

    async def __call__(self) -> int:
        self.calls += 1
        await anyio.lowlevel.checkpoint()
        if self.failures is None or self.calls <= self.failures:
            error = self.make_error(self.calls)
            self.errors.append(error)
            raise error
        return 42


def quiet_breaker(clock: FakeClock | None = None) -> CircuitBreaker:
    """A breaker that never opens within these tests, for tests of the waits alone."""
    return CircuitBreaker(1000, 30, clock=clock or FakeClock())


async def run(
    fn: Callable[[], Awaitable[int]],
    policy: RetryPolicy,
    breaker: CircuitBreaker,
    sleeps: Sleeps,
    retries: list[tuple[int, BaseException, float]] | None = None,
) -> int:
    def on_retry(attempt: int, error: BaseException, delay: float) -> None:
        assert retries is not None
        retries.append((attempt, error, delay))

    return await call_with_retry(
        fn,
        policy=policy,
        breaker=breaker,
        on_retry=on_retry if retries is not None else None,
        sleep=sleeps,
    )


@pytest.mark.asyncio
async def test_success_needs_no_retry() -> None:
    sleeps, fn = Sleeps(), Flaky(0)
    assert await run(fn, RetryPolicy(), quiet_breaker(), sleeps) == 42
    assert (fn.calls, sleeps.delays) == (1, [])


@pytest.mark.asyncio
async def test_waits_are_exactly_the_policys_sequence_with_the_30_s_cap() -> None:
    sleeps, fn = Sleeps(), Flaky(None)
    retries: list[tuple[int, BaseException, float]] = []
    with pytest.raises(ConnectionLost) as caught:
        await run(fn, RetryPolicy(max_attempts=9), quiet_breaker(), sleeps, retries)
    assert sleeps.delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert fn.calls == 9
    assert caught.value is fn.errors[-1]  # the last error itself, not tenacity's RetryError
    assert [(a, d) for a, _, d in retries] == list(enumerate(sleeps.delays, start=1))
    assert [e for _, e, _ in retries] == fn.errors[:-1]


@pytest.mark.asyncio
async def test_recovers_after_transient_failures() -> None:
    sleeps, fn = Sleeps(), Flaky(2)
    b = quiet_breaker()
    assert await run(fn, RetryPolicy(), b, sleeps) == 42
    assert sleeps.delays == [1, 2]
    assert b.consecutive_failures == 0
    assert b.state is BreakerState.CLOSED


@pytest.mark.parametrize("max_attempts", [1, 2, 3])
@pytest.mark.asyncio
async def test_retry_error_never_escapes(max_attempts: int) -> None:
    sleeps, fn = Sleeps(), Flaky(None)
    with pytest.raises(ConnectionLost) as caught:
        await run(fn, RetryPolicy(max_attempts=max_attempts), quiet_breaker(), sleeps)
    assert not isinstance(caught.value, RetryError)
    assert fn.calls == max_attempts
    assert len(sleeps.delays) == max_attempts - 1


@pytest.mark.parametrize(
    "error",
    [RowError("violates not-null"), StratumError("x"), ValueError("bug"), ConnectionResetError()],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.asyncio
async def test_terminal_and_foreign_errors_are_raised_at_once(error: Exception) -> None:
    sleeps, fn = Sleeps(), Flaky(None, lambda n: error)
    b = quiet_breaker()
    retries: list[tuple[int, BaseException, float]] = []
    with pytest.raises(type(error)) as caught:
        await run(fn, RetryPolicy(), b, sleeps, retries)
    assert caught.value is error
    assert (fn.calls, sleeps.delays, retries) == (1, [], [])
    assert b.consecutive_failures == 0  # the breaker judges connections only


@pytest.mark.asyncio
async def test_a_terminal_error_after_transient_ones_stops_the_retries() -> None:
    def make_error(n: int) -> BaseException:
        return ConnectionLost("reset") if n == 1 else RowError("bad row")

    sleeps, fn = Sleeps(), Flaky(None, make_error)
    with pytest.raises(RowError):
        await run(fn, RetryPolicy(), quiet_breaker(), sleeps)
    assert (fn.calls, sleeps.delays) == (2, [1])


@pytest.mark.asyncio
async def test_an_exception_group_of_transient_errors_is_retried() -> None:
    sleeps = Sleeps()
    fn = Flaky(1, lambda n: ExceptionGroup("tg", [ConnectionLost("a"), ConnectionLost("b")]))
    assert await run(fn, RetryPolicy(), quiet_breaker(), sleeps) == 42
    assert sleeps.delays == [1]


@pytest.mark.asyncio
async def test_the_breaker_opens_after_exactly_four_failures_and_circuit_open_propagates() -> None:
    clock = FakeClock()
    sleeps, fn = Sleeps(clock), Flaky(None)
    b = CircuitBreaker.from_policy(RetryPolicy(), clock=clock)
    retries: list[tuple[int, BaseException, float]] = []
    with pytest.raises(CircuitOpen) as caught:
        await run(fn, RetryPolicy(), b, sleeps, retries)
    assert fn.calls == 4  # not 3, not 5
    assert sleeps.delays == [1, 2, 4]  # no wait after the failure that opened it
    assert len(retries) == 3
    assert caught.value.__cause__ is fn.errors[-1]
    assert b.state is BreakerState.OPEN
    assert (b.consecutive_failures, b.opened_count) == (4, 1)


@pytest.mark.asyncio
async def test_an_open_breaker_refuses_without_calling() -> None:
    clock = FakeClock()
    b = CircuitBreaker(1, 30, clock=clock)
    b.before_call()
    b.record_failure()
    sleeps, fn = Sleeps(clock), Flaky(0)
    with pytest.raises(CircuitOpen):
        await run(fn, RetryPolicy(), b, sleeps)
    assert (fn.calls, sleeps.delays) == (0, [])


@pytest.mark.asyncio
async def test_the_probe_after_the_cooldown_closes_or_reopens() -> None:
    clock = FakeClock()
    b = CircuitBreaker(4, 30, clock=clock)
    with pytest.raises(CircuitOpen):
        await run(Flaky(None), RetryPolicy(), b, Sleeps(clock))
    clock.now += 30
    # a failing probe re-opens at once: no retry against a half-open breaker
    probe = Flaky(None)
    with pytest.raises(CircuitOpen):
        await run(probe, RetryPolicy(), b, Sleeps(clock))
    assert probe.calls == 1
    assert b.opened_count == 2
    clock.now += 30
    good = Flaky(0)
    assert await run(good, RetryPolicy(), b, Sleeps(clock)) == 42
    assert b.state is BreakerState.CLOSED
    assert b.consecutive_failures == 0


@pytest.mark.asyncio
async def test_failures_count_across_calls_sharing_a_breaker() -> None:
    clock = FakeClock()
    b = CircuitBreaker(4, 30, clock=clock)
    policy = RetryPolicy(max_attempts=2)
    with pytest.raises(ConnectionLost):
        await run(Flaky(None), policy, b, Sleeps(clock))  # 2 failures
    second = Flaky(None)
    with pytest.raises(CircuitOpen):
        await run(second, policy, b, Sleeps(clock))  # 3rd and 4th open it
    assert second.calls == 2
    assert b.opened_count == 1


@pytest.mark.asyncio
async def test_cancellation_releases_the_probe_and_counts_nothing() -> None:
    clock = FakeClock()
    b = CircuitBreaker(1, 30, clock=clock)
    b.before_call()
    b.record_failure()
    clock.now += 30

    async def hang() -> int:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    with anyio.move_on_after(0.01):
        await call_with_retry(hang, policy=RetryPolicy(), breaker=b, sleep=Sleeps(clock))
    assert b.state is BreakerState.HALF_OPEN
    assert not b.probe_in_flight
    assert b.consecutive_failures == 1


@pytest.mark.asyncio
async def test_default_sleep_really_waits_the_fast_policy() -> None:
    fn = Flaky(2)
    start = anyio.current_time()
    result = await call_with_retry(
        fn, policy=RetryPolicy.fast(), breaker=CircuitBreaker.from_policy(RetryPolicy.fast())
    )
    assert result == 42
    assert anyio.current_time() - start >= 0.003  # 1 ms + 2 ms


class _Killed(BaseException):
    """Stands for a SIGKILL or KeyboardInterrupt: not an Exception."""


@pytest.mark.asyncio
async def test_a_base_exception_goes_straight_through() -> None:
    clock = FakeClock()
    b = CircuitBreaker(4, 30, clock=clock)
    sleeps, fn = Sleeps(clock), Flaky(None, lambda n: _Killed())
    with pytest.raises(_Killed):
        await run(fn, RetryPolicy(), b, sleeps)
    assert (fn.calls, sleeps.delays, b.consecutive_failures) == (1, [], 0)
