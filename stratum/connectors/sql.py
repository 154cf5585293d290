"""SQL that every SQL destination shares: quoting, column types, the checkpoint table.

Identifiers are always quoted by the destination's dialect (sqlglot), never pasted in: a table
named `a";DROP TABLE x;--` is a name. Values are always bound as parameters, never formatted into
SQL text. Column types arrive spelt as PostgreSQL spells them (see `Column`) and are parsed by
sqlglot, then written back in the destination's dialect, so a type string cannot smuggle SQL in
either.

The checkpoint table, `stratum.checkpoints`, holds one row per item: the item's progress as the
destination's own transactions committed it (see `Checkpoint`). The cursor and the steps are
stored as JSON text, so the table needs no dialect-specific types.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from smql import Mode
from stratum.connectors.base import Checkpoint, Column, Row, Schema
from stratum.errors import ConfigError, ConnectionLost, DestinationError, RowError, StratumError
from stratum.plan.model import TableRef

__all__ = [
    "CHECKPOINT_COLUMNS",
    "CHECKPOINT_SCHEMA",
    "CHECKPOINT_SELECT",
    "CHECKPOINT_TABLE",
    "ROW_VALUE_ERRORS",
    "ErrorTable",
    "Fault",
    "check_identifier",
    "check_rows",
    "checkpoint_from_row",
    "checkpoint_params",
    "checkpoint_table_ddl",
    "checkpoint_upsert_sql",
    "classify",
    "column_type",
    "create_table_sql",
    "json_text",
    "last_row_per_key",
    "on_conflict_sql",
    "parse_type",
    "quote",
    "quoted_list",
    "target_names",
    "translated",
    "upsert_key",
]

CHECKPOINT_SCHEMA = "stratum"
CHECKPOINT_TABLE = "checkpoints"

#: The checkpoint table's columns, in the order `checkpoint_params` binds them.
CHECKPOINT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("item", "text NOT NULL PRIMARY KEY"),
    ("item_hash", "text NOT NULL"),
    ("plan_hash", "text NOT NULL"),
    ("run_id", "text NOT NULL"),
    ("cursor", "text"),  # JSON; NULL when the item has no cursor yet
    ("batches", "bigint NOT NULL"),
    ("rows_read", "bigint NOT NULL"),
    ("rows_written", "bigint NOT NULL"),
    ("rows_rejected", "bigint NOT NULL"),
    ("rows_filtered", "bigint NOT NULL"),
    ("steps", "text NOT NULL"),  # JSON array of the one-time steps done
    ("finished", "boolean NOT NULL"),
    ("updated_at", "timestamp NOT NULL"),  # UTC
)


def quote(name: str, dialect: str) -> str:
    """`name` as a quoted identifier of `dialect`: always data, never SQL."""
    return exp.to_identifier(name, quoted=True).sql(dialect)


def quoted_list(names: Sequence[str], dialect: str) -> str:
    return ", ".join(quote(name, dialect) for name in names)


def check_identifier(name: str, max_length: int, *, in_bytes: bool = False) -> None:
    """Refuse a name the destination would reject or, worse, silently shorten."""
    size = len(name.encode("utf-8")) if in_bytes else len(name)
    if not name:
        raise DestinationError("an empty name cannot be used as an identifier")
    if "\x00" in name:
        raise DestinationError(f"identifier {name!r} contains a NUL character")
    if size > max_length:
        unit = "bytes" if in_bytes else "characters"
        raise DestinationError(
            f"identifier {name!r} is {size} {unit} long; the destination allows {max_length}"
        )


_BIT_VARYING = re.compile(r"\bbit\s+varying\b", re.IGNORECASE)


@lru_cache(maxsize=1024)
def parse_type(type_: str, column: str = "") -> exp.DataType:
    """A PostgreSQL type spelling, parsed (as the target of a CAST, so that nothing may follow
    it). Raises DestinationError when it is not a type. The result is shared: do not modify."""
    where = f" of column {column!r}" if column else ""
    # sqlglot reads PostgreSQL's `varbit` but not its long spelling
    spelt = _BIT_VARYING.sub("varbit", type_)
    try:
        cast = sqlglot.parse_one(f"CAST(NULL AS {spelt})", read="postgres")
    except (SqlglotError, ValueError, AttributeError, TypeError) as exc:
        raise DestinationError(f"type {type_!r}{where} is not a SQL type") from exc
    if not isinstance(cast, exp.Cast) or not isinstance(cast.to, exp.DataType):
        raise DestinationError(f"type {type_!r}{where} is not a SQL type")
    return cast.to


@lru_cache(maxsize=1024)
def column_type(type_: str, dialect: str, column: str = "") -> str:
    """`type_` (spelt as PostgreSQL spells it) written in `dialect`."""
    parsed = parse_type(type_, column)
    if dialect == "duckdb" and parsed.this == exp.DataType.Type.DECIMAL and not parsed.expressions:
        # An unconstrained numeric has no DuckDB equivalent (DECIMAL stops at 38 digits), and
        # a bare DECIMAL there is DECIMAL(18,3), which rounds most values. DECIMAL(38,9) keeps
        # 29 digits before the point and 9 after: a value beyond that is rounded or refused.
        return "DECIMAL(38, 9)"
    return parsed.sql(dialect)


def create_table_sql(qualified: str, schema: Schema, dialect: str) -> str:
    """CREATE TABLE IF NOT EXISTS for `schema`; a primary key only when the schema has one."""
    if not schema.columns:
        raise DestinationError(f"cannot create {qualified}: the schema has no columns")
    parts = [_column_ddl(column, dialect) for column in schema.columns]
    if schema.primary_key:
        parts.append(f"PRIMARY KEY ({quoted_list(schema.primary_key, dialect)})")
    return f"CREATE TABLE IF NOT EXISTS {qualified} ({', '.join(parts)})"


def _column_ddl(column: Column, dialect: str) -> str:
    null = "" if column.nullable else " NOT NULL"
    return f"{quote(column.name, dialect)} {column_type(column.type, dialect, column.name)}{null}"


def on_conflict_sql(names: Sequence[str], key: Sequence[str], dialect: str) -> str:
    """`ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c ...` for every column not in `key`."""
    keys = quoted_list(key, dialect)
    rest = [name for name in names if name not in key]
    if not rest:
        return f"ON CONFLICT ({keys}) DO NOTHING"
    sets = ", ".join(f"{quote(n, dialect)} = EXCLUDED.{quote(n, dialect)}" for n in rest)
    return f"ON CONFLICT ({keys}) DO UPDATE SET {sets}"


def target_names(target: TableRef, default_schema: str) -> tuple[str, str]:
    """The target's schema (`default_schema` when the plan names none) and table."""
    if target.table is None:
        raise DestinationError(f"{target.text} names no table")
    return (default_schema if target.schema is None else target.schema), target.table


def upsert_key(mode: Mode, key: Sequence[str]) -> tuple[str, ...]:
    """The key a write upserts on (MODE upsert, and incremental with a key), or () to append."""
    if mode == Mode.UPSERT and not key:
        raise ConfigError("MODE upsert needs a KEY")
    if mode in (Mode.UPSERT, Mode.INCREMENTAL):
        return tuple(key)
    return ()


def last_row_per_key(
    rows: Sequence[Row], names: Sequence[str], key: Sequence[str]
) -> Sequence[Row]:
    """The batch with only the last row of each key, for an upsert: applying the rows one by one
    would leave the last one, and one INSERT ... ON CONFLICT may not update a row twice.

    Doing it here keeps the SQL a plain INSERT (DuckDB's sort, behind a window that would
    deduplicate in SQL, turns -0.0 into 0.0). Rows whose key holds a NULL are all kept: NULLs
    never conflict. A key Python cannot hash is left to the database to judge."""
    if len(rows) < 2:
        return rows
    get_key = operator.itemgetter(*(names.index(column) for column in key))
    try:
        if len(set(map(get_key, rows))) == len(rows):
            return rows  # the usual case: no key twice
    except TypeError:
        return rows
    single = len(key) == 1
    last: dict[Any, Row] = {}
    with_null: list[Row] = []
    for row in rows:
        value = get_key(row)
        if value is None if single else None in value:
            with_null.append(row)
        else:
            last.pop(value, None)  # so the row's place is its last occurrence
            last[value] = row
    return [*with_null, *last.values()]


def check_rows(target: TableRef, schema: Schema, rows: Sequence[Row]) -> None:
    """Every row has one value per column (a short row would otherwise be padded or cut)."""
    width = len(schema.columns)
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise RowError(
                f"{target.text}: row {number} of the batch has {len(row)} values for "
                f"{width} columns"
            )


_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

#: A JSON column's value as JSON text. Every value is encoded, so a str is a JSON string; NaN
#: and the infinities are refused (they are not JSON).
json_text = _JSON.encode


# --- the checkpoint table ---------------------------------------------------------------------


def checkpoint_table_ddl(qualified: str, dialect: str) -> str:
    columns = ", ".join(f"{quote(name, dialect)} {ddl}" for name, ddl in CHECKPOINT_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {qualified} ({columns})"


def checkpoint_upsert_sql(qualified: str, dialect: str) -> str:
    """An upsert of one checkpoint row, with `$1`... bound from `checkpoint_params`."""
    names = [name for name, _ in CHECKPOINT_COLUMNS]
    values = ", ".join(f"${number}" for number in range(1, len(names) + 1))
    return (
        f"INSERT INTO {qualified} ({quoted_list(names, dialect)}) VALUES ({values}) "
        + on_conflict_sql(names, ("item",), dialect)
    )


def checkpoint_params(checkpoint: Checkpoint) -> tuple[Any, ...]:
    cursor = None if checkpoint.cursor is None else json.dumps(checkpoint.cursor)
    return (
        checkpoint.item,
        checkpoint.item_hash,
        checkpoint.plan_hash,
        checkpoint.run_id,
        cursor,
        checkpoint.batches,
        checkpoint.rows_read,
        checkpoint.rows_written,
        checkpoint.rows_rejected,
        checkpoint.rows_filtered,
        json.dumps(list(checkpoint.steps)),
        checkpoint.finished,
        datetime.now(UTC).replace(tzinfo=None),
    )


#: The columns `checkpoint_from_row` expects, in order.
CHECKPOINT_SELECT = tuple(name for name, _ in CHECKPOINT_COLUMNS if name != "updated_at")


def checkpoint_from_row(row: Sequence[Any]) -> Checkpoint:
    """A Checkpoint from the columns of `CHECKPOINT_SELECT`, in that order."""
    (item, item_hash, plan_hash, run_id, cursor, batches, read, written, rejected, filtered) = row[
        :10
    ]
    steps, finished = row[10], row[11]
    return Checkpoint(
        item=item,
        item_hash=item_hash,
        plan_hash=plan_hash,
        run_id=run_id,
        cursor=None if cursor is None else json.loads(cursor),
        batches=int(batches),
        rows_read=int(read),
        rows_written=int(written),
        rows_rejected=int(rejected),
        rows_filtered=int(filtered),
        steps=tuple(json.loads(steps)),
        finished=bool(finished),
    )


# --- driver errors ----------------------------------------------------------------------------


class Fault(Enum):
    """What a driver exception means for the engine; `translated` turns it into the tree."""

    ROW = "row"  # the rows break a constraint or hold a value a column cannot take
    TRANSIENT = "transient"  # the connection failed; a retry may succeed
    TERMINAL = "terminal"  # the destination refuses the work: retrying cannot help
    CONFIG = "config"  # the connection cannot be used as given


#: A driver's exceptions and what each means, the most specific class first.
ErrorTable = Sequence[tuple[type[BaseException], Fault]]

#: Python errors a driver raises while converting a value it cannot take (a str where an int
#: goes, an int too large for its column, a str that is not valid UTF-8).
ROW_VALUE_ERRORS: tuple[type[BaseException], ...] = (TypeError, ValueError, OverflowError)


def classify(exc: BaseException, table: ErrorTable) -> Fault | None:
    for cls, fault in table:
        if isinstance(exc, cls):
            return fault
    return None


@contextmanager
def translated(
    what: str,
    table: ErrorTable,
    *,
    rows: bool = False,
    values: bool | None = None,
    fallback: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    terminal: type[StratumError] = DestinationError,
) -> Iterator[None]:
    """Translate the driver exceptions raised inside into Stratum's tree (`raise ... from`).

    `what` says what was being done ("writing 10 rows to main.orders"); it starts the message.
    With `rows`, the statement inside writes the batch's rows: ROW faults become RowError;
    elsewhere a ROW fault is the connector refusing the work (`terminal`). Python's value errors
    (`ROW_VALUE_ERRORS`) count as ROW faults when `values` (by default: with `rows`).
    Exceptions that are not in `table` pass through, except those of the driver's root class(es)
    `fallback`. Terminal faults become `terminal`: DestinationError for a destination,
    SourceError for a source.
    """
    try:
        yield
    except StratumError:
        raise
    except Exception as exc:
        fault = classify(exc, table)
        if fault is None and (rows if values is None else values):
            fault = Fault.ROW if isinstance(exc, ROW_VALUE_ERRORS) else None
        if fault is None and fallback is not None and isinstance(exc, fallback):
            fault = Fault.TERMINAL
        if fault is None:
            raise
        raise _error(fault, f"{what}: {_describe(exc)}", rows=rows, terminal=terminal) from exc


def _error(fault: Fault, message: str, *, rows: bool, terminal: type[StratumError]) -> StratumError:
    if fault is Fault.ROW:
        return RowError(message) if rows else terminal(message)
    if fault is Fault.TRANSIENT:
        return ConnectionLost(message)
    if fault is Fault.CONFIG:
        return ConfigError(message)
    return terminal(message)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    detail = getattr(exc, "detail", None)
    if isinstance(detail, str) and detail and detail not in text:
        text = f"{text} ({detail})"
    return text


_SAMPLE = 16  # rows of a batch measured for its nbytes estimate


def estimate_nbytes(rows: Sequence[Row]) -> int:
    """Roughly a batch's size, for throughput figures and the bytes a pipeline holds in flight:
    `len(str(value))` summed over up to `_SAMPLE` rows spread over the batch, scaled to its
    length. Cheap, and close enough."""
    if not rows:
        return 0
    step = max(1, len(rows) // _SAMPLE)
    sample = rows[::step]
    measured = sum(len(str(v)) for row in sample for v in row if v is not None)
    return measured * len(rows) // len(sample)
