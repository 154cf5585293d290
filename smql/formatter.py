"""The canonical formatter of SMQL (`stratum fmt`).

The canonical style:

* Keywords are UPPERCASE. Identifiers keep the quotes they were written with; strings are
  single-quoted with `''` doubling; integers are decimal; CAST types are lowercase
  (`numeric(20,0)`, `text[]`).
* Known value words are normalised: MODE, ON ERROR, DIALECT, file FORMAT and HEADER true/false in
  lowercase; EXPECT actions, window units and ZERO DATES AS NULL/ERROR in uppercase. Unknown words
  and SET values are printed as written; unquoted setting names are lowercase.
* CONNECTION, SET and ENTITY take one line each. A migration item is a header line followed by its
  clauses, one per line, indented two spaces, in the order written; `;` ends the last line.
* `FEATURES` and `DATASET` print `FROM ... TIMESTAMP ...` on the line after their header, as a
  clause; a DATASET's `FEATURES (...)` follows it as a list clause.
* A list clause (KEY, COLUMNS, AFTER, INCLUDING/EXCLUDING TABLES, INCLUDING VIEWS, COMPUTE, CAST,
  a DATASET's FEATURES) stays on one line when it fits in 100 columns and holds no comment;
  otherwise it takes one element per line, indented four spaces (the parenthesised ones close
  with `)` on a line of its own).
* `STAGE dst AS <query>` keeps a one-line query on the `AS` line when that line fits in 100
  columns, and otherwise prints the query on the following lines, indented two spaces. With
  clauses, `AS` starts a line of its own after them. A multi-line `MIGRATE QUERY` query is printed
  as a block between `(` and `) INTO dst`.
* Embedded SQL is printed verbatim; only the leading indentation of its continuation lines is
  changed, keeping their relative indentation, two spaces deeper than the line the SQL starts on
  (nothing changes when a continuation line starts inside a quoted string).
* Every comment is kept, unchanged and in order. A comment written after code on its line is
  appended to the output line that prints that code; any other comment takes a line of its own,
  before the output line that prints the code following it.
* Statements are separated by one blank line where the source had at least one, otherwise by
  none; likewise before comments between statements. No trailing whitespace, one final newline.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from smql import syntax as s
from smql.parser import parse
from smql.semantics import WINDOW_UNITS, ExpectAction, FileFormat, Mode, OnError
from smql.sql import dialect_names

__all__ = ["format_program", "format_source"]

WIDTH = 100
INDENT = 2

_MODES = frozenset(Mode)
_ON_ERRORS = frozenset(OnError)
_EXPECT_ACTIONS = frozenset(ExpectAction)
_FILE_FORMATS = frozenset(FileFormat)
_WINDOW_UNITS = frozenset(WINDOW_UNITS)
_ZERO_DATES_WORDS = frozenset({"null", "error"})
_BOOLEANS = frozenset({"true", "false"})
_QUOTES = frozenset({"'", '"', "`"})


def format_source(source: str, path: str = "<string>") -> str:
    """Parse SMQL text and return it in canonical style. Raises SmqlSyntaxError."""
    return format_program(parse(source, path))


def format_program(program: s.Program) -> str:
    """Print a parsed program in canonical style, keeping every comment."""
    return _Formatter(program).format()


# ---------------------------------------------------------------------------------------------
# Output lines


@dataclass(slots=True)
class _Line:
    """One output line (its text may hold newlines: multi-line SQL or strings).

    `anchor` and `end` are the source offsets of the first and last code it prints; comments are
    placed by them. `statement_start` is set on the first line of a statement.
    """

    indent: int
    text: str
    anchor: int
    end: int
    statement_start: int | None = None
    before: list[s.Comment] = field(default_factory=list)
    after: list[s.Comment] = field(default_factory=list)


#: An element of a list clause: its source start and end, and its text given the indentation
#: its SQL continuation lines take.
_Element: TypeAlias = tuple[int, int, Callable[[int], str]]


def _fits(indent: int, text: str, extra: int = 0) -> bool:
    return "\n" not in text and indent + len(text) + extra <= WIDTH


# ---------------------------------------------------------------------------------------------
# Literals and words


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _value(value: s.Value) -> str:
    if isinstance(value, s.StringLit):
        return _string(value.value)
    if isinstance(value, s.IntLit):
        return str(value.value)
    return value.value


def _known(ident: s.Ident, known: frozenset[str], upper: bool) -> str:
    """A value word: in canonical case when it is a known word, as written otherwise."""
    word = ident.name.lower()
    if ident.quoted or word not in known:
        return ident.sql
    return word.upper() if upper else word


def _known_value(value: s.Value | None, known: frozenset[str], upper: bool) -> str:
    if isinstance(value, s.WordLit) and value.value.lower() in known:
        word = value.value.lower()
        return word.upper() if upper else word
    return "" if value is None else _value(value)


def _lower_name(ident: s.Ident) -> str:
    return ident.sql if ident.quoted else ident.name.lower()


def _upper_name(ident: s.Ident) -> str:
    return ident.sql if ident.quoted else ident.name.upper()


def _file_option(option: s.FileOption) -> str:
    key = option.name.name.lower()
    if key == "format":
        value = _known_value(option.value, _FILE_FORMATS, upper=False)
    elif key == "header":
        value = _known_value(option.value, _BOOLEANS, upper=False)
    else:
        value = "" if option.value is None else _value(option.value)
    name = _upper_name(option.name)
    return f"{name} {value}" if value else name


def _column(column: s.Column) -> str:
    return column.name.sql + (f" AS {column.alias.sql}" if column.alias else "")


def _cast_rule(rule: s.CastRule) -> str:
    if isinstance(rule, s.CastType):
        return f"TYPE {rule.source.text} TO {rule.target.text}"
    return f"COLUMN {rule.column.text} TO {rule.target.text}"


# ---------------------------------------------------------------------------------------------
# Embedded SQL


def _scan_sql(text: str) -> tuple[list[bool], list[bool], str]:
    """For each line of `text`: whether it starts, and whether it ends, inside a quoted string or
    identifier; and the state at the end of the text ('' or the open quote, '--' or '/*')."""
    starts, ends = [False], []
    state = ""
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\n":
            ends.append(state in _QUOTES)
            state = "" if state == "--" else state
            starts.append(state in _QUOTES)
        elif state == "":
            if char in _QUOTES:
                state = char
            elif text.startswith(("--", "/*"), i):
                state = text[i : i + 2]
                i += 1
        elif state == "/*":
            if text.startswith("*/", i):
                state = ""
                i += 1
        elif state != "--" and char == state:
            state = ""
        i += 1
    ends.append(state in _QUOTES)
    return starts, ends, state


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip())


def _reindent_sql(text: str, indent: int, first_column: int | None = None) -> str:
    """Re-indent the continuation lines of a piece of SQL.

    Each non-blank continuation line is printed at `indent` plus its indentation beyond the
    smallest one among them (and `first_column`, the first line's original column, when the SQL
    is printed starting a line of its own). Blank lines become empty. When a continuation line
    starts inside a quoted string the lines keep their indentation; trailing whitespace is dropped
    except inside strings.
    """
    lines = text.split("\n")
    starts, ends, _ = _scan_sql(text)
    if any(starts):
        return "\n".join(line if ends[k] else line.rstrip() for k, line in enumerate(lines))
    widths = [_indent_width(line) for line in lines[1:] if line.strip()]
    if first_column is not None:
        widths.append(first_column)
    base = min(widths, default=0)
    out = [lines[0] if ends[0] else lines[0].rstrip()]
    for k, line in enumerate(lines[1:], start=1):
        if not line.strip():
            out.append("")
            continue
        body = line.lstrip() if ends[k] else line.strip()
        out.append(" " * (indent + _indent_width(line) - base) + body)
    return "\n".join(out)


def _ends_in_line_comment(text: str) -> bool:
    return _scan_sql(text)[2] == "--"


# ---------------------------------------------------------------------------------------------
# The formatter


class _Formatter:
    """Prints one program: statements become output lines, then comments are placed on them."""

    def __init__(self, program: s.Program) -> None:
        self.source = program.source
        self.statements = program.statements
        self.comments = sorted(program.comments, key=lambda c: c.span.start)
        self._comment_starts = [c.span.start for c in self.comments]
        self._end_of_comment = {c.span.start: c.span.end for c in self.comments}
        self._start_of_comment = {c.span.start + len(c.text): c.span.start for c in self.comments}

    def format(self) -> str:
        lines = [line for statement in self.statements for line in self._statement(statement)]
        eof = self._place_comments(lines)
        out: list[str] = []
        for line in lines:
            self._emit(out, line)
        for comment in eof:
            self._add(out, comment.text, self._blank_before(comment.span.start))
        return "\n".join(out) + "\n" if out else ""

    # --- source positions

    def _code_after(self, pos: int) -> int:
        """Offset of the first code character at or after `pos` (skipping space and comments)."""
        while pos < len(self.source):
            if self.source[pos].isspace():
                pos += 1
            elif pos in self._end_of_comment:
                pos = self._end_of_comment[pos]
            else:
                return pos
        return pos

    def _code_before(self, pos: int) -> int:
        """Offset just past the last code character before `pos`."""
        while pos > 0:
            if self.source[pos - 1].isspace():
                pos -= 1
            elif pos in self._start_of_comment:
                pos = self._start_of_comment[pos]
            else:
                return pos
        return pos

    def _is_trailing(self, comment: s.Comment) -> bool:
        """Whether code comes before the comment on its source line."""
        pos = comment.span.start
        while pos > 0:
            char = self.source[pos - 1]
            if char == "\n":
                return False
            if char.isspace():
                pos -= 1
            elif pos in self._start_of_comment:
                start = self._start_of_comment[pos]
                if "\n" in self.source[start:pos]:
                    return False
                pos = start
            else:
                return True
        return False

    def _blank_before(self, pos: int) -> bool:
        """Whether a blank line comes right before `pos` in the source."""
        newlines = 0
        while pos > 0 and self.source[pos - 1].isspace():
            pos -= 1
            newlines += self.source[pos] == "\n"
        return newlines >= 2

    def _has_comment(self, start: int, end: int) -> bool:
        k = bisect.bisect_left(self._comment_starts, start)
        return k < len(self._comment_starts) and self._comment_starts[k] < end

    def _own_line_column(self, pos: int) -> int | None:
        """The column of `pos` when only whitespace precedes it on its source line."""
        line_start = self.source.rfind("\n", 0, pos) + 1
        prefix = self.source[line_start:pos]
        return None if prefix.strip() else len(prefix)

    def _sql(self, sql: s.SqlText, indent: int, own_line: bool = False) -> str:
        first_column = self._own_line_column(sql.span.start) if own_line else None
        return _reindent_sql(sql.text, indent, first_column)

    # --- statements

    def _statement(self, statement: s.Statement) -> list[_Line]:
        start, end = statement.span.start, statement.span.end
        if isinstance(statement, s.Connection):
            text = f"CONNECTION {statement.name.sql} = {_string(statement.url.value)}"
            lines = [_Line(0, text, start, end)]
        elif isinstance(statement, s.SetStatement):
            settings = ", ".join(
                f"{_lower_name(setting.name)} = {_value(setting.value)}"
                for setting in statement.settings
            )
            lines = [_Line(0, f"SET {settings}", start, end)]
        elif isinstance(statement, s.Entity):
            keys = ", ".join(key.sql for key in statement.keys)
            lines = [_Line(0, f"ENTITY {statement.name.sql} KEY ({keys})", start, end)]
        else:
            lines = self._item(statement)
        lines[0].statement_start = start
        lines[-1].text += ";"
        lines[-1].end = end
        return lines

    def _item(self, item: s.ItemStatement) -> list[_Line]:
        if isinstance(item, s.StageQuery):
            return self._stage_query(item)
        if isinstance(item, s.Features):
            head = self._features_head(item)
        elif isinstance(item, s.Dataset):
            head = self._dataset_head(item)
        elif isinstance(item, s.MigrateQuery):
            head = [self._migrate_query_head(item)]
        else:
            text = self._header_text(item)
            head = [_Line(0, text, item.span.start, _header_end(item))]
            extra = 0 if item.options else 1
            if isinstance(item, s.MigrateFile) and item.file_options and not _fits(0, text, extra):
                head = self._migrate_file_head(item)
        return head + self._clauses(item.options, last=True)

    def _migrate_file_head(self, item: s.MigrateFile) -> list[_Line]:
        """A MIGRATE FILE header too long for one line: one file option per line."""
        options = item.file_options
        lines = [
            _Line(
                0, f"MIGRATE FILE {_string(item.path.value)} (", item.span.start, item.path.span.end
            )
        ]
        for k, option in enumerate(options):
            comma = "," if k < len(options) - 1 else ""
            lines.append(
                _Line(INDENT, _file_option(option) + comma, option.span.start, option.span.end)
            )
        into = self._code_before(item.target.span.start) - len("INTO")
        close_paren = self._code_before(into) - 1  # comments before it stay with the options
        lines.append(_Line(0, f") INTO {item.target.text}", close_paren, item.target.span.end))
        return lines

    def _header_text(
        self, item: s.MigrateTable | s.MigrateDatabase | s.MigrateFile | s.StageFrom
    ) -> str:
        if isinstance(item, s.MigrateTable):
            table = "TABLE " if item.table_keyword else ""
            return f"MIGRATE {table}{item.source.text} INTO {item.target.text}"
        if isinstance(item, s.MigrateDatabase):
            return f"MIGRATE DATABASE {item.source.text} INTO {item.target.text}"
        if isinstance(item, s.MigrateFile):
            options = ", ".join(_file_option(option) for option in item.file_options)
            options = f" ({options})" if options else ""
            return f"MIGRATE FILE {_string(item.path.value)}{options} INTO {item.target.text}"
        return f"STAGE {item.target.text} FROM {item.input.text}"

    def _migrate_query_head(self, item: s.MigrateQuery) -> _Line:
        head = f"MIGRATE QUERY {item.connection.sql} ("
        tail = f") INTO {item.target.text}"
        query = item.query.text
        inline = head + query + tail
        extra = 0 if item.options else 1
        if _fits(0, inline, extra) and not _ends_in_line_comment(query):
            text = inline
        else:
            query = self._sql(item.query, INDENT, own_line=True)
            text = f"{head}\n{' ' * INDENT}{query}\n{tail}"
        return _Line(0, text, item.span.start, item.target.span.end)

    def _stage_query(self, item: s.StageQuery) -> list[_Line]:
        query = item.query
        as_end = self._code_before(query.span.start)
        head = f"STAGE {item.target.text}"
        if item.options:
            lines = [_Line(0, head, item.span.start, item.target.span.end)]
            lines += self._clauses(item.options, last=False)
            as_line = _Line(0, "AS", as_end - 2, as_end)
        else:
            lines = []
            as_line = _Line(0, f"{head} AS", item.span.start, as_end)
        one_line = f"{as_line.text} {query.text}"
        if _fits(0, one_line, 1) and not self._has_comment(as_end, query.span.start):
            as_line.text, as_line.end = one_line, query.span.end
            return [*lines, as_line]
        body = _Line(
            INDENT, self._sql(query, INDENT, own_line=True), query.span.start, query.span.end
        )
        return [*lines, as_line, body]

    def _features_head(self, item: s.Features) -> list[_Line]:
        head = f"FEATURES {item.target.text} ON {item.entity.sql}"
        open_paren = self._code_after(item.timestamp.span.end)
        source = f"FROM {item.input.text} TIMESTAMP {item.timestamp.sql} ("
        lines = [
            _Line(0, head, item.span.start, item.entity.span.end),
            _Line(INDENT, source, self._code_after(item.entity.span.end), open_paren + 1),
        ]
        for k, feature in enumerate(item.features):
            text = f"{feature.name.sql} = {self._sql(feature.expr, 3 * INDENT)}"
            if feature.window is not None:
                unit = _known(feature.window.unit, _WINDOW_UNITS, upper=True)
                text += f" OVER {feature.window.amount.value} {unit}"
            text += "," if k < len(item.features) - 1 else ""
            lines.append(_Line(2 * INDENT, text, feature.span.start, feature.span.end))
        close = self._code_after(item.features[-1].span.end)
        lines.append(_Line(INDENT, ")", close, close + 1))
        return lines

    def _dataset_head(self, item: s.Dataset) -> list[_Line]:
        spine = f"FROM {item.spine.text} TIMESTAMP {item.timestamp.sql}"
        lines = [
            _Line(0, f"DATASET {item.target.text}", item.span.start, item.target.span.end),
            _Line(INDENT, spine, self._code_after(item.target.span.end), item.timestamp.span.end),
        ]
        tables = [_text_element(table.span, table.text) for table in item.features]
        span = item.features_span
        extra = 0 if item.options else 1
        return lines + self._paren_list(span.start, span.end, "FEATURES", tables, extra)

    # --- clauses

    def _clauses(self, options: Sequence[s.Option], last: bool) -> list[_Line]:
        lines: list[_Line] = []
        for k, option in enumerate(options):
            extra = 1 if last and k == len(options) - 1 else 0
            lines += self._clause(option, extra)
        return lines

    def _clause(self, option: s.Option, extra: int) -> list[_Line]:
        """The lines of one clause; `extra` is the width of what follows it on its last line."""
        start, end = option.span.start, option.span.end
        if isinstance(option, s.KeyOption):
            elements = [_ident_element(c) for c in option.columns]
            return self._paren_list(start, end, "KEY", elements, extra)
        if isinstance(option, s.ColumnsOption):
            elements = [_text_element(c.span, _column(c)) for c in option.columns]
            return self._paren_list(start, end, "COLUMNS", elements, extra)
        if isinstance(option, s.AfterOption):
            elements = [_text_element(d.span, d.text) for d in option.items]
            return self._paren_list(start, end, "AFTER", elements, extra)
        if isinstance(option, s.IncludingOption | s.ExcludingOption | s.IncludingViewsOption):
            elements = [_text_element(p.span, _string(p.value)) for p in option.patterns]
            keyword = s.OPTION_KEYWORDS[type(option)]
            return self._paren_list(start, end, keyword, elements, extra)
        if isinstance(option, s.ComputeOption):
            elements = [self._computed_element(c) for c in option.columns]
            return self._plain_list(option, "COMPUTE", elements, extra)
        if isinstance(option, s.CastOption):
            elements = [_text_element(r.span, _cast_rule(r)) for r in option.rules]
            return self._plain_list(option, "CAST", elements, extra)
        return [_Line(INDENT, self._clause_text(option), option.span.start, option.span.end)]

    def _clause_text(self, option: s.Option) -> str:
        """A clause that always takes one line (its SQL may still span several)."""
        sql_indent = 2 * INDENT
        if isinstance(option, s.ModeOption):
            return f"MODE {_known(option.value, _MODES, upper=False)}"
        if isinstance(option, s.CursorOption):
            return f"CURSOR {option.column.sql}"
        if isinstance(option, s.WhereOption):
            return f"WHERE {self._sql(option.condition, sql_indent)}"
        if isinstance(option, s.BatchSizeOption):
            return f"BATCH SIZE {option.value.value}"
        if isinstance(option, s.PartitionsOption):
            return f"PARTITIONS {option.value.value}"
        if isinstance(option, s.OnErrorOption):
            return f"ON ERROR {_known(option.value, _ON_ERRORS, upper=False)}"
        if isinstance(option, s.ZeroDatesOption):
            return f"ZERO DATES AS {_known_value(option.value, _ZERO_DATES_WORDS, upper=True)}"
        if isinstance(option, s.NameOption):
            return f"NAME {option.value.text}"
        if isinstance(option, s.DialectOption):
            return f"DIALECT {_known(option.value, _dialects(), upper=False)}"
        if isinstance(option, s.DeduplicateOption):
            text = f"DEDUPLICATE ON ({', '.join(c.sql for c in option.columns)})"
            if option.order_by:
                terms = ", ".join(self._sql(term, sql_indent) for term in option.order_by)
                text += f" ORDER BY {terms}"
            return text
        if isinstance(option, s.ExpectOption):
            action = _known(option.action, _EXPECT_ACTIONS, upper=True)
            return f"EXPECT {self._sql(option.condition, sql_indent)} ELSE {action}"
        raise TypeError(f"not a one-line clause: {type(option).__name__}")

    def _computed_element(self, computed: s.Computed) -> _Element:
        def text(indent: int) -> str:
            return f"{computed.name.sql} = {self._sql(computed.expr, indent)}"

        return computed.span.start, computed.span.end, text

    def _paren_list(
        self, start: int, end: int, keyword: str, elements: list[_Element], extra: int
    ) -> list[_Line]:
        """`KEY (a, b)`, or one element per line between `KEY (` and `)` when the line is too
        long or a comment stands between the parentheses. `start` and `end` are the source
        offsets of the clause (its keyword to its `)`)."""
        open_paren = self._code_before(elements[0][0]) - 1
        inline = f"{keyword} ({', '.join(text(2 * INDENT) for _, _, text in elements)})"
        if _fits(INDENT, inline, extra) and not self._has_comment(open_paren, end):
            return [_Line(INDENT, inline, start, end)]
        lines = [_Line(INDENT, f"{keyword} (", start, open_paren + 1)]
        for k, (first, last, text) in enumerate(elements):
            comma = "," if k < len(elements) - 1 else ""
            lines.append(_Line(2 * INDENT, text(3 * INDENT) + comma, first, last))
        lines.append(_Line(INDENT, ")", end - 1, end))
        return lines

    def _plain_list(
        self, option: s.Option, keyword: str, elements: list[_Element], extra: int
    ) -> list[_Line]:
        """`COMPUTE a = x, b = y`, or `COMPUTE a = x,` then one element per line when the line
        is too long or a comment stands between the elements (a comment before the end of the
        first one is not counted: it stays on the first line either way)."""
        start, end = option.span.start, option.span.end
        inline = f"{keyword} {', '.join(text(2 * INDENT) for _, _, text in elements)}"
        between = self._has_comment(elements[0][1], elements[-1][0])
        if _fits(INDENT, inline, extra) and not between:
            return [_Line(INDENT, inline, start, end)]
        lines = []
        for k, (first, last, text) in enumerate(elements):
            comma = "," if k < len(elements) - 1 else ""
            if k == 0:
                lines.append(_Line(INDENT, f"{keyword} {text(2 * INDENT)}{comma}", start, last))
            else:
                lines.append(_Line(2 * INDENT, text(3 * INDENT) + comma, first, last))
        return lines

    # --- comments

    def _place_comments(self, lines: list[_Line]) -> list[s.Comment]:
        """Attach each comment to a line (after its code, or on its own line before it); return
        the comments that go at the end of the file.

        Trailing comments go to the last line whose code starts before them, own-line comments
        before the first line that prints code after them. Slots (before line j = 2j, after line
        j = 2j + 1) never go backwards, so comments keep their order.
        """
        anchors = [line.anchor for line in lines]
        ends: list[int] = []
        for line in lines:
            ends.append(max(line.end, ends[-1]) if ends else line.end)
        eof: list[s.Comment] = []
        previous = 0
        for comment in self.comments:
            pos = comment.span.start
            trailing = self._is_trailing(comment)
            index = bisect.bisect_right(anchors, pos) - 1
            if trailing and index >= 0:
                slot = max(2 * index + 1, previous)
                if slot % 2 and not _can_follow(lines[slot // 2].after, comment):
                    slot += 1
            else:
                slot = max(2 * bisect.bisect_right(ends, pos), previous)
                slot += slot % 2
            previous = slot
            if slot // 2 == len(lines):
                eof.append(comment)
            elif slot % 2:
                lines[slot // 2].after.append(comment)
            else:
                lines[slot // 2].before.append(comment)
        return eof

    def _emit(self, out: list[str], line: _Line) -> None:
        statement_start = line.statement_start
        blank = statement_start is not None and self._blank_before(statement_start)
        for comment in line.before:
            pos = comment.span.start
            if statement_start is None:
                comment_blank = False
            elif pos < statement_start:
                comment_blank = self._blank_before(pos)
            else:  # moved here from inside the statement: the statement's blank line comes first
                comment_blank, blank = blank, False
            self._add(out, " " * line.indent + comment.text, comment_blank)
        text = " " * line.indent + line.text
        if line.after:
            text += "  " + "  ".join(comment.text for comment in line.after)
        self._add(out, text, blank)

    @staticmethod
    def _add(out: list[str], text: str, blank: bool) -> None:
        if blank and out:
            out.append("")
        out.append(text)


def _can_follow(trailing: list[s.Comment], comment: s.Comment) -> bool:
    """Whether `comment` may be appended after the trailing comments already on a line: never
    after a `--` comment, which would swallow it, nor after a multi-line block comment."""
    if not trailing:
        return True
    last = trailing[-1].text
    return not last.startswith("--") and "\n" not in last


def _header_end(item: s.ItemStatement) -> int:
    return item.target.span.end if not isinstance(item, s.StageFrom) else item.input.span.end


def _ident_element(ident: s.Ident) -> _Element:
    return _text_element(ident.span, ident.sql)


def _text_element(span: s.Span, text: str) -> _Element:
    return span.start, span.end, lambda _indent: text


def _dialects() -> frozenset[str]:
    return frozenset(dialect_names())
