//! ESRI shapefiles (.shp + .shx + .dbf, with .prj and .cpg) read as Arrow record
//! batches: the DBF attributes typed as GDAL types them, then a `geometry` column of
//! ISO WKB (GeoArrow `geoarrow.wkb`), reprojected with PROJ.

pub mod archive;
pub mod geometry;
pub mod index;
pub mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, RecordBatch, RecordBatchReader};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;

use crate::crs::{Crs, TransformerPool};
use crate::dbf::{self, DbfHeader, Rows};
use crate::encoding::TextEncoding;
use crate::error::{Error, Location, Result};
use geometry::{Coords, Shape};
use index::{MainHeader, RecordIndex};
use source::Input;

/// Records decoded by one rayon task.
const CHUNK_RECORDS: usize = 4096;

/// The name of the geometry column.
pub const GEOMETRY_COLUMN: &str = "geometry";

/// Options of [`ShapefileReader`]; `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapefileOptions {
    /// Overrides the .cpg / DBF language byte.
    pub encoding: Option<String>,
    /// Overrides the .prj.
    pub source_crs: Option<String>,
    /// Reproject to this CRS; `None` keeps the source CRS.
    pub target_crs: Option<String>,
    pub batch_size: usize,
    /// The shapefile to read from a .zip holding several.
    pub layer: Option<String>,
}

impl Default for ShapefileOptions {
    fn default() -> Self {
        Self {
            encoding: None,
            source_crs: None,
            target_crs: Some("EPSG:4326".to_string()),
            batch_size: 65_536,
            layer: None,
        }
    }
}

/// Where the source CRS came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrsSource {
    Prj,
    Argument,
    /// No .prj and no override: EPSG:4326 was assumed.
    Assumed,
}

impl CrsSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            CrsSource::Prj => "prj",
            CrsSource::Argument => "argument",
            CrsSource::Assumed => "assumed",
        }
    }
}

/// The files of one shapefile, wherever they come from (a folder or a .zip).
/// Without a .dbf it reads as geometry only, as GDAL reads it; without a .shx the
/// records are walked through the .shp.
pub struct ShapefileParts {
    pub shp: Input,
    pub shx: Option<Input>,
    pub dbf: Option<Input>,
    pub prj: Option<(PathBuf, Vec<u8>)>,
    pub cpg: Option<(PathBuf, Vec<u8>)>,
}

impl ShapefileParts {
    /// The shapefile at `path`: a .shp with its siblings next to it, or a .zip
    /// holding one or more shapefiles (`layer` chooses; one alone is taken).
    pub fn open(path: &Path, layer: Option<&str>) -> Result<Self> {
        if source::has_extension(path, "zip") {
            Self::from_zip(path, layer)
        } else {
            Self::from_path(path)
        }
    }

    /// The shapefile at `path` (a .shp), its siblings found next to it.
    pub fn from_path(path: &Path) -> Result<Self> {
        if !source::has_extension(path, "shp") {
            return Err(Error::format(
                Location::file(path),
                "expected a .shp or .zip file",
            ));
        }
        let shp = Input::open(path)?;
        let dbf = match source::sibling(path, "dbf") {
            Some(dbf_path) => Some(Input::open(&dbf_path)?),
            None => None,
        };
        let shx = match source::sibling(path, "shx") {
            Some(shx_path) => Some(Input::open(&shx_path)?),
            None => None,
        };
        let read_small = |ext: &str| -> Result<Option<(PathBuf, Vec<u8>)>> {
            match source::sibling(path, ext) {
                Some(p) => {
                    let bytes = std::fs::read(&p).map_err(|err| Error::io(&p, err))?;
                    Ok(Some((p, bytes)))
                }
                None => Ok(None),
            }
        };
        Ok(Self {
            shp,
            shx,
            dbf,
            prj: read_small("prj")?,
            cpg: read_small("cpg")?,
        })
    }
}

impl ShapefileParts {
    /// A shapefile held in memory; `shp_path` (the .shp's name) names its parts in
    /// messages. Without `shx` the index is rebuilt by scanning the .shp; without
    /// `dbf` there are no attributes.
    pub fn from_memory(
        shp_path: &Path,
        shp: Vec<u8>,
        shx: Option<Vec<u8>>,
        dbf: Option<Vec<u8>>,
        prj: Option<Vec<u8>>,
        cpg: Option<Vec<u8>>,
    ) -> Self {
        let named = |ext: &str| shp_path.with_extension(ext);
        Self {
            shp: Input::from_memory(shp_path.to_path_buf(), shp.into()),
            shx: shx.map(|bytes| Input::from_memory(named("shx"), bytes.into())),
            dbf: dbf.map(|bytes| Input::from_memory(named("dbf"), bytes.into())),
            prj: prj.map(|bytes| (named("prj"), bytes)),
            cpg: cpg.map(|bytes| (named("cpg"), bytes)),
        }
    }
}

/// What was found out while opening, for metadata and messages.
#[derive(Debug, Clone)]
pub struct ShapefileInfo {
    pub shp_path: PathBuf,
    pub record_count: usize,
    pub shape_type: i32,
    pub encoding: String,
    pub source_crs: Crs,
    pub crs_source: CrsSource,
    /// The CRS of the output geometry.
    pub crs: Crs,
    /// The optional parts that were missing (`dbf`, `shx`), read around as GDAL does.
    pub missing: Vec<&'static str>,
}

/// The attribute table of a shapefile that has its .dbf.
struct Attributes {
    dbf: Input,
    header: DbfHeader,
    names: Vec<String>,
}

/// A streaming shapefile reader: one [`RecordBatch`] per `batch_size` records
/// (deleted DBF records, and their shapes, left out).
pub struct ShapefileReader {
    shp: Input,
    attributes: Option<Attributes>,
    index: RecordIndex,
    text: TextEncoding,
    schema: SchemaRef,
    transform: Option<TransformerPool>,
    next_record: usize,
    batch_size: usize,
    info: ShapefileInfo,
    /// Read buffers kept between batches.
    buffers: Buffers,
}

#[derive(Default)]
struct Buffers {
    shp: Vec<u8>,
    dbf: Vec<u8>,
}

fn resolve_encoding(
    parts: &ShapefileParts,
    ldid: u8,
    options: &ShapefileOptions,
) -> Result<TextEncoding> {
    if let Some(label) = &options.encoding {
        let dbf_path = parts.dbf.as_ref().map_or_else(
            || parts.shp.path.with_extension("dbf"),
            |dbf| dbf.path.clone(),
        );
        return TextEncoding::from_label(label).ok_or_else(|| {
            Error::encoding(
                Location::file(&dbf_path),
                format!("unknown encoding {label:?} (the encoding argument)"),
            )
        });
    }
    if let Some((path, bytes)) = &parts.cpg {
        let label = String::from_utf8_lossy(bytes);
        return TextEncoding::from_label(&label).ok_or_else(|| {
            Error::encoding(
                Location::file(path),
                format!("unknown encoding {:?} in the .cpg file", label.trim()),
            )
        });
    }
    Ok(TextEncoding::from_ldid(ldid).unwrap_or(TextEncoding::Latin1))
}

fn resolve_crs(parts: &ShapefileParts, options: &ShapefileOptions) -> Result<(Crs, CrsSource)> {
    if let Some(definition) = &options.source_crs {
        return Ok((Crs::parse(definition, "source_crs")?, CrsSource::Argument));
    }
    if let Some((path, bytes)) = &parts.prj {
        let text = String::from_utf8_lossy(bytes);
        if !text.trim().is_empty() {
            return Ok((
                Crs::parse(&text, &path.display().to_string())?,
                CrsSource::Prj,
            ));
        }
    }
    Ok((Crs::wgs84()?, CrsSource::Assumed))
}

/// The GeoArrow extension metadata of a WKB column in `crs`.
pub fn geoarrow_metadata(crs: &Crs) -> HashMap<String, String> {
    HashMap::from([
        (
            "ARROW:extension:name".to_string(),
            "geoarrow.wkb".to_string(),
        ),
        (
            "ARROW:extension:metadata".to_string(),
            format!("{{\"crs\":{},\"crs_type\":\"projjson\"}}", crs.projjson),
        ),
    ])
}

impl ShapefileReader {
    /// Opens the shapefile at `path` (a .shp with its siblings, or a .zip).
    pub fn try_new(path: &Path, options: ShapefileOptions) -> Result<Self> {
        Self::from_parts(
            ShapefileParts::open(path, options.layer.as_deref())?,
            options,
        )
    }

    /// Reads every remaining batch.
    pub fn read_all(&mut self) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next_batch()? {
            batches.push(batch);
        }
        Ok(batches)
    }

    /// Opens a shapefile from its parts; checks everything that can be checked
    /// without decoding records: headers, record counts, every record's extent.
    pub fn from_parts(parts: ShapefileParts, options: ShapefileOptions) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(Error::InvalidArgument(
                "batch_size must be at least 1".into(),
            ));
        }
        let header = MainHeader::read(&parts.shp)?;
        if header.shape_type == geometry::MULTIPATCH {
            return Err(Error::Unsupported {
                location: Location::file(&parts.shp.path),
                message: "MultiPatch shapefiles are not supported".into(),
            });
        }
        let index = match &parts.shx {
            Some(shx) => RecordIndex::from_shx(shx, parts.shp.len(), &parts.shp.path)?,
            None => RecordIndex::scan(&parts.shp)?,
        };
        let dbf_header = match &parts.dbf {
            Some(dbf) => Some(read_dbf_header(dbf, index.len(), &parts.shp.path)?),
            None => None,
        };
        // No .dbf: no language byte either; a .cpg or the argument still counts.
        let ldid = dbf_header.as_ref().map_or(0, |header| header.ldid);
        let text = resolve_encoding(&parts, ldid, &options)?;
        let (source_crs, crs_source) = resolve_crs(&parts, &options)?;
        let mut missing = Vec::new();
        if parts.shx.is_none() {
            missing.push("shx");
        }
        let attributes = match (parts.dbf, dbf_header) {
            (Some(dbf), Some(header)) => {
                let names = header.field_names(text, &dbf.path)?;
                Some(Attributes { dbf, header, names })
            }
            _ => {
                missing.push("dbf");
                None
            }
        };
        let (crs, transform) = match &options.target_crs {
            Some(target) => {
                let target = Crs::parse(target, "target_crs")?;
                let pool = TransformerPool::new(&source_crs, &target)?;
                (target, pool)
            }
            None => (source_crs.clone(), None),
        };
        let mut fields = attributes
            .as_ref()
            .map_or_else(Vec::new, |a| a.header.arrow_fields(&a.names));
        fields.push(
            Field::new(GEOMETRY_COLUMN, DataType::Binary, true)
                .with_metadata(geoarrow_metadata(&crs)),
        );
        let metadata = HashMap::from([
            (
                "geo_engine:crs_source".to_string(),
                crs_source.as_str().to_string(),
            ),
            (
                "geo_engine:source_crs".to_string(),
                source_crs.label().to_string(),
            ),
            ("geo_engine:encoding".to_string(), text.name()),
            ("geo_engine:missing_parts".to_string(), missing.join(",")),
        ]);
        let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
        let info = ShapefileInfo {
            shp_path: parts.shp.path.clone(),
            record_count: index.len(),
            shape_type: header.shape_type,
            encoding: text.name(),
            source_crs,
            crs_source,
            crs,
            missing,
        };
        Ok(Self {
            shp: parts.shp,
            attributes,
            index,
            text,
            schema,
            transform,
            next_record: 0,
            batch_size: options.batch_size,
            info,
            buffers: Buffers::default(),
        })
    }

    pub fn info(&self) -> &ShapefileInfo {
        &self.info
    }

    /// Reads the next batch of records; `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            let total = self.index.len();
            if self.next_record >= total {
                return Ok(None);
            }
            let start = self.next_record;
            let end = start.saturating_add(self.batch_size).min(total);
            self.next_record = end;
            let mut buffers = std::mem::take(&mut self.buffers);
            let batch = self.read_range(start, end, &mut buffers);
            self.buffers = buffers;
            if let Some(batch) = batch? {
                return Ok(Some(batch));
            }
        }
    }

    /// The batch of records `start..end` (0-based), `None` if all are deleted.
    fn read_range(
        &self,
        start: usize,
        end: usize,
        buffers: &mut Buffers,
    ) -> Result<Option<RecordBatch>> {
        let (kept, rows) = match &self.attributes {
            Some(attributes) => {
                let (kept, rows) = attributes.rows(start, end, &mut buffers.dbf)?;
                (kept, Some(rows))
            }
            // Geometry only: every shape is a row (the .dbf's deletion flags are gone).
            None => ((start..end).collect::<Vec<usize>>(), None),
        };
        if kept.is_empty() {
            return Ok(None);
        }
        let (shp_bytes, base) = self.read_shapes(&kept, &mut buffers.shp)?;
        let (geometry, columns) = rayon::join(
            || self.build_geometry(&kept, shp_bytes, base),
            || match (&self.attributes, &rows) {
                (Some(attributes), Some(rows)) => attributes.columns(rows, self.text),
                _ => Ok(Vec::new()),
            },
        );
        let mut columns = columns?;
        columns.push(geometry?);
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        Ok(Some(batch))
    }

    /// The .shp bytes covering the given records, and the file offset they start at.
    fn read_shapes<'a>(&'a self, kept: &[usize], buf: &'a mut Vec<u8>) -> Result<(&'a [u8], u64)> {
        let mut lo = u64::MAX;
        let mut hi = 0u64;
        let mut total = 0u64;
        for &record in kept {
            let (offset, len) = self.record_extent(record)?;
            lo = lo.min(offset);
            hi = hi.max(offset + 8 + len as u64);
            total += 8 + len as u64;
        }
        // Records are normally in file order and contiguous: one read. A file whose
        // index jumps around is read anyway, but refused if that would mean reading far
        // more than the records themselves.
        let span = hi.saturating_sub(lo);
        if span > total.saturating_mul(4).saturating_add(1 << 24) {
            return Err(Error::format(
                Location::file(&self.shp.path),
                "the .shx offsets are scattered across the file; rewrite it (e.g. with ogr2ogr)",
            ));
        }
        let len =
            usize::try_from(span).map_err(|_| Error::InvalidArgument("batch too large".into()))?;
        Ok((self.shp.read_at_with(lo, len, buf)?, lo))
    }

    fn record_extent(&self, record: usize) -> Result<(u64, usize)> {
        self.index.get(record).ok_or_else(|| {
            Error::format(
                Location::record(&self.shp.path, record as u64 + 1),
                "record missing from the index",
            )
        })
    }

    fn build_geometry(&self, kept: &[usize], shp_bytes: &[u8], base: u64) -> Result<ArrayRef> {
        let chunks: Vec<(Vec<u8>, Vec<Option<usize>>)> = kept
            .par_chunks(CHUNK_RECORDS)
            .map(|chunk| self.decode_chunk(chunk, shp_bytes, base))
            .collect::<Result<_>>()?;
        let rows: usize = chunks.iter().map(|(_, lens)| lens.len()).sum();
        let bytes: usize = chunks.iter().map(|(values, _)| values.len()).sum();
        let mut values = Vec::with_capacity(bytes);
        let mut offsets = Vec::with_capacity(rows + 1);
        let mut validity = Vec::with_capacity(rows);
        offsets.push(0i32);
        let mut running = 0usize;
        for (chunk_values, lens) in chunks {
            values.extend_from_slice(&chunk_values);
            for len in lens {
                running += len.unwrap_or(0);
                let offset = i32::try_from(running).map_err(|_| {
                    Error::format(
                        Location::file(&self.shp.path),
                        "a batch holds more than 2 GiB of geometry; use a smaller batch_size",
                    )
                })?;
                offsets.push(offset);
                validity.push(len.is_some());
            }
        }
        let nulls = if validity.iter().all(|&v| v) {
            None
        } else {
            Some(NullBuffer::from(validity))
        };
        let array = BinaryArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(values),
            nulls,
        )?;
        Ok(Arc::new(array))
    }

    /// Decodes, reprojects and encodes a chunk of records: the WKB bytes and, per
    /// record, its WKB length (`None` for a null shape).
    fn decode_chunk(
        &self,
        records: &[usize],
        shp_bytes: &[u8],
        base: u64,
    ) -> Result<(Vec<u8>, Vec<Option<usize>>)> {
        let mut coords = Coords::default();
        let mut shapes = Vec::with_capacity(records.len());
        let mut first_coord = Vec::with_capacity(records.len());
        for &record in records {
            let location = || Location::record(&self.shp.path, record as u64 + 1);
            let (offset, len) = self.record_extent(record)?;
            let start = usize::try_from(offset - base)
                .unwrap_or(usize::MAX)
                .saturating_add(8);
            let content = shp_bytes
                .get(start..start.saturating_add(len))
                .ok_or_else(|| Error::format(location(), "record is truncated"))?;
            first_coord.push(coords.xs.len());
            let shape = geometry::decode(content, &mut coords).map_err(|message| {
                if message.contains("MultiPatch") {
                    Error::Unsupported {
                        location: location(),
                        message,
                    }
                } else {
                    Error::format(location(), message)
                }
            })?;
            shapes.push(shape);
        }
        if let Some(pool) = &self.transform {
            let Coords {
                xs, ys, zs, any_z, ..
            } = &mut coords;
            let zs = if *any_z {
                Some(zs.as_mut_slice())
            } else {
                None
            };
            let outcome = pool.transform(xs, ys, zs)?;
            if let Err((at, reason)) = outcome {
                let slot = first_coord
                    .partition_point(|&first| first <= at)
                    .saturating_sub(1);
                let record = records.get(slot).copied().unwrap_or(0);
                return Err(Error::crs(
                    Location::record(&self.shp.path, record as u64 + 1).to_string(),
                    format!(
                        "cannot transform a coordinate from {} to {}: {reason}",
                        pool.source.label(),
                        pool.target.label()
                    ),
                ));
            }
        }
        let mut values = Vec::with_capacity(coords.xs.len() * 16 + records.len() * 9);
        let mut lens = Vec::with_capacity(records.len());
        for shape in &shapes {
            let before = values.len();
            if matches!(shape, Shape::Null) {
                lens.push(None);
            } else {
                geometry::write_wkb(shape, &coords, &mut values);
                lens.push(Some(values.len() - before));
            }
        }
        Ok((values, lens))
    }
}

/// The .dbf's header, checked against the file's size and the number of shapes.
fn read_dbf_header(dbf: &Input, shapes: usize, shp_path: &Path) -> Result<DbfHeader> {
    let prefix = dbf.read_at(0, DbfHeader::PREFIX_LEN).map_err(|_| {
        Error::format(
            Location::file(&dbf.path),
            "not a dBASE file: shorter than its 32-byte header",
        )
    })?;
    let header_len = DbfHeader::header_len(&prefix, &dbf.path)?;
    let header_bytes = dbf.read_at(0, header_len as usize)?;
    let header = DbfHeader::parse(&header_bytes, &dbf.path)?;
    header.check_len(dbf.len(), &dbf.path)?;
    if header.record_count != shapes as u64 {
        return Err(Error::format(
            Location::file(shp_path),
            format!(
                "record counts differ: {} shapes, {} rows in {}",
                shapes,
                header.record_count,
                dbf.path.display()
            ),
        ));
    }
    Ok(header)
}

impl Attributes {
    /// The records `start..end` not marked deleted: their numbers and their bytes.
    fn rows<'a>(
        &'a self,
        start: usize,
        end: usize,
        buf: &'a mut Vec<u8>,
    ) -> Result<(Vec<usize>, Rows<'a>)> {
        let record_len = self.header.record_len;
        let dbf_bytes = self.dbf.read_at_with(
            self.header.header_len + (start as u64) * record_len as u64,
            (end - start) * record_len,
            buf,
        )?;
        let mut kept = Vec::with_capacity(end - start);
        let mut records = Vec::with_capacity(end - start);
        for (i, record) in dbf_bytes.chunks_exact(record_len.max(1)).enumerate() {
            if record.first() != Some(&b'*') {
                kept.push(start + i);
                records.push(record);
            }
        }
        let numbers = kept.iter().map(|&r| r as u64 + 1).collect();
        Ok((kept, Rows { records, numbers }))
    }

    /// The attribute columns of these rows, built in parallel.
    fn columns(&self, rows: &Rows<'_>, text: TextEncoding) -> Result<Vec<ArrayRef>> {
        self.header
            .fields
            .par_iter()
            .zip(self.names.par_iter())
            .map(|(field, name)| dbf::build_column(field, name, rows, text, &self.dbf.path))
            .collect::<Result<Vec<ArrayRef>>>()
    }
}

impl Iterator for ShapefileReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().map_err(ArrowError::from).transpose()
    }
}

impl RecordBatchReader for ShapefileReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
pub(crate) mod tests;
