//! Attribute columns from text values (CSV): type inference over a sample, then
//! typed Arrow arrays, with the rows whose values do not fit reported, not fatal.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
};
use arrow_array::ArrayRef;
use arrow_schema::DataType;

use crate::dbf::parse_date;

/// The Arrow type a text column becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Int64,
    Float64,
    Bool,
    Date32,
    Utf8,
}

impl TextKind {
    pub fn data_type(&self) -> DataType {
        match self {
            TextKind::Int64 => DataType::Int64,
            TextKind::Float64 => DataType::Float64,
            TextKind::Bool => DataType::Boolean,
            TextKind::Date32 => DataType::Date32,
            TextKind::Utf8 => DataType::Utf8,
        }
    }
}

fn parse_i64(value: &str) -> Option<i64> {
    // "007" stays text: leading zeros are codes (postcodes, ids), not numbers.
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    value.parse().ok()
}

fn parse_f64(value: &str) -> Option<f64> {
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    // Only plain decimal notation: no "inf"/"nan" words, no leading-zero codes.
    let plain = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.');
    let code = digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0.");
    if !plain || code {
        return None;
    }
    value.parse().ok()
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Days since the epoch of a "YYYY-MM-DD" date.
pub fn parse_iso_date(value: &str) -> Option<i32> {
    if value.len() == 10 && value.as_bytes().get(4) == Some(&b'-') {
        parse_date(value.as_bytes())
    } else {
        None
    }
}

/// The narrowest kind holding every non-empty value.
pub fn infer<'a>(values: impl Iterator<Item = &'a str>) -> TextKind {
    let mut int = true;
    let mut float = true;
    let mut boolean = true;
    let mut date = true;
    let mut any = false;
    for value in values.filter(|v| !v.is_empty()) {
        any = true;
        int = int && parse_i64(value).is_some();
        float = float && parse_f64(value).is_some();
        boolean = boolean && parse_bool(value).is_some();
        date = date && parse_iso_date(value).is_some();
        if !(int || float || boolean || date) {
            return TextKind::Utf8;
        }
    }
    match (any, int, float, boolean, date) {
        (false, ..) => TextKind::Utf8,
        (_, true, ..) => TextKind::Int64,
        (_, _, true, ..) => TextKind::Float64,
        (_, _, _, true, _) => TextKind::Bool,
        (_, _, _, _, true) => TextKind::Date32,
        _ => TextKind::Utf8,
    }
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
    use arrow_array::types::Int64Type;
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
