//! GeoJSON (a FeatureCollection, newline-delimited features, or one feature) read as
//! Arrow record batches: properties typed from the first batch (or from every
//! feature, for a whole-file read), then `geometry` (WKB), reprojected from the
//! `crs` member (2008 GeoJSON) or the given CRS.

pub mod feature;
pub mod scan;

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
};
use arrow_array::{ArrayRef, BinaryArray, RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;
use serde_json::Value;

use crate::crs::{Crs, TransformerPool};
use crate::dbf::parse_date;
use crate::error::{Error, Location, Result};
use crate::shp::{geoarrow_metadata, GEOMETRY_COLUMN};
use crate::text_source::TextSource;
use crate::transform;
use feature::Parsed;
use scan::{Item, Scanner};

#[derive(Debug, Clone, PartialEq)]
pub struct GeoJsonOptions {
    /// Overrides the `crs` member; without either, EPSG:4326 (RFC 7946).
    pub source_crs: Option<String>,
    pub target_crs: Option<String>,
    pub batch_size: usize,
    /// Infer the property types from every feature (reads the whole file first)
    /// instead of from the first batch.
    pub infer_from_all: bool,
}

impl Default for GeoJsonOptions {
    fn default() -> Self {
        Self {
            source_crs: None,
            target_crs: Some("EPSG:4326".into()),
            batch_size: 65_536,
            infer_from_all: false,
        }
    }
}

/// The Arrow type a property becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyKind {
    Bool,
    Int64,
    Float64,
    Date32,
    /// Strings; numbers, booleans and nested values as their JSON text.
    Utf8,
}

impl PropertyKind {
    fn data_type(&self) -> DataType {
        match self {
            PropertyKind::Bool => DataType::Boolean,
            PropertyKind::Int64 => DataType::Int64,
            PropertyKind::Float64 => DataType::Float64,
            PropertyKind::Date32 => DataType::Date32,
            PropertyKind::Utf8 => DataType::Utf8,
        }
    }
}

#[derive(Default)]
struct Seen {
    bool: bool,
    int: bool,
    float: bool,
    date: bool,
    text: bool,
    nested: bool,
}

impl Seen {
    fn add(&mut self, value: &Value) {
        match value {
            Value::Null => {}
            Value::Bool(_) => self.bool = true,
            Value::Number(n) if n.is_i64() => self.int = true,
            Value::Number(_) => self.float = true,
            Value::String(s) if s.len() == 10 && parse_date(s.as_bytes()).is_some() => {
                self.date = true
            }
            Value::String(_) => self.text = true,
            Value::Array(_) | Value::Object(_) => self.nested = true,
        }
    }

    fn kind(&self) -> PropertyKind {
        let numbers = self.int || self.float;
        let others = self.text || self.nested;
        match (self.bool, numbers, self.date, others) {
            (true, false, false, false) => PropertyKind::Bool,
            (false, true, false, false) if self.float => PropertyKind::Float64,
            (false, true, false, false) => PropertyKind::Int64,
            (false, false, true, false) => PropertyKind::Date32,
            _ => PropertyKind::Utf8,
        }
    }
}

fn crs_from_member(json: &[u8], context: &str) -> Result<Crs> {
    let value: Value = serde_json::from_slice(json)
        .map_err(|err| Error::crs(context, format!("invalid crs member: {err}")))?;
    let properties = value.get("properties");
    let definition = match value.get("type").and_then(Value::as_str) {
        Some("name") => properties
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string),
        Some("EPSG") => properties.and_then(|p| p.get("code")).map(|c| {
            format!(
                "EPSG:{}",
                c.as_str().map_or_else(|| c.to_string(), str::to_string)
            )
        }),
        _ => None,
    }
    .ok_or_else(|| {
        Error::crs(
            context,
            format!("unsupported crs member {}", String::from_utf8_lossy(json)),
        )
    })?;
    // GeoJSON coordinates are x/lon first whatever the CRS says; the transforms here
    // are normalised the same way.
    Crs::parse(&definition, context)
}

/// A streaming GeoJSON reader.
pub struct GeoJsonReader {
    path: PathBuf,
    scanner: Scanner<Box<dyn Read + Send + Sync>>,
    next_number: u64,
    pending: VecDeque<(u64, Parsed)>,
    columns: Vec<(String, PropertyKind)>,
    schema: SchemaRef,
    source: Crs,
    source_fixed: bool,
    transform: Option<TransformerPool>,
    batch_size: usize,
    finished: bool,
}

impl GeoJsonReader {
    /// Opens the file at `path`.
    pub fn try_new(path: &Path, options: GeoJsonOptions) -> Result<Self> {
        Self::from_source(TextSource::File(path.to_path_buf()), options)
    }

    /// Opens a file or bytes in memory.
    pub fn from_source(source: TextSource, options: GeoJsonOptions) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(Error::InvalidArgument(
                "batch_size must be at least 1".into(),
            ));
        }
        let path = source.path();
        let file = source.open()?;
        let (source, crs_source) = match &options.source_crs {
            Some(definition) => (Crs::parse(definition, "source_crs")?, "argument"),
            None => (Crs::wgs84()?, "default"),
        };
        let mut reader = Self {
            path: path.to_path_buf(),
            scanner: Scanner::new(file),
            next_number: 1,
            pending: VecDeque::new(),
            columns: Vec::new(),
            schema: Arc::new(Schema::empty()),
            source_fixed: options.source_crs.is_some(),
            source,
            transform: None,
            batch_size: options.batch_size,
            finished: false,
        };
        let window = if options.infer_from_all {
            usize::MAX
        } else {
            options.batch_size
        };
        let crs_member = reader.fill(window)?;
        let crs_source = if crs_member { "member" } else { crs_source };
        // Property columns in the order they first appear.
        let mut order: Vec<String> = Vec::new();
        let mut seen: HashMap<String, Seen> = HashMap::new();
        for (_, parsed) in &reader.pending {
            for (key, value) in &parsed.properties {
                let entry = seen.entry(key.clone()).or_insert_with(|| {
                    order.push(key.clone());
                    Seen::default()
                });
                entry.add(value);
            }
        }
        reader.columns = order
            .into_iter()
            .map(|key| {
                let kind = seen.get(&key).map_or(PropertyKind::Utf8, Seen::kind);
                (key, kind)
            })
            .collect();
        let crs = match &options.target_crs {
            Some(target) => {
                let target = Crs::parse(target, "target_crs")?;
                reader.transform = TransformerPool::new(&reader.source, &target)?;
                target
            }
            None => reader.source.clone(),
        };
        let mut fields: Vec<Field> = reader
            .columns
            .iter()
            .map(|(name, kind)| Field::new(name.clone(), kind.data_type(), true))
            .collect();
        fields.push(
            Field::new(GEOMETRY_COLUMN, DataType::Binary, true)
                .with_metadata(geoarrow_metadata(&crs)),
        );
        let metadata = HashMap::from([
            ("geo_engine:crs_source".to_string(), crs_source.to_string()),
            (
                "geo_engine:source_crs".to_string(),
                reader.source.label().to_string(),
            ),
        ]);
        reader.schema = Arc::new(Schema::new_with_metadata(fields, metadata));
        Ok(reader)
    }

    /// Reads and parses up to `count` more features into `pending`; true if a crs
    /// member was taken as the source CRS.
    fn fill(&mut self, count: usize) -> Result<bool> {
        let mut raw: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut took_crs = false;
        while raw.len() < count {
            let item = self.scanner.next_item().map_err(|message| {
                Error::format(Location::feature(&self.path, self.next_number), message)
            })?;
            match item {
                None => {
                    self.finished = true;
                    break;
                }
                Some(Item::Feature(json)) => {
                    raw.push((self.next_number, json));
                    self.next_number += 1;
                }
                Some(Item::Crs { json, .. }) => {
                    let context = format!("{} (crs member)", self.path.display());
                    let crs = crs_from_member(&json, &context)?;
                    if self.source_fixed {
                        continue;
                    }
                    if self.schema.fields().is_empty() {
                        // Still opening: nothing was emitted, the member decides.
                        self.source = crs;
                        took_crs = true;
                    } else if !crs.equivalent(&self.source)? {
                        return Err(Error::crs(
                            context,
                            format!(
                                "the crs member ({}) comes after features already read as {}; pass source_crs",
                                crs.label(),
                                self.source.label()
                            ),
                        ));
                    }
                }
            }
        }
        let parsed: Vec<Result<(u64, Parsed)>> = raw
            .into_par_iter()
            .map(|(number, json)| {
                feature::parse(&json)
                    .map(|p| (number, p))
                    .map_err(|message| {
                        Error::format(Location::feature(&self.path, number), message)
                    })
            })
            .collect();
        for item in parsed {
            self.pending.push_back(item?);
        }
        Ok(took_crs)
    }

    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.pending.len() < self.batch_size && !self.finished {
            self.fill(self.batch_size - self.pending.len())?;
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let take = self.batch_size.min(self.pending.len());
        let features: Vec<(u64, Parsed)> = self.pending.drain(..take).collect();
        self.build(&features).map(Some)
    }

    fn build(&self, features: &[(u64, Parsed)]) -> Result<RecordBatch> {
        // Properties that are not columns cannot be added mid-stream.
        for (number, parsed) in features {
            if let Some(key) = parsed
                .properties
                .keys()
                .find(|k| !self.columns.iter().any(|(c, _)| c == *k))
            {
                return Err(Error::format(
                    Location::feature(&self.path, *number),
                    format!(
                        "property {key:?} did not appear in the features the types were inferred from; \
                         read the file with parse_geojson, or with a larger batch_size"
                    ),
                ));
            }
        }
        let (geometry, columns) = rayon::join(
            || -> Result<ArrayRef> {
                let wkb = BinaryArray::from_iter(features.iter().map(|(_, p)| p.wkb.as_deref()));
                Ok(Arc::new(transform::transform_wkb_array(
                    &wkb,
                    self.transform.as_ref(),
                )?))
            },
            || {
                self.columns
                    .par_iter()
                    .map(|(key, kind)| self.build_column(key, *kind, features))
                    .collect::<Result<Vec<ArrayRef>>>()
            },
        );
        let mut columns = columns?;
        columns.push(geometry?);
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    fn build_column(
        &self,
        key: &str,
        kind: PropertyKind,
        features: &[(u64, Parsed)],
    ) -> Result<ArrayRef> {
        let n = features.len();
        let values = features
            .iter()
            .map(|(number, p)| (*number, p.properties.get(key).filter(|v| !v.is_null())));
        let misfit = |number: u64, value: &Value| {
            Error::format(
                Location::feature(&self.path, number),
                format!("property {key:?}: {value} does not fit the column's type {kind:?}"),
            )
        };
        macro_rules! typed {
            ($builder:expr, $convert:expr) => {{
                let mut builder = $builder;
                for (number, value) in values {
                    match value {
                        None => builder.append_null(),
                        Some(v) => {
                            builder.append_value($convert(v).ok_or_else(|| misfit(number, v))?)
                        }
                    }
                }
                Arc::new(builder.finish()) as ArrayRef
            }};
        }
        Ok(match kind {
            PropertyKind::Bool => typed!(BooleanBuilder::with_capacity(n), Value::as_bool),
            PropertyKind::Int64 => typed!(Int64Builder::with_capacity(n), Value::as_i64),
            PropertyKind::Float64 => typed!(Float64Builder::with_capacity(n), Value::as_f64),
            PropertyKind::Date32 => typed!(Date32Builder::with_capacity(n), |v: &Value| v
                .as_str()
                .filter(|s| s.len() == 10)
                .and_then(|s| parse_date(s.as_bytes()))),
            PropertyKind::Utf8 => {
                let mut builder = StringBuilder::with_capacity(n, n * 8);
                for (_, value) in values {
                    match value {
                        None => builder.append_null(),
                        Some(Value::String(s)) => builder.append_value(s),
                        Some(other) => builder.append_value(other.to_string()),
                    }
                }
                Arc::new(builder.finish()) as ArrayRef
            }
        })
    }

    /// Reads every remaining batch.
    pub fn read_all(&mut self) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next_batch()? {
            batches.push(batch);
        }
        Ok(batches)
    }
}

impl Iterator for GeoJsonReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().map_err(ArrowError::from).transpose()
    }
}

impl RecordBatchReader for GeoJsonReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use arrow_array::Array;

    fn write(name: &str, text: &str) -> (crate::shp::tests::TempDir, PathBuf) {
        let dir = crate::shp::tests::TempDir::new(name);
        let path = dir.0.join(format!("{name}.geojson"));
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const COLLECTION: &str = r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::3857"}},"features":[
        {"type":"Feature","properties":{"n":1,"x":1.5,"s":"a","d":"2024-01-31","o":{"k":[1]}},"geometry":{"type":"Point","coordinates":[1113194.9079327357,0]}},
        {"type":"Feature","properties":{"n":2,"x":2,"s":null,"b":true},"geometry":null}
    ]}"#;

    #[test]
    fn typed_properties_and_crs_member() {
        let (_dir, path) = write("fc", COLLECTION);
        let mut reader = GeoJsonReader::try_new(&path, GeoJsonOptions::default()).unwrap();
        let batch = reader.next_batch().unwrap().unwrap();
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["n", "x", "s", "d", "o", "b", "geometry"]);
        assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(1), 2);
        assert_eq!(batch.column(1).as_primitive::<Float64Type>().value(1), 2.0);
        assert_eq!(schema.field(3).data_type(), &DataType::Date32);
        assert_eq!(batch.column(4).as_string::<i32>().value(0), r#"{"k":[1]}"#);
        assert!(batch.column(6).is_null(1));
        let x = crate::wkb::read_f64(batch.column(6).as_binary::<i32>().value(0), 5, true).unwrap();
        assert!((x - 10.0).abs() < 1e-9, "{x}");
        assert_eq!(schema.metadata()["geo_engine:crs_source"], "member");
        assert!(reader.next_batch().unwrap().is_none());
    }

    #[test]
    fn sequences_and_late_properties() {
        let text = "{\"type\":\"Feature\",\"properties\":{\"a\":1},\"geometry\":null}\n{\"type\":\"Feature\",\"properties\":{\"a\":2,\"late\":true},\"geometry\":null}\n";
        let (_dir, path) = write("seq", text);
        let options = GeoJsonOptions {
            batch_size: 1,
            ..Default::default()
        };
        let mut reader = GeoJsonReader::try_new(&path, options.clone()).unwrap();
        reader.next_batch().unwrap().unwrap();
        let err = reader.next_batch().unwrap_err();
        assert!(err.to_string().contains("feature 2"), "{err}");
        let mut reader = GeoJsonReader::try_new(
            &path,
            GeoJsonOptions {
                infer_from_all: true,
                ..options
            },
        )
        .unwrap();
        let rows: usize = reader
            .read_all()
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 2);
    }

    #[test]
    fn bad_features_name_their_number() {
        let (_dir, path) = write(
            "bad",
            r#"{"features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[0,0]}},{"type":"Feature","geometry":{"type":"Point","coordinates":"x"}}]}"#,
        );
        let err = GeoJsonReader::try_new(&path, GeoJsonOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("bad.geojson, feature 2"), "{err}");
        let (_dir2, path) = write("cut", r#"{"features":[{"type":"Feature","geometry":null}"#);
        assert!(GeoJsonReader::try_new(&path, GeoJsonOptions::default()).is_err());
    }
}
