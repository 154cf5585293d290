"""Throughput of the transform stage (not a test: run it by hand).

    .venv/bin/python tests/unit/stratum/transforms/bench_transform.py

200,000 rows in batches of 10,000, best of 3 runs, rows per second of `apply` alone.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal

from stratum.connectors.base import RawBatch, Row, Schema
from stratum.transforms import Transformer
from tests.support.options import options
from tests.unit.stratum.transforms.support import schema

ROWS = 200_000
BATCH = 10_000


def measure(title: str, source: Schema, rows: list[Row], **kwargs: object) -> None:
    transformer = Transformer.build(source, options(**kwargs))  # type: ignore[arg-type]
    batches = [
        RawBatch(rows[i : i + BATCH], list(range(i, min(i + BATCH, ROWS))))
        for i in range(0, ROWS, BATCH)
    ]
    best = float("inf")
    kept = 0
    for _ in range(3):
        start = time.perf_counter()
        kept = sum(len(transformer.apply(b).rows) for b in batches)
        best = min(best, time.perf_counter() - start)
    print(f"{title:<72} {ROWS / best:>12,.0f} rows/s  (kept {kept:,})")


def main() -> None:
    random.seed(7)
    typed = schema(
        ("id", "bigint"),
        ("amount", "numeric(12,2)"),
        ("qty", "integer"),
        ("status", "text"),
        ("note", "text"),
    )
    typed_rows: list[Row] = [
        (
            i,
            Decimal(random.randint(0, 100_000)) / 100,
            random.randint(0, 50),
            random.choice(["paid", "test", "late", None]),
            "x" * 20,
        )
        for i in range(ROWS)
    ]
    text = schema(*((c.name, "text") for c in typed.columns))
    text_rows: list[Row] = [tuple(None if v is None else str(v) for v in row) for row in typed_rows]

    measure("identity (no options)", typed, typed_rows)
    measure("COLUMNS (id, status AS s)", typed, typed_rows, columns=[("id", "id"), ("status", "s")])
    measure(
        "typed: COMPUTE qty * 2, WHERE status <> 'test'",
        typed,
        typed_rows,
        compute=[("q2", "qty * 2")],
        where="status <> 'test'",
    )
    measure(
        "typed: COMPUTE amount * 100 (numeric), WHERE qty > 10",
        typed,
        typed_rows,
        compute=[("cents", "amount * 100")],
        where="qty > 10",
    )
    measure(
        "text: COMPUTE upper(status), WHERE status <> 'test'",
        text,
        text_rows,
        compute=[("u", "upper(status)")],
        where="status <> 'test'",
    )
    measure(
        "text + CAST id bigint, qty integer: COMPUTE qty * 2, WHERE qty > 10",
        text,
        text_rows,
        casts=[("column", "id", "bigint"), ("column", "qty", "integer")],
        compute=[("q2", "qty * 2")],
        where="qty > 10",
    )
    measure(
        "text + CAST 3 columns incl. numeric(12,2): COMPUTE amount * qty, WHERE",
        text,
        text_rows,
        casts=[
            ("column", "id", "bigint"),
            ("column", "qty", "integer"),
            ("column", "amount", "numeric(12,2)"),
        ],
        compute=[("total", "amount * qty")],
        where="status <> 'test'",
    )


if __name__ == "__main__":
    main()
