//! Record batches from blocks of delimited-text rows: the attribute columns (typed
//! as the reader inferred them) and the geometry column (x/y points or WKT), built in
//! parallel, with the rows that do not fit reported or left out.

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
    /// (column index, kind) of every attribute column.
    pub attributes: Vec<(usize, TextKind)>,
    pub schema: SchemaRef,
    pub transform: Option<TransformerPool>,
    pub on_bad_rows: BadRows,
}

/// A problem with one row of a block: its index and the message.
type Problem = (usize, String);

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

    fn points(&self, block: &RowBlock, xi: usize, yi: usize) -> Result<(ArrayRef, Vec<Problem>)> {
        let n = block.len();
        let mut problems = Vec::new();
        let mut xs = Vec::with_capacity(n);
        let mut ys = Vec::with_capacity(n);
        let mut present = Vec::with_capacity(n);
        for row in 0..n {
            let text = |i: usize| block.text(row, i).map(str::trim);
            match (text(xi), text(yi)) {
                (Some(""), Some("")) | (None, None) => present.push(false),
                (Some(x), Some(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
                    (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
                        xs.push(x);
                        ys.push(y);
                        present.push(true);
                    }
                    _ => {
                        problems.push((row, format!("coordinates ({x:?}, {y:?}) are not numbers")));
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

    fn wkt(&self, block: &RowBlock, wi: usize) -> Result<(ArrayRef, Vec<Problem>)> {
        let rows: Vec<usize> = (0..block.len()).collect();
        let parsed: Vec<std::result::Result<Option<Vec<u8>>, String>> = rows
            .par_chunks(WKT_CHUNK)
            .flat_map_iter(|chunk| {
                chunk.iter().map(|&row| {
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

    /// The batch of a block, with the count of rows left out (`on_bad_rows="skip"`);
    /// `None` when every row was left out.
    pub fn build(&self, block: &RowBlock) -> Result<(Option<RecordBatch>, usize)> {
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
                        "column {:?}: {value:?} is not {kind:?} (the type seen in the first batch)",
                        field.name(),
                    ),
                )
            }));
            columns.push(array);
        }
        columns.push(geometry);
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        if problems.is_empty() {
            return Ok((Some(batch), 0));
        }
        problems.sort_by_key(|(row, _)| *row);
        match self.on_bad_rows {
            BadRows::Fail => {
                let (row, message) = problems.swap_remove(0);
                Err(self.bad_row(block.line(row), message))
            }
            BadRows::Skip => {
                let mut keep = vec![true; block.len()];
                for (row, _) in &problems {
                    if let Some(slot) = keep.get_mut(*row) {
                        *slot = false;
                    }
                }
                let kept = keep.iter().filter(|&&k| k).count();
                let skipped = block.len() - kept;
                if kept == 0 {
                    return Ok((None, skipped));
                }
                let mask = BooleanArray::from(keep);
                let batch = arrow_select::filter::filter_record_batch(&batch, &mask)?;
                Ok((Some(batch), skipped))
            }
        }
    }
}
