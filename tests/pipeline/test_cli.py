"""The `maps` CLI on its own: its one-line errors, token storage, accounts in the database."""

from __future__ import annotations

import os
import stat
import uuid
import zipfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pipeline import client, follow
from pipeline import inspect as inspecting
from tests.conftest import free_port
from tests.pipeline.conftest import maps, one_line_error

Conn = psycopg.Connection[tuple[Any, ...]]


def test_the_cli_says_when_the_etl_service_is_unreachable(tmp_path: Path, points_shp: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "ETL_SERVICE_URL": url, "MAPS_TOKEN": "whatever"}

    result = maps("import", str(points_shp), "--name", "x", "--wait", env=env)

    line = one_line_error(result)
    assert line == (f"error: cannot reach the ETL service at {url}: is the stack up? run `make up`")


def test_the_cli_explains_missing_files_and_missing_logins(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "nobody")}
    env.pop("MAPS_TOKEN", None)
    missing = maps("import", str(tmp_path / "nope.shp"), "--name", "x", env=env)
    assert one_line_error(missing) == f"error: no such file: {tmp_path / 'nope.shp'}"

    lonely = tmp_path / "lonely.shp"
    lonely.write_bytes(b"x")
    line = one_line_error(maps("import", str(lonely), "--name", "x", env=env))
    # A .shp alone is a shapefile as GDAL reads it (geometry only): the login is what lacks.
    assert "not logged in" in line

    anonymous = maps("task", str(uuid.uuid4()), env=env)
    assert "not logged in" in one_line_error(anonymous)


def test_users_are_created_in_the_database(database_url: str, db: Conn) -> None:
    email = f"Made-{uuid.uuid4().hex[:8]}@Example.com"
    env = {**os.environ, "DATABASE_URL": database_url}

    made = maps("users", "create", "--email", email, "--password", "pw", "--superuser", env=env)

    assert made.returncode == 0, made.stderr
    row = db.execute(
        "SELECT is_superuser, is_active, password LIKE 'pbkdf2_sha256$%%' FROM auth_user"
        " WHERE email = %s",
        (email,),
    ).fetchone()
    assert row == (True, True, True)
    again = maps("users", "create", "--email", email.lower(), "--password", "pw", env=env)
    assert one_line_error(again) == "error: email: A user with that email already exists."


def test_users_create_says_when_the_database_is_down() -> None:
    env = {**os.environ, "DATABASE_URL": f"postgresql://maps:maps@127.0.0.1:{free_port()}/x"}
    result = maps("users", "create", "--email", "a@example.com", "--password", "pw", env=env)
    line = one_line_error(result)
    assert line.startswith("error: cannot reach the database at postgresql://127.0.0.1:")
    assert "maps:maps" not in line  # no credentials in messages


def test_the_token_is_kept_private_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(client.TOKEN_ENV, raising=False)
    with pytest.raises(client.CliError, match="not logged in"):
        client.load_token()

    path = client.save_token("abc.def")

    assert path == tmp_path / "config" / "maps" / "token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert client.load_token() == "abc.def"
    monkeypatch.setenv(client.TOKEN_ENV, "from-env")
    assert client.load_token() == "from-env"
    assert client.forget_token() and not path.exists()


def test_a_shapefile_is_uploaded_with_its_siblings(tmp_path: Path) -> None:
    for name in ("roads.shp", "roads.SHX", "roads.dbf", "roads.prj", "other.dbf", "roads.txt"):
        (tmp_path / name).write_bytes(b"x")
    files = client.upload_files(tmp_path / "roads.shp")
    assert sorted(f.name for f in files) == ["roads.SHX", "roads.dbf", "roads.prj", "roads.shp"]
    with pytest.raises(client.CliError, match="not a shapefile"):
        client.upload_files(tmp_path / "roads.txt")


def test_the_import_endpoint_is_chosen_by_extension_or_by_what_a_zip_holds(
    tmp_path: Path,
) -> None:
    for name, kind in [("a.SHP", "shapefile"), ("b.csv", "csv"), ("c.tsv", "csv"),
                       ("d.geojson", "geojson"), ("e.ndjson", "geojson")]:  # fmt: skip
        assert client.detect_kind(tmp_path / name) == kind
    with zipfile.ZipFile(tmp_path / "roads.zip", "w") as archive:
        archive.writestr("export/roads.shp", b"x")
        archive.writestr("export/readme.csv", b"x")
    with zipfile.ZipFile(tmp_path / "table.zip", "w") as archive:
        archive.writestr("table.csv", b"x")
    assert client.detect_kind(tmp_path / "roads.zip") == "shapefile"
    assert client.detect_kind(tmp_path / "table.zip") == "csv"
    with pytest.raises(client.CliError, match="--type"):
        client.detect_kind(tmp_path / "notes.md")
    assert client.upload_files(tmp_path / "table.zip", "csv") == [tmp_path / "table.zip"]


def test_progress_gives_rates_and_time_left() -> None:
    assert follow.rate_and_eta({"rows_done": 500, "rows_total": 2000, "elapsed": 5.0}) == (
        100.0,
        15.0,
    )
    by_bytes = {"rows_done": 300, "bytes_done": 25, "bytes_total": 100, "elapsed": 3.0}
    assert follow.rate_and_eta(by_bytes) == (100.0, 9.0)
    assert follow.rate_and_eta({"rows_done": 0, "elapsed": 1.0}) == (None, None)
    running = {"state": "running", "step": "load", "progress": {"phase": "index 2/4"}}
    assert follow.label(running) == "load: index 2/4"


def test_the_inspect_shell_splits_statements() -> None:
    lines = ["SELECT 1;", "SELECT", "  2", "", "SELECT 3; ", ".quit", "SELECT 4;"]
    assert list(inspecting.statements(lines)) == ["SELECT 1", "SELECT\n  2", "SELECT 3"]
