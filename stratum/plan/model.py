"""The immutable migration plan: what `stratum migrate` will do, item by item.

A plan is compiled from a checked SMQL program (`stratum.plan.compiler`). Every value in it is
resolved: an item's options come from its own clauses, else from `SET`, else from the built-in
defaults. Connections keep their URL template (`${VAR}`s unexpanded, inline passwords masked), so
a plan, its JSON and its hashes never hold a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from smql import ExpectAction, FileFormat, ItemKind, Mode, OnError
from smql.sql import normalize_sql

SECRET = {"secret": True}  # field metadata: never printed, serialised or hashed


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    name: str
    url: str  # the template, redacted: never a secret
    scheme: str | None  # None when the scheme itself comes from a ${VAR}
    dialect: str | None  # the SQL dialect of the server, when the scheme tells it
    variables: tuple[str, ...]
    # the template as written, for the connector to expand; may hold an inline password
    template: str = field(default="", repr=False, compare=False, metadata=SECRET)


@dataclass(frozen=True, slots=True)
class TableRef:
    """A table (or, with table None, a whole database/schema) on a connection."""

    connection: str
    schema: str | None
    table: str | None

    @property
    def text(self) -> str:
        return ".".join(p for p in (self.connection, self.schema, self.table) if p is not None)


@dataclass(frozen=True, slots=True)
class Sql:
    """Embedded SQL as written, and the dialect it is written in. The plan runs the text as
    written (transpiled at run time); hashes and the text view use its normalised form."""

    text: str
    dialect: str

    @property
    def normalized(self) -> str:
        return normalize_sql(self.text, self.dialect)


@dataclass(frozen=True, slots=True)
class ColumnMap:
    source: str
    target: str


@dataclass(frozen=True, slots=True)
class ComputedColumn:
    name: str
    sql: Sql


@dataclass(frozen=True, slots=True)
class CastRule:
    """`TYPE tinyint(1) -> boolean` (match a source type) or `COLUMN orders.note -> text`."""

    by: str  # "type" | "column"
    match: str
    to: str


@dataclass(frozen=True, slots=True)
class Options:
    """Resolved options shared by every kind of item. None: the option does not apply to this
    kind of item (its clause is refused there, and SET does not reach it)."""

    mode: Mode
    key: tuple[str, ...]
    cursor: str | None
    columns: tuple[ColumnMap, ...]  # empty: every source column, same name
    compute: tuple[ComputedColumn, ...]
    where: Sql | None
    casts: tuple[CastRule, ...]
    on_error: OnError | None
    zero_dates: str | None  # "null", "error" or a sentinel date
    dialect: str | None  # the dialect the item's embedded SQL is written in
    partitions: int | None
    batch_size: int | None  # tuning: not part of the item's hash


@dataclass(frozen=True, slots=True)
class TableSource:
    table: TableRef


@dataclass(frozen=True, slots=True)
class DatabaseSource:
    database: TableRef
    including: tuple[str, ...]  # LIKE patterns; empty: every table
    excluding: tuple[str, ...]
    claimed: tuple[str, ...]  # tables of the target schema that other items of the plan write
    # LIKE patterns of the views to create on the target after the tables; empty: no view.
    # Hashed only when not empty (`stratum.plan.canonical`), so plans without it keep their hashes.
    views: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QuerySource:
    connection: str
    sql: Sql


@dataclass(frozen=True, slots=True)
class CsvOptions:
    header: bool
    delimiter: str
    quote: str
    escape: str | None
    null: str
    encoding: str


@dataclass(frozen=True, slots=True)
class FileSource:
    path: str  # as written; relative paths are relative to the .smql file
    format: FileFormat
    csv: CsvOptions | None


@dataclass(frozen=True, slots=True)
class Expectation:
    sql: Sql
    action: ExpectAction


@dataclass(frozen=True, slots=True)
class Deduplicate:
    keys: tuple[str, ...]
    order_by: tuple[Sql, ...]


@dataclass(frozen=True, slots=True)
class StageSource:
    """A medallion stage: rows FROM a table (refined) or AS a query (aggregated)."""

    input: TableRef | None
    query: Sql | None
    deduplicate: Deduplicate | None
    expectations: tuple[Expectation, ...]


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    aggregate: Sql
    window: str | None  # e.g. "30 days"
    window_seconds: int | None


@dataclass(frozen=True, slots=True)
class FeatureSource:
    entity: str
    keys: tuple[str, ...]
    input: TableRef
    timestamp: str
    features: tuple[Feature, ...]


@dataclass(frozen=True, slots=True)
class DatasetFeatures:
    """A FEATURES item's table as a DATASET joins it: its entity's keys, its TIMESTAMP column
    and its feature columns, in the order the FEATURES item defines them."""

    table: TableRef
    keys: tuple[str, ...]
    timestamp: str
    features: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DatasetSource:
    """A point-in-time training set: each row of the spine (entity keys and a timestamp) joined
    to every feature table as of the spine's timestamp, in the order the DATASET lists them."""

    spine: TableRef
    timestamp: str
    features: tuple[DatasetFeatures, ...]


Source: TypeAlias = (
    TableSource
    | DatabaseSource
    | QuerySource
    | FileSource
    | StageSource
    | FeatureSource
    | DatasetSource
)


@dataclass(frozen=True, slots=True)
class Dependency:
    item: str
    reason: str


@dataclass(frozen=True, slots=True)
class PlanItem:
    name: str
    kind: ItemKind
    source: Source
    target: TableRef
    options: Options
    depends_on: tuple[Dependency, ...]
    hash: str
    line: int  # where the item is defined in the .smql file (not hashed)


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """Plan-wide execution settings. They tune how a plan runs, not what it produces, so they
    are not hashed: changing them never invalidates a checkpoint."""

    parallel: int
    queue_size: int


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    path: str
    connections: tuple[ConnectionSpec, ...]
    settings: PlanSettings
    items: tuple[PlanItem, ...]  # in execution order
    hash: str

    def item(self, name: str) -> PlanItem:
        for item in self.items:
            if item.name == name:
                return item
        raise KeyError(name)

    def connection(self, name: str) -> ConnectionSpec:
        for connection in self.connections:
            if connection.name == name:
                return connection
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        from stratum.plan.render import plan_to_json  # noqa: PLC0415 (render imports this module)

        return plan_to_json(self)

    def to_text(self) -> str:
        from stratum.plan.render import plan_to_text  # noqa: PLC0415 (render imports this module)

        return plan_to_text(self)
