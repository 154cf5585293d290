"""What an SMQL program means, short of running it: the language's vocabulary (settings, modes,
actions), each item's name, the tables it reads and writes, and the dependency graph between
items. The checker reports against these; the plan compiler in `stratum` builds on them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlglot import exp

from smql import syntax as s
from smql.sql import DEFAULT_DIALECT, SqlKind, parse_sql


class Mode(StrEnum):
    FULL = "full"
    APPEND = "append"
    INCREMENTAL = "incremental"
    UPSERT = "upsert"


class OnError(StrEnum):
    STOP = "stop"
    REJECT = "reject"
    SKIP = "skip"


class ExpectAction(StrEnum):
    DROP = "drop"
    FAIL = "fail"
    FLAG = "flag"
    QUARANTINE = "quarantine"


class FileFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    JSONL = "jsonl"


FILE_EXTENSIONS: dict[str, FileFormat] = {
    ".csv": FileFormat.CSV,
    ".tsv": FileFormat.CSV,
    ".txt": FileFormat.CSV,
    ".parquet": FileFormat.PARQUET,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
}

#: Window units of FEATURES ... OVER n UNIT, in seconds.
WINDOW_UNITS: dict[str, int] = {
    "minute": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
    "week": 604800,
    "weeks": 604800,
}

#: Aggregates a feature may use, by sqlglot node type, with the name the plan records.
FEATURE_AGGREGATES: dict[type[exp.Expr], str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Min: "min",
    exp.Max: "max",
    exp.Last: "last",
    exp.LastValue: "last",
    exp.First: "first",
    exp.FirstValue: "first",
}


class ValueKind(StrEnum):
    POSITIVE_INT = "a positive whole number"
    DIALECT = "an SQL dialect name"
    CHOICE = "one of the listed words"
    ZERO_DATES = "NULL, ERROR or a date string"


@dataclass(frozen=True, slots=True)
class SettingSpec:
    kind: ValueKind
    choices: tuple[str, ...] = ()
    maximum: int | None = None
    help: str = ""


#: Everything `SET` accepts. Defaults belong to the engine (stratum.plan), not the language.
SETTINGS: dict[str, SettingSpec] = {
    "batch_size": SettingSpec(ValueKind.POSITIVE_INT, maximum=10_000_000, help="rows per batch"),
    "parallel": SettingSpec(ValueKind.POSITIVE_INT, maximum=256, help="items run at once"),
    "queue_size": SettingSpec(
        ValueKind.POSITIVE_INT, maximum=4096, help="batches in flight between reader and writer"
    ),
    "partitions": SettingSpec(ValueKind.POSITIVE_INT, maximum=1024, help="key ranges per table"),
    "on_error": SettingSpec(ValueKind.CHOICE, tuple(OnError), help="what a bad row does"),
    "mode": SettingSpec(ValueKind.CHOICE, tuple(Mode), help="default MODE of items"),
    "dialect": SettingSpec(ValueKind.DIALECT, help="dialect embedded SQL is written in"),
    "zero_dates": SettingSpec(ValueKind.ZERO_DATES, help="what '0000-00-00' becomes"),
}


class ItemKind(StrEnum):
    TABLE_COPY = "table_copy"
    DATABASE_COPY = "database_copy"
    QUERY_COPY = "query_copy"
    FILE_LOAD = "file_load"
    STAGE = "stage"
    FEATURE_TABLE = "feature_table"
    DATASET = "dataset"


ITEM_KINDS: dict[type, ItemKind] = {
    s.MigrateTable: ItemKind.TABLE_COPY,
    s.MigrateDatabase: ItemKind.DATABASE_COPY,
    s.MigrateQuery: ItemKind.QUERY_COPY,
    s.MigrateFile: ItemKind.FILE_LOAD,
    s.StageFrom: ItemKind.STAGE,
    s.StageQuery: ItemKind.STAGE,
    s.Features: ItemKind.FEATURE_TABLE,
    s.Dataset: ItemKind.DATASET,
}

_ALL_ITEM_OPTIONS = frozenset({s.NameOption, s.AfterOption})
_ROW_OPTIONS = frozenset(
    {
        s.ModeOption,
        s.KeyOption,
        s.CursorOption,
        s.ColumnsOption,
        s.ComputeOption,
        s.WhereOption,
        s.CastOption,
        s.BatchSizeOption,
        s.OnErrorOption,
        s.ZeroDatesOption,
        s.DialectOption,
    }
)

#: Which clauses each statement accepts; anything else is reported, never silently ignored.
ALLOWED_OPTIONS: dict[type, frozenset[type]] = {
    s.MigrateTable: _ALL_ITEM_OPTIONS | _ROW_OPTIONS | {s.PartitionsOption},
    s.MigrateQuery: _ALL_ITEM_OPTIONS | _ROW_OPTIONS,
    s.MigrateFile: _ALL_ITEM_OPTIONS | _ROW_OPTIONS,
    s.MigrateDatabase: _ALL_ITEM_OPTIONS
    | {
        s.ModeOption,
        s.CastOption,
        s.BatchSizeOption,
        s.PartitionsOption,
        s.OnErrorOption,
        s.ZeroDatesOption,
        s.IncludingOption,
        s.ExcludingOption,
        s.IncludingViewsOption,
    },
    s.StageFrom: _ALL_ITEM_OPTIONS
    | (_ROW_OPTIONS - {s.ZeroDatesOption})
    | {s.DeduplicateOption, s.ExpectOption},
    s.StageQuery: _ALL_ITEM_OPTIONS | {s.ModeOption, s.DialectOption},
    s.Features: _ALL_ITEM_OPTIONS | {s.WhereOption, s.DialectOption, s.BatchSizeOption},
    s.Dataset: _ALL_ITEM_OPTIONS | {s.ModeOption},
}

#: The modes each statement supports.
ALLOWED_MODES: dict[type, tuple[Mode, ...]] = {
    s.MigrateTable: tuple(Mode),
    s.MigrateQuery: tuple(Mode),
    s.MigrateFile: tuple(Mode),
    s.MigrateDatabase: (Mode.FULL, Mode.APPEND, Mode.UPSERT),
    s.StageFrom: (Mode.FULL, Mode.INCREMENTAL),
    s.StageQuery: (Mode.FULL,),
    s.Features: (Mode.FULL,),
    s.Dataset: (Mode.FULL,),
}

#: Clauses that may be written more than once in one statement; they add up.
REPEATABLE_OPTIONS = frozenset({s.CastOption, s.ExpectOption, s.ComputeOption})


# ---------------------------------------------------------------------------------------------
# References between items


@dataclass(frozen=True, slots=True, eq=False)
class Ref:
    """A table (or, with `whole_schema`, every table under a connection/schema) an item touches.

    `path` is (connection, [schema,] table) as written; a whole-schema ref is (connection,
    [schema]). Names are compared exactly as written; the span is not part of equality.
    """

    path: tuple[str, ...]
    whole_schema: bool
    span: s.Span

    @property
    def connection(self) -> str:
        return self.path[0]

    @property
    def text(self) -> str:
        return ".".join(self.path) + (".*" if self.whole_schema else "")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ref):
            return NotImplemented
        return (self.path, self.whole_schema) == (other.path, other.whole_schema)

    def __hash__(self) -> int:
        return hash((self.path, self.whole_schema))

    def overlaps(self, other: Ref) -> bool:
        """Whether the two refs can name the same table."""
        if self.whole_schema == other.whole_schema:
            return self.path == other.path
        table, schema = (other, self) if self.whole_schema else (self, other)
        return table.path[:-1] == schema.path


@dataclass(frozen=True, slots=True)
class ItemInfo:
    """One migration item as the language sees it."""

    name: str
    kind: ItemKind
    statement: s.ItemStatement
    name_span: s.Span
    writes: Ref
    reads: tuple[Ref, ...]
    after: tuple[s.Dotted, ...]
    dialect: str


def option(statement: s.ItemStatement, kind: type[s.Option]) -> s.Option | None:
    """The first clause of this kind in the statement, if any."""
    for opt in statement.options:
        if isinstance(opt, kind):
            return opt
    return None


def options_of(statement: s.ItemStatement, kind: type[s.Option]) -> list[s.Option]:
    return [opt for opt in statement.options if isinstance(opt, kind)]


def item_name(statement: s.ItemStatement) -> tuple[str, s.Span]:
    """The item's stable name: its NAME clause, else its target as written."""
    named = option(statement, s.NameOption)
    if isinstance(named, s.NameOption):
        return named.value.key, named.value.span
    return statement.target.key, statement.target.span


def statement_dialect(statement: s.ItemStatement, settings: Mapping[str, s.Value]) -> str:
    chosen = option(statement, s.DialectOption)
    if isinstance(chosen, s.DialectOption):
        return chosen.value.name.lower()
    default = settings.get("dialect")
    if isinstance(default, s.StringLit | s.WordLit):
        return str(default.value).lower()
    return DEFAULT_DIALECT


_SET_MODE_APPLIES = (s.MigrateTable, s.MigrateDatabase, s.MigrateQuery, s.MigrateFile)


def mode_choice(
    statement: s.ItemStatement, settings: Mapping[str, s.Value]
) -> tuple[str, s.Span | None, bool]:
    """The mode word that applies to the item, where it was written (None: the built-in
    default, full), and whether it came from SET. `SET mode` is the default of MIGRATE items
    only; stages, feature tables and datasets have their own MODE or run in full."""
    chosen = option(statement, s.ModeOption)
    if isinstance(chosen, s.ModeOption):
        return chosen.value.name.lower(), chosen.value.span, False
    default = settings.get("mode")
    if isinstance(statement, _SET_MODE_APPLIES) and isinstance(default, s.StringLit | s.WordLit):
        return default.value.lower(), default.span, True
    return Mode.FULL.value, None, False


def settings_of(program: s.Program) -> dict[str, s.Value]:
    """SET values by name; the first of duplicated names wins (the checker reports the rest)."""
    found: dict[str, s.Value] = {}
    for statement in program.statements:
        if isinstance(statement, s.SetStatement):
            for setting in statement.settings:
                found.setdefault(setting.name.name.lower(), setting.value)
    return found


def items_of(program: s.Program) -> list[ItemInfo]:
    settings = settings_of(program)
    connections = {st.name.name for st in program.statements if isinstance(st, s.Connection)}
    items = []
    for statement in program.statements:
        if not s.is_item(statement):
            continue
        name, span = item_name(statement)
        dialect = statement_dialect(statement, settings)
        after = option(statement, s.AfterOption)
        items.append(
            ItemInfo(
                name=name,
                kind=ITEM_KINDS[type(statement)],
                statement=statement,
                name_span=span,
                writes=_ref(
                    statement.target, whole_schema=isinstance(statement, s.MigrateDatabase)
                ),
                reads=tuple(_reads(statement, dialect, connections)),
                after=after.items if isinstance(after, s.AfterOption) else (),
                dialect=dialect,
            )
        )
    return items


def _ref(name: s.Dotted, whole_schema: bool = False) -> Ref:
    return Ref(name.names, whole_schema, name.span)


def _reads(statement: s.ItemStatement, dialect: str, connections: set[str]) -> Iterable[Ref]:
    if isinstance(statement, s.MigrateTable):
        yield _ref(statement.source)
    elif isinstance(statement, s.StageFrom | s.Features):
        yield _ref(statement.input)
    elif isinstance(statement, s.Dataset):
        yield _ref(statement.spine)
        yield from (_ref(table) for table in statement.features)
    elif isinstance(statement, s.MigrateDatabase):
        yield _ref(statement.source, whole_schema=True)
    elif isinstance(statement, s.MigrateQuery):
        yield from query_tables(statement.query, dialect, connections, statement.connection.name)
    elif isinstance(statement, s.StageQuery):
        home = statement.target.parts[0].name
        yield from query_tables(statement.query, dialect, connections, home)


def query_tables(query: s.SqlText, dialect: str, connections: set[str], home: str) -> Iterable[Ref]:
    """Tables a query reads, as refs: `conn.schema.table` and `conn.table` name a connection;
    anything else is read from `home`, the connection the query runs in."""
    tree = parse_sql(query, SqlKind.QUERY, dialect)
    if not isinstance(tree, exp.Expr):
        return
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        parts = [part for part in (table.catalog, table.db, table.name) if part]
        if not parts or (len(parts) == 1 and parts[0] in ctes):
            continue
        if parts[0] not in connections or len(parts) == 1:
            parts = [home, *parts]
        yield Ref(tuple(parts), False, query.span)


# ---------------------------------------------------------------------------------------------
# The dependency graph


@dataclass(frozen=True, slots=True)
class Edge:
    """`item` runs after `depends_on`, because of `reason`."""

    item: str
    depends_on: str
    reason: str


def dependency_edges(items: Sequence[ItemInfo]) -> list[Edge]:
    """Edges from reads to the items that write what is read, plus explicit AFTER clauses.
    Unknown AFTER names are left to the checker."""
    names = {item.name for item in items}
    edges: dict[tuple[str, str], Edge] = {}
    for item in items:
        for ref in item.reads:
            writers = [w for w in items if w.name != item.name and ref.overlaps(w.writes)]
            exact = [w for w in writers if w.writes == ref]
            if exact and not ref.whole_schema:
                writers = exact  # a table claimed by its own item is not the database copy's
            for writer in writers:
                key = (item.name, writer.name)
                edges.setdefault(key, Edge(item.name, writer.name, f"reads {ref.text}"))
        for dotted in item.after:
            if dotted.key in names and dotted.key != item.name:
                key = (item.name, dotted.key)
                edges.setdefault(key, Edge(item.name, dotted.key, "AFTER"))
    return sorted(edges.values(), key=lambda e: (e.item, e.depends_on))


def find_cycles(names: Iterable[str], edges: Sequence[Edge]) -> list[list[str]]:
    """Every dependency cycle, each as the list of names around it (first name repeated last),
    found through strongly connected components (Tarjan), in a deterministic order."""
    graph: dict[str, list[str]] = {name: [] for name in names}
    for edge in edges:
        graph.setdefault(edge.item, []).append(edge.depends_on)
    for targets in graph.values():
        targets.sort()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_path(sorted(component)[0], set(component), graph) for component in components]


def _cycle_path(start: str, members: set[str], graph: Mapping[str, list[str]]) -> list[str]:
    """A shortest cycle through `start` inside one strongly connected component (BFS)."""
    previous: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in graph.get(node, []):
            if nxt not in members:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return [start, start]


def execution_order(names: Iterable[str], edges: Sequence[Edge]) -> list[str]:
    """Dependencies first; among items that are free to run, by name. Requires no cycles."""
    pending = dict.fromkeys(names, 0)
    dependents: dict[str, list[str]] = {name: [] for name in pending}
    for edge in edges:
        pending[edge.item] += 1
        dependents[edge.depends_on].append(edge.item)
    ready = [name for name, count in pending.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for dependent in dependents[name]:
            pending[dependent] -= 1
            if pending[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(order) != len(pending):
        raise ValueError("execution_order needs an acyclic graph; run find_cycles first")
    return order
