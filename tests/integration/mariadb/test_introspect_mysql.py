"""read_mysql_catalog against the real MariaDB: tables, columns, types, defaults, keys, indexes,
foreign keys, comments, views and their dependencies, hostile names, errors, connections."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from stratum.connectors.mysql import connect
from stratum.errors import ConfigError, SourceError
from stratum.schema import Catalog, ColumnInfo, ForeignKey, IndexInfo
from stratum.schema.introspect_mysql import read_mysql_catalog
from tests.support import databases as db
from tests.support.databases import DatabaseServer, ThrowawayDatabase
from tests.support.sql import my

_DDL = [
    """CREATE TABLE parent (
        a INT NOT NULL,
        b VARCHAR(20) NOT NULL,
        body TEXT,
        PRIMARY KEY (b, a),
        UNIQUE KEY uq_body (body(10)),
        FULLTEXT KEY ft_body (body)
    ) COMMENT 'the parent'""",
    """CREATE TABLE `Order` (
        `select` INT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'the id',
        flag TINYINT(1) NOT NULL DEFAULT 0,
        big BIGINT UNSIGNED,
        mood ENUM('a', 'b,c', 'it''s') DEFAULT 'b,c',
        tags SET('x', 'y y', 'z''') DEFAULT NULL,
        created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        name VARCHAR(10) DEFAULT 'abc',
        literal_null VARCHAR(10) DEFAULT 'NULL',
        note TEXT NOT NULL,
        doc JSON,
        pa INT,
        pb VARCHAR(20),
        self_id INT UNSIGNED,
        PRIMARY KEY (`select`),
        KEY idx_pair (pa, pb),
        UNIQUE KEY uq_name (name),
        KEY idx_prefix (note(5), name),
        CONSTRAINT fk_parent FOREIGN KEY (pb, pa) REFERENCES parent (b, a) ON DELETE CASCADE,
        CONSTRAINT fk_self FOREIGN KEY (self_id) REFERENCES `Order` (`select`)
            ON DELETE SET NULL ON UPDATE CASCADE
    )""",
    "CREATE TABLE no_key (x INT)",
    """CREATE VIEW order_parents AS
        SELECT o.`select`, p.body FROM `Order` o JOIN parent p ON p.a = o.pa""",
    "CREATE VIEW `Order view` AS SELECT `select` FROM order_parents",
]


@pytest.fixture(scope="module")
def other_database(mariadb_server: DatabaseServer) -> Iterator[str]:
    name = db.unique_database_name("introspect_other")
    asyncio.run(db.create_mariadb_database(name, mariadb_server))
    try:
        yield name
    finally:
        asyncio.run(db.drop_mariadb_database(name, mariadb_server))


@pytest.fixture(scope="module")
def catalog(mariadb_database: ThrowawayDatabase, other_database: str) -> Iterator[Catalog]:
    url = mariadb_database.url
    my(
        url,
        *_DDL,
        f"CREATE TABLE `{other_database}`.ext (id INT PRIMARY KEY)",
        "CREATE TABLE ext_ref (id INT PRIMARY KEY, ext_id INT, CONSTRAINT fk_ext "
        f"FOREIGN KEY (ext_id) REFERENCES `{other_database}`.ext (id))",
    )
    try:
        yield asyncio.run(read_mysql_catalog(url, None))
    finally:  # the other database cannot be dropped while referenced
        my(url, "DROP TABLE ext_ref")


def test_catalog_lists_base_tables_by_name_and_views_apart(
    catalog: Catalog, mariadb_database: ThrowawayDatabase
) -> None:
    assert catalog.dialect == "mysql"
    assert catalog.schema == mariadb_database.name
    assert [t.name for t in catalog.tables] == ["Order", "ext_ref", "no_key", "parent"]
    assert [v.name for v in catalog.views] == ["Order view", "order_parents"]


def test_columns_types_and_flags(catalog: Catalog) -> None:
    order = catalog.table("Order")
    assert [c.name for c in order.columns] == [
        "select",
        "flag",
        "big",
        "mood",
        "tags",
        "created",
        "name",
        "literal_null",
        "note",
        "doc",
        "pa",
        "pb",
        "self_id",
    ]
    assert order.column("select") == ColumnInfo(
        name="select",
        native_type="int(10) unsigned",
        type="bigint",
        nullable=False,
        default=None,
        auto_increment=True,
        comment="the id",
    )
    flag = order.column("flag")
    assert (flag.native_type, flag.type, flag.nullable) == ("tinyint(1)", "boolean", False)
    big = order.column("big")
    assert (big.native_type, big.type, big.nullable) == (
        "bigint(20) unsigned",
        "numeric(20,0)",
        True,
    )
    assert order.column("doc").type == "jsonb"  # MariaDB: longtext CHECK (json_valid(doc))
    assert order.column("doc").native_type == "longtext"
    assert order.column("created").type == "timestamptz"
    assert order.column("name").type == "varchar(10)"
    assert not any(c.auto_increment for c in order.columns if c.name != "select")


def test_enum_and_set_labels_keep_commas_quotes_and_blanks(catalog: Catalog) -> None:
    order = catalog.table("Order")
    mood = order.column("mood")
    assert mood.native_type == "enum('a','b,c','it''s')"
    assert mood.type == "text"
    assert mood.labels == ("a", "b,c", "it's")
    assert mood.enum_type is None
    tags = order.column("tags")
    assert tags.native_type == "set('x','y y','z''')"
    assert tags.type == "text[]"
    assert tags.labels == ("x", "y y", "z'")
    assert order.column("flag").labels == ()


def test_defaults_are_expressions_and_none_for_no_or_null_default(catalog: Catalog) -> None:
    order = catalog.table("Order")
    defaults = {c.name: c.default for c in order.columns}
    assert defaults["flag"] == "0"
    assert defaults["mood"] == "'b,c'"
    assert defaults["tags"] is None  # DEFAULT NULL
    assert defaults["created"] == "current_timestamp()"
    assert defaults["name"] == "'abc'"
    assert defaults["literal_null"] == "'NULL'"  # the string, not SQL NULL
    assert defaults["note"] is None  # NOT NULL without a default
    assert defaults["big"] is None  # nullable without a default
    assert defaults["select"] is None  # auto_increment


def test_comments(catalog: Catalog) -> None:
    assert catalog.table("parent").comment == "the parent"
    assert catalog.table("Order").comment is None
    assert catalog.table("Order").column("select").comment == "the id"
    assert catalog.table("Order").column("flag").comment is None


def test_primary_keys(catalog: Catalog) -> None:
    parent = catalog.table("parent")
    assert parent.primary_key == ("b", "a")  # key order, not column order
    assert parent.primary_key_name == "PRIMARY"
    assert catalog.table("Order").primary_key == ("select",)
    no_key = catalog.table("no_key")
    assert (no_key.primary_key, no_key.primary_key_name, no_key.indexes) == ((), None, ())


def test_indexes(catalog: Catalog) -> None:
    assert catalog.table("parent").indexes == (
        IndexInfo("ft_body", ("body",), unique=False, method="fulltext", prefixes=(None,)),
        IndexInfo("uq_body", ("body",), unique=True, method="btree", prefixes=(10,)),
    )
    indexes = {i.name: i for i in catalog.table("Order").indexes}
    assert "PRIMARY" not in indexes
    assert indexes["idx_pair"] == IndexInfo("idx_pair", ("pa", "pb"), False, "btree", (None, None))
    assert indexes["uq_name"] == IndexInfo("uq_name", ("name",), True, "btree", (None,))
    assert indexes["idx_prefix"] == IndexInfo(
        "idx_prefix", ("note", "name"), False, "btree", (5, None)
    )
    # InnoDB's own indexes for the foreign keys are indexes too
    assert indexes["fk_parent"].columns == ("pb", "pa")
    assert indexes["fk_self"].columns == ("self_id",)
    assert list(indexes) == sorted(indexes)


def test_foreign_keys(catalog: Catalog) -> None:
    assert catalog.table("Order").foreign_keys == (
        ForeignKey(
            name="fk_parent",
            columns=("pb", "pa"),
            ref_table="parent",
            ref_columns=("b", "a"),
            on_delete="CASCADE",
            on_update="RESTRICT",
        ),
        ForeignKey(
            name="fk_self",
            columns=("self_id",),
            ref_table="Order",
            ref_columns=("select",),
            on_delete="SET NULL",
            on_update="CASCADE",
        ),
    )
    assert catalog.table("parent").foreign_keys == ()


def test_foreign_key_to_another_database_is_skipped(catalog: Catalog) -> None:
    ext_ref = catalog.table("ext_ref")
    assert ext_ref.foreign_keys == ()
    assert [i.name for i in ext_ref.indexes] == ["fk_ext"]  # its index stays


def test_views_keep_their_definition_and_know_their_dependencies(
    catalog: Catalog, mariadb_database: ThrowawayDatabase
) -> None:
    views = {v.name: v for v in catalog.views}
    order_parents = views["order_parents"]
    assert f"`{mariadb_database.name}`.`Order`" in order_parents.definition
    assert order_parents.definition.startswith("select ")
    assert order_parents.depends_on == ("Order", "parent")
    assert views["Order view"].depends_on == ("order_parents",)


@pytest.mark.asyncio
async def test_database_argument_overrides_the_url(mariadb_database: ThrowawayDatabase) -> None:
    url = mariadb_database.server.url_for("")
    catalog = await read_mysql_catalog(url, mariadb_database.name)
    assert catalog.schema == mariadb_database.name
    assert "parent" in [t.name for t in catalog.tables]


@pytest.mark.asyncio
async def test_missing_database_is_a_source_error_naming_it(
    mariadb_database: ThrowawayDatabase,
) -> None:
    with pytest.raises(SourceError, match="no_such_db_x"):
        await read_mysql_catalog(mariadb_database.url, "no_such_db_x")
    with pytest.raises(SourceError, match="no_such_db_y"):
        await read_mysql_catalog(mariadb_database.server.url_for("no_such_db_y"), None)
    with pytest.raises(ConfigError, match="no MySQL database"):
        await read_mysql_catalog(mariadb_database.server.url_for(""), None)


@pytest.mark.asyncio
async def test_no_connection_is_left_open(mariadb_database: ThrowawayDatabase) -> None:
    async def sessions(conn_url: str) -> int:
        conn = await connect(conn_url)
        try:
            rows = await conn.fetchall(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s",
                (mariadb_database.name,),
            )
            return int(rows[0][0])
        finally:
            await conn.close()

    watcher = mariadb_database.server.url_for("")
    before = await sessions(watcher)
    await read_mysql_catalog(mariadb_database.url, None)
    with pytest.raises(SourceError):
        await read_mysql_catalog(mariadb_database.url, "no_such_db_z")
    for _ in range(100):  # the server ends a session shortly after the client has quit
        count = await sessions(watcher)
        if count <= before:
            break
        await asyncio.sleep(0.05)
    assert count == before
