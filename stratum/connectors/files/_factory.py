"""From a plan's `MIGRATE FILE` to the source that reads it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from smql import FileFormat
from stratum.connectors.base import Source
from stratum.connectors.files._common import is_gzip
from stratum.connectors.files._csv import CsvSource
from stratum.connectors.files._jsonl import JsonLinesSource
from stratum.connectors.files._parquet import ParquetSource
from stratum.errors import SourceError
from stratum.plan import defaults
from stratum.plan.model import CsvOptions, FileSource

_DEFAULT_CSV = CsvOptions(
    header=False,
    delimiter=defaults.CSV_DELIMITER,
    quote=defaults.CSV_QUOTE,
    escape=None,
    null=defaults.CSV_NULL,
    encoding=defaults.CSV_ENCODING,
)


def _csv(path: Path, source: FileSource) -> Source:
    return CsvSource(path, source.csv or _DEFAULT_CSV)


def _jsonl(path: Path, source: FileSource) -> Source:
    return JsonLinesSource(path)


def _parquet(path: Path, source: FileSource) -> Source:
    if is_gzip(path):
        raise SourceError(
            f"{path}: a Parquet file is compressed inside; a gzipped Parquet file cannot be read "
            f"(from '{source.path}' in the plan)"
        )
    return ParquetSource(path)


_READERS: dict[FileFormat, Callable[[Path, FileSource], Source]] = {
    FileFormat.CSV: _csv,
    FileFormat.JSONL: _jsonl,
    FileFormat.PARQUET: _parquet,
}


def open_file_source(source: FileSource, base_dir: Path) -> Source:
    """The source reading `source.path`, a relative path being relative to `base_dir` (the
    directory of the .smql file). Checks that the file exists; nothing is read until the
    source is opened. CSV and JSON Lines files whose name ends in `.gz` are decompressed."""
    path = Path(source.path)
    if not path.is_absolute():
        path = base_dir / path
    path = path.resolve()
    if not path.exists():
        raise SourceError(f"file not found: {path} (from '{source.path}' in the plan)")
    if not path.is_file():
        raise SourceError(f"not a file: {path} (from '{source.path}' in the plan)")
    return _READERS[FileFormat(source.format)](path, source)
