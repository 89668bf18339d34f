"""Settings shared by the REST API, the ETL service, the workers and the CLI.

Each concern has its own class; all read the environment and the `.env` file at the
repository root (written by `make up`). `Settings` groups them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = REPO_ROOT / ".env"
DEV_SECRET = "dev-secret-change-me-dev-secret-change-me"


def _config(prefix: str = "") -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix, env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore"
    )


class DatabaseSettings(BaseSettings):
    """Where PostgreSQL/PostGIS is."""

    model_config = _config()

    database_url: str = "postgresql://maps:maps@127.0.0.1:55432/maps"
    database_pool_size: int = 10

    @property
    def async_url(self) -> str:
        """The URL for SQLAlchemy on asyncpg."""
        return _with_driver(self.database_url, "asyncpg")

    @property
    def sync_url(self) -> str:
        """The URL for SQLAlchemy on psycopg 3 (workers, Alembic)."""
        return _with_driver(self.database_url, "psycopg")

    @property
    def libpq_url(self) -> str:
        """The plain libpq URL (psycopg, psql, ogr2ogr)."""
        return _with_driver(self.database_url, None)


class RedisSettings(BaseSettings):
    """Where Redis is (broker and token revocation list)."""

    model_config = _config()

    redis_url: str = "redis://127.0.0.1:56379/0"


# The length of a secret worth the name (stack.sh writes 64 random hex digits).
MIN_SECRET_LENGTH = 32


class AuthSettings(BaseSettings):
    """Tokens and passwords."""

    model_config = _config()

    environment: Literal["development", "test", "production"] = "development"
    secret_key: str = DEV_SECRET
    token_lifetime_seconds: int = 7 * 24 * 3600
    # Django 5.1's default; Django verifies any count, so a rollback keeps working.
    password_iterations: int = 870_000

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> AuthSettings:
        # Outside development (tests and production alike) a guessable key would let
        # anyone sign tokens: both services refuse to start with it.
        if self.environment != "development" and (
            self.secret_key == DEV_SECRET or len(self.secret_key) < MIN_SECRET_LENGTH
        ):
            raise ValueError(
                f"SECRET_KEY must be set to a secret of at least {MIN_SECRET_LENGTH} characters"
                f" outside development (ENVIRONMENT={self.environment})"
            )
        return self


class PipelineSettings(BaseSettings):
    """The ETL service, its workers and its files."""

    model_config = _config()

    etl_service_url: str = "http://127.0.0.1:8001"
    api_url: str = "http://127.0.0.1:8000"
    staging_dir: Path = REPO_ROOT / "data" / "staging"
    upload_dir: Path = REPO_ROOT / "data" / "uploads"
    max_upload_bytes: int = 2 * 1024**3
    batch_size: int = Field(default=65_536, ge=1024)
    step_time_limit_seconds: int = 3600
    task_heartbeat_seconds: int = 5
    task_stale_after_seconds: int = 60
    task_max_retries: int = 3


class Settings(BaseSettings):
    """Every concern's settings, as one object."""

    model_config = _config()

    api_port: int = 8000
    etl_port: int = 8001
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)


def _with_driver(url: str, driver: str | None) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    base = scheme.split("+", 1)[0]
    if base in {"postgres", "postgresql"}:
        base = "postgresql"
    return f"{base}+{driver}://{rest}" if driver else f"{base}://{rest}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
