"""Parsing: the syntax tree, spans, embedded SQL boundaries, and syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import smql
from smql import syntax as s


def only(source: str) -> s.Statement:
    (statement,) = smql.parse(source).statements
    return statement


def test_spans_point_at_the_source() -> None:
    source = "CONNECTION wh = 'duckdb:///x.duckdb';\nMIGRATE wh.a INTO wh.b;"
    program = smql.parse(source)
    migrate = program.statements[1]
    assert isinstance(migrate, s.MigrateTable)
    assert source[migrate.target.span.start : migrate.target.span.end] == "wh.b"
    assert (migrate.target.span.line, migrate.target.span.column) == (2, 19)


def test_keywords_are_case_insensitive_and_usable_as_names() -> None:
    st = only("migrate Table file.key INTO mode.cursor Columns (key AS mode, name) mode FULL;")
    assert isinstance(st, s.MigrateTable)
    assert st.table_keyword
    assert st.source.names == ("file", "key")
    columns = st.options[0]
    assert isinstance(columns, s.ColumnsOption)
    assert [(c.name.name, c.output.name) for c in columns.columns] == [
        ("key", "mode"),
        ("name", "name"),
    ]


def test_embedded_sql_ends_before_the_next_clause_only() -> None:
    st = only(
        "MIGRATE a.t INTO b.t WHERE key = 1 AND mode IS NULL AND name LIKE 'x;y' "
        "AND CAST(a AS int) > (SELECT max(k) FROM t WHERE z) -- trailing\n"
        "  COMPUTE c = CASE WHEN a THEN 1 ELSE 2 END, d = coalesce(a, b) KEY (id);"
    )
    assert isinstance(st, s.MigrateTable)
    where, compute, key = st.options
    assert isinstance(where, s.WhereOption)
    assert where.condition.text == (
        "key = 1 AND mode IS NULL AND name LIKE 'x;y' "
        "AND CAST(a AS int) > (SELECT max(k) FROM t WHERE z)"
    )
    assert isinstance(compute, s.ComputeOption)
    assert [c.expr.text for c in compute.columns] == [
        "CASE WHEN a THEN 1 ELSE 2 END",
        "coalesce(a, b)",
    ]
    assert isinstance(key, s.KeyOption)


def test_embedded_sql_ends_before_including_views() -> None:
    st = only(
        "MIGRATE a.t INTO b.t WHERE views > 0 AND including = 1 "
        "INCLUDING /* c */ Views ('v_%', 'w') KEY (id);"
    )
    assert isinstance(st, s.MigrateTable)
    where, views, key = st.options
    assert isinstance(where, s.WhereOption)
    assert where.condition.text == "views > 0 AND including = 1"
    assert isinstance(views, s.IncludingViewsOption)
    assert [p.value for p in views.patterns] == ["v_%", "w"]
    assert s.OPTION_KEYWORDS[type(views)] == "INCLUDING VIEWS"
    assert isinstance(key, s.KeyOption)


def test_excluding_views_is_not_a_clause() -> None:
    with pytest.raises(smql.SmqlSyntaxError):
        smql.parse("MIGRATE DATABASE a INTO b EXCLUDING VIEWS ('v_%');")


def test_comments_are_collected_outside_sql_and_kept_inside_it() -> None:
    program = smql.parse("-- head\nSTAGE a.b AS SELECT 1 -- in the query\n  FROM t; /* tail */\n")
    assert [c.text for c in program.comments] == ["-- head", "/* tail */"]
    stage = program.statements[0]
    assert isinstance(stage, s.StageQuery)
    assert stage.query.text == "SELECT 1 -- in the query\n  FROM t"


def test_strings_and_quoted_names_unescape() -> None:
    st = only("MIGRATE FILE 'it''s.csv' (NULL '') INTO \"my \"\"wh\"\"\".t;")
    assert isinstance(st, s.MigrateFile)
    assert st.path.value == "it's.csv"
    assert st.target.parts[0].name == 'my "wh"'
    assert st.target.text == '"my ""wh""".t'


def test_every_syntax_error_in_a_file_is_reported() -> None:
    with pytest.raises(smql.SmqlSyntaxError) as caught:
        smql.parse("MIGRAT a.b INTO c.d;\nSET x = 1;\nMIGRATE a.b INTO ;\n", "f.smql")
    rendered = str(caught.value)
    assert len(caught.value.diagnostics) == 2
    assert "f.smql:1:1: error: unexpected 'MIGRAT'" in rendered
    assert "(did you mean 'MIGRATE'?)" in rendered
    assert "f.smql:3:18: error: unexpected ';', expected a name" in rendered


def test_an_unterminated_string_is_named() -> None:
    with pytest.raises(smql.SmqlSyntaxError, match="unterminated string"):
        smql.parse("CONNECTION a = 'postgresql://x;\n")


def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.smql"
    path.write_bytes("-- caf\xe9\n".encode("latin-1"))
    with pytest.raises(smql.SmqlSyntaxError, match="not valid UTF-8"):
        smql.parse_file(path)


def test_a_bom_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "bom.smql"
    path.write_bytes(b"\xef\xbb\xbfCONNECTION a = 'duckdb:///a';")
    assert len(smql.parse_file(path).statements) == 1


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "source",
    [
        "DATABASE ( full full EXPECT MIGRATE TIMESTAMP DROP ( EXPECT",
        "MIGRATE a.b INTO c.d WHERE (" + " word" * 400,
        "MIGRATE a.b INTO c.d WHERE CASE" + " x" * 400,
        "STAGE a.b AS SELECT (" + " (x" * 40,
        "MIGRATE QUERY c (" + " a + b" * 300,
    ],
    ids=["hypothesis-find", "unclosed-paren", "unclosed-case", "deep-parens", "unclosed-query"],
)
def test_unclosed_groups_fail_fast_instead_of_backtracking(source: str) -> None:
    # Before the SQL terminals were possessive these took exponential time (a hang).
    with pytest.raises(smql.SmqlSyntaxError):
        smql.parse(source)


def test_an_unclosed_parenthesis_anywhere_in_sql_is_named_and_later_errors_still_found() -> None:
    source = (
        "CONNECTION w = 'duckdb:///x';\n"
        "MIGRATE w.a INTO w.b WHERE f(a) AND (b = 1 OR g(c) > 2;\n"
        "MIGRATE w.c INTO ;\n"
    )
    with pytest.raises(smql.SmqlSyntaxError) as caught:
        smql.parse(source, "p.smql")
    messages = [(d.span.line, d.span.column, d.message) for d in caught.value.diagnostics if d.span]
    assert messages[0][:2] == (2, 37)
    assert messages[0][2].startswith("'(' is never closed")
    assert messages[1][:2] == (3, 18)


def test_dataset_parses_its_spine_timestamp_and_feature_tables() -> None:
    source = (
        "dataset wh.training.churn\n"
        "  From wh.labels.churn TIMESTAMP label_time\n"
        '  features (wh.features.a, wh."features".b) NAME t AFTER (x) MODE full;'
    )
    st = only(source)
    assert isinstance(st, s.Dataset)
    assert st.target.names == ("wh", "training", "churn")
    assert st.spine.names == ("wh", "labels", "churn")
    assert st.timestamp.name == "label_time"
    assert [table.text for table in st.features] == ["wh.features.a", 'wh."features".b']
    assert [type(o) for o in st.options] == [s.NameOption, s.AfterOption, s.ModeOption]
    span = st.features_span
    assert source[span.start : span.end] == 'features (wh.features.a, wh."features".b)'
    assert (span.line, span.column) == (3, 3)
    assert (st.features[1].span.line, st.features[1].span.column) == (3, 28)
    assert s.is_item(st)


def test_dataset_and_its_words_are_still_names_elsewhere() -> None:
    st = only("MIGRATE dataset.spine INTO features.dataset COLUMNS (dataset, spine, timestamp);")
    assert isinstance(st, s.MigrateTable)
    assert st.source.names == ("dataset", "spine")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("DATASET w.t FROM w.s TIMESTAMP ts;", "unexpected ';', expected 'FEATURES'"),
        ("DATASET w.t FROM w.s TIMESTAMP ts FEATURES ();", "unexpected ')', expected a name"),
        ("DATASET w.t FROM w.s FEATURES (w.f);", "unexpected 'FEATURES', expected"),
    ],
    ids=["no-features", "empty-features", "no-timestamp"],
)
def test_a_dataset_needs_every_part(source: str, message: str) -> None:
    with pytest.raises(smql.SmqlSyntaxError) as caught:
        smql.parse(source, "d.smql")
    assert message in str(caught.value)
