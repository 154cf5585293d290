"""Named failpoints, for fault-injection tests only.

`STRATUM_FAILPOINTS="after_commit=kill@3,before_commit=raise@2"` arms failpoints when the process
starts: `kill@N` SIGKILLs the process the Nth time the point is reached, `raise@N` raises
ConnectionLost there, `sleep:S@N` sleeps S seconds; `@*` instead of `@N` acts every time (e.g.
`after_commit=sleep:0.02@*` slows a run down for a timed kill). Unset, `hit()` is one lookup
in an empty dict. The points:

    after_read      a batch was read and transformed, before it is queued
    before_commit   a batch's rows were sent, before the destination COMMIT
    after_commit    the destination committed, before the LMDB write
    after_state     the LMDB write is done
    during_drain    a stop was requested and queued batches are being written
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from stratum.errors import ConnectionLost

ENV = "STRATUM_FAILPOINTS"
POINTS = ("after_read", "before_commit", "after_commit", "after_state", "during_drain")


@dataclass
class _Armed:
    action: str
    at: int
    seconds: float = 0.0
    count: int = 0


def _parse(spec: str) -> dict[str, _Armed]:
    armed: dict[str, _Armed] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, rest = part.partition("=")
        action, _, at = rest.partition("@")
        if name not in POINTS:
            raise ValueError(f"{ENV}: unknown failpoint {name!r}; points are {', '.join(POINTS)}")
        seconds = 0.0
        if action.startswith("sleep:"):
            action, seconds = "sleep", float(action.removeprefix("sleep:"))
        if action not in ("kill", "raise", "sleep"):
            raise ValueError(f"{ENV}: unknown action {action!r} for {name} (kill, raise, sleep:S)")
        armed[name] = _Armed(action, 0 if at == "*" else int(at or 1), seconds)
    return armed


_ARMED = _parse(os.environ.get(ENV, ""))


def hit(name: str) -> None:
    """Reached failpoint `name`: do what it is armed to do, if anything."""
    if not _ARMED:
        return
    armed = _ARMED.get(name)
    if armed is None:
        return
    armed.count += 1
    if armed.at and armed.count != armed.at:  # at 0 (written `@*`): every time
        return
    if armed.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif armed.action == "raise":
        raise ConnectionLost(f"failpoint {name}")
    else:
        time.sleep(armed.seconds)
