"""DuckDB connectors. Importing this package does not import duckdb: it is imported on open."""

from stratum.connectors.duckdb.destination import DuckDBDestination

__all__ = ["DuckDBDestination"]
