"""Settings that only the REST API reads."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import ENV_FILE


class ApiSettings(BaseSettings):
    """Where tiles are served and how much to trust the proxy in front of the API."""

    model_config = SettingsConfigDict(env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore")

    martin_url: str = "http://127.0.0.1:3000"
    # TiTiler (pipeline/titiler_app.py), which the API asks for raster tiles; never
    # handed to browsers (the API serves the tiles behind its token).
    titiler_url: str = "http://127.0.0.1:9000"
    # The API runs behind a reverse proxy in production: pagination links use its host.
    trust_forwarded_headers: bool = True
