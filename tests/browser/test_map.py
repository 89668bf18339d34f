"""The map page (/map/) in headless Chromium: sign in, open a sample source, see it, click it.

`make screenshot` runs this module with MAP_SCREENSHOT=docs/map.png to refresh the
README's picture.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, Page
from rasterio.io import MemoryFile

from tests.browser.conftest import MapSite
from tests.conftest import Stack
from tests.tiling import drop_source, import_sample

POINT_COLOUR = (0xD6, 0x27, 0x28)  # DEFAULT_STYLE.color in api/static/map/map.js
PASSWORD = "a long enough secret"
TILES_READY = """(layers) => {
    const map = window.mapsMap;
    return layers.every((id) => map.getLayer(id)) && map.loaded() && map.areTilesLoaded();
}"""


def _account(site: MapSite) -> tuple[str, dict[str, str]]:
    email = f"map-{uuid.uuid4().hex[:8]}@example.org"
    registered = httpx.post(
        f"{site.api_url}/api/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    login = httpx.post(
        f"{site.api_url}/api/v1/auth/login", data={"username": email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    return email, {"Authorization": f"Bearer {login.json()['access_token']}"}


def _signed_in_page(browser: Browser, site: MapSite, email: str) -> Page:
    page = browser.new_page(viewport={"width": 1200, "height": 760})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{site.api_url}/map/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#browser:not([hidden])")
    assert errors == []
    return page


def _rendered(page: Page, layer: str) -> list[dict[str, Any]]:
    script = """(layer) => window.mapsMap.queryRenderedFeatures({layers: [layer]}).map((f) => {
        const xy = window.mapsMap.project(f.geometry.coordinates);
        return {properties: f.properties, x: xy.x, y: xy.y};
    })"""
    features: list[dict[str, Any]] = page.evaluate(script, layer)
    return features


def _pixels(png: bytes) -> np.ndarray[Any, Any]:
    """The screenshot as an (rows, columns, RGB) array (GDAL decodes the PNG)."""
    with MemoryFile(png) as memory, memory.open() as image:
        bands: np.ndarray[Any, Any] = image.read()
    return np.moveaxis(bands[:3], 0, -1).astype(int)


def test_a_sample_source_is_drawn_and_its_features_answer_a_click(
    map_site: MapSite, stack: Stack, browser: Browser, database_url: str
) -> None:
    email, headers = _account(map_site)
    source_id = import_sample(stack, headers, "cities.zip")
    try:
        _check_source_page(map_site, browser, headers, email, source_id)
    finally:
        drop_source(database_url, source_id)


def _check_source_page(
    map_site: MapSite, browser: Browser, headers: dict[str, str], email: str, source_id: int
) -> None:
    source = httpx.get(f"{map_site.api_url}/api/v1/sources/{source_id}/", headers=headers).json()
    page = _signed_in_page(browser, map_site, email)

    page.get_by_role("button", name=re.compile(r"^cities \(200\)$")).click()
    points = f"source-{source_id}-points"
    page.wait_for_function(TILES_READY, arg=[points], timeout=60_000)
    rendered = _rendered(page, points)
    assert rendered, "no feature of the source was rendered"
    assert {f["properties"]["source_id"] for f in rendered} == {source_id}

    # the screenshot has pixels of the points' colour inside the source's box on screen
    west, south, east, north = source["bbox"]
    corners = page.evaluate(
        "(b) => [window.mapsMap.project([b[0], b[3]]), window.mapsMap.project([b[2], b[1]])]",
        [west, south, east, north],
    )
    # padded by a circle's radius and stroke: a point on the box's edge is drawn across it
    left, top = (max(0, math.floor(corners[0][k]) - 7) for k in ("x", "y"))
    right, bottom = (math.ceil(corners[1][k]) + 7 for k in ("x", "y"))
    pixels = _pixels(page.locator("#map").screenshot())
    area = pixels[top : bottom + 1, left : right + 1]
    coloured = (np.abs(area - np.array(POINT_COLOUR)) <= 12).all(axis=-1)
    assert coloured.sum() >= len(rendered), (coloured.sum(), len(rendered))

    # click a point with no other point near it, and read its popup
    def alone(feature: dict[str, Any]) -> bool:
        return all(
            math.dist((feature["x"], feature["y"]), (other["x"], other["y"])) > 15
            for other in rendered
            if other is not feature
        )

    target = next(f for f in rendered if alone(f))
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + target["x"], box["y"] + target["y"])
    popup = page.locator(".maplibregl-popup-content")
    popup.wait_for(timeout=10_000)
    text = popup.inner_text()
    assert target["properties"]["name"] in text
    assert f"population\t{target['properties']['population']}" in text

    shot = os.environ.get("MAP_SCREENSHOT")
    if shot:
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shot)
    page.close()


def test_a_project_shows_its_layers_in_order_with_their_style_and_visibility(
    map_site: MapSite, stack: Stack, browser: Browser, database_url: str
) -> None:
    email, headers = _account(map_site)
    cities = import_sample(stack, headers, "cities.zip")
    parcels = import_sample(stack, headers, "parcels.shp")
    try:
        _check_project_page(map_site, browser, headers, email, cities, parcels)
    finally:
        drop_source(database_url, cities)
        drop_source(database_url, parcels)


def _check_project_page(
    map_site: MapSite,
    browser: Browser,
    headers: dict[str, str],
    email: str,
    cities: int,
    parcels: int,
) -> None:
    api = f"{map_site.api_url}/api/v1"
    layer_ids = []
    for name, source, style, visible in [
        ("Parcels", parcels, {"color": "#8a2be2"}, True),
        ("Cities", cities, {"color": "#ff8c00", "radius": 6}, False),
    ]:
        made = httpx.post(
            f"{api}/layers/",
            json={"name": name, "source": source, "style": style, "is_visible": visible},
            headers=headers,
        )
        assert made.status_code == 201, made.text
        layer_ids.append(made.json()["id"])
    project = httpx.post(
        f"{api}/projects/", json={"name": "Bern", "layers": layer_ids}, headers=headers
    )
    assert project.status_code == 201, project.text
    page = _signed_in_page(browser, map_site, email)

    page.locator("#projects").get_by_role("button", name="Bern").click()
    polygons, hidden = f"layer-{layer_ids[0]}-polygons", f"layer-{layer_ids[1]}-points"
    page.wait_for_function(TILES_READY, arg=[polygons, hidden], timeout=60_000)
    assert _rendered_count(page, polygons) > 0
    assert _rendered_count(page, hidden) == 0  # is_visible false: not drawn
    order = page.evaluate("() => window.mapsMap.getStyle().layers.map((l) => l.id)")
    assert order.index(polygons) < order.index(hidden)  # the project's order, bottom first
    paint = page.evaluate(f"() => window.mapsMap.getPaintProperty('{polygons}', 'fill-color')")
    assert paint == "#8a2be2"
    page.close()


def _rendered_count(page: Page, layer: str) -> int:
    count: int = page.evaluate(
        "(layer) => window.mapsMap.queryRenderedFeatures({layers: [layer]}).length", layer
    )
    return count


pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
