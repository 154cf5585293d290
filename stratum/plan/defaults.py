"""Built-in defaults, the last step of option resolution (item clause > SET > these), and the
URL schemes a plan may use.

The defaults favour never losing data: a bad row stops the item (`on_error = stop`) unless the
plan asks for reject files; MySQL zero dates become NULL, as pgloader does, unless the plan says
otherwise with ZERO DATES.

The default MODE (full) and SQL dialect (postgres) belong to the language, in
`smql.semantics.mode_choice` and `smql.sql.DEFAULT_DIALECT`.
"""

from __future__ import annotations

from smql import OnError

BATCH_SIZE = 10_000
PARALLEL = 4
QUEUE_SIZE = 64
PARTITIONS = 1
ON_ERROR = OnError.STOP
ZERO_DATES = "null"

CSV_DELIMITER = ","
CSV_QUOTE = '"'
CSV_NULL = ""
CSV_ENCODING = "utf-8"

#: URL scheme -> the SQL dialect of that server (sqlglot's name for it).
SCHEMES: dict[str, str] = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "duckdb": "duckdb",
}
