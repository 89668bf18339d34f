"""End to end: the real `maps` console script against the running stack (API, ETL service,
a Dramatiq worker), compared with what pyogrio (GDAL) reads from the same files."""

from __future__ import annotations

import json
import stat
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pyogrio
import pytest

from tests.conftest import Stack
from tests.pipeline.conftest import (
    MAPS,
    assert_same_features,
    features_of,
    maps,
    one_line_error,
)

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def cli_env(stack: Stack, tmp_path: Path) -> dict[str, str]:
    """The stack's environment, with a config folder of this test's own."""
    return {**stack.env, "XDG_CONFIG_HOME": str(tmp_path / "config"), "COLUMNS": "120"}


@pytest.fixture
def user_token(cli_env: dict[str, str], tmp_path: Path) -> str:
    """A user made with `maps users create`, signed in with `maps login`."""
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    created = maps("users", "create", "--email", email, "--password", "s3cret pass", env=cli_env)
    assert created.returncode == 0, created.stderr
    assert email in created.stdout

    logged_in = maps("login", "--email", email, "--password", "s3cret pass", env=cli_env)

    assert logged_in.returncode == 0, logged_in.stderr
    token_file = tmp_path / "config" / "maps" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    return token_file.read_text().strip()


def _assert_same_as_pyogrio(db: Conn, source_id: int, shp: Path) -> None:
    assert_same_features(features_of(db, source_id), pyogrio.read_dataframe(shp))


def test_a_shapefile_imported_with_the_cli_matches_pyogrio(
    cli_env: dict[str, str], user_token: str, points_shp: Path, db: Conn
) -> None:
    result = maps("import", str(points_shp), "--name", "demo", "--wait", "--json", env=cli_env)

    assert result.returncode == 0, result.stderr
    task = json.loads(result.stdout)
    assert task["state"] == "succeeded", task
    assert task["error"] is None
    outcome = task["result"]
    assert set(outcome) == {
        "source_id", "sid", "feature_count", "staging_path", "replaced", "profile"
    }  # fmt: skip
    assert outcome["feature_count"] == 8
    assert outcome["replaced"] is False
    summary = outcome["profile"]
    assert summary["feature_count"] == 8
    assert summary["geometry_types"] == {"Point": 8}
    assert summary["crs"] == "EPSG:4326"
    assert summary["bbox"] == pytest.approx([-179.5, -89.0, 135.5, 64.18])
    assert [c["name"] for c in summary["columns"]] == ["id", "name", "pop", "founded", "capital"]
    assert {"stage", "profile", "load", "load.copy", "load.index"} <= set(task["timings"])
    _assert_same_as_pyogrio(db, outcome["source_id"], points_shp)
    source = db.execute(
        "SELECT sid, name, source_type, attributes FROM core_source WHERE id = %s",
        (outcome["source_id"],),
    ).fetchone()
    assert source is not None
    assert source[:3] == (outcome["sid"], "demo", "shapefile")
    assert source[3]["feature_count"] == 8
    assert pq.read_metadata(outcome["staging_path"]).num_rows == 8

    shown = maps("task", task["id"], "--json", env=cli_env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["result"] == outcome


def test_a_zip_imports_polygons_with_holes_and_parts(
    cli_env: dict[str, str], user_token: str, polygons_shp: Path, tmp_path: Path, db: Conn
) -> None:
    archive = tmp_path / "polygons.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for part in polygons_shp.parent.iterdir():
            zipped.write(part, f"export/{part.name}")
    env = {**cli_env, "MAPS_TOKEN": user_token, "XDG_CONFIG_HOME": str(tmp_path / "empty")}

    result = maps("import", str(archive), "--name", "parcels", "--wait", env=env)

    assert result.returncode == 0, result.stderr
    assert "3 features" in result.stdout
    source_id = int(result.stdout.split("Imported source ")[1].split()[0])
    _assert_same_as_pyogrio(db, source_id, polygons_shp)


def test_a_broken_file_fails_cleanly_and_the_worker_serves_the_next(
    cli_env: dict[str, str], user_token: str, points_shp: Path, tmp_path: Path, db: Conn
) -> None:
    broken_dir = tmp_path / "broken"
    broken_dir.mkdir()
    for part in points_shp.parent.iterdir():
        (broken_dir / part.name).write_bytes(part.read_bytes())
    shp = broken_dir / "points.shp"
    shp.write_bytes(shp.read_bytes()[:120])  # cut off inside the first record

    failed = maps("import", str(shp), "--name", "broken", "--wait", "--json", env=cli_env)

    task = json.loads(failed.stdout)
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr
    assert task["state"] == "failed"
    assert task["error"]["code"] == "format_error"
    assert task["error"]["message"].startswith("points.shp, record 1:")  # no server paths
    assert "import failed at the stage step" in failed.stderr
    sid = db.execute("SELECT params->>'sid' FROM etl_task WHERE id = %s", (task["id"],)).fetchone()
    assert sid is not None
    assert db.execute("SELECT count(*) FROM core_source WHERE sid = %s", sid).fetchone() == (0,)

    plain = maps("import", str(shp), "--name", "broken", "--wait", env=cli_env)
    line = one_line_error(plain)
    assert "points.shp" in line

    healthy = maps("import", str(points_shp), "--name", "after", "--wait", "--json", env=cli_env)
    assert healthy.returncode == 0, healthy.stderr
    assert json.loads(healthy.stdout)["result"]["feature_count"] == 8


def test_the_cli_refuses_a_bad_token_and_bad_credentials(
    stack: Stack, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "MAPS_TOKEN": "not-a-real-token"}
    result = maps("task", str(uuid.uuid4()), env=env)
    assert "not logged in, or the token expired" in one_line_error(result)

    wrong = maps("login", "--email", "nobody@example.com", "--password", "nope", env=cli_env)
    assert one_line_error(wrong) == "error: login failed: wrong email or password"


def test_tasks_sources_and_inspect_show_what_was_imported(
    cli_env: dict[str, str], user_token: str, points_shp: Path
) -> None:
    imported = maps("import", str(points_shp), "--name", "shown", "--wait", "--json", env=cli_env)
    assert imported.returncode == 0, imported.stderr
    task = json.loads(imported.stdout)
    sid = task["result"]["sid"]

    listed = maps("tasks", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    assert task["id"] in listed.stdout and "succeeded" in listed.stdout
    page = json.loads(maps("tasks", "--json", "--page-size", "1", env=cli_env).stdout)
    assert page["count"] >= 1 and len(page["results"]) == 1 and page["results"][0]["id"]

    sources = maps("sources", "--search", "shown", env=cli_env)
    assert sources.returncode == 0, sources.stderr
    assert sid in sources.stdout and "shown" in sources.stdout

    counted = maps(
        "inspect", sid, "--sql", "SELECT count(*) AS n, min(id) AS low FROM source", env=cli_env
    )
    assert counted.returncode == 0, counted.stderr
    cells = [line.replace("│", " ").split() for line in counted.stdout.splitlines()]
    assert [row for row in cells if row][-2:] == [["8", "1"], ["1", "row(s)"]]
    shell = subprocess.run(
        [MAPS, "inspect", str(task["result"]["source_id"])],
        input="SELECT name\nFROM source WHERE id = 2;\nSELECT nonsense FROM source;\n.quit\n",
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shell.returncode == 0, shell.stderr
    assert "Oslo" in shell.stdout
    assert "nonsense" in shell.stderr  # an error in the shell is reported, the shell goes on
    missing = maps("inspect", "src_nosuchsource", env=cli_env)
    assert "no source with the sid" in one_line_error(missing)
