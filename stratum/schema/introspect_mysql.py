"""Reading a MySQL/MariaDB database's `Catalog` from ``information_schema``.

`read_mysql_catalog(url, database)` opens one session (`stratum.connectors.mysql._connect`),
runs a handful of queries over the whole database and closes it, whatever happens. What is read:

* **tables**: every ``BASE TABLE`` of the database, and MariaDB's ``SYSTEM VERSIONED`` tables
  (base tables whose history is kept: their current rows are what a migration reads), ordered
  by name (Python's code-point order, so the same on every server); sequences and views are
  not tables. The table comment ('' is None).
* **columns**, in ordinal order: `native_type` is ``COLUMN_TYPE`` exactly as the server spells
  it ("tinyint(1)", "bigint(20) unsigned", "enum('a','b,c','it''s')"); `type` is its
  PostgreSQL mapping (`stratum.connectors.mysql.types`; a type without one raises the same
  SourceError the table source raises, naming ``table.column``). MariaDB's JSON columns
  (longtext with its own ``CHECK (json_valid(col))``) are recognised by the table source's own
  test (`MySQLTableSource._json_columns`), asked only for tables that have a longtext column.
  `auto_increment` when EXTRA says so; `comment` '' is None; `labels` are the members of an
  ENUM or SET, in definition order (quotes undoubled, commas kept).
* **defaults** as an SQL expression of MySQL's dialect. MariaDB (10.2.7 and later) already
  gives ``COLUMN_DEFAULT`` as an expression ('abc' quoted, 0, current_timestamp(), NULL);
  no default and a NULL default are both None. MySQL gives the bare value instead: there a
  DEFAULT_GENERATED expression, a CURRENT_TIMESTAMP, a number (numeric, bit and year columns)
  is kept as it is and anything else is quoted as a string literal (best effort: the tests run
  on MariaDB). ``ON UPDATE current_timestamp()`` and generated columns' expressions are not
  kept: the catalog has no field for them (a generated column reads as a plain column, its
  values are migrated as data).
* **primary key**: the ``PRIMARY`` index in ``SEQ_IN_INDEX`` order (`primary_key_name` is
  "PRIMARY").
* **indexes**: every other index, ordered by name, including those InnoDB creates for foreign
  keys: name, columns, unique, method (``INDEX_TYPE`` in lower case: btree, hash, fulltext,
  spatial) and prefixes (``SUB_PART``, None for a whole column). An index on an expression
  (MySQL 8's functional key parts) is skipped.
* **foreign keys** (``KEY_COLUMN_USAGE`` joined to ``REFERENTIAL_CONSTRAINTS``), ordered by
  name, with ``DELETE_RULE``/``UPDATE_RULE`` as they are spelled. Only references within the
  database are kept: a foreign key to a table of another database is skipped (the catalog's
  `ref_table` is a bare name in the same schema, and the other database is not migrated with
  this one, so the constraint could not be created on the target anyway).
* **views** (``information_schema.VIEWS``): `definition` is ``VIEW_DEFINITION`` as it is
  (MariaDB writes it with backticked, database-qualified names); `depends_on` is found by
  parsing it with sqlglot (mysql dialect): the tables and views of this database it names,
  sorted, itself excluded; () when sqlglot cannot parse it. Views are ordered by name.

Errors: a database that does not exist (or that the user cannot see) is a SourceError naming
it; no database at all (none given, none in the URL) is a ConfigError; driver errors are
translated as the MySQL connectors translate them (ConnectionLost, SourceError).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from stratum.connectors.mysql import types
from stratum.connectors.mysql._connect import MySQLConnection, connect, parse_url
from stratum.connectors.mysql.source import MySQLTableSource
from stratum.errors import ConfigError, SourceError
from stratum.plan.model import TableRef
from stratum.schema.catalog import Catalog, ColumnInfo, ForeignKey, IndexInfo, TableInfo, ViewInfo

__all__ = ["read_mysql_catalog"]

_DATABASE_EXISTS = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s"
_TABLES = """
SELECT TABLE_NAME, TABLE_COMMENT
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = %s AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')"""
_COLUMNS = """
SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA,
       COLUMN_COMMENT
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s
ORDER BY TABLE_NAME, ORDINAL_POSITION"""
_INDEXES = """
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %s
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"""
_FOREIGN_KEYS = """
SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA,
       k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.DELETE_RULE, r.UPDATE_RULE
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME
 AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
WHERE k.TABLE_SCHEMA = %s AND k.REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION"""
_VIEWS = """
SELECT TABLE_NAME, VIEW_DEFINITION
FROM information_schema.VIEWS
WHERE TABLE_SCHEMA = %s"""

# MySQL (not MariaDB) gives these types' defaults as bare numbers, which are expressions already
_NUMERIC = frozenset(
    {
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "integer",
        "bigint",
        "decimal",
        "numeric",
        "fixed",
        "float",
        "double",
        "real",
        "double precision",
        "bit",
        "year",
    }
)


async def read_mysql_catalog(url: str, database: str | None) -> Catalog:
    """The catalog of `database` (None: the URL's) on the MySQL/MariaDB server at `url`, read
    as the module docstring says. No connection stays open."""
    name = database or parse_url(url).database
    if not name:
        raise ConfigError(
            "no MySQL database to read: none was given and the URL names none (mysql://host/db)"
        )
    conn = await connect(url)
    try:
        with conn.translated(f"reading the catalog of MySQL database {name!r}"):
            return await _read(conn, url, name)
    finally:
        await conn.close()


async def _read(conn: MySQLConnection, url: str, database: str) -> Catalog:
    if not await conn.fetchall(_DATABASE_EXISTS, (database,)):
        raise SourceError(
            f"MySQL database {database!r} does not exist (or this user cannot see it)"
        )
    version = _text((await conn.fetchall("SELECT VERSION()"))[0][0])
    mariadb = "mariadb" in version.lower()
    tables = {_text(n): _comment(c) for n, c in await conn.fetchall(_TABLES, (database,))}
    columns: dict[str, list[tuple[Any, ...]]] = {}
    for row in await conn.fetchall(_COLUMNS, (database,)):
        columns.setdefault(_text(row[0]), []).append(row[1:])
    indexes: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for row in await conn.fetchall(_INDEXES, (database,)):
        indexes.setdefault(_text(row[0]), {}).setdefault(_text(row[1]), []).append(row[2:])
    foreign: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for row in await conn.fetchall(_FOREIGN_KEYS, (database,)):
        foreign.setdefault(_text(row[0]), {}).setdefault(_text(row[1]), []).append(row[2:])
    views = {_text(n): _text(d) for n, d in await conn.fetchall(_VIEWS, (database,))}

    # the table source's own test for MariaDB's JSON columns (see the module docstring)
    probe = MySQLTableSource(url, TableRef("", database, None))
    infos: list[TableInfo] = []
    for table in sorted(tables):
        rows = columns.get(table, [])
        json_columns: set[str] = set()
        if any(_text(r[1]).lower() == "longtext" for r in rows):
            json_columns = await probe._json_columns(conn, database, table)
        table_indexes = indexes.get(table, {})
        primary = table_indexes.pop("PRIMARY", [])
        infos.append(
            TableInfo(
                name=table,
                columns=tuple(_column(table, r, json_columns, mariadb=mariadb) for r in rows),
                primary_key=tuple(_text(r[1]) for r in primary),
                indexes=tuple(
                    index
                    for name, parts in sorted(table_indexes.items())
                    if (index := _index(name, parts)) is not None
                ),
                foreign_keys=tuple(
                    fk
                    for name, parts in sorted(foreign.get(table, {}).items())
                    if (fk := _foreign_key(name, parts, database)) is not None
                ),
                comment=tables[table],
                primary_key_name="PRIMARY" if primary else None,
            )
        )
    known = set(tables) | set(views)
    return Catalog(
        dialect="mysql",
        schema=database,
        tables=tuple(infos),
        views=tuple(
            ViewInfo(name, definition, _depends_on(definition, database, known - {name}))
            for name, definition in sorted(views.items())
        ),
    )


def _column(table: str, row: Sequence[Any], json_columns: set[str], *, mariadb: bool) -> ColumnInfo:
    name, data_type, column_type, nullable = (_text(v) for v in row[:4])
    default, extra, comment = (_text(v) if v is not None else None for v in row[4:])
    t = types.mysql_type(column_type, data_type, is_json=name in json_columns)
    extra_text = (extra or "").lower()
    return ColumnInfo(
        name=name,
        native_type=column_type,
        type=types._pg_type(t, f"{table}.{name}"),
        nullable=nullable == "YES",
        default=_default(default, t, extra_text, mariadb=mariadb),
        auto_increment="auto_increment" in extra_text,
        comment=comment or None,
        labels=types.enum_labels(column_type) if t.data_type in ("enum", "set") else (),
    )


def _default(value: str | None, t: types.MySQLType, extra: str, *, mariadb: bool) -> str | None:
    """``COLUMN_DEFAULT`` as an SQL expression; None for no default and for a NULL default."""
    if value is None:
        return None
    if mariadb:  # already an expression: 'abc', 0, current_timestamp(), NULL
        return None if value.upper() == "NULL" else value
    # MySQL: the bare value, or an expression when it is one (see the module docstring)
    if (
        "default_generated" in extra
        or value.upper().startswith("CURRENT_TIMESTAMP")
        or t.data_type in _NUMERIC
    ):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _index(name: str, parts: list[tuple[Any, ...]]) -> IndexInfo | None:
    """One index from its STATISTICS rows (NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE);
    None for an index on an expression."""
    if any(column is None for _, column, _, _ in parts):
        return None
    non_unique, _, _, index_type = parts[0]
    return IndexInfo(
        name=name,
        columns=tuple(_text(column) for _, column, _, _ in parts),
        unique=int(non_unique) == 0,
        method=_text(index_type).lower(),
        prefixes=tuple(None if sub is None else int(sub) for _, _, sub, _ in parts),
    )


def _foreign_key(name: str, parts: list[tuple[Any, ...]], database: str) -> ForeignKey | None:
    """One foreign key from its KEY_COLUMN_USAGE rows (COLUMN_NAME, REFERENCED_TABLE_SCHEMA,
    REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME, DELETE_RULE, UPDATE_RULE); None when it
    references another database."""
    _, ref_schema, ref_table, _, on_delete, on_update = parts[0]
    if _text(ref_schema) != database:
        return None
    return ForeignKey(
        name=name,
        columns=tuple(_text(p[0]) for p in parts),
        ref_table=_text(ref_table),
        ref_columns=tuple(_text(p[3]) for p in parts),
        on_delete=_text(on_delete),
        on_update=_text(on_update),
    )


def _depends_on(definition: str, database: str, known: set[str]) -> tuple[str, ...]:
    """The tables and views of `database` (among `known`) a view's definition reads."""
    try:
        tree = sqlglot.parse_one(definition, read="mysql")
    except SqlglotError:
        return ()
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    found = {
        table.name
        for table in tree.find_all(exp.Table)
        if (table.db == database or (not table.db and table.name not in ctes))
        and table.name in known
    }
    return tuple(sorted(found))


def _comment(value: Any) -> str | None:
    return (_text(value) or None) if value is not None else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
