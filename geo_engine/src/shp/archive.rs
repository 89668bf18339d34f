//! Shapefiles inside a .zip: one or more, in any folder of the archive; the members
//! of the chosen one are decompressed into memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zip::ZipArchive;

use super::source::Input;
use super::ShapefileParts;
use crate::error::{Error, Location, Result};

/// Member name without extension, and the lower-case extension.
fn split(name: &str) -> Option<(&str, String)> {
    let (stem, ext) = name.rsplit_once('.')?;
    Some((stem, ext.to_ascii_lowercase()))
}

fn layer_name(stem: &str) -> &str {
    stem.rsplit('/').next().unwrap_or(stem)
}

/// The names of the shapefiles (layers) in an archive.
pub fn layers(path: &Path) -> Result<Vec<String>> {
    let archive = open(path)?;
    Ok(shp_members(&archive).into_keys().collect())
}

fn open(path: &Path) -> Result<ZipArchive<File>> {
    let file = File::open(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            Error::format(Location::file(path), "file not found")
        } else {
            Error::io(path, err)
        }
    })?;
    ZipArchive::new(file).map_err(|err| {
        Error::format(
            Location::file(path),
            format!("not a readable zip archive: {err}"),
        )
    })
}

/// The names of the archive's members (undecodable names left out).
fn member_names(archive: &ZipArchive<File>) -> Vec<String> {
    archive
        .file_names()
        .filter_map(|name| name.ok().map(|n| n.into_owned()))
        .filter(|name| !name.starts_with("__MACOSX/"))
        .collect()
}

/// Layer name -> member stem (with its folder), for every .shp in the archive.
fn shp_members(archive: &ZipArchive<File>) -> BTreeMap<String, String> {
    member_names(archive)
        .iter()
        .filter_map(|name| split(name))
        .filter(|(_, ext)| ext == "shp")
        .map(|(stem, _)| (layer_name(stem).to_string(), stem.to_string()))
        .collect()
}

impl ShapefileParts {
    /// The shapefile `layer` (its file name without extension, any case) of the .zip
    /// at `path`; without `layer`, the only shapefile in it.
    pub fn from_zip(path: &Path, layer: Option<&str>) -> Result<Self> {
        let mut archive = open(path)?;
        let members = shp_members(&archive);
        let names: Vec<&str> = members.keys().map(String::as_str).collect();
        let stem = match layer {
            Some(wanted) => members
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
                .map(|(_, stem)| stem.clone())
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{}: no layer {wanted:?} in the archive (layers: {})",
                        path.display(),
                        names.join(", ")
                    ))
                })?,
            None => match members.values().collect::<Vec<_>>().as_slice() {
                [only] => (*only).clone(),
                [] => {
                    return Err(Error::format(
                        Location::file(path),
                        "the archive holds no .shp file",
                    ))
                }
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "{}: the archive holds several shapefiles ({}); choose one with layer=",
                        path.display(),
                        names.join(", ")
                    )))
                }
            },
        };
        // Siblings: the same stem, any case of the extension.
        let mut siblings: BTreeMap<String, String> = BTreeMap::new();
        for name in member_names(&archive) {
            if let Some((member_stem, ext)) = split(&name) {
                if member_stem == stem {
                    siblings.insert(ext, name.clone());
                }
            }
        }
        let mut read = |ext: &str| -> Result<Option<(PathBuf, Vec<u8>)>> {
            let Some(name) = siblings.get(ext) else {
                return Ok(None);
            };
            let member_path = path.join(name);
            let mut entry = archive.by_name(name).map_err(|err| {
                Error::format(
                    Location::file(&member_path),
                    format!("cannot read the zip member: {err}"),
                )
            })?;
            let mut bytes =
                Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(1 << 30));
            entry.read_to_end(&mut bytes).map_err(|err| {
                Error::format(
                    Location::file(&member_path),
                    format!("cannot decompress the zip member: {err}"),
                )
            })?;
            Ok(Some((member_path, bytes)))
        };
        let memory = |found: Option<(PathBuf, Vec<u8>)>| {
            found.map(|(p, bytes)| Input::from_memory(p, Arc::from(bytes)))
        };
        let shp = memory(read("shp")?).ok_or_else(|| {
            Error::format(
                Location::file(&path.join(format!("{stem}.shp"))),
                "file not found",
            )
        })?;
        let dbf = memory(read("dbf")?);
        Ok(Self {
            shp,
            shx: memory(read("shx")?),
            dbf,
            prj: read("prj")?,
            cpg: read("cpg")?,
        })
    }
}
