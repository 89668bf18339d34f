"""The legacy app's fixtures for the tests in this folder."""

from tests.legacy.fixtures import legacy_app, legacy_database

__all__ = ["legacy_app", "legacy_database"]
