"""DuckDB's exceptions, and what each means for the engine. Imported only once duckdb is."""

from __future__ import annotations

import duckdb

from stratum.connectors.sql import ErrorTable, Fault

__all__ = ["ERRORS", "ROOT"]

ROOT = duckdb.Error

#: Every exception class the duckdb module exports, the most specific first
#: (tests/unit/stratum/connectors/duckdb/test_errors.py fails on one that is missing).
ERRORS: ErrorTable = (
    # the rows: a constraint, or a value its column cannot take
    (duckdb.ConstraintException, Fault.ROW),
    (duckdb.IntegrityError, Fault.ROW),
    (duckdb.ConversionException, Fault.ROW),
    (duckdb.OutOfRangeException, Fault.ROW),
    (duckdb.TypeMismatchException, Fault.ROW),
    (duckdb.DataError, Fault.ROW),
    # a Python value DuckDB cannot convert (a lone surrogate, a set, an object)
    (duckdb.InvalidInputException, Fault.ROW),
    (duckdb.NotImplementedException, Fault.ROW),
    # another connection won a write-write conflict, or the query was interrupted: retry
    (duckdb.TransactionException, Fault.TRANSIENT),
    (duckdb.SerializationException, Fault.TRANSIENT),
    (duckdb.InterruptException, Fault.TRANSIENT),
    (duckdb.ConnectionException, Fault.TRANSIENT),
    (duckdb.OutOfMemoryException, Fault.TRANSIENT),
    (duckdb.ResourceInUseException, Fault.TRANSIENT),
    (duckdb.HTTPException, Fault.TRANSIENT),
    # the file (locked by another process, unreadable, disk full), the SQL, the catalog
    (duckdb.IOException, Fault.TERMINAL),
    (duckdb.PermissionException, Fault.TERMINAL),
    (duckdb.CatalogException, Fault.TERMINAL),
    (duckdb.BinderException, Fault.TERMINAL),
    (duckdb.ParserException, Fault.TERMINAL),
    (duckdb.SyntaxException, Fault.TERMINAL),
    (duckdb.InvalidTypeException, Fault.TERMINAL),
    (duckdb.DependencyException, Fault.TERMINAL),
    (duckdb.SequenceException, Fault.TERMINAL),
    (duckdb.FatalException, Fault.TERMINAL),  # the database is invalidated: reopen it
    (duckdb.InternalException, Fault.TERMINAL),
    (duckdb.InternalError, Fault.TERMINAL),
    (duckdb.NotSupportedError, Fault.TERMINAL),
    (duckdb.ProgrammingError, Fault.TERMINAL),
    (duckdb.OperationalError, Fault.TERMINAL),
    (duckdb.DatabaseError, Fault.TERMINAL),
    (duckdb.Error, Fault.TERMINAL),
)
