"""The typed syntax tree of an SMQL program.

Every node is a frozen, slotted dataclass that carries the :class:`Span` it was parsed from, so
later passes (checks, the plan compiler, the formatter) can point at the exact characters.
Nodes hold what the user wrote, not what it means: defaults, names and dependencies are worked
out by :mod:`smql.semantics`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias, TypeGuard

_PLAIN_IDENT = re.compile(r"[^\W\d]\w*\Z")


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range of characters in the source, with 1-based line and column of both ends."""

    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int

    def merge(self, other: Span) -> Span:
        first, last = (self, other) if self.start <= other.start else (other, self)
        return Span(first.start, last.end, first.line, first.column, last.end_line, last.end_column)


@dataclass(frozen=True, slots=True)
class Comment:
    text: str
    span: Span


# ---------------------------------------------------------------------------------------------
# Names and literals


@dataclass(frozen=True, slots=True)
class Ident:
    """An identifier; `quoted` records that it was written in double quotes."""

    name: str
    span: Span
    quoted: bool = False

    @property
    def sql(self) -> str:
        """The identifier as SMQL prints it: double-quoted when it was written so (a quoted
        `"database"` must not become the keyword) or when it must be; bare otherwise."""
        if not self.quoted and _PLAIN_IDENT.match(self.name):
            return self.name
        return '"' + self.name.replace('"', '""') + '"'


def quote_if_needed(name: str) -> str:
    """A name as SMQL writes it when nothing forces quotes: bare if it can be."""
    return name if _PLAIN_IDENT.match(name) else '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class Dotted:
    """A dotted name: `conn.table`, `conn.schema.table`, `orders.note`, an item name."""

    parts: tuple[Ident, ...]
    span: Span

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(part.name for part in self.parts)

    @property
    def text(self) -> str:
        """As written (quotes kept where they were written)."""
        return ".".join(part.sql for part in self.parts)

    @property
    def key(self) -> str:
        """The same for `wh.raw."orders"` and `wh.raw.orders`: what names are compared by."""
        return ".".join(quote_if_needed(part.name) for part in self.parts)


@dataclass(frozen=True, slots=True)
class StringLit:
    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class IntLit:
    value: int
    span: Span


@dataclass(frozen=True, slots=True)
class WordLit:
    """A bare word used as a value: `reject`, `true`, `NULL`."""

    value: str
    span: Span


Value: TypeAlias = StringLit | IntLit | WordLit


@dataclass(frozen=True, slots=True)
class SqlText:
    """Embedded SQL exactly as written; sqlglot parses it during the checks."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class TypeWord:
    name: str
    args: tuple[int, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """A SQL type in a CAST rule, e.g. `tinyint(1)` or `numeric(20,0)[]`."""

    words: tuple[TypeWord, ...]
    array_dims: int
    span: Span

    @property
    def text(self) -> str:
        words = []
        for word in self.words:
            args = f"({','.join(str(arg) for arg in word.args)})" if word.args else ""
            words.append(word.name.lower() + args)
        return " ".join(words) + "[]" * self.array_dims


# ---------------------------------------------------------------------------------------------
# Item options (clauses)


@dataclass(frozen=True, slots=True)
class ModeOption:
    value: Ident
    span: Span


@dataclass(frozen=True, slots=True)
class KeyOption:
    columns: tuple[Ident, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class CursorOption:
    column: Ident
    span: Span


@dataclass(frozen=True, slots=True)
class Column:
    name: Ident
    alias: Ident | None
    span: Span

    @property
    def output(self) -> Ident:
        return self.alias or self.name


@dataclass(frozen=True, slots=True)
class ColumnsOption:
    columns: tuple[Column, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Computed:
    name: Ident
    expr: SqlText
    span: Span


@dataclass(frozen=True, slots=True)
class ComputeOption:
    columns: tuple[Computed, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class WhereOption:
    condition: SqlText
    span: Span


@dataclass(frozen=True, slots=True)
class CastType:
    """`CAST TYPE tinyint(1) TO boolean`: every source column of that type."""

    source: TypeSpec
    target: TypeSpec
    span: Span


@dataclass(frozen=True, slots=True)
class CastColumn:
    """`CAST COLUMN orders.note TO text`: one column (of one table, in a database copy)."""

    column: Dotted
    target: TypeSpec
    span: Span


CastRule: TypeAlias = CastType | CastColumn


@dataclass(frozen=True, slots=True)
class CastOption:
    rules: tuple[CastRule, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class BatchSizeOption:
    value: IntLit
    span: Span


@dataclass(frozen=True, slots=True)
class PartitionsOption:
    value: IntLit
    span: Span


@dataclass(frozen=True, slots=True)
class OnErrorOption:
    value: Ident
    span: Span


@dataclass(frozen=True, slots=True)
class ZeroDatesOption:
    value: Value
    span: Span


@dataclass(frozen=True, slots=True)
class NameOption:
    value: Dotted
    span: Span


@dataclass(frozen=True, slots=True)
class AfterOption:
    items: tuple[Dotted, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class DialectOption:
    value: Ident
    span: Span


@dataclass(frozen=True, slots=True)
class IncludingOption:
    patterns: tuple[StringLit, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ExcludingOption:
    patterns: tuple[StringLit, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class IncludingViewsOption:
    """`INCLUDING VIEWS ('pattern', ...)`: the views a database copy creates on its target."""

    patterns: tuple[StringLit, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class DeduplicateOption:
    columns: tuple[Ident, ...]
    order_by: tuple[SqlText, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ExpectOption:
    condition: SqlText
    action: Ident
    span: Span


Option: TypeAlias = (
    ModeOption
    | KeyOption
    | CursorOption
    | ColumnsOption
    | ComputeOption
    | WhereOption
    | CastOption
    | BatchSizeOption
    | PartitionsOption
    | OnErrorOption
    | ZeroDatesOption
    | NameOption
    | AfterOption
    | DialectOption
    | IncludingOption
    | ExcludingOption
    | IncludingViewsOption
    | DeduplicateOption
    | ExpectOption
)

#: The clause keyword each option is written with, for messages and the formatter.
OPTION_KEYWORDS: dict[type, str] = {
    ModeOption: "MODE",
    KeyOption: "KEY",
    CursorOption: "CURSOR",
    ColumnsOption: "COLUMNS",
    ComputeOption: "COMPUTE",
    WhereOption: "WHERE",
    CastOption: "CAST",
    BatchSizeOption: "BATCH SIZE",
    PartitionsOption: "PARTITIONS",
    OnErrorOption: "ON ERROR",
    ZeroDatesOption: "ZERO DATES",
    NameOption: "NAME",
    AfterOption: "AFTER",
    DialectOption: "DIALECT",
    IncludingOption: "INCLUDING TABLES",
    ExcludingOption: "EXCLUDING TABLES",
    IncludingViewsOption: "INCLUDING VIEWS",
    DeduplicateOption: "DEDUPLICATE",
    ExpectOption: "EXPECT",
}


# ---------------------------------------------------------------------------------------------
# Statements


@dataclass(frozen=True, slots=True)
class Connection:
    name: Ident
    url: StringLit
    span: Span


@dataclass(frozen=True, slots=True)
class Setting:
    name: Ident
    value: Value
    span: Span


@dataclass(frozen=True, slots=True)
class SetStatement:
    settings: tuple[Setting, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class MigrateTable:
    source: Dotted
    target: Dotted
    options: tuple[Option, ...]
    span: Span
    table_keyword: bool = False


@dataclass(frozen=True, slots=True)
class MigrateDatabase:
    source: Dotted
    target: Dotted
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class MigrateQuery:
    connection: Ident
    query: SqlText
    target: Dotted
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class FileOption:
    name: Ident
    value: Value | None
    span: Span


@dataclass(frozen=True, slots=True)
class MigrateFile:
    path: StringLit
    file_options: tuple[FileOption, ...]
    target: Dotted
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class StageFrom:
    target: Dotted
    input: Dotted
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class StageQuery:
    target: Dotted
    options: tuple[Option, ...]
    query: SqlText
    span: Span


@dataclass(frozen=True, slots=True)
class Entity:
    name: Ident
    keys: tuple[Ident, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Window:
    amount: IntLit
    unit: Ident
    span: Span


@dataclass(frozen=True, slots=True)
class Feature:
    name: Ident
    expr: SqlText
    window: Window | None
    span: Span


@dataclass(frozen=True, slots=True)
class Features:
    target: Dotted
    entity: Ident
    input: Dotted
    timestamp: Ident
    features: tuple[Feature, ...]
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Dataset:
    """`DATASET dst FROM spine TIMESTAMP ts FEATURES (f, ...)`: a point-in-time training set.

    `features` are the feature tables as written, each the target of a FEATURES item;
    `features_span` covers the whole `FEATURES (...)` clause."""

    target: Dotted
    spine: Dotted
    timestamp: Ident
    features: tuple[Dotted, ...]
    features_span: Span
    options: tuple[Option, ...]
    span: Span


ItemStatement: TypeAlias = (
    MigrateTable
    | MigrateDatabase
    | MigrateQuery
    | MigrateFile
    | StageFrom
    | StageQuery
    | Features
    | Dataset
)
Statement: TypeAlias = Connection | SetStatement | Entity | ItemStatement


def is_item(statement: Statement) -> TypeGuard[ItemStatement]:
    """Whether the statement is a migration item (as opposed to a declaration)."""
    return isinstance(statement, ITEM_STATEMENTS)


ITEM_STATEMENTS: tuple[type, ...] = (
    MigrateTable,
    MigrateDatabase,
    MigrateQuery,
    MigrateFile,
    StageFrom,
    StageQuery,
    Features,
    Dataset,
)


@dataclass(frozen=True, slots=True)
class Program:
    """A parsed .smql file: its statements in source order and every comment in it."""

    path: str
    source: str
    statements: tuple[Statement, ...]
    comments: tuple[Comment, ...]
