"""`maps analyze interpolate|grid|vectorize ...` and `maps import FILE.tif` (raster imports).

    maps analyze interpolate SOURCE FIELD [--bbox W,S,E,N] [--resolution R | --size WxH]
                                          [--smoothing S] [--crs CRS] [--name N] [--wait]
    maps analyze grid SOURCE [FIELD] [--method idw|count|sum|mean|min|max] [--power P]
                                     [--radius R] [--min-points N] [--polygons] [...]
    maps analyze vectorize (SOURCE | --file FILE.tif) [--band B] [--breaks 10,20,50]
                                                      [--connectivity 4|8] [--wait]

Registered on `maps` by pipeline/cli.py. Nothing heavy is imported here at start-up:
the HTTP client and the progress display are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

analyze = typer.Typer(
    help="Run an analysis on the ETL service: spline interpolation, grid statistics, "
    "raster to polygons.",
    no_args_is_help=True,
)
Option = typer.Option

Wait = Annotated[bool, Option("--wait", help="Follow the task until it ends.")]
AsJson = Annotated[bool, Option("--json", help="Print the task as JSON.")]
Name = Annotated[str | None, Option(help="The new source's name.")]
Description = Annotated[str | None, Option(help="The new source's description.")]
BBox = Annotated[
    str | None, Option("--bbox", help="minx,miny,maxx,maxy in EPSG:4326 (default: the source's).")
]
Resolution = Annotated[float | None, Option(help="The cell size, in the target CRS's units.")]
Size = Annotated[str | None, Option("--size", help="The grid's WIDTHxHEIGHT in cells.")]
Crs = Annotated[str, Option("--crs", help="The output grid's CRS.")]


def _numbers(text: str, count: int | None, option: str) -> list[float]:
    from pipeline.client import CliError

    try:
        values = [float(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise CliError(f"{option} takes numbers separated by commas, not {text!r}") from None
    if count is not None and len(values) != count:
        raise CliError(f"{option} takes {count} numbers, not {len(values)}")
    return values


def _grid_fields(
    bbox: str | None, resolution: float | None, size: str | None, crs: str
) -> dict[str, Any]:
    from pipeline.client import CliError

    fields: dict[str, Any] = {"crs": crs}
    if bbox:
        fields["bbox"] = _numbers(bbox, 4, "--bbox")
    if resolution is not None:
        fields["resolution"] = resolution
    if size:
        width, _, height = size.lower().partition("x")
        if not (width.isdigit() and height.isdigit()):
            raise CliError(f"--size takes WIDTHxHEIGHT, e.g. 512x256, not {size!r}")
        fields |= {"width": int(width), "height": int(height)}
    return fields


def _source(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def run_task(path: str, *, wait: bool, as_json: bool, **request: Any) -> None:
    """POST the task, then print its id, or follow it with the imports' progress display."""
    import json
    import sys

    from rich.console import Console

    from core.settings import PipelineSettings
    from pipeline.client import CliError, Service, load_token
    from pipeline.follow import follow

    out = Console(highlight=False, markup=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
    with Service(PipelineSettings().etl_service_url, "ETL service", load_token()) as etl:
        response = etl.request("POST", path, **request)
        task_id = str(response.json()["task_id"])
        if not wait:
            if as_json:
                sys.stdout.write(json.dumps(response.json(), indent=2) + "\n")
            else:
                out.print(f"Queued task {task_id}; follow it with `maps task {task_id}`")
            return
        document = follow(
            lambda: etl.request("GET", f"/tasks/{task_id}").json(),
            console=err,
            show=err.is_terminal,
        )
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if document["state"] == "failed":
        error = document.get("error") or {}
        kind = str(document.get("kind") or "task").replace("_", " ")
        message = error.get("message", "unknown")
        raise CliError(f"{kind} failed at the {document.get('step')} step: {message}")
    if not as_json:
        out.print(outcome(document))
        for warning in document.get("warnings") or []:
            err.print(f"warning: {warning}")


def outcome(document: dict[str, Any]) -> str:
    """One line about a succeeded raster import or analysis."""
    result = document.get("result") or {}
    head = f"source {result.get('source_id')} ({result.get('sid')})"
    if result.get("tile_url"):
        profile = result.get("profile") or {}
        return (
            f"Created raster {head}: {profile.get('width')} x {profile.get('height')} cells; "
            f"tiles at {result['tile_url']}"
        )
    return f"Loaded {head}: {result.get('feature_count')} features"


def import_raster(
    path: Path,
    *,
    name: str | None,
    description: str | None,
    source_id: int | None,
    wait: bool,
    as_json: bool,
) -> None:
    """`maps import FILE.tif`: upload a GeoTIFF to `POST /tasks/import/raster`."""
    from pipeline.client import CliError, opened

    if not path.is_file():
        raise CliError(f"no such file: {path}")
    fields = {
        "name": name or (None if source_id is not None else path.stem),
        "description": description,
        "source_id": None if source_id is None else str(source_id),
    }
    data = {key: value for key, value in fields.items() if value is not None}
    with opened([path]) as parts:
        run_task("/tasks/import/raster", wait=wait, as_json=as_json, data=data, files=parts)


@analyze.command()
def interpolate(
    source: Annotated[str, typer.Argument(help="A point source (id or sid).")],
    field: Annotated[str, typer.Argument(help="The numeric field to interpolate.")],
    bbox: BBox = None,
    resolution: Resolution = None,
    size: Size = None,
    smoothing: Annotated[float, Option(help="0: exact through the points.")] = 0.0,
    crs: Crs = "EPSG:4326",
    name: Name = None,
    description: Description = None,
    wait: Wait = False,
    as_json: AsJson = False,
) -> None:
    """Thin-plate spline of a point source's field onto a grid: a new raster source."""
    body = {"source": _source(source), "field": field, "smoothing": smoothing, "name": name,
            "description": description} | _grid_fields(bbox, resolution, size, crs)  # fmt: skip
    body = {key: value for key, value in body.items() if value is not None}
    run_task("/tasks/analysis/interpolate", wait=wait, as_json=as_json, json=body)


@analyze.command()
def grid(
    source: Annotated[str, typer.Argument(help="A point source (id or sid).")],
    field: Annotated[str | None, typer.Argument(help="The numeric field (not for count).")] = None,
    method: Annotated[str, Option(help="idw, count, sum, mean, min or max.")] = "idw",
    power: Annotated[float, Option(help="IDW: the distance's power.")] = 2.0,
    radius: Annotated[float | None, Option(help="IDW: only points this near.")] = None,
    min_points: Annotated[int, Option("--min-points", help="Fewer: the cell is empty.")] = 1,
    polygons: Annotated[bool, Option("--polygons", help="Polygon cells, not a raster.")] = False,
    bbox: BBox = None,
    resolution: Resolution = None,
    size: Size = None,
    crs: Crs = "EPSG:4326",
    name: Name = None,
    description: Description = None,
    wait: Wait = False,
    as_json: AsJson = False,
) -> None:
    """Per-cell statistics or IDW of a point source: a raster (or polygon) source."""
    body = {"source": _source(source), "field": field, "method": method, "power": power,
            "radius": radius, "min_points": min_points,
            "output": "polygons" if polygons else "raster", "name": name,
            "description": description} | _grid_fields(bbox, resolution, size, crs)  # fmt: skip
    body = {key: value for key, value in body.items() if value is not None}
    run_task("/tasks/analysis/grid", wait=wait, as_json=as_json, json=body)


@analyze.command()
def vectorize(
    source: Annotated[str | None, typer.Argument(help="A raster source (id or sid).")] = None,
    file: Annotated[Path | None, Option("--file", help="Or a GeoTIFF to upload.")] = None,
    band: Annotated[int, Option(help="The band to vectorize.")] = 1,
    breaks: Annotated[str | None, Option(help="Class breaks, e.g. 10,20,50.")] = None,
    connectivity: Annotated[int, Option(help="4 or 8.")] = 4,
    name: Name = None,
    description: Description = None,
    wait: Wait = False,
    as_json: AsJson = False,
) -> None:
    """Regions of equal value (or class) of a raster as polygons: a new vector source."""
    from pipeline.client import CliError, opened

    if (source is None) == (file is None):
        raise CliError("give a raster source or --file, not both or neither")
    fields: dict[str, Any] = {"band": band, "connectivity": connectivity, "name": name,
                              "description": description}  # fmt: skip
    if breaks:
        fields["breaks"] = _numbers(breaks, None, "--breaks")
    fields = {key: value for key, value in fields.items() if value is not None}
    if source is not None:
        run_task("/tasks/analysis/vectorize", wait=wait, as_json=as_json,
                 json=fields | {"source": _source(source)})  # fmt: skip
        return
    assert file is not None
    if not file.is_file():
        raise CliError(f"no such file: {file}")
    form = {key: ",".join(map(str, v)) if isinstance(v, list) else str(v)
            for key, v in fields.items()}  # fmt: skip
    with opened([file]) as parts:
        run_task("/tasks/analysis/vectorize", wait=wait, as_json=as_json, data=form, files=parts)
