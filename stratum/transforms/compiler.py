"""Compile a COMPUTE or WHERE expression, once per item, into Python source code.

The expression is parsed with sqlglot in the item's dialect and translated node by node into
a Python expression over local variables (one per source column it reads). The transformer
puts those expressions into one generated function that runs a whole batch in a loop, so a row
costs a few bytecodes per operator, with no interpretation of a tree per row.

Semantics are PostgreSQL's (the destination's), with the dialect's parse deciding what the
text means (`a / b` is integer division in PostgreSQL and not in MySQL; `concat` skips NULLs in
PostgreSQL and not in MySQL):

* NULL: every operator and function returns NULL when an argument is NULL, except AND/OR
  (three-valued logic), IS [NOT] NULL, IS [NOT] DISTINCT FROM, COALESCE, CASE, concat() where
  the dialect skips NULLs, GREATEST/LEAST where the dialect ignores NULLs.
* Types are inferred per node, as PostgreSQL resolves them: integer op integer is an integer,
  numeric (Decimal) when a numeric takes part, double precision (float) when a float does; a
  string literal takes the type of what it meets (`created_at >= '2024-01-01'` compares
  timestamps). Comparing or combining types PostgreSQL would refuse (text with a number) is a
  ConfigError at build time, with a hint to CAST the column.
* Constant sub-expressions are evaluated once, at build time (an error in one, like `1 / 0`,
  is a ConfigError, as PostgreSQL reports it when planning).
* Text compares by code point (PostgreSQL's "C" collation); NaN equals NaN and sorts above
  every other double, as in PostgreSQL.
* numeric division keeps at least 20 significant digits and the operands' scales, rounded
  half away from zero (PostgreSQL's rule gives 16 to 20); an integer result out of the range
  of its type (integer * integer beyond 2^31) rejects the row, as PostgreSQL's overflow error.
* CURRENT_DATE and CURRENT_TIMESTAMP/now() are fixed when the item's transformer is built, in
  UTC; timestamptz values are UTC, and date_trunc/extract work on them in UTC.
* Dialect-specific edge cases that this stage cannot tell apart (a zero or negative start in
  substring, a negative length in left/right outside PostgreSQL) reject the row.

Anything outside the supported set is a ConfigError naming it and its position; the evaluator
never guesses. Supported: literals, columns, + - * / % (and DIV, //), comparisons, AND OR NOT,
IS [NOT] NULL/TRUE/FALSE, IS [NOT] DISTINCT FROM, [NOT] IN (list), [NOT] BETWEEN,
[NOT] LIKE/ILIKE [ESCAPE], CASE, IF, COALESCE/IFNULL/NVL, NULLIF, GREATEST, LEAST,
CAST/::/TRY_CAST, ||, concat, concat_ws, lower, upper, trim/ltrim/rtrim/btrim, length,
substring/substr, replace, left, right, position/strpos, abs, round, floor, ceil, date_trunc,
extract (date_part in PostgreSQL), CURRENT_DATE, CURRENT_TIMESTAMP/now(), INTERVAL constants
(added to or subtracted from dates and timestamps), date + integer, date - date.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from stratum.errors import ConfigError
from stratum.plan.model import Sql
from stratum.transforms import runtime as rt
from stratum.transforms.convert import (
    DECIMAL_CONTEXT,
    CastFailed,
    can_convert,
    converter,
)
from stratum.transforms.types import (
    BIGINT,
    BOOLEAN,
    DATE,
    DOUBLE,
    INTEGER,
    INTERVAL,
    NULL,
    NUMERIC,
    TEXT,
    TIMESTAMP,
    TIMESTAMPTZ,
    Kind,
    SqlType,
    from_datatype,
    unify_numbers,
    widest_int,
)

#: Dialects whose string functions follow PostgreSQL for out-of-range positions and lengths.
PG_DIALECTS = frozenset({"postgres", "redshift", "materialize", "risingwave"})

_SIMPLE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*|\d{1,18}|\(-\d{1,18}\))$")
_NEVER = object()  # a value no expression returns: `(None if (t := x) is _NEVER else ...)`

CAN_CAST: dict[Kind, frozenset[Kind]] = {
    Kind.TEXT: frozenset(Kind) - {Kind.OTHER, Kind.NULL, Kind.INTERVAL},
    Kind.INT: frozenset({Kind.INT, Kind.NUMERIC, Kind.FLOAT, Kind.BOOL, Kind.TEXT}),
    Kind.NUMERIC: frozenset({Kind.INT, Kind.NUMERIC, Kind.FLOAT, Kind.TEXT}),
    Kind.FLOAT: frozenset({Kind.INT, Kind.NUMERIC, Kind.FLOAT, Kind.TEXT}),
    Kind.BOOL: frozenset({Kind.BOOL, Kind.INT, Kind.TEXT}),
    Kind.DATE: frozenset({Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ, Kind.TEXT}),
    Kind.TIMESTAMP: frozenset({Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ, Kind.TIME, Kind.TEXT}),
    Kind.TIMESTAMPTZ: frozenset(
        {Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ, Kind.TIME, Kind.TEXT}
    ),
    Kind.TIME: frozenset({Kind.TIME, Kind.TEXT}),
    Kind.JSON: frozenset({Kind.JSON, Kind.TEXT}),
    Kind.BYTES: frozenset({Kind.BYTES, Kind.TEXT}),
    Kind.OTHER: frozenset({Kind.TEXT}),
}

_TIMES = (Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ)
_ORDERED = frozenset(
    {
        Kind.INT,
        Kind.NUMERIC,
        Kind.FLOAT,
        Kind.TEXT,
        Kind.BOOL,
        Kind.DATE,
        Kind.TIMESTAMP,
        Kind.TIMESTAMPTZ,
        Kind.TIME,
        Kind.BYTES,
    }
)


@dataclass(frozen=True, slots=True)
class Code:
    """A compiled (sub-)expression: Python source, its SQL type and whether it can be NULL."""

    text: str
    type: SqlType
    nullable: bool
    const: bool = False  # reads no column: evaluated at build time
    value: Any = None  # the value, when const
    untyped: bool = False  # a string literal: its context decides its type


@dataclass(frozen=True, slots=True)
class ColumnRef:
    """A source column as expressions see it: the local variable that holds it."""

    var: str
    type: SqlType
    nullable: bool


class Namespace:
    """The globals of the generated code: runtime helpers, converters and constants."""

    def __init__(self) -> None:
        self.globals: dict[str, Any] = {
            "Decimal": Decimal,
            "_NEVER": _NEVER,
            "_rt": rt,
            "_UTC": UTC,
        }
        self._count = itertools.count()

    def add(self, value: Any, prefix: str = "_k") -> str:
        name = f"{prefix}{next(self._count)}"
        self.globals[name] = value
        return name

    def temp(self) -> str:
        return f"_t{next(self._count)}"

    def constant(self, value: Any) -> str:
        if value is None or value is True or value is False:
            return repr(value)
        if value.__class__ is int and abs(value) < 10**18:
            return repr(value) if value >= 0 else f"({value})"
        if value.__class__ is str and len(value) <= 60 and value.isprintable():
            return repr(value)
        return self.add(value)


def suggest(name: str, candidates: Sequence[str]) -> str:
    """' (did you mean 'x'?)' or ''."""
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return f" (did you mean '{lowered[name.lower()]}'?)"
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def resolve_column(name: str, columns: Mapping[str, Any], *, exact: bool) -> str | None:
    """The column `name` refers to: the same name, else (unless `exact`, e.g. a quoted
    identifier) the only column whose name differs in case alone."""
    if name in columns:
        return name
    if exact:
        return None
    matches = [c for c in columns if c.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


class ExpressionCompiler:
    """Compiles one expression (`sql`) over `columns` into a `Code`."""

    def __init__(
        self,
        namespace: Namespace,
        columns: Mapping[str, ColumnRef],
        sql: Sql,
        label: str,
        now: datetime,
        *,
        renamed: Mapping[str, str] | None = None,
    ) -> None:
        self.ns = namespace
        self.renamed = renamed or {}  # output name -> the source column COLUMNS renames
        self.columns = columns
        self.sql = sql
        self.dialect = sql.dialect
        self.label = label
        self.now = now
        self.used: set[str] = set()
        self.pg = sql.dialect in PG_DIALECTS
        try:
            self.safe_division = bool(sqlglot.Dialect.get_or_raise(sql.dialect).SAFE_DIVISION)
        except (SqlglotError, ValueError) as exc:
            raise ConfigError(f"{label}: unknown SQL dialect '{sql.dialect}'") from exc

    # --- entry points -----------------------------------------------------------------------

    def compile(self) -> Code:
        try:
            tree = sqlglot.parse_one(self.sql.text, read=self.dialect)
        except SqlglotError as exc:
            detail = str(exc).split("\n", 1)[0]
            raise ConfigError(f"{self.label}: invalid SQL ({self.dialect}): {detail}") from exc
        if isinstance(tree, exp.Query) or not isinstance(tree, exp.Expr):
            raise ConfigError(f"{self.label}: expected an expression, found a query")
        return self.expr(tree)

    def condition(self) -> Code:
        code = self.compile()
        if code.untyped:
            code = self.coerce_literal(code, BOOLEAN, None)
        if code.type.kind not in (Kind.BOOL, Kind.NULL):
            raise ConfigError(
                f"{self.label}: the condition must be true or false, but "
                f"'{self.sql.text.strip()}' is {self.type_name(code)}"
            )
        return code

    # --- errors -----------------------------------------------------------------------------

    def where(self, node: exp.Expr) -> str:
        start = _start(node)
        if start is None:
            return ""
        before = self.sql.text[:start]
        line = before.count("\n") + 1
        column = start - (before.rfind("\n") + 1) + 1
        return f" at line {line}, column {column}"

    def written(self, node: exp.Expr) -> str:
        """The name of a function as the SQL writes it."""
        meta = node.meta
        start, end = meta.get("start"), meta.get("end")
        if isinstance(start, int) and isinstance(end, int):
            text = self.sql.text[start : end + 1]
            if text and text.replace("_", "").isalnum():
                return text
        if isinstance(node, exp.Anonymous):
            return str(node.name)
        if isinstance(node, exp.Func):
            return str(node.sql_name()).lower()
        return node.key

    def describe(self, node: exp.Expr) -> str:
        if isinstance(node, exp.Func) and not isinstance(
            node, exp.Binary | exp.Connector | exp.Cast
        ):
            return f"function {self.written(node)}()"
        snippet = node.sql(dialect=self.dialect)
        if len(snippet) > 40:
            snippet = snippet[:37] + "..."
        return f"'{snippet}'"

    def fail(self, node: exp.Expr, problem: str) -> ConfigError:
        return ConfigError(f"{self.label}: {self.describe(node)}{self.where(node)} {problem}")

    def unsupported(self, node: exp.Expr, detail: str = "") -> ConfigError:
        return self.fail(
            node,
            "is not supported by the transform stage"
            + (f" ({detail})" if detail else "")
            + "; COMPUTE and WHERE take arithmetic, comparisons, AND/OR/NOT, IS NULL, IN, "
            "BETWEEN, LIKE, CASE, COALESCE, NULLIF, CAST and common text, number and date "
            "functions (see stratum/transforms/compiler.py)",
        )

    def check_args(self, node: exp.Expr, *allowed: str) -> None:
        for key, value in node.args.items():
            if key in allowed or key == "_type" or value in (None, False, [], ""):
                continue
            raise self.unsupported(node, f"its '{key}' part")

    def type_name(self, code: Code) -> str:
        if code.untyped:
            return "a string literal"
        return "NULL" if code.type.kind is Kind.NULL else code.type.name

    # --- building blocks --------------------------------------------------------------------

    def literal(self, value: Any, type_: SqlType, *, untyped: bool = False) -> Code:
        return Code(
            self.ns.constant(value),
            type_,
            value is None,
            const=True,
            value=value,
            untyped=untyped,
        )

    def fold(self, node: exp.Expr, code: Code) -> Code:
        """Evaluate a constant expression now."""
        try:
            with localcontext(DECIMAL_CONTEXT):
                value = eval(code.text, dict(self.ns.globals))
        except rt.EVAL_ERRORS as exc:
            raise self.fail(node, f"cannot be evaluated: {rt.why(exc)}") from exc
        return self.literal(value, code.type)

    def make(
        self,
        node: exp.Expr,
        text: str,
        type_: SqlType,
        nullable: bool,
        operands: Sequence[Code],
    ) -> Code:
        code = Code(text, type_, nullable)
        if all(op.const for op in operands):
            return self.fold(node, code)
        return code

    def strict(
        self,
        node: exp.Expr,
        operands: Sequence[Code],
        build: Callable[..., str],
        type_: SqlType,
        *,
        multi: bool = False,
        nullable: bool = False,
    ) -> Code:
        """An operator or function that is NULL when any operand is NULL. `build` makes the
        Python expression from the operands' Python expressions; with `multi` it may use each
        more than once."""
        if any(op.const and op.value is None for op in operands):
            return self.literal(None, type_)
        guards: list[str] = []
        names: list[str] = []
        for op in operands:
            if op.nullable and _SIMPLE.match(op.text):
                guards.append(f"{op.text} is None")
                names.append(op.text)
            elif op.nullable:
                temp = self.ns.temp()
                guards.append(f"({temp} := {op.text}) is None")
                names.append(temp)
            elif multi and not _SIMPLE.match(op.text):
                temp = self.ns.temp()
                guards.append(f"({temp} := {op.text}) is _NEVER")
                names.append(temp)
            else:
                names.append(op.text)
        body = build(*names)
        text = f"(None if {' or '.join(guards)} else {body})" if guards else f"({body})"
        null = nullable or any(op.nullable for op in operands)
        return self.make(node, text, type_, null, operands)

    def let(self, code: Code) -> tuple[str, Callable[[str], str]]:
        """Bind `code` to a variable for use more than once: (the name, a wrapper that puts
        the binding around the expression that uses it)."""
        if _SIMPLE.match(code.text):
            return code.text, _same
        temp = self.ns.temp()
        return temp, lambda body: f"(None if ({temp} := {code.text}) is _NEVER else {body})"

    def call(self, function: Any, prefix: str = "_f") -> str:
        return self.ns.add(function, prefix)

    # --- types ------------------------------------------------------------------------------

    def coerce_literal(self, code: Code, target: SqlType, node: exp.Expr | None) -> Code:
        """A string literal read as `target` (PostgreSQL's unknown-type literal)."""
        if target.kind in (Kind.TEXT, Kind.NULL):
            return replace(code, untyped=False, type=TEXT)
        if target.kind is Kind.INTERVAL:
            try:
                return self.literal(rt.parse_interval(str(code.value), None), INTERVAL)
            except ValueError as exc:
                raise ConfigError(f"{self.label}: {exc}") from exc
        if not can_convert(target):
            raise ConfigError(f"{self.label}: cannot read the string {code.text} as {target.name}")
        try:
            value = converter(target)(code.value)
        except CastFailed as exc:
            at = self.where(node) if node is not None else ""
            raise ConfigError(f"{self.label}: {exc.reason}{at}") from exc
        return self.literal(value, target)

    def convert(self, code: Code, target: SqlType, node: exp.Expr) -> Code:
        """`code` as a value of `target`, for types that mix implicitly (int -> numeric ->
        double precision, date -> timestamp -> timestamptz)."""
        if code.untyped:
            return self.coerce_literal(code, target, node)
        source, kind = code.type.kind, target.kind
        if source is Kind.NULL:
            return replace(code, type=target)
        if source is kind:
            if kind is Kind.NUMERIC and code.type != target:
                return replace(code, type=target)
            return code
        if kind is Kind.NUMERIC and source is Kind.INT:
            return self.strict(node, [code], lambda x: f"Decimal({x})", target)
        if kind is Kind.FLOAT and source in (Kind.INT, Kind.NUMERIC):
            return self.strict(node, [code], lambda x: f"float({x})", target)
        if kind is Kind.TIMESTAMP and source is Kind.DATE:
            helper = self.call(rt.date_to_timestamp)
            return self.strict(node, [code], lambda x: f"{helper}({x})", target)
        if kind is Kind.TIMESTAMPTZ and source in (Kind.DATE, Kind.TIMESTAMP):
            helper = self.call(rt.to_timestamptz)
            return self.strict(node, [code], lambda x: f"{helper}({x})", target)
        if kind is Kind.INT and source is Kind.INT:
            return code
        raise self.fail(node, f"mixes {self.type_name(code)} with {target.name}")

    def common_type(self, node: exp.Expr, codes: Sequence[Code], what: str) -> SqlType:
        """The type values of `codes` are compared or combined in (PostgreSQL's resolution for
        CASE, COALESCE, IN and comparisons)."""
        typed = [c for c in codes if not c.untyped and c.type.kind is not Kind.NULL]
        if not typed:
            return TEXT if any(c.untyped for c in codes) else NULL
        result = typed[0].type
        for code in typed[1:]:
            other = code.type
            if result.is_number and other.is_number:
                if result.kind is other.kind is Kind.INT:
                    result = widest_int(result, other)
                elif result.kind is other.kind is Kind.NUMERIC and result == other:
                    pass
                else:
                    result = unify_numbers(result, other)
            elif result.kind in _TIMES and other.kind in _TIMES:
                result = max(result, other, key=lambda t: _TIMES.index(t.kind))
                if result.precision is not None:
                    result = TIMESTAMPTZ if result.kind is Kind.TIMESTAMPTZ else TIMESTAMP
            elif result.kind is other.kind and result.kind is not Kind.OTHER:
                if result != other:
                    result = TEXT if result.kind is Kind.TEXT else result
            else:
                raise self.fail(
                    node,
                    f"{what} {result.name} with {other.name}"
                    + self.cast_hint(codes, result, other),
                )
        return result

    def cast_hint(self, codes: Sequence[Code], a: SqlType, b: SqlType) -> str:
        text_columns = [
            name
            for name, ref in self.columns.items()
            if name in self.used and ref.type.kind is Kind.TEXT
        ]
        target = b if a.kind is Kind.TEXT else a
        if text_columns and Kind.TEXT in (a.kind, b.kind):
            return (
                f"; CAST COLUMN {text_columns[0]} TO {target.name} (or CAST it in the "
                f"expression) to use it as {target.name}"
            )
        return ""

    def to_type(self, node: exp.Expr, codes: Sequence[Code], target: SqlType) -> list[Code]:
        return [self.convert(code, target, node) for code in codes]

    # --- dispatch ---------------------------------------------------------------------------

    def expr(self, node: exp.Expr) -> Code:
        handler = _HANDLERS.get(type(node))
        if handler is None:
            if isinstance(node, exp.AggFunc):
                raise self.fail(node, "is an aggregate: COMPUTE and WHERE see one row at a time")
            if isinstance(node, exp.Window):
                raise self.fail(node, "is a window function: COMPUTE and WHERE see one row")
            if isinstance(node, exp.Query | exp.Subquery | exp.Exists):
                raise self.fail(node, "is a subquery: COMPUTE and WHERE see only the row")
            raise self.unsupported(node)
        return handler(self, node)

    # --- leaves -----------------------------------------------------------------------------

    def column(self, node: exp.Column) -> Code:
        if node.table or node.args.get("db") or node.args.get("catalog"):
            raise self.fail(node, "is qualified: name the column alone")
        identifier = node.this
        if isinstance(identifier, exp.Star):
            raise self.unsupported(node)
        name = str(node.name)
        quoted = bool(isinstance(identifier, exp.Identifier) and identifier.quoted)
        found = resolve_column(name, self.columns, exact=quoted)
        if found is None:
            if name in self.renamed:
                raise ConfigError(
                    f"{self.label}: '{name}'{self.where(node)} is the name COLUMNS gives to "
                    f"'{self.renamed[name]}': expressions read source columns by their source "
                    "names"
                )
            raise ConfigError(
                f"{self.label}: '{name}'{self.where(node)} is not a column of the source"
                f"{suggest(name, list(self.columns))}"
            )
        self.used.add(found)
        ref = self.columns[found]
        return Code(ref.var, ref.type, ref.nullable)

    def literal_node(self, node: exp.Literal) -> Code:
        text = str(node.this)
        if node.is_string:
            return self.literal(text, TEXT, untyped=True)
        if re.fullmatch(r"\d+", text):
            value = int(text)
            if value <= 2**31 - 1:
                return self.literal(value, INTEGER)
            if value <= 2**63 - 1:
                return self.literal(value, BIGINT)
            return self.literal(Decimal(value), NUMERIC)
        try:
            number = Decimal(text)
            if isinstance(exponent := number.as_tuple().exponent, int) and exponent > 0:
                number = number.quantize(Decimal(1), context=DECIMAL_CONTEXT)  # 1e5: 100000
            return self.literal(number, NUMERIC)
        except ArithmeticError as exc:
            raise self.unsupported(node) from exc

    def null(self, node: exp.Null) -> Code:
        return self.literal(None, NULL)

    def boolean(self, node: exp.Boolean) -> Code:
        return self.literal(bool(node.this), BOOLEAN)

    def paren(self, node: exp.Paren) -> Code:
        return self.expr(node.this)

    def current_date(self, node: exp.CurrentDate) -> Code:
        self.check_args(node)
        return self.literal(self.now.date(), DATE)

    def current_timestamp(self, node: exp.CurrentTimestamp) -> Code:
        self.check_args(node)
        return self.literal(self.now, TIMESTAMPTZ)

    def interval(self, node: exp.Interval) -> Code:
        self.check_args(node, "this", "unit")
        value = node.this
        unit = node.args.get("unit")
        if not isinstance(value, exp.Literal) or not isinstance(unit, exp.Var | None):
            raise self.unsupported(node, "an interval must be a constant such as INTERVAL '1 day'")
        try:
            parsed = rt.parse_interval(str(value.this), unit.name if unit is not None else None)
        except ValueError as exc:
            raise self.fail(node, f"is not an interval this stage reads: {exc}") from exc
        return self.literal(parsed, INTERVAL)

    # --- arithmetic -------------------------------------------------------------------------

    def arithmetic(self, node: exp.Binary) -> Code:
        self.check_args(node, "this", "expression", "typed", "safe")
        left, right = self.expr(node.this), self.expr(node.expression)
        op = type(node)
        if left.untyped and right.untyped:
            raise self.fail(node, "combines two string literals: CAST one of them")
        if left.untyped:
            left = self.literal_as(right, left, node)
        if right.untyped:
            right = self.literal_as(left, right, node)
        lk, rk = left.type.kind, right.type.kind
        if Kind.NULL in (lk, rk):
            other = right if lk is Kind.NULL else left
            kind = other.type.kind
            if kind is Kind.NULL:
                return self.literal(None, NULL)
            if other.type.is_number:
                division = op is exp.Div and kind is Kind.INT and not node.args.get("typed")
                return self.literal(None, DOUBLE if division else other.type)
            if kind in _TIMES or kind is Kind.INTERVAL:
                return self.literal(None, TIMESTAMP if kind is Kind.INTERVAL else other.type)
            raise self.fail(node, f"takes numbers, not {self.type_name(other)}")
        if lk in _TIMES or rk in _TIMES or Kind.INTERVAL in (lk, rk):
            return self.date_arithmetic(node, left, right)
        if not (left.type.is_number and right.type.is_number):
            raise self.fail(
                node,
                f"takes numbers, not {self.type_name(left)} and {self.type_name(right)}"
                + self.cast_hint([left, right], left.type, right.type),
            )
        result = unify_numbers(left.type, right.type)
        if result.kind is Kind.FLOAT:
            left, right = self.to_type(node, [left, right], result)
        if op is exp.Add:
            return self.strict(node, [left, right], lambda a, b: f"{a} + {b}", result)
        if op is exp.Sub:
            return self.strict(node, [left, right], lambda a, b: f"{a} - {b}", result)
        if op is exp.Mul:
            return self.strict(node, [left, right], lambda a, b: f"{a} * {b}", result)
        if op is exp.Div:
            return self.division(node, left, right, result)
        if op is exp.IntDiv:
            helper = self.call(rt.idiv)
            out = BIGINT if result.kind is not Kind.INT else result
            return self.safe(node, [left, right], lambda a, b: f"{helper}({a}, {b})", out)
        if op is exp.Mod:
            if result.kind is Kind.INT:
                helper = self.call(rt.imod)
            elif result.kind is Kind.NUMERIC:
                helper = self.call(rt.nmod)
            else:
                helper = self.call(rt.fmod)
            return self.safe(node, [left, right], lambda a, b: f"{helper}({a}, {b})", result)
        raise self.unsupported(node)

    def literal_as(self, typed: Code, literal: Code, node: exp.Expr) -> Code:
        if typed.type.kind is Kind.NULL:
            return replace(literal, untyped=False)
        target = typed.type
        if target.kind in _TIMES:
            try:
                return self.coerce_literal(literal, INTERVAL, node)
            except ConfigError:
                pass
        return self.coerce_literal(literal, target, node)

    def division(self, node: exp.Expr, left: Code, right: Code, result: SqlType) -> Code:
        if result.kind is Kind.INT:
            if node.args.get("typed"):
                helper = self.call(rt.idiv)
                return self.safe(node, [left, right], lambda a, b: f"{helper}({a}, {b})", result)
            return self.safe(node, [left, right], lambda a, b: f"{a} / {b}", DOUBLE)
        if result.kind is Kind.NUMERIC:
            helper = self.call(rt.ndiv)
            return self.safe(node, [left, right], lambda a, b: f"{helper}({a}, {b})", result)
        return self.safe(node, [left, right], lambda a, b: f"{a} / {b}", result)

    def safe(
        self,
        node: exp.Expr,
        operands: Sequence[Code],
        build: Callable[[str, str], str],
        result: SqlType,
    ) -> Code:
        """Division and remainder: NULL for a zero divisor in dialects whose division is safe
        (MySQL), an error (the row is rejected) elsewhere."""
        if node.args.get("safe") or (isinstance(node, exp.Mod) and self.safe_division):
            return self.strict(
                node,
                operands,
                lambda a, b: f"None if {b} == 0 else {build(a, b)}",
                result,
                multi=True,
                nullable=True,
            )
        return self.strict(node, operands, build, result)

    def date_arithmetic(self, node: exp.Binary, left: Code, right: Code) -> Code:
        op = type(node)
        lk, rk = left.type.kind, right.type.kind
        if op is exp.Add and lk is Kind.INTERVAL and rk in _TIMES:
            left, right, lk, rk = right, left, rk, lk
        if op in (exp.Add, exp.Sub) and lk in _TIMES and rk is Kind.INTERVAL:
            helper = self.call(rt.add_interval)
            interval = right
            if op is exp.Sub:
                interval = self.strict(node, [right], lambda x: f"-{x}", INTERVAL)
            out = left.type if lk is not Kind.DATE else TIMESTAMP
            if out.precision is not None:
                out = TIMESTAMPTZ if out.kind is Kind.TIMESTAMPTZ else TIMESTAMP
            return self.strict(node, [left, interval], lambda a, b: f"{helper}({a}, {b})", out)
        if op is exp.Add and lk is Kind.INT and rk is Kind.DATE:
            left, right, lk, rk = right, left, rk, lk
        if op in (exp.Add, exp.Sub) and lk is Kind.DATE and rk is Kind.INT:
            helper = self.call(rt.add_days)
            sign = "" if op is exp.Add else "-"
            return self.strict(node, [left, right], lambda a, b: f"{helper}({a}, {sign}{b})", DATE)
        if op is exp.Sub and lk is Kind.DATE and rk is Kind.DATE:
            helper = self.call(rt.days_between)
            return self.strict(node, [left, right], lambda a, b: f"{helper}({a}, {b})", INTEGER)
        raise self.fail(
            node,
            f"cannot take {self.type_name(left)} and {self.type_name(right)} (dates and "
            "timestamps take + and - with an INTERVAL constant, dates with a number of days)",
        )

    def neg(self, node: exp.Neg) -> Code:
        operand = self.expr(node.this)
        if operand.untyped:
            operand = self.coerce_literal(operand, NUMERIC, node)
        if not (operand.type.is_number or operand.type.kind in (Kind.NULL, Kind.INTERVAL)):
            raise self.fail(node, f"takes a number, not {self.type_name(operand)}")
        if operand.const and operand.value is not None:
            value = operand.value
            return self.literal(-value, operand.type)
        return self.strict(node, [operand], lambda x: f"-{x}", operand.type)

    # --- comparisons ------------------------------------------------------------------------

    def comparable(self, node: exp.Expr, codes: Sequence[Code], ordered: bool) -> list[Code]:
        """`codes` converted to the one type they are compared in."""
        target = self.common_type(node, codes, "compares")
        if target.kind is Kind.NULL:
            return list(codes)
        if target.kind in (Kind.OTHER, Kind.INTERVAL) or (ordered and target.kind not in _ORDERED):
            raise self.fail(node, f"cannot compare values of type {target.name}")
        # Python compares int with Decimal exactly: no conversion needed for those
        return [
            code
            if target.kind is Kind.NUMERIC and code.type.kind is Kind.INT
            else self.convert(code, target, node)
            for code in codes
        ]

    def comparison(self, node: exp.Binary) -> Code:
        self.check_args(node, "this", "expression")
        op = _COMPARISONS[type(node)]
        left, right = self.comparable(
            node,
            [self.expr(node.this), self.expr(node.expression)],
            ordered=op not in ("==", "!="),
        )
        return self.compare(node, op, left, right)

    def compare(self, node: exp.Expr, op: str, left: Code, right: Code) -> Code:
        if left.type.kind is Kind.FLOAT or right.type.kind is Kind.FLOAT:
            template = _FLOAT_COMPARISONS[op]
            return self.strict(
                node,
                [left, right],
                lambda a, b: template.format(a=a, b=b),
                BOOLEAN,
                multi=True,
            )
        return self.strict(node, [left, right], lambda a, b: f"{a} {op} {b}", BOOLEAN)

    def distinct(self, node: exp.Binary) -> Code:
        self.check_args(node, "this", "expression")
        left, right = self.comparable(
            node, [self.expr(node.this), self.expr(node.expression)], ordered=False
        )
        helper = self.call(rt.not_distinct)
        negate = "not " if isinstance(node, exp.NullSafeNEQ) else ""
        return self.make(
            node, f"({negate}{helper}({left.text}, {right.text}))", BOOLEAN, False, [left, right]
        )

    def is_(self, node: exp.Is) -> Code:
        self.check_args(node, "this", "expression", "negate")
        operand = self.expr(node.this)
        target = node.expression
        negate = bool(node.args.get("negate"))
        if isinstance(target, exp.Null):
            op = "is not" if negate else "is"
            return self.make(node, f"({operand.text} {op} None)", BOOLEAN, False, [operand])
        if isinstance(target, exp.Boolean):
            if operand.untyped:
                operand = self.coerce_literal(operand, BOOLEAN, node)
            if operand.type.kind not in (Kind.BOOL, Kind.NULL):
                raise self.fail(node, f"takes a condition, not {self.type_name(operand)}")
            op = "is not" if negate else "is"
            value = "True" if target.this else "False"
            return self.make(node, f"({operand.text} {op} {value})", BOOLEAN, False, [operand])
        raise self.unsupported(node)

    def in_(self, node: exp.In) -> Code:
        self.check_args(node, "this", "expressions")
        items = [self.expr(item) for item in node.expressions]
        if not items:
            raise self.unsupported(node, "an empty list")
        codes = self.comparable(node, [self.expr(node.this), *items], ordered=False)
        subject, items = codes[0], codes[1:]
        if subject.const and subject.value is None:
            return self.literal(None, BOOLEAN)
        if all(item.const for item in items):
            values = [item.value for item in items]
            present = [v for v in values if v is not None]
            unknown = len(present) < len(values)
            miss = "None" if unknown else "False"
            try:
                members = self.ns.add(frozenset(present))
                test = f"{{x}} in {members}"
            except TypeError:  # unhashable values (JSON)
                members = self.ns.add(tuple(present))
                test = f"any({{x}} == _v for _v in {members})"
            if not unknown:
                return self.strict(node, [subject], lambda x: test.format(x=x), BOOLEAN)
            return self.strict(
                node,
                [subject],
                lambda x: f"True if {test.format(x=x)} else {miss}",
                BOOLEAN,
                nullable=True,
            )
        helper = self.call(rt.in3)
        parts = ", ".join(item.text for item in items)
        return self.make(
            node, f"{helper}({subject.text}, ({parts},))", BOOLEAN, True, [subject, *items]
        )

    def between(self, node: exp.Between) -> Code:
        self.check_args(node, "this", "low", "high")
        subject, low, high = self.comparable(
            node,
            [self.expr(node.this), self.expr(node.args["low"]), self.expr(node.args["high"])],
            ordered=True,
        )
        name, wrap = self.let(subject)
        bound = replace(subject, text=name)
        lower = self.compare(node, ">=", bound, low)
        upper = self.compare(node, "<=", bound, high)
        both = self.conjunction(node, lower, upper, "and")
        if both.const:
            return both
        return replace(both, text=wrap(both.text))

    def like(self, node: exp.Expr) -> Code:
        escape: str | None = "\\"
        if isinstance(node, exp.Escape):
            self.check_args(node, "this", "expression")
            char = node.expression
            if not (isinstance(char, exp.Literal) and char.is_string and len(char.this) <= 1):
                raise self.unsupported(node, "ESCAPE takes one character")
            escape = str(char.this) or None
            node = node.this
            if not isinstance(node, exp.Like | exp.ILike):
                raise self.unsupported(node)
        self.check_args(node, "this", "expression", "negate")
        ignore_case = isinstance(node, exp.ILike)
        negate = bool(node.args.get("negate"))
        subject = self.text_operand(node, self.expr(node.this))
        pattern = self.text_operand(node, self.expr(node.expression))
        if pattern.const and pattern.value is not None:
            try:
                regex = rt.like_regex(str(pattern.value), escape, ignore_case)
            except rt.EvalError as exc:
                raise self.fail(node, str(exc)) from exc
            match = self.ns.add(regex.fullmatch, "_re")
            test = "is None" if negate else "is not None"
            return self.strict(node, [subject], lambda x: f"{match}({x}) {test}", BOOLEAN)
        helper = self.call(rt.like)
        prefix = "not " if negate else ""
        return self.strict(
            node,
            [subject, pattern],
            lambda x, p: f"{prefix}{helper}({x}, {p}, {escape!r}, {ignore_case})",
            BOOLEAN,
        )

    def text_operand(self, node: exp.Expr, code: Code) -> Code:
        if code.untyped:
            return replace(code, untyped=False)
        if code.type.kind not in (Kind.TEXT, Kind.NULL):
            raise self.fail(node, f"takes text, not {self.type_name(code)}")
        return code

    # --- logic ------------------------------------------------------------------------------

    def boolean_operand(self, node: exp.Expr, code: Code) -> Code:
        if code.untyped:
            code = self.coerce_literal(code, BOOLEAN, node)
        if code.type.kind not in (Kind.BOOL, Kind.NULL):
            raise self.fail(node, f"takes conditions, not {self.type_name(code)}")
        return code

    def and_or(self, node: exp.Connector) -> Code:
        self.check_args(node, "this", "expression")
        left = self.boolean_operand(node, self.expr(node.this))
        right = self.boolean_operand(node, self.expr(node.expression))
        return self.conjunction(node, left, right, "and" if isinstance(node, exp.And) else "or")

    def conjunction(self, node: exp.Expr, left: Code, right: Code, op: str) -> Code:
        """Three-valued AND/OR, evaluating the left side first and the right side only when
        it can change the result."""
        stop = "False" if op == "and" else "True"
        if not left.nullable and not right.nullable:
            text = f"({left.text} {op} {right.text})"
        elif not left.nullable:
            text = (
                f"({right.text} if {left.text} else False)"
                if op == "and"
                else f"(True if {left.text} else {right.text})"
            )
        else:
            ta, tb = self.ns.temp(), self.ns.temp()
            text = (
                f"({stop} if ({ta} := {left.text}) is {stop} else ({stop} if ({tb} := "
                f"{right.text}) is {stop} else (None if {ta} is None or {tb} is None else "
                f"{'True' if op == 'and' else 'False'})))"
            )
        return self.make(node, text, BOOLEAN, left.nullable or right.nullable, [left, right])

    def not_(self, node: exp.Not) -> Code:
        operand = self.boolean_operand(node, self.expr(node.this))
        return self.strict(node, [operand], lambda x: f"not {x}", BOOLEAN)

    # --- conditionals -----------------------------------------------------------------------

    def branches(self, node: exp.Expr, results: Sequence[Code]) -> tuple[list[Code], SqlType]:
        target = self.common_type(node, results, "mixes")
        if target.kind is Kind.NULL:
            return list(results), NULL
        return self.to_type(node, results, target), target

    def case(self, node: exp.Case) -> Code:
        self.check_args(node, "this", "ifs", "default")
        subject_node = node.args.get("this")
        wrap: Callable[[str], str] = _same
        name = ""
        conditions: list[Code] = []
        values: list[Code] = []
        subject: Code | None = None
        if subject_node is not None:
            subject = self.expr(subject_node)
            name, wrap = self.let(subject)
        for branch in node.args.get("ifs") or []:
            self.check_args(branch, "this", "true")
            if subject is not None:
                operand = self.expr(branch.this)
                bound = replace(subject, text=name)
                left, right = self.comparable(branch, [bound, operand], ordered=False)
                conditions.append(self.compare(branch, "==", left, right))
            else:
                conditions.append(self.boolean_operand(branch, self.expr(branch.this)))
            values.append(self.expr(branch.args["true"]))
        default = node.args.get("default")
        otherwise = self.expr(default) if default is not None else self.literal(None, NULL)
        return self.choose(node, conditions, values, otherwise, wrap)

    def if_(self, node: exp.If) -> Code:
        self.check_args(node, "this", "true", "false")
        condition = self.boolean_operand(node, self.expr(node.this))
        value = self.expr(node.args["true"])
        false = node.args.get("false")
        otherwise = self.expr(false) if false is not None else self.literal(None, NULL)
        return self.choose(node, [condition], [value], otherwise, _same)

    def choose(
        self,
        node: exp.Expr,
        conditions: Sequence[Code],
        values: Sequence[Code],
        otherwise: Code,
        wrap: Callable[[str], str],
    ) -> Code:
        converted, target = self.branches(node, [*values, otherwise])
        *values, otherwise = converted
        # branches whose condition is a constant are decided now
        live: list[tuple[Code, Code]] = []
        for condition, value in zip(conditions, values, strict=True):
            if condition.const:
                if condition.value is True:
                    otherwise = value
                    break
                continue
            live.append((condition, value))
        if not live:
            return otherwise
        text = otherwise.text
        for condition, value in reversed(live):
            test = condition.text if not condition.nullable else f"{condition.text} is True"
            text = f"({value.text} if {test} else {text})"
        nullable = otherwise.nullable or any(value.nullable for _, value in live)
        return Code(wrap(text), target, nullable)

    def coalesce(self, node: exp.Coalesce) -> Code:
        self.check_args(node, "this", "expressions", "is_nvl", "is_null")
        args = [self.expr(node.this), *(self.expr(e) for e in node.expressions)]
        codes, target = self.branches(node, args)
        parts: list[Code] = []
        for code in codes:
            if code.const and code.value is None:
                continue
            parts.append(code)
            if not code.nullable:
                break
        if not parts:
            return self.literal(None, target)
        text = parts[-1].text
        for code in reversed(parts[:-1]):
            temp = self.ns.temp()
            text = f"({temp} if ({temp} := {code.text}) is not None else {text})"
        return self.make(node, text, target, parts[-1].nullable, parts)

    def nullif(self, node: exp.Nullif) -> Code:
        self.check_args(node, "this", "expression")
        first, second = self.expr(node.this), self.expr(node.expression)
        if first.untyped and not second.untyped:
            first = self.literal_as(second, first, node)
        elif second.untyped and not first.untyped:
            second = self.literal_as(first, second, node)
        first, second = replace(first, untyped=False), replace(second, untyped=False)
        if first.const and first.value is None:
            return first
        ta, tb = self.ns.temp(), self.ns.temp()
        left, right = self.comparable(
            node, [Code(ta, first.type, False), Code(tb, second.type, False)], ordered=False
        )
        equal = self.compare(node, "==", left, right)
        text = (
            f"(None if ({ta} := {first.text}) is None or (({tb} := {second.text}) is not None "
            f"and {equal.text}) else {ta})"
        )
        return self.make(node, text, first.type, True, [first, second])

    def anonymous(self, node: exp.Anonymous) -> Code:
        name = str(node.name).lower()
        if name in ("now", "current_timestamp") and not node.expressions:
            return self.literal(self.now, TIMESTAMPTZ)
        raise self.unsupported(node)

    def extremum(self, node: exp.Greatest | exp.Least) -> Code:
        self.check_args(node, "this", "expressions", "ignore_nulls")
        args = [self.expr(node.this), *(self.expr(e) for e in node.expressions)]
        codes, target = self.branches(node, args)
        if target.kind not in _ORDERED and target.kind is not Kind.NULL:
            raise self.fail(node, f"cannot compare values of type {target.name}")
        helper = self.call(rt.greatest if isinstance(node, exp.Greatest) else rt.least)
        ignore = bool(node.args.get("ignore_nulls"))
        parts = ", ".join(c.text for c in codes)
        nullable = all(c.nullable for c in codes) if ignore else any(c.nullable for c in codes)
        return self.make(node, f"{helper}(({parts},), {ignore})", target, nullable, codes)

    # --- casts ------------------------------------------------------------------------------

    def cast(self, node: exp.Cast) -> Code:
        self.check_args(node, "this", "to", "safe")
        to = node.args["to"]
        if not isinstance(to, exp.DataType):
            raise self.unsupported(node)
        target = from_datatype(to)
        if not can_convert(target):
            raise self.fail(node, f"casts to {target.name}, which this stage cannot produce")
        operand = self.expr(node.this)
        soft = isinstance(node, exp.TryCast) or bool(node.args.get("safe"))
        return self.cast_code(node, operand, target, soft=soft)

    def cast_code(self, node: exp.Expr, operand: Code, target: SqlType, *, soft: bool) -> Code:
        source = operand.type
        if operand.untyped:
            source = TEXT
        elif source.kind is Kind.NULL:
            return self.literal(None, target)
        elif source == target:
            return operand
        if target.kind not in CAN_CAST.get(source.kind, frozenset()):
            raise self.fail(node, f"cannot cast {self.type_name(operand)} to {target.name}")
        if source.kind is Kind.JSON and target.kind is Kind.TEXT and target.precision is None:
            helper = self.call(rt.json_text)
            return self.strict(node, [operand], lambda x: f"{helper}({x})", target)
        convert = converter(target)
        if soft:

            def attempt(value: Any, convert: Any = convert) -> Any:
                try:
                    return convert(value)
                except CastFailed:
                    return None

            helper = self.call(attempt, "_cv")
            return self.strict(node, [operand], lambda x: f"{helper}({x})", target, nullable=True)
        helper = self.call(convert, "_cv")
        return self.strict(node, [operand], lambda x: f"{helper}({x})", target)

    # --- text -------------------------------------------------------------------------------

    def as_text(self, node: exp.Expr, code: Code, *, strict_types: bool = False) -> Code:
        if code.untyped or code.type.kind in (Kind.TEXT, Kind.NULL):
            return replace(code, untyped=False, type=TEXT)
        if strict_types or code.type.kind in (Kind.JSON, Kind.BYTES, Kind.INTERVAL):
            raise self.fail(node, f"takes text, not {self.type_name(code)}")
        return self.cast_code(node, code, TEXT, soft=False)

    def dpipe(self, node: exp.DPipe) -> Code:
        self.check_args(node, "this", "expression", "safe")
        strict_types = not node.args.get("safe")
        left = self.as_text(node, self.expr(node.this), strict_types=strict_types)
        right = self.as_text(node, self.expr(node.expression), strict_types=strict_types)
        return self.strict(node, [left, right], lambda a, b: f"{a} + {b}", TEXT)

    def concat(self, node: exp.Concat) -> Code:
        self.check_args(node, "expressions", "safe", "coalesce")
        parts = [self.as_text(node, self.expr(e)) for e in node.expressions]
        if isinstance(node, exp.ConcatWs):
            return self.concat_ws(node, parts)
        if not node.args.get("coalesce"):
            return self.strict(node, parts, lambda *xs: " + ".join(xs) or "''", TEXT)
        pieces = []
        for part in parts:
            if part.nullable:
                temp = self.ns.temp()
                pieces.append(f"('' if ({temp} := {part.text}) is None else {temp})")
            else:
                pieces.append(part.text)
        return self.make(node, f"({' + '.join(pieces) or repr('')})", TEXT, False, parts)

    def concat_ws(self, node: exp.Concat, parts: Sequence[Code]) -> Code:
        if len(parts) < 2:
            raise self.unsupported(node, "it needs a separator and a value")
        separator, values = parts[0], parts[1:]
        if separator.const and separator.value is None:
            return self.literal(None, TEXT)
        helper = self.call(rt.concat_ws)
        skip = bool(node.args.get("coalesce"))
        listed = ", ".join(v.text for v in values)
        if separator.nullable:
            temp = self.ns.temp()
            text = (
                f"(None if ({temp} := {separator.text}) is None else "
                f"{helper}({temp}, ({listed},), {skip}))"
            )
        else:
            text = f"{helper}({separator.text}, ({listed},), {skip})"
        return self.make(node, text, TEXT, separator.nullable or not skip, parts)

    def text_function(self, node: exp.Func, method: str) -> Code:
        self.check_args(node, "this")
        operand = self.as_text(node, self.expr(node.this), strict_types=True)
        return self.strict(node, [operand], lambda x: f"{x}.{method}()", TEXT)

    def lower(self, node: exp.Lower) -> Code:
        return self.text_function(node, "lower")

    def upper(self, node: exp.Upper) -> Code:
        return self.text_function(node, "upper")

    def length(self, node: exp.Length) -> Code:
        self.check_args(node, "this", "binary")
        operand = self.expr(node.this)
        if operand.type.kind is Kind.BYTES:
            return self.strict(node, [operand], lambda x: f"len({x})", INTEGER)
        operand = self.as_text(node, operand, strict_types=True)
        if node.args.get("binary"):
            return self.strict(node, [operand], lambda x: f"len({x}.encode())", INTEGER)
        return self.strict(node, [operand], lambda x: f"len({x})", INTEGER)

    def trim(self, node: exp.Trim) -> Code:
        self.check_args(node, "this", "expression", "position")
        operand = self.as_text(node, self.expr(node.this), strict_types=True)
        position = str(node.args.get("position") or "BOTH").upper()
        method = {"LEADING": "lstrip", "TRAILING": "rstrip", "BOTH": "strip"}.get(position)
        if method is None:
            raise self.unsupported(node)
        chars_node = node.args.get("expression")
        chars = (
            self.as_text(node, self.expr(chars_node), strict_types=True)
            if chars_node is not None
            else self.literal(" ", TEXT)  # PostgreSQL trims spaces, not all whitespace
        )
        return self.strict(node, [operand, chars], lambda x, c: f"{x}.{method}({c})", TEXT)

    def position(self, node: exp.StrPosition) -> Code:
        self.check_args(node, "this", "substr")
        operand = self.as_text(node, self.expr(node.this), strict_types=True)
        part = self.as_text(node, self.expr(node.args["substr"]), strict_types=True)
        return self.strict(node, [operand, part], lambda s, p: f"{s}.find({p}) + 1", INTEGER)

    def integer_operand(self, node: exp.Expr, code: Code) -> Code:
        if code.untyped:
            code = self.coerce_literal(code, INTEGER, node)
        if code.type.kind not in (Kind.INT, Kind.NULL):
            raise self.fail(node, f"takes an integer, not {self.type_name(code)}")
        return code

    def substring(self, node: exp.Substring) -> Code:
        self.check_args(node, "this", "start", "length")
        operand = self.as_text(node, self.expr(node.this), strict_types=True)
        start_node, length_node = node.args.get("start"), node.args.get("length")
        start = (
            self.integer_operand(node, self.expr(start_node))
            if start_node is not None
            else self.literal(1, INTEGER)
        )
        helper = self.call(rt.substr_pg if self.pg else rt.substr_from_end)
        if length_node is None:
            return self.strict(node, [operand, start], lambda s, a: f"{helper}({s}, {a})", TEXT)
        length = self.integer_operand(node, self.expr(length_node))
        return self.strict(
            node, [operand, start, length], lambda s, a, n: f"{helper}({s}, {a}, {n})", TEXT
        )

    def replace_(self, node: exp.Replace) -> Code:
        self.check_args(node, "this", "expression", "replacement")
        operand = self.as_text(node, self.expr(node.this), strict_types=True)
        old = self.as_text(node, self.expr(node.expression), strict_types=True)
        new_node = node.args.get("replacement")
        new = (
            self.as_text(node, self.expr(new_node), strict_types=True)
            if new_node is not None
            else self.literal("", TEXT)
        )
        helper = self.call(rt.replace)
        return self.strict(
            node, [operand, old, new], lambda s, o, n: f"{helper}({s}, {o}, {n})", TEXT
        )

    def left_right(self, node: exp.Left | exp.Right) -> Code:
        self.check_args(node, "this", "expression", "negative_length_returns_empty")
        operand = self.as_text(node, self.expr(node.this), strict_types=True)
        count = self.integer_operand(node, self.expr(node.expression))
        helper = self.call(rt.left if isinstance(node, exp.Left) else rt.right)
        empty = bool(node.args.get("negative_length_returns_empty"))
        strict = not self.pg
        return self.strict(
            node,
            [operand, count],
            lambda s, n: f"{helper}({s}, {n}, {empty}, {strict})",
            TEXT,
        )

    # --- numbers ----------------------------------------------------------------------------

    def number_operand(self, node: exp.Expr, code: Code) -> Code:
        if code.untyped:
            code = self.coerce_literal(code, NUMERIC, node)
        if not (code.type.is_number or code.type.kind is Kind.NULL):
            raise self.fail(node, f"takes a number, not {self.type_name(code)}")
        if code.type.kind is Kind.NULL:
            return replace(code, type=NUMERIC)
        return code

    def abs_(self, node: exp.Abs) -> Code:
        self.check_args(node, "this")
        operand = self.number_operand(node, self.expr(node.this))
        return self.strict(node, [operand], lambda x: f"abs({x})", operand.type)

    def round_(self, node: exp.Round) -> Code:
        self.check_args(node, "this", "decimals")
        operand = self.number_operand(node, self.expr(node.this))
        digits_node = node.args.get("decimals")
        digits = (
            self.integer_operand(node, self.expr(digits_node)) if digits_node is not None else None
        )
        if operand.type.kind is Kind.FLOAT:
            helper = self.call(rt.round_float)
            out = operand.type
        else:
            if operand.type.kind is Kind.INT and digits is None:
                return operand
            operand = self.convert(operand, NUMERIC, node)
            helper = self.call(rt.round_numeric)
            out = NUMERIC
        if digits is None:
            return self.strict(node, [operand], lambda x: f"{helper}({x})", out)
        return self.strict(node, [operand, digits], lambda x, d: f"{helper}({x}, {d})", out)

    def floor_ceil(self, node: exp.Floor | exp.Ceil) -> Code:
        self.check_args(node, "this")
        operand = self.number_operand(node, self.expr(node.this))
        kind = operand.type.kind
        if kind is Kind.INT:
            return operand
        floor = isinstance(node, exp.Floor)
        if kind is Kind.NUMERIC:
            helper = self.call(rt.floor_numeric if floor else rt.ceil_numeric)
            out = NUMERIC
        else:
            helper = self.call(rt.floor_float if floor else rt.ceil_float)
            out = operand.type
        return self.strict(node, [operand], lambda x: f"{helper}({x})", out)

    # --- dates ------------------------------------------------------------------------------

    def unit(self, node: exp.Expr, unit: exp.Expr | None) -> str:
        if isinstance(unit, exp.Var | exp.Literal):
            return rt.unit_name(str(unit.this))
        raise self.unsupported(node, "the unit must be written as a word or a string")

    def extract(self, node: exp.Extract) -> Code:
        self.check_args(node, "this", "expression")
        unit = self.unit(node, node.this)
        operand = self.expr(node.expression)
        if operand.untyped:
            operand = self.coerce_literal(operand, TIMESTAMP, node)
        kind = operand.type.kind
        if kind is Kind.NULL:
            return self.literal(None, INTEGER)
        if kind not in (*_TIMES, Kind.TIME):
            raise self.fail(node, f"takes a date, timestamp or time, not {self.type_name(operand)}")
        known = rt.TIME_UNITS if kind is Kind.TIME else rt.DATE_UNITS if kind is Kind.DATE else None
        try:
            function = rt.extract(unit)
        except KeyError as exc:
            raise self.fail(node, f"has a unit ('{unit}') this stage does not extract") from exc
        if known is not None and unit not in known:
            raise self.fail(node, f"cannot extract {unit} from a {operand.type.name}")
        if kind is Kind.TIMESTAMPTZ:
            operand = self.strict(node, [operand], lambda x: f"{x}.astimezone(_UTC)", operand.type)
        helper = self.call(function)
        out = NUMERIC if unit in rt.NUMERIC_UNITS else INTEGER
        return self.strict(node, [operand], lambda x: f"{helper}({x})", out)

    def trunc(self, node: exp.TimestampTrunc | exp.DateTrunc) -> Code:
        self.check_args(node, "this", "unit", "input_type_preserved")
        unit = self.unit(node, node.args.get("unit"))
        operand = self.expr(node.this)
        if operand.untyped:
            operand = self.coerce_literal(operand, TIMESTAMP, node)
        kind = operand.type.kind
        if kind is Kind.NULL:
            return self.literal(None, TIMESTAMP)
        if kind not in _TIMES:
            raise self.fail(node, f"takes a date or timestamp, not {self.type_name(operand)}")
        try:
            function = rt.truncate(unit)
        except KeyError as exc:
            raise self.fail(node, f"has a unit ('{unit}') this stage cannot truncate to") from exc
        keep_date = kind is Kind.DATE and (
            isinstance(node, exp.DateTrunc) or bool(node.args.get("input_type_preserved"))
        )
        if kind is Kind.DATE:
            operand = self.convert(operand, TIMESTAMP, node)
        elif kind is Kind.TIMESTAMPTZ:
            operand = self.strict(node, [operand], lambda x: f"{x}.astimezone(_UTC)", TIMESTAMPTZ)
        out = operand.type
        if out.precision is not None:
            out = TIMESTAMPTZ if out.kind is Kind.TIMESTAMPTZ else TIMESTAMP
        helper = self.call(function)
        if keep_date:
            return self.strict(node, [operand], lambda x: f"{helper}({x}).date()", DATE)
        return self.strict(node, [operand], lambda x: f"{helper}({x})", out)


def _same(text: str) -> str:
    return text


def _start(node: exp.Expr) -> int | None:
    """The offset in the SQL text where `node` starts (its leftmost token that sqlglot
    placed)."""
    best: int | None = None
    for child in node.walk():
        start = child.meta.get("start") if child.meta else None
        if isinstance(start, int) and (best is None or start < best):
            best = start
    return best


_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "==",
    exp.NEQ: "!=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}

#: Comparisons of doubles as PostgreSQL orders them: NaN equals NaN and is above everything.
_FLOAT_COMPARISONS = {
    "==": "{a} == {b} or ({a} != {a} and {b} != {b})",
    "!=": "not ({a} == {b} or ({a} != {a} and {b} != {b}))",
    "<": "{a} < {b} or ({b} != {b} and {a} == {a})",
    ">": "{a} > {b} or ({a} != {a} and {b} == {b})",
    "<=": "{a} <= {b} or {b} != {b}",
    ">=": "{a} >= {b} or {a} != {a}",
}

_C = ExpressionCompiler
_HANDLERS: dict[type[exp.Expr], Callable[[ExpressionCompiler, Any], Code]] = {
    exp.Column: _C.column,
    exp.Literal: _C.literal_node,
    exp.Null: _C.null,
    exp.Boolean: _C.boolean,
    exp.Paren: _C.paren,
    exp.CurrentDate: _C.current_date,
    exp.CurrentTimestamp: _C.current_timestamp,
    exp.Anonymous: _C.anonymous,
    exp.Interval: _C.interval,
    exp.Add: _C.arithmetic,
    exp.Sub: _C.arithmetic,
    exp.Mul: _C.arithmetic,
    exp.Div: _C.arithmetic,
    exp.IntDiv: _C.arithmetic,
    exp.Mod: _C.arithmetic,
    exp.Neg: _C.neg,
    exp.EQ: _C.comparison,
    exp.NEQ: _C.comparison,
    exp.GT: _C.comparison,
    exp.GTE: _C.comparison,
    exp.LT: _C.comparison,
    exp.LTE: _C.comparison,
    exp.NullSafeEQ: _C.distinct,
    exp.NullSafeNEQ: _C.distinct,
    exp.Is: _C.is_,
    exp.In: _C.in_,
    exp.Between: _C.between,
    exp.Like: _C.like,
    exp.ILike: _C.like,
    exp.Escape: _C.like,
    exp.And: _C.and_or,
    exp.Or: _C.and_or,
    exp.Not: _C.not_,
    exp.Case: _C.case,
    exp.If: _C.if_,
    exp.Coalesce: _C.coalesce,
    exp.Nullif: _C.nullif,
    exp.Greatest: _C.extremum,
    exp.Least: _C.extremum,
    exp.Cast: _C.cast,
    exp.TryCast: _C.cast,
    exp.DPipe: _C.dpipe,
    exp.Concat: _C.concat,
    exp.ConcatWs: _C.concat,
    exp.Lower: _C.lower,
    exp.Upper: _C.upper,
    exp.Length: _C.length,
    exp.Trim: _C.trim,
    exp.Substring: _C.substring,
    exp.Replace: _C.replace_,
    exp.StrPosition: _C.position,
    exp.Left: _C.left_right,
    exp.Right: _C.left_right,
    exp.Abs: _C.abs_,
    exp.Round: _C.round_,
    exp.Floor: _C.floor_ceil,
    exp.Ceil: _C.floor_ceil,
    exp.Extract: _C.extract,
    exp.TimestampTrunc: _C.trunc,
    exp.DateTrunc: _C.trunc,
}

__all__ = [
    "Code",
    "ColumnRef",
    "ExpressionCompiler",
    "Namespace",
    "resolve_column",
    "suggest",
]
