"""The plan as people read it (`stratum plan`) and as machines read it (`stratum plan --json`)."""

from __future__ import annotations

from typing import Any

from smql import Mode
from stratum.plan.canonical import to_data
from stratum.plan.model import (
    DatabaseSource,
    DatasetSource,
    FeatureSource,
    FileSource,
    MigrationPlan,
    PlanItem,
    QuerySource,
    StageSource,
    TableSource,
)

SHORT_HASH = 12
_KIND_WORDS = {
    "table_copy": "table copy",
    "database_copy": "database copy",
    "query_copy": "query copy",
    "file_load": "file load",
    "stage": "stage",
    "feature_table": "feature table",
    "dataset": "dataset",
}


def plan_to_json(plan: MigrationPlan) -> dict[str, Any]:
    return {
        "hash": plan.hash,
        "path": plan.path,
        "settings": to_data(plan.settings),
        "connections": [to_data(c) for c in plan.connections],
        "order": [item.name for item in plan.items],
        "items": [_item_json(item) for item in plan.items],
    }


def _item_json(item: PlanItem) -> dict[str, Any]:
    return {
        "name": item.name,
        "kind": item.kind.value,
        "hash": item.hash,
        "line": item.line,
        "depends_on": [to_data(d) for d in item.depends_on],
        "source": {"type": type(item.source).__name__, **to_data(item.source)},
        "target": to_data(item.target),
        "options": to_data(item.options),
    }


def plan_to_text(plan: MigrationPlan) -> str:
    lines = [
        f"plan {plan.hash[:SHORT_HASH]}  {plan.path}",
        f"  {len(plan.items)} item{'s' if len(plan.items) != 1 else ''}, "
        f"up to {plan.settings.parallel} at once, "
        f"{plan.settings.queue_size} batches in flight per item",
        "",
        "connections",
    ]
    width = max((len(c.name) for c in plan.connections), default=0)
    for conn in plan.connections:
        kind = conn.dialect or "scheme from the environment"
        lines.append(f"  {conn.name.ljust(width)}  {conn.url}  ({kind})")
    lines += ["", "items, in execution order"]
    for number, item in enumerate(plan.items, 1):
        lines.append("")
        lines.extend(_item_lines(number, item))
    return "\n".join(lines) + "\n"


def _item_lines(number: int, item: PlanItem) -> list[str]:
    o = item.options
    head = (
        f"{number:>3}. {item.name}  [{_KIND_WORDS[item.kind.value]}]  "
        f"#{item.hash[:SHORT_HASH]}  line {item.line}"
    )
    rows: list[tuple[str, str]] = [*_source_rows(item), ("into", item.target.text)]
    rows.append(("mode", _mode_text(item)))
    if o.columns:
        rows.append(
            (
                "columns",
                ", ".join(
                    c.source if c.source == c.target else f"{c.source} AS {c.target}"
                    for c in o.columns
                ),
            )
        )
    rows += [("compute", f"{c.name} = {c.sql.normalized}") for c in o.compute]
    if o.where:
        rows.append(("where", o.where.normalized))
    rows += [("cast", f"{c.by} {c.match} -> {c.to}") for c in o.casts]
    rows_text = _rows_text(item)
    if rows_text:  # a dataset has no row options
        rows.append(("rows", rows_text))
    runs = _runs_text(item)
    if runs:
        rows.append(("runs", runs))
    resume = _resume_text(item)
    if resume:
        rows.append(("resume", resume))
    rows += [("after", f"{d.item} ({d.reason})") for d in item.depends_on]
    return [head] + [f"       {key:<11}{value}" for key, value in rows]


_RELOADED = "reloaded whole (MODE full; other modes refuse to resume)"


def _runs_text(item: PlanItem) -> str:
    """Where a stage, feature table or dataset runs: inside its target's database, after its
    input is streamed in when that lives on another connection (stratum.runtime.stages)."""
    src, home = item.source, item.target.connection
    if isinstance(src, StageSource | FeatureSource):
        read = src.input
    elif isinstance(src, DatasetSource):
        read = src.spine
    else:
        return ""
    inside = f"as SQL inside {home}, in one transaction with its checkpoint"
    if read is not None and read.connection != home:
        return (
            f"streamed from {read.connection} into {home} first ({item.name}/input, a "
            f"resumable copy of {read.text}), then {inside}"
        )
    return inside


def _resume_text(item: PlanItem) -> str:
    """How a killed or interrupted run of the item picks up, which depends on its keys."""
    src, o = item.source, item.options
    parts = (o.partitions or 1) > 1
    if isinstance(src, FileSource):
        return "after the last committed record"
    if isinstance(src, StageSource) and o.mode is Mode.INCREMENTAL and o.cursor is not None:
        dedupe = src.deduplicate.keys if src.deduplicate else ()
        key = f"KEY ({', '.join(o.key)})" if o.key else f"DEDUPLICATE ON ({', '.join(dedupe)})"
        return (
            f"each run refines the input rows whose {o.cursor} is past the last run's, and "
            f"merges them into the target by {key}"
        )
    if o.mode is Mode.INCREMENTAL and o.cursor is not None:
        key = ", ".join(o.key) if o.key else "the primary or unique key"
        return (
            f"after the last committed ({o.cursor}, {key}): each run reads the rows whose "
            f"{o.cursor} is past the last one's"
        )
    if isinstance(src, QuerySource):
        if o.key:
            return f"after the last committed key ({', '.join(o.key)})"
        return f"the query has no KEY: {_RELOADED}"
    if isinstance(src, TableSource):
        if o.key:
            ranges = f"{o.partitions} key ranges read at once, each " if parts else ""
            return f"{ranges}after the last committed key ({', '.join(o.key)})"
        if parts:
            return (
                f"{o.partitions} key ranges read at once, each after its last committed primary "
                "or unique key; a table with neither cannot be split, and the item fails"
            )
        return (
            f"after the last committed primary or unique key; a table with neither is {_RELOADED}"
        )

    if isinstance(src, DatabaseSource):
        ranges = f" ({o.partitions} key ranges at once)" if parts else ""
        return (
            f"each table after its last committed primary or unique key{ranges}; a table "
            f"with neither is {_RELOADED}; keys, indexes and foreign keys are made after the data"
        )
    return "a stopped run does its batch again, whole"  # stages, feature tables, datasets


def _mode_text(item: PlanItem) -> str:
    o = item.options
    parts = [o.mode.value]
    if o.key:
        parts.append(f"key ({', '.join(o.key)})")
    if o.cursor:
        parts.append(f"cursor {o.cursor}")
    return ", ".join(parts)


def _rows_text(item: PlanItem) -> str:
    o = item.options
    parts = []
    if o.batch_size is not None:
        parts.append(f"batches of {o.batch_size:,}")
    if o.on_error is not None:
        parts.append(f"on error {o.on_error.value}")
    if o.partitions is not None:
        parts.append(f"{o.partitions} partition{'s' if o.partitions != 1 else ''}")
    if o.zero_dates is not None:
        parts.append(f"zero dates {o.zero_dates}")
    if o.dialect is not None:
        parts.append(f"SQL dialect {o.dialect}")
    return ", ".join(parts)


def _source_rows(item: PlanItem) -> list[tuple[str, str]]:
    src = item.source
    if isinstance(src, TableSource):
        return [("from", src.table.text)]
    if isinstance(src, DatabaseSource):
        rows = [("from", f"{src.database.text} (every table)")]
        if src.including:
            rows.append(("including", ", ".join(f"'{p}'" for p in src.including)))
        if src.excluding:
            rows.append(("excluding", ", ".join(f"'{p}'" for p in src.excluding)))
        if src.views:
            rows.append(("views", ", ".join(f"'{p}'" for p in src.views) + " (after the tables)"))
        if src.claimed:
            rows.append(("leaves", ", ".join(src.claimed) + " (written by their own items)"))
        return rows
    if isinstance(src, QuerySource):
        return [("from", f"{src.connection}: {src.sql.normalized}")]
    if isinstance(src, FileSource):
        rows = [("from", f"{src.path} ({src.format.value})")]
        if src.csv:
            c = src.csv
            rows.append(
                (
                    "csv",
                    f"header {str(c.header).lower()}, delimiter {c.delimiter!r}, "
                    f"quote {c.quote!r}, escape {repr(c.escape) if c.escape else 'none'}, "
                    f"null {c.null!r}, encoding {c.encoding}",
                )
            )
        return rows
    if isinstance(src, StageSource):
        query = src.query.normalized if src.query else ""
        rows = [("from", src.input.text if src.input else f"query: {query}")]
        if src.deduplicate:
            terms = ", ".join(term.normalized for term in src.deduplicate.order_by)
            order = f" ORDER BY {terms}" if terms else ""
            rows.append(("dedupe", f"ON ({', '.join(src.deduplicate.keys)}){order}"))
        rows += [
            ("expect", f"{e.sql.normalized} ELSE {e.action.value.upper()}")
            for e in src.expectations
        ]
        return rows
    if isinstance(src, DatasetSource):
        rows = [("from", f"{src.spine.text}, as of {src.timestamp}")]
        for table in src.features:
            count = len(table.features)
            rows.append(
                (
                    "features",
                    f"{table.table.text} (keys {', '.join(table.keys)}; "
                    f"{count} feature{'s' if count != 1 else ''})",
                )
            )
        return rows
    assert isinstance(src, FeatureSource)
    rows = [
        ("from", f"{src.input.text}, as of {src.timestamp}"),
        ("entity", f"{src.entity} ({', '.join(src.keys)})"),
    ]
    rows += [
        (
            "feature",
            f"{f.name} = {f.aggregate.normalized}" + (f" over {f.window}" if f.window else ""),
        )
        for f in src.features
    ]
    return rows
