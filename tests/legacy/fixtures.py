"""pytest fixtures of the legacy Django app; a conftest imports the ones it needs.

from tests.legacy.fixtures import legacy_app, legacy_database  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import TEST_DATABASE_URL, free_port
from tests.legacy.database import LegacyData, create_database, fill
from tests.legacy.server import gunicorn

LEGACY_DATABASE = TEST_DATABASE_URL.rsplit("/", 1)[1] + "_legacy"


@dataclass(frozen=True)
class LegacyDatabase:
    """A database Django migrated and the fixture filled."""

    url: str
    data: LegacyData


@dataclass(frozen=True)
class LegacyApp:
    """The legacy app served by gunicorn over a legacy database."""

    url: str
    database: LegacyDatabase


@pytest.fixture(scope="session")
def legacy_database() -> LegacyDatabase:
    """A scratch database made by Django's `migrate` and filled (10 sources, 10,000 rows)."""
    url = create_database(TEST_DATABASE_URL, LEGACY_DATABASE)
    return LegacyDatabase(url, fill(url, sources=10, geometries=10_000))


@pytest.fixture(scope="session")
def legacy_app(
    legacy_database: LegacyDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LegacyApp]:
    """The legacy app under gunicorn (2 workers) on a free port."""
    log = tmp_path_factory.mktemp("legacy") / "gunicorn.log"
    with gunicorn(legacy_database.url, port=free_port(), workers=2, log=log) as url:
        yield LegacyApp(url, legacy_database)
