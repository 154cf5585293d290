"""Connection URL templates: `${VAR}` and `${VAR:-default}` expanded from the environment.

A template is kept unexpanded everywhere (plans, hashes, state, reports) and expanded only when a
connection is opened. `$$` stands for a literal `$`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from smql.diagnostics import Diagnostic, Severity, TemplateError
from smql.syntax import Span

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_REDACTED = "***"


@dataclass(frozen=True, slots=True)
class Reference:
    """One `${NAME}` or `${NAME:-default}`, with its offsets inside the template."""

    name: str
    default: str | None
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    message: str
    start: int
    end: int


def scan(template: str) -> tuple[list[Reference], list[TemplateProblem]]:
    """Find every variable reference, and every malformed one."""
    refs: list[Reference] = []
    problems: list[TemplateProblem] = []
    i = 0
    while True:
        i = template.find("$", i)
        if i == -1:
            return refs, problems
        if template.startswith("$$", i):
            i += 2
            continue
        if not template.startswith("${", i):
            i += 1
            continue
        close = template.find("}", i + 2)
        if close == -1:
            problems.append(TemplateProblem("unterminated '${': no closing '}'", i, len(template)))
            return refs, problems
        body = template[i + 2 : close]
        name, sep, default = body.partition(":-")
        if not _NAME.match(name):
            problems.append(
                TemplateProblem(
                    f"invalid variable name {name!r} in '${{{body}}}' "
                    "(use letters, digits and _, not starting with a digit)",
                    i,
                    close + 1,
                )
            )
        else:
            refs.append(Reference(name, default if sep else None, i, close + 1))
        i = close + 1


def expand(
    template: str,
    env: Mapping[str, str],
    *,
    path: str = "<string>",
    span: Span | None = None,
    source: str | None = None,
) -> str:
    """The template with every variable replaced. Raises TemplateError naming what is missing."""
    refs, problems = scan(template)
    missing = [ref for ref in refs if ref.default is None and ref.name not in env]
    diagnostics = [Diagnostic(Severity.ERROR, p.message, path, span) for p in problems]
    diagnostics += [
        Diagnostic(Severity.ERROR, f"environment variable {ref.name} is not set", path, span)
        for ref in missing
    ]
    if diagnostics:
        raise TemplateError(diagnostics, source)
    out, last = [], 0
    for ref in refs:
        out.append(template[last : ref.start].replace("$$", "$"))
        value = env.get(ref.name)
        out.append(value if value is not None else (ref.default or ""))
        last = ref.end
    out.append(template[last:].replace("$$", "$"))
    return "".join(out)


def inline_password(template: str) -> tuple[int, int] | None:
    """Offsets of a password written into the URL itself (not through `${VAR}`), if any."""
    try:
        parts = urlsplit(template)
    except ValueError:
        return None
    candidates = []
    if parts.password:
        netloc_start = template.find("//") + 2
        at = template.find("@", netloc_start)
        colon = template.find(":", netloc_start, at)
        if colon != -1 and at != -1:
            candidates.append((colon + 1, at))
    for match in re.finditer(r"(?:^|[?&])(?:password|pass|pwd)=([^&#]*)", parts.query):
        offset = template.find(parts.query) + match.start(1)
        candidates.append((offset, offset + len(match.group(1))))
    for start, end in candidates:
        secret = template[start:end]
        refs, _ = scan(secret)
        if secret and not (len(refs) == 1 and refs[0].start == 0 and refs[0].end == len(secret)):
            return start, end
    return None


def redact(template: str) -> str:
    """The template with any inline password replaced by ***; `${VAR}` references stay."""
    found = inline_password(template)
    while found:
        template = template[: found[0]] + _REDACTED + template[found[1] :]
        found = inline_password(template)
        if found and template[found[0] : found[1]] == _REDACTED:
            break
    return template
