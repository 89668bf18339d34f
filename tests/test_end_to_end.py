"""The foundation's promise, end to end on the real stack: `maps import` of a sample
shapefile, then its features from the REST API's `/api/v1/wfs/`, equal to GDAL's reading."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pyogrio
import pytest
import shapely

from core.settings import REPO_ROOT
from tests.conftest import Stack, free_port
from tests.pipeline.conftest import column_values, maps, one_line_error

SAMPLES = REPO_ROOT / "data" / "samples"


@pytest.fixture
def signed_in(stack: Stack, tmp_path: Path) -> tuple[dict[str, str], str]:
    """A user registered and signed in through the REST API; the CLI's environment."""
    email = f"e2e-{uuid.uuid4().hex[:8]}@Example.org"
    password = "a long enough secret"
    registered = httpx.post(
        f"{stack.api_url}/api/v1/auth/register", json={"email": email, "password": password}
    )
    assert registered.status_code == 201, registered.text
    login = httpx.post(
        f"{stack.api_url}/api/v1/auth/login",
        data={"username": email.lower(), "password": password},
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    env = {**stack.env, "MAPS_TOKEN": token, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return env, token


def _rows_by_position(features: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Features keyed by their coordinates, so the order the store keeps does not matter."""
    rows = []
    for feature in features:
        point = shapely.geometry.shape(feature["geometry"])
        properties = dict(feature["properties"])
        properties.pop("source")
        properties.pop("geometry_type")
        rows.append((round(point.x, 9), round(point.y, 9), json.dumps(properties, sort_keys=True)))
    return sorted(rows)


@pytest.mark.parametrize("sample", ["cities.shp", "cities.zip"])
def test_imported_sample_comes_back_from_wfs_as_gdal_reads_it(
    stack: Stack, signed_in: tuple[dict[str, str], str], sample: str
) -> None:
    env, token = signed_in
    done = maps("import", str(SAMPLES / sample), "--name", "demo", "--wait", "--json", env=env)
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)
    assert task["state"] == "succeeded"
    source_id = task["result"]["source_id"]

    answer = httpx.get(
        f"{stack.api_url}/api/v1/wfs/",
        params={"source": source_id, "page_size": 10000},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    collection = answer.json()
    assert collection["type"] == "FeatureCollection"

    expected = pyogrio.read_dataframe(SAMPLES / "cities.shp")
    assert collection["count"] == len(expected) == task["result"]["feature_count"]
    assert {f["properties"]["geometry_type"] for f in collection["features"]} == {"Point"}
    columns = [c for c in expected.columns if c != "geometry"]
    values = {c: column_values(expected, c) for c in columns}
    wanted = sorted(
        (
            round(geom.x, 9),
            round(geom.y, 9),
            json.dumps({c: values[c][i] for c in columns}, sort_keys=True),
        )
        for i, geom in enumerate(expected.geometry)
    )
    assert _rows_by_position(collection["features"]) == wanted


def test_the_human_output_names_the_source_and_its_count(
    signed_in: tuple[dict[str, str], str],
) -> None:
    env, _ = signed_in
    done = maps("import", str(SAMPLES / "cities.shp"), "--name", "demo", "--wait", env=env)
    assert done.returncode == 0, done.stderr
    assert "200" in done.stdout and "source" in done.stdout.lower()


def test_a_missing_file_and_a_stack_that_is_down_give_one_line_errors(
    signed_in: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, _ = signed_in
    missing = maps("import", str(tmp_path / "nope.shp"), "--name", "x", "--wait", env=env)
    assert "nope.shp" in one_line_error(missing)

    down = {**env, "ETL_SERVICE_URL": f"http://127.0.0.1:{free_port()}"}
    unreachable = maps("import", str(SAMPLES / "cities.zip"), "--name", "x", "--wait", env=down)
    assert "make up" in one_line_error(unreachable)
