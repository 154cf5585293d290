"""A database's schema as `MIGRATE DATABASE` discovers it, independent of the server it came from.

Introspection (`stratum.schema.introspect`) fills a `Catalog` from MySQL/MariaDB's
``information_schema`` or PostgreSQL's ``pg_catalog``; DDL generation (`stratum.schema.ddl`)
turns it into the target's statements. Names are exactly as the source spells them (case kept);
types are both as the source spells them (`native_type`, what `CAST TYPE` rules match) and as
PostgreSQL spells the mapped type (`type`, what `stratum.connectors.base.Column` carries).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    native_type: str  # as the source spells it: "tinyint(1) unsigned", "character varying(20)"
    type: str  # the mapped type, as PostgreSQL spells it ("boolean", "numeric(20,0)", "text[]")
    nullable: bool
    default: str | None = None  # the default as an SQL expression of the source's dialect
    auto_increment: bool = False  # MySQL AUTO_INCREMENT, PostgreSQL identity or serial
    comment: str | None = None
    labels: tuple[str, ...] = ()  # an ENUM's (or PostgreSQL enum type's) labels, in order
    enum_type: str | None = None  # PostgreSQL: the enum type's name (labels hold its values)


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """A secondary index (the primary key is `TableInfo.primary_key`, not an index here)."""

    name: str
    columns: tuple[str, ...]
    unique: bool
    method: str = "btree"  # "btree", "hash", "fulltext", "spatial", "gin", "gist", ...
    # column prefix lengths (MySQL's `KEY (name(10))`), one per column, None for a whole column
    prefixes: tuple[int | None, ...] = ()


@dataclass(frozen=True, slots=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str  # in the same database/schema
    ref_columns: tuple[str, ...]
    on_delete: str = "NO ACTION"  # "NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"
    on_update: str = "NO ACTION"


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...] = ()
    indexes: tuple[IndexInfo, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    comment: str | None = None
    primary_key_name: str | None = None  # PostgreSQL's constraint name; MySQL's is "PRIMARY"

    def column(self, name: str) -> ColumnInfo:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class ViewInfo:
    name: str
    definition: str  # the view's SELECT, in the source's dialect
    depends_on: tuple[str, ...] = ()  # tables and views of the same schema it reads, when known


@dataclass(frozen=True, slots=True)
class Catalog:
    dialect: str  # sqlglot dialect of the source: "mysql" or "postgres"
    schema: str  # the database (MySQL) or schema (PostgreSQL) that was read
    tables: tuple[TableInfo, ...]
    views: tuple[ViewInfo, ...] = ()

    def table(self, name: str) -> TableInfo:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)
