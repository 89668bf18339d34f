"""An upload of a .shp alone imports as geometry only, its task warning about the .dbf."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.conftest import Stack
from tests.pipeline.conftest import Account

Conn = psycopg.Connection[tuple[Any, ...]]


def test_a_shp_without_dbf_and_shx_imports_with_warnings(
    stack: Stack, account: Account, points_shp: Path, db: Conn
) -> None:
    answer = httpx.post(
        f"{stack.etl_url}/tasks/import/shapefile",
        data={"name": "geometry only"},
        files=[("file", (points_shp.name, points_shp.read_bytes(), "application/octet-stream"))],
        headers=account.headers,
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]
    deadline = time.monotonic() + 120
    while True:
        task = httpx.get(f"{stack.etl_url}/tasks/{task_id}", headers=account.headers).json()
        if task["state"] in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline, task
        time.sleep(0.2)
    assert task["state"] == "succeeded", task
    warnings = " ".join(task["warnings"])
    assert ".dbf is missing" in warnings and "geometry only" in warnings
    assert ".shx is missing" in warnings
    rows = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE metadata = '{}'::jsonb) FROM core_geometry"
        " WHERE source_id = %s",
        (task["result"]["source_id"],),
    ).fetchone()
    assert rows is not None and rows[0] == rows[1] == task["result"]["feature_count"] > 0
