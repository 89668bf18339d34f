"""The `maps` command starts light: what its commands import before they talk to a service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import client
from tests.conftest import free_port

# Modules that cost tenths of a second to import; none is needed to parse a command
# line, upload a file or follow a task.
HEAVY = (
    "pyarrow", "duckdb", "sqlalchemy", "geo_engine", "fastapi", "rich", "httpx",
    "pydantic", "pydantic_settings", "typer", "click", "numpy", "dramatiq", "core",
)  # fmt: skip

_PROBE = """
import json, sys
from pipeline import cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
sys.stdout.write("\\n" + json.dumps(sorted(sys.modules)) + "\\n")
"""


def _imported(*args: str, env: dict[str, str] | None = None) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return set(modules)


def _heavy(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in HEAVY)


def test_maps_help_imports_nothing_heavy() -> None:
    modules = _imported("--help")

    assert "argparse" in modules  # the probe did run the command line
    assert _heavy(modules) == []


def test_an_import_uploads_without_heavy_modules(tmp_path: Path, points_shp: Path) -> None:
    env = {"ETL_SERVICE_URL": f"http://127.0.0.1:{free_port()}", "MAPS_TOKEN": "whatever"}

    modules = _imported("import", str(points_shp), "--name", "x", "--wait", env=env)

    assert "http.client" in modules  # it got as far as connecting
    assert _heavy(modules) == []


def test_the_cli_reads_the_service_urls_as_the_settings_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import PipelineSettings

    env_file = tmp_path / ".env"
    env_file.write_text(
        "# written by make up\n"
        "ETL_SERVICE_URL=http://127.0.0.1:8171\n"
        "export API_URL='http://127.0.0.1:8170'\n"
    )
    for key in list(os.environ):
        if key.lower() in client.DEFAULT_URLS:
            monkeypatch.delenv(key)
    monkeypatch.setattr(client, "ENV_FILE", env_file)

    def settings() -> PipelineSettings:
        return PipelineSettings(_env_file=client.ENV_FILE)  # type: ignore[call-arg]

    assert client.service_url("etl_service_url") == settings().etl_service_url
    assert client.service_url("api_url") == settings().api_url == "http://127.0.0.1:8170"
    monkeypatch.setenv("etl_service_url", "http://elsewhere:1")
    assert client.service_url("etl_service_url") == settings().etl_service_url
    assert settings().etl_service_url == "http://elsewhere:1"
    monkeypatch.setattr(client, "ENV_FILE", tmp_path / "missing.env")
    assert client.service_url("api_url") == settings().api_url == client.DEFAULT_URLS["api_url"]
