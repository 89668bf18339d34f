//! Delimited text (CSV, TSV, ...) with point coordinates or WKT, read as Arrow
//! record batches: attributes typed from the first batch, then `geometry` (WKB).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use csv::ByteRecord;

use crate::columns;
use crate::crs::{Crs, TransformerPool};
use crate::csv_build::{BatchBuilder, GeometrySource};
use crate::csv_rows::RowBlock;
use crate::error::{Error, Location, Result};
use crate::shp::{geoarrow_metadata, GEOMETRY_COLUMN};
use crate::text_source::TextSource;

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

/// A streaming reader of points (x/y columns) or geometries (a WKT column).
pub struct CsvPointReader {
    path: PathBuf,
    records: csv::Reader<Box<dyn Read + Send + Sync>>,
    builder: BatchBuilder,
    /// The rows read ahead: the first batch (read to infer the types), then the one
    /// read while the previous was built (or the error reading it).
    pending: Option<Result<RowBlock>>,
    spare: RowBlock,
    record: ByteRecord,
    batch_size: usize,
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
        let mut records = records;
        let mut record = ByteRecord::new();
        // The first batch decides the attribute types.
        let first = read_rows(
            &mut records,
            &mut record,
            RowBlock::default(),
            options.batch_size,
            path,
        )?;
        let mut attributes = Vec::new();
        let mut fields = Vec::new();
        for (index, name) in headers.iter().enumerate() {
            if geometry_columns.contains(&index) {
                continue;
            }
            let kind = columns::infer((0..first.len()).filter_map(|row| first.text(row, index)));
            attributes.push((index, kind));
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
        Ok(Self {
            path: path.to_path_buf(),
            records,
            builder: BatchBuilder {
                path: path.to_path_buf(),
                field_count: headers.len(),
                geometry,
                attributes,
                schema: Arc::new(Schema::new_with_metadata(fields, metadata)),
                transform,
                on_bad_rows: options.on_bad_rows,
            },
            pending: Some(Ok(first)),
            spare: RowBlock::default(),
            record,
            batch_size: options.batch_size,
            skipped: 0,
        })
    }

    /// Rows left out so far (with `on_bad_rows="skip"`).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The next batch; the rows of the one after it are read while it is built.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            let block = match self.pending.take() {
                Some(block) => block?,
                None => read_rows(
                    &mut self.records,
                    &mut self.record,
                    std::mem::take(&mut self.spare),
                    self.batch_size,
                    &self.path,
                )?,
            };
            if block.is_empty() {
                return Ok(None);
            }
            let Self {
                records,
                record,
                spare,
                builder,
                batch_size,
                path,
                ..
            } = self;
            let (ahead, built) = rayon::join(
                || read_rows(records, record, std::mem::take(spare), *batch_size, path),
                || builder.build(&block),
            );
            self.pending = Some(ahead);
            self.spare = block;
            let (batch, skipped) = built?;
            self.skipped += skipped;
            if let Some(batch) = batch {
                return Ok(Some(batch));
            }
        }
    }
}

/// Reads up to `batch_size` rows into `block` (emptied first).
fn read_rows(
    records: &mut csv::Reader<Box<dyn Read + Send + Sync>>,
    record: &mut ByteRecord,
    mut block: RowBlock,
    batch_size: usize,
    path: &Path,
) -> Result<RowBlock> {
    block.clear();
    while block.len() < batch_size {
        let more = records.read_byte_record(record).map_err(|err| {
            let line = err.position().map_or(0, |p| p.line());
            Error::format(
                Location::line(path, line),
                format!("cannot read the row: {err}"),
            )
        })?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        block.push(record, line);
    }
    block.finish();
    Ok(block)
}

impl Iterator for CsvPointReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().map_err(ArrowError::from).transpose()
    }
}

impl RecordBatchReader for CsvPointReader {
    fn schema(&self) -> SchemaRef {
        self.builder.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wkb;
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
