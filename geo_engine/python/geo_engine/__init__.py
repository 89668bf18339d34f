"""geo_engine: the Rust core of the import pipeline (readers, CRS, COPY encoding)."""

import warnings

from geo_engine._geo_engine import (
    AnalysisError,
    CrsError,
    CsvStream,
    EncodingError,
    FormatError,
    GeoEngineError,
    GeoEngineIOError,
    GeometryError,
    __version__,
    _debug_build,
    copy_header,
    copy_trailer,
    encode_copy_rows,
    grid_inference,
    infer_metadata,
    interpolate_spline,
    list_layers,
    parse_geojson,
    parse_shapefile,
    simplify_geometry,
    stream_csv_points,
    stream_geojson,
    stream_shapefile,
    transform_coords,
    transform_crs,
    validate_geometry,
    vectorize_raster,
)

if _debug_build():
    warnings.warn(
        "geo_engine is a debug build and runs many times slower; "
        "build it with `maturin develop --release`",
        RuntimeWarning,
        stacklevel=2,
    )

__all__ = [
    "AnalysisError",
    "CrsError",
    "CsvStream",
    "EncodingError",
    "FormatError",
    "GeoEngineError",
    "GeoEngineIOError",
    "GeometryError",
    "__version__",
    "copy_header",
    "copy_trailer",
    "encode_copy_rows",
    "grid_inference",
    "infer_metadata",
    "interpolate_spline",
    "list_layers",
    "parse_geojson",
    "parse_shapefile",
    "simplify_geometry",
    "stream_csv_points",
    "stream_geojson",
    "stream_shapefile",
    "transform_coords",
    "transform_crs",
    "validate_geometry",
    "vectorize_raster",
]
