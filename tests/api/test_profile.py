"""/api/v1/user-profile/: the signed-in user's own profile."""

from __future__ import annotations

import httpx
import psycopg

from tests.api.conftest import Account

ME = "/api/v1/user-profile/"
Conn = psycopg.Connection[tuple[object, ...]]


async def test_read(client: httpx.AsyncClient, alice: Account, db: Conn) -> None:
    response = await client.get(ME, headers=alice.headers)
    assert response.status_code == 200
    profile_id = db.execute(
        "SELECT id FROM core_userprofile WHERE user_id = %s", (alice.id,)
    ).fetchone()
    assert profile_id is not None
    assert response.json() == {
        "id": profile_id[0],
        "username": "alice@example.com",
        "email": "alice@example.com",
        "first_name": "",
        "last_name": "",
        "organization": "",
        "preferences": {},
    }


async def test_put_and_patch(client: httpx.AsyncClient, alice: Account, db: Conn) -> None:
    put = await client.put(
        ME,
        json={
            "first_name": "Alice",
            "last_name": "Liddell",
            "organization": "Wonderland GIS",
            "preferences": {"basemap": "dark"},
            "username": "ignored",
            "id": 77,
        },
        headers=alice.headers,
    )
    assert put.status_code == 200, put.text
    body = put.json()
    assert (body["first_name"], body["organization"], body["username"]) == (
        "Alice",
        "Wonderland GIS",
        "alice@example.com",
    )
    patched = await client.patch(ME, json={"email": "Alice@New.example"}, headers=alice.headers)
    assert patched.status_code == 200
    # Kept as typed: DRF's EmailField on the profile normalised nothing.
    assert patched.json()["email"] == "Alice@New.example"
    assert patched.json()["preferences"] == {"basemap": "dark"}
    row = db.execute(
        "SELECT u.email, u.first_name, u.last_name, p.organization, p.preferences "
        "FROM auth_user u JOIN core_userprofile p ON p.user_id = u.id WHERE u.id = %s",
        (alice.id,),
    ).fetchone()
    assert row == ("Alice@New.example", "Alice", "Liddell", "Wonderland GIS", {"basemap": "dark"})


async def test_each_user_sees_only_their_own(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await client.patch(ME, json={"organization": "A corp"}, headers=alice.headers)
    bobs = (await client.get(ME, headers=bob.headers)).json()
    assert (bobs["email"], bobs["organization"]) == ("bob@example.com", "")


async def test_validation(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    taken = await client.patch(ME, json={"email": "BOB@example.com"}, headers=alice.headers)
    assert taken.status_code == 400
    assert taken.json() == {"email": ["A user with that email already exists."]}
    bad = await client.patch(
        ME, json={"email": "nope", "preferences": [1], "first_name": None}, headers=alice.headers
    )
    assert bad.status_code == 400
    assert set(bad.json()) == {"email", "preferences", "first_name"}
    assert bad.json()["first_name"] == ["This field may not be null."]


async def test_profile_made_for_django_users_without_one(
    client: httpx.AsyncClient, alice: Account, db: Conn
) -> None:
    db.execute("DELETE FROM core_userprofile WHERE user_id = %s", (alice.id,))
    response = await client.get(ME, headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["organization"] == ""
    assert db.execute(
        "SELECT count(*) FROM core_userprofile WHERE user_id = %s", (alice.id,)
    ).fetchone() == (1,)
