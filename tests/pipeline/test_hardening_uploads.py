"""Uploads: the size cap while streaming, hostile file names, NUL in form fields."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from core.settings import Settings
from tests.pipeline.conftest import Account
from tests.pipeline.test_app import MAX_UPLOAD, _leftovers
from tests.pipeline.test_app import client as client
from tests.pipeline.test_app import service_settings as service_settings

BOUNDARY = "hardeningboundary"
CHUNK = 64 * 1024


async def test_an_oversized_stream_is_refused_before_it_is_all_read(
    client: httpx.AsyncClient,
    account: Account,
    service_settings: Settings,
) -> None:
    sent = 0
    total_chunks = (MAX_UPLOAD * 10) // CHUNK

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        for _ in range(total_chunks):
            sent += 1
            yield b"x" * CHUNK

    # No Content-Length: only the stream itself can show that it is too big.
    response = await client.post(
        "/tasks/import/csv",
        content=body(),
        headers={**account.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.status_code == 413, response.text
    assert sent < total_chunks // 2, (sent, total_chunks)
    assert _leftovers(service_settings) == []


async def test_a_declared_oversized_length_is_refused_at_once(
    client: httpx.AsyncClient,
    account: Account,
    service_settings: Settings,
) -> None:
    response = await client.post(
        "/tasks/import/csv",
        files={"file": ("big.csv", b"x" * (MAX_UPLOAD + 1), "text/csv")},
        data={"name": "big"},
        headers=account.headers,
    )
    assert response.status_code == 413
    assert _leftovers(service_settings) == []


async def test_hostile_file_names_are_neutralised(
    client: httpx.AsyncClient,
    account: Account,
    service_settings: Settings,
    tmp_path: Path,
) -> None:
    csv = b"lon,lat,name\n1,2,a\n"
    for hostile in ("../../../escape.csv", "/etc/passwd.csv", "C:\\evil\\x.csv", "nul\x00.csv"):
        response = await client.post(
            "/tasks/import/csv",
            files={"file": (hostile, csv, "text/csv")},
            data={"name": "n"},
            headers=account.headers,
        )
        assert response.status_code in (202, 400), (hostile, response.text)
        upload_dir = service_settings.pipeline.upload_dir
        for saved in upload_dir.rglob("*"):
            assert saved.resolve().is_relative_to(upload_dir.resolve()), saved
            assert "\x00" not in saved.name and ".." not in saved.name
    assert not (tmp_path / "escape.csv").exists()
    assert not Path("/etc/passwd.csv").exists()  # noqa: ASYNC240


async def test_nul_in_a_form_field_is_a_field_error(
    client: httpx.AsyncClient,
    account: Account,
    service_settings: Settings,
) -> None:
    response = await client.post(
        "/tasks/import/csv",
        files={"file": ("a.csv", b"lon,lat\n1,2\n", "text/csv")},
        data={"name": "a\x00b"},
        headers=account.headers,
    )
    assert response.status_code == 400, response.text
    assert response.json() == {"name": ["Null characters are not allowed."]}
    assert _leftovers(service_settings) == []
    nul_query = await client.get("/tasks/?page=%00", headers=account.headers)
    assert nul_query.status_code == 400
