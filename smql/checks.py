"""Semantic checks that need no connection. Every problem in a file is reported, in source order.

Errors: unknown or duplicate connections, entities, items and targets; clauses a statement does
not take, given twice, or in conflict (incremental without CURSOR, upsert without KEY, an
incremental stage without a key); feature tables a DATASET names that no FEATURES item writes;
invalid values; embedded SQL that sqlglot cannot parse, at its position in the file; dependency
cycles.
Warnings: passwords written inline, `${VAR}`s not set in the environment given.
"""

from __future__ import annotations

import codecs
import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath

from sqlglot import exp

from smql import syntax as s
from smql.diagnostics import Diagnostic, LineIndex, Note, Severity, sort_diagnostics
from smql.semantics import (
    ALLOWED_MODES,
    ALLOWED_OPTIONS,
    FEATURE_AGGREGATES,
    FILE_EXTENSIONS,
    REPEATABLE_OPTIONS,
    SETTINGS,
    WINDOW_UNITS,
    ExpectAction,
    FileFormat,
    ItemInfo,
    Mode,
    OnError,
    ValueKind,
    dependency_edges,
    find_cycles,
    items_of,
    mode_choice,
    option,
    settings_of,
)
from smql.sql import SqlKind, SqlProblem, dialect_names, parse_sql
from smql.templates import inline_password, scan

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)?\Z")
_CSV_OPTIONS = ("header", "delimiter", "quote", "escape", "null", "encoding")
FILE_OPTIONS = ("format", *_CSV_OPTIONS)
_EXAMPLES = {
    "delimiter": "';'",
    "quote": "'\"'",
    "escape": "'\\'",
    "null": "''",
    "encoding": "'utf-8'",
}


def check(program: s.Program, env: Mapping[str, str] | None = None) -> list[Diagnostic]:
    """All diagnostics for the program. With `env`, also warn about unset `${VAR}`s."""
    checker = _Checker(program, env)
    checker.run()
    return sort_diagnostics(checker.diagnostics)


def suggestion(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or ''."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    matches = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[matches[0]]}'?)" if matches else ""


def _one_of(choices: Sequence[str]) -> str:
    quoted = [f"{c}" for c in choices]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]


class _Checker:
    def __init__(self, program: s.Program, env: Mapping[str, str] | None) -> None:
        self.program = program
        self.env = env
        self.diagnostics: list[Diagnostic] = []
        self.connections: dict[str, s.Connection] = {}
        self.entities: dict[str, s.Entity] = {}
        self.dialects = set(dialect_names())
        self.settings = settings_of(program)
        self.index = LineIndex(program.source)

    # --- reporting

    def error(self, message: str, span: s.Span | None, *notes: Note) -> None:
        self.diagnostics.append(
            Diagnostic(Severity.ERROR, message, self.program.path, span, tuple(notes))
        )

    def warning(self, message: str, span: s.Span | None, *notes: Note) -> None:
        self.diagnostics.append(
            Diagnostic(Severity.WARNING, message, self.program.path, span, tuple(notes))
        )

    # --- the passes

    def run(self) -> None:
        for statement in self.program.statements:
            if isinstance(statement, s.Connection):
                self._connection(statement)
            elif isinstance(statement, s.Entity):
                self._entity(statement)
        self._settings()
        items = items_of(self.program)
        for item in items:
            self._item(item)
        self._names_and_targets(items)
        self._datasets(items)
        self._graph(items)

    def _connection(self, conn: s.Connection) -> None:
        name = conn.name.name
        if name in self.connections:
            first = self.connections[name]
            self.error(
                f"connection '{name}' is defined twice",
                conn.name.span,
                Note("first defined here", first.name.span),
            )
            return
        self.connections[name] = conn
        template = conn.url.value
        if not template.strip():
            self.error(f"connection '{name}' has an empty URL", conn.url.span)
            return
        refs, problems = scan(template)
        for problem in problems:
            self.error(problem.message, self._in_string(conn.url, problem.start, problem.end))
        if not refs and "://" not in template and ":" not in template:
            self.error(
                f"connection '{name}' is not a URL (expected scheme://..., e.g. "
                "'postgresql://user@host/db')",
                conn.url.span,
            )
        secret = inline_password(template)
        if secret:
            self.warning(
                f"connection '{name}' has a password written inline; use ${{VAR}} so it "
                "stays out of version control",
                self._in_string(conn.url, *secret),
            )
        if self.env is not None:
            for ref in refs:
                if ref.default is None and ref.name not in self.env:
                    self.warning(
                        f"environment variable {ref.name} is not set; connection '{name}' "
                        "cannot be opened without it",
                        self._in_string(conn.url, ref.start, ref.end),
                    )

    def _in_string(self, lit: s.StringLit, start: int, end: int) -> s.Span:
        """The span of value[start:end] inside a string literal (accounting for '' escapes)."""
        raw = self.program.source[lit.span.start : lit.span.end]
        offsets = []  # offsets[k]: where value character k starts inside the literal
        i = 1
        while i < len(raw) - 1:
            offsets.append(i)
            i += 2 if raw[i] == "'" else 1
        offsets.append(len(raw) - 1)
        a = lit.span.start + offsets[min(start, len(offsets) - 1)]
        b = lit.span.start + offsets[min(end, len(offsets) - 1)]
        return self.index.span(a, max(b, a + 1))

    def _entity(self, entity: s.Entity) -> None:
        name = entity.name.name
        if name in self.entities:
            self.error(
                f"entity '{name}' is defined twice",
                entity.name.span,
                Note("first defined here", self.entities[name].name.span),
            )
            return
        self.entities[name] = entity
        self._unique_idents(entity.keys, "key column")

    def _settings(self) -> None:
        seen: dict[str, s.Setting] = {}
        for statement in self.program.statements:
            if not isinstance(statement, s.SetStatement):
                continue
            for setting in statement.settings:
                key = setting.name.name.lower()
                spec = SETTINGS.get(key)
                if spec is None:
                    self.error(
                        f"unknown setting '{setting.name.name}'{suggestion(key, SETTINGS)}; "
                        f"settings are {_one_of(sorted(SETTINGS))}",
                        setting.name.span,
                    )
                    continue
                if key in seen:
                    self.error(
                        f"setting '{key}' is set twice",
                        setting.name.span,
                        Note("first set here", seen[key].name.span),
                    )
                    continue
                seen[key] = setting
                self._setting_value(key, spec.kind, spec.choices, spec.maximum, setting.value)

    def _setting_value(
        self,
        key: str,
        kind: ValueKind,
        choices: tuple[str, ...],
        maximum: int | None,
        value: s.Value,
    ) -> None:
        if kind is ValueKind.POSITIVE_INT:
            self._positive(value, key, maximum)
        elif kind is ValueKind.CHOICE:
            self._choice(value, choices, key)
        elif kind is ValueKind.DIALECT:
            self._dialect(value, key)
        else:
            self._zero_dates(value)

    # --- value checks

    def _word(self, value: s.Value | s.Ident) -> str | None:
        if isinstance(value, s.Ident):
            return value.name
        if isinstance(value, s.StringLit | s.WordLit):
            return value.value
        return None

    def _choice(self, value: s.Value | s.Ident, choices: Sequence[str], what: str) -> bool:
        word = self._word(value)
        if word is not None and word.lower() in choices:
            return True
        shown = word if word is not None else str(getattr(value, "value", ""))
        hint = suggestion(shown, choices) if word is not None else ""
        self.error(f"invalid {what} '{shown}': expected {_one_of(choices)}{hint}", value.span)
        return False

    def _positive(self, value: s.Value, what: str, maximum: int | None) -> None:
        if not isinstance(value, s.IntLit):
            self.error(f"{what} must be a whole number, not '{self._word(value)}'", value.span)
        elif value.value < 1:
            self.error(f"{what} must be at least 1, not {value.value}", value.span)
        elif maximum is not None and value.value > maximum:
            self.error(f"{what} must be at most {maximum:,}, not {value.value:,}", value.span)

    def _dialect(self, value: s.Value | s.Ident, what: str = "dialect") -> bool:
        word = self._word(value)
        if word is not None and word.lower() in self.dialects:
            return True
        self.error(
            f"unknown SQL {what} '{word}'{suggestion(word or '', self.dialects)}; "
            "see sqlglot's dialects (postgres, mysql, duckdb, ...)",
            value.span,
        )
        return False

    def _zero_dates(self, value: s.Value) -> None:
        if isinstance(value, s.WordLit) and value.value.lower() in ("null", "error"):
            return
        if isinstance(value, s.StringLit):
            if value.value.lower() in ("null", "error") or _DATE.match(value.value):
                return
            self.error(
                f"ZERO DATES sentinel '{value.value}' is not a date (YYYY-MM-DD[ HH:MM:SS])",
                value.span,
            )
            return
        self.error("ZERO DATES expects NULL, ERROR or a date string like '1970-01-01'", value.span)

    # --- items

    def _item(self, item: ItemInfo) -> None:
        st = item.statement
        self._refs(st)
        self._options(st)
        mode = self._mode(st)
        self._conflicts(st, mode)
        dialect = option(st, s.DialectOption)
        if isinstance(dialect, s.DialectOption):
            self._dialect(dialect.value)
        # with an unknown dialect (reported once, where it is named) the SQL cannot be read
        sql_dialect = item.dialect if item.dialect in self.dialects else None
        if sql_dialect is not None:
            self._embedded_sql(st, sql_dialect)
        self._columns(st)
        self._casts(st)
        if isinstance(st, s.MigrateFile):
            self._file(st)
        if isinstance(st, s.Features):
            self._features(st, sql_dialect)
        if isinstance(st, s.StageFrom | s.Features):
            self._streaming_options(st)
        if isinstance(st, s.MigrateDatabase):
            for opt in st.options:
                if isinstance(opt, s.IncludingOption | s.ExcludingOption | s.IncludingViewsOption):
                    what = "view" if isinstance(opt, s.IncludingViewsOption) else "table"
                    for pattern in opt.patterns:
                        if not pattern.value:
                            self.error(f"an empty {what} pattern matches nothing", pattern.span)

    def _refs(self, st: s.ItemStatement) -> None:
        database = isinstance(st, s.MigrateDatabase)
        refs: list[tuple[s.Dotted, str]] = [(st.target, "target")]
        if isinstance(st, s.MigrateTable | s.MigrateDatabase):
            refs.append((st.source, "source"))
        elif isinstance(st, s.StageFrom | s.Features):
            refs.append((st.input, "input"))
        elif isinstance(st, s.Dataset):
            refs.append((st.spine, "spine"))
        elif isinstance(st, s.MigrateQuery):
            self._connection_name(st.connection)
        for dotted, role in refs:
            parts = len(dotted.parts)
            if database and not 1 <= parts <= 2:
                self.error(
                    f"a database {role} is 'connection' or 'connection.schema', not "
                    f"'{dotted.text}'",
                    dotted.span,
                )
            elif not database and not 2 <= parts <= 3:
                self.error(
                    f"a table {role} is 'connection.table' or 'connection.schema.table', not "
                    f"'{dotted.text}'",
                    dotted.span,
                )
            self._connection_name(dotted.parts[0])
        if isinstance(st, s.Dataset):
            read = [st.spine, *st.features]
        else:
            source = getattr(st, "source", None) or getattr(st, "input", None)
            read = [source] if isinstance(source, s.Dotted) else []
        if any(dotted.names == st.target.names for dotted in read):
            self.error(f"'{st.target.text}' is both read and written by this item", st.target.span)

    def _connection_name(self, ident: s.Ident) -> None:
        if ident.name not in self.connections:
            self.error(
                f"unknown connection '{ident.name}'{suggestion(ident.name, self.connections)}",
                ident.span,
            )

    def _options(self, st: s.ItemStatement) -> None:
        allowed = ALLOWED_OPTIONS[type(st)]
        seen: dict[type, s.Option] = {}
        what = _statement_words(st)
        for opt in st.options:
            keyword = s.OPTION_KEYWORDS[type(opt)]
            if type(opt) not in allowed:
                self.error(f"{keyword} does not apply to {what}", _head_span(opt, keyword))
                continue
            if type(opt) in seen and type(opt) not in REPEATABLE_OPTIONS:
                self.error(
                    f"{keyword} is given twice",
                    _head_span(opt, keyword),
                    Note("first given here", seen[type(opt)].span),
                )
                continue
            seen.setdefault(type(opt), opt)
            self._option_value(opt)

    def _option_value(self, opt: s.Option) -> None:
        if isinstance(opt, s.OnErrorOption):
            self._choice(opt.value, tuple(OnError), "ON ERROR action")
        elif isinstance(opt, s.BatchSizeOption):
            self._positive(opt.value, "BATCH SIZE", SETTINGS["batch_size"].maximum)
        elif isinstance(opt, s.PartitionsOption):
            self._positive(opt.value, "PARTITIONS", SETTINGS["partitions"].maximum)
        elif isinstance(opt, s.ZeroDatesOption):
            self._zero_dates(opt.value)
        elif isinstance(opt, s.ExpectOption):
            self._choice(opt.action, tuple(ExpectAction), "EXPECT action")
        elif isinstance(opt, s.KeyOption):
            self._unique_idents(opt.columns, "KEY column")
        elif isinstance(opt, s.DeduplicateOption):
            self._unique_idents(opt.columns, "DEDUPLICATE column")
        elif isinstance(opt, s.AfterOption):
            self._unique_names(opt.items, "AFTER item")

    def _mode(self, st: s.ItemStatement) -> Mode | None:
        """The item's effective mode, or None when it is invalid (and reported)."""
        allowed = ALLOWED_MODES[type(st)]
        word, span, from_set = mode_choice(st, self.settings)
        if word not in tuple(Mode):
            if not from_set:  # an invalid SET mode is reported once, at the SET
                self.error(
                    f"invalid MODE '{word}': expected {_one_of(tuple(Mode))}"
                    f"{suggestion(word, tuple(Mode))}",
                    span,
                )
            return None
        if word not in allowed:
            where = f"SET mode = {word}" if from_set else f"MODE {word}"
            self.error(
                f"{where} does not apply to {_statement_words(st)} (it takes "
                f"{_one_of(allowed)})" + ("; give this item its own MODE" if from_set else ""),
                st.target.span if from_set else span,
                *([Note("the default is set here", span)] if from_set else []),
            )
            return None
        return Mode(word)

    def _conflicts(self, st: s.ItemStatement, mode: Mode | None) -> None:
        takes = ALLOWED_OPTIONS[type(st)]  # a clause it does not take is reported already
        cursor = option(st, s.CursorOption) if s.CursorOption in takes else None
        key = option(st, s.KeyOption)
        mode_opt = option(st, s.ModeOption)
        where = mode_opt.span if mode_opt else _statement_head(st)
        stage = isinstance(st, s.StageFrom)
        if mode is Mode.INCREMENTAL and cursor is None:
            why = (
                ": an incremental stage processes the input rows past the CURSOR column's "
                "high-water mark; name that column"
                if stage
                else " (the value that grows with each change)"
            )
            self.error("MODE incremental needs a CURSOR column" + why, where)
        if mode is Mode.INCREMENTAL and stage and key is None:
            self._stage_merge_key(st, where)
        if (
            mode is Mode.UPSERT
            and key is None
            and not isinstance(st, s.MigrateDatabase)
            and s.KeyOption in ALLOWED_OPTIONS[type(st)]
        ):
            self.error("MODE upsert needs a KEY (the columns that identify a row)", where)
        if cursor is not None and mode is not None and mode is not Mode.INCREMENTAL:
            self.error(
                f"CURSOR only applies to MODE incremental (this item is MODE {mode.value})",
                _head_span(cursor, "CURSOR"),
            )

    def _streaming_options(self, st: s.StageFrom | s.Features) -> None:
        """BATCH SIZE and ON ERROR tune the copy that streams a stage's input in from another
        connection; a stage whose input is on its own connection runs as SQL there, where they
        would mean nothing (an option is never parsed and then ignored)."""
        home = st.target.parts[0].name
        if st.input.parts[0].name != home:
            return
        for opt in st.options:
            if isinstance(opt, s.BatchSizeOption | s.OnErrorOption):
                clause = "BATCH SIZE" if isinstance(opt, s.BatchSizeOption) else "ON ERROR"
                self.error(
                    f"{clause} tunes the copy that streams an input in from another connection; "
                    f"this item reads {st.input.text} inside '{home}', where it runs as SQL",
                    _head_span(opt, clause.split(maxsplit=1)[0]),
                )

    def _stage_merge_key(self, st: s.ItemStatement, where: s.Span) -> None:
        """An incremental stage without KEY merges new versions of a row into its target by its
        DEDUPLICATE ON columns: there must be some, and COLUMNS must keep them."""
        dedupe = option(st, s.DeduplicateOption)
        if not isinstance(dedupe, s.DeduplicateOption):
            self.error(
                "MODE incremental on a stage needs a key to merge new versions of a row into "
                "the target: DEDUPLICATE ON (...) or KEY (...)",
                where,
            )
            return
        columns = option(st, s.ColumnsOption)
        if not isinstance(columns, s.ColumnsOption):
            return
        kept = [column.name.name for column in columns.columns]
        for ident in dedupe.columns:
            if ident.name not in kept:
                self.error(
                    f"DEDUPLICATE column '{ident.name}' is not among the stage's COLUMNS"
                    f"{suggestion(ident.name, kept)}; MODE incremental merges new rows into the "
                    "target by it: keep it in COLUMNS or give a KEY (...)",
                    ident.span,
                )

    def _embedded_sql(self, st: s.ItemStatement, dialect: str) -> None:
        pieces: list[tuple[s.SqlText, SqlKind]] = []
        for opt in st.options:
            if isinstance(opt, s.WhereOption):
                pieces.append((opt.condition, SqlKind.EXPRESSION))
            elif isinstance(opt, s.ComputeOption):
                pieces.extend((c.expr, SqlKind.EXPRESSION) for c in opt.columns)
            elif isinstance(opt, s.ExpectOption):
                pieces.append((opt.condition, SqlKind.EXPRESSION))
            elif isinstance(opt, s.DeduplicateOption):
                pieces.extend((o, SqlKind.ORDERING) for o in opt.order_by)
        if isinstance(st, s.MigrateQuery | s.StageQuery):
            pieces.append((st.query, SqlKind.QUERY))
        for sql, kind in pieces:
            self._sql(sql, kind, dialect)

    def _sql(self, sql: s.SqlText, kind: SqlKind, dialect: str) -> exp.Expr | None:
        result = parse_sql(sql, kind, dialect)
        if isinstance(result, SqlProblem):
            self.error(result.message, self.index.span(result.start, result.end))
            return None
        return result

    def _columns(self, st: s.ItemStatement) -> None:
        outputs: dict[str, s.Span] = {}
        columns = option(st, s.ColumnsOption)
        if isinstance(columns, s.ColumnsOption):
            for column in columns.columns:
                self._output(outputs, column.output)
        for opt in st.options:
            if isinstance(opt, s.ComputeOption):
                for computed in opt.columns:
                    self._output(outputs, computed.name)
        if not isinstance(columns, s.ColumnsOption):
            return  # without COLUMNS every source column is kept: names are known at run time
        # a stage's CURSOR is a column of its input (rows past its high-water mark are read)
        cursor = None if isinstance(st, s.StageFrom) else option(st, s.CursorOption)
        for clause in (option(st, s.KeyOption), cursor):
            idents: tuple[s.Ident, ...] = ()
            if isinstance(clause, s.KeyOption):
                idents = clause.columns
            elif isinstance(clause, s.CursorOption):
                idents = (clause.column,)
            for ident in idents:
                if ident.name not in outputs:
                    keyword = s.OPTION_KEYWORDS[type(clause)]
                    self.error(
                        f"{keyword} column '{ident.name}' is not among the item's columns"
                        f"{suggestion(ident.name, outputs)} (name it as it is written to the "
                        "target)",
                        ident.span,
                    )

    def _casts(self, st: s.ItemStatement) -> None:
        database = isinstance(st, s.MigrateDatabase)
        for opt in st.options:
            if not isinstance(opt, s.CastOption):
                continue
            for rule in opt.rules:
                if isinstance(rule, s.CastType) and isinstance(st, s.MigrateFile):
                    self.error(
                        "CAST TYPE matches source column types, and a file has none; "
                        "use CAST COLUMN name TO type",
                        rule.span,
                    )
                elif isinstance(rule, s.CastColumn) and database and len(rule.column.parts) != 2:
                    self.error(
                        f"in MIGRATE DATABASE, CAST COLUMN names 'table.column', not "
                        f"'{rule.column.text}'",
                        rule.column.span,
                    )
                elif (
                    isinstance(rule, s.CastColumn) and not database and len(rule.column.parts) != 1
                ):
                    self.error(
                        f"CAST COLUMN names a column of this item, not '{rule.column.text}'",
                        rule.column.span,
                    )

    def _output(self, outputs: dict[str, s.Span], ident: s.Ident) -> None:
        if ident.name in outputs:
            self.error(
                f"column '{ident.name}' is produced twice",
                ident.span,
                Note("first produced here", outputs[ident.name]),
            )
        else:
            outputs[ident.name] = ident.span

    def _file(self, st: s.MigrateFile) -> None:
        seen: dict[str, s.FileOption] = {}
        fmt: FileFormat | None = None
        for fo in st.file_options:
            key = fo.name.name.lower()
            if key not in FILE_OPTIONS:
                self.error(
                    f"unknown file option '{fo.name.name}'"
                    f"{suggestion(key.upper(), [o.upper() for o in FILE_OPTIONS])}; "
                    f"file options are {_one_of([o.upper() for o in FILE_OPTIONS])}",
                    fo.name.span,
                )
                continue
            if key in seen:
                self.error(
                    f"file option {key.upper()} is given twice",
                    fo.name.span,
                    Note("first given here", seen[key].span),
                )
                continue
            seen[key] = fo
            if key == "format":
                if fo.value is None:
                    self.error("FORMAT needs a value: csv, parquet or jsonl", fo.span)
                elif self._choice(fo.value, tuple(FileFormat), "file FORMAT"):
                    word = self._word(fo.value)
                    fmt = FileFormat(word.lower()) if word else None
            else:
                self._file_option_value(key, fo)
        if fmt is None and "format" not in seen:
            suffix = PurePosixPath(st.path.value.lower()).suffix
            if st.path.value.lower().endswith(".gz"):
                suffix = PurePosixPath(st.path.value.lower()[:-3]).suffix
            fmt = FILE_EXTENSIONS.get(suffix)
            if fmt is None:
                self.error(
                    f"cannot tell the format of '{st.path.value}' from its extension; add "
                    "(FORMAT csv), (FORMAT parquet) or (FORMAT jsonl)",
                    st.path.span,
                )
        if not st.path.value.strip():
            self.error("the file path is empty", st.path.span)
        if fmt is FileFormat.PARQUET and st.path.value.lower().endswith(".gz"):
            self.error(
                "a Parquet file is compressed inside; '.parquet.gz' cannot be read",
                st.path.span,
            )
        if fmt is not None and fmt is not FileFormat.CSV:
            for key in _CSV_OPTIONS:
                if key in seen:
                    self.error(
                        f"{key.upper()} is a CSV option; this file is read as {fmt.value}",
                        seen[key].name.span,
                    )

    def _file_option_value(self, key: str, fo: s.FileOption) -> None:
        value = fo.value
        if key == "header":
            if value is None:
                return
            word = self._word(value)
            if word is None or word.lower() not in ("true", "false"):
                self.error("HEADER takes true or false (HEADER alone means true)", value.span)
            return
        if value is None:
            self.error(f"{key.upper()} needs a value", fo.span)
            return
        if not isinstance(value, s.StringLit):
            self.error(
                f"{key.upper()} takes a quoted string, e.g. {key.upper()} {_EXAMPLES[key]}",
                value.span,
            )
            return
        if key in ("delimiter", "quote", "escape") and len(value.value) != 1:
            self.error(f"{key.upper()} must be a single character, not '{value.value}'", value.span)
        if key == "encoding":
            try:
                codecs.lookup(value.value)
            except LookupError:
                self.error(f"unknown encoding '{value.value}'", value.span)

    def _features(self, st: s.Features, dialect: str | None) -> None:
        entity = st.entity.name
        if entity not in self.entities:
            self.error(
                f"unknown entity '{entity}'{suggestion(entity, self.entities)}; declare it with "
                f"ENTITY {entity} KEY (...)",
                st.entity.span,
            )
        self._unique_idents(tuple(f.name for f in st.features), "feature")
        for feature in st.features:
            if feature.window is not None:
                self._positive(feature.window.amount, "window length", None)
                unit = feature.window.unit.name
                if unit.lower() not in WINDOW_UNITS:
                    self.error(
                        f"invalid window unit '{unit}': windows are counted in MINUTES, HOURS, "
                        "DAYS or WEEKS (a month is e.g. 30 DAYS)",
                        feature.window.unit.span,
                    )
            if dialect is None:
                continue
            tree = self._sql(feature.expr, SqlKind.EXPRESSION, dialect)
            if tree is not None:
                problem = _feature_problem(tree)
                if problem is not None:
                    self.error(problem, feature.expr.span)

    def _unique_idents(self, idents: Sequence[s.Ident], what: str) -> None:
        seen: dict[str, s.Ident] = {}
        for ident in idents:
            if ident.name in seen:
                self.error(
                    f"{what} '{ident.name}' is listed twice",
                    ident.span,
                    Note("first listed here", seen[ident.name].span),
                )
            seen.setdefault(ident.name, ident)

    def _unique_names(self, names: Sequence[s.Dotted], what: str) -> None:
        seen: set[str] = set()
        for name in names:
            if name.key in seen:
                self.error(f"{what} '{name.key}' is listed twice", name.span)
            seen.add(name.key)

    # --- across items

    def _names_and_targets(self, items: Sequence[ItemInfo]) -> None:
        by_name: dict[str, ItemInfo] = {}
        by_target: dict[tuple[tuple[str, ...], bool], ItemInfo] = {}
        for item in items:
            other = by_target.get((item.writes.path, item.writes.whole_schema))
            named = option(item.statement, s.NameOption) is not None
            if item.name in by_name and (named or other is None):
                advice = "a different NAME" if named else "a NAME"
                self.error(
                    f"two items are named '{item.name}'; give one {advice}",
                    item.name_span,
                    Note("the other is here", by_name[item.name].name_span),
                )
            by_name.setdefault(item.name, item)
            if other is not None:
                self.error(
                    f"'{item.writes.text}' is already written by item '{other.name}'; "
                    "each target has one item",
                    item.statement.target.span,
                    Note("the other item is here", other.statement.target.span),
                )
            else:
                by_target[(item.writes.path, item.writes.whole_schema)] = item
        for item in items:
            for dotted in item.after:
                if dotted.key == item.name:
                    self.error(f"item '{item.name}' cannot run AFTER itself", dotted.span)
                elif dotted.key not in by_name:
                    others = [name for name in by_name if name != item.name]
                    self.error(
                        f"AFTER names unknown item '{dotted.key}'{suggestion(dotted.key, others)}",
                        dotted.span,
                    )

    def _datasets(self, items: Sequence[ItemInfo]) -> None:
        """Each table a DATASET lists is the target of a FEATURES item, listed once."""
        features: dict[tuple[str, ...], ItemInfo] = {}
        writers: dict[tuple[str, ...], ItemInfo] = {}
        for item in items:
            if not item.writes.whole_schema:
                writers.setdefault(item.writes.path, item)
            if isinstance(item.statement, s.Features):
                features.setdefault(item.writes.path, item)
        known = [item.statement.target.key for item in features.values()]
        for item in items:
            st = item.statement
            if not isinstance(st, s.Dataset):
                continue
            seen: dict[tuple[str, ...], s.Dotted] = {}
            for table in st.features:
                if table.names in seen:
                    self.error(
                        f"feature table '{table.key}' is listed twice",
                        table.span,
                        Note("first listed here", seen[table.names].span),
                    )
                    continue
                seen[table.names] = table
                if table.names in features:
                    continue
                why = "a DATASET joins the tables that FEATURES items of the file write"
                other = writers.get(table.names)
                if other is None:
                    self.error(
                        f"unknown feature table '{table.key}'{suggestion(table.key, known)}; "
                        + why,
                        table.span,
                    )
                else:
                    words = _statement_words(other.statement)
                    self.error(
                        f"'{table.key}' is not a feature table; " + why,
                        table.span,
                        Note(f"it is written by {words} here", other.statement.target.span),
                    )

    def _graph(self, items: Sequence[ItemInfo]) -> None:
        names = {item.name: item for item in items}
        edges = dependency_edges(items)
        for cycle in find_cycles(names, edges):
            first = names[cycle[0]]
            notes = [
                Note(f"'{name}' is part of the cycle", names[name].name_span)
                for name in cycle[1:-1]
            ]
            self.error(
                "dependency cycle: "
                + " -> ".join(f"'{name}'" for name in cycle)
                + " (each needs the next to finish first)",
                first.name_span,
                *notes,
            )


def _statement_words(st: s.ItemStatement) -> str:
    return {
        s.MigrateTable: "MIGRATE of a table",
        s.MigrateDatabase: "MIGRATE DATABASE",
        s.MigrateQuery: "MIGRATE QUERY",
        s.MigrateFile: "MIGRATE FILE",
        s.StageFrom: "STAGE ... FROM",
        s.StageQuery: "STAGE ... AS SELECT",
        s.Features: "FEATURES",
        s.Dataset: "DATASET",
    }[type(st)]


def _statement_head(st: s.ItemStatement) -> s.Span:
    return st.target.span


def _head_span(opt: s.Option, keyword: str) -> s.Span:
    """The span of a clause's leading keyword(s), for pointing at the clause itself."""
    span = opt.span
    width = len(keyword)
    if span.line == span.end_line:
        width = min(width, span.end - span.start)
    return s.Span(
        span.start, span.start + width, span.line, span.column, span.line, span.column + width
    )


def _feature_problem(tree: exp.Expr) -> str | None:
    """Why a feature's expression is not made of the aggregates a feature table computes (None
    when it is): one or more of them, combined as an expression (`sum(total) / count(*)`), every
    column read inside one."""
    kinds = "count(*), count(x), count(DISTINCT x), sum, avg, min, max, first(x) or last(x)"
    aggregates = list(tree.find_all(exp.AggFunc))
    if not aggregates:
        return f"a feature is an aggregate over the entity's rows: {kinds}"
    for node in aggregates:
        if type(node) not in FEATURE_AGGREGATES:
            return f"'{node.sql()}' is not an aggregate a feature can use: {kinds}"
    for column in tree.find_all(exp.Column):
        if column.find_ancestor(exp.AggFunc) is None:
            return (
                f"'{column.sql()}' is read outside an aggregate: a feature combines aggregates "
                "only, e.g. sum(total) / count(*)"
            )
    return None
