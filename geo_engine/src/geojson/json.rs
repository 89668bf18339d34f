//! A small, strict JSON reader over one feature's bytes: no tree is built, the caller
//! walks objects and arrays and takes the values it needs (borrowed where possible),
//! skipping the rest. Everything it passes over is checked against the JSON grammar
//! (RFC 8259), strings as UTF-8; nesting is limited to [`MAX_DEPTH`] levels.

use std::borrow::Cow;

/// Deeper nesting than this is refused rather than risking the stack.
pub const MAX_DEPTH: usize = 64;

pub type JsonResult<T> = Result<T, String>;

/// A scalar or nested value, borrowed from the text.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// An integer that fits i64, with its text.
    Int(i64, &'a str),
    /// Any other number, with its text.
    Float(f64, &'a str),
    Str(Cow<'a, str>),
    /// An object or array: its JSON text.
    Nested(&'a str),
}

/// What kind of value is next, decided from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Literal,
}

/// A cursor over JSON text.
#[derive(Clone)]
pub struct Json<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Json<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    /// The text from `start` to the cursor (every position the cursor stops at is
    /// on a character boundary).
    fn since(&self, start: usize) -> &'a str {
        self.text.get(start..self.pos).unwrap_or_default()
    }

    /// Moves the cursor to the next '"' or '\\' (or the end), checking that the
    /// string bytes passed over hold no control characters.
    #[inline]
    fn skip_plain_chars(&mut self) -> JsonResult<()> {
        // Strings are mostly short: a plain loop beats a vectorised search here.
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let run = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(rest.len());
        self.pos += run;
        if self.bytes.get(self.pos).is_some_and(|&b| b < 0x20) {
            return Err(self.error("a control character in a string"));
        }
        Ok(())
    }

    /// The byte offset of the cursor.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn error(&self, what: &str) -> String {
        format!("invalid JSON at byte {} of the feature: {what}", self.pos)
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// The next non-space byte, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    /// The kind of the next value.
    pub fn kind(&mut self) -> JsonResult<Kind> {
        match self.peek() {
            Some(b'{') => Ok(Kind::Object),
            Some(b'[') => Ok(Kind::Array),
            Some(b'"') => Ok(Kind::String),
            Some(b'-' | b'0'..=b'9') => Ok(Kind::Number),
            Some(b't' | b'f' | b'n') => Ok(Kind::Literal),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("the text ends where a value should be")),
        }
    }

    #[inline]
    fn eat(&mut self, byte: u8, what: &str) -> JsonResult<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// Only whitespace may follow.
    pub fn end(&mut self) -> JsonResult<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("unexpected text after the value")),
        }
    }

    pub fn begin_object(&mut self) -> JsonResult<()> {
        self.eat(b'{', "expected an object")
    }

    pub fn begin_array(&mut self) -> JsonResult<()> {
        self.eat(b'[', "expected an array")
    }

    /// The next member name of the object being read (the cursor then at its value),
    /// or `None` after its closing brace. `first` is true before the first member.
    pub fn next_key(&mut self, first: &mut bool) -> JsonResult<Option<Cow<'a, str>>> {
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                return Ok(None);
            }
            Some(b',') if !*first => self.pos += 1,
            Some(_) if *first => {}
            _ => return Err(self.error("expected ',' or '}'")),
        }
        *first = false;
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a member name"));
        }
        let key = self.string()?;
        self.eat(b':', "expected ':' after a member name")?;
        Ok(Some(key))
    }

    /// Whether the array being read has another element (the cursor then at it);
    /// false after its closing bracket.
    pub fn next_element(&mut self, first: &mut bool) -> JsonResult<bool> {
        match self.peek() {
            Some(b']') => {
                self.pos += 1;
                return Ok(false);
            }
            Some(b',') if !*first => self.pos += 1,
            Some(_) if *first => {}
            _ => return Err(self.error("expected ',' or ']'")),
        }
        *first = false;
        Ok(true)
    }

    /// A string value, unescaped.
    pub fn string(&mut self) -> JsonResult<Cow<'a, str>> {
        self.eat(b'"', "expected a string")?;
        let start = self.pos;
        // The common case: no escapes, borrowed.
        self.skip_plain_chars()?;
        match self.bytes.get(self.pos) {
            Some(b'"') => {
                let text = self.since(start);
                self.pos += 1;
                return Ok(Cow::Borrowed(text));
            }
            Some(_) => {}
            None => return Err(self.error("unterminated string")),
        }
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(self.since(start));
        loop {
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(_) => {
                    // A backslash.
                    self.pos += 1;
                    self.escape(&mut out)?;
                    let run = self.pos;
                    self.skip_plain_chars()?;
                    out.push_str(self.since(run));
                }
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> JsonResult<u32> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("a truncated \\u escape"))?;
        let mut value = 0u32;
        for &d in digits {
            let v = char::from(d)
                .to_digit(16)
                .ok_or_else(|| self.error("a bad \\u escape"))?;
            value = value * 16 + v;
        }
        self.pos += 4;
        Ok(value)
    }

    /// One escape (after its backslash), appended.
    fn escape(&mut self, out: &mut String) -> JsonResult<()> {
        let Some(&code) = self.bytes.get(self.pos) else {
            return Err(self.error("unterminated string"));
        };
        self.pos += 1;
        let simple = match code {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let scalar = if (0xD800..0xDC00).contains(&first) {
                    if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                        return Err(self.error("a lone surrogate in a \\u escape"));
                    }
                    self.pos += 2;
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return Err(self.error("a lone surrogate in a \\u escape"));
                    }
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                } else {
                    first
                };
                let c = char::from_u32(scalar)
                    .ok_or_else(|| self.error("a lone surrogate in a \\u escape"))?;
                out.push(c);
                return Ok(());
            }
            _ => return Err(self.error("an unknown escape")),
        };
        out.push(simple);
        Ok(())
    }

    /// Skips a string (checked), returning whether it had escapes and its raw text
    /// (between the quotes).
    fn skip_string(&mut self) -> JsonResult<(&'a str, bool)> {
        self.eat(b'"', "expected a string")?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.skip_plain_chars()?;
            match self.bytes.get(self.pos) {
                Some(b'"') => break,
                Some(_) => {
                    escaped = true;
                    self.pos += 1;
                    match self.bytes.get(self.pos) {
                        Some(b'u') => {
                            self.pos += 1;
                            self.hex4()?;
                        }
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        _ => return Err(self.error("an unknown escape")),
                    }
                }
                None => return Err(self.error("unterminated string")),
            }
        }
        let raw = self.since(start);
        self.pos += 1;
        Ok((raw, escaped))
    }

    /// The text of a number (checked against the grammar) and whether it is an
    /// integer (no fraction, no exponent).
    fn number_text(&mut self) -> JsonResult<(&'a str, bool)> {
        self.skip_ws();
        let start = self.pos;
        let digits = |this: &mut Self| {
            let from = this.pos;
            while this.bytes.get(this.pos).is_some_and(u8::is_ascii_digit) {
                this.pos += 1;
            }
            this.pos - from
        };
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.error("expected a number")),
        }
        let mut integer = true;
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            integer = false;
            if digits(self) == 0 {
                return Err(self.error("a number without digits after '.'"));
            }
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            integer = false;
            if matches!(self.bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.error("a number without exponent digits"));
            }
        }
        Ok((self.since(start), integer))
    }

    /// A number as f64; out-of-range numbers are errors.
    pub fn f64(&mut self) -> JsonResult<f64> {
        let (text, _) = self.number_text()?;
        let value: f64 = text
            .parse()
            .map_err(|_| self.error("a number that does not parse"))?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(self.error("a number out of range"))
        }
    }

    fn literal(&mut self) -> JsonResult<Value<'a>> {
        self.skip_ws();
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let (value, len) = if rest.starts_with(b"true") {
            (Value::Bool(true), 4)
        } else if rest.starts_with(b"false") {
            (Value::Bool(false), 5)
        } else if rest.starts_with(b"null") {
            (Value::Null, 4)
        } else {
            return Err(self.error("expected a value"));
        };
        self.pos += len;
        Ok(value)
    }

    /// Whether the next value is `null` (consumed if so).
    pub fn null(&mut self) -> bool {
        self.skip_ws();
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        if rest.starts_with(b"null") {
            self.pos += 4;
            true
        } else {
            false
        }
    }

    /// The next value: scalars decoded, objects and arrays as their (checked) text.
    pub fn value(&mut self) -> JsonResult<Value<'a>> {
        match self.kind()? {
            Kind::Object | Kind::Array => {
                let start = self.pos;
                self.skip(0)?;
                Ok(Value::Nested(self.since(start)))
            }
            Kind::String => Ok(Value::Str(self.string()?)),
            Kind::Number => {
                let (text, integer) = self.number_text()?;
                if integer {
                    if let Ok(int) = text.parse::<i64>() {
                        return Ok(Value::Int(int, text));
                    }
                }
                let value: f64 = text
                    .parse()
                    .map_err(|_| self.error("a number that does not parse"))?;
                if !value.is_finite() {
                    return Err(self.error("a number out of range"));
                }
                Ok(Value::Float(value, text))
            }
            Kind::Literal => self.literal(),
        }
    }

    /// What [`Self::value`] would return, reduced to what type inference needs, with
    /// no allocation: the kind of scalar, strings as their raw bytes (and whether they
    /// hold escapes), numbers as integer or not.
    pub fn shallow(&mut self) -> JsonResult<Shallow<'a>> {
        match self.kind()? {
            Kind::Object | Kind::Array => {
                self.skip(0)?;
                Ok(Shallow::Nested)
            }
            Kind::String => {
                let (raw, escaped) = self.skip_string()?;
                Ok(Shallow::Str { raw, escaped })
            }
            Kind::Number => {
                let (text, integer) = self.number_text()?;
                // i64 holds every integer of up to 18 digits; longer ones are checked.
                let int = integer && (text.len() <= 18 || text.parse::<i64>().is_ok());
                if !int && text.parse::<f64>().map_or(true, |v| !v.is_finite()) {
                    return Err(self.error("a number out of range"));
                }
                Ok(if int { Shallow::Int } else { Shallow::Float })
            }
            Kind::Literal => Ok(match self.literal()? {
                Value::Bool(_) => Shallow::Bool,
                _ => Shallow::Null,
            }),
        }
    }

    /// Skips one value of any kind, checking it.
    pub fn skip(&mut self, depth: usize) -> JsonResult<()> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested deeper than 64 levels"));
        }
        match self.kind()? {
            Kind::Object => {
                self.begin_object()?;
                let mut first = true;
                while self.next_key(&mut first)?.is_some() {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            Kind::Array => {
                self.begin_array()?;
                let mut first = true;
                while self.next_element(&mut first)? {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            Kind::String => self.skip_string().map(|_| ()),
            Kind::Number => self.number_text().map(|_| ()),
            Kind::Literal => self.literal().map(|_| ()),
        }
    }

    /// Skips one value and returns its text.
    pub fn raw(&mut self) -> JsonResult<&'a str> {
        self.skip_ws();
        let start = self.pos;
        self.skip(0)?;
        Ok(self.since(start))
    }

    /// Skips the member name of the object being read (`next_key` without the key's
    /// allocation); for objects whose names do not matter.
    pub fn skip_member(&mut self, first: &mut bool) -> JsonResult<bool> {
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                return Ok(false);
            }
            Some(b',') if !*first => self.pos += 1,
            Some(_) if *first => {}
            _ => return Err(self.error("expected ',' or '}'")),
        }
        *first = false;
        self.skip_string()?;
        self.eat(b':', "expected ':' after a member name")?;
        Ok(true)
    }
}

/// A value reduced to its type, for inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shallow<'a> {
    Null,
    Bool,
    Int,
    Float,
    /// A string's raw text (escapes not decoded).
    Str {
        raw: &'a str,
        escaped: bool,
    },
    Nested,
}

/// Compact JSON text of a nested value (whitespace between tokens removed), for
/// columns that keep nested values as text.
pub fn compact(raw: &str) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in raw.as_bytes() {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            out.push(b);
        }
    }
    // The input was checked UTF-8 and only ASCII whitespace was dropped.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> JsonResult<Vec<Value<'_>>> {
        let mut json = Json::new(text);
        json.begin_array()?;
        let mut out = Vec::new();
        let mut first = true;
        while json.next_element(&mut first)? {
            out.push(json.value()?);
        }
        json.end()?;
        Ok(out)
    }

    #[test]
    fn scalars_and_nested_values() {
        let found =
            values(r#" [1, -2.5e1, "a\"b\u00e9\ud83d\ude00", true, null, {"x": [1, {}]}, 12345678901234567890] "#)
                .unwrap();
        assert_eq!(found[0], Value::Int(1, "1"));
        assert_eq!(found[1], Value::Float(-25.0, "-2.5e1"));
        assert_eq!(found[2], Value::Str(Cow::Owned("a\"bé😀".into())));
        assert_eq!(found[3], Value::Bool(true));
        assert_eq!(found[4], Value::Null);
        assert_eq!(found[5], Value::Nested(r#"{"x": [1, {}]}"#));
        assert_eq!(
            found[6],
            Value::Float(12_345_678_901_234_567_890.0, "12345678901234567890")
        );
        assert_eq!(compact(r#"{"x": [1, " a b "]}"#), r#"{"x":[1," a b "]}"#);
    }

    #[test]
    fn objects_in_order() {
        let mut json = Json::new(r#"{"a": 1, "b\n": {"c": null}}"#);
        json.begin_object().unwrap();
        let mut first = true;
        let mut keys = Vec::new();
        while let Some(key) = json.next_key(&mut first).unwrap() {
            keys.push(key.into_owned());
            json.skip(0).unwrap();
        }
        assert_eq!(keys, ["a", "b\n"]);
        json.end().unwrap();
    }

    #[test]
    fn grammar_errors() {
        for text in [
            "[1,]",
            "[01]",
            "[1.]",
            "[1e]",
            "[-]",
            "[\"a]",
            "[\"\\x\"]",
            "[\"\\ud800\"]",
            "[\"\u{1}\"]",
            "[tru]",
            "[1 2]",
            "[1e999]",
            "[{\"a\" 1}]",
            "[{\"a\": 1,}]",
            "[1] x",
        ] {
            assert!(values(text).is_err(), "{text}");
        }
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(Json::new(&deep).skip(0).is_err());
    }

    #[test]
    fn shallow_kinds() {
        let mut json = Json::new(
            r#"[1, 1.5, "2024-01-31", "a\u0041", [1], false, null, 99999999999999999999]"#,
        );
        json.begin_array().unwrap();
        let mut first = true;
        let mut kinds = Vec::new();
        while json.next_element(&mut first).unwrap() {
            kinds.push(json.shallow().unwrap());
        }
        assert_eq!(kinds[0], Shallow::Int);
        assert_eq!(kinds[1], Shallow::Float);
        assert_eq!(
            kinds[2],
            Shallow::Str {
                raw: "2024-01-31",
                escaped: false
            }
        );
        assert!(matches!(kinds[3], Shallow::Str { escaped: true, .. }));
        assert_eq!(
            kinds[4..],
            [
                Shallow::Nested,
                Shallow::Bool,
                Shallow::Null,
                Shallow::Float
            ]
        );
    }
}
