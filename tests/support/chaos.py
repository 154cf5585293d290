"""Randomized crash runs: `stratum migrate` SIGKILLed at random moments until it finishes.

One *round* builds a multi-table plan into a fresh PostgreSQL destination:

* ``orders``: a MariaDB table (decimal, datetime, tinyint(1), utf8mb4, NULLs) copied with
  ``PARTITIONS 2``;
* ``events``: a PostgreSQL table with a composite primary key (jsonb, timestamptz);
* ``items_full``: a CSV file loaded ``MODE full`` with CASTs into a table the engine creates,
  without a primary key;
* ``items_log``: the same file loaded ``MODE append`` into a table made beforehand, without a
  primary key and with typed columns (the pass-through COPY path, the server refusing a value);

both file loads under ``ON ERROR reject``, the file holding a ragged record, a value the cast
refuses, an undecodable byte, a NUL, and rows written twice on purpose (a multiset, not a set).
Every run is slowed by a failpoint (``after_commit=sleep:...@*``) and SIGKILLed at a random
moment (`run_round` says how it is drawn), until one run ends by itself; then the destination
is checked:

* per table: row counts and per-row checksums keyed by primary key (missing / extra / different,
  and duplicate keys); for the tables without a key, the multiset of rows against a reference
  table the driver loaded itself (a row loaded twice shows as extra);
* per item, from the ``--summary`` JSON of the run that finished (which did only the last part
  of the work): ``rows_read = rows_written + rows_rejected + rows_filtered``, and the totals are
  the whole load's (rows_written = the target's rows, rows_read = the source's records), i.e.
  carried across resumes; a partitioned item's are the sums of its partitions'; the same from
  the destination's ``stratum.checkpoints``;
* the reject files hold every bad record exactly once, at its line;
* one more run reads nothing: every item is ``skipped`` and no batch is processed.

Round 0 runs without a kill (its timing scales the kill delays); then rounds repeat, each on a
fresh destination and state store, until the requested number of kills has been made. A round
is capped at ``MAX_RUNS_PER_ROUND`` runs; the last one runs without a kill. A round whose last
run fails ends the chaos, its log kept under the workdir's ``failures/``.

    python -m tests.support.chaos --kills 200 --seed 1 --report chaos/REPORT.md

creates throwaway databases on the test servers (tests/support/databases.py), prints a short
markdown report and writes it to --report; its exit status is 1 when any difference was found.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from tests.support import databases as db
from tests.support.checksums import canonical_rows, compare_tables, row_checksum
from tests.support.migrate import Migrate
from tests.support.sql import my_async, pg_async

__all__ = ["ChaosPlan", "Round", "check_rejects", "check_tables", "main", "prepare", "run_chaos"]

#: What slows each batch down, so that kills land in the middle of items.
SLOW = "after_commit=sleep:0.01@*"
MAX_RUNS_PER_ROUND = 60
#: The share of kills at a random moment from the process start (the rest: of the plan's work).
EARLY_KILLS = 0.15
#: A kill in the plan's work comes up to KILL_SPAN x an uninterrupted run's work after its start.
KILL_SPAN = 0.5
#: Seconds a run may take before it is called hung.
RUN_TIMEOUT = 300


# --- the data -----------------------------------------------------------------------------------

#: target table -> its primary key columns (None: no key, compared as a multiset of rows)
TARGETS: dict[str, tuple[str, ...] | None] = {
    "orders": ("id",),
    "events": ("id", "seq"),
    "items_full": None,
    "items_log": None,
}
#: the plan's items -> their target tables
ITEMS = {
    "dst.orders": "orders",
    "dst.events": "events",
    "dst.items_full": "items_full",
    "dst.items_log": "items_log",
}


@dataclass(frozen=True)
class BadRecord:
    """A CSV record that must be rejected: its line and why."""

    line: int
    why: str


@dataclass
class ChaosPlan:
    """The sources (made once, for every round), what they hold, and the plan that copies
    them."""

    workdir: Path
    pg_url: str
    my_url: str
    rows: int = 3000
    batch: int = 50
    csv_records: int = 0
    bad: list[BadRecord] = field(default_factory=list)
    good_items: list[tuple[str, int, Decimal, str | None]] = field(default_factory=list)

    @property
    def plan_path(self) -> Path:
        return self.workdir / "chaos.smql"

    @property
    def csv_path(self) -> Path:
        return self.workdir / "items.csv"

    async def create_sources(self) -> None:
        rng = random.Random(7)
        await my_async(
            self.my_url,
            "CREATE TABLE orders (id int PRIMARY KEY, customer varchar(40) CHARACTER SET utf8mb4,"
            " amount decimal(12,2), placed datetime, paid tinyint(1), note text NULL)",
        )
        start = datetime(2021, 3, 1, 8, 30)
        for chunk in range(0, self.rows, 500):
            values = []
            for i in range(chunk + 1, min(chunk + 500, self.rows) + 1):
                note = "NULL" if i % 11 == 0 else f"'note {i} \\'q\\' \U0001f600'"
                placed = start + timedelta(minutes=37 * i, seconds=i % 60)
                values.append(
                    f"({i}, 'Kunde {i} é', {Decimal(rng.randrange(0, 10**7)) / 100}, "
                    f"'{placed:%Y-%m-%d %H:%M:%S}', {i % 2}, {note})"
                )
            await my_async(self.my_url, f"INSERT INTO orders VALUES {', '.join(values)}")
        await pg_async(
            self.pg_url,
            "CREATE TABLE src_events (id bigint, seq int, kind text NOT NULL, payload jsonb,"
            " at timestamptz, PRIMARY KEY (id, seq))",
            "INSERT INTO src_events SELECT i / 3, i % 3, 'kind-' || (i % 5),"
            " jsonb_build_object('n', i, 'tags', jsonb_build_array('a', i % 7)),"
            " timestamptz '2022-01-01 00:00:00+00' + i * interval '61 seconds'"
            f" FROM generate_series(1, {self.rows}) i",
        )
        self._write_csv(rng)
        await pg_async(
            self.pg_url,
            "CREATE TABLE expected_items (sku text, qty int, price numeric(10,2), label text)",
        )
        conn = await asyncpg.connect(self.pg_url)
        try:
            await conn.copy_records_to_table(
                "expected_items",
                records=self.good_items,
                columns=["sku", "qty", "price", "label"],
            )
        finally:
            await conn.close()

    def _write_csv(self, rng: random.Random) -> None:
        """The CSV file: `rows` records, a few bad ones among them, some rows twice."""
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["sku", "qty", "price", "label"])
        data = bytearray(out.getvalue().encode())
        line = 2
        bad_at = {self.rows // 7: "ragged", self.rows // 3: "cast", self.rows // 2: "bytes"}
        bad_at[self.rows - 5] = "cast"
        bad_at[self.rows * 2 // 3] = "nul"
        previous: bytes | None = None
        for i in range(1, self.rows + 1):
            kind = bad_at.get(i)
            if kind == "ragged":
                record = b"R-1,1,2.50\n"
            elif kind == "cast":
                record = f'C-{i},many,1.00,"won\'t cast"\n'.encode()
            elif kind == "bytes":
                record = f"B-{i},3,4.00,bad \xff byte\n".encode("latin-1")
            elif kind == "nul":
                record = f"N-{i},5,1.00,a NUL \x00 inside\n".encode()
            elif previous is not None and i % 97 == 0:
                record = previous  # the same row twice: a multiset of rows
            else:
                qty, price = rng.randrange(-50, 5000), Decimal(rng.randrange(0, 10**6)) / 100
                label = f"item {i} ü"
                if i % 29 == 0:
                    label = f'item "{i}", multi\nline'
                if i % 13 == 0:
                    label = ""  # NULL
                out = io.StringIO(newline="")
                csv.writer(out, lineterminator="\n").writerow([f"S-{i}", qty, price, label])
                record = out.getvalue().encode()
            if kind is not None:
                self.bad.append(BadRecord(line, kind))
            else:
                fields = next(csv.reader([record.decode()]))
                self.good_items.append(
                    (fields[0], int(fields[1]), Decimal(fields[2]), fields[3] or None)
                )
                previous = record
            data += record
            line += record.count(b"\n")
        self.csv_records = self.rows
        self.csv_path.write_bytes(bytes(data))

    def write_plan(self) -> None:
        self.plan_path.write_text(
            f"CONNECTION src_my = '{self.my_url}';\n"
            f"CONNECTION src_pg = '{self.pg_url}';\n"
            f"CONNECTION dst = '{self.pg_url}';\n"
            "SET parallel = 4, queue_size = 4;\n"
            f"MIGRATE src_my.orders INTO dst.orders PARTITIONS 2 BATCH SIZE {self.batch};\n"
            f"MIGRATE src_pg.src_events INTO dst.events BATCH SIZE {self.batch};\n"
            "MIGRATE FILE 'items.csv' (HEADER, NULL '') INTO dst.items_full MODE full\n"
            f"  BATCH SIZE {self.batch} ON ERROR reject\n"
            "  CAST COLUMN qty TO int, COLUMN price TO numeric(10,2);\n"
            "MIGRATE FILE 'items.csv' (HEADER, NULL '') INTO dst.items_log MODE append\n"
            f"  BATCH SIZE {self.batch} ON ERROR reject;\n",
            encoding="utf-8",
        )

    async def reset_destination(self, state_dir: Path) -> None:
        """Drop what a round made: the targets, the engine's checkpoints, the state store; and
        make the append target again, empty."""
        await pg_async(
            self.pg_url,
            *(f'DROP TABLE IF EXISTS "{table}"' for table in TARGETS),
            "DROP SCHEMA IF EXISTS stratum CASCADE",
            "CREATE TABLE items_log (sku text, qty int, price numeric(10,2), label text)",
        )
        shutil.rmtree(state_dir, ignore_errors=True)

    def source_of(self, table: str) -> tuple[str, str]:
        """The URL and table a target is compared with."""
        return {
            "orders": (self.my_url, "orders"),
            "events": (self.pg_url, "src_events"),
            "items_full": (self.pg_url, "expected_items"),
            "items_log": (self.pg_url, "expected_items"),
        }[table]


# --- one round ------------------------------------------------------------------------------------


@dataclass
class Round:
    """What one round did and found."""

    number: int
    kills: int = 0
    runs: int = 0
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)
    kill_delays: list[float] = field(default_factory=list)
    carried: int = 0  # items whose final totals were checked to span a resume
    kill_moments: list[str] = field(default_factory=list)  # where each kill landed


@dataclass(frozen=True)
class FinalRun:
    """The run that finished a round: its --summary JSON and its JSON log lines."""

    summary: dict[str, Any]
    log: str


def _start(migrate: Migrate, summary: Path, log: Path, slow: str) -> subprocess.Popen[bytes]:
    """A run in the background, its output in `log` (a file: a pipe nobody reads while the
    run goes on could fill up and stall it)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            migrate.command(("--summary", str(summary))),
            env=migrate.env(slow),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _events(stderr: str, name: str) -> list[dict[str, Any]]:
    out = []
    for line in stderr.splitlines():
        if f'"{name}"' not in line:
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("event") == name:
            out.append(event)
    return out


@dataclass(frozen=True)
class Timing:
    """How long an uninterrupted run takes to start (to its `migration_started` line) and then
    to do its work: the scale of the kill delays."""

    startup: float
    work: float


def _wait_for_start(process: subprocess.Popen[bytes], log: Path) -> float | None:
    """Seconds until the run logs `migration_started`; None if it ends before."""
    began = time.monotonic()
    while process.poll() is None:
        if b'"migration_started"' in log.read_bytes():
            return time.monotonic() - began
        time.sleep(0.01)
    return None


def run_round(
    plan: ChaosPlan,
    number: int,
    rng: random.Random,
    *,
    kill_budget: int,
    timing: Timing | None,
    slow: str = SLOW,
) -> tuple[Round, FinalRun | None, Timing | None]:
    """Kill runs of the plan at random moments (at most `kill_budget` kills) until one
    finishes by itself; the round, the run that finished (None if none did) and, for a round
    without kills, its timing.

    A kill lands, with probability EARLY_KILLS, at a random moment from the process start
    (interpreter start, connecting, preparing); otherwise at a random moment of the plan's
    work, counted from its `migration_started` line: up to KILL_SPAN x the work of an
    uninterrupted run, so that most kills land while batches flow."""
    result = Round(number)
    state_dir = plan.workdir / "state"
    asyncio.run(plan.reset_destination(state_dir))
    migrate = Migrate(plan.plan_path, state_dir)
    began = time.monotonic()
    final: FinalRun | None = None
    measured: Timing | None = None
    summary_path, log_path = plan.workdir / "summary.json", plan.workdir / "run.log"
    for run in range(MAX_RUNS_PER_ROUND):
        summary_path.unlink(missing_ok=True)
        last = timing is None or result.kills >= kill_budget or run == MAX_RUNS_PER_ROUND - 1
        process = _start(migrate, summary_path, log_path, slow)
        started = time.monotonic()
        result.runs += 1
        if not last:
            assert timing is not None
            if rng.random() < EARLY_KILLS:
                delay = rng.uniform(0, timing.startup * 1.5)
            else:
                delay = rng.uniform(0, KILL_SPAN * timing.work)
                if _wait_for_start(process, log_path) is None:
                    delay = 0.0  # it ended already: the wait below returns at once
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=60)
                result.kills += 1
                result.kill_delays.append(round(time.monotonic() - started, 3))
                result.kill_moments.append(_moment(log_path.read_text("utf-8", "replace")))
                continue
        startup = _wait_for_start(process, log_path) if timing is None else None
        try:
            process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            result.differences.append(f"round {number}: run {run} ran over {RUN_TIMEOUT} s")
            break
        if startup is not None:
            measured = Timing(startup, time.monotonic() - started - startup)
        log = log_path.read_text(encoding="utf-8", errors="replace")
        if process.returncode != 0:
            kept = _keep_log(plan.workdir, f"round-{number}-run-{run}", log)
            result.differences.append(
                f"round {number}: run {run} exited {process.returncode} (log: {kept}): {_tail(log)}"
            )
            break
        final = FinalRun(json.loads(summary_path.read_text(encoding="utf-8")), log)
        break
    result.seconds = time.monotonic() - began
    return result, final, measured


MOMENTS = (
    "starting (before the plan ran)",
    "preparing (before the first batch committed)",
    "loading (batches committed, items unfinished)",
    "ending (every item finished)",
)


def _moment(log: str) -> str:
    """Where in its run a killed run was (one of MOMENTS), by the log it left."""
    starting, preparing, loading, ending = MOMENTS
    if not _events(log, "migration_started"):
        return starting
    if not _events(log, "batch_processed"):
        return preparing
    finished = {e["item"] for e in _events(log, "item_finished")}
    return ending if set(ITEMS) <= finished else loading


def _keep_log(workdir: Path, name: str, log: str) -> Path:
    """Keep the log of a failed run (the workdir's `failures/`, which outlives a scratch
    workdir when it is given with --workdir)."""
    directory = workdir / "failures"
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}-{time.strftime('%H%M%S')}.log"
    path.write_text(log, encoding="utf-8")
    return path


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --- the checks -----------------------------------------------------------------------------------


async def _keyed(url: str, table: str, key: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """Canonical rows by key (the key's canonical values as JSON), and the keys seen twice."""
    rows = await canonical_rows(url, table)
    names = sorted(await _columns(url, table))
    at = [names.index(k) for k in key]
    keyed: dict[str, str] = {}
    twice: list[str] = []
    for text in rows:
        values = json.loads(text)
        k = json.dumps([values[i] for i in at])
        if k in keyed:
            twice.append(k)
        keyed[k] = row_checksum(text)
    return keyed, twice


async def _columns(url: str, table: str) -> list[str]:
    if url.startswith(("mysql", "mariadb")):
        database = url.rsplit("/", 1)[-1]
        rows = await my_async(
            url,
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
            f"WHERE TABLE_SCHEMA = '{database}' AND TABLE_NAME = '{table}'",
        )
    else:
        rows = await pg_async(
            url,
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = 'public' AND table_name = '{table}'",
        )
    return [str(r[0]) for r in rows]


async def check_tables(plan: ChaosPlan) -> tuple[dict[str, int], list[str]]:
    """Rows per target table and the differences found."""
    counts: dict[str, int] = {}
    differences: list[str] = []
    for table, key in TARGETS.items():
        source_url, source_table = plan.source_of(table)
        if key is None:
            difference = await compare_tables(
                source_url, plan.pg_url, source_table, target_table=table
            )
            counts[table] = len(await canonical_rows(plan.pg_url, table))
            if difference is not None:
                differences.append(
                    f"{table}: {difference.source_rows} rows expected, {difference.target_rows}"
                    f" found; missing {list(difference.only_in_source)}, extra"
                    f" {list(difference.only_in_target)}"
                )
            continue
        source, source_twice = await _keyed(source_url, source_table, key)
        target, twice = await _keyed(plan.pg_url, table, key)
        counts[table] = len(target) + len(twice)
        missing = sorted(set(source) - set(target))
        extra = sorted(set(target) - set(source))
        different = sorted(k for k in set(source) & set(target) if source[k] != target[k])
        if source_twice:
            differences.append(f"{table}: the source holds duplicate keys {source_twice[:5]}")
        for what, keys in (
            ("missing", missing),
            ("extra", extra),
            ("different", different),
            ("duplicate", twice),
        ):
            if keys:
                differences.append(f"{table}: {len(keys)} {what} key(s), e.g. {keys[:5]}")
        if counts[table] != len(source):
            differences.append(f"{table}: {counts[table]} rows, the source has {len(source)}")
    return counts, differences


def _expected_totals(plan: ChaosPlan, counts: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Per item: (read, written, rejected, filtered) of the whole load."""
    bad = len(plan.bad)
    return {
        "dst.orders": (plan.rows, counts.get("orders", -1), 0, 0),
        "dst.events": (plan.rows, counts.get("events", -1), 0, 0),
        "dst.items_full": (plan.csv_records, counts.get("items_full", -1), bad, 0),
        "dst.items_log": (plan.csv_records, counts.get("items_log", -1), bad, 0),
    }


_TOTALS = ("rows_read", "rows_written", "rows_rejected", "rows_filtered")


def _identity(where: str, name: str, totals: tuple[int, ...]) -> list[str]:
    read, written, rejected, filtered = totals
    if read == written + rejected + filtered:
        return []
    return [
        f"{where}: {name} read {read} != written {written} + rejected {rejected}"
        f" + filtered {filtered}"
    ]


@dataclass
class Checked:
    """What the checks of a round found."""

    differences: list[str] = field(default_factory=list)
    #: items whose final totals spanned a resume and were checked to be the whole load's
    carried: int = 0


def check_summary(
    plan: ChaosPlan, summary: dict[str, Any], log: str, counts: dict[str, int]
) -> Checked:
    """The summary of the run that finished: the accounting identity for every item it lists
    (partitions included), and totals carried across resumes: each item holds the whole load's
    totals, though the run did only the rest of it (a skipped item, finished by an earlier
    run, its checkpoint's); a partitioned item's are its partitions' sums."""
    checked = Checked()
    differences = checked.differences
    expected = _expected_totals(plan, counts)
    items = {str(i["item"]): i for i in summary["items"]}
    resumed = {str(e["item"]) for e in _events(log, "item_started") if e.get("rows_written")}
    top = {name: item for name, item in items.items() if "#" not in name}
    if set(top) != set(ITEMS):
        differences.append(f"summary: items {sorted(top)}, expected {sorted(ITEMS)}")
    for name, item in items.items():
        differences += _identity("summary", name, tuple(int(item[t]) for t in _TOTALS))
        if item["state"] not in ("finished", "skipped"):
            differences.append(f"summary: {name} is {item['state']}: {item['message']}")
    for name, item in top.items():
        totals = tuple(int(item[t]) for t in _TOTALS)
        if name in expected and totals != expected[name]:
            differences.append(
                f"summary: {name} ({item['state']}) totals (read, written, rejected, filtered)"
                f" {totals}, expected {expected[name]}: the whole load's, over every resume"
            )
        elif item["state"] == "finished" and any(
            n == name or n.startswith(name + "#") for n in resumed
        ):
            checked.carried += 1
        parts = {n: i for n, i in items.items() if n.startswith(name + "#")}
        if parts:
            sums = tuple(sum(int(i[t]) for i in parts.values()) for t in _TOTALS)
            if sums != totals:
                differences.append(
                    f"summary: {name} totals {totals} are not the sum {sums} of its partitions"
                    f" {sorted(parts)}"
                )
    return checked


async def check_checkpoints(plan: ChaosPlan, counts: dict[str, int]) -> list[str]:
    """The destination's checkpoints, the authority: every item finished, the identity for
    every row, the whole load's totals per item (a partitioned item's: its children's sums)."""
    rows = await pg_async(
        plan.pg_url,
        "SELECT item, finished, rows_read, rows_written, rows_rejected, rows_filtered"
        " FROM stratum.checkpoints",
    )
    differences: list[str] = []
    by_item = {str(r[0]): (bool(r[1]), tuple(int(v) for v in r[2:])) for r in rows}
    expected = _expected_totals(plan, counts)
    for name, (done, totals) in sorted(by_item.items()):
        if not done:
            differences.append(f"checkpoints: {name} is not finished")
        differences += _identity("checkpoints", name, totals)
    for name, want in expected.items():
        parts = [t for n, (_, t) in by_item.items() if n.startswith(name + "#")]
        if name not in by_item:
            differences.append(f"checkpoints: no row for {name}")
            continue
        got = tuple(map(sum, zip(*parts, strict=True))) if parts else by_item[name][1]
        if got != want:
            differences.append(
                f"checkpoints: {name} totals (read, written, rejected, filtered) {got},"
                f" expected {want}"
            )
    return differences


def check_rejects(plan: ChaosPlan, state_dir: Path) -> list[str]:
    """Each bad record in each file item's reject file, once, at its line."""
    differences: list[str] = []
    expected = Counter(bad.line for bad in plan.bad)
    for item in ("dst.items_full", "dst.items_log"):
        files = sorted(state_dir.rglob(f"{item}.rejects.jsonl"))
        if len(files) != 1:
            differences.append(f"rejects: {item}: {len(files)} reject files found")
            continue
        lines = [json.loads(line) for line in files[0].read_text("utf-8").splitlines()]
        found = Counter(int(line["position"]) for line in lines)
        if found != expected:
            differences.append(
                f"rejects: {item}: lines {sorted(found.elements())}, expected"
                f" {sorted(expected.elements())}"
            )
    return differences


def check_rerun(plan: ChaosPlan, state_dir: Path, counts: dict[str, int]) -> list[str]:
    """A run of the finished plan reads nothing: every item skipped, no batch processed; and
    its summary still gives each item the whole load's totals, from the checkpoints."""
    migrate = Migrate(plan.plan_path, state_dir)
    summary_path = plan.workdir / "summary-rerun.json"
    done = migrate.run(extra=("--summary", str(summary_path)))
    if done.returncode != 0:
        kept = _keep_log(plan.workdir, "rerun", done.stderr + done.stdout)
        return [f"rerun: exit {done.returncode} (log: {kept}): {_tail(done.stderr + done.stdout)}"]
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    differences = [
        f"rerun: {i['item']} is {i['state']}, not skipped"
        for i in summary["items"]
        if i["state"] != "skipped"
    ]
    batches = _events(done.stderr, "batch_processed")
    if batches:
        differences.append(f"rerun: {len(batches)} batches processed, expected none")
    checked = check_summary(plan, summary, done.stderr, counts)
    return differences + [f"rerun {d}" for d in checked.differences]


def verify(plan: ChaosPlan, final: FinalRun) -> tuple[dict[str, int], Checked]:
    """Rows per table, and what the checks found."""
    counts, differences = asyncio.run(check_tables(plan))
    checked = check_summary(plan, final.summary, final.log, counts)
    checked.differences[:0] = differences + asyncio.run(check_checkpoints(plan, counts))
    checked.differences += check_rejects(plan, plan.workdir / "state")
    checked.differences += check_rerun(plan, plan.workdir / "state", counts)
    return counts, checked


# --- the driver ---------------------------------------------------------------------------------


def prepare(
    pg_url: str, my_url: str, workdir: Path, *, rows: int = 3000, batch: int = 50
) -> ChaosPlan:
    """The sources (in the two databases, and the CSV file in `workdir`) and the plan."""
    plan = ChaosPlan(workdir, pg_url, my_url, rows=rows, batch=batch)
    asyncio.run(plan.create_sources())
    plan.write_plan()
    return plan


def run_chaos(
    plan: ChaosPlan, *, seed: int, kills: int, slow: str = SLOW, log: Any = None
) -> dict[str, Any]:
    """Round 0 runs the plan without a kill (checked like the others; its duration scales the
    kill delays), then rounds of random kills until `kills` kills were made; the report. A
    round whose last run fails ends the chaos (its log is kept under the workdir's
    failures/). The destination is left as the last round made it."""
    began = time.monotonic()
    rng = random.Random(seed)
    rounds: list[Round] = []
    made = 0
    timing: Timing | None = None
    while not rounds or made < kills:
        budget = min(kills - made, rng.randint(2, 8)) if rounds else 0
        result, final, measured = run_round(
            plan, len(rounds), rng, kill_budget=budget, timing=timing, slow=slow
        )
        if timing is None:
            timing = measured
        if final is not None:
            result.rows, checked = verify(plan, final)
            result.differences += checked.differences
            result.carried = checked.carried
        made += result.kills
        rounds.append(result)
        if log is not None:
            log(
                f"round {result.number}: {result.kills} kills, {result.runs} runs,"
                f" {result.seconds:.1f} s, {len(result.differences)} differences"
            )
            for difference in result.differences:
                log(f"  {difference}")
        if final is None or timing is None:
            break
    last_rows = rounds[-1].rows
    return {
        "seed": seed,
        "kills": made,
        "rounds": len(rounds),
        "runs": sum(r.runs for r in rounds),
        "reruns": sum(r.runs for r in rounds) - len(rounds),
        "carried": sum(r.carried for r in rounds),
        "tables": sorted(TARGETS),
        "rows": last_rows,
        "source_rows": {
            "orders": plan.rows,
            "events": plan.rows,
            "csv records": plan.csv_records,
        },
        "rejected_per_file_item": len(plan.bad),
        "differences": [d for r in rounds for d in r.differences],
        "startup_seconds": round(timing.startup, 2) if timing else None,
        "work_seconds": round(timing.work, 2) if timing else None,
        "kills_by_moment": dict(Counter(m for r in rounds for m in r.kill_moments)),
        "seconds": round(time.monotonic() - began, 1),
        "kill_delays": [d for r in rounds for d in r.kill_delays],
        "slow": slow,
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a short markdown page."""
    delays = sorted(report["kill_delays"])
    source = report["source_rows"]
    lines = [
        "# Chaos report: `stratum migrate` SIGKILLed at random moments",
        "",
        "Made by `make chaos` (`python -m tests.support.chaos`, tests/support/chaos.py).",
        "",
        "The plan, into PostgreSQL: a MariaDB table copied with PARTITIONS 2 (`orders`), a",
        "PostgreSQL table with a composite key (`events`), and one CSV file loaded MODE full",
        "(`items_full`, created by the engine) and MODE append (`items_log`, made beforehand),",
        "both targets without a primary key, under ON ERROR reject. Every run is slowed by the",
        f"failpoint `{report['slow']}` and SIGKILLed at a random moment: mostly during the",
        "plan's work (counted from its `migration_started` line), some from the process start;",
        "then rerun, killed again, until a run ends by itself.",
        "",
        "Then the checks: row counts; per-row checksums keyed by primary key (missing, extra,",
        "different, duplicate keys); the multiset of rows of the keyless tables against a",
        "reference the driver loaded itself; `read = written + rejected + filtered` per item and",
        "part, and the whole load's totals, from the final run's `--summary` (carried across",
        "resumes) and from `stratum.checkpoints`; each bad CSV record in each reject file",
        "exactly once, at its line; a rerun that processes no batch (every item skipped, its",
        "totals still the whole load's). Round 0 runs without a kill; every round starts on a",
        "fresh destination and state store.",
        "",
        "| | |",
        "| --- | --- |",
        f"| seed | {report['seed']} |",
        f"| kills (SIGKILL) | {report['kills']} |",
        f"| rounds (each run to the end and checked) | {report['rounds']} |",
        f"| runs (reruns after a kill) | {report['runs']} ({report['reruns']}) |",
        f"| tables | {', '.join(report['tables'])} |",
        f"| final totals checked to span a resume | {report['carried']} item results |",
        f"| **differences** | **{len(report['differences'])}** |",
        f"| uninterrupted run (round 0) | {report['startup_seconds']} s to start,"
        f" {report['work_seconds']} s of work |",
        f"| duration | {report['seconds']} s |",
    ]
    if delays:
        lines.append(
            f"| kills after the process start | {delays[0]:.2f} s to {delays[-1]:.2f} s,"
            f" median {delays[len(delays) // 2]:.2f} s |"
        )
    lines += ["", "Where the kills landed (by the killed run's log):", ""]
    moments = report["kills_by_moment"]
    lines += [f"* {moment}: {moments[moment]}" for moment in MOMENTS if moment in moments]
    lines += ["", "Rows per table, after every round:", "", "| table | rows |", "| --- | --- |"]
    lines += [f"| {table} | {rows} |" for table, rows in sorted(report["rows"].items())]
    lines += [
        "",
        f"Sources: {source['orders']} MariaDB rows, {source['events']} PostgreSQL rows, a CSV"
        f" file of {source['csv records']} records of which {report['rejected_per_file_item']}"
        " are bad (ragged, a value the cast refuses, an undecodable byte, a NUL) and some rows"
        " are written twice.",
        "",
    ]
    if report["differences"]:
        lines += ["## Differences", ""]
        lines += [f"* {d}" for d in report["differences"]]
    else:
        lines.append("Differences: none.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.chaos", description=__doc__)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--slow", default=SLOW)
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="kept when given")
    args = parser.parse_args(argv)
    pg_server, my_server = db.postgres_server(), db.mariadb_server()
    for server in (pg_server, my_server):
        reason = db.unreachable_reason(server)
        if reason is not None:
            print(reason, file=sys.stderr)
            return 2
    pg_name = db.unique_database_name("chaos")
    my_name = db.unique_database_name("chaos")
    asyncio.run(db.create_postgres_database(pg_name, pg_server))
    asyncio.run(db.create_mariadb_database(my_name, my_server))
    scratch = None
    if args.workdir is None:
        scratch = tempfile.mkdtemp(prefix="stratum-chaos-")
        workdir = Path(scratch)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    try:
        plan = prepare(
            pg_server.url_for(pg_name),
            my_server.url_for(my_name),
            workdir,
            rows=args.rows,
            batch=args.batch,
        )
        report = run_chaos(plan, seed=args.seed, kills=args.kills, slow=args.slow, log=log)
    finally:
        asyncio.run(db.drop_postgres_database(pg_name, pg_server))
        asyncio.run(db.drop_mariadb_database(my_name, my_server))
        failures = workdir / "failures"
        if failures.is_dir() and args.report is not None:  # the logs of failed runs
            shutil.copytree(failures, args.report.parent / "failures", dirs_exist_ok=True)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    text = markdown(report)
    print(text)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text, encoding="utf-8")
        args.report.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    return 1 if report["differences"] else 0


if __name__ == "__main__":
    sys.exit(main())
