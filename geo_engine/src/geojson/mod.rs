//! GeoJSON (a FeatureCollection, newline-delimited features, or one feature) read as
//! Arrow record batches. A first pass (`schema`) classifies every feature's id and
//! properties, so the column types hold for the whole file and the 2008 `crs` member
//! is known wherever it is; the second pass parses batches of features in parallel
//! straight into typed columns and WKB (`feature`), reprojected from the `crs` member
//! or the given CRS. Memory stays bounded by one batch of features.

pub mod feature;
pub mod json;
pub mod scan;
pub mod schema;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BinaryArray, RecordBatch, RecordBatchReader};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;
use serde_json::Value;

use crate::crs::{Crs, TransformerPool};
use crate::error::{Error, Location, Result};
use crate::shp::{geoarrow_metadata, GEOMETRY_COLUMN};
use crate::text_source::TextSource;
use crate::transform;
use feature::{Builder, Problem, Rows};
use scan::{FeatureBatch, Feeder, Filled};
pub use schema::PropertyKind;
use schema::{Inferred, Layout};

/// Features parsed per rayon task.
const CHUNK: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct GeoJsonOptions {
    /// Overrides the `crs` member; without either, EPSG:4326 (RFC 7946).
    pub source_crs: Option<String>,
    pub target_crs: Option<String>,
    pub batch_size: usize,
}

impl Default for GeoJsonOptions {
    fn default() -> Self {
        Self {
            source_crs: None,
            target_crs: Some("EPSG:4326".into()),
            batch_size: 65_536,
        }
    }
}

/// The CRS of a 2008 `crs` member; `None` for `"crs": null` (no CRS given).
fn crs_from_member(json: &[u8], context: &str) -> Result<Option<Crs>> {
    let value: Value = serde_json::from_slice(json)
        .map_err(|err| Error::crs(context, format!("invalid crs member: {err}")))?;
    if value.is_null() {
        return Ok(None);
    }
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
    Crs::parse(&definition, context).map(Some)
}

/// The source CRS from the crs members of the file (all must agree), if any.
fn crs_from_members(members: &[Vec<u8>], path: &Path) -> Result<Option<Crs>> {
    let context = format!("{} (crs member)", path.display());
    let mut found: Option<Crs> = None;
    for member in members {
        let Some(crs) = crs_from_member(member, &context)? else {
            continue;
        };
        match &found {
            None => found = Some(crs),
            Some(first) if !first.equivalent(&crs)? => {
                return Err(Error::crs(
                    context,
                    format!(
                        "the file's crs members disagree ({} and {}); pass source_crs",
                        first.label(),
                        crs.label()
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(found)
}

/// A streaming GeoJSON reader.
pub struct GeoJsonReader {
    feeder: Feeder<Box<dyn Read + Send + Sync>>,
    parser: Parser,
    /// The batch read ahead while the last one was parsed (or its error).
    ahead: Option<Result<Filled>>,
    spare: FeatureBatch,
    done: bool,
    feature_count: u64,
}

/// What turns feature texts into record batches.
struct Parser {
    path: PathBuf,
    layout: Layout,
    schema: SchemaRef,
    transform: Option<TransformerPool>,
}

impl GeoJsonReader {
    /// Opens the file at `path`.
    pub fn try_new(path: &Path, options: GeoJsonOptions) -> Result<Self> {
        Self::from_source(TextSource::File(path.to_path_buf()), options)
    }

    /// Opens a file or bytes in memory: runs the schema pass over all of it.
    pub fn from_source(source: TextSource, options: GeoJsonOptions) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(Error::InvalidArgument(
                "batch_size must be at least 1".into(),
            ));
        }
        let inferred: Inferred = schema::infer(&source, options.batch_size)?;
        let path = source.path();
        let (source_crs, crs_source) = match &options.source_crs {
            Some(definition) => (Crs::parse(definition, "source_crs")?, "argument"),
            None => match crs_from_members(&inferred.crs, path)? {
                Some(crs) => (crs, "member"),
                None => (Crs::wgs84()?, "default"),
            },
        };
        let (crs, transform) = match &options.target_crs {
            Some(target) => {
                let target = Crs::parse(target, "target_crs")?;
                let pool = TransformerPool::new(&source_crs, &target)?;
                (target, pool)
            }
            None => (source_crs.clone(), None),
        };
        let layout = inferred.layout();
        let mut fields = layout.fields();
        fields.push(
            Field::new(GEOMETRY_COLUMN, DataType::Binary, true)
                .with_metadata(geoarrow_metadata(&crs)),
        );
        let metadata = HashMap::from([
            ("geo_engine:crs_source".to_string(), crs_source.to_string()),
            (
                "geo_engine:source_crs".to_string(),
                source_crs.label().to_string(),
            ),
            (
                "geo_engine:feature_count".to_string(),
                inferred.features.to_string(),
            ),
        ]);
        let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
        Ok(Self {
            feeder: Feeder::new(source.open()?, path, options.batch_size),
            parser: Parser {
                path: path.to_path_buf(),
                layout,
                schema,
                transform,
            },
            ahead: None,
            spare: FeatureBatch::default(),
            done: false,
            feature_count: inferred.features,
        })
    }

    /// How many features the file holds (counted by the schema pass).
    pub fn feature_count(&self) -> u64 {
        self.feature_count
    }

    /// The next batch; the one after it is scanned while this one is parsed.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.done {
            return Ok(None);
        }
        let current = match self.ahead.take() {
            Some(filled) => filled,
            None => self.feeder.next(std::mem::take(&mut self.spare)),
        };
        let current = current.inspect_err(|_| self.done = true)?;
        if current.batch.is_empty() {
            self.done = true;
            return Ok(None);
        }
        let Self {
            feeder,
            parser,
            spare,
            ..
        } = self;
        let fetch = !feeder.exhausted();
        let (ahead, batch) = rayon::join(
            || fetch.then(|| feeder.next(std::mem::take(spare))),
            || parser.parse(&current),
        );
        self.ahead = ahead;
        self.spare = current.batch;
        batch.inspect_err(|_| self.done = true).map(Some)
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

impl Parser {
    fn parse(&self, filled: &Filled) -> Result<RecordBatch> {
        let text = filled
            .batch
            .utf8()
            .map_err(|i| schema::not_utf8(&self.path, filled.first_number + i as u64))?;
        let parts = filled
            .batch
            .spans
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(chunk, spans)| {
                self.parse_chunk(text, spans, filled.first_number + (chunk * CHUNK) as u64)
            })
            .collect::<Result<Vec<_>>>()?;
        self.assemble(parts)
    }

    /// Parses features into columns (the attribute arrays and the geometry).
    fn parse_chunk(
        &self,
        text: &str,
        spans: &[(usize, usize)],
        first_number: u64,
    ) -> Result<(Vec<ArrayRef>, BinaryArray)> {
        let path = self.path.as_path();
        let mut rows = Rows::new(&self.layout, spans.len());
        let mut scratch = Vec::with_capacity(self.layout.len());
        for (i, &(start, end)) in spans.iter().enumerate() {
            let number = first_number + i as u64;
            let text = text.get(start..end).unwrap_or_default();
            rows.add(text, &mut scratch).map_err(|problem| {
                let location = Location::feature(path, number);
                match problem {
                    Problem::Invalid(message) => Error::format(location, message),
                    Problem::Misfit { column, value } => Error::format(
                        location,
                        format!(
                            "{} {value} does not fit the column's type {:?} (did the file change while being read?)",
                            self.layout.name(column),
                            self.layout.kind(column)
                        ),
                    ),
                }
            })?;
        }
        let columns = rows.builders.iter_mut().map(Builder::finish).collect();
        let Rows {
            mut wkb,
            wkb_ends,
            valid,
            ..
        } = rows;
        if let Some(pool) = &self.transform {
            let mut start = 0;
            let spans: Vec<Option<(usize, usize)>> = wkb_ends
                .iter()
                .zip(&valid)
                .map(|(&end, &ok)| {
                    let span = ok.then_some((start, end));
                    start = end;
                    span
                })
                .collect();
            transform::transform_wkb_in_place(
                &mut wkb,
                &spans,
                Some(pool),
                usize::try_from(first_number).unwrap_or(usize::MAX),
                &|number| Location::feature(path, number as u64).to_string(),
            )?;
        }
        let mut offsets = Vec::with_capacity(wkb_ends.len() + 1);
        offsets.push(0i32);
        for end in wkb_ends {
            offsets.push(i32::try_from(end).map_err(|_| {
                Error::format(
                    Location::feature(path, first_number),
                    "more than 2 GiB of geometry in one chunk",
                )
            })?);
        }
        let nulls = (!valid.iter().all(|&v| v)).then(|| NullBuffer::from(valid));
        let geometry = BinaryArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(wkb),
            nulls,
        )?;
        Ok((columns, geometry))
    }

    /// One record batch from the chunks' columns.
    fn assemble(&self, parts: Vec<(Vec<ArrayRef>, BinaryArray)>) -> Result<RecordBatch> {
        let mut columns = Vec::with_capacity(self.layout.len() + 1);
        for column in 0..self.layout.len() {
            let arrays: Vec<&dyn Array> = parts
                .iter()
                .filter_map(|(columns, _)| columns.get(column).map(|a| a.as_ref() as &dyn Array))
                .collect();
            columns.push(concat(&arrays)?);
        }
        let geometries: Vec<&dyn Array> = parts.iter().map(|(_, g)| g as &dyn Array).collect();
        columns.push(concat(&geometries)?);
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// One array from several of the same type (the one itself when alone).
fn concat(arrays: &[&dyn Array]) -> Result<ArrayRef> {
    match arrays {
        [one] => Ok(one.slice(0, one.len())),
        _ => Ok(arrow_select::concat::concat(arrays)?),
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
        self.parser.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use arrow_array::Array;
    use std::path::PathBuf;

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
        // Types come from every feature, so a property first seen in a later batch, or
        // an int that becomes a float, is fine when streaming in small batches.
        let text = "{\"type\":\"Feature\",\"id\":\"a\",\"properties\":{\"a\":1},\"geometry\":null}\n\u{1e}{\"type\":\"Feature\",\"properties\":{\"a\":2.5,\"late\":true},\"geometry\":null}\n";
        let (_dir, path) = write("seq", text);
        let options = GeoJsonOptions {
            batch_size: 1,
            ..Default::default()
        };
        let mut reader = GeoJsonReader::try_new(&path, options).unwrap();
        assert_eq!(reader.feature_count(), 2);
        assert_eq!(reader.schema().metadata()["geo_engine:feature_count"], "2");
        let batches = reader.read_all().unwrap();
        assert_eq!(batches.len(), 2);
        let schema = batches[0].schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "a", "late", "geometry"]);
        assert_eq!(
            batches[1].column(1).as_primitive::<Float64Type>().value(0),
            2.5
        );
        assert!(batches[1].column(0).is_null(0));
        assert!(batches[0].column(2).is_null(0));
    }

    #[test]
    fn crs_members_anywhere() {
        let text = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[1113194.9079327357,0]}}],"crs":{"type":"EPSG","properties":{"code":3857}}}"#;
        let (_dir, path) = write("late_crs", text);
        let mut reader = GeoJsonReader::try_new(&path, GeoJsonOptions::default()).unwrap();
        let batch = reader.next_batch().unwrap().unwrap();
        let x = crate::wkb::read_f64(batch.column(0).as_binary::<i32>().value(0), 5, true).unwrap();
        assert!((x - 10.0).abs() < 1e-9, "{x}");
        let text = r#"{"type":"FeatureCollection","crs":null,"features":[]}"#;
        let (_dir2, path) = write("null_crs", text);
        let reader = GeoJsonReader::try_new(&path, GeoJsonOptions::default()).unwrap();
        assert_eq!(
            reader.schema().metadata()["geo_engine:crs_source"],
            "default"
        );
        let text = r#"{"crs":{"type":"EPSG","properties":{"code":3857}},"features":[]}
{"crs":{"type":"EPSG","properties":{"code":27700}},"features":[]}"#;
        let (_dir3, path) = write("two_crs", text);
        let err = GeoJsonReader::try_new(&path, GeoJsonOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("disagree"), "{err}");
    }

    #[test]
    fn from_memory_and_in_parallel_chunks() {
        let features: Vec<String> = (0..10_000)
            .map(|i| format!(r#"{{"type":"Feature","properties":{{"i":{i}}},"geometry":{{"type":"Point","coordinates":[{},1]}}}}"#, i % 100))
            .collect();
        let text = format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            features.join(",")
        );
        let source = TextSource::memory("mem.geojson", text.into_bytes());
        let options = GeoJsonOptions {
            target_crs: Some("EPSG:3857".into()),
            ..Default::default()
        };
        let mut reader = GeoJsonReader::from_source(source, options).unwrap();
        let batch = reader.next_batch().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 10_000);
        let ids = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(ids.value(9_999), 9_999);
        let x =
            crate::wkb::read_f64(batch.column(1).as_binary::<i32>().value(10), 5, true).unwrap();
        assert!((x - 1_113_194.907_932_735_7).abs() < 1e-6, "{x}");
    }

    #[test]
    fn bad_features_name_their_number() {
        let (_dir, path) = write(
            "bad",
            r#"{"features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[0,0]}},{"type":"Feature","geometry":{"type":"Point","coordinates":"x"}}]}"#,
        );
        // Geometries are read in the second pass: the batch fails.
        let mut reader = GeoJsonReader::try_new(&path, GeoJsonOptions::default()).unwrap();
        let err = reader.next_batch().unwrap_err();
        assert!(err.to_string().contains("bad.geojson, feature 2"), "{err}");
        // Broken JSON in the properties is found by the schema pass.
        let (_dir1, path) = write(
            "props",
            r#"{"features":[{"type":"Feature","properties":{"a":1}},{"type":"Feature","properties":{"a":01}}]}"#,
        );
        let err = GeoJsonReader::try_new(&path, GeoJsonOptions::default())
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("props.geojson, feature 2"),
            "{err}"
        );
        let (_dir2, path) = write("cut", r#"{"features":[{"type":"Feature","geometry":null}"#);
        let err = GeoJsonReader::try_new(&path, GeoJsonOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("cut.geojson, feature 2"), "{err}");
    }
}
