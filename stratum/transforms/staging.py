"""A transform run by the destination: the SELECT that turns a staged batch of text into rows.

For a plain file load into PostgreSQL with COLUMNS, COMPUTE, WHERE and CAST, the batch's text is
copied into a temporary table of text columns and the target is filled by one
``INSERT ... SELECT`` in the same transaction, so no row goes through Python:

    SELECT <outputs: copied columns, renamed; COMPUTE expressions>
    FROM (SELECT CAST("c1" AS t1) AS "c1", "c2", ... FROM <stage>) AS "s"
    WHERE <the item's WHERE>

CASTs become the inner SELECT's CASTs (to the types the transform stage would give); COLUMNS,
COMPUTE and WHERE are compiled over the cast columns by the same planner that pushes them into a
source's SELECT (`stratum.connectors.pushdown`), transpiled from the item's dialect. Only a
transform the planner can express whole is staged; the engine keeps the Python path for the
rest, and for a batch the server refuses (it loads that batch the typed way, row by row).
"""

from __future__ import annotations

import dataclasses

from stratum.connectors.base import Schema
from stratum.connectors.pushdown import plan_pushdown, select_sql
from stratum.connectors.sql import quote
from stratum.plan.model import Options
from stratum.transforms.transformer import Transformer

__all__ = ["STAGE", "STAGE_TABLE", "staged_select"]

_DIALECT = "postgres"
#: The temporary table a staged batch is copied into (PostgreSQL: dropped at COMMIT).
STAGE_TABLE = "stratum_stage"
STAGE = f'pg_temp."{STAGE_TABLE}"'


def staged_select(
    source: Schema, transformer: Transformer, options: Options, stage: str
) -> str | None:
    """The SELECT over `stage` (text columns named as the source's) that gives the item's rows,
    or None when the planner cannot express the whole transform in SQL."""
    if any(c.type != "text" for c in source.columns):
        return None  # only text (a file's values) is staged
    inner_items = []
    typed = []
    for column in source.columns:
        name = quote(column.name, _DIALECT)
        target = transformer.casts.get(column.name)
        if target is None:
            inner_items.append(name)
            typed.append(column)
        else:
            inner_items.append(f"CAST({name} AS {target}) AS {name}")
            typed.append(dataclasses.replace(column, type=target))
    rest = dataclasses.replace(options, casts=())
    pushdown = plan_pushdown(typed, rest, _DIALECT)
    wanted = {
        "columns" if rest.columns else "",
        "compute" if rest.compute else "",
        "where" if rest.where is not None else "",
    } - {""}
    if not wanted <= pushdown.applied:
        return None
    names = [o.name for o in pushdown.outputs]
    if tuple(names) != transformer.schema.names:
        return None  # the rows would not line up with the target's columns
    inner = select_sql(inner_items, stage, [], ())
    conditions = [f"({pushdown.where})"] if pushdown.where is not None else []
    return select_sql([o.sql for o in pushdown.outputs], f"({inner}) AS s", conditions, ())
