"""The SMQL formatter on hand-written examples: every construct, comments, blank lines, long
lists, multi-line SQL, and a realistic file. Each expected text is also checked to be a fixed
point (formatting it again changes nothing)."""

from __future__ import annotations

import textwrap

import pytest

from smql import checks
from smql.diagnostics import SmqlSyntaxError
from smql.formatter import format_program, format_source
from smql.parser import parse


def fmt(source: str) -> str:
    return format_source(textwrap.dedent(source))


def check(source: str, expected: str) -> None:
    """`source` formats to `expected`, and `expected` is already canonical."""
    expected = textwrap.dedent(expected).lstrip("\n")
    assert fmt(source) == expected
    assert format_source(expected) == expected


# ---------------------------------------------------------------------------------------------
# Declarations


def test_connection() -> None:
    check(
        "connection   legacy =\n 'mysql://etl@db1/shop'  ;",
        "CONNECTION legacy = 'mysql://etl@db1/shop';\n",
    )


def test_connection_string_quotes_are_doubled() -> None:
    check("CONNECTION c = 'it''s';", "CONNECTION c = 'it''s';\n")


def test_set_keeps_values_as_written_and_lowercases_setting_names() -> None:
    check(
        "set Batch_Size = 05000 , PARALLEL=4, on_error = 'reject', mode = FULL, \"Odd\" = x;",
        "SET batch_size = 5000, parallel = 4, on_error = 'reject', mode = FULL, \"Odd\" = x;\n",
    )


def test_entity() -> None:
    check(
        "entity customer key( customer_id ,region );",
        "ENTITY customer KEY (customer_id, region);\n",
    )


# ---------------------------------------------------------------------------------------------
# Item headers


def test_migrate_table_header() -> None:
    check(
        "migrate legacy.orders into warehouse.raw.orders;",
        "MIGRATE legacy.orders INTO warehouse.raw.orders;\n",
    )


def test_migrate_table_keeps_the_table_keyword() -> None:
    check(
        "Migrate Table legacy.orders Into wh.orders;",
        "MIGRATE TABLE legacy.orders INTO wh.orders;\n",
    )


def test_migrate_database_header() -> None:
    check(
        "MIGRATE database legacy INTO warehouse.raw;",
        "MIGRATE DATABASE legacy INTO warehouse.raw;\n",
    )


def test_migrate_query_inline() -> None:
    check(
        "migrate query legacy (  select id from t  ) into wh.t mode full;",
        """
        MIGRATE QUERY legacy (select id from t) INTO wh.t
          MODE full;
        """,
    )


def test_migrate_query_multi_line_is_a_block() -> None:
    check(
        """
        MIGRATE QUERY legacy (SELECT id,
                                     name
                              FROM customers) INTO wh.customers;
        """,
        """
        MIGRATE QUERY legacy (
          SELECT id,
                 name
          FROM customers
        ) INTO wh.customers;
        """,
    )


def test_migrate_query_ending_in_a_line_comment_closes_on_the_next_line() -> None:
    check(
        "MIGRATE QUERY legacy (SELECT 1 -- one\n) INTO wh.t;",
        """
        MIGRATE QUERY legacy (
          SELECT 1 -- one
        ) INTO wh.t;
        """,
    )


def test_migrate_file_header() -> None:
    check(
        "migrate file 'data/c.csv' (header, delimiter ';', null '', format CSV) into wh.c;",
        "MIGRATE FILE 'data/c.csv' (HEADER, DELIMITER ';', NULL '', FORMAT csv) INTO wh.c;\n",
    )


def test_migrate_file_header_values() -> None:
    check(
        "MIGRATE FILE 'x' (HEADER FALSE, QUOTE '\"', ESCAPE 5, \"weird\" Word) INTO t;",
        "MIGRATE FILE 'x' (HEADER false, QUOTE '\"', ESCAPE 5, \"weird\" Word) INTO t;\n",
    )


def test_migrate_file_without_options() -> None:
    check("MIGRATE FILE 'x.parquet' INTO t;", "MIGRATE FILE 'x.parquet' INTO t;\n")


def test_stage_from_header() -> None:
    check("stage silver.orders from raw.orders;", "STAGE silver.orders FROM raw.orders;\n")


# ---------------------------------------------------------------------------------------------
# STAGE ... AS


def test_stage_query_on_one_line() -> None:
    check("stage gold.x as\n   select 1 ;", "STAGE gold.x AS select 1;\n")


def test_stage_query_on_its_own_lines() -> None:
    check(
        """
        STAGE gold.daily_revenue AS SELECT day, sum(amount) AS revenue
                                      FROM silver.orders
                                     GROUP BY 1;
        """,
        """
        STAGE gold.daily_revenue AS
          SELECT day, sum(amount) AS revenue
           FROM silver.orders
          GROUP BY 1;
        """,
    )


def test_stage_query_starting_its_own_line_keeps_its_shape() -> None:
    check(
        """
        STAGE gold.daily_revenue AS
              SELECT day, sum(amount) AS revenue
                FROM silver.orders
               GROUP BY 1;
        """,
        """
        STAGE gold.daily_revenue AS
          SELECT day, sum(amount) AS revenue
            FROM silver.orders
           GROUP BY 1;
        """,
    )


def test_stage_query_too_long_for_one_line() -> None:
    query = "SELECT " + ", ".join(f"column_{k}" for k in range(12)) + " FROM t"
    check(f"STAGE gold.wide AS {query};", f"STAGE gold.wide AS\n  {query};\n")


def test_stage_query_with_clauses() -> None:
    check(
        "STAGE gold.x mode full name gold_x AS SELECT 1;",
        """
        STAGE gold.x
          MODE full
          NAME gold_x
        AS SELECT 1;
        """,
    )


def test_stage_query_with_clauses_and_a_multi_line_query() -> None:
    check(
        """
        STAGE gold.x DIALECT MySQL AS
            SELECT a,
                   b
            FROM t;
        """,
        """
        STAGE gold.x
          DIALECT mysql
        AS
          SELECT a,
                 b
          FROM t;
        """,
    )


# ---------------------------------------------------------------------------------------------
# FEATURES


def test_features() -> None:
    check(
        """
        features wh.features.customer_stats on customer from wh.silver.orders timestamp created_at
        (order_count_30d = count(*) over 30 days, spend_90d = sum(amount) OVER 90 hours,
        last_amount = last(amount)) batch size 500;
        """,
        """
        FEATURES wh.features.customer_stats ON customer
          FROM wh.silver.orders TIMESTAMP created_at (
            order_count_30d = count(*) OVER 30 DAYS,
            spend_90d = sum(amount) OVER 90 HOURS,
            last_amount = last(amount)
          )
          BATCH SIZE 500;
        """,
    )


def test_features_unknown_window_unit_is_kept() -> None:
    check(
        "FEATURES f ON e FROM t TIMESTAMP ts (n = count(*) OVER 2 fortnights);",
        """
        FEATURES f ON e
          FROM t TIMESTAMP ts (
            n = count(*) OVER 2 fortnights
          );
        """,
    )


# ---------------------------------------------------------------------------------------------
# DATASET


def test_dataset() -> None:
    check(
        """
        dataset wh.training.churn from wh.labels.churn timestamp label_time
        features(wh.features.customer_stats ,wh.features."Region Stats") name churn
        after(x) mode FULL;
        """,
        """
        DATASET wh.training.churn
          FROM wh.labels.churn TIMESTAMP label_time
          FEATURES (wh.features.customer_stats, wh.features."Region Stats")
          NAME churn
          AFTER (x)
          MODE full;
        """,
    )


def test_dataset_without_clauses_ends_its_features_list() -> None:
    check(
        'DATASET d FROM s TIMESTAMP "at" FEATURES (f);',
        """
        DATASET d
          FROM s TIMESTAMP "at"
          FEATURES (f);
        """,
    )


def test_a_long_dataset_features_list_breaks_one_per_line() -> None:
    tables = [f"warehouse.features.customer_feature_table_{n}" for n in range(3)]
    check(
        f"DATASET d FROM s TIMESTAMP t FEATURES ({', '.join(tables)}) MODE full;",
        f"""
        DATASET d
          FROM s TIMESTAMP t
          FEATURES (
            {tables[0]},
            {tables[1]},
            {tables[2]}
          )
          MODE full;
        """,
    )


def test_a_dataset_features_list_that_just_fits_stays_on_one_line() -> None:
    table = "f" * (100 - len("  FEATURES ();"))
    check(
        f"DATASET d FROM s TIMESTAMP t FEATURES ({table});",
        f"""
        DATASET d
          FROM s TIMESTAMP t
          FEATURES ({table});
        """,
    )
    check(
        f"DATASET d FROM s TIMESTAMP t FEATURES ({table}x);",
        f"""
        DATASET d
          FROM s TIMESTAMP t
          FEATURES (
            {table}x
          );
        """,
    )


def test_comments_in_a_dataset() -> None:
    check(
        """
        -- the training set
        DATASET d -- the target
          /* the spine */ FROM s TIMESTAMP t
          FEATURES ( -- joined as of t
            a, -- first
            -- then
            b
          ) -- done
          MODE full; -- at last
        """,
        """
        -- the training set
        DATASET d  -- the target
          /* the spine */
          FROM s TIMESTAMP t
          FEATURES (  -- joined as of t
            a,  -- first
            -- then
            b
          )  -- done
          MODE full;  -- at last
        """,
    )


# ---------------------------------------------------------------------------------------------
# Clauses


def test_every_clause_in_the_order_written() -> None:
    check(
        """
        migrate legacy.orders into wh.raw.orders
          where status <> 'x' mode INCREMENTAL cursor updated_at key(id, region)
          columns(id, status as order_status) compute cents = amount * 100, flag = 1
          cast type TINYINT(1) to Boolean, column orders.note to TEXT, type numeric(20, 0) to text[]
          batch size 1000 partitions 8 on error Reject zero dates as null name orders
          after (wh.a, b) dialect POSTGRES deduplicate on (id) order by updated_at desc, id
          expect amount >= 0 else drop;
        """,
        """
        MIGRATE legacy.orders INTO wh.raw.orders
          WHERE status <> 'x'
          MODE incremental
          CURSOR updated_at
          KEY (id, region)
          COLUMNS (id, status AS order_status)
          COMPUTE cents = amount * 100, flag = 1
          CAST TYPE tinyint(1) TO boolean, COLUMN orders.note TO text, TYPE numeric(20,0) TO text[]
          BATCH SIZE 1000
          PARTITIONS 8
          ON ERROR reject
          ZERO DATES AS NULL
          NAME orders
          AFTER (wh.a, b)
          DIALECT postgres
          DEDUPLICATE ON (id) ORDER BY updated_at desc, id
          EXPECT amount >= 0 ELSE DROP;
        """,
    )


def test_database_clauses() -> None:
    check(
        "MIGRATE DATABASE l INTO w including tables ('a', 'b%') excluding tables ('tmp_%') "
        "including views ('v_%', 'it''s');",
        """
        MIGRATE DATABASE l INTO w
          INCLUDING TABLES ('a', 'b%')
          EXCLUDING TABLES ('tmp_%')
          INCLUDING VIEWS ('v_%', 'it''s');
        """,
    )


def test_including_views_keeps_its_place_and_its_comments() -> None:
    check(
        """
        MIGRATE DATABASE l INTO w INCLUDING -- which views
          VIEWS ('v_%', /* daily */ 'report_daily') ZERO DATES AS NULL
          EXCLUDING TABLES ('tmp_%');
        """,
        """
        MIGRATE DATABASE l INTO w
          INCLUDING VIEWS (  -- which views
            'v_%',  /* daily */
            'report_daily'
          )
          ZERO DATES AS NULL
          EXCLUDING TABLES ('tmp_%');
        """,
    )


def test_zero_dates_values() -> None:
    check(
        "MIGRATE a INTO b ZERO DATES AS error ZERO DATES AS '1970-01-01' ZERO DATES AS 0;",
        """
        MIGRATE a INTO b
          ZERO DATES AS ERROR
          ZERO DATES AS '1970-01-01'
          ZERO DATES AS 0;
        """,
    )


def test_expect_actions() -> None:
    check(
        "STAGE s FROM t EXPECT a ELSE fail EXPECT b ELSE Flag EXPECT c ELSE quarantine;",
        """
        STAGE s FROM t
          EXPECT a ELSE FAIL
          EXPECT b ELSE FLAG
          EXPECT c ELSE QUARANTINE;
        """,
    )


def test_deduplicate_without_order_by() -> None:
    check(
        "STAGE s FROM t DEDUPLICATE ON (id, day);", "STAGE s FROM t\n  DEDUPLICATE ON (id, day);\n"
    )


# ---------------------------------------------------------------------------------------------
# Keyword case, names and unknown words


def test_keywords_are_uppercased_from_any_case() -> None:
    check(
        "mIgRaTe a InTo b MoDe FuLl On ErRoR sKiP bAtCh SiZe 10 ExPeCt x ElSe DrOp;",
        """
        MIGRATE a INTO b
          MODE full
          ON ERROR skip
          BATCH SIZE 10
          EXPECT x ELSE DROP;
        """,
    )


def test_quoted_identifiers_keep_their_quotes() -> None:
    check(
        'MIGRATE "Legacy"."Order Items" INTO wh."database" KEY ("Id", "a""b") '
        'COLUMNS ("select" AS "Key");',
        """
        MIGRATE "Legacy"."Order Items" INTO wh."database"
          KEY ("Id", "a""b")
          COLUMNS ("select" AS "Key");
        """,
    )


def test_identifier_case_is_kept() -> None:
    check("MIGRATE Legacy.Orders INTO WH.Orders;", "MIGRATE Legacy.Orders INTO WH.Orders;\n")


def test_unknown_words_are_printed_as_written() -> None:
    check(
        'MIGRATE a INTO b MODE Sideways ON ERROR Shrug DIALECT NoSuchSQL MODE "full" '
        "EXPECT x ELSE Explode;",
        """
        MIGRATE a INTO b
          MODE Sideways
          ON ERROR Shrug
          DIALECT NoSuchSQL
          MODE "full"
          EXPECT x ELSE Explode;
        """,
    )


def test_embedded_sql_is_never_rewritten() -> None:
    check(
        "MIGRATE a INTO b WHERE  x>=1   and  Y = 'Two  Spaces'  COMPUTE c=f( a,b );",
        """
        MIGRATE a INTO b
          WHERE x>=1   and  Y = 'Two  Spaces'
          COMPUTE c = f( a,b );
        """,
    )


def test_program_with_semantic_errors_still_formats() -> None:
    source = """
        CONNECTION wh = 'duckdb:///wh.duckdb';
        MIGRATE nowhere.t INTO wh.t MODE banana PARTITIONS 0 WHERE x = = 1;
        STAGE wh.s FROM wh.s CURSOR c INCLUDING TABLES ('x');
    """
    errors = [d for d in checks.check(parse(textwrap.dedent(source))) if d.is_error]
    assert len(errors) == 7  # unknown connection and mode, PARTITIONS 0, bad SQL, self-read, ...
    check(
        source,
        """
        CONNECTION wh = 'duckdb:///wh.duckdb';
        MIGRATE nowhere.t INTO wh.t
          MODE banana
          PARTITIONS 0
          WHERE x = = 1;
        STAGE wh.s FROM wh.s
          CURSOR c
          INCLUDING TABLES ('x');
        """,
    )


def test_syntax_error_propagates() -> None:
    with pytest.raises(SmqlSyntaxError, match="unexpected"):
        format_source("MIGRATE a INTO;", "bad.smql")


def test_syntax_error_names_the_path() -> None:
    with pytest.raises(SmqlSyntaxError, match=r"bad\.smql:1:"):
        format_source("MIGRATE a INTO;", "bad.smql")


def test_empty_program() -> None:
    assert format_source("") == ""
    assert format_source("  \n\n\t\n") == ""


def test_format_program_takes_a_parsed_program() -> None:
    program = parse("set a=1;", "x.smql")
    assert format_program(program) == "SET a = 1;\n"


# ---------------------------------------------------------------------------------------------
# Long lists


def test_long_columns_list_breaks_one_per_line() -> None:
    columns = ", ".join(f"column_number_{k}" for k in range(8))
    check(
        f"MIGRATE a INTO b COLUMNS ({columns}, last AS renamed);",
        """
        MIGRATE a INTO b
          COLUMNS (
            column_number_0,
            column_number_1,
            column_number_2,
            column_number_3,
            column_number_4,
            column_number_5,
            column_number_6,
            column_number_7,
            last AS renamed
          );
        """,
    )


def test_long_compute_breaks_one_per_line() -> None:
    check(
        "MIGRATE a INTO b COMPUTE total_amount_in_cents = amount * 100, "
        "customer_full_name = first_name || ' ' || last_name, flag = 1 MODE full;",
        """
        MIGRATE a INTO b
          COMPUTE total_amount_in_cents = amount * 100,
            customer_full_name = first_name || ' ' || last_name,
            flag = 1
          MODE full;
        """,
    )


def test_long_key_after_cast_and_including_lists_break() -> None:
    names = [f"a_rather_long_name_{k}" for k in range(5)]
    check(
        f"MIGRATE DATABASE a INTO b KEY ({', '.join(names)}) "
        f"AFTER ({', '.join('x.' + n for n in names)}) "
        f"INCLUDING TABLES ({', '.join(repr(n) for n in names)}) "
        f"CAST {', '.join(f'COLUMN {n} TO text' for n in names)};",
        """
        MIGRATE DATABASE a INTO b
          KEY (
            a_rather_long_name_0,
            a_rather_long_name_1,
            a_rather_long_name_2,
            a_rather_long_name_3,
            a_rather_long_name_4
          )
          AFTER (
            x.a_rather_long_name_0,
            x.a_rather_long_name_1,
            x.a_rather_long_name_2,
            x.a_rather_long_name_3,
            x.a_rather_long_name_4
          )
          INCLUDING TABLES (
            'a_rather_long_name_0',
            'a_rather_long_name_1',
            'a_rather_long_name_2',
            'a_rather_long_name_3',
            'a_rather_long_name_4'
          )
          CAST COLUMN a_rather_long_name_0 TO text,
            COLUMN a_rather_long_name_1 TO text,
            COLUMN a_rather_long_name_2 TO text,
            COLUMN a_rather_long_name_3 TO text,
            COLUMN a_rather_long_name_4 TO text;
        """,
    )


def test_a_list_that_just_fits_stays_on_one_line() -> None:
    # 2 + len("KEY (") + 91 + len(")") + len(";") == 100
    name = "k" * 91
    check(f"MIGRATE a INTO b KEY ({name});", f"MIGRATE a INTO b\n  KEY ({name});\n")
    longer = name + "k"
    check(f"MIGRATE a INTO b KEY ({longer});", f"MIGRATE a INTO b\n  KEY (\n    {longer}\n  );\n")


def test_compute_with_multi_line_sql_breaks() -> None:
    check(
        """
        MIGRATE a INTO b COMPUTE x = 1, size_class = CASE
                                                       WHEN n > 10 THEN 'big'
                                                       ELSE 'small'
                                                     END;
        """,
        """
        MIGRATE a INTO b
          COMPUTE x = 1,
            size_class = CASE
                WHEN n > 10 THEN 'big'
                ELSE 'small'
              END;
        """,
    )


# ---------------------------------------------------------------------------------------------
# Multi-line SQL


def test_where_continuation_lines_are_reindented() -> None:
    check(
        """
        MIGRATE a INTO b
                WHERE created_at >= '2020-01-01'
                      AND status IN ('paid',
                                     'shipped')
                MODE full;
        """,
        """
        MIGRATE a INTO b
          WHERE created_at >= '2020-01-01'
            AND status IN ('paid',
                           'shipped')
          MODE full;
        """,
    )


def test_sql_starting_on_its_own_line_keeps_continuation_lines_relative() -> None:
    check(
        """
        MIGRATE a INTO b WHERE
            a = 1
            AND b = 2;
        """,
        """
        MIGRATE a INTO b
          WHERE a = 1
            AND b = 2;
        """,
    )


def test_blank_and_whitespace_lines_in_sql_become_empty() -> None:
    source = "STAGE s AS\n  SELECT 1   \n   \n  FROM t;"
    assert format_source(source) == "STAGE s AS\n  SELECT 1\n\n  FROM t;\n"


def test_sql_with_a_multi_line_string_is_kept_verbatim() -> None:
    source = (
        "MIGRATE a INTO b\n      WHERE note = 'first\n   second  \n' AND x = 1\n        AND y = 2;"
    )
    expected = (
        "MIGRATE a INTO b\n  WHERE note = 'first\n   second  \n' AND x = 1\n        AND y = 2;\n"
    )
    assert format_source(source) == expected
    assert format_source(expected) == expected


def test_quotes_inside_sql_comments_do_not_open_strings() -> None:
    check(
        """
        MIGRATE a INTO b WHERE x = 1 -- it's fine
                          AND y = 2;
        """,
        """
        MIGRATE a INTO b
          WHERE x = 1 -- it's fine
            AND y = 2;
        """,
    )


def test_tabs_and_crlf_in_sql() -> None:
    source = "MIGRATE a INTO b\r\n\tWHERE x = 1\r\n\t\tAND y = 2\r\n;\r\n"
    check(source, "MIGRATE a INTO b\n  WHERE x = 1\n    AND y = 2;\n")


def test_multi_line_sql_reindentation_is_idempotent() -> None:
    source = """
        STAGE gold.x AS
                  SELECT a,
              b
                    FROM t
                      WHERE c = 1;
        MIGRATE a INTO b
          EXPECT CASE
                   WHEN x THEN 1
                 END = 1 ELSE DROP
          DEDUPLICATE ON (id) ORDER BY
              updated_at
                DESC;
    """
    once = fmt(source)
    assert once == textwrap.dedent(
        """\
        STAGE gold.x AS
          SELECT a,
          b
                FROM t
                  WHERE c = 1;
        MIGRATE a INTO b
          EXPECT CASE
              WHEN x THEN 1
            END = 1 ELSE DROP
          DEDUPLICATE ON (id) ORDER BY updated_at
            DESC;
        """
    )
    assert format_source(once) == once


# ---------------------------------------------------------------------------------------------
# Comments


def test_leading_comments_stay_before_their_statement() -> None:
    check(
        """
        -- the warehouse
        /* block */
        CONNECTION wh = 'duckdb:///wh.duckdb';
        """,
        """
        -- the warehouse
        /* block */
        CONNECTION wh = 'duckdb:///wh.duckdb';
        """,
    )


def test_trailing_comments_stay_at_the_end_of_their_line() -> None:
    check(
        """
        CONNECTION wh = 'duckdb:///wh.duckdb'; -- local
        MIGRATE a INTO b -- the header
          MODE full   /* clause */
          KEY (id);-- last
        """,
        """
        CONNECTION wh = 'duckdb:///wh.duckdb';  -- local
        MIGRATE a INTO b  -- the header
          MODE full  /* clause */
          KEY (id);  -- last
        """,
    )


def test_comments_between_clauses_take_the_clause_indentation() -> None:
    check(
        """
        MIGRATE a INTO b
        -- how it is loaded
          MODE full
             /* which rows */
          WHERE x > 1;
        """,
        """
        MIGRATE a INTO b
          -- how it is loaded
          MODE full
          /* which rows */
          WHERE x > 1;
        """,
    )


def test_comments_inside_a_one_line_header_move_to_its_end() -> None:
    # nothing may follow a `--` comment on its line: it would become part of it
    check(
        "MIGRATE -- what\n  a /* from */ INTO b;",
        "MIGRATE a INTO b;  -- what\n/* from */\n",
    )
    check("MIGRATE /* what */ a INTO b;", "MIGRATE a INTO b;  /* what */\n")


def test_own_line_comment_inside_a_line_goes_before_it() -> None:
    check(
        "SET a = 1,\n  -- and b\n  b = 2;",
        """
        -- and b
        SET a = 1, b = 2;
        """,
    )


def test_comments_inside_a_list_break_it() -> None:
    check(
        """
        MIGRATE a INTO b COLUMNS (id, -- the key
          -- what we show
          name AS title) COMPUTE x = 1, /* why */ y = 2;
        """,
        """
        MIGRATE a INTO b
          COLUMNS (
            id,  -- the key
            -- what we show
            name AS title
          )
          COMPUTE x = 1,  /* why */
            y = 2;
        """,
    )


def test_comment_after_a_list_does_not_break_it() -> None:
    check(
        "MIGRATE a INTO b KEY -- k\n (id) COMPUTE -- c\n x = 1, y = 2;",
        """
        MIGRATE a INTO b
          KEY (id)  -- k
          COMPUTE x = 1, y = 2;  -- c
        """,
    )


def test_comments_inside_sql_are_part_of_the_sql() -> None:
    check(
        """
        MIGRATE a INTO b WHERE x = 1 /* inline */ AND -- why
                  y = 2 -- after
          MODE full;
        """,
        """
        MIGRATE a INTO b
          WHERE x = 1 /* inline */ AND -- why
            y = 2  -- after
          MODE full;
        """,
    )


def test_comments_around_a_stage_query() -> None:
    check(
        """
        STAGE s MODE full AS -- the query
          -- own line
          SELECT 1 /* in sql */ FROM t; -- after
        """,
        """
        STAGE s
          MODE full
        AS  -- the query
          -- own line
          SELECT 1 /* in sql */ FROM t;  -- after
        """,
    )
    check("STAGE s AS SELECT 1; -- after", "STAGE s AS SELECT 1;  -- after\n")


def test_comments_in_features() -> None:
    check(
        """
        FEATURES f ON e FROM t TIMESTAMP ts ( -- the features
          n = count(*) OVER 30 DAYS, -- how many
          -- and how much
          s = sum(x)
        ) -- done
        ;
        """,
        """
        FEATURES f ON e
          FROM t TIMESTAMP ts (  -- the features
            n = count(*) OVER 30 DAYS,  -- how many
            -- and how much
            s = sum(x)
          );  -- done
        """,
    )


def test_comments_at_the_end_of_the_file() -> None:
    check(
        "SET a = 1;\n-- one\n\n\n\n/* two\n   lines */\n\n",
        """
        SET a = 1;
        -- one

        /* two
           lines */
        """,
    )


def test_a_file_of_comments_only() -> None:
    check("\n\n-- one\n-- two\n", "-- one\n-- two\n")


def test_multi_line_block_comments_keep_their_text() -> None:
    check(
        """
        MIGRATE a INTO b
              /* first
           second */
          MODE full /* trailing
        block */ KEY (id);
        """,
        """
        MIGRATE a INTO b
          /* first
           second */
          MODE full  /* trailing
        block */
          KEY (id);
        """,
    )


def test_several_trailing_comments_are_joined() -> None:
    check("MIGRATE a /* x */ INTO b /* y */ -- z\n;", "MIGRATE a INTO b;  /* x */  /* y */  -- z\n")


def test_a_line_comment_never_swallows_code() -> None:
    check(
        "MIGRATE a -- one\n INTO b -- two\n MODE full;",
        """
        MIGRATE a INTO b  -- one
          -- two
          MODE full;
        """,
    )


def test_multi_line_block_comment_after_a_line_comment_gets_its_own_line() -> None:
    check(
        "MIGRATE a -- one\n INTO b /* two\n lines */ MODE full;",
        """
        MIGRATE a INTO b  -- one
          /* two
         lines */
          MODE full;
        """,
    )


def test_comments_keep_their_order() -> None:
    source = "MIGRATE a INTO b COMPUTE x = 1 -- c1\n -- c2\n , y = 2 -- c3\n ;"
    output = format_source(source)
    assert [output.index(c) for c in ("c1", "c2", "c3")] == sorted(
        output.index(c) for c in ("c1", "c2", "c3")
    )
    assert format_source(output) == output


# ---------------------------------------------------------------------------------------------
# Blank lines


def test_blank_lines_between_statements_collapse_to_one() -> None:
    check(
        "SET a = 1;\n\n\n\nSET b = 2;SET c = 3;\nSET d = 4; -- d\n\n  \nSET e = 5;",
        """
        SET a = 1;

        SET b = 2;
        SET c = 3;
        SET d = 4;  -- d

        SET e = 5;
        """,
    )


def test_blank_lines_around_comments_between_statements() -> None:
    check(
        """
        SET a = 1;


        -- section


        -- about b
        SET b = 2;
        -- about c

        SET c = 3;
        """,
        """
        SET a = 1;

        -- section

        -- about b
        SET b = 2;
        -- about c

        SET c = 3;
        """,
    )


def test_blank_lines_inside_a_statement_are_dropped() -> None:
    check(
        "MIGRATE a INTO b\n\n  MODE full\n\n  -- c\n\n  KEY (id);",
        """
        MIGRATE a INTO b
          MODE full
          -- c
          KEY (id);
        """,
    )


def test_no_blank_line_at_the_start_or_end() -> None:
    check("\n\n\nSET a = 1;\n\n\n", "SET a = 1;\n")


# ---------------------------------------------------------------------------------------------
# A realistic file

SHOP = """\
-- shop.smql: move the legacy shop into the warehouse, then refine it
CONNECTION legacy    = 'mysql://etl:${LEGACY_PASSWORD}@db1:3306/shop';
CONNECTION warehouse = 'postgresql://etl@wh:5432/analytics?sslmode=require';

SET batch_size = 5000, parallel = 4, on_error = 'reject';

-- a whole database, tables discovered at run time (pgloader's LOAD DATABASE)
MIGRATE DATABASE legacy INTO warehouse.raw
  EXCLUDING TABLES ('audit_log', 'tmp_%')
  CAST TYPE tinyint(1) TO boolean, COLUMN orders.note TO text
  ZERO DATES AS NULL;

-- one table, reshaped on the way; expressions are SQL, pushed down to the source
MIGRATE legacy.orders INTO warehouse.raw.orders
  MODE incremental CURSOR updated_at KEY (id)
  COLUMNS (id, customer_id, status AS order_status, amount, created_at, updated_at)
  COMPUTE amount_cents = amount * 100
  WHERE created_at >= '2020-01-01';

-- a file source
MIGRATE FILE 'data/customers.csv' (HEADER, DELIMITER ';', NULL '') INTO warehouse.raw.customers
  MODE upsert KEY (customer_id);

-- a medallion stage: runs after its input is loaded, inside the warehouse when it can
STAGE warehouse.silver.orders FROM warehouse.raw.orders
  DEDUPLICATE ON (id) ORDER BY updated_at DESC
  EXPECT amount >= 0 ELSE DROP
  EXPECT customer_id IS NOT NULL ELSE FAIL;

STAGE warehouse.gold.daily_revenue AS
  SELECT date_trunc('day', created_at) AS day, sum(amount) AS revenue
  FROM warehouse.silver.orders GROUP BY 1;

-- features: an entity, windowed aggregates, materialized point-in-time correct
ENTITY customer KEY (customer_id);
FEATURES warehouse.features.customer_stats ON customer
  FROM warehouse.silver.orders TIMESTAMP created_at (
    order_count_30d = count(*) OVER 30 DAYS,
    spend_90d       = sum(amount) OVER 90 DAYS
  );
"""

SHOP_FORMATTED = """\
-- shop.smql: move the legacy shop into the warehouse, then refine it
CONNECTION legacy = 'mysql://etl:${LEGACY_PASSWORD}@db1:3306/shop';
CONNECTION warehouse = 'postgresql://etl@wh:5432/analytics?sslmode=require';

SET batch_size = 5000, parallel = 4, on_error = 'reject';

-- a whole database, tables discovered at run time (pgloader's LOAD DATABASE)
MIGRATE DATABASE legacy INTO warehouse.raw
  EXCLUDING TABLES ('audit_log', 'tmp_%')
  CAST TYPE tinyint(1) TO boolean, COLUMN orders.note TO text
  ZERO DATES AS NULL;

-- one table, reshaped on the way; expressions are SQL, pushed down to the source
MIGRATE legacy.orders INTO warehouse.raw.orders
  MODE incremental
  CURSOR updated_at
  KEY (id)
  COLUMNS (id, customer_id, status AS order_status, amount, created_at, updated_at)
  COMPUTE amount_cents = amount * 100
  WHERE created_at >= '2020-01-01';

-- a file source
MIGRATE FILE 'data/customers.csv' (HEADER, DELIMITER ';', NULL '') INTO warehouse.raw.customers
  MODE upsert
  KEY (customer_id);

-- a medallion stage: runs after its input is loaded, inside the warehouse when it can
STAGE warehouse.silver.orders FROM warehouse.raw.orders
  DEDUPLICATE ON (id) ORDER BY updated_at DESC
  EXPECT amount >= 0 ELSE DROP
  EXPECT customer_id IS NOT NULL ELSE FAIL;

STAGE warehouse.gold.daily_revenue AS
  SELECT date_trunc('day', created_at) AS day, sum(amount) AS revenue
  FROM warehouse.silver.orders GROUP BY 1;

-- features: an entity, windowed aggregates, materialized point-in-time correct
ENTITY customer KEY (customer_id);
FEATURES warehouse.features.customer_stats ON customer
  FROM warehouse.silver.orders TIMESTAMP created_at (
    order_count_30d = count(*) OVER 30 DAYS,
    spend_90d = sum(amount) OVER 90 DAYS
  );
"""


def test_realistic_file() -> None:
    assert format_source(SHOP, "shop.smql") == SHOP_FORMATTED


def test_realistic_file_is_idempotent() -> None:
    assert format_source(SHOP_FORMATTED, "shop.smql") == SHOP_FORMATTED


def test_realistic_file_in_lowercase_with_odd_layout() -> None:
    messy = "\n".join(
        " ".join(line.split()) if not line.startswith("--") else line
        for line in SHOP.replace("MIGRATE", "migrate").replace("INTO", "into").splitlines()
    )
    assert format_source(messy) == SHOP_FORMATTED


def test_no_comment_is_appended_after_a_line_comment() -> None:
    source = "SET batch_size = 5000, -- between settings\n  on_error = reject /* before ; */;\n"
    formatted = format_source(source)
    assert [c.text for c in parse(formatted).comments] == [
        "-- between settings",
        "/* before ; */",
    ]
    assert format_source(formatted) == formatted


def test_a_long_migrate_file_header_puts_one_file_option_per_line() -> None:
    check(
        "MIGRATE FILE 'data/products_export_with_a_long_name.csv' (HEADER, DELIMITER ';', "
        "NULL 'NA', ENCODING 'latin1') INTO warehouse.raw.products_from_the_export MODE full;",
        """
        MIGRATE FILE 'data/products_export_with_a_long_name.csv' (
          HEADER,
          DELIMITER ';',
          NULL 'NA',
          ENCODING 'latin1'
        ) INTO warehouse.raw.products_from_the_export
          MODE full;
        """,
    )


def test_a_comment_after_the_last_file_option_stays_on_its_line() -> None:
    # found by hypothesis: the closing line was anchored before the comment, which moved there
    source = "MIGRATE FILE '\n' ( HEADER , HEADER , HEADER , HEADER -- a\nTRUE ) INTO a ;"
    once = format_source(source)
    assert "  HEADER true  -- a\n) INTO a;" in once
    assert format_source(once) == once
