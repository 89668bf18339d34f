//! The crate's one error type. Every variant that comes from reading a file names the
//! file and, where it applies, the 1-based record number; encoder errors name the row.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in the input an error happened: a file, and optionally a record in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    /// 1-based record (shapefile records, DBF rows, CSV lines, GeoJSON features).
    pub record: Option<u64>,
    /// What a record is called in this format: "record", "line", "feature".
    pub unit: &'static str,
}

impl Location {
    pub fn file(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            record: None,
            unit: "record",
        }
    }

    pub fn record(path: &Path, record: u64) -> Self {
        Self {
            path: path.to_path_buf(),
            record: Some(record),
            unit: "record",
        }
    }

    /// A 1-based line of a text file.
    pub fn line(path: &Path, line: u64) -> Self {
        Self {
            unit: "line",
            ..Self::record(path, line)
        }
    }

    /// A 1-based feature of a GeoJSON file.
    pub fn feature(path: &Path, feature: u64) -> Self {
        Self {
            unit: "feature",
            ..Self::record(path, feature)
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.record {
            Some(record) => write!(f, "{}, {} {record}", self.path.display(), self.unit),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused a read or an open.
    #[error("{location}: {source}")]
    Io {
        location: Location,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not what the format says they must be (bad header, truncated
    /// record, counts that disagree, a value that does not parse).
    #[error("{location}: {message}")]
    Format { location: Location, message: String },
    /// A well-formed file using a feature this reader does not handle (MultiPatch).
    #[error("{location}: unsupported: {message}")]
    Unsupported { location: Location, message: String },
    /// Text that does not decode with the file's encoding, or an unknown encoding.
    #[error("{location}: {message}")]
    Encoding { location: Location, message: String },
    /// A CRS that PROJ cannot parse, or a coordinate it cannot transform.
    #[error("{context}: {message}")]
    Crs { context: String, message: String },
    /// A geometry (WKB) that cannot be parsed, in an in-memory array.
    #[error("row {row}: {message}")]
    Geometry { row: usize, message: String },
    /// A caller's argument that makes no sense (batch_size=0, a missing column).
    #[error("{0}")]
    InvalidArgument(String),
    /// Input data an analysis kernel cannot work with (NaN values, duplicate or
    /// collinear points, a singular system).
    #[error("{0}")]
    Analysis(String),
    #[error(transparent)]
    Arrow(arrow_schema::ArrowError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            location: Location::file(path),
            source,
        }
    }

    pub fn format(location: Location, message: impl Into<String>) -> Self {
        Error::Format {
            location,
            message: message.into(),
        }
    }

    pub fn encoding(location: Location, message: impl Into<String>) -> Self {
        Error::Encoding {
            location,
            message: message.into(),
        }
    }

    pub fn crs(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Crs {
            context: context.into(),
            message: message.into(),
        }
    }

    pub fn analysis(message: impl Into<String>) -> Self {
        Error::Analysis(message.into())
    }

    pub fn geometry(row: usize, message: impl Into<String>) -> Self {
        Error::Geometry {
            row,
            message: message.into(),
        }
    }

    /// The Python-facing class name, kept in messages that cross the Arrow C stream
    /// (where only text survives).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io { .. } => "GeoEngineIOError",
            Error::Format { .. } | Error::Unsupported { .. } => "FormatError",
            Error::Encoding { .. } => "EncodingError",
            Error::Crs { .. } => "CrsError",
            Error::Geometry { .. } => "GeometryError",
            Error::InvalidArgument(_) => "ValueError",
            Error::Analysis(_) => "AnalysisError",
            Error::Arrow(_) => "GeoEngineError",
        }
    }
}

/// An [`Error`] travelling inside an `ArrowError` (a `RecordBatchReader` can only
/// yield those). Its text starts with the Python class name, because a consumer on
/// the far side of the Arrow C stream only receives the message.
#[derive(Debug)]
pub struct StreamError(pub Error);

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.kind(), self.0)
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<Error> for arrow_schema::ArrowError {
    fn from(err: Error) -> Self {
        match err {
            Error::Arrow(inner) => inner,
            other => arrow_schema::ArrowError::ExternalError(Box::new(StreamError(other))),
        }
    }
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(err: arrow_schema::ArrowError) -> Self {
        match err {
            arrow_schema::ArrowError::ExternalError(boxed) => match boxed.downcast::<StreamError>()
            {
                Ok(stream) => stream.0,
                Err(other) => Error::Arrow(arrow_schema::ArrowError::ExternalError(other)),
            },
            other => Error::Arrow(other),
        }
    }
}
