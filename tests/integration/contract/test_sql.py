"""The SQL helpers both destinations share (`stratum.connectors.sql`). No server needed."""

from __future__ import annotations

import pytest

from smql import Mode
from stratum.connectors.base import Checkpoint, Column, Schema
from stratum.connectors.sql import (
    check_identifier,
    checkpoint_from_row,
    checkpoint_params,
    column_type,
    create_table_sql,
    last_row_per_key,
    on_conflict_sql,
    quote,
    upsert_key,
)
from stratum.errors import ConfigError, DestinationError


@pytest.mark.parametrize("dialect", ["postgres", "duckdb"])
def test_quote_makes_any_name_an_identifier(dialect: str) -> None:
    assert quote('a";DROP TABLE x;--', dialect) == '"a"";DROP TABLE x;--"'
    assert quote("Mixed Case", dialect) == '"Mixed Case"'


@pytest.mark.parametrize(
    ("spelling", "postgres", "duckdb"),
    [
        ("text", "TEXT", "TEXT"),
        ("bigint", "BIGINT", "BIGINT"),
        ("numeric(12,2)", "DECIMAL(12, 2)", "DECIMAL(12, 2)"),
        ("numeric", "DECIMAL", "DECIMAL(38, 9)"),
        ("timestamptz", "TIMESTAMPTZ", "TIMESTAMPTZ"),
        ("double precision", "DOUBLE PRECISION", "DOUBLE"),
        ("jsonb", "JSONB", "JSON"),
        ("bytea", "BYTEA", "BLOB"),
        ("citext", "citext", "citext"),  # a user-defined type passes through
    ],
)
def test_column_types_are_translated(spelling: str, postgres: str, duckdb: str) -> None:
    assert column_type(spelling, "postgres") == postgres
    assert column_type(spelling, "duckdb") == duckdb


@pytest.mark.parametrize("spelling", ["int; DROP TABLE x", "text) ; --", "", "my type"])
def test_a_type_that_is_not_a_type_is_refused(spelling: str) -> None:
    with pytest.raises(DestinationError):
        column_type(spelling, "postgres", "c")


def test_create_table_quotes_names_and_adds_the_key() -> None:
    schema = Schema(
        (Column("id", "bigint", nullable=False), Column('n"', "text")), primary_key=("id",)
    )
    assert create_table_sql('"s"."t"', schema, "postgres") == (
        'CREATE TABLE IF NOT EXISTS "s"."t" ("id" BIGINT NOT NULL, "n""" TEXT, PRIMARY KEY ("id"))'
    )


def test_on_conflict_updates_the_other_columns() -> None:
    assert on_conflict_sql(["id", "a"], ["id"], "postgres") == (
        'ON CONFLICT ("id") DO UPDATE SET "a" = EXCLUDED."a"'
    )
    assert on_conflict_sql(["id"], ["id"], "postgres") == 'ON CONFLICT ("id") DO NOTHING'


def test_identifier_limits() -> None:
    check_identifier("é" * 31, 63, in_bytes=True)  # 62 bytes
    with pytest.raises(DestinationError, match="64 bytes"):
        check_identifier("é" * 32, 63, in_bytes=True)
    check_identifier("é" * 63, 63)
    with pytest.raises(DestinationError):
        check_identifier("", 63)
    with pytest.raises(DestinationError):
        check_identifier("nul\x00", 63)


def test_upsert_key_by_mode() -> None:
    assert upsert_key(Mode.UPSERT, ("id",)) == ("id",)
    assert upsert_key(Mode.INCREMENTAL, ("id",)) == ("id",)
    assert upsert_key(Mode.INCREMENTAL, ()) == ()
    assert upsert_key(Mode.APPEND, ("id",)) == ()
    assert upsert_key(Mode.FULL, ("id",)) == ()
    with pytest.raises(ConfigError):
        upsert_key(Mode.UPSERT, ())


def test_last_row_per_key() -> None:
    names = ("id", "v")
    rows = [(1, "a"), (2, "b"), (1, "c"), (None, "x"), (None, "y"), (3, "d")]
    assert sorted(last_row_per_key(rows, names, ("id",)), key=repr) == sorted(
        [(2, "b"), (1, "c"), (None, "x"), (None, "y"), (3, "d")], key=repr
    )
    unique = [(1, "a"), (2, "b")]
    assert last_row_per_key(unique, names, ("id",)) is unique  # the usual case: untouched
    pairs = [(1, "a"), (1, "a"), (1, "b")]
    assert last_row_per_key(pairs, names, ("id", "v")) == [(1, "a"), (1, "b")]
    unhashable = [([1], "a"), ([1], "b")]
    assert last_row_per_key(unhashable, names, ("id",)) is unhashable  # the database judges


def test_checkpoint_columns_round_trip() -> None:
    checkpoint = Checkpoint("i", "h", "p", "r", ["k", 1], 2, 3, 4, 5, 6, ("create",), True)
    params = checkpoint_params(checkpoint)
    assert checkpoint_from_row(params[:-1]) == checkpoint  # all but updated_at
