//! Byte sources for the readers: a file read by offset, or bytes already in memory
//! (a member of a .zip), and the lookup of a shapefile's sibling files.

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Location, Result};

enum Bytes {
    File(File),
    Memory(Arc<[u8]>),
}

/// A readable input with the path used in messages.
pub struct Input {
    pub path: PathBuf,
    len: u64,
    bytes: Bytes,
}

impl Input {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                Error::format(Location::file(path), "file not found")
            } else {
                Error::io(path, err)
            }
        })?;
        let len = file.metadata().map_err(|err| Error::io(path, err))?.len();
        Ok(Self {
            path: path.to_path_buf(),
            len,
            bytes: Bytes::File(file),
        })
    }

    pub fn from_memory(path: PathBuf, bytes: Arc<[u8]>) -> Self {
        Self {
            path,
            len: bytes.len() as u64,
            bytes: Bytes::Memory(bytes),
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where `len` bytes at `offset` end; an error naming the file if they are not all there.
    fn end_of(&self, offset: u64, len: usize) -> Result<u64> {
        offset
            .checked_add(len as u64)
            .filter(|&end| end <= self.len)
            .ok_or_else(|| {
                Error::format(
                    Location::file(&self.path),
                    format!(
                        "file is truncated: needs {len} bytes at offset {offset}, has {} bytes",
                        self.len
                    ),
                )
            })
    }

    /// `len` bytes at `offset`; an error naming the file if they are not all there.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        let end = self.end_of(offset, len)?;
        match &self.bytes {
            Bytes::Memory(bytes) => {
                let start = usize::try_from(offset)
                    .map_err(|_| Error::InvalidArgument("offset too large".into()))?;
                let stop = usize::try_from(end)
                    .map_err(|_| Error::InvalidArgument("offset too large".into()))?;
                bytes
                    .get(start..stop)
                    .map(Cow::Borrowed)
                    .ok_or_else(|| Error::format(Location::file(&self.path), "file is truncated"))
            }
            Bytes::File(file) => {
                let mut buf = vec![0u8; len];
                read_exact_at(file, &mut buf, offset).map_err(|err| Error::io(&self.path, err))?;
                Ok(Cow::Owned(buf))
            }
        }
    }

    /// `len` bytes at `offset`: borrowed from memory, or read into `buf` (kept by
    /// the caller between reads, so that its pages are reused).
    pub fn read_at_with<'a>(
        &'a self,
        offset: u64,
        len: usize,
        buf: &'a mut Vec<u8>,
    ) -> Result<&'a [u8]> {
        match &self.bytes {
            Bytes::Memory(_) => match self.read_at(offset, len)? {
                Cow::Borrowed(bytes) => Ok(bytes),
                Cow::Owned(bytes) => {
                    *buf = bytes;
                    Ok(buf.as_slice())
                }
            },
            Bytes::File(file) => {
                self.end_of(offset, len)?;
                buf.clear();
                buf.resize(len, 0);
                read_exact_at(file, buf, offset).map_err(|err| Error::io(&self.path, err))?;
                Ok(buf.as_slice())
            }
        }
    }

    /// The whole input.
    pub fn read_all(&self) -> Result<Cow<'_, [u8]>> {
        let len = usize::try_from(self.len)
            .map_err(|_| Error::InvalidArgument("file too large".into()))?;
        self.read_at(0, len)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// The file next to `path` with the same stem and extension `ext`, whatever the
/// case of either extension.
pub fn sibling(path: &Path, ext: &str) -> Option<PathBuf> {
    let stem = path.file_stem()?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for candidate in [ext.to_ascii_lowercase(), ext.to_ascii_uppercase()] {
        let guess = dir.join(stem).with_extension(&candidate);
        if guess.is_file() {
            return Some(guess);
        }
    }
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let candidate = entry.path();
        let same_stem = candidate.file_stem() == Some(stem);
        let same_ext = candidate
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case(ext));
        if same_stem && same_ext && candidate.is_file() {
            return Some(candidate);
        }
    }
    None
}

/// Whether `path` ends with the extension `ext`, in any case.
pub fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}
