//! Delimited text (CSV, TSV, ...) with point coordinates or WKT, read as Arrow
//! record batches: attributes typed by a pre-pass over the whole file, then
//! `geometry` (WKB).

use std::collections::HashMap;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use csv::ByteRecord;
use serde_json::Value;

use crate::columns::{Inference, TextKind};
use crate::crs::{Crs, TransformerPool};
use crate::csv_build::{BatchBuilder, GeometrySource};
use crate::csv_rows::RowBlock;
use crate::error::{Error, Location, Result};
use crate::shp::{geoarrow_metadata, GEOMETRY_COLUMN};
use crate::text_source::{open_file, TextSource};

const X_NAMES: [&str; 6] = ["x", "lon", "lng", "long", "longitude", "easting"];
const Y_NAMES: [&str; 4] = ["y", "lat", "latitude", "northing"];
const WKT_NAMES: [&str; 5] = ["wkt", "geometry", "geom", "the_geom", "wkb_geometry"];

/// Records the type pre-pass reads per block (one block is checked while the next is
/// read).
const PREPASS_ROWS: usize = 16_384;
/// Sources from this size on are typed in two halves at once (see [`infer_kinds`]).
const SPLIT_MIN_BYTES: u64 = 4 << 20;
/// Records between two checks of whether every column is text already.
const TEXT_CHECK_EVERY: usize = 1024;

/// Skipped rows whose reason is kept; past them only the line is.
pub const REASONS_KEPT: usize = 1000;
/// The reason given for a skipped row past the first [`REASONS_KEPT`].
pub const REASON_NOT_KEPT: &str = "bad row (reasons are kept for the first 1000 skipped rows only)";

/// What to do with a row whose geometry or values cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRows {
    /// Stop with an error naming the line.
    Fail,
    /// Leave the row out (and report it, see [`SkipReport`]).
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

/// The rows left out with `on_bad_rows="skip"`, in file order: every one's 1-based
/// line, and the reason for the first [`REASONS_KEPT`] (later ones get
/// [`REASON_NOT_KEPT`]), so that memory grows by 8 bytes a row past those.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SkipReport {
    described: Vec<(u64, String)>,
    more: Vec<u64>,
}

impl SkipReport {
    pub fn push(&mut self, line: u64, reason: String) {
        if self.described.len() < REASONS_KEPT {
            self.described.push((line, reason));
        } else {
            self.more.push(line);
        }
    }

    pub fn len(&self) -> usize {
        self.described.len() + self.more.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (line, reason) of every row left out so far.
    pub fn rows(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        self.described
            .iter()
            .map(|(line, reason)| (*line, reason.as_str()))
            .chain(self.more.iter().map(|&line| (line, REASON_NOT_KEPT)))
    }
}

/// A [`SkipReport`] the reader fills while a caller (Python) reads it.
pub type SharedSkipReport = Arc<Mutex<SkipReport>>;

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
    /// The attribute columns' types, by name, instead of the whole-file pass (e.g. the
    /// schema an earlier reader of the same file and options found).
    pub column_types: Option<Vec<(String, DataType)>>,
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
            column_types: None,
        }
    }
}

type CsvReader = csv::Reader<Box<dyn Read + Send + Sync>>;

/// A streaming reader of points (x/y columns) or geometries (a WKT column).
pub struct CsvPointReader {
    path: PathBuf,
    records: CsvReader,
    builder: BatchBuilder,
    /// The rows read while the previous batch was built (or the error reading them).
    pending: Option<Result<RowBlock>>,
    spare: RowBlock,
    record: ByteRecord,
    batch_size: usize,
    skipped: SharedSkipReport,
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

/// A CSV reader over `source` from its first byte (every pass reads alike).
fn csv_reader(source: &TextSource, delimiter: u8) -> Result<CsvReader> {
    Ok(csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .buffer_capacity(
            source
                .len()
                .map_or(1 << 20, |len| len.clamp(1 << 13, 1 << 20) as usize),
        )
        .from_reader(source.open()?))
}

fn read_error(path: &Path, err: &csv::Error) -> Error {
    let line = err.position().map_or(0, |p| p.line());
    Error::format(
        Location::line(path, line),
        format!("cannot read the row: {err}"),
    )
}

/// Whether a CRS (as PROJJSON) is geographic with both horizontal axes in degrees:
/// its x/y are then longitudes and latitudes, checked against ±180 and ±90.
fn geographic_in_degrees(projjson: &str) -> bool {
    fn degrees(axis: &Value) -> bool {
        match axis.get("unit") {
            Some(Value::String(unit)) => unit == "degree",
            Some(unit) => unit.get("name").and_then(Value::as_str) == Some("degree"),
            None => false,
        }
    }
    fn check(crs: &Value) -> bool {
        match crs.get("type").and_then(Value::as_str) {
            Some("GeographicCRS") => crs
                .pointer("/coordinate_system/axis")
                .and_then(Value::as_array)
                .is_some_and(|axes| axes.len() >= 2 && axes.iter().take(2).all(degrees)),
            Some("BoundCRS") => crs.get("source_crs").is_some_and(check),
            Some("CompoundCRS") => crs.pointer("/components/0").is_some_and(check),
            _ => false,
        }
    }
    serde_json::from_str::<Value>(projjson).is_ok_and(|crs| check(&crs))
}

/// Records of the type pre-pass, kept between blocks (their buffers reused).
#[derive(Default)]
struct RecordBlock {
    records: Vec<ByteRecord>,
    len: usize,
}

impl RecordBlock {
    fn read(&mut self, reader: &mut CsvReader, path: &Path) -> Result<()> {
        self.len = 0;
        while self.len < PREPASS_ROWS {
            if self.records.len() <= self.len {
                self.records.push(ByteRecord::new());
            }
            let Some(record) = self.records.get_mut(self.len) else {
                break;
            };
            if !reader
                .read_byte_record(record)
                .map_err(|err| read_error(path, &err))?
            {
                break;
            }
            self.len += 1;
        }
        Ok(())
    }

    /// Narrows the columns' inferences by the block's values.
    fn check(&self, inferences: &mut [(usize, Inference)], field_count: usize) {
        for record in self.records.iter().take(self.len) {
            check_record(record, inferences, field_count);
        }
    }
}

/// The kind of every column in `columns`, from every record of the file: a pass of its
/// own over `source`, which stops early once every column is text.
///
/// Sources of [`SPLIT_MIN_BYTES`] or more are read as two halves at once, one a core:
/// the second from the line after the middle, guessing that a record starts there
/// (not so inside a quoted value with line breaks). The guess holds when the reader
/// from the start ends a record exactly where the second's first record ends: from
/// there on both read the same records. If it does not, the first reader goes on to
/// the end and the second's findings are dropped. Smaller sources (or a middle with no
/// line break near it) are read by one reader, one block checked while the next is
/// read.
fn infer_kinds(
    source: &TextSource,
    delimiter: u8,
    field_count: usize,
    columns: &[usize],
) -> Result<Vec<TextKind>> {
    infer_kinds_with(source, delimiter, field_count, columns, SPLIT_MIN_BYTES).map(|(k, _)| k)
}

/// The kinds of the attribute columns from types given by name.
fn given_kinds(
    given: &[(String, DataType)],
    headers: &[String],
    columns: &[usize],
) -> Result<Vec<TextKind>> {
    columns
        .iter()
        .map(|&index| {
            let name = headers.get(index).map(String::as_str).unwrap_or_default();
            let (_, data_type) = given.iter().find(|(n, _)| n == name).ok_or_else(|| {
                Error::InvalidArgument(format!("the given schema has no column {name:?}"))
            })?;
            TextKind::from_data_type(data_type).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "column {name:?}: a CSV column cannot be read as {data_type}"
                ))
            })
        })
        .collect()
}

/// How the pre-pass read a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pass {
    OneReader,
    /// In two halves, the guess right.
    Halves,
    /// In two halves, the guess wrong (or the first half found only text).
    FirstReaderAlone,
}

fn infer_kinds_with(
    source: &TextSource,
    delimiter: u8,
    field_count: usize,
    columns: &[usize],
    split_min_bytes: u64,
) -> Result<(Vec<TextKind>, Pass)> {
    let fresh = || -> Vec<(usize, Inference)> {
        columns
            .iter()
            .map(|&index| (index, Inference::default()))
            .collect()
    };
    let mut inferences = fresh();
    let mut reader = csv_reader(source, delimiter)?;
    let second = match source.len() {
        Some(len) if len >= split_min_bytes && !columns.is_empty() => {
            second_half(source, delimiter, len)?
        }
        _ => None,
    };
    let Some(mut second) = second else {
        scan_pipelined(&mut reader, source.path(), field_count, &mut inferences)?;
        return Ok((kinds(&inferences), Pass::OneReader));
    };
    let mut rest = fresh();
    let stop = AtomicBool::new(false);
    let (first, rest_read) = rayon::join(
        || {
            scan_first_half(
                &mut reader,
                source.path(),
                field_count,
                &mut inferences,
                second.first_end,
                &stop,
            )
        },
        || scan(&mut second.reader, field_count, &mut rest, &stop),
    );
    let pass = match first? {
        FirstHalf::Whole => Pass::FirstReaderAlone,
        FirstHalf::Met if rest_read.is_ok() => {
            for ((_, inference), (_, other)) in inferences.iter_mut().zip(&rest) {
                inference.merge(other);
            }
            Pass::Halves
        }
        // The second half could not be read: the first reader reads it.
        FirstHalf::Met => {
            let go_on = AtomicBool::new(false);
            scan(&mut reader, field_count, &mut inferences, &go_on)
                .map_err(|err| read_error(source.path(), &err))?;
            Pass::FirstReaderAlone
        }
    };
    Ok((kinds(&inferences), pass))
}

fn kinds(inferences: &[(usize, Inference)]) -> Vec<TextKind> {
    inferences.iter().map(|(_, i)| i.kind()).collect()
}

fn all_text(inferences: &[(usize, Inference)]) -> bool {
    inferences.iter().all(|(_, i)| i.is_text())
}

/// Narrows the columns' inferences by a record's values. Records whose field count is
/// not the header's are left out: they are bad rows whatever their values (and
/// shifted values would mistype their neighbours' columns).
fn check_record(record: &ByteRecord, inferences: &mut [(usize, Inference)], field_count: usize) {
    if record.len() != field_count {
        return;
    }
    for (index, inference) in inferences.iter_mut() {
        if let Some(value) = record.get(*index) {
            inference.add(value);
        }
    }
}

/// The pre-pass of a source read by one reader, one block of records checked while
/// the next is read.
fn scan_pipelined(
    reader: &mut CsvReader,
    path: &Path,
    field_count: usize,
    inferences: &mut [(usize, Inference)],
) -> Result<()> {
    let mut current = RecordBlock::default();
    let mut next = RecordBlock::default();
    current.read(reader, path)?;
    while current.len > 0 && !all_text(inferences) {
        let (read, ()) = rayon::join(
            || next.read(reader, path),
            || current.check(inferences, field_count),
        );
        read?;
        std::mem::swap(&mut current, &mut next);
    }
    Ok(())
}

/// Checks every record up to the end (or until `stop`, or every column is text).
fn scan(
    reader: &mut CsvReader,
    field_count: usize,
    inferences: &mut [(usize, Inference)],
    stop: &AtomicBool,
) -> std::result::Result<(), csv::Error> {
    let mut record = ByteRecord::new();
    let mut count = 0usize;
    while reader.read_byte_record(&mut record)? {
        check_record(&record, inferences, field_count);
        count += 1;
        if count.is_multiple_of(TEXT_CHECK_EVERY)
            && (stop.load(Ordering::Relaxed) || all_text(inferences))
        {
            break;
        }
    }
    Ok(())
}

/// How far the reader of the first half went.
enum FirstHalf {
    /// It ended a record where the second half's first record ends: both halves'
    /// findings make the file's.
    Met,
    /// It read on to the end (or until every column was text): its findings are the
    /// file's.
    Whole,
}

/// The first half: records up to the one ending at `meet` (the end of the second
/// half's first record), or, when no record ends there, every record.
fn scan_first_half(
    reader: &mut CsvReader,
    path: &Path,
    field_count: usize,
    inferences: &mut [(usize, Inference)],
    meet: u64,
    stop: &AtomicBool,
) -> Result<FirstHalf> {
    let mut record = ByteRecord::new();
    let mut count = 0usize;
    while reader
        .read_byte_record(&mut record)
        .map_err(|err| read_error(path, &err))?
    {
        check_record(&record, inferences, field_count);
        let at = reader.position().byte();
        if at == meet {
            return Ok(FirstHalf::Met);
        }
        count += 1;
        if at > meet {
            // The guess was wrong: the second half stops, this reader goes on alone.
            stop.store(true, Ordering::Relaxed);
            scan(reader, field_count, inferences, &AtomicBool::new(false))
                .map_err(|err| read_error(path, &err))?;
            break;
        }
        if count.is_multiple_of(TEXT_CHECK_EVERY) && all_text(inferences) {
            // Nothing the rest holds can change the kinds.
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    Ok(FirstHalf::Whole)
}

/// The second half of a source: a reader after its first record, which starts on the
/// line after the middle.
struct SecondHalf {
    reader: CsvReader,
    /// The byte offset where that first record ends.
    first_end: u64,
}

/// The second half of `source` (`len` bytes), if there is a line break within 1 MiB
/// after its middle and a record after it.
fn second_half(source: &TextSource, delimiter: u8, len: u64) -> Result<Option<SecondHalf>> {
    let middle = len / 2;
    let mut window = Vec::new();
    open_at(source, middle)?
        .take(1 << 20)
        .read_to_end(&mut window)
        .map_err(|err| Error::io(source.path(), err))?;
    let Some(newline) = memchr::memchr(b'\n', &window) else {
        return Ok(None);
    };
    let start = middle + newline as u64 + 1;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .buffer_capacity(1 << 20)
        .from_reader(open_at(source, start)?);
    let mut record = ByteRecord::new();
    // An error or no record: the first reader reads everything.
    if !reader.read_byte_record(&mut record).unwrap_or(false) {
        return Ok(None);
    }
    Ok(Some(SecondHalf {
        first_end: start + reader.position().byte(),
        reader,
    }))
}

/// A reader of `source` from byte `offset`.
fn open_at(source: &TextSource, offset: u64) -> Result<Box<dyn Read + Send + Sync>> {
    match source {
        TextSource::File(path) => {
            let mut file = open_file(path)?;
            file.seek(SeekFrom::Start(offset))
                .map_err(|err| Error::io(path, err))?;
            Ok(Box::new(file))
        }
        TextSource::Memory { bytes, .. } => {
            let mut cursor = Cursor::new(Arc::clone(bytes));
            cursor.set_position(offset);
            Ok(Box::new(cursor))
        }
    }
}

impl CsvPointReader {
    /// Opens the file at `path`.
    pub fn try_new(path: &Path, options: CsvOptions) -> Result<Self> {
        Self::from_source(TextSource::File(path.to_path_buf()), options)
    }

    /// Opens a file or bytes in memory. The attribute types come from a pass over the
    /// whole source (see [`infer_kinds`]), so that every value fits its column.
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
        let mut records = csv_reader(&source, delimiter)?;
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
        let source_crs = Crs::parse(&options.source_crs, "source_crs")?;
        let (crs, transform) = match &options.target_crs {
            Some(target) => {
                let target = Crs::parse(target, "target_crs")?;
                let pool = TransformerPool::new(&source_crs, &target)?;
                (target, pool)
            }
            None => (source_crs.clone(), None),
        };
        let geometry_columns: Vec<usize> = match geometry {
            GeometrySource::Xy(x, y) => vec![x, y],
            GeometrySource::Wkt(w) => vec![w],
        };
        let attribute_columns: Vec<usize> = (0..headers.len())
            .filter(|index| !geometry_columns.contains(index))
            .collect();
        let kinds = match &options.column_types {
            Some(given) => given_kinds(given, &headers, &attribute_columns)?,
            None => infer_kinds(&source, delimiter, headers.len(), &attribute_columns)?,
        };
        let mut attributes = Vec::new();
        let mut fields = Vec::new();
        for (&index, kind) in attribute_columns.iter().zip(kinds) {
            let name = headers.get(index).cloned().unwrap_or_default();
            attributes.push((index, kind));
            fields.push(Field::new(name, kind.data_type(), true));
        }
        fields.push(
            Field::new(GEOMETRY_COLUMN, DataType::Binary, true)
                .with_metadata(geoarrow_metadata(&crs)),
        );
        let metadata = HashMap::from([(
            "geo_engine:source_crs".to_string(),
            source_crs.label().to_string(),
        )]);
        Ok(Self {
            path: path.to_path_buf(),
            records,
            builder: BatchBuilder {
                path: path.to_path_buf(),
                field_count: headers.len(),
                geometry,
                geographic: geographic_in_degrees(&source_crs.projjson),
                attributes,
                schema: Arc::new(Schema::new_with_metadata(fields, metadata)),
                transform,
                on_bad_rows: options.on_bad_rows,
            },
            pending: None,
            spare: RowBlock::default(),
            record: ByteRecord::new(),
            batch_size: options.batch_size,
            skipped: SharedSkipReport::default(),
        })
    }

    /// How many rows were left out so far (with `on_bad_rows="skip"`).
    pub fn skipped(&self) -> usize {
        self.skipped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The rows left out so far, filled as batches are read (complete at the end).
    pub fn skip_report(&self) -> SharedSkipReport {
        Arc::clone(&self.skipped)
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
            if !skipped.is_empty() {
                let mut report = self.skipped.lock().unwrap_or_else(PoisonError::into_inner);
                for (line, reason) in skipped {
                    report.push(line, reason);
                }
            }
            if let Some(batch) = batch {
                return Ok(Some(batch));
            }
        }
    }
}

/// Reads up to `batch_size` rows into `block` (emptied first).
fn read_rows(
    records: &mut CsvReader,
    record: &mut ByteRecord,
    mut block: RowBlock,
    batch_size: usize,
    path: &Path,
) -> Result<RowBlock> {
    block.clear();
    while block.len() < batch_size {
        let more = records
            .read_byte_record(record)
            .map_err(|err| read_error(path, &err))?;
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
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
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

    /// Every batch of a reader, and its skip report.
    fn read_all(mut reader: CsvPointReader) -> (Vec<RecordBatch>, SkipReport) {
        let report = reader.skip_report();
        let batches = std::iter::from_fn(|| reader.next_batch().unwrap()).collect();
        let report = report.lock().unwrap().clone();
        (batches, report)
    }

    fn report_rows(report: &SkipReport) -> Vec<(u64, String)> {
        report.rows().map(|(l, r)| (l, r.to_string())).collect()
    }

    #[test]
    fn bad_rows_fail_or_skip() {
        let text = "x,y,n\n1,2,3\n1,oops,4\n5,6,seven\n7,8,9\n5,6\n";
        let (_dir, path) = write("bad", text);
        let options = CsvOptions {
            batch_size: 2,
            ..Default::default()
        };
        let mut reader = CsvPointReader::try_new(&path, options.clone()).unwrap();
        let err = reader.next_batch().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}, line 3: latitude 'oops' is not a number",
                path.display()
            )
        );
        let reader = CsvPointReader::try_new(
            &path,
            CsvOptions {
                on_bad_rows: BadRows::Skip,
                ..options
            },
        )
        .unwrap();
        // "seven" makes n a text column: only the geometry and the field count are bad.
        assert_eq!(reader.schema().field(0).data_type(), &DataType::Utf8);
        let (batches, report) = read_all(reader);
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 3);
        assert_eq!(
            report_rows(&report),
            vec![
                (3, "latitude 'oops' is not a number".to_string()),
                (6, "2 fields, the header has 3".to_string()),
            ]
        );
    }

    #[test]
    fn types_come_from_the_whole_file() {
        // The third batch of two rows holds a float in the int column and a text in
        // the float column; a later one a zoned time in a date column.
        let text = "lon,lat,i,f,d,t\n\
                    1,1,1,0.5,2024-01-01,\n\
                    2,2,2,1.5,2024-01-02,\n\
                    3,3,3,2.5,2024-01-03,2024-01-03 10:00\n\
                    4,4,4,3.5,,\n\
                    5,5,5.5,n/a,2024-01-05,\n\
                    6,6,6,5.5,2024-01-06,\n\
                    7,7,7,6.5,2024-01-07T12:00:00+02:00,\n";
        let (_dir, path) = write("late", text);
        let options = CsvOptions {
            batch_size: 2,
            ..Default::default()
        };
        let reader = CsvPointReader::try_new(&path, options).unwrap();
        let schema = reader.schema();
        let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
        let utc = DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()));
        let naive = DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None);
        assert_eq!(
            types,
            vec![
                &DataType::Float64,
                &DataType::Utf8,
                &utc,
                &naive,
                &DataType::Binary
            ]
        );
        let (batches, report) = read_all(reader);
        assert!(report.is_empty());
        let table = arrow_select::concat::concat_batches(&schema, &batches).unwrap();
        assert_eq!(table.num_rows(), 7);
        let i = table.column(0).as_primitive::<Float64Type>();
        assert_eq!(i.values().to_vec(), vec![1.0, 2.0, 3.0, 4.0, 5.5, 6.0, 7.0]);
        let f = table.column(1).as_string::<i32>();
        assert_eq!(f.value(4), "n/a");
        assert_eq!(f.value(0), "0.5");
        let d = table.column(2).as_primitive::<TimestampMicrosecondType>();
        assert!(d.is_null(3));
        let day = 86_400_000_000i64;
        assert_eq!(d.value(0), 19_723 * day); // 2024-01-01, midnight UTC
        assert_eq!(d.value(6), 19_729 * day + 10 * 3_600_000_000); // 12:00+02:00
        let t = table.column(3).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(t.value(2), 19_725 * day + 10 * 3_600_000_000);
        assert_eq!(t.null_count(), 6);
    }

    /// The kinds of every column but `x`,`y` (the first two) with the pre-pass in two
    /// halves and with one reader, which must agree.
    fn both_ways(text: &[u8]) -> (Vec<TextKind>, Pass) {
        let source = TextSource::memory("t.csv", text.to_vec());
        let header_len = memchr::memchr(b'\n', text).unwrap_or(text.len());
        let field_count = text[..header_len].iter().filter(|&&b| b == b',').count() + 1;
        let columns: Vec<usize> = (2..field_count).collect();
        let (halves, pass) = infer_kinds_with(&source, b',', field_count, &columns, 0).unwrap();
        let (one, one_pass) =
            infer_kinds_with(&source, b',', field_count, &columns, u64::MAX).unwrap();
        assert_eq!(one_pass, Pass::OneReader);
        assert_eq!(halves, one, "{}", String::from_utf8_lossy(text));
        (halves, pass)
    }

    #[test]
    fn prepass_in_two_halves() {
        // The float only in the second half.
        let mut text = String::from("x,y,n\n");
        for row in 0..200 {
            text.push_str(&format!("1,2,{}\n", if row == 150 { "2.5" } else { "7" }));
        }
        assert_eq!(
            both_ways(text.as_bytes()),
            (vec![TextKind::Float64], Pass::Halves)
        );
        // A quoted value with line breaks across the middle: the second reader starts
        // inside it, so its guess is wrong; its lines look like records of ints.
        let mut text = String::from("x,y,n,note\n");
        for _ in 0..20 {
            text.push_str("1,2,3,a\n");
        }
        text.push_str("1,2,3,\"");
        for _ in 0..40 {
            text.push_str("1,2,3,4\n");
        }
        text.push_str("\"\n1,2,x,b\n");
        let (kinds, pass) = both_ways(text.as_bytes());
        assert_eq!(kinds, vec![TextKind::Utf8, TextKind::Utf8]);
        assert_eq!(pass, Pass::FirstReaderAlone);
        // Every column text early on: the first reader stops there, alone.
        let text = format!("x,y,a\n{}", "1,2,word\n".repeat(5000));
        assert_eq!(
            both_ways(text.as_bytes()),
            (vec![TextKind::Utf8], Pass::FirstReaderAlone)
        );
        // CRLF line ends, blank lines, and the middle in the header or the last line.
        for text in [
            "x,y,n\r\n1,2,3\r\n\r\n\r\n4,5,6.5\r\n7,8,9\r\n",
            "x,y,n\n\n\n\n\n\n\n\n1,2,3\n",
            "a_long_header_name,y,n\n1,2,3\n",
            "x,y,n\n1,2,3\n4,5,a_long_value_at_the_end",
            "x,y\n1,2\n3,4\n",
        ] {
            both_ways(text.as_bytes());
        }
    }

    #[test]
    fn prepass_halves_agree_with_one_reader() {
        // Random files of ints, floats, words, dates, quoted values with line breaks,
        // blank lines, CRLF, short and long rows: both ways agree on every one.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut passes = std::collections::HashSet::new();
        for _ in 0..400 {
            let mut text = String::from("x,y,a,b,c\n");
            let rows = 1 + next(40);
            for _ in 0..rows {
                let fields = if next(20) == 0 { 4 } else { 5 };
                let values: Vec<String> = (0..fields)
                    .map(|_| match next(12) {
                        0 => String::new(),
                        1 => "2.5".into(),
                        2 => "word".into(),
                        3 => "2024-01-31".into(),
                        4 => "\"1\n2\"".into(),
                        5 => "\"3,\n\"\"4\"".into(),
                        6 => "true".into(),
                        // After its line break comes a quote that closes it, which a
                        // reader starting there takes for an opening one.
                        7 | 8 => "\"\n\"".into(),
                        _ => next(1000).to_string(),
                    })
                    .collect();
                text.push_str(&values.join(","));
                text.push_str(match next(6) {
                    0 => "\r\n",
                    1 => "\n\n",
                    _ => "\n",
                });
            }
            passes.insert(both_ways(text.as_bytes()).1);
        }
        assert!(
            passes.contains(&Pass::Halves) && passes.contains(&Pass::FirstReaderAlone),
            "{passes:?}"
        );
    }

    #[test]
    fn types_from_past_the_first_default_batch() {
        // 70,000 rows in memory: the float is in the second batch of 65,536.
        let mut text = String::from("x;y;code;value\n");
        for row in 0..70_000 {
            let value = if row == 69_000 {
                "1.25".to_string()
            } else {
                row.to_string()
            };
            text.push_str(&format!("1;2;{row};{value}\n"));
        }
        let source = TextSource::memory("many.csv", text.into_bytes());
        let reader = CsvPointReader::from_source(source, CsvOptions::default()).unwrap();
        let schema = reader.schema();
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        assert_eq!(schema.field(1).data_type(), &DataType::Float64);
        let (batches, report) = read_all(reader);
        assert!(report.is_empty());
        assert_eq!(batches.len(), 2);
        let second = batches[1].column(1).as_primitive::<Float64Type>();
        assert_eq!(second.value(69_000 - 65_536), 1.25);
        assert_eq!(second.value(0), 65_536.0);
    }

    #[test]
    fn rows_of_another_length_do_not_type_columns() {
        let (_dir, path) = write("shifted", "x,y,n\n1,2,3\n1,2,seven,x\n3,4,5\n");
        let options = CsvOptions {
            on_bad_rows: BadRows::Skip,
            ..Default::default()
        };
        let reader = CsvPointReader::try_new(&path, options).unwrap();
        assert_eq!(reader.schema().field(0).data_type(), &DataType::Int64);
        let (batches, report) = read_all(reader);
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
        assert_eq!(
            report_rows(&report),
            vec![(3, "4 fields, the header has 3".to_string())]
        );
    }

    #[test]
    fn skip_report_names_every_problem() {
        let text = b"id,lon,lat\n\
                    1,10,20\n\
                    2,abc,20\n\
                    3,10,123.0\n\
                    4,,5\n\
                    5,-180.5,0\n\
                    6,,\n\
                    7,inf,0\n\
                    8,\"1\n2\",0\n\
                    9,\xff,0\n\
                    10,180,-90\n";
        let source = TextSource::memory("report.csv", text.to_vec());
        let options = CsvOptions {
            on_bad_rows: BadRows::Skip,
            batch_size: 3,
            ..Default::default()
        };
        let (batches, report) = read_all(CsvPointReader::from_source(source, options).unwrap());
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(ids, vec![1, 6, 10]);
        assert_eq!(
            report_rows(&report),
            vec![
                (3, "longitude 'abc' is not a number".to_string()),
                (4, "latitude 123.0 is out of range (-90 to 90)".to_string()),
                (5, "longitude is missing".to_string()),
                (
                    6,
                    "longitude -180.5 is out of range (-180 to 180)".to_string()
                ),
                (8, "longitude 'inf' is not a finite number".to_string()),
                (9, "longitude '1\n2' is not a number".to_string()),
                (11, "longitude is not valid UTF-8".to_string()),
            ]
        );
        // The same rows fail, naming their line, without skip.
        let mut text = String::from("id,lon,lat\n");
        for row in 0..1_005 {
            text.push_str(&format!(
                "{row},1,{}\n",
                if row % 2 == 0 { "91" } else { "1" }
            ));
        }
        let source = TextSource::memory("many.csv", text.clone().into_bytes());
        let mut reader = CsvPointReader::from_source(source, CsvOptions::default()).unwrap();
        let err = reader.next_batch().unwrap_err().to_string();
        assert_eq!(
            err,
            "many.csv, line 2: latitude 91 is out of range (-90 to 90)"
        );
        // Past REASONS_KEPT skipped rows, the lines are kept without their reasons.
        let mut text = String::from("id,lon,lat\n");
        for row in 0..REASONS_KEPT + 5 {
            text.push_str(&format!("{row},1,91\n"));
        }
        text.push_str("last,1,1\n");
        let source = TextSource::memory("many.csv", text.into_bytes());
        let options = CsvOptions {
            on_bad_rows: BadRows::Skip,
            batch_size: 100,
            ..Default::default()
        };
        let (batches, report) = read_all(CsvPointReader::from_source(source, options).unwrap());
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        assert_eq!(report.len(), REASONS_KEPT + 5);
        let rows = report_rows(&report);
        assert_eq!(
            rows[0],
            (2, "latitude 91 is out of range (-90 to 90)".into())
        );
        assert_eq!(rows[REASONS_KEPT - 1].0, REASONS_KEPT as u64 + 1);
        assert_eq!(
            rows[REASONS_KEPT],
            (REASONS_KEPT as u64 + 2, REASON_NOT_KEPT.into())
        );
        assert_eq!(rows.last().unwrap().0, REASONS_KEPT as u64 + 6);
    }

    #[test]
    fn ranges_only_for_geographic_crs() {
        let text = "x,y\n530000,180000\n1,abc\n";
        let source = TextSource::memory("bng.csv", text.as_bytes().to_vec());
        let options = CsvOptions {
            source_crs: "EPSG:27700".into(),
            on_bad_rows: BadRows::Skip,
            ..Default::default()
        };
        let (batches, report) = read_all(CsvPointReader::from_source(source, options).unwrap());
        assert_eq!(batches[0].num_rows(), 1);
        assert_eq!(
            report_rows(&report),
            vec![(3, "y 'abc' is not a number".to_string())]
        );
        let degrees =
            |code: &str| geographic_in_degrees(&Crs::parse(code, "test").unwrap().projjson);
        assert!(degrees("EPSG:4326") && degrees("OGC:CRS84") && degrees("EPSG:4979"));
        assert!(!degrees("EPSG:27700") && !degrees("EPSG:3857") && !degrees("EPSG:4807"));
    }

    #[test]
    fn wkt_out_of_range() {
        let text = "id;wkt\n1;POINT (1 2)\n2;LINESTRING (0 0, 200 1)\n3;POINT (0 -95)\n4;POINT EMPTY\n5;POINT (1\n";
        let source = TextSource::memory("shapes.csv", text.as_bytes().to_vec());
        let options = CsvOptions {
            on_bad_rows: BadRows::Skip,
            ..Default::default()
        };
        let (batches, report) = read_all(CsvPointReader::from_source(source, options).unwrap());
        assert_eq!(batches[0].num_rows(), 2);
        let rows = report_rows(&report);
        assert_eq!(
            rows[0],
            (3, "longitude 200 is out of range (-180 to 180)".into())
        );
        assert_eq!(
            rows[1],
            (4, "latitude -95 is out of range (-90 to 90)".into())
        );
        assert_eq!(rows[2].0, 6);
        assert!(rows[2].1.starts_with("invalid WKT"), "{rows:?}");
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

    #[test]
    fn given_column_types_replace_the_pass() {
        let (_dir, path) = write("given", "code,n,x,y\n007,1,1,2\n8,2,3,4\n");
        let inferred = CsvPointReader::try_new(&path, CsvOptions::default()).unwrap();
        let types: Vec<(String, DataType)> = inferred
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        assert_eq!(types[0], ("code".into(), DataType::Utf8));
        assert_eq!(types[1], ("n".into(), DataType::Int64));
        // The same types given: the same schema, without reading the file first.
        let given = CsvPointReader::try_new(
            &path,
            CsvOptions {
                column_types: Some(types.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(given.schema(), inferred.schema());
        // Other types given are used as they are.
        let mut reader = CsvPointReader::try_new(
            &path,
            CsvOptions {
                column_types: Some(vec![
                    ("code".into(), DataType::Utf8),
                    ("n".into(), DataType::Float64),
                ]),
                ..Default::default()
            },
        )
        .unwrap();
        let batch = reader.next_batch().unwrap().unwrap();
        assert_eq!(batch.column(1).as_primitive::<Float64Type>().value(1), 2.0);
        // A column missing from the given types, or a type no CSV column becomes.
        for bad in [
            vec![("code".to_string(), DataType::Utf8)],
            vec![
                ("code".to_string(), DataType::Utf8),
                ("n".to_string(), DataType::Int8),
            ],
        ] {
            let options = CsvOptions {
                column_types: Some(bad),
                ..Default::default()
            };
            let err = CsvPointReader::try_new(&path, options).err().unwrap();
            assert!(err.to_string().contains("\"n\""), "{err}");
        }
    }
}

/// Timings on the benchmark file, printed, not asserted: `cargo test --release --lib
/// csv_points::timing -- --ignored --nocapture` (after `make bench` made the file).
#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    #[test]
    #[ignore]
    fn prepass_and_stream_on_the_bench_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/bench/points_1000000.csv");
        if !path.is_file() {
            eprintln!("{} is not there: nothing to time", path.display());
            return;
        }
        let source = TextSource::File(path.clone());
        for _ in 0..5 {
            let started = Instant::now();
            let (kinds, pass) =
                infer_kinds_with(&source, b',', 7, &[2, 3, 4, 5, 6], SPLIT_MIN_BYTES).unwrap();
            let prepass = started.elapsed();
            assert_eq!(pass, Pass::Halves);
            let started = Instant::now();
            let one = infer_kinds_with(&source, b',', 7, &[2, 3, 4, 5, 6], u64::MAX).unwrap();
            let one_reader = started.elapsed();
            assert_eq!(one, (kinds.clone(), Pass::OneReader));
            let started = Instant::now();
            let mut reader = CsvPointReader::try_new(&path, CsvOptions::default()).unwrap();
            let mut rows = 0;
            while let Some(batch) = reader.next_batch().unwrap() {
                rows += batch.num_rows();
            }
            let stream = started.elapsed();
            eprintln!(
                "pre-pass {prepass:?} in halves, {one_reader:?} with one reader ({kinds:?}); \
                 whole stream {stream:?} ({rows} rows)"
            );
        }
    }
}
