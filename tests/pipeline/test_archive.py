"""Setting an upload out as one shapefile: safe zip extraction and sibling parts."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from core.errors import InvalidInput, PayloadTooLarge
from pipeline.archive import prepare_shapefile
from pipeline.uploads import UploadedFile, safe_filename

PARTS = {".shp": b"shp-bytes", ".shx": b"shx-bytes", ".dbf": b"dbf-bytes", ".prj": b"GEOGCS"}


def _zip(path: Path, members: dict[str, bytes], *, links: tuple[str, ...] = ()) -> UploadedFile:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)  # a ZipInfo keeps the name as given, even "../x"
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return UploadedFile(field="file", filename=path.name, path=path, size=path.stat().st_size)


def _shapefile_members(prefix: str = "roads") -> dict[str, bytes]:
    return {f"{prefix}{ext}": data for ext, data in PARTS.items()}


@pytest.fixture
def target(tmp_path: Path) -> Path:
    folder = tmp_path / "task"
    folder.mkdir()
    return folder


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*"))


def test_a_zip_in_a_folder_is_extracted_flat_with_only_the_shapefile_parts(
    tmp_path: Path, target: Path
) -> None:
    members = {f"data/{name}": data for name, data in _shapefile_members("Roads").items()}
    members |= {"data/readme.txt": b"x", "__MACOSX/data/._Roads.shp": b"junk", "data/": b""}
    upload = _zip(target / "00-upload.zip", members)

    shp = prepare_shapefile([upload], target, max_bytes=10_000)

    assert shp == target / "Roads.shp"
    assert _listing(target) == ["Roads.dbf", "Roads.prj", "Roads.shp", "Roads.shx"]
    assert shp.read_bytes() == b"shp-bytes"


def test_upper_case_extensions_are_normalised(target: Path) -> None:
    members = {f"ROADS{ext.upper()}": data for ext, data in PARTS.items()}
    shp = prepare_shapefile([_zip(target / "up.zip", members)], target, max_bytes=10_000)
    assert _listing(target) == ["ROADS.dbf", "ROADS.prj", "ROADS.shp", "ROADS.shx"]
    assert shp.name == "ROADS.shp"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.shp", "leaving its folder"),
        ("data/../../evil.dbf", "leaving its folder"),
        ("/etc/evil.shp", "absolute path"),
        ("C:/evil.shp", "absolute path"),
    ],
)
def test_zip_paths_escaping_the_folder_are_refused(
    tmp_path: Path, target: Path, name: str, reason: str
) -> None:
    upload = _zip(target / "up.zip", {**_shapefile_members(), name: b"evil"})

    with pytest.raises(InvalidInput, match=reason) as caught:
        prepare_shapefile([upload], target, max_bytes=10_000)

    assert caught.value.field == "file"
    assert not (tmp_path / "evil.shp").exists()
    assert _listing(target) == ["up.zip"]


def test_symbolic_links_in_a_zip_are_refused(target: Path) -> None:
    upload = _zip(target / "up.zip", _shapefile_members(), links=("roads.cpg",))
    with pytest.raises(InvalidInput, match="symbolic link"):
        prepare_shapefile([upload], target, max_bytes=10_000)


def test_a_zip_expanding_past_the_limit_is_refused(target: Path) -> None:
    members = _shapefile_members() | {"roads.dbf": b" " * 200_000}
    upload = _zip(target / "up.zip", members)
    with pytest.raises(PayloadTooLarge):
        prepare_shapefile([upload], target, max_bytes=10_000)  # x10 allowed: 100 KB


def test_a_zip_bomb_ratio_is_refused(target: Path) -> None:
    members = _shapefile_members() | {"roads.dbf": b"\0" * 5_000_000}
    upload = _zip(target / "up.zip", members)
    with pytest.raises(InvalidInput, match="suspiciously compressed"):
        prepare_shapefile([upload], target, max_bytes=10_000_000)


def test_several_shapefiles_in_one_zip_are_refused(target: Path) -> None:
    upload = _zip(target / "up.zip", _shapefile_members("a") | _shapefile_members("b"))
    with pytest.raises(InvalidInput, match="several shapefiles"):
        prepare_shapefile([upload], target, max_bytes=10_000)


def test_a_zip_without_the_dbf_is_set_out_as_geometry_only(target: Path) -> None:
    members = {k: v for k, v in _shapefile_members().items() if not k.endswith(".dbf")}
    shp = prepare_shapefile([_zip(target / "up.zip", members)], target, max_bytes=10_000)
    assert shp.is_file() and not shp.with_suffix(".dbf").exists()


def test_a_zip_without_the_shp_is_refused(target: Path) -> None:
    members = {k: v for k, v in _shapefile_members().items() if not k.endswith(".shp")}
    with pytest.raises(InvalidInput, match=r"\.shp"):
        prepare_shapefile([_zip(target / "up.zip", members)], target, max_bytes=10_000)


def test_a_broken_zip_is_refused(target: Path) -> None:
    path = target / "up.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    upload = UploadedFile(field="file", filename="up.zip", path=path)
    with pytest.raises(InvalidInput, match="not a readable zip"):
        prepare_shapefile([upload], target, max_bytes=10_000)


def _part(folder: Path, index: int, name: str, data: bytes) -> UploadedFile:
    path = folder / f"{index:02d}-{name}"
    path.write_bytes(data)
    return UploadedFile(field="file", filename=name, path=path, size=len(data))


def test_sibling_parts_are_renamed_to_one_stem_and_others_dropped(target: Path) -> None:
    uploads = [
        _part(target, 0, "roads.shp", b"shp"),
        _part(target, 1, "roads.SHX", b"shx"),
        _part(target, 2, "roads.dbf", b"dbf"),
        _part(target, 3, "notes.txt", b"txt"),
    ]

    shp = prepare_shapefile(uploads, target, max_bytes=10_000)

    assert shp == target / "roads.shp"
    assert _listing(target) == ["roads.dbf", "roads.shp", "roads.shx"]


def test_parts_without_a_shp_are_refused(target: Path) -> None:
    uploads = [_part(target, 0, "roads.dbf", b"dbf"), _part(target, 1, "roads.shx", b"shx")]
    with pytest.raises(InvalidInput, match=r"no \.shp"):
        prepare_shapefile(uploads, target, max_bytes=10_000)


def test_two_parts_of_one_kind_are_refused(target: Path) -> None:
    uploads = [_part(target, 0, "a.shp", b"1"), _part(target, 1, "b.shp", b"2")]
    with pytest.raises(InvalidInput, match=r"two \.shp"):
        prepare_shapefile(uploads, target, max_bytes=10_000)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("roads.shp", "roads.shp"),
        ("../../etc/passwd", "passwd"),
        ("C:\\data\\Straßen Netz.shp", "Stra_en_Netz.shp"),
        ("..shp", "shp"),
    ],
)
def test_safe_filename_keeps_only_a_plain_base_name(given: str, expected: str) -> None:
    assert safe_filename(given) == expected


def test_safe_filename_refuses_names_with_nothing_left() -> None:
    with pytest.raises(InvalidInput):
        safe_filename("../..")
