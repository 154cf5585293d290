"""`stratum verify`: compare each finished item's source and destination, inside each database.

For a table copy (MIGRATE table, and each table a MIGRATE DATABASE copied, `<item>/<table>`)
and a MIGRATE QUERY with a KEY:

1. **Chunks by key.** The source's rows (the ones the item loads: its WHERE) are split into
   chunks of `chunk_rows` by key: `ROW_NUMBER() OVER (ORDER BY key)`, every n-th key kept as a
   boundary. Only the boundaries come to Python.
2. **Counts and checksums per chunk**, each computed by its own database: the rows with a key in
   the chunk, and the sum of their hashes (`stratum.verify.canonical`) over the item's mapping:
   COLUMNS' renames and COMPUTE expressions are written into the source's SELECT as the source
   ran them (the pushdown planner), and every value is brought to the text the destination
   column's type gives it (so a CAST rule's conversion is taken into account).
3. **Keys.** Within a chunk whose count or checksum differs, each side's keys (as canonical
   text) and row hashes are read, one chunk at a time, never a table, and compared: missing
   (in the source only), extra (in the destination only), different (in both, other values).
   A row two databases sort into different chunks (text keys under different collations) is
   matched across chunks before it is reported.

The destination's first and last chunks are open-ended, so extra rows anywhere are found. A file
load is checked by its row count (what the runs loaded, against the table); a stage, feature
table or dataset transforms its rows and is not compared; an item that has not finished is
skipped with the reason. A WHERE over a column that a CAST rule converts ran after the
conversion, in Python: such an item is checked by row count only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from smql import ItemKind
from stratum.connectors.base import Column
from stratum.connectors.postgres._codecs import json_exact
from stratum.connectors.pushdown import plan_pushdown
from stratum.connectors.registry import Connectors, duckdb_path
from stratum.connectors.sql import quote
from stratum.errors import ConfigError, StratumError
from stratum.plan.model import (
    DatabaseSource,
    MigrationPlan,
    PlanItem,
    QuerySource,
    TableRef,
    TableSource,
)
from stratum.transforms.convert import json_number
from stratum.transforms.types import Kind, parse_type
from stratum.verify.canonical import as_text, canonical, row_hash

__all__ = ["ItemCheck", "verify_plan"]

#: Keys kept per kind of difference in a report (the counts are always complete).
SHOWN_KEYS = 20
#: Where a MySQL parameter goes until the query is formatted ('%' is also DATE_FORMAT's).
_MYSQL_MARK = "\x00param\x00"
_DIALECTS = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql"}


@dataclass
class ItemCheck:
    """What verify found for one item."""

    item: str
    status: str  # "ok", "different", "skipped", "error"
    how: str  # "checksums by key", "row count", or why it was not compared
    source_rows: int | None = None
    destination_rows: int | None = None
    chunks: int = 0
    chunks_different: int = 0
    missing: list[str] = field(default_factory=list)  # keys in the source only
    extra: list[str] = field(default_factory=list)  # keys in the destination only
    different: list[str] = field(default_factory=list)  # keys in both, other values
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "skipped")


async def verify_plan(
    plan: MigrationPlan,
    connectors: Connectors,
    items: Sequence[str] = (),
    chunk_rows: int = 10_000,
) -> list[ItemCheck]:
    """Check every finished item of `plan` (only `items`, when given)."""
    names = {item.name for item in plan.items}
    unknown = [name for name in items if name not in names]
    if unknown:
        raise ConfigError(
            f"no item named {', '.join(repr(n) for n in unknown)} in {plan.path}; items are "
            f"{', '.join(sorted(names))}"
        )
    checks = []
    for item in plan.items:
        if items and item.name not in items:
            continue
        if item.kind is ItemKind.DATABASE_COPY:
            checks += await _verify_database(connectors, item, chunk_rows)
            continue
        try:
            checks.append(await _verify_item(connectors, item, chunk_rows))
        except StratumError as exc:
            checks.append(ItemCheck(item.name, "error", "not compared", message=str(exc)))
        except (OSError, ValueError) as exc:  # a connection refused, a driver's error
            message = f"{type(exc).__name__}: {exc}"
            checks.append(ItemCheck(item.name, "error", "not compared", message=message))
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            checks.append(ItemCheck(item.name, "error", "not compared", message=message))
    return checks


async def _verify_item(connectors: Connectors, item: PlanItem, chunk_rows: int) -> ItemCheck:
    if item.kind in (ItemKind.STAGE, ItemKind.FEATURE_TABLE, ItemKind.DATASET):
        return ItemCheck(item.name, "skipped", "transforms its rows: not compared")
    destination = connectors.destination(item)
    await destination.open()
    try:
        checkpoint = await destination.checkpoint(item.name)
        target_columns = await destination.columns(item.target)
    finally:
        await destination.close()
    if checkpoint is None or not checkpoint.finished:
        return ItemCheck(item.name, "skipped", "not finished: run stratum migrate first")
    if target_columns is None:
        raise ConfigError(f"item '{item.name}': its target {item.target.text} does not exist")
    loaded = checkpoint.rows_written
    if item.kind is ItemKind.FILE_LOAD:
        return await _count_only(connectors, item, loaded, "row count (a file has no SQL)")
    if isinstance(item.source, QuerySource) and not item.options.key:
        return ItemCheck(item.name, "skipped", "a query without KEY: nothing to chunk by")
    if item.options.where is not None and item.options.casts:
        return await _count_only(connectors, item, loaded, "row count (WHERE after CASTs)")
    return await _compare(connectors, item, target_columns, chunk_rows)


async def _verify_database(
    connectors: Connectors, item: PlanItem, chunk_rows: int
) -> list[ItemCheck]:
    """A MIGRATE DATABASE: each table it copied (`<item>/<table>`, found by its checkpoint in
    the destination) checked as a table copy of the same name. A table whose name was cut to
    fit the target is not found there, and is reported as such."""
    source = item.source
    assert isinstance(source, DatabaseSource)
    try:
        async with _reader(connectors, item.target.connection) as dest:
            table = "stratum_checkpoints" if dest.dialect == "mysql" else "stratum.checkpoints"
            prefix = f"{item.name}/"
            rows = await dest.fetch(
                f"SELECT item FROM {table} WHERE SUBSTR(item, 1, {len(prefix)}) = {dest.mark(1)}",
                [prefix],
            )
    except Exception as exc:
        return [ItemCheck(item.name, "error", "not compared", message=f"{exc}")]
    checks = []
    for (name,) in sorted(rows):
        copied = str(name)[len(prefix) :]
        child = replace(
            item,
            name=str(name),
            kind=ItemKind.TABLE_COPY,
            source=TableSource(
                TableRef(source.database.connection, source.database.schema, copied)
            ),
            target=TableRef(item.target.connection, item.target.schema, copied),
            options=replace(item.options, partitions=None),
        )
        try:
            checks.append(await _verify_item(connectors, child, chunk_rows))
        except Exception as exc:
            checks.append(ItemCheck(child.name, "error", "not compared", message=f"{exc}"))
    if not checks:
        checks.append(ItemCheck(item.name, "skipped", "no table copied yet: run stratum migrate"))
    return checks


async def _count_only(connectors: Connectors, item: PlanItem, loaded: int, how: str) -> ItemCheck:
    async with _reader(connectors, item.target.connection) as dest:
        count = int((await dest.fetch(f"SELECT COUNT(*) FROM {dest.relation(item.target)}"))[0][0])
    if count == loaded:
        return ItemCheck(item.name, "ok", how, loaded, count)
    message = f"the runs loaded {loaded} rows, the table holds {count}"
    return ItemCheck(item.name, "different", how, loaded, count, message=message)


# --- the comparison -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Side:
    """One side's SQL: where its rows are, its key columns, their canonical texts, the row
    hash, and the condition of the rows the item loads (the source's WHERE)."""

    relation: str
    key: tuple[str, ...]
    key_texts: tuple[str, ...]
    hash: str
    where: str | None = None
    json: tuple[str, ...] = ()  # JSON columns, compared parsed (see `_json_rows`)


async def _compare(
    connectors: Connectors, item: PlanItem, target_columns: Sequence[Column], chunk_rows: int
) -> ItemCheck:
    plain = replace(item.options, columns=(), compute=(), where=None, casts=())
    source = connectors.source(replace(item, options=plain))  # the table's own columns
    await source.open()
    try:
        schema = await source.schema()
        key = tuple(item.options.key) or tuple(getattr(source, "key", ()) or schema.primary_key)
    finally:
        await source.close()
    if not key:
        return ItemCheck(item.name, "skipped", "the source has no primary or unique key")
    check = ItemCheck(item.name, "ok", "checksums by key")
    async with (
        _reader(connectors, _source_connection(item)) as src,
        _reader(connectors, item.target.connection) as dest,
    ):
        left, right = _sides(item, schema.columns, target_columns, key, src, dest)
        bounds = await _boundaries(src, left, chunk_rows)
        missing: dict[str, int] = {}
        extra: dict[str, int] = {}
        source_rows = dest_rows = 0
        for low, high in zip([None, *bounds], [*bounds, None], strict=True):
            s_count, s_sum = await _chunk(src, left, low, high)
            d_count, d_sum = await _chunk(dest, right, low, high)
            source_rows, dest_rows = source_rows + s_count, dest_rows + d_count
            check.chunks += 1
            differs = (s_count, s_sum) != (d_count, d_sum)
            if differs:
                theirs = await _rows(dest, right, low, high)
                for text, value in (await _rows(src, left, low, high)).items():
                    other = theirs.pop(text, None)
                    if other is None:
                        missing[text] = value
                    elif other != value:
                        check.different.append(text)
                extra.update(theirs)
            if left.json:  # JSON columns, compared parsed, for the keys on both sides
                mine = await _json_rows(src, left, low, high)
                yours = await _json_rows(dest, right, low, high)
                changed = [k for k in mine if k in yours and mine[k] != yours[k]]
                check.different += [k for k in changed if k not in check.different]
                differs = differs or bool(changed)
            check.chunks_different += differs
        for text in sorted(set(missing) & set(extra)):  # sorted into other chunks
            if missing.pop(text) != extra.pop(text):
                check.different.append(text)
        check.missing, check.extra = sorted(missing), sorted(extra)
        check.different.sort()
        check.source_rows, check.destination_rows = source_rows, dest_rows
    if check.missing or check.extra or check.different or source_rows != dest_rows:
        check.status = "different"
    return check


def _sides(  # noqa: PLR0917 (the item, its columns on both sides, and both readers)
    item: PlanItem,
    columns: Sequence[Column],
    target_columns: Sequence[Column],
    key: Sequence[str],
    src: _Reader,
    dest: _Reader,
) -> tuple[_Side, _Side]:
    """Both sides' SQL for `item`: the source's SELECT expressions for each destination column
    (renames, COMPUTE), each brought to the canonical text of the destination column's type."""
    pushdown = plan_pushdown(columns, replace(item.options, casts=()), src.dialect)
    by_name = {c.name: c for c in target_columns}
    source_texts, target_texts = [], []
    source_json, target_json = [], []
    for output in pushdown.outputs:
        target = by_name.get(output.name)
        if target is None:
            raise ConfigError(
                f"item '{item.name}': the destination has no column {output.name!r} (changed "
                "behind Stratum's back?)"
            )
        kind = parse_type(target.type)  # a CAST rule's type, when the item made the table
        expr = (
            quote(output.source, src.dialect) if output.source else output.sql.rsplit(" AS ", 1)[0]
        )
        if kind.kind is Kind.JSON:  # databases print JSON differently: parsed in Python
            source_json.append(expr)
            target_json.append(quote(output.name, dest.dialect))
            continue
        source_texts.append(canonical(expr, kind, src.dialect))
        target_texts.append(canonical(quote(output.name, dest.dialect), kind, dest.dialect))
    renamed = {o.source: o.name for o in pushdown.outputs if o.source is not None}
    missing = [k for k in key if k not in renamed]
    if missing:
        raise ConfigError(
            f"item '{item.name}': its key column {missing[0]!r} is not copied: rows cannot be "
            "matched by key"
        )
    key_kinds = [parse_type(by_name[renamed[k]].type) for k in key]
    source_key = tuple(quote(k, src.dialect) for k in key)
    target_key = tuple(quote(renamed[k], dest.dialect) for k in key)
    left = _Side(
        _source_from(item, src),
        source_key,
        tuple(canonical(k, t, src.dialect) for k, t in zip(source_key, key_kinds, strict=True)),
        row_hash(source_texts, src.dialect),
        pushdown.where,
        tuple(source_json),
    )
    right = _Side(
        dest.relation(item.target),
        target_key,
        tuple(canonical(k, t, dest.dialect) for k, t in zip(target_key, key_kinds, strict=True)),
        row_hash(target_texts, dest.dialect),
        json=tuple(target_json),
    )
    return left, right


async def _boundaries(reader: _Reader, side: _Side, every: int) -> list[tuple[Any, ...]]:
    keys = ", ".join(side.key)
    where = f" WHERE {side.where}" if side.where else ""
    sql = (
        f"SELECT {keys} FROM (SELECT {keys}, ROW_NUMBER() OVER (ORDER BY {keys}) AS stratum_rn "
        f"FROM {side.relation}{where}) AS b WHERE MOD(stratum_rn, {int(every)}) = 0 ORDER BY {keys}"
    )
    return [tuple(row) for row in await reader.fetch(sql)]


def _range(
    reader: _Reader, side: _Side, low: tuple[Any, ...] | None, high: tuple[Any, ...] | None
) -> tuple[str, list[Any]]:
    conditions = [f"({side.where})"] if side.where else []
    params: list[Any] = []
    keys = f"({', '.join(side.key)})" if len(side.key) > 1 else side.key[0]
    for bound, op in ((low, ">"), (high, "<=")):
        if bound is None:
            continue
        marks = [reader.mark(len(params) + i + 1) for i in range(len(bound))]
        params.extend(bound)
        value = f"({', '.join(marks)})" if len(marks) > 1 else marks[0]
        conditions.append(f"{keys} {op} {value}")
    return (" WHERE " + " AND ".join(conditions)) if conditions else "", params


async def _chunk(
    reader: _Reader, side: _Side, low: tuple[Any, ...] | None, high: tuple[Any, ...] | None
) -> tuple[int, int]:
    where, params = _range(reader, side, low, high)
    sql = f"SELECT COUNT(*), COALESCE(SUM({side.hash}), 0) FROM {side.relation}{where}"
    count, total = (await reader.fetch(sql, params))[0]
    return int(count), int(total)


async def _rows(
    reader: _Reader, side: _Side, low: tuple[Any, ...] | None, high: tuple[Any, ...] | None
) -> dict[str, int]:
    """The chunk's rows: the key's canonical text -> the row's hash."""
    where, params = _range(reader, side, low, high)
    key = _key_text(reader, side)
    rows = await reader.fetch(f"SELECT {key}, {side.hash} FROM {side.relation}{where}", params)
    return {str(text).replace("\x1f", ", "): int(value) for text, value in rows}


async def _json_rows(
    reader: _Reader, side: _Side, low: tuple[Any, ...] | None, high: tuple[Any, ...] | None
) -> dict[str, str]:
    """The chunk's JSON columns, each parsed and written back in one form (sorted keys, exact
    numbers): the key's canonical text -> the row's JSON texts. One chunk at a time."""
    where, params = _range(reader, side, low, high)
    texts = ", ".join(as_text(c, reader.dialect) for c in side.json)
    rows = await reader.fetch(
        f"SELECT {_key_text(reader, side)}, {texts} FROM {side.relation}{where}", params
    )
    return {
        str(row[0]).replace("\x1f", ", "): "\x1f".join(_json_form(v) for v in row[1:])
        for row in rows
    }


def _json_form(value: Any) -> str:
    if value is None:
        return "\x1e"
    try:
        parsed = json.loads(value, parse_float=json_number)
    except ValueError:
        return str(value)
    return json_exact(_sorted(parsed))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _key_text(reader: _Reader, side: _Side) -> str:
    if len(side.key_texts) == 1:
        return side.key_texts[0]
    sep = "CHAR(31)" if reader.dialect == "mysql" else "chr(31)"
    return f"CONCAT_WS({sep}, {', '.join(side.key_texts)})"


def _source_connection(item: PlanItem) -> str:
    if isinstance(item.source, TableSource):
        return item.source.table.connection
    assert isinstance(item.source, QuerySource)
    return item.source.connection


def _source_from(item: PlanItem, reader: _Reader) -> str:
    if isinstance(item.source, TableSource):
        return reader.relation(item.source.table)
    assert isinstance(item.source, QuerySource)
    from stratum.connectors.pushdown import transpile_query  # noqa: PLC0415

    return f"({transpile_query(item.source.sql, reader.dialect)}) AS q"


# --- reading a database -------------------------------------------------------------------------


class _Reader:
    """One connection, for verify's queries: `fetch(sql, params)`, placeholders by `mark`."""

    def __init__(self, dialect: str, conn: Any, default_schema: str | None) -> None:
        self.dialect = dialect
        self._conn = conn
        self._default_schema = default_schema

    def mark(self, number: int) -> str:
        return _MYSQL_MARK if self.dialect == "mysql" else f"${number}"

    def relation(self, ref: TableRef) -> str:
        schema = ref.schema or self._default_schema
        parts = [schema, ref.table] if schema else [ref.table]
        return ".".join(quote(str(p), self.dialect) for p in parts)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.dialect == "postgres":
            return [tuple(r) for r in await self._conn.fetch(sql, *params)]
        if self.dialect == "mysql":
            if not params:  # no formatting: DATE_FORMAT's '%Y' stays as written
                return [tuple(r) for r in await self._conn.fetchall(sql)]
            formatted = sql.replace("%", "%%").replace(_MYSQL_MARK, "%s")
            return [tuple(r) for r in await self._conn.fetchall(formatted, list(params))]

        def run() -> list[tuple[Any, ...]]:
            return [tuple(r) for r in self._conn.execute(sql, list(params)).fetchall()]

        return await anyio.to_thread.run_sync(run)


@contextlib.asynccontextmanager
async def _reader(connectors: Connectors, connection: str) -> AsyncIterator[_Reader]:
    url = connectors.url(connection)
    scheme = url.split(":", 1)[0].lower()
    if scheme == "duckdb":
        import duckdb  # noqa: PLC0415

        path = duckdb_path(url, connectors.base_dir)
        conn = duckdb.connect(str(path), read_only=True)
        try:
            yield _Reader("duckdb", conn, "main")
        finally:
            conn.close()
        return
    dialect = _DIALECTS.get(scheme)
    if dialect == "postgres":
        from stratum.connectors.postgres._connect import connect as pg_connect  # noqa: PLC0415

        pg = await pg_connect(url)  # password files and TLS, as the connectors read them
        try:
            yield _Reader("postgres", pg, "public")
        finally:
            await pg.close()
        return
    if dialect == "mysql":
        from stratum.connectors.mysql._connect import connect  # noqa: PLC0415

        my = await connect(url)
        try:
            yield _Reader("mysql", my, None)
        finally:
            await my.close()
        return
    raise ConfigError(f"connection '{connection}': verify cannot read a {scheme} database")
