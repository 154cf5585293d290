"""What a MySQL/MariaDB error means for the destination (the source's map is `_errors`).

Classified by the server's error number (`args[0]`), then by class, never by message:

* transient (`ConnectionLost`): everything `_errors.is_transient` says is (lost or killed
  connection, server gone away or shutting down, too many connections, lock wait timeout,
  deadlock, the client's 2000-2999 errors, InterfaceError, OS and timeout errors);
* about the rows (`RowError` while the batch's rows are written, else `DestinationError`): the
  numbers in `ROW_ERRNOS` (NOT NULL, duplicate key, out of range, incorrect value, too long,
  foreign key, CHECK, invalid JSON...), any IntegrityError or DataError, and the Python errors
  a value raises while it is encoded (`ROW_VALUE_ERRORS`: NaN in a DOUBLE, bad JSON...);
* everything else the driver raises is the destination refusing the work (`DestinationError`):
  access denied (1044, 1045, 1142, 1227, 1698), unknown database (1049), no such table (1146)...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from stratum.connectors.mysql._errors import DriverErrors, describe, errno_of, is_transient
from stratum.connectors.sql import ROW_VALUE_ERRORS, Fault
from stratum.errors import ConnectionLost, DestinationError, RowError, StratumError

__all__ = ["ROW_ERRNOS", "fault_of", "translated"]

#: Server error numbers that say a row cannot be stored as it is.
ROW_ERRNOS = frozenset(
    {
        1048,  # ER_BAD_NULL_ERROR: column cannot be null
        1062,  # ER_DUP_ENTRY
        1169,  # ER_DUP_UNIQUE
        1216,  # ER_NO_REFERENCED_ROW
        1217,  # ER_ROW_IS_REFERENCED
        1263,  # ER_WARN_NULL_TO_NOTNULL
        1264,  # ER_WARN_DATA_OUT_OF_RANGE
        1265,  # WARN_DATA_TRUNCATED
        1292,  # ER_TRUNCATED_WRONG_VALUE: incorrect date/time/double value
        1300,  # ER_INVALID_CHARACTER_STRING
        1364,  # ER_NO_DEFAULT_FOR_FIELD
        1366,  # ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: incorrect integer/decimal/string value
        1367,  # ER_ILLEGAL_VALUE_FOR_TYPE
        1406,  # ER_DATA_TOO_LONG
        1411,  # ER_WRONG_VALUE_FOR_TYPE
        1416,  # ER_CANT_CREATE_GEOMETRY_OBJECT
        1441,  # ER_DATETIME_FUNCTION_OVERFLOW
        1451,  # ER_ROW_IS_REFERENCED_2
        1452,  # ER_NO_REFERENCED_ROW_2
        1557,  # ER_FOREIGN_DUPLICATE_KEY
        1586,  # ER_DUP_ENTRY_WITH_KEY_NAME
        1690,  # ER_DATA_OUT_OF_RANGE
        3140,  # ER_INVALID_JSON_TEXT (MySQL)
        3819,  # ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
        4025,  # ER_CONSTRAINT_FAILED (MariaDB: a CHECK, e.g. JSON_VALID of a JSON column)
    }
)


def fault_of(
    exc: BaseException, errors: DriverErrors | None, *, rows: bool = False
) -> Fault | None:
    """What `exc` means; None for an exception that is neither the driver's nor the network's
    (nor, with `rows`, a value that could not be encoded)."""
    if is_transient(exc, errors):
        return Fault.TRANSIENT
    if errors is not None and isinstance(exc, errors.root):
        if errno_of(exc) in ROW_ERRNOS:
            return Fault.ROW
        names = {cls.__name__ for cls in type(exc).__mro__}
        if names & {"IntegrityError", "DataError"}:
            return Fault.ROW
        return Fault.TERMINAL
    if rows and isinstance(exc, ROW_VALUE_ERRORS):
        return Fault.ROW
    return None


@contextmanager
def translated(what: str, errors: DriverErrors | None, *, rows: bool = False) -> Iterator[None]:
    """Translate the driver exceptions raised inside into Stratum's tree (`raise ... from`).
    With `rows`, the statement inside writes the batch's rows: row faults become RowError;
    elsewhere they are the destination refusing the work."""
    try:
        yield
    except StratumError:
        raise
    except Exception as exc:
        fault = fault_of(exc, errors, rows=rows)
        if fault is None:
            raise
        message = f"{what}: {describe(exc)}"
        if fault is Fault.TRANSIENT:
            raise ConnectionLost(message) from exc
        if fault is Fault.ROW and rows:
            raise RowError(message) from exc
        raise DestinationError(message) from exc
