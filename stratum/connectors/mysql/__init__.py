"""The MySQL and MariaDB connector (asyncmy by default, aiomysql selectable).

Nothing here imports a driver: `connect` and the source import theirs when they connect.
"""

from __future__ import annotations

from stratum.connectors.mysql._connect import MySQLConnection, MySQLUrl, connect, parse_url
from stratum.connectors.mysql.destination import MySQLDestination
from stratum.connectors.mysql.source import MySQLTableSource
from stratum.connectors.mysql.types import converter, pg_type

__all__ = [
    "MySQLConnection",
    "MySQLDestination",
    "MySQLTableSource",
    "MySQLUrl",
    "connect",
    "converter",
    "parse_url",
    "pg_type",
]
