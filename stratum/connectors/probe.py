"""Probing a connection before a run: can it be reached, and may it do what the plan asks of it?

`probe` connects once (PostgreSQL through asyncpg, MySQL/MariaDB through asyncmy or, with
`?driver=aiomysql`, aiomysql; DuckDB is a file), measures three `SELECT 1` round trips, asks the
server whether the session is encrypted, and checks each privilege in `Needs` with the server's
own privilege functions. A failure is classified by the exception's type into a `cause`.

The URL given to `probe` is a secret (its `${VAR}`s are expanded): it never appears in a result,
and the password is masked out of any server or driver message that would repeat it.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import statistics
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import anyio

from smql import Mode
from stratum.connectors._credentials import TlsError
from stratum.errors import StratumError
from stratum.plan.model import (
    DatabaseSource,
    DatasetSource,
    FeatureSource,
    MigrationPlan,
    QuerySource,
    StageSource,
    TableRef,
    TableSource,
)

__all__ = [
    "CAUSES",
    "Cause",
    "Needs",
    "ProbeResult",
    "Read",
    "Write",
    "classify",
    "needs_of",
    "probe",
]

Cause = Literal["dns", "refused", "timeout", "auth", "tls", "database", "privileges", "other"]
CAUSES: tuple[Cause, ...] = (
    "dns",
    "refused",
    "timeout",
    "auth",
    "tls",
    "database",
    "privileges",
    "other",
)

_PG_SCHEMES = ("postgresql", "postgres")
_MYSQL_SCHEMES = ("mysql", "mariadb")
_PG_DEFAULT_SCHEMA = "public"  # where the PostgreSQL destination writes an unqualified target
_BOOKKEEPING_SCHEMA = "stratum"
_BOOKKEEPING_TABLE = "checkpoints"
_MY_BOOKKEEPING_TABLE = "stratum_checkpoints"  # in the connection's own database
_ROUND_TRIPS = 3
_MASK = "***"

# --- what the plan needs ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Read:
    """The plan reads `schema.table` from the connection; table None: every table of it."""

    schema: str | None
    table: str | None


@dataclass(frozen=True, slots=True)
class Write:
    """The plan writes `schema.table` (table None: tables of the schema it creates)."""

    schema: str | None
    table: str | None
    truncate: bool = False  # MODE full empties the table first
    update: bool = False  # an upsert updates rows already there


@dataclass(frozen=True, slots=True)
class Needs:
    """What a plan asks of one connection."""

    reads: tuple[Read, ...] = ()
    writes: tuple[Write, ...] = ()
    queries: bool = False  # runs SQL written in the plan (a QUERY source, a STAGE ... AS)

    @property
    def uses(self) -> tuple[str, ...]:
        roles = []
        if self.reads or self.queries:
            roles.append("source")
        if self.writes:
            roles.append("destination")
        return tuple(roles)


def needs_of(plan: MigrationPlan, connection: str) -> Needs:
    """Which items of the plan read from, and write to, `connection`."""
    reads: dict[Read, None] = {}
    writes: dict[tuple[str | None, str | None], Write] = {}
    queries = False

    def read(ref: TableRef | None) -> None:
        if ref is not None and ref.connection == connection:
            reads[Read(ref.schema, ref.table)] = None

    for item in plan.items:
        source = item.source
        if isinstance(source, TableSource):
            read(source.table)
        elif isinstance(source, DatabaseSource):
            read(source.database)
        elif isinstance(source, QuerySource):
            queries = queries or source.connection == connection
        elif isinstance(source, StageSource):
            read(source.input)
            queries = queries or (source.query is not None and item.target.connection == connection)
        elif isinstance(source, FeatureSource):
            read(source.input)
        elif isinstance(source, DatasetSource):
            read(source.spine)
            for features in source.features:
                read(features.table)
        target = item.target
        if target.connection != connection:
            continue
        options = item.options
        truncate = options.mode is Mode.FULL
        update = options.mode is Mode.UPSERT or (
            options.mode is Mode.INCREMENTAL and bool(options.key)
        )
        key = (target.schema, target.table)
        before = writes.get(key)
        if before is not None:
            truncate, update = truncate or before.truncate, update or before.update
        writes[key] = Write(target.schema, target.table, truncate, update)
    return Needs(tuple(reads), tuple(writes.values()), queries)


# --- the result ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeResult:
    name: str
    ok: bool  # reachable, and every privilege held
    cause: Cause | None  # None when ok
    message: str | None  # one line, for people; never holds a secret
    server_version: str | None = None
    latency_ms: float | None = None  # the median of three SELECT 1 round trips
    tls: bool | None = None  # None: not known, or not a network connection
    privileges: tuple[tuple[str, bool], ...] = field(default=())  # (what, held)

    @property
    def reachable(self) -> bool:
        return self.cause in (None, "privileges")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "reachable": self.reachable,
            "cause": self.cause,
            "message": self.message,
            "server_version": self.server_version,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "tls": self.tls,
            "privileges": [{"what": what, "ok": held} for what, held in self.privileges],
        }


@dataclass(frozen=True, slots=True)
class _Facts:
    """What a successful connection found out."""

    version: str | None
    latency_ms: float | None
    tls: bool | None
    privileges: list[tuple[str, bool]]


def failed(name: str, cause: Cause, message: str) -> ProbeResult:
    return ProbeResult(name, False, cause, message)


# --- probing ---------------------------------------------------------------------------------


async def probe(
    name: str,
    url: str,
    *,
    needs: Needs,
    timeout: float = 5.0,  # noqa: ASYNC109 (the connect timeout drivers take; bounded inside)
    base_dir: Path | None = None,
) -> ProbeResult:
    """Connect to `url` (expanded: a secret) and check what `needs` asks for. Never raises for a
    connection problem: it becomes the result's cause and message."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    secrets = _secrets(url)
    try:
        with anyio.fail_after(timeout * 3):  # connecting has `timeout`; the checks the rest
            if scheme in _PG_SCHEMES:
                facts = await _probe_postgres(url, needs, timeout)
            elif scheme in _MYSQL_SCHEMES:
                facts = await _probe_mysql(url, needs, timeout)
            elif scheme == "duckdb":
                return await _probe_duckdb(name, url, needs, base_dir or Path.cwd())
            else:
                return failed(name, "other", f"no probe for '{scheme}://' connections")
    except Exception as exc:
        cause, message = classify(exc, host=parts.hostname, port=_port(parts), timeout=timeout)
        return failed(name, cause, _scrub(message, secrets))
    privileges = tuple(_unique(facts.privileges))
    ok = all(held for _, held in privileges)
    missing = [what for what, held in privileges if not held]
    return ProbeResult(
        name,
        ok,
        None if ok else "privileges",
        None if ok else _scrub("missing: " + "; ".join(missing), secrets),
        facts.version,
        facts.latency_ms,
        facts.tls,
        privileges,
    )


def _port(parts: Any) -> int | None:
    try:
        port: int | None = parts.port
    except ValueError:
        return None
    return port


def _unique(pairs: Iterable[tuple[str, bool]]) -> Iterator[tuple[str, bool]]:
    seen: set[str] = set()
    for what, held in pairs:
        if what not in seen:
            seen.add(what)
            yield what, held


async def _round_trips(run: Any) -> float:
    times = []
    for _ in range(_ROUND_TRIPS):
        start = time.perf_counter()
        await run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


# --- cause classification --------------------------------------------------------------------


def classify(
    exc: BaseException,
    *,
    host: str | None = None,
    port: int | None = None,
    timeout: float | None = None,
) -> tuple[Cause, str]:
    """The cause of a failed connection, by the type of the exception (or of one it wraps), and
    a one-line message. The caller masks secrets out of the message."""
    where = f"{host or '127.0.0.1'}" + (f":{port}" if port else "")
    for error in _chain(exc):
        cause = _cause_of(error)
        if cause is None:
            continue
        if cause == "dns":
            return cause, f"cannot resolve host name {host or '?'!r} ({_first_line(error)})"
        if cause == "refused":
            return cause, f"connection refused by {where}"
        if cause == "timeout":
            within = f" within {timeout:g} s" if timeout is not None else ""
            return cause, f"no answer from {where}{within}"
        return cause, _first_line(error)
    if isinstance(exc, StratumError):  # the connector's own words (a bad URL option...)
        return "other", _first_line(exc)
    return "other", f"{type(exc).__name__}: {_first_line(exc)}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what it was raised from or during, then group members."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        error = todo.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        if isinstance(error, BaseExceptionGroup):
            todo.extend(error.exceptions)
        todo.extend(e for e in (error.__cause__, error.__context__) if e is not None)


def _cause_of(error: BaseException) -> Cause | None:
    if isinstance(error, TlsError):
        return "tls"
    if isinstance(error, socket.gaierror):
        return "dns"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return "tls"
    cause = _pg_cause(error) or _mysql_cause(error)
    if cause is not None:
        return cause
    if isinstance(error, ConnectionError) and "SSL" in str(error):
        return "tls"  # asyncpg: 'server ... rejected SSL upgrade' (sslmode=require)
    if isinstance(error, OSError) and not isinstance(error, ConnectionError):
        if error.errno == errno.ECONNREFUSED:
            return "refused"
        if error.errno == errno.ETIMEDOUT:
            return "timeout"
    return None


def _pg_cause(error: BaseException) -> Cause | None:
    try:
        import asyncpg  # noqa: PLC0415 (drivers are imported when needed)
    except ImportError:  # pragma: no cover - asyncpg is a dependency of the postgres extra
        return None
    if isinstance(
        error, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return "auth"
    if isinstance(error, asyncpg.InvalidCatalogNameError):
        return "database"
    if isinstance(error, asyncpg.InsufficientPrivilegeError):
        return "privileges"
    return None


_MYSQL_CODES: dict[int, Cause] = {
    1045: "auth",  # access denied for user (bad password)
    1698: "auth",  # access denied (auth plugin refused)
    1044: "privileges",  # access denied for user to database
    1049: "database",  # unknown database
    2026: "tls",  # SSL connection error
}


def _mysql_cause(error: BaseException) -> Cause | None:
    roots: list[type[BaseException]] = []
    try:
        import asyncmy.errors  # noqa: PLC0415 (drivers are imported when needed)

        roots.append(asyncmy.errors.MySQLError)
    except ImportError:  # pragma: no cover
        pass
    try:
        import aiomysql  # noqa: PLC0415 (its errors are PyMySQL's)

        roots.append(aiomysql.MySQLError)
    except ImportError:  # pragma: no cover
        pass
    if not roots or not isinstance(error, tuple(roots)):
        return None
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    return _MYSQL_CODES.get(code) if code is not None else None


def _first_line(error: BaseException) -> str:
    if len(error.args) == 2 and isinstance(error.args[0], int):  # MySQL: (code, message)
        text = f"{error.args[1]} ({error.args[0]})"
    else:
        text = str(error) or type(error).__name__
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _secrets(url: str) -> list[str]:
    """The password of an expanded URL (raw and percent-decoded, or the content of its
    password_file), to mask out of messages."""
    found: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        for key, value in parse_qsl(parts.query):
            if key.lower() in ("password", "pass", "pwd") and value:
                found.append(value)
        found += _password_file_secret(url, parts.scheme.lower())
    except ValueError:
        pass
    return sorted({s for s in found if s}, key=len, reverse=True)


def _password_file_secret(url: str, scheme: str) -> list[str]:
    from stratum.connectors.mysql._connect import parse_url as parse_mysql  # noqa: PLC0415
    from stratum.connectors.postgres._connect import parse_url as parse_pg  # noqa: PLC0415

    try:
        if scheme in _PG_SCHEMES and parse_pg(url).password_file:
            return [parse_pg(url).read_password() or ""]
        if scheme in _MYSQL_SCHEMES and parse_mysql(url).password_file:
            return [parse_mysql(url).read_password()]
    except StratumError:  # the connection attempt reports it
        pass
    return []


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _MASK)
    return text


# --- PostgreSQL ------------------------------------------------------------------------------

_PG_TABLE = """
SELECT has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, $3)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = coalesce($1, current_schema()) AND c.relname = $2
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"""
_PG_SCHEMA = """
SELECT n.nspname, has_schema_privilege(n.oid, $2)
FROM pg_catalog.pg_namespace n WHERE n.nspname = coalesce($1, current_schema())"""
_PG_TABLES_OF = """
SELECT c.relname, has_table_privilege(c.oid, 'SELECT')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname"""
_PG_CREATE_IN_DATABASE = (
    "SELECT current_database(), has_database_privilege(current_database(), 'CREATE')"
)


async def _probe_postgres(url: str, needs: Needs, connect_timeout: float) -> _Facts:
    from stratum.connectors.postgres._connect import connect  # noqa: PLC0415 (asyncpg)

    # the connector's own connect: the same URL options (password_file, sslmode...) as `migrate`
    conn = await connect(
        url,
        timeout=connect_timeout,
        statement_cache_size=0,
        server_settings={"application_name": "stratum test-conn"},
    )
    try:
        version = await conn.fetchval("SHOW server_version")
        latency = await _round_trips(lambda: conn.fetchval("SELECT 1"))
        tls = await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        privileges = await _pg_privileges(conn, needs)
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await conn.close(timeout=connect_timeout)
            except Exception:
                conn.terminate()
    return _Facts(str(version), latency, None if tls is None else bool(tls), privileges)


async def _pg_privileges(conn: Any, needs: Needs) -> list[tuple[str, bool]]:
    found: list[tuple[str, bool]] = []
    for read in needs.reads:
        if read.table is not None:
            found.append(await _pg_table(conn, read.schema, read.table, "SELECT"))
            continue
        row = await conn.fetchrow(_PG_SCHEMA, read.schema, "USAGE")
        if row is None:
            found.append((f"USAGE on schema {read.schema or '(current)'} (no such schema)", False))
            continue
        schema, usage = row[0], bool(row[1])
        found.append((f"USAGE on schema {schema}", usage))
        tables = await conn.fetch(_PG_TABLES_OF, schema)
        found.append(_every_table(schema, [(r[0], bool(r[1]) and usage) for r in tables]))
    for write in needs.writes:
        schema = write.schema or _PG_DEFAULT_SCHEMA
        exists = write.table is not None and (
            await conn.fetchval(_PG_TABLE, schema, write.table, "SELECT") is not None
        )
        if write.table is not None and exists:
            found.append(await _pg_table(conn, schema, write.table, "INSERT"))
            if write.update:
                found.append(await _pg_table(conn, schema, write.table, "UPDATE"))
            if write.truncate:
                found.append(await _pg_table(conn, schema, write.table, "TRUNCATE"))
        else:
            found.append(await _pg_create_in(conn, schema, "tables"))
    if needs.writes:
        table = f"{_BOOKKEEPING_SCHEMA}.{_BOOKKEEPING_TABLE}"
        if (
            await conn.fetchval(_PG_TABLE, _BOOKKEEPING_SCHEMA, _BOOKKEEPING_TABLE, "SELECT")
            is None
        ):
            found.append(await _pg_create_in(conn, _BOOKKEEPING_SCHEMA, f"{table} (bookkeeping)"))
        else:
            for privilege in ("SELECT", "INSERT", "UPDATE"):
                held = await conn.fetchval(
                    _PG_TABLE, _BOOKKEEPING_SCHEMA, _BOOKKEEPING_TABLE, privilege
                )
                found.append((f"{privilege} on {table} (bookkeeping)", bool(held)))
    return found


async def _pg_table(conn: Any, schema: str | None, table: str, privilege: str) -> tuple[str, bool]:
    held = await conn.fetchval(_PG_TABLE, schema, table, privilege)
    name = f"{schema}.{table}" if schema else table
    if held is None:
        return f"{privilege} on {name} (no such table)", False
    return f"{privilege} on {name}", bool(held)


async def _pg_create_in(conn: Any, schema: str, purpose: str) -> tuple[str, bool]:
    """CREATE on the schema, or on the database when the schema must be created first."""
    row = await conn.fetchrow(_PG_SCHEMA, schema, "CREATE")
    if row is not None:
        return f"CREATE on schema {schema} (for {purpose})", bool(row[1])
    database, held = await conn.fetchrow(_PG_CREATE_IN_DATABASE)
    return f"CREATE on database {database} (for schema {schema})", bool(held)


def _every_table(
    container: str, tables: list[tuple[str, bool]], *, visible: bool = False
) -> tuple[str, bool]:
    """MySQL lists only the tables a user holds some privilege on (`visible`)."""
    refused = [name for name, held in tables if not held]
    seen = " visible" if visible else ""
    what = (
        f"SELECT on the {len(tables)}{seen} table{'' if len(tables) == 1 else 's'} of {container}"
    )
    if not tables:
        return f"{what} (none visible)", False
    if refused:
        shown = ", ".join(refused[:5]) + (", ..." if len(refused) > 5 else "")
        return f"{what} (not: {shown})", False
    return what, True


# --- MySQL / MariaDB -------------------------------------------------------------------------

# The privilege, held globally, on the database (grants name databases by LIKE pattern: `_` and
# `%` are wildcards there too), or on the table.
_MY_HAS = """
SELECT
  EXISTS (SELECT 1 FROM information_schema.USER_PRIVILEGES
          WHERE GRANTEE = %(g)s AND PRIVILEGE_TYPE = %(p)s)
  OR EXISTS (SELECT 1 FROM information_schema.SCHEMA_PRIVILEGES
             WHERE GRANTEE = %(g)s AND PRIVILEGE_TYPE = %(p)s AND %(d)s LIKE TABLE_SCHEMA)
  OR EXISTS (SELECT 1 FROM information_schema.TABLE_PRIVILEGES
             WHERE GRANTEE = %(g)s AND PRIVILEGE_TYPE = %(p)s
               AND TABLE_SCHEMA = %(d)s AND TABLE_NAME = %(t)s)"""
_MY_TABLES = (
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
    "AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME"
)
_MY_TABLE_EXISTS = (
    "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
)


async def _probe_mysql(url: str, needs: Needs, connect_timeout: float) -> _Facts:
    from stratum.connectors.mysql._connect import connect  # noqa: PLC0415 (a driver)

    # the connector's own connect: the same URL options (driver, password_file, ssl-mode...)
    # as `migrate`, so a URL the connectors refuse is refused here too
    conn = await connect(url, connect_timeout=connect_timeout)
    database = conn.url.database
    try:

        async def rows(sql: str, args: Any = None) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in await conn.fetchall(sql, args)]

        version = (await rows("SELECT VERSION()"))[0][0]
        latency = await _round_trips(lambda: rows("SELECT 1"))
        status = await rows("SHOW STATUS LIKE 'Ssl_cipher'")
        tls = bool(status and status[0][1])
        privileges = await _mysql_privileges(rows, database, needs)
    finally:
        await conn.close()
    return _Facts(str(version), latency, tls, privileges)


async def _mysql_privileges(
    rows: Any, database: str | None, needs: Needs
) -> list[tuple[str, bool]]:
    user = (await rows("SELECT CURRENT_USER()"))[0][0]
    account, _, host = str(user).rpartition("@")
    grantee = f"'{account}'@'{host}'"

    async def has(privilege: str, db: str, table: str | None = None) -> bool:
        args = {"g": grantee, "p": privilege, "d": db, "t": table}
        return bool((await rows(_MY_HAS, args))[0][0])

    async def table_exists(db: str, table: str) -> bool:
        return bool(await rows(_MY_TABLE_EXISTS, (db, table)))

    found: list[tuple[str, bool]] = []
    for read in needs.reads:
        db = read.schema or database
        if db is None:
            what = f"SELECT on {read.table or 'every table'} (the URL names no database)"
            found.append((what, False))
        elif read.table is not None:
            if await table_exists(db, read.table):
                found.append((f"SELECT on {db}.{read.table}", await has("SELECT", db, read.table)))
            else:
                what = f"SELECT on {db}.{read.table} (no such table, or none of its privileges)"
                found.append((what, False))
        elif await has("SELECT", db):
            found.append((f"SELECT on every table of {db}", True))
        else:
            tables = [str(r[0]) for r in await rows(_MY_TABLES, (db,))]
            selectable = [(t, await has("SELECT", db, t)) for t in tables]
            found.append(_every_table(db, selectable, visible=True))
    for write in needs.writes:
        db = write.schema or database
        if db is None:
            found.append(("CREATE (the URL names no database)", False))
        elif write.table is not None and await table_exists(db, write.table):
            name = f"{db}.{write.table}"
            found.append((f"INSERT on {name}", await has("INSERT", db, write.table)))
            if write.update:
                found.append((f"UPDATE on {name}", await has("UPDATE", db, write.table)))
            if write.truncate:
                held = await has("DROP", db, write.table)
                found.append((f"DROP on {name} (for TRUNCATE)", held))
        else:
            found.append((f"CREATE on database {db}", await has("CREATE", db)))
    if needs.writes and database is not None:
        # MySQL has no schema inside a database: the checkpoints live in the URL's database
        table = _MY_BOOKKEEPING_TABLE
        if await table_exists(database, table):
            for privilege in ("SELECT", "INSERT", "UPDATE"):
                what = f"{privilege} on {database}.{table} (bookkeeping)"
                found.append((what, await has(privilege, database, table)))
        else:
            what = f"CREATE on database {database} (for {table}, bookkeeping)"
            found.append((what, await has("CREATE", database)))
    elif needs.writes:
        found.append(("CREATE of the bookkeeping table (the URL names no database)", False))
    return found


# --- DuckDB ----------------------------------------------------------------------------------


async def _probe_duckdb(name: str, url: str, needs: Needs, base_dir: Path) -> ProbeResult:
    import duckdb  # noqa: PLC0415 (drivers are imported when needed)

    from stratum.connectors.registry import duckdb_path  # noqa: PLC0415 (registry imports much)

    version = str(duckdb.__version__)
    path = duckdb_path(url, base_dir)
    if not isinstance(path, Path):  # in memory: nothing to reach, nothing to keep
        return ProbeResult(name, True, None, None, version, None, None, ())
    privileges: list[tuple[str, bool]] = []
    latency: float | None = None
    if path.exists():
        if not os.access(path, os.R_OK):
            return ProbeResult(name, False, "privileges", f"cannot read {path}", version)
        if needs.writes:
            privileges.append((f"write {path.name}", os.access(path, os.W_OK)))
        latency, tables = await anyio.to_thread.run_sync(_duckdb_look, path, needs.reads)
        for read in needs.reads:
            label = ".".join(p for p in (read.schema, read.table) if p) or "every table"
            if tables is None:  # locked by a writer: cannot look inside now
                continue
            present = (read.schema, read.table) in tables
            privileges.append((f"SELECT on {label}" + ("" if present else " (not found)"), present))
    else:
        directory = path.parent
        if not directory.is_dir():
            return ProbeResult(name, False, "database", f"no such directory: {directory}", version)
        if not os.access(directory, os.W_OK | os.X_OK):
            what = f"cannot create {path.name}: directory {directory} is not writable"
            return ProbeResult(name, False, "privileges", what, version)
        for read in needs.reads:
            label = ".".join(p for p in (read.schema, read.table) if p) or "every table"
            privileges.append((f"SELECT on {label} (no file {path.name} yet)", False))
        if needs.writes:
            privileges.append((f"create {path.name}", True))
    missing = [what for what, held in privileges if not held]
    message = "missing: " + "; ".join(missing) if missing else None
    return ProbeResult(
        name,
        not missing,
        "privileges" if missing else None,
        message,
        version,
        latency,
        None,
        tuple(privileges),
    )


def _duckdb_look(
    path: Path, reads: Sequence[Read]
) -> tuple[float | None, set[tuple[str | None, str | None]] | None]:
    """Round trips, and which of the reads exist, on a read-only connection (None, None when
    another process holds the file)."""
    import duckdb  # noqa: PLC0415 (drivers are imported when needed)

    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None, None
    try:
        times = []
        for _ in range(_ROUND_TRIPS):
            start = time.perf_counter()
            conn.execute("SELECT 1").fetchall()
            times.append((time.perf_counter() - start) * 1000)
        present: set[tuple[str | None, str | None]] = set()
        for read in reads:
            if read.table is None:
                schema = read.schema or "main"
                sql = "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?"
                args: list[str] = [schema]
            else:
                sql = (
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = ? AND table_name = ?"
                )
                args = [read.schema or "main", read.table]
            count = conn.execute(sql, args).fetchone()
            if count is not None and count[0]:
                present.add((read.schema, read.table))
        return statistics.median(times), present
    finally:
        conn.close()
