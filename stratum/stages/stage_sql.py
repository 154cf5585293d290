"""The SQL of a medallion stage, run inside the database that holds its input and its target.

A `STAGE ... FROM <input>` runs as these statements, in one transaction with its checkpoint:

    1. D: the input's rows (MODE incremental: only those past the CURSOR's high-water mark),
       each numbered within its DEDUPLICATE key in the ORDER BY's order ("_stratum_rn";
       number 1 wins; without DEDUPLICATE every row is 1)
    2. counted: rows read, rows left after deduplication, the new high-water mark
    3. W: the winners, cast by the CAST rules, kept by the WHERE (over the input's columns, as
       for MIGRATE), shaped by COLUMNS and COMPUTE; then one boolean per EXPECT rule over the
       output row ("_stratum_e1"...): true when the condition is true, false when it is
       false or NULL (an unknown is not a pass)
    4. counted: the rows failing each rule. A FAIL rule that fails stops the stage: the
       transaction rolls back and the error shows the first failing rows
    5. the quarantine table "<target>_quarantine" receives the rows failing a QUARANTINE
       rule, with every rule they fail ("_failed_rules"), the batch and the time
    6. the target receives the rows failing no QUARANTINE and no DROP rule, with the FLAG
       rules they fail in "_quality_flags" (NULL when none) and the batch in "_stratum_batch".
       MODE full rebuilds the target (and the quarantine table); MODE incremental merges into
       it on the key: an older version of a key is deleted, the new one inserted

A row failing a QUARANTINE rule is quarantined even when it also fails a DROP rule: kept aside
is safer than lost. Which of several duplicates wins without ORDER BY, or on a tie, is not
specified: write the ORDER BY that decides it.

The input's own lineage columns ("_stratum_batch", "_quality_flags": a stage reading another
stage's output) are not copied through: the stage writes its own.

`STAGE ... AS <query>` runs the query, transpiled from its dialect, as `CREATE TABLE target AS`;
its tables are named as in the plan (`connection.schema.table`) and rewritten to the
database's names. Every expression is parsed by sqlglot in the dialect it is written in and
generated in the database's; identifiers are always quoted, never pasted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from smql import ExpectAction, Mode
from stratum.connectors.base import Column
from stratum.connectors.pushdown import cast_targets, ordering_sql, plan_pushdown, row_expression
from stratum.connectors.sql import column_type, quote
from stratum.errors import ConfigError
from stratum.plan.model import PlanItem, Sql, StageSource, TableRef
from stratum.transforms.compiler import resolve_column, suggest

__all__ = [
    "BATCH_COLUMN",
    "FLAGS_COLUMN",
    "LINEAGE_COLUMNS",
    "Rule",
    "StageSql",
    "query_sql",
    "stage_sql",
]

#: The stage batch that wrote a row (every stage's target and quarantine table).
BATCH_COLUMN = "_stratum_batch"
#: The FLAG rules a row fails, "; "-separated; NULL when none (a stage with FLAG rules).
FLAGS_COLUMN = "_quality_flags"
#: What the quarantine table adds: the rules a row fails, and when it was set aside.
FAILED_COLUMN = "_failed_rules"
QUARANTINED_AT = "_quarantined_at"
LINEAGE_COLUMNS = frozenset({BATCH_COLUMN, FLAGS_COLUMN})
_RANK = "_stratum_rn"


@dataclass(frozen=True, slots=True)
class Rule:
    """One EXPECT rule: its number (1-based, in the item's order), its condition as written
    (normalised: the label in counts and messages), and its action."""

    number: int
    label: str
    action: ExpectAction

    @property
    def column(self) -> str:
        return f"_stratum_e{self.number}"


@dataclass(frozen=True, slots=True)
class StageSql:
    """The statements of one `STAGE ... FROM`, for one database (see the module docstring).
    Temporary tables are passed in by name (`deduped`, `work`: as the database reads them);
    `$1` in `read_after` is the high-water mark as text, cast to the CURSOR column's type."""

    dialect: str
    outputs: tuple[str, ...]
    rules: tuple[Rule, ...]
    key: tuple[str, ...]  # the merge key, in output names (MODE incremental)
    cursor: str | None  # the CURSOR input column (MODE incremental)
    read: str  # SELECT for D (step 1): every input row
    read_after: str | None  # the same past the high-water mark `$1` (MODE incremental)
    shape: str  # SELECT for W over "{deduped}" (step 3)

    def q(self, name: str) -> str:
        return quote(name, self.dialect)

    def counts_read(self, deduped: str) -> str:
        high = f", CAST(MAX({self.q(self.cursor)}) AS TEXT)" if self.cursor else ""
        rank = self.q(_RANK)
        return (
            f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN {rank} = 1 THEN 1 ELSE 0 END), 0){high} "
            f"FROM {deduped}"
        )

    def work(self, deduped: str) -> str:
        return self.shape.replace("{deduped}", deduped)

    def counts_rules(self, work: str) -> str:
        """Rows in W, then the rows failing each rule, then quarantined, dropped, flagged."""
        parts = ["COUNT(*)"]
        parts += [self._count(f"NOT {self.q(rule.column)}") for rule in self.rules]
        parts += [
            self._count(self.quarantined() or "FALSE"),
            self._count(self.dropped() or "FALSE"),
            self._count(self.flagged() or "FALSE"),
        ]
        return f"SELECT {', '.join(parts)} FROM {work}"

    def _count(self, condition: str) -> str:
        return f"COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"

    def failing(self, work: str, rule: Rule, limit: int) -> str:
        """The first rows failing `rule` (for the message of a FAIL)."""
        return (
            f"SELECT {', '.join(self.q(n) for n in self.outputs)} FROM {work} "
            f"WHERE NOT {self.q(rule.column)} LIMIT {int(limit)}"
        )

    def _failing_any(self, action: ExpectAction) -> str | None:
        columns = [self.q(r.column) for r in self.rules if r.action is action]
        return " OR ".join(f"NOT {c}" for c in columns) if columns else None

    def quarantined(self) -> str | None:
        return self._failing_any(ExpectAction.QUARANTINE)

    def dropped(self) -> str | None:
        """Rows dropped: failing a DROP rule and no QUARANTINE rule."""
        drop = self._failing_any(ExpectAction.DROP)
        if drop is None:
            return None
        quarantine = self.quarantined()
        return f"({drop})" if quarantine is None else f"({drop}) AND NOT ({quarantine})"

    def flagged(self) -> str | None:
        """Rows written with flags: kept, and failing a FLAG rule."""
        flag = self._failing_any(ExpectAction.FLAG)
        if flag is None:
            return None
        kept = self.kept()
        return f"({flag})" if kept == "TRUE" else f"({flag}) AND {kept}"

    def kept(self) -> str:
        """Rows the target receives."""
        away = [c for c in (self.quarantined(), self._failing_any(ExpectAction.DROP)) if c]
        return "NOT (" + " OR ".join(away) + ")" if away else "TRUE"

    def _failed_list(self, actions: Sequence[ExpectAction]) -> str:
        labels = [
            f"CASE WHEN NOT {self.q(r.column)} THEN {_literal(r.label)} END"
            for r in self.rules
            if r.action in actions
        ]
        return f"NULLIF(CONCAT_WS('; ', {', '.join(labels)}), '')"

    @property
    def flags(self) -> bool:
        return any(rule.action is ExpectAction.FLAG for rule in self.rules)

    @property
    def quarantines(self) -> bool:
        return any(rule.action is ExpectAction.QUARANTINE for rule in self.rules)

    def target_columns(self) -> list[str]:
        names = list(self.outputs)
        if self.flags:
            names.append(FLAGS_COLUMN)
        return [*names, BATCH_COLUMN]

    def target_select(self, work: str, batch: int, *, empty: bool = False) -> str:
        items = [self.q(n) for n in self.outputs]
        if self.flags:
            flags = self._failed_list((ExpectAction.FLAG,))
            items.append(f"CAST({flags} AS TEXT) AS {self.q(FLAGS_COLUMN)}")
        items.append(f"CAST({int(batch)} AS BIGINT) AS {self.q(BATCH_COLUMN)}")
        where = "FALSE" if empty else self.kept()
        return f"SELECT {', '.join(items)} FROM {work} WHERE {where}"

    def quarantine_columns(self) -> list[str]:
        return [*self.outputs, FAILED_COLUMN, BATCH_COLUMN, QUARANTINED_AT]

    def quarantine_select(self, work: str, batch: int, *, empty: bool = False) -> str:
        failed = self._failed_list(tuple(ExpectAction))
        items = [self.q(n) for n in self.outputs]
        items += [
            f"CAST({failed} AS TEXT) AS {self.q(FAILED_COLUMN)}",
            f"CAST({int(batch)} AS BIGINT) AS {self.q(BATCH_COLUMN)}",
            f"CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS {self.q(QUARANTINED_AT)}",
        ]
        where = "FALSE" if empty else (self.quarantined() or "FALSE")
        return f"SELECT {', '.join(items)} FROM {work} WHERE {where}"

    def delete_replaced(self, target: str, work: str) -> str:
        """MODE incremental: the target's rows whose key a kept row of W carries."""
        keys = ", ".join(self.q(k) for k in self.key)
        return (
            f"DELETE FROM {target} WHERE ({keys}) IN "
            f"(SELECT {keys} FROM {work} WHERE {self.kept()})"
        )

    def checksum(self, work: str) -> str:
        """An order-independent checksum of the rows the target receives, in the database's
        own hash (comparable between runs on the same database, not across databases)."""
        columns = ", ".join(self.q(n) for n in self.outputs)
        rows = f"(SELECT {columns} FROM {work} WHERE {self.kept()}) AS r"
        if self.dialect == "duckdb":
            return f"SELECT CAST(SUM(HASH(r)) AS TEXT) FROM {rows}"
        return f"SELECT CAST(SUM(hashtextextended(CAST(r AS TEXT), 0)) AS TEXT) FROM {rows}"


def stage_sql(
    item: PlanItem,
    source: StageSource,
    *,
    columns: Sequence[Column],
    input_relation: str,
    dialect: str,
    cursor_type: str | None,
) -> StageSql:
    """The statements of `item` (a STAGE ... FROM) over an input with `columns`, read as
    `input_relation`, in `dialect`. `cursor_type` is the CURSOR column's type as the database
    names it (MODE incremental). ConfigError for a name or expression that does not fit."""
    label = f"item '{item.name}'"
    options = item.options
    every = [c.name for c in columns]  # a CURSOR may be a lineage column: _stratum_batch
    columns = [c for c in columns if c.name not in LINEAGE_COLUMNS]
    names = [c.name for c in columns]

    def q(name: str) -> str:
        return quote(name, dialect)

    # 1. read and rank
    rank = "1"
    if source.deduplicate is not None:
        keys = [_column(k, names, f"{label}: DEDUPLICATE ON") for k in source.deduplicate.keys]
        order = [
            ordering_sql(term, names, dialect, f"{label}: DEDUPLICATE ... ORDER BY")
            for term in source.deduplicate.order_by
        ]
        over = f"PARTITION BY {', '.join(q(k) for k in keys)}"
        if order:
            over += f" ORDER BY {', '.join(order)}"
        rank = f"ROW_NUMBER() OVER ({over})"
    cursor = None
    read = f"SELECT *, {rank} AS {q(_RANK)} FROM {input_relation}"
    read_after = None
    if options.mode is Mode.INCREMENTAL:
        if options.cursor is None or cursor_type is None:
            raise ConfigError(f"{label}: MODE incremental needs a CURSOR column of the input")
        cursor = _column(options.cursor, every, f"{label}: CURSOR")
        read_after = (
            f"SELECT *, {rank} AS {q(_RANK)} FROM {input_relation} "
            f"WHERE {q(cursor)} > CAST(CAST($1 AS TEXT) AS {cursor_type})"
        )

    # 3. cast, filter, shape
    casts = cast_targets(columns, options.casts)
    inner_items = []
    typed: list[Column] = []
    for column in columns:
        target = casts.get(column.name)
        if target is None:
            inner_items.append(q(column.name))
            typed.append(column)
        else:
            spelt = column_type(target, dialect, column.name)
            inner_items.append(f"CAST({q(column.name)} AS {spelt}) AS {q(column.name)}")
            typed.append(Column(column.name, target, column.nullable))
    rest = replace(options, casts=(), key=(), cursor=None)
    pushdown = plan_pushdown(typed, rest, dialect)
    wanted = {"columns" if rest.columns else "", "compute" if rest.compute else ""} - {""}
    if rest.where is not None:
        wanted.add("where")
    if not wanted <= pushdown.applied:
        raise ConfigError(
            f"{label}: its COLUMNS, COMPUTE and WHERE cannot all be written in {dialect}"
        )
    outputs = tuple(o.name for o in pushdown.outputs)
    clash = sorted({FLAGS_COLUMN, BATCH_COLUMN, FAILED_COLUMN, QUARANTINED_AT} & set(outputs))
    if clash:
        raise ConfigError(f"{label}: the column name {clash[0]!r} is Stratum's own; rename it")
    inner = f"SELECT {', '.join(inner_items)} FROM {{deduped}} AS d WHERE d.{q(_RANK)} = 1"
    shaped = f"SELECT {', '.join(o.sql for o in pushdown.outputs)} FROM ({inner}) AS s"
    if pushdown.where is not None:
        shaped += f" WHERE ({pushdown.where})"
    rules = tuple(
        Rule(number, expectation.sql.normalized, expectation.action)
        for number, expectation in enumerate(source.expectations, start=1)
    )
    checks = [
        f"COALESCE(({row_expression(e.sql, outputs, dialect, f'{label}: EXPECT')}), FALSE) "
        f"AS {q(rule.column)}"
        for rule, e in zip(rules, source.expectations, strict=True)
    ]
    shape = f"SELECT {', '.join(['o.*', *checks])} FROM ({shaped}) AS o"

    key: tuple[str, ...] = ()
    if options.mode is Mode.INCREMENTAL:
        key = _merge_key(item, source, outputs, names)
    return StageSql(dialect, outputs, rules, key, cursor, read, read_after, shape)


def _merge_key(
    item: PlanItem, source: StageSource, outputs: Sequence[str], names: Sequence[str]
) -> tuple[str, ...]:
    """The output columns an incremental stage merges on: its KEY, else its DEDUPLICATE
    columns under the names COLUMNS gives them."""
    label = f"item '{item.name}'"
    if item.options.key:
        return tuple(_column(k, outputs, f"{label}: KEY") for k in item.options.key)
    if source.deduplicate is None:
        raise ConfigError(
            f"{label}: MODE incremental merges new rows into the target by a key: give it "
            "DEDUPLICATE ON (...) or KEY (...)"
        )
    renamed = {c.source: c.target for c in item.options.columns}
    key = []
    for column in source.deduplicate.keys:
        found = _column(column, names, f"{label}: DEDUPLICATE ON")
        output = renamed.get(found, found) if item.options.columns else found
        if output not in outputs:
            raise ConfigError(
                f"{label}: MODE incremental merges on the DEDUPLICATE columns, but "
                f"{found!r} is not among its output columns; keep it in COLUMNS or give a KEY"
            )
        key.append(output)
    return tuple(key)


def _column(name: str, names: Sequence[str], label: str) -> str:
    """The column `name` refers to, found as the transforms find it."""
    found = resolve_column(name, dict.fromkeys(names), exact=False)
    if found is None:
        raise ConfigError(f"{label}: {name!r} is not a column{suggest(name, names)}")
    return found


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def query_sql(
    query: Sql,
    *,
    dialect: str,
    home: str,
    connections: Sequence[str],
    relation: Callable[[TableRef], str],
    label: str,
) -> str:
    """A `STAGE ... AS` query in `dialect`, each table it reads renamed to the database's name
    for it (`relation`). Tables are named as SMQL names them: `conn.schema.table` and
    `conn.table` on a connection of the plan, anything else on `home`, the stage's own; a
    table on another connection cannot be read from inside this database (ConfigError)."""
    try:
        tree = sqlglot.parse_one(query.text, read=query.dialect)
    except SqlglotError as exc:
        detail = str(exc).split("\n", 1)[0]
        raise ConfigError(f"{label}: invalid SQL ({query.dialect}): {detail}") from exc
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}

    def rename(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Table):
            return node
        parts = [str(p) for p in (node.catalog, node.db, node.name) if p]
        if not parts or (len(parts) == 1 and parts[0] in ctes):
            return node
        if parts[0] in connections and len(parts) > 1:
            connection, rest = parts[0], parts[1:]
        else:
            connection, rest = home, parts
        if connection != home:
            raise ConfigError(
                f"{label}: its query reads {'.'.join(parts)} from connection "
                f"'{connection}', and runs inside '{home}': copy that table into '{home}' "
                "first (MIGRATE ... INTO), then read the copy"
            )
        ref = TableRef(home, rest[0] if len(rest) > 1 else None, rest[-1])
        renamed = sqlglot.parse_one(relation(ref), read=dialect, into=exp.Table)
        alias = node.args.get("alias")
        if alias is not None:
            renamed.set("alias", alias.copy())
        return renamed

    rewritten = tree.transform(rename, copy=True)
    try:
        return rewritten.sql(dialect, unsupported_level=sqlglot.ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise ConfigError(f"{label}: its query cannot be written in {dialect}: {exc}") from exc
