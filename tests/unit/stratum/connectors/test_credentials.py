"""Splitting a URL without quoting it, password files, masking, TLS errors in a chain."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest

from stratum.connectors._credentials import (
    TlsError,
    mask,
    masked,
    read_password_file,
    secret_forms,
    split_url,
    tls_failure,
)
from stratum.errors import ConfigError, ConnectionLost, SourceError

SECRET = "S3cr3t-unit"


# --- split_url -------------------------------------------------------------------------------


def test_split_url_parts() -> None:
    parts = split_url(
        "postgresql://us%40er:pa%2Fss%23@h1:5432,h2/db%20x?sslmode=require&application_name=a+b",
        "the URL",
    )
    assert (parts.scheme, parts.user, parts.password) == ("postgresql", "us@er", "pa/ss#")
    assert parts.hostspec == "h1:5432,h2"
    assert parts.path == "/db%20x"
    assert parts.query == (("sslmode", "require"), ("application_name", "a b"))
    assert "pa/ss" not in repr(parts)
    rebuilt = parts.rebuilt(drop=("application_name",))
    assert rebuilt == "postgresql://us%40er@h1:5432,h2/db%20x?sslmode=require"
    assert split_url("mysql://[::1]:3306/db", "x").hostspec == "[::1]:3306"
    assert split_url("mysql://u:@h/db", "x").password == ""
    assert split_url("mysql://u@h/db", "x").password is None


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SECRET}/x@127.0.0.1:5432/db",  # '/': "port" would be S3cr3t-unit
        f"postgresql://u:{SECRET}#x@127.0.0.1:5432/db",  # '#': the rest is a fragment
        f"postgresql://u:{SECRET}?x@127.0.0.1:5432/db",  # '?': the rest is a query
        f"mysql://u:{SECRET}/x@127.0.0.1/db",
        f"mysql://u:{SECRET}@127.0.0.1:{SECRET}/db",  # a port that is not a number
        f"mysql://u:{SECRET}@h/db#{SECRET}",
    ],
)
def test_split_url_never_quotes_what_it_cannot_split(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        split_url(url, "the test URL")
    assert SECRET not in str(error.value)
    assert str(error.value).startswith("the test URL ")
    assert "must be percent-encoded (%2F, %3F, %23, %40)" in str(error.value)
    assert error.value.__cause__ is None
    assert error.value.__context__ is None or error.value.__suppress_context__


# --- password files --------------------------------------------------------------------------


def write(tmp_path: Path, content: bytes, mode: int = 0o600, name: str = "pw") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("content", "password"),
    [
        (b"hunter2", "hunter2"),
        (b"hunter2\n", "hunter2"),
        (b"hunter2\r\n", "hunter2"),
        (b"hunter2\n\n", "hunter2\n"),  # only one line end is the file's
        (b" spaced :/#?@ \n", " spaced :/#?@ "),
        ("pässwörd\n".encode(), "pässwörd"),
    ],
)
def test_read_password_file(tmp_path: Path, content: bytes, password: str) -> None:
    assert read_password_file(str(write(tmp_path, content))) == password


def test_read_password_file_follows_a_link_and_expands_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write(tmp_path, b"linked\n")
    (tmp_path / "link").symlink_to(target)
    assert read_password_file(str(tmp_path / "link")) == "linked"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert read_password_file("~/pw") == "linked"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o602, 0o620])
def test_a_password_file_others_may_use_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path, SECRET.encode(), mode)
    with pytest.raises(ConfigError) as error:
        read_password_file(str(path))
    assert str(error.value) == (
        f"password_file '{path}' may be read or written by group or others (mode {mode:04o}); "
        f"make it the owner's only: chmod 600 {path}"
    )


def test_an_unusable_password_file_is_named_never_shown(tmp_path: Path) -> None:
    def refused(path: Path) -> str:
        with pytest.raises(ConfigError) as error:
            read_password_file(str(path))
        assert SECRET not in str(error.value)
        return str(error.value)

    assert refused(tmp_path / "missing") == (
        f"password_file '{tmp_path / 'missing'}' cannot be read (No such file or directory)"
    )
    assert refused(tmp_path) == f"password_file '{tmp_path}' is not a regular file"
    assert refused(write(tmp_path, b"\n", name="empty")) == (
        f"password_file '{tmp_path / 'empty'}' is empty"
    )
    assert refused(write(tmp_path, SECRET.encode() + b"\xff", name="binary")) == (
        f"password_file '{tmp_path / 'binary'}' is not UTF-8 text"
    )
    big = write(tmp_path, SECRET.encode() * 10000, name="big")
    assert refused(big) == f"password_file '{big}' is larger than a password file can be (64 KiB)"
    assert read_password_file(str(write(tmp_path, b"x", 0o400, "readonly"))) == "x"
    if os.geteuid() != 0:  # root reads any file
        unreadable = write(tmp_path, SECRET.encode(), 0o000, "unreadable")
        assert refused(unreadable).endswith("cannot be read (Permission denied)")


# --- masking ---------------------------------------------------------------------------------


def test_secret_forms_and_mask() -> None:
    forms = secret_forms("p/ss w", None, "")
    assert forms == ("p%2Fss%20w", "p/ss w")
    assert mask("a p/ss w and p%2Fss%20w", forms) == "a *** and ***"


def refuse_login() -> None:
    try:
        raise ValueError(SECRET)
    except ValueError as exc:
        raise SourceError(f"login refused for {SECRET}") from exc


def test_masked_keeps_the_class_and_drops_the_chain() -> None:
    forms = secret_forms(SECRET)
    with pytest.raises(SourceError) as error, masked(forms):
        refuse_login()
    assert str(error.value) == "login refused for ***"
    assert error.value.__suppress_context__
    with pytest.raises(ConnectionLost, match=r"^no secret here$"), masked(forms):
        raise ConnectionLost("no secret here")  # untouched
    with pytest.raises(KeyError), masked(forms):
        raise KeyError(SECRET)  # not ours: not touched either


# --- TLS errors ------------------------------------------------------------------------------


def test_tls_failure_finds_a_certificate_error_inside_a_driver_error() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    wrapped = OSError(2003, "Can't connect")
    wrapped.__cause__ = verify
    outer = ConnectionLost("connecting")
    outer.__context__ = wrapped
    assert tls_failure(outer) is verify
    assert tls_failure(ssl.SSLEOFError(8, "EOF in violation of protocol")) is None
    assert tls_failure(ConnectionResetError()) is None
    assert issubclass(TlsError, ConfigError)
