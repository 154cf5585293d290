"""Property: on generated valid programs, layout never reaches a hash.

Formatting, keyword case, whitespace, comments and the order of statements change neither the
plan's hash nor any item's; the formatter's output is a fixed point with the same hashes.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import smql
from smql.formatter import format_source
from stratum.plan import MigrationPlan, compile_plan

CONNECTIONS = [
    ["CONNECTION", "src", "=", "'mysql://etl:${SRC_PW}@db/shop'", ";"],
    ["CONNECTION", "wh", "=", "'postgresql://etl@wh/analytics'", ";"],
]
# token lists, so that the layout puts spaces, newlines and comments inside the SQL as well
EXPRESSIONS = [
    ["amount", ">", "0"],
    ["status", "IN", "('a', 'b')"],
    ["(a OR b)", "AND", "c"],
    ["price", "*", "2"],
    ["x", "IS", "NULL"],
]


@st.composite
def migrate(draw: st.DrawFn, table: str) -> list[str]:
    words = ["MIGRATE", f"src.{table}", "INTO", f"wh.raw.{table}"]
    mode = draw(st.sampled_from(["full", "append", "incremental", "upsert", None]))
    if mode == "incremental":
        words += ["MODE", "incremental", "CURSOR", "updated_at"]
    elif mode == "upsert":
        words += ["MODE", "upsert", "KEY", "(", "id", ")"]
    elif mode:
        words += ["MODE", mode]
    if draw(st.booleans()):
        words += ["WHERE", *draw(st.sampled_from(EXPRESSIONS))]
    if draw(st.booleans()):
        words += ["COMPUTE", "extra", "=", *draw(st.sampled_from(EXPRESSIONS))]
    if draw(st.booleans()):
        words += ["BATCH", "SIZE", str(draw(st.integers(1, 50_000)))]
    if draw(st.booleans()):
        words += ["ON", "ERROR", draw(st.sampled_from(["stop", "reject", "skip"]))]
    if draw(st.booleans()):
        words += ["PARTITIONS", str(draw(st.integers(1, 8)))]
    return [*words, ";"]


def features_and_dataset(tables: list[str], incremental: bool, named: bool) -> list[list[str]]:
    """An entity, a FEATURES item on the first table, an incremental or full stage, and a
    DATASET over the feature table with the stage as its spine."""
    first = f"wh.raw.t_{tables[0]}"
    mode = "MODE incremental CURSOR updated_at" if incremental else "MODE full"
    name = " NAME d" if named else ""
    return [
        ["ENTITY", "customer", "KEY", "(", "customer_id", ")", ";"],
        f"FEATURES wh.features.f ON customer FROM {first} TIMESTAMP ts ( "
        "n = count(*) OVER 7 DAYS , s = sum(amount) ) ;".split(),
        f"STAGE wh.silver.spine FROM {first} {mode} DEDUPLICATE ON ( id ) ;".split(),
        f"DATASET wh.training.d FROM wh.silver.spine TIMESTAMP updated_at FEATURES ( "
        f"wh.features.f ){name} ;".split(),
    ]


@st.composite
def statements(draw: st.DrawFn) -> list[list[str]]:
    tables = draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=5, unique=True))
    found = [draw(migrate(f"t_{t}")) for t in tables]
    if draw(st.booleans()):
        found.append(["SET", "on_error", "=", draw(st.sampled_from(["reject", "'skip'"])), ";"])
    if draw(st.booleans()):
        found += features_and_dataset(tables, draw(st.booleans()), draw(st.booleans()))
    if draw(st.booleans()):
        source = f"wh.raw.t_{tables[0]}"
        found.append(
            [
                "STAGE",
                "wh.silver.s",
                "FROM",
                source,
                "EXPECT",
                "amount",
                ">=",
                "0",
                "ELSE",
                "DROP",
                ";",
            ]
        )
    return found


@st.composite
def layout(draw: st.DrawFn, tokens: list[str]) -> str:
    out = []
    for token in tokens:
        word = token
        if token.isalpha() and token.isupper():
            word = draw(st.sampled_from([token, token.lower(), token.capitalize()]))
        gap = draw(st.sampled_from([" ", "  ", "\n", "\n  ", "\t", " -- note\n", " /* c */ "]))
        out.append(word + gap)
    return "".join(out)


@st.composite
def program_pair(draw: st.DrawFn) -> tuple[str, str]:
    """The same program twice: canonical order and plain spacing, then shuffled and messy."""
    body = draw(statements())
    plain = "\n".join(" ".join(s) for s in CONNECTIONS + body)
    shuffled = draw(st.permutations(CONNECTIONS + body))
    messy = "".join(draw(layout(s)) for s in shuffled)
    return plain, messy


def hashes(plan: MigrationPlan) -> tuple[str, dict[str, str]]:
    return plan.hash, {item.name: item.hash for item in plan.items}


@settings(max_examples=120, deadline=None)
@given(program_pair())
def test_layout_and_order_change_no_hash(pair: tuple[str, str]) -> None:
    plain, messy = pair
    expected = hashes(compile_plan(smql.parse(plain)))
    assert hashes(compile_plan(smql.parse(messy))) == expected


@settings(max_examples=120, deadline=None)
@given(program_pair())
def test_formatting_keeps_every_hash_and_is_a_fixed_point(pair: tuple[str, str]) -> None:
    _, messy = pair
    formatted = format_source(messy)
    assert format_source(formatted) == formatted
    assert hashes(compile_plan(smql.parse(formatted))) == hashes(compile_plan(smql.parse(messy)))
