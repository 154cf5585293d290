"""PostgreSQL connectors. Importing this package does not import asyncpg: it is imported on
open, and a missing one is reported with the extra to install (`stratum[postgres]`)."""

from stratum.connectors.postgres.destination import PostgresDestination
from stratum.connectors.postgres.source import PostgresTableSource

__all__ = ["PostgresDestination", "PostgresTableSource"]
