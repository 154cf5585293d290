"""Resilience: which faults are retried, how long to wait, when to stop calling a server.

* `is_transient` (classify.py): the only rule, by type: `stratum.errors.Transient` is retried.
* `RetryPolicy` (policy.py): waits (1, 2, 4, 8, 16, 30 s, then 30 s), attempts, breaker
  settings; `RetryPolicy.fast()` for tests, `RetryPolicy.from_env()` for tests of the CLI.
* `CircuitBreaker` (breaker.py): closed -> open after `threshold` consecutive transient
  failures -> half-open after `cooldown` -> closed by a successful probe.
* `call_with_retry` (retry.py): one call, retried with the policy's waits (tenacity), every
  attempt through the breaker; raises `CircuitOpen` for the engine to pause the item.
"""

from stratum.resilience.breaker import BreakerState, CircuitBreaker
from stratum.resilience.classify import is_transient
from stratum.resilience.policy import RetryPolicy
from stratum.resilience.retry import OnRetry, call_with_retry

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "OnRetry",
    "RetryPolicy",
    "call_with_retry",
    "is_transient",
]
