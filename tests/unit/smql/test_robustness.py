"""Garbage in, diagnostics out: no input makes the language or the compiler crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import smql
from stratum.errors import PlanError
from stratum.plan import compile_plan

VALID = """\
CONNECTION legacy = 'mysql://etl:${PW}@db1:3306/shop';
CONNECTION wh = 'postgresql://etl@wh/analytics';
SET batch_size = 5000, on_error = reject;
MIGRATE DATABASE legacy INTO wh.raw EXCLUDING TABLES ('tmp_%') CAST TYPE tinyint(1) TO boolean
  ZERO DATES AS NULL INCLUDING VIEWS ('v_%');
MIGRATE legacy.orders INTO wh.raw.orders MODE incremental CURSOR updated_at KEY (id)
  COLUMNS (id, status AS s, updated_at) COMPUTE c = id * 2 WHERE id > 0 /* c */;
MIGRATE FILE 'data/c.csv' (HEADER, DELIMITER ';', NULL '') INTO wh.raw.c MODE upsert KEY (id);
MIGRATE QUERY legacy (SELECT a, b FROM t WHERE x = ';') INTO wh.q;
STAGE wh.silver.orders FROM wh.raw.orders DEDUPLICATE ON (id) ORDER BY updated_at DESC
  EXPECT s IS NOT NULL ELSE QUARANTINE;
STAGE wh.gold.g AS SELECT count(*) AS n FROM wh.silver.orders; -- gold
ENTITY customer KEY (id);
FEATURES wh.f ON customer FROM wh.silver.orders TIMESTAMP updated_at (n = count(*) OVER 7 DAYS);
DATASET wh.training.t FROM wh.labels.l TIMESTAMP at FEATURES (wh.f) MODE full;
"""

TOKENS = [
    "MIGRATE",
    "DATABASE",
    "QUERY",
    "FILE",
    "STAGE",
    "FEATURES",
    "DATASET",
    "ENTITY",
    "CONNECTION",
    "SET",
    "INTO",
    "FROM",
    "AS",
    "MODE",
    "KEY",
    "CURSOR",
    "COLUMNS",
    "COMPUTE",
    "WHERE",
    "CAST",
    "TYPE",
    "COLUMN",
    "TO",
    "BATCH",
    "SIZE",
    "PARTITIONS",
    "ON",
    "ERROR",
    "ZERO",
    "DATES",
    "NAME",
    "AFTER",
    "INCLUDING",
    "VIEWS",
    "EXPECT",
    "ELSE",
    "DEDUPLICATE",
    "ORDER",
    "BY",
    "OVER",
    "TIMESTAMP",
    "SELECT",
    "CASE",
    "END",
    "(",
    ")",
    ",",
    ";",
    ".",
    "=",
    "'x'",
    "'",
    '"',
    '"q"',
    "--c\n",
    "/*",
    "*/",
    "a",
    "b.c",
    "wh",
    "legacy",
    "1",
    "0",
    "-1",
    "${X}",
    "${",
    "\n",
    " ",
    "\t",
    "\x00",
    "é",
]


def must_not_crash(source: str) -> None:
    """Parse, check and compile; only SMQL errors and plan errors may come out, each carrying
    at least one error diagnostic."""
    reported: tuple[smql.Diagnostic, ...] | None = None
    try:
        program = smql.parse(source, "fuzz.smql")
    except smql.SmqlError as exc:
        reported = exc.diagnostics
    else:
        smql.check(program, env={})
        try:
            compile_plan(program)
        except PlanError as exc:
            reported = exc.diagnostics
    if reported is not None:
        assert reported
        assert all(d.is_error for d in reported)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_random_text(source: str) -> None:
    must_not_crash(source)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_random_smql_like_tokens(source: str) -> None:
    must_not_crash(source)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_valid_programs(data: st.DataObject) -> None:
    source = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(source)))
        width = data.draw(st.integers(0, 12))
        insert = data.draw(st.sampled_from([*TOKENS, ""]))
        source = source[:position] + insert + source[position + width :]
    must_not_crash(source)


def test_the_valid_program_is_valid() -> None:
    assert compile_plan(smql.parse(VALID)).items
