"""Compiling a checked SMQL program into a MigrationPlan.

program --smql.check + scheme check--> diagnostics (errors raise PlanError)
        --resolve options, sources, targets--> items, each hashed
        --dependency edges, execution order--> MigrationPlan (hashed)
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from sqlglot import exp

import smql
from smql import syntax as s
from smql.checks import suggestion
from smql.diagnostics import sort_diagnostics
from smql.semantics import (
    ALLOWED_OPTIONS,
    FILE_EXTENSIONS,
    WINDOW_UNITS,
    ExpectAction,
    FileFormat,
    ItemInfo,
    Mode,
    OnError,
    mode_choice,
    option,
    options_of,
)
from smql.sql import SqlKind, parse_sql
from smql.templates import redact, scan
from stratum.errors import PlanError
from stratum.plan import defaults
from stratum.plan.canonical import item_hash, plan_hash
from stratum.plan.model import (
    CastRule,
    ColumnMap,
    ComputedColumn,
    ConnectionSpec,
    CsvOptions,
    DatabaseSource,
    DatasetFeatures,
    DatasetSource,
    Deduplicate,
    Dependency,
    Expectation,
    Feature,
    FeatureSource,
    FileSource,
    MigrationPlan,
    Options,
    PlanItem,
    PlanSettings,
    QuerySource,
    Source,
    Sql,
    StageSource,
    TableRef,
    TableSource,
)


def diagnose(program: s.Program, env: Mapping[str, str] | None = None) -> list[smql.Diagnostic]:
    """Everything `stratum validate` reports: the language's checks and the engine's own."""
    diagnostics = smql.check(program, env)
    for statement in program.statements:  # the engine's own: URL schemes it can connect to
        if isinstance(statement, s.Connection):
            problem = _scheme_problem(statement)
            if problem:
                diagnostics.append(
                    smql.Diagnostic(smql.Severity.ERROR, problem, program.path, statement.url.span)
                )
    return sort_diagnostics(diagnostics)


def load_plan(path: str | Path, env: Mapping[str, str] | None = None) -> MigrationPlan:
    """Parse, check and compile a .smql file. Raises PlanError with every error in it."""
    try:
        program = smql.parse_file(path)
    except smql.SmqlError as exc:
        raise PlanError(exc.diagnostics, exc.source) from None
    return compile_plan(program, env)


def compile_plan(program: s.Program, env: Mapping[str, str] | None = None) -> MigrationPlan:
    diagnostics = diagnose(program, env)
    if any(d.is_error for d in diagnostics):
        raise PlanError([d for d in diagnostics if d.is_error], program.source)
    return _Compiler(program).plan()


def _scheme_problem(connection: s.Connection) -> str | None:
    template = connection.url.value
    scheme = _literal_scheme(template)
    if scheme is None or scheme in defaults.SCHEMES:
        return None
    known = sorted(defaults.SCHEMES)
    return (
        f"unknown connection scheme '{scheme}'{suggestion(scheme, known)}; Stratum connects to "
        + ", ".join(f"{k}://" for k in known)
    )


def _literal_scheme(template: str) -> str | None:
    """The URL scheme when it is written out (not produced by a ${VAR})."""
    head = template.split(":", 1)[0] if ":" in template else ""
    if not head or "$" in head:
        return None
    try:
        return urlsplit(template).scheme.lower() or head.lower()
    except ValueError:
        return head.lower()


class _Compiler:
    def __init__(self, program: s.Program) -> None:
        self.program = program
        self.settings = smql.settings_of(program)
        self.items = smql.items_of(program)
        self.entities = {st.name.name: st for st in program.statements if isinstance(st, s.Entity)}
        self.features: dict[tuple[str, ...], s.Features] = {}
        for item in self.items:
            if isinstance(item.statement, s.Features):
                self.features.setdefault(item.statement.target.names, item.statement)

    def plan(self) -> MigrationPlan:
        connections = tuple(
            self._connection(st) for st in self.program.statements if isinstance(st, s.Connection)
        )
        edges = smql.dependency_edges(self.items)
        order = smql.execution_order([item.name for item in self.items], edges)
        built = {item.name: self._item(item, edges) for item in self.items}
        items = tuple(built[name] for name in order)
        return MigrationPlan(
            path=self.program.path,
            connections=connections,
            settings=PlanSettings(
                parallel=self._int_setting("parallel", defaults.PARALLEL),
                queue_size=self._int_setting("queue_size", defaults.QUEUE_SIZE),
            ),
            items=items,
            hash=plan_hash(connections, {item.name: item.hash for item in items}),
        )

    # --- settings

    def _int_setting(self, name: str, default: int) -> int:
        value = self.settings.get(name)
        return value.value if isinstance(value, s.IntLit) else default

    def _word_setting(self, name: str) -> str | None:
        value = self.settings.get(name)
        return value.value.lower() if isinstance(value, s.StringLit | s.WordLit) else None

    def _connection(self, st: s.Connection) -> ConnectionSpec:
        scheme = _literal_scheme(st.url.value)
        refs, _ = scan(st.url.value)
        return ConnectionSpec(
            name=st.name.name,
            url=redact(st.url.value),
            scheme=scheme,
            dialect=defaults.SCHEMES.get(scheme) if scheme else None,
            variables=tuple(dict.fromkeys(ref.name for ref in refs)),
            template=st.url.value,
        )

    # --- items

    def _item(self, info: ItemInfo, edges: list[smql.Edge]) -> PlanItem:
        st = info.statement
        options = self._options(st, info.dialect)
        source = self._source(info, info.dialect)
        target = _table_ref(st.target, database=isinstance(st, s.MigrateDatabase))
        depends_on = tuple(
            Dependency(edge.depends_on, edge.reason) for edge in edges if edge.item == info.name
        )
        return PlanItem(
            name=info.name,
            kind=info.kind,
            source=source,
            target=target,
            options=options,
            depends_on=depends_on,
            hash=item_hash(info.name, info.kind.value, source, target, options),
            line=st.span.line,
        )

    def _options(self, st: s.ItemStatement, dialect: str) -> Options:
        takes = ALLOWED_OPTIONS[type(st)]
        columns = option(st, s.ColumnsOption)
        key = option(st, s.KeyOption)
        cursor = option(st, s.CursorOption)
        where = option(st, s.WhereOption)
        on_error = option(st, s.OnErrorOption)
        zero_dates = option(st, s.ZeroDatesOption)
        partitions = option(st, s.PartitionsOption)
        batch_size = option(st, s.BatchSizeOption)
        return Options(
            mode=Mode(mode_choice(st, self.settings)[0]),
            key=tuple(c.name for c in key.columns) if isinstance(key, s.KeyOption) else (),
            cursor=cursor.column.name if isinstance(cursor, s.CursorOption) else None,
            columns=tuple(ColumnMap(c.name.name, c.output.name) for c in columns.columns)
            if isinstance(columns, s.ColumnsOption)
            else (),
            compute=tuple(
                ComputedColumn(c.name.name, self._sql(c.expr, SqlKind.EXPRESSION, dialect))
                for opt in options_of(st, s.ComputeOption)
                if isinstance(opt, s.ComputeOption)
                for c in opt.columns
            ),
            where=self._sql(where.condition, SqlKind.EXPRESSION, dialect)
            if isinstance(where, s.WhereOption)
            else None,
            casts=tuple(
                _cast(rule)
                for opt in options_of(st, s.CastOption)
                if isinstance(opt, s.CastOption)
                for rule in opt.rules
            ),
            on_error=None
            if s.OnErrorOption not in takes
            else OnError(on_error.value.name.lower())
            if isinstance(on_error, s.OnErrorOption)
            else OnError(self._word_setting("on_error") or defaults.ON_ERROR),
            zero_dates=None
            if s.ZeroDatesOption not in takes
            else _zero_dates(zero_dates.value)
            if isinstance(zero_dates, s.ZeroDatesOption)
            else self._zero_dates_setting(),
            # a database copy and a dataset hold no SQL of their own
            dialect=None if isinstance(st, s.MigrateDatabase | s.Dataset) else dialect,
            partitions=None
            if s.PartitionsOption not in takes
            else partitions.value.value
            if isinstance(partitions, s.PartitionsOption)
            else self._int_setting("partitions", defaults.PARTITIONS),
            batch_size=None
            if s.BatchSizeOption not in takes
            else batch_size.value.value
            if isinstance(batch_size, s.BatchSizeOption)
            else self._int_setting("batch_size", defaults.BATCH_SIZE),
        )

    def _zero_dates_setting(self) -> str:
        value = self.settings.get("zero_dates")
        return _zero_dates(value) if value is not None else defaults.ZERO_DATES

    def _sql(self, sql: s.SqlText, kind: SqlKind, dialect: str) -> Sql:
        if not isinstance(parse_sql(sql, kind, dialect), exp.Expr):  # checked: cannot happen
            raise AssertionError(f"checked SQL did not parse: {sql.text!r}")
        return Sql(sql.text, dialect)

    def _source(self, info: ItemInfo, dialect: str) -> Source:
        st = info.statement
        if isinstance(st, s.MigrateTable):
            return TableSource(_table_ref(st.source))
        if isinstance(st, s.MigrateDatabase):
            return DatabaseSource(
                database=_table_ref(st.source, database=True),
                including=_patterns(st, s.IncludingOption),
                excluding=_patterns(st, s.ExcludingOption),
                claimed=self._claimed(info),
                views=_patterns(st, s.IncludingViewsOption),
            )
        if isinstance(st, s.MigrateQuery):
            return QuerySource(st.connection.name, self._sql(st.query, SqlKind.QUERY, dialect))
        if isinstance(st, s.MigrateFile):
            return _file_source(st)
        if isinstance(st, s.StageFrom):
            dedupe = option(st, s.DeduplicateOption)
            return StageSource(
                input=_table_ref(st.input),
                query=None,
                deduplicate=Deduplicate(
                    tuple(c.name for c in dedupe.columns),
                    tuple(self._sql(o, SqlKind.ORDERING, dialect) for o in dedupe.order_by),
                )
                if isinstance(dedupe, s.DeduplicateOption)
                else None,
                expectations=tuple(
                    Expectation(
                        self._sql(opt.condition, SqlKind.EXPRESSION, dialect),
                        ExpectAction(opt.action.name.lower()),
                    )
                    for opt in options_of(st, s.ExpectOption)
                    if isinstance(opt, s.ExpectOption)
                ),
            )
        if isinstance(st, s.StageQuery):
            return StageSource(None, self._sql(st.query, SqlKind.QUERY, dialect), None, ())
        if isinstance(st, s.Dataset):
            return DatasetSource(
                spine=_table_ref(st.spine),
                timestamp=st.timestamp.name,
                features=tuple(self._dataset_features(table) for table in st.features),
            )
        entity = self.entities[st.entity.name]
        return FeatureSource(
            entity=entity.name.name,
            keys=tuple(k.name for k in entity.keys),
            input=_table_ref(st.input),
            timestamp=st.timestamp.name,
            features=tuple(self._feature(f, dialect) for f in st.features),
        )

    def _dataset_features(self, table: s.Dotted) -> DatasetFeatures:
        """What a DATASET joins from a feature table, taken from the FEATURES item writing it."""
        features = self.features[table.names]  # checked: every listed table has its item
        entity = self.entities[features.entity.name]
        return DatasetFeatures(
            table=_table_ref(features.target),
            keys=tuple(k.name for k in entity.keys),
            timestamp=features.timestamp.name,
            features=tuple(f.name.name for f in features.features),
        )

    def _feature(self, feature: s.Feature, dialect: str) -> Feature:
        window = feature.window
        if window is None:
            return Feature(
                feature.name.name, self._sql(feature.expr, SqlKind.EXPRESSION, dialect), None, None
            )
        unit = window.unit.name.lower()
        plural = unit if unit.endswith("s") else unit + "s"
        return Feature(
            feature.name.name,
            self._sql(feature.expr, SqlKind.EXPRESSION, dialect),
            f"{window.amount.value} {plural if window.amount.value != 1 else plural[:-1]}",
            window.amount.value * WINDOW_UNITS[unit],
        )

    def _claimed(self, info: ItemInfo) -> tuple[str, ...]:
        """Tables of a database copy's target schema that other items of the plan write."""
        return tuple(
            sorted(
                other.writes.path[-1]
                for other in self.items
                if other.name != info.name
                and not other.writes.whole_schema
                and other.writes.path[:-1] == info.writes.path
            )
        )


def _table_ref(dotted: s.Dotted, database: bool = False) -> TableRef:
    names = dotted.names
    if database:
        return TableRef(names[0], names[1] if len(names) > 1 else None, None)
    if len(names) == 2:
        return TableRef(names[0], None, names[1])
    return TableRef(names[0], names[1], names[2])


def _patterns(st: s.MigrateDatabase, kind: type[s.Option]) -> tuple[str, ...]:
    return tuple(
        p.value
        for opt in options_of(st, kind)
        if isinstance(opt, s.IncludingOption | s.ExcludingOption | s.IncludingViewsOption)
        for p in opt.patterns
    )


def _cast(rule: s.CastRule) -> CastRule:
    if isinstance(rule, s.CastType):
        return CastRule("type", rule.source.text, rule.target.text)
    return CastRule("column", rule.column.text, rule.target.text)


def _zero_dates(value: s.Value) -> str:
    text = str(value.value)
    return text.lower() if text.lower() in ("null", "error") else text


def _file_source(st: s.MigrateFile) -> FileSource:
    given = {fo.name.name.lower(): fo for fo in st.file_options}
    path = st.path.value.lower().removesuffix(".gz")
    fmt_option = given.get("format")
    if fmt_option is not None and fmt_option.value is not None:
        fmt = FileFormat(str(fmt_option.value.value).lower())
    else:
        fmt = FILE_EXTENSIONS[Path(path).suffix]
    if fmt is not FileFormat.CSV:
        return FileSource(st.path.value, fmt, None)
    header = given.get("header")
    escape = given.get("escape")
    delimiter = "\t" if path.endswith(".tsv") else defaults.CSV_DELIMITER
    return FileSource(
        st.path.value,
        fmt,
        CsvOptions(
            # like PostgreSQL's COPY: no header unless HEADER is given; HEADER alone means true
            header=header is not None
            and (header.value is None or str(header.value.value).lower() == "true"),
            delimiter=_text(given.get("delimiter"), delimiter),
            quote=_text(given.get("quote"), defaults.CSV_QUOTE),
            escape=_text(escape, "") or None,
            null=_text(given.get("null"), defaults.CSV_NULL),
            encoding=codecs.lookup(_text(given.get("encoding"), defaults.CSV_ENCODING)).name,
        ),
    )


def _text(option: s.FileOption | None, default: str) -> str:
    if option is not None and isinstance(option.value, s.StringLit):
        return option.value.value
    return default
