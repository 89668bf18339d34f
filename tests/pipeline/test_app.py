"""The ETL service in-process (httpx over ASGI): auth, uploads, task documents, health.

No worker runs here: an accepted import stays queued, its message waiting in Redis. The
service uses its own Redis database so that a worker started by other tests never takes
these messages.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from fastapi import FastAPI

from core.settings import DatabaseSettings, RedisSettings, Settings
from pipeline.app import create_app, reap_once
from pipeline.broker import QUEUE_NAME, enqueue_step
from pipeline.deps import Resources
from tests.conftest import free_port
from tests.pipeline.conftest import Account, make_account

Conn = psycopg.Connection[tuple[Any, ...]]
MAX_UPLOAD = 300_000


@pytest.fixture
def service_settings(settings: Settings) -> Settings:
    """The test settings, with a small upload limit and a Redis database of their own."""
    isolated = settings.redis.redis_url.rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(isolated).flushdb()
    pipeline = settings.pipeline.model_copy(update={"max_upload_bytes": MAX_UPLOAD})
    return settings.model_copy(
        update={"redis": RedisSettings(redis_url=isolated), "pipeline": pipeline}
    )


async def _running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://etl.test") as http:
            yield http


@pytest.fixture
async def client(service_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to a running ETL service in-process."""
    async for http in _running(service_settings):
        yield http


def _zip_of(shp: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(shp.parent.glob(f"{shp.stem}.*")):
            archive.write(part, f"{shp.stem}/{part.name}")
    return target


def _files(*paths: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]


def _same_bytes(one: Path, other: Path) -> bool:
    return one.read_bytes() == other.read_bytes()


def _found(folder: Path, name: str) -> list[Path]:
    return list(folder.rglob(name))


def _leftovers(settings: Settings) -> list[Path]:
    folder = settings.pipeline.upload_dir
    return list(folder.rglob("*")) if folder.exists() else []


def _queued_messages(settings: Settings) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(settings.redis.redis_url)
    bodies = client.hvals(f"dramatiq:{QUEUE_NAME}.msgs")
    return [json.loads(body) for body in bodies]


async def test_health_reports_database_broker_and_workers(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert (body["database"], body["broker"]) == ("ok", "ok")
    assert isinstance(body["workers"], int)
    assert body["workers_alive"] == (body["workers"] > 0)
    assert set(body["queue"]) == {"messages", "delayed"}
    assert set(body["tasks"]) == {"queued", "running"}


async def test_health_is_unhealthy_when_the_database_and_redis_are_down(
    service_settings: Settings,
) -> None:
    dead = service_settings.model_copy(
        update={
            "db": DatabaseSettings(
                database_url=f"postgresql://maps:maps@127.0.0.1:{free_port()}/maps"
            ),
            "redis": RedisSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0"),
        }
    )
    async for http in _running(dead):
        response = await http.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["database"].startswith("unavailable")
        assert body["broker"].startswith("unavailable")


async def test_without_redis_tokens_cannot_be_checked_and_the_answer_is_503(
    service_settings: Settings, account: Account, points_shp: Path
) -> None:
    dead = service_settings.model_copy(
        update={"redis": RedisSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0")}
    )
    async for http in _running(dead):
        response = await http.post(
            "/tasks/import/shapefile",
            data={"name": "x"},
            files=_files(points_shp),
            headers=account.headers,
        )
        assert response.status_code == 503
        assert "Redis" in response.json()["detail"]


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic dXNlcjpwdw=="])
async def test_imports_need_a_valid_bearer_token(
    client: httpx.AsyncClient, points_shp: Path, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await client.post(
        "/tasks/import/shapefile", data={"name": "x"}, files=_files(points_shp), headers=headers
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert set(response.json()) == {"detail"}


async def test_a_zip_import_is_accepted_and_queued(
    client: httpx.AsyncClient,
    account: Account,
    points_shp: Path,
    tmp_path: Path,
    service_settings: Settings,
    db: Conn,
) -> None:
    upload = _zip_of(points_shp, tmp_path / "points.zip")

    response = await client.post(
        "/tasks/import/shapefile",
        data={"name": "Points of interest"},
        files=_files(upload),
        headers=account.headers,
    )

    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    assert response.headers["Location"] == f"/tasks/{task_id}"
    row = db.execute(
        "SELECT state, step, owner_id, kind, params FROM etl_task WHERE id = %s", (task_id,)
    ).fetchone()
    assert row is not None
    state, step, owner_id, kind, params = row
    assert (state, step, owner_id, kind) == ("queued", "stage", account.id, "import_shapefile")
    assert params["name"] == "Points of interest"
    assert params["sid"].startswith("src_")
    folder = service_settings.pipeline.upload_dir / task_id
    assert sorted(p.name for p in folder.iterdir()) == [
        f"points{ext}" for ext in (".cpg", ".dbf", ".prj", ".shp", ".shx")
    ]
    assert _same_bytes(folder / "points.shp", points_shp)
    messages = _queued_messages(service_settings)
    assert [(m["actor_name"], m["args"]) for m in messages] == [("import_stage", [task_id])]

    document = (await client.get(f"/tasks/{task_id}", headers=account.headers)).json()
    assert document["id"] == task_id
    assert (document["state"], document["step"]) == ("queued", "stage")
    assert (document["result"], document["error"]) == (None, None)
    assert document["created_at"].endswith("Z")


async def test_sibling_parts_are_accepted_as_one_shapefile(
    client: httpx.AsyncClient, account: Account, points_shp: Path, service_settings: Settings
) -> None:
    parts = sorted(points_shp.parent.glob("points.*"))

    response = await client.post(
        "/tasks/import/shapefile",
        data={"name": "parts"},
        files=_files(*parts),
        headers=account.headers,
    )

    assert response.status_code == 202, response.text
    folder = service_settings.pipeline.upload_dir / response.json()["task_id"]
    assert {p.name for p in folder.iterdir()} == {p.name for p in parts}


async def test_an_upload_over_the_limit_is_refused_with_413(
    client: httpx.AsyncClient, account: Account, tmp_path: Path, service_settings: Settings
) -> None:
    big = tmp_path / "big.zip"
    big.write_bytes(b"\0" * (MAX_UPLOAD + 1))

    response = await client.post(
        "/tasks/import/shapefile", data={"name": "big"}, files=_files(big), headers=account.headers
    )

    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert _leftovers(service_settings) == []


async def test_an_upload_over_the_limit_without_content_length_is_cut_off(
    client: httpx.AsyncClient, account: Account, service_settings: Settings
) -> None:
    boundary = "xyz"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(10):
            yield b"\0" * (MAX_UPLOAD // 4)  # never finished: the service must stop reading

    response = await client.post(
        "/tasks/import/shapefile",
        content=body(),
        headers={**account.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert response.status_code == 413
    assert _leftovers(service_settings) == []


async def test_a_zip_with_path_traversal_is_refused(
    client: httpx.AsyncClient, account: Account, tmp_path: Path, service_settings: Settings
) -> None:
    upload = tmp_path / "evil.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        for ext in (".shp", ".shx", ".dbf"):
            archive.writestr(f"roads{ext}", b"x")
        archive.writestr(zipfile.ZipInfo("../../escaped.shp"), b"evil")

    response = await client.post(
        "/tasks/import/shapefile",
        data={"name": "evil"},
        files=_files(upload),
        headers=account.headers,
    )

    assert response.status_code == 400
    assert "leaving its folder" in response.json()["file"][0]
    assert _found(tmp_path, "escaped.shp") == []
    assert _leftovers(service_settings) == []


async def test_form_errors_are_drf_shaped(
    client: httpx.AsyncClient, account: Account, points_shp: Path
) -> None:
    no_name = await client.post(
        "/tasks/import/shapefile", files=_files(points_shp), headers=account.headers
    )
    assert no_name.status_code == 400
    assert no_name.json() == {"name": ["This field is required."]}

    no_shp = await client.post(
        "/tasks/import/shapefile",
        data={"name": "x"},
        files=_files(points_shp.with_suffix(".dbf"), points_shp.with_suffix(".shx")),
        headers=account.headers,
    )
    assert no_shp.status_code == 400
    assert ".shp" in no_shp.json()["file"][0]

    not_multipart = await client.post(
        "/tasks/import/shapefile", json={"name": "x"}, headers=account.headers
    )
    assert not_multipart.status_code == 400
    assert "file" in not_multipart.json()


async def test_tasks_are_visible_to_their_owner_and_superusers_only(
    client: httpx.AsyncClient,
    account: Account,
    superuser: Account,
    points_shp: Path,
    database_url: str,
    redis_url: str,
) -> None:
    created = await client.post(
        "/tasks/import/shapefile",
        data={"name": "mine"},
        files=_files(*sorted(points_shp.parent.glob("points.*"))),
        headers=account.headers,
    )
    task_id = created.json()["task_id"]
    stranger = make_account(database_url, redis_url)

    assert (await client.get(f"/tasks/{task_id}", headers=account.headers)).status_code == 200
    assert (await client.get(f"/tasks/{task_id}", headers=superuser.headers)).status_code == 200
    hidden = await client.get(f"/tasks/{task_id}", headers=stranger.headers)
    assert (hidden.status_code, hidden.json()) == (404, {"detail": "Not found."})
    unknown = await client.get(f"/tasks/{uuid.uuid4()}", headers=account.headers)
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Not found."})
    garbage = await client.get("/tasks/not-a-uuid", headers=account.headers)
    assert (garbage.status_code, garbage.json()) == (404, {"detail": "Not found."})
    anonymous = await client.get(f"/tasks/{task_id}")
    assert anonymous.status_code == 401
    assert (await client.get("/tasks/", headers=stranger.headers)).json()["count"] == 0


async def test_the_task_list_is_paginated_as_drf(
    client: httpx.AsyncClient, account: Account, points_shp: Path
) -> None:
    parts = _files(*sorted(points_shp.parent.glob("points.*")))
    ids = []
    for number in range(3):
        response = await client.post(
            "/tasks/import/shapefile",
            data={"name": f"n{number}"},
            files=parts,
            headers=account.headers,
        )
        ids.append(response.json()["task_id"])

    first = (await client.get("/tasks/?page_size=2", headers=account.headers)).json()
    assert first["count"] == 3
    assert first["previous"] is None
    assert first["next"] == "http://etl.test/tasks/?page_size=2&page=2"
    assert [task["id"] for task in first["results"]] == ids[::-1][:2]
    second = (await client.get(first["next"], headers=account.headers)).json()
    assert second["previous"] == "http://etl.test/tasks/?page_size=2"
    assert second["next"] is None
    assert [task["id"] for task in second["results"]] == ids[:1]
    past = await client.get("/tasks/?page=9", headers=account.headers)
    assert (past.status_code, past.json()) == (404, {"detail": "Invalid page."})
    forwarded = await client.get(
        "/tasks/?page_size=1",
        headers={
            **account.headers,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "maps.example",
        },
    )
    assert forwarded.json()["next"] == "https://maps.example/tasks/?page_size=1&page=2"


async def test_a_task_whose_worker_died_is_queued_again(
    service_settings: Settings, account: Account, db: Conn
) -> None:
    app: FastAPI = create_app(service_settings)
    async with app.router.lifespan_context(app):
        resources: Resources = app.state.resources
        task_id = uuid.uuid4()
        db.execute(
            "INSERT INTO etl_task (id, kind, owner_id, state, step, attempts, heartbeat_at)"
            " VALUES (%s, 'import_shapefile', %s, 'running', 'profile', 1,"
            " now() - interval '1 hour')",
            (task_id, account.id),
        )

        requeued = await reap_once(resources)

    assert (str(task_id), "profile") in requeued
    row = db.execute(
        "SELECT state, heartbeat_at FROM etl_task WHERE id = %s", (task_id,)
    ).fetchone()
    assert row == ("running", None)
    messages = _queued_messages(service_settings)
    assert ("import_profile", [str(task_id)]) in [(m["actor_name"], m["args"]) for m in messages]


async def test_a_due_step_whose_message_was_lost_is_sent_again(
    service_settings: Settings, account: Account, db: Conn
) -> None:
    app: FastAPI = create_app(service_settings)
    async with app.router.lifespan_context(app):
        resources: Resources = app.state.resources
        lost, waiting = uuid.uuid4(), uuid.uuid4()
        for task_id in (lost, waiting):
            db.execute(
                "INSERT INTO etl_task (id, kind, owner_id, state, step, attempts, updated_at)"
                " VALUES (%s, 'import_shapefile', %s, 'running', 'load', 0,"
                " now() - interval '1 hour')",
                (task_id, account.id),
            )
        # The other one's message is still in the queue: it must not be sent twice.
        enqueue_step(resources.broker, "load", waiting)

        resent = await reap_once(resources)
        again = await reap_once(resources)  # the lost one was just touched: left alone now

    assert (str(lost), "load") in resent
    assert str(waiting) not in [task for task, _ in resent]
    assert again == []
    messages = [(m["actor_name"], m["args"]) for m in _queued_messages(service_settings)]
    assert sorted(messages) == sorted(
        [("import_load", [str(lost)]), ("import_load", [str(waiting)])]
    )
    row = db.execute("SELECT state, warnings FROM etl_task WHERE id = %s", (lost,)).fetchone()
    assert row is not None and row[0] == "running"
    assert any("lost" in warning for warning in row[1])


async def test_unknown_routes_and_methods_answer_as_drf(
    client: httpx.AsyncClient, account: Account
) -> None:
    missing = await client.get("/nowhere/", headers=account.headers)
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not found."})
    wrong = await client.delete("/tasks/", headers=account.headers)
    assert (wrong.status_code, wrong.json()) == (405, {"detail": 'Method "DELETE" not allowed.'})


async def test_import_options_are_checked_before_anything_is_queued(
    client: httpx.AsyncClient, account: Account, tmp_path: Path, service_settings: Settings
) -> None:
    table = tmp_path / "points.csv"
    table.write_text("x,y\n1,2\n")

    async def refused(kind: str, upload: Path, **fields: str) -> dict[str, Any]:
        answer = await client.post(
            f"/tasks/import/{kind}", data=fields, files=_files(upload), headers=account.headers
        )
        assert answer.status_code == 400, answer.text
        body: dict[str, Any] = answer.json()
        return body

    assert await refused("csv", table) == {"name": ["This field is required."]}
    assert "encoding" in await refused("csv", table, name="t", encoding="klingon-8")
    crs = await refused("csv", table, name="t", source_crs="EPSG:999999")
    assert "PROJ" in crs["source_crs"][0]
    assert await refused("csv", table, name="t", x="lon") == {
        "y": ["Give both x and y, or neither."]
    }
    assert "on_bad_rows" in await refused("csv", table, name="t", on_bad_rows="ignore")
    assert "not a geojson file" in (await refused("geojson", table, name="t"))["file"][0]
    assert "source_id" in await refused("csv", table, source_id="abc")
    assert _leftovers(service_settings) == []
    assert _queued_messages(service_settings) == []


async def test_a_layer_is_chosen_from_a_zip_of_several_shapefiles(
    client: httpx.AsyncClient,
    account: Account,
    points_shp: Path,
    polygons_shp: Path,
    tmp_path: Path,
    service_settings: Settings,
) -> None:
    upload = tmp_path / "both.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        for shp in (points_shp, polygons_shp):
            for part in shp.parent.glob(f"{shp.stem}.*"):
                archive.write(part, f"data/{part.name}")

    unchosen = await client.post(
        "/tasks/import/shapefile", data={"name": "x"}, files=_files(upload), headers=account.headers
    )
    unknown = await client.post(
        "/tasks/import/shapefile",
        data={"name": "x", "layer": "roads"},
        files=_files(upload),
        headers=account.headers,
    )
    chosen = await client.post(
        "/tasks/import/shapefile",
        data={"name": "x", "layer": "Polygons"},
        files=_files(upload),
        headers=account.headers,
    )

    assert unchosen.status_code == 400 and "layer" in unchosen.json()["file"][0]
    assert unknown.status_code == 400
    assert "points, polygons" in unknown.json()["layer"][0]
    assert chosen.status_code == 202, chosen.text
    folder = service_settings.pipeline.upload_dir / chosen.json()["task_id"]
    assert {p.suffix for p in folder.iterdir()} >= {".shp", ".shx", ".dbf"}
    assert {p.stem for p in folder.iterdir()} == {"polygons"}
