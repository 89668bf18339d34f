"""The input formats an import reads, each opened as one geo_engine Arrow stream.

`InputFile` says what to read and how (the options of the ETL service's endpoints);
`open_stream` hands it to the matching geo_engine reader. Nothing here touches a row:
the readers parse, type and reproject in Rust and yield record batches.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

import geo_engine
from core.errors import InvalidInput
from pipeline.steps.shapefile import sibling_files

Format = Literal["shapefile", "csv", "geojson"]
FORMATS: tuple[Format, ...] = ("shapefile", "csv", "geojson")
# Options each format's reader takes (anything else in `options` is refused).
OPTIONS: dict[Format, tuple[str, ...]] = {
    # A zip's layer is chosen when the upload is set out (pipeline.archive).
    "shapefile": ("encoding", "source_crs"),
    # geo_engine reads UTF-8; another `encoding` is transcoded before (see `to_utf8`).
    "csv": ("x", "y", "wkt", "delimiter", "source_crs", "on_bad_rows", "encoding"),
    "geojson": ("source_crs",),
}
BAD_ROWS = ("fail", "skip")


@dataclass(frozen=True)
class InputFile:
    """A file to import: its format, path, and the reader's options (None: the default)."""

    path: Path
    format: Format = "shapefile"
    options: dict[str, Any] = field(default_factory=dict)

    def option(self, name: str) -> Any:
        """An option's value, None when not given."""
        return self.options.get(name)

    def files(self) -> list[Path]:
        """The files the reader opens (a shapefile's parts), for sizes and progress."""
        if self.format == "shapefile" and self.path.suffix.lower() == ".shp":
            return [p for ext, p in sibling_files(self.path).items() if ext in (".shp", ".dbf")]
        return [self.path]

    def total_bytes(self) -> int:
        """The bytes the reader goes through."""
        return sum(path.stat().st_size for path in self.files() if path.is_file())


def check_options(kind: Format, options: dict[str, Any]) -> dict[str, Any]:
    """The options for `kind` with empty ones dropped; InvalidInput for unknown values."""
    unknown = sorted(set(options) - set(OPTIONS[kind]))
    if unknown:
        raise InvalidInput(f"not an option of a {kind} import: {', '.join(unknown)}")
    given = {key: value for key, value in options.items() if value not in (None, "")}
    if "on_bad_rows" in given and given["on_bad_rows"] not in BAD_ROWS:
        raise InvalidInput('"on_bad_rows" must be "fail" or "skip".', field="on_bad_rows")
    delimiter = given.get("delimiter")
    if delimiter is not None and delimiter not in ("\\t", "\t") and len(delimiter) != 1:
        raise InvalidInput("The delimiter must be one character (or \\t).", field="delimiter")
    if kind == "csv" and ("x" in given) != ("y" in given):
        raise InvalidInput("Give both x and y, or neither.", field="x" if "y" in given else "y")
    if kind == "csv" and "wkt" in given and "x" in given:
        raise InvalidInput("Give either x and y, or wkt, not both.", field="wkt")
    return given


@dataclass(frozen=True)
class Stream:
    """A geo_engine reader's batches as a pyarrow stream, and (CSV) its bad-row report."""

    reader: pa.RecordBatchReader
    csv: geo_engine.CsvStream | None = None

    @property
    def skipped_rows(self) -> list[tuple[int, str]]:
        """(1-based line, reason) of the rows the CSV reader left out so far
        (`on_bad_rows="skip"`); complete once `reader` has been read to its end."""
        return [] if self.csv is None else self.csv.skipped_rows


def open_stream(source: InputFile, *, batch_size: int, schema: pa.Schema | None = None) -> Stream:
    """The geo_engine reader of `source` as a pyarrow stream (errors in the first batch raise).

    `schema`: what an earlier reader of the same file found; a CSV reader takes its
    column types instead of typing the whole file again.
    """
    path = os.fspath(source.path)
    get = source.option
    if source.format == "shapefile":
        stream = geo_engine.stream_shapefile(
            path,
            encoding=get("encoding"),
            source_crs=get("source_crs"),
            batch_size=batch_size,
        )
    elif source.format == "csv":
        delimiter = get("delimiter")
        csv = geo_engine.stream_csv_points(
            path,
            x=get("x"),
            y=get("y"),
            wkt=get("wkt"),
            delimiter="\\t" if delimiter == "\t" else delimiter,
            source_crs=get("source_crs") or "EPSG:4326",
            batch_size=batch_size,
            on_bad_rows=get("on_bad_rows") or "fail",
            column_types=schema,
        )
        return Stream(pa.RecordBatchReader.from_stream(csv), csv)
    elif source.format == "geojson":
        stream = geo_engine.stream_geojson(
            path, source_crs=get("source_crs"), batch_size=batch_size
        )
    else:  # pragma: no cover - Format is closed
        raise InvalidInput(f"unsupported format: {source.format}")
    return Stream(pa.RecordBatchReader.from_stream(stream))


def bytes_read(paths: list[Path]) -> int | None:
    """How far this process has read into `paths` (the sum of its open files' offsets).

    Read from /proc/self/fdinfo, so it measures the reader's real position whatever the
    format; None where /proc is not there or none of the files is open.
    """
    wanted = {os.path.realpath(path) for path in paths}
    positions: dict[str, int] = {}
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for descriptor in descriptors:
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
            if target not in wanted:
                continue
            with open(f"/proc/self/fdinfo/{descriptor}", encoding="ascii") as info:
                for line in info:
                    if line.startswith("pos:"):
                        position = int(line.split()[1])
                        positions[target] = max(positions.get(target, 0), position)
                        break
        except (OSError, ValueError):
            continue
    return sum(positions.values()) if positions else None


_UTF8 = ("utf-8", "utf8", "utf_8", "u8", "utf-8-sig")
_CHUNK = 1 << 20


def needs_transcoding(encoding: str | None) -> bool:
    """Whether a text file in `encoding` must be turned into UTF-8 for geo_engine."""
    return encoding is not None and codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig")


def to_utf8(source: Path, encoding: str, target: Path) -> Path:
    """Copy the text file `source` from `encoding` into UTF-8 at `target`, chunk by chunk.

    The decoding runs in C (codecs) over 1 MiB chunks: memory stays bounded. A byte
    that is not `encoding` raises InvalidInput naming its line and byte offset.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = lines = 0
    partial = target.with_name(target.name + ".part")
    try:
        with source.open("rb") as reader, partial.open("w", encoding="utf-8", newline="") as out:
            while True:
                chunk = reader.read(_CHUNK)
                try:
                    out.write(decoder.decode(chunk, final=not chunk))
                except UnicodeDecodeError as exc:
                    at = offset + max(exc.start, 0)
                    line = lines + chunk[: max(exc.start, 0)].count(b"\n") + 1
                    raise InvalidInput(
                        f"{source.name}: line {line} (byte {at}) is not valid {encoding}",
                        field="encoding",
                    ) from None
                if not chunk:
                    break
                offset += len(chunk)
                lines += chunk.count(b"\n")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
