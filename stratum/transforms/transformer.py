"""The transform stage of an item's producer: rows as a source read them -> rows as the
destination receives them.

`Transformer.build(source_schema, options)` validates an item's COLUMNS, KEY, CURSOR, CAST,
COMPUTE and WHERE once, against the source's columns, and compiles them into one Python
function that runs a whole batch (see `compiler.py`). `apply(batch)` then runs it.

What a row goes through, in this order:

1. CAST rules convert source columns (matched by their SOURCE name, before any COLUMNS rename;
   `CAST COLUMN table.column` in a database copy matches when `table` is the table being
   copied). A value that cannot be converted rejects the row: "column amount: 'abc' is not
   numeric(12,2)", at the row's source position.
2. WHERE (over source columns, by source name, after their CASTs) keeps a row only when it is
   TRUE; FALSE and NULL drop it (counted in `filtered`). Casts of columns WHERE does not read
   are done after it, so a row that WHERE drops is never rejected for them (as in SQL, where
   the SELECT list is computed for the rows the WHERE keeps).
3. COMPUTE expressions (over source columns, by source name) add columns. An error on one row
   (division by zero, a failed CAST, an integer out of range for its type) rejects that row:
   "COMPUTE ratio: division by zero".
4. The row becomes the COLUMNS (renamed) or every source column, then the COMPUTE columns.

`read == len(rows) + len(rejected) + filtered` for every batch.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import localcontext
from typing import Any

from stratum.connectors.base import Column, Cursor, RawBatch, Rejected, Row, Schema
from stratum.errors import ConfigError
from stratum.plan.model import CastRule, Options, Sql
from stratum.transforms import runtime as rt
from stratum.transforms.compiler import (
    CAN_CAST,
    Code,
    ColumnRef,
    ExpressionCompiler,
    Namespace,
    resolve_column,
    suggest,
)
from stratum.transforms.convert import DECIMAL_CONTEXT, CastFailed, can_convert, converter, show
from stratum.transforms.native import dotted_parts, specificity
from stratum.transforms.types import Kind, SqlType, parse_type, same_type

DEFAULT_DIALECT = "postgres"

BatchFunction = Callable[[list[Row], list[int], list[Rejected]], tuple[list[Row], list[int], int]]


@dataclass(slots=True)
class TransformedBatch:
    """A batch as the destination receives it."""

    rows: list[Row]
    positions: list[int]  # source position of each kept row, same order
    rejected: list[Rejected]  # the reader's rejects, then the transform's
    filtered: int  # rows WHERE dropped
    read: int  # rows the source read: len(batch.rows) + the reader's rejects
    cursor: Cursor = None
    nbytes: int = 0


@dataclass(frozen=True, slots=True)
class _Cast:
    index: int  # source column
    target: SqlType
    rule: str  # how the rule is written, for messages


class Transformer:
    """The compiled transform of one item (see the module docstring)."""

    def __init__(
        self,
        *,
        source_schema: Schema,
        schema: Schema,
        is_identity: bool,
        sources: dict[str, str],
        run: BatchFunction | None,
        select: Callable[[Row], Any] | None,
        reorders: bool,
        source_code: str,
        loop: BatchFunction,
        text_checks: tuple[int, ...] | None = None,
        casts: dict[str, str] | None = None,
        staging_checks: tuple[int, ...] | None = None,
    ) -> None:
        self._source_schema = source_schema
        self._schema = schema
        self._is_identity = is_identity
        self._sources = sources
        self._run = run
        self._select = select
        self._reorders = reorders
        self.source_code = source_code  # the generated Python, for debugging
        self._loop = loop  # the per-row function, also for batches `select` cannot take
        self._text_checks = text_checks
        self.casts = casts or {}  # source column -> the type its CAST rule converts it to
        self._staging_checks = staging_checks
        # JSON-cast columns among the checked ones (the rest are dates and timestamps)
        self._json_checked = frozenset(
            index
            for index, column in enumerate(source_schema.columns)
            if (self.casts.get(column.name) or "").split("(")[0].strip().lower()
            in ("json", "jsonb")
        )

    @property
    def schema(self) -> Schema:
        """The columns the destination receives."""
        return self._schema

    @property
    def source_schema(self) -> Schema:
        return self._source_schema

    @property
    def is_identity(self) -> bool:
        """True when `apply` returns every batch as it is (no per-row work at all)."""
        return self._is_identity

    @property
    def passes_text(self) -> bool:
        """True when a destination that parses text may load the source's rows as they are,
        with the same result as this transform (see `_Builder.text_checks`)."""
        return self._text_checks is not None

    @property
    def stages(self) -> bool:
        """True when the destination may run this transform's CASTs in SQL with the same
        result (every CAST from text to a type PostgreSQL reads as this stage converts it); the
        rest of the transform is `stratum.transforms.staging`'s to express."""
        return self._staging_checks is not None

    def text_safe(self, rows: Sequence[Row], *, staged: bool = False) -> bool:
        """Whether these text rows may be parsed by the destination: no date or timestamp
        value that is cast carries a UTC offset.

        An offset ends its value, so the scan looks at each value's last `_TAIL` characters
        only: ten times faster than scanning whole timestamps digit by digit. A bare ISO date
        ("2024-01-02") ends like an offset ("1-02") and is told apart by its shape. A column
        where some value ends in white space (an offset may sit further back) is scanned whole,
        and a bare date followed by white space counts as unsafe there: the typed path is
        always correct, only slower."""
        for index in (self._staging_checks if staged else self._text_checks) or ():
            values = [v for row in rows if (v := row[index]) is not None]
            if index in self._json_checked:
                # a bare JSON null: the typed path loads SQL NULL, PostgreSQL would load 'null'
                if any(v.strip() == "null" for v in values):
                    return False
                continue
            tails = "\n" + "\n".join([v[-_TAIL:] for v in values]) + "\n"
            if _OFFSET_TAIL.search(tails):
                return False
            if _SPACE_TAIL.search(tails) and _OFFSET.search("\n".join(values)):
                return False
        return True

    def source_name(self, output: str) -> str | None:
        """The source column an output column copies (None for a COMPUTE column)."""
        return self._sources.get(output)

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        source_schema: Schema,
        options: Options,
        *,
        table: str | None = None,
        now: datetime | None = None,
    ) -> Transformer:
        """Validate `options` against the source's columns and compile them. `table` is the
        source table's name in a database copy (for `CAST COLUMN table.column`); `now` fixes
        CURRENT_DATE/CURRENT_TIMESTAMP (default: the time of the build, in UTC). Raises
        ConfigError for a name that is not a column, a type or an expression this stage
        cannot use."""
        return _Builder(source_schema, options, table, now or datetime.now(UTC)).build()

    # --- running ----------------------------------------------------------------------------

    def apply(self, batch: RawBatch) -> TransformedBatch:
        """The batch as the destination receives it. Without per-row work (identity, renames,
        a plain selection) rows are passed or picked as they are; otherwise every row must be a
        tuple of the source's width, and one that is not is rejected."""
        read = len(batch.rows) + len(batch.rejected)
        if len(batch.rows) != len(batch.positions):
            raise ValueError(
                f"a batch of {len(batch.rows)} rows has {len(batch.positions)} positions"
            )
        if self._is_identity or (self._run is None and not self._reorders):
            return TransformedBatch(
                batch.rows, batch.positions, batch.rejected, 0, read, batch.cursor, batch.nbytes
            )
        if self._run is None and self._select is not None:
            try:
                rows = list(map(self._select, batch.rows))
            except (IndexError, TypeError):
                pass  # a short row: the loop below rejects it
            else:
                return TransformedBatch(
                    rows,
                    batch.positions,
                    batch.rejected,
                    0,
                    read,
                    batch.cursor,
                    batch.nbytes,
                )
        rejected = list(batch.rejected)
        with localcontext(DECIMAL_CONTEXT):
            rows, positions, filtered = self._loop(batch.rows, batch.positions, rejected)
        return TransformedBatch(
            rows, positions, rejected, filtered, read, batch.cursor, batch.nbytes
        )


class _Builder:
    def __init__(self, source: Schema, options: Options, table: str | None, now: datetime) -> None:
        self.source = source
        self.options = options
        self.table = table
        self.now = now
        self.names = list(source.names)
        self.types = [parse_type(column.type) for column in source.columns]

    def build(self) -> Transformer:
        options = self.options
        casts = self.casts()
        outputs = self.outputs()
        refs = {
            column.name: ColumnRef(
                f"c{i}",
                casts[i].target if i in casts else self.types[i],
                column.nullable,
            )
            for i, column in enumerate(self.source.columns)
        }
        dialect = options.dialect or DEFAULT_DIALECT
        namespace = Namespace()
        where: Code | None = None
        where_uses: set[int] = set()
        if options.where is not None:
            compiler = self.compiler(namespace, refs, options.where, dialect, "WHERE")
            where = compiler.condition()
            where_uses = {self.names.index(n) for n in compiler.used}
            if where.const and where.value is True:
                where = None  # WHERE true
        computes: list[tuple[str, Code]] = []
        compute_uses: set[int] = set()
        for computed in options.compute:
            label = f"COMPUTE {computed.name}"
            compiler = self.compiler(namespace, refs, computed.sql, dialect, label)
            code = compiler.compile()
            computes.append((computed.name, code))
            compute_uses |= {self.names.index(n) for n in compiler.used}

        columns: list[Column] = []
        sources: dict[str, str] = {}
        for name, index in outputs:
            column = self.source.columns[index]
            type_ = casts[index].target.name if index in casts else column.type
            columns.append(Column(name, type_, column.nullable))
            sources[name] = column.name
        for name, code in computes:
            type_ = code.type.name if not code.untyped else "text"
            columns.append(Column(name, type_, code.nullable))
        self.check_unique([c.name for c in columns])
        schema = Schema(tuple(columns), self.primary_key(outputs))
        self.check_keys(schema, outputs)

        output_indexes = [index for _, index in outputs]
        used_casts = {
            i: cast
            for i, cast in casts.items()
            if i in where_uses or i in compute_uses or i in output_indexes
        }
        everything = output_indexes == list(range(len(self.names)))
        identity = (
            not used_casts
            and where is None
            and not computes
            and everything
            and [n for n, _ in outputs] == self.names
        )
        text_checks = self.text_checks(used_casts, where is None and not computes and everything)
        staging_checks = self.text_checks(used_casts, True)
        generator = _Generator(namespace, self.source, self.names)
        source_code, function = generator.function(
            casts=used_casts,
            where=where,
            where_uses=where_uses,
            computes=computes,
            compute_uses=compute_uses,
            outputs=output_indexes,
        )
        per_row = bool(used_casts) or where is not None or bool(computes)
        select: Callable[[Row], Any] | None = None
        if not per_row and not everything and output_indexes:
            if len(output_indexes) == 1:
                select = _single(output_indexes[0])
            else:
                select = operator.itemgetter(*output_indexes)
        return Transformer(
            source_schema=self.source,
            schema=schema,
            is_identity=identity,
            sources=sources,
            run=function if per_row else None,
            select=select,
            reorders=not everything,
            source_code=source_code,
            loop=function,
            text_checks=text_checks,
            casts={self.names[i]: cast.target.name for i, cast in sorted(used_casts.items())},
            staging_checks=staging_checks,
        )

    def text_checks(self, casts: dict[int, _Cast], plain: bool) -> tuple[int, ...] | None:
        """Whether the destination may parse the source's text itself (the pass-through
        path): None when not; else the columns whose values must be looked at first. Every
        column must be output as it is, in order, and every CAST must go from text to a type
        PostgreSQL reads as this stage converts it. A date or timestamp written with a UTC
        offset is the exception (this stage converts it to UTC, PostgreSQL drops the offset),
        and so is a bare JSON `null` (this stage loads SQL NULL, PostgreSQL the JSON null), so
        those columns are checked batch by batch."""
        if not plain:
            return None
        checks = []
        for index, cast in casts.items():
            if self.types[index].kind is not Kind.TEXT or cast.target.kind not in _TEXT_SAFE:
                return None
            if cast.target.kind in (Kind.DATE, Kind.TIMESTAMP, Kind.JSON):
                checks.append(index)
        return tuple(sorted(checks))

    def compiler(
        self,
        namespace: Namespace,
        refs: dict[str, ColumnRef],
        sql: Sql,
        dialect: str,
        label: str,
    ) -> ExpressionCompiler:
        renamed = {
            target: self.names[index]
            for target, index in self.outputs()
            if target != self.names[index]
        }
        return ExpressionCompiler(
            namespace, refs, Sql(sql.text, sql.dialect or dialect), label, self.now, renamed=renamed
        )

    # --- names ------------------------------------------------------------------------------

    def find(self, name: str, what: str) -> int:
        found = resolve_column(name, dict.fromkeys(self.names), exact=False)
        if found is None:
            raise ConfigError(
                f"{what} names '{name}', which is not a column of the source"
                f"{suggest(name, self.names)}; the source has {_listing(self.names)}"
            )
        return self.names.index(found)

    def outputs(self) -> list[tuple[str, int]]:
        if not self.options.columns:
            return [(name, i) for i, name in enumerate(self.names)]
        return [(m.target, self.find(m.source, "COLUMNS")) for m in self.options.columns]

    def check_unique(self, names: Sequence[str]) -> None:
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ConfigError(
                    f"column '{name}' is produced twice (by COLUMNS or COMPUTE); rename one of them"
                )
            seen.add(name)

    def check_keys(self, schema: Schema, outputs: Sequence[tuple[str, int]]) -> None:
        names = list(schema.names)
        renamed = {self.names[index]: name for name, index in outputs if name != self.names[index]}
        wanted = [("KEY", k) for k in self.options.key]
        if self.options.cursor is not None:
            wanted.append(("CURSOR", self.options.cursor))
        for clause, name in wanted:
            if name in names:
                continue
            if name in renamed:
                raise ConfigError(
                    f"{clause} names '{name}', which COLUMNS renames to '{renamed[name]}': "
                    f"{clause} names output columns"
                )
            raise ConfigError(
                f"{clause} names '{name}', which is not a column of the output"
                f"{suggest(name, names)}; the output has {_listing(names)}"
            )

    def primary_key(self, outputs: Sequence[tuple[str, int]]) -> tuple[str, ...]:
        if self.options.key:
            return tuple(self.options.key)
        output_of = {self.names[index]: name for name, index in outputs}
        key = self.source.primary_key
        if key and all(k in output_of for k in key):
            return tuple(output_of[k] for k in key)
        return ()

    # --- casts ------------------------------------------------------------------------------

    def casts(self) -> dict[int, _Cast]:
        by_column: dict[int, _Cast] = {}
        by_type: dict[int, _Cast] = {}
        scores: dict[int, int] = {}  # how specific the TYPE rule chosen for a column is
        for rule in self.options.casts:
            target = parse_type(rule.to)
            written = _written(rule)
            if not can_convert(target):
                raise ConfigError(
                    f"{written}: the transform stage cannot convert values to {rule.to}"
                )
            if rule.by == "column":
                index = self.cast_column(rule, written)
                if index is not None:
                    self.add_cast(by_column, _Cast(index, target, written))
            elif rule.by == "type":
                for index, column in enumerate(self.source.columns):
                    # a database source's own spelling of the type when it gives one, which is
                    # what a rule written for that database names (`tinyint(1)`)
                    score = (
                        specificity(rule.match, column.native)
                        if column.native is not None
                        else (0 if same_type(column.type, rule.match) else None)
                    )
                    if score is None or score < scores.get(index, score):
                        continue
                    if score > scores.get(index, score):
                        del by_type[index]  # a more specific rule wins
                    scores[index] = score
                    self.add_cast(by_type, _Cast(index, target, written))
            else:
                raise ConfigError(f"unknown CAST rule kind '{rule.by}'")
        chosen = {**by_type, **by_column}  # a COLUMN rule wins over a TYPE rule
        result: dict[int, _Cast] = {}
        for index, cast in chosen.items():
            column = self.source.columns[index]
            source_type = self.types[index]
            if same_type(column.type, cast.target.name) or source_type == cast.target:
                continue  # already that type
            # a type this stage does not know (MySQL's year, ...) is converted by its values
            allowed = CAN_CAST.get(source_type.kind) if source_type.kind is not Kind.OTHER else None
            if allowed is not None and cast.target.kind not in allowed:
                raise ConfigError(
                    f"{cast.rule}: column {column.name} is {column.type}, which cannot be "
                    f"cast to {cast.target.name}"
                )
            result[index] = cast
        return result

    def add_cast(self, rules: dict[int, _Cast], cast: _Cast) -> None:
        previous = rules.get(cast.index)
        if previous is not None and previous.target != cast.target:
            raise ConfigError(
                f"column {self.names[cast.index]} has two CAST rules: '{previous.rule}' and "
                f"'{cast.rule}'"
            )
        rules[cast.index] = cast

    def cast_column(self, rule: CastRule, written: str) -> int | None:
        parts = dotted_parts(rule.match)
        if len(parts) > 1:
            if self.table is None:
                raise ConfigError(
                    f"{written}: names a table's column, but this item copies one table or "
                    "query: name the column alone"
                )
            table = self.table.rsplit(".", 1)[-1]
            if parts[-2] != table and parts[-2].lower() != table.lower():
                return None  # a rule for another table of the database
        return self.find(parts[-1], written)


#: Types PostgreSQL parses from text as this stage converts text to them.
_TEXT_SAFE = frozenset(
    {
        Kind.TEXT,
        Kind.INT,
        Kind.NUMERIC,
        Kind.FLOAT,
        Kind.BOOL,
        Kind.JSON,
        Kind.DATE,
        Kind.TIMESTAMP,
        Kind.TIMESTAMPTZ,
    }
)
#: A UTC offset ending a date or timestamp ("+02", "-05:30", "+0100").
_OFFSET = re.compile(r"\d[+-]\d\d(?::?\d\d)?\s*$", re.MULTILINE)
#: How many last characters of a value `text_safe` looks at: a bare date ("2024-01-02").
_TAIL = 10
#: `_OFFSET` ending a tail, but not the day of a bare date; the tails are joined by, begin
#: and end with newlines. It starts at the sign, so that the scan stops only at signs.
_OFFSET_TAIL = re.compile(r"[+-](?<=\d[+-])(?<!\n\d\d\d\d-\d\d-)\d\d(?::?\d\d)?\n")
#: A tail ending in white space (a newline inside a value counts too).
_SPACE_TAIL = re.compile(r"\s\n")


def _single(index: int) -> Callable[[Row], Row]:
    def select(row: Row) -> Row:
        return (row[index],)

    return select


def _written(rule: CastRule) -> str:
    return f"CAST {rule.by.upper()} {rule.match} TO {rule.to}"


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:12])
    return shown + (f", ... ({len(names)} columns)" if len(names) > 12 else "")


# --- code generation ------------------------------------------------------------------------


class _Generator:
    """Writes the batch function: one loop over the rows, every expression inlined."""

    def __init__(self, namespace: Namespace, source: Schema, names: list[str]) -> None:
        self.ns = namespace
        self.source = source
        self.names = names
        self.lines: list[str] = []
        g = namespace.globals
        g["_Rejected"] = Rejected
        g["_EVAL_ERRORS"] = rt.EVAL_ERRORS
        g["_CastFailed"] = CastFailed
        g["_why"] = rt.why
        g["_shape"] = self.shape
        g["_range"] = _out_of_range
        g["_date"] = date

    def shape(self, row: Any) -> str:
        if not isinstance(row, tuple):
            return f"a row must be a tuple of values, not {type(row).__name__}"
        return f"row has {len(row)} values, the source has {len(self.names)} columns"

    def emit(self, line: str) -> None:
        self.lines.append(line)

    def function(
        self,
        *,
        casts: dict[int, _Cast],
        where: Code | None,
        where_uses: set[int],
        computes: list[tuple[str, Code]],
        compute_uses: set[int],
        outputs: list[int],
    ) -> tuple[str, BatchFunction]:
        compute_vars = {f"c{i}" for i in range(len(self.names))}
        needed = sorted(where_uses | set(casts) | compute_uses)
        emit = self.emit
        emit("def _transform(rows, positions, rejected):")
        emit("    out = []")
        emit("    kept = []")
        emit("    filtered = 0")
        emit("    add_row = out.append")
        emit("    add_position = kept.append")
        emit("    reject = rejected.append")
        emit("    for row, pos in zip(rows, positions):")
        # a row of the wrong shape (a reader's bug) is rejected, not loaded askew
        emit(f"        if row.__class__ is not tuple or len(row) != {len(self.names)}:")
        emit("            reject(_Rejected(pos, _shape(row), row))")
        emit("            continue")
        for index in needed:
            emit(f"        c{index} = row[{index}]")
        early = [casts[i] for i in sorted(casts) if i in where_uses]
        late = [casts[i] for i in sorted(casts) if i not in where_uses]
        for cast in early:
            self.cast(cast)
        if where is not None:
            emit("        try:")
            emit(f"            _w = {where.text}")
            emit("        except _EVAL_ERRORS as _e:")
            emit("            reject(_Rejected(pos, 'WHERE: ' + _why(_e), row))")
            emit("            continue")
            emit("        if _w is not True:" if where.nullable else "        if not _w:")
            emit("            filtered += 1")
            emit("            continue")
        for cast in late:
            self.cast(cast)
        for number, (name, code) in enumerate(computes):
            label = self.ns.constant(f"COMPUTE {name}: ")
            emit("        try:")
            emit(f"            _v{number} = {code.text}")
            if code.type.kind is Kind.INT and not code.const and code.text not in compute_vars:
                low, high = code.type.int_bounds
                check = f"_v{number} is not None and " if code.nullable else ""
                emit(f"            if {check}not {low} <= _v{number} <= {high}:")
                emit(f"                _range(_v{number}, {code.type.name!r})")
            emit("        except _EVAL_ERRORS as _e:")
            emit(f"            reject(_Rejected(pos, {label} + _why(_e), row))")
            emit("            continue")
        emit(f"        add_row({self.row(casts, needed, computes, outputs)})")
        emit("        add_position(pos)")
        emit("    return out, kept, filtered")
        source = "\n".join(self.lines) + "\n"
        scope: dict[str, Any] = {}
        exec(compile(source, "<stratum transform>", "exec"), self.ns.globals, scope)
        function: BatchFunction = scope["_transform"]
        return source, function

    def cast(self, cast: _Cast) -> None:
        var = f"c{cast.index}"
        convert = self.ns.add(converter(cast.target), "_cv")
        fast = _fast_check(cast.target, var)
        label = self.ns.constant(f"column {self.names[cast.index]}: ")
        condition = f"{var} is not None" + (f" and not ({fast})" if fast else "")
        self.emit(f"        if {condition}:")
        self.emit("            try:")
        self.emit(f"                {var} = {convert}({var})")
        self.emit("            except _CastFailed as _e:")
        self.emit(f"                reject(_Rejected(pos, {label} + _e.reason, row))")
        self.emit("                continue")

    def row(
        self,
        casts: dict[int, _Cast],
        needed: list[int],
        computes: list[tuple[str, Code]],
        outputs: list[int],
    ) -> str:
        extra = [f"_v{n}" for n in range(len(computes))]
        untouched = not any(i in casts for i in outputs)
        if untouched and outputs == list(range(len(self.names))):
            return f"row + ({', '.join(extra)},)" if extra else "row"  # row is a tuple
        bound = set(needed)
        parts = [f"c{i}" if i in bound else f"row[{i}]" for i in outputs] + extra
        return f"({', '.join(parts)},)" if parts else "()"


def _out_of_range(value: Any, type_name: str) -> None:
    raise CastFailed(f"{show(value)} is out of range for {type_name}")


def _fast_check(target: SqlType, var: str) -> str | None:
    """A test that a value already is of `target` (so the converter is not called)."""
    kind = target.kind
    if kind is Kind.TEXT and target.precision is None:
        return f"{var}.__class__ is str"
    if kind is Kind.INT:
        low, high = target.int_bounds
        return f"{var}.__class__ is int and {low} <= {var} <= {high}"
    if kind is Kind.FLOAT and target.name == "double precision":
        return f"{var}.__class__ is float"
    if kind is Kind.BOOL:
        return f"{var}.__class__ is bool"
    if kind is Kind.DATE:
        return f"{var}.__class__ is _date"
    if kind is Kind.JSON:
        return f"{var}.__class__ is dict or {var}.__class__ is list"
    if kind is Kind.BYTES:
        return f"{var}.__class__ is bytes"
    return None
