"""Every format end to end through the running stack (ETL service, Redis, a worker, PostGIS),
compared with what pyogrio (GDAL, the oracle) reads from the same files; re-imports; and
bad input, which must fail its task with a clear message, leave nothing in the database,
and leave the worker serving the next import.
"""

from __future__ import annotations

import csv
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pandas as pd
import psycopg
import pyogrio
import pytest

from tests.conftest import Stack
from tests.pipeline.conftest import (
    Account,
    assert_same_features,
    canonical_points,
    canonical_polygons,
    features_of,
    maps,
)

Conn = psycopg.Connection[tuple[Any, ...]]
FINAL = ("succeeded", "failed")


def _submit(
    stack: Stack, account: Account, kind: str, files: list[Path], **fields: str
) -> httpx.Response:
    return httpx.post(
        f"{stack.etl_url}/tasks/import/{kind}",
        data=fields,
        files=[("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in files],
        headers=account.headers,
        timeout=60,
    )


def _finished(stack: Stack, account: Account, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        task: dict[str, Any] = httpx.get(
            f"{stack.etl_url}/tasks/{task_id}", headers=account.headers
        ).json()
        if task["state"] in FINAL:
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.1)


def _import(
    stack: Stack, account: Account, kind: str, files: list[Path], **fields: str
) -> dict[str, Any]:
    answer = _submit(stack, account, kind, files, **fields)
    assert answer.status_code == 202, answer.text
    return _finished(stack, account, answer.json()["task_id"])


def _points_csv(path: Path, *, sep: str = ",", encoding: str = "utf-8") -> Path:
    frame = canonical_points()
    table = pd.DataFrame(
        {"lon": frame.geometry.x, "lat": frame.geometry.y}
        | {column: frame[column] for column in frame.columns if column != "geometry"}
    )
    table["capital"] = table["capital"].map({True: "true", False: "false"})
    table.to_csv(path, index=False, sep=sep, encoding=encoding)
    return path


def _csv_oracle(path: Path, **options: str) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(path, AUTODETECT_TYPE="YES", KEEP_GEOM_COLUMNS="NO", **options)


def test_a_csv_of_points_imported_with_the_cli_matches_pyogrio(
    stack: Stack, account: Account, tmp_path: Path, db: Conn
) -> None:
    path = _points_csv(tmp_path / "cities.csv", sep=";")
    env = {**stack.env, "MAPS_TOKEN": account.token, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}

    result = maps("import", str(path), "--x", "lon", "--y", "lat", "--wait", "--json", env=env)

    assert result.returncode == 0, result.stderr
    task = json.loads(result.stdout)
    assert (task["state"], task["kind"]) == ("succeeded", "import_csv")
    source_id = task["result"]["source_id"]
    expected = _csv_oracle(path, X_POSSIBLE_NAMES="lon", Y_POSSIBLE_NAMES="lat")
    assert_same_features(features_of(db, source_id), expected)
    row = db.execute(
        "SELECT name, source_type FROM core_source WHERE id = %s", (source_id,)
    ).fetchone()
    assert row == ("cities", "csv")  # named after the file when no --name is given


def test_a_csv_of_wkt_polygons_in_a_projected_crs_is_reprojected_as_gdal_does(
    stack: Stack, account: Account, tmp_path: Path, db: Conn
) -> None:
    frame = canonical_polygons().to_crs("EPSG:3857")
    path = tmp_path / "parcels.csv"
    pd.DataFrame(
        {"kind": frame["kind"], "area_m2": frame["area_m2"], "wkt": frame.geometry.to_wkt()}
    ).to_csv(path, index=False)

    task = _import(stack, account, "csv", [path], name="parcels", wkt="wkt", source_crs="EPSG:3857")

    assert task["state"] == "succeeded", task
    expected = _csv_oracle(path, GEOM_POSSIBLE_NAMES="wkt").set_crs("EPSG:3857")
    assert_same_features(
        features_of(db, task["result"]["source_id"]), expected.to_crs("EPSG:4326"), tolerance=1e-7
    )


@pytest.mark.parametrize("driver", ["GeoJSON", "GeoJSONSeq"])
def test_geojson_and_newline_delimited_geojson_match_pyogrio(
    stack: Stack, account: Account, tmp_path: Path, db: Conn, driver: str
) -> None:
    path = tmp_path / ("points.geojson" if driver == "GeoJSON" else "points.geojsonl")
    pyogrio.write_dataframe(canonical_points(), path, driver=driver)

    task = _import(stack, account, "geojson", [path], name="points")

    assert task["state"] == "succeeded", task
    assert task["result"]["profile"]["geometry_types"] == {"Point": 8}
    assert_same_features(features_of(db, task["result"]["source_id"]), pyogrio.read_dataframe(path))


def test_a_latin_1_csv_is_read_with_its_encoding(
    stack: Stack, account: Account, tmp_path: Path, db: Conn
) -> None:
    frame = canonical_points()
    frame["name"] = ["Zürich", "Genève", None, "São Paulo", "Malmö", "", "Nuuk", "Århus"]
    path = tmp_path / "latin.csv"
    pd.DataFrame({"x": frame.geometry.x, "y": frame.geometry.y, "name": frame["name"]}).to_csv(
        path, index=False, encoding="latin-1"
    )

    task = _import(stack, account, "csv", [path], name="latin", encoding="latin-1")

    assert task["state"] == "succeeded", task
    names = sorted(m["name"] for _, m, _ in features_of(db, task["result"]["source_id"]))
    assert names == sorted(["Zürich", "Genève", "", "São Paulo", "Malmö", "", "Nuuk", "Århus"])


def test_a_reimport_replaces_a_sources_features_and_keeps_its_identity(
    stack: Stack, account: Account, tmp_path: Path, db: Conn
) -> None:
    first = _import(stack, account, "csv", [_points_csv(tmp_path / "v1.csv")], name="kept")
    source_id = first["result"]["source_id"]
    polygons = tmp_path / "v2.geojson"
    pyogrio.write_dataframe(canonical_polygons(), polygons, driver="GeoJSON")

    second = _import(stack, account, "geojson", [polygons], source_id=str(source_id))

    assert second["state"] == "succeeded", second
    assert (second["result"]["source_id"], second["result"]["replaced"]) == (source_id, True)
    assert second["result"]["sid"] == first["result"]["sid"]
    assert_same_features(features_of(db, source_id), pyogrio.read_dataframe(polygons))
    row = db.execute(
        "SELECT name, source_type, attributes->'feature_count' FROM core_source WHERE id = %s",
        (source_id,),
    ).fetchone()
    assert row == ("kept", "geojson", 3)
    missing = _submit(stack, account, "geojson", [polygons], source_id="999999")
    assert missing.status_code == 400
    assert missing.json() == {"source_id": ['Invalid pk "999999" - object does not exist.']}


def _truncated_shapefile(folder: Path) -> tuple[str, list[Path], dict[str, str]]:
    folder.mkdir()
    frame = canonical_points()
    pyogrio.write_dataframe(frame, folder / "cut.shp", encoding="UTF-8")
    shp = folder / "cut.shp"
    shp.write_bytes(shp.read_bytes()[:200])  # cut inside the fifth record
    return "shapefile", sorted(folder.iterdir()), {}


def _badly_encoded_shapefile(folder: Path) -> tuple[str, list[Path], dict[str, str]]:
    folder.mkdir()
    pyogrio.write_dataframe(canonical_points(), folder / "enc.shp", encoding="UTF-8")
    dbf = folder / "enc.dbf"
    dbf.write_bytes(dbf.read_bytes().replace("Kraków".encode(), b"Krak\xf3w\xff"))
    return "shapefile", sorted(folder.iterdir()), {}


def _malformed_json(folder: Path) -> tuple[str, list[Path], dict[str, str]]:
    folder.mkdir()
    path = folder / "broken.geojson"
    pyogrio.write_dataframe(canonical_points(), path, driver="GeoJSON")
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    return "geojson", [path], {}


def _bad_coordinates(folder: Path) -> tuple[str, list[Path], dict[str, str]]:
    folder.mkdir()
    path = folder / "coords.csv"
    path.write_text("x,y,name\n1,2,a\n3,4,b\nnorth,5,c\n6,7,d\n")
    return "csv", [path], {}


def _bad_csv_encoding(folder: Path) -> tuple[str, list[Path], dict[str, str]]:
    folder.mkdir()
    path = folder / "latin.csv"
    path.write_bytes("x,y,name\n1,2,Genève\n".encode("latin-1"))
    return "csv", [path], {}


BAD_FILES: dict[str, tuple[Callable[[Path], tuple[str, list[Path], dict[str, str]]], str]] = {
    "truncated shapefile": (_truncated_shapefile, "cut.shp"),
    "bad encoding": (_badly_encoded_shapefile, "enc.dbf"),
    "malformed JSON": (_malformed_json, "broken.geojson"),
    "bad coordinates": (_bad_coordinates, "coords.csv, line 4"),
    "CSV not in UTF-8": (_bad_csv_encoding, "latin.csv, line 2"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_input_fails_at_once_with_a_clear_message_and_leaves_nothing(
    stack: Stack, account: Account, tmp_path: Path, db: Conn, case: str
) -> None:
    make, named = BAD_FILES[case]
    kind, files, fields = make(tmp_path / "bad")

    task = _import(stack, account, kind, files, name=f"bad {case}", **fields)

    assert task["state"] == "failed", task
    assert task["attempts"] == 1  # bad input is not retried
    assert named in task["error"]["message"], task["error"]
    assert str(stack.env["UPLOAD_DIR"]) not in task["error"]["message"]  # no server paths
    sources = db.execute("SELECT count(*) FROM core_source WHERE name = %s", (f"bad {case}",))
    assert sources.fetchone() == (0,)
    sid = db.execute("SELECT params->>'sid' FROM etl_task WHERE id = %s", (task["id"],)).fetchone()
    assert sid is not None
    assert not list(Path(stack.env["STAGING_DIR"]).glob(f"{sid[0]}*"))
    # The worker is still there for the next one.
    after = _import(stack, account, "csv", [_points_csv(tmp_path / "after.csv")], name="after")
    assert after["state"] == "succeeded", after


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name) if ".." in name else name, content)
    return path


def test_dangerous_uploads_are_refused_before_anything_is_queued(
    stack: Stack, account: Account, tmp_path: Path, db: Conn
) -> None:
    before = db.execute("SELECT count(*) FROM etl_task WHERE owner_id = %s", (account.id,))
    count = before.fetchone()
    escaping = _zip(tmp_path / "evil.zip", {"a.csv": b"x,y\n1,2\n", "../../evil.csv": b"x,y\n"})
    bomb = _zip(tmp_path / "bomb.zip", {"big.csv": b"x,y\n" + b"0" * (64 << 20)})

    refused_escape = _submit(stack, account, "csv", [escaping], name="evil")
    refused_bomb = _submit(stack, account, "csv", [bomb], name="bomb")
    wrong_kind = _submit(stack, account, "geojson", [escaping], name="wrong")

    assert refused_escape.status_code == 400
    assert "leaving its folder" in refused_escape.json()["file"][0]
    assert refused_bomb.status_code == 400
    assert "suspiciously compressed" in refused_bomb.json()["file"][0]
    assert wrong_kind.status_code == 400
    after = db.execute("SELECT count(*) FROM etl_task WHERE owner_id = %s", (account.id,))
    assert after.fetchone() == count
    assert not list((tmp_path / "..").glob("evil.csv"))


def test_bad_rows_are_left_out_with_a_warning_when_asked_to_skip(
    stack: Stack, account: Account, tmp_path: Path, db: Conn
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text('x,y,n\n1,2,a\n\n3,4,"two\nlines"\nnorth,5,c\n6,7,d,extra\n8,9,e\n')

    task = _import(stack, account, "csv", [path], name="mixed", on_bad_rows="skip")

    assert task["state"] == "succeeded", task
    assert task["result"]["feature_count"] == 3
    kept = sorted(m["n"] for _, m, _ in features_of(db, task["result"]["source_id"]))
    assert kept == ["a", "e", "two\nlines"]
    assert (
        "2 bad rows of mixed.csv were left out (on_bad_rows=skip): "
        "line 6: longitude 'north' is not a number; line 7: 4 fields, the header has 3"
    ) in task["warnings"]
    sid = task["result"]["sid"]
    assert not list(Path(stack.env["STAGING_DIR"]).glob(f"{sid}.skipped_rows*"))


def test_many_bad_rows_are_listed_in_a_file_beside_the_staged_one(
    stack: Stack, account: Account, tmp_path: Path
) -> None:
    path = tmp_path / "cities.csv"
    rows = ["name,lon,lat"]
    for i in range(60):
        # Every third row has a latitude out of range, every fifth a bad longitude.
        lat = "123.0" if i % 3 == 0 else str(i % 80)
        lon = "abc" if i % 5 == 0 else str(i)
        rows.append(f"c{i},{lon},{lat}")
    path.write_text("\n".join(rows) + "\n")
    bad = [i for i in range(60) if i % 3 == 0 or i % 5 == 0]

    task = _import(stack, account, "csv", [path], name="cities", on_bad_rows="skip")

    assert task["state"] == "succeeded", task
    assert task["result"]["feature_count"] == 60 - len(bad)
    [warning] = [w for w in task["warnings"] if "cities.csv" in w]
    head = f"{len(bad)} bad rows of cities.csv were left out (on_bad_rows=skip): "
    assert warning.startswith(head + "line 2: longitude 'abc' is not a number; line 5: ")
    assert "line 5: latitude 123.0 is out of range (-90 to 90)" in warning
    assert warning.count("; line ") == 19  # the first 20 lines only
    listing = Path(stack.env["STAGING_DIR"]) / f"{task['result']['sid']}.skipped_rows.csv"
    assert warning.endswith(
        f"; … and {len(bad) - 20} more (all {len(bad)} are listed in {listing})"
    )
    with listing.open(newline="") as handle:
        listed = list(csv.DictReader(handle))
    assert [int(row["line"]) for row in listed] == [i + 2 for i in bad]
    assert listed[0]["reason"] == "longitude 'abc' is not a number"
    assert listed[1]["reason"] == "latitude 123.0 is out of range (-90 to 90)"
