"""The SQL of feature tables and of training datasets, run inside the destination database.

Two pure builders, each returning one SELECT for `dialect` ("postgres" or "duckdb") that the
runtime wraps as `CREATE TABLE <target> AS <select>`:

`feature_select` materialises a FEATURES item: one row per distinct (keys..., timestamp) of
the input rows, holding each feature as it stood at that moment:

    SELECT p.<key> [AS <key as named>]..., p.<ts> [AS ...], <feature> AS <name>, ...
    FROM (SELECT DISTINCT <key>..., <ts> FROM <input> WHERE <where> AND <not null>) AS p
    JOIN (SELECT <columns read> FROM <input> WHERE <where> AND <not null>) AS h
      ON h.<key> = p.<key> ... AND h.<ts> <= p.<ts>
         [AND h.<ts> > p.<ts> - INTERVAL '<longest window> SECOND'  -- every feature windowed]
    GROUP BY p.<key>..., p.<ts>

where each aggregate of a feature reads the history rows `h` and, when the feature has a
window of W seconds (and the join does not already bound it), is filtered to it:
`sum(h.total) FILTER (WHERE h.ts > p.ts - INTERVAL 'W SECOND')`.

`dataset_select` is the as-of join of a spine (labelled rows at timestamps) with feature
tables: each spine row once, its columns, then each table's features from that table's row of
the same keys at the greatest timestamp <= the spine row's:

    SELECT s.<spine column>..., f0.stratum_f0 AS <feature>, ...
    FROM <spine> AS s
    LEFT JOIN (
      SELECT <k0>, <t>, <f0>... FROM (
        SELECT p.<k0>, p.<t>, f.<feature> AS <f0>...,
               ROW_NUMBER() OVER (PARTITION BY p.<k0>, p.<t> ORDER BY f.<ts> DESC) AS <n>
        FROM (SELECT DISTINCT <key> AS <k0>, <ts> AS <t> FROM <spine> WHERE <not null>) AS p
        JOIN <feature table> AS f ON f.<key> = p.<k0> AND f.<ts> <= p.<t>
      ) AS c WHERE c.<n> = 1
    ) AS f0 ON f0.<k0> = s.<key> AND f0.<t> = s.<ts>
    LEFT JOIN ... (one per feature table)

The as-of rows are found once per distinct (keys, timestamp) of the spine and joined back by
equality, so a spine row needs no identity (no `row_number() OVER ()`, whose numbering a
database may compute differently each time it is read): duplicates stay duplicates, a spine row
with a NULL key or timestamp, or no feature row at or before it, gets NULL features. Inner
names are generated (`stratum_k0`, `stratum_t`, `stratum_f0`, `stratum_n`) and the features
take their own names only in the outer select, so no user name can collide with them.

Semantics (point in time: a value never depends on a later row):

* The value at (entity, t) aggregates the input rows of that entity that pass WHERE with
  `timestamp <= t` and, with a window of W seconds, `timestamp > t - W`. A row at exactly t
  is included (as Feast does); a row at exactly t - W is not. A window is elapsed time
  (`INTERVAL 'W SECOND'`), so 7 DAYS is 604800 seconds even across a DST change of a
  timestamptz column. The TIMESTAMP column must be a date or timestamp.
* Rows with a NULL key or a NULL timestamp are ignored: they make no point and are in no
  aggregate. Rows WHERE drops make no point either.
* A dataset row at spine time T takes the feature row at the last event t <= T: a windowed
  feature is the window ending at t, not at T (the feature table has rows at events only).
* Aggregates: count(*), count(x), count(DISTINCT x), sum, avg, min, max, first(x), last(x)
  (`first_value`/`last_value` are read as first/last), with SQL's NULL rules (count(x) and
  count(DISTINCT x) skip NULLs; sum, avg, min, max of no value are NULL). An aggregate may
  carry its own `FILTER (WHERE ...)`, combined with the window. A feature may combine
  aggregates (`sum(total) / count(*)`); every column it reads must be inside an aggregate.
* last(x) is x on the latest row of the window, first(x) on the earliest, NULL when x is NULL
  there; between rows at the same timestamp the greatest x is taken (NULL last), so the result
  is the same each time. Written `(ARRAY_AGG(x ORDER BY ts DESC, x DESC NULLS LAST) FILTER
  (WHERE ...))[1]`; on PostgreSQL x may not itself be an array (ARRAY_AGG would make a
  two-dimensional array, whose [1] is NULL).
* Result types are the database's own: avg of integers is numeric on PostgreSQL and double
  on DuckDB, sum of integers bigint and hugeint. `/` between integers truncates on
  PostgreSQL and not on DuckDB (sqlglot cannot tell the types): write
  `sum(n)::numeric / count(*)` for the same answer on both.
* Cost: each point joins every earlier row of its entity, so an entity of n rows costs n^2/2
  pairs unless every feature is windowed (then only the rows of the longest window).
* Names are compared without regard to case (a feature named like a key column, or like a
  spine column in another case, is an error): DuckDB's identifiers are case-insensitive and its
  CREATE TABLE AS silently renames the second of `"a"` and `"A"` to `A_1`.

Column references are resolved as the transforms resolve them (the same name, else the only
column differing in case alone; exact when quoted). The key and timestamp columns of a feature
table take the names the plan gives them (`KEY (customerid)` over an input column "CustomerId"
makes a column "customerid"), so that a dataset joins it by those same names; the names of a
`JoinedFeatures` are the feature table's own, used as they are. Expressions are parsed in the
dialect they are written in and generated by sqlglot for `dialect`; identifiers are always
quoted by sqlglot, never pasted. Mistakes are ConfigErrors naming the feature. `input_table`,
`spine_table` and `JoinedFeatures.table` are relations already quoted and qualified for
`dialect`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from stratum.connectors.pushdown import parse_expression, shown
from stratum.connectors.sql import quote
from stratum.errors import ConfigError
from stratum.plan.model import Feature, Sql
from stratum.transforms.compiler import resolve_column, suggest

__all__ = ["JoinedFeatures", "dataset_select", "feature_select"]

_DIALECTS = {"postgres": "postgres", "postgresql": "postgres", "duckdb": "duckdb"}

#: The aggregates a feature may use.
_AGGREGATES: tuple[type[exp.Expr], ...] = (
    exp.Count,
    exp.Sum,
    exp.Avg,
    exp.Min,
    exp.Max,
    exp.First,
    exp.Last,
    exp.FirstValue,
    exp.LastValue,
)
_LATEST = (exp.Last, exp.LastValue)
_EARLIEST = (exp.First, exp.FirstValue)
_SUPPORTED = "count(*), count(x), count(DISTINCT x), sum, avg, min, max, first(x) or last(x)"

_POINT = "p"  # the points: distinct (keys, timestamp) of the input
_HISTORY = "h"  # the input rows aggregated at each point


@dataclass(frozen=True, slots=True)
class JoinedFeatures:
    """A feature table joined to a spine by `dataset_select`."""

    table: str  # the feature table, quoted/qualified for the dialect
    keys: tuple[str, ...]  # entity key columns (same names in spine and feature table)
    timestamp: str  # the feature table's timestamp column
    features: tuple[str, ...]  # feature columns to bring
    # the names are the feature table's exactly; the spine's are found as the transforms find
    # them (the same name, else the only one differing in case)


def feature_select(
    *,
    input_table: str,
    columns: Sequence[str],
    keys: Sequence[str],
    timestamp: str,
    features: Sequence[Feature],
    where: Sql | None,
    dialect: str,
) -> str:
    """The SELECT of a feature table: the key columns, the timestamp column (named as `keys`
    and `timestamp` name them, which a dataset then joins on), then each feature by name, one
    row per distinct (keys, timestamp) of the input rows that pass `where` (see the module
    docstring). ConfigError for a column the input does not have, a name used twice, or a
    feature that is not made of aggregates."""
    out = _dialect(dialect)
    names = list(columns)
    key_columns = tuple(_input_column(key, names, "the key column") for key in keys)
    ts_column = _input_column(timestamp, names, "the TIMESTAMP column")
    _check_feature_names(features, (*key_columns, ts_column))
    windows = [feature.window_seconds for feature in features]
    for feature in features:
        if feature.window_seconds is not None and feature.window_seconds <= 0:
            raise ConfigError(
                f"feature '{feature.name}': its window must be longer than 0 seconds, "
                f"not {feature.window_seconds}"
            )
    bound = max(w for w in windows if w is not None) if windows and None not in windows else None

    read = {*key_columns, ts_column}
    items = [
        _qualified(_POINT, column, out) + ("" if given == column else f" AS {quote(given, out)}")
        for column, given in zip((*key_columns, ts_column), (*keys, timestamp), strict=True)
    ]
    for feature in features:
        tree = _feature_tree(feature, names)
        read.update(str(column.name) for column in tree.find_all(exp.Column))
        window = feature.window_seconds if feature.window_seconds != bound else None
        sql = _generate(_aggregated(tree, ts_column, window, out), out, f"feature '{feature.name}'")
        items.append(f"{sql} AS {quote(feature.name, out)}")

    conditions = [f"{quote(name, out)} IS NOT NULL" for name in (*key_columns, ts_column)]
    if where is not None:
        conditions.insert(0, f"({_condition(where, names, out)})")
    filtered = f"FROM {input_table} WHERE {' AND '.join(conditions)}"
    points = ", ".join(quote(name, out) for name in (*key_columns, ts_column))
    history = ", ".join(quote(name, out) for name in names if name in read)
    on = [
        f"{_qualified(_HISTORY, key, out)} = {_qualified(_POINT, key, out)}" for key in key_columns
    ]
    on.append(f"{_qualified(_HISTORY, ts_column, out)} <= {_qualified(_POINT, ts_column, out)}")
    if bound is not None:
        on.append(_generate(_in_window(ts_column, bound), out, "the window"))
    group = ", ".join(_qualified(_POINT, name, out) for name in (*key_columns, ts_column))
    return (
        f"SELECT {', '.join(items)} "
        f"FROM (SELECT DISTINCT {points} {filtered}) AS {_POINT} "
        f"JOIN (SELECT {history} {filtered}) AS {_HISTORY} ON {' AND '.join(on)} "
        f"GROUP BY {group}"
    )


def dataset_select(
    *,
    spine_table: str,
    spine_columns: Sequence[str],
    spine_timestamp: str,
    tables: Sequence[JoinedFeatures],
    dialect: str,
) -> str:
    """The SELECT of a training dataset: every row of the spine once, its columns, then each
    table's features as of the spine row's timestamp (see the module docstring). ConfigError
    when the spine lacks a key or the timestamp column, or a feature name is taken."""
    out = _dialect(dialect)
    spine = list(spine_columns)
    spine_ts = _input_column(spine_timestamp, spine, "the timestamp column", "spine")
    _check_dataset_names(spine, tables)
    items = [_qualified("s", name, out) for name in spine]
    joins = []
    for number, table in enumerate(tables):
        alias = f"f{number}"
        spine_keys = [
            _input_column(key, spine, f"the key column of {table.table}", "spine")
            for key in table.keys
        ]
        keys = [quote(f"stratum_k{i}", out) for i in range(len(spine_keys))]
        point = quote("stratum_t", out)
        rank = quote("stratum_n", out)
        values = [quote(f"stratum_f{i}", out) for i in range(len(table.features))]
        not_null = " AND ".join(f"{quote(c, out)} IS NOT NULL" for c in (*spine_keys, spine_ts))
        distinct = ", ".join(
            f"{quote(column, out)} AS {name}"
            for column, name in zip((*spine_keys, spine_ts), (*keys, point), strict=True)
        )
        on = [
            f"{_qualified('f', key, out)} = p.{name}"
            for key, name in zip(table.keys, keys, strict=True)
        ]
        on.append(f"{_qualified('f', table.timestamp, out)} <= p.{point}")
        partition = ", ".join(f"p.{name}" for name in (*keys, point))
        candidates = (
            f"SELECT {', '.join(f'p.{name}' for name in (*keys, point))}"
            + "".join(
                f", {_qualified('f', feature, out)} AS {value}"
                for feature, value in zip(table.features, values, strict=True)
            )
            + f", ROW_NUMBER() OVER (PARTITION BY {partition} "
            f"ORDER BY {_qualified('f', table.timestamp, out)} DESC) AS {rank} "
            f"FROM (SELECT DISTINCT {distinct} FROM {spine_table} WHERE {not_null}) AS p "
            f"JOIN {table.table} AS f ON {' AND '.join(on)}"
        )
        latest = (
            f"SELECT {', '.join((*keys, point, *values))} "
            f"FROM ({candidates}) AS c WHERE c.{rank} = 1"
        )
        back = [
            f"{alias}.{name} = {_qualified('s', column, out)}"
            for name, column in zip((*keys, point), (*spine_keys, spine_ts), strict=True)
        ]
        joins.append(f" LEFT JOIN ({latest}) AS {alias} ON {' AND '.join(back)}")
        items.extend(
            f"{alias}.{value} AS {quote(feature, out)}"
            for feature, value in zip(table.features, values, strict=True)
        )
    return f"SELECT {', '.join(items)} FROM {spine_table} AS s" + "".join(joins)


# --- names ------------------------------------------------------------------------------------


def _dialect(dialect: str) -> str:
    found = _DIALECTS.get(dialect.lower())
    if found is None:
        raise ConfigError(
            f"feature tables and datasets are built in PostgreSQL or DuckDB, not in {dialect!r}"
        )
    return found


def _qualified(alias: str, name: str, dialect: str) -> str:
    return f"{alias}.{quote(name, dialect)}"


def _input_column(name: str, columns: Sequence[str], what: str, of: str = "input") -> str:
    found = resolve_column(name, dict.fromkeys(columns), exact=False)
    if found is None:
        raise ConfigError(
            f"{what} '{name}' is not a column of the {of}{suggest(name, columns)}; "
            f"the {of} has {_listing(columns)}"
        )
    return found


def _check_feature_names(features: Sequence[Feature], taken: Iterable[str]) -> None:
    seen = {name.lower(): f"the column '{name}'" for name in taken}
    for feature in features:
        other = seen.get(feature.name.lower())
        if other is not None:
            raise ConfigError(
                f"feature '{feature.name}' has the name of {other}: "
                "the feature table would hold two columns of that name"
            )
        seen[feature.name.lower()] = f"feature '{feature.name}'"


def _check_dataset_names(spine: Sequence[str], tables: Sequence[JoinedFeatures]) -> None:
    seen = {name.lower(): f"the spine column '{name}'" for name in spine}
    for table in tables:
        for feature in table.features:
            other = seen.get(feature.lower())
            if other is not None:
                raise ConfigError(
                    f"feature '{feature}' of {table.table} has the name of {other}: "
                    "the dataset would hold two columns of that name"
                )
            seen[feature.lower()] = f"feature '{feature}' of {table.table}"


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:12])
    return shown + (f", ... ({len(names)} columns)" if len(names) > 12 else "")


# --- expressions ------------------------------------------------------------------------------


def _feature_tree(feature: Feature, columns: Sequence[str]) -> exp.Expr:
    """The feature's expression, checked, its columns resolved and quoted (unqualified)."""
    label = f"feature '{feature.name}'"
    tree = parse_expression(feature.aggregate, label)
    dialect = feature.aggregate.dialect
    aggregates = 0
    for node in tree.walk():
        problem = _refused_in_feature(node)
        if problem is None and isinstance(node, exp.AggFunc):
            aggregates += 1
            problem = _aggregate_problem(node)
        if problem is None and isinstance(node, exp.Column) and _scope(node) is None:
            problem = (
                "reads a column outside an aggregate: a feature is made of aggregates, "
                "e.g. last(x) for the latest value"
            )
        if problem is not None:
            raise ConfigError(f"{label}: '{shown(node, dialect)}' {problem}")
    if aggregates == 0:
        raise ConfigError(
            f"{label}: '{feature.aggregate.text.strip()}' has no aggregate: a feature "
            f"aggregates the entity's rows with {_SUPPORTED}"
        )
    return _resolved(tree, columns, label, dialect)


def _refused_in_feature(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Window):
        return "is a window function: a feature's window is its OVER n DAYS (or HOURS, ...)"
    if isinstance(node, exp.Query | exp.Subquery | exp.Exists):
        return "is a subquery: a feature aggregates the input's rows only"
    if isinstance(node, exp.UDTF | exp.GenerateSeries):
        return "returns a set of rows: a feature aggregates the input's rows only"
    if isinstance(node, exp.WithinGroup):
        return f"is an ordered-set aggregate: a feature uses {_SUPPORTED}"
    if isinstance(node, exp.IgnoreNulls | exp.RespectNulls):
        return "is not supported: skip NULLs with FILTER, e.g. last(x) FILTER (WHERE x IS NOT NULL)"
    if isinstance(node, exp.Placeholder | exp.Parameter):
        return "is a parameter, which a feature cannot bind"
    if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
        return "is not a column: name the columns (only count(*) counts rows)"
    return None


def _aggregate_problem(node: exp.AggFunc) -> str | None:
    if not isinstance(node, _AGGREGATES):
        return f"is not an aggregate a feature can use: use {_SUPPORTED}"
    if _scope(node) is not None:
        return "is an aggregate inside an aggregate"
    if isinstance(node, (*_LATEST, *_EARLIEST)):
        name = "last" if isinstance(node, _LATEST) else "first"
        extra = [key for key, value in node.args.items() if key != "this" and value]
        if extra or isinstance(node.this, exp.Order | exp.Distinct) or node.this is None:
            return f"is not supported: {name}(x) takes one expression, ordered by the TIMESTAMP"
    this = node.this
    if isinstance(this, exp.Distinct) and len(this.expressions) != 1:
        return "is not supported: DISTINCT takes one expression here"
    return None


def _scope(node: exp.Expr) -> exp.AggFunc | None:
    """The aggregate `node` is inside: an aggregate call, or the FILTER of one."""
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.AggFunc):
            return parent
        if (
            isinstance(parent, exp.Filter)
            and isinstance(parent.this, exp.AggFunc)
            and child is not parent.this
        ):
            return parent.this
        child, parent = parent, parent.parent
    return None


def _resolved(tree: exp.Expr, columns: Sequence[str], label: str, dialect: str) -> exp.Expr:
    """The tree with each column reference resolved to an input column, quoted."""
    lookup: Mapping[str, None] = dict.fromkeys(columns)

    def resolve(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Column):
            return node
        if node.table or node.args.get("db") or node.args.get("catalog"):
            raise ConfigError(f"{label}: '{shown(node, dialect)}' is qualified: name the column")
        identifier = node.this
        name = str(node.name)
        quoted = bool(isinstance(identifier, exp.Identifier) and identifier.quoted)
        found = resolve_column(name, lookup, exact=quoted)
        if found is None:
            raise ConfigError(
                f"{label}: '{name}' is not a column of the input{suggest(name, columns)}; "
                f"the input has {_listing(columns)}"
            )
        return exp.column(exp.to_identifier(found, quoted=True))

    return tree.transform(resolve, copy=True)


def _condition(where: Sql, columns: Sequence[str], dialect: str) -> str:
    """The WHERE condition, checked and resolved, in `dialect`."""
    tree = parse_expression(where, "WHERE")
    for node in tree.walk():
        problem = _refused_in_where(node)
        if problem is not None:
            raise ConfigError(f"WHERE: '{shown(node, where.dialect)}' {problem}")
    return _generate(_resolved(tree, columns, "WHERE", where.dialect), dialect, "WHERE")


def _refused_in_where(node: exp.Expr) -> str | None:
    if isinstance(node, exp.AggFunc):
        return "is an aggregate: WHERE sees one input row at a time"
    if isinstance(node, exp.Window):
        return "is a window function: WHERE sees one input row at a time"
    if isinstance(node, exp.Query | exp.Subquery | exp.Exists):
        return "is a subquery: WHERE sees only the input row"
    if isinstance(node, exp.UDTF | exp.GenerateSeries):
        return "returns a set of rows: WHERE sees one input row at a time"
    if isinstance(node, exp.Star):
        return "is not a column: name the columns"
    if isinstance(node, exp.Placeholder | exp.Parameter):
        return "is a parameter, which a feature table cannot bind"
    return None


def _aggregated(tree: exp.Expr, ts_column: str, window: int | None, dialect: str) -> exp.Expr:
    """The checked, resolved feature with its columns read from the history rows and each
    aggregate limited to the window (`window` seconds; None: no limit beyond the join's)."""
    history = tree.transform(
        lambda node: (
            exp.column(node.this.copy(), table=exp.to_identifier(_HISTORY))
            if isinstance(node, exp.Column)
            else node
        ),
        copy=True,
    )
    for call in list(history.find_all(exp.AggFunc)):
        unit: exp.Expr = call
        conditions: list[exp.Expr] = []
        parent = call.parent
        if isinstance(parent, exp.Filter) and parent.this is call:
            unit = parent
            conditions.append(parent.expression.this.copy())
        if window is not None:
            conditions.append(_in_window(ts_column, window))
        replacement = _windowed(call.copy(), conditions, ts_column, dialect)
        if unit is history:
            history = replacement
        else:
            unit.replace(replacement)
    return history


def _windowed(
    call: exp.AggFunc, conditions: Sequence[exp.Expr], ts_column: str, dialect: str
) -> exp.Expr:
    """An aggregate call over the rows meeting `conditions`; first/last as ARRAY_AGG[1]."""
    where = exp.Where(this=exp.and_(*conditions)) if conditions else None
    if not isinstance(call, (*_LATEST, *_EARLIEST)):
        return call if where is None else exp.Filter(this=call, expression=where)
    value = call.this
    ts = exp.column(exp.to_identifier(ts_column, quoted=True), table=_HISTORY)
    order = exp.Order(
        this=value.copy(),
        expressions=[
            exp.Ordered(this=ts, desc=isinstance(call, _LATEST), nulls_first=False),
            exp.Ordered(this=value.copy(), desc=True, nulls_first=False),
        ],
    )
    collected: exp.Expr = exp.ArrayAgg(this=order)
    if where is not None:
        collected = exp.Filter(this=collected, expression=where)
    first = sqlglot.parse_one("(x)[1]", read=dialect)  # the dialect's own index base
    first.this.this.replace(collected)
    return first


def _in_window(ts_column: str, seconds: int) -> exp.Expr:
    """h.ts > p.ts - INTERVAL 'seconds SECOND'."""
    interval = exp.Interval(this=exp.Literal.string(str(seconds)), unit=exp.var("SECOND"))
    return exp.GT(
        this=exp.column(exp.to_identifier(ts_column, quoted=True), table=_HISTORY),
        expression=exp.Sub(
            this=exp.column(exp.to_identifier(ts_column, quoted=True), table=_POINT),
            expression=interval,
        ),
    )


def _generate(tree: exp.Expr, dialect: str, label: str) -> str:
    try:
        return tree.sql(dialect, unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        detail = str(exc).split("\n", 1)[0]
        raise ConfigError(f"{label}: cannot be written in {dialect}: {detail}") from exc
