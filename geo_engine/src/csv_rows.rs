//! A batch of delimited-text records held flat: every field's bytes back to back,
//! checked as UTF-8 once for the whole batch, so that building columns allocates and
//! validates nothing per field.

use csv::ByteRecord;

/// Records of one batch.
#[derive(Debug, Default)]
pub struct RowBlock {
    /// The fields' bytes while filling, and when they are not all UTF-8.
    bytes: Vec<u8>,
    /// The same bytes once checked as UTF-8 (then `bytes` is empty).
    text: String,
    utf8: bool,
    /// End of every field in the buffer.
    ends: Vec<usize>,
    /// Index in `ends` of every row's first field.
    starts: Vec<usize>,
    /// Every row's 1-based line in the file.
    lines: Vec<u64>,
}

impl RowBlock {
    /// Empties the block, keeping its buffers.
    pub fn clear(&mut self) {
        if self.utf8 {
            self.bytes = std::mem::take(&mut self.text).into_bytes();
            self.utf8 = false;
        }
        self.bytes.clear();
        self.ends.clear();
        self.starts.clear();
        self.lines.clear();
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Appends a record (call [`Self::finish`] once the block is full).
    pub fn push(&mut self, record: &ByteRecord, line: u64) {
        self.starts.push(self.ends.len());
        for field in record {
            self.bytes.extend_from_slice(field);
            self.ends.push(self.bytes.len());
        }
        self.lines.push(line);
    }

    /// Checks the whole block as UTF-8 once.
    pub fn finish(&mut self) {
        match String::from_utf8(std::mem::take(&mut self.bytes)) {
            Ok(text) => {
                self.text = text;
                self.utf8 = true;
            }
            Err(err) => self.bytes = err.into_bytes(),
        }
    }

    /// The row's 1-based line.
    pub fn line(&self, row: usize) -> u64 {
        self.lines.get(row).copied().unwrap_or(0)
    }

    /// The range of `ends` holding the row's fields.
    fn fields(&self, row: usize) -> (usize, usize) {
        let first = self.starts.get(row).copied().unwrap_or(0);
        let last = self.starts.get(row + 1).copied().unwrap_or(self.ends.len());
        (first, last)
    }

    pub fn field_count(&self, row: usize) -> usize {
        let (first, last) = self.fields(row);
        last - first
    }

    /// Where field `column` of `row` is in the buffer.
    fn span(&self, row: usize, column: usize) -> Option<(usize, usize)> {
        let (first, last) = self.fields(row);
        let at = first.checked_add(column).filter(|&at| at < last)?;
        let end = *self.ends.get(at)?;
        let start = match at.checked_sub(1) {
            Some(previous) => *self.ends.get(previous)?,
            None => 0,
        };
        Some((start, end))
    }

    /// The bytes of a field (`None` when the row has fewer fields).
    pub fn raw(&self, row: usize, column: usize) -> Option<&[u8]> {
        let (start, end) = self.span(row, column)?;
        if self.utf8 {
            self.text.as_bytes().get(start..end)
        } else {
            self.bytes.get(start..end)
        }
    }

    /// The text of a field: `None` when the row has fewer fields or the field is not
    /// UTF-8 (tell them apart with [`Self::raw`]).
    pub fn text(&self, row: usize, column: usize) -> Option<&str> {
        let (start, end) = self.span(row, column)?;
        if self.utf8 {
            // A field of valid text may still split a character with its neighbour
            // (then it is not UTF-8 on its own): `get` refuses it.
            self.text.get(start..end)
        } else {
            std::str::from_utf8(self.bytes.get(start..end)?).ok()
        }
    }

    /// Whether every field of the block is UTF-8 text.
    pub fn all_utf8(&self) -> bool {
        self.utf8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_fields() {
        let mut block = RowBlock::default();
        block.push(&ByteRecord::from(vec!["a", "bé", ""]), 2);
        block.push(&ByteRecord::from(vec!["x"]), 3);
        block.finish();
        assert!(block.all_utf8());
        assert_eq!(block.len(), 2);
        assert_eq!(block.field_count(0), 3);
        assert_eq!(block.text(0, 1), Some("bé"));
        assert_eq!(block.text(0, 2), Some(""));
        assert_eq!(block.text(1, 0), Some("x"));
        assert_eq!(block.text(1, 1), None);
        assert_eq!(block.line(1), 3);
        block.clear();
        // Valid as a whole, not field by field: the split character is refused.
        block.push(&ByteRecord::from(vec![&b"\xc3"[..], b"\xa9", b"ok"]), 2);
        block.finish();
        assert!(block.all_utf8());
        assert_eq!(block.text(0, 0), None);
        assert_eq!(block.raw(0, 0), Some(&b"\xc3"[..]));
        assert_eq!(block.text(0, 2), Some("ok"));
        block.clear();
        block.push(&ByteRecord::from(vec![&b"\xff"[..], b"ok"]), 2);
        block.finish();
        assert!(!block.all_utf8());
        assert_eq!(block.text(0, 0), None);
        assert_eq!(block.text(0, 1), Some("ok"));
    }
}
