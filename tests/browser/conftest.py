"""The map page in Debian's Chromium: the real API (with Martin), the ETL service and a worker.

Playwright drives /usr/bin/chromium (Debian's package, installed by provisioning); no
browser is ever downloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from core.settings import REPO_ROOT
from tests.conftest import Stack, _wait_healthy, free_port
from tests.tiling import Martin

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # WebGL without a GPU: SwiftShader, asked for by name (Chromium is dropping the
    # silent fallback to it).
    "--enable-unsafe-swiftshader",
]


@dataclass(frozen=True)
class MapSite:
    """The REST API serving /map/, with tiles from a Martin of its own."""

    api_url: str
    martin: Martin


@pytest.fixture(scope="session")
def map_site(
    stack: Stack, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MapSite]:
    """An API process like the stack's, whose MARTIN_URL is a running Martin."""
    vendor = REPO_ROOT / "api" / "static" / "map" / "vendor" / "maplibre-gl.js"
    if not vendor.is_file():
        raise RuntimeError(f"{vendor} is missing: `scripts/stack.sh provision` copies it")
    work = tmp_path_factory.mktemp("map")
    martin = Martin(database_url=database_url, port=free_port(), workdir=work).start()
    port = free_port()
    env = {**stack.env, "MARTIN_URL": martin.url, "API_URL": f"http://127.0.0.1:{port}"}
    log = work / "api.log"
    cmd = [str(Path(sys.executable).parent / "uvicorn"), "--factory", "api.main:create_app",
           "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with log.open("wb") as out:
        api = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(env["API_URL"], api, log)
        yield MapSite(env["API_URL"], martin)
    finally:
        api.terminate()
        api.wait(timeout=15)
        martin.stop()


# Module-scoped: Playwright's sync API runs an event loop of its own in this thread
# while it is open, and pytest-asyncio's tests after this module need the thread back.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} is missing: provisioning installs Debian's chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
