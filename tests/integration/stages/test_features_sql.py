"""Feature tables and training datasets (`stratum.stages.features_sql`), run on DuckDB (in memory)
and on the real PostgreSQL server: every value compared with one computed in plain Python from
the past events alone, window boundaries, NULLs, WHERE, the as-of join of a spine, the two
databases against each other, and the mistakes reported as ConfigErrors."""

from __future__ import annotations

import asyncio
import random
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import duckdb
import pytest

from stratum.connectors.sql import quote
from stratum.errors import ConfigError
from stratum.plan.model import Feature, Sql
from stratum.stages.features_sql import JoinedFeatures, dataset_select, feature_select
from tests.support.databases import ThrowawayDatabase

DAY = 86400
US = timedelta(microseconds=1)
BASE = datetime(2024, 3, 1, 12, 0, 0)
HUGE = Decimal("1000000.00")
EDGE = Decimal("777.77")

Row = tuple[Any, ...]


# --- the two databases ------------------------------------------------------------------------


class Engine(ABC):
    """One database to build tables in: load rows, run a statement, fetch rows."""

    dialect: str

    @abstractmethod
    def table(self, name: str) -> str: ...

    @abstractmethod
    def run(self, sql: str) -> None: ...

    @abstractmethod
    def fetch(self, sql: str) -> list[Row]: ...

    @abstractmethod
    def close(self) -> None: ...

    def load(self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Row]) -> str:
        """A new table `name` of `columns` (name, type) holding `rows`; its quoted name."""
        table = self.table(name)
        spec = ", ".join(f"{quote(column, self.dialect)} {type_}" for column, type_ in columns)
        self.run(f"CREATE TABLE {table} ({spec})")
        if rows:
            self._insert(table, len(columns), rows)
        return table

    @abstractmethod
    def _insert(self, table: str, width: int, rows: Sequence[Row]) -> None: ...


class DuckEngine(Engine):
    dialect = "duckdb"

    def __init__(self) -> None:
        self.conn = duckdb.connect()

    def table(self, name: str) -> str:
        return quote(name, self.dialect)

    def run(self, sql: str) -> None:
        self.conn.execute(sql)

    def fetch(self, sql: str) -> list[Row]:
        return [tuple(row) for row in self.conn.execute(sql).fetchall()]

    def _insert(self, table: str, width: int, rows: Sequence[Row]) -> None:
        self.conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * width)})", rows)

    def close(self) -> None:
        self.conn.close()


class PgEngine(Engine):
    """A schema of its own in the module's throwaway database, on one asyncpg connection."""

    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.runner = asyncio.Runner()
        self.conn: Any = self.runner.run(asyncpg.connect(url))
        self.schema = f"t_{secrets.token_hex(4)}"
        self.run(f"CREATE SCHEMA {quote(self.schema, self.dialect)}")

    def table(self, name: str) -> str:
        return f"{quote(self.schema, self.dialect)}.{quote(name, self.dialect)}"

    def run(self, sql: str) -> None:
        self.runner.run(self.conn.execute(sql))

    def fetch(self, sql: str) -> list[Row]:
        return [tuple(row) for row in self.runner.run(self.conn.fetch(sql))]

    def _insert(self, table: str, width: int, rows: Sequence[Row]) -> None:
        params = ", ".join(f"${i}" for i in range(1, width + 1))
        self.runner.run(self.conn.executemany(f"INSERT INTO {table} VALUES ({params})", rows))

    def close(self) -> None:
        try:
            self.run(f"DROP SCHEMA {quote(self.schema, self.dialect)} CASCADE")
            self.runner.run(self.conn.close())
        finally:
            self.runner.close()


@pytest.fixture(
    params=[
        pytest.param("duckdb", id="duckdb"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """DuckDB in memory, or a schema of the module's PostgreSQL database."""
    if request.param == "duckdb":
        duck = DuckEngine()
        try:
            yield duck
        finally:
            duck.close()
        return
    database: ThrowawayDatabase = request.getfixturevalue("postgres_database")
    pg = PgEngine(database.url)
    try:
        yield pg
    finally:
        pg.close()


# --- events, features and their values in plain Python ----------------------------------------

ORDER_COLUMNS = (
    ("customer_id", "integer"),
    ("created_at", "timestamp"),
    ("total", "numeric(12,2)"),
    ("status", "text"),
)


@dataclass(frozen=True)
class Event:
    customer_id: int | None
    created_at: datetime | None
    total: Decimal | None
    status: str | None

    @property
    def row(self) -> Row:
        return (self.customer_id, self.created_at, self.total, self.status)


@dataclass(frozen=True)
class Spec:
    """A feature, and how Python computes it from the rows of its window."""

    name: str
    sql: str
    window: int | None  # seconds
    value: Callable[[list[Event]], object]
    dialect: str = "postgres"

    @property
    def feature(self) -> Feature:
        text = None if self.window is None else f"{self.window} seconds"
        return Feature(self.name, Sql(self.sql, self.dialect), text, self.window)


def _totals(rows: list[Event]) -> list[Decimal]:
    return [r.total for r in rows if r.total is not None]


def _sum(rows: list[Event]) -> object:
    totals = _totals(rows)
    return sum(totals) if totals else None


def _avg(rows: list[Event]) -> object:
    totals = _totals(rows)
    return sum(totals) / len(totals) if totals else None


def _max(rows: list[Event]) -> object:
    totals = _totals(rows)
    return max(totals) if totals else None


def _at(rows: list[Event], pick: Callable[..., Any]) -> object:
    """The status of the latest (max) or earliest (min) row; ties: the greatest, NULL last."""
    moment = pick(r.created_at for r in rows)
    tied = [r.status for r in rows if r.created_at == moment]
    present = [s for s in tied if s is not None]
    return max(present) if present else None


SPECS = (
    Spec("orders_7d", "count(*)", 7 * DAY, len),
    Spec("priced_7d", "count(total)", 7 * DAY, lambda rows: len(_totals(rows))),
    Spec("spend_30d", "sum(total)", 30 * DAY, _sum),
    Spec("avg_order_90d", "avg(total)", 90 * DAY, _avg),
    Spec(
        "distinct_status_30d",
        "count(DISTINCT status)",
        30 * DAY,
        lambda rows: len({r.status for r in rows if r.status is not None}),
    ),
    Spec("max_total", "max(total)", None, _max),
    Spec("first_order_at", "min(created_at)", None, lambda rows: min(r.created_at for r in rows)),
    Spec("last_status", "last(status)", None, lambda rows: _at(rows, max)),
    Spec("last_status_2d", "last(status)", 2 * DAY, lambda rows: _at(rows, max)),
    Spec("first_status", "first(status)", None, lambda rows: _at(rows, min)),
    Spec(
        "paid_share_30d",
        "count(*) FILTER (WHERE status = 'paid') / count(*)::numeric",
        30 * DAY,
        lambda rows: Decimal(sum(r.status == "paid" for r in rows)) / len(rows),
    ),
)

WHERE = Sql("status <> 'cancelled'", "postgres")


def _passes(event: Event) -> bool:
    """WHERE status <> 'cancelled' (NULL status: not true) and the key and time present."""
    return (
        event.customer_id is not None
        and event.created_at is not None
        and event.status is not None
        and event.status != "cancelled"
    )


def _window(history: list[Event], key: int, t: datetime, seconds: int | None) -> list[Event]:
    return [
        e
        for e in history
        if e.customer_id == key
        and e.created_at is not None
        and e.created_at <= t
        and (seconds is None or e.created_at > t - timedelta(seconds=seconds))
    ]


def expected_features(
    events: Sequence[Event], specs: Sequence[Spec], keep: Callable[[Event], bool]
) -> list[Row]:
    """The feature table in Python: one row per distinct (customer_id, created_at)."""
    history = [e for e in events if keep(e)]
    points = sorted({(e.customer_id, e.created_at) for e in history})
    rows = []
    for key, t in points:
        assert key is not None
        assert t is not None
        values = [s.value(_window(history, key, t, s.window)) for s in specs]
        rows.append((key, t, *values))
    return rows


def expected_dataset(
    events: Sequence[Event],
    specs: Sequence[Spec],
    spine: Sequence[Row],
    keep: Callable[[Event], bool],
) -> list[Row]:
    """Each spine row (customer_id, ts, label), then the features at its customer's last event
    at or before ts, computed from the events up to that moment only."""
    history = [e for e in events if keep(e)]
    rows = []
    for key, ts, label in spine:
        past = [e.created_at for e in history if e.customer_id == key and e.created_at <= ts]
        if key is None or ts is None or not past:
            rows.append((key, ts, label, *(None for _ in specs)))
            continue
        t = max(t for t in past if t is not None)
        rows.append((key, ts, label, *(s.value(_window(history, key, t, s.window)) for s in specs)))
    return rows


def normalized(rows: Sequence[Row]) -> list[Row]:
    """Numbers as floats rounded to 6 places (numeric, double, bigint, hugeint alike), sorted
    with NULLs last."""

    def value(v: object) -> object:
        if isinstance(v, int | float | Decimal) and not isinstance(v, bool):
            return round(float(v), 6)
        return v

    def order(row: Row) -> tuple[tuple[bool, Any], ...]:
        return tuple((v is None, 0 if v is None else v) for v in row)

    return sorted((tuple(value(v) for v in row) for row in rows), key=order)


def build_features(
    engine: Engine,
    events: Sequence[Event],
    specs: Sequence[Spec],
    *,
    where: Sql | None = WHERE,
    name: str = "features",
) -> str:
    orders = engine.load(f"{name}_orders", ORDER_COLUMNS, [e.row for e in events])
    target = engine.table(name)
    select = feature_select(
        input_table=orders,
        columns=[c for c, _ in ORDER_COLUMNS],
        keys=["customer_id"],
        timestamp="created_at",
        features=[s.feature for s in specs],
        where=where,
        dialect=engine.dialect,
    )
    engine.run(f"CREATE TABLE {target} AS {select}")
    return target


SPINE_COLUMNS = (("customer_id", "integer"), ("ts", "timestamp"), ("label", "text"))


def build_dataset(
    engine: Engine, features: str, specs: Sequence[Spec], spine: Sequence[Row]
) -> list[Row]:
    spine_table = engine.load("spine", SPINE_COLUMNS, spine)
    target = engine.table("dataset")
    select = dataset_select(
        spine_table=spine_table,
        spine_columns=[c for c, _ in SPINE_COLUMNS],
        spine_timestamp="ts",
        tables=[
            JoinedFeatures(
                table=features,
                keys=("customer_id",),
                timestamp="created_at",
                features=tuple(s.name for s in specs),
            )
        ],
        dialect=engine.dialect,
    )
    engine.run(f"CREATE TABLE {target} AS {select}")
    return engine.fetch(f"SELECT * FROM {target}")


# --- data built to catch leakage --------------------------------------------------------------


def leakage_data(seed: int = 7) -> tuple[list[Event], list[Row]]:
    """Events of 12 customers around their spine times: some well before, one exactly at the
    spine time, one a microsecond after and more later on with HUGE totals and status 'zz'
    (the greatest), which would change every sum, max, count and last if they leaked; rows
    exactly one window before a spine time (EDGE, which no window may hold); then, after each
    customer's last spine time only, 'FUTURE' events that no dataset row may ever see.
    The spine: 3 times per customer, a duplicated row, a customer with no history, a time
    before a customer's first event and a NULL customer."""
    rng = random.Random(seed)
    statuses = ["paid", "paid", "shipped", "refunded", "cancelled", None]
    events: list[Event] = []
    spine: list[Row] = []
    for customer in range(1, 13):
        start = BASE + timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, DAY))
        t = start
        for number in range(3):
            t = t + timedelta(days=rng.randint(3, 40), seconds=rng.randint(0, DAY))
            spine.append((customer, t, f"c{customer}-{number}"))
            for _ in range(rng.randint(1, 6)):
                back = timedelta(seconds=rng.randint(1, 60 * DAY))
                total = Decimal(rng.randint(100, 99999)) / 100
                events.append(Event(customer, t - back, total, rng.choice(statuses)))
            events.append(Event(customer, t, Decimal("12.34"), rng.choice(statuses[:4])))
            events.append(Event(customer, t + US, HUGE, "zz"))
            events.append(Event(customer, t + timedelta(hours=5), HUGE, "zz"))
            for window in (7 * DAY, 30 * DAY, 2 * DAY):  # exactly one window before t
                events.append(Event(customer, t - timedelta(seconds=window), EDGE, "paid"))
        for later in range(3):
            events.append(Event(customer, t + timedelta(days=later + 1), HUGE * 9, "FUTURE"))
            events.append(Event(customer, t + timedelta(days=later + 1) + US, None, "FUTURE"))
    spine.append(spine[4])  # a duplicated spine row
    spine.append((999, BASE + timedelta(days=30), "no history"))
    spine.append((5, BASE - timedelta(days=400), "before everything"))
    spine.append((None, BASE + timedelta(days=30), "no customer"))
    events.append(Event(None, BASE + timedelta(days=30), HUGE, "paid"))  # NULL key: skipped
    events.append(Event(3, None, HUGE, "paid"))  # NULL timestamp: skipped
    events.append(Event(3, BASE + timedelta(days=2), HUGE, "cancelled"))  # WHERE drops it
    rng.shuffle(events)
    return events, spine


def test_no_value_depends_on_a_later_event(engine: Engine) -> None:
    events, spine = leakage_data()
    features = build_features(engine, events, SPECS)
    table = engine.fetch(f"SELECT * FROM {features}")
    assert normalized(table) == normalized(expected_features(events, SPECS, _passes))

    dataset = build_dataset(engine, features, SPECS, spine)
    assert normalized(dataset) == normalized(expected_dataset(events, SPECS, spine, _passes))
    assert len(dataset) == len(spine)
    names = [s.name for s in SPECS]
    for row in dataset:
        values = dict(zip(names, row[3:], strict=True))
        assert values["last_status"] != "FUTURE"
        assert values["first_status"] != "FUTURE"
        assert values["max_total"] is None or values["max_total"] < HUGE * 9
    # a customer's first spine time comes before any HUGE event: not one of them is seen
    for row in dataset:
        if str(row[2]).endswith("-0"):
            values = dict(zip(names, row[3:], strict=True))
            assert values["max_total"] < HUGE
            assert values["last_status"] != "zz"


def test_duckdb_and_postgres_agree(postgres_database: ThrowawayDatabase) -> None:
    events, spine = leakage_data(seed=11)
    results = []
    for engine in (DuckEngine(), PgEngine(postgres_database.url)):
        try:
            features = build_features(engine, events, SPECS)
            table = engine.fetch(f"SELECT * FROM {features}")
            dataset = build_dataset(engine, features, SPECS, spine)
            results.append((normalized(table), normalized(dataset)))
        finally:
            engine.close()
    duck, pg = results
    assert duck[0] == pg[0]
    assert duck[1] == pg[1]
    assert len(duck[1]) == len(spine)


test_duckdb_and_postgres_agree = pytest.mark.postgres(test_duckdb_and_postgres_agree)


# --- windows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "others",
    [
        pytest.param((), id="every-feature-windowed"),
        pytest.param((Spec("orders_ever", "count(*)", None, len),), id="some-not-windowed"),
    ],
)
def test_window_excludes_its_start_and_includes_its_end(
    engine: Engine, others: tuple[Spec, ...]
) -> None:
    t = BASE + timedelta(days=10)
    events = [
        Event(1, t - timedelta(days=1, microseconds=1), Decimal("1000"), "paid"),
        Event(1, t - timedelta(days=1), Decimal("100"), "paid"),  # exactly t - W: out
        Event(1, t - timedelta(days=1) + US, Decimal("10"), "paid"),
        Event(1, t, Decimal("1"), "paid"),  # exactly t: in
        Event(1, t + US, Decimal("5000"), "paid"),
    ]
    specs = (
        Spec("spend_1d", "sum(total)", DAY, _sum),
        Spec("orders_1d", "count(*)", DAY, len),
        Spec("orders_2d", "count(*)", 2 * DAY, len),
        *others,
    )
    features = build_features(engine, events, specs)
    rows = {row[1]: row[2:] for row in engine.fetch(f"SELECT * FROM {features}")}
    assert normalized([rows[t]])[0][:3] == (11.0, 2.0, 4.0)
    assert normalized([rows[t - timedelta(days=1)]])[0][:3] == (1100.0, 2.0, 2.0)
    # at t + 1µs the window starts exactly at t - W + 1µs, which it no longer holds
    assert normalized([rows[t + US]])[0][:3] == (5001.0, 2.0, 5.0)
    expected = expected_features(events, specs, _passes)
    assert normalized(engine.fetch(f"SELECT * FROM {features}")) == normalized(expected)


def test_date_timestamps(engine: Engine) -> None:
    orders = engine.load(
        "daily", (("id", "integer"), ("day", "date"), ("n", "integer")),
        [(1, date(2024, 1, 1), 1), (1, date(2024, 1, 2), 2), (1, date(2024, 1, 4), 4)],
    )  # fmt: skip
    select = feature_select(
        input_table=orders,
        columns=["id", "day", "n"],
        keys=["id"],
        timestamp="day",
        features=[Feature("n_2d", Sql("sum(n)", "postgres"), "2 days", 2 * DAY)],
        where=None,
        dialect=engine.dialect,
    )
    rows = sorted(engine.fetch(select))
    assert [(day, int(n)) for _, day, n in rows] == [
        (date(2024, 1, 1), 1),
        (date(2024, 1, 2), 3),
        (date(2024, 1, 4), 4),  # 2024-01-02 is exactly two days before: out
    ]


# --- aggregates, NULLs, WHERE -----------------------------------------------------------------


def test_nulls_distinct_first_last_and_where(engine: Engine) -> None:
    t = BASE
    events = [
        Event(1, t, None, "paid"),
        Event(1, t + timedelta(hours=1), Decimal("5"), None),
        Event(1, t + timedelta(hours=2), Decimal("7"), "paid"),
        Event(1, t + timedelta(hours=3), None, "shipped"),
        Event(1, t + timedelta(hours=4), Decimal("9"), "cancelled"),  # WHERE drops it
        Event(1, t + timedelta(hours=5), Decimal("1"), "b"),  # two rows at one time
        Event(1, t + timedelta(hours=5), Decimal("2"), "a"),
        Event(2, t, None, "paid"),
        Event(None, t, Decimal("100"), "paid"),  # no key: ignored
        Event(2, None, Decimal("100"), "paid"),  # no time: ignored
    ]
    specs = (
        Spec("n", "count(*)", None, len),
        Spec("priced", "count(total)", None, lambda rows: len(_totals(rows))),
        Spec(
            "statuses",
            "count(DISTINCT status)",
            None,
            lambda rows: len({r.status for r in rows if r.status is not None}),
        ),
        Spec("spend", "sum(total)", None, _sum),
        Spec("average", "avg(total)", None, _avg),
        Spec("last_status", "last(status)", None, lambda rows: _at(rows, max)),
        Spec("first_status", "FIRST(status)", None, lambda rows: _at(rows, min)),
        Spec("last_total", "last_value(total)", None, _last_total),
        Spec("per_order", "sum(total) / count(*)", None, _per_order),
        Spec(
            "last_known",
            "last(status) FILTER (WHERE status IS NOT NULL AND status <> 'b')",
            None,
            lambda rows: _at([r for r in rows if r.status not in (None, "b")], max),
        ),
        Spec(  # written in MySQL, run on PostgreSQL or DuckDB
            "spend_mysql",
            "sum(IFNULL(total, 0))",
            None,
            lambda rows: sum(_totals(rows)),
            dialect="mysql",
        ),
    )
    orders = engine.load("orders", ORDER_COLUMNS, [e.row for e in events])
    select = feature_select(
        input_table=orders,
        columns=[c for c, _ in ORDER_COLUMNS],
        keys=["CUSTOMER_ID"],  # resolved as the transforms resolve names
        timestamp="created_at",
        features=[s.feature for s in specs],
        where=Sql("status IS NULL OR status <> 'cancelled'", "postgres"),
        dialect=engine.dialect,
    )
    rows = engine.fetch(select)

    def keep(e: Event) -> bool:
        return e.customer_id is not None and e.created_at is not None and e.status != "cancelled"

    assert normalized(rows) == normalized(expected_features(events, specs, keep))
    by_point = {(r[0], r[1]): r[2:] for r in rows}
    last = by_point[(1, t + timedelta(hours=5))]
    assert last[0] == 6
    assert last[1] == 4
    assert last[2] == 4
    assert last[5] == "b"  # the tie at the latest time: the greatest value
    assert last[9] == "a"  # its own FILTER drops 'b': the other row at that time
    assert by_point[(1, t + timedelta(hours=1))][5] is None  # the latest status is NULL
    assert by_point[(2, t)][3] is None
    assert by_point[(2, t)][1] == 0
    assert {r[0] for r in rows} == {1, 2}


def _last_total(rows: list[Event]) -> object:
    moment = max(r.created_at for r in rows if r.created_at is not None)
    tied = [r.total for r in rows if r.created_at == moment and r.total is not None]
    return max(tied) if tied else None


def _per_order(rows: list[Event]) -> object:
    total = _sum(rows)
    return None if total is None else Decimal(str(total)) / len(rows)


# --- composite keys and names that need quoting -----------------------------------------------


def test_composite_keys_and_odd_names(engine: Engine) -> None:
    columns = (("Shop Id", "text"), ("user", "integer"), ("When", "timestamp"), ('a"b', "integer"))
    t = BASE
    rows = [
        ("north", 1, t, 1),
        ("north", 1, t + timedelta(hours=1), 2),
        ("north", 2, t + timedelta(hours=1), 40),
        ("south", 1, t + timedelta(hours=2), 300),
    ]
    orders = engine.load("Orders; DROP", columns, rows)
    select = feature_select(
        input_table=orders,
        columns=[c for c, _ in columns],
        keys=["shop id", "USER"],
        timestamp="When",
        features=[
            Feature('total "spent"', Sql('sum("a""b")', "postgres"), "1 hour", 3600),
            Feature("latest", Sql('last("a""b")', "postgres"), None, None),
        ],
        where=None,
        dialect=engine.dialect,
    )
    features = engine.table("Shop Features")
    engine.run(f"CREATE TABLE {features} AS {select}")
    # the key columns are named as the plan names them: the dataset joins by those names
    names = [row[0] for row in engine.fetch(_columns_of(engine, "Shop Features"))]
    assert names == ["shop id", "USER", "When", 'total "spent"', "latest"]
    assert normalized(engine.fetch(f"SELECT * FROM {features}")) == normalized(
        [
            ("north", 1, t, 1, 1),
            ("north", 1, t + timedelta(hours=1), 2, 2),  # the row an hour before: out
            ("north", 2, t + timedelta(hours=1), 40, 40),
            ("south", 1, t + timedelta(hours=2), 300, 300),
        ]
    )
    spine_columns = (("user", "integer"), ("Shop Id", "text"), ("at", "timestamp"))
    spine = engine.load(
        "spine",
        spine_columns,
        [
            (1, "north", t + timedelta(minutes=30)),
            (2, "north", t),
            (2, "north", t + timedelta(hours=1)),  # exactly at the event
            (1, "south", t + US * 10**9),
        ],
    )
    select = dataset_select(
        spine_table=spine,
        spine_columns=[c for c, _ in spine_columns],
        spine_timestamp="AT",
        tables=[JoinedFeatures(features, ("shop id", "USER"), "When", ('total "spent"',))],
        dialect=engine.dialect,
    )
    assert normalized(engine.fetch(select)) == normalized(
        [
            (1, "north", t + timedelta(minutes=30), 1),
            (2, "north", t, None),  # before the first event of (north, 2)
            (2, "north", t + timedelta(hours=1), 40),
            (1, "south", t + US * 10**9, None),
        ]
    )


def _columns_of(engine: Engine, table: str) -> str:
    """A query of the columns of `table`, in order, in the engine's schema."""
    schema = engine.schema if isinstance(engine, PgEngine) else "main"
    return (
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = '{schema}' AND table_name = '{table}' ORDER BY ordinal_position"
    )


# --- datasets of several feature tables -------------------------------------------------------


def test_dataset_of_two_feature_tables(engine: Engine) -> None:
    t = BASE
    events = [
        Event(1, t, Decimal("10"), "paid"),
        Event(1, t + timedelta(days=1), Decimal("20"), "paid"),
        Event(2, t + timedelta(days=1), Decimal("5"), "paid"),
    ]
    spend = build_features(engine, events, (Spec("spend", "sum(total)", None, _sum),))
    counts = build_features(
        engine, events[:1], (Spec("orders", "count(*)", None, len),), name="counts"
    )
    spine = engine.load(
        "spine",
        SPINE_COLUMNS,
        [
            (1, t + timedelta(hours=1), "a"),
            (1, t + timedelta(hours=1), "a"),  # duplicates stay duplicates
            (1, t + timedelta(days=2), "b"),
            (2, t, "c"),
            (3, t, "d"),
        ],
    )
    select = dataset_select(
        spine_table=spine,
        spine_columns=[c for c, _ in SPINE_COLUMNS],
        spine_timestamp="ts",
        tables=[
            JoinedFeatures(spend, ("customer_id",), "created_at", ("spend",)),
            JoinedFeatures(counts, ("customer_id",), "created_at", ("orders",)),
        ],
        dialect=engine.dialect,
    )
    assert normalized(engine.fetch(select)) == normalized(
        [
            (1, t + timedelta(hours=1), "a", 10, 1),
            (1, t + timedelta(hours=1), "a", 10, 1),
            (1, t + timedelta(days=2), "b", 30, 1),
            (2, t, "c", None, None),
            (3, t, "d", None, None),
        ]
    )


# --- mistakes ---------------------------------------------------------------------------------

COLUMNS = [c for c, _ in ORDER_COLUMNS]


def _select(*features: Feature, where: Sql | None = None, dialect: str = "postgres") -> str:
    return feature_select(
        input_table='"orders"',
        columns=COLUMNS,
        keys=["customer_id"],
        timestamp="created_at",
        features=features,
        where=where,
        dialect=dialect,
    )


def _feature(sql: str, name: str = "f") -> Feature:
    return Feature(name, Sql(sql, "postgres"), None, None)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("sum(totl)", r"feature 'f': 'totl' is not a column of the input \(did you mean 'total'"),
        ("total + 1", r"feature 'f': 'total' reads a column outside an aggregate"),
        ("42", r"feature 'f': '42' has no aggregate"),
        ("sum(total) OVER ()", r"feature 'f': .* is a window function"),
        ("(SELECT max(total) FROM orders)", r"feature 'f': expected an expression, found a query"),
        ("count(*) + (SELECT 1)", r"feature 'f': .* is a subquery"),
        ("sum(count(*))", r"feature 'f': 'COUNT\(\*\)' is an aggregate inside an aggregate"),
        ("stddev(total)", r"feature 'f': .* is not an aggregate a feature can use"),
        ("sum(o.total)", r"feature 'f': 'o.total' is qualified"),
        ("sum(", r"feature 'f': invalid SQL \(postgres\)"),
        ("last(status) IGNORE NULLS", r"feature 'f': .* skip NULLs with FILTER"),
        ("count(DISTINCT status, total)", r"DISTINCT takes one expression"),
        ("sum(total) + total", r"'total' reads a column outside an aggregate"),
        ("count(*) FILTER (WHERE nope = 1)", r"'nope' is not a column of the input"),
    ],
)
def test_feature_mistakes(sql: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _select(_feature(sql))


def test_other_mistakes() -> None:
    with pytest.raises(
        ConfigError, match=r"feature 'Customer_Id' has the name of the column 'customer_id'"
    ):
        _select(_feature("count(*)", "Customer_Id"))
    with pytest.raises(ConfigError, match=r"feature 'n' has the name of feature 'N'"):
        _select(_feature("count(*)", "N"), _feature("count(*)", "n"))
    with pytest.raises(ConfigError, match=r"the key column 'customer' is not a column of"):
        feature_select(
            input_table='"orders"', columns=COLUMNS, keys=["customer"], timestamp="created_at",
            features=[_feature("count(*)")], where=None, dialect="duckdb",
        )  # fmt: skip
    with pytest.raises(ConfigError, match=r"the TIMESTAMP column 'created' .*'created_at'"):
        feature_select(
            input_table='"orders"', columns=COLUMNS, keys=["customer_id"], timestamp="created",
            features=[_feature("count(*)")], where=None, dialect="duckdb",
        )  # fmt: skip
    with pytest.raises(ConfigError, match=r"WHERE: 'COUNT\(\*\)' is an aggregate"):
        _select(_feature("count(*)"), where=Sql("count(*) > 1", "postgres"))
    with pytest.raises(ConfigError, match=r"WHERE: 'stat' is not a column .*'status'"):
        _select(_feature("count(*)"), where=Sql("stat = 'x'", "postgres"))
    with pytest.raises(ConfigError, match=r"built in PostgreSQL or DuckDB, not in 'mysql'"):
        _select(_feature("count(*)"), dialect="mysql")
    with pytest.raises(ConfigError, match=r"longer than 0 seconds"):
        _select(Feature("f", Sql("count(*)", "postgres"), "0 days", 0))


def test_dataset_mistakes() -> None:
    spine = ["customer_id", "ts", "label"]

    def dataset(*tables: JoinedFeatures, columns: Sequence[str] = spine, ts: str = "ts") -> str:
        return dataset_select(
            spine_table='"spine"',
            spine_columns=columns,
            spine_timestamp=ts,
            tables=tables,
            dialect="postgres",
        )

    a = JoinedFeatures('"a"', ("customer_id",), "created_at", ("spend", "Label"))
    with pytest.raises(
        ConfigError, match=r"""feature 'Label' of "a" has the name of the spine column 'label'"""
    ):
        dataset(a)
    a = JoinedFeatures('"a"', ("customer_id",), "created_at", ("spend",))
    b = JoinedFeatures('"b"', ("customer_id",), "created_at", ("orders", "spend"))
    with pytest.raises(
        ConfigError, match=r"""feature 'spend' of "b" has the name of feature 'spend' of "a\""""
    ):
        dataset(a, b)
    with pytest.raises(
        ConfigError, match=r"""the key column of "a" 'customer_id' is not a column of the spine"""
    ):
        dataset(a, columns=["customer", "ts"])
    with pytest.raises(
        ConfigError, match=r"the timestamp column 'at' is not a column of the spine"
    ):
        dataset(a, ts="at")
