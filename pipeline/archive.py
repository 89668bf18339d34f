"""A shapefile upload set out on disk: a .zip extracted safely, or sibling parts renamed.

Whatever arrives, the result is one folder holding `<stem>.shp` and those of its
`.shx`, `.dbf`, `.prj`, `.cpg` that came with it, nothing else. Zip members are checked
before anything is written: no absolute names, no `..`, no links, no encryption, sizes
and compression ratios within limits; only the shapefile's own parts are extracted.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from core.errors import InvalidInput, PayloadTooLarge
from pipeline.steps.shapefile import REQUIRED_PARTS, SHAPEFILE_PARTS
from pipeline.uploads import UploadedFile, safe_filename

# Extracted bytes may exceed the upload limit by this factor (.dbf files compress well).
EXTRACT_FACTOR = 10
# Deflate tops out near 1032:1; real .dbf padding stays well below this. Above it, a
# member (of more than a MiB) is taken for a bomb even when within the size limit.
MAX_RATIO = 400
MAX_MEMBERS = 10_000
_CHUNK = 1024 * 1024


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, field="file")


def is_zip(upload: UploadedFile) -> bool:
    """Whether the upload is a zip archive (by name or by its magic bytes)."""
    if upload.filename.lower().endswith(".zip"):
        return True
    with upload.path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def prepare_shapefile(
    files: list[UploadedFile], directory: Path, *, max_bytes: int, layer: str | None = None
) -> Path:
    """Set the upload out as one shapefile in `directory`; returns the .shp path.

    A zip holding several shapefiles needs `layer`, the name of the one to import.
    """
    if not files:
        raise _invalid("No file was submitted.")
    if len(files) == 1 and is_zip(files[0]):
        shp = _extract_zip(files[0], directory, max_bytes=max_bytes * EXTRACT_FACTOR, layer=layer)
        files[0].path.unlink(missing_ok=True)
        return shp
    if any(is_zip(upload) for upload in files):
        raise _invalid("upload either one .zip or the shapefile's parts, not both")
    return _arrange_parts(files, directory)


def prepare_single(
    files: list[UploadedFile],
    directory: Path,
    *,
    suffixes: tuple[str, ...],
    kind: str,
    max_bytes: int,
) -> Path:
    """Set out a one-file upload (a CSV, a GeoJSON): the file itself, or a .zip holding it.

    Returns its path in `directory`; anything else uploaded with it is refused.
    """
    if not files:
        raise _invalid("No file was submitted.")
    if len(files) > 1:
        names = ", ".join(upload.filename for upload in files)
        raise _invalid(f"send one {kind} file at a time (got {names})")
    upload = files[0]
    if is_zip(upload):
        path = _extract_single(upload, directory, suffixes=suffixes, kind=kind,
                               max_bytes=max_bytes * EXTRACT_FACTOR)  # fmt: skip
        upload.path.unlink(missing_ok=True)
        return path
    name = safe_filename(upload.filename)
    if Path(name).suffix.lower() not in suffixes:
        raise _invalid(f"{upload.filename}: not a {kind} file (expected {', '.join(suffixes)})")
    target = directory / name
    upload.path.rename(target)
    return target


def _open_zip(upload: UploadedFile) -> zipfile.ZipFile:
    """The uploaded zip, or InvalidInput naming it."""
    try:
        return zipfile.ZipFile(upload.path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _invalid(f"{upload.filename}: not a readable zip archive ({exc})") from exc


def _files_in(
    archive: zipfile.ZipFile, upload: UploadedFile, suffixes: tuple[str, ...]
) -> list[tuple[PurePosixPath, zipfile.ZipInfo]]:
    """The archive's files with one of `suffixes` (folders and macOS metadata left out);
    every member's name is checked, whether it is kept or not."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise _invalid(f"{upload.filename}: too many files in the archive")
    found = []
    for info in members:
        path = _member_path(info)
        if info.is_dir() or "__MACOSX" in path.parts or path.name.startswith("._"):
            continue
        if path.suffix.lower() in suffixes:
            found.append((path, info))
    return found


def _check_expansion(upload: UploadedFile, members: list[zipfile.ZipInfo], max_bytes: int) -> None:
    """Refuse members that expand beyond `max_bytes` together, or one by too much."""
    if sum(info.file_size for info in members) > max_bytes:
        raise PayloadTooLarge(f"{upload.filename} expands beyond {max_bytes} bytes")
    for info in members:
        if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > _CHUNK:
            raise _invalid(f"{upload.filename}: {info.filename} is suspiciously compressed")


def _extract_single(
    upload: UploadedFile, directory: Path, *, suffixes: tuple[str, ...], kind: str, max_bytes: int
) -> Path:
    with _open_zip(upload) as archive:
        found = _files_in(archive, upload, suffixes)
        if len(found) != 1:
            listed = ", ".join(str(path) for path, _ in found) or "none"
            raise _invalid(f"{upload.filename} must hold exactly one {kind} file (found: {listed})")
        path, info = found[0]
        _check_expansion(upload, [info], max_bytes)
        target = directory / safe_filename(path.name)
        _copy_member(archive, info, target)
        return target


def _arrange_parts(files: list[UploadedFile], directory: Path) -> Path:
    by_ext: dict[str, UploadedFile] = {}
    for upload in files:
        ext = Path(upload.filename).suffix.lower()
        if ext not in SHAPEFILE_PARTS:
            upload.path.unlink(missing_ok=True)  # only the expected parts are kept
            continue
        if ext in by_ext:
            raise _invalid(f"two {ext} files in one upload: send one shapefile at a time")
        by_ext[ext] = upload
    _require(set(by_ext), [upload.filename for upload in files])
    stem = safe_filename(Path(by_ext[".shp"].filename).stem)
    for ext, upload in by_ext.items():
        upload.path.rename(directory / f"{stem}{ext}")
    return directory / f"{stem}.shp"


def _require(present: set[str], names: list[str]) -> None:
    if ".shp" not in present:
        raise _invalid(f"no .shp file in the upload ({', '.join(names) or 'empty'})")
    missing = [ext for ext in REQUIRED_PARTS if ext not in present]
    if missing:
        raise _invalid(f"the shapefile lacks its {', '.join(missing)} file")


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath:
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise _invalid(f"the zip holds an absolute path: {info.filename!r}")
    if ".." in path.parts:
        raise _invalid(f"the zip holds a path leaving its folder: {info.filename!r}")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise _invalid(f"the zip holds a symbolic link: {info.filename!r}")
    if info.flag_bits & 0x1:
        raise _invalid(f"the zip holds an encrypted file: {info.filename!r}")
    return path


def _extract_zip(
    upload: UploadedFile, directory: Path, *, max_bytes: int, layer: str | None
) -> Path:
    with _open_zip(upload) as archive:
        candidates = dict(_files_in(archive, upload, SHAPEFILE_PARTS))
        shps = sorted(p for p in candidates if p.suffix.lower() == ".shp")
        if layer is not None:
            chosen_layers = [p for p in shps if p.stem.lower() == layer.strip().lower()]
            if not chosen_layers:
                listed = ", ".join(p.stem for p in shps) or "none"
                raise InvalidInput(
                    f"{upload.filename} has no layer {layer!r} (its layers: {listed})",
                    field="layer",
                )
            shps = chosen_layers
        if len(shps) > 1:
            listed = ", ".join(str(p) for p in shps)
            raise _invalid(
                f"{upload.filename} holds several shapefiles ({listed}): "
                "choose one with the `layer` field"
            )
        _require({p.suffix.lower() for p in candidates}, [str(p) for p in candidates])
        shp = shps[0]
        chosen = {
            p.suffix.lower(): info
            for p, info in candidates.items()
            if p.parent == shp.parent and p.stem.lower() == shp.stem.lower()
        }
        _require(set(chosen), [str(p) for p in candidates])
        _check_expansion(upload, list(chosen.values()), max_bytes)
        stem = safe_filename(shp.stem)
        for ext, info in chosen.items():
            _copy_member(archive, info, directory / f"{stem}{ext}")
        return directory / f"{stem}.shp"


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    # ZipExtFile stops at the declared size and checks the CRC: a lying header fails here.
    try:
        with archive.open(info) as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, _CHUNK)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise _invalid(f"{info.filename}: cannot be extracted ({exc})") from exc
