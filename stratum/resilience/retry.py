"""Retry a call on transient errors, through the circuit breaker, with the policy's waits.

Built on tenacity's `AsyncRetrying`: only `is_transient` errors are retried, the waits are the
policy's `delays` (the last repeating), at most `max_attempts` attempts are made, and when they are
used up the last error itself is raised (never tenacity's `RetryError`).

Every attempt asks the breaker first. `CircuitOpen` is never retried: when the breaker refuses an
attempt, or when an attempt's failure is the one that opens it, `call_with_retry` raises
`CircuitOpen` at once (chained to that failure), and the caller pauses the item instead of
hammering the server. A terminal error is raised at once, without retry; it is not counted by the
breaker, which only judges connections.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base

from stratum.errors import CircuitOpen
from stratum.resilience.breaker import CircuitBreaker
from stratum.resilience.classify import is_transient
from stratum.resilience.policy import RetryPolicy

T = TypeVar("T")

#: Called before each wait with (the failed attempt's number, its error, the wait in seconds).
OnRetry = Callable[[int, BaseException, float], None]


class _PolicyWait(wait_base):
    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, retry_state: RetryCallState) -> float:
        return self._policy.delay(retry_state.attempt_number)


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> T:
    """`await fn()`, retried on transient errors; see the module docstring.

    Raises fn's terminal error at once, `CircuitOpen` when the breaker refuses or has just
    opened, and the last transient error when `policy.max_attempts` attempts have failed.
    """

    # tenacity's objects form reference cycles, freed only when the cyclic collector gets to
    # them; holding `fn` (and what it captures: a batch's rows) through this list, emptied on
    # the way out, lets the rows go as soon as the call returns
    held = [fn]

    async def attempt() -> T:
        breaker.before_call()
        try:
            result = await held[0]()
        except Exception as exc:
            if not is_transient(exc):
                breaker.release()
                raise
            opened = breaker.opened_count
            breaker.record_failure()
            if breaker.opened_count != opened:
                raise CircuitOpen(
                    f"{breaker.name}: circuit opened after {breaker.consecutive_failures} "
                    f"consecutive transient failures, the last: {exc}"
                ) from exc
            raise
        except BaseException:
            breaker.release()
            raise
        breaker.record_success()
        return result

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is None or state.outcome is None:
            return
        error = state.outcome.exception()
        if error is not None:
            on_retry(state.attempt_number, error, state.upcoming_sleep)

    retrying = AsyncRetrying(
        sleep=sleep,
        stop=stop_after_attempt(policy.max_attempts),
        wait=_PolicyWait(policy),
        retry=retry_if_exception(is_transient),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        result: T = await retrying(attempt)
    finally:
        held.clear()
    return result
