"""Settings that only the REST API reads."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from core.settings import ENV_FILE


class ApiSettings(BaseSettings):
    """Where tiles come from, how they are cached and how much to trust the proxy in front."""

    model_config = SettingsConfigDict(env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore")

    # Martin, as the API reaches it (clients get tiles through /api/v1/tiles/ only).
    martin_url: str = "http://127.0.0.1:3000"
    martin_timeout_seconds: float = 30.0
    # Connections kept open to Martin: about the concurrent tile requests of one process.
    martin_max_connections: int = 64
    # Lifetime of a `?token=` tile token (handed out in the TileJSON).
    tile_token_ttl_seconds: int = 3600
    # Cache-Control max-age of a tile; clients revalidate with its ETag afterwards.
    tile_max_age_seconds: int = 60
    # TiTiler (pipeline/titiler_app.py), which the API asks for raster tiles; never
    # handed to browsers (the API serves the tiles behind its token).
    titiler_url: str = "http://127.0.0.1:9000"
    # The API runs behind a reverse proxy in production: pagination links use its host.
    trust_forwarded_headers: bool = True
