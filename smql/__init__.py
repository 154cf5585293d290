"""SMQL, the Stratum Migration Query Language: grammar, parser, syntax tree, checks, formatter.

This package knows nothing about databases and never imports `stratum`.

    >>> import smql
    >>> program = smql.parse("CONNECTION wh = 'duckdb:///wh.duckdb';")
    >>> smql.check(program)
    []
"""

from smql import syntax
from smql.checks import check
from smql.diagnostics import (
    Diagnostic,
    Note,
    Severity,
    SmqlCheckError,
    SmqlError,
    SmqlSyntaxError,
    TemplateError,
    render_all,
)
from smql.parser import parse, parse_file
from smql.semantics import (
    Edge,
    ExpectAction,
    FileFormat,
    ItemInfo,
    ItemKind,
    Mode,
    OnError,
    Ref,
    dependency_edges,
    execution_order,
    find_cycles,
    items_of,
    settings_of,
)
from smql.templates import expand, redact

__all__ = [
    "Diagnostic",
    "Edge",
    "ExpectAction",
    "FileFormat",
    "ItemInfo",
    "ItemKind",
    "Mode",
    "Note",
    "OnError",
    "Ref",
    "Severity",
    "SmqlCheckError",
    "SmqlError",
    "SmqlSyntaxError",
    "TemplateError",
    "check",
    "dependency_edges",
    "execution_order",
    "expand",
    "find_cycles",
    "items_of",
    "parse",
    "parse_file",
    "redact",
    "render_all",
    "settings_of",
    "syntax",
]
