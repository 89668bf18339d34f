//! Well-known text to ISO WKB (little-endian), for CSV geometry columns. Measures
//! are read and dropped; Z is kept; an `SRID=...;` prefix (EWKT) is ignored.

use crate::wkb;

const MAX_DEPTH: usize = 32;

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

#[derive(Clone, Copy)]
struct Dims {
    /// Numbers per coordinate in the text.
    read: usize,
    has_z: bool,
}

impl<'a> Parser<'a> {
    fn skip_space(&mut self) {
        while self.text.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        match self.peek() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => Err(format!(
                "expected '{}' at {}, found '{}'",
                byte as char, self.pos, b as char
            )),
            None => Err(format!("expected '{}', the text ended", byte as char)),
        }
    }

    fn word(&mut self) -> String {
        self.skip_space();
        let start = self.pos;
        while self.text.get(self.pos).is_some_and(u8::is_ascii_alphabetic) {
            self.pos += 1;
        }
        String::from_utf8_lossy(self.text.get(start..self.pos).unwrap_or_default())
            .to_ascii_uppercase()
    }

    fn number(&mut self) -> Result<f64, String> {
        self.skip_space();
        let start = self.pos;
        while self
            .text
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            self.pos += 1;
        }
        let token =
            std::str::from_utf8(self.text.get(start..self.pos).unwrap_or_default()).unwrap_or("");
        token
            .parse::<f64>()
            .map_err(|_| format!("expected a number at {start}, found {token:?}"))
    }

    fn coordinate(&mut self, dims: Dims, out: &mut Vec<u8>) -> Result<(), String> {
        let x = self.number()?;
        let y = self.number()?;
        wkb::write_f64(out, x);
        wkb::write_f64(out, y);
        let mut extra = Vec::new();
        for _ in 2..dims.read {
            extra.push(self.number()?);
        }
        if dims.has_z {
            wkb::write_f64(out, extra.first().copied().unwrap_or(0.0));
        }
        Ok(())
    }

    /// `( c, c, ... )`, its count written first.
    fn coordinates(&mut self, dims: Dims, out: &mut Vec<u8>) -> Result<(), String> {
        self.expect(b'(')?;
        let count_at = out.len();
        wkb::write_u32(out, 0);
        let mut count = 0u32;
        loop {
            self.coordinate(dims, out)?;
            count += 1;
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => break,
            }
        }
        self.expect(b')')?;
        patch(out, count_at, count);
        Ok(())
    }

    /// `( item, item, ... )` where each item is written by `item`; the count first.
    fn list(
        &mut self,
        out: &mut Vec<u8>,
        mut item: impl FnMut(&mut Self, &mut Vec<u8>) -> Result<(), String>,
    ) -> Result<(), String> {
        self.expect(b'(')?;
        let count_at = out.len();
        wkb::write_u32(out, 0);
        let mut count = 0u32;
        loop {
            item(self, out)?;
            count += 1;
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => break,
            }
        }
        self.expect(b')')?;
        patch(out, count_at, count);
        Ok(())
    }

    /// Numbers in the first coordinate from here, without consuming anything.
    fn first_coordinate_len(&self) -> usize {
        let rest = self.text.get(self.pos..).unwrap_or_default();
        let Some(first_number) = rest
            .iter()
            .position(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.'))
        else {
            return 2;
        };
        let Some(open) = rest
            .get(..first_number)
            .and_then(|head| head.iter().rposition(|&b| b == b'('))
        else {
            return 2;
        };
        let tail = rest.get(open + 1..).unwrap_or_default();
        let end = tail
            .iter()
            .position(|&b| b == b',' || b == b')')
            .unwrap_or(tail.len());
        String::from_utf8_lossy(tail.get(..end).unwrap_or_default())
            .split_whitespace()
            .count()
            .max(2)
    }

    fn geometry(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("WKT nested deeper than {MAX_DEPTH} levels"));
        }
        let mut word = self.word();
        let mut suffix = String::new();
        for tag in ["ZM", "Z", "M"] {
            let stem = word.strip_suffix(tag).unwrap_or_default();
            if !stem.is_empty() && type_code(stem).is_some() {
                suffix = tag.to_string();
                word.truncate(word.len() - tag.len());
                break;
            }
        }
        let base = type_code(&word).ok_or_else(|| format!("unknown WKT geometry type {word:?}"))?;
        let mut next = self.word();
        if suffix.is_empty() && matches!(next.as_str(), "Z" | "M" | "ZM") {
            suffix = next;
            next = self.word();
        }
        let empty = next == "EMPTY";
        if !next.is_empty() && !empty {
            return Err(format!("unexpected word {next:?} in WKT"));
        }
        let dims = match suffix.as_str() {
            "Z" => Dims {
                read: 3,
                has_z: true,
            },
            "M" => Dims {
                read: 3,
                has_z: false,
            },
            "ZM" => Dims {
                read: 4,
                has_z: true,
            },
            _ if empty => Dims {
                read: 2,
                has_z: false,
            },
            _ => {
                let n = self.first_coordinate_len();
                Dims {
                    read: n,
                    has_z: n >= 3,
                }
            }
        };
        wkb::write_header(out, base, dims.has_z);
        if empty {
            if base == wkb::POINT {
                wkb::write_f64(out, f64::NAN);
                wkb::write_f64(out, f64::NAN);
                if dims.has_z {
                    wkb::write_f64(out, f64::NAN);
                }
            } else {
                wkb::write_u32(out, 0);
            }
            return Ok(());
        }
        match base {
            wkb::POINT => {
                self.expect(b'(')?;
                self.coordinate(dims, out)?;
                self.expect(b')')
            }
            wkb::LINESTRING => self.coordinates(dims, out),
            wkb::POLYGON => self.list(out, |p, out| p.coordinates(dims, out)),
            wkb::MULTIPOINT => self.list(out, |p, out| {
                wkb::write_header(out, wkb::POINT, dims.has_z);
                if p.peek() == Some(b'(') {
                    p.pos += 1;
                    p.coordinate(dims, out)?;
                    p.expect(b')')
                } else {
                    p.coordinate(dims, out)
                }
            }),
            wkb::MULTILINESTRING => self.list(out, |p, out| {
                wkb::write_header(out, wkb::LINESTRING, dims.has_z);
                p.coordinates(dims, out)
            }),
            wkb::MULTIPOLYGON => self.list(out, |p, out| {
                wkb::write_header(out, wkb::POLYGON, dims.has_z);
                p.list(out, |p, out| p.coordinates(dims, out))
            }),
            _ => self.list(out, |p, out| p.geometry(out, depth + 1)),
        }
    }
}

fn patch(out: &mut [u8], at: usize, value: u32) {
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
}

fn type_code(word: &str) -> Option<u32> {
    Some(match word {
        "POINT" => wkb::POINT,
        "LINESTRING" => wkb::LINESTRING,
        "POLYGON" => wkb::POLYGON,
        "MULTIPOINT" => wkb::MULTIPOINT,
        "MULTILINESTRING" => wkb::MULTILINESTRING,
        "MULTIPOLYGON" => wkb::MULTIPOLYGON,
        "GEOMETRYCOLLECTION" => wkb::GEOMETRYCOLLECTION,
        _ => return None,
    })
}

/// Appends the ISO WKB of a WKT text.
pub fn to_wkb(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let text = text.trim();
    let text = match text.split_once(';') {
        Some((prefix, rest)) if prefix.trim().to_ascii_uppercase().starts_with("SRID=") => rest,
        _ => text,
    };
    let mut parser = Parser {
        text: text.as_bytes(),
        pos: 0,
    };
    parser.geometry(out, 0)?;
    parser.skip_space();
    if parser.pos != parser.text.len() {
        return Err(format!(
            "unexpected text after the geometry at {}",
            parser.pos
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wkb_of(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        to_wkb(text, &mut out).unwrap();
        out
    }

    #[test]
    fn points_and_dimensions() {
        let p = wkb_of("POINT (1 2)");
        assert_eq!(p.len(), 21);
        assert_eq!(wkb::read_f64(&p, 5, true), Some(1.0));
        let z = wkb_of("point z (1 2 3)");
        assert!(wkb::peek_type(&z).unwrap().has_z);
        assert_eq!(z.len(), 29);
        assert_eq!(wkb_of("POINT(1 2 3)"), z);
        assert_eq!(wkb_of("POINTZ(1 2 3)"), z);
        assert_eq!(wkb_of("POINT M (1 2 9)"), p);
        assert_eq!(wkb_of("SRID=4326;POINT(1 2)"), p);
        let empty = wkb_of("POINT EMPTY");
        assert!(wkb::read_f64(&empty, 5, true).unwrap().is_nan());
    }

    #[test]
    fn every_type_round_trips_through_the_wkb_checker() {
        for text in [
            "LINESTRING (0 0, 1 1, 2 0)",
            "POLYGON ((0 0, 0 1, 1 1, 0 0), (0.1 0.1, 0.2 0.1, 0.2 0.2, 0.1 0.1))",
            "MULTIPOINT ((0 0), (1 1))",
            "MULTIPOINT (0 0, 1 1)",
            "MULTILINESTRING ((0 0, 1 1), (2 2, 3 3))",
            "MULTIPOLYGON (((0 0, 0 1, 1 1, 0 0)), ((5 5, 5 6, 6 6, 5 5)))",
            "GEOMETRYCOLLECTION (POINT (1 2), LINESTRING Z (0 0 0, 1 1 1))",
            "LINESTRING EMPTY",
        ] {
            let wkb_bytes = wkb_of(text);
            let mut refs = Vec::new();
            wkb::coordinates(&wkb_bytes, &mut refs).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        assert_eq!(
            wkb_of("MULTIPOINT ((0 0), (1 1))"),
            wkb_of("MULTIPOINT (0 0, 1 1)")
        );
    }

    #[test]
    fn bad_text_is_an_error() {
        for text in [
            "",
            "POINT",
            "POINT (1)",
            "POINT (1 2",
            "CIRCLE (1 2)",
            "POINT (1 2) x",
            "LINESTRING (a b)",
        ] {
            let mut out = Vec::new();
            assert!(to_wkb(text, &mut out).is_err(), "{text}");
        }
        let deep = format!(
            "{}POINT(1 2){}",
            "GEOMETRYCOLLECTION(".repeat(40),
            ")".repeat(40)
        );
        assert!(to_wkb(&deep, &mut Vec::new()).is_err());
    }
}
