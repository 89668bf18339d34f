//! Record batches from blocks of delimited-text rows: the attribute columns (typed
//! as the reader inferred them) and the geometry column (x/y points or WKT), built in
//! parallel, with the rows that do not fit (a coordinate missing, not a number, out of
//! range for a geographic CRS; bad WKT; a wrong field count) reported or left out.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, BooleanArray, RecordBatch};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::SchemaRef;
use rayon::prelude::*;

use crate::columns::{self, TextKind};
use crate::crs::TransformerPool;
use crate::csv_points::BadRows;
use crate::csv_rows::RowBlock;
use crate::error::{Error, Location, Result};
use crate::wkb::CoordRef;
use crate::{transform, wkb, wkt};

/// Rows of WKT parsed per rayon task.
const WKT_CHUNK: usize = 1024;

/// Where a row's geometry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometrySource {
    Xy(usize, usize),
    Wkt(usize),
}

/// Everything needed to turn a block of rows into a record batch.
pub struct BatchBuilder {
    pub path: PathBuf,
    pub field_count: usize,
    pub geometry: GeometrySource,
    /// Whether the source CRS is geographic in degrees: x/y are then longitudes and
    /// latitudes, and values beyond ±180/±90 make a row bad.
    pub geographic: bool,
    /// (column index, kind) of every attribute column.
    pub attributes: Vec<(usize, TextKind)>,
    pub schema: SchemaRef,
    pub transform: Option<TransformerPool>,
    pub on_bad_rows: BadRows,
}

/// A problem with one row of a block: its index and the message.
type Problem = (usize, String);

/// The rows of a block left out: (1-based line, reason).
pub type Skipped = Vec<(u64, String)>;

impl BatchBuilder {
    fn bad_row(&self, line: u64, message: String) -> Error {
        Error::format(Location::line(&self.path, line), message)
    }

    /// The geometry column, with per-row problems.
    fn build_geometry(&self, block: &RowBlock) -> Result<(ArrayRef, Vec<Problem>)> {
        match self.geometry {
            GeometrySource::Xy(xi, yi) => self.points(block, xi, yi),
            GeometrySource::Wkt(wi) => self.wkt(block, wi),
        }
    }

    /// The names of the x and y axes in messages.
    fn axes(&self) -> [&'static str; 2] {
        if self.geographic {
            ["longitude", "latitude"]
        } else {
            ["x", "y"]
        }
    }

    /// Why a coordinate is out of range for a geographic CRS, if it is (`axis`: 0 for
    /// x, 1 for y; `shown`: the value as the message shows it).
    fn range_problem(&self, axis: usize, value: f64, shown: &dyn fmt::Display) -> Option<String> {
        let limit = if axis == 0 { 180.0 } else { 90.0 };
        (self.geographic && !(-limit..=limit).contains(&value)).then(|| {
            let name = self.axes().get(axis).copied().unwrap_or("coordinate");
            format!("{name} {shown} is out of range (-{limit} to {limit})")
        })
    }

    /// A coordinate's value, or why it has none.
    fn coordinate(&self, axis: usize, field: Coordinate<'_>) -> std::result::Result<f64, String> {
        let name = self.axes().get(axis).copied().unwrap_or("coordinate");
        let text = match field {
            Coordinate::NotUtf8 => return Err(format!("{name} is not valid UTF-8")),
            Coordinate::Text("") => return Err(format!("{name} is missing")),
            Coordinate::Text(text) => text,
        };
        let quoted = Shown(text, true);
        let value = text
            .parse::<f64>()
            .map_err(|_| format!("{name} {quoted} is not a number"))?;
        if !value.is_finite() {
            return Err(format!("{name} {quoted} is not a finite number"));
        }
        match self.range_problem(axis, value, &Shown(text, false)) {
            Some(problem) => Err(problem),
            None => Ok(value),
        }
    }

    fn points(&self, block: &RowBlock, xi: usize, yi: usize) -> Result<(ArrayRef, Vec<Problem>)> {
        let n = block.len();
        let mut problems = Vec::new();
        let mut xs = Vec::with_capacity(n);
        let mut ys = Vec::with_capacity(n);
        let mut present = Vec::with_capacity(n);
        for row in 0..n {
            let field = |index: usize| match block.text(row, index) {
                Some(text) => Coordinate::Text(text.trim()),
                None if block.raw(row, index).is_some() => Coordinate::NotUtf8,
                // A field the row does not have (reported for the field count).
                None => Coordinate::Text(""),
            };
            let (x, y) = (field(xi), field(yi));
            if let (Coordinate::Text(""), Coordinate::Text("")) = (x, y) {
                // No coordinates at all: a null geometry.
                present.push(false);
                continue;
            }
            match self
                .coordinate(0, x)
                .and_then(|x| Ok((x, self.coordinate(1, y)?)))
            {
                Ok((x, y)) => {
                    xs.push(x);
                    ys.push(y);
                    present.push(true);
                }
                Err(problem) => {
                    problems.push((row, problem));
                    present.push(false);
                }
            }
        }
        if let Some(pool) = &self.transform {
            transform::transform_arrays(pool, &mut xs, &mut ys, None)?;
        }
        let mut values = Vec::with_capacity(xs.len() * 21);
        let mut offsets = Vec::with_capacity(n + 1);
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
        let nulls = (!present.iter().all(|&p| p)).then(|| NullBuffer::from(present));
        let array = BinaryArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(values),
            nulls,
        )?;
        Ok((Arc::new(array), problems))
    }

    /// The first coordinate of a WKB value out of range for a geographic CRS.
    fn wkb_range_problem(&self, wkb: &[u8], coordinates: &mut Vec<CoordRef>) -> Option<String> {
        coordinates.clear();
        wkb::coordinates(wkb, coordinates).ok()?;
        coordinates.iter().find_map(|at| {
            (0..2).find_map(|axis| {
                let value = wkb::read_f64(wkb, at.offset + 8 * axis, at.little)?;
                self.range_problem(axis, value, &value)
            })
        })
    }

    fn wkt(&self, block: &RowBlock, wi: usize) -> Result<(ArrayRef, Vec<Problem>)> {
        let rows: Vec<usize> = (0..block.len()).collect();
        let parsed: Vec<std::result::Result<Option<Vec<u8>>, String>> = rows
            .par_chunks(WKT_CHUNK)
            .flat_map_iter(|chunk| {
                let mut coordinates = Vec::new();
                chunk.iter().map(move |&row| {
                    if block.raw(row, wi).is_none() {
                        return Ok(None);
                    }
                    let text = block
                        .text(row, wi)
                        .ok_or_else(|| "the WKT is not valid UTF-8".to_string())?;
                    if text.trim().is_empty() {
                        return Ok(None);
                    }
                    let mut out = Vec::with_capacity(text.len() / 2);
                    wkt::to_wkb(text, &mut out).map_err(|m| format!("invalid WKT: {m}"))?;
                    if self.geographic {
                        if let Some(problem) = self.wkb_range_problem(&out, &mut coordinates) {
                            return Err(problem);
                        }
                    }
                    Ok(Some(out))
                })
            })
            .collect();
        let mut problems = Vec::new();
        let mut values: Vec<Option<Vec<u8>>> = Vec::with_capacity(block.len());
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

    /// One attribute column, the rows that are not UTF-8, the rows that do not fit.
    fn attribute(
        &self,
        block: &RowBlock,
        index: usize,
        kind: TextKind,
    ) -> (ArrayRef, Vec<usize>, Vec<usize>) {
        let invalid: Vec<usize> = if block.all_utf8() {
            Vec::new()
        } else {
            (0..block.len())
                .filter(|&row| {
                    block
                        .raw(row, index)
                        .is_some_and(|raw| std::str::from_utf8(raw).is_err())
                })
                .collect()
        };
        let texts = (0..block.len()).map(|row| block.text(row, index));
        let (array, misfits) = columns::build(kind, texts);
        (array, invalid, misfits)
    }

    /// The batch of a block, with the (line, reason) of every row left out
    /// (`on_bad_rows="skip"`); `None` when every row was left out.
    pub fn build(&self, block: &RowBlock) -> Result<(Option<RecordBatch>, Skipped)> {
        let mut problems: Vec<Problem> = (0..block.len())
            .filter(|&row| block.field_count(row) != self.field_count)
            .map(|row| {
                (
                    row,
                    format!(
                        "{} fields, the header has {}",
                        block.field_count(row),
                        self.field_count
                    ),
                )
            })
            .collect();
        let (geometry, attributes) = rayon::join(
            || self.build_geometry(block),
            || {
                self.attributes
                    .par_iter()
                    .map(|&(index, kind)| self.attribute(block, index, kind))
                    .collect::<Vec<_>>()
            },
        );
        let (geometry, geometry_problems) = geometry?;
        problems.extend(geometry_problems);
        let mut columns = Vec::with_capacity(attributes.len() + 1);
        for ((array, invalid, misfits), (field, &(index, kind))) in attributes
            .into_iter()
            .zip(self.schema.fields().iter().zip(&self.attributes))
        {
            problems.extend(
                invalid
                    .into_iter()
                    .map(|row| (row, format!("column {:?} is not valid UTF-8", field.name()))),
            );
            problems.extend(misfits.into_iter().map(|row| {
                let value = block
                    .raw(row, index)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                (
                    row,
                    format!(
                        "column {:?}: {value:?} is not {kind:?} (the type inferred for it)",
                        field.name(),
                    ),
                )
            }));
            columns.push(array);
        }
        columns.push(geometry);
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        if problems.is_empty() {
            return Ok((Some(batch), Vec::new()));
        }
        // A row's first problem is the one told: its field count, then its geometry.
        problems.sort_by_key(|(row, _)| *row);
        match self.on_bad_rows {
            BadRows::Fail => {
                let (row, message) = problems.swap_remove(0);
                Err(self.bad_row(block.line(row), message))
            }
            BadRows::Skip => {
                let mut keep = vec![true; block.len()];
                let mut skipped = Vec::new();
                for (row, message) in problems {
                    if let Some(slot) = keep.get_mut(row).filter(|kept| **kept) {
                        *slot = false;
                        skipped.push((block.line(row), message));
                    }
                }
                if skipped.len() == block.len() {
                    return Ok((None, skipped));
                }
                let mask = BooleanArray::from(keep);
                let batch = arrow_select::filter::filter_record_batch(&batch, &mask)?;
                Ok((Some(batch), skipped))
            }
        }
    }
}

/// A coordinate field of a row.
#[derive(Clone, Copy)]
enum Coordinate<'a> {
    /// The trimmed text ("" when empty or when the row has no such field).
    Text(&'a str),
    NotUtf8,
}

/// A value for a message, cut to 40 characters, in quotes or not.
struct Shown<'a>(&'a str, bool);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        let short: String = chars.by_ref().take(40).collect();
        let more = if chars.next().is_some() { "…" } else { "" };
        let quote = if self.1 { "'" } else { "" };
        write!(f, "{quote}{short}{more}{quote}")
    }
}
