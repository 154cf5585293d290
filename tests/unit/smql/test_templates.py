"""${VAR} templates: expansion, errors, inline passwords, redaction."""

from __future__ import annotations

import pytest

from smql import TemplateError, expand, redact
from smql.templates import inline_password, scan


def test_expand_variables_defaults_and_dollar_escape() -> None:
    env = {"USER": "etl", "PW": "s3cret"}
    assert (
        expand("pg://${USER}:${PW}@${HOST:-localhost}/db?x=$$1", env)
        == "pg://etl:s3cret@localhost/db?x=$1"
    )
    assert expand("pg://${HOST:-}/db", {}) == "pg:///db"


def test_every_missing_variable_is_named() -> None:
    with pytest.raises(TemplateError) as caught:
        expand("pg://${A}:${B}@h/${C:-c}", {}, path="f.smql")
    assert [d.message for d in caught.value.diagnostics] == [
        "environment variable A is not set",
        "environment variable B is not set",
    ]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("pg://${", "unterminated '${'"),
        ("pg://${1X}", "invalid variable name '1X'"),
        ("pg://${}", "invalid variable name ''"),
    ],
)
def test_malformed_references(template: str, message: str) -> None:
    refs, problems = scan(template)
    assert refs == []
    assert next(p.message for p in problems).startswith(message)


@pytest.mark.parametrize(
    ("template", "redacted"),
    [
        ("mysql://etl:hunter2@db/shop", "mysql://etl:***@db/shop"),
        ("pg://u@h/db?password=abc&sslmode=require", "pg://u@h/db?password=***&sslmode=require"),
        ("mysql://etl:${PW}@db/shop", "mysql://etl:${PW}@db/shop"),
        ("pg://u@h/db", "pg://u@h/db"),
    ],
)
def test_inline_passwords_are_found_and_redacted(template: str, redacted: str) -> None:
    assert redact(template) == redacted
    assert (inline_password(template) is None) == (template == redacted)
