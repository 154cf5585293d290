"""The target's DDL for `MIGRATE DATABASE`: everything but the bare tables, made from a `Catalog`.

The engine creates each table with its columns only (no keys), loads its rows, and then runs
what this module returns, for a PostgreSQL target (dialect ``"postgres"``) or a MySQL/MariaDB
target (``"mysql"``). The module is pure: it builds SQL text and never talks to a server.

    before_data(catalog, table, schema, dialect)        enum types (PostgreSQL -> PostgreSQL)
    after_data(table, schema, dialect, names, catalog=) primary key, indexes, enum checks,
                                                        identity / AUTO_INCREMENT, defaults,
                                                        comments
    foreign_keys(catalog, schema, dialect, names)       every foreign key, after every table
    drop_foreign_keys(catalog, schema, dialect, names)  the same keys dropped (a fresh reload)
    views(catalog, wanted, schema, dialect, names)      CREATE OR REPLACE VIEW, in dependency order
    table_order(catalog)                                tables, referenced ones first
    target_names(catalog, max_bytes), fit_name(...)     names cut to the target's limit

**Results.** Each statement is a `Statement`: its SQL, what it does (for messages) and `done`, a
query that returns a row when the statement's effect is already there, so that a step redone
after a crash skips it (PostgreSQL: ``pg_constraint``, ``pg_attribute``, ``pg_type``; MySQL:
``information_schema`` TABLE_CONSTRAINTS, STATISTICS, COLUMNS). A statement that is idempotent
by itself (CREATE INDEX IF NOT EXISTS, COMMENT ON, SET DEFAULT, setval, CREATE OR REPLACE VIEW)
has `done` None. Statements are run as they are, without parameters (a driver that formats
``%`` would need them doubled). The functions return a `Ddl`: a sequence of statements (so it
can be handed to `SchemaDestination.apply_ddl` as it is) that also carries `warnings`, one
sentence each, for what was left out or renamed; the caller shows them. Nothing is logged
here. A catalog the target cannot take at all (a view sqlglot cannot transpile, an unknown
foreign-key rule, a name holding NUL) raises DestinationError.

**Quoting.** Every identifier goes through `stratum.connectors.sql.quote`; every value (labels,
comments, defaults, names inside the `done` queries) is written as an escaped string literal:
quotes doubled; on MySQL, backslashes doubled too (the destination's session keeps backslash
escapes on, i.e. no NO_BACKSLASH_ESCAPES). Types and defaults are parsed by sqlglot and written
back, never pasted. `schema` None means "public" on PostgreSQL (as the destination qualifies
it) and the session's database on MySQL (names are then unqualified and the `done` queries use
DATABASE()).

**Names.** `target_names` cuts table and view names longer than the target allows (63 bytes
of UTF-8 on PostgreSQL, 64 on MySQL): a prefix that never splits a character, then ``_`` and
the first 8 hex digits of the sha256 of the full name, so the same name is always cut the
same way. Index and constraint names get the same treatment, and are made unique where the
target needs it:

* PostgreSQL: an index or primary-key name must be unique among the schema's relations
  (tables, views, indexes, sequences), and a check or foreign-key name within its table. A
  name that would collide (MySQL's index names are per table, so ``idx_created`` on two
  tables; or an index named like a table) becomes ``<table>_<name>`` on every table that uses
  it; should even that collide, the hash suffix is added. The primary key keeps its
  PostgreSQL name, and MySQL's ``PRIMARY`` becomes ``<table>_pkey``. This needs every table's
  names: `after_data` sees them through its `catalog` argument, which the engine must pass
  (without it, only collisions within the table and with table names are seen).
* MySQL: index names are per table (``PRIMARY`` is reserved); check and foreign-key names
  are per database (PostgreSQL's foreign-key names are per table, so they may collide), and
  are made unique the same way.
* Generated names: ``<table>_pkey``, ``<table>_<column>_check`` (PostgreSQL) or
  ``<table>_<column>_chk`` (MySQL) for enum checks, ``<table>_<column>_seq``, and on MySQL
  ``<column>`` for the index an AUTO_INCREMENT column needs when no index begins with it.
* Enum types keep their name (cut to fit); they are looked up by that name in the schema.

A renamed index or key is reported in the warnings with both names.

**Mapping choices.**

* Primary key: ``ALTER TABLE .. ADD CONSTRAINT .. PRIMARY KEY``; MySQL ``ADD PRIMARY KEY``,
  and the string columns of the key are first MODIFYed to the type the MySQL destination gives
  a key column (VARCHAR within InnoDB's 3072-byte key, utf8mb4_bin so that 'a' and 'A' stay
  two keys), in the same ALTER.
* Indexes: btree (the default), hash, and on PostgreSQL a PostgreSQL source's gin, gist, brin
  and spgist keep their method (a unique or multi-column hash index becomes a btree, which
  PostgreSQL's hash cannot be; InnoDB makes every hash index a btree anyway). PostgreSQL:
  ``CREATE [UNIQUE] INDEX IF NOT EXISTS``; MySQL: ``ALTER TABLE .. ADD [UNIQUE|FULLTEXT]
  INDEX``. MySQL FULLTEXT becomes on PostgreSQL a GIN index
  over ``to_tsvector('simple', column)``, one expression per column (it serves queries
  written with the same expression). Skipped with a warning: SPATIAL (GiST needs PostGIS;
  on MySQL the geometry arrived as bytes), a PostgreSQL-only method on MySQL, an index on a
  JSON column on MySQL, an unknown method. Prefix lengths (MySQL ``KEY (name(10))``): on
  PostgreSQL the whole column is indexed (a btree entry is limited to about 2.7 kB: a longer
  value makes the index fail); on MySQL they are kept, and an index over LONGTEXT/LONGBLOB
  columns (PostgreSQL text/bytea) or too wide for InnoDB gets prefixes that fit 3072 bytes. A
  unique index's string columns are MODIFYed to key types as for the primary key (a prefix
  would make uniqueness stricter than the source's).
* Auto-increment: PostgreSQL ``ALTER COLUMN .. ADD GENERATED BY DEFAULT AS IDENTITY`` (SET
  NOT NULL first when the column is nullable), then ``setval(pg_get_serial_sequence(..),
  greatest(coalesce(max(col), 0), 0) + 1, false)``, so the next INSERT without a value gets
  max + 1 (1 for an empty table or one with only negative values). An identity needs an
  integer type: a numeric(p,0) column (MySQL's bigint unsigned) gets a sequence of its own
  (CREATE SEQUENCE .. OWNED BY the column, DEFAULT nextval) instead; any other type is
  skipped with a warning. MySQL: ``MODIFY col <type> NOT NULL AUTO_INCREMENT`` after the keys
  (MySQL wants an index that begins with the column: one is added in the same ALTER when
  none does); InnoDB sets the counter to max + 1 itself when it
  rebuilds the table, so no ``AUTO_INCREMENT = n`` follows. The type is the column's integer
  type, or a MySQL source's own integer type when the mapped one is not an integer (bigint
  unsigned, mapped to DECIMAL(20,0)); foreign keys onto it MODIFY their columns to match.
  Caveat: a row whose value is 0 is renumbered by MySQL unless NO_AUTO_VALUE_ON_ZERO is set.
* Defaults: parsed with sqlglot in the source's dialect and kept when they are a literal
  (string, number, boolean, MySQL bit literal; PostgreSQL casts of a literal are dropped, the
  column's type does the conversion), ``CURRENT_TIMESTAMP``/``now()``/``localtimestamp``,
  ``CURRENT_DATE``, ``CURRENT_TIME`` ('now'/'today' cast to a date or time type included)
  or a UUID function (uuid(), gen_random_uuid(), uuid_generate_v4()), written as the target
  spells them (PostgreSQL ``gen_random_uuid()``; MySQL ``(uuid())``, ``(CURRENT_TIMESTAMP(6))``;
  a literal in parentheses on a MySQL TEXT/BLOB/JSON column). 0/1 on a boolean column become
  FALSE/TRUE. Left out with a warning: anything else (expressions, other functions,
  sequences not owned by the column), MySQL zero dates on PostgreSQL, and PostgreSQL array
  defaults on MySQL (its arrays are JSON). A NULL default is no default. The auto-increment
  column's default (nextval) is its identity.
* ENUM: a PostgreSQL enum column (``enum_type``) read from PostgreSQL into PostgreSQL gets its
  type back: `before_data` creates ``CREATE TYPE <schema>.<name> AS ENUM (labels)`` (the name
  is the last part of ``enum_type``), `after_data` converts the loaded text column with
  ``ALTER COLUMN .. TYPE .. USING``. Any other column with `labels` (MySQL ENUM; a PostgreSQL
  enum on MySQL) gets ``CHECK (col IN ('label', ...))``, compared byte for byte on MySQL
  (``CAST(col AS BINARY)``); a MySQL SET (a text[] column) gets ``CHECK (col <@ ARRAY[..])``
  on PostgreSQL, nothing on MySQL (its value is JSON there). NULL passes the check. Caveat:
  MySQL's invalid-value '' (stored outside strict mode) fails the check.
* Comments: PostgreSQL ``COMMENT ON TABLE`` / ``COMMENT ON COLUMN``; MySQL the table comment
  (``ALTER TABLE .. COMMENT = ..``, cut to MySQL's 2048 characters with a warning). MySQL
  column comments are skipped with a warning: MODIFY would have to restate each column whole.
* Foreign keys: ``ADD CONSTRAINT .. FOREIGN KEY .. REFERENCES .. ON DELETE .. ON UPDATE ..``
  with the source's rules; MySQL cannot do SET DEFAULT (NO ACTION instead, with a warning).
  A key onto a table that is not in the catalog (not migrated) is skipped with a warning. On
  MySQL a referencing column whose type differs from the referenced column's (a key column
  retyped above, a retyped AUTO_INCREMENT column) is MODIFYed to it in the same ALTER.
* Views: the definition is parsed in the catalog's dialect and written in the target's by
  sqlglot (errors on anything it cannot write); references to the source schema are
  rewritten to the target schema and names go through `names` (a renamed table keeps its old
  name as its alias, so column references still resolve; PostgreSQL cuts a long alias the same
  way everywhere it appears); MySQL charset introducers (``_utf8mb4'x'``) are dropped for
  PostgreSQL; casts to a catalog enum type (``'happy'::mood``) name the type in the target
  schema on PostgreSQL and are dropped on MySQL. A reference to another schema is kept as it
  is, with a warning. A view of `wanted` that is not in the catalog raises DestinationError.

MySQL statements that restate a column (MODIFY) use the types the MySQL destination gives the
catalog's `type` (`stratum.connectors.mysql._dest_types`), nullability and translated default;
they assume a strict session (the destination's), in which a value that does not fit the new
type fails the statement instead of being cut.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias, overload

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from stratum.connectors.base import Column
from stratum.connectors.mysql._dest_types import _KEY_BYTES, _key_bytes, _unbounded, mysql_type
from stratum.connectors.sql import check_identifier, parse_type, quote
from stratum.errors import DestinationError
from stratum.schema.catalog import Catalog, ColumnInfo, ForeignKey, IndexInfo, TableInfo, ViewInfo

__all__ = [
    "DIALECTS",
    "MAX_NAME_BYTES",
    "Ddl",
    "Statement",
    "after_data",
    "before_data",
    "drop_foreign_keys",
    "fit_name",
    "foreign_keys",
    "table_order",
    "target_names",
    "views",
]

PG = "postgres"
MY = "mysql"
DIALECTS = (PG, MY)

#: The longest name each target takes, in bytes of UTF-8 (MySQL counts 64 characters: bytes are
#: stricter, and the same on both).
MAX_NAME_BYTES: Mapping[str, int] = {PG: 63, MY: 64}

_HASH_DIGITS = 8
_SUFFIX_BYTES = 1 + _HASH_DIGITS
_MYSQL_TABLE_COMMENT = 2048
_RULES = ("NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT")
_T = exp.DataType.Type


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str  # one statement, in the target dialect
    what: str  # for messages: "primary key of shop.orders"
    # a query returning at least one row when the statement's effect is already there (a rerun
    # after a crash skips the statement); None when the statement is itself idempotent
    done: str | None


@dataclass(frozen=True, slots=True)
class Ddl(Sequence[Statement]):
    """Statements to run in order, and the warnings made while building them (left out,
    renamed). A sequence of its statements, so it can be passed where statements go."""

    statements: tuple[Statement, ...] = ()
    warnings: tuple[str, ...] = ()

    @overload
    def __getitem__(self, index: int) -> Statement: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Statement]: ...

    def __getitem__(self, index: int | slice) -> Statement | Sequence[Statement]:
        return self.statements[index]

    def __len__(self) -> int:
        return len(self.statements)

    def __iter__(self) -> Iterator[Statement]:
        return iter(self.statements)

    def __add__(self, other: Ddl) -> Ddl:
        return Ddl(self.statements + other.statements, self.warnings + other.warnings)


# --- names -------------------------------------------------------------------------------------


def fit_name(name: str, max_bytes: int) -> str:
    """`name` when its UTF-8 takes at most `max_bytes`; else a prefix of it (never cutting a
    character) + ``_`` + the first 8 hex digits of the sha256 of the whole name."""
    if len(name.encode("utf-8")) <= max_bytes:
        return name
    return _hashed(name, name, max_bytes)


def _hashed(name: str, key: str, max_bytes: int) -> str:
    """A prefix of `name` and the hash of `key`, within `max_bytes`."""
    if max_bytes <= _SUFFIX_BYTES:
        raise ValueError(f"a name limit of {max_bytes} bytes leaves no room for a prefix")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:_HASH_DIGITS]
    head = name.encode("utf-8")[: max_bytes - _SUFFIX_BYTES].decode("utf-8", errors="ignore")
    return f"{head}_{digest}"


def target_names(catalog: Catalog, max_bytes: int) -> tuple[dict[str, str], list[str]]:
    """Each table's and view's name on the target (`fit_name`), and a warning for each one
    that was cut. Raises DestinationError for a name the target cannot take (empty, NUL) and
    when two names would end up the same."""
    names: dict[str, str] = {}
    owner: dict[str, str] = {}
    warnings: list[str] = []
    relations = [("table", t.name) for t in catalog.tables] + [
        ("view", v.name) for v in catalog.views
    ]
    for kind, name in relations:
        target = fit_name(name, max_bytes)
        check_identifier(target, max_bytes, in_bytes=True)
        if owner.setdefault(target, name) != name:
            raise DestinationError(
                f"{kind} {name!r} and {owner[target]!r} would both be named {target!r} on the "
                "target"
            )
        names[name] = target
        if target != name:
            size = len(name.encode("utf-8"))
            warnings.append(
                f"{kind} name {name!r} is {size} bytes long, more than the target's "
                f"{max_bytes}: it is created as {target!r}"
            )
    return names, warnings


def _enum_type_name(spelling: str) -> str:
    """The type's own name in ``format_type``'s spelling: ``mood``, ``"Mood"``,
    ``other.mood``."""
    parts = [
        quoted.replace('""', '"') if quoted else plain.strip()
        for quoted, plain in re.findall(r'"((?:[^"]|"")*)"|([^."]+)', spelling)
    ]
    return parts[-1] if parts else spelling


@dataclass(frozen=True, slots=True)
class _Object:
    """An index or constraint to be named: which one, what it would like to be called."""

    table: str  # source table
    kind: str  # "pk", "index", "check", "seq", "fk"
    source: str  # the source's name for it (its column for check and seq)
    candidate: str  # the name it gets unless that collides
    fallback: str  # the name it gets otherwise (before fitting): "<table>_<source>"
    pools: tuple[tuple[str, str], ...]  # the namespaces it must be unique in
    original: str | None  # the source's name, when it has one (a change is worth a warning)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.table, self.kind, self.source)


@dataclass(frozen=True, slots=True)
class _Names:
    """The target names of a catalog's indexes and constraints."""

    by_key: Mapping[tuple[str, str, str], str]
    renamed: Mapping[tuple[str, str, str], str]  # warnings, for names from the source

    def get(self, table: str, kind: str, source: str) -> str:
        return self.by_key[(table, kind, source)]

    def warnings(self, table: str, kinds: Collection[str]) -> list[str]:
        return [w for (t, k, _), w in self.renamed.items() if t == table and k in kinds]


def _objects(table: TableInfo, t: _Target, names: Mapping[str, str]) -> list[_Object]:
    tt = t.table_name(table.name, names)
    found: list[_Object] = []

    def add(kind: str, source: str, candidate: str, pools: list[str], given: bool) -> None:
        fallback = f"{tt}_{source}"
        scoped = tuple((pool, "" if pool in ("rel", "schema") else table.name) for pool in pools)
        fitted = fit_name(candidate, t.max_bytes)
        original = candidate if given else None
        found.append(_Object(table.name, kind, source, fitted, fallback, scoped, original))

    if t.dialect == PG:
        if table.primary_key:
            given = table.primary_key_name not in (None, "", "PRIMARY")
            name = table.primary_key_name if given and table.primary_key_name else f"{tt}_pkey"
            add("pk", "pkey", name, ["rel", "con"], given)
        for index in table.indexes:
            add("index", index.name, index.name, ["rel"], True)
        for column in table.columns:
            if _wants_check(column, t):
                add("check", column.name, f"{tt}_{column.name}_check", ["con"], False)
            if column.auto_increment and _pg_sequence_fallback(column):
                add("seq", column.name, f"{tt}_{column.name}_seq", ["rel"], False)
        for fk in table.foreign_keys:
            add("fk", fk.name, fk.name, ["con"], True)
    else:
        for index in table.indexes:
            add("index", index.name, index.name, ["idx"], True)
        for counter in _my_unindexed_counters(table, _my_table(table)):
            add("autoidx", counter, counter, ["idx"], False)
        for column in table.columns:
            if _wants_check(column, t):
                add("check", column.name, f"{tt}_{column.name}_chk", ["schema"], False)
        for fk in table.foreign_keys:
            add("fk", fk.name, fk.name, ["schema"], True)
    return found


def _naming(
    tables: Sequence[TableInfo], t: _Target, names: Mapping[str, str], views: Sequence[ViewInfo]
) -> _Names:
    """Names for every index and constraint of `tables`: the candidate where it is unique in
    each of its namespaces, else ``<table>_<name>`` (fitted), else that with the hash of
    (table, kind, name) - deterministic, whatever order the tables come in."""

    def fold(name: str) -> str:
        return name.lower() if t.dialect == MY else name  # MySQL compares these names so

    objects = sorted((o for table in tables for o in _objects(table, t, names)), key=_sort_key)
    taken: set[tuple[str, str, str]] = set()
    if t.dialect == PG:
        relations = [t.table_name(x.name, names) for x in tables]
        relations += [t.table_name(v.name, names) for v in views]
        relations += list(names.values())
        taken.update(("rel", "", fold(n)) for n in relations)
    else:
        taken.update(("idx", x.name, "primary") for x in tables)
    counts = Counter((pool, scope, fold(o.candidate)) for o in objects for pool, scope in o.pools)

    def free(o: _Object, name: str, *, alone: bool) -> bool:
        keys = [(pool, scope, fold(name)) for pool, scope in o.pools]
        return all(k not in taken and (not alone or counts[k] == 1) for k in keys)

    chosen: dict[tuple[str, str, str], str] = {}
    for o in objects:
        if free(o, o.candidate, alone=True):
            chosen[o.key] = o.candidate
    taken.update(
        (pool, scope, fold(chosen[o.key]))
        for o in objects
        if o.key in chosen
        for pool, scope in o.pools
    )
    renamed: dict[tuple[str, str, str], str] = {}
    for o in objects:
        if o.key in chosen:
            name = chosen[o.key]
        else:
            name = fit_name(o.fallback, t.max_bytes)
            if not free(o, name, alone=False):
                name = _hashed(o.fallback, "\x00".join(o.key), t.max_bytes)
            if not free(o, name, alone=False):  # pragma: no cover - a sha256 collision
                raise DestinationError(f"no free name for {o.kind} {o.source!r} of {o.table!r}")
            taken.update((pool, scope, fold(name)) for pool, scope in o.pools)
            chosen[o.key] = name
        if o.original is not None and name != o.original:
            label = {"pk": "primary key", "index": "index", "fk": "foreign key"}[o.kind]
            if name == o.candidate:
                why = f"longer than {t.max_bytes} bytes"
            elif ("rel", "") in o.pools:
                why = "another index, key or table of the schema has that name"
            elif ("schema", "") in o.pools:
                why = "another constraint of the database has that name"
            else:
                why = "another constraint of the table has that name"
            renamed[o.key] = (
                f"{label} {o.original!r} of table {o.table!r} is named {name!r} on the target "
                f"({why})"
            )
    return _Names(chosen, renamed)


def _sort_key(o: _Object) -> tuple[str, str, str]:
    return o.key


# The last few catalogs' names: `after_data` runs once per table and each needs every table's
# names. Entries hold their tables, so an identity check cannot be fooled by a reused id.
_Entry: TypeAlias = tuple[
    tuple[TableInfo, ...], tuple[ViewInfo, ...], "_Target", dict[str, str], _Names
]
_NAMINGS: list[_Entry] = []


def _catalog_naming(catalog: Catalog, t: _Target, names: Mapping[str, str]) -> _Names:
    for tables, views, target, known, naming in _NAMINGS:
        if tables is catalog.tables and views is catalog.views and target == t and known == names:
            return naming
    naming = _naming(catalog.tables, t, names, catalog.views)
    _NAMINGS.insert(0, (catalog.tables, catalog.views, t, dict(names), naming))
    del _NAMINGS[4:]
    return naming


# --- the target --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    dialect: str
    schema: str | None  # None: the session's database (MySQL only)

    @classmethod
    def of(cls, schema: str | None, dialect: str) -> _Target:
        if dialect not in DIALECTS:
            raise DestinationError(
                f"no schema DDL for dialect {dialect!r} (only {PG!r} and {MY!r})"
            )
        if schema is None and dialect == PG:
            schema = "public"
        if schema is not None:
            check_identifier(schema, MAX_NAME_BYTES[dialect], in_bytes=True)
        return cls(dialect, schema)

    @property
    def max_bytes(self) -> int:
        return MAX_NAME_BYTES[self.dialect]

    def q(self, name: str) -> str:
        check_identifier(name, 1 << 30)
        return quote(name, self.dialect)

    def columns(self, names: Sequence[str]) -> str:
        return ", ".join(self.q(n) for n in names)

    def qualified(self, name: str) -> str:
        if self.schema is None:
            return self.q(name)
        return f"{self.q(self.schema)}.{self.q(name)}"

    def label(self, name: str) -> str:
        return name if self.schema is None else f"{self.schema}.{name}"

    def table_name(self, source: str, names: Mapping[str, str]) -> str:
        return names.get(source) or fit_name(source, self.max_bytes)

    def literal(self, value: str) -> str:
        return _literal(value, self.dialect)

    def schema_value(self) -> str:
        if self.schema is None:
            return "DATABASE()" if self.dialect == MY else "current_schema()"
        return self.literal(self.schema)

    # --- done queries

    def pg_table_where(self, table: str) -> str:
        return f"n.nspname = {self.schema_value()} AND r.relname = {self.literal(table)}"

    def pg_constraint(self, table: str, *, name: str | None = None, kind: str | None = None) -> str:
        where = [self.pg_table_where(table)]
        if name is not None:
            where.append(f"c.conname = {self.literal(name)}")
        if kind is not None:
            where.append(f"c.contype = {self.literal(kind)}")
        return (
            "SELECT 1 FROM pg_catalog.pg_constraint c "
            "JOIN pg_catalog.pg_class r ON r.oid = c.conrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace "
            f"WHERE {' AND '.join(where)}"
        )

    def pg_attribute(self, table: str, column: str, condition: str) -> str:
        return (
            "SELECT 1 FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class r ON r.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace "
            f"WHERE {self.pg_table_where(table)} AND a.attname = {self.literal(column)} "
            f"AND {condition}"
        )

    def pg_type(self, name: str) -> str:
        return (
            "SELECT 1 FROM pg_catalog.pg_type t "
            "JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
            f"WHERE n.nspname = {self.schema_value()} AND t.typname = {self.literal(name)}"
        )

    def my_where(self, table: str) -> str:
        return f"TABLE_SCHEMA = {self.schema_value()} AND TABLE_NAME = {self.literal(table)}"

    def my_constraint(self, table: str, kind: str, name: str | None = None) -> str:
        named = "" if name is None else f" AND CONSTRAINT_NAME = {self.literal(name)}"
        return (
            "SELECT 1 FROM information_schema.TABLE_CONSTRAINTS "
            f"WHERE CONSTRAINT_SCHEMA = {self.schema_value()} AND TABLE_NAME = "
            f"{self.literal(table)} AND CONSTRAINT_TYPE = {self.literal(kind)}{named}"
        )

    def my_index(self, table: str, name: str) -> str:
        return (
            "SELECT 1 FROM information_schema.STATISTICS "
            f"WHERE {self.my_where(table)} AND INDEX_NAME = {self.literal(name)}"
        )


def _literal(value: str, dialect: str) -> str:
    """`value` as a string literal of `dialect` (MySQL: backslash escapes on)."""
    if dialect == MY:
        value = value.replace("\\", "\\\\").replace("\x00", "\\0")
    elif "\x00" in value:
        raise DestinationError(f"{value!r}: PostgreSQL text cannot hold a NUL character")
    return "'" + value.replace("'", "''") + "'"


class _Out:
    """Statements and warnings being collected."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []
        self.warnings: list[str] = []

    def add(self, sql: str, what: str, done: str | None = None) -> None:
        self.statements.append(Statement(sql, what, done))

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def ddl(self) -> Ddl:
        return Ddl(tuple(self.statements), tuple(self.warnings))


# --- types ---------------------------------------------------------------------------------------

_INTEGER_TYPES = {_T.SMALLINT, _T.INT, _T.BIGINT}
_DATE_TYPES = {_T.DATE}
_TIME_TYPES = {_T.TIME, _T.TIMETZ}
_TIMESTAMP_TYPES = {_T.TIMESTAMP, _T.TIMESTAMPTZ, _T.TIMESTAMPLTZ, _T.DATETIME}
_MY_INTEGER = re.compile(r"(TINYINT|SMALLINT|MEDIUMINT|INT|INTEGER|BIGINT)\b", re.IGNORECASE)
_MY_NATIVE_INTEGER = re.compile(
    r"(tinyint|smallint|mediumint|int|integer|bigint)(\(\d+\))?( unsigned)?( zerofill)?",
    re.IGNORECASE,
)
_MY_TEXT = re.compile(r"(?:VAR)?CHAR\((\d+)\)|(?:TINY|MEDIUM|LONG)?TEXT\b", re.IGNORECASE)
_MY_BINARY = re.compile(r"(?:VAR)?BINARY\((\d+)\)|(?:TINY|MEDIUM|LONG)?BLOB\b", re.IGNORECASE)


def _kind(column: ColumnInfo) -> exp.DataType:
    return parse_type(column.type, column.name)


def _is_array(column: ColumnInfo) -> bool:
    return bool(_kind(column).this == _T.ARRAY)


def _wants_check(column: ColumnInfo, t: _Target) -> bool:
    """A CHECK over the column's labels: not for a PostgreSQL enum kept as a type, nor for a
    MySQL SET on MySQL (a JSON array there)."""
    if not column.labels:
        return False
    if t.dialect == PG:
        return column.enum_type is None
    return not _is_array(column)


def _pg_sequence_fallback(column: ColumnInfo) -> bool:
    """An auto-increment column PostgreSQL cannot make an identity but a sequence can feed:
    numeric(p,0) (MySQL's bigint unsigned)."""
    kind = _kind(column)
    if kind.this != _T.DECIMAL or len(kind.expressions) != 2:
        return False
    return bool(kind.expressions[1].name == "0")


def _my_string(type_sql: str) -> tuple[str, int | None] | None:
    """("text"|"binary", bytes a whole value takes in a key, None when unbounded) for a MySQL
    string type; None for any other type."""
    if m := _MY_TEXT.match(type_sql):
        return "text", (4 * int(m.group(1)) if m.group(1) else None)
    if m := _MY_BINARY.match(type_sql):
        return "binary", (int(m.group(1)) if m.group(1) else None)
    return None


@dataclass(frozen=True, slots=True)
class _MyTable:
    """A table's column types on MySQL: as the destination creates them (`created`), and once
    this module's statements ran (`final`: key columns retyped, AUTO_INCREMENT's integer)."""

    created: Mapping[str, str]
    final: Mapping[str, str]
    auto: Mapping[str, str]  # auto-increment column -> its integer type (when it can be one)


def _my_table(table: TableInfo) -> _MyTable:
    known = {c.name for c in table.columns}
    created = {c.name: mysql_type(c.type, c.name) for c in table.columns}
    final = dict(created)
    width: dict[str, int] = {}

    def claim(names: Sequence[str]) -> None:
        """Key types for `names`, as `_dest_types.column_ddl` gives the primary key's."""
        plain = [Column(n, table.column(n).type) for n in names if n in known]
        fresh = [c for c in plain if c.name not in width]
        unbounded = [c for c in fresh if _unbounded(c.type, c.name)]
        used = sum(width[c.name] for c in plain if c.name in width)
        used += sum(_key_bytes(c) for c in fresh if c not in unbounded)
        room = max(4, (_KEY_BYTES - used) // max(1, len(unbounded)))
        for c in fresh:
            final[c.name] = mysql_type(c.type, c.name, key_bytes=room)
            width[c.name] = room if c in unbounded else _key_bytes(c)

    claim(table.primary_key)
    for index in sorted(table.indexes, key=lambda i: i.name):
        if index.unique and _my_method(index) == "btree" and not _my_json(index, final):
            prefixes = index.prefixes or (None,) * len(index.columns)
            claim([c for c, p in zip(index.columns, prefixes, strict=False) if p is None])
    auto: dict[str, str] = {}
    for c in table.columns:
        if not c.auto_increment:
            continue
        if _MY_INTEGER.match(final[c.name]) and final[c.name].upper() != "TINYINT(1)":
            auto[c.name] = final[c.name]
        elif _MY_NATIVE_INTEGER.fullmatch(c.native_type.strip()):
            auto[c.name] = final[c.name] = c.native_type.strip()
    return _MyTable(created, final, auto)


def _my_unindexed_counters(table: TableInfo, types: _MyTable) -> list[str]:
    """The AUTO_INCREMENT columns that begin no key or index: MySQL wants them to begin one."""
    first = {table.primary_key[0]} if table.primary_key else set()
    first |= {
        index.columns[0]
        for index in table.indexes
        if index.columns and _my_method(index) == "btree" and not _my_json(index, types.final)
    }
    return [c for c in types.auto if c not in first]


def _my_json(index: IndexInfo, types: Mapping[str, str]) -> bool:
    return any(types.get(c, "").upper() == "JSON" for c in index.columns)


def _my_method(index: IndexInfo) -> str | None:
    method = index.method.lower()
    if method in ("btree", "hash"):
        return "btree"
    if method == "fulltext":
        return "fulltext"
    return None


# --- defaults ------------------------------------------------------------------------------------

_NOW_FUNCTIONS = {
    "now",
    "current_timestamp",
    "localtimestamp",
    "transaction_timestamp",
    "statement_timestamp",
    "clock_timestamp",
    "sysdate",
    "utc_timestamp",
}
_UUID_FUNCTIONS = {"uuid", "gen_random_uuid", "uuid_generate_v4"}
_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?")
_ZERO_DATE = re.compile(r"\s*(0000-|\d{4}-00-|\d{4}-\d{2}-00)")


def _classify(node: exp.Expr) -> tuple[str, str] | None:
    """What a default is: ("null"|"bool"|"number"|"string"|"now"|"date"|"time"|"uuid", value),
    or None for anything that is not a literal or a well-known function."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Null):
        return "null", ""
    if isinstance(node, exp.Boolean):
        return "bool", "TRUE" if node.this else "FALSE"
    if isinstance(node, exp.Literal):
        if node.is_string:
            return "string", str(node.this)
        text = str(node.this)
        return ("number", text) if _NUMBER.fullmatch(text) else None
    if isinstance(node, exp.Neg):
        inner = _classify(node.this)
        if inner is not None and inner[0] == "number":
            return "number", "-" + inner[1]
        return None
    if isinstance(node, exp.BitString):
        try:
            return "number", str(int(str(node.this), 2))
        except ValueError:
            return None
    if isinstance(node, exp.Cast):
        inner = _classify(node.this)
        to = node.to.this if isinstance(node.to, exp.DataType) else None
        if inner is not None and inner[0] == "string":
            word = inner[1].strip().lower()
            if word in ("now", "today") and to in _DATE_TYPES:
                return "date", ""
            if word == "now" and to in _TIMESTAMP_TYPES:
                return "now", ""
            if word == "now" and to in _TIME_TYPES:
                return "time", ""
        return inner
    if isinstance(node, (exp.CurrentTimestamp, exp.CurrentDatetime, exp.Localtimestamp)):
        return "now", ""
    if isinstance(node, exp.CurrentDate):
        return "date", ""
    if isinstance(node, (exp.CurrentTime, exp.Localtime)):
        return "time", ""
    if isinstance(node, exp.Uuid):
        return "uuid", ""
    if isinstance(node, exp.Anonymous) and not node.expressions:
        name = str(node.this).lower()
        if name in _NOW_FUNCTIONS:
            return "now", ""
        if name in _UUID_FUNCTIONS:
            return "uuid", ""
    return None


_BIT_STRING = re.compile(r"\s*(bit\s+varying|varbit|bit)\s*(\(\s*\d+\s*\))?\s*", re.IGNORECASE)


def _array_literal(elements: Sequence[str]) -> str:
    """A PostgreSQL array literal of text elements, each quoted: `{"a","b,c"}`."""
    quoted = ('"' + e.replace("\\", "\\\\").replace('"', '\\"') + '"' for e in elements)
    return "{" + ",".join(quoted) + "}"


def _default_sql(
    column: ColumnInfo, source: str, t: _Target, my_type: str | None
) -> tuple[str | None, str | None]:
    """The column's default in the target's spelling, or None and why it is left out (None
    when there is nothing to say: no default, a NULL default, an auto-increment column)."""
    if column.default is None or column.auto_increment:
        return None, None
    text = column.default.strip()
    where = f"default {text!r} of column {column.name!r}"
    try:
        tree = sqlglot.parse_one(text, read=source)
        found = _classify(tree)
    except (SqlglotError, ValueError, TypeError, AttributeError):
        found = None
    if found is None:
        return None, f"{where} is not a literal or a well-known function: left out"
    kind, value = found
    target_type = _kind(column)
    boolean = target_type.this == _T.BOOLEAN
    if kind == "null":
        return None, None
    if kind in ("number", "string") and boolean and value in ("0", "1"):
        kind, value = "bool", ("TRUE" if value == "1" else "FALSE")
    if t.dialect == PG:
        if target_type.this == _T.ARRAY and kind == "string":
            # a MySQL SET's default is its members joined by commas; a PostgreSQL array's is
            # already an array literal
            text = _array_literal(value.split(",") if value else []) if column.labels else value
            return f"{t.literal(text)}::{target_type.sql(PG)}", None
        if _BIT_STRING.fullmatch(column.type) and kind == "number":
            width = re.search(r"\((\d+)\)", column.type)
            bits = format(int(value), "b") if value.isdigit() else ""
            if not bits or (width is not None and len(bits) > int(width.group(1))):
                return None, f"{where}: not a bit string of {column.type}: left out"
            return f"B'{bits.zfill(int(width.group(1)) if width else 0)}'", None
        if kind == "string":
            dated = target_type.this in _DATE_TYPES | _TIMESTAMP_TYPES
            if dated and _ZERO_DATE.match(value):
                return None, f"{where}: PostgreSQL has no zero dates: left out"
            return t.literal(value), None
        spelled = {
            "now": "CURRENT_TIMESTAMP",
            "date": "CURRENT_DATE",
            "time": "CURRENT_TIME",
            "uuid": "gen_random_uuid()",
        }
        return spelled.get(kind, value), None
    # MySQL
    if target_type.this == _T.ARRAY:
        return None, f"{where}: an array is JSON on MySQL: left out"
    string = _my_string(my_type or "")
    long_value = (my_type or "").upper() == "JSON" or (string is not None and string[1] is None)
    if kind == "string":
        literal = t.literal(value)
        return (f"({literal})" if long_value else literal), None
    if kind in ("number", "bool"):
        return (f"({value})" if long_value else value), None
    if kind == "now":
        precision = re.search(r"\((\d+)\)", my_type or "")
        digits = f"({precision.group(1)})" if precision and precision.group(1) != "0" else ""
        return f"(CURRENT_TIMESTAMP{digits})", None
    spelled = {"date": "(CURRENT_DATE)", "time": "(CURRENT_TIME)", "uuid": "(uuid())"}
    return spelled[kind], None


# --- before and after the data -------------------------------------------------------------------


def before_data(catalog: Catalog, table: TableInfo, schema: str | None, dialect: str) -> Ddl:
    """What must exist before `table` is created and loaded: on PostgreSQL, the enum types of
    a PostgreSQL source's enum columns (``CREATE TYPE .. AS ENUM``, in `schema`, same labels,
    named as the type's own name, cut to fit). The table is created with those columns as
    text; `after_data` gives them the type back. Nothing on MySQL."""
    t = _Target.of(schema, dialect)
    out = _Out()
    if t.dialect != PG or catalog.dialect != PG:
        return out.ddl()
    seen: set[str] = set()
    for column in table.columns:
        if column.enum_type is None:
            continue
        name = fit_name(_enum_type_name(column.enum_type), t.max_bytes)
        if name in seen:
            continue
        seen.add(name)
        labels = ", ".join(t.literal(label) for label in column.labels)
        out.add(
            f"CREATE TYPE {t.qualified(name)} AS ENUM ({labels})",
            f"enum type {t.label(name)}",
            t.pg_type(name),
        )
    return out.ddl()


def after_data(
    table: TableInfo,
    schema: str | None,
    dialect: str,
    names: Mapping[str, str],
    *,
    catalog: Catalog | None = None,
) -> Ddl:
    """Everything `table` has besides its columns and rows, once they are loaded: enum types
    back (PostgreSQL), primary key, indexes, enum checks, identity / AUTO_INCREMENT past the
    largest value, defaults, comments. Foreign keys come later (`foreign_keys`).

    `names` maps source table (and view) names to the target's. `catalog` is the table's
    catalog: pass it. It gives the source's dialect (defaults are read in it; without the
    catalog they are read in the target's) and every table's index names (PostgreSQL's are per
    schema; without the catalog only collisions within this table and with the tables of
    `names` are seen, which may name an index differently from a call that had it)."""
    t = _Target.of(schema, dialect)
    if catalog is not None:
        naming = _catalog_naming(catalog, t, names)
    else:
        naming = _naming([table], t, names, ())
    job = _Job(
        table,
        t,
        t.table_name(table.name, names),
        naming,
        catalog.dialect if catalog is not None else t.dialect,
        _Out(),
    )
    job.out.warnings.extend(naming.warnings(table.name, ("pk", "index", "check", "seq")))
    if t.dialect == PG:
        _pg_after(job)
    else:
        _my_after(job)
    return job.out.ddl()


@dataclass(frozen=True, slots=True)
class _Job:
    """One table's `after_data`."""

    table: TableInfo
    t: _Target
    tt: str  # the table's name on the target
    naming: _Names
    source: str  # the source's dialect
    out: _Out

    @property
    def qt(self) -> str:
        return self.t.qualified(self.tt)

    @property
    def label(self) -> str:
        return self.t.label(self.tt)

    def columns(self, names: Sequence[str]) -> str:
        return self.t.columns(names)


def _pg_after(job: _Job) -> None:
    table, t, tt, qt, label, out = job.table, job.t, job.tt, job.qt, job.label, job.out
    # enum columns get their type back before any index is built on them
    for column in table.columns:
        if column.enum_type is None:
            continue
        name = fit_name(_enum_type_name(column.enum_type), t.max_bytes)
        type_sql = t.qualified(name)
        qc = t.q(column.name)
        out.add(
            f"ALTER TABLE {qt} ALTER COLUMN {qc} TYPE {type_sql} USING {qc}::text::{type_sql}",
            f"enum type of {label}.{column.name}",
            t.pg_attribute(
                tt,
                column.name,
                "a.atttypid = (SELECT ty.oid FROM pg_catalog.pg_type ty "
                "JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace "
                f"WHERE tn.nspname = {t.schema_value()} AND ty.typname = {t.literal(name)})",
            ),
        )
    if table.primary_key:
        pk = job.naming.get(table.name, "pk", "pkey")
        out.add(
            f"ALTER TABLE {qt} ADD CONSTRAINT {t.q(pk)} PRIMARY KEY "
            f"({job.columns(table.primary_key)})",
            f"primary key of {label}",
            t.pg_constraint(tt, kind="p"),
        )
    for index in sorted(table.indexes, key=lambda i: i.name):
        _pg_index(job, index)
    for column in table.columns:
        if not _wants_check(column, t):
            continue
        name = job.naming.get(table.name, "check", column.name)
        labels = ", ".join(t.literal(v) for v in column.labels)
        qc = t.q(column.name)
        test = f"{qc} <@ ARRAY[{labels}]::text[]" if _is_array(column) else f"{qc} IN ({labels})"
        out.add(
            f"ALTER TABLE {qt} ADD CONSTRAINT {t.q(name)} CHECK ({test})",
            f"check of {label}.{column.name} against its labels",
            t.pg_constraint(tt, name=name, kind="c"),
        )
    for column in table.columns:
        if column.auto_increment:
            _pg_identity(job, column)
    for column in table.columns:
        default, problem = _default_sql(column, job.source, t, None)
        if problem is not None:
            out.warn(f"{label}: {problem}")
        if default is not None:
            out.add(
                f"ALTER TABLE {qt} ALTER COLUMN {t.q(column.name)} SET DEFAULT {default}",
                f"default of {label}.{column.name}",
            )
    if table.comment is not None:
        out.add(f"COMMENT ON TABLE {qt} IS {t.literal(table.comment)}", f"comment of {label}")
    for column in table.columns:
        if column.comment is not None:
            out.add(
                f"COMMENT ON COLUMN {qt}.{t.q(column.name)} IS {t.literal(column.comment)}",
                f"comment of {label}.{column.name}",
            )


def _pg_index(job: _Job, index: IndexInfo) -> None:
    t = job.t
    name = job.naming.get(job.table.name, "index", index.name)
    method = index.method.lower()
    what = f"index {name} of {job.label}"
    columns = job.columns(index.columns)
    using = ""
    if method == "fulltext":
        using = " USING gin"
        columns = ", ".join(f"to_tsvector('simple', {t.q(c)})" for c in index.columns)
    elif method == "hash" and (index.unique or len(index.columns) > 1):
        pass  # PostgreSQL's hash indexes take one column and cannot be unique: a btree
    elif method in ("hash", "gin", "gist", "brin", "spgist"):
        using = f" USING {method}"
    elif method == "spatial":
        job.out.warn(f"{what}: a SPATIAL index needs PostGIS (GiST on geometry): left out")
        return
    elif method != "btree":
        job.out.warn(
            f"{what}: index method {index.method!r} has no PostgreSQL equivalent: left out"
        )
        return
    unique = "UNIQUE " if index.unique and method != "fulltext" else ""
    job.out.add(
        f"CREATE {unique}INDEX IF NOT EXISTS {t.q(name)} ON {job.qt}{using} ({columns})", what
    )


def _pg_identity(job: _Job, column: ColumnInfo) -> None:
    t, qt, qc, out = job.t, job.qt, job.t.q(column.name), job.out
    label = f"{job.label}.{column.name}"
    kind = _kind(column).this
    if kind in _INTEGER_TYPES:
        if column.nullable and column.name not in job.table.primary_key:
            out.add(
                f"ALTER TABLE {qt} ALTER COLUMN {qc} SET NOT NULL",
                f"NOT NULL of identity column {label}",
            )
        out.add(
            f"ALTER TABLE {qt} ALTER COLUMN {qc} ADD GENERATED BY DEFAULT AS IDENTITY",
            f"identity of {label}",
            t.pg_attribute(job.tt, column.name, "a.attidentity <> ''"),
        )
    elif _pg_sequence_fallback(column):
        seq = t.qualified(job.naming.get(job.table.name, "seq", column.name))
        out.add(
            f"CREATE SEQUENCE IF NOT EXISTS {seq} AS bigint OWNED BY {qt}.{qc}",
            f"sequence of {label}",
        )
        out.add(
            f"ALTER TABLE {qt} ALTER COLUMN {qc} SET DEFAULT nextval({t.literal(seq)})",
            f"default of {label} from its sequence",
        )
    else:
        out.warn(
            f"auto-increment of {label} ({column.type}) left out: PostgreSQL identities are "
            "integers"
        )
        return
    out.add(
        f"SELECT setval(pg_get_serial_sequence({t.literal(qt)}, {t.literal(column.name)}), "
        f"CAST(greatest(coalesce(max({qc}), 0), 0) + 1 AS bigint), false) FROM {qt}",
        f"sequence of {label} past its largest value",
    )


def _my_modify(
    column: ColumnInfo,
    type_sql: str,
    t: _Target,
    source: str,
    *,
    key: bool = False,
    auto: bool = False,
) -> str:
    """``MODIFY`` restating `column` whole: type, NULL, default, AUTO_INCREMENT."""
    null = "NOT NULL" if key or auto or not column.nullable else "NULL"
    parts = [f"MODIFY {t.q(column.name)} {type_sql} {null}"]
    if not auto:
        default, _ = _default_sql(column, source, t, type_sql)
        if default is not None:
            parts.append(f"DEFAULT {default}")
    else:
        parts.append("AUTO_INCREMENT")
    return " ".join(parts)


def _my_after(job: _Job) -> None:
    table, t, tt, qt, label, out = job.table, job.t, job.tt, job.qt, job.label, job.out
    types = _my_table(table)
    if table.primary_key:
        changes = [
            _my_modify(table.column(c), types.final[c], t, job.source, key=True)
            for c in table.primary_key
            if types.final[c] != types.created[c]
        ]
        out.add(
            f"ALTER TABLE {qt} "
            + ", ".join([*changes, f"ADD PRIMARY KEY ({job.columns(table.primary_key)})"]),
            f"primary key of {label}",
            t.my_constraint(tt, "PRIMARY KEY"),
        )
    for index in sorted(table.indexes, key=lambda i: i.name):
        _my_index(job, index, types)
    for column in table.columns:
        if not column.auto_increment:
            continue
        if column.name not in types.auto:
            out.warn(
                f"auto-increment of {label}.{column.name} left out: its type "
                f"{types.final[column.name]} cannot be AUTO_INCREMENT"
            )
            continue
        modify = _my_modify(column, types.auto[column.name], t, job.source, auto=True)
        if column.name in _my_unindexed_counters(table, types):
            name = job.naming.get(table.name, "autoidx", column.name)
            modify += f", ADD INDEX {t.q(name)} ({t.q(column.name)})"
        out.add(
            f"ALTER TABLE {qt} {modify}",
            f"AUTO_INCREMENT of {label}.{column.name}",
            f"SELECT 1 FROM information_schema.COLUMNS WHERE {t.my_where(tt)} AND COLUMN_NAME = "
            f"{t.literal(column.name)} AND LOCATE('auto_increment', EXTRA) > 0",
        )
    for column in table.columns:
        if not _wants_check(column, t):
            continue
        name = job.naming.get(table.name, "check", column.name)
        labels = ", ".join(t.literal(v) for v in column.labels)
        out.add(
            f"ALTER TABLE {qt} ADD CONSTRAINT {t.q(name)} "
            f"CHECK (CAST({t.q(column.name)} AS BINARY) IN ({labels}))",
            f"check of {label}.{column.name} against its labels",
            t.my_constraint(tt, "CHECK", name),
        )
    for column in table.columns:
        default, problem = _default_sql(column, job.source, t, types.final[column.name])
        if problem is not None:
            out.warn(f"{label}: {problem}")
        if default is not None:
            out.add(
                f"ALTER TABLE {qt} ALTER COLUMN {t.q(column.name)} SET DEFAULT {default}",
                f"default of {label}.{column.name}",
            )
    if table.comment is not None:
        comment = table.comment
        if len(comment) > _MYSQL_TABLE_COMMENT:
            out.warn(
                f"comment of {label} cut to MySQL's {_MYSQL_TABLE_COMMENT} characters "
                f"(it has {len(comment)})"
            )
            comment = comment[:_MYSQL_TABLE_COMMENT]
        out.add(f"ALTER TABLE {qt} COMMENT = {t.literal(comment)}", f"comment of {label}")
    commented = [c.name for c in table.columns if c.comment is not None]
    if commented:
        out.warn(
            f"column comments of {label} left out ({', '.join(commented)}): on MySQL a column "
            "comment needs the column restated whole"
        )


def _my_index(job: _Job, index: IndexInfo, types: _MyTable) -> None:
    table, t = job.table, job.t
    name = job.naming.get(table.name, "index", index.name)
    what = f"index {name} of {job.label}"
    method = _my_method(index)
    if index.method.lower() == "spatial":
        job.out.warn(
            f"{what}: a SPATIAL index needs a geometry column (bytes on the target): left out"
        )
        return
    if method is None:
        job.out.warn(f"{what}: index method {index.method!r} has no MySQL equivalent: left out")
        return
    if _my_json(index, types.final):
        job.out.warn(f"{what}: MySQL cannot index a JSON column: left out")
        return
    prefixes: list[int | None] = list(index.prefixes or (None,) * len(index.columns))
    prefixes += [None] * (len(index.columns) - len(prefixes))
    changes: list[str] = []
    if method == "fulltext":
        prefixes = [None] * len(index.columns)
    elif index.unique:
        changes = [
            _my_modify(table.column(c), types.final[c], t, job.source)
            for c in dict.fromkeys(index.columns)
            if types.final[c] != types.created[c] and c not in table.primary_key
        ]
    else:
        _fit_prefixes(index.columns, prefixes, types.final)
    parts = []
    for column, prefix in zip(index.columns, prefixes, strict=True):
        keep = prefix is not None and _my_string(types.final[column]) is not None
        parts.append(t.q(column) + (f"({int(prefix)})" if keep and prefix is not None else ""))
    kind = {"fulltext": "FULLTEXT INDEX"}.get(method, "UNIQUE INDEX" if index.unique else "INDEX")
    job.out.add(
        f"ALTER TABLE {job.qt} "
        + ", ".join([*changes, f"ADD {kind} {t.q(name)} ({', '.join(parts)})"]),
        what,
        t.my_index(job.tt, name),
    )


def _fit_prefixes(
    columns: Sequence[str], prefixes: list[int | None], types: Mapping[str, str]
) -> None:
    """Prefixes for the string columns of an index that would not fit InnoDB's key (an
    unbounded column always needs one). Kept prefixes count as they are."""
    fixed = 0
    loose: list[tuple[int, str, int | None]] = []  # (position, text|binary, whole width)
    for position, column in enumerate(columns):
        string = _my_string(types[column])
        if string is None:
            fixed += 16
        elif prefixes[position] is not None:
            fixed += (prefixes[position] or 0) * (4 if string[0] == "text" else 1)
        else:
            loose.append((position, string[0], string[1]))
    total = fixed + sum(w or _KEY_BYTES for _, _, w in loose)
    if not loose or (total <= _KEY_BYTES and all(w is not None for _, _, w in loose)):
        return
    while True:  # whole columns that fit their share count as fixed; the rest share the room
        room = max(4, (_KEY_BYTES - fixed) // len(loose))
        small = [x for x in loose if x[2] is not None and x[2] <= room]
        if not small:
            break
        fixed += sum(x[2] or 0 for x in small)
        loose = [x for x in loose if x not in small]
        if not loose:
            return
    for position, kind, _ in loose:
        prefixes[position] = max(1, room // 4) if kind == "text" else room


# --- foreign keys --------------------------------------------------------------------------------


def _rule(rule: str, t: _Target, what: str, out: _Out) -> str:
    spelled = " ".join(rule.upper().split())
    if spelled not in _RULES:
        raise DestinationError(f"{what}: unknown referential action {rule!r}")
    if spelled == "SET DEFAULT" and t.dialect == MY:
        out.warn(f"{what}: MySQL (InnoDB) cannot SET DEFAULT: NO ACTION instead")
        return "NO ACTION"
    return spelled


def _foreign_keys(
    catalog: Catalog, t: _Target, names: Mapping[str, str], naming: _Names
) -> Iterator[tuple[TableInfo, ForeignKey, str, str | None]]:
    """(table, key, target name, why it is skipped or None), in `table_order`."""
    known = {x.name for x in catalog.tables}
    for name in table_order(catalog):
        table = catalog.table(name)
        for fk in sorted(table.foreign_keys, key=lambda k: k.name):
            target = naming.get(table.name, "fk", fk.name)
            why = None
            if fk.ref_table not in known:
                why = f"it references {fk.ref_table!r}, which is not migrated"
            elif len(fk.columns) != len(fk.ref_columns) or not fk.columns:
                why = "its columns and referenced columns do not pair up"
            yield table, fk, target, why


def foreign_keys(
    catalog: Catalog, schema: str | None, dialect: str, names: Mapping[str, str]
) -> Ddl:
    """Every foreign key of the catalog's tables (once all of them are loaded), with its ON
    DELETE / ON UPDATE rules; a key onto a table outside the catalog is left out, with a
    warning. Tables in `table_order`, each table's keys by name."""
    t = _Target.of(schema, dialect)
    out = _Out()
    naming = _catalog_naming(catalog, t, names)
    source = catalog.dialect
    my_types: dict[str, _MyTable] = {}
    for table, fk, name, why in _foreign_keys(catalog, t, names, naming):
        if (renamed := naming.renamed.get((table.name, "fk", fk.name))) is not None:
            out.warn(renamed)
        tt = t.table_name(table.name, names)
        label = t.label(tt)
        what = f"foreign key {name} of {label}"
        if why is not None:
            out.warn(f"{what}: left out, {why}")
            continue
        ref = catalog.table(fk.ref_table)
        on_delete = _rule(fk.on_delete, t, what, out)
        on_update = _rule(fk.on_update, t, what, out)
        not_null = [c for c in fk.columns if not table.column(c).nullable]
        if t.dialect == MY and not_null:
            # PostgreSQL accepts SET NULL on a NOT NULL column (the delete then fails, as NO
            # ACTION would); InnoDB refuses to create such a key
            if on_delete == "SET NULL":
                out.warn(f"{what}: ON DELETE SET NULL on NOT NULL {not_null}: NO ACTION instead")
                on_delete = "NO ACTION"
            if on_update == "SET NULL":
                out.warn(f"{what}: ON UPDATE SET NULL on NOT NULL {not_null}: NO ACTION instead")
                on_update = "NO ACTION"
        changes: list[str] = []
        if t.dialect == MY:
            mine = my_types.setdefault(table.name, _my_table(table))
            theirs = my_types.setdefault(ref.name, _my_table(ref))
            for column, ref_column in zip(fk.columns, fk.ref_columns, strict=True):
                wanted = theirs.final.get(ref_column)
                if wanted is None or wanted == mine.final.get(column):
                    continue
                changes.append(
                    _my_modify(
                        table.column(column),
                        wanted,
                        t,
                        source,
                        key=column in table.primary_key,
                        auto=column in mine.auto and _MY_INTEGER.match(wanted) is not None,
                    )
                )
        add = (
            f"ADD CONSTRAINT {t.q(name)} FOREIGN KEY ({t.columns(fk.columns)}) REFERENCES "
            f"{t.qualified(t.table_name(ref.name, names))} ({t.columns(fk.ref_columns)}) "
            f"ON DELETE {on_delete} ON UPDATE {on_update}"
        )
        done = (
            t.pg_constraint(tt, name=name, kind="f")
            if t.dialect == PG
            else t.my_constraint(tt, "FOREIGN KEY", name)
        )
        out.add(f"ALTER TABLE {t.qualified(tt)} " + ", ".join([*changes, add]), what, done)
    return out.ddl()


def drop_foreign_keys(
    catalog: Catalog, schema: str | None, dialect: str, names: Mapping[str, str]
) -> Ddl:
    """The foreign keys `foreign_keys` creates, dropped where they exist (before a new load
    of tables a previous run keyed: they would refuse a TRUNCATE). PostgreSQL: ``ALTER TABLE
    IF EXISTS .. DROP CONSTRAINT IF EXISTS`` (idempotent); MySQL: ``DROP FOREIGN KEY``, done
    when the key is not there (or the table is not)."""
    t = _Target.of(schema, dialect)
    out = _Out()
    naming = _catalog_naming(catalog, t, names)
    for table, _, name, why in _foreign_keys(catalog, t, names, naming):
        if why is not None:
            continue
        tt = t.table_name(table.name, names)
        what = f"drop of foreign key {name} of {t.label(tt)}"
        if t.dialect == PG:
            out.add(
                f"ALTER TABLE IF EXISTS {t.qualified(tt)} DROP CONSTRAINT IF EXISTS {t.q(name)}",
                what,
            )
        else:
            out.add(
                f"ALTER TABLE {t.qualified(tt)} DROP FOREIGN KEY {t.q(name)}",
                what,
                f"SELECT 1 FROM DUAL WHERE NOT EXISTS ({t.my_constraint(tt, 'FOREIGN KEY', name)})",
            )
    return out.ddl()


# --- order ---------------------------------------------------------------------------------------


def _ordered(names: Collection[str], needs: Mapping[str, Collection[str]]) -> list[str]:
    """`names` with each after the names it needs (those among `names`), ties by name. A cycle
    is broken by taking first the smallest name on it: from the smallest name left, follow
    the smallest name it still needs until a name comes back; the smallest of that loop goes
    first, as if its needs were met."""
    pending = set(names)
    wait = {n: {d for d in needs.get(n, ()) if d in pending and d != n} for n in pending}
    users: dict[str, list[str]] = {n: [] for n in pending}
    for n, deps in wait.items():
        for d in deps:
            users[d].append(n)
    ready = [n for n in pending if not wait[n]]
    heapq.heapify(ready)
    order: list[str] = []
    while pending:
        if not ready:
            walk: list[str] = []
            node = min(pending)
            while node not in walk:
                walk.append(node)
                node = min(d for d in wait[node] if d in pending)
            heapq.heappush(ready, min(walk[walk.index(node) :]))
        node = heapq.heappop(ready)
        if node not in pending:
            continue
        pending.discard(node)
        order.append(node)
        for user in users[node]:
            wait[user].discard(node)
            if user in pending and not wait[user]:
                heapq.heappush(ready, user)
    return order


def table_order(catalog: Catalog) -> list[str]:
    """The catalog's tables in foreign-key order: a table after the tables it references
    (self references ignored, references to tables outside the catalog too), ties by name. A
    cycle (a references b, b references a) does not fail: the smallest-named table of the
    cycle comes first, as if its references into the cycle were not there (see `_ordered`)."""
    needs = {t.name: {fk.ref_table for fk in t.foreign_keys} for t in catalog.tables}
    return _ordered([t.name for t in catalog.tables], needs)


# --- views ---------------------------------------------------------------------------------------


def views(
    catalog: Catalog,
    wanted: Collection[str],
    schema: str | None,
    dialect: str,
    names: Mapping[str, str],
) -> Ddl:
    """``CREATE OR REPLACE VIEW`` for each view of `wanted`, a view after the views it reads
    (`depends_on`), ties by name. Raises DestinationError naming the view when it is not in
    the catalog or sqlglot cannot transpile its definition."""
    t = _Target.of(schema, dialect)
    out = _Out()
    by_name = {v.name: v for v in catalog.views}
    missing = sorted(set(wanted) - set(by_name))
    if missing:
        raise DestinationError(f"view(s) not in the catalog of {catalog.schema!r}: {missing}")
    chosen = set(wanted)
    needs = {v: set(by_name[v].depends_on) & chosen for v in chosen}
    for name in _ordered(chosen, needs):
        view = by_name[name]
        target = t.table_name(view.name, names)
        body = _transpile(view, catalog, t, names, out)
        for other in sorted(set(view.depends_on) & set(by_name) - chosen):
            out.warn(f"view {view.name!r} reads view {other!r}, which is not among those made")
        out.add(
            f"CREATE OR REPLACE VIEW {t.qualified(target)} AS {body}", f"view {t.label(target)}"
        )
    return out.ddl()


def _transpile(
    view: ViewInfo, catalog: Catalog, t: _Target, names: Mapping[str, str], out: _Out
) -> str:
    relations = {x.name for x in catalog.tables} | {v.name for v in catalog.views}
    why = f"view {view.name!r} cannot be transpiled from {catalog.dialect} to {t.dialect}"
    text = view.definition.strip().rstrip(";").strip()
    try:
        tree = sqlglot.parse_one(text, read=catalog.dialect)
    except (SqlglotError, ValueError) as exc:
        raise DestinationError(f"{why}: {exc}") from exc
    if not isinstance(tree, exp.Query):
        raise DestinationError(f"{why}: its definition is not a query")
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    schema_id = None if t.schema is None else exp.to_identifier(t.schema, quoted=True)
    for table in list(tree.find_all(exp.Table)):
        name, db = table.name, table.text("db")
        if not name or table.args.get("catalog") is not None:
            continue
        if db == catalog.schema or (not db and name in relations and name not in ctes):
            if name not in relations:
                out.warn(f"view {view.name!r} reads {name!r}, which is not migrated")
            target = t.table_name(name, names)
            table.set("db", schema_id.copy() if schema_id is not None else None)
            table.set("this", exp.to_identifier(target, quoted=True))
            if target != name and not table.alias:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(name, quoted=True)))
        elif db:
            out.warn(f"view {view.name!r} reads {db}.{name}, outside the migrated schema: kept")
    for column in tree.find_all(exp.Column):
        if column.text("db") == catalog.schema and column.text("db"):
            column.set("db", None)
            column.set("catalog", None)
    if t.dialect == PG:
        for introducer in list(tree.find_all(exp.Introducer)):
            introducer.replace(introducer.expression)
    _retype_enums(tree, catalog, t, schema_id)
    try:
        return tree.sql(dialect=t.dialect, identify=True, unsupported_level=ErrorLevel.RAISE)
    except (SqlglotError, ValueError) as exc:
        raise DestinationError(f"{why}: {exc}") from exc


def _retype_enums(
    tree: exp.Expr, catalog: Catalog, t: _Target, schema_id: exp.Identifier | None
) -> None:
    """Casts to one of the catalog's enum types (``'happy'::mood``): to the type `before_data`
    made in the target schema on PostgreSQL; dropped on MySQL (the column is text there)."""
    enums = {
        _enum_type_name(c.enum_type)
        for x in catalog.tables
        for c in x.columns
        if c.enum_type is not None
    }
    if not enums:
        return
    for cast in list(tree.find_all(exp.Cast)):
        to = cast.to
        if not isinstance(to, exp.DataType) or to.this != _T.USERDEFINED:
            continue
        kind = to.args.get("kind")
        name = kind.expression.name if isinstance(kind, exp.Dot) else getattr(kind, "name", "")
        if name not in enums:
            continue
        if t.dialect == MY:
            cast.replace(cast.this)
            continue
        ident = exp.to_identifier(fit_name(name, t.max_bytes), quoted=True)
        typed = ident if schema_id is None else exp.Dot(this=schema_id.copy(), expression=ident)
        cast.set("to", exp.DataType(this=_T.USERDEFINED, kind=typed))
