"""The benchmark: each scenario is a whole `stratum migrate` process, timed against the floor.

    python -m bench.run [--rows 1000000] [--runs 3] [--scenario NAME ...] [--out FILE]

For each scenario: the data set is generated or found (`bench.generate`), the plan written to
a temporary directory, and `stratum migrate` run `--runs` times, each in a fresh process after
the target was dropped and recreated and the state directory deleted; its wall time and peak
RSS (`wait4`) are taken, and the summary is checked to account for every row. The floor of the
destination (its own bulk load of the same CSV into a table without keys, then the primary key)
and pgloader (MySQL -> PostgreSQL scenarios, when `pgloader` is on PATH) are measured as many
times in the same invocation; medians are compared. A scenario that fails is reported with the
tail of its log, and the others still run. Results: a JSON file and a table.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from bench.common import (
    BENCH_DIR,
    PREFIX,
    Measured,
    measure,
    mysql,
    mysql_command,
    mysql_url,
    pg_url,
    psql,
    psql_command,
    reset_mysql,
    reset_pg,
)
from bench.generate import (
    SHAPES,
    Dataset,
    add_key,
    duckdb_create,
    ensure_csv,
    ensure_mysql,
    ensure_pg,
    mysql_create,
    mysql_load,
    pg_copy,
    pg_create,
)

TARGET_DB = f"{PREFIX}target"  # the destination database on either server, reset before each run
RSS_LIMIT_MB = 150.0
STRATUM = [sys.executable, "-m", "stratum"]  # this interpreter's Stratum, as the CLI runs it

# --- scenarios ---------------------------------------------------------------------------------

CASTS = """  CAST COLUMN id TO bigint,
    COLUMN customer_id TO integer,
    COLUMN amount TO numeric(12,2),
    COLUMN created_at TO timestamp,
    COLUMN is_paid TO boolean,
    COLUMN note TO varchar(200),
    COLUMN payload TO jsonb"""


@dataclass(frozen=True)
class Target:
    """A bar a scenario must clear. `kind`: floor / pgloader (median at most `limit` times
    theirs), rss (peak MB at most `limit`), rss_of (peak at most `limit` times `other`'s),
    faster (`other`'s median at least `limit` times this one's)."""

    kind: str
    limit: float
    other: str = ""

    def describe(self) -> str:
        return {
            "floor": f"≤{self.limit:g}x floor",
            "pgloader": f"≤{self.limit:g}x pgloader",
            "rss": f"RSS ≤{self.limit:g} MB",
            "rss_of": f"RSS ≤{self.limit:g}x {self.other}",
            "faster": f"≥{self.limit:g}x faster than {self.other}",
        }[self.kind]


@dataclass(frozen=True)
class Scenario:
    name: str
    shape: str  # a bench.generate shape
    source: str  # mysql, pg or csv
    dest: str  # pg, mysql or duckdb
    item: str  # the SMQL item; {csv} is the data set's CSV file
    scale: int = 1  # rows = --rows * scale
    pgloader: bool = False
    targets: tuple[Target, ...] = ()


RSS = Target("rss", RSS_LIMIT_MB)
SCENARIOS = (
    Scenario(
        "mysql_pg",
        "orders",
        "mysql",
        "pg",
        "MIGRATE shop.orders INTO warehouse.public.orders;",
        pgloader=True,
        targets=(Target("floor", 1.5), Target("pgloader", 0.5), RSS),
    ),
    Scenario(
        "mysql_pg_database",
        "orders",
        "mysql",
        "pg",
        "MIGRATE DATABASE shop INTO warehouse.public;",
        pgloader=True,
        targets=(RSS,),
    ),
    Scenario(
        "pg_pg",
        "orders",
        "pg",
        "pg",
        "MIGRATE legacy.public.orders INTO warehouse.public.orders;",
        targets=(Target("floor", 1.5), RSS),
    ),
    Scenario(
        "csv_pg",
        "orders",
        "csv",
        "pg",
        f"MIGRATE FILE '{{csv}}' (HEADER) INTO warehouse.public.orders\n{CASTS};",
        targets=(Target("floor", 1.15), RSS),
    ),
    Scenario(
        "csv_pg_transforms",
        "orders",
        "csv",
        "pg",
        f"MIGRATE FILE '{{csv}}' (HEADER) INTO warehouse.public.orders\n{CASTS}\n"
        "  COMPUTE amount_cents = amount * 100, ordered_on = CAST(created_at AS date)\n"
        "  WHERE status <> 'cancelled';",
        targets=(Target("floor", 2.0), RSS),
    ),
    Scenario(
        "csv_duckdb",
        "orders",
        "csv",
        "duckdb",
        f"MIGRATE FILE '{{csv}}' (HEADER) INTO lake.main.orders\n{CASTS};",
        targets=(RSS,),
    ),
    Scenario(
        "mysql_mysql",
        "orders",
        "mysql",
        "mysql",
        "MIGRATE shop.orders INTO mart.orders;",
        targets=(RSS,),
    ),
    Scenario(
        "mysql_pg_5m",
        "orders",
        "mysql",
        "pg",
        "MIGRATE shop.orders INTO warehouse.public.orders;",
        scale=5,
        pgloader=True,
        targets=(Target("rss_of", 1.1, "mysql_pg"),),
    ),
    Scenario(
        "mysql_pg_5m_partitions2",
        "orders",
        "mysql",
        "pg",
        "MIGRATE shop.orders INTO warehouse.public.orders\n  PARTITIONS 2;",
        scale=5,
        pgloader=True,
        targets=(Target("faster", 1.3, "mysql_pg_5m"),),
    ),
    Scenario(
        "wide_mysql_pg",
        "wide",
        "mysql",
        "pg",
        "MIGRATE shop.wide INTO warehouse.public.wide;",
        pgloader=True,
        targets=(RSS,),
    ),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
#: `make bench-quick`: every scenario but the 5x and the wide ones.
QUICK = tuple(s.name for s in SCENARIOS if s.scale == 1 and s.shape == "orders")


def plan_text(scenario: Scenario, dataset: Dataset) -> str:
    """The .smql file a data engineer would write for the scenario."""
    connections = {
        "mysql": f"CONNECTION shop = '{mysql_url(dataset.database)}';",
        "pg": f"CONNECTION legacy = '{pg_url(dataset.database)}';",
        "csv": "",
    }[scenario.source]
    destination = {
        "pg": f"CONNECTION warehouse = '{pg_url(TARGET_DB)}';",
        "mysql": f"CONNECTION mart = '{mysql_url(TARGET_DB)}';",
        "duckdb": "CONNECTION lake = 'duckdb:///lake.duckdb';",  # beside the plan
    }[scenario.dest]
    header = "\n".join(line for line in (connections, destination) if line)
    item = scenario.item.replace("{csv}", str(dataset.csv))
    return f"-- bench scenario {scenario.name}\n{header}\n\n{item}\n"


# --- measuring ---------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def tail(path: Path, lines: int = 15, width: int = 300) -> str:
    """The end of a log, each line cut to `width` characters (a row can be long)."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    cut = [line if len(line) <= width else line[:width] + " ..." for line in text.splitlines()]
    return "\n".join(cut[-lines:]).strip()


def timed(command: list[str], log: Path, timeout: float | None = None) -> Measured:
    """A client command, measured; RuntimeError with its log's tail when it fails."""
    with log.open("wb") as out:
        result = measure(command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}): {tail(log)}")
    return result


def reset_target(dest: str, work: Path) -> None:
    if dest == "pg":
        reset_pg(TARGET_DB)
    elif dest == "mysql":
        reset_mysql(TARGET_DB)
    else:
        for path in work.glob("lake.duckdb*"):
            path.unlink()


def count_rows(dest: str, table: str, work: Path) -> int:
    if dest == "pg":
        return int(psql(f"SELECT count(*) FROM {table}", TARGET_DB))
    if dest == "mysql":
        return int(mysql(f"SELECT count(*) FROM {table}", TARGET_DB))
    with duckdb.connect(str(work / "lake.duckdb"), read_only=True) as con:
        found = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(found[0]) if found else 0


def target_keys(dest: str, table: str) -> list[str]:
    """The keys and indexes the target table ended up with (to see what the plan did)."""
    if dest == "pg":
        sql = f"SELECT indexdef FROM pg_indexes WHERE tablename = '{table}' ORDER BY 1"
        return psql(sql, TARGET_DB).splitlines()
    if dest == "mysql":
        sql = (
            "SELECT concat(index_name, ' (', group_concat(column_name ORDER BY seq_in_index),"
            f" ')') FROM information_schema.statistics WHERE table_schema = '{TARGET_DB}'"
            f" AND table_name = '{table}' GROUP BY index_name"
        )
        return mysql(sql).splitlines()
    return []


def floor(dest: str, dataset: Dataset, work: Path) -> dict[str, Any]:
    """One run of the destination's own bulk load into a table without keys, then the key."""
    shape, table, data = dataset.shape, dataset.table, dataset.csv
    reset_target(dest, work)
    if dest == "duckdb":
        started = time.perf_counter()
        with duckdb.connect(str(work / "lake.duckdb")) as con:
            con.execute(duckdb_create(shape, table))
            con.execute(f"COPY \"{table}\" FROM '{data}' (HEADER)")
        load_s, key_s = time.perf_counter() - started, 0.0
    elif dest == "pg":
        psql(pg_create(shape, table), TARGET_DB)
        load_s = timed(psql_command(pg_copy(table, data), TARGET_DB), work / "floor.log").seconds
        key = psql_command(add_key(shape, table, "postgres"), TARGET_DB)
        key_s = timed(key, work / "floor.log").seconds
    else:
        mysql(mysql_create(shape, table, key=False), TARGET_DB)
        load = mysql_command(mysql_load(shape, table, data), TARGET_DB)
        load_s = timed(load, work / "floor.log").seconds
        key = mysql_command(add_key(shape, table, "mysql"), TARGET_DB)
        key_s = timed(key, work / "floor.log").seconds
    loaded = count_rows(dest, table, work)
    if loaded != dataset.rows:
        raise RuntimeError(f"the floor loaded {loaded} rows, not {dataset.rows}")
    return {
        "load_s": round(load_s, 3),
        "key_s": round(key_s, 3),
        "seconds": round(load_s + key_s, 3),
    }


def pgloader(dataset: Dataset, work: Path, timeout: float) -> dict[str, Any]:
    """One pgloader run, MySQL -> PostgreSQL, with its defaults (it creates the schema, loads,
    then builds the keys)."""
    reset_pg(TARGET_DB)
    command = ["pgloader", mysql_url(dataset.database), pg_url(TARGET_DB)]
    result = timed(command, work / "pgloader.log", timeout)
    loaded = int(psql(f'SELECT count(*) FROM "{dataset.database}"."{dataset.table}"', TARGET_DB))
    if loaded != dataset.rows:
        raise RuntimeError(
            f"pgloader loaded {loaded} rows, not {dataset.rows}: {tail(work / 'pgloader.log')}"
        )
    return {"seconds": round(result.seconds, 3), "peak_rss_mb": round(result.peak_rss_mb, 1)}


def repeated(runs: int, once: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`runs` measurements and their median; the error instead, if one fails."""
    done: list[dict[str, Any]] = []
    try:
        for _ in range(runs):
            done.append(once())
    except Exception as exc:  # a reference that cannot be measured is reported, not fatal
        return {"runs": done, "median_s": None, "error": str(exc)}
    return {"runs": done, "median_s": median([run["seconds"] for run in done])}


@dataclass
class Bench:
    rows: int
    runs: int
    seed: int
    timeout: float
    work: Path
    floors: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    pgloaders: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)

    def scenario(self, scenario: Scenario) -> dict[str, Any]:
        dataset = Dataset(SHAPES[scenario.shape], self.rows * scenario.scale, self.seed)
        record: dict[str, Any] = {
            "name": scenario.name,
            "rows": dataset.rows,
            "source": scenario.source,
            "destination": scenario.dest,
            "load_average": os.getloadavg(),
        }
        work = self.work / scenario.name
        work.mkdir(parents=True, exist_ok=True)
        try:
            ensure_csv(dataset)
            if scenario.source == "mysql" or scenario.pgloader:
                ensure_mysql(dataset)
            if scenario.source == "pg":
                ensure_pg(dataset)
            plan = work / f"{scenario.name}.smql"
            plan.write_text(plan_text(scenario, dataset), encoding="utf-8")
            record["plan"] = plan.read_text(encoding="utf-8")
            shown = subprocess.run(
                [*STRATUM, "plan", str(plan)], capture_output=True, text=True, check=False
            )
            record["plan_text"] = shown.stdout or shown.stderr
            key = (scenario.dest, scenario.shape, dataset.rows)
            if key not in self.floors:
                _say(f"{scenario.name}: floor ({scenario.dest}), {self.runs} run(s)")
                self.floors[key] = repeated(self.runs, lambda: floor(scenario.dest, dataset, work))
            record["floor"] = self.floors[key]
            if scenario.pgloader and shutil.which("pgloader"):
                if (scenario.shape, dataset.rows) not in self.pgloaders:
                    _say(f"{scenario.name}: pgloader, {self.runs} run(s)")
                    self.pgloaders[scenario.shape, dataset.rows] = repeated(
                        self.runs, lambda: pgloader(dataset, work, self.timeout * scenario.scale)
                    )
                record["pgloader"] = self.pgloaders[scenario.shape, dataset.rows]
            record.update(self.stratum(scenario, dataset, plan, work))
        except Exception as exc:  # a broken scenario is reported; the others still run
            record.update(status="error", error=str(exc))
        return record

    def stratum(
        self, scenario: Scenario, dataset: Dataset, plan: Path, work: Path
    ) -> dict[str, Any]:
        runs: list[dict[str, Any]] = []
        for number in range(1, self.runs + 1):
            _say(f"{scenario.name}: stratum migrate, run {number}/{self.runs}")
            reset_target(scenario.dest, work)
            shutil.rmtree(work / "state", ignore_errors=True)
            summary, log = work / "summary.json", work / f"stratum-{number}.log"  # the JSON log
            summary.unlink(missing_ok=True)
            command = [
                *STRATUM, "migrate", str(plan), "--state-dir", str(work / "state"),
                "--log-format", "json", "--summary", str(summary),
            ]  # fmt: skip
            with log.open("wb") as err, log.with_suffix(".out").open("wb") as out:
                result = measure(
                    command, stdout=out, stderr=err, timeout=self.timeout * scenario.scale
                )
            run: dict[str, Any] = {
                "seconds": round(result.seconds, 3),
                "peak_rss_mb": round(result.peak_rss_mb, 1),
                "returncode": result.returncode,
                **totals(summary),
            }
            runs.append(run)
            problem = check_run(result, run, dataset.rows)
            if problem:
                return {"status": "failed", "error": problem, "log_tail": tail(log), "runs": runs}
        return {
            "status": "ok",
            "runs": runs,
            "median_s": median([run["seconds"] for run in runs]),
            "engine_median_s": median([run.get("engine_s", 0.0) for run in runs]),
            "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
            "target_keys": target_keys(scenario.dest, dataset.table),
        }


def totals(summary: Path) -> dict[str, Any]:
    """Rows and the engine's own time from `--summary`, over the plan's items (a database
    copy's tables and a partitioned item's ranges are inside their item's totals)."""
    if not summary.exists():
        return {}
    data = json.loads(summary.read_text(encoding="utf-8"))
    items = [i for i in data["items"] if "#" not in i["item"] and "/" not in i["item"]]
    keys = ("rows_read", "rows_written", "rows_rejected", "rows_filtered")
    found: dict[str, Any] = {"engine_s": data["seconds"]}
    found |= {key: sum(item[key] for item in items) for key in keys}
    messages = [f"{i['item']}: {i['message']}" for i in data["items"] if i["message"]]
    if messages:
        found["messages"] = [m if len(m) <= 500 else m[:500] + " ..." for m in messages]
    return found


def check_run(result: Measured, run: dict[str, Any], rows: int) -> str | None:
    """Why the run does not count, or None: it must exit 0 and account for every row."""
    if result.timed_out:
        return f"killed after {result.seconds:.1f} s (--timeout)"
    if result.returncode < 0:
        return f"stratum was killed by signal {-result.returncode}"
    if result.returncode != 0:
        return "; ".join([f"stratum exited with {result.returncode}", *run.get("messages", [])])
    if run.get("rows_rejected", 0):
        return f"{run['rows_rejected']} rows rejected"
    if run.get("rows_written", 0) + run.get("rows_filtered", 0) != rows:
        return f"{run.get('rows_written')} rows written (+ filtered), not {rows}"
    return None


# --- the verdicts and the table ----------------------------------------------------------------


def ratio(mine: float | None, theirs: float | None) -> float | None:
    return round(mine / theirs, 2) if mine and theirs else None


def judge(record: dict[str, Any], by_name: dict[str, dict[str, Any]]) -> None:
    """Adds the ratios and each target's verdict to a scenario's record."""
    mine = record.get("median_s")
    record["rows_per_s"] = round(record["rows"] / mine) if mine else None
    record["ratio_floor"] = ratio(mine, record.get("floor", {}).get("median_s"))
    record["ratio_pgloader"] = ratio(mine, record.get("pgloader", {}).get("median_s"))
    verdicts = []
    for target in BY_NAME[record["name"]].targets:
        value: float | None
        other = by_name.get(target.other, {})
        if target.kind == "floor":
            value = record["ratio_floor"]
        elif target.kind == "pgloader":
            value = record["ratio_pgloader"]
        elif target.kind == "rss":
            value = record.get("peak_rss_mb")
        elif target.kind == "rss_of":
            value = ratio(record.get("peak_rss_mb"), other.get("peak_rss_mb"))
        else:  # faster: the other's time over this one's
            value = ratio(other.get("median_s"), mine)
        ok = None
        if value is not None:
            ok = value >= target.limit if target.kind == "faster" else value <= target.limit
        verdicts.append({"target": target.describe(), "value": value, "ok": ok})
    record["targets"] = verdicts
    known = [v["ok"] for v in verdicts if v["ok"] is not None]
    record["verdict"] = ("PASS" if all(known) else "MISS") if known else "-"


def table(records: list[dict[str, Any]]) -> str:
    def num(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    header = ("scenario", "rows", "stratum s", "floor s", "x floor", "pgloader s", "x pgl",
              "RSS MB", "rows/s", "target", "result")  # fmt: skip
    lines = [header]
    for r in records:
        status = r.get("status")
        targets = ", ".join(
            t["target"] + ("" if t["ok"] is not False else " (missed)")
            for t in r.get("targets", [])
        )
        lines.append((
            r["name"],
            f"{r['rows']:,}",
            num(r.get("median_s")) if status == "ok" else status.upper() if status else "?",
            num(r.get("floor", {}).get("median_s")),
            num(r.get("ratio_floor")),
            num(r.get("pgloader", {}).get("median_s")),
            num(r.get("ratio_pgloader")),
            num(r.get("peak_rss_mb"), 0),
            num(r.get("rows_per_s"), 0),
            targets or "-",
            r.get("verdict", "-") if status == "ok" else "FAIL",
        ))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    for r in records:
        if r.get("status") != "ok":
            text.append(f"\n{r['name']}: {r.get('error')}\n{r.get('log_tail', '')}".rstrip())
        for key in ("floor", "pgloader"):
            if r.get(key, {}).get("error"):
                text.append(f"\n{r['name']}: the {key} failed: {r[key]['error']}")
    return "\n".join(text)


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=BENCH_DIR, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def _say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def compile_bytecode() -> None:
    """Write the bytecode of Stratum's own modules, as installing a wheel does. An editable
    install has none, and with PYTHONDONTWRITEBYTECODE set (as on some machines) every run
    would compile the whole package again: 0.1-0.2 s of start-up no installed copy pays."""
    root = BENCH_DIR.parent
    for package in ("stratum", "smql"):
        compileall.compile_dir(root / package, quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the base data set")
    parser.add_argument("--runs", type=int, default=3, help="runs of each scenario (median)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scenario", nargs="+", choices=list(BY_NAME), help="default: all")
    parser.add_argument(
        "--quick", action="store_true", help=f"the quick subset: {', '.join(QUICK)}"
    )
    parser.add_argument("--out", type=Path, help="default: bench/results/<stamp>.json")
    parser.add_argument("--timeout", type=float, help="seconds per stratum run (default: by rows)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (plans, logs)")
    args = parser.parse_args(argv)
    names = args.scenario or (QUICK if args.quick else list(BY_NAME))
    chosen = [s for s in SCENARIOS if s.name in names]  # in the defined order: 1M before 5M
    started = datetime.now(UTC)
    out = args.out or BENCH_DIR / "results" / f"{started:%Y%m%d-%H%M%S}.json"
    work = Path(tempfile.mkdtemp(prefix="stratum-bench-"))
    timeout = args.timeout or 120 + args.rows / 2_000
    bench = Bench(args.rows, args.runs, args.seed, timeout, work)
    compile_bytecode()
    records = []
    try:
        for scenario in chosen:
            records.append(bench.scenario(scenario))
    except KeyboardInterrupt:
        _say("interrupted: reporting the scenarios that finished")
    finally:
        if args.keep:
            _say(f"plans and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    by_name = {r["name"]: r for r in records if r.get("status") == "ok"}
    for record in records:
        judge(record, by_name)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "runs": args.runs,
        "seed": args.seed,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "node": platform.node(),
        },
        "git": git_state(),
        "scenarios": records,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".tmp")
    partial.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(out)
    print()
    print(table(records))
    print(f"\nresults: {out}")
    return 0 if all(r.get("status") == "ok" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
