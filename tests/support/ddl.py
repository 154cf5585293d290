"""Catalogs built by hand, and `stratum.schema.ddl`'s statements run on a test server the way
MIGRATE DATABASE runs them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from stratum.schema import ddl
from stratum.schema.catalog import Catalog, ColumnInfo, TableInfo


def col(
    name: str,
    type_: str = "integer",
    nullable: bool = True,
    *,
    native: str | None = None,
    **kw: Any,
) -> ColumnInfo:
    """A column as an introspection reads it; its native type is the mapped one unless given."""
    return ColumnInfo(name, type_ if native is None else native, type_, nullable, **kw)


def all_statements(catalog: Catalog, target: str, dialect: str) -> list[ddl.Statement]:
    """Every statement of the catalog on `target`, in the order MIGRATE DATABASE runs them."""
    names, _ = ddl.target_names(catalog, ddl.MAX_NAME_BYTES[dialect])
    out: list[ddl.Statement] = []
    for name in ddl.table_order(catalog):
        table = catalog.table(name)
        out += ddl.before_data(catalog, table, target, dialect)
        out += ddl.after_data(table, target, dialect, names, catalog=catalog)
    out += ddl.foreign_keys(catalog, target, dialect, names)
    out += ddl.views(catalog, [v.name for v in catalog.views], target, dialect, names)
    return out


def build(
    catalog: Catalog,
    target: str,
    dialect: str,
    *,
    create: Callable[[TableInfo, dict[str, str]], object],
    apply: Callable[[Sequence[ddl.Statement]], object],
) -> list[str]:
    """Everything, as MIGRATE DATABASE does it: table by table, its statements before the data,
    `create(table, target names)` (the bare table and its rows), its statements after the data;
    then the foreign keys and the views. The warnings."""
    names, warnings = ddl.target_names(catalog, ddl.MAX_NAME_BYTES[dialect])
    for name in ddl.table_order(catalog):
        table = catalog.table(name)
        apply(ddl.before_data(catalog, table, target, dialect))
        create(table, names)
        after = ddl.after_data(table, target, dialect, names, catalog=catalog)
        warnings += after.warnings
        apply(after)
    foreign = ddl.foreign_keys(catalog, target, dialect, names)
    apply(foreign)
    views = ddl.views(catalog, [v.name for v in catalog.views], target, dialect, names)
    apply(views)
    return warnings + list(foreign.warnings) + list(views.warnings)


async def run_undone(
    statements: Sequence[ddl.Statement],
    fetch: Callable[[str], Awaitable[Any]],
    execute: Callable[[str], Awaitable[Any]],
) -> list[str]:
    """As the destinations' apply_ddl do: each statement whose `done` query finds nothing (no
    parameters, so no % formatting). Returns the `what` of the statements skipped."""
    skipped = []
    for statement in statements:
        if statement.done is not None and await fetch(statement.done):
            skipped.append(statement.what)
            continue
        await execute(statement.sql)
    return skipped
