//! Geometry operations on WKB arrays with the geo crate: validation (OGC rules) and
//! simplification (Douglas-Peucker, Visvalingam-Whyatt). geo is two-dimensional:
//! simplified geometries lose their z.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BinaryArray};
use arrow_schema::DataType;
use geo::{Simplify, SimplifyVw, SimplifyVwPreserve, Validation};
use geo_types::{
    Coord, Geometry, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon,
    Point, Polygon,
};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::wkb::{self, Cursor, GeomType};

const MAX_DEPTH: usize = 32;
const CHUNK: usize = 2048;

/// Reads WKB (ISO or EWKB, either byte order) into a 2D geo geometry; `None` for an
/// empty point.
pub fn from_wkb(bytes: &[u8]) -> std::result::Result<Option<Geometry<f64>>, String> {
    let mut cursor = Cursor::new(bytes);
    let geometry = read(&mut cursor, 0)?;
    if !cursor.is_at_end() {
        return Err("trailing bytes after the WKB geometry".into());
    }
    Ok(geometry)
}

fn coord(
    cursor: &mut Cursor<'_>,
    little: bool,
    ty: GeomType,
) -> std::result::Result<Coord<f64>, String> {
    let x = cursor.f64(little)?;
    let y = cursor.f64(little)?;
    for _ in 2..ty.dims() {
        cursor.f64(little)?;
    }
    Ok(Coord { x, y })
}

fn line(
    cursor: &mut Cursor<'_>,
    little: bool,
    ty: GeomType,
) -> std::result::Result<LineString<f64>, String> {
    let n = cursor.u32(little)? as usize;
    // Each coordinate takes at least 16 bytes: refuse counts the bytes cannot hold.
    let mut coords = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        coords.push(coord(cursor, little, ty)?);
    }
    Ok(LineString(coords))
}

fn polygon(
    cursor: &mut Cursor<'_>,
    little: bool,
    ty: GeomType,
) -> std::result::Result<Polygon<f64>, String> {
    let rings = cursor.u32(little)? as usize;
    let mut exterior = LineString(Vec::new());
    let mut interiors = Vec::with_capacity(rings.saturating_sub(1).min(1 << 16));
    for i in 0..rings {
        let ring = line(cursor, little, ty)?;
        if i == 0 {
            exterior = ring;
        } else {
            interiors.push(ring);
        }
    }
    Ok(Polygon::new(exterior, interiors))
}

fn read(
    cursor: &mut Cursor<'_>,
    depth: usize,
) -> std::result::Result<Option<Geometry<f64>>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("WKB nested deeper than {MAX_DEPTH} levels"));
    }
    let little = cursor.byte_order()?;
    let code = cursor.u32(little)?;
    let ty =
        GeomType::from_code(code).ok_or_else(|| format!("unknown WKB geometry type {code}"))?;
    if ty.has_srid {
        cursor.u32(little)?;
    }
    let parts = |cursor: &mut Cursor<'_>| -> std::result::Result<Vec<Geometry<f64>>, String> {
        let n = cursor.u32(little)? as usize;
        let mut out = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            if let Some(g) = read(cursor, depth + 1)? {
                out.push(g);
            }
        }
        Ok(out)
    };
    Ok(Some(match ty.base {
        wkb::POINT => {
            let c = coord(cursor, little, ty)?;
            if c.x.is_nan() && c.y.is_nan() {
                return Ok(None);
            }
            Geometry::Point(Point(c))
        }
        wkb::LINESTRING => Geometry::LineString(line(cursor, little, ty)?),
        wkb::POLYGON => Geometry::Polygon(polygon(cursor, little, ty)?),
        wkb::MULTIPOINT => Geometry::MultiPoint(MultiPoint(
            parts(cursor)?
                .into_iter()
                .filter_map(|g| {
                    if let Geometry::Point(p) = g {
                        Some(p)
                    } else {
                        None
                    }
                })
                .collect(),
        )),
        wkb::MULTILINESTRING => Geometry::MultiLineString(MultiLineString(
            parts(cursor)?
                .into_iter()
                .filter_map(|g| {
                    if let Geometry::LineString(l) = g {
                        Some(l)
                    } else {
                        None
                    }
                })
                .collect(),
        )),
        wkb::MULTIPOLYGON => Geometry::MultiPolygon(MultiPolygon(
            parts(cursor)?
                .into_iter()
                .filter_map(|g| {
                    if let Geometry::Polygon(p) = g {
                        Some(p)
                    } else {
                        None
                    }
                })
                .collect(),
        )),
        _ => Geometry::GeometryCollection(GeometryCollection(parts(cursor)?)),
    }))
}

fn write_line(line: &LineString<f64>, out: &mut Vec<u8>) {
    wkb::write_u32(out, u32::try_from(line.0.len()).unwrap_or(u32::MAX));
    for c in &line.0 {
        wkb::write_f64(out, c.x);
        wkb::write_f64(out, c.y);
    }
}

fn write_polygon(polygon: &Polygon<f64>, out: &mut Vec<u8>) {
    wkb::write_header(out, wkb::POLYGON, false);
    let rings = if polygon.exterior().0.is_empty() {
        0
    } else {
        1 + polygon.interiors().len()
    };
    wkb::write_u32(out, u32::try_from(rings).unwrap_or(u32::MAX));
    if rings > 0 {
        write_line(polygon.exterior(), out);
        for ring in polygon.interiors() {
            write_line(ring, out);
        }
    }
}

/// Appends the 2D ISO WKB of a geo geometry.
pub fn to_wkb(geometry: &Geometry<f64>, out: &mut Vec<u8>) {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    match geometry {
        Geometry::Point(p) => {
            wkb::write_header(out, wkb::POINT, false);
            wkb::write_f64(out, p.x());
            wkb::write_f64(out, p.y());
        }
        Geometry::LineString(l) => {
            wkb::write_header(out, wkb::LINESTRING, false);
            write_line(l, out);
        }
        Geometry::Polygon(p) => write_polygon(p, out),
        Geometry::MultiPoint(m) => {
            wkb::write_header(out, wkb::MULTIPOINT, false);
            wkb::write_u32(out, count(m.0.len()));
            for p in &m.0 {
                to_wkb(&Geometry::Point(*p), out);
            }
        }
        Geometry::MultiLineString(m) => {
            wkb::write_header(out, wkb::MULTILINESTRING, false);
            wkb::write_u32(out, count(m.0.len()));
            for l in &m.0 {
                wkb::write_header(out, wkb::LINESTRING, false);
                write_line(l, out);
            }
        }
        Geometry::MultiPolygon(m) => {
            wkb::write_header(out, wkb::MULTIPOLYGON, false);
            wkb::write_u32(out, count(m.0.len()));
            for p in &m.0 {
                write_polygon(p, out);
            }
        }
        Geometry::GeometryCollection(c) => {
            wkb::write_header(out, wkb::GEOMETRYCOLLECTION, false);
            wkb::write_u32(out, count(c.0.len()));
            for g in &c.0 {
                to_wkb(g, out);
            }
        }
        Geometry::Line(l) => to_wkb(&Geometry::LineString(LineString(vec![l.start, l.end])), out),
        Geometry::Rect(r) => to_wkb(&Geometry::Polygon(r.to_polygon()), out),
        Geometry::Triangle(t) => to_wkb(&Geometry::Polygon(t.to_polygon()), out),
    }
}

/// The WKB values of a binary array (Binary, LargeBinary or BinaryView).
pub fn wkb_values(array: &dyn Array) -> Result<Vec<Option<&[u8]>>> {
    Ok(match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().iter().collect(),
        DataType::LargeBinary => array.as_binary::<i64>().iter().collect(),
        DataType::BinaryView => array.as_binary_view().iter().collect(),
        other => {
            return Err(Error::InvalidArgument(format!(
                "expected a WKB (binary) array, got {other}"
            )))
        }
    })
}

/// Per geometry: whether it is valid (null for a null geometry) and why not.
pub fn validate(array: &dyn Array) -> Result<(ArrayRef, ArrayRef)> {
    let values = wkb_values(array)?;
    let results: Vec<Option<Option<String>>> = values
        .par_iter()
        .enumerate()
        .map(|(row, value)| {
            let Some(bytes) = value else { return Ok(None) };
            let geometry =
                from_wkb(bytes).map_err(|m| Error::geometry(row, format!("invalid WKB: {m}")))?;
            Ok(Some(geometry.and_then(|g| {
                let problems = g.validation_errors();
                if problems.is_empty() {
                    None
                } else {
                    Some(
                        problems
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                }
            })))
        })
        .collect::<Result<_>>()?;
    let mut valid = BooleanBuilder::with_capacity(results.len());
    let mut reasons = StringBuilder::new();
    for result in &results {
        match result {
            None => {
                valid.append_null();
                reasons.append_null();
            }
            Some(None) => {
                valid.append_value(true);
                reasons.append_null();
            }
            Some(Some(reason)) => {
                valid.append_value(false);
                reasons.append_value(reason);
            }
        }
    }
    Ok((Arc::new(valid.finish()), Arc::new(reasons.finish())))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimplifyMethod {
    DouglasPeucker,
    VisvalingamWhyatt,
    /// Visvalingam-Whyatt that keeps rings valid and apart.
    VisvalingamWhyattPreserve,
}

impl SimplifyMethod {
    pub fn parse(method: &str, preserve_topology: bool) -> Result<Self> {
        match (method.to_ascii_lowercase().as_str(), preserve_topology) {
            ("dp" | "douglas-peucker", false) => Ok(SimplifyMethod::DouglasPeucker),
            ("dp" | "douglas-peucker", true) => Err(Error::InvalidArgument(
                "preserve_topology needs method=\"visvalingam-whyatt\"".into(),
            )),
            ("vw" | "visvalingam-whyatt", false) => Ok(SimplifyMethod::VisvalingamWhyatt),
            ("vw" | "visvalingam-whyatt", true) => Ok(SimplifyMethod::VisvalingamWhyattPreserve),
            (other, _) => Err(Error::InvalidArgument(format!(
                "method must be \"douglas-peucker\" or \"visvalingam-whyatt\", not {other:?}"
            ))),
        }
    }
}

fn simplify_one(geometry: &Geometry<f64>, method: SimplifyMethod, tolerance: f64) -> Geometry<f64> {
    macro_rules! apply {
        ($g:expr) => {
            match method {
                SimplifyMethod::DouglasPeucker => $g.simplify(tolerance),
                SimplifyMethod::VisvalingamWhyatt => $g.simplify_vw(tolerance),
                SimplifyMethod::VisvalingamWhyattPreserve => $g.simplify_vw_preserve(tolerance),
            }
        };
    }
    match geometry {
        Geometry::LineString(g) => Geometry::LineString(apply!(g)),
        Geometry::Polygon(g) => Geometry::Polygon(apply!(g)),
        Geometry::MultiLineString(g) => Geometry::MultiLineString(apply!(g)),
        Geometry::MultiPolygon(g) => Geometry::MultiPolygon(apply!(g)),
        Geometry::GeometryCollection(c) => Geometry::GeometryCollection(GeometryCollection(
            c.0.iter()
                .map(|g| simplify_one(g, method, tolerance))
                .collect(),
        )),
        other => other.clone(),
    }
}

/// Simplifies every geometry of a WKB array; nulls stay null, points unchanged.
pub fn simplify(array: &dyn Array, method: SimplifyMethod, tolerance: f64) -> Result<BinaryArray> {
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        return Err(Error::InvalidArgument(format!(
            "tolerance must be a finite number >= 0, not {tolerance}"
        )));
    }
    let values = wkb_values(array)?;
    let chunks: Vec<Vec<Option<Vec<u8>>>> = values
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(chunk, rows)| {
            rows.iter()
                .enumerate()
                .map(|(i, value)| {
                    let Some(bytes) = value else { return Ok(None) };
                    let row = chunk * CHUNK + i;
                    match from_wkb(bytes)
                        .map_err(|m| Error::geometry(row, format!("invalid WKB: {m}")))?
                    {
                        None => Ok(Some(bytes.to_vec())),
                        Some(geometry) => {
                            let mut out = Vec::with_capacity(bytes.len());
                            to_wkb(&simplify_one(&geometry, method, tolerance), &mut out);
                            Ok(Some(out))
                        }
                    }
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    Ok(BinaryArray::from_iter(
        chunks.iter().flatten().map(|v| v.as_deref()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wkt(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        crate::wkt::to_wkb(text, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_through_geo() {
        for text in [
            "POINT (1 2)",
            "LINESTRING (0 0, 1 1)",
            "POLYGON ((0 0, 0 1, 1 1, 0 0), (0.1 0.1, 0.2 0.1, 0.2 0.2, 0.1 0.1))",
            "MULTIPOINT ((0 0), (1 1))",
            "MULTIPOLYGON (((0 0, 0 1, 1 1, 0 0)))",
            "GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (0 0, 1 1))",
        ] {
            let bytes = wkt(text);
            let geometry = from_wkb(&bytes).unwrap().unwrap();
            let mut out = Vec::new();
            to_wkb(&geometry, &mut out);
            assert_eq!(out, bytes, "{text}");
        }
        assert!(from_wkb(&wkt("POINT EMPTY")).unwrap().is_none());
    }

    #[test]
    fn validation_reasons() {
        let bowtie = wkt("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))");
        let good = wkt("POLYGON ((0 0, 0 1, 1 1, 0 0))");
        let array = BinaryArray::from(vec![Some(good.as_slice()), Some(bowtie.as_slice()), None]);
        let (valid, reasons) = validate(&array).unwrap();
        let valid = valid.as_boolean();
        assert!(valid.value(0) && !valid.value(1) && valid.is_null(2));
        assert!(
            reasons.as_string::<i32>().value(1).contains("intersect"),
            "{:?}",
            reasons.as_string::<i32>().value(1)
        );
    }

    #[test]
    fn simplification() {
        let line = wkt("LINESTRING (0 0, 1 0.01, 2 0, 3 0.01, 4 0)");
        let array = BinaryArray::from(vec![Some(line.as_slice()), None]);
        let out = simplify(&array, SimplifyMethod::DouglasPeucker, 0.1).unwrap();
        assert_eq!(out.value(0), wkt("LINESTRING (0 0, 4 0)").as_slice());
        assert!(out.is_null(1));
        let out = simplify(&array, SimplifyMethod::VisvalingamWhyatt, 0.1).unwrap();
        assert_eq!(out.value(0), wkt("LINESTRING (0 0, 4 0)").as_slice());
        assert!(simplify(&array, SimplifyMethod::DouglasPeucker, -1.0).is_err());
        assert!(SimplifyMethod::parse("dp", true).is_err());
    }
}
