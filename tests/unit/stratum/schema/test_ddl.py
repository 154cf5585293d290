"""stratum.schema.ddl: the target's DDL from hand-built catalogs (no server)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from stratum.errors import DestinationError
from stratum.schema import ddl
from stratum.schema.catalog import Catalog, ColumnInfo, ForeignKey, IndexInfo, TableInfo, ViewInfo
from stratum.schema.ddl import Ddl, Statement
from tests.support.ddl import col


def table(name: str, *columns: ColumnInfo, **kw: object) -> TableInfo:
    return TableInfo(name, columns, **kw)  # type: ignore[arg-type]


def sqls(statements: Sequence[Statement]) -> list[str]:
    return [s.sql for s in statements]


def names_of(catalog: Catalog, dialect: str = "postgres") -> dict[str, str]:
    return ddl.target_names(catalog, ddl.MAX_NAME_BYTES[dialect])[0]


# --- names -----------------------------------------------------------------------------------


def test_short_names_are_kept() -> None:
    assert ddl.fit_name("orders", 63) == "orders"
    assert ddl.fit_name("x" * 63, 63) == "x" * 63


def test_long_names_get_a_prefix_and_a_hash_of_the_whole_name() -> None:
    name = "a" * 70
    fitted = ddl.fit_name(name, 63)
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    assert fitted == "a" * 54 + "_" + digest
    assert len(fitted.encode()) == 63
    assert ddl.fit_name(name, 63) == fitted  # deterministic
    assert ddl.fit_name("a" * 69 + "b", 63) != fitted  # the hash tells them apart


@pytest.mark.parametrize("char", ["é", "€", "𝄞", "表"])
@pytest.mark.parametrize("limit", [63, 64])
def test_multibyte_names_are_never_cut_inside_a_character(char: str, limit: int) -> None:
    for extra in range(4):
        name = "t" * extra + char * 40
        fitted = ddl.fit_name(name, limit)
        data = fitted.encode("utf-8")
        assert len(data) <= limit
        assert data.decode("utf-8") == fitted
        head, _, digest = fitted.rpartition("_")
        assert name.startswith(head)
        assert digest == hashlib.sha256(name.encode()).hexdigest()[:8]
        # the longest prefix that fits: one more character would not
        room = limit - 9
        assert len(head.encode()) <= room < len(head.encode()) + len(char.encode())


def test_target_names_warns_naming_both_names() -> None:
    long = "commandes_" + "é" * 30  # 70 bytes
    catalog = Catalog(
        "mysql",
        "shop",
        (table("orders", col("id")), table(long, col("id"))),
        views=(ViewInfo("v_" + long, "select 1"),),
    )
    names, warnings = ddl.target_names(catalog, 63)
    assert names["orders"] == "orders"
    assert len(names[long].encode()) <= 63
    assert names["v_" + long] != names[long]
    assert len(warnings) == 2
    assert long in warnings[0]
    assert names[long] in warnings[0]


def test_target_names_refuses_two_names_that_end_up_the_same() -> None:
    long = "a" * 70
    catalog = Catalog(
        "mysql", "shop", (table(long, col("id")), table(ddl.fit_name(long, 63), col("id")))
    )
    with pytest.raises(DestinationError, match="would both be named"):
        ddl.target_names(catalog, 63)


def test_target_names_refuses_a_nul() -> None:
    catalog = Catalog("mysql", "shop", (table("a\x00b", col("id")),))
    with pytest.raises(DestinationError, match="NUL"):
        ddl.target_names(catalog, 63)


# --- order -----------------------------------------------------------------------------------


def fk(name: str, ref: str, columns: tuple[str, ...] = ("ref_id",), **kw: str) -> ForeignKey:
    return ForeignKey(name, columns, ref, ("id",), **kw)


def test_table_order_puts_referenced_tables_first_ties_by_name() -> None:
    catalog = Catalog(
        "mysql",
        "shop",
        (
            table("order_lines", col("id"), foreign_keys=(fk("f1", "orders"), fk("f2", "items"))),
            table("orders", col("id"), foreign_keys=(fk("f3", "customers"),)),
            table("items", col("id")),
            table("customers", col("id"), foreign_keys=(fk("self", "customers"),)),
            table("zeta", col("id"), foreign_keys=(fk("out", "elsewhere"),)),
            table("alpha", col("id")),
        ),
    )
    assert ddl.table_order(catalog) == [
        "alpha",
        "customers",
        "items",
        "orders",
        "order_lines",
        "zeta",
    ]


def test_table_order_breaks_a_cycle_deterministically() -> None:
    tables = (
        table("b", col("id"), foreign_keys=(fk("f", "a"),)),
        table("a", col("id"), foreign_keys=(fk("f", "b"),)),
        table("c", col("id"), foreign_keys=(fk("f", "b"),)),
        table("0root", col("id"), foreign_keys=(fk("f", "c"),)),
    )
    order = ddl.table_order(Catalog("postgres", "public", tables))
    # the smallest name of the cycle (a) goes first, then what waited for it
    assert order == ["a", "b", "c", "0root"]
    assert ddl.table_order(Catalog("postgres", "public", tables[::-1])) == order


# --- after_data: PostgreSQL target, MySQL source ----------------------------------------------

CUSTOMERS = table(
    "customers",
    col("id", "bigint", False, auto_increment=True, native="bigint(20)"),
    col("email", "varchar(200)", False),
    col("bio", "text", comment="it's about"),
    col("created", "timestamp", False, default="current_timestamp()", native="datetime"),
    col("active", "boolean", False, default="1", native="tinyint(1)"),
    col("token", "varchar(36)", default="uuid()"),
    col("odd", "integer", default="(1 + 2)"),
    col("born", "date", default="'0000-00-00'"),
    col(
        "status",
        "text",
        default="'new'",
        labels=("new", "it's", "a,b", "back\\slash"),
        native="enum('new','it''s','a,b','back\\\\slash')",
    ),
    primary_key=("id",),
    primary_key_name="PRIMARY",
    indexes=(
        IndexInfo("email", ("email",), True),
        IndexInfo("idx_bio", ("bio",), False, prefixes=(10,)),
        IndexInfo("ft_bio", ("bio",), False, "fulltext"),
        IndexInfo("geo", ("bio",), False, "spatial"),
    ),
    comment="people",
)
MYSQL_SOURCE = Catalog("mysql", "shop", (CUSTOMERS,))


def test_after_data_postgres_exact_sql() -> None:
    result = ddl.after_data(
        CUSTOMERS, "raw", "postgres", names_of(MYSQL_SOURCE), catalog=MYSQL_SOURCE
    )
    assert isinstance(result, Ddl)
    assert sqls(result) == [
        'ALTER TABLE "raw"."customers" ADD CONSTRAINT "customers_pkey" PRIMARY KEY ("id")',
        'CREATE UNIQUE INDEX IF NOT EXISTS "email" ON "raw"."customers" ("email")',
        'CREATE INDEX IF NOT EXISTS "ft_bio" ON "raw"."customers" USING gin '
        "(to_tsvector('simple', \"bio\"))",
        'CREATE INDEX IF NOT EXISTS "idx_bio" ON "raw"."customers" ("bio")',
        'ALTER TABLE "raw"."customers" ADD CONSTRAINT "customers_status_check" CHECK '
        "(\"status\" IN ('new', 'it''s', 'a,b', 'back\\slash'))",
        'ALTER TABLE "raw"."customers" ALTER COLUMN "id" ADD GENERATED BY DEFAULT AS IDENTITY',
        "SELECT setval(pg_get_serial_sequence('\"raw\".\"customers\"', 'id'), "
        'CAST(greatest(coalesce(max("id"), 0), 0) + 1 AS bigint), false) FROM "raw"."customers"',
        'ALTER TABLE "raw"."customers" ALTER COLUMN "created" SET DEFAULT CURRENT_TIMESTAMP',
        'ALTER TABLE "raw"."customers" ALTER COLUMN "active" SET DEFAULT TRUE',
        'ALTER TABLE "raw"."customers" ALTER COLUMN "token" SET DEFAULT gen_random_uuid()',
        'ALTER TABLE "raw"."customers" ALTER COLUMN "status" SET DEFAULT \'new\'',
        'COMMENT ON TABLE "raw"."customers" IS \'people\'',
        'COMMENT ON COLUMN "raw"."customers"."bio" IS \'it\'\'s about\'',
    ]
    warnings = "\n".join(result.warnings)
    assert "SPATIAL" in warnings
    assert "geo" in warnings
    assert "(1 + 2)" in warnings
    assert "zero dates" in warnings
    assert len(result.warnings) == 3


def test_after_data_done_queries_postgres() -> None:
    result = ddl.after_data(
        CUSTOMERS, "raw", "postgres", names_of(MYSQL_SOURCE), catalog=MYSQL_SOURCE
    )
    by_sql = {s.sql.split(" ")[0] + s.what: s.done for s in result}
    assert by_sql["ALTERprimary key of raw.customers"] == (
        "SELECT 1 FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_class r ON r.oid = "
        "c.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace WHERE "
        "n.nspname = 'raw' AND r.relname = 'customers' AND c.contype = 'p'"
    )
    identity = next(s for s in result if "IDENTITY" in s.sql)
    assert identity.done is not None
    assert "a.attidentity <> ''" in identity.done
    assert "a.attname = 'id'" in identity.done
    check = next(s for s in result if "CHECK" in s.sql)
    assert check.done is not None
    assert "c.conname = 'customers_status_check'" in check.done
    # idempotent by themselves
    for statement in result:
        if statement.sql.startswith(("CREATE INDEX", "CREATE UNIQUE", "COMMENT", "SELECT")):
            assert statement.done is None
        if "SET DEFAULT" in statement.sql:
            assert statement.done is None


def test_after_data_mysql_exact_sql_from_a_postgres_source() -> None:
    accounts = table(
        "accounts",
        col("code", "text", False),
        col("id", "integer", False, auto_increment=True),
        col("owner", "varchar(20)"),
        col("note", "text", default="'n/a'::text"),
        col("seen", "timestamptz", default="now()"),
        col("ref", "uuid", default="gen_random_uuid()"),
        col("tags", "text[]", default="'{}'::text[]", native="text[]"),
        col("mood", "text", labels=("ok", "it's"), enum_type='"Mood"', native='"Mood"'),
        col("meta", "jsonb"),
        primary_key=("code",),
        primary_key_name="accounts_pkey",
        indexes=(
            IndexInfo("accounts_owner_key", ("owner",), True),
            IndexInfo("accounts_note_idx", ("note", "owner"), False),
            IndexInfo("accounts_id_key", ("id",), True),
            IndexInfo("accounts_meta_idx", ("meta",), False, "gin"),
        ),
        comment="acc",
    )
    catalog = Catalog("postgres", "public", (accounts,))
    result = ddl.after_data(accounts, "dst", "mysql", names_of(catalog, "mysql"), catalog=catalog)
    bin_ = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    assert sqls(result) == [
        f"ALTER TABLE `dst`.`accounts` MODIFY `code` VARCHAR(768) {bin_} NOT NULL, "
        "ADD PRIMARY KEY (`code`)",
        "ALTER TABLE `dst`.`accounts` ADD UNIQUE INDEX `accounts_id_key` (`id`)",
        "ALTER TABLE `dst`.`accounts` ADD INDEX `accounts_note_idx` (`note`(748), `owner`)",
        f"ALTER TABLE `dst`.`accounts` MODIFY `owner` VARCHAR(20) {bin_} NULL, "
        "ADD UNIQUE INDEX `accounts_owner_key` (`owner`)",
        "ALTER TABLE `dst`.`accounts` MODIFY `id` INT NOT NULL AUTO_INCREMENT",
        "ALTER TABLE `dst`.`accounts` ADD CONSTRAINT `accounts_mood_chk` "
        "CHECK (CAST(`mood` AS BINARY) IN ('ok', 'it''s'))",
        "ALTER TABLE `dst`.`accounts` ALTER COLUMN `note` SET DEFAULT ('n/a')",
        "ALTER TABLE `dst`.`accounts` ALTER COLUMN `seen` SET DEFAULT (CURRENT_TIMESTAMP(6))",
        "ALTER TABLE `dst`.`accounts` ALTER COLUMN `ref` SET DEFAULT (uuid())",
        "ALTER TABLE `dst`.`accounts` COMMENT = 'acc'",
    ]
    assert [s.done is not None for s in result] == [True] * 6 + [False] * 4
    warnings = "\n".join(result.warnings)
    assert "accounts_meta_idx" in warnings  # gin
    assert "array" in warnings  # tags default
    assert len(result.warnings) == 2


def test_mysql_done_queries() -> None:
    t = table(
        "t",
        col("id", "integer", False, auto_increment=True),
        col("e", "text", labels=("a",)),
        primary_key=("id",),
        indexes=(IndexInfo("ix", ("e",), False),),
    )
    catalog = Catalog("mysql", "db", (t,))
    done = [s.done for s in ddl.after_data(t, "db", "mysql", {"t": "t"}, catalog=catalog)]
    assert done == [
        "SELECT 1 FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = 'db' "
        "AND TABLE_NAME = 't' AND CONSTRAINT_TYPE = 'PRIMARY KEY'",
        "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'db' AND "
        "TABLE_NAME = 't' AND INDEX_NAME = 'ix'",
        "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'db' AND TABLE_NAME = "
        "'t' AND COLUMN_NAME = 'id' AND LOCATE('auto_increment', EXTRA) > 0",
        "SELECT 1 FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = 'db' "
        "AND TABLE_NAME = 't' AND CONSTRAINT_TYPE = 'CHECK' AND CONSTRAINT_NAME = 't_e_chk'",
    ]


def test_mysql_schema_none_is_the_sessions_database() -> None:
    t = table("t", col("id", "integer", False), primary_key=("id",))
    (statement,) = ddl.after_data(t, None, "mysql", {"t": "t"})
    assert statement.sql == "ALTER TABLE `t` ADD PRIMARY KEY (`id`)"
    assert statement.done is not None
    assert "CONSTRAINT_SCHEMA = DATABASE()" in statement.done


def test_postgres_schema_none_is_public() -> None:
    t = table("t", col("id", "integer", False), primary_key=("id",))
    (statement,) = ddl.after_data(t, None, "postgres", {"t": "t"})
    assert statement.sql == 'ALTER TABLE "public"."t" ADD CONSTRAINT "t_pkey" PRIMARY KEY ("id")'


def test_unknown_dialect_is_refused() -> None:
    t = table("t", col("id"))
    with pytest.raises(DestinationError, match="duckdb"):
        ddl.after_data(t, "s", "duckdb", {})


def test_mysql_bigint_unsigned_auto_increment_keeps_its_native_type() -> None:
    parent = table(
        "parent",
        col("id", "numeric(20,0)", False, auto_increment=True, native="bigint(20) unsigned"),
        primary_key=("id",),
    )
    child = table(
        "child",
        col("id", "integer", False),
        col("parent_id", "numeric(20,0)", native="bigint(20) unsigned"),
        primary_key=("id",),
        foreign_keys=(ForeignKey("fk_parent", ("parent_id",), "parent", ("id",), "CASCADE"),),
    )
    catalog = Catalog("mysql", "shop", (child, parent))
    names = names_of(catalog, "mysql")
    assert sqls(ddl.after_data(parent, "shop", "mysql", names, catalog=catalog)) == [
        "ALTER TABLE `shop`.`parent` MODIFY `id` bigint(20) unsigned NOT NULL, "
        "ADD PRIMARY KEY (`id`)",
        "ALTER TABLE `shop`.`parent` MODIFY `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT",
    ]
    assert sqls(ddl.foreign_keys(catalog, "shop", "mysql", names)) == [
        "ALTER TABLE `shop`.`child` MODIFY `parent_id` bigint(20) unsigned NULL, "
        "ADD CONSTRAINT `fk_parent` FOREIGN KEY (`parent_id`) REFERENCES `shop`.`parent` "
        "(`id`) ON DELETE CASCADE ON UPDATE NO ACTION"
    ]
    # on PostgreSQL, a numeric(20,0) counter is a sequence of its own
    pg = sqls(ddl.after_data(parent, "raw", "postgres", names_of(catalog), catalog=catalog))
    assert pg[1:] == [
        'CREATE SEQUENCE IF NOT EXISTS "raw"."parent_id_seq" AS bigint OWNED BY '
        '"raw"."parent"."id"',
        'ALTER TABLE "raw"."parent" ALTER COLUMN "id" SET DEFAULT '
        'nextval(\'"raw"."parent_id_seq"\')',
        "SELECT setval(pg_get_serial_sequence('\"raw\".\"parent\"', 'id'), "
        'CAST(greatest(coalesce(max("id"), 0), 0) + 1 AS bigint), false) FROM "raw"."parent"',
    ]


def test_auto_increment_on_a_type_without_counter_is_left_out() -> None:
    t = table("t", col("x", "double precision", False, auto_increment=True), primary_key=("x",))
    catalog = Catalog("mysql", "s", (t,))
    for dialect in ("postgres", "mysql"):
        result = ddl.after_data(t, "s", dialect, {"t": "t"}, catalog=catalog)
        assert len(result) == 1
        assert "auto-increment" in result.warnings[0]


def test_defaults_postgres_source_to_postgres() -> None:
    t = table(
        "t",
        col("a", "varchar(5)", default="'x'::character varying"),
        col("b", "date", default="('now'::text)::date"),
        col("c", "numeric", default="(-1.5)"),
        col("d", "integer", default="nextval('other_seq'::regclass)"),
        col("e", "timestamp", default="LOCALTIMESTAMP"),
        col("f", "boolean", default="false"),
        col("g", "text", default="NULL::text"),
    )
    catalog = Catalog("postgres", "public", (t,))
    result = ddl.after_data(t, "s", "postgres", {"t": "t"}, catalog=catalog)
    assert [s.sql.split(" SET DEFAULT ")[1] for s in result] == [
        "'x'",
        "CURRENT_DATE",
        "-1.5",
        "CURRENT_TIMESTAMP",
        "FALSE",
    ]
    assert len(result.warnings) == 1
    assert "nextval" in result.warnings[0]


# --- index and constraint names ----------------------------------------------------------------


def test_postgres_index_names_are_unique_per_schema() -> None:
    a = table(
        "a",
        col("id", "integer", False),
        col("x"),
        primary_key=("id",),
        primary_key_name="PRIMARY",
        indexes=(IndexInfo("idx_x", ("x",), False), IndexInfo("b", ("x",), False)),
    )
    b = table("b", col("x"), indexes=(IndexInfo("idx_x", ("x",), False),))
    c = table("c", col("x"), indexes=(IndexInfo("only_here", ("x",), False),))
    catalog = Catalog("mysql", "shop", (a, b, c))
    names = names_of(catalog)

    def index_names(t: TableInfo) -> list[str]:
        result = ddl.after_data(t, "s", "postgres", names, catalog=catalog)
        return [s.sql.split('"')[1] for s in result if "INDEX" in s.sql]

    # idx_x is on two tables, and "b" is a table's name: prefixed with the table's name
    assert index_names(a) == ["a_b", "a_idx_x"]
    assert index_names(b) == ["b_idx_x"]
    assert index_names(c) == ["only_here"]
    warnings = ddl.after_data(a, "s", "postgres", names, catalog=catalog).warnings
    assert any("'idx_x'" in w and "'a_idx_x'" in w for w in warnings)
    # MySQL's index names are per table: kept
    result = ddl.after_data(a, "s", "mysql", names, catalog=catalog)
    assert [s.sql.split("`")[5] for s in result if "INDEX" in s.sql] == ["b", "idx_x"]


def test_postgres_source_names_are_kept() -> None:
    t = table(
        "orders",
        col("id", "integer", False),
        primary_key=("id",),
        primary_key_name="orders_pk",
        indexes=(IndexInfo("idx_orders_id", ("id",), False),),
    )
    catalog = Catalog("postgres", "public", (t,))
    result = ddl.after_data(t, "public", "postgres", {"orders": "orders"}, catalog=catalog)
    assert sqls(result) == [
        'ALTER TABLE "public"."orders" ADD CONSTRAINT "orders_pk" PRIMARY KEY ("id")',
        'CREATE INDEX IF NOT EXISTS "idx_orders_id" ON "public"."orders" ("id")',
    ]
    assert result.warnings == ()


def test_long_table_names_give_generated_names_within_the_limit() -> None:
    long = "très_long_" * 8  # 88 bytes
    t = table(
        long,
        col("id", "integer", False, auto_increment=True),
        col("état_de_la_commande_" * 3, "text", labels=("a",)),
        primary_key=("id",),
        indexes=(IndexInfo("ix_" + "é" * 40, ("id",), False),),
    )
    catalog = Catalog("mysql", "s", (t,))
    for dialect in ("postgres", "mysql"):
        names = names_of(catalog, dialect)
        result = ddl.after_data(t, "s", dialect, names, catalog=catalog)
        limit = ddl.MAX_NAME_BYTES[dialect]
        quote_char = '"' if dialect == "postgres" else "`"
        for statement in result:
            for part in statement.sql.split(quote_char)[1::2]:
                assert len(part.encode()) <= limit, (part, statement.sql)
        again = ddl.after_data(t, "s", dialect, names, catalog=catalog)
        assert sqls(again) == sqls(result)


def test_mysql_foreign_key_names_are_unique_per_database() -> None:
    a = table("a", col("id", "integer", False), col("p"), primary_key=("id",))
    b = table(
        "b", col("id", "integer", False), col("a_id"), foreign_keys=(fk("fk", "a", ("a_id",)),)
    )
    c = table(
        "c", col("id", "integer", False), col("a_id"), foreign_keys=(fk("fk", "a", ("a_id",)),)
    )
    catalog = Catalog("postgres", "public", (a, b, c))
    names = names_of(catalog, "mysql")
    result = ddl.foreign_keys(catalog, "d", "mysql", names)
    assert [s.sql.split("`")[5] for s in result] == ["b_fk", "c_fk"]
    # PostgreSQL's foreign-key names are per table: kept
    result = ddl.foreign_keys(catalog, "d", "postgres", names_of(catalog))
    assert [s.sql.split('"')[5] for s in result] == ["fk", "fk"]


# --- quoting -----------------------------------------------------------------------------------

HOSTILE = "a\";DROP TABLE x;--`'\\"


def test_hostile_names_and_labels_are_quoted_postgres() -> None:
    t = table(
        HOSTILE,
        col(HOSTILE, "integer", False, auto_increment=True),
        col("e", "text", labels=(HOSTILE,), default="'x'", comment=HOSTILE),
        primary_key=(HOSTILE,),
        indexes=(IndexInfo(HOSTILE + "i", ("e",), True),),
        comment=HOSTILE,
    )
    catalog = Catalog("mysql", HOSTILE, (t,))
    result = ddl.after_data(t, HOSTILE, "postgres", {HOSTILE: HOSTILE}, catalog=catalog)
    ident = '"a"";DROP TABLE x;--`\'\\"'
    lit = "'a\";DROP TABLE x;--`''\\'"
    qt = f"{ident}.{ident}"
    assert sqls(result)[0] == (
        f'ALTER TABLE {qt} ADD CONSTRAINT "a"";DROP TABLE x;--`\'\\_pkey" PRIMARY KEY ({ident})'
    )
    assert sqls(result)[2] == (
        f'ALTER TABLE {qt} ADD CONSTRAINT "a"";DROP TABLE x;--`\'\\_e_check" CHECK ("e" IN ({lit}))'
    )
    assert f"pg_get_serial_sequence({_pg_lit(qt)}, {lit})" in sqls(result)[4]
    assert sqls(result)[-2] == f"COMMENT ON TABLE {qt} IS {lit}"
    pk_done = result[0].done
    assert pk_done is not None
    assert f"n.nspname = {lit} AND r.relname = {lit}" in pk_done


def _pg_lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def test_hostile_names_and_labels_are_quoted_mysql() -> None:
    t = table(
        HOSTILE,
        col("id", "integer", False),
        col("e", "text", labels=(HOSTILE, "a,b"), default="'x'"),
        primary_key=("id",),
        comment=HOSTILE,
    )
    catalog = Catalog("mysql", "src", (t,))
    result = ddl.after_data(t, HOSTILE, "mysql", {HOSTILE: HOSTILE}, catalog=catalog)
    ident = "`a\";DROP TABLE x;--``'\\`"
    lit = "'a\";DROP TABLE x;--`''\\\\'"
    assert sqls(result) == [
        f"ALTER TABLE {ident}.{ident} ADD PRIMARY KEY (`id`)",
        f"ALTER TABLE {ident}.{ident} ADD CONSTRAINT `a\";DROP TABLE x;--``'\\_e_chk` "
        f"CHECK (CAST(`e` AS BINARY) IN ({lit}, 'a,b'))",
        f"ALTER TABLE {ident}.{ident} ALTER COLUMN `e` SET DEFAULT ('x')",
        f"ALTER TABLE {ident}.{ident} COMMENT = {lit}",
    ]
    assert result[0].done is not None
    assert f"CONSTRAINT_SCHEMA = {lit} AND TABLE_NAME = {lit}" in result[0].done


# --- before_data -------------------------------------------------------------------------------


def test_before_data_creates_postgres_enum_types_once() -> None:
    t = table(
        "t",
        col("a", "text", labels=("x", "it's"), enum_type='other."Mood"'),
        col("b", "text", labels=("x", "it's"), enum_type='other."Mood"'),
        col("c", "text", labels=("p",), enum_type="plain"),
    )
    catalog = Catalog("postgres", "public", (t,))
    result = ddl.before_data(catalog, t, "dst", "postgres")
    assert sqls(result) == [
        "CREATE TYPE \"dst\".\"Mood\" AS ENUM ('x', 'it''s')",
        'CREATE TYPE "dst"."plain" AS ENUM (\'p\')',
    ]
    assert result[0].done == (
        "SELECT 1 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = "
        "t.typnamespace WHERE n.nspname = 'dst' AND t.typname = 'Mood'"
    )
    assert ddl.before_data(catalog, t, "dst", "mysql") == Ddl()
    after = ddl.after_data(t, "dst", "postgres", {"t": "t"}, catalog=catalog)
    assert sqls(after)[0] == (
        'ALTER TABLE "dst"."t" ALTER COLUMN "a" TYPE "dst"."Mood" USING "a"::text::"dst"."Mood"'
    )
    assert not any("CHECK" in s for s in sqls(after))
    # on MySQL the labels are a CHECK
    mysql = ddl.after_data(t, "dst", "mysql", {"t": "t"}, catalog=catalog)
    assert sum("CHECK" in s for s in sqls(mysql)) == 3


def test_a_mysql_set_is_checked_as_an_array_on_postgres_only() -> None:
    t = table("t", col("s", "text[]", labels=("a", "b"), native="set('a','b')"))
    catalog = Catalog("mysql", "src", (t,))
    assert sqls(ddl.after_data(t, "d", "postgres", {}, catalog=catalog)) == [
        'ALTER TABLE "d"."t" ADD CONSTRAINT "t_s_check" CHECK ("s" <@ ARRAY[\'a\', \'b\']::text[])'
    ]
    assert sqls(ddl.after_data(t, "d", "mysql", {}, catalog=catalog)) == []


# --- foreign keys ------------------------------------------------------------------------------


def test_foreign_keys_with_rules_in_table_order() -> None:
    customers = table("customers", col("id", "integer", False), primary_key=("id",))
    orders = table(
        "orders",
        col("id", "integer", False),
        col("customer_id"),
        col("ghost_id"),
        foreign_keys=(
            ForeignKey("fk_c", ("customer_id",), "customers", ("id",), "CASCADE", "SET NULL"),
            ForeignKey("fk_g", ("ghost_id",), "ghosts", ("id",)),
            ForeignKey("fk_d", ("customer_id",), "customers", ("id",), "set default"),
        ),
    )
    catalog = Catalog("mysql", "shop", (orders, customers))
    result = ddl.foreign_keys(catalog, "raw", "postgres", names_of(catalog))
    assert sqls(result) == [
        'ALTER TABLE "raw"."orders" ADD CONSTRAINT "fk_c" FOREIGN KEY ("customer_id") '
        'REFERENCES "raw"."customers" ("id") ON DELETE CASCADE ON UPDATE SET NULL',
        'ALTER TABLE "raw"."orders" ADD CONSTRAINT "fk_d" FOREIGN KEY ("customer_id") '
        'REFERENCES "raw"."customers" ("id") ON DELETE SET DEFAULT ON UPDATE NO ACTION',
    ]
    assert result[0].done is not None
    assert "c.conname = 'fk_c' AND c.contype = 'f'" in result[0].done
    assert len(result.warnings) == 1
    assert "ghosts" in result.warnings[0]
    mysql = ddl.foreign_keys(catalog, "raw", "mysql", names_of(catalog, "mysql"))
    assert "ON DELETE NO ACTION" in mysql[1].sql
    assert any("SET DEFAULT" in w for w in mysql.warnings)
    drops = ddl.drop_foreign_keys(catalog, "raw", "postgres", names_of(catalog))
    assert sqls(drops) == [
        'ALTER TABLE IF EXISTS "raw"."orders" DROP CONSTRAINT IF EXISTS "fk_c"',
        'ALTER TABLE IF EXISTS "raw"."orders" DROP CONSTRAINT IF EXISTS "fk_d"',
    ]
    my_drops = ddl.drop_foreign_keys(catalog, "raw", "mysql", names_of(catalog, "mysql"))
    assert my_drops[0].sql == "ALTER TABLE `raw`.`orders` DROP FOREIGN KEY `fk_c`"
    assert my_drops[0].done is not None
    assert my_drops[0].done.startswith("SELECT 1 FROM DUAL WHERE NOT EXISTS (")


def test_an_unknown_rule_is_refused() -> None:
    a = table("a", col("id"), foreign_keys=(ForeignKey("f", ("id",), "a", ("id",), "EXPLODE"),))
    with pytest.raises(DestinationError, match="EXPLODE"):
        ddl.foreign_keys(Catalog("mysql", "s", (a,)), "s", "postgres", {})


# --- views -------------------------------------------------------------------------------------


def test_views_are_transpiled_rewritten_and_ordered() -> None:
    long = "o" * 70
    catalog = Catalog(
        "mysql",
        "shop",
        (table("orders", col("id")), table(long, col("id"))),
        views=(
            ViewInfo(
                "v_top",
                "select `shop`.`v_base`.`id` AS `id` from `shop`.`v_base` limit 1",
                ("v_base",),
            ),
            ViewInfo(
                "v_base",
                "select `shop`.`orders`.`id` AS `id`,ifnull(`shop`.`orders`.`id`,0) AS `n`,"
                "_utf8mb4'x' AS `k` from `shop`.`orders` join `shop`.`" + long + "` "
                "on `shop`.`" + long + "`.`id` = `shop`.`orders`.`id`",
                ("orders", long),
            ),
            ViewInfo("v_other", "select 1 AS `x`"),
        ),
    )
    names = names_of(catalog)
    result = ddl.views(catalog, ["v_top", "v_base"], "raw", "postgres", names)
    short = names[long]
    assert sqls(result) == [
        'CREATE OR REPLACE VIEW "raw"."v_base" AS SELECT "orders"."id" AS "id", '
        'COALESCE("orders"."id", 0) AS "n", \'x\' AS "k" FROM "raw"."orders" '
        f'JOIN "raw"."{short}" AS "{long}" ON "{long}"."id" = "orders"."id"',
        'CREATE OR REPLACE VIEW "raw"."v_top" AS SELECT "v_base"."id" AS "id" '
        'FROM "raw"."v_base" LIMIT 1',
    ]
    assert all(s.done is None for s in result)
    alone = ddl.views(catalog, ["v_top"], "raw", "postgres", names)
    assert alone.warnings == ("view 'v_top' reads view 'v_base', which is not among those made",)


def test_a_view_on_another_schema_is_kept_with_a_warning() -> None:
    catalog = Catalog(
        "postgres",
        "public",
        (table("t", col("id")),),
        views=(ViewInfo("v", "SELECT t.id, o.x FROM t JOIN other.o ON o.id = t.id"),),
    )
    result = ddl.views(catalog, ["v"], "dst", "mysql", names_of(catalog, "mysql"))
    assert sqls(result) == [
        "CREATE OR REPLACE VIEW `dst`.`v` AS SELECT `t`.`id`, `o`.`x` FROM `dst`.`t` "
        "JOIN `other`.`o` ON `o`.`id` = `t`.`id`"
    ]
    assert "other.o" in result.warnings[0]


def test_a_view_sqlglot_cannot_read_names_the_view() -> None:
    catalog = Catalog("mysql", "s", (), views=(ViewInfo("broken_view", "select from where ((("),))
    with pytest.raises(DestinationError, match="broken_view"):
        ddl.views(catalog, ["broken_view"], "s", "postgres", {})
    with pytest.raises(DestinationError, match="missing"):
        ddl.views(catalog, ["missing"], "s", "postgres", {})


def test_ddl_is_a_sequence_of_statements() -> None:
    one = Statement("SELECT 1", "one", None)
    two = Statement("SELECT 2", "two", "SELECT 1")
    both = Ddl((one,), ("w",)) + Ddl((two,))
    assert list(both) == [one, two]
    assert len(both) == 2
    assert both[1] is two
    assert both.warnings == ("w",)
    assert not Ddl()


def test_mysql_counter_outside_any_index_gets_one() -> None:
    t = table(
        "tickets",
        col("ref", "uuid", False),
        col("n", "integer", False, auto_increment=True),
        col("m", "integer", False, auto_increment=True),
        primary_key=("ref",),
        indexes=(IndexInfo("n", ("m", "ref"), False),),  # begins with m; "n" is taken
    )
    catalog = Catalog("postgres", "public", (t,))
    assert sqls(ddl.after_data(t, "d", "mysql", {}, catalog=catalog))[-2:] == [
        "ALTER TABLE `d`.`tickets` MODIFY `n` INT NOT NULL AUTO_INCREMENT, "
        "ADD INDEX `tickets_n` (`n`)",
        "ALTER TABLE `d`.`tickets` MODIFY `m` INT NOT NULL AUTO_INCREMENT",
    ]


def test_views_cast_to_enum_types() -> None:
    t = table("moods", col("mood", "text", labels=("happy",), enum_type="mood"))
    catalog = Catalog(
        "postgres",
        "public",
        (t,),
        views=(ViewInfo("v", "SELECT moods.mood FROM moods WHERE moods.mood = 'happy'::mood"),),
    )
    assert sqls(ddl.views(catalog, ["v"], "dst", "postgres", {})) == [
        'CREATE OR REPLACE VIEW "dst"."v" AS SELECT "moods"."mood" FROM "dst"."moods" '
        """WHERE "moods"."mood" = CAST('happy' AS "dst"."mood")"""
    ]
    assert sqls(ddl.views(catalog, ["v"], "dst", "mysql", {})) == [
        "CREATE OR REPLACE VIEW `dst`.`v` AS SELECT `moods`.`mood` FROM `dst`.`moods` "
        "WHERE `moods`.`mood` = 'happy'"
    ]


def test_after_data_without_the_catalog() -> None:
    """Without the catalog, defaults are read in the target's dialect and only the table's own
    names and the tables of `names` are known."""
    t = table(
        "a",
        col("x", "integer", default="(7)"),
        indexes=(IndexInfo("idx", ("x",), False), IndexInfo("b", ("x",), False)),
    )
    result = ddl.after_data(t, "s", "postgres", {"a": "a", "b": "b"})
    assert sqls(result) == [
        'CREATE INDEX IF NOT EXISTS "a_b" ON "s"."a" ("x")',
        'CREATE INDEX IF NOT EXISTS "idx" ON "s"."a" ("x")',
        'ALTER TABLE "s"."a" ALTER COLUMN "x" SET DEFAULT 7',
    ]
