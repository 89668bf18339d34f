//! One-pass summaries of files by path (`infer_metadata(path)`): the file is read by
//! the reader its extension calls for, without reprojection, and every batch folded
//! into a [`MetadataBuilder`].

use std::path::Path;

use arrow_array::RecordBatchReader;
use serde_json::{json, Value};

use crate::csv_points::{CsvOptions, CsvPointReader};
use crate::error::{Error, Location, Result};
use crate::geojson::{GeoJsonOptions, GeoJsonReader};
use crate::metadata::MetadataBuilder;
use crate::shp::source::has_extension;
use crate::shp::{ShapefileOptions, ShapefileReader};

/// What a path summary may be told about the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InspectOptions {
    /// The shapefile of a .zip holding several.
    pub layer: Option<String>,
    /// Overrides a shapefile's .cpg / DBF language byte.
    pub encoding: Option<String>,
    /// Overrides the file's own CRS (.prj, crs member; EPSG:4326 for CSV).
    pub source_crs: Option<String>,
    /// CSV geometry columns and delimiter (found by name otherwise).
    pub x: Option<String>,
    pub y: Option<String>,
    pub wkt: Option<String>,
    pub delimiter: Option<u8>,
}

/// The file formats told apart by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Shapefile,
    Csv,
    GeoJson,
}

impl Format {
    /// The format of `path` by its extension (any case).
    pub fn of(path: &Path) -> Result<Self> {
        let is = |exts: &[&str]| exts.iter().any(|ext| has_extension(path, ext));
        if is(&["shp", "zip"]) {
            Ok(Format::Shapefile)
        } else if is(&["csv", "tsv", "txt"]) {
            Ok(Format::Csv)
        } else if is(&[
            "geojson",
            "json",
            "geojsonl",
            "geojsons",
            "geojsonseq",
            "ndjson",
            "jsonl",
        ]) {
            Ok(Format::GeoJson)
        } else {
            Err(Error::format(
                Location::file(path),
                "unknown format: expected a .shp, .zip, .csv, .tsv, .txt, .geojson, .json, .geojsonl or .ndjson file",
            ))
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Format::Shapefile => "shapefile",
            Format::Csv => "csv",
            Format::GeoJson => "geojson",
        }
    }
}

fn fold(reader: impl RecordBatchReader) -> Result<Value> {
    let mut builder = MetadataBuilder::new(reader.schema());
    let schema = reader.schema();
    for batch in reader {
        builder.add(&batch.map_err(Error::from)?)?;
    }
    let mut summary = builder.finish();
    if let Value::Object(map) = &mut summary {
        let metadata: serde_json::Map<String, Value> = schema
            .metadata()
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        map.insert("metadata".into(), Value::Object(metadata));
    }
    Ok(summary)
}

/// Summarises the file at `path`: what [`MetadataBuilder::finish`] gives, plus
/// `format` and the reader's schema `metadata` (CRS source, encoding).
pub fn summarise_path(path: &Path, options: InspectOptions) -> Result<Value> {
    let format = Format::of(path)?;
    let mut summary = match format {
        Format::Shapefile => fold(ShapefileReader::try_new(
            path,
            ShapefileOptions {
                encoding: options.encoding,
                source_crs: options.source_crs,
                target_crs: None,
                layer: options.layer,
                ..Default::default()
            },
        )?)?,
        Format::Csv => {
            let defaults = CsvOptions::default();
            fold(CsvPointReader::try_new(
                path,
                CsvOptions {
                    x: options.x,
                    y: options.y,
                    wkt: options.wkt,
                    delimiter: options.delimiter,
                    source_crs: options.source_crs.unwrap_or(defaults.source_crs),
                    target_crs: None,
                    ..defaults
                },
            )?)?
        }
        Format::GeoJson => fold(GeoJsonReader::try_new(
            path,
            GeoJsonOptions {
                source_crs: options.source_crs,
                target_crs: None,
                ..Default::default()
            },
        )?)?,
    };
    if let Value::Object(map) = &mut summary {
        map.insert("format".into(), json!(format.name()));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("a/B.SHP")).unwrap(), Format::Shapefile);
        assert_eq!(
            Format::of(Path::new("x.geojsonl")).unwrap(),
            Format::GeoJson
        );
        assert_eq!(Format::of(Path::new("x.tsv")).unwrap(), Format::Csv);
        assert!(Format::of(Path::new("x.gpkg")).is_err());
    }

    #[test]
    fn summarises_a_geojson_file() {
        let dir = crate::shp::tests::TempDir::new("inspect");
        let path = dir.0.join("f.geojson");
        std::fs::write(
            &path,
            r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"EPSG:27700"}},"features":[
            {"type":"Feature","properties":{"n":1},"geometry":{"type":"Point","coordinates":[530000,180000]}},
            {"type":"Feature","properties":{"n":5},"geometry":{"type":"LineString","coordinates":[[1,2],[3,4]]}}]}"#,
        )
        .unwrap();
        let summary = summarise_path(&path, InspectOptions::default()).unwrap();
        assert_eq!(summary["format"], "geojson");
        assert_eq!(summary["feature_count"], 2);
        assert_eq!(summary["geometry_types"], json!(["LineString", "Point"]));
        assert_eq!(summary["bbox"], json!([1.0, 2.0, 530000.0, 180000.0]));
        assert_eq!(summary["crs"]["epsg"], 27700);
        assert_eq!(summary["crs"]["authority"], "EPSG:27700");
        assert_eq!(summary["columns"][0]["max"], 5);
        assert_eq!(summary["metadata"]["geo_engine:crs_source"], "member");
    }
}
