"""Seeded benchmark data: a CSV file, and the same rows in MySQL/MariaDB and PostgreSQL.

    python -m bench.generate --shape orders --rows 1000000 [--seed 42] [--into csv mysql pg]
    python -m bench.generate --clean        # drop every sbench_* database, delete bench/.data

Shapes:

* `orders`, PERFORMANCE.md's table: id bigint PK, customer_id int, status enum (5 values),
  amount decimal(12,2), created_at datetime, is_paid tinyint(1), note varchar(200) (0-80
  characters, some empty, some with quotes and commas), payload json (about 25 bytes);
* `wide`, 40 columns: ints, bigints, smallints, decimals, doubles, dates, datetimes, booleans,
  short and long text (2% of the descriptions are 1-4 KB), json, a uuid, and 13 nullable
  columns holding NULLs (from 20% to 90% of their rows).

The same (shape, rows, seed) always gives the same rows. The CSV,
`bench/.data/<shape>-<rows>-s<seed>-v<GENERATOR_VERSION>.csv`, has a header line; an unquoted
empty field is NULL and `""` the empty string, as PostgreSQL's COPY reads them (a nullable
column never holds an empty string, so MySQL's LOAD DATA, which cannot tell the two apart, loads
the same values through NULLIF). The databases are `sbench_<shape>_<rows>_s<seed>` on both
servers, with one table named after the shape; its comment records what was loaded, so a rerun
finds the data there and skips the load (and the CSV on disk skips the generation).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import IO

from bench.common import (
    DATA_DIR,
    PREFIX,
    mysql,
    mysql_command,
    psql,
    reset_mysql,
    reset_pg,
    run,
)

#: Bump when the rows a (shape, rows, seed) gives change: the caches then no longer match.
GENERATOR_VERSION = 1
CHUNK = 50_000

#: Makes the CSV fields of one column for a run of ids (quoted where needed, '' for NULL).
Values = Callable[[range], list[str]]
#: Makes a column's Values from the run's random generator (drawing any pools it needs first).
Maker = Callable[[random.Random], Values]


@dataclass(frozen=True)
class Column:
    name: str
    mysql: str  # the MySQL/MariaDB type of the source table
    pg: str  # the PostgreSQL type, as Stratum maps the MySQL one (the floor's table)
    duckdb: str
    make: Maker
    nulls: float = 0.0  # the share of NULLs; the column is nullable when it is above 0


@dataclass(frozen=True)
class Shape:
    name: str
    columns: tuple[Column, ...]
    key: str = "id"


@dataclass(frozen=True)
class Dataset:
    """One generated data set: a shape, a row count and a seed."""

    shape: Shape
    rows: int
    seed: int

    @property
    def table(self) -> str:
        return self.shape.name

    @property
    def database(self) -> str:
        """The source database on both servers."""
        return f"{PREFIX}{self.shape.name}_{self.rows}_s{self.seed}"

    @property
    def csv(self) -> Path:
        name = f"{self.shape.name}-{self.rows}-s{self.seed}-v{GENERATOR_VERSION}.csv"
        return DATA_DIR / name

    @property
    def stamp(self) -> str:
        """What a loaded table's comment says, so that a rerun knows it can skip the load."""
        return f"stratum bench {self.csv.stem}"


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# --- values ------------------------------------------------------------------------------------

WORDS = _words(
    "the order was packed shipped late again box small large blue red green fragile glass "
    "gift wrap please call before delivery leave at door back neighbour signed by customer "
    "returned damaged refund partial discount code applied express standard pickup store "
    "warehouse north south east west priority note address changed phone missing invoice paid "
    "cash card transfer pending review fraud check ok thanks rush weekend holiday"
)
FIRST_NAMES = _words("Anna Ben Chloe David Emma Felix Greta Hugo Ines Jonas Klara Lena Max Nora")
LAST_NAMES = _words("Müller Schmidt Weber Fischer Meyer Wagner Becker Hoffmann Koch Richter")
CITIES = _words("Berlin Hamburg München Köln Frankfurt Stuttgart Leipzig Dresden Bremen Essen")
COUNTRIES = ("DE", "AT", "CH", "FR", "NL", "BE", "PL", "IT")
STATUSES = ("new", "paid", "shipped", "delivered", "cancelled")
EPOCH = date(2018, 1, 1)
_SPECIAL = frozenset(',"\n\r')


def csv_field(text: str) -> str:
    """A text value as a CSV field: quoted when it must be, and always when empty."""
    if not text or not _SPECIAL.isdisjoint(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def sentence(rng: random.Random, length: int) -> str:
    """Up to `length` characters of words, some followed by commas, some in double quotes."""
    words = []
    for word in rng.choices(WORDS, k=length // 4 + 1):
        roll = rng.random()
        words.append(f'"{word}"' if roll < 0.04 else f"{word}," if roll < 0.12 else word)
    return " ".join(words)[:length].rstrip(" ,")


def pool(size: int, make: Callable[[random.Random], str]) -> Maker:
    """Values drawn from a pool of `size` texts made once per run (fast, and realistic
    enough: real columns repeat their values too)."""

    def maker(rng: random.Random) -> Values:
        texts = [csv_field(make(rng)) for _ in range(size)]
        return lambda ids: rng.choices(texts, k=len(ids))

    return maker


def serial(_: random.Random) -> Values:
    return lambda ids: list(map(str, ids))


def integers(low: int, high: int) -> Maker:
    population = range(low, high + 1)
    return lambda rng: lambda ids: list(map(str, rng.choices(population, k=len(ids))))


def one_of(*values: str) -> Maker:
    fields = [csv_field(v) for v in values]
    return lambda rng: lambda ids: rng.choices(fields, k=len(ids))


def booleans(rng: random.Random) -> Values:
    return lambda ids: rng.choices(("0", "1"), k=len(ids))


def decimals(digits: int, scale: int) -> Maker:
    """Non-negative decimals of up to `digits` digits, `scale` of them after the point."""
    population, unit = range(10**digits), 10**scale
    return lambda rng: (
        lambda ids: [
            f"{v // unit}.{v % unit:0{scale}d}" for v in rng.choices(population, k=len(ids))
        ]
    )


def doubles(low: float, high: float) -> Maker:
    return lambda rng: lambda ids: [repr(rng.uniform(low, high)) for _ in ids]


_DAYS = [(EPOCH + timedelta(days=d)).isoformat() for d in range(8 * 365)]
_DAY_SECONDS = range(86_400)


def dates(rng: random.Random) -> Values:
    return lambda ids: rng.choices(_DAYS, k=len(ids))


def datetimes(rng: random.Random) -> Values:
    def values(ids: range) -> list[str]:
        days = rng.choices(_DAYS, k=len(ids))
        seconds = rng.choices(_DAY_SECONDS, k=len(ids))
        return [
            f"{d} {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
            for d, s in zip(days, seconds, strict=True)
        ]

    return values


def payloads(rng: random.Random) -> Values:
    """JSON of about 25 bytes: {"sku": "K-01234", "qty": 3}."""
    skus, quantities = range(100_000), range(1, 13)

    def values(ids: range) -> list[str]:
        return [
            csv_field(f'{{"sku": "K-{s:05d}", "qty": {q}}}')
            for s, q in zip(
                rng.choices(skus, k=len(ids)), rng.choices(quantities, k=len(ids)), strict=True
            )
        ]

    return values


def uuids(rng: random.Random) -> Values:
    return lambda ids: [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in ids]


def note(rng: random.Random) -> str:
    """0-80 characters; one in ten empty."""
    return "" if rng.random() < 0.1 else sentence(rng, rng.randint(1, 80))


def description(rng: random.Random) -> str:
    """Mostly short; 2% of 1-4 KB."""
    long = rng.random() < 0.02
    return sentence(rng, rng.randint(1000, 4000) if long else rng.randint(10, 300))


def attributes(rng: random.Random) -> str:
    colour, size = rng.choice(("red", "blue", "green", "black")), rng.randint(30, 50)
    tags = ", ".join(f'"{w}"' for w in rng.sample(WORDS, rng.randint(0, 4)))
    return (
        f'{{"colour": "{colour}", "size": {size}, "tags": [{tags}], "stock": {rng.random():.3f}}}'
    )


def email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return f"{first}.{last}{rng.randint(1, 9999)}@example.com".lower()


def full_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def code(rng: random.Random) -> str:
    return "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=8))


# --- shapes ------------------------------------------------------------------------------------

ORDERS = Shape(
    "orders",
    (
        Column("id", "bigint", "bigint", "BIGINT", serial),
        Column("customer_id", "int", "integer", "INTEGER", integers(1, 200_000)),
        Column(
            "status",
            "enum(" + ",".join(f"'{s}'" for s in STATUSES) + ")",
            "text",
            "VARCHAR",
            one_of(*STATUSES),
        ),
        Column("amount", "decimal(12,2)", "numeric(12,2)", "DECIMAL(12,2)", decimals(7, 2)),
        Column("created_at", "datetime", "timestamp", "TIMESTAMP", datetimes),
        Column("is_paid", "tinyint(1)", "boolean", "BOOLEAN", booleans),
        Column("note", "varchar(200)", "varchar(200)", "VARCHAR", pool(20_000, note)),
        Column("payload", "json", "jsonb", "JSON", payloads),
    ),
)

WIDE = Shape(
    "wide",
    (
        Column("id", "bigint", "bigint", "BIGINT", serial),
        Column("qty", "int", "integer", "INTEGER", integers(0, 1_000)),
        Column("customer_id", "int", "integer", "INTEGER", integers(1, 2_000_000)),
        Column("store_id", "int", "integer", "INTEGER", integers(1, 500), nulls=0.2),
        Column("priority", "int", "integer", "INTEGER", integers(-5, 5), nulls=0.5),
        Column("views", "bigint", "bigint", "BIGINT", integers(0, 10**15)),
        Column("external_id", "bigint", "bigint", "BIGINT", integers(1, 2**62), nulls=0.3),
        Column("counter", "bigint", "bigint", "BIGINT", integers(-(10**12), 10**12)),
        Column("level", "smallint", "smallint", "SMALLINT", integers(0, 100)),
        Column("region", "smallint", "smallint", "SMALLINT", integers(1, 32_000)),
        Column("price", "decimal(12,2)", "numeric(12,2)", "DECIMAL(12,2)", decimals(8, 2)),
        Column("rate", "decimal(18,6)", "numeric(18,6)", "DECIMAL(18,6)", decimals(15, 6)),
        Column("discount", "decimal(12,2)", "numeric(12,2)", "DECIMAL(12,2)", decimals(5, 2), 0.4),
        Column("score", "double", "double precision", "DOUBLE", doubles(-1e6, 1e6)),
        Column("weight", "double", "double precision", "DOUBLE", doubles(0, 100)),
        Column("ratio", "double", "double precision", "DOUBLE", doubles(0, 1), nulls=0.3),
        Column("birth_date", "date", "date", "DATE", dates),
        Column("ship_date", "date", "date", "DATE", dates),
        Column("cancel_date", "date", "date", "DATE", dates, nulls=0.8),
        Column("created_at", "datetime", "timestamp", "TIMESTAMP", datetimes),
        Column("updated_at", "datetime", "timestamp", "TIMESTAMP", datetimes),
        Column("shipped_at", "datetime", "timestamp", "TIMESTAMP", datetimes, nulls=0.4),
        Column("deleted_at", "datetime", "timestamp", "TIMESTAMP", datetimes, nulls=0.9),
        Column("is_active", "tinyint(1)", "boolean", "BOOLEAN", booleans),
        Column("is_verified", "tinyint(1)", "boolean", "BOOLEAN", booleans),
        Column("is_gift", "tinyint(1)", "boolean", "BOOLEAN", booleans),
        Column("is_flagged", "tinyint(1)", "boolean", "BOOLEAN", booleans, nulls=0.5),
        Column("code", "char(8)", "varchar(8)", "VARCHAR", pool(50_000, code)),
        Column("full_name", "varchar(100)", "varchar(100)", "VARCHAR", pool(5_000, full_name)),
        Column("email", "varchar(255)", "varchar(255)", "VARCHAR", pool(50_000, email)),
        Column("city", "varchar(80)", "varchar(80)", "VARCHAR", one_of(*CITIES)),
        Column(
            "remark",
            "varchar(255)",
            "varchar(255)",
            "VARCHAR",
            pool(20_000, lambda rng: sentence(rng, rng.randint(5, 250))),
            nulls=0.5,
        ),
        Column("label", "varchar(40)", "varchar(40)", "VARCHAR", one_of(*WORDS), nulls=0.3),
        Column("description", "text", "text", "VARCHAR", pool(10_000, description)),
        Column("details", "mediumtext", "text", "VARCHAR", pool(10_000, description), 0.5),
        Column("attributes", "json", "jsonb", "JSON", pool(20_000, attributes)),
        Column("extra", "json", "jsonb", "JSON", pool(5_000, attributes), nulls=0.5),
        Column("ref_uuid", "char(36)", "varchar(36)", "VARCHAR", uuids),
        Column("country", "char(2)", "varchar(2)", "VARCHAR", one_of(*COUNTRIES)),
        Column("state", "varchar(20)", "varchar(20)", "VARCHAR", one_of(*STATUSES)),
    ),
)

SHAPES = {shape.name: shape for shape in (ORDERS, WIDE)}


# --- the CSV -----------------------------------------------------------------------------------


def with_nulls(column: Column, rng: random.Random) -> Values:
    values = column.make(rng)
    if not column.nulls:
        return values
    share, draw = column.nulls, rng.random
    return lambda ids: ["" if draw() < share else v for v in values(ids)]


def lines(dataset: Dataset) -> Iterable[str]:
    """The CSV text, header first, in chunks of CHUNK rows (generated column by column)."""
    rng = random.Random(f"{dataset.shape.name}/{dataset.seed}")
    makers = [with_nulls(column, rng) for column in dataset.shape.columns]
    yield ",".join(column.name for column in dataset.shape.columns) + "\n"
    for start in range(1, dataset.rows + 1, CHUNK):
        ids = range(start, min(start + CHUNK, dataset.rows + 1))
        columns = [values(ids) for values in makers]
        yield "".join(f"{line}\n" for line in map(",".join, zip(*columns, strict=True)))


def ensure_csv(dataset: Dataset) -> Path:
    """The data set's CSV, generated unless it is already on disk."""
    path = dataset.csv
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    partial = path.with_suffix(".csv.tmp")
    with partial.open("w", encoding="utf-8", newline="") as out:
        out.writelines(lines(dataset))
    partial.replace(path)
    took = time.perf_counter() - started
    _say(f"generated {path.name} ({path.stat().st_size / 2**20:.0f} MB) in {took:.1f} s")
    return path


# --- DDL and loads, shared with the floors of bench.run ----------------------------------------


def mysql_create(shape: Shape, table: str, *, key: bool) -> str:
    columns = [f"`{c.name}` {c.mysql}{'' if c.nulls else ' NOT NULL'}" for c in shape.columns]
    if key:
        columns.append(f"PRIMARY KEY (`{shape.key}`)")
    return f"CREATE TABLE `{table}` ({', '.join(columns)}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"


def mysql_load(shape: Shape, table: str, path: Path) -> str:
    """LOAD DATA of the CSV; nullable columns go through a variable and NULLIF."""
    fields = [f"@{c.name}" if c.nulls else f"`{c.name}`" for c in shape.columns]
    nullable = [f"`{c.name}` = NULLIF(@{c.name}, '')" for c in shape.columns if c.nulls]
    return (
        f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE `{table}` CHARACTER SET utf8mb4"
        " FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY ''"
        " LINES TERMINATED BY '\\n' IGNORE 1 LINES"
        f" ({', '.join(fields)})" + (f" SET {', '.join(nullable)}" if nullable else "")
    )


def mysql_inserts(shape: Shape, table: str, path: Path, out: IO[str]) -> None:
    """The CSV as multi-row INSERTs, for a server that refuses LOAD DATA LOCAL; a nullable
    column's empty field is NULL, as LOAD DATA's NULLIF makes it."""

    def literal(value: str, nullable: bool) -> str:
        if nullable and not value:
            return "NULL"
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    nullable = [c.nulls > 0 for c in shape.columns]
    with path.open(encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        next(reader)  # the header
        while rows := list(itertools.islice(reader, 1_000)):
            values = ",".join("(" + ",".join(map(literal, row, nullable)) + ")" for row in rows)
            out.write(f"INSERT INTO `{table}` VALUES {values};\n")


def pg_create(shape: Shape, table: str) -> str:
    columns = [f'"{c.name}" {c.pg}{"" if c.nulls else " NOT NULL"}' for c in shape.columns]
    return f'CREATE TABLE "{table}" ({", ".join(columns)})'


def pg_copy(table: str, path: Path) -> str:
    return f"\\copy \"{table}\" FROM '{path}' WITH (FORMAT csv, HEADER true)"


def add_key(shape: Shape, table: str, dialect: str) -> str:
    q = "`" if dialect == "mysql" else '"'
    return f"ALTER TABLE {q}{table}{q} ADD PRIMARY KEY ({q}{shape.key}{q})"


def duckdb_create(shape: Shape, table: str) -> str:
    columns = [f'"{c.name}" {c.duckdb}' for c in shape.columns]
    return f'CREATE TABLE "{table}" ({", ".join(columns)})'


# --- the source databases ----------------------------------------------------------------------


def ensure_mysql(dataset: Dataset) -> str:
    """The data set in MySQL/MariaDB (keyed, as a source table is), loaded unless it is there;
    returns the database."""
    db, table = dataset.database, dataset.table
    found = mysql(
        "SELECT table_comment FROM information_schema.tables"
        f" WHERE table_schema = '{db}' AND table_name = '{table}'"
    ).strip()
    if found == dataset.stamp:
        return db
    path = ensure_csv(dataset)
    started = time.perf_counter()
    reset_mysql(db)
    mysql(mysql_create(dataset.shape, table, key=True), db)
    try:
        warnings = mysql(f"{mysql_load(dataset.shape, table, path)}; SHOW WARNINGS LIMIT 5", db)
    except RuntimeError as exc:  # local_infile off on the server: slower, but it loads
        _say(f"LOAD DATA LOCAL refused ({exc}); loading with INSERTs instead")
        warnings = insert_into_mysql(dataset)
    if warnings.strip():
        raise RuntimeError(f"LOAD DATA into {db}.{table} warned:\n{warnings}")
    count = int(mysql(f"SELECT count(*) FROM `{table}`", db))
    if count != dataset.rows:
        raise RuntimeError(f"{db}.{table} has {count} rows, not {dataset.rows}")
    mysql(f"ANALYZE TABLE `{table}`; ALTER TABLE `{table}` COMMENT = '{dataset.stamp}'", db)
    _say(f"loaded {db}.{table} into MySQL in {time.perf_counter() - started:.1f} s")
    return db


def insert_into_mysql(dataset: Dataset) -> str:
    """Loads the data set's CSV into its (empty) MySQL table with INSERTs; the warnings."""
    script = dataset.csv.with_suffix(".sql.tmp")
    try:
        with script.open("w", encoding="utf-8") as out:
            mysql_inserts(dataset.shape, dataset.table, dataset.csv, out)
        with script.open("rb") as sql:
            return run(mysql_command(None, dataset.database), stdin=sql)
    finally:
        script.unlink(missing_ok=True)


def ensure_pg(dataset: Dataset) -> str:
    """The data set in PostgreSQL (public schema, keyed, vacuumed), loaded unless it is there;
    returns the database."""
    db, table = dataset.database, dataset.table
    exists = psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'").strip()
    if exists:
        found = psql(
            f"SELECT obj_description(to_regclass('public.{table}'), 'pg_class')", db
        ).strip()
        if found == dataset.stamp:
            return db
    path = ensure_csv(dataset)
    started = time.perf_counter()
    reset_pg(db)
    psql(pg_create(dataset.shape, table), db)
    psql(pg_copy(table, path), db)
    psql(add_key(dataset.shape, table, "postgres"), db)
    psql(f'VACUUM ANALYZE "{table}"', db)
    psql(f"COMMENT ON TABLE \"{table}\" IS '{dataset.stamp}'", db)
    _say(f"loaded {db}.public.{table} into PostgreSQL in {time.perf_counter() - started:.1f} s")
    return db


def clean() -> None:
    """Drops every sbench_* database on both servers and deletes the cached CSV files."""
    like = PREFIX.replace("_", "\\_") + "%"
    for db in psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{like}'").split():
        psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        _say(f"dropped PostgreSQL database {db}")
    for db in mysql(f"SHOW DATABASES LIKE '{like}'").split():
        mysql(f"DROP DATABASE IF EXISTS `{db}`")
        _say(f"dropped MySQL database {db}")
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    _say(f"removed {DATA_DIR}")


def _say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), action="append")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--into", nargs="+", choices=("csv", "mysql", "pg"), default=["csv", "mysql", "pg"]
    )
    parser.add_argument("--clean", action="store_true", help="drop the sbench_* data and exit")
    args = parser.parse_args(argv)
    if args.clean:
        clean()
        return
    for name in args.shape or ["orders"]:
        dataset = Dataset(SHAPES[name], args.rows, args.seed)
        print(ensure_csv(dataset))
        if "mysql" in args.into:
            print(f"mysql: {ensure_mysql(dataset)}.{dataset.table}")
        if "pg" in args.into:
            print(f"postgresql: {ensure_pg(dataset)}.public.{dataset.table}")


if __name__ == "__main__":
    main()
