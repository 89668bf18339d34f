//! Delimited text (CSV, TSV, ...) with point coordinates or WKT, read as Arrow
//! record batches: attributes typed from the first batch, then `geometry` (WKB).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, BooleanArray, RecordBatch, RecordBatchReader};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use csv::ByteRecord;
use rayon::prelude::*;

use crate::columns::{self, TextKind};
use crate::crs::{Crs, TransformerPool};
use crate::error::{Error, Location, Result};
use crate::shp::{geoarrow_metadata, GEOMETRY_COLUMN};
use crate::text_source::TextSource;
use crate::{transform, wkb, wkt};

const X_NAMES: [&str; 6] = ["x", "lon", "lng", "long", "longitude", "easting"];
const Y_NAMES: [&str; 4] = ["y", "lat", "latitude", "northing"];
const WKT_NAMES: [&str; 5] = ["wkt", "geometry", "geom", "the_geom", "wkb_geometry"];

/// What to do with a row whose geometry or values cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRows {
    /// Stop with an error naming the line.
    Fail,
    /// Leave the row out.
    Skip,
}

impl BadRows {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "fail" => Ok(BadRows::Fail),
            "skip" => Ok(BadRows::Skip),
            other => Err(Error::InvalidArgument(format!(
                "on_bad_rows must be \"fail\" or \"skip\", not {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    pub x: Option<String>,
    pub y: Option<String>,
    pub wkt: Option<String>,
    pub delimiter: Option<u8>,
    pub source_crs: String,
    pub target_crs: Option<String>,
    pub batch_size: usize,
    pub on_bad_rows: BadRows,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            x: None,
            y: None,
            wkt: None,
            delimiter: None,
            source_crs: "EPSG:4326".into(),
            target_crs: Some("EPSG:4326".into()),
            batch_size: 65_536,
            on_bad_rows: BadRows::Fail,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GeometrySource {
    Xy(usize, usize),
    Wkt(usize),
}

/// A streaming reader of points (x/y columns) or geometries (a WKT column).
pub struct CsvPointReader {
    path: PathBuf,
    records: csv::Reader<Box<dyn Read + Send + Sync>>,
    field_count: usize,
    geometry: GeometrySource,
    /// (column index, kind) of every attribute column.
    attributes: Vec<(usize, TextKind)>,
    schema: SchemaRef,
    transform: Option<TransformerPool>,
    /// The rows read to infer the types, returned as the first batch.
    pending: Option<Vec<(u64, ByteRecord)>>,
    batch_size: usize,
    on_bad_rows: BadRows,
    skipped: usize,
}

fn find(headers: &[String], name: &str) -> Option<usize> {
    headers
        .iter()
        .position(|h| h == name)
        .or_else(|| headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
}

fn find_any(headers: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|name| headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
}

/// The delimiter used most in the first line, among , ; tab and |.
fn sniff_delimiter(source: &TextSource) -> Result<u8> {
    let head = source.head(64 * 1024)?;
    let first_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let best = [b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|d| first_line.iter().filter(|&&b| b == *d).count())
        .unwrap_or(b',');
    Ok(if first_line.contains(&best) {
        best
    } else {
        b','
    })
}

impl CsvPointReader {
    /// Opens the file at `path`.
    pub fn try_new(path: &Path, options: CsvOptions) -> Result<Self> {
        Self::from_source(TextSource::File(path.to_path_buf()), options)
    }

    /// Opens a file or bytes in memory.
    pub fn from_source(source: TextSource, options: CsvOptions) -> Result<Self> {
        let path = source.path().to_path_buf();
        let path = path.as_path();
        if options.batch_size == 0 {
            return Err(Error::InvalidArgument(
                "batch_size must be at least 1".into(),
            ));
        }
        let delimiter = match options.delimiter {
            Some(d) => d,
            None => sniff_delimiter(&source)?,
        };
        let mut records = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .buffer_capacity(1 << 20)
            .from_reader(source.open()?);
        let header_record = records
            .byte_headers()
            .map_err(|err| {
                Error::format(
                    Location::line(path, 1),
                    format!("cannot read the header: {err}"),
                )
            })?
            .clone();
        let headers: Vec<String> = header_record
            .iter()
            .map(|h| {
                std::str::from_utf8(h)
                    .map(|s| s.trim().to_string())
                    .map_err(|_| {
                        Error::encoding(Location::line(path, 1), "the header is not valid UTF-8")
                    })
            })
            .collect::<Result<_>>()?;
        let missing = |name: &str| {
            Error::InvalidArgument(format!(
                "{}: no column {name:?} (columns: {})",
                path.display(),
                headers.join(", ")
            ))
        };
        let geometry = match (&options.wkt, &options.x, &options.y) {
            (Some(w), None, None) => {
                GeometrySource::Wkt(find(&headers, w).ok_or_else(|| missing(w))?)
            }
            (None, Some(x), Some(y)) => GeometrySource::Xy(
                find(&headers, x).ok_or_else(|| missing(x))?,
                find(&headers, y).ok_or_else(|| missing(y))?,
            ),
            (None, None, None) => {
                if let Some(w) = find_any(&headers, &WKT_NAMES) {
                    GeometrySource::Wkt(w)
                } else if let (Some(x), Some(y)) =
                    (find_any(&headers, &X_NAMES), find_any(&headers, &Y_NAMES))
                {
                    GeometrySource::Xy(x, y)
                } else {
                    return Err(Error::format(
                        Location::file(path),
                        format!(
                            "no geometry columns found among {}: pass x= and y=, or wkt=",
                            headers.join(", ")
                        ),
                    ));
                }
            }
            _ => {
                return Err(Error::InvalidArgument(
                    "pass both x= and y=, or wkt= alone".into(),
                ))
            }
        };
        let source = Crs::parse(&options.source_crs, "source_crs")?;
        let (crs, transform) = match &options.target_crs {
            Some(target) => {
                let target = Crs::parse(target, "target_crs")?;
                let pool = TransformerPool::new(&source, &target)?;
                (target, pool)
            }
            None => (source.clone(), None),
        };
        let geometry_columns: Vec<usize> = match geometry {
            GeometrySource::Xy(x, y) => vec![x, y],
            GeometrySource::Wkt(w) => vec![w],
        };
        let mut reader = Self {
            path: path.to_path_buf(),
            records,
            field_count: headers.len(),
            geometry,
            attributes: Vec::new(),
            schema: Arc::new(Schema::empty()),
            transform,
            pending: None,
            batch_size: options.batch_size,
            on_bad_rows: options.on_bad_rows,
            skipped: 0,
        };
        // The first batch decides the attribute types.
        let first = reader.read_rows()?;
        let mut fields = Vec::new();
        for (index, name) in headers.iter().enumerate() {
            if geometry_columns.contains(&index) {
                continue;
            }
            let kind = columns::infer(
                first
                    .iter()
                    .filter_map(|(_, record)| record.get(index))
                    .filter_map(|v| std::str::from_utf8(v).ok()),
            );
            reader.attributes.push((index, kind));
            fields.push(Field::new(name.clone(), kind.data_type(), true));
        }
        fields.push(
            Field::new(GEOMETRY_COLUMN, DataType::Binary, true)
                .with_metadata(geoarrow_metadata(&crs)),
        );
        let metadata = HashMap::from([(
            "geo_engine:source_crs".to_string(),
            source.label().to_string(),
        )]);
        reader.schema = Arc::new(Schema::new_with_metadata(fields, metadata));
        reader.pending = Some(first);
        Ok(reader)
    }

    /// Rows left out so far (with `on_bad_rows="skip"`).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    fn read_rows(&mut self) -> Result<Vec<(u64, ByteRecord)>> {
        let mut rows = Vec::with_capacity(self.batch_size.min(1 << 16));
        let mut record = ByteRecord::new();
        while rows.len() < self.batch_size {
            let more = self.records.read_byte_record(&mut record).map_err(|err| {
                let line = err.position().map_or(0, |p| p.line());
                Error::format(
                    Location::line(&self.path, line),
                    format!("cannot read the row: {err}"),
                )
            })?;
            if !more {
                break;
            }
            let line = record.position().map_or(0, |p| p.line());
            rows.push((line, record.clone()));
        }
        Ok(rows)
    }

    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            let rows = match self.pending.take() {
                Some(rows) => rows,
                None => self.read_rows()?,
            };
            if rows.is_empty() {
                return Ok(None);
            }
            if let Some(batch) = self.build(&rows)? {
                return Ok(Some(batch));
            }
        }
    }

    fn bad_row(&self, line: u64, message: String) -> Error {
        Error::format(Location::line(&self.path, line), message)
    }

    /// The geometry column, with per-row problems.
    fn build_geometry(
        &self,
        rows: &[(u64, ByteRecord)],
    ) -> Result<(ArrayRef, Vec<(usize, String)>)> {
        let mut problems = Vec::new();
        match self.geometry {
            GeometrySource::Xy(xi, yi) => {
                let mut xs = Vec::with_capacity(rows.len());
                let mut ys = Vec::with_capacity(rows.len());
                let mut present = Vec::with_capacity(rows.len());
                for (row, (_, record)) in rows.iter().enumerate() {
                    let text = |i: usize| {
                        record
                            .get(i)
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .map(str::trim)
                    };
                    match (text(xi), text(yi)) {
                        (Some(""), Some("")) | (None, None) => present.push(false),
                        (Some(x), Some(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
                            (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
                                xs.push(x);
                                ys.push(y);
                                present.push(true);
                            }
                            _ => {
                                problems.push((
                                    row,
                                    format!("coordinates ({x:?}, {y:?}) are not numbers"),
                                ));
                                present.push(false);
                            }
                        },
                        _ => {
                            problems.push((row, "one coordinate is missing".to_string()));
                            present.push(false);
                        }
                    }
                }
                if let Some(pool) = &self.transform {
                    transform::transform_arrays(pool, &mut xs, &mut ys, None)?;
                }
                let mut values = Vec::with_capacity(xs.len() * 21);
                let mut offsets = Vec::with_capacity(rows.len() + 1);
                offsets.push(0i32);
                let mut coords = xs.iter().zip(&ys);
                for &has in &present {
                    if has {
                        if let Some((&x, &y)) = coords.next() {
                            wkb::write_header(&mut values, wkb::POINT, false);
                            wkb::write_f64(&mut values, x);
                            wkb::write_f64(&mut values, y);
                        }
                    }
                    offsets.push(
                        i32::try_from(values.len())
                            .map_err(|_| Error::InvalidArgument("batch too large".into()))?,
                    );
                }
                let array = BinaryArray::try_new(
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    Buffer::from_vec(values),
                    Some(NullBuffer::from(present)),
                )?;
                Ok((Arc::new(array), problems))
            }
            GeometrySource::Wkt(wi) => {
                let parsed: Vec<std::result::Result<Option<Vec<u8>>, String>> = rows
                    .par_iter()
                    .map(|(_, record)| {
                        let Some(text) = record.get(wi) else {
                            return Ok(None);
                        };
                        let text = std::str::from_utf8(text)
                            .map_err(|_| "the WKT is not valid UTF-8".to_string())?;
                        if text.trim().is_empty() {
                            return Ok(None);
                        }
                        let mut out = Vec::with_capacity(text.len() / 2);
                        wkt::to_wkb(text, &mut out).map_err(|m| format!("invalid WKT: {m}"))?;
                        Ok(Some(out))
                    })
                    .collect();
                let mut values: Vec<Option<Vec<u8>>> = Vec::with_capacity(rows.len());
                for (row, item) in parsed.into_iter().enumerate() {
                    match item {
                        Ok(v) => values.push(v),
                        Err(message) => {
                            problems.push((row, message));
                            values.push(None);
                        }
                    }
                }
                let array = BinaryArray::from_iter(values.iter().map(|v| v.as_deref()));
                let array = transform::transform_wkb_array(&array, self.transform.as_ref())?;
                Ok((Arc::new(array), problems))
            }
        }
    }

    fn build(&mut self, rows: &[(u64, ByteRecord)]) -> Result<Option<RecordBatch>> {
        let mut problems: Vec<(usize, String)> = rows
            .iter()
            .enumerate()
            .filter(|(_, (_, record))| record.len() != self.field_count)
            .map(|(row, (_, record))| {
                (
                    row,
                    format!(
                        "{} fields, the header has {}",
                        record.len(),
                        self.field_count
                    ),
                )
            })
            .collect();
        let (geometry, attributes) = rayon::join(
            || self.build_geometry(rows),
            || {
                self.attributes
                    .par_iter()
                    .map(|&(index, kind)| {
                        let mut invalid = Vec::new();
                        let texts: Vec<Option<&str>> = rows
                            .iter()
                            .enumerate()
                            .map(|(row, (_, record))| {
                                let raw = record.get(index)?;
                                match std::str::from_utf8(raw) {
                                    Ok(text) => Some(text),
                                    Err(_) => {
                                        invalid.push(row);
                                        None
                                    }
                                }
                            })
                            .collect();
                        let (array, misfits) = columns::build(kind, texts.into_iter());
                        (array, kind, index, invalid, misfits)
                    })
                    .collect::<Vec<_>>()
            },
        );
        let (geometry, geometry_problems) = geometry?;
        problems.extend(geometry_problems);
        let mut columns = Vec::with_capacity(attributes.len() + 1);
        for ((array, kind, index, invalid, misfits), field) in
            attributes.into_iter().zip(self.schema.fields().iter())
        {
            problems.extend(
                invalid
                    .into_iter()
                    .map(|row| (row, format!("column {:?} is not valid UTF-8", field.name()))),
            );
            problems.extend(misfits.into_iter().map(|row| {
                let value = rows
                    .get(row)
                    .and_then(|(_, r)| r.get(index))
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                (
                    row,
                    format!(
                        "column {:?}: {value:?} is not {:?} (the type seen in the first batch)",
                        field.name(),
                        kind
                    ),
                )
            }));
            columns.push(array);
        }
        columns.push(geometry);
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        if problems.is_empty() {
            return Ok(Some(batch));
        }
        problems.sort_by_key(|(row, _)| *row);
        match self.on_bad_rows {
            BadRows::Fail => {
                let (row, message) = problems.swap_remove(0);
                let line = rows.get(row).map_or(0, |(line, _)| *line);
                Err(self.bad_row(line, message))
            }
            BadRows::Skip => {
                let mut keep = vec![true; rows.len()];
                for (row, _) in &problems {
                    if let Some(slot) = keep.get_mut(*row) {
                        *slot = false;
                    }
                }
                let kept = keep.iter().filter(|&&k| k).count();
                self.skipped += rows.len() - kept;
                if kept == 0 {
                    return Ok(None);
                }
                let mask = BooleanArray::from(keep);
                Ok(Some(arrow_select::filter::filter_record_batch(
                    &batch, &mask,
                )?))
            }
        }
    }
}

impl Iterator for CsvPointReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().map_err(ArrowError::from).transpose()
    }
}

impl RecordBatchReader for CsvPointReader {
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
        let path = dir.0.join(format!("{name}.csv"));
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn points_with_typed_attributes() {
        let (_dir, path) = write(
            "pts",
            "id;name;lon;lat;score\n1;a;10;0;1.5\n2;;11;1;\n3;c;;;2\n",
        );
        let mut reader = CsvPointReader::try_new(
            &path,
            CsvOptions {
                target_crs: Some("EPSG:3857".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let batch = reader.next_batch().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.schema().field(0).data_type(), &DataType::Int64);
        assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(2), 3);
        assert_eq!(batch.column(1).as_string::<i32>().value(1), "");
        assert!(batch.column(2).as_primitive::<Float64Type>().is_null(1));
        let geometry = batch.column(3).as_binary::<i32>();
        assert!(geometry.is_null(2));
        let x = wkb::read_f64(geometry.value(0), 5, true).unwrap();
        assert!((x - 1_113_194.907_932_735_7).abs() < 1e-6);
        assert!(reader.next_batch().unwrap().is_none());
    }

    #[test]
    fn bad_rows_fail_or_skip() {
        let text = "x,y,n\n1,2,3\n1,oops,4\n5,6,seven\n7,8,9\n";
        let (_dir, path) = write("bad", text);
        let options = CsvOptions {
            batch_size: 2,
            ..Default::default()
        };
        let mut reader = CsvPointReader::try_new(&path, options.clone()).unwrap();
        let err = reader.next_batch().unwrap_err();
        assert!(err.to_string().contains("bad.csv, line 3"), "{err}");
        let mut reader = CsvPointReader::try_new(
            &path,
            CsvOptions {
                on_bad_rows: BadRows::Skip,
                ..options
            },
        )
        .unwrap();
        let rows: usize = std::iter::from_fn(|| reader.next_batch().unwrap())
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows, 2);
        assert_eq!(reader.skipped(), 2);
    }

    #[test]
    fn wkt_column() {
        let (_dir, path) = write(
            "wkt",
            "name\tWKT\na\tPOINT (1 2)\nb\t\"LINESTRING (0 0, 1 1)\"\nc\t\n",
        );
        let mut reader = CsvPointReader::try_new(&path, CsvOptions::default()).unwrap();
        let batch = reader.next_batch().unwrap().unwrap();
        assert_eq!(batch.num_columns(), 2);
        let geometry = batch.column(1).as_binary::<i32>();
        assert_eq!(
            wkb::peek_type(geometry.value(1)).unwrap().base,
            wkb::LINESTRING
        );
        assert!(geometry.is_null(2));
    }

    #[test]
    fn bytes_in_memory() {
        let source = TextSource::memory("mem.csv", b"x|y|n\n1|2|3\n1|oops|x\n".to_vec());
        let mut reader = CsvPointReader::from_source(source, CsvOptions::default()).unwrap();
        let err = reader.next_batch().unwrap_err();
        assert!(err.to_string().contains("mem.csv, line 3"), "{err}");
    }

    #[test]
    fn no_geometry_columns() {
        let (_dir, path) = write("none", "a,b\n1,2\n");
        assert!(CsvPointReader::try_new(&path, CsvOptions::default()).is_err());
    }
}
