"""Schema migration: a source database's catalog, and the target DDL made from it.

catalog.py   the neutral model (tables, columns, keys, indexes, foreign keys, views)
introspect_* reading a catalog from MySQL/MariaDB or PostgreSQL
ddl.py       the target's statements: keys, indexes, sequences, foreign keys, views
"""

from stratum.schema.catalog import Catalog, ColumnInfo, ForeignKey, IndexInfo, TableInfo, ViewInfo

__all__ = ["Catalog", "ColumnInfo", "ForeignKey", "IndexInfo", "TableInfo", "ViewInfo"]
