"""Properties over random batches and random predicates:

* accounting: read == len(rows) + len(rejected) + filtered, and every row read ends up in
  exactly one of kept, rejected or filtered, in source order;
* WHERE keeps exactly the rows for which the predicate is TRUE, as DuckDB evaluates the same
  predicate (transpiled from PostgreSQL by sqlglot) over the same rows.
"""

from __future__ import annotations

from typing import Any

import duckdb
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum.connectors.base import RawBatch, Rejected, Row
from tests.unit.stratum.transforms.support import build, check_accounting, schema

SOURCE = schema(("a", "integer"), ("b", "integer"), ("s", "text"), ("flag", "boolean"))

ints = st.one_of(st.none(), st.integers(-4, 4))
texts = st.one_of(st.none(), st.sampled_from(["a", "ab", "B", "", "x%", "12", "abc"]))
rows = st.lists(st.tuples(ints, ints, texts, st.one_of(st.none(), st.booleans())), max_size=30)

# Predicates that never fail on a row: DuckDB must agree with them exactly.
SAFE_ATOMS = [
    "a = 1",
    "a <> 0",
    "a < b",
    "a >= -1",
    "b <= 2",
    "a = b",
    "a = NULL",
    "a IS NULL",
    "b IS NOT NULL",
    "s IS NULL",
    "s = 'a'",
    "s <> ''",
    "s < 'b'",
    "s LIKE 'a%'",
    "s NOT LIKE '%b%'",
    "s ILIKE 'A_'",
    "a IN (1, 2)",
    "a IN (1, NULL)",
    "a NOT IN (0, 3)",
    "a NOT IN (0, NULL)",
    "b BETWEEN -1 AND 2",
    "a BETWEEN b AND 3",
    "a NOT BETWEEN 0 AND 1",
    "coalesce(a, b, 0) > 0",
    "nullif(a, 1) = 2",
    "CASE WHEN a > 0 THEN b ELSE NULL END > 1",
    "CASE a WHEN 1 THEN 'one' WHEN 2 THEN 'two' END = 'two'",
    "(a + b) * 2 > 3",
    "a - b <= 0",
    "a % 3 = 1",
    "abs(a) >= 2",
    "greatest(a, b) = 3",
    "flag",
    "NOT flag",
    "flag IS TRUE",
    "flag IS NOT FALSE",
    "a IS DISTINCT FROM b",
    "a IS NOT DISTINCT FROM 2",
    "length(s) > 1",
    "upper(s) = 'AB'",
    "s || 'z' = 'az'",
    "TRUE",
    "FALSE",
    "NULL",
]
# Predicates that fail on some rows (division by zero, a text that is not a number).
FAILING_ATOMS = ["a / b > 0", "cast(s as integer) > 5", "b % a = 0"]


def predicates(atoms: list[str]) -> st.SearchStrategy[str]:
    return st.recursive(
        st.sampled_from(atoms),
        lambda inner: st.one_of(
            st.builds(lambda x, y: f"({x} AND {y})", inner, inner),
            st.builds(lambda x, y: f"({x} OR {y})", inner, inner),
            st.builds(lambda x: f"NOT ({x})", inner),
        ),
        max_leaves=6,
    )


def raw_batch(values: list[Row], reader_rejects: int, first: int) -> RawBatch:
    positions = list(range(first, first + len(values)))
    rejected = [
        Rejected(first + len(values) + i, "unreadable", "x,y") for i in range(reader_rejects)
    ]
    return RawBatch(list(values), positions, rejected, cursor=first, nbytes=len(values))


@settings(max_examples=150, deadline=None)
@given(
    values=rows,
    reader_rejects=st.integers(0, 3),
    first=st.integers(1, 1000),
    where=predicates(SAFE_ATOMS + FAILING_ATOMS),
    compute=st.sampled_from([None, "a * 2", "10 / a", "cast(s as integer)", "upper(s)"]),
)
def test_every_row_is_kept_rejected_or_filtered(
    values: list[Row], reader_rejects: int, first: int, where: str, compute: str | None
) -> None:
    transformer = build(SOURCE, where=where, compute=[("c", compute)] if compute else [])
    raw = raw_batch(values, reader_rejects, first)
    out = transformer.apply(raw)
    check_accounting(out)
    assert out.read == len(values) + reader_rejects
    assert out.rejected[:reader_rejects] == raw.rejected
    new = [r.position for r in out.rejected[reader_rejects:]]
    assert new == sorted(new)
    assert set(out.positions).isdisjoint(new)
    assert len(set(out.positions) | set(new)) + out.filtered == len(values)
    assert out.positions == sorted(out.positions)
    by_position = dict(zip(raw.positions, values, strict=True))
    for kept, row in zip(out.positions, out.rows, strict=True):
        assert row[:4] == by_position[kept]
    for rejected in out.rejected[reader_rejects:]:
        assert rejected.row == by_position[rejected.position]
    assert (out.cursor, out.nbytes) == (raw.cursor, raw.nbytes)


def duckdb_keeps(values: list[Row], where: str) -> list[int]:
    predicate = sqlglot.transpile(where, read="postgres", write="duckdb")[0]
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE t (pos INTEGER, a INTEGER, b INTEGER, s VARCHAR, flag BOOLEAN)")
        if values:
            con.executemany(
                "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                [(i, *row) for i, row in enumerate(values)],
            )
        result: list[Any] = con.execute(
            f"SELECT pos FROM t WHERE {predicate} ORDER BY pos"
        ).fetchall()
    finally:
        con.close()
    return [pos for (pos,) in result]


@settings(max_examples=80, deadline=None)
@given(values=rows, where=predicates(SAFE_ATOMS))
def test_where_agrees_with_duckdb(values: list[Row], where: str) -> None:
    out = build(SOURCE, where=where).apply(raw_batch(values, 0, 0))
    check_accounting(out)
    assert out.rejected == []
    assert out.positions == duckdb_keeps(values, where)
