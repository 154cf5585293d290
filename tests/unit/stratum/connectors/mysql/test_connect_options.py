"""MySQL URL options: password_file, ssl-mode and ssl-ca parsed, turned into the TLS context and
keyword arguments the driver gets (a fake driver records them), and TLS required before any
credential is sent. (Against real servers: tests/integration/security/test_tls.py.)"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import anyio
import pytest

from stratum.connectors._credentials import TlsError
from stratum.connectors.mysql import _connect
from stratum.connectors.mysql._connect import Driver, MySQLUrl, connect, parse_url, tls_context
from stratum.connectors.mysql._errors import DriverErrors
from stratum.errors import ConfigError, ConnectionLost

SECRET = "S3cr3t-my-unit"
CA = """-----BEGIN CERTIFICATE-----
MIIBlTCCATugAwIBAgIUDHVQLEhLVJHmHk3h1RET0DD7LH4wCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUc3RyYXR1bSB1bml0IHRlc3QgQ0EwIBcNMjYxMTIyMDExMjM0
WhgPMjEyNjEwMjkwMTEyMzRaMB8xHTAbBgNVBAMMFHN0cmF0dW0gdW5pdCB0ZXN0
IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDiNPtRQldeYip9/N8h+LzdSQ
+DczrFQF7uhHgDVgFRrAV7izCfXa5md8uz73DZtLCdg8z9R5CuWqZbhAerjO5KNT
MFEwHQYDVR0OBBYEFO+q5sF7uUAkuFJEa/untstGzfUyMB8GA1UdIwQYMBaAFO+q
5sF7uUAkuFJEa/untstGzfUyMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SAAwRQIhAKBnrmOocPN3pHfidTIu1kw+dW9BjvvckWmUPuSh4/MXAiB3h/NjSlvI
6DiONPPpFG1IFNuUp37Ohg08RdRiNZm/7w==
-----END CERTIFICATE-----
"""


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text(CA)
    return path


# --- parsing ---------------------------------------------------------------------------------


def test_defaults_and_the_password_stay_out_of_repr() -> None:
    url = parse_url(f"mysql://etl:{SECRET}@db.example:3307/shop")
    assert (url.host, url.port, url.user, url.database) == ("db.example", 3307, "etl", "shop")
    assert (url.ssl_mode, url.ssl_ca, url.password_file) == ("DISABLED", None, None)
    assert url.password == SECRET
    assert SECRET not in repr(url)
    assert parse_url("mariadb://[::1]/x").host == "::1"


@pytest.mark.parametrize(
    ("query", "mode"),
    [
        ("ssl-mode=REQUIRED", "REQUIRED"),
        ("ssl_mode=required", "REQUIRED"),
        ("ssl-mode=verify-ca", "VERIFY_CA"),
        ("ssl-mode=Verify_Identity", "VERIFY_IDENTITY"),
        ("ssl-mode=DISABLED", "DISABLED"),
    ],
)
def test_ssl_modes(query: str, mode: str) -> None:
    assert parse_url(f"mysql://h/db?{query}").ssl_mode == mode


def test_ssl_ca(ca: Path) -> None:
    assert parse_url(f"mysql://h/db?ssl-ca={ca}").ssl_mode == "VERIFY_CA"  # as mysql's client
    url = parse_url(f"mysql://h/db?ssl_mode=VERIFY_IDENTITY&ssl_ca={ca}")
    assert (url.ssl_mode, url.ssl_ca) == ("VERIFY_IDENTITY", str(ca))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("ssl-mode=PREFERRED", "ssl-mode=PREFERRED (TLS only when the server offers it) is not"),
        ("ssl-mode=on", "ssl-mode='on' is not one of DISABLED, REQUIRED, VERIFY_CA, VERIFY"),
        ("ssl-mode=REQUIRED&ssl_mode=REQUIRED", "gives both ssl-mode and ssl_mode"),
        ("ssl-mode=REQUIRED&ssl-ca={ca}", "which ssl-mode=REQUIRED does not do: use ssl-mode"),
        ("ssl-mode=DISABLED&ssl-ca={ca}", "which ssl-mode=DISABLED does not do"),
        ("ssl-ca={tmp}/missing.pem", "ssl-ca: cannot read '{tmp}/missing.pem' (No such file"),
        ("sslmode=require", "unknown MySQL URL parameter(s) ['sslmode']: the supported ones are"),
        ("password_file=", "password_file names no file"),
    ],
)
def test_options_refused(ca: Path, tmp_path: Path, query: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_url("mysql://h/db?" + query.format(ca=ca, tmp=tmp_path))
    assert message.format(tmp=tmp_path) in str(error.value)


def test_password_file_option(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    url = parse_url(f"mysql://etl@h/db?password_file={path}")
    assert (url.password, url.password_file) == ("", str(path))
    assert url.read_password() == SECRET
    with pytest.raises(ConfigError, match="gives a password and a password_file"):
        parse_url(f"mysql://etl:inline@h/db?password_file={path}")


@pytest.mark.parametrize(
    "url",
    [f"mysql://u:{SECRET}/x@h/db", f"mysql://u:{SECRET}#x@h/db", f"mysql://u@h:{SECRET}/db"],
)
def test_a_url_that_cannot_be_split_is_never_quoted(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_url(url)
    assert SECRET not in str(error.value)
    assert "must be percent-encoded" in str(error.value)


# --- the TLS context -------------------------------------------------------------------------


def test_tls_contexts(ca: Path) -> None:
    assert tls_context(MySQLUrl()) is None
    required = tls_context(MySQLUrl(ssl_mode="REQUIRED"))
    assert required is not None
    assert (required.verify_mode, required.check_hostname) == (ssl.CERT_NONE, False)
    verify_ca = tls_context(MySQLUrl(ssl_mode="VERIFY_CA", ssl_ca=str(ca)))
    assert verify_ca is not None
    assert (verify_ca.verify_mode, verify_ca.check_hostname) == (ssl.CERT_REQUIRED, False)
    subjects = [dict(s[0] for s in c["subject"]) for c in verify_ca.get_ca_certs()]
    assert subjects == [{"commonName": "stratum unit test CA"}]  # that CA, and only it
    identity = tls_context(MySQLUrl(ssl_mode="VERIFY_IDENTITY", ssl_ca=str(ca)))
    assert identity is not None
    assert (identity.verify_mode, identity.check_hostname) == (ssl.CERT_REQUIRED, True)
    system = tls_context(MySQLUrl(ssl_mode="VERIFY_CA"))  # the system's CAs
    assert system is not None
    assert system.verify_mode == ssl.CERT_REQUIRED


# --- what the driver is given ----------------------------------------------------------------


class FakeError(Exception):
    pass


class FakeInterfaceError(FakeError):
    pass


class FakeCursor:
    async def execute(self, sql: str, args: Any = None) -> None:
        pass

    async def fetchall(self) -> list[tuple[Any, ...]]:
        return []

    async def close(self) -> None:
        pass


class FakeConnection:
    """Records how it was made; connects as the drivers do: greeting, then authentication."""

    made: list[dict[str, Any]] = []  # noqa: RUF012 (a record shared by the test)
    authenticated: list[bool] = []  # noqa: RUF012
    capabilities = 0xF7FE  # a real MariaDB greeting without TLS (CLIENT_SSL is 0x0800)

    def __init__(self, **options: Any) -> None:
        FakeConnection.made.append(options)
        self.server_capabilities = 0

    async def connect(self) -> None:
        self.server_capabilities = type(self).capabilities
        await self._request_authentication()

    async def _request_authentication(self) -> None:
        FakeConnection.authenticated.append(True)

    def cursor(self, *cls: Any) -> FakeCursor:
        return FakeCursor()

    async def ensure_closed(self) -> None:
        pass

    def close(self) -> None:
        pass


class WithTls(FakeConnection):
    capabilities = 0xF7FE | 0x0800


class NeverAuthenticates(WithTls):
    async def connect(self) -> None:  # a driver that no longer calls the hook
        self.server_capabilities = type(self).capabilities


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The driver `connect` uses: its plain connect records the options too."""
    chosen: dict[str, Any] = {"class": FakeConnection, "name": "asyncmy"}
    FakeConnection.made.clear()
    FakeConnection.authenticated.clear()

    async def plain_connect(**options: Any) -> FakeConnection:
        connection = chosen["class"](**options)
        await connection.connect()
        return connection

    def fake_import(name: str) -> Driver:
        chosen["name"] = name
        errors = DriverErrors(FakeError, FakeInterfaceError)
        open_method = "connect"
        return Driver(name, plain_connect, chosen["class"], open_method, errors, FakeCursor)

    monkeypatch.setattr(_connect, "_import_driver", fake_import)
    return chosen


def run_connect(url: str) -> Any:
    async def go() -> Any:
        connection = await connect(url)
        await connection.close()
        return connection

    return anyio.run(go)


def test_the_driver_gets_no_tls_unless_asked(driver: dict[str, Any]) -> None:
    run_connect(f"mysql://etl:{SECRET}@h:3307/shop")
    (options,) = FakeConnection.made
    assert "ssl" not in options
    assert options["password"] == SECRET
    assert (options["host"], options["port"], options["database"]) == ("h", 3307, "shop")
    run_connect("mysql://etl@h/shop?driver=aiomysql")
    assert FakeConnection.made[1]["db"] == "shop"  # aiomysql's name for it


def test_required_tls_refuses_a_server_without_it_before_authenticating(
    driver: dict[str, Any],
) -> None:
    with pytest.raises(TlsError) as refused:
        run_connect(f"mysql://etl:{SECRET}@h:3307/shop?ssl-mode=REQUIRED")
    assert str(refused.value) == (
        "the MySQL server at h:3307 does not offer TLS, and the URL asks for ssl-mode=REQUIRED; "
        "no credentials were sent"
    )
    assert FakeConnection.authenticated == []  # the driver's authentication never ran
    (options,) = FakeConnection.made
    assert isinstance(options["ssl"], ssl.SSLContext)
    assert options["ssl"].verify_mode == ssl.CERT_NONE


def test_required_tls_with_a_server_that_offers_it(driver: dict[str, Any], ca: Path) -> None:
    driver["class"] = WithTls
    run_connect(f"mysql://etl@h/shop?ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}")
    assert FakeConnection.authenticated == [True]
    (options,) = FakeConnection.made
    assert options["ssl"].check_hostname is True
    assert options["ssl"].verify_mode == ssl.CERT_REQUIRED


def test_a_driver_that_skips_the_check_is_refused(driver: dict[str, Any]) -> None:
    driver["class"] = NeverAuthenticates
    with pytest.raises(TlsError, match="cannot make sure the connection to the MySQL server"):
        run_connect("mysql://etl@h/shop?ssl-mode=REQUIRED")


def test_a_certificate_error_is_a_tls_error_not_a_lost_connection(
    driver: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Untrusted(WithTls):
        async def connect(self) -> None:
            try:
                raise ssl.SSLCertVerificationError(1, "certificate verify failed")
            except ssl.SSLError as exc:
                raise FakeError(2003, "Can't connect to MySQL server") from exc

    driver["class"] = Untrusted
    with pytest.raises(TlsError, match=r"TLS with the MySQL server at h:3306 failed"):
        run_connect("mysql://etl@h/shop?ssl-mode=VERIFY_CA")
    driver["class"] = type("Refused", (FakeConnection,), {"connect": _refused})
    with pytest.raises(ConnectionLost):  # without TLS asked, the same errno is the network's
        run_connect("mysql://etl@h/shop")


async def _refused(self: Any) -> None:
    raise FakeError(2003, "Can't connect to MySQL server")


def test_the_password_file_is_read_when_connecting(driver: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("first\n")
    path.chmod(0o600)
    run_connect(f"mysql://etl@h/shop?password_file={path}")
    path.write_text("rotated\n")
    run_connect(f"mysql://etl@h/shop?password_file={path}")
    assert [o["password"] for o in FakeConnection.made] == ["first", "rotated"]
