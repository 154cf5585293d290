"""Fixtures of the fault-injection tests: a loopback proxy in front of each server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import DatabaseServer
from tests.support.proxy import Proxy


@pytest.fixture
def pg_proxy(postgres_server: DatabaseServer) -> Iterator[Proxy]:
    """A proxy in front of the PostgreSQL test server, closed after the test."""
    with Proxy(postgres_server.port, postgres_server.host) as proxy:
        yield proxy


@pytest.fixture
def mariadb_proxy(mariadb_server: DatabaseServer) -> Iterator[Proxy]:
    """A proxy in front of the MariaDB test server, closed after the test."""
    with Proxy(mariadb_server.port, mariadb_server.host) as proxy:
        yield proxy
