"""DuckDB's exceptions, translated at the destination's edge: every class the duckdb module
exports is accounted for, and real failures arrive as Stratum's errors."""

from __future__ import annotations

import inspect

import duckdb
import pytest

from stratum.connectors.duckdb._errors import ERRORS, ROOT
from stratum.connectors.sql import translated
from stratum.errors import ConnectionLost, DestinationError, RowError, StratumError


def _duckdb_exception_classes() -> list[type[BaseException]]:
    return sorted(
        (
            cls
            for _, cls in inspect.getmembers(duckdb, inspect.isclass)
            if issubclass(cls, Exception)
        ),
        key=lambda cls: cls.__name__,
    )


def test_every_duckdb_exception_is_listed_explicitly() -> None:
    """Not only caught by the catch-all duckdb.Error: each class was reviewed."""
    listed = {cls for cls, _ in ERRORS}
    classes = _duckdb_exception_classes()
    assert len(classes) > 25
    missing = [cls.__name__ for cls in classes if cls not in listed and cls is not duckdb.Warning]
    assert missing == []


IMPORTANT: list[tuple[type[BaseException], type[StratumError]]] = [
    (duckdb.ConstraintException, RowError),
    (duckdb.ConversionException, RowError),
    (duckdb.OutOfRangeException, RowError),
    (duckdb.TypeMismatchException, RowError),
    (duckdb.InvalidInputException, RowError),
    (duckdb.TransactionException, ConnectionLost),
    (duckdb.InterruptException, ConnectionLost),
    (duckdb.IOException, DestinationError),
    (duckdb.CatalogException, DestinationError),
    (duckdb.BinderException, DestinationError),
    (duckdb.ParserException, DestinationError),
    (duckdb.PermissionException, DestinationError),
    (duckdb.FatalException, DestinationError),
    (duckdb.Error, DestinationError),
]


@pytest.mark.parametrize(("driver", "expected"), IMPORTANT, ids=[c.__name__ for c, _ in IMPORTANT])
def test_important_exceptions_map_where_they_must(
    driver: type[BaseException], expected: type[StratumError]
) -> None:
    original = driver("message")
    with pytest.raises(expected) as caught, translated("writing", ERRORS, rows=True, fallback=ROOT):
        raise original
    assert caught.value.__cause__ is original


def _run(sql: str, *params: object) -> None:
    with duckdb.connect() as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        conn.execute("INSERT INTO t VALUES (1, 1)")
        conn.execute(sql, list(params))


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1, 2)",  # primary key
        "INSERT INTO t VALUES (2, NULL)",  # NOT NULL
        "INSERT INTO t VALUES (2, 'many')",  # not an integer
        "INSERT INTO t VALUES (2, 99999999999)",  # out of range
    ],
)
def test_real_row_failures_are_row_errors(sql: str) -> None:
    with pytest.raises(RowError), translated("writing", ERRORS, rows=True, fallback=ROOT):
        _run(sql)


def test_a_python_value_duckdb_cannot_take_is_a_row_error() -> None:
    with pytest.raises(RowError), translated("writing", ERRORS, rows=True, fallback=ROOT):
        _run("INSERT INTO t SELECT 2, UNNEST($1)", ["lone \udc80 surrogate"])


def test_a_missing_table_is_terminal() -> None:
    with pytest.raises(DestinationError), translated("writing", ERRORS, rows=True, fallback=ROOT):
        _run("INSERT INTO missing VALUES (1)")
