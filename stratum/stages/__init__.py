"""Medallion stages and feature tables: the SQL they run inside a database."""
