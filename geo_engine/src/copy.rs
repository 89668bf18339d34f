//! PostgreSQL binary COPY rows for `core_geometry (geom, metadata, geometry_type,
//! source_id)`: geometry as EWKB with an SRID, the other columns as one jsonb object.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BinaryViewArray, BooleanArray, LargeBinaryArray,
    LargeStringArray, RecordBatch, StringArray, StringViewArray,
};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::wkb;

/// Signature, flags (no OIDs) and an empty header extension.
pub const HEADER: [u8; 19] = *b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The end-of-data marker: a field count of -1.
pub const TRAILER: [u8; 2] = [0xff, 0xff];
/// Rows encoded by one rayon task.
const CHUNK_ROWS: usize = 4096;
/// The jsonb binary format version.
const JSONB_VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct CopyOptions {
    pub source_id: i32,
    pub geometry_column: String,
    /// Written into each EWKB; 0 writes none (the column's SRID applies).
    pub srid: i32,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            source_id: 0,
            geometry_column: "geometry".into(),
            srid: 4326,
        }
    }
}

enum Geometry<'a> {
    Binary(&'a BinaryArray),
    LargeBinary(&'a LargeBinaryArray),
    View(&'a BinaryViewArray),
}

impl Geometry<'_> {
    fn value(&self, row: usize) -> Option<&[u8]> {
        match self {
            Geometry::Binary(a) => a.is_valid(row).then(|| a.value(row)),
            Geometry::LargeBinary(a) => a.is_valid(row).then(|| a.value(row)),
            Geometry::View(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }
}

/// Encodes every row of `batch` as binary COPY tuples (no header, no trailer).
pub fn encode_rows(batch: &RecordBatch, options: &CopyOptions) -> Result<Vec<u8>> {
    let schema = batch.schema();
    let geometry_index = schema.index_of(&options.geometry_column).map_err(|_| {
        Error::InvalidArgument(format!(
            "the batch has no column {:?}",
            options.geometry_column
        ))
    })?;
    let srid = match options.srid {
        0 => None,
        s => Some(
            u32::try_from(s).map_err(|_| Error::InvalidArgument(format!("invalid SRID {s}")))?,
        ),
    };
    let geometry_column = batch.column(geometry_index);
    let geometry = match geometry_column.data_type() {
        DataType::Binary => Geometry::Binary(geometry_column.as_binary::<i32>()),
        DataType::LargeBinary => Geometry::LargeBinary(geometry_column.as_binary::<i64>()),
        DataType::BinaryView => Geometry::View(geometry_column.as_binary_view()),
        other => {
            return Err(Error::InvalidArgument(format!(
                "column {:?} is {other}, expected WKB (binary)",
                options.geometry_column
            )))
        }
    };
    let attributes: Vec<(String, ArrayRef)> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != geometry_index)
        .map(|(i, field)| {
            let mut key = Vec::new();
            // Writing a &str into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut key, field.name());
            (
                String::from_utf8_lossy(&key).into_owned(),
                batch.column(i).clone(),
            )
        })
        .collect();
    let rows = batch.num_rows();
    let starts: Vec<usize> = (0..rows).step_by(CHUNK_ROWS).collect();
    let chunks = starts
        .par_iter()
        .map(|&start| {
            encode_chunk(
                start,
                (start + CHUNK_ROWS).min(rows),
                &geometry,
                &attributes,
                srid,
                options.source_id,
            )
        })
        .collect::<Result<Vec<Vec<u8>>>>()?;
    let mut out = Vec::with_capacity(chunks.iter().map(Vec::len).sum());
    for chunk in chunks {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// How one attribute column is written into JSON.
enum Writer<'a> {
    Null,
    Bool(&'a BooleanArray),
    Int(Box<dyn Fn(usize) -> i64 + Sync + Send + 'a>),
    UInt(Box<dyn Fn(usize) -> u64 + Sync + Send + 'a>),
    Float(Box<dyn Fn(usize) -> f64 + Sync + Send + 'a>),
    Str(&'a StringArray),
    LargeStr(&'a LargeStringArray),
    StrView(&'a StringViewArray),
    /// Dates, timestamps and anything else: arrow's display text, as a JSON string.
    Display(ArrayFormatter<'a>),
}

fn writer<'a>(array: &'a ArrayRef, options: &'a FormatOptions<'a>) -> Result<Writer<'a>> {
    Ok(match array.data_type() {
        DataType::Null => Writer::Null,
        DataType::Boolean => Writer::Bool(array.as_boolean()),
        DataType::Int8 => {
            let a = array.as_primitive::<Int8Type>();
            Writer::Int(Box::new(move |i| i64::from(a.value(i))))
        }
        DataType::Int16 => {
            let a = array.as_primitive::<Int16Type>();
            Writer::Int(Box::new(move |i| i64::from(a.value(i))))
        }
        DataType::Int32 => {
            let a = array.as_primitive::<Int32Type>();
            Writer::Int(Box::new(move |i| i64::from(a.value(i))))
        }
        DataType::Int64 => {
            let a = array.as_primitive::<Int64Type>();
            Writer::Int(Box::new(move |i| a.value(i)))
        }
        DataType::UInt8 => {
            let a = array.as_primitive::<UInt8Type>();
            Writer::UInt(Box::new(move |i| u64::from(a.value(i))))
        }
        DataType::UInt16 => {
            let a = array.as_primitive::<UInt16Type>();
            Writer::UInt(Box::new(move |i| u64::from(a.value(i))))
        }
        DataType::UInt32 => {
            let a = array.as_primitive::<UInt32Type>();
            Writer::UInt(Box::new(move |i| u64::from(a.value(i))))
        }
        DataType::UInt64 => {
            let a = array.as_primitive::<UInt64Type>();
            Writer::UInt(Box::new(move |i| a.value(i)))
        }
        DataType::Float16 => {
            let a = array.as_primitive::<Float16Type>();
            Writer::Float(Box::new(move |i| f64::from(a.value(i))))
        }
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            Writer::Float(Box::new(move |i| f64::from(a.value(i))))
        }
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            Writer::Float(Box::new(move |i| a.value(i)))
        }
        DataType::Utf8 => Writer::Str(array.as_string::<i32>()),
        DataType::LargeUtf8 => Writer::LargeStr(array.as_string::<i64>()),
        DataType::Utf8View => Writer::StrView(array.as_string_view()),
        _ => Writer::Display(ArrayFormatter::try_new(array.as_ref(), options)?),
    })
}

fn write_json_str(out: &mut Vec<u8>, value: &str) {
    // Serialising a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

impl Writer<'_> {
    fn write(&self, array: &ArrayRef, row: usize, out: &mut Vec<u8>) {
        if array.is_null(row) {
            out.extend_from_slice(b"null");
            return;
        }
        match self {
            Writer::Null => out.extend_from_slice(b"null"),
            Writer::Bool(a) => out.extend_from_slice(if a.value(row) { b"true" } else { b"false" }),
            Writer::Int(f) => out.extend_from_slice(f(row).to_string().as_bytes()),
            Writer::UInt(f) => out.extend_from_slice(f(row).to_string().as_bytes()),
            Writer::Float(f) => {
                let v = f(row);
                if v.is_finite() {
                    let _ = serde_json::to_writer(&mut *out, &v);
                } else {
                    out.extend_from_slice(b"null");
                }
            }
            Writer::Str(a) => write_json_str(out, a.value(row)),
            Writer::LargeStr(a) => write_json_str(out, a.value(row)),
            Writer::StrView(a) => write_json_str(out, a.value(row)),
            Writer::Display(formatter) => write_json_str(out, &formatter.value(row).to_string()),
        }
    }
}

fn push_len(out: &mut Vec<u8>, len: usize, row: usize) -> Result<()> {
    let len = i32::try_from(len).map_err(|_| Error::geometry(row, "field larger than 2 GiB"))?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

fn encode_chunk(
    start: usize,
    end: usize,
    geometry: &Geometry<'_>,
    attributes: &[(String, ArrayRef)],
    srid: Option<u32>,
    source_id: i32,
) -> Result<Vec<u8>> {
    let format_options = FormatOptions::default();
    let writers = attributes
        .iter()
        .map(|(_, array)| writer(array, &format_options))
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity((end - start) * 128);
    let mut ewkb = Vec::new();
    for row in start..end {
        out.extend_from_slice(&4i16.to_be_bytes());
        // geom
        let geometry_type = match geometry.value(row) {
            Some(value) => {
                ewkb.clear();
                let ty = wkb::to_ewkb(value, srid, &mut ewkb)
                    .map_err(|message| Error::geometry(row, format!("invalid WKB: {message}")))?;
                push_len(&mut out, ewkb.len(), row)?;
                out.extend_from_slice(&ewkb);
                Some(wkb::type_name(ty.base))
            }
            None => {
                out.extend_from_slice(&(-1i32).to_be_bytes());
                None
            }
        };
        // metadata: jsonb = version byte + JSON text; the length is patched in after.
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        out.push(JSONB_VERSION);
        out.push(b'{');
        for (i, ((key, array), writer)) in attributes.iter().zip(&writers).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            out.push(b':');
            writer.write(array, row, &mut out);
        }
        out.push(b'}');
        let len = i32::try_from(out.len() - len_at - 4)
            .map_err(|_| Error::geometry(row, "metadata larger than 2 GiB"))?;
        if let Some(slot) = out.get_mut(len_at..len_at + 4) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
        // geometry_type
        match geometry_type {
            Some(name) => {
                push_len(&mut out, name.len(), row)?;
                out.extend_from_slice(name.as_bytes());
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        // source_id
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&source_id.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Date32Array, Float64Array, Int32Array};
    use std::sync::Arc;

    fn point(x: f64, y: f64) -> Vec<u8> {
        let mut out = Vec::new();
        wkb::write_header(&mut out, wkb::POINT, false);
        wkb::write_f64(&mut out, x);
        wkb::write_f64(&mut out, y);
        out
    }

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> &'a [u8] {
            let (head, tail) = self.0.split_at(n);
            self.0 = tail;
            head
        }
        fn i16(&mut self) -> i16 {
            i16::from_be_bytes(self.take(2).try_into().unwrap())
        }
        fn i32(&mut self) -> i32 {
            i32::from_be_bytes(self.take(4).try_into().unwrap())
        }
        fn field(&mut self) -> Option<&'a [u8]> {
            let len = self.i32();
            (len >= 0).then(|| self.take(len as usize))
        }
    }

    #[test]
    fn header_and_trailer() {
        assert_eq!(&HEADER[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(HEADER.len(), 19);
        assert_eq!(TRAILER, [0xff, 0xff]);
    }

    #[test]
    fn encodes_a_small_batch() {
        let p = point(1.5, -2.0);
        let geometry = BinaryArray::from(vec![Some(p.as_slice()), None]);
        let batch = RecordBatch::try_from_iter(vec![
            (
                "name",
                Arc::new(StringArray::from(vec![Some("a \"q\"\n"), None])) as ArrayRef,
            ),
            ("n", Arc::new(Int32Array::from(vec![7, -1])) as ArrayRef),
            (
                "x",
                Arc::new(Float64Array::from(vec![f64::NAN, 0.5])) as ArrayRef,
            ),
            (
                "day",
                Arc::new(Date32Array::from(vec![19753, 0])) as ArrayRef,
            ),
            ("geometry", Arc::new(geometry) as ArrayRef),
        ])
        .unwrap();
        let out = encode_rows(
            &batch,
            &CopyOptions {
                source_id: 42,
                ..Default::default()
            },
        )
        .unwrap();
        let mut r = Reader(&out);
        // Row 1.
        assert_eq!(r.i16(), 4);
        let geom = r.field().unwrap();
        assert_eq!(geom.len(), 25);
        assert_eq!(&geom[1..5], &0x2000_0001u32.to_le_bytes());
        assert_eq!(&geom[5..9], &4326u32.to_le_bytes());
        let meta = r.field().unwrap();
        assert_eq!(meta[0], 1);
        let json: serde_json::Value = serde_json::from_slice(&meta[1..]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "a \"q\"\n", "n": 7, "x": null, "day": "2024-01-31"})
        );
        assert_eq!(r.field().unwrap(), b"Point");
        assert_eq!(r.field().unwrap(), &42i32.to_be_bytes());
        // Row 2: null geometry, null type.
        assert_eq!(r.i16(), 4);
        assert_eq!(r.field(), None);
        let meta = r.field().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&meta[1..]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": null, "n": -1, "x": 0.5, "day": "1970-01-01"})
        );
        assert_eq!(r.field(), None);
        assert_eq!(r.field().unwrap(), &42i32.to_be_bytes());
        assert!(r.0.is_empty());
    }

    #[test]
    fn invalid_wkb_names_the_row() {
        let good = point(0.0, 0.0);
        let geometry = BinaryArray::from(vec![good.as_slice(), &good[..10]]);
        let batch =
            RecordBatch::try_from_iter(vec![("geometry", Arc::new(geometry) as ArrayRef)]).unwrap();
        let err = encode_rows(&batch, &CopyOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Geometry { row: 1, .. }), "{err}");
        let err = encode_rows(
            &batch,
            &CopyOptions {
                geometry_column: "geom".into(),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)));
    }
}
