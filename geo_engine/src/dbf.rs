//! dBASE (.dbf) attribute tables: the header, the field descriptors, and columns
//! decoded from fixed-width records into Arrow arrays, typed as GDAL types them.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema};

use crate::encoding::TextEncoding;
use crate::error::{Error, Location, Result};

/// The Arrow type a DBF field becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Utf8,
    Int32,
    Int64,
    Float64,
    Bool,
    Date,
}

impl FieldKind {
    /// GDAL's rule: C/M/other → string; N/F without decimals → int32 below width 10,
    /// int64 below width 19, float64 above; with decimals → float64; L → bool; D → date.
    pub fn of(native: u8, width: usize, decimals: u8) -> Self {
        match native {
            b'N' | b'F' if decimals == 0 && width < 10 => FieldKind::Int32,
            b'N' | b'F' if decimals == 0 && width < 19 => FieldKind::Int64,
            b'N' | b'F' => FieldKind::Float64,
            b'L' => FieldKind::Bool,
            b'D' => FieldKind::Date,
            _ => FieldKind::Utf8,
        }
    }

    pub fn data_type(&self) -> DataType {
        match self {
            FieldKind::Utf8 => DataType::Utf8,
            FieldKind::Int32 => DataType::Int32,
            FieldKind::Int64 => DataType::Int64,
            FieldKind::Float64 => DataType::Float64,
            FieldKind::Bool => DataType::Boolean,
            FieldKind::Date => DataType::Date32,
        }
    }
}

/// One field descriptor, its name still undecoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbfField {
    pub raw_name: Vec<u8>,
    pub native: u8,
    /// Offset of the field in a record (the deletion flag is byte 0).
    pub offset: usize,
    pub width: usize,
    pub decimals: u8,
    pub kind: FieldKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbfHeader {
    pub record_count: u64,
    pub header_len: u64,
    pub record_len: usize,
    /// The language driver id (byte 29): the code page, when set.
    pub ldid: u8,
    pub fields: Vec<DbfField>,
}

fn u16_le(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl DbfHeader {
    /// The length of the fixed part that tells how long the whole header is.
    pub const PREFIX_LEN: usize = 32;

    /// Reads the header length from the first 32 bytes.
    pub fn header_len(prefix: &[u8], path: &Path) -> Result<u64> {
        u16_le(prefix, 8).map(u64::from).ok_or_else(|| {
            Error::format(
                Location::file(path),
                "not a dBASE file: header shorter than 32 bytes",
            )
        })
    }

    /// Parses the full header (`bytes` holds at least `header_len` bytes).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |message: String| Error::format(Location::file(path), message);
        let record_count = u32_le(bytes, 4).ok_or_else(|| bad("DBF header truncated".into()))?;
        let header_len = u16_le(bytes, 8).ok_or_else(|| bad("DBF header truncated".into()))?;
        let record_len = u16_le(bytes, 10).ok_or_else(|| bad("DBF header truncated".into()))?;
        let ldid = bytes.get(29).copied().unwrap_or(0);
        let header_len = usize::from(header_len);
        let record_len = usize::from(record_len);
        if header_len < 33 || bytes.len() < header_len {
            return Err(bad(format!(
                "not a dBASE file: header length {header_len} (file has {} bytes)",
                bytes.len()
            )));
        }
        let mut fields = Vec::new();
        let mut offset = 1usize;
        let mut at = 32usize;
        while at + 32 <= header_len {
            let descriptor = bytes
                .get(at..at + 32)
                .ok_or_else(|| bad("DBF header truncated".into()))?;
            if descriptor.first() == Some(&0x0D) {
                break;
            }
            let name_bytes = descriptor.get(..11).unwrap_or_default();
            let name_end = name_bytes
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(name_bytes.len());
            let raw_name = name_bytes.get(..name_end).unwrap_or_default().to_vec();
            let native = descriptor
                .get(11)
                .copied()
                .unwrap_or(b'C')
                .to_ascii_uppercase();
            let mut width = usize::from(descriptor.get(16).copied().unwrap_or(0));
            let mut decimals = descriptor.get(17).copied().unwrap_or(0);
            if native == b'C' {
                // Clipper/FoxPro keep long character widths in the decimals byte, as
                // shapelib reads them.
                width += usize::from(decimals) * 256;
                decimals = 0;
            }
            let kind = FieldKind::of(native, width, decimals);
            fields.push(DbfField {
                raw_name,
                native,
                offset,
                width,
                decimals,
                kind,
            });
            offset += width;
            at += 32;
        }
        if offset > record_len {
            return Err(bad(format!(
                "DBF fields are {} bytes wide but records are {record_len} bytes",
                offset
            )));
        }
        Ok(Self {
            record_count: u64::from(record_count),
            header_len: header_len as u64,
            record_len,
            ldid,
            fields,
        })
    }

    /// Checks that a file of `file_len` bytes holds every record the header announces.
    pub fn check_len(&self, file_len: u64, path: &Path) -> Result<()> {
        let needed = (self.record_len as u64)
            .checked_mul(self.record_count)
            .and_then(|body| body.checked_add(self.header_len))
            .unwrap_or(u64::MAX);
        if file_len < needed {
            let complete =
                (file_len.saturating_sub(self.header_len)) / (self.record_len.max(1) as u64);
            return Err(Error::format(
                Location::record(path, complete + 1),
                format!(
                    "file is truncated: its header announces {} records ({needed} bytes), it has {file_len} bytes",
                    self.record_count
                ),
            ));
        }
        Ok(())
    }

    /// Decoded field names; a name that does not decode is an error naming the field.
    pub fn field_names(&self, encoding: TextEncoding, path: &Path) -> Result<Vec<String>> {
        self.fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let raw = trim(&field.raw_name);
                encoding.decode(raw).map(|s| s.into_owned()).ok_or_else(|| {
                    Error::encoding(
                        Location::file(path),
                        format!("field name #{} is not valid {}", i + 1, encoding.name()),
                    )
                })
            })
            .collect()
    }

    pub fn arrow_fields(&self, names: &[String]) -> Vec<Field> {
        self.fields
            .iter()
            .zip(names)
            .map(|(field, name)| Field::new(name.clone(), field.kind.data_type(), true))
            .collect()
    }
}

/// A whole .dbf held in memory as one record batch (deleted records left out), its
/// text decoded with `encoding`, else the language byte's code page, else
/// ISO-8859-1. `path` names the file in messages.
pub fn read_table(
    bytes: &[u8],
    path: &Path,
    encoding: Option<TextEncoding>,
) -> Result<RecordBatch> {
    let prefix = bytes.get(..DbfHeader::PREFIX_LEN).ok_or_else(|| {
        Error::format(
            Location::file(path),
            "not a dBASE file: shorter than its 32-byte header",
        )
    })?;
    let header_len = usize::try_from(DbfHeader::header_len(prefix, path)?)
        .map_err(|_| Error::InvalidArgument("DBF header too large".into()))?;
    let header_bytes = bytes.get(..header_len).ok_or_else(|| {
        Error::format(
            Location::file(path),
            format!(
                "file is truncated: the header is {header_len} bytes, the file {}",
                bytes.len()
            ),
        )
    })?;
    let header = DbfHeader::parse(header_bytes, path)?;
    header.check_len(bytes.len() as u64, path)?;
    let text = encoding
        .or_else(|| TextEncoding::from_ldid(header.ldid))
        .unwrap_or(TextEncoding::Latin1);
    let names = header.field_names(text, path)?;
    let body = bytes.get(header_len..).unwrap_or_default();
    let mut rows = Rows {
        records: Vec::new(),
        numbers: Vec::new(),
    };
    let record_count = usize::try_from(header.record_count).unwrap_or(usize::MAX);
    for (i, record) in body
        .chunks_exact(header.record_len.max(1))
        .take(record_count)
        .enumerate()
    {
        if record.first() != Some(&b'*') {
            rows.records.push(record);
            rows.numbers.push(i as u64 + 1);
        }
    }
    let columns = header
        .fields
        .iter()
        .zip(&names)
        .map(|(field, name)| build_column(field, name, &rows, text, path))
        .collect::<Result<Vec<ArrayRef>>>()?;
    let schema = Arc::new(Schema::new(header.arrow_fields(&names)));
    let options = RecordBatchOptions::new().with_row_count(Some(rows.records.len()));
    Ok(RecordBatch::try_new_with_options(
        schema, columns, &options,
    )?)
}

/// Strips what shapelib strips: everything from the first NUL, then spaces both sides.
fn trim(value: &[u8]) -> &[u8] {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    let value = value.get(..end).unwrap_or_default();
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let stop = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |i| i + 1);
    value.get(start..stop).unwrap_or_default()
}

/// The rows of one batch: record bytes and their 1-based record numbers.
pub struct Rows<'a> {
    pub records: Vec<&'a [u8]>,
    pub numbers: Vec<u64>,
}

/// Builds one Arrow column from the rows.
pub fn build_column(
    field: &DbfField,
    name: &str,
    rows: &Rows<'_>,
    encoding: TextEncoding,
    path: &Path,
) -> Result<ArrayRef> {
    let values = rows
        .records
        .iter()
        .zip(&rows.numbers)
        .map(|(record, &number)| {
            let raw = record
                .get(field.offset..field.offset + field.width)
                .ok_or_else(|| {
                    Error::format(
                        Location::record(path, number),
                        "DBF record shorter than its fields",
                    )
                })?;
            Ok::<_, Error>((trim(raw), number))
        });
    let bad_value = |number: u64, value: &[u8], what: &str| {
        Error::format(
            Location::record(path, number),
            format!(
                "field {name:?}: {:?} is not {what}",
                String::from_utf8_lossy(value)
            ),
        )
    };
    let n = rows.records.len();
    let array: ArrayRef = match field.kind {
        FieldKind::Utf8 => {
            let mut builder = StringBuilder::with_capacity(n, n * field.width.min(64));
            for item in values {
                let (value, number) = item?;
                if value.is_empty() {
                    builder.append_null();
                    continue;
                }
                let text = encoding.decode(value).ok_or_else(|| {
                    Error::encoding(
                        Location::record(path, number),
                        format!(
                            "field {name:?}: bytes {:?} are not valid {}",
                            String::from_utf8_lossy(value),
                            encoding.name()
                        ),
                    )
                })?;
                builder.append_value(text);
            }
            Arc::new(builder.finish())
        }
        FieldKind::Int32 => {
            let mut builder = Int32Builder::with_capacity(n);
            for item in values {
                let (value, number) = item?;
                if is_null_number(value) {
                    builder.append_null();
                    continue;
                }
                let parsed = parse_int(value)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| bad_value(number, value, "a 32-bit integer"))?;
                builder.append_value(parsed);
            }
            Arc::new(builder.finish())
        }
        FieldKind::Int64 => {
            let mut builder = Int64Builder::with_capacity(n);
            for item in values {
                let (value, number) = item?;
                if is_null_number(value) {
                    builder.append_null();
                    continue;
                }
                let parsed =
                    parse_int(value).ok_or_else(|| bad_value(number, value, "an integer"))?;
                builder.append_value(parsed);
            }
            Arc::new(builder.finish())
        }
        FieldKind::Float64 => {
            let mut builder = Float64Builder::with_capacity(n);
            for item in values {
                let (value, number) = item?;
                if is_null_number(value) {
                    builder.append_null();
                    continue;
                }
                let parsed = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .ok_or_else(|| bad_value(number, value, "a number"))?;
                builder.append_value(parsed);
            }
            Arc::new(builder.finish())
        }
        FieldKind::Bool => {
            let mut builder = BooleanBuilder::with_capacity(n);
            for item in values {
                let (value, _) = item?;
                // GDAL: '?' is null, T/t/Y/y true, anything else (blank too) false.
                match value.first() {
                    Some(b'?') => builder.append_null(),
                    Some(b'T' | b't' | b'Y' | b'y') => builder.append_value(true),
                    _ => builder.append_value(false),
                }
            }
            Arc::new(builder.finish())
        }
        FieldKind::Date => {
            let mut builder = Date32Builder::with_capacity(n);
            for item in values {
                let (value, number) = item?;
                if value.is_empty() || value.iter().all(|&b| b == b'0') {
                    builder.append_null();
                    continue;
                }
                let days = parse_date(value).ok_or_else(|| bad_value(number, value, "a date"))?;
                builder.append_value(days);
            }
            Arc::new(builder.finish())
        }
    };
    Ok(array)
}

/// Numeric nulls: blank, or filled with '*' (overflow marker), as shapelib reads them.
fn is_null_number(value: &[u8]) -> bool {
    value.is_empty() || value.first() == Some(&b'*')
}

/// An integer the way GDAL reads an integer field: digits with an optional sign, and
/// a fractional part (".0", ".75") that is dropped. Anything else is refused.
pub fn parse_int(value: &[u8]) -> Option<i64> {
    let (negative, digits) = match value.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, value),
    };
    let int_len = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let (int_part, rest) = digits.split_at(int_len);
    let fraction_ok = match rest.split_first() {
        None => true,
        Some((b'.', fraction)) => fraction.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    if !fraction_ok || (int_part.is_empty() && rest.len() <= 1) {
        return None;
    }
    let mut result: i64 = 0;
    for &digit in int_part {
        let d = i64::from(digit - b'0');
        result = result.checked_mul(10)?;
        result = if negative {
            result.checked_sub(d)?
        } else {
            result.checked_add(d)?
        };
    }
    Some(result)
}

/// Days since 1970-01-01 of "YYYYMMDD" (also "YYYY-MM-DD" and GDAL's "MM/DD/YYYY").
pub fn parse_date(value: &[u8]) -> Option<i32> {
    let text = std::str::from_utf8(value).ok()?;
    let num = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    let (year, month, day) = if text.len() == 8 {
        (
            num(text.get(0..4)?)?,
            num(text.get(4..6)?)?,
            num(text.get(6..8)?)?,
        )
    } else if text.len() == 10 && text.get(4..5) == Some("-") && text.get(7..8) == Some("-") {
        (
            num(text.get(0..4)?)?,
            num(text.get(5..7)?)?,
            num(text.get(8..10)?)?,
        )
    } else if text.len() == 10 && text.get(2..3) == Some("/") && text.get(5..6) == Some("/") {
        (
            num(text.get(6..10)?)?,
            num(text.get(0..2)?)?,
            num(text.get(3..5)?)?,
        )
    } else {
        return None;
    };
    days_from_civil(year, month, day)
}

/// Days since the Unix epoch of a proleptic Gregorian date, `None` if it is not one.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i32> {
    if !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_len = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day > month_len {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow_array::{
        Array, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray,
    };

    /// A DBF file from field specs (name, type, width, decimals) and text values.
    pub fn dbf_bytes(
        fields: &[(&str, u8, u8, u8)],
        rows: &[Vec<&[u8]>],
        deleted: &[usize],
        ldid: u8,
    ) -> Vec<u8> {
        let header_len = 32 + 32 * fields.len() + 1;
        let record_len = 1 + fields.iter().map(|f| usize::from(f.2)).sum::<usize>();
        let mut out = vec![3u8, 124, 1, 1];
        out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
        out.extend_from_slice(&(record_len as u16).to_le_bytes());
        out.extend_from_slice(&[0u8; 17]);
        out.push(ldid);
        out.extend_from_slice(&[0, 0]);
        for (name, ty, width, decimals) in fields {
            let mut name_bytes = name.as_bytes().to_vec();
            name_bytes.resize(11, 0);
            out.extend_from_slice(&name_bytes);
            out.push(*ty);
            out.extend_from_slice(&[0; 4]);
            out.push(*width);
            out.push(*decimals);
            out.extend_from_slice(&[0; 14]);
        }
        out.push(0x0D);
        for (i, row) in rows.iter().enumerate() {
            out.push(if deleted.contains(&i) { b'*' } else { b' ' });
            for (value, field) in row.iter().zip(fields) {
                let width = usize::from(field.2);
                let mut cell = value.to_vec();
                if matches!(field.1, b'N' | b'F') {
                    let mut padded = vec![b' '; width.saturating_sub(cell.len())];
                    padded.extend(cell);
                    cell = padded;
                } else {
                    cell.resize(width, b' ');
                }
                out.extend_from_slice(&cell);
            }
        }
        out.push(0x1A);
        out
    }

    #[test]
    fn types_as_gdal() {
        assert_eq!(FieldKind::of(b'N', 9, 0), FieldKind::Int32);
        assert_eq!(FieldKind::of(b'N', 10, 0), FieldKind::Int64);
        assert_eq!(FieldKind::of(b'N', 18, 0), FieldKind::Int64);
        assert_eq!(FieldKind::of(b'N', 19, 0), FieldKind::Float64);
        assert_eq!(FieldKind::of(b'F', 8, 0), FieldKind::Int32);
        assert_eq!(FieldKind::of(b'N', 12, 3), FieldKind::Float64);
        assert_eq!(FieldKind::of(b'L', 1, 0), FieldKind::Bool);
        assert_eq!(FieldKind::of(b'D', 8, 0), FieldKind::Date);
        assert_eq!(FieldKind::of(b'M', 10, 0), FieldKind::Utf8);
    }

    #[test]
    fn parses_header_and_columns() {
        let fields = [
            ("name", b'C', 10, 0),
            ("n", b'N', 5, 0),
            ("big", b'N', 12, 0),
            ("x", b'N', 10, 2),
            ("ok", b'L', 1, 0),
            ("day", b'D', 8, 0),
        ];
        let rows = vec![
            vec![
                &b"caf\xe9"[..],
                b"-12",
                b"123456789012",
                b"1.25",
                b"T",
                b"20240131",
            ],
            vec![&b"  "[..], b"", b"*", b"", b"?", b"00000000"],
            vec![&b" x y "[..], b"7.0", b"0", b"-3", b"n", b"        "],
        ];
        let bytes = dbf_bytes(&fields, &rows, &[], 87);
        let path = Path::new("t.dbf");
        let header = DbfHeader::parse(&bytes, path).unwrap();
        assert_eq!(header.record_count, 3);
        assert_eq!(header.ldid, 87);
        assert_eq!(header.fields.len(), 6);
        let encoding = TextEncoding::from_ldid(header.ldid).unwrap();
        let names = header.field_names(encoding, path).unwrap();
        assert_eq!(names, ["name", "n", "big", "x", "ok", "day"]);
        let start = header.header_len as usize;
        let records: Vec<&[u8]> = (0..3)
            .map(|i| &bytes[start + i * header.record_len..start + (i + 1) * header.record_len])
            .collect();
        let rows = Rows {
            records,
            numbers: vec![1, 2, 3],
        };
        let col =
            |i: usize| build_column(&header.fields[i], &names[i], &rows, encoding, path).unwrap();
        let s = col(0);
        let s = s.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(s.value(0), "café");
        assert!(s.is_null(1));
        assert_eq!(s.value(2), "x y");
        let n = col(1);
        let n = n.as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!((n.value(0), n.is_null(1), n.value(2)), (-12, true, 7));
        let big = col(2);
        let big = big.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(
            (big.value(0), big.is_null(1), big.value(2)),
            (123_456_789_012, true, 0)
        );
        let x = col(3);
        let x = x.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!((x.value(0), x.is_null(1), x.value(2)), (1.25, true, -3.0));
        let ok = col(4);
        let ok = ok.as_any().downcast_ref::<BooleanArray>().unwrap();
        assert_eq!(
            (ok.value(0), ok.is_null(1), ok.value(2)),
            (true, true, false)
        );
        let day = col(5);
        let day = day.as_any().downcast_ref::<Date32Array>().unwrap();
        assert_eq!(day.value(0), 19753);
        assert!(day.is_null(1) && day.is_null(2));
    }

    #[test]
    fn bad_values_name_the_record() {
        let fields = [("name", b'C', 4, 0), ("n", b'N', 4, 0)];
        let rows = vec![vec![&b"ok"[..], b"1"], vec![&b"\xff\xfe"[..], b"12a"]];
        let bytes = dbf_bytes(&fields, &rows, &[], 0);
        let path = Path::new("t.dbf");
        let header = DbfHeader::parse(&bytes, path).unwrap();
        let start = header.header_len as usize;
        let records: Vec<&[u8]> = (0..2)
            .map(|i| &bytes[start + i * header.record_len..start + (i + 1) * header.record_len])
            .collect();
        let rows = Rows {
            records,
            numbers: vec![1, 2],
        };
        let err =
            build_column(&header.fields[0], "name", &rows, TextEncoding::Utf8, path).unwrap_err();
        assert!(matches!(err, Error::Encoding { .. }));
        assert!(err.to_string().contains("t.dbf, record 2"), "{err}");
        let err =
            build_column(&header.fields[1], "n", &rows, TextEncoding::Utf8, path).unwrap_err();
        assert!(err.to_string().contains("record 2"), "{err}");
    }

    #[test]
    fn whole_tables_from_memory() {
        let fields = [("name", b'C', 6, 0), ("n", b'N', 4, 0)];
        let rows = vec![
            vec![&b"caf\xe9"[..], b"1"],
            vec![&b"gone"[..], b"2"],
            vec![&b"x"[..], b""],
        ];
        let bytes = dbf_bytes(&fields, &rows, &[1], 0);
        let path = Path::new("t.dbf");
        let batch = read_table(&bytes, path, None).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let names = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(names.value(0), "café");
        let n = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        assert!(n.is_null(1));
        let err = read_table(&bytes[..bytes.len() - 8], path, None).unwrap_err();
        assert!(err.to_string().contains("t.dbf, record 3"), "{err}");
        assert!(read_table(&bytes[..20], path, None).is_err());
        let err = read_table(&bytes, path, Some(TextEncoding::Utf8)).unwrap_err();
        assert!(matches!(err, Error::Encoding { .. }), "{err}");
    }

    #[test]
    fn integers_and_dates() {
        assert_eq!(parse_int(b"12.7"), Some(12));
        assert_eq!(parse_int(b"-5"), Some(-5));
        assert_eq!(parse_int(b".5"), Some(0));
        assert_eq!(parse_int(b"12a"), None);
        assert_eq!(parse_int(b"-"), None);
        assert_eq!(parse_int(b"99999999999999999999"), None);
        assert_eq!(parse_date(b"19700101"), Some(0));
        assert_eq!(parse_date(b"2024-02-29"), Some(19782));
        assert_eq!(parse_date(b"02/29/2024"), Some(19782));
        assert_eq!(parse_date(b"20230229"), None);
        assert_eq!(parse_date(b"2024013"), None);
        assert!(DbfHeader::parse(b"hello", Path::new("x.dbf")).is_err());
    }
}
