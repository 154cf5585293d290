"""What the benchmark scripts share: the servers, their command-line clients, timing a child.

The servers default to the ones the test suite uses; `BENCH_PG_HOST`, `BENCH_PG_PORT`,
`BENCH_PG_USER`, `BENCH_MYSQL_HOST`, `BENCH_MYSQL_PORT` and `BENCH_MYSQL_USER` point elsewhere
(no passwords: trust auth, as on the development machines). Every database the benchmark
creates is named `sbench_*`, so it never touches another one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / ".data"
PREFIX = "sbench_"

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
MYSQL_HOST = os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = os.environ.get("BENCH_MYSQL_PORT", "3306")
MYSQL_USER = os.environ.get("BENCH_MYSQL_USER", "root")


def pg_url(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def mysql_url(database: str) -> str:
    return f"mysql://{MYSQL_USER}@{MYSQL_HOST}:{MYSQL_PORT}/{database}"


def psql_command(sql: str, database: str = "postgres") -> list[str]:
    """psql running `sql` (one statement or a `\\copy` meta-command), unaligned, no psqlrc."""
    return [
        "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
        "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", database, "-c", sql,
    ]  # fmt: skip


def mysql_command(sql: str | None, database: str | None = None) -> list[str]:
    """The mysql client running `sql` (None: standard input), tab-separated without headers,
    LOCAL INFILE allowed."""
    command = [
        "mysql", "--local-infile=1", "-N", "-B",
        "-h", MYSQL_HOST, "-P", MYSQL_PORT, "-u", MYSQL_USER,
    ]  # fmt: skip
    if database is not None:
        command += ["-D", database]
    return command if sql is None else [*command, "-e", sql]


def run(command: list[str], stdin: IO[bytes] | None = None) -> str:
    """Runs a client command; its output, or RuntimeError with its stderr."""
    done = subprocess.run(command, stdin=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def psql(sql: str, database: str = "postgres") -> str:
    return run(psql_command(sql, database))


def mysql(sql: str, database: str | None = None) -> str:
    return run(mysql_command(sql, database))


def reset_pg(database: str) -> None:
    """Drops and recreates a PostgreSQL database, then checkpoints, so that no dirty page of
    the previous run is flushed during the next one."""
    psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{database}"')
    psql("CHECKPOINT")


def reset_mysql(database: str) -> None:
    mysql(f"DROP DATABASE IF EXISTS `{database}`")
    mysql(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")


@dataclass(frozen=True)
class Measured:
    """One child process: exit code (-9 when it was killed at its timeout), wall time, peak RSS."""

    returncode: int
    seconds: float
    peak_rss_mb: float
    timed_out: bool = False


def measure(
    command: list[str],
    *,
    stdout: IO[bytes] | int | None = subprocess.DEVNULL,
    stderr: IO[bytes] | int | None = subprocess.DEVNULL,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> Measured:
    """Runs `command` in a fresh process and measures it: the wall time from start to exit and
    the peak resident set size of that very process, killing its process group after `timeout`
    seconds. The peak comes from GNU time when it is installed: a child forked from this (large)
    process starts with this process's peak as its own, so `wait4`'s figure for it would report
    the benchmark's memory, not Stratum's; GNU time is small, so the child it forks is not."""
    report = None
    if os.path.exists(_GNU_TIME):
        handle, name = tempfile.mkstemp(prefix="bench-rss-")
        os.close(handle)
        report = Path(name)
        command = [_GNU_TIME, "-f", "%M", "-o", str(report), *command]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, start_new_session=True)
    reaped: list[tuple[int, float, int]] = []

    def reap() -> None:
        _, status, usage = os.wait4(child.pid, 0)
        reaped.append((os.waitstatus_to_exitcode(status), time.perf_counter(), usage.ru_maxrss))

    waiter = threading.Thread(target=reap, daemon=True)
    waiter.start()
    timed_out = False
    try:
        waiter.join(timeout)
        if waiter.is_alive():
            timed_out = True
            _kill(child.pid)
            waiter.join()
    except BaseException:  # Ctrl-C: the child is in its own session, so take it down too
        _kill(child.pid)
        waiter.join()
        raise
    finally:
        child.returncode = reaped[0][0] if reaped else -1  # reaped here, not by Popen
    returncode, end, max_rss_kb = reaped[0]
    if report is not None:
        with contextlib.suppress(ValueError, IndexError):  # killed: GNU time wrote nothing
            max_rss_kb = int(report.read_text(encoding="utf-8").split()[-1])
        report.unlink(missing_ok=True)
    return Measured(returncode, end - start, max_rss_kb / 1024, timed_out)


_GNU_TIME = "/usr/bin/time"


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
