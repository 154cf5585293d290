"""The executor: runs a plan's items in dependency order, up to `parallel` at once.

    MigrationExecutor.run()
      open the state store, take the plan's writer lock, record the run
      for each selected item (a task each):  wait for its dependencies -> limiter slot
          -> ItemRun (producer/consumer pipeline) -> result
      a failed item stops the whole run when its ON ERROR is stop (the others drain and pause)
      SIGINT/SIGTERM: stop reading, drain what is queued, checkpoint, exit (5 s at most);
      a second signal cancels at once (each batch is one transaction: still consistent)

Exit codes: 0 every item finished or had nothing to do; 4 an item failed or was not run; 5
interrupted (resumable: run the same command again). A plan already being migrated by another
process is refused before anything starts (StateLocked, exit 6 in the CLI).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from smql import ItemKind, OnError
from stratum.connectors.base import Destination, SchemaDestination, SqlDestination
from stratum.connectors.registry import ConnectorFactory, Connectors
from stratum.errors import ConfigError, StratumError
from stratum.plan.model import MigrationPlan, PlanItem
from stratum.resilience import CircuitBreaker, RetryPolicy, call_with_retry
from stratum.runtime.events import (
    ErrorOccurred,
    EventBus,
    ItemFinished,
    MigrationCompleted,
    MigrationStarted,
    Totals,
)
from stratum.runtime.pipeline import Control, ItemResult, ItemRun, Outcome
from stratum.runtime.rejects import RejectFile, reject_path
from stratum.state import RunRecord, StateStore

if TYPE_CHECKING:
    from stratum.runtime.fanout import FanOutRun
    from stratum.runtime.partitions import Bounds

EXIT_OK = 0
EXIT_FAILED = 4
EXIT_INTERRUPTED = 5
EXIT_LOCKED = 6
DRAIN_SECONDS = 4.5  # a stop must end within 5 s
#: Items that run as SQL inside their target's database (runtime/stages.py).
SQL_ITEMS = frozenset({ItemKind.STAGE, ItemKind.FEATURE_TABLE, ItemKind.DATASET})


@dataclass(frozen=True)
class RunOptions:
    state_dir: Path
    items: tuple[str, ...] = ()  # only these items (all when empty)
    restart: bool = False  # start the selected items over
    reject_dir: Path | None = None  # default: <state env>/rejects
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    handle_signals: bool = True


@dataclass
class RunSummary:
    run_id: str
    plan_hash: str
    results: list[ItemResult]
    status: str
    exit_code: int
    elapsed: float


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


class MigrationExecutor:
    def __init__(
        self,
        plan: MigrationPlan,
        options: RunOptions,
        bus: EventBus | None = None,
        connectors: ConnectorFactory | None = None,
    ) -> None:
        self.plan = plan
        self.options = options
        self.bus = bus or EventBus()
        self.plan_path = Path(plan.path).resolve()
        base_dir = self.plan_path.parent
        self.connectors: ConnectorFactory = connectors or Connectors(plan, base_dir, options.env)
        self.run_id = new_run_id()
        self._runs: dict[str, ItemRun] = {}
        self._parents: dict[str, FanOutRun] = {}
        self._children: list[ItemResult] = []  # the table copies of MIGRATE DATABASE items
        self._stopping = False
        self._interrupted = False

    def selected(self) -> list[PlanItem]:
        wanted = self.options.items
        if not wanted:
            return list(self.plan.items)
        names = {item.name for item in self.plan.items}
        unknown = [name for name in wanted if name not in names]
        if unknown:
            raise ConfigError(
                f"no item named {', '.join(repr(n) for n in unknown)} in {self.plan.path}; "
                f"items are {', '.join(sorted(names))}"
            )
        return [item for item in self.plan.items if item.name in wanted]

    async def run(self) -> RunSummary:
        items = self.selected()
        started = time.monotonic()
        store = await anyio.to_thread.run_sync(
            StateStore.open, self.options.state_dir, self.plan_path
        )
        try:
            store.lock()
            reject_dir = self.options.reject_dir or store.path / "rejects"
            run = RunRecord(
                run_id=self.run_id,
                plan_hash=self.plan.hash,
                plan_path=str(self.plan_path),
                pid=os.getpid(),
                started_at=time.time(),
                ended_at=None,
                status="running",
                exit_code=None,
            )
            await anyio.to_thread.run_sync(store.put_run, run)
            self.bus.publish(
                MigrationStarted(self.run_id, self.plan.hash, tuple(i.name for i in items))
            )
            results = await self._run_items(items, store, reject_dir)
            exit_code, status = self._verdict(results)
            elapsed = time.monotonic() - started
            ended = dataclasses.replace(
                run, ended_at=time.time(), status=status, exit_code=exit_code
            )
            await anyio.to_thread.run_sync(store.put_run, ended)
            self.bus.publish(MigrationCompleted(self.run_id, status, exit_code, elapsed))
            return RunSummary(self.run_id, self.plan.hash, results, status, exit_code, elapsed)
        finally:
            store.close()

    def _verdict(self, results: list[ItemResult]) -> tuple[int, str]:
        if self._interrupted:
            return EXIT_INTERRUPTED, "interrupted"
        if any(r.outcome in (Outcome.FAILED, Outcome.PAUSED) for r in results):
            return EXIT_FAILED, "failed"
        return EXIT_OK, "completed"

    async def _run_items(
        self, items: list[PlanItem], store: StateStore, reject_dir: Path
    ) -> list[ItemResult]:
        selected = {item.name for item in items}
        done = {item.name: anyio.Event() for item in items}
        results: dict[str, ItemResult] = {}
        limiter = anyio.CapacityLimiter(max(1, self.plan.settings.parallel))

        async def run_one(item: PlanItem) -> None:
            try:
                for dependency in item.depends_on:
                    if dependency.item in selected:
                        await done[dependency.item].wait()
                        previous = results[dependency.item]
                        if previous.outcome not in (Outcome.FINISHED, Outcome.SKIPPED):
                            results[item.name] = self._not_run(
                                item,
                                f"not run: it needs '{dependency.item}', which "
                                f"{previous.outcome.value}",
                            )
                            return
                async with limiter:
                    if self._stopping:
                        results[item.name] = self._not_run(item, "not run: the run was stopped")
                        return
                    if item.kind is ItemKind.DATABASE_COPY:
                        results[item.name] = await self._run_database(item, store, reject_dir)
                    elif item.kind in SQL_ITEMS:
                        changed = any(
                            results[d.item].outcome is Outcome.FINISHED
                            and results[d.item].totals.rows_written > 0
                            for d in item.depends_on
                            if d.item in results
                        )
                        results[item.name] = await self._run_stage(
                            item, store, reject_dir, input_changed=changed
                        )
                    else:
                        results[item.name] = await self._run_item(item, store, reject_dir)
                    if results[item.name].outcome is Outcome.FAILED and (
                        item.options.on_error in (None, OnError.STOP)
                    ):
                        self.stop()
            finally:
                done[item.name].set()

        async with anyio.create_task_group() as tg:
            if self.options.handle_signals:
                tg.start_soon(self._watch_signals, tg)
            async with anyio.create_task_group() as items_tg:
                for item in items:
                    items_tg.start_soon(run_one, item)
            tg.cancel_scope.cancel()  # stop watching signals
        return [*self._children, *(results[item.name] for item in items if item.name in results)]

    async def _run_database(
        self, item: PlanItem, store: StateStore, reject_dir: Path
    ) -> ItemResult:
        """A MIGRATE DATABASE item: its tables run as child items (see runtime/database.py)."""
        from stratum.runtime.database import CatalogReader, DatabaseRun  # noqa: PLC0415

        started = time.monotonic()
        try:
            destination = self.connectors.destination(item)
            if not isinstance(self.connectors, CatalogReader) or not isinstance(
                destination, SchemaDestination
            ):
                raise ConfigError(
                    f"item '{item.name}': its destination cannot create a database's schema"
                )
            await self.open_destination(destination)
        except StratumError as exc:
            return self._failed_to_start(item, exc, started)

        async def run_child(child: PlanItem, table: str, keys_after: bool) -> ItemResult:
            return await self._run_item(
                child, store, reject_dir, source_table=table, keys_after=keys_after
            )

        run = DatabaseRun(
            plan=self.plan,
            item=item,
            run_id=self.run_id,
            destination=destination,
            store=store,
            bus=self.bus,
            policy=self.options.policy,
            restart=self.options.restart,
            catalogs=self.connectors,
            schema_destination=destination,
            run_child=run_child,
            parallel=self.plan.settings.parallel,
        )
        return await self._run_parent(run, destination)

    async def _run_stage(
        self, item: PlanItem, store: StateStore, reject_dir: Path, *, input_changed: bool
    ) -> ItemResult:
        """A STAGE item: SQL inside its database, after streaming its input in when it lives
        on another connection (see runtime/stages.py)."""
        from stratum.runtime.stages import StageRun  # noqa: PLC0415

        started = time.monotonic()
        try:
            destination = self.connectors.destination(item)
            if not isinstance(destination, SqlDestination):
                raise ConfigError(
                    f"item '{item.name}': a {item.kind.value.replace('_', ' ')} runs as SQL "
                    f"inside its target's database, which connection "
                    f"'{item.target.connection}' cannot do; use PostgreSQL or DuckDB"
                )
            await self.open_destination(destination)
        except StratumError as exc:
            return self._failed_to_start(item, exc, started)

        async def run_child(child: PlanItem) -> ItemResult:
            return await self._run_item(child, store, reject_dir)

        run = StageRun(
            plan=self.plan,
            item=item,
            run_id=self.run_id,
            destination=destination,
            store=store,
            bus=self.bus,
            policy=self.options.policy,
            restart=self.options.restart,
            sql_destination=destination,
            connections=tuple(c.name for c in self.plan.connections),
            run_child=run_child,
            input_changed=input_changed,
        )
        return await self._run_parent(run, destination)

    async def _run_partitioned(
        self,
        item: PlanItem,
        store: StateStore,
        reject_dir: Path,
        *,
        source_table: str | None,
        keys_after: bool,
    ) -> ItemResult:
        """An item with PARTITIONS n: n key ranges as child items (see runtime/partitions.py)."""
        from stratum.runtime.partitions import PartitionedRun  # noqa: PLC0415

        started = time.monotonic()
        try:
            destination = self.connectors.destination(item)
            await self.open_destination(destination)
        except StratumError as exc:
            return self._failed_to_start(item, exc, started)

        async def run_part(child: PlanItem, bounds: Bounds) -> ItemResult:
            return await self._run_item(
                child,
                store,
                reject_dir,
                source_table=source_table,
                keys_after=keys_after,
                bounds=bounds,
            )

        async def run_whole(whole: PlanItem) -> ItemResult:
            options = dataclasses.replace(whole.options, partitions=None)
            return await self._run_item(
                dataclasses.replace(whole, options=options),
                store,
                reject_dir,
                source_table=source_table,
                keys_after=keys_after,
            )

        run = PartitionedRun(
            plan=self.plan,
            item=item,
            run_id=self.run_id,
            destination=destination,
            store=store,
            bus=self.bus,
            policy=self.options.policy,
            restart=self.options.restart,
            make_source=self.connectors.source,
            run_part=run_part,
            # a table of a database copy without a key is read whole; an item that asked
            # for PARTITIONS itself is told why it cannot have them
            run_whole=run_whole if source_table is not None else None,
        )
        return await self._run_parent(run, destination)

    async def _run_parent(self, run: FanOutRun, destination: Destination) -> ItemResult:
        """Run an item that fans out (stop() reaches it while it runs); its children's results
        join the summary, and its destination is closed whatever happens."""
        name = run.item.name
        self._parents[name] = run
        try:
            return await run.run()
        finally:
            self._children.extend(run.children)
            del self._parents[name]
            with anyio.CancelScope(shield=True):
                await destination.close()

    async def open_destination(self, destination: Destination) -> None:
        """Open a destination, a transient fault (a reset, a terminated backend) retried with
        the run's waits, as every later call is."""
        breaker = CircuitBreaker(
            threshold=self.options.policy.breaker_threshold,
            cooldown=self.options.policy.breaker_cooldown,
        )
        await call_with_retry(destination.open, policy=self.options.policy, breaker=breaker)

    def _failed_to_start(self, item: PlanItem, exc: StratumError, started: float) -> ItemResult:
        self.bus.publish(ErrorOccurred(item.name, str(exc), False))
        result = ItemResult(
            item.name, Outcome.FAILED, Totals(), time.monotonic() - started, str(exc)
        )
        self.bus.publish(
            ItemFinished(
                item.name, result.outcome.value, result.totals, result.elapsed, result.message
            )
        )
        return result

    async def _run_item(
        self,
        item: PlanItem,
        store: StateStore,
        reject_dir: Path,
        *,
        source_table: str | None = None,
        keys_after: bool = False,
        bounds: Bounds | None = None,
    ) -> ItemResult:
        if (item.options.partitions or 1) > 1 and bounds is None:
            return await self._run_partitioned(
                item, store, reject_dir, source_table=source_table, keys_after=keys_after
            )
        started = time.monotonic()
        try:
            source = (
                self.connectors.source(item)
                if bounds is None
                else self.connectors.source(item, bounds=bounds)
            )
            destination = self.connectors.destination(item)
            await self.open_destination(destination)
        except StratumError as exc:
            return self._failed_to_start(item, exc, started)
        run = ItemRun(
            plan=self.plan,
            item=item,
            run_id=self.run_id,
            source=source,
            destination=destination,
            store=store,
            bus=self.bus,
            policy=self.options.policy,
            rejects=RejectFile(reject_path(reject_dir, item.name)),
            queue_size=self.plan.settings.queue_size,
            restart=self.options.restart,
            source_table=source_table,
            keys_after=keys_after,
        )
        self._runs[item.name] = run
        try:
            result = await run.run()
        finally:
            del self._runs[item.name]
            with anyio.CancelScope(shield=True):
                await destination.close()
        self.bus.publish(
            ItemFinished(
                item.name, result.outcome.value, result.totals, result.elapsed, result.message
            )
        )
        return result

    def _not_run(self, item: PlanItem, message: str) -> ItemResult:
        result = ItemResult(item.name, Outcome.FAILED, Totals(), 0.0, message)
        self.bus.publish(ItemFinished(item.name, result.outcome.value, result.totals, 0.0, message))
        return result

    # --- stopping -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop reading everywhere; what is queued is written and checkpointed."""
        self._stopping = True
        for parent in list(self._parents.values()):
            parent.stop()
        for run in list(self._runs.values()):
            run.send(Control.STOP)

    def pause(self, item: str) -> None:
        self._runs[item].send(Control.PAUSE)

    def resume(self, item: str) -> None:
        self._runs[item].send(Control.RESUME)

    async def _watch_signals(self, tg: TaskGroup) -> None:
        """The first SIGINT/SIGTERM stops reading and drains (at most DRAIN_SECONDS); the
        second cancels everything at once. Each batch is one transaction, so both are safe."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if self._interrupted:
                    tg.cancel_scope.cancel()
                    return
                self._interrupted = True
                self.stop()
                tg.start_soon(self._drain_deadline, tg)

    async def _drain_deadline(self, tg: TaskGroup) -> None:
        await anyio.sleep(DRAIN_SECONDS)
        tg.cancel_scope.cancel()


async def preview(executor: MigrationExecutor) -> list[tuple[str, str]]:
    """What `migrate` would do for each selected item, from the destinations' checkpoints;
    writes nothing and takes no lock (`migrate --dry-run`)."""
    actions = []
    for item in executor.selected():
        try:
            if item.kind is not ItemKind.DATABASE_COPY and item.kind not in SQL_ITEMS:
                executor.connectors.source(item)  # a database's tables are found when it runs
            destination = executor.connectors.destination(item)
            await executor.open_destination(destination)
            try:
                checkpoint = await destination.checkpoint(item.name)
            finally:
                await destination.close()
        except StratumError as exc:
            actions.append((item.name, f"cannot run: {exc}"))
            continue
        if executor.options.restart:
            action = "start over (--restart): its checkpoint is dropped and the target reloaded"
        elif checkpoint is None:
            action = f"start: load into {item.target.text} ({item.options.mode.value})"
        elif checkpoint.item_hash != item.hash:
            action = (
                f"refuse to resume: its definition changed since run {checkpoint.run_id} "
                "(use --restart)"
            )
        elif checkpoint.finished and item.options.mode.value != "incremental":
            action = f"nothing to do: finished by run {checkpoint.run_id}"
        else:
            action = (
                f"resume after {checkpoint.cursor!r}: {checkpoint.rows_written} rows committed "
                f"by run {checkpoint.run_id}"
            )
        actions.append((item.name, action))
    return actions
