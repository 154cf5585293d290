"""File sources: CSV, JSON Lines and Parquet files, read in worker threads.

    open_file_source(plan_source, base_dir)     the source a plan's `MIGRATE FILE` reads
    CsvSource(path, options)                    csv module; every column "text"
    JsonLinesSource(path)                       one JSON object per line; types inferred
    ParquetSource(path)                         DuckDB's Parquet reader, streamed

All three satisfy `stratum.connectors.base.Source`. Positions are where a record starts in the
file: the 1-based line for CSV and JSON Lines, the 1-based row for Parquet. The cursor counts
what has been consumed: data records for CSV and JSON Lines (rejected ones included), rows for
Parquet; `read(after=n)` skips exactly those n and yields the rest with the file's own positions.
A record that cannot be read is never dropped: it comes back in `RawBatch.rejected` with its
position and reason. What cannot be read at all (missing file, no header, broken gzip, a codec
that cannot go on) raises `SourceError`. `.gz` CSV and JSON Lines files are decompressed as they
are read. Each module's docstring spells out its format's rules.
"""

from stratum.connectors.files._csv import CsvSource
from stratum.connectors.files._factory import open_file_source
from stratum.connectors.files._jsonl import JsonLinesSource
from stratum.connectors.files._parquet import ParquetSource

__all__ = ["CsvSource", "JsonLinesSource", "ParquetSource", "open_file_source"]
