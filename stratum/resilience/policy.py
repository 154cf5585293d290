"""How often and how long to retry a transient fault, and when the circuit breaker opens.

The defaults are the reliability promise (RELIABILITY.md, promise 5): waits of 1, 2, 4, 8, 16
and 30 seconds, then 30 seconds for every further retry; at most 10 attempts of one call; the
circuit opens after 4 consecutive transient failures and admits one probe after 30 seconds.

Tests of the CLI shorten the waits through the environment (`RetryPolicy.from_env`):

    ============================  ==========================================  ============
    variable                      meaning                                     default
    ============================  ==========================================  ============
    STRATUM_RETRY_DELAYS          comma-separated waits in seconds, in order  1,2,4,8,16,30
                                  (the last one repeats)
    STRATUM_RETRY_MAX_ATTEMPTS    attempts of one call, the first included    10
    STRATUM_BREAKER_THRESHOLD     consecutive transient failures that open    4
                                  the circuit
    STRATUM_BREAKER_COOLDOWN      seconds the circuit stays open before a     30
                                  probe is allowed
    ============================  ==========================================  ============

An unset or empty variable keeps the default; a value that cannot be used raises `ConfigError`
naming the variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from stratum.errors import ConfigError

ENV_DELAYS = "STRATUM_RETRY_DELAYS"
ENV_MAX_ATTEMPTS = "STRATUM_RETRY_MAX_ATTEMPTS"
ENV_BREAKER_THRESHOLD = "STRATUM_BREAKER_THRESHOLD"
ENV_BREAKER_COOLDOWN = "STRATUM_BREAKER_COOLDOWN"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry waits, attempts and circuit-breaker settings. Immutable; times in seconds."""

    delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
    max_attempts: int = 10
    breaker_threshold: int = 4
    breaker_cooldown: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "delays", tuple(float(d) for d in self.delays))
        if not self.delays:
            raise ConfigError("retry policy: at least one retry delay is needed")
        if any(not math.isfinite(d) or d < 0 for d in self.delays):
            raise ConfigError(f"retry policy: delays must be finite and >= 0, got {self.delays}")
        if isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ConfigError(f"retry policy: max_attempts must be >= 1, got {self.max_attempts}")
        if isinstance(self.breaker_threshold, bool) or self.breaker_threshold < 1:
            raise ConfigError(
                f"retry policy: breaker_threshold must be >= 1, got {self.breaker_threshold}"
            )
        if not math.isfinite(self.breaker_cooldown) or self.breaker_cooldown < 0:
            raise ConfigError(
                f"retry policy: breaker_cooldown must be finite and >= 0, got "
                f"{self.breaker_cooldown}"
            )

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1 for the first); past the end of
        `delays` the last one repeats (the cap)."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        return self.delays[min(attempt, len(self.delays)) - 1]

    @classmethod
    def fast(cls) -> RetryPolicy:
        """The default shape in milliseconds, for tests: 1, 2, 4, 8, 16, 30 ms; cooldown 30 ms."""
        return cls(delays=(0.001, 0.002, 0.004, 0.008, 0.016, 0.03), breaker_cooldown=0.03)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, base: RetryPolicy | None = None
    ) -> RetryPolicy:
        """`base` (default: the defaults) with the `STRATUM_RETRY_*` and `STRATUM_BREAKER_*`
        variables of `environ` (default: `os.environ`) applied; see the module docstring."""
        env = os.environ if environ is None else environ
        policy = cls() if base is None else base
        for name, field_name, parse in (
            (ENV_DELAYS, "delays", _parse_delays),
            (ENV_MAX_ATTEMPTS, "max_attempts", int),
            (ENV_BREAKER_THRESHOLD, "breaker_threshold", int),
            (ENV_BREAKER_COOLDOWN, "breaker_cooldown", float),
        ):
            text = env.get(name, "").strip()
            if not text:
                continue
            try:
                change: dict[str, Any] = {field_name: parse(text)}
                policy = replace(policy, **change)
            except ValueError:
                raise ConfigError(f"{name}={text!r} is not a valid value") from None
            except ConfigError as exc:
                raise ConfigError(f"{name}={text!r}: {exc}") from None
        return policy

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain values (for reports and logs)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _parse_delays(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(","))
