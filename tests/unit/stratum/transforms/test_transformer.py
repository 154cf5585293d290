"""The transformer as the producer uses it: output schema, selection and renames, the identity
path, accounting, and the ConfigErrors of `build`."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stratum.connectors.base import Column, Rejected, Schema
from stratum.errors import ConfigError
from stratum.transforms import TransformedBatch, Transformer
from tests.support.options import options
from tests.unit.stratum.transforms.support import NOW, batch, build, check_accounting, schema

ORDERS = schema(
    ("id", "bigint"),
    ("customer_id", "bigint"),
    ("status", "text"),
    ("amount", "numeric(12,2)"),
    key=("id",),
)
ROWS = [
    (1, 10, "paid", Decimal("12.50")),
    (2, 11, "test", Decimal("1.00")),
    (3, 10, None, None),
]


# --- identity --------------------------------------------------------------------------------


def test_no_options_is_the_identity_and_returns_the_batch_untouched() -> None:
    transformer = build(ORDERS)
    raw = batch(ROWS, cursor=[3], nbytes=99, rejected=[Rejected(9, "bad quote", "x,'")])
    out = transformer.apply(raw)
    assert transformer.is_identity
    assert transformer.schema == ORDERS
    assert out.rows is raw.rows
    assert out.positions is raw.positions
    assert out.rejected is raw.rejected
    assert (out.filtered, out.read, out.cursor, out.nbytes) == (0, 4, [3], 99)
    check_accounting(out)


def test_rules_that_change_nothing_keep_the_identity() -> None:
    transformer = build(
        ORDERS,
        casts=[
            ("type", "uuid", "text"),  # no column of that type
            ("column", "status", "text"),  # already text
            ("type", "numeric(12, 2)", "decimal(12,2)"),  # the same type spelt differently
        ],
        columns=[
            ("id", "id"),
            ("customer_id", "customer_id"),
            ("status", "status"),
            ("amount", "amount"),
        ],
        where="true",
    )
    assert transformer.is_identity
    assert transformer.apply(batch(ROWS)).rows == ROWS


def test_identity_is_false_as_soon_as_something_applies() -> None:
    assert not build(ORDERS, where="amount > 0").is_identity
    assert not build(ORDERS, compute=[("x", "1")]).is_identity
    assert not build(ORDERS, columns=[("id", "id")]).is_identity
    assert not build(ORDERS, casts=[("column", "amount", "text")]).is_identity


# --- COLUMNS ---------------------------------------------------------------------------------


def test_columns_select_reorder_and_rename() -> None:
    transformer = build(ORDERS, columns=[("status", "order_status"), ("id", "id")])
    assert transformer.schema == Schema(
        (Column("order_status", "text"), Column("id", "bigint")), primary_key=("id",)
    )
    out = transformer.apply(batch(ROWS, first=5))
    assert out.rows == [("paid", 1), ("test", 2), (None, 3)]
    assert out.positions == [5, 6, 7]
    assert transformer.source_name("order_status") == "status"
    check_accounting(out)


def test_a_single_selected_column_is_still_a_tuple() -> None:
    out = build(ORDERS, columns=[("amount", "a")]).apply(batch(ROWS))
    assert out.rows == [(Decimal("12.50"),), (Decimal("1.00"),), (None,)]


def test_renaming_every_column_in_order_touches_no_row() -> None:
    transformer = build(
        ORDERS,
        columns=[("id", "a"), ("customer_id", "b"), ("status", "c"), ("amount", "d")],
    )
    assert not transformer.is_identity
    assert transformer.schema.names == ("a", "b", "c", "d")
    assert transformer.schema.primary_key == ("a",)
    raw = batch(ROWS)
    assert transformer.apply(raw).rows is raw.rows


def test_columns_match_names_case_insensitively_when_unambiguous() -> None:
    transformer = build(ORDERS, columns=[("STATUS", "s")])
    assert transformer.apply(batch(ROWS)).rows[0] == ("paid",)


def test_a_short_row_is_rejected_not_crashed_on() -> None:
    out = build(ORDERS, columns=[("amount", "amount"), ("id", "id")]).apply(
        batch([(1, 10, "paid", Decimal(1)), (2, 11)], first=40)
    )
    assert out.rows == [(Decimal(1), 1)]
    assert out.rejected == [Rejected(41, "row has 2 values, the source has 4 columns", (2, 11))]
    check_accounting(out)


def test_unknown_columns_name_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        build(ORDERS, columns=[("id", "id"), ("amout", "amount")])
    assert str(info.value) == (
        "COLUMNS names 'amout', which is not a column of the source (did you mean 'amount'?); "
        "the source has id, customer_id, status, amount"
    )


def test_a_column_produced_twice_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="column 'id' is produced twice"):
        build(ORDERS, columns=[("id", "id")], compute=[("id", "customer_id + 1")])


# --- KEY and CURSOR --------------------------------------------------------------------------


def test_key_and_cursor_name_output_columns() -> None:
    transformer = build(
        ORDERS,
        columns=[("id", "order_id"), ("amount", "amount")],
        compute=[("seen", "now()")],
        key=["order_id"],
        cursor="seen",
    )
    assert transformer.schema.primary_key == ("order_id",)


def test_key_not_a_column_suggests_one() -> None:
    with pytest.raises(ConfigError) as info:
        build(ORDERS, key=["idd"])
    assert str(info.value) == (
        "KEY names 'idd', which is not a column of the output (did you mean 'id'?); "
        "the output has id, customer_id, status, amount"
    )


def test_cursor_naming_a_renamed_source_column_says_so() -> None:
    with pytest.raises(ConfigError) as info:
        build(ORDERS, columns=[("id", "order_id")], cursor="id")
    assert str(info.value) == (
        "CURSOR names 'id', which COLUMNS renames to 'order_id': CURSOR names output columns"
    )


def test_source_key_is_dropped_when_not_all_of_it_is_copied() -> None:
    assert build(ORDERS, columns=[("status", "status")]).schema.primary_key == ()


# --- output schema ---------------------------------------------------------------------------


def test_schema_is_columns_then_compute_with_cast_and_inferred_types() -> None:
    transformer = build(
        ORDERS,
        columns=[("id", "id"), ("customer_id", "customer")],
        compute=[
            ("cents", "amount * 100"),
            ("ratio", "amount / customer_id"),
            ("half", "customer_id / 2"),
            ("big", "amount > 10"),
            ("label", "upper(status) || '!'"),
            ("when", "date_trunc('day', now())"),
            ("nothing", "NULL"),
            ("fixed", "cast(amount as numeric(6,1))"),
        ],
        casts=[("column", "customer_id", "integer")],
    )
    assert transformer.schema.columns == (
        Column("id", "bigint"),
        Column("customer", "integer"),
        Column("cents", "numeric"),
        Column("ratio", "numeric"),
        Column("half", "integer"),
        Column("big", "boolean"),
        Column("label", "text"),
        Column("when", "timestamptz", nullable=False),
        Column("nothing", "text"),
        Column("fixed", "numeric(6,1)"),
    )


def test_compute_nullability_follows_the_expression() -> None:
    source = Schema((Column("a", "bigint", nullable=False), Column("b", "bigint")))
    transformer = Transformer.build(
        source, options(compute=[("x", "a + 1"), ("y", "a + b"), ("z", "coalesce(b, 0)")])
    )
    assert [c.nullable for c in transformer.schema.columns] == [False, True, False, True, False]


# --- accounting ------------------------------------------------------------------------------


def test_counts_add_up_with_reader_rejects_filters_and_new_rejects() -> None:
    transformer = build(
        ORDERS,
        where="status <> 'test'",
        compute=[("per_customer", "amount / (customer_id - 10)")],
    )
    reader_reject = Rejected(2, "unterminated quote", '1,"x')
    rows = [*ROWS, (4, 12, "paid", Decimal(4))]
    out = transformer.apply(batch(rows, first=10, rejected=[reader_reject], cursor=14, nbytes=7))
    assert isinstance(out, TransformedBatch)
    assert out.rows == [(4, 12, "paid", Decimal(4), Decimal(2))]
    assert out.positions == [13]
    assert out.rejected == [
        reader_reject,
        Rejected(10, "COMPUTE per_customer: division by zero", ROWS[0]),
    ]
    assert out.filtered == 2  # status 'test', and status NULL (not TRUE)
    assert out.read == 5
    assert (out.cursor, out.nbytes) == (14, 7)
    check_accounting(out)


def test_an_empty_batch() -> None:
    out = build(ORDERS, where="amount > 1").apply(batch([]))
    assert (out.rows, out.positions, out.rejected, out.filtered, out.read) == ([], [], [], 0, 0)


def test_rows_and_positions_of_different_lengths_are_a_bug() -> None:
    raw = batch(ROWS)
    raw.positions.pop()
    with pytest.raises(ValueError, match="3 rows has 2 positions"):
        build(ORDERS, where="amount > 1").apply(raw)


def test_build_reads_the_clock_once() -> None:
    first = Transformer.build(ORDERS, options(compute=[("t", "now()")]), now=NOW)
    out = first.apply(batch(ROWS))
    assert {row[-1] for row in out.rows} == {NOW}


def test_generated_source_is_kept_for_debugging() -> None:
    transformer = build(ORDERS, where="amount > 1")
    assert "def _transform" in transformer.source_code


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("2024-01-02 03:04:05", True),
        ("2024-01-02", True),
        ("2024-01-02 03:04:05+02", False),
        ("2024-01-02 03:04:05-05:30", False),
        ("2024-01-02T03:04:05.123456+0100", False),
        ("2024-01-02 03:04:05+02   ", False),  # the offset sits behind trailing white space
        ("2024-01-02 03:04:05+02:00 \t ", False),
        ("1-05", False),  # shorter than the tail the scan looks at
        ("2024-01-02 03:04:05 \n", True),  # trailing white space without an offset
        ("20240102T030405+0200", False),
        ("2024-01-02T03-05", False),
        ("2024-01-02-05", False),  # read as 05:00 by the typed path: not a bare date
        ("0009-12-04", True),
    ],
)
def test_text_safe_finds_an_offset_at_the_end_of_any_value(value: str, safe: bool) -> None:
    transformer = build(schema(("at", "text")), casts=[("column", "at", "timestamp")])
    assert transformer.passes_text
    rows = [("2024-01-01 00:00:00",), (None,), (value,), ("2024-01-03 10:00",)]
    assert transformer.text_safe(rows) is safe


def test_bare_dates_pass_as_text() -> None:
    """A date's day looks like an offset ("1-02"): the check must not send every date typed."""
    transformer = build(schema(("on", "text")), casts=[("column", "on", "date")])
    assert transformer.text_safe([("2024-01-02",), ("1999-12-31",), (None,), ("0009-12-04",)])
    assert not transformer.text_safe([("2024-01-02",), ("2024-01-02 10:00+02",)])


def test_a_bare_json_null_sends_the_batch_the_typed_way() -> None:
    """The typed path loads a bare `null` as SQL NULL; PostgreSQL would load the JSON null."""
    transformer = build(schema(("doc", "text")), casts=[("column", "doc", "jsonb")])
    assert transformer.text_safe([('{"a": null}',), ("[null]",), (None,), ("7",)])
    assert not transformer.text_safe([('{"a": 1}',), (" null ",)])
