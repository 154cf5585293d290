"""Diagnostics and the SMQL exception tree.

    SmqlError                 every error the language raises; carries Diagnostics
    ├── SmqlSyntaxError       the text does not parse
    ├── SmqlCheckError        it parses, but the checks found errors
    └── TemplateError         a ${VAR} template cannot be expanded

Diagnostics render like a compiler's::

    shop.smql:14:9: error: unknown connection 'legcy' (did you mean 'legacy'?)
      MIGRATE legcy.orders INTO warehouse.raw.orders
              ^^^^^
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from smql.syntax import Span


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Note:
    """A secondary location, e.g. where a duplicate name was first defined."""

    message: str
    span: Span | None = None


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    message: str
    path: str
    span: Span | None = None
    notes: tuple[Note, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self, source: str | None) -> str:
        """The diagnostic as a compiler prints it, with the source line and a caret."""
        lines = [_headline(self.path, self.span, self.severity.value, self.message)]
        lines.extend(_snippet(source, self.span))
        for note in self.notes:
            lines.append(_headline(self.path, note.span, "note", note.message))
            lines.extend(_snippet(source, note.span))
        return "\n".join(lines)


def render_all(diagnostics: Iterable[Diagnostic], source: str | None) -> str:
    return "\n".join(diagnostic.render(source) for diagnostic in diagnostics)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Source order; diagnostics without a position last, in the order they came."""

    def key(diagnostic: Diagnostic) -> tuple[int, int]:
        return (diagnostic.span.start, diagnostic.span.end) if diagnostic.span else (1 << 62, 0)

    return sorted(diagnostics, key=key)


def _headline(path: str, span: Span | None, label: str, message: str) -> str:
    where = f"{path}:{span.line}:{span.column}" if span else path
    return f"{where}: {label}: {message}"


def _snippet(source: str | None, span: Span | None) -> list[str]:
    if source is None or span is None:
        return []
    lines = source.splitlines() or [""]
    if not 1 <= span.line <= len(lines):
        return []
    text = lines[span.line - 1].expandtabs(1)
    start = span.column - 1
    end = span.end_column - 1 if span.end_line == span.line else len(text)
    width = max(1, min(end, len(text)) - start)
    return ["  " + text.rstrip(), "  " + " " * start + "^" * width]


class SmqlError(Exception):
    """Root of the SMQL errors. `str()` is the rendered diagnostics."""

    def __init__(self, diagnostics: Sequence[Diagnostic], source: str | None = None) -> None:
        self.diagnostics = tuple(diagnostics)
        self.source = source
        super().__init__(render_all(self.diagnostics, source))

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)


class SmqlSyntaxError(SmqlError):
    """The text is not valid SMQL."""


class SmqlCheckError(SmqlError):
    """The program parses but has semantic errors (all of them are in `diagnostics`)."""


class TemplateError(SmqlError):
    """A `${VAR}` template is malformed or names a variable that is not set."""


class LineIndex:
    """Turns character offsets into 1-based (line, column) pairs, and ranges into Spans."""

    def __init__(self, source: str) -> None:
        self._starts = [0]
        self._starts.extend(i + 1 for i, char in enumerate(source) if char == "\n")

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._starts, offset) - 1
        return line + 1, offset - self._starts[line] + 1

    def span(self, start: int, end: int) -> Span:
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(start, end, line, column, end_line, end_column)
