"""`MIGRATE DATABASE`: one plan item that fans out, at run time, into one table copy per table.

    read the source's catalog -> choose the tables (INCLUDING / EXCLUDING, minus the tables
    other items of the plan write) -> truncate long names -> on a fresh start, drop the foreign
    keys an earlier run made (MODE full must empty the tables) -> for each table, in
    foreign-key order, up to `parallel` at once:
        a child item `<item>/<table>`: the ordinary pipeline (create with columns only, load,
        checkpoint per batch), then that table's keys, indexes, identity past the max id,
        defaults, ENUM checks and comments (one transaction on PostgreSQL, with the step)
    -> foreign keys -> views (INCLUDING VIEWS) -> the item is finished

Children are ordinary items to the engine: each has its own checkpoint row, state record,
progress bar and summary line, and a hash made of the database item's hash, the table's name and
its discovered columns, so a resume into a table whose source columns changed is refused. The
database item itself has a checkpoint too (no rows, only steps: "drop", "before:<table>",
"after:<table>", "foreign_keys", "views"), so a crash between two steps redoes nothing that
committed; every statement also carries a query telling whether its effect is already there,
which makes a step safe to redo on servers whose DDL is not transactional (MySQL/MariaDB).

Data first, keys after: tables are created without a primary key and loaded, and the keys and
indexes are built once, which is faster than maintaining them row by row. A table whose rows
violate a key or a foreign key is loaded all the same (nothing is lost); the statement that
cannot be applied fails the item with the reason, after every other statement has been applied.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

import anyio

from smql import ItemKind, Mode, OnError
from stratum.connectors.base import SchemaDestination
from stratum.errors import ConfigError, StratumError
from stratum.plan.model import (
    CastRule,
    ColumnMap,
    DatabaseSource,
    PlanItem,
    TableRef,
    TableSource,
)
from stratum.runtime.events import ErrorOccurred, Notice, Totals
from stratum.runtime.fanout import FanOutRun
from stratum.runtime.pipeline import ItemResult, Outcome
from stratum.schema import Catalog, ColumnInfo, TableInfo, ddl
from stratum.state import ItemState
from stratum.transforms.native import rule_names, specificity

T = TypeVar("T")

#: Runs one child item through the ordinary pipeline (the executor's `_run_item`): the item, its
#: source table, and whether its key is created after the data (else with the table).
RunChild = Callable[[PlanItem, str, bool], Awaitable[ItemResult]]


@runtime_checkable
class CatalogReader(Protocol):
    """Reads the schema of a MIGRATE DATABASE item's source (the connector registry)."""

    def catalog(self, item: PlanItem) -> Awaitable[Catalog]: ...


def like(pattern: str, name: str) -> bool:
    """SQL LIKE (`%` any run, `_` one character, `\\` escapes), ignoring case."""
    regex = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            regex.append(re.escape(next(chars, "\\")))
        elif ch == "%":
            regex.append(".*")
        elif ch == "_":
            regex.append(".")
        else:
            regex.append(re.escape(ch))
    return re.fullmatch("".join(regex), name, flags=re.IGNORECASE | re.DOTALL) is not None


def chosen_tables(catalog: Catalog, source: DatabaseSource) -> list[str]:
    """The tables the item copies: those INCLUDING matches (all when it is absent), minus those
    EXCLUDING matches and those other items of the plan write."""
    claimed = {name.lower() for name in source.claimed}
    return [
        t.name
        for t in catalog.tables
        if (not source.including or any(like(p, t.name) for p in source.including))
        and not any(like(p, t.name) for p in source.excluding)
        and t.name.lower() not in claimed
    ]


def fit_columns(catalog: Catalog, max_bytes: int) -> tuple[Catalog, list[str]]:
    """The catalog with every column name too long for the target cut to fit (`ddl.fit_name`:
    deterministic), in its keys, indexes and foreign keys too; a warning for each."""
    warnings: list[str] = []

    def fit(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(ddl.fit_name(n, max_bytes) for n in names)

    tables = []
    for t in catalog.tables:
        for c in t.columns:
            fitted = ddl.fit_name(c.name, max_bytes)
            if fitted != c.name:
                warnings.append(
                    f"column {t.name}.{c.name} is longer than the target's {max_bytes}-byte "
                    f"limit: it is created as {fitted}"
                )
        tables.append(
            dataclasses.replace(
                t,
                columns=tuple(
                    dataclasses.replace(c, name=ddl.fit_name(c.name, max_bytes)) for c in t.columns
                ),
                primary_key=fit(t.primary_key),
                indexes=tuple(dataclasses.replace(i, columns=fit(i.columns)) for i in t.indexes),
                foreign_keys=tuple(
                    dataclasses.replace(
                        f,
                        columns=fit(f.columns),
                        ref_columns=fit(f.ref_columns),
                    )
                    for f in t.foreign_keys
                ),
            )
        )
    return dataclasses.replace(catalog, tables=tuple(tables)), warnings


def cast_catalog(catalog: Catalog, casts: tuple[CastRule, ...]) -> Catalog:
    """The catalog with each column's type as the item's CAST rules make it (a COLUMN rule
    first, else the most specific TYPE rule), so that what is built after the data (defaults,
    checks) fits the columns as they were created."""
    if not casts:
        return catalog

    def cast(table: TableInfo, column: ColumnInfo) -> ColumnInfo:
        by_column = [
            r for r in casts if r.by == "column" and rule_names(r, table.name, column.name, None)
        ]
        scored = [
            (score, r.to)
            for r in casts
            if r.by == "type" and (score := specificity(r.match, column.native_type)) is not None
        ]
        if by_column:
            to = by_column[-1].to
        elif scored:
            best = max(score for score, _ in scored)
            targets = {to for score, to in scored if score == best}
            if len(targets) > 1:  # as the transform stage refuses them
                raise ConfigError(
                    f"column {table.name}.{column.name} has two CAST rules of the same weight: "
                    + " and ".join(f"TO {t}" for t in sorted(targets))
                )
            (to,) = targets
        else:
            return column
        # a cast column is what the rule makes it: no longer the source's enum
        return dataclasses.replace(column, type=to, enum_type=None, labels=())

    return dataclasses.replace(
        catalog,
        tables=tuple(
            dataclasses.replace(t, columns=tuple(cast(t, c) for c in t.columns))
            for t in catalog.tables
        ),
    )


def _plain_types(table: TableInfo, casts: tuple[CastRule, ...]) -> tuple[CastRule, ...]:
    """CAST COLUMN rules giving a PostgreSQL source's domain and enum columns the type the
    catalog maps them to (the base type; text, made the enum again after the load), unless
    the item's own CAST rules say otherwise: the target then needs neither the source's domain
    nor its enum type in the source's schema."""
    rules = []
    for column in table.columns:
        if column.type == column.native_type:
            continue
        if any(rule_names(r, table.name, column.name, column.native_type) for r in casts):
            continue
        quoted = '"' + table.name.replace('"', '""') + '"."' + column.name.replace('"', '""') + '"'
        rules.append(CastRule("column", quoted, column.type))
    return tuple(rules)


def child_hash(item: PlanItem, table: TableInfo) -> str:
    """The item's hash, the table and its columns as discovered: a resume is refused when the
    source table's columns changed between runs."""
    digest = hashlib.sha256(item.hash.encode())
    digest.update(b"\x00" + table.name.encode())
    for column in table.columns:
        digest.update(f"\x00{column.name}\x01{column.native_type}\x01{column.nullable}".encode())
    return digest.hexdigest()


@dataclass
class DatabaseRun(FanOutRun):
    """One MIGRATE DATABASE item (see the module docstring)."""

    catalogs: CatalogReader = field(kw_only=True)
    schema_destination: SchemaDestination = field(kw_only=True)
    run_child: RunChild = field(kw_only=True)
    parallel: int = field(kw_only=True)
    _problems: list[str] = field(default_factory=list, init=False)
    _lock: anyio.Lock = field(default_factory=anyio.Lock, init=False)
    _source_dialect: str = field(default="", init=False)

    async def _run(self) -> ItemResult:
        item, source = self.item, self.item.source
        assert isinstance(source, DatabaseSource)
        checkpoint = await self._checkpoint_to_resume()
        if checkpoint is not None and checkpoint.finished:
            self._checkpoint = checkpoint
            return await self._end(Outcome.SKIPPED, None)
        destination = self.schema_destination
        dialect = destination.capabilities.dialect
        target_schema = item.target.schema
        catalog = await self._retry(lambda: self.catalogs.catalog(item))
        self._source_dialect = catalog.dialect
        tables = chosen_tables(catalog, source)
        if not tables:
            raise ConfigError(
                f"item '{item.name}': no table of {source.database.text} to copy "
                f"({len(catalog.tables)} table(s) there, none left by INCLUDING/EXCLUDING and "
                "the plan's other items)"
            )
        wanted = [v.name for v in catalog.views if any(like(p, v.name) for p in source.views)]
        catalog = dataclasses.replace(
            catalog, tables=tuple(t for t in catalog.tables if t.name in tables)
        )
        limit = destination.capabilities.max_identifier_length
        names, warnings = ddl.target_names(catalog, limit)
        source_catalog = catalog
        catalog, column_warnings = fit_columns(cast_catalog(catalog, item.options.casts), limit)
        for warning in (*warnings, *column_warnings):
            self.bus.publish(Notice(item.name, warning))

        fresh = checkpoint is None
        self._checkpoint = dataclasses.replace(checkpoint or self._fresh(), run_id=self.run_id)
        await self._record(ItemState.WORKING)
        if fresh:
            # a new load of tables that an earlier run keyed: its foreign keys would refuse the
            # TRUNCATE of MODE full; they are made again once the data is in
            await self._apply("drop", ddl.drop_foreign_keys(catalog, target_schema, dialect, names))

        limiter = anyio.CapacityLimiter(max(1, self.parallel))

        async def copy(table: TableInfo) -> None:
            async with limiter:
                if self._stopping:
                    return
                try:
                    await copy_one(table)
                except StratumError as exc:
                    name = f"{item.name}/{table.name}"
                    self.bus.publish(ErrorOccurred(name, str(exc), False))
                    if any(r.item == name for r in self.children):
                        self._problems.append(f"{table.name}: {exc}")
                    else:
                        failed = ItemResult(name, Outcome.FAILED, Totals(), 0.0, str(exc))
                        self.children.append(failed)
                    if self._stops_on_error():
                        self.stop()

        async def copy_one(table: TableInfo) -> None:
            await self._apply(
                f"before:{table.name}", ddl.before_data(catalog, table, target_schema, dialect)
            )
            child = self._child(source_catalog.table(table.name), catalog.table(table.name), names)
            # an upsert needs the key to conflict on before the first row
            keys_after = child.options.mode is not Mode.UPSERT
            result = await self.run_child(child, table.name, keys_after)
            self.children.append(result)
            if result.outcome is Outcome.FAILED and self._stops_on_error():
                self.stop()
            if result.outcome in (Outcome.FINISHED, Outcome.SKIPPED):
                await self._apply(
                    f"after:{table.name}",
                    ddl.after_data(table, target_schema, dialect, names, catalog=catalog),
                )

        order = [t for t in ddl.table_order(catalog) if t in tables]
        async with anyio.create_task_group() as tg:
            for name in order:
                tg.start_soon(copy, catalog.table(name))

        verdict = self._verdict(len(order))
        if verdict is not None:
            outcome, message = verdict
            if self._problems:
                outcome, message = Outcome.FAILED, "; ".join([message, *self._problems])
            return await self._end(outcome, message)
        await self._apply("foreign_keys", ddl.foreign_keys(catalog, target_schema, dialect, names))
        if wanted:
            await self._apply("views", ddl.views(catalog, wanted, target_schema, dialect, names))
        if self._problems:
            return await self._end(Outcome.FAILED, "; ".join(self._problems))
        skipped = not fresh and all(r.outcome is Outcome.SKIPPED for r in self.children)
        return await self._finish(skipped=skipped)

    def _child(self, table: TableInfo, fitted: TableInfo, names: dict[str, str]) -> PlanItem:
        """The table's copy: `table` as the source has it, `fitted` with the names the target
        can take (columns too long for it are renamed through COLUMNS)."""
        item = self.item
        assert isinstance(item.source, DatabaseSource)
        options = item.options
        renamed = [(c.name, f.name) for c, f in zip(table.columns, fitted.columns, strict=True)]
        if any(source != target for source, target in renamed):
            columns = tuple(ColumnMap(source, target) for source, target in renamed)
            options = dataclasses.replace(options, columns=columns)
        implicit = _plain_types(table, options.casts) if self._source_dialect == "postgres" else ()
        if implicit:
            options = dataclasses.replace(options, casts=(*options.casts, *implicit))
        if options.mode is Mode.UPSERT:
            if not table.primary_key:
                raise ConfigError(
                    f"item '{item.name}': MODE upsert needs a primary key to upsert on, and "
                    f"table {table.name!r} has none (EXCLUDE it, or use MODE full or append)"
                )
            options = dataclasses.replace(options, key=fitted.primary_key)
        database = item.source.database
        connection = database.connection
        return PlanItem(
            name=f"{item.name}/{table.name}",
            kind=ItemKind.TABLE_COPY,
            source=TableSource(TableRef(connection, database.schema, table.name)),
            target=TableRef(item.target.connection, item.target.schema, names[table.name]),
            options=options,
            depends_on=(),
            hash=child_hash(item, table),
            line=item.line,
        )

    def _stops_on_error(self) -> bool:
        return self.item.options.on_error in (None, OnError.STOP)

    async def _apply(self, step: str, statements: ddl.Ddl) -> None:
        """One step: its statements and the checkpoint that records it, together. A step that
        fails is retried statement by statement, so everything that can be applied is; what
        cannot is reported (the item fails) and tried again by the next run. What the step
        leaves out (`statements.warnings`) is told once, when it runs."""
        async with self._lock:
            if step in self._current().steps:
                return
            for warning in statements.warnings:
                self.bus.publish(Notice(self.item.name, warning))
            recorded = dataclasses.replace(self._current(), steps=(*self._current().steps, step))
            if not statements:
                self._checkpoint = recorded  # saved with the next step that has statements
                return
            destination = self.schema_destination
            try:
                await self._retry(lambda: destination.apply_ddl(statements, recorded))
            except StratumError:
                failed = [problem for s in statements if (problem := await self._apply_one(s))]
                if failed:
                    self._problems.extend(failed)
                    for problem in failed:
                        self.bus.publish(ErrorOccurred(self.item.name, problem, False))
                    return
                await self._retry(lambda: destination.save_checkpoint(recorded))
            self._checkpoint = recorded

    async def _apply_one(self, statement: ddl.Statement) -> str | None:
        """Apply one statement on its own; what went wrong, or None."""
        try:
            await self._retry(lambda: self.schema_destination.apply_ddl([statement], None))
        except StratumError as exc:
            return str(exc)  # it names the statement (`what`)
        return None
