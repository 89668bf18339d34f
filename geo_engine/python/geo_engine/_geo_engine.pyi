"""Type stub of the compiled module: the real documentation of geo_engine's API."""

import os
from typing import Any, Literal, Protocol, final, overload, type_check_only

import numpy as np
import numpy.typing as npt

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
    "_debug_build",
    "_zero_copy_probe",
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

__version__: str

@type_check_only
class ArrowArrayExportable(Protocol):
    """Anything exposing ``__arrow_c_array__`` (a pyarrow RecordBatch, an arro3 one)."""

    def __arrow_c_array__(
        self, requested_schema: object | None = None
    ) -> tuple[object, object]: ...

@type_check_only
class Table(Protocol):
    """The parts of ``pyarrow.Table`` the stub relies on (the runtime value is one)."""

    @property
    def num_rows(self) -> int: ...
    @property
    def column_names(self) -> list[str]: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

@type_check_only
class Array(Protocol):
    """The parts of ``pyarrow.Array`` the stub relies on (the runtime value is one)."""

    def __len__(self) -> int: ...
    def __arrow_c_array__(
        self, requested_schema: object | None = None
    ) -> tuple[object, object]: ...

@type_check_only
class ArrowStreamExportable(Protocol):
    """Anything exposing ``__arrow_c_stream__`` (a pyarrow Table or RecordBatchReader)."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

@type_check_only
class ArrowSchemaExportable(Protocol):
    """Anything exposing ``__arrow_c_schema__`` (a pyarrow Schema)."""

    def __arrow_c_schema__(self) -> object: ...

@type_check_only
class RecordBatch(Protocol):
    """The parts of ``pyarrow.RecordBatch`` the stub relies on (the runtime value is one)."""

    @property
    def num_rows(self) -> int: ...
    def column(self, i: int | str) -> Array: ...
    def __arrow_c_array__(
        self, requested_schema: object | None = None
    ) -> tuple[object, object]: ...

@type_check_only
class RecordBatchReader:
    """A one-shot Arrow stream; read it with ``pyarrow.RecordBatchReader.from_stream``."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

@final
class CsvStream:
    """What :func:`stream_csv_points` returns: a one-shot Arrow stream of the batches,
    and the report of the rows left out with ``on_bad_rows="skip"``.

    Read it as any Arrow stream (``pyarrow.RecordBatchReader.from_stream(s)``,
    ``duckdb``, ``polars.from_arrow``...): ``__arrow_c_stream__`` hands over the
    batches Rust made, without a copy. Keep the object to read ``skipped_rows``
    once the stream has been consumed.
    """

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The batches as an Arrow C stream PyCapsule (once: a second call raises)."""

    def __arrow_c_schema__(self) -> object:
        """The schema as an Arrow C schema PyCapsule."""

    @property
    def skipped_rows(self) -> list[tuple[int, str]]:
        """``(line, reason)`` of every row left out so far, in file order.

        ``line`` is the 1-based line where the row starts (the header is line 1);
        ``reason`` names the problem, e.g. ``"longitude 'abc' is not a number"``,
        ``"latitude 123.0 is out of range (-90 to 90)"``, ``"latitude is missing"``,
        ``"invalid WKT: ..."``, ``"2 fields, the header has 3"``. The list grows as the
        stream is read and is complete once it has been read to its end (empty with
        ``on_bad_rows="fail"``, where the first bad row raises). Every skipped row is
        listed, but only the first 1000 keep their own reason (memory stays at 8 bytes
        a row past those): later ones read ``"bad row (reasons are kept for the first
        1000 skipped rows only)"``. Each call builds a new list.
        """

class GeoEngineError(Exception):
    """Base class of geo_engine's errors."""

class FormatError(GeoEngineError):
    """A file that is not what its format requires (or uses an unsupported feature)."""

class EncodingError(GeoEngineError):
    """Text that does not decode with the file's encoding, or an unknown encoding."""

class CrsError(GeoEngineError):
    """A CRS PROJ cannot parse, or a coordinate it cannot transform."""

class GeometryError(GeoEngineError):
    """An invalid geometry (WKB) in an in-memory array."""

class AnalysisError(GeoEngineError):
    """Input an analysis kernel cannot work with: NaN values, duplicate or collinear
    points, a singular system."""

class GeoEngineIOError(GeoEngineError):
    """The operating system refused to open or read a file."""

def stream_shapefile(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    encoding: str | None = None,
    source_crs: str | None = None,
    target_crs: str | None = "EPSG:4326",
    batch_size: int = 65536,
) -> RecordBatchReader:
    """Stream a shapefile as Arrow record batches.

    ``path`` is the .shp; the .shx, .dbf, .prj and .cpg next to it are found whatever
    the case of their extensions (a missing .shx is rebuilt by scanning the .shp).
    ``path`` may also be a .zip holding one or more shapefiles, in any folder:
    ``layer`` (the file name without extension, any case) chooses one, and may be
    left out when there is only one (ValueError otherwise, listing the layers). The
    chosen shapefile's members are decompressed into memory.

    Columns: the DBF fields typed as GDAL types them (C/M -> utf8; N/F without
    decimals -> int32 below width 10, int64 below 19, else float64; with decimals ->
    float64; L -> bool; D -> date32), then ``geometry``: ISO WKB with the field metadata
    ``ARROW:extension:name = geoarrow.wkb`` and ``ARROW:extension:metadata =
    {"crs": <PROJJSON>, "crs_type": "projjson"}`` of the output CRS. Deleted DBF records
    (and their shapes) are skipped; null shapes give null geometries; M values are
    dropped, Z kept. Polygon rings are grouped by orientation (clockwise = shell, each
    hole to the smallest shell containing it).

    Text is decoded with ``encoding`` if given, else the .cpg, else the DBF language
    byte, else ISO-8859-1 (GDAL's default). The source CRS is ``source_crs``, else the
    .prj, else EPSG:4326 (assumed: the schema metadata ``geo_engine:crs_source`` says
    ``prj``, ``argument`` or ``assumed``). Geometries are reprojected to
    ``target_crs`` (x/lon first) unless it is None or equivalent to the source.

    The headers, record counts (.shp vs .dbf) and every record's extent are checked
    before returning, and the first batch is decoded; errors raise FormatError,
    EncodingError, CrsError or GeoEngineIOError naming the file and the 1-based
    record. An error in a later batch surfaces from the consumer of the stream
    (pyarrow raises ``ArrowInvalid``) with the same message, prefixed by the class
    name. Parsing runs without the GIL, in parallel.
    """

def parse_shapefile(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    encoding: str | None = None,
    source_crs: str | None = None,
    target_crs: str | None = "EPSG:4326",
) -> Table:
    """Read a whole shapefile (.shp or .zip) into a ``pyarrow.Table``.

    The same columns, options and checks as :func:`stream_shapefile`, but every
    record is read before returning, so any error raises its own exception class.
    The table can be read any number of times.
    """

def list_layers(path: str | os.PathLike[str]) -> list[str]:
    """The shapefiles (layers) in a .zip, sorted; for a .shp, its own name."""

def stream_csv_points(
    path: str | os.PathLike[str],
    *,
    x: str | None = None,
    y: str | None = None,
    wkt: str | None = None,
    delimiter: str | None = None,
    source_crs: str = "EPSG:4326",
    target_crs: str | None = "EPSG:4326",
    batch_size: int = 65536,
    on_bad_rows: str = "fail",
    column_types: ArrowSchemaExportable | None = None,
) -> CsvStream:
    """Stream a delimited text file (CSV, TSV, ...) of points or WKT geometries.

    Geometry comes from the ``x``/``y`` columns (points) or the ``wkt`` column (any
    WKT or EWKT; M dropped); with none given, a column named wkt/geometry/geom/the_geom
    is used, else x/lon/lng/long/longitude/easting with y/lat/latitude/northing (any
    case). Those columns are not repeated as attributes. ``delimiter`` (one character,
    or ``"\\t"``) defaults to the one of , ; tab | used most in the header line. The
    file is UTF-8 (a BOM is skipped).

    Attribute types are inferred over the whole file, by a pass of its own before the
    call returns (it stops early once every attribute column is text): int64, float64
    (ints and floats mixed, or ints beyond int64), bool (true/false), date32
    (YYYY-MM-DD), timestamp[us] (ISO 8601 "YYYY-MM-DDTHH:MM[:SS[.f]]", "T" or a space,
    mixed with dates, which become midnight), else utf8 ("007" stays text). A
    timestamp column where any value has an offset ("Z", "+02:00", "+0200", "+02") is
    timestamp[us, tz=UTC] with every value moved to UTC (values without one are taken
    as UTC, as GDAL does); otherwise it has no time zone. Empty values are null, except
    in text columns (""). Rows whose field count is not the header's are left out of
    the inference. Every value fits its column, so attributes never make a row bad.
    Empty coordinates (both) give a null geometry.

    ``column_types`` (any object exposing ``__arrow_c_schema__``, such as the schema
    of an earlier stream of the same file and options) gives the attribute types by
    column name instead, and the pass is skipped; a trailing ``geometry`` field is
    ignored. Every attribute column must be there, as one of the types above; a value
    that does not fit its given type makes its row bad.

    A bad row raises FormatError naming the file and the 1-based line with
    ``on_bad_rows="fail"``, or is left out with ``"skip"`` and listed in the returned
    stream's ``skipped_rows`` with its reason. Bad rows: a wrong field count, one
    coordinate missing, a coordinate that is not a (finite) number, invalid WKT,
    text that is not UTF-8 in a coordinate or an attribute, and, when ``source_crs``
    is geographic in degrees (EPSG:4326...), a longitude beyond ±180 or a latitude
    beyond ±90 (points and every WKT coordinate). Points are reprojected from
    ``source_crs`` to ``target_crs`` (None keeps them). Errors in the first batch
    raise from the call; later ones from the stream's consumer
    (``pyarrow.ArrowInvalid`` carrying the same message).
    """

def stream_geojson(
    path: str | os.PathLike[str],
    *,
    source_crs: str | None = None,
    target_crs: str | None = "EPSG:4326",
    batch_size: int = 65536,
) -> RecordBatchReader:
    """Stream a GeoJSON file: a FeatureCollection, newline-delimited features
    (GeoJSONSeq, with or without RFC 8142 record separators), or one Feature/geometry.

    Two passes over the file, memory bounded by ``batch_size`` features either way: a
    cheap schema pass classifies every feature's id and properties (no geometry is
    decoded), then batches are parsed in parallel straight into Arrow columns (the
    next batch is scanned while one is parsed).

    Columns: ``id`` when any feature has an ``id`` member (typed like a property; it
    is called ``feature_id`` when a property is named ``id``, then ``feature_id_1``,
    ... while that is taken too), the properties in the order they first appear,
    then ``geometry`` (ISO WKB, GeoArrow metadata as in :func:`stream_shapefile`).
    Types come from every feature, widening where they differ: bool, int64 (widened
    to float64 by any float), float64, date32 (every value a "YYYY-MM-DD" string),
    else utf8 (numbers and booleans mixed with other types, and nested objects and
    arrays, as their JSON text). A property absent from a feature is null.

    The source CRS is ``source_crs``, else the 2008 ``crs`` member wherever it is in
    the file (``{"type": "name"}`` or ``{"type": "EPSG"}``; ``null`` means none;
    members that disagree raise CrsError; schema metadata ``geo_engine:crs_source``
    = ``member``), else EPSG:4326; coordinates are always read x/lon first. The schema
    metadata ``geo_engine:feature_count`` holds the number of features. Invalid
    JSON in the ids or properties, or a file that ends inside a value, raises
    FormatError naming the 1-based feature from the call; invalid geometry does so
    when its batch is read (from the call for the first batch).
    """

def parse_geojson(
    path: str | os.PathLike[str],
    *,
    source_crs: str | None = None,
    target_crs: str | None = "EPSG:4326",
) -> Table:
    """Read a whole GeoJSON file into a ``pyarrow.Table``: the batches of
    :func:`stream_geojson` (same columns, types and checks), every one read before
    returning, so any error raises its own exception class."""

@overload
def transform_coords(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    from_crs: str,
    to_crs: str,
    z: None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Transform coordinates between two CRSs, returning new float64 arrays.

    ``x``/``y`` (and ``z``) are one-dimensional float64 arrays (x/lon first, whatever
    the CRS's axis order); the result is ``(x, y)``, or ``(x, y, z)`` when ``z`` is
    given. CRSs are anything PROJ accepts ("EPSG:27700", WKT, PROJJSON, PROJ
    strings); transformers are cached between calls. The work runs without the GIL
    on all cores. A coordinate PROJ cannot transform raises CrsError naming its index;
    arrays of different lengths raise ValueError.

    Some pairs are computed in closed form instead of through PROJ, where the formula
    is PROJ's own operation (checked against PROJ on sample points when the
    transformer is made; results agree with pyproj to ~1e-8 m): EPSG:4326/OGC:CRS84
    <-> EPSG:3857 (latitudes within ±89.5°, longitudes within ±180°), and geographic
    WGS 84 -> Transverse Mercator grids whose best operation is a TM, with or without
    a Helmert datum shift (EPSG:27700, UTM zones, EPSG:2157, ...), inside that
    operation's area of use. Chunks of coordinates outside those domains go to PROJ.
    """

@overload
def transform_coords(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    from_crs: str,
    to_crs: str,
    z: npt.ArrayLike,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """As above, with z: returns ``(x, y, z)``."""

def transform_crs(geometry: ArrowArrayExportable, *, from_crs: str, to_crs: str) -> Array:
    """Reproject a WKB geometry array (any object with ``__arrow_c_array__`` holding
    binary, large binary or binary view WKB, ISO or EWKB).

    Returns a ``pyarrow.BinaryArray`` of the same geometries with transformed
    coordinates (x/lon first; z transformed too), nulls and empty points kept. Invalid
    WKB raises GeometryError naming the 0-based row; an untransformable coordinate
    raises CrsError naming the row. Runs without the GIL, in parallel.
    """

def infer_metadata(
    data: ArrowArrayExportable | ArrowStreamExportable | str | os.PathLike[str],
    *,
    layer: str | None = None,
    encoding: str | None = None,
    source_crs: str | None = None,
    x: str | None = None,
    y: str | None = None,
    wkt: str | None = None,
    delimiter: str | None = None,
) -> dict[str, Any]:
    """Summarise a file, or a table, record batch or stream (a stream is consumed), in
    one pass.

    A path is read by its extension: .shp/.zip (``layer``, ``encoding``,
    ``source_crs`` as in :func:`stream_shapefile`), .csv/.tsv/.txt (``x``, ``y``,
    ``wkt``, ``delimiter``, ``source_crs`` as in :func:`stream_csv_points`),
    .geojson/.json/.geojsonl/.geojsons/.ndjson/.jsonl (``source_crs`` as in
    :func:`stream_geojson`); coordinates are summarised in the file's own CRS (no
    reprojection). Other extensions raise FormatError; the options with Arrow data
    raise ValueError.

    Returns ``{"row_count": int, "feature_count": int (the same), "columns": [{"name",
    "type", "null_count", "min", "max"}, ...], "geometry": {"column", "null_count",
    "types": {"Point": n, ...}, "has_z", "bbox": [xmin, ymin, xmax, ymax] | None, "crs":
    PROJJSON | None} | None, "geometry_types": ["Point", ...] (sorted), "bbox": as in
    geometry, "crs": {"projjson", "authority": "EPSG:27700" | None, "epsg": 27700 |
    None} | None}``, and for a path also ``"format"`` ("shapefile", "csv", "geojson")
    and ``"metadata"`` (the reader's schema metadata: ``geo_engine:crs_source``,
    ``geo_engine:encoding``, ...). The geometry column is the one with
    ``geoarrow.wkb`` metadata, else a binary ``geometry``; min/max cover numbers (NaN
    left out), strings, booleans and dates (as "YYYY-MM-DD"), None for other types.
    Invalid WKB raises GeometryError naming the row of its batch; a file's errors are
    its reader's. Runs without the GIL, in parallel.
    """

def validate_geometry(geometry: ArrowArrayExportable) -> RecordBatch:
    """Check every geometry of a WKB array against the OGC validity rules (geo crate).

    Returns a ``pyarrow.RecordBatch`` with ``is_valid`` (bool; null for a null
    geometry) and ``reason`` (why not valid, else null), one row per geometry. Z is
    ignored. Invalid WKB raises GeometryError naming the row.
    """

def simplify_geometry(
    geometry: ArrowArrayExportable,
    *,
    tolerance: float,
    method: str = "douglas-peucker",
    preserve_topology: bool = False,
) -> Array:
    """Simplify every geometry of a WKB array, returning a ``pyarrow.BinaryArray``.

    ``method`` is ``"douglas-peucker"`` (``"dp"``; ``tolerance`` is a distance) or
    ``"visvalingam-whyatt"`` (``"vw"``; ``tolerance`` is an area);
    ``preserve_topology=True`` (Visvalingam-Whyatt only) keeps rings valid and apart.
    Points are unchanged, nulls stay null; results are 2D (z dropped). The field
    metadata (GeoArrow CRS) of the input is kept.
    """

def copy_header() -> bytes:
    """The PostgreSQL binary COPY header (signature, flags, extension length): 19 bytes."""

def copy_trailer() -> bytes:
    """The PostgreSQL binary COPY trailer: ``b"\\xff\\xff"``."""

def encode_copy_rows(
    batch: ArrowArrayExportable,
    *,
    source_id: int,
    geometry_column: str = "geometry",
    srid: int = 4326,
) -> bytes:
    """Encode a record batch as binary COPY rows for ``core_geometry``.

    Each row has 4 fields: ``geom`` (the WKB of ``geometry_column`` re-encoded as EWKB
    with ``srid``, Z/M as EWKB flags; NULL for a null geometry; ``srid=0`` writes no
    SRID), ``metadata`` (jsonb: an object of every other column; NaN and infinities
    become null, dates ``YYYY-MM-DD``, timestamps ISO 8601, other types their text),
    ``geometry_type`` ("Point", ..., "GeometryCollection"; NULL with the geometry) and
    ``source_id`` (int4). Frame the result with :func:`copy_header` and
    :func:`copy_trailer`. Invalid WKB raises GeometryError naming the 0-based row.
    Runs without the GIL, in parallel.
    """

def _debug_build() -> bool:
    """Whether this extension was compiled without optimisations."""

def _zero_copy_probe(path: str | os.PathLike[str]) -> tuple[RecordBatchReader, list[int]]:
    """Test helper: the first batch of a shapefile as a stream, with the addresses of
    the buffers Rust allocated for its geometry column (offsets, values)."""

def interpolate_spline(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    bbox: tuple[float, float, float, float],
    width: int,
    height: int,
    smoothing: float = 0.0,
    neighbors: int | None = None,
) -> npt.NDArray[np.float64]:
    """Thin-plate spline of the points, evaluated at the cell centres of a grid.

    The spline is the one ``scipy.interpolate.RBFInterpolator(kernel=
    "thin_plate_spline", smoothing=smoothing)`` defines: kernel ``r**2 * log(r)`` on
    unscaled coordinates, a degree-1 polynomial on coordinates shifted and scaled to
    [-1, 1] over the points' bounding box, ``smoothing`` added to the kernel matrix's
    diagonal. The grid has ``height`` rows and ``width`` columns over ``bbox`` =
    (xmin, ymin, xmax, ymax), row 0 at the north edge; the result is a float64 array
    of shape (height, width). ``x``, ``y``, ``values`` are 1-D array-likes (converted
    to float64; no copy for contiguous float64 arrays), in the grid's CRS.

    Method: with ``neighbors=None``, up to 5,000 points the global system is solved
    exactly (dense LU with partial pivoting, one step of iterative refinement; within
    1e-6 of SciPy relative to the largest value, tested up to 2,000 points). Beyond
    5,000 points, or when ``neighbors=k`` is given, each cell's value comes from the
    spline of its k nearest points (64 by default), exactly as
    ``RBFInterpolator(neighbors=k)`` does (tested within 1e-6 of it); against the
    exact global spline this local method differed by 1.7e-3 to 4.7e-3 of the largest
    value (largest cell difference) on smooth noisy data (6,000 random points, three
    seeds, a 50 x 30 grid; the tests check < 1e-2). Cells sharing a neighbourhood share
    one solve. Parallel on all cores, without the GIL.

    Raises AnalysisError for NaN or infinite coordinates or values (naming the first
    index: drop them first), fewer than 3 points, collinear points, two points at the
    same place when ``smoothing`` is 0 (with smoothing > 0 duplicates are fitted in
    the least-squares sense, as in SciPy), and a singular or ill-conditioned system;
    ValueError for a bad bbox, size, smoothing < 0, neighbors < 3 or arrays of
    different lengths.
    """

def vectorize_raster(
    array: npt.NDArray[Any],
    *,
    transform: tuple[float, ...] | Any,
    nodata: float | None = None,
    connectivity: int = 4,
    crs: str | None = None,
) -> Any:
    """Connected regions of equal value to polygons with holes, as a pyarrow Table.

    The regions are those of ``rasterio.features.shapes(array, mask=array != nodata,
    connectivity=connectivity, transform=transform)``: one polygon per 4- or
    8-connected region, with the same values, polygon counts and areas (tested).
    ``array`` is a 2-D NumPy array of uint8, int8, uint16, int16, uint32, int32,
    float32 or float64; pixels equal to ``nodata`` and NaN pixels belong to no
    region; values compare exactly (no float tolerance). ``transform`` is the affine
    pixel-to-map transform in GDAL/rasterio order: a rasterio ``Affine`` or the
    6-tuple (a, b, c, d, e, f) with x = a*col + b*row + c, y = d*col + e*row + f.

    Columns: ``value`` (float64) and ``geometry`` (WKB Polygons, GeoArrow
    ``geoarrow.wkb`` with ``crs`` as PROJJSON when given), regions in the order of
    their first pixel (row-major). Exterior rings run counter-clockwise and holes
    clockwise in map coordinates; vertices are pixel corners where the boundary
    turns. Where a region touches itself at a pixel corner, an enclosed area is a
    hole touching the exterior at that point (valid in the OGC sense); an
    8-connected region joined only through a corner has one exterior ring passing
    through that corner twice. Labelling is sequential; ring tracing and encoding run
    in parallel, without the GIL.

    Raises ValueError for another dtype or shape, a transform that is not 6 (or
    rasterio's 9) finite numbers or is degenerate, and connectivity other than 4 or 8.
    """

@overload
def grid_inference(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    bbox: tuple[float, float, float, float],
    width: int,
    height: int,
    method: Literal["stats"],
    power: float = 2.0,
    radius: float | None = None,
    min_points: int = 1,
) -> dict[str, npt.NDArray[Any]]: ...
@overload
def grid_inference(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    bbox: tuple[float, float, float, float],
    width: int,
    height: int,
    method: Literal["idw"] = "idw",
    power: float = 2.0,
    radius: float | None = None,
    min_points: int = 1,
) -> npt.NDArray[np.float64]:
    """Per-cell statistics of the points, or an IDW estimate at each cell centre.

    The grid is ``interpolate_spline``'s: ``height`` x ``width`` cells over ``bbox``,
    row 0 north; arrays come back with shape (height, width).

    ``method="stats"``: a dict of arrays ``count`` (int64), ``sum``, ``mean``,
    ``min``, ``max`` (float64) of the values of the points inside each cell. A point
    belongs to a cell as with ``numpy.histogram2d`` over
    ``np.linspace(xmin, xmax, width + 1)`` and the same in y: half-open bins, the
    east and north edges closed; points outside the bbox are ignored. Cells with
    fewer than ``min_points`` points have NaN ``sum``/``mean``/``min``/``max``;
    ``count`` is always the true count. Sums add in input order (equal to NumPy's).

    ``method="idw"``: at each cell centre, sum(v_i / d_i**power) / sum(1 / d_i**power)
    over the points within ``radius`` (d <= radius; every point when None); a point
    exactly at the centre gives its value (the mean of such points); a cell with
    fewer than ``min_points`` points within the radius is NaN. Radius queries use a
    bucket grid index. Parallel on all cores, without the GIL.

    Raises AnalysisError for NaN or infinite coordinates or values; ValueError for an
    unknown method, power <= 0, radius <= 0, min_points < 1, a bad bbox or size.
    """
