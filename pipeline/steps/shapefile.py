"""What the pipeline needs to know about a shapefile's files before geo_engine reads them.

Only headers and file sizes are read here: the record count (from the .shx size) and
where record k starts in the .shp (the .shx index) and the .dbf (fixed-size records),
so that progress can be reported in exact bytes without touching the records.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

# As GDAL reads them: without a .dbf as geometry only, without a .shx by walking the .shp.
REQUIRED_PARTS = (".shp",)
OPTIONAL_PARTS = (".shx", ".dbf", ".prj", ".cpg")
SHAPEFILE_PARTS = REQUIRED_PARTS + OPTIONAL_PARTS
_HEADER = 100  # .shp and .shx headers
_SHX_ENTRY = 8


def sibling_files(shp: Path) -> dict[str, Path]:
    """The shapefile's parts beside `shp` by lower-case extension (names compared ignoring case)."""
    stem = shp.stem.lower()
    found: dict[str, Path] = {}
    for candidate in sorted(shp.parent.iterdir()):
        suffix = candidate.suffix.lower()
        if candidate.is_file() and candidate.stem.lower() == stem and suffix in SHAPEFILE_PARTS:
            found.setdefault(suffix, candidate)
    found[".shp"] = shp
    return found


def require_parts(shp: Path) -> dict[str, Path]:
    """The parts of the shapefile, refusing one without its .shp."""
    # Imported here: the `maps` CLI uses `sibling_files` and must start without core's settings.
    from core.errors import InvalidInput

    parts = sibling_files(shp)
    missing = [f"{shp.stem}{ext}" for ext in REQUIRED_PARTS if ext not in parts]
    if missing:
        raise InvalidInput(
            f"{shp.name}: missing {', '.join(missing)}",
            field="file",
        )
    return parts


@dataclass(frozen=True)
class ShapefileLayout:
    """Sizes and offsets of a shapefile, for progress in rows and bytes."""

    shp: Path
    shx: Path | None
    dbf: Path | None
    record_count: int | None
    dbf_header_bytes: int
    dbf_record_bytes: int
    total_bytes: int

    def bytes_at(self, rows: int) -> int:
        """How many bytes of the .shp and .dbf precede record number `rows` (0-based)."""
        if self.record_count is not None and rows >= self.record_count:
            return self.total_bytes
        if self.shx is None:
            # No index: the records' sizes are unknown, so say as much as is known.
            if not self.record_count:
                return 0
            return self.total_bytes * rows // self.record_count
        with self.shx.open("rb") as index:
            index.seek(_HEADER + rows * _SHX_ENTRY)
            entry = index.read(4)
        shp_offset = struct.unpack(">i", entry)[0] * 2 if len(entry) == 4 else 0
        return shp_offset + self.dbf_header_bytes + rows * self.dbf_record_bytes


def describe(shp: Path) -> ShapefileLayout:
    """Read the headers that size the shapefile (geo_engine judges whether it is valid)."""
    parts = require_parts(shp)
    shx, dbf = parts.get(".shx"), parts.get(".dbf")
    header = b""
    if dbf is not None:
        with dbf.open("rb") as handle:
            header = handle.read(12)
    header_bytes, record_bytes = struct.unpack("<HH", header[8:12]) if len(header) == 12 else (0, 0)
    if shx is not None:
        count: int | None = max(0, (shx.stat().st_size - _HEADER) // _SHX_ENTRY)
    else:
        count = struct.unpack("<I", header[4:8])[0] if len(header) == 12 else None
    return ShapefileLayout(
        shp=shp,
        shx=shx,
        dbf=dbf,
        record_count=count,
        dbf_header_bytes=header_bytes,
        dbf_record_bytes=record_bytes,
        total_bytes=shp.stat().st_size + (dbf.stat().st_size if dbf is not None else 0),
    )


def missing_part_warnings(shp: Path) -> list[str]:
    """Task warnings for the optional parts a shapefile lacks, read around as GDAL does."""
    parts = sibling_files(shp)
    warnings = []
    if ".dbf" not in parts:
        warnings.append(
            f"{shp.stem}.dbf is missing: the shapefile was read as geometry only, "
            "without attributes (as GDAL reads it)"
        )
    if ".shx" not in parts:
        warnings.append(f"{shp.stem}.shx is missing: the records were found by walking {shp.name}")
    return warnings
