"""Fixtures of the security tests: TLS certificates, and private PostgreSQL and MariaDB servers.

The shared servers of the other tests (tests/support/databases.py) accept PostgreSQL logins
without a password (trust) and run without TLS, and changing either on a server other tests use
at the same time would change what they see (test-conn's `tls` column, for one). So the tests
that need a server to check passwords, or to speak TLS, start a private one from the same
binaries: a PostgreSQL cluster (`initdb`, scram-sha-256 for every login, `ssl = on`) and a
MariaDB server (`mariadb-install-db`, `--ssl-cert`...), each in a temporary directory, on a free
port of 127.0.0.1, stopped and deleted after the session. Their server certificate is signed by
a CA made here (`openssl`) and names `localhost` only, so `verify-full`/`VERIFY_IDENTITY` pass
for `localhost` and fail for `127.0.0.1`; a second CA signs nothing, for "untrusted" cases.

When the binaries are missing (or, run as root, the `postgres`/`mysql` accounts the servers
must run as), the tests that need them are skipped with the reason: a local server cannot be
started here. They never touch the shared servers' configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncmy
import asyncpg
import pytest

_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA that signed the servers' certificate
    other_ca: Path  # a CA that signed nothing here
    cert: Path  # the servers' certificate (CN and SAN: localhost)
    key: Path


@dataclass(frozen=True)
class PrivateServer:
    """A private server: `admin_url` logs in as its superuser (with a password)."""

    kind: str  # "postgresql" or "mysql"
    host: str
    port: int
    admin_user: str
    admin_password: str
    certificates: Certificates

    def url(self, user: str, password: str | None, database: str, host: str | None = None) -> str:
        auth = user + (f":{password}" if password is not None else "")
        return f"{self.kind}://{auth}@{host or self.host}:{self.port}/{database}"

    @property
    def admin_url(self) -> str:
        database = "postgres" if self.kind == "postgresql" else ""
        return self.url(self.admin_user, self.admin_password, database)

    def admin(self, *statements: str, database: str | None = None) -> None:
        """Run `statements` as the superuser (PostgreSQL: in `database`, default postgres)."""
        if self.kind == "postgresql":
            _pg_admin(self, statements, database or "postgres")
        else:
            _my_admin(self, statements, self.admin_password)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _service_user(name: str) -> str | None:
    """Who a server runs as: `name` when we are root (servers refuse to run as root), else us."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        pytest.skip(f"running as root, and there is no '{name}' account to run a server as")
    return name


def _give(path: Path, user: str | None) -> None:
    if user is not None:
        shutil.chown(path, user, user if _has_group(user) else None)


def _has_group(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _run(args: list[str], user: str | None, what: str) -> None:
    done = subprocess.run(
        args, user=user, capture_output=True, text=True, timeout=_START_TIMEOUT, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}): {done.stderr or done.stdout}")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], capture_output=True, check=True, timeout=60)


@pytest.fixture(scope="session")
def certificates() -> Iterator[Certificates]:
    """A CA, a certificate for `localhost` signed by it, and an unrelated CA (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed: no certificates can be made")
    directory = Path(tempfile.mkdtemp(prefix="stratum-sec-certs-"))
    directory.chmod(0o755)  # the servers' accounts read the certificate and key from here
    try:
        for name in ("ca", "other_ca"):
            _openssl(
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", str(directory / f"{name}.key"), "-out", str(directory / f"{name}.crt"),
                "-subj", f"/CN=stratum security tests {name}",
            )  # fmt: skip
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(directory / "server.key"),
            "-out", str(directory / "server.csr"), "-subj", "/CN=localhost",
        )  # fmt: skip
        (directory / "san.ext").write_text("subjectAltName=DNS:localhost\n")
        _openssl(
            "x509", "-req", "-in", str(directory / "server.csr"), "-CA", str(directory / "ca.crt"),
            "-CAkey", str(directory / "ca.key"), "-CAcreateserial", "-days", "2",
            "-out", str(directory / "server.crt"), "-extfile", str(directory / "san.ext"),
        )  # fmt: skip
        for name in ("ca.crt", "other_ca.crt", "server.crt"):
            (directory / name).chmod(0o644)
        yield Certificates(
            ca=directory / "ca.crt",
            other_ca=directory / "other_ca.crt",
            cert=directory / "server.crt",
            key=directory / "server.key",
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _server_copy_of_key(certificates: Certificates, directory: Path, user: str | None) -> Path:
    """The key and certificate in the server's own directory, its account's, the key 0600."""
    for source in (certificates.cert, certificates.key):
        shutil.copy(source, directory / source.name)
        _give(directory / source.name, user)
    (directory / certificates.key.name).chmod(0o600)
    return directory


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(found.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


@pytest.fixture(scope="session")
def private_postgres(certificates: Certificates) -> Iterator[PrivateServer]:
    """A private PostgreSQL cluster: scram-sha-256 for every login, TLS on (see the module)."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) to start a private server with")
    user = _service_user("postgres")
    base = Path(tempfile.mkdtemp(prefix="stratum-sec-pg-"))
    _give(base, user)
    password = "admin-" + secrets.token_hex(8)
    (base / "pw").write_text(password + "\n")
    _give(base / "pw", user)
    data = base / "data"
    port = free_port()
    try:
        _run(
            [
                str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "scram-sha-256",
                f"--pwfile={base / 'pw'}", "--no-sync", "--no-instructions", "-E", "UTF8",
                "--locale=C.UTF-8",
            ],
            user,
            "initdb",
        )  # fmt: skip
        _server_copy_of_key(certificates, base, user)
        options = " ".join(
            [
                f"-p {port}", f"-k {base}", "-c listen_addresses=127.0.0.1", "-c ssl=on",
                f"-c ssl_cert_file={base / certificates.cert.name}",
                f"-c ssl_key_file={base / certificates.key.name}",
                "-c fsync=off", "-c max_connections=40",
            ]
        )  # fmt: skip
        _run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"),
             "-w", "-t", "60", "start"],
            user,
            "pg_ctl start",
        )  # fmt: skip
        yield PrivateServer("postgresql", "127.0.0.1", port, "postgres", password, certificates)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                user=user,
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(base, ignore_errors=True)


def _pg_admin(server: PrivateServer, statements: tuple[str, ...], database: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(
            host=server.host,
            port=server.port,
            user=server.admin_user,
            password=server.admin_password,
            database=database,
            ssl=False,
        )
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


# --- MariaDB ---------------------------------------------------------------------------------


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


@pytest.fixture(scope="session")
def private_mariadb(certificates: Certificates) -> Iterator[PrivateServer]:
    """A private MariaDB server with TLS (see the module); root logs in with a password."""
    install, daemon = _which("mariadb-install-db"), _which("mariadbd")
    if install is None or daemon is None:
        pytest.skip("no MariaDB binaries (mariadb-install-db, mariadbd) to start a server with")
    user = _service_user("mysql")
    base = Path(tempfile.mkdtemp(prefix="stratum-sec-my-"))
    _give(base, user)
    data = base / "data"
    port = free_port()
    process: subprocess.Popen[bytes] | None = None
    password = "admin-" + secrets.token_hex(8)
    try:
        _run(
            [install, "--no-defaults", f"--datadir={data}", "--skip-test-db",
             "--auth-root-authentication-method=normal", "--skip-name-resolve"],
            user,
            "mariadb-install-db",
        )  # fmt: skip
        _server_copy_of_key(certificates, base, user)
        shutil.copy(certificates.ca, base / "ca.crt")
        _give(base / "ca.crt", user)
        process = subprocess.Popen(
            [
                daemon, "--no-defaults", f"--datadir={data}", f"--port={port}",
                "--bind-address=127.0.0.1", f"--socket={base / 'sock'}",
                f"--pid-file={base / 'pid'}", "--skip-name-resolve", "--skip-log-bin",
                f"--ssl-cert={base / certificates.cert.name}",
                f"--ssl-key={base / certificates.key.name}", f"--ssl-ca={base / 'ca.crt'}",
                "--innodb-buffer-pool-size=16M", f"--log-error={base / 'error.log'}",
            ],
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        server = PrivateServer("mysql", "127.0.0.1", port, "root", password, certificates)
        _wait_for_mariadb(server, process, base)
        yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_mariadb(server: PrivateServer, process: subprocess.Popen[bytes], base: Path) -> None:
    """Until root can log in (without a password, as installed); then give root a password."""
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        try:
            _my_admin(
                server,
                (
                    f"ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{server.admin_password}'",
                    f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{server.admin_password}'",
                ),
                "",
            )
            return
        except (OSError, asyncmy.errors.OperationalError):
            if process.poll() is not None or time.monotonic() > deadline:
                log = base / "error.log"
                pytest.fail(
                    "the private MariaDB server did not start: "
                    + (log.read_text(errors="replace")[-2000:] if log.exists() else "no log")
                )
            time.sleep(0.1)


def _my_admin(server: PrivateServer, statements: tuple[str, ...], password: str) -> None:
    async def go() -> None:
        conn = await asyncmy.connect(
            host=server.host,
            port=server.port,
            user=server.admin_user,
            password=password,
            autocommit=True,
            connect_timeout=5,
        )
        try:
            async with conn.cursor() as cursor:
                for statement in statements:
                    await cursor.execute(statement)
        finally:
            with contextlib.suppress(Exception):
                await conn.ensure_closed()

    asyncio.run(go())
