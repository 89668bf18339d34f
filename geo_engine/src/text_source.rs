//! Where the text readers (CSV, GeoJSON) take their bytes from: a file, opened as
//! often as a reader needs a pass over it, or bytes already in memory (tests, fuzzing,
//! uploads held in memory). The path names the input in messages either way.

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Location, Result};

/// The bytes of one text input.
#[derive(Debug, Clone)]
pub enum TextSource {
    File(PathBuf),
    Memory { name: PathBuf, bytes: Arc<[u8]> },
}

/// A reader over an `Arc<[u8]>` (a `Cursor` needs `AsRef<[u8]>`, which `Arc<[u8]>`
/// gives).
type MemoryReader = Cursor<Arc<[u8]>>;

impl TextSource {
    /// Bytes in memory, called `name` in messages.
    pub fn memory(name: impl Into<PathBuf>, bytes: impl Into<Arc<[u8]>>) -> Self {
        TextSource::Memory {
            name: name.into(),
            bytes: bytes.into(),
        }
    }

    /// The path used in messages.
    pub fn path(&self) -> &Path {
        match self {
            TextSource::File(path) => path,
            TextSource::Memory { name, .. } => name,
        }
    }

    /// A new reader from the first byte.
    pub fn open(&self) -> Result<Box<dyn Read + Send + Sync>> {
        match self {
            TextSource::File(path) => Ok(Box::new(open_file(path)?)),
            TextSource::Memory { bytes, .. } => Ok(Box::new(MemoryReader::new(Arc::clone(bytes)))),
        }
    }

    /// Up to `len` bytes from the start (for sniffing a delimiter or a format).
    pub fn head(&self, len: usize) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len.min(1 << 20));
        self.open()?
            .take(len as u64)
            .read_to_end(&mut out)
            .map_err(|err| Error::io(self.path(), err))?;
        Ok(out)
    }

    /// The size in bytes, if known without reading.
    pub fn len(&self) -> Option<u64> {
        match self {
            TextSource::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            TextSource::Memory { bytes, .. } => Some(bytes.len() as u64),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// Opens a file, a missing one being a format error that names it.
pub fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            Error::format(Location::file(path), "file not found")
        } else {
            Error::io(path, err)
        }
    })
}
