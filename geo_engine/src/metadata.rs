//! A summary of a table's columns and geometry, computed batch by batch: row and
//! null counts, min/max, geometry types, bounding box and CRS.

use std::collections::BTreeMap;

use arrow_arith::aggregate;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema};
use rayon::prelude::*;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::geometry_ops::wkb_values;
use crate::wkb;

/// Running statistics of one attribute column.
#[derive(Debug, Default)]
struct ColumnStats {
    nulls: usize,
    min: Option<Value>,
    max: Option<Value>,
}

fn json_less(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap_or(f64::NAN) < y.as_f64().unwrap_or(f64::NAN)
        }
        (Value::String(x), Value::String(y)) => x < y,
        (Value::Bool(x), Value::Bool(y)) => !x & y,
        _ => false,
    }
}

impl ColumnStats {
    fn update(&mut self, min: Option<Value>, max: Option<Value>) {
        if let Some(v) = min {
            if self.min.as_ref().is_none_or(|m| json_less(&v, m)) {
                self.min = Some(v);
            }
        }
        if let Some(v) = max {
            if self.max.as_ref().is_none_or(|m| json_less(m, &v)) {
                self.max = Some(v);
            }
        }
    }
}

/// Running statistics of the geometry column.
#[derive(Debug, Default)]
struct GeometryStats {
    nulls: usize,
    types: BTreeMap<String, usize>,
    has_z: bool,
    bbox: Option<[f64; 4]>,
}

fn merge_bbox(a: Option<[f64; 4]>, b: Option<[f64; 4]>) -> Option<[f64; 4]> {
    match (a, b) {
        (Some(a), Some(b)) => Some([
            a[0].min(b[0]),
            a[1].min(b[1]),
            a[2].max(b[2]),
            a[3].max(b[3]),
        ]),
        (a, None) => a,
        (None, b) => b,
    }
}

fn date_text(days: i32) -> String {
    // Civil date from days since the epoch (Howard Hinnant's civil_from_days).
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn float_value(v: f64) -> Option<Value> {
    serde_json::Number::from_f64(v).map(Value::Number)
}

fn min_max(array: &dyn Array) -> (Option<Value>, Option<Value>) {
    macro_rules! int {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            (
                aggregate::min(a).map(|v| json!(v)),
                aggregate::max(a).map(|v| json!(v)),
            )
        }};
    }
    macro_rules! float {
        ($t:ty) => {{
            // NaN is left out of min and max.
            let a = array.as_primitive::<$t>();
            let values = a.iter().flatten().map(f64::from).filter(|v| !v.is_nan());
            let (lo, hi) = values.fold((None::<f64>, None::<f64>), |(lo, hi), v| {
                (
                    Some(lo.map_or(v, |l| l.min(v))),
                    Some(hi.map_or(v, |h| h.max(v))),
                )
            });
            (lo.and_then(float_value), hi.and_then(float_value))
        }};
    }
    match array.data_type() {
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Float32 => float!(Float32Type),
        DataType::Float64 => float!(Float64Type),
        DataType::Boolean => {
            let a = array.as_boolean();
            (
                aggregate::min_boolean(a).map(Value::Bool),
                aggregate::max_boolean(a).map(Value::Bool),
            )
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            (
                aggregate::min_string(a).map(|s| json!(s)),
                aggregate::max_string(a).map(|s| json!(s)),
            )
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            (
                aggregate::min_string(a).map(|s| json!(s)),
                aggregate::max_string(a).map(|s| json!(s)),
            )
        }
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            (
                aggregate::min(a).map(|d| json!(date_text(d))),
                aggregate::max(a).map(|d| json!(date_text(d))),
            )
        }
        _ => (None, None),
    }
}

/// Accumulates the summary of a stream of batches.
pub struct MetadataBuilder {
    schema: std::sync::Arc<Schema>,
    geometry_index: Option<usize>,
    rows: usize,
    columns: Vec<ColumnStats>,
    geometry: GeometryStats,
}

/// The geometry column: GeoArrow WKB by its metadata, else a binary "geometry".
fn geometry_column(schema: &Schema) -> Option<usize> {
    schema
        .fields()
        .iter()
        .position(|f| {
            f.metadata()
                .get("ARROW:extension:name")
                .is_some_and(|n| n == "geoarrow.wkb")
        })
        .or_else(|| {
            schema.fields().iter().position(|f| {
                f.name() == "geometry"
                    && matches!(
                        f.data_type(),
                        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
                    )
            })
        })
}

impl MetadataBuilder {
    pub fn new(schema: std::sync::Arc<Schema>) -> Self {
        let geometry_index = geometry_column(&schema);
        let columns = schema
            .fields()
            .iter()
            .map(|_| ColumnStats::default())
            .collect();
        Self {
            schema,
            geometry_index,
            rows: 0,
            columns,
            geometry: GeometryStats::default(),
        }
    }

    pub fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows();
        for (i, (stats, column)) in self.columns.iter_mut().zip(batch.columns()).enumerate() {
            stats.nulls += column.null_count();
            if Some(i) != self.geometry_index {
                let (min, max) = min_max(column.as_ref());
                stats.update(min, max);
            }
        }
        if let Some(index) = self.geometry_index {
            let column = batch.column(index);
            let values = wkb_values(column.as_ref())?;
            let partial: Vec<Result<GeometryStats>> = values
                .par_chunks(4096)
                .enumerate()
                .map(|(chunk, rows)| {
                    let mut stats = GeometryStats::default();
                    let mut refs = Vec::new();
                    for (i, value) in rows.iter().enumerate() {
                        let Some(bytes) = value else {
                            stats.nulls += 1;
                            continue;
                        };
                        refs.clear();
                        let ty = wkb::coordinates(bytes, &mut refs).map_err(|m| {
                            Error::geometry(chunk * 4096 + i, format!("invalid WKB: {m}"))
                        })?;
                        *stats
                            .types
                            .entry(wkb::type_name(ty.base).to_string())
                            .or_default() += 1;
                        stats.has_z |= ty.has_z;
                        for r in &refs {
                            let (Some(x), Some(y)) = (
                                wkb::read_f64(bytes, r.offset, r.little),
                                wkb::read_f64(bytes, r.offset + 8, r.little),
                            ) else {
                                continue;
                            };
                            stats.bbox = merge_bbox(stats.bbox, Some([x, y, x, y]));
                        }
                    }
                    Ok(stats)
                })
                .collect();
            for stats in partial {
                let stats = stats?;
                self.geometry.nulls += stats.nulls;
                self.geometry.has_z |= stats.has_z;
                self.geometry.bbox = merge_bbox(self.geometry.bbox, stats.bbox);
                for (name, count) in stats.types {
                    *self.geometry.types.entry(name).or_default() += count;
                }
            }
        }
        Ok(())
    }

    /// The summary as JSON.
    pub fn finish(self) -> Value {
        let columns: Vec<Value> = self
            .schema
            .fields()
            .iter()
            .zip(&self.columns)
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.geometry_index)
            .map(|(_, (field, stats))| {
                json!({
                    "name": field.name(),
                    "type": field.data_type().to_string(),
                    "null_count": stats.nulls,
                    "min": stats.min,
                    "max": stats.max,
                })
            })
            .collect();
        let geometry = self.geometry_index.and_then(|index| {
            let field = self.schema.fields().get(index)?;
            let crs = field
                .metadata()
                .get("ARROW:extension:metadata")
                .and_then(|m| serde_json::from_str::<Value>(m).ok())
                .and_then(|m| m.get("crs").cloned());
            let mut out = Map::new();
            out.insert("column".into(), json!(field.name()));
            out.insert("null_count".into(), json!(self.geometry.nulls));
            out.insert("types".into(), json!(self.geometry.types));
            out.insert("has_z".into(), json!(self.geometry.has_z));
            out.insert("bbox".into(), json!(self.geometry.bbox));
            out.insert("crs".into(), crs.unwrap_or(Value::Null));
            Some(Value::Object(out))
        });
        let crs = geometry
            .as_ref()
            .and_then(|g| g.get("crs"))
            .filter(|c| !c.is_null())
            .map(|projjson| {
                let id = projjson.get("id");
                let authority = id.and_then(|id| {
                    Some(format!(
                        "{}:{}",
                        id.get("authority")?.as_str()?,
                        id.get("code").map(|c| match c {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })?
                    ))
                });
                let epsg = id
                    .filter(|id| id.get("authority").and_then(Value::as_str) == Some("EPSG"))
                    .and_then(|id| id.get("code"))
                    .and_then(|c| c.as_u64().or_else(|| c.as_str()?.parse().ok()));
                json!({"projjson": projjson, "authority": authority, "epsg": epsg})
            });
        json!({
            "row_count": self.rows,
            "feature_count": self.rows,
            "columns": columns,
            "geometry": geometry,
            "geometry_types": self.geometry.types.keys().collect::<Vec<_>>(),
            "bbox": self.geometry.bbox,
            "crs": crs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, BinaryArray, Date32Array, Float64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn summarises_columns_and_geometry() {
        let mut a = Vec::new();
        crate::wkt::to_wkb("POINT (1 5)", &mut a).unwrap();
        let mut b = Vec::new();
        crate::wkt::to_wkb("LINESTRING Z (-2 0 1, 3 4 1)", &mut b).unwrap();
        let batch = RecordBatch::try_from_iter(vec![
            (
                "x",
                Arc::new(Float64Array::from(vec![Some(1.5), None, Some(f64::NAN)])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(StringArray::from(vec!["b", "a", "c"])) as ArrayRef,
            ),
            (
                "d",
                Arc::new(Date32Array::from(vec![0, 19753, 1])) as ArrayRef,
            ),
            (
                "geometry",
                Arc::new(BinaryArray::from(vec![
                    Some(a.as_slice()),
                    Some(b.as_slice()),
                    None,
                ])) as ArrayRef,
            ),
        ])
        .unwrap();
        let mut builder = MetadataBuilder::new(batch.schema());
        builder.add(&batch).unwrap();
        builder.add(&batch).unwrap();
        let summary = builder.finish();
        assert_eq!(summary["row_count"], 6);
        assert_eq!(summary["columns"][0]["null_count"], 2);
        assert_eq!(summary["columns"][0]["max"], 1.5);
        assert_eq!(summary["columns"][1]["min"], "a");
        assert_eq!(summary["columns"][2]["max"], "2024-01-31");
        assert_eq!(
            summary["geometry"]["types"],
            json!({"LineString": 2, "Point": 2})
        );
        assert_eq!(summary["geometry"]["bbox"], json!([-2.0, 0.0, 3.0, 5.0]));
        assert_eq!(summary["geometry"]["has_z"], true);
        assert_eq!(summary["geometry"]["null_count"], 2);
    }
}
