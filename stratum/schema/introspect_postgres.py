"""Reading a PostgreSQL schema's `Catalog` from ``pg_catalog``.

`read_postgres_catalog(url, schema)` connects with asyncpg as the PostgreSQL table source does
(same options, same codecs, same error translation), reads the schema in one ``REPEATABLE READ
READ ONLY`` transaction (one snapshot for every query) and closes the connection, whatever
happens. What is read:

* **tables**: ordinary and partitioned tables (relkind r and p) of the schema, ordered by name
  (Python's code-point order); a partition is not a table of its own (its rows are read
  through its partitioned table), so it is left out. Views are below; materialized views and
  foreign tables are not read. The table comment (`obj_description`).
* **columns**, in attribute order: `native_type` is ``format_type(atttypid, atttypmod)``, the
  way psql prints it (a type outside the session's search_path is schema-qualified). `type`
  is the same, except:

  - a domain column is migrated as its base type (domains over domains are followed to the
    end; the domain's CHECK constraints are not kept): `type` is the base type's
    ``format_type``, with the domain's length or precision; an array of a domain is an array
    of the base type;
  - an enum column (also through a domain) has `type` "text", `enum_type` the enum type's name
    as ``format_type`` spells it (schema-qualified outside the search_path) and `labels` in
    ``enumsortorder`` order; an array of an enum is "text[]" (no `enum_type`: the catalog's
    `enum_type` describes a scalar column).

  `default` is ``pg_get_expr`` of the column's default; no default and a NULL default
  ("NULL::numeric") are both None. A serial column (a ``nextval(...)``
  default on a sequence the column owns) and an identity column are `auto_increment` with no
  default; a ``nextval`` on a sequence the column does not own stays a plain default. A
  generated column's expression is not a default (None): the catalog has no field for it, and
  its values are migrated as data. `comment` is ``col_description``.
* **primary key**: the columns of the ``PRIMARY KEY`` constraint in key order, and the
  constraint's name (`primary_key_name`).
* **indexes** (``pg_index``): every valid index but the primary key's, ordered by name:
  columns in key order (INCLUDE columns are not kept), unique, method (``pg_am.amname``:
  btree, hash, gin, gist...). Per-column options (DESC, NULLS FIRST, operator class,
  collation) are not kept. Skipped, and recorded nowhere: indexes on expressions, partial
  indexes (with a WHERE), the indexes of exclusion constraints and invalid indexes (a failed
  ``CREATE INDEX CONCURRENTLY``).
* **foreign keys** (``pg_constraint``, contype f), ordered by name: ``confdeltype`` and
  ``confupdtype`` as words (NO ACTION, RESTRICT, CASCADE, SET NULL, SET DEFAULT). Only
  references to a table of this catalog are kept: one to another schema (or to a partition
  directly) is skipped, as the MySQL reader skips references to another database; the
  constraints PostgreSQL derives from a foreign key to a partitioned table (one per partition,
  ``conparentid`` set) are not foreign keys of their own.
* **views** (relkind v), ordered by name: `definition` is ``pg_get_viewdef`` (what
  ``pg_views.definition`` shows) without its surrounding blanks and final semicolon;
  `depends_on` comes from ``pg_depend`` through the view's ``pg_rewrite`` rule: the tables and
  views of this catalog it reads, sorted.

Errors: a schema that does not exist (or that the user cannot see) is a SourceError naming it;
the rest as the PostgreSQL source translates them (a lost or refused connection is
ConnectionLost; bad credentials or a missing database is SourceError; a URL asyncpg cannot use
is ConfigError). The URL holds the password: it is never put in a message.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

import anyio

from stratum.connectors.postgres._connect import connect
from stratum.connectors.postgres.source import _CONNECT_TIMEOUT, _install_codecs
from stratum.connectors.sql import translated
from stratum.errors import SourceError
from stratum.schema.catalog import Catalog, ColumnInfo, ForeignKey, IndexInfo, TableInfo, ViewInfo

__all__ = ["read_postgres_catalog"]

_DEFAULT_SCHEMA = "public"
_CLOSE_TIMEOUT = 10.0

_SCHEMA = "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1"
_SCHEMAS = "SELECT nspname FROM pg_catalog.pg_namespace"

_TABLES = """
SELECT c.oid, c.relname AS name, obj_description(c.oid, 'pg_class') AS comment
FROM pg_catalog.pg_class c
WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""

# `resolved` is the column's type with domains replaced by their base types (followed to the
# end; a domain over a domain has no typmod of its own, so the innermost one's is used), for an
# array of a domain too; `enum` is the enum type a scalar column holds (through a domain), and
# `enum_array` says the column is an array of an enum.
_COLUMNS = """
WITH RECURSIVE chain (domain, base, typmod) AS (
    SELECT t.oid, t.typbasetype, t.typtypmod FROM pg_catalog.pg_type t WHERE t.typtype = 'd'
    UNION ALL
    SELECT chain.domain, t.typbasetype,
           CASE WHEN chain.typmod = -1 THEN t.typtypmod ELSE chain.typmod END
    FROM chain JOIN pg_catalog.pg_type t ON t.oid = chain.base AND t.typtype = 'd'
), domains AS (
    SELECT chain.domain, chain.base, chain.typmod
    FROM chain JOIN pg_catalog.pg_type b ON b.oid = chain.base AND b.typtype <> 'd'
)
SELECT a.attrelid AS rel,
       a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS native,
       CASE WHEN d.domain IS NOT NULL THEN format_type(d.base, d.typmod)
            WHEN ed.domain IS NOT NULL AND edb.typarray <> 0
                 THEN format_type(edb.typarray, ed.typmod)
       END AS resolved,
       CASE WHEN st.typtype = 'e' THEN st.oid END AS enum,
       CASE WHEN st.typtype = 'e' THEN format_type(st.oid, NULL) END AS enum_name,
       coalesce(edb.typtype, el.typtype) = 'e' AS enum_array,
       a.attnotnull AS notnull,
       a.attidentity <> '' AS identity,
       a.attgenerated <> '' AS generated,
       pg_get_expr(ad.adbin, ad.adrelid) AS "default",
       EXISTS (
           SELECT 1 FROM pg_catalog.pg_depend dep
           JOIN pg_catalog.pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
           WHERE dep.classid = 'pg_catalog.pg_class'::regclass
             AND dep.refclassid = 'pg_catalog.pg_class'::regclass
             AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum
             AND dep.deptype = 'a'
       ) AS owns_sequence,
       col_description(a.attrelid, a.attnum) AS comment
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN domains d ON d.domain = a.atttypid
JOIN pg_catalog.pg_type st ON st.oid = coalesce(d.base, a.atttypid)
LEFT JOIN pg_catalog.pg_type el ON el.oid = st.typelem AND st.typcategory = 'A'
LEFT JOIN domains ed ON ed.domain = el.oid
LEFT JOIN pg_catalog.pg_type edb ON edb.oid = ed.base
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_ENUM_LABELS = """
SELECT enumtypid AS enum, array_agg(enumlabel ORDER BY enumsortorder) AS labels
FROM pg_catalog.pg_enum
WHERE enumtypid = ANY($1::oid[])
GROUP BY enumtypid
"""


def _names_of(keys: str, relation: str) -> str:
    """SQL: the names of the columns numbered in the int2 array `keys` of `relation`, in order."""
    return f"""ARRAY(
        SELECT att.attname
        FROM unnest({keys}) WITH ORDINALITY AS k(num, ord)
        JOIN pg_catalog.pg_attribute att ON att.attrelid = {relation} AND att.attnum = k.num
        ORDER BY k.ord)"""


_PRIMARY_KEYS = f"""
SELECT con.conrelid AS rel,
       con.conname AS name,
       {_names_of("con.conkey", "con.conrelid")} AS columns
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
WHERE c.relnamespace = $1 AND con.contype = 'p'
"""

_INDEXES = f"""
SELECT i.indrelid AS rel,
       ic.relname AS name,
       i.indisunique AS "unique",
       am.amname AS method,
       {_names_of("(i.indkey::int2[])[0:i.indnkeyatts - 1]", "i.indrelid")} AS columns
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND NOT i.indisprimary AND i.indisvalid AND i.indexprs IS NULL AND i.indpred IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_constraint x
      WHERE x.conindid = i.indexrelid AND x.contype = 'x')
"""

_FOREIGN_KEYS = f"""
SELECT con.conrelid AS rel,
       con.conname AS name,
       {_names_of("con.conkey", "con.conrelid")} AS columns,
       r.relname AS ref_table,
       r.relnamespace = $1 AS same_schema,
       {_names_of("con.confkey", "con.confrelid")} AS ref_columns,
       con.confdeltype::text AS on_delete,
       con.confupdtype::text AS on_update
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_class r ON r.oid = con.confrelid
WHERE c.relnamespace = $1 AND con.contype = 'f' AND con.conparentid = 0
"""

_VIEWS = """
SELECT c.oid, c.relname AS name, pg_get_viewdef(c.oid) AS definition
FROM pg_catalog.pg_class c
WHERE c.relnamespace = $1 AND c.relkind = 'v'
"""

# The relations of the schema each view's rewrite rule depends on.
_VIEW_DEPENDENCIES = """
SELECT DISTINCT r.ev_class AS view, ref.relname AS name
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_rewrite'::regclass
  AND dep.objid = r.oid AND dep.refclassid = 'pg_catalog.pg_class'::regclass
JOIN pg_catalog.pg_class ref ON ref.oid = dep.refobjid
WHERE v.relnamespace = $1 AND v.relkind = 'v' AND ref.oid <> v.oid AND ref.relnamespace = $1
"""

# A NULL default as pg_get_expr spells it: NULL, or NULL cast to the column's type
# ("NULL::numeric", "NULL::character varying(10)", "NULL::integer[]"); an expression that
# merely starts with a NULL is parenthesised ("(NULL::integer + 1)").
_NULL_DEFAULT = re.compile(r'NULL(?:::[\w\s."]+(?:\(\d+(?:,\d+)?\))?(?:\[\])*)?')

_ACTIONS = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}


async def read_postgres_catalog(url: str, schema: str | None) -> Catalog:
    """The catalog of `schema` (None: "public") of the PostgreSQL database at `url`, read as
    the module docstring says. No connection stays open."""
    name = schema or _DEFAULT_SCHEMA
    conn = await _connect(url)
    try:
        with _translated(f"reading the catalog of PostgreSQL schema {name!r}"):
            await _install_codecs(conn)
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await _read(conn, name)
    finally:
        await _close(conn)


async def _connect(url: str) -> Any:
    """A connection made as `PostgresTableSource.open` makes it: password files, TLS, and the
    password kept out of asyncpg's messages (`stratum.connectors.postgres._connect`)."""
    return await connect(
        url,
        translate=_translated,
        timeout=_CONNECT_TIMEOUT,
        statement_cache_size=0,
        server_settings={"application_name": "stratum"},
    )


async def _close(conn: Any) -> None:
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(_CLOSE_TIMEOUT) as scope, contextlib.suppress(Exception):
            await conn.close(timeout=_CLOSE_TIMEOUT)
        if scope.cancelled_caught or not conn.is_closed():
            conn.terminate()


def _translated(what: str) -> AbstractContextManager[None]:
    """asyncpg's exceptions as the PostgreSQL source translates them."""
    from stratum.connectors.postgres import _errors  # noqa: PLC0415 (imports asyncpg)

    return translated(what, _errors.ERRORS, fallback=_errors.ROOTS, terminal=SourceError)


async def _read(conn: Any, schema: str) -> Catalog:
    namespace = await conn.fetchval(_SCHEMA, schema)
    if namespace is None:
        raise SourceError(await _missing_schema(conn, schema))
    tables = {r["oid"]: r for r in await conn.fetch(_TABLES, namespace)}
    columns: dict[int, list[Any]] = {}
    for row in await conn.fetch(_COLUMNS, namespace):
        columns.setdefault(row["rel"], []).append(row)
    enums = {row["enum"] for rows in columns.values() for row in rows if row["enum"] is not None}
    labels: dict[int, tuple[str, ...]] = {
        r["enum"]: tuple(r["labels"]) for r in await conn.fetch(_ENUM_LABELS, list(enums))
    }
    primary = {r["rel"]: r for r in await conn.fetch(_PRIMARY_KEYS, namespace)}
    indexes: dict[int, list[IndexInfo]] = {}
    for r in await conn.fetch(_INDEXES, namespace):
        indexes.setdefault(r["rel"], []).append(
            IndexInfo(r["name"], tuple(r["columns"]), r["unique"], r["method"])
        )
    table_names = {r["name"] for r in tables.values()}
    foreign: dict[int, list[ForeignKey]] = {}
    for r in await conn.fetch(_FOREIGN_KEYS, namespace):
        if not r["same_schema"] or r["ref_table"] not in table_names:
            continue
        foreign.setdefault(r["rel"], []).append(
            ForeignKey(
                name=r["name"],
                columns=tuple(r["columns"]),
                ref_table=r["ref_table"],
                ref_columns=tuple(r["ref_columns"]),
                on_delete=_ACTIONS[r["on_delete"]],
                on_update=_ACTIONS[r["on_update"]],
            )
        )
    views = await conn.fetch(_VIEWS, namespace)
    known = table_names | {r["name"] for r in views}
    depends: dict[int, set[str]] = {}
    for r in await conn.fetch(_VIEW_DEPENDENCIES, namespace):
        if r["name"] in known:
            depends.setdefault(r["view"], set()).add(r["name"])

    infos = []
    for oid, table in tables.items():
        key = primary.get(oid)
        infos.append(
            TableInfo(
                name=table["name"],
                columns=tuple(_column(r, labels) for r in columns.get(oid, [])),
                primary_key=tuple(key["columns"]) if key is not None else (),
                indexes=tuple(sorted(indexes.get(oid, []), key=lambda i: i.name)),
                foreign_keys=tuple(sorted(foreign.get(oid, []), key=lambda f: f.name)),
                comment=table["comment"] or None,
                primary_key_name=key["name"] if key is not None else None,
            )
        )
    return Catalog(
        dialect="postgres",
        schema=schema,
        tables=tuple(sorted(infos, key=lambda t: t.name)),
        views=tuple(
            sorted(
                (
                    ViewInfo(
                        r["name"],
                        _definition(r["definition"] or ""),
                        tuple(sorted(depends.get(r["oid"], ()))),
                    )
                    for r in views
                ),
                key=lambda v: v.name,
            )
        ),
    )


def _column(row: Mapping[str, Any], labels: Mapping[int, tuple[str, ...]]) -> ColumnInfo:
    default: str | None = row["default"]
    serial = row["owns_sequence"] and (default or "").startswith("nextval(")
    auto_increment = bool(row["identity"] or serial)
    if auto_increment or row["generated"] or _NULL_DEFAULT.fullmatch(default or ""):
        default = None
    native: str = row["native"]
    enum = row["enum"]
    if enum is not None:
        type_ = "text"
    elif row["enum_array"]:
        type_ = "text[]"
    else:
        type_ = row["resolved"] or native
    return ColumnInfo(
        name=row["name"],
        native_type=native,
        type=type_,
        nullable=not row["notnull"],
        default=default,
        auto_increment=auto_increment,
        comment=row["comment"] or None,
        labels=labels.get(enum, ()) if enum is not None else (),
        enum_type=row["enum_name"] if enum is not None else None,
    )


def _definition(text: str) -> str:
    """pg_get_viewdef's text without its surrounding blanks and final semicolon."""
    text = text.strip()
    return text[:-1].rstrip() if text.endswith(";") else text


async def _missing_schema(conn: Any, schema: str) -> str:
    message = f"PostgreSQL schema {schema!r} does not exist (or this user cannot see it)"
    close = difflib.get_close_matches(schema, [r[0] for r in await conn.fetch(_SCHEMAS)], n=3)
    if close:
        message += f" (did you mean {', '.join(repr(s) for s in close)}?)"
    return message
