"""No 5xx from out-of-range integers or from text PostgreSQL cannot store (issue 14)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.conftest import Account

HUGE = 99999999999999999999
SOURCES = "/api/v1/sources/"
LAYERS = "/api/v1/layers/"
OUT_OF_RANGE = [HUGE, -HUGE, 4899459764, 2**31, 0, -5]


async def _source(client: httpx.AsyncClient, alice: Account) -> int:
    response = await client.post(
        "/api/v1/sources/", json={"name": "s", "source_type": "csv"}, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.mark.parametrize("number", OUT_OF_RANGE)
@pytest.mark.parametrize("noun", ["sources", "layers", "projects"])
async def test_path_ids_out_of_range_are_404(
    client: httpx.AsyncClient, alice: Account, noun: str, number: int
) -> None:
    url = f"/api/v1/{noun}/{number}/"
    body = {"name": "x", "source_type": "csv", "source": 1}
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = await client.request(
            method, url, json=None if method in ("GET", "DELETE") else body, headers=alice.headers
        )
        assert response.status_code == 404, (method, url, response.text)
        assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("number", [HUGE, -5183515091145, 2**31, 0, -1])
async def test_body_references_out_of_range_are_field_errors(
    client: httpx.AsyncClient, alice: Account, number: int
) -> None:
    response = await client.post(
        "/api/v1/layers/", json={"name": "l", "source": number}, headers=alice.headers
    )
    assert response.status_code == 400, response.text
    assert list(response.json()) == ["source"]
    assert all(isinstance(m, str) for m in response.json()["source"])

    response = await client.post(
        "/api/v1/projects/", json={"name": "p", "layers": [number]}, headers=alice.headers
    )
    assert response.status_code == 400, response.text
    assert list(response.json()) == ["layers"]

    project = await client.post("/api/v1/projects/", json={"name": "p"}, headers=alice.headers)
    assert project.status_code == 201
    url = f"/api/v1/projects/{project.json()['id']}/"
    response = await client.put(url, json={"name": "p", "layers": [number]}, headers=alice.headers)
    assert response.status_code == 400, response.text
    response = await client.patch(url, json={"layers": [1, number]}, headers=alice.headers)
    assert response.status_code == 400, response.text
    assert list(response.json()) == ["layers"]


@pytest.mark.parametrize("page", [str(HUGE), str(-HUGE), "1e999", "0"])
async def test_query_integers_out_of_range_never_500(
    client: httpx.AsyncClient, alice: Account, page: str
) -> None:
    for url in ("/api/v1/sources/", "/api/v1/wfs/"):
        response = await client.get(
            url, params={"page": page, "page_size": page, "source": page}, headers=alice.headers
        )
        assert response.status_code in (200, 400, 404), (url, response.text)


BAD_TEXT = ["a\x00b", "\ud800", "x\udfffy"]


@pytest.mark.parametrize("bad", BAD_TEXT)
async def test_bad_text_in_json_bodies_is_a_field_error(
    client: httpx.AsyncClient, alice: Account, bad: str
) -> None:
    source_id = await _source(client, alice)
    # JSON escapes are how a client sends these: json.dumps keeps \u0000 and \ud800 escaped.
    cases = [
        ("POST", "/api/v1/sources/", {"name": bad, "source_type": "csv"}, "name"),
        ("POST", SOURCES, {"name": "n", "source_type": "csv", "description": bad}, "description"),
        ("PATCH", f"/api/v1/sources/{source_id}/", {"attributes": {"k": [bad]}}, "attributes"),
        ("PATCH", f"/api/v1/sources/{source_id}/", {"attributes": {bad: 1}}, "attributes"),
        ("POST", LAYERS, {"name": "l", "source": source_id, "style": {"c": bad}}, "style"),
        ("PATCH", "/api/v1/user-profile/", {"first_name": bad}, "first_name"),
        ("POST", "/api/v1/auth/register", {"email": "z@example.com", "password": bad}, "password"),
    ]  # fmt: skip
    for method, url, body, field in cases:
        response = await client.request(
            method,
            url,
            content=json.dumps(body),
            headers={**alice.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 400, (url, body, response.text)
        assert list(response.json()) == [field], response.text
        assert response.json()[field][0].startswith(("Null characters", "Surrogate characters"))


async def test_nul_in_login_form_fields_is_400(client: httpx.AsyncClient, alice: Account) -> None:
    for data in (
        {"username": "alice@example.com\x00", "password": "x"},
        {"username": "alice@example.com", "password": "p\x00"},
    ):
        response = await client.post("/api/v1/auth/login", data=data)
        assert response.status_code == 400, response.text
        field = next(k for k, v in data.items() if "\x00" in v)
        assert response.json() == {field: ["Null characters are not allowed."]}
    # The same form as multipart.
    response = await client.post(
        "/api/v1/auth/login",
        files={"username": (None, "a\x00@example.com"), "password": (None, "x")},
    )
    assert response.status_code == 400, response.text
    # And it still signs in with clean fields.
    response = await client.post(
        "/api/v1/auth/login", data={"username": alice.email, "password": alice.password}
    )
    assert response.status_code == 200, response.text


async def test_nul_in_query_and_path_is_400(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get("/api/v1/sources/?search=a%00b", headers=alice.headers)
    assert response.status_code == 400
    assert response.json() == {"search": ["Null characters are not allowed."]}
    response = await client.get("/api/v1/wfs/?geometry_type=%00", headers=alice.headers)
    assert response.status_code == 400
    response = await client.get("/api/v1/sources/%00/", headers=alice.headers)
    assert response.status_code == 400


async def test_raw_surrogate_bytes_in_json_are_400(
    client: httpx.AsyncClient, alice: Account
) -> None:
    # CESU-8 bytes of a lone surrogate: json.loads decodes them with surrogatepass.
    body = b'{"name": "a\xed\xa0\x80", "source_type": "csv"}'
    response = await client.post(
        "/api/v1/sources/",
        content=body,
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.status_code < 500
