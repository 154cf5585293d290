"""Running `stratum migrate` as a real process, and checking what it loaded.

The kill tests start the CLI in a subprocess (so SIGKILL hits a real process with its real state
store and destination connection), kill it, run it again, and compare the destination with the
source row for row.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROWS = 6000
BATCH = 250


def write_people(path: Path, rows: int = ROWS) -> list[tuple[int, str, Decimal]]:
    """A CSV whose values carry quotes, commas and unicode, and the rows it holds."""
    expected = []
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,name,amount\n")
        for i in range(1, rows + 1):
            name = f'Person {i}, "the {i % 7}th" é'
            amount = Decimal(i * 37 % 100000) / 100
            out.write(f'{i},"{name.replace(chr(34), chr(34) * 2)}",{amount}\n')
            expected.append((i, name, amount))
    return expected


def write_plan(
    directory: Path, url: str, table: str = "people", extra: str = "", settings: str = ""
) -> Path:
    write_people(directory / "people.csv")
    plan = directory / "people.smql"
    plan.write_text(
        f"CONNECTION dest = '{url}';\n"
        f"{settings}\n"
        f"MIGRATE FILE 'people.csv' (HEADER) INTO dest.{table}\n"
        f"  {extra}\n"
        f"  BATCH SIZE {BATCH}\n"
        "  CAST COLUMN id TO bigint, COLUMN amount TO numeric(10,2);\n"
    )
    return plan


@dataclass
class Migrate:
    plan: Path
    state_dir: Path

    def command(self, extra: tuple[str, ...] = ()) -> list[str]:
        return [
            sys.executable,
            "-m",
            "stratum",
            "migrate",
            str(self.plan),
            "--state-dir",
            str(self.state_dir),
            "--log-format",
            "json",
            *extra,
        ]

    def env(self, failpoints: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("STRATUM_FAILPOINTS", None)
        env["STRATUM_RETRY_DELAYS"] = "0.05,0.1"
        env["STRATUM_BREAKER_COOLDOWN"] = "0.2"
        if failpoints:
            env["STRATUM_FAILPOINTS"] = failpoints
        return env

    def run(
        self, failpoints: str | None = None, timeout: float = 120, extra: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(extra),
            env=self.env(failpoints),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, failpoints: str | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(),
            env=self.env(failpoints),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def kill_randomly_until_done(self, seed: int, slow: str, max_runs: int = 40) -> int:
        """Start, SIGKILL after a random moment, repeat until a run finishes; the kills made."""
        rng = random.Random(seed)
        kills = 0
        for _ in range(max_runs):
            process = self.start(slow)
            time.sleep(rng.uniform(0.3, 1.6))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.communicate(timeout=30)
                kills += 1
                continue
            _, err = process.communicate(timeout=30)
            assert process.returncode == 0, err
            return kills
        final = self.run()
        assert final.returncode == 0, final.stderr
        return kills


def wait_for_event(process: subprocess.Popen[str], name: str, timeout: float = 60) -> str:
    """Read the process's log lines until one is event `name` (a run has got that far: a signal
    sent now reaches its handlers, however slow the start-up); the lines read so far."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            raise AssertionError(f"the run ended before {name}: {''.join(lines)[-2000:]}")
        lines.append(line)
        if f'"event": "{name}"' in line:
            return "".join(lines)
    raise AssertionError(f"no {name} within {timeout} s")


def events(stderr: str, name: str) -> list[dict[str, Any]]:
    """The JSON log events of that name a run wrote, in order."""
    return [json.loads(line) for line in stderr.splitlines() if f'"event": "{name}"' in line]


def killed_then_done(migrate: Migrate, at: int) -> object:
    """Kill after `at` committed batches, run again; what the second run resumed from."""
    killed = migrate.run(f"after_commit=kill@{at}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = migrate.run()
    assert done.returncode == 0, done.stderr + done.stdout
    (started,) = events(done.stderr, "item_started")
    return started["resumed_from"]
