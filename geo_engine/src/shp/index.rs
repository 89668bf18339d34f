//! The .shp main header and the record index (from the .shx, or rebuilt by walking
//! the .shp's record headers when the .shx is missing).

use std::path::Path;

use super::source::Input;
use crate::error::{Error, Location, Result};

pub const HEADER_LEN: u64 = 100;
const FILE_CODE: i32 = 9994;

/// What the 100-byte main header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainHeader {
    pub shape_type: i32,
}

fn be_i32(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le_i32(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl MainHeader {
    pub fn read(input: &Input) -> Result<Self> {
        let not_shape = |what: String| Error::format(Location::file(&input.path), what);
        if input.len() < HEADER_LEN {
            return Err(not_shape(format!(
                "not a shapefile: {} bytes, shorter than the 100-byte header",
                input.len()
            )));
        }
        let bytes = input.read_at(0, HEADER_LEN as usize)?;
        let code = be_i32(&bytes, 0).unwrap_or(0);
        if code != FILE_CODE {
            return Err(not_shape(format!(
                "not a shapefile: file code {code}, expected 9994"
            )));
        }
        let shape_type = le_i32(&bytes, 32).unwrap_or(-1);
        Ok(Self { shape_type })
    }
}

/// Offsets and content lengths of every record, in 16-bit words as the format keeps
/// them (8 bytes a record, whatever the file's size).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordIndex {
    offsets: Vec<u32>,
    lengths: Vec<u32>,
}

impl RecordIndex {
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Byte offset of the record header and byte length of the content.
    pub fn get(&self, record: usize) -> Option<(u64, usize)> {
        let offset = u64::from(*self.offsets.get(record)?) * 2;
        let len = usize::try_from(*self.lengths.get(record)?).ok()? * 2;
        Some((offset, len))
    }

    /// Reads the .shx, checking every record against the .shp's size.
    pub fn from_shx(shx: &Input, shp_len: u64, shp_path: &Path) -> Result<Self> {
        MainHeader::read(shx)?;
        let body = shx.len() - HEADER_LEN;
        if !body.is_multiple_of(8) {
            return Err(Error::format(
                Location::file(&shx.path),
                format!("index body is {body} bytes, not a multiple of 8"),
            ));
        }
        let bytes = shx.read_all()?;
        let count = usize::try_from(body / 8)
            .map_err(|_| Error::InvalidArgument("index too large".into()))?;
        let mut index = RecordIndex {
            offsets: Vec::with_capacity(count),
            lengths: Vec::with_capacity(count),
        };
        for record in 0..count {
            let at = HEADER_LEN as usize + record * 8;
            let (Some(offset), Some(len)) = (be_i32(&bytes, at), be_i32(&bytes, at + 4)) else {
                return Err(Error::format(
                    Location::record(&shx.path, record as u64 + 1),
                    "index entry truncated",
                ));
            };
            let (Ok(offset), Ok(len)) = (u32::try_from(offset), u32::try_from(len)) else {
                return Err(Error::format(
                    Location::record(&shx.path, record as u64 + 1),
                    format!("negative offset {offset} or length {len} in the index"),
                ));
            };
            index.push_checked(record, offset, len, shp_len, shp_path)?;
        }
        Ok(index)
    }

    fn push_checked(
        &mut self,
        record: usize,
        offset: u32,
        len: u32,
        shp_len: u64,
        shp_path: &Path,
    ) -> Result<()> {
        let start = u64::from(offset) * 2;
        let end = start + 8 + u64::from(len) * 2;
        let location = Location::record(shp_path, record as u64 + 1);
        if start < HEADER_LEN {
            return Err(Error::format(
                location,
                format!("record offset {start} lies inside the header"),
            ));
        }
        if end > shp_len {
            return Err(Error::format(
                location,
                format!(
                    "record is truncated: it needs bytes {start}..{end}, the file has {shp_len}"
                ),
            ));
        }
        self.offsets.push(offset);
        self.lengths.push(len);
        Ok(())
    }

    /// Rebuilds the index by walking the record headers of the .shp.
    pub fn scan(shp: &Input) -> Result<Self> {
        const WINDOW: usize = 1 << 22;
        let shp_len = shp.len();
        let mut index = RecordIndex::default();
        let mut pos = HEADER_LEN;
        let mut window_start = pos;
        let mut window: Vec<u8> = Vec::new();
        while pos < shp_len {
            let record = index.len();
            if pos + 8 > shp_len {
                return Err(Error::format(
                    Location::record(&shp.path, record as u64 + 1),
                    format!("record header is truncated at byte {pos} of {shp_len}"),
                ));
            }
            let in_window = pos >= window_start && pos + 8 <= window_start + window.len() as u64;
            if !in_window {
                let len = usize::try_from((shp_len - pos).min(WINDOW as u64)).unwrap_or(WINDOW);
                window = shp.read_at(pos, len)?.into_owned();
                window_start = pos;
            }
            let at = usize::try_from(pos - window_start).unwrap_or(usize::MAX);
            let len = be_i32(&window, at + 4)
                .and_then(|l| u32::try_from(l).ok())
                .ok_or_else(|| {
                    Error::format(
                        Location::record(&shp.path, record as u64 + 1),
                        "negative record length",
                    )
                })?;
            let offset = u32::try_from(pos / 2).map_err(|_| {
                Error::format(
                    Location::record(&shp.path, record as u64 + 1),
                    "record offset beyond 8 GiB",
                )
            })?;
            index.push_checked(record, offset, len, shp_len, &shp.path)?;
            pos += 8 + u64::from(len) * 2;
        }
        Ok(index)
    }
}
