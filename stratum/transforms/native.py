"""Matching `CAST TYPE` rules against the types a source database spells (pgloader-style).

A rule names a source type as that database writes it: `tinyint(1)`, `bigint unsigned`,
`datetime`, `character varying(20)`. It matches a column whose native type has:

* the same base name (aliases read as one type: `int` and `integer`),
* the same arguments, when the rule gives them (`tinyint(1)` does not match `tinyint(4)`; a rule
  without them matches any: `int` matches MySQL's `int(11)`),
* every flag the rule gives (`unsigned`, `signed`, `zerofill`); a rule without flags also
  matches the unsigned type.

When several rules match one column the most specific wins (arguments count one, each flag one):
`TYPE bigint unsigned TO numeric(20,0)` beats `TYPE bigint TO integer` on a `bigint unsigned`.
"""

from __future__ import annotations

import re

from stratum.plan.model import CastRule
from stratum.transforms.types import same_type

_FLAGS = frozenset({"unsigned", "signed", "zerofill"})
_ARGS = re.compile(r"\((.*)\)", re.DOTALL)


def parts(type_: str) -> tuple[str, str | None, frozenset[str]]:
    """(base name, arguments without spaces or None, flags) of a type as written."""
    text = " ".join(type_.lower().split())
    args = None
    match = _ARGS.search(text)
    if match:
        args = "".join(match.group(1).split())
        text = text[: match.start()] + " " + text[match.end() :]
    words = text.split()
    flags = frozenset(w for w in words if w in _FLAGS)
    return " ".join(w for w in words if w not in _FLAGS), args, flags


def specificity(rule: str, native: str) -> int | None:
    """How specifically `rule` matches the native type `native`; None when it does not."""
    base, args, flags = parts(rule)
    native_base, native_args, native_flags = parts(native)
    if base != native_base and not same_type(base, native_base):
        return None
    if args is not None and args != native_args:
        return None
    if not flags <= native_flags:
        return None
    return (args is not None) + len(flags)


def rule_names(rule: CastRule, table: str | None, column: str, native: str | None) -> bool:
    """Whether `rule` applies to `column` of `table` (whose native type is `native`): a COLUMN
    rule naming it (alone, or qualified by its table), or a TYPE rule matching its type."""
    if rule.by == "type":
        return native is not None and specificity(rule.match, native) is not None
    parts = dotted_parts(rule.match)
    return parts[-1] == column and (len(parts) == 1 or parts[-2] == table)


def dotted_parts(text: str) -> list[str]:
    """The parts of a dotted name as SMQL writes it: `orders.note`, `"Odd.Name".x`."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if quoted:
            if char == '"' and text[i + 1 : i + 2] == '"':
                current.append('"')
                i += 1
            elif char == '"':
                quoted = False
            else:
                current.append(char)
        elif char == '"':
            quoted = True
        elif char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts
