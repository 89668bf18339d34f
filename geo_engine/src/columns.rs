//! Attribute columns from text values (CSV): type inference (over every value of the
//! file, see [`Inference`]), then typed Arrow arrays, with the rows whose values do not
//! fit reported, not fatal.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::ArrayRef;
use arrow_schema::{DataType, TimeUnit};

use crate::dbf::days_from_civil;

/// The Arrow type a text column becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Int64,
    Float64,
    Bool,
    Date32,
    /// Dates and times without a UTC offset: Timestamp(Microsecond) without a zone.
    Timestamp,
    /// Dates and times of which at least one has a UTC offset ("Z", "+02:00"):
    /// Timestamp(Microsecond, "UTC"), every value moved to UTC (those without an
    /// offset taken as UTC already, as GDAL does).
    TimestampUtc,
    Utf8,
}

impl TextKind {
    pub fn data_type(&self) -> DataType {
        match self {
            TextKind::Int64 => DataType::Int64,
            TextKind::Float64 => DataType::Float64,
            TextKind::Bool => DataType::Boolean,
            TextKind::Date32 => DataType::Date32,
            TextKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            TextKind::TimestampUtc => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            TextKind::Utf8 => DataType::Utf8,
        }
    }

    /// The kind whose [`Self::data_type`] is `data_type`, if any.
    pub fn from_data_type(data_type: &DataType) -> Option<Self> {
        [
            TextKind::Int64,
            TextKind::Float64,
            TextKind::Bool,
            TextKind::Date32,
            TextKind::Timestamp,
            TextKind::TimestampUtc,
            TextKind::Utf8,
        ]
        .into_iter()
        .find(|kind| &kind.data_type() == data_type)
    }
}

/// Whether `value` is an int64 ([`parse_i64`] takes it): a sign, then digits without
/// a leading zero ("007" stays text: leading zeros are codes, postcodes or ids, not
/// numbers). Parses only numbers of 19 digits, which may overflow.
fn fits_i64(value: &[u8]) -> bool {
    let digits = value
        .strip_prefix(b"-")
        .or_else(|| value.strip_prefix(b"+"))
        .unwrap_or(value);
    match digits {
        [] => false,
        [b'0', _, ..] => false,
        _ if !digits.iter().all(u8::is_ascii_digit) => false,
        _ => {
            digits.len() <= 18 || std::str::from_utf8(value).is_ok_and(|v| v.parse::<i64>().is_ok())
        }
    }
}

fn parse_i64(value: &str) -> Option<i64> {
    if fits_i64(value.as_bytes()) {
        value.parse().ok()
    } else {
        None
    }
}

/// Whether `value` is a float64 in plain decimal notation ([`parse_f64`] takes it): a
/// sign, digits with a decimal point among or around them, an exponent; no
/// "inf"/"nan" words and no leading-zero codes ("01.5"). This is the grammar of Rust's
/// `f64::from_str` without the words, so the parse never fails on what it accepts.
fn fits_f64(value: &[u8]) -> bool {
    let digits = value
        .strip_prefix(b"-")
        .or_else(|| value.strip_prefix(b"+"))
        .unwrap_or(value);
    let code = digits.len() > 1 && digits.first() == Some(&b'0') && digits.get(1) != Some(&b'.');
    if code {
        return false;
    }
    let count = |from: usize| {
        digits.get(from..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    let whole = count(0);
    let mut at = whole;
    let mut fraction = 0;
    if digits.get(at) == Some(&b'.') {
        fraction = count(at + 1);
        at += 1 + fraction;
    }
    if whole + fraction == 0 {
        return false;
    }
    if matches!(digits.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(digits.get(at), Some(b'-' | b'+')) {
            at += 1;
        }
        let exponent = count(at);
        if exponent == 0 {
            return false;
        }
        at += exponent;
    }
    at == digits.len()
}

fn parse_f64(value: &str) -> Option<f64> {
    if fits_f64(value.as_bytes()) {
        value.parse().ok()
    } else {
        None
    }
}

fn bool_value(value: &[u8]) -> Option<bool> {
    if value.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    bool_value(value.as_bytes())
}

/// Days since the epoch of a "YYYY-MM-DD" date (of the proleptic Gregorian calendar).
pub fn parse_iso_date(value: &str) -> Option<i32> {
    iso_date(value.as_bytes())
}

fn iso_date(value: &[u8]) -> Option<i32> {
    let &[y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = value else {
        return None;
    };
    let digits = |bytes: &[u8]| {
        bytes.iter().try_fold(0i64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    days_from_civil(
        digits(&[y1, y2, y3, y4])?,
        digits(&[m1, m2])?,
        digits(&[d1, d2])?,
    )
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// A value of a date/time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// "YYYY-MM-DD": days since the epoch.
    Date(i32),
    /// A date and time without an offset: microseconds since the epoch (wall time).
    Naive(i64),
    /// A date and time with an offset: microseconds since the epoch, in UTC.
    Zoned(i64),
}

impl Stamp {
    /// Microseconds since the epoch (a date: its midnight).
    pub fn micros(self) -> i64 {
        match self {
            Stamp::Date(days) => i64::from(days) * MICROS_PER_DAY,
            Stamp::Naive(micros) | Stamp::Zoned(micros) => micros,
        }
    }
}

/// `digits` ASCII digits as a number.
fn number(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0i64, |n, &b| n * 10 + i64::from(b - b'0')),
    )
}

/// An ISO 8601 date, or date and time: "YYYY-MM-DD", then optionally "T" (or a space)
/// and "HH:MM", ":SS", ".fff" (1 to 9 digits, kept to the microsecond), and an
/// offset: "Z" or "+HH:MM", "+HHMM", "+HH" (or "-").
pub fn parse_stamp(value: &str) -> Option<Stamp> {
    stamp(value.as_bytes())
}

fn stamp(bytes: &[u8]) -> Option<Stamp> {
    let days = iso_date(bytes.get(..10)?)?;
    let Some((&separator, rest)) = bytes.get(10..).and_then(<[u8]>::split_first) else {
        return Some(Stamp::Date(days));
    };
    if !matches!(separator, b'T' | b't' | b' ') {
        return None;
    }
    let field = |at: usize, max: i64| rest.get(at..at + 2).and_then(number).filter(|&n| n <= max);
    let hours = field(0, 23)?;
    if rest.get(2) != Some(&b':') {
        return None;
    }
    let minutes = field(3, 59)?;
    let mut at = 5;
    let mut seconds = 0;
    let mut micros = 0;
    if rest.get(at) == Some(&b':') {
        seconds = field(at + 1, 59)?;
        at += 3;
        if rest.get(at) == Some(&b'.') {
            let digits = rest
                .get(at + 1..)?
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if !(1..=9).contains(&digits) {
                return None;
            }
            let fraction = rest.get(at + 1..at + 1 + digits.min(6))?;
            micros = number(fraction)? * 10i64.pow(6 - fraction.len() as u32);
            at += 1 + digits;
        }
    }
    let local = i64::from(days) * MICROS_PER_DAY
        + ((hours * 60 + minutes) * 60 + seconds) * MICROS_PER_SECOND
        + micros;
    let zone = rest.get(at..)?;
    let offset_minutes = match zone {
        [] => return Some(Stamp::Naive(local)),
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), offset @ ..] => {
            let (h, m) = match offset {
                [h1, h2] => ([*h1, *h2], [b'0', b'0']),
                [h1, h2, m1, m2] | [h1, h2, b':', m1, m2] => ([*h1, *h2], [*m1, *m2]),
                _ => return None,
            };
            let h = number(&h).filter(|&h| h <= 23)?;
            let m = number(&m).filter(|&m| m <= 59)?;
            let minutes = h * 60 + m;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    Some(Stamp::Zoned(
        local - offset_minutes * 60 * MICROS_PER_SECOND,
    ))
}

/// The kinds a column's values so far all fit, one value at a time: the CSV reader's
/// pre-pass keeps one per column over the whole file, so that the kind it picks holds
/// every value ([`build`] then finds no misfit). Empty values are nulls and fit any
/// kind. A column stops being checked once only text fits (see [`Self::is_text`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inference {
    /// Bits of the kinds still possible (`FITS_*`).
    fits: u8,
    zoned: bool,
    any: bool,
}

const FITS_INT: u8 = 1;
const FITS_FLOAT: u8 = 2;
const FITS_BOOL: u8 = 4;
const FITS_DATE: u8 = 8;
const FITS_STAMP: u8 = 16;
const FITS_ALL: u8 = FITS_INT | FITS_FLOAT | FITS_BOOL | FITS_DATE | FITS_STAMP;

impl Default for Inference {
    fn default() -> Self {
        Self {
            fits: FITS_ALL,
            zoned: false,
            any: false,
        }
    }
}

impl Inference {
    /// Narrows the kinds to those `value` fits. Bytes that are not UTF-8 fit none but
    /// text (where the builder reports them).
    pub fn add(&mut self, value: &[u8]) {
        let fits = self.fits;
        if value.is_empty() || fits == 0 {
            return;
        }
        self.any = true;
        // The classes are disjoint but for integers, which are floats too.
        self.fits = if fits & FITS_INT != 0 && fits_i64(value) {
            fits & (FITS_INT | FITS_FLOAT)
        } else if fits & FITS_FLOAT != 0 && fits_f64(value) {
            fits & FITS_FLOAT
        } else if fits & FITS_BOOL != 0 && bool_value(value).is_some() {
            fits & FITS_BOOL
        } else if fits & (FITS_DATE | FITS_STAMP) != 0 {
            match stamp(value) {
                Some(Stamp::Date(_)) => fits & (FITS_DATE | FITS_STAMP),
                Some(Stamp::Naive(_)) => fits & FITS_STAMP,
                Some(Stamp::Zoned(_)) => {
                    self.zoned = true;
                    fits & FITS_STAMP
                }
                None => 0,
            }
        } else {
            0
        };
    }

    /// Narrows the kinds to those the values added to `other` fit too (the inference
    /// of a column over two parts of a file).
    pub fn merge(&mut self, other: &Inference) {
        self.fits &= other.fits;
        self.zoned |= other.zoned;
        self.any |= other.any;
    }

    /// Whether only text fits (more values change nothing).
    pub fn is_text(&self) -> bool {
        self.fits == 0
    }

    /// The narrowest kind holding every value added (text when there was none).
    pub fn kind(&self) -> TextKind {
        let fits = self.fits;
        if !self.any {
            TextKind::Utf8
        } else if fits & FITS_INT != 0 {
            TextKind::Int64
        } else if fits & FITS_FLOAT != 0 {
            TextKind::Float64
        } else if fits & FITS_BOOL != 0 {
            TextKind::Bool
        } else if fits & FITS_DATE != 0 {
            TextKind::Date32
        } else if fits & FITS_STAMP != 0 && self.zoned {
            TextKind::TimestampUtc
        } else if fits & FITS_STAMP != 0 {
            TextKind::Timestamp
        } else {
            TextKind::Utf8
        }
    }
}

/// The narrowest kind holding every non-empty value.
pub fn infer<'a>(values: impl Iterator<Item = &'a str>) -> TextKind {
    let mut inference = Inference::default();
    for value in values {
        inference.add(value.as_bytes());
        if inference.is_text() {
            break;
        }
    }
    inference.kind()
}

/// A column from text values (`None`: the row has no such field). Empty text is
/// null, except in text columns where it stays "". Returns the array and the rows
/// whose value does not fit the kind (those get nulls).
pub fn build<'a>(
    kind: TextKind,
    values: impl ExactSizeIterator<Item = Option<&'a str>>,
) -> (ArrayRef, Vec<usize>) {
    let n = values.len();
    let mut bad = Vec::new();
    macro_rules! typed {
        ($builder:expr, $parse:expr) => {{
            let mut builder = $builder;
            for (row, value) in values.enumerate() {
                match value.filter(|v| !v.is_empty()) {
                    None => builder.append_null(),
                    Some(text) => match $parse(text) {
                        Some(parsed) => builder.append_value(parsed),
                        None => {
                            bad.push(row);
                            builder.append_null();
                        }
                    },
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }};
    }
    let array = match kind {
        TextKind::Int64 => typed!(Int64Builder::with_capacity(n), parse_i64),
        TextKind::Float64 => typed!(Float64Builder::with_capacity(n), parse_f64),
        TextKind::Bool => typed!(BooleanBuilder::with_capacity(n), parse_bool),
        TextKind::Date32 => typed!(Date32Builder::with_capacity(n), parse_iso_date),
        TextKind::Timestamp => {
            typed!(
                TimestampMicrosecondBuilder::with_capacity(n),
                |text| match parse_stamp(text) {
                    Some(stamp @ (Stamp::Date(_) | Stamp::Naive(_))) => Some(stamp.micros()),
                    _ => None,
                }
            )
        }
        TextKind::TimestampUtc => typed!(
            TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            |text| parse_stamp(text).map(Stamp::micros)
        ),
        TextKind::Utf8 => {
            let mut builder = StringBuilder::with_capacity(n, n * 8);
            for value in values {
                match value {
                    Some(text) => builder.append_value(text),
                    None => builder.append_null(),
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }
    };
    (array, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use arrow_array::Array;

    #[test]
    fn inference() {
        assert_eq!(infer(["1", "", "-20"].into_iter()), TextKind::Int64);
        assert_eq!(infer(["1", "2.5"].into_iter()), TextKind::Float64);
        assert_eq!(infer(["1e3", "0.5"].into_iter()), TextKind::Float64);
        assert_eq!(infer(["007", "12"].into_iter()), TextKind::Utf8);
        assert_eq!(infer(["true", "False"].into_iter()), TextKind::Bool);
        assert_eq!(infer(["2024-01-31", ""].into_iter()), TextKind::Date32);
        assert_eq!(infer(["2024-02-30"].into_iter()), TextKind::Utf8);
        assert_eq!(infer(["nan"].into_iter()), TextKind::Utf8);
        assert_eq!(infer(["", ""].into_iter()), TextKind::Utf8);
        // Widened, never narrowed: the order of the values does not matter.
        assert_eq!(infer(["2.5", "1"].into_iter()), TextKind::Float64);
        assert_eq!(infer(["1", "x", "2"].into_iter()), TextKind::Utf8);
        assert_eq!(infer(["1", "true"].into_iter()), TextKind::Utf8);
        assert_eq!(
            infer(["99999999999999999999"].into_iter()),
            TextKind::Float64
        );
        assert_eq!(
            infer(["2024-01-31", "2024-01-31T10:20:30"].into_iter()),
            TextKind::Timestamp
        );
        assert_eq!(
            infer(["2024-01-31 10:20", "", "2024-01-31T10:20:30Z"].into_iter()),
            TextKind::TimestampUtc
        );
        assert_eq!(
            infer(["2024-01-31T10:20:30", "7"].into_iter()),
            TextKind::Utf8
        );
        assert_eq!(infer(["2024-01-31", "2024-01"].into_iter()), TextKind::Utf8);
    }

    #[test]
    fn number_checks_agree_with_the_parsers() {
        // Every string of up to 5 characters over an alphabet of number parts (and a
        // few longer ones): the checks the inference uses accept exactly what Rust's
        // parsers (with the codes and words refused) accept.
        let alphabet = ["0", "1", "9", ".", "e", "E", "-", "+", "x"];
        let mut values = vec![String::new()];
        let mut all = Vec::new();
        for _ in 0..5 {
            values = values
                .iter()
                .flat_map(|v| alphabet.iter().map(move |c| format!("{v}{c}")))
                .collect();
            all.extend(values.iter().cloned());
        }
        all.extend(
            [
                "9223372036854775807",
                "9223372036854775808",
                "-9223372036854775808",
                "-9223372036854775809",
                "123456789012345678",
                "1e400",
                "inf",
                "NaN",
                "0.",
                "-.5",
                "1_000",
                "١٢",
            ]
            .map(String::from),
        );
        for value in &all {
            let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
            let code = digits.len() > 1 && digits.starts_with('0');
            let int = !code && value.parse::<i64>().is_ok();
            assert_eq!(fits_i64(value.as_bytes()), int, "{value:?}");
            let word = !digits.starts_with(|c: char| c.is_ascii_digit() || c == '.');
            let code = code && !digits.starts_with("0.");
            let float = !word && !code && value.parse::<f64>().is_ok();
            assert_eq!(fits_f64(value.as_bytes()), float, "{value:?}");
            assert_eq!(parse_f64(value).is_some(), float, "{value:?}");
        }
    }

    #[test]
    fn iso_dates() {
        assert_eq!(parse_iso_date("1970-01-01"), Some(0));
        assert_eq!(parse_iso_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_iso_date("0000-03-01"), Some(-719_468));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "2024/01/01",
            "+024-01-01",
            "2024-01-1é",
        ] {
            assert_eq!(parse_iso_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn inference_stops_at_text() {
        let mut inference = Inference::default();
        inference.add(b"12");
        assert!(!inference.is_text());
        assert_eq!(inference.kind(), TextKind::Int64);
        inference.add(b"1.5");
        assert_eq!(inference.kind(), TextKind::Float64);
        inference.add(b"twelve");
        assert!(inference.is_text());
        inference.add(b"3");
        assert_eq!(inference.kind(), TextKind::Utf8);
        // Two parts of a column, merged, give what one pass over both gives.
        let parts = [
            ["1", "", "2"],
            ["2024-01-01", "", ""],
            ["", "", ""],
            ["1.5", "3", ""],
        ];
        for first in &parts {
            for second in &parts {
                let mut merged = Inference::default();
                first.iter().for_each(|v| merged.add(v.as_bytes()));
                let mut other = Inference::default();
                second.iter().for_each(|v| other.add(v.as_bytes()));
                merged.merge(&other);
                let whole = infer(first.iter().chain(second).copied());
                assert_eq!(merged.kind(), whole, "{first:?} {second:?}");
            }
        }
        let mut invalid = Inference::default();
        invalid.add(b"1");
        invalid.add(b"\xff");
        assert_eq!(invalid.kind(), TextKind::Utf8);
    }

    #[test]
    fn stamps() {
        let day = 19_753; // 2024-01-31
        let at = |h: i64, m: i64, s: i64| (day * 86_400 + (h * 60 + m) * 60 + s) * 1_000_000;
        assert_eq!(parse_stamp("2024-01-31"), Some(Stamp::Date(day as i32)));
        assert_eq!(
            parse_stamp("2024-01-31T10:20:30"),
            Some(Stamp::Naive(at(10, 20, 30)))
        );
        assert_eq!(
            parse_stamp("2024-01-31 10:20"),
            Some(Stamp::Naive(at(10, 20, 0)))
        );
        assert_eq!(
            parse_stamp("2024-01-31T10:20:30.123456789"),
            Some(Stamp::Naive(at(10, 20, 30) + 123_456))
        );
        assert_eq!(
            parse_stamp("2024-01-31T10:20:30.5Z"),
            Some(Stamp::Zoned(at(10, 20, 30) + 500_000))
        );
        for zoned in [
            "2024-01-31T12:20:30+02:00",
            "2024-01-31T12:20:30+0200",
            "2024-01-31T12:20:30+02",
            "2024-01-31T05:50:30-04:30",
        ] {
            assert_eq!(
                parse_stamp(zoned),
                Some(Stamp::Zoned(at(10, 20, 30))),
                "{zoned}"
            );
        }
        for bad in [
            "2024-01-31T",
            "2024-01-31T24:00",
            "2024-01-31T10:60",
            "2024-01-31T10:20:61",
            "2024-01-31T10",
            "2024-01-31T10:20:30.",
            "2024-01-31T10:20:30.1234567890",
            "2024-01-31T10:20:30+2",
            "2024-01-31T10:20:30 UTC",
            "2024-01-31x10:20",
            "2024-02-30T10:20",
            "2024-01-31T10:20:3é",
        ] {
            assert_eq!(parse_stamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn building_timestamps() {
        let values = [
            Some("2024-01-31"),
            Some("2024-01-31T00:00:01"),
            Some(""),
            None,
        ];
        let (array, bad) = build(TextKind::Timestamp, values.into_iter());
        assert!(bad.is_empty());
        assert_eq!(array.data_type(), &TextKind::Timestamp.data_type());
        let stamps = array.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(stamps.value(0), 19_753 * 86_400_000_000);
        assert_eq!(stamps.value(1), 19_753 * 86_400_000_000 + 1_000_000);
        assert!(stamps.is_null(2) && stamps.is_null(3));
        // A zoned value does not fit a column without zone; it does one in UTC.
        let values = [Some("2024-01-31T01:00:00+01:00"), Some("2024-01-31")];
        let (_, bad) = build(TextKind::Timestamp, values.into_iter());
        assert_eq!(bad, vec![0]);
        let (array, bad) = build(TextKind::TimestampUtc, values.into_iter());
        assert!(bad.is_empty());
        assert_eq!(array.data_type(), &TextKind::TimestampUtc.data_type());
        let stamps = array.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(stamps.value(0), stamps.value(1));
    }

    #[test]
    fn building_reports_misfits() {
        let (array, bad) = build(
            TextKind::Int64,
            vec![Some("1"), Some(""), Some("x"), None].into_iter(),
        );
        let ints = array.as_primitive::<Int64Type>();
        assert_eq!(ints.value(0), 1);
        assert!(ints.is_null(1) && ints.is_null(2) && ints.is_null(3));
        assert_eq!(bad, vec![2]);
        let (array, bad) = build(TextKind::Utf8, vec![Some(""), None].into_iter());
        assert_eq!(array.as_string::<i32>().value(0), "");
        assert!(array.is_null(1) && bad.is_empty());
    }
}
