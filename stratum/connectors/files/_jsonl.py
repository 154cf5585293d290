"""JSON Lines files: one JSON object per line, read in worker threads.

* Lines are split at LF (a CR before it is JSON whitespace); the file is UTF-8, a leading byte
  order mark is skipped. Lines holding only whitespace are skipped, but counted for line numbers.
  Every other line is a record: the cursor counts them.
* The schema is the union of the keys of the first 1000 objects, in the order they first
  appear. A key's type comes from its values there: integers -> bigint (numeric when one does
  not fit in 64 bits), floats, or integers and floats -> double precision, booleans -> boolean,
  strings -> text, objects and arrays -> jsonb, only nulls -> text. Values of incompatible kinds
  (a string and a number, an object and a boolean, ...) make the column text: strings are kept,
  other values become their JSON text (json.dumps: `true`, `1.5`, `{"a": 1}`).
* Every record must fit that schema, or it is rejected with its line and the raw line: invalid
  JSON (NaN and Infinity included: they are not JSON), a value that is not an object, a key the
  schema does not have ("unexpected key 'x'"), a value of another kind than its column (a string
  in a bigint column; an integer in a double precision column is converted, anything in a text
  column becomes JSON text), or a string holding \\u0000 or a lone surrogate (which PostgreSQL's
  text and jsonb refuse). A missing key is NULL.
* An object naming a key twice keeps the last value, as PostgreSQL's jsonb does.
* Values: str, int, Decimal (numeric), float, bool, dict/list (jsonb), or None.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from stratum.connectors.base import Column, RawBatch, Rejected, Row, Schema
from stratum.connectors.files._common import (
    FileSourceBase,
    check_cancelled,
    has_unstorable,
    open_binary,
    printable,
)
from stratum.errors import SourceError

#: How many objects the schema is inferred from.
INFER_OBJECTS = 1000
#: How many records a skip (resume) drops between checks for cancellation.
_SKIP_STEP = 8192

_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1
#: An escape that may decode to something no PostgreSQL text holds; confirmed on the values.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


class _Mismatch(Exception):
    """A value does not fit its column."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_decode = json.JSONDecoder(parse_constant=_reject_constant).decode


class JsonLinesSource(FileSourceBase):
    """Rows of a JSON Lines file, one per object, typed from the first 1000 objects.

    Positions are the 1-based line of each object; the cursor is the number of records (lines
    that are not blank) consumed, rejected ones included.
    """

    def _read_schema(self) -> Schema:
        kinds: dict[str, set[str]] = {}
        with _JsonScan(self.path, None) as scan:
            for line, value in scan.objects(INFER_OBJECTS):
                for key, item in value.items():
                    if key == "":
                        raise SourceError(
                            f"{self.path}: line {line}: the key '' cannot name a column"
                        )
                    kind = _kind(item)
                    seen = kinds.setdefault(key, set())
                    if kind is not None:
                        seen.add(kind)
        return Schema(tuple(Column(key, _column_type(found)) for key, found in kinds.items()))

    def _scan(self, schema: Schema, start: int) -> _JsonScan:
        scan = _JsonScan(self.path, schema)
        try:
            scan.skip(start)
        except BaseException:
            scan.close()
            raise
        return scan


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint" if _BIGINT_MIN <= value <= _BIGINT_MAX else "numeric"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, str):
        return "text"
    return "jsonb"  # dict or list: json.loads makes nothing else


def _column_type(kinds: set[str]) -> str:
    if not kinds:
        return "text"
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds <= {"bigint", "numeric"}:
        return "numeric"
    if kinds <= {"bigint", "numeric", "double precision"}:
        return "double precision"
    return "text"


def _describe(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    text = json.dumps(value, ensure_ascii=False)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind.get(type(value), 'an object' if isinstance(value, dict) else 'an array')} {text}"


def _to_text(value: Any) -> Any:
    if value is None or type(value) is str:
        return value
    return json.dumps(value, ensure_ascii=False)


def _to_bigint(value: Any) -> Any:
    if value is None or (type(value) is int and _BIGINT_MIN <= value <= _BIGINT_MAX):
        return value
    raise _Mismatch


def _to_numeric(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is int:
        return Decimal(value)
    raise _Mismatch


def _to_double(value: Any) -> Any:
    if value is None or type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise _Mismatch from None
    raise _Mismatch


def _to_boolean(value: Any) -> Any:
    if value is None or type(value) is bool:
        return value
    raise _Mismatch


def _to_jsonb(value: Any) -> Any:
    if value is None or type(value) in (dict, list):
        return value
    raise _Mismatch


#: The Python type a column's values keep as they are; others go through its converter.
_KEPT: dict[str, type] = {
    "text": str,
    "double precision": float,
    "boolean": bool,
    "jsonb": dict,
}

_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": _to_text,
    "bigint": _to_bigint,
    "numeric": _to_numeric,
    "double precision": _to_double,
    "boolean": _to_boolean,
    "jsonb": _to_jsonb,
}


def _unstorable(value: Any) -> bool:
    """Whether a string inside `value` (a key too) holds a NUL or a lone surrogate."""
    if isinstance(value, str):
        return has_unstorable(value)
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    return False


class _JsonScan:
    """One pass over the file's lines."""

    def __init__(self, path: Path, schema: Schema | None) -> None:
        self._path = path
        self._columns = schema.columns if schema is not None else ()
        self._keys = frozenset(column.name for column in self._columns)
        self._names = [column.name for column in self._columns]
        self._checks = [
            (index, column.name, column.type, _KEPT.get(column.type), _CONVERTERS[column.type])
            for index, column in enumerate(self._columns)
        ]
        self._file = open_binary(path)
        self._lines = self._numbered()
        self._done = False
        self.records = 0  # records (lines that are not blank) consumed

    def __enter__(self) -> _JsonScan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _numbered(self) -> Iterator[tuple[int, bytes]]:
        """(line number, line) of the lines that are not blank, the BOM taken off."""
        number = 0
        lines = iter(self._file)
        while True:
            try:
                line = next(lines)
            except StopIteration:
                return
            except (OSError, EOFError, zlib.error) as exc:
                raise SourceError(f"{self._path}: cannot read line {number + 1}: {exc}") from exc
            number += 1
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if line.strip(_WHITESPACE):
                yield number, line

    def objects(self, limit: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """The first `limit` records that are valid JSON objects, with their lines."""
        found = 0
        for number, line in self._lines:
            if found >= limit:
                return
            try:
                value = _decode(line.decode("utf-8"))
            except (ValueError, RecursionError):
                continue
            if isinstance(value, dict):
                found += 1
                yield number, value

    def skip(self, records: int) -> None:
        """Drop the first `records` records, unparsed."""
        for skipped in range(records):
            if skipped % _SKIP_STEP == 0:
                check_cancelled()
            if next(self._lines, None) is None:
                raise SourceError(
                    f"{self._path}: cannot resume after record {records}: the file holds only "
                    f"{self.records} records; it changed since they were read"
                )
            self.records += 1

    def next_batch(self, limit: int) -> RawBatch | None:
        if self._done:
            return None
        rows: list[Row] = []
        positions: list[int] = []
        rejected: list[Rejected] = []
        nbytes = 0
        count = 0
        for number, line in self._lines:
            count += 1
            nbytes += len(line)
            result = self._row(line)
            if isinstance(result, str):
                text = printable(line.decode("utf-8", "surrogateescape").rstrip("\r\n"))
                rejected.append(Rejected(number, result, text))
            else:
                rows.append(result)
                positions.append(number)
            if count == limit:
                break
        else:
            self._done = True
        if count == 0:
            return None
        self.records += count
        return RawBatch(rows, positions, rejected, cursor=self.records, nbytes=nbytes)

    def _row(self, line: bytes) -> Row | str:
        """The record's row, or why it is rejected."""
        try:
            text = line.rstrip(_WHITESPACE).decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.end]
            return f"cannot decode bytes {bad!r} as utf-8 ({exc.reason})"
        try:
            value = _decode(text)
        except json.JSONDecodeError as exc:
            return f"invalid JSON: {exc.msg} (column {exc.colno})"
        except (ValueError, RecursionError) as exc:
            return f"invalid JSON: {exc}"
        if not isinstance(value, dict):
            return f"expected a JSON object, found {_describe(value)}"
        if not self._keys.issuperset(value):
            unexpected = [repr(key) for key in value if key not in self._keys]
            return f"unexpected key{'s' if len(unexpected) > 1 else ''} {', '.join(unexpected)}"
        if _SUSPECT_ESCAPE.search(line) and _unstorable(value):
            return "a string holds \\u0000 or a lone surrogate, which PostgreSQL cannot store"
        row = [value.get(name) for name in self._names]
        for index, name, type_, kept, convert in self._checks:
            item = row[index]
            if item is None or type(item) is kept:
                continue
            try:
                row[index] = convert(item)
            except _Mismatch:
                return f"key '{name}': expected {type_}, found {_describe(item)}"
        return tuple(row)
