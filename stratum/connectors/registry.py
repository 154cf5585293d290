"""Connectors by URL scheme: the one place that turns a plan's connection into a connector.

Connection templates are expanded here, from the environment, when a connector is made; nowhere
else does a plan's URL become a secret-bearing string.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import smql
from smql import Mode
from stratum.connectors.base import Cursor, Destination, Source
from stratum.errors import ConfigError
from stratum.plan.model import (
    DatabaseSource,
    FileSource,
    MigrationPlan,
    PlanItem,
    QuerySource,
    TableSource,
)
from stratum.schema import Catalog

DESTINATION_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "duckdb")


class ConnectorFactory(Protocol):
    """What the executor asks for: a fresh source and destination per item."""

    def source(self, item: PlanItem, *, bounds: tuple[Cursor, Cursor] | None = None) -> Source:
        """The item's source; with `bounds`, limited to that key range (PARTITIONS)."""
        ...

    def destination(self, item: PlanItem) -> Destination: ...


class Connectors:
    """Makes the source and the destination of each item of one plan."""

    def __init__(self, plan: MigrationPlan, base_dir: Path, env: Mapping[str, str]) -> None:
        self.plan = plan
        self.base_dir = base_dir
        self.env = env

    def source(self, item: PlanItem, *, bounds: tuple[Cursor, Cursor] | None = None) -> Source:
        if bounds is not None and not isinstance(item.source, TableSource):
            raise ConfigError(f"item '{item.name}': only a table can be read by key range")
        if isinstance(item.source, FileSource):
            if item.options.mode is Mode.INCREMENTAL:
                raise ConfigError(
                    f"item '{item.name}': MODE incremental reads rows past the CURSOR column's "
                    "high-water mark, which this version does for no file source yet; use MODE "
                    "append or full"
                )
            from stratum.connectors.files import open_file_source  # noqa: PLC0415 (lazy)

            return open_file_source(item.source, self.base_dir)
        if isinstance(item.source, TableSource):
            return self._table_source(item, item.source, bounds)
        if isinstance(item.source, QuerySource):
            return self._query_source(item, item.source)
        kind = item.kind.value.replace("_", " ")
        raise ConfigError(
            f"item '{item.name}': a {kind} reads no rows through a source: it runs as SQL "
            "inside its target's database (stratum.runtime.stages)"
        )

    def _table_source(
        self, item: PlanItem, source: TableSource, bounds: tuple[Cursor, Cursor] | None
    ) -> Source:
        from stratum.connectors.pushdown import source_cursor, source_key  # noqa: PLC0415

        options = item.options
        url = self.url(source.table.connection)
        scheme = urlsplit(url).scheme.lower()
        # KEY names output columns; the source orders by the table columns they come from.
        # COLUMNS, COMPUTE and WHERE go into the source's SELECT (`projection`) as far as they
        # can; the pipeline leaves the rest to the Transformer (pushdown.remaining_options).
        key = source_key(options)
        # MODE incremental: rows in the order (CURSOR, key), each run after the last one's end
        increments_by = source_cursor(options) if options.mode is Mode.INCREMENTAL else None
        if scheme in ("postgresql", "postgres"):
            from stratum.connectors.postgres import PostgresTableSource  # noqa: PLC0415

            # PostgreSQL cannot store a zero date: the ZERO DATES policy has nothing to act on
            return PostgresTableSource(
                url,
                source.table,
                key,
                projection=options,
                bounds=bounds,
                item=item.name,
                increments_by=increments_by,
            )
        if scheme in ("mysql", "mariadb"):
            from stratum.connectors.mysql import MySQLTableSource  # noqa: PLC0415

            return MySQLTableSource(
                url,
                source.table,
                key,
                zero_dates=options.zero_dates or "null",
                projection=options,
                bounds=bounds,
                item=item.name,
                increments_by=increments_by,
            )
        raise ConfigError(
            f"connection '{source.table.connection}': tables are read from postgresql:// and "
            f"mysql:// connections, not '{scheme}://'"
        )

    def _query_source(self, item: PlanItem, source: QuerySource) -> Source:
        """MIGRATE QUERY: the query, transpiled to the connection's dialect, read in KEY order
        (resumable) with a KEY, else whole (not resumable: MODE full reloads it); MODE
        incremental reads it in the order (CURSOR, KEY), which needs a KEY."""
        from stratum.connectors.pushdown import source_cursor, source_key  # noqa: PLC0415

        options = item.options
        url = self.url(source.connection)
        scheme = urlsplit(url).scheme.lower()
        key = source_key(options)  # the query's columns, before COLUMNS renames them
        increments_by = source_cursor(options) if options.mode is Mode.INCREMENTAL else None
        if scheme in ("postgresql", "postgres"):
            from stratum.connectors.postgres.source import PostgresQuerySource  # noqa: PLC0415

            return PostgresQuerySource(
                url, source.sql, key, item=item.name, increments_by=increments_by
            )
        if scheme in ("mysql", "mariadb"):
            from stratum.connectors.mysql.source import MySQLQuerySource  # noqa: PLC0415

            return MySQLQuerySource(
                url,
                source.sql,
                key,
                zero_dates=options.zero_dates or "null",
                item=item.name,
                increments_by=increments_by,
            )
        raise ConfigError(
            f"connection '{source.connection}': queries are run on postgresql:// and mysql:// "
            f"connections, not '{scheme}://'"
        )

    def destination(self, item: PlanItem) -> Destination:
        name = item.target.connection
        url = self.url(name)
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("postgresql", "postgres"):
            from stratum.connectors.postgres import PostgresDestination  # noqa: PLC0415

            return PostgresDestination(url)
        if scheme == "duckdb":
            from stratum.connectors.duckdb import DuckDBDestination  # noqa: PLC0415

            return DuckDBDestination(duckdb_path(url, self.base_dir))
        if scheme in ("mysql", "mariadb"):
            from stratum.connectors.mysql import MySQLDestination  # noqa: PLC0415

            return MySQLDestination(url)
        raise ConfigError(
            f"connection '{name}': no destination for '{scheme}://' in this version of Stratum "
            f"(it writes to {', '.join(s + '://' for s in DESTINATION_SCHEMES)})"
        )

    async def catalog(self, item: PlanItem) -> Catalog:
        """The schema of a MIGRATE DATABASE item's source database, read from the server."""
        if not isinstance(item.source, DatabaseSource):
            raise ConfigError(f"item '{item.name}' does not copy a database")
        database = item.source.database
        url = self.url(database.connection)
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("postgresql", "postgres"):
            from stratum.schema.introspect_postgres import read_postgres_catalog  # noqa: PLC0415

            return await read_postgres_catalog(url, database.schema)
        if scheme in ("mysql", "mariadb"):
            from stratum.schema.introspect_mysql import read_mysql_catalog  # noqa: PLC0415

            return await read_mysql_catalog(url, database.schema)
        raise ConfigError(
            f"connection '{database.connection}': MIGRATE DATABASE reads postgresql:// and "
            f"mysql:// connections, not '{scheme}://'"
        )

    def url(self, connection: str) -> str:
        """The connection's URL with its ${VAR}s expanded (a secret: never log it)."""
        template = self.plan.connection(connection).template
        try:
            return smql.expand(template, self.env, path=self.plan.path)
        except smql.TemplateError as exc:
            reasons = "; ".join(d.message for d in exc.diagnostics)
            raise ConfigError(f"connection '{connection}': {reasons}") from None


def duckdb_path(url: str, base_dir: Path) -> Path | str:
    """`duckdb:///file.duckdb` is relative to the .smql file, `duckdb:////abs/file.duckdb`
    absolute (as in SQLAlchemy), `duckdb:///:memory:` in memory."""
    rest = url.split(":", 1)[1]
    path = (
        rest[3:] if rest.startswith("///") else rest.lstrip("/") if rest.startswith("//") else rest
    )
    if path in (":memory:", ""):
        return ":memory:"
    candidate = Path(path)
    return candidate if candidate.is_absolute() else base_dir / candidate
