"""What the database connectors share about secrets: splitting a URL without ever quoting it,
password files, masking, and the error for TLS that was asked for and could not be had.

An expanded connection URL holds the password, so nothing here puts any part of a URL into a
message except what cannot be secret (a host, a port, an option's name, a file's path). A
password with a character that ends the user-info part (`/`, `?`, `#`, `@`) must be
percent-encoded; when it is not, the URL splits at the wrong place and what the parser would
quote back (a "port" or a "host") is a piece of the password. `split_url` refuses such a URL
with a hint instead.

Password files (the `password_file=/path` URL option of the PostgreSQL and MySQL connectors):
the file holds the password and nothing else, one trailing newline (LF or CRLF) removed. Like
ssh with a private key and libpq with `.pgpass`, a file that group or others may read or write
is refused, as is a missing, unreadable, empty or non-UTF-8 one; each error names the file and
never quotes its content.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from stratum.errors import ConfigError, StratumError

__all__ = [
    "PASSWORD_FILE",
    "TlsError",
    "UrlParts",
    "mask",
    "masked",
    "read_password_file",
    "readable_file",
    "secret_forms",
    "split_url",
    "tls_failure",
]

#: The URL option naming a file that holds the password (PostgreSQL and MySQL alike). Not
#: libpq's `passfile`, which names a `.pgpass`-format file (host:port:database:user:password)
#: and keeps that meaning on PostgreSQL URLs.
PASSWORD_FILE = "password_file"

_MASK = "***"
_MAX_PASSWORD_FILE_BYTES = 64 * 1024
_ENCODE_HINT = (
    "a '/', '?', '#' or '@' in the user name or password must be percent-encoded "
    "(%2F, %3F, %23, %40)"
)


class TlsError(ConfigError):
    """TLS was asked for (sslmode=require, ssl-mode=REQUIRED...) and could not be had: the
    server does not offer it, or its certificate is not the one the URL trusts. Never retried:
    `stratum test-conn` reports its cause as `tls`."""


@dataclass(frozen=True, slots=True)
class UrlParts:
    """A connection URL split into its parts; `password` never appears in repr()."""

    scheme: str
    user: str | None  # percent-decoded
    password: str | None = field(repr=False)  # percent-decoded; None: not in the URL
    hostspec: str  # what follows the user info: host[:port][,host[:port]...], as written
    path: str  # as written, with its leading '/'
    query: tuple[tuple[str, str], ...]  # percent-decoded, in order, blanks kept

    def params(self) -> dict[str, str]:
        """The query as a dict (a repeated name: its last value, as drivers read it)."""
        return dict(self.query)

    def rebuilt(self, *, drop: Iterable[str] = ()) -> str:
        """The URL without its password and without the query parameters in `drop`: what is
        handed to a driver, the password going separately."""
        dropped = set(drop)
        auth = f"{quote(self.user, safe='')}@" if self.user else ""
        pairs = [(k, v) for k, v in self.query if k not in dropped]
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
        return f"{self.scheme}://{auth}{self.hostspec}{self.path}" + (f"?{query}" if query else "")


def split_url(url: str, what: str) -> UrlParts:
    """Split `url` (a secret) into its parts; `what` names it in errors ("the PostgreSQL URL").

    ConfigError, without quoting the URL, when it has a fragment (an unencoded '#'), when an
    '@' is left after the host part (an unencoded '/', '?' or '#' in the password cut the user
    info short), or when a port is not a number."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError(f"{what} cannot be split into its parts; {_ENCODE_HINT}") from None
    rest = url[len(parts.scheme) + 3 + len(parts.netloc) :] if "://" in url else url
    if parts.fragment or "#" in url or "@" in rest:
        raise ConfigError(f"{what} cannot be split into its parts; {_ENCODE_HINT}")
    auth, at, hostspec = parts.netloc.rpartition("@")
    user_text, colon, password_text = auth.partition(":") if at else ("", "", "")
    for host in hostspec.split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        if ":" in port and not port.rpartition(":")[2].isdigit():
            raise ConfigError(f"{what} has a port that is not a number; {_ENCODE_HINT}")
    try:
        query = tuple(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
    except ValueError:
        raise ConfigError(f"{what} has a query string that cannot be read") from None
    return UrlParts(
        scheme=parts.scheme.lower(),
        user=unquote(user_text) if user_text else None,
        password=unquote(password_text) if colon else None,
        hostspec=hostspec,
        path=parts.path,
        query=query,
    )


def readable_file(path: str, option: str) -> str:
    """`path` (a certificate, a CA bundle) when it is a readable regular file, else a
    ConfigError naming the option and the file."""
    expanded = os.path.expanduser(path)
    try:
        with open(expanded, "rb"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{option}: cannot read {path!r} ({reason})") from None
    if not os.path.isfile(expanded):
        raise ConfigError(f"{option}: {path!r} is not a file")
    return expanded


def read_password_file(path: str) -> str:
    """The password held in the file at `path` (see the module docstring). Errors name the file,
    never its content."""
    where = f"{PASSWORD_FILE} {path!r}"
    expanded = os.path.expanduser(path)
    try:
        fd = os.open(expanded, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{where} cannot be read ({reason})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{where} is not a regular file")
        if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{where} may be read or written by group or others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); make it the owner's only: chmod 600 {path}"
            )
        if info.st_size > _MAX_PASSWORD_FILE_BYTES:
            raise ConfigError(f"{where} is larger than a password file can be (64 KiB)")
        data = b""
        while chunk := os.read(fd, _MAX_PASSWORD_FILE_BYTES + 1 - len(data)):
            data += chunk
            if len(data) > _MAX_PASSWORD_FILE_BYTES:
                raise ConfigError(f"{where} is larger than a password file can be (64 KiB)")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{where} cannot be read ({reason})") from None
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text") from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise ConfigError(f"{where} is empty")
    return text


def secret_forms(*secrets: str | None) -> tuple[str, ...]:
    """Each secret as it may appear in a message: as it is, percent-encoded and -decoded;
    longest first, so a longer form is masked whole."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.update({secret, quote(secret, safe=""), unquote(secret)})
    return tuple(sorted((f for f in forms if f), key=len, reverse=True))


def mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _MASK)
    return text


@contextlib.contextmanager
def masked(secrets: Sequence[str]) -> Iterator[None]:
    """Re-raise a StratumError whose message holds one of `secrets` (see `secret_forms`) with
    the secret masked and without the chain that held it. A safeguard: no message is meant to
    hold a secret in the first place."""
    try:
        yield
    except StratumError as exc:
        text = str(exc)
        if not secrets or not any(s in text for s in secrets):
            raise
        try:
            replacement = type(exc)(mask(text, secrets))
        except TypeError:  # an error class built from fields: fall back to its category
            replacement = ConfigError(mask(text, secrets))
        raise replacement from None


def tls_failure(exc: BaseException) -> BaseException | None:
    """The TLS error in `exc` or what it was raised from or during (drivers wrap them): a
    certificate that does not verify, or a handshake the two sides could not agree on. An
    end of file or a reset in the middle of a handshake is not one (the network's, retried)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        error = todo.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, ssl.SSLError) and not isinstance(
            error, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError
        ):
            return error
        todo.extend(e for e in (error.__cause__, error.__context__) if e is not None)
    return None
