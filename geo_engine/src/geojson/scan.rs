//! Splits GeoJSON text into features without parsing them: a FeatureCollection's
//! `features` array, a sequence of features (newline-delimited GeoJSON, RFC 8142
//! record separators), or a lone Feature / geometry. Reads the file in chunks, so
//! memory stays bounded by what the caller keeps.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Result};

const CHUNK: usize = 4 << 20;
const RECORD_SEPARATOR: u8 = 0x1e;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between top-level values.
    Top,
    /// Inside a top-level object, between members. `start` is where the object
    /// began, kept while it may turn out to be a lone Feature; `None` once it has shown
    /// a `features` array (a FeatureCollection).
    Object { start: Option<usize> },
    /// Inside the `features` array of the current top-level object.
    Features,
}

/// What the scanner found next.
#[derive(Debug, PartialEq)]
pub enum Item {
    /// The JSON text of one feature (or of a lone geometry).
    Feature(Vec<u8>),
    /// The JSON text of a top-level `crs` member, and whether features came before it.
    Crs { json: Vec<u8>, after_features: bool },
}

/// Features read in one go: their texts back to back, and where each is.
#[derive(Debug, Default)]
pub struct FeatureBatch {
    pub text: Vec<u8>,
    pub spans: Vec<(usize, usize)>,
    /// The JSON text of the crs members met while filling.
    pub crs: Vec<Vec<u8>>,
}

impl FeatureBatch {
    pub fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
        self.crs.clear();
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The batch's text as UTF-8, or the index of the first feature that is not.
    pub fn utf8(&self) -> std::result::Result<&str, usize> {
        std::str::from_utf8(&self.text).map_err(|err| {
            let at = err.valid_up_to();
            self.spans.partition_point(|&(_, end)| end <= at)
        })
    }

    /// The text of feature `i` of the batch.
    pub fn feature(&self, i: usize) -> &[u8] {
        self.spans
            .get(i)
            .and_then(|&(start, end)| self.text.get(start..end))
            .unwrap_or_default()
    }
}

/// A batch of features and the 1-based number of its first.
#[derive(Debug, Default)]
pub struct Filled {
    pub batch: FeatureBatch,
    pub first_number: u64,
}

/// Batches of features from a scanner, numbered, with errors naming the feature.
pub struct Feeder<R> {
    scanner: Scanner<R>,
    path: PathBuf,
    size: usize,
    next_number: u64,
    exhausted: bool,
}

impl<R: Read> Feeder<R> {
    pub fn new(source: R, path: &Path, size: usize) -> Self {
        Self {
            scanner: Scanner::new(source),
            path: path.to_path_buf(),
            size: size.max(1),
            next_number: 1,
            exhausted: false,
        }
    }

    /// Whether the input has been read to its end.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// The next batch (no features once the input is exhausted), in `batch`'s
    /// buffers.
    pub fn next(&mut self, mut batch: FeatureBatch) -> Result<Filled> {
        batch.clear();
        let first_number = self.next_number;
        if !self.exhausted {
            let more = self
                .scanner
                .fill_batch(self.size, &mut batch)
                .map_err(|message| {
                    Error::format(
                        Location::feature(&self.path, first_number + batch.len() as u64),
                        message,
                    )
                })?;
            self.exhausted = !more;
        }
        self.next_number += batch.len() as u64;
        Ok(Filled {
            batch,
            first_number,
        })
    }
}

pub struct Scanner<R> {
    source: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    state: State,
    features_seen: bool,
    /// Bytes dropped from the front of `buf` so far (for error offsets).
    dropped: u64,
}

const OTHER: u8 = 0;
const OPEN: u8 = 1;
const CLOSE: u8 = 2;
const QUOTE: u8 = 3;

/// What each byte means to [`value_end`].
// Evaluated at compile time: an index out of range would fail the build, not a read.
#[allow(clippy::indexing_slicing)]
static CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    table[b'{' as usize] = OPEN;
    table[b'[' as usize] = OPEN;
    table[b'}' as usize] = CLOSE;
    table[b']' as usize] = CLOSE;
    table[b'"' as usize] = QUOTE;
    table
};

/// Where a value that starts at `pos` ends (exclusive); `Ok(None)` if the buffer
/// ends first. Only brackets and strings are followed: the value itself is checked
/// when it is parsed.
fn value_end(buf: &[u8], pos: usize) -> Result<Option<usize>, String> {
    let Some(&first) = buf.get(pos) else {
        return Ok(None);
    };
    match first {
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = pos;
            while let Some(&b) = buf.get(i) {
                match CLASS.get(usize::from(b)).copied().unwrap_or(OTHER) {
                    OTHER => {}
                    OPEN => depth += 1,
                    CLOSE => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Ok(Some(i + 1));
                        }
                    }
                    _ => match string_end(buf, i)? {
                        Some(end) => {
                            i = end;
                            continue;
                        }
                        None => return Ok(None),
                    },
                }
                i += 1;
            }
            Ok(None)
        }
        b'"' => string_end(buf, pos),
        _ => {
            // A number, true, false or null: up to the next delimiter.
            let mut i = pos;
            while let Some(&b) = buf.get(i) {
                if matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace() {
                    return Ok(Some(i));
                }
                i += 1;
            }
            Ok(None)
        }
    }
}

/// The end (exclusive) of the string starting at `pos` (a '"').
#[inline]
fn string_end(buf: &[u8], pos: usize) -> Result<Option<usize>, String> {
    let mut i = pos + 1;
    while let Some(&b) = buf.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Ok(Some(i + 1)),
            _ => i += 1,
        }
    }
    Ok(None)
}

impl<R: Read> Scanner<R> {
    pub fn new(source: R) -> Self {
        Self {
            source,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            state: State::Top,
            features_seen: false,
            dropped: 0,
        }
    }

    /// Byte offset in the file of the scanner's position.
    pub fn offset(&self) -> u64 {
        self.dropped + self.pos as u64
    }

    /// Reads more of the file; false at its end.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        // Drop what is consumed, except a top-level object still being scanned.
        let keep_from = match self.state {
            State::Object { start: Some(start) } => start,
            _ => self.pos,
        };
        if keep_from > 0 {
            self.buf.drain(..keep_from);
            self.dropped += keep_from as u64;
            self.pos -= keep_from;
            if let State::Object { start: Some(start) } = self.state {
                self.state = State::Object {
                    start: Some(start - keep_from),
                };
            }
        }
        let n = loop {
            match (&mut self.source)
                .take(CHUNK as u64)
                .read_to_end(&mut self.buf)
            {
                Ok(n) => break n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        };
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    fn skip_space(&mut self, also: &[u8]) {
        while self
            .buf
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace() || also.contains(b))
        {
            self.pos += 1;
        }
    }

    fn error(&self, message: &str) -> String {
        format!("invalid GeoJSON at byte {}: {message}", self.offset())
    }

    /// The next feature or crs member; `Ok(None)` at the end of the file.
    pub fn next_item(&mut self) -> Result<Option<Item>, String> {
        loop {
            match self.step()? {
                Step::Feature(start, end) => {
                    let json = self.buf.get(start..end).unwrap_or_default().to_vec();
                    return Ok(Some(Item::Feature(json)));
                }
                Step::Crs(start, end) => {
                    let json = self.buf.get(start..end).unwrap_or_default().to_vec();
                    return Ok(Some(Item::Crs {
                        json,
                        after_features: self.features_seen,
                    }));
                }
                Step::Continue => {}
                Step::NeedMore => {
                    if !self.refill()? {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// After [`Step::NeedMore`]: reads more input. False when the input ended between
    /// values (the end of the file); an error when it ended inside one.
    fn refill(&mut self) -> Result<bool, String> {
        if self.fill().map_err(|err| err.to_string())? {
            return Ok(true);
        }
        self.skip_space(&[RECORD_SEPARATOR]);
        if self.state == State::Top && self.pos >= self.buf.len() {
            Ok(false)
        } else {
            Err(self.error("the file ends inside a value"))
        }
    }

    /// Appends up to `max` features to `batch` (and any crs member met on the way);
    /// returns false once the input is exhausted.
    pub fn fill_batch(&mut self, max: usize, batch: &mut FeatureBatch) -> Result<bool, String> {
        let mut added = 0;
        while added < max {
            match self.step()? {
                Step::Feature(start, end) => {
                    let text = self.buf.get(start..end).unwrap_or_default();
                    let at = batch.text.len();
                    batch.text.extend_from_slice(text);
                    batch.spans.push((at, batch.text.len()));
                    added += 1;
                }
                Step::Crs(start, end) => {
                    batch
                        .crs
                        .push(self.buf.get(start..end).unwrap_or_default().to_vec());
                }
                Step::Continue => {}
                Step::NeedMore => {
                    if !self.refill()? {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    fn step(&mut self) -> Result<Step, String> {
        match self.state {
            State::Top => {
                self.skip_space(&[RECORD_SEPARATOR, b',']);
                match self.buf.get(self.pos) {
                    None => Ok(Step::NeedMore),
                    Some(b'{') => {
                        self.state = State::Object {
                            start: Some(self.pos),
                        };
                        self.pos += 1;
                        Ok(Step::Continue)
                    }
                    Some(_) => Err(self.error("expected a JSON object")),
                }
            }
            State::Object { start } => {
                self.skip_space(b",");
                match self.buf.get(self.pos) {
                    None => Ok(Step::NeedMore),
                    Some(b'}') => {
                        self.pos += 1;
                        self.state = State::Top;
                        match start {
                            None => Ok(Step::Continue),
                            Some(start) => {
                                // A lone Feature or geometry: the whole object.
                                self.features_seen = true;
                                Ok(Step::Feature(start, self.pos))
                            }
                        }
                    }
                    Some(b'"') => {
                        let Some(key_end) = string_end(&self.buf, self.pos)? else {
                            return Ok(Step::NeedMore);
                        };
                        let key = self
                            .buf
                            .get(self.pos + 1..key_end - 1)
                            .unwrap_or_default()
                            .to_vec();
                        let mut colon = key_end;
                        while self.buf.get(colon).is_some_and(u8::is_ascii_whitespace) {
                            colon += 1;
                        }
                        match self.buf.get(colon) {
                            None => return Ok(Step::NeedMore),
                            Some(b':') => {}
                            Some(_) => return Err(self.error("expected ':' after a member name")),
                        }
                        let mut value = colon + 1;
                        while self.buf.get(value).is_some_and(u8::is_ascii_whitespace) {
                            value += 1;
                        }
                        if value >= self.buf.len() {
                            return Ok(Step::NeedMore);
                        }
                        if key == b"features" && self.buf.get(value) == Some(&b'[') {
                            self.pos = value + 1;
                            self.state = State::Features;
                            return Ok(Step::Continue);
                        }
                        let Some(end) = value_end(&self.buf, value)? else {
                            return Ok(Step::NeedMore);
                        };
                        self.pos = end;
                        if key == b"crs" {
                            return Ok(Step::Crs(value, end));
                        }
                        Ok(Step::Continue)
                    }
                    Some(_) => Err(self.error("expected a member name")),
                }
            }
            State::Features => {
                self.skip_space(b",");
                match self.buf.get(self.pos) {
                    None => Ok(Step::NeedMore),
                    Some(b']') => {
                        self.pos += 1;
                        self.state = State::Object { start: None };
                        Ok(Step::Continue)
                    }
                    Some(_) => {
                        let start = self.pos;
                        let Some(end) = value_end(&self.buf, start)? else {
                            return Ok(Step::NeedMore);
                        };
                        self.pos = end;
                        self.features_seen = true;
                        Ok(Step::Feature(start, end))
                    }
                }
            }
        }
    }
}

enum Step {
    /// A feature's text at `buf[start..end]`.
    Feature(usize, usize),
    /// A crs member's text at `buf[start..end]`.
    Crs(usize, usize),
    Continue,
    NeedMore,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> Result<Vec<Item>, String> {
        let mut scanner = Scanner::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(item) = scanner.next_item()? {
            out.push(item);
        }
        Ok(out)
    }

    fn feature(text: &str) -> Item {
        Item::Feature(text.as_bytes().to_vec())
    }

    #[test]
    fn collections_sequences_and_lone_features() {
        let fc = r#"{"type": "FeatureCollection", "crs": {"a": "]}"}, "features": [ {"x": "[{"}, {"y": [1, {"z": 2}]} ], "bbox": [1, 2]}"#;
        assert_eq!(
            items(fc).unwrap(),
            vec![
                Item::Crs {
                    json: br#"{"a": "]}"}"#.to_vec(),
                    after_features: false
                },
                feature(r#"{"x": "[{"}"#),
                feature(r#"{"y": [1, {"z": 2}]}"#),
            ]
        );
        let seq = "{\"a\": 1}\n\u{1e}{\"b\": \"\\\"\"}\n";
        assert_eq!(
            items(seq).unwrap(),
            vec![feature(r#"{"a": 1}"#), feature(r#"{"b": "\""}"#)]
        );
        assert_eq!(
            items(r#"{"type": "Point", "coordinates": [1, 2]}"#)
                .unwrap()
                .len(),
            1
        );
        assert!(items(r#"{"type": "FeatureCollection", "features": [{"a": 1}"#).is_err());
        assert!(items("[1, 2]").is_err());
        assert_eq!(items("  ").unwrap(), vec![]);
    }

    #[test]
    fn values_across_chunk_boundaries() {
        let features: Vec<String> = (0..50_000)
            .map(|i| {
                format!(
                    r#"{{"type":"Feature","properties":{{"i":{i},"s":"{}"}}}}"#,
                    "x".repeat(i % 200)
                )
            })
            .collect();
        let text = format!(r#"{{"features":[{}],"crs":{{"n":1}}}}"#, features.join(","));
        let found = items(&text).unwrap();
        assert_eq!(found.len(), 50_001);
        assert_eq!(found[49_999], feature(&features[49_999]));
        assert_eq!(
            found[50_000],
            Item::Crs {
                json: br#"{"n":1}"#.to_vec(),
                after_features: true
            }
        );
    }
}
