"""Medallion stages (`STAGE`) as migration items: run as SQL inside the database that holds
their input and target, or, when the input lives on another connection, after streaming it in.

    StageRun.run()
      checkpoint (the destination's row for the item): finished and MODE full -> skipped
      input on another connection -> child item "<item>/input": the input copied by the
        ordinary pipeline into stratum.stage_input_<hash> on the stage's own connection
        (checkpointed and resumable like any copy), then read from there
      one transaction: the stage's statements (`stratum.stages.stage_sql`), its row in
        stratum.stage_batches, its checkpoint -- a kill at any point leaves all or nothing,
        and the next run does the batch again

A finished MODE full stage is skipped on the next run, unless an item it depends on wrote rows
in this run (a reloaded input): then it runs again, as a new batch.

The batch id counts the item's batches (the checkpoint's `batches`): each run of a MODE full
stage is one, each run of a MODE incremental stage that finds new input rows is one. An
incremental stage's checkpoint cursor is [<the CURSOR's high-water mark, as text>].
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio

from smql import ExpectAction, ItemKind, Mode
from stratum import failpoints
from stratum.connectors.base import Checkpoint, Column, SqlDestination, SqlSession
from stratum.connectors.sql import CHECKPOINT_SCHEMA, column_type, quote
from stratum.errors import ConfigError, DestinationError
from stratum.plan.model import (
    DatasetSource,
    FeatureSource,
    PlanItem,
    StageSource,
    TableRef,
    TableSource,
)
from stratum.runtime.events import RuleCount, StageFinished, StageReport, Totals
from stratum.runtime.fanout import FanOutRun, add_totals
from stratum.runtime.pipeline import ItemResult, Outcome, totals_of
from stratum.stages.features_sql import JoinedFeatures, dataset_select, feature_select
from stratum.stages.stage_sql import query_sql, stage_sql
from stratum.state import ItemState

__all__ = ["BOOKKEEPING_TABLE", "StageFailed", "StageRun", "input_copy"]

#: The bookkeeping table, in the checkpoint schema of the stage's database.
BOOKKEEPING_TABLE = "stage_batches"
#: How many failing rows a FAIL rule's message shows.
_SHOWN_ROWS = 3

RunChild = Callable[[PlanItem], Awaitable[ItemResult]]

_BOOKKEEPING_COLUMNS = (
    ("item", "text"),
    ("batch", "bigint"),
    ("run_id", "text"),
    ("kind", "text"),
    ("layer", "text"),
    ("source", "text"),
    ("runs", "text"),
    ("started_at", "timestamp"),
    ("finished_at", "timestamp"),
    ("records_in", "bigint"),
    ("records_out", "bigint"),
    ("deduplicated", "bigint"),
    ("filtered", "bigint"),
    ("dropped", "bigint"),
    ("quarantined", "bigint"),
    ("flagged", "bigint"),
    ("rules", "text"),
    ("checksum", "text"),
    ("seconds", "double precision"),
    ("success_rate", "double precision"),
    ("rows_per_second", "double precision"),
    ("cursor_from", "text"),
    ("cursor_to", "text"),
)


class StageFailed(DestinationError):
    """A FAIL rule failed: the stage's transaction is rolled back, nothing is written."""


def input_copy(item: PlanItem) -> PlanItem | None:
    """The child item that streams a stage's input in from another connection: an ordinary
    table copy into `stratum.stage_input_<hash>` on the stage's own connection (MODE full, or
    MODE incremental on the stage's CURSOR); None when the input is on the same connection."""
    read = input_of(item)
    if read is None or read.connection == item.target.connection:
        return None
    digest = hashlib.sha256(f"{item.name}\0{item.hash}".encode()).hexdigest()
    incremental = item.options.mode is Mode.INCREMENTAL
    options = dataclasses.replace(
        item.options,
        mode=Mode.INCREMENTAL if incremental else Mode.FULL,
        key=(),
        cursor=item.options.cursor if incremental else None,
        columns=(),
        compute=(),
        where=None,
        casts=(),
        partitions=None,
    )
    return PlanItem(
        name=f"{item.name}/input",
        kind=ItemKind.TABLE_COPY,
        source=TableSource(read),
        target=staging_ref(item),
        options=options,
        depends_on=(),
        hash=hashlib.sha256(f"input\0{digest}".encode()).hexdigest(),
        line=item.line,
    )


def input_of(item: PlanItem) -> TableRef | None:
    """The one table a stage or feature table reads, a dataset's spine (None: a query's
    tables)."""
    source = item.source
    if isinstance(source, StageSource | FeatureSource):
        return source.input
    if isinstance(source, DatasetSource):
        return source.spine
    return None


def staging_ref(item: PlanItem) -> TableRef:
    digest = hashlib.sha256(item.name.encode()).hexdigest()[:16]
    return TableRef(item.target.connection, CHECKPOINT_SCHEMA, f"stage_input_{digest}")


@dataclass
class StageRun(FanOutRun):
    """One STAGE item (see the module docstring)."""

    sql_destination: SqlDestination = field(kw_only=True)
    connections: tuple[str, ...] = field(kw_only=True)
    run_child: RunChild = field(kw_only=True)
    # an item it depends on wrote rows in this run: a finished MODE full stage runs again
    input_changed: bool = field(default=False, kw_only=True)
    _own: Totals = field(default_factory=Totals, init=False)
    _stage: StageReport | None = field(default=None, init=False)

    def _totals(self) -> Totals:
        return add_totals(
            [*self.children, ItemResult(self.item.name, Outcome.FINISHED, self._own, 0)]
        )

    def _report(self) -> StageReport | None:
        return self._stage

    async def _run(self) -> ItemResult:
        item = self.item
        checkpoint = await self._checkpoint_to_resume()
        incremental = item.options.mode is Mode.INCREMENTAL
        if checkpoint is not None and checkpoint.finished and not incremental:
            if not self.input_changed:
                self._checkpoint = checkpoint
                self._own = totals_of(checkpoint)
                return await self._end(Outcome.SKIPPED, None)
            checkpoint = dataclasses.replace(checkpoint, finished=False)
        checkpoint = dataclasses.replace(checkpoint or self._fresh(), run_id=self.run_id)
        self._checkpoint = checkpoint
        await self._record(ItemState.WORKING)
        child = input_copy(item)
        input_ref = None
        if child is not None:
            result = await self.run_child(child)
            self.children.append(result)
            if result.outcome not in (Outcome.FINISHED, Outcome.SKIPPED):
                outcome = Outcome.PAUSED if result.outcome is Outcome.PAUSED else Outcome.FAILED
                return await self._end(
                    outcome, f"its input was not streamed in: {result.message or result.outcome}"
                )
            input_ref = child.target
        await self._retry(self._ensure_bookkeeping)
        started, clock = time.time(), time.monotonic()
        report, final = await self._retry(lambda: self._execute(input_ref, started, clock))
        failpoints.hit("after_commit")  # committed, the state record not yet written
        self._stage = report
        self._checkpoint = final
        self._own = totals_of(final)
        self.bus.publish(StageFinished(item.name, report))
        return await self._end(Outcome.FINISHED, None)

    # --- the statements ---------------------------------------------------------------------

    async def _ensure_bookkeeping(self) -> None:
        destination = self.sql_destination
        dialect = destination.capabilities.dialect
        table = destination.relation(
            TableRef(self.item.target.connection, CHECKPOINT_SCHEMA, BOOKKEEPING_TABLE)
        )
        columns = ", ".join(
            f"{quote(name, dialect)} {column_type(type_, dialect, name)}"
            for name, type_ in _BOOKKEEPING_COLUMNS
        )
        sql = (
            f"CREATE TABLE IF NOT EXISTS {table} ({columns}, "
            f"PRIMARY KEY ({quote('item', dialect)}, {quote('batch', dialect)}))"
        )

        schema = self._schema_sql(self.item.target)

        async def create(session: SqlSession) -> None:
            await session.execute(sql)
            await session.execute(schema)

        # stages running at once would race to create it and their target schemas
        # (PostgreSQL's CREATE ... IF NOT EXISTS is not safe against a concurrent one): one at a
        # time in this process, before the stage's own transaction
        async with _bookkeeping_lock():
            await destination.in_transaction("creating stratum.stage_batches", create)

    async def _execute(
        self, input_ref: TableRef | None, started: float, clock: float
    ) -> tuple[StageReport, Checkpoint]:
        source = self.item.source
        if isinstance(source, FeatureSource):
            return await self._feature_table(source, input_ref, clock, started)
        if isinstance(source, DatasetSource):
            return await self._dataset(source, input_ref, clock, started)
        assert isinstance(source, StageSource)
        if source.query is not None:
            return await self._query_stage(source, started, clock)
        return await self._from_stage(source, input_ref, started, clock)

    async def _feature_table(
        self, source: FeatureSource, input_ref: TableRef | None, clock: float, started: float
    ) -> tuple[StageReport, Checkpoint]:
        item, destination = self.item, self.sql_destination
        read_ref = input_ref or source.input
        columns = await self._columns(read_ref, f"its input {source.input.text}")
        input_table = destination.relation(read_ref)
        select = feature_select(
            input_table=input_table,
            columns=[c.name for c in columns],
            keys=source.keys,
            timestamp=source.timestamp,
            features=source.features,
            where=item.options.where,
            dialect=destination.capabilities.dialect,
        )
        count = f"SELECT COUNT(*) FROM {input_table}"
        streamed = input_ref is not None
        return await self._materialize(
            "features", select, count, streamed=streamed, clock=clock, started=started
        )

    async def _dataset(
        self, source: DatasetSource, input_ref: TableRef | None, clock: float, started: float
    ) -> tuple[StageReport, Checkpoint]:
        item, destination = self.item, self.sql_destination
        spine_ref = input_ref or source.spine
        columns = await self._columns(spine_ref, f"its spine {source.spine.text}")
        tables = []
        for joined in source.features:
            if joined.table.connection != item.target.connection:
                raise ConfigError(
                    f"item '{item.name}': the feature table {joined.table.text} is on "
                    f"connection '{joined.table.connection}'; a dataset joins feature tables "
                    f"inside its own connection, '{item.target.connection}'"
                )
            tables.append(
                JoinedFeatures(
                    table=destination.relation(joined.table),
                    keys=joined.keys,
                    timestamp=joined.timestamp,
                    features=joined.features,
                )
            )
        spine = destination.relation(spine_ref)
        select = dataset_select(
            spine_table=spine,
            spine_columns=[c.name for c in columns],
            spine_timestamp=source.timestamp,
            tables=tables,
            dialect=destination.capabilities.dialect,
        )
        count = f"SELECT COUNT(*) FROM {spine}"
        streamed = input_ref is not None
        return await self._materialize(
            "dataset", select, count, streamed=streamed, clock=clock, started=started
        )

    async def _materialize(
        self,
        kind: str,
        select: str,
        count_input: str | None,
        *,
        streamed: bool,
        clock: float,
        started: float,
    ) -> tuple[StageReport, Checkpoint]:
        """`CREATE TABLE target AS select` in place of the old target, with its bookkeeping row
        and checkpoint, in one transaction (a feature table, a dataset, a gold query)."""
        item, destination = self.item, self.sql_destination
        target = destination.relation(item.target)
        checkpoint = self._current()
        batch = checkpoint.batches + 1

        async def work_in(session: SqlSession) -> tuple[StageReport, Checkpoint]:
            read = None
            if count_input is not None:
                read = int((await session.fetch(count_input))[0][0])
            await session.execute(f"DROP TABLE IF EXISTS {target}")
            await session.execute(f"CREATE TABLE {target} AS {select}")
            written = int((await session.fetch(f"SELECT COUNT(*) FROM {target}"))[0][0])
            report = StageReport(
                kind=kind,
                layer=_layer(item.target),
                batch=batch,
                runs=self._runs(streamed),
                records_in=read,
                records_out=written,
                seconds=time.monotonic() - clock,
            )
            final = dataclasses.replace(
                checkpoint,
                batches=batch,
                rows_read=read or 0,
                rows_written=written,
                finished=True,
            )
            await self._book(session, report, started, None, None)
            await session.save_checkpoint(final)
            failpoints.hit("before_commit")
            return report, final

        return await destination.in_transaction(f"running {kind} item {item.name}", work_in)

    async def _from_stage(
        self, source: StageSource, input_ref: TableRef | None, started: float, clock: float
    ) -> tuple[StageReport, Checkpoint]:
        item, destination = self.item, self.sql_destination
        dialect = destination.capabilities.dialect
        assert source.input is not None
        read_ref = input_ref or source.input
        columns = await self._columns(read_ref, f"its input {source.input.text}")
        input_relation = destination.relation(read_ref)
        cursor_type = None
        if item.options.mode is Mode.INCREMENTAL and item.options.cursor is not None:
            cursor_type = await self._cursor_type(input_relation, columns, item.options.cursor)
        sql = stage_sql(
            item,
            source,
            columns=columns,
            input_relation=input_relation,
            dialect=dialect,
            cursor_type=cursor_type,
        )
        runs = self._runs(input_ref is not None)
        checkpoint = self._current()
        high = checkpoint.cursor[0] if isinstance(checkpoint.cursor, list) else None
        batch = checkpoint.batches + 1
        token = hashlib.sha256(item.name.encode()).hexdigest()[:12]
        deduped_name, work_name = f"stratum_stage_{token}_d", f"stratum_stage_{token}_w"
        deduped, work = destination.temporary(deduped_name), destination.temporary(work_name)
        target = destination.relation(item.target)
        quarantine_ref = dataclasses.replace(item.target, table=f"{item.target.table}_quarantine")
        quarantine = destination.relation(quarantine_ref)

        async def work_in(session: SqlSession) -> tuple[StageReport, Checkpoint]:
            q = sql.q
            for name in (deduped, work):
                await session.execute(f"DROP TABLE IF EXISTS {name}")
            if high is not None and sql.read_after is not None:
                await session.execute(
                    f"CREATE TEMP TABLE {q(deduped_name)} AS {sql.read_after}", high
                )
            else:
                await session.execute(f"CREATE TEMP TABLE {q(deduped_name)} AS {sql.read}")
            counted = (await session.fetch(sql.counts_read(deduped)))[0]
            read, winners = int(counted[0]), int(counted[1])
            new_high = counted[2] if sql.cursor else None
            if item.options.mode is Mode.INCREMENTAL and read == 0:
                await session.execute(f"DROP TABLE {deduped}")
                final = dataclasses.replace(checkpoint, finished=True)
                await session.save_checkpoint(final)
                report = StageReport("stage", _layer(item.target), None, runs, 0, 0)
                return report, final
            await session.execute(f"CREATE TEMP TABLE {q(work_name)} AS {sql.work(deduped)}")
            numbers = [int(v) for v in (await session.fetch(sql.counts_rules(work)))[0]]
            shaped, per_rule = numbers[0], numbers[1 : 1 + len(sql.rules)]
            quarantined, dropped, flagged = numbers[1 + len(sql.rules) :]
            for rule, failed in zip(sql.rules, per_rule, strict=True):
                if rule.action is ExpectAction.FAIL and failed:
                    rows = await session.fetch(sql.failing(work, rule, _SHOWN_ROWS))
                    raise StageFailed(_fail_message(item, rule.label, failed, sql.outputs, rows))
            kept = shaped - quarantined - dropped
            if item.options.mode is Mode.INCREMENTAL:
                await session.execute(
                    f"CREATE TABLE IF NOT EXISTS {target} AS "
                    + sql.target_select(work, batch, empty=True)
                )
                await session.execute(sql.delete_replaced(target, work))
                await session.execute(
                    f"INSERT INTO {target} ({', '.join(q(n) for n in sql.target_columns())}) "
                    + sql.target_select(work, batch)
                )
            else:
                await session.execute(f"DROP TABLE IF EXISTS {target}")
                await session.execute(f"CREATE TABLE {target} AS " + sql.target_select(work, batch))
            if sql.quarantines:
                if item.options.mode is Mode.INCREMENTAL:
                    await session.execute(
                        f"CREATE TABLE IF NOT EXISTS {quarantine} AS "
                        + sql.quarantine_select(work, batch, empty=True)
                    )
                    await session.execute(
                        f"INSERT INTO {quarantine} "
                        f"({', '.join(q(n) for n in sql.quarantine_columns())}) "
                        + sql.quarantine_select(work, batch)
                    )
                else:
                    await session.execute(f"DROP TABLE IF EXISTS {quarantine}")
                    await session.execute(
                        f"CREATE TABLE {quarantine} AS " + sql.quarantine_select(work, batch)
                    )
            checksum = (await session.fetch(sql.checksum(work)))[0][0]
            report = StageReport(
                kind="stage",
                layer=_layer(item.target),
                batch=batch,
                runs=runs,
                records_in=read,
                records_out=kept,
                deduplicated=read - winners,
                filtered=winners - shaped,
                dropped=dropped,
                quarantined=quarantined,
                flagged=flagged,
                rules=tuple(
                    RuleCount(rule.label, rule.action.value, failed)
                    for rule, failed in zip(sql.rules, per_rule, strict=True)
                ),
                checksum=None if checksum is None else str(checksum),
                seconds=time.monotonic() - clock,
            )
            final = dataclasses.replace(
                checkpoint,
                cursor=[new_high] if sql.cursor else None,
                batches=batch,
                rows_read=checkpoint.rows_read + read,
                rows_written=checkpoint.rows_written + kept,
                rows_rejected=checkpoint.rows_rejected + quarantined,
                rows_filtered=checkpoint.rows_filtered
                + (read - winners)
                + (winners - shaped)
                + dropped,
                finished=True,
            )
            await self._book(session, report, started, high, new_high)
            await session.save_checkpoint(final)
            for name in (deduped, work):
                await session.execute(f"DROP TABLE {name}")
            failpoints.hit("before_commit")  # fault-injection tests: all sent, no COMMIT
            return report, final

        return await destination.in_transaction(f"running stage {item.name}", work_in)

    async def _query_stage(
        self, source: StageSource, started: float, clock: float
    ) -> tuple[StageReport, Checkpoint]:
        item, destination = self.item, self.sql_destination
        assert source.query is not None
        select = query_sql(
            source.query,
            dialect=destination.capabilities.dialect,
            home=item.target.connection,
            connections=self.connections,
            relation=destination.relation,
            label=f"item '{item.name}'",
        )
        return await self._materialize(
            "stage", select, None, streamed=False, clock=clock, started=started
        )

    # --- helpers ------------------------------------------------------------------------------

    async def _cursor_type(self, relation: str, columns: Sequence[Column], cursor: str) -> str:
        """The CURSOR column's type as the database spells it (to cast the high-water mark,
        kept as text, back to it)."""
        destination = self.sql_destination
        dialect = destination.capabilities.dialect
        name = next((c.name for c in columns if c.name.lower() == cursor.lower()), cursor)
        typeof = "typeof" if dialect == "duckdb" else "pg_typeof"
        sql = f"SELECT CAST({typeof}({quote(name, dialect)}) AS TEXT) FROM {relation} LIMIT 1"

        async def read(session: SqlSession) -> list[tuple[Any, ...]]:
            return await session.fetch(sql)

        rows = await destination.in_transaction(f"reading the type of CURSOR {cursor}", read)
        return str(rows[0][0]) if rows else "TEXT"

    async def _columns(self, ref: TableRef, what: str) -> Sequence[Column]:
        """The columns of a table the item reads (ConfigError naming `what` when it is not
        there)."""
        columns = await self._retry(lambda: self.sql_destination.columns(ref))
        if columns is None:
            raise ConfigError(f"item '{self.item.name}': {what} does not exist")
        return columns

    def _schema_sql(self, target: TableRef) -> str:
        """CREATE SCHEMA for the target's schema: its relation less the quoted table name (a
        name may hold a dot inside its quotes, so the relation is not split at dots)."""
        destination = self.sql_destination
        relation = destination.relation(target)
        table = "." + quote(target.table or "", destination.capabilities.dialect)
        if not relation.endswith(table) or relation == table[1:]:
            return "SELECT 1"
        return f"CREATE SCHEMA IF NOT EXISTS {relation[: -len(table)]}"

    def _runs(self, streamed: bool) -> str:
        item = self.item
        read = input_of(item)
        if streamed and read is not None:
            return f"streamed from {read.connection} into {item.target.connection}"
        return f"sql in {item.target.connection}"

    async def _book(
        self,
        session: SqlSession,
        report: StageReport,
        started: float,
        cursor_from: str | None,
        cursor_to: str | None,
    ) -> None:
        destination = self.sql_destination
        dialect = destination.capabilities.dialect
        table = destination.relation(
            TableRef(self.item.target.connection, CHECKPOINT_SCHEMA, BOOKKEEPING_TABLE)
        )
        read = input_of(self.item)
        read_from = read.text if read is not None else "query"
        rules = json.dumps(
            [{"rule": r.rule, "action": r.action, "failed": r.failed} for r in report.rules]
        )
        values: tuple[Any, ...] = (
            self.item.name,
            report.batch,
            self.run_id,
            report.kind,
            report.layer,
            read_from,
            report.runs,
            _utc(started),
            _utc(time.time()),
            report.records_in,
            report.records_out,
            report.deduplicated,
            report.filtered,
            report.dropped,
            report.quarantined,
            report.flagged,
            rules,
            report.checksum,
            report.seconds,
            report.success_rate,
            report.rows_per_second,
            cursor_from,
            None if cursor_to is None else str(cursor_to),
        )
        names = ", ".join(quote(name, dialect) for name, _ in _BOOKKEEPING_COLUMNS)
        params = ", ".join(f"${n}" for n in range(1, len(values) + 1))
        key = f"{quote('item', dialect)} = $1 AND {quote('batch', dialect)} = $2"
        await session.execute(f"DELETE FROM {table} WHERE {key}", self.item.name, report.batch)
        await session.execute(f"INSERT INTO {table} ({names}) VALUES ({params})", *values)


_LOCKS: list[anyio.Lock] = []


def _bookkeeping_lock() -> anyio.Lock:
    if not _LOCKS:
        _LOCKS.append(anyio.Lock())
    return _LOCKS[0]


def _layer(target: TableRef) -> str:
    return target.schema or "main"


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC).replace(tzinfo=None)


def _fail_message(
    item: PlanItem, rule: str, failed: int, outputs: Sequence[str], rows: list[tuple[Any, ...]]
) -> str:
    shown = "; ".join(
        ", ".join(f"{name}={value!r}" for name, value in zip(outputs, row, strict=False))
        for row in rows
    )
    return (
        f"item '{item.name}': EXPECT {rule} ELSE FAIL: {failed} row(s) fail it, so the stage "
        f"wrote nothing; the first: {shown}"
    )
