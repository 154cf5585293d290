"""Parquet files, read by DuckDB (`read_parquet`) and streamed with fetchmany.

Each read opens its own in-memory DuckDB connection in a worker thread; batches come from
`fetchmany`, so the file is never held in memory whole. Rows come in file order with DuckDB's
`file_row_number`: a position is that number + 1, the cursor is the number of the next row, and a
resume reads `WHERE file_row_number >= cursor`. A file with its own column named
`file_row_number` cannot be read (DuckDB would need that name for the row numbers).

Column types, as PostgreSQL spells them:

    BOOLEAN -> boolean                      TINYINT, SMALLINT, UTINYINT -> smallint
    INTEGER, USMALLINT -> integer           BIGINT, UINTEGER -> bigint
    UBIGINT -> numeric(20,0)                HUGEINT, UHUGEINT, BIGNUM -> numeric (Decimal values)
    DECIMAL(p,s) -> numeric(p,s)            FLOAT -> real, DOUBLE -> double precision
    VARCHAR -> text, ENUM -> text           BLOB -> bytea
    DATE -> date, TIME -> time              TIME WITH TIME ZONE -> timetz
    TIMESTAMP, TIMESTAMP_S, _MS -> timestamp
    TIMESTAMP_NS -> timestamp, rounded to microseconds (PostgreSQL's precision)
    TIMESTAMP WITH TIME ZONE -> timestamptz (aware datetimes in UTC)
    UUID -> uuid, INTERVAL -> interval (both as their text, e.g. '1 day 02:00:00')
    JSON -> jsonb; lists, arrays, structs, maps, unions -> jsonb (DuckDB's to_json, parsed:
        numbers inside them become Python int/float, dates and times their ISO text)
    anything else -> text (DuckDB's cast to VARCHAR)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratum.connectors.base import Column, RawBatch, Row, Schema
from stratum.connectors.files._common import FileSourceBase
from stratum.errors import ConfigError, SourceError

if TYPE_CHECKING:
    import duckdb

_ROW_NUMBER = "file_row_number"

_SIMPLE: dict[str, str] = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "UTINYINT": "smallint",
    "INTEGER": "integer",
    "USMALLINT": "integer",
    "BIGINT": "bigint",
    "UINTEGER": "bigint",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "BLOB": "bytea",
    "DATE": "date",
    "TIME": "time",
    "TIME WITH TIME ZONE": "timetz",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_NESTED = re.compile(r"(STRUCT|MAP|UNION)\(|.*\[\d*\]$")

Convert = Callable[[Any], Any]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _import_duckdb() -> Any:
    try:
        import duckdb  # noqa: PLC0415 (drivers are imported when a connector needs them)
    except ImportError as exc:  # pragma: no cover - duckdb is a core dependency
        raise ConfigError("reading Parquet files needs the duckdb package") from exc
    return duckdb


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column(name: str, duck_type: str) -> tuple[str, str, Convert | None]:
    """The PostgreSQL type of a DuckDB column, the expression that selects it, and the
    conversion its values need in Python (None: as DuckDB gives them)."""
    column = _quote(name)
    if duck_type in _SIMPLE:
        return _SIMPLE[duck_type], column, None
    decimal = _DECIMAL.fullmatch(duck_type)
    if decimal:
        return f"numeric({decimal[1]},{decimal[2]})", column, None
    if duck_type == "UBIGINT":
        return "numeric(20,0)", f"CAST({column} AS DECIMAL(20,0))", None
    if duck_type in ("HUGEINT", "UHUGEINT", "BIGNUM", "VARINT"):
        return "numeric", f"CAST({column} AS VARCHAR)", Decimal
    if duck_type == "TIMESTAMP_NS":
        return "timestamp", f"CAST({column} AS TIMESTAMP)", None
    if duck_type == "TIMESTAMP WITH TIME ZONE":
        return "timestamptz", f"timezone('UTC', {column})", _utc
    if duck_type == "UUID":
        return "uuid", f"CAST({column} AS VARCHAR)", None
    if duck_type == "INTERVAL":
        return "interval", f"CAST({column} AS VARCHAR)", None
    if duck_type == "JSON":
        return "jsonb", f"CAST({column} AS VARCHAR)", json.loads
    if _NESTED.match(duck_type):
        return "jsonb", f"CAST(to_json({column}) AS VARCHAR)", json.loads
    return "text", f"CAST({column} AS VARCHAR)", None


class ParquetSource(FileSourceBase):
    """Rows of a Parquet file in file order, typed from the file's schema."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._select = ""
        self._converters: tuple[tuple[int, Convert], ...] = ()
        self._total_rows: int | None = None

    async def total_rows(self) -> int | None:
        """The file's row count, from its metadata (see `SizedSource`)."""
        await self.schema()
        return self._total_rows

    def _read_schema(self) -> Schema:
        if not self.path.is_file():
            raise SourceError(f"file not found: {self.path}")
        duckdb = _import_duckdb()
        connection = duckdb.connect()
        try:
            result = connection.execute("SELECT * FROM read_parquet(?) LIMIT 0", [str(self.path)])
            described = [(str(d[0]), str(d[1])) for d in result.description]
            # the row count is in the file's metadata: known without a scan, for the ETA
            (count,) = connection.execute(
                "SELECT sum(num_rows) FROM parquet_file_metadata(?)", [str(self.path)]
            ).fetchall()[0]
            self._total_rows = int(count or 0)
        except duckdb.Error as exc:
            raise SourceError(f"{self.path}: cannot read it as Parquet: {exc}") from exc
        finally:
            connection.close()
        columns: list[Column] = []
        selects: list[str] = []
        converters: list[tuple[int, Convert]] = []
        for index, (name, duck_type) in enumerate(described):
            if name == _ROW_NUMBER:
                raise SourceError(
                    f"{self.path}: a column is named {_ROW_NUMBER}, the name DuckDB gives to the "
                    "row numbers that positions and resume need; rename it in the file"
                )
            pg_type, select, convert = _column(name, duck_type)
            columns.append(Column(name, pg_type))
            selects.append(select)
            if convert is not None:
                converters.append((index, convert))
        self._select = "".join(f"{select}, " for select in selects)
        self._converters = tuple(converters)
        return Schema(tuple(columns))

    def _scan(self, schema: Schema, start: int) -> _ParquetScan:
        return _ParquetScan(self.path, self._select, self._converters, start)


class _ParquetScan:
    """A streaming query over the file, from row `start` on."""

    def __init__(
        self, path: Path, select: str, converters: tuple[tuple[int, Convert], ...], start: int
    ) -> None:
        self._path = path
        self._converters = converters
        self._next = start  # file_row_number of the next row
        self._duckdb = _import_duckdb()
        self._connection: duckdb.DuckDBPyConnection = self._duckdb.connect()
        try:
            rows, size = self._connection.execute(
                "SELECT (SELECT sum(num_rows) FROM parquet_file_metadata($1)),"
                " (SELECT sum(total_uncompressed_size) FROM parquet_metadata($1))",
                [str(path)],
            ).fetchone() or (0, 0)
            rows, size = int(rows or 0), int(size or 0)
            if start > rows:
                raise SourceError(
                    f"{path}: cannot resume at row {start}: the file holds only {rows} rows; it "
                    "changed since they were read"
                )
            self._row_bytes = size // rows if rows else 0
            self._result = self._connection.execute(
                f"SELECT {select}{_ROW_NUMBER} FROM read_parquet($1, file_row_number = true) "
                f"WHERE {_ROW_NUMBER} >= $2",
                [str(path), start],
            )
        except self._duckdb.Error as exc:
            self._connection.close()
            raise SourceError(f"{path}: cannot read it as Parquet: {exc}") from exc
        except BaseException:
            self._connection.close()
            raise

    def close(self) -> None:
        self._connection.close()

    def next_batch(self, limit: int) -> RawBatch | None:
        try:
            fetched = self._result.fetchmany(limit)
        except self._duckdb.Error as exc:
            raise SourceError(f"{self._path}: cannot read row {self._next + 1}: {exc}") from exc
        if not fetched:
            return None
        numbers = [row[-1] for row in fetched]
        if numbers != list(range(self._next, self._next + len(fetched))):
            raise SourceError(
                f"{self._path}: DuckDB returned rows out of file order after row {self._next}"
            )
        self._next += len(fetched)
        rows: list[Row]
        if self._converters:
            rows = []
            for row in fetched:
                values = list(row[:-1])
                for index, convert in self._converters:
                    if values[index] is not None:
                        values[index] = convert(values[index])
                rows.append(tuple(values))
        else:
            rows = [row[:-1] for row in fetched]
        positions = [number + 1 for number in numbers]
        return RawBatch(rows, positions, cursor=self._next, nbytes=self._row_bytes * len(fetched))
