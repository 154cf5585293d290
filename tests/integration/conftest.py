"""Fixtures giving each integration-test module its own throwaway database.

``postgres_database`` / ``mariadb_database`` create a uniquely named database when
the first test of a module asks for it and drop it after the module's last test.
``postgres_server`` / ``mariadb_server`` only check that the server is reachable,
for tests that create databases themselves.

When a server cannot be reached the tests needing it are skipped, unless
``STRATUM_REQUIRE_DATABASES=1`` (set by CI), in which case they fail: a skipped
database test must never let CI pass.

Tests under ``postgres/`` and ``mariadb/`` get the ``postgres`` / ``mariadb``
markers automatically, so ``pytest -m "not mariadb"`` and the like work.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support import databases as db
from tests.support.databases import DatabaseServer, ThrowawayDatabase

REQUIRE_DATABASES_ENV = "STRATUM_REQUIRE_DATABASES"

_HERE = Path(__file__).resolve().parent
_MARKERS_BY_DIRECTORY = {
    _HERE / "postgres": pytest.mark.postgres,
    _HERE / "mariadb": pytest.mark.mariadb,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.resolve()
        for directory, marker in _MARKERS_BY_DIRECTORY.items():
            if path.is_relative_to(directory):
                item.add_marker(marker)


def databases_required() -> bool:
    return os.environ.get(REQUIRE_DATABASES_ENV, "").strip() == "1"


def _unavailable(reason: str) -> NoReturn:
    if databases_required():
        pytest.fail(
            f"{reason} [{REQUIRE_DATABASES_ENV}=1: failing instead of skipping]", pytrace=False
        )
    pytest.skip(reason)


def _reachable(server: DatabaseServer) -> DatabaseServer:
    reason = db.unreachable_reason(server)
    if reason is not None:
        _unavailable(reason)
    return server


@pytest.fixture(scope="module")
def postgres_server() -> DatabaseServer:
    """The PostgreSQL test server, once it is known to be reachable."""
    return _reachable(db.postgres_server())


@pytest.fixture(scope="module")
def mariadb_server() -> DatabaseServer:
    """The MariaDB test server, once it is known to be reachable."""
    return _reachable(db.mariadb_server())


@pytest.fixture(scope="module")
def postgres_database(
    request: pytest.FixtureRequest, postgres_server: DatabaseServer
) -> Iterator[ThrowawayDatabase]:
    """A PostgreSQL database of this test module's own, dropped (WITH FORCE) after it."""
    name = db.unique_database_name(request.module.__name__)
    asyncio.run(db.create_postgres_database(name, postgres_server))
    try:
        yield ThrowawayDatabase(
            name=name, url=postgres_server.url_for(name), server=postgres_server
        )
    finally:
        asyncio.run(db.drop_postgres_database(name, postgres_server))


@pytest.fixture(scope="module")
def mariadb_database(
    request: pytest.FixtureRequest, mariadb_server: DatabaseServer
) -> Iterator[ThrowawayDatabase]:
    """A MariaDB database of this test module's own, dropped after it."""
    name = db.unique_database_name(request.module.__name__)
    asyncio.run(db.create_mariadb_database(name, mariadb_server))
    try:
        yield ThrowawayDatabase(name=name, url=mariadb_server.url_for(name), server=mariadb_server)
    finally:
        asyncio.run(db.drop_mariadb_database(name, mariadb_server))
