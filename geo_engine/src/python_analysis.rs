//! PyO3 bindings of the analysis kernels (`crate::analysis`): argument conversion,
//! the GIL released around the work, results as NumPy arrays or a pyarrow Table.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::{BinaryArray, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use numpy::ndarray::Array2;
use numpy::{Element, IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::create_exception;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::PyTable;

use crate::analysis::vectorize::{self, Affine, Pixel, Polygons};
use crate::analysis::{grid, spline, Grid};
use crate::error::Error;
use crate::python::GeoEngineError;

create_exception!(
    geo_engine,
    AnalysisError,
    GeoEngineError,
    "Input an analysis kernel cannot work with: NaN values, duplicate or collinear \
     points, a singular system."
);

/// Rows per record batch of `vectorize_raster`'s table.
const BATCH_ROWS: usize = 65_536;

/// A float64 view of a 1-D array-like (no copy for a contiguous float64 array).
fn floats<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<PyReadonlyArray1<'py, f64>> {
    if let Ok(array) = obj.extract::<PyReadonlyArray1<'py, f64>>() {
        return Ok(array);
    }
    let converted = py
        .import("numpy")?
        .call_method1("ascontiguousarray", (obj, "float64"))?;
    Ok(converted.extract::<PyReadonlyArray1<'py, f64>>()?)
}

fn slice<'a>(array: &'a PyReadonlyArray1<'_, f64>) -> Cow<'a, [f64]> {
    match array.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(array.as_array().iter().copied().collect()),
    }
}

fn to_grid<'py>(
    py: Python<'py>,
    values: Vec<f64>,
    grid: &Grid,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    array2(py, values, grid)
}

fn array2<'py, T: Element>(
    py: Python<'py>,
    values: Vec<T>,
    grid: &Grid,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let array = Array2::from_shape_vec((grid.height, grid.width), values)
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    Ok(array.into_pyarray(py))
}

/// Thin-plate spline interpolation onto a grid (see the stub for the full doc).
#[pyfunction]
#[pyo3(signature = (x, y, values, *, bbox, width, height, smoothing=0.0, neighbors=None))]
#[allow(clippy::too_many_arguments)]
fn interpolate_spline<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    bbox: (f64, f64, f64, f64),
    width: usize,
    height: usize,
    smoothing: f64,
    neighbors: Option<usize>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let grid = Grid::try_new(bbox, width, height)?;
    let (x, y, values) = (floats(py, x)?, floats(py, y)?, floats(py, values)?);
    let (xs, ys, vs) = (slice(&x), slice(&y), slice(&values));
    let out = py.detach(|| spline::interpolate(&grid, &xs, &ys, &vs, smoothing, neighbors))?;
    to_grid(py, out, &grid)
}

/// Per-cell statistics or IDW onto a grid (see the stub for the full doc).
#[pyfunction]
#[pyo3(signature = (x, y, values, *, bbox, width, height, method="idw", power=2.0, radius=None, min_points=1))]
#[allow(clippy::too_many_arguments)]
fn grid_inference<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    bbox: (f64, f64, f64, f64),
    width: usize,
    height: usize,
    method: &str,
    power: f64,
    radius: Option<f64>,
    min_points: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let grid = Grid::try_new(bbox, width, height)?;
    if min_points == 0 {
        return Err(Error::InvalidArgument("min_points must be at least 1".into()).into());
    }
    let (x, y, values) = (floats(py, x)?, floats(py, y)?, floats(py, values)?);
    let (xs, ys, vs) = (slice(&x), slice(&y), slice(&values));
    match method {
        "idw" => {
            let out = py.detach(|| grid::idw(&grid, &xs, &ys, &vs, power, radius, min_points))?;
            Ok(to_grid(py, out, &grid)?.into_any())
        }
        "stats" => {
            let stats = py.detach(|| grid::cell_stats(&grid, &xs, &ys, &vs, min_points))?;
            let dict = PyDict::new(py);
            dict.set_item("count", array2(py, stats.count, &grid)?)?;
            dict.set_item("sum", to_grid(py, stats.sum, &grid)?)?;
            dict.set_item("mean", to_grid(py, stats.mean, &grid)?)?;
            dict.set_item("min", to_grid(py, stats.min, &grid)?)?;
            dict.set_item("max", to_grid(py, stats.max, &grid)?)?;
            Ok(dict.into_any())
        }
        other => Err(Error::InvalidArgument(format!(
            "method must be 'idw' or 'stats' (got {other:?})"
        ))
        .into()),
    }
}

/// `nodata` in the pixel type, when it is representable there (otherwise no pixel
/// can equal it).
fn nodata_as<T: Pixel + FromF64>(nodata: Option<f64>) -> Option<T> {
    nodata.and_then(T::from_f64)
}

trait FromF64: Sized {
    fn from_f64(value: f64) -> Option<Self>;
}

macro_rules! from_f64 {
    ($($t:ty),*) => {$(
        impl FromF64 for $t {
            #[allow(clippy::cast_possible_truncation, clippy::cast_lossless)]
            fn from_f64(value: f64) -> Option<Self> {
                let cast = value as $t;
                (Pixel::to_f64(cast) == value).then_some(cast)
            }
        }
    )*};
}
from_f64!(u8, i8, u16, i16, u32, i32, f32, f64);

fn run<'py, T: Pixel + FromF64 + Element>(
    py: Python<'py>,
    array: PyReadonlyArray2<'py, T>,
    transform: &Affine,
    nodata: Option<f64>,
    connectivity: u8,
) -> PyResult<Polygons> {
    let view = array.as_array();
    let (height, width) = view.dim();
    let data: Cow<'_, [T]> = match array.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(view.iter().copied().collect()),
    };
    let nodata = nodata_as::<T>(nodata);
    Ok(py.detach(|| vectorize::vectorize(&data, width, height, transform, nodata, connectivity))?)
}

/// Regions of equal value to polygons (see the stub for the full doc).
#[pyfunction]
#[pyo3(signature = (array, *, transform, nodata=None, connectivity=4, crs=None))]
fn vectorize_raster<'py>(
    py: Python<'py>,
    array: &Bound<'py, PyAny>,
    transform: Vec<f64>,
    nodata: Option<f64>,
    connectivity: u8,
    crs: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let affine = Affine::from_coefficients(&transform)?;
    macro_rules! try_dtype {
        ($($t:ty),*) => {
            $(if let Ok(a) = array.extract::<PyReadonlyArray2<'py, $t>>() {
                run(py, a, &affine, nodata, connectivity)?
            } else)* {
                let dtype = array.getattr("dtype").map(|d| d.to_string()).unwrap_or_default();
                return Err(Error::InvalidArgument(format!(
                    "array must be a 2-D NumPy array of uint8, int8, uint16, int16, uint32, \
                     int32, float32 or float64 (got {} {dtype})",
                    array.get_type().name()?
                )).into());
            }
        };
    }
    let polygons = try_dtype!(u8, i8, u16, i16, u32, i32, f32, f64);
    let metadata = match crs {
        Some(definition) => {
            crate::shp::geoarrow_metadata(&crate::crs::Crs::parse(&definition, "crs")?)
        }
        None => [
            (
                "ARROW:extension:name".to_string(),
                "geoarrow.wkb".to_string(),
            ),
            ("ARROW:extension:metadata".to_string(), "{}".to_string()),
        ]
        .into_iter()
        .collect(),
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("value", DataType::Float64, false),
        Field::new("geometry", DataType::Binary, false).with_metadata(metadata),
    ]));
    let batches = py.detach(|| -> Result<Vec<RecordBatch>, Error> {
        polygons
            .values
            .chunks(BATCH_ROWS)
            .zip(polygons.wkb.chunks(BATCH_ROWS))
            .map(|(values, wkb)| {
                let values = Float64Array::from(values.to_vec());
                let wkb = BinaryArray::from_iter_values(wkb.iter());
                Ok(RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(values), Arc::new(wkb)],
                )?)
            })
            .collect()
    })?;
    PyTable::try_new(batches, schema)?.into_pyarrow(py)
}

/// Adds the analysis functions and `AnalysisError` to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("AnalysisError", m.py().get_type::<AnalysisError>())?;
    m.add_function(wrap_pyfunction!(interpolate_spline, m)?)?;
    m.add_function(wrap_pyfunction!(vectorize_raster, m)?)?;
    m.add_function(wrap_pyfunction!(grid_inference, m)?)?;
    Ok(())
}
