"""Connection URL templates: `${VAR}` and `${VAR:-default}` expanded from the environment.

A template is kept unexpanded everywhere (plans, hashes, state, reports) and expanded only when a
connection is opened. `$$` stands for a literal `$`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

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
    missing = [ref for ref in refs if ref.default is None and ref.name not in env]  # "" is set
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
        if not value and ref.default is not None:  # like the shell: unset or empty
            value = ref.default
        out.append(value or "")
        last = ref.end
    out.append(template[last:].replace("$$", "$"))
    return "".join(out)


def inline_passwords(template: str) -> list[tuple[int, int]]:
    """Offsets of every password written into the URL itself (not through `${VAR}`): the
    user-info password and `password=` / `pass=` / `pwd=` query parameters."""
    refs, problems = scan(template)
    # Hide ${...} references (and malformed ones) behind same-length filler, so `${U:-etl}@h`
    # is not read as a user `${U` with the password `-etl}`; offsets stay the template's.
    masked = list(template)
    for start, end in [(r.start, r.end) for r in refs] + [(p.start, p.end) for p in problems]:
        masked[start:end] = "v" * (end - start)
    plain = "".join(masked)
    found = []
    netloc_start = plain.find("//") + 2 if "//" in plain else -1
    if netloc_start > 1:
        netloc_end = min(
            (i for i in (plain.find(c, netloc_start) for c in "/?#") if i != -1), default=len(plain)
        )
        at = plain.rfind("@", netloc_start, netloc_end)
        colon = plain.find(":", netloc_start, at) if at != -1 else -1
        if colon != -1:
            found.append((colon + 1, at))
    query_start = plain.find("?")
    if query_start != -1:
        for match in re.finditer(r"(?i)(?<=[?&])(?:password|pass|pwd)=([^&#]*)", plain):
            if match.start() > query_start:
                found.append((match.start(1), match.end(1)))
    secrets = []
    for start, end in found:
        refs_here, problems_here = scan(template[start:end])
        if problems_here or end <= start:
            continue  # a malformed ${...} is reported as such, not as a password
        whole = len(refs_here) == 1 and (refs_here[0].start, refs_here[0].end) == (0, end - start)
        if not whole:
            secrets.append((start, end))
        elif refs_here[0].default:  # ${PW:-hunter2}: the default is a password in the file
            default_start = start + template[start:end].index(":-") + 2
            secrets.append((default_start, end - 1))
    return secrets


def inline_password(template: str) -> tuple[int, int] | None:
    """The first inline password's offsets, if any (see `inline_passwords`)."""
    found = inline_passwords(template)
    return found[0] if found else None


def redact(template: str) -> str:
    """The template with every inline password replaced by ***; `${VAR}` references stay."""
    for start, end in sorted(inline_passwords(template), reverse=True):
        template = template[:start] + _REDACTED + template[end:]
    return template
