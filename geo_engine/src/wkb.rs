//! Well-known binary: writing ISO WKB (little-endian), and reading any WKB or EWKB
//! back, checked against its declared lengths, to re-encode it as PostGIS EWKB.

pub const POINT: u32 = 1;
pub const LINESTRING: u32 = 2;
pub const POLYGON: u32 = 3;
pub const MULTIPOINT: u32 = 4;
pub const MULTILINESTRING: u32 = 5;
pub const MULTIPOLYGON: u32 = 6;
pub const GEOMETRYCOLLECTION: u32 = 7;

const EWKB_Z: u32 = 0x8000_0000;
const EWKB_M: u32 = 0x4000_0000;
const EWKB_SRID: u32 = 0x2000_0000;
/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 32;

/// The OGC name of a base geometry type.
pub fn type_name(base: u32) -> &'static str {
    match base {
        POINT => "Point",
        LINESTRING => "LineString",
        POLYGON => "Polygon",
        MULTIPOINT => "MultiPoint",
        MULTILINESTRING => "MultiLineString",
        MULTIPOLYGON => "MultiPolygon",
        GEOMETRYCOLLECTION => "GeometryCollection",
        _ => "Geometry",
    }
}

/// Appends a little-endian ISO WKB header (byte order and type code).
#[inline]
pub fn write_header(out: &mut Vec<u8>, base: u32, has_z: bool) {
    out.push(1);
    let code = if has_z { base + 1000 } else { base };
    out.extend_from_slice(&code.to_le_bytes());
}

#[inline]
pub fn write_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[inline]
pub fn write_f64(out: &mut Vec<u8>, value: f64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// The parsed type word of one WKB geometry header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeomType {
    pub base: u32,
    pub has_z: bool,
    pub has_m: bool,
    pub has_srid: bool,
}

impl GeomType {
    /// Reads ISO (1001, 2001, 3001) and EWKB (flag bits) type codes alike.
    pub fn from_code(code: u32) -> Option<Self> {
        let mut has_z = code & EWKB_Z != 0;
        let mut has_m = code & EWKB_M != 0;
        let has_srid = code & EWKB_SRID != 0;
        let iso = code & 0x0FFF_FFFF;
        let base = iso % 1000;
        match iso / 1000 {
            0 => {}
            1 => has_z = true,
            2 => has_m = true,
            3 => {
                has_z = true;
                has_m = true;
            }
            _ => return None,
        }
        if !(POINT..=GEOMETRYCOLLECTION).contains(&base) {
            return None;
        }
        Some(Self {
            base,
            has_z,
            has_m,
            has_srid,
        })
    }

    pub fn dims(&self) -> usize {
        2 + usize::from(self.has_z) + usize::from(self.has_m)
    }

    fn ewkb_code(&self, with_srid: bool) -> u32 {
        let mut code = self.base;
        if self.has_z {
            code |= EWKB_Z;
        }
        if self.has_m {
            code |= EWKB_M;
        }
        if with_srid {
            code |= EWKB_SRID;
        }
        code
    }
}

/// A bounds-checked reader over one WKB value.
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    pub fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "WKB truncated: needs {len} bytes at offset {}, has {}",
                    self.pos,
                    self.bytes.len().saturating_sub(self.pos)
                )
            })?;
        let slice = self.bytes.get(self.pos..end).ok_or("WKB truncated")?;
        self.pos = end;
        Ok(slice)
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        self.take(1)?
            .first()
            .copied()
            .ok_or_else(|| "WKB truncated".to_string())
    }

    pub fn u32(&mut self, little: bool) -> Result<u32, String> {
        let bytes: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| "WKB truncated".to_string())?;
        Ok(if little {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        })
    }

    pub fn f64(&mut self, little: bool) -> Result<f64, String> {
        let bytes: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| "WKB truncated".to_string())?;
        Ok(if little {
            f64::from_le_bytes(bytes)
        } else {
            f64::from_be_bytes(bytes)
        })
    }

    /// Reads a byte-order byte; true for little-endian.
    pub fn byte_order(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("invalid WKB byte order {other}")),
        }
    }
}

/// Re-encodes one WKB or EWKB value as EWKB: the SRID (when given) goes into the
/// top-level header, every level's type word gets EWKB's Z/M flags instead of ISO's
/// thousands. Values are copied in their original byte order. Returns the top-level
/// type.
pub fn to_ewkb(wkb: &[u8], srid: Option<u32>, out: &mut Vec<u8>) -> Result<GeomType, String> {
    let mut cursor = Cursor::new(wkb);
    let top = copy_geometry(&mut cursor, srid, out, 0)?;
    if !cursor.is_at_end() {
        return Err(format!(
            "{} trailing bytes after the WKB geometry",
            wkb.len() - cursor.position()
        ));
    }
    Ok(top)
}

/// Reads only the top-level type of a WKB value.
pub fn peek_type(wkb: &[u8]) -> Result<GeomType, String> {
    let mut cursor = Cursor::new(wkb);
    let little = cursor.byte_order()?;
    let code = cursor.u32(little)?;
    GeomType::from_code(code).ok_or_else(|| format!("unknown WKB geometry type {code}"))
}

fn write_u32_order(out: &mut Vec<u8>, value: u32, little: bool) {
    if little {
        out.extend_from_slice(&value.to_le_bytes());
    } else {
        out.extend_from_slice(&value.to_be_bytes());
    }
}

fn copy_geometry(
    cursor: &mut Cursor<'_>,
    srid: Option<u32>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<GeomType, String> {
    if depth > MAX_DEPTH {
        return Err(format!("WKB nested deeper than {MAX_DEPTH} levels"));
    }
    let little = cursor.byte_order()?;
    let code = cursor.u32(little)?;
    let ty =
        GeomType::from_code(code).ok_or_else(|| format!("unknown WKB geometry type {code}"))?;
    if ty.has_srid {
        // An EWKB input's own SRID is dropped: the caller's SRID wins.
        cursor.u32(little)?;
    }
    out.push(u8::from(little));
    write_u32_order(out, ty.ewkb_code(srid.is_some()), little);
    if let Some(srid) = srid {
        write_u32_order(out, srid, little);
    }
    let coord_bytes = ty.dims() * 8;
    match ty.base {
        POINT => out.extend_from_slice(cursor.take(coord_bytes)?),
        LINESTRING => copy_points(cursor, little, coord_bytes, out)?,
        POLYGON => {
            let rings = cursor.u32(little)?;
            write_u32_order(out, rings, little);
            for _ in 0..rings {
                copy_points(cursor, little, coord_bytes, out)?;
            }
        }
        _ => {
            let parts = cursor.u32(little)?;
            write_u32_order(out, parts, little);
            let expected = match ty.base {
                MULTIPOINT => Some(POINT),
                MULTILINESTRING => Some(LINESTRING),
                MULTIPOLYGON => Some(POLYGON),
                _ => None,
            };
            for _ in 0..parts {
                let part = copy_geometry(cursor, None, out, depth + 1)?;
                if let Some(expected) = expected {
                    if part.base != expected {
                        return Err(format!(
                            "a {} holds a {}",
                            type_name(ty.base),
                            type_name(part.base)
                        ));
                    }
                }
            }
        }
    }
    Ok(ty)
}

fn copy_points(
    cursor: &mut Cursor<'_>,
    little: bool,
    coord_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let count = cursor.u32(little)?;
    write_u32_order(out, count, little);
    let len = usize::try_from(count)
        .ok()
        .and_then(|n| n.checked_mul(coord_bytes))
        .ok_or("WKB point count overflows")?;
    out.extend_from_slice(cursor.take(len)?);
    Ok(())
}

/// Where one coordinate sits in a WKB value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordRef {
    /// Byte offset of x; y follows, then z when `has_z`.
    pub offset: usize,
    pub little: bool,
    pub has_z: bool,
}

/// Checks a WKB value and lists where each of its coordinates is.
pub fn coordinates(wkb: &[u8], out: &mut Vec<CoordRef>) -> Result<GeomType, String> {
    let mut cursor = Cursor::new(wkb);
    let top = visit(&mut cursor, out, 0)?;
    if !cursor.is_at_end() {
        return Err(format!(
            "{} trailing bytes after the WKB geometry",
            wkb.len() - cursor.position()
        ));
    }
    Ok(top)
}

fn visit(
    cursor: &mut Cursor<'_>,
    out: &mut Vec<CoordRef>,
    depth: usize,
) -> Result<GeomType, String> {
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
    let coord_bytes = ty.dims() * 8;
    let points = |cursor: &mut Cursor<'_>, out: &mut Vec<CoordRef>| -> Result<(), String> {
        let count = cursor.u32(little)?;
        let count = usize::try_from(count).map_err(|_| "WKB point count overflows".to_string())?;
        let start = cursor.position();
        let len = count
            .checked_mul(coord_bytes)
            .ok_or("WKB point count overflows")?;
        cursor.take(len)?;
        out.extend((0..count).map(|i| CoordRef {
            offset: start + i * coord_bytes,
            little,
            has_z: ty.has_z,
        }));
        Ok(())
    };
    match ty.base {
        POINT => {
            let start = cursor.position();
            let values = cursor.take(coord_bytes)?;
            // POINT EMPTY is written as NaN coordinates: nothing to transform.
            let empty = values.chunks(8).take(2).all(|c| {
                c.try_into()
                    .map(|b: [u8; 8]| {
                        if little {
                            f64::from_le_bytes(b)
                        } else {
                            f64::from_be_bytes(b)
                        }
                    })
                    .is_ok_and(f64::is_nan)
            });
            if !empty {
                out.push(CoordRef {
                    offset: start,
                    little,
                    has_z: ty.has_z,
                });
            }
        }
        LINESTRING => points(cursor, out)?,
        POLYGON => {
            let rings = cursor.u32(little)?;
            for _ in 0..rings {
                points(cursor, out)?;
            }
        }
        _ => {
            let parts = cursor.u32(little)?;
            for _ in 0..parts {
                visit(cursor, out, depth + 1)?;
            }
        }
    }
    Ok(ty)
}

/// Reads the f64 at `offset`.
pub fn read_f64(bytes: &[u8], offset: usize, little: bool) -> Option<f64> {
    let b: [u8; 8] = bytes.get(offset..offset + 8)?.try_into().ok()?;
    Some(if little {
        f64::from_le_bytes(b)
    } else {
        f64::from_be_bytes(b)
    })
}

/// Overwrites the f64 at `offset`.
pub fn write_f64_at(bytes: &mut [u8], offset: usize, little: bool, value: f64) -> bool {
    let Some(slot) = bytes.get_mut(offset..offset + 8) else {
        return false;
    };
    slot.copy_from_slice(&if little {
        value.to_le_bytes()
    } else {
        value.to_be_bytes()
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point_wkb(x: f64, y: f64, z: Option<f64>) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, POINT, z.is_some());
        write_f64(&mut out, x);
        write_f64(&mut out, y);
        if let Some(z) = z {
            write_f64(&mut out, z);
        }
        out
    }

    #[test]
    fn iso_point_to_ewkb_with_srid() {
        let wkb = point_wkb(1.0, 2.0, None);
        let mut out = Vec::new();
        let ty = to_ewkb(&wkb, Some(4326), &mut out).unwrap();
        assert_eq!(ty.base, POINT);
        let mut expected = vec![1u8];
        expected.extend_from_slice(&0x2000_0001u32.to_le_bytes());
        expected.extend_from_slice(&4326u32.to_le_bytes());
        expected.extend_from_slice(&1.0f64.to_le_bytes());
        expected.extend_from_slice(&2.0f64.to_le_bytes());
        assert_eq!(out, expected);
    }

    #[test]
    fn iso_z_becomes_ewkb_z_flag_at_every_level() {
        let mut wkb = Vec::new();
        write_header(&mut wkb, MULTIPOINT, true);
        write_u32(&mut wkb, 1);
        wkb.extend(point_wkb(1.0, 2.0, Some(3.0)));
        let mut out = Vec::new();
        let ty = to_ewkb(&wkb, Some(4326), &mut out).unwrap();
        assert!(ty.has_z);
        assert_eq!(&out[1..5], &(0xA000_0004u32).to_le_bytes());
        assert_eq!(&out[5..9], &4326u32.to_le_bytes());
        assert_eq!(&out[9..13], &1u32.to_le_bytes());
        // The nested point: Z flag, no SRID.
        assert_eq!(&out[14..18], &(0x8000_0001u32).to_le_bytes());
        assert_eq!(out.len(), wkb.len() + 4);
    }

    #[test]
    fn big_endian_input_keeps_its_order() {
        let mut wkb = vec![0u8];
        wkb.extend_from_slice(&2u32.to_be_bytes());
        wkb.extend_from_slice(&1u32.to_be_bytes());
        wkb.extend_from_slice(&5.0f64.to_be_bytes());
        wkb.extend_from_slice(&6.0f64.to_be_bytes());
        let mut out = Vec::new();
        to_ewkb(&wkb, Some(3857), &mut out).unwrap();
        assert_eq!(out[0], 0);
        assert_eq!(&out[1..5], &0x2000_0002u32.to_be_bytes());
        assert_eq!(&out[5..9], &3857u32.to_be_bytes());
    }

    #[test]
    fn invalid_wkb_is_an_error() {
        let wkb = point_wkb(1.0, 2.0, None);
        let mut out = Vec::new();
        assert!(to_ewkb(&wkb[..15], None, &mut out).is_err());
        assert!(to_ewkb(&[7, 1, 0, 0, 0], None, &mut out).is_err());
        assert!(to_ewkb(&[1, 99, 0, 0, 0], None, &mut out).is_err());
        let mut long = wkb.clone();
        long.push(0);
        assert!(to_ewkb(&long, None, &mut out).is_err());
        // A polygon claiming 2^32-1 rings fails without allocating them.
        let mut huge = Vec::new();
        write_header(&mut huge, POLYGON, false);
        write_u32(&mut huge, u32::MAX);
        assert!(to_ewkb(&huge, None, &mut out).is_err());
    }

    #[test]
    fn lists_coordinates() {
        let mut wkb = Vec::new();
        write_header(&mut wkb, LINESTRING, true);
        write_u32(&mut wkb, 2);
        for v in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] {
            write_f64(&mut wkb, v);
        }
        let mut refs = Vec::new();
        coordinates(&wkb, &mut refs).unwrap();
        assert_eq!(refs.len(), 2);
        assert_eq!(read_f64(&wkb, refs[1].offset, true), Some(4.0));
        assert!(refs[0].has_z);
        assert!(coordinates(&wkb[..20], &mut refs).is_err());
    }

    #[test]
    fn type_names() {
        assert_eq!(
            type_name(peek_type(&point_wkb(0.0, 0.0, Some(1.0))).unwrap().base),
            "Point"
        );
        assert_eq!(type_name(MULTIPOLYGON), "MultiPolygon");
    }
}
