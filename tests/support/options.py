"""One builder of an item's resolved `Options`, for the tests that hand options to a source or a
transformer without compiling a plan."""

from __future__ import annotations

from collections.abc import Sequence

from smql import Mode, OnError
from stratum.plan.model import CastRule, ColumnMap, ComputedColumn, Options, Sql


def options(
    *,
    mode: Mode = Mode.FULL,
    key: Sequence[str] = (),
    cursor: str | None = None,
    columns: Sequence[ColumnMap | tuple[str, str]] = (),
    compute: Sequence[ComputedColumn | tuple[str, str]] = (),
    where: Sql | str | None = None,
    casts: Sequence[CastRule | tuple[str, str, str]] = (),
    on_error: OnError | None = None,
    zero_dates: str | None = None,
    dialect: str = "postgres",
    partitions: int | None = None,
    batch_size: int | None = None,
) -> Options:
    """The options of a FULL item that changes nothing, but for what is given.

    Besides the model's own values, the short forms: `(source, target)` for a column, `(name, sql)`
    for a computed column and a string for the WHERE (their SQL in `dialect`), `(by, match, to)`
    for a cast rule.
    """
    return Options(
        mode=mode,
        key=tuple(key),
        cursor=cursor,
        columns=tuple(c if isinstance(c, ColumnMap) else ColumnMap(*c) for c in columns),
        compute=tuple(
            c if isinstance(c, ComputedColumn) else ComputedColumn(c[0], Sql(c[1], dialect))
            for c in compute
        ),
        where=Sql(where, dialect) if isinstance(where, str) else where,
        casts=tuple(c if isinstance(c, CastRule) else CastRule(*c) for c in casts),
        on_error=on_error,
        zero_dates=zero_dates,
        dialect=dialect,
        partitions=partitions,
        batch_size=batch_size,
    )


def compute(name: str, text: str, dialect: str = "postgres") -> ComputedColumn:
    """COMPUTE name = text, the SQL written in `dialect`."""
    return ComputedColumn(name, Sql(text, dialect))
