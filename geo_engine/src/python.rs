//! The Python module `geo_engine._geo_engine`: every PyO3 binding lives here; the
//! readers and encoders it calls know nothing of Python.

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, DataType, Field, SchemaRef};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyCapsule, PyDict, PyList, PyString, PyTuple};
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::{PyArray, PyRecordBatch, PyRecordBatchReader, PySchema, PyTable};

use crate::copy::{self, CopyOptions};
use crate::csv_points::{BadRows, CsvOptions, CsvPointReader, SharedSkipReport};
use crate::error::Error;
use crate::geojson::{GeoJsonOptions, GeoJsonReader};
use crate::geometry_ops::{self, SimplifyMethod};
use crate::inspect::{self, InspectOptions};
use crate::metadata::MetadataBuilder;
use crate::shp::GEOMETRY_COLUMN;
use crate::shp::{ShapefileOptions, ShapefileReader};

create_exception!(
    geo_engine,
    GeoEngineError,
    PyException,
    "Base class of geo_engine's errors."
);
create_exception!(
    geo_engine,
    FormatError,
    GeoEngineError,
    "A file that is not what its format requires (or uses an unsupported feature)."
);
create_exception!(
    geo_engine,
    EncodingError,
    GeoEngineError,
    "Text that does not decode with the file's encoding, or an unknown encoding."
);
create_exception!(
    geo_engine,
    CrsError,
    GeoEngineError,
    "A CRS PROJ cannot parse, or a coordinate it cannot transform."
);
create_exception!(
    geo_engine,
    GeometryError,
    GeoEngineError,
    "An invalid geometry (WKB) in an in-memory array."
);
create_exception!(
    geo_engine,
    GeoEngineIOError,
    GeoEngineError,
    "The operating system refused to open or read a file."
);

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        let message = err.to_string();
        match err {
            Error::Io { .. } => GeoEngineIOError::new_err(message),
            Error::Format { .. } | Error::Unsupported { .. } => FormatError::new_err(message),
            Error::Encoding { .. } => EncodingError::new_err(message),
            Error::Crs { .. } => CrsError::new_err(message),
            Error::Geometry { .. } => GeometryError::new_err(message),
            Error::InvalidArgument(_) => PyValueError::new_err(message),
            Error::Analysis(_) => crate::python_analysis::AnalysisError::new_err(message),
            Error::Arrow(_) => GeoEngineError::new_err(message),
        }
    }
}

/// A reader whose first batch was read up front (so that errors in small files
/// surface as typed exceptions from the call itself, not from the stream).
struct Prefetched<R> {
    schema: SchemaRef,
    first: Option<RecordBatch>,
    rest: R,
}

impl<R: Iterator<Item = Result<RecordBatch, ArrowError>>> Iterator for Prefetched<R> {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.first.take() {
            Some(batch) => Some(Ok(batch)),
            None => self.rest.next(),
        }
    }
}

impl<R: Iterator<Item = Result<RecordBatch, ArrowError>>> RecordBatchReader for Prefetched<R> {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Stream a shapefile as Arrow record batches (see the stub for the full doc).
#[pyfunction]
#[pyo3(
    signature = (path, *, layer=None, encoding=None, source_crs=None, target_crs=Some("EPSG:4326".to_string()), batch_size=65536),
    text_signature = "(path, *, layer=None, encoding=None, source_crs=None, target_crs='EPSG:4326', batch_size=65536)"
)]
fn stream_shapefile(
    py: Python<'_>,
    path: PathBuf,
    layer: Option<String>,
    encoding: Option<String>,
    source_crs: Option<String>,
    target_crs: Option<String>,
    batch_size: usize,
) -> PyResult<PyRecordBatchReader> {
    let options = ShapefileOptions {
        encoding,
        source_crs,
        target_crs,
        batch_size,
        layer,
    };
    let reader = py.detach(move || -> Result<_, Error> {
        let mut reader = ShapefileReader::try_new(&path, options)?;
        let first = reader.next_batch()?;
        Ok(Prefetched {
            schema: reader.schema(),
            first,
            rest: reader,
        })
    })?;
    Ok(PyRecordBatchReader::new(Box::new(reader)))
}

/// Read a whole shapefile into a pyarrow.Table (see the stub for the full doc).
#[pyfunction]
#[pyo3(
    signature = (path, *, layer=None, encoding=None, source_crs=None, target_crs=Some("EPSG:4326".to_string())),
    text_signature = "(path, *, layer=None, encoding=None, source_crs=None, target_crs='EPSG:4326')"
)]
fn parse_shapefile(
    py: Python<'_>,
    path: PathBuf,
    layer: Option<String>,
    encoding: Option<String>,
    source_crs: Option<String>,
    target_crs: Option<String>,
) -> PyResult<Bound<'_, PyAny>> {
    let options = ShapefileOptions {
        encoding,
        source_crs,
        target_crs,
        layer,
        ..Default::default()
    };
    let (batches, schema) = py.detach(move || -> Result<_, Error> {
        let mut reader = ShapefileReader::try_new(&path, options)?;
        Ok((reader.read_all()?, reader.schema()))
    })?;
    let table = PyTable::try_new(batches, schema)?;
    table.into_pyarrow(py)
}

/// The names of the shapefiles (layers) of a .zip, or the one layer of a .shp.
#[pyfunction]
fn list_layers(py: Python<'_>, path: PathBuf) -> PyResult<Vec<String>> {
    let layers = py.detach(move || -> Result<_, Error> {
        if crate::shp::source::has_extension(&path, "zip") {
            crate::shp::archive::layers(&path)
        } else {
            Ok(path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .into_iter()
                .collect())
        }
    })?;
    Ok(layers)
}

/// Transform coordinate arrays between CRSs (see the stub for the full doc).
#[pyfunction]
#[pyo3(signature = (x, y, *, from_crs, to_crs, z=None))]
fn transform_coords<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    from_crs: String,
    to_crs: String,
    z: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let mut xs = x.as_array().to_vec();
    let mut ys = y.as_array().to_vec();
    let mut zs = z.map(|z| z.as_array().to_vec());
    let (xs, ys, zs) = py.detach(move || -> Result<_, Error> {
        if let Some(pool) = crate::transform::pool(&from_crs, &to_crs)? {
            crate::transform::transform_arrays(&pool, &mut xs, &mut ys, zs.as_deref_mut())?;
        } else if xs.len() != ys.len() {
            return Err(Error::InvalidArgument("x and y differ in length".into()));
        }
        Ok((xs, ys, zs))
    })?;
    let mut arrays = vec![PyArray1::from_vec(py, xs), PyArray1::from_vec(py, ys)];
    arrays.extend(zs.map(|zs| PyArray1::from_vec(py, zs)));
    PyTuple::new(py, arrays)
}

/// Reproject a WKB geometry array (see the stub for the full doc).
#[pyfunction]
#[pyo3(signature = (geometry, *, from_crs, to_crs))]
fn transform_crs(
    py: Python<'_>,
    geometry: PyArray,
    from_crs: String,
    to_crs: String,
) -> PyResult<Py<PyAny>> {
    let (array, field) = geometry.into_inner();
    let (out, crs) = py.detach(move || -> Result<_, Error> {
        let pool = crate::transform::pool(&from_crs, &to_crs)?;
        let out = crate::transform::transform_wkb_array(array.as_ref(), pool.as_deref())?;
        let crs = crate::crs::Crs::parse(&to_crs, "to_crs")?;
        Ok((out, crs))
    })?;
    let mut metadata = field.metadata().clone();
    metadata.extend(crate::shp::geoarrow_metadata(&crs));
    let field = Field::new(field.name(), DataType::Binary, true).with_metadata(metadata);
    let array = PyArray::try_new(Arc::new(out), Arc::new(field)).map_err(Error::from)?;
    let exported = array.to_pyarrow(py)?.unbind();
    Ok(exported)
}

/// A delimiter argument: one byte, or "\\t".
fn parse_delimiter(delimiter: Option<&str>) -> PyResult<Option<u8>> {
    match delimiter {
        None => Ok(None),
        Some(d) if d.len() == 1 => Ok(d.bytes().next()),
        Some("\\t") => Ok(Some(b'\t')),
        Some(d) => Err(PyValueError::new_err(format!(
            "delimiter must be one byte, not {d:?}"
        ))),
    }
}

/// The stream of `stream_csv_points`: an Arrow C stream (read once, by pyarrow,
/// DuckDB, polars...) and the rows its reader left out so far.
#[pyclass(module = "geo_engine", name = "CsvStream", frozen)]
struct CsvStream {
    stream: Py<PyRecordBatchReader>,
    skipped: SharedSkipReport,
}

#[pymethods]
impl CsvStream {
    /// The batches as an Arrow C stream (the Arrow PyCapsule interface).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.stream
            .bind(py)
            .call_method1("__arrow_c_stream__", (requested_schema,))
    }

    /// The schema as an Arrow C schema (the Arrow PyCapsule interface).
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.stream.bind(py).call_method0("__arrow_c_schema__")
    }

    /// (1-based line, reason) of every row left out so far (complete once the stream
    /// has been read to its end).
    #[getter]
    fn skipped_rows(&self) -> Vec<(u64, String)> {
        let report = self
            .skipped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        report
            .rows()
            .map(|(line, reason)| (line, reason.to_string()))
            .collect()
    }

    fn __repr__(&self) -> String {
        let skipped = self
            .skipped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        format!("CsvStream(skipped_rows: {skipped} so far)")
    }
}

/// Stream a delimited text file of points or WKT (see the stub for the full doc).
#[pyfunction]
#[pyo3(
    signature = (path, *, x=None, y=None, wkt=None, delimiter=None, source_crs="EPSG:4326".to_string(), target_crs=Some("EPSG:4326".to_string()), batch_size=65536, on_bad_rows="fail".to_string(), column_types=None),
    text_signature = "(path, *, x=None, y=None, wkt=None, delimiter=None, source_crs='EPSG:4326', target_crs='EPSG:4326', batch_size=65536, on_bad_rows='fail', column_types=None)"
)]
#[allow(clippy::too_many_arguments)]
fn stream_csv_points(
    py: Python<'_>,
    path: PathBuf,
    x: Option<String>,
    y: Option<String>,
    wkt: Option<String>,
    delimiter: Option<String>,
    source_crs: String,
    target_crs: Option<String>,
    batch_size: usize,
    on_bad_rows: String,
    column_types: Option<PySchema>,
) -> PyResult<CsvStream> {
    let delimiter = parse_delimiter(delimiter.as_deref())?;
    // Every field of the schema but the geometry, which a stream's schema has last.
    let column_types = column_types.map(|schema| {
        let schema = schema.into_inner();
        let fields: &[_] = schema.fields().as_ref();
        let attributes = match fields.split_last() {
            Some((last, rest)) if last.name() == GEOMETRY_COLUMN => rest,
            _ => fields,
        };
        attributes
            .iter()
            .map(|field| (field.name().clone(), field.data_type().clone()))
            .collect()
    });
    let options = CsvOptions {
        x,
        y,
        wkt,
        delimiter,
        source_crs,
        target_crs,
        batch_size,
        on_bad_rows: BadRows::parse(&on_bad_rows)?,
        column_types,
    };
    let (reader, skipped) = py.detach(move || -> Result<_, Error> {
        let mut reader = CsvPointReader::try_new(&path, options)?;
        let first = reader.next_batch()?;
        let skipped = reader.skip_report();
        let reader = Prefetched {
            schema: reader.schema(),
            first,
            rest: reader,
        };
        Ok((reader, skipped))
    })?;
    Ok(CsvStream {
        stream: Py::new(py, PyRecordBatchReader::new(Box::new(reader)))?,
        skipped,
    })
}

/// Stream a GeoJSON file (see the stub for the full doc).
#[pyfunction]
#[pyo3(
    signature = (path, *, source_crs=None, target_crs=Some("EPSG:4326".to_string()), batch_size=65536),
    text_signature = "(path, *, source_crs=None, target_crs='EPSG:4326', batch_size=65536)"
)]
fn stream_geojson(
    py: Python<'_>,
    path: PathBuf,
    source_crs: Option<String>,
    target_crs: Option<String>,
    batch_size: usize,
) -> PyResult<PyRecordBatchReader> {
    let options = GeoJsonOptions {
        source_crs,
        target_crs,
        batch_size,
    };
    let reader = py.detach(move || -> Result<_, Error> {
        let mut reader = GeoJsonReader::try_new(&path, options)?;
        let first = reader.next_batch()?;
        Ok(Prefetched {
            schema: reader.schema(),
            first,
            rest: reader,
        })
    })?;
    Ok(PyRecordBatchReader::new(Box::new(reader)))
}

/// Read a whole GeoJSON file into a pyarrow.Table (see the stub for the full doc).
#[pyfunction]
#[pyo3(
    signature = (path, *, source_crs=None, target_crs=Some("EPSG:4326".to_string())),
    text_signature = "(path, *, source_crs=None, target_crs='EPSG:4326')"
)]
fn parse_geojson(
    py: Python<'_>,
    path: PathBuf,
    source_crs: Option<String>,
    target_crs: Option<String>,
) -> PyResult<Bound<'_, PyAny>> {
    let options = GeoJsonOptions {
        source_crs,
        target_crs,
        ..Default::default()
    };
    let (batches, schema) = py.detach(move || -> Result<_, Error> {
        let mut reader = GeoJsonReader::try_new(&path, options)?;
        Ok((reader.read_all()?, reader.schema()))
    })?;
    PyTable::try_new(batches, schema)?.into_pyarrow(py)
}

fn json_to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, json_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Summarise a file by path, or a table, batch or stream (see the stub for the doc).
#[pyfunction]
#[pyo3(
    signature = (data, *, layer=None, encoding=None, source_crs=None, x=None, y=None, wkt=None, delimiter=None),
    text_signature = "(data, *, layer=None, encoding=None, source_crs=None, x=None, y=None, wkt=None, delimiter=None)"
)]
#[allow(clippy::too_many_arguments)]
fn infer_metadata<'py>(
    py: Python<'py>,
    data: Bound<'py, PyAny>,
    layer: Option<String>,
    encoding: Option<String>,
    source_crs: Option<String>,
    x: Option<String>,
    y: Option<String>,
    wkt: Option<String>,
    delimiter: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let is_path = data.is_instance_of::<PyString>() || data.hasattr("__fspath__")?;
    let summary = if is_path {
        let path: PathBuf = data.extract()?;
        let options = InspectOptions {
            layer,
            encoding,
            source_crs,
            x,
            y,
            wkt,
            delimiter: parse_delimiter(delimiter.as_deref())?,
        };
        py.detach(move || inspect::summarise_path(&path, options))?
    } else {
        let given = [&layer, &encoding, &source_crs, &x, &y, &wkt, &delimiter];
        if given.iter().any(|option| option.is_some()) {
            return Err(PyValueError::new_err(
                "layer, encoding, source_crs, x, y, wkt and delimiter apply to a path, not to Arrow data",
            ));
        }
        let reader = data.extract::<AnyRecordBatch>()?.into_reader()?;
        py.detach(move || -> Result<_, Error> {
            let mut builder = MetadataBuilder::new(reader.schema());
            for batch in reader {
                builder.add(&batch.map_err(Error::from)?)?;
            }
            Ok(builder.finish())
        })?
    };
    json_to_py(py, &summary)
}

/// Check the validity of every geometry of a WKB array (see the stub).
#[pyfunction]
fn validate_geometry(py: Python<'_>, geometry: PyArray) -> PyResult<Py<PyAny>> {
    let (array, _field) = geometry.into_inner();
    let (valid, reasons) = py.detach(move || geometry_ops::validate(array.as_ref()))?;
    let batch = RecordBatch::try_from_iter(vec![("is_valid", valid), ("reason", reasons)])
        .map_err(Error::from)?;
    let batch = PyRecordBatch::new(batch);
    let exported = batch.into_pyarrow(py)?.unbind();
    Ok(exported)
}

/// Simplify every geometry of a WKB array (see the stub).
#[pyfunction]
#[pyo3(
    signature = (geometry, *, tolerance, method="douglas-peucker".to_string(), preserve_topology=false),
    text_signature = "(geometry, *, tolerance, method='douglas-peucker', preserve_topology=False)"
)]
fn simplify_geometry(
    py: Python<'_>,
    geometry: PyArray,
    tolerance: f64,
    method: String,
    preserve_topology: bool,
) -> PyResult<Py<PyAny>> {
    let method = SimplifyMethod::parse(&method, preserve_topology)?;
    let (array, field) = geometry.into_inner();
    let out = py.detach(move || geometry_ops::simplify(array.as_ref(), method, tolerance))?;
    let field =
        Field::new(field.name(), DataType::Binary, true).with_metadata(field.metadata().clone());
    let array = PyArray::try_new(Arc::new(out), Arc::new(field)).map_err(Error::from)?;
    let exported = array.to_pyarrow(py)?.unbind();
    Ok(exported)
}

/// The binary COPY header: signature, flags and header extension (19 bytes).
#[pyfunction]
fn copy_header(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, &copy::HEADER)
}

/// The binary COPY trailer (a field count of -1).
#[pyfunction]
fn copy_trailer(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, &copy::TRAILER)
}

/// Encode a record batch as binary COPY rows for core_geometry.
#[pyfunction]
#[pyo3(
    signature = (batch, *, source_id, geometry_column="geometry".to_string(), srid=4326),
    text_signature = "(batch, *, source_id, geometry_column='geometry', srid=4326)"
)]
fn encode_copy_rows(
    py: Python<'_>,
    batch: PyRecordBatch,
    source_id: i32,
    geometry_column: String,
    srid: i32,
) -> PyResult<Bound<'_, PyBytes>> {
    let batch = batch.into_inner();
    let options = CopyOptions {
        source_id,
        geometry_column,
        srid,
    };
    let out = py.detach(|| copy::encode_rows(&batch, &options))?;
    Ok(PyBytes::new(py, &out))
}

/// Test helper: reads the first batch of a shapefile and returns it as a stream with
/// the addresses of the buffers Rust allocated for its geometry column (offsets,
/// values), so a test can check that pyarrow wraps them without copying.
#[pyfunction]
fn _zero_copy_probe(py: Python<'_>, path: PathBuf) -> PyResult<(PyRecordBatchReader, Vec<usize>)> {
    let (batch, schema) = py.detach(move || -> Result<_, Error> {
        let mut reader = ShapefileReader::try_new(&path, ShapefileOptions::default())?;
        Ok((reader.next_batch()?, reader.schema()))
    })?;
    let batch = batch.ok_or_else(|| PyValueError::new_err("the shapefile has no rows"))?;
    let geometry = batch
        .column(batch.num_columns().saturating_sub(1))
        .to_data();
    let addresses = geometry
        .buffers()
        .iter()
        .map(|b| b.as_ptr() as usize)
        .collect();
    let reader = Prefetched {
        schema,
        first: Some(batch),
        rest: std::iter::empty::<Result<RecordBatch, ArrowError>>(),
    };
    Ok((PyRecordBatchReader::new(Box::new(reader)), addresses))
}

/// Whether this extension was compiled without optimisations.
#[pyfunction]
fn _debug_build() -> bool {
    cfg!(debug_assertions)
}

#[pymodule]
fn _geo_engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("GeoEngineError", py.get_type::<GeoEngineError>())?;
    m.add("FormatError", py.get_type::<FormatError>())?;
    m.add("EncodingError", py.get_type::<EncodingError>())?;
    m.add("CrsError", py.get_type::<CrsError>())?;
    m.add("GeometryError", py.get_type::<GeometryError>())?;
    m.add("GeoEngineIOError", py.get_type::<GeoEngineIOError>())?;
    m.add_class::<CsvStream>()?;
    m.add_function(wrap_pyfunction!(stream_shapefile, m)?)?;
    m.add_function(wrap_pyfunction!(parse_shapefile, m)?)?;
    m.add_function(wrap_pyfunction!(list_layers, m)?)?;
    m.add_function(wrap_pyfunction!(transform_coords, m)?)?;
    m.add_function(wrap_pyfunction!(transform_crs, m)?)?;
    m.add_function(wrap_pyfunction!(stream_csv_points, m)?)?;
    m.add_function(wrap_pyfunction!(stream_geojson, m)?)?;
    m.add_function(wrap_pyfunction!(parse_geojson, m)?)?;
    m.add_function(wrap_pyfunction!(infer_metadata, m)?)?;
    m.add_function(wrap_pyfunction!(validate_geometry, m)?)?;
    m.add_function(wrap_pyfunction!(simplify_geometry, m)?)?;
    m.add_function(wrap_pyfunction!(copy_header, m)?)?;
    m.add_function(wrap_pyfunction!(copy_trailer, m)?)?;
    m.add_function(wrap_pyfunction!(encode_copy_rows, m)?)?;
    m.add_function(wrap_pyfunction!(_debug_build, m)?)?;
    m.add_function(wrap_pyfunction!(_zero_copy_probe, m)?)?;
    crate::python_analysis::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
