"""The analyses' parameters are judged up front by the real ETL service: 400 with DRF-shaped
field errors, and nothing queued. The point source is imported through the real stack."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from core.settings import REPO_ROOT
from tests.conftest import Stack
from tests.pipeline.conftest import Account, make_account
from tests.pipeline.rasters import wait_task

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(scope="module")
def cities(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sample cities (200 points, `population` int64, `name` text) imported."""
    account = make_account(stack.env["DATABASE_URL"], stack.env["REDIS_URL"])
    folder = tmp_path_factory.mktemp("cities")
    archive = shutil.copy(REPO_ROOT / "data" / "samples" / "cities.zip", folder / "cities.zip")
    with Path(archive).open("rb") as handle:
        answer = httpx.post(
            f"{stack.etl_url}/tasks/import/shapefile",
            headers=account.headers,
            data={"name": "cities"},
            files={"file": ("cities.zip", handle, "application/zip")},
            timeout=30,
        )
    assert answer.status_code == 202, answer.text
    task = wait_task(stack, account, answer.json()["task_id"])
    assert task["state"] == "succeeded", task["error"]
    return {"account": account, "source_id": task["result"]["source_id"],
            "bbox": task["result"]["profile"]["bbox"]}  # fmt: skip


def _post(stack: Stack, account: Account, kind: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{stack.etl_url}/tasks/analysis/{kind}", headers=account.headers, json=body, timeout=30
    )


def _tasks_of(db: Conn, account: Account) -> int:
    row = db.execute("SELECT count(*) FROM etl_task WHERE owner_id = %s", (account.id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_bad_parameters_answer_400_with_field_errors_and_queue_nothing(
    stack: Stack, cities: dict[str, Any], db: Conn
) -> None:
    account, source = cities["account"], cities["source_id"]
    before = _tasks_of(db, account)
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("interpolate", {"source": 999_999, "field": "population"}, "source",
         'Invalid pk "999999" - object does not exist.'),
        ("interpolate", {"source": "src_nosuchsource", "field": "population"}, "source",
         "object does not exist"),
        ("interpolate", {"source": source, "field": "name"}, "field", "not numeric"),
        ("interpolate", {"source": source, "field": "altitude"}, "field", "no column"),
        ("interpolate", {"source": source, "field": "population", "width": 20_000,
                         "height": 10_000}, "width", "more than the limit of 100,000,000"),
        ("grid", {"source": source, "field": "population", "resolution": 0.001}, "resolution",
         "more than the limit"),
        ("interpolate", {"source": source, "field": "population",
                         "bbox": [500.0, 500.0, 501.0, 501.0]}, "bbox", "does not intersect"),
        ("interpolate", {"source": source, "field": "population", "crs": "EPSG:999999"},
         "crs", "Not a CRS"),
        ("interpolate", {"source": source, "field": "population", "bbox": [3, 3, 1, 1]},
         "bbox", "min < max"),
        ("grid", {"source": source, "method": "mean"}, "non_field_errors", "needs a field"),
        ("grid", {"source": source, "field": "population", "method": "median"}, "method", ""),
        ("grid", {"source": source, "field": "population", "output": "polygons",
                  "width": 3000, "height": 3000}, "width", "for polygon cells"),
        ("vectorize", {"source": source}, "source", "not a raster source"),
        ("vectorize", {"breaks": [3, 2]}, "breaks", "strictly increasing"),
    ]  # fmt: skip

    for kind, body, field, words in cases:
        answer = _post(stack, account, kind, body)
        assert answer.status_code == 400, (kind, body, answer.text)
        errors = answer.json()
        assert field in errors, (kind, body, errors)
        assert words in " ".join(errors[field]), (kind, body, errors)

    assert _tasks_of(db, account) == before
    assert httpx.post(f"{stack.etl_url}/tasks/analysis/interpolate", json={}).status_code == 401


def test_a_valid_request_is_queued_with_its_plan(
    stack: Stack, cities: dict[str, Any], db: Conn
) -> None:
    account = cities["account"]
    answer = _post(
        stack, account, "interpolate",
        {"source": cities["source_id"], "field": "population", "resolution": 2.0},
    )  # fmt: skip

    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]
    row = db.execute("SELECT kind, step, params FROM etl_task WHERE id = %s", (task_id,)).fetchone()
    assert row is not None
    kind, step, params = row
    assert (kind, step) == ("analysis_interpolate", "interpolate")
    west, south, east, north = cities["bbox"]
    assert params["bbox_4326"] == pytest.approx([west, south, east, north])
    # Square 2° cells from the north-west corner, enough of them to cover the extent.
    assert params["width"] == -(-(east - west) // 2)
    assert params["height"] == -(-(north - south) // 2)
    assert params["bbox"] == pytest.approx(
        [west, north - 2 * params["height"], west + 2 * params["width"], north]
    )
    assert params["crs"] == "EPSG:4326" and params["field"] == "population"
