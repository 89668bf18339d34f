//! Shapefile record contents: decoding shapes into coordinates plus a layout, the
//! assembly of polygon rings, and the ISO WKB they become.

use crate::wkb;

pub const NULL_SHAPE: i32 = 0;
pub const MULTIPATCH: i32 = 31;

/// Coordinates of a chunk of records, z kept aligned with x/y (0 where absent), and
/// the parts and polygons of its shapes: flat arenas, so decoding a record allocates
/// nothing of its own.
#[derive(Debug, Default)]
pub struct Coords {
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    pub zs: Vec<f64>,
    /// Whether any shape of the chunk has z values.
    pub any_z: bool,
    /// Parts of lines, and rings of polygons (each polygon's shell then its holes).
    pub parts: Vec<Span>,
    /// Polygons: ranges of `parts`.
    pub polygons: Vec<Span>,
}

/// A half-open range (of coordinates, parts or polygons) in a [`Coords`].
pub type Span = (usize, usize);

/// The layout of one decoded shape over a [`Coords`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Null,
    Point {
        at: usize,
        z: bool,
    },
    MultiPoint {
        span: Span,
        z: bool,
    },
    /// Lines: a range of `Coords::parts`.
    Lines {
        parts: Span,
        z: bool,
    },
    /// Polygons: a range of `Coords::polygons`.
    Polygons {
        polygons: Span,
        z: bool,
    },
}

fn i32_at(bytes: &[u8], at: usize) -> Result<i32, String> {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_le_bytes)
        .ok_or_else(|| {
            format!(
                "record content ends at byte {} (needs {})",
                bytes.len(),
                at + 4
            )
        })
}

fn f64_at(bytes: &[u8], at: usize) -> Result<f64, String> {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(f64::from_le_bytes)
        .ok_or_else(|| {
            format!(
                "record content ends at byte {} (needs {})",
                bytes.len(),
                at + 8
            )
        })
}

fn count(value: i32, what: &str) -> Result<usize, String> {
    usize::try_from(value).map_err(|_| format!("negative {what} count {value}"))
}

/// Checks that `len` bytes are there at `at`, before anything is allocated for them.
fn need(bytes: &[u8], at: usize, len: usize) -> Result<(), String> {
    match at.checked_add(len) {
        Some(end) if end <= bytes.len() => Ok(()),
        _ => Err(format!(
            "record content is {} bytes, its counts need {}",
            bytes.len(),
            at.saturating_add(len)
        )),
    }
}

/// Base shape type and whether it carries z.
fn classify(shape_type: i32) -> Option<(i32, bool)> {
    match shape_type {
        1 | 3 | 5 | 8 => Some((shape_type, false)),
        11 | 13 | 15 | 18 => Some((shape_type - 10, true)),
        // M types: the measures are dropped.
        21 | 23 | 25 | 28 => Some((shape_type - 20, false)),
        _ => None,
    }
}

/// Decodes one record's content (after the 8-byte record header), appending its
/// coordinates to `coords`.
pub fn decode(content: &[u8], coords: &mut Coords) -> Result<Shape, String> {
    let shape_type = i32_at(content, 0)?;
    if shape_type == NULL_SHAPE {
        return Ok(Shape::Null);
    }
    if shape_type == MULTIPATCH {
        return Err("MultiPatch shapes are not supported".to_string());
    }
    let (base, z) =
        classify(shape_type).ok_or_else(|| format!("unknown shape type {shape_type}"))?;
    if z {
        coords.any_z = true;
    }
    match base {
        1 => {
            let at = coords.xs.len();
            coords.xs.push(f64_at(content, 4)?);
            coords.ys.push(f64_at(content, 12)?);
            coords.zs.push(if z { f64_at(content, 20)? } else { 0.0 });
            Ok(Shape::Point { at, z })
        }
        8 => {
            let n = count(i32_at(content, 36)?, "point")?;
            if n == 0 {
                return Ok(Shape::Null);
            }
            let span = read_points(content, 40, n, z, coords)?;
            Ok(Shape::MultiPoint { span, z })
        }
        _ => {
            let n_parts = count(i32_at(content, 36)?, "part")?;
            let n_points = count(i32_at(content, 40)?, "point")?;
            if n_parts == 0 || n_points == 0 {
                return Ok(Shape::Null);
            }
            need(content, 44, n_parts.saturating_mul(4))?;
            let points_at = 44 + 4 * n_parts;
            let span = read_points(content, points_at, n_points, z, coords)?;
            let first_part = coords.parts.len();
            coords.parts.reserve(n_parts);
            let mut start = count(i32_at(content, 44)?, "part index")?;
            if start != 0 {
                return Err(format!("first part starts at point {start}, not 0"));
            }
            for i in 0..n_parts {
                let end = if i + 1 < n_parts {
                    count(i32_at(content, 44 + 4 * (i + 1))?, "part index")?
                } else {
                    n_points
                };
                if start > end || end > n_points {
                    return Err(format!(
                        "part {i} starts at point {start}, past its end {end}"
                    ));
                }
                coords.parts.push((span.0 + start, span.0 + end));
                start = end;
            }
            let parts = (first_part, coords.parts.len());
            if base == 3 {
                return Ok(Shape::Lines { parts, z });
            }
            let first_polygon = coords.polygons.len();
            if n_parts == 1 {
                // One ring: one polygon, whatever its orientation.
                coords.polygons.push(parts);
            } else {
                let rings = coords.parts.get(parts.0..parts.1).unwrap_or_default();
                let grouped = assemble_rings(rings, &coords.xs, &coords.ys);
                // Rewrite the rings polygon by polygon, shells first.
                coords.parts.truncate(first_part);
                for polygon in grouped {
                    let from = coords.parts.len();
                    coords.parts.extend(polygon);
                    coords.polygons.push((from, coords.parts.len()));
                }
            }
            Ok(Shape::Polygons {
                polygons: (first_polygon, coords.polygons.len()),
                z,
            })
        }
    }
}

fn read_points(
    content: &[u8],
    at: usize,
    n: usize,
    z: bool,
    coords: &mut Coords,
) -> Result<Span, String> {
    need(content, at, n.saturating_mul(16))?;
    // z block: a 16-byte range, then n values.
    let z_at = at + 16 * n + 16;
    if z {
        need(content, z_at, n.saturating_mul(8))?;
    }
    let start = coords.xs.len();
    coords.xs.reserve(n);
    coords.ys.reserve(n);
    coords.zs.reserve(n);
    for i in 0..n {
        coords.xs.push(f64_at(content, at + 16 * i)?);
        coords.ys.push(f64_at(content, at + 16 * i + 8)?);
        coords.zs.push(if z {
            f64_at(content, z_at + 8 * i)?
        } else {
            0.0
        });
    }
    Ok((start, start + n))
}

/// Twice the signed area of a ring: negative when clockwise (a shell, per the spec).
fn signed_area2(span: Span, xs: &[f64], ys: &[f64]) -> f64 {
    let (Some(x), Some(y)) = (xs.get(span.0..span.1), ys.get(span.0..span.1)) else {
        return 0.0;
    };
    let (Some(&x0), Some(&y0)) = (x.first(), y.first()) else {
        return 0.0;
    };
    // Relative to the first vertex, for precision with large coordinates.
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xw, yw)| match (xw, yw) {
            ([xa, xb], [ya, yb]) => (xa - x0) * (yb - y0) - (xb - x0) * (ya - y0),
            _ => 0.0,
        })
        .sum()
}

#[derive(Clone, Copy)]
struct Bbox {
    min_x: f64,
    min_y: f64,
    max_x: f64,
    max_y: f64,
}

fn bbox(span: Span, xs: &[f64], ys: &[f64]) -> Bbox {
    let mut b = Bbox {
        min_x: f64::INFINITY,
        min_y: f64::INFINITY,
        max_x: f64::NEG_INFINITY,
        max_y: f64::NEG_INFINITY,
    };
    for (&x, &y) in xs
        .get(span.0..span.1)
        .unwrap_or_default()
        .iter()
        .zip(ys.get(span.0..span.1).unwrap_or_default())
    {
        b.min_x = b.min_x.min(x);
        b.min_y = b.min_y.min(y);
        b.max_x = b.max_x.max(x);
        b.max_y = b.max_y.max(y);
    }
    b
}

impl Bbox {
    fn contains(&self, other: &Bbox) -> bool {
        self.min_x <= other.min_x
            && self.min_y <= other.min_y
            && self.max_x >= other.max_x
            && self.max_y >= other.max_y
    }
}

#[derive(PartialEq)]
enum Side {
    Inside,
    Outside,
    Boundary,
}

/// Where a point lies relative to a ring (crossing number, boundary detected).
fn point_in_ring(px: f64, py: f64, span: Span, xs: &[f64], ys: &[f64]) -> Side {
    let (Some(x), Some(y)) = (xs.get(span.0..span.1), ys.get(span.0..span.1)) else {
        return Side::Outside;
    };
    if x.len() < 3 {
        return Side::Outside;
    }
    let mut inside = false;
    // Edges (previous vertex, vertex), starting with (last, first).
    let previous = x.iter().zip(y).cycle().skip(x.len() - 1);
    for ((&xj, &yj), (&xi, &yi)) in previous.zip(x.iter().zip(y)) {
        // On the segment?
        let cross = (xj - xi) * (py - yi) - (yj - yi) * (px - xi);
        if cross == 0.0
            && px >= xi.min(xj)
            && px <= xi.max(xj)
            && py >= yi.min(yj)
            && py <= yi.max(yj)
        {
            return Side::Boundary;
        }
        if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
            inside = !inside;
        }
    }
    if inside {
        Side::Inside
    } else {
        Side::Outside
    }
}

fn ring_inside(hole: Span, shell: Span, xs: &[f64], ys: &[f64]) -> bool {
    for i in hole.0..hole.1.min(hole.0 + 16) {
        let (Some(&px), Some(&py)) = (xs.get(i), ys.get(i)) else {
            return false;
        };
        match point_in_ring(px, py, shell, xs, ys) {
            Side::Inside => return true,
            Side::Outside => return false,
            Side::Boundary => {}
        }
    }
    // Every tested vertex on the boundary: call it inside.
    true
}

/// Groups rings into polygons the way the shapefile spec (and GDAL) reads them:
/// clockwise rings are shells, counter-clockwise rings holes of the smallest shell
/// that contains them; a hole inside no shell stands alone, and with no clockwise
/// ring at all every ring is its own polygon. Polygons keep the file order of their
/// first ring, holes their file order.
pub fn assemble_rings(rings: &[Span], xs: &[f64], ys: &[f64]) -> Vec<Vec<Span>> {
    if rings.len() <= 1 {
        return rings.iter().map(|&r| vec![r]).collect();
    }
    let areas: Vec<f64> = rings.iter().map(|&r| signed_area2(r, xs, ys)).collect();
    let is_shell: Vec<bool> = areas.iter().map(|&a| a <= 0.0).collect();
    if !is_shell.iter().any(|&s| s) {
        return rings.iter().map(|&r| vec![r]).collect();
    }
    let boxes: Vec<Bbox> = rings.iter().map(|&r| bbox(r, xs, ys)).collect();
    let shells: Vec<(usize, Span, Bbox, f64)> = rings
        .iter()
        .zip(&boxes)
        .zip(&areas)
        .enumerate()
        .filter(|(_, ((_, _), &area))| area <= 0.0)
        .map(|(i, ((&ring, &b), &area))| (i, ring, b, area.abs()))
        .collect();
    // owner[i]: the ring index of the shell that ring i belongs to.
    let owner: Vec<usize> = rings
        .iter()
        .zip(&boxes)
        .zip(&is_shell)
        .enumerate()
        .map(|(i, ((&ring, hole_box), &shell))| {
            if shell {
                return i;
            }
            shells
                .iter()
                .filter(|(_, shell_ring, shell_box, _)| {
                    shell_box.contains(hole_box) && ring_inside(ring, *shell_ring, xs, ys)
                })
                .min_by(|a, b| a.3.total_cmp(&b.3))
                .map_or(i, |(shell_index, ..)| *shell_index)
        })
        .collect();
    let mut polygons: Vec<Vec<Span>> = Vec::new();
    let mut slot: Vec<Option<usize>> = vec![None; rings.len()];
    for ((i, &ring), (&root, slot_i)) in rings
        .iter()
        .enumerate()
        .zip(owner.iter().zip(slot.iter_mut()))
    {
        if root == i {
            *slot_i = Some(polygons.len());
            polygons.push(vec![ring]);
        }
    }
    for ((i, &ring), &root) in rings.iter().enumerate().zip(&owner) {
        if root != i {
            if let Some(Some(index)) = slot.get(root) {
                if let Some(polygon) = polygons.get_mut(*index) {
                    polygon.push(ring);
                }
            }
        }
    }
    polygons
}

fn write_coords(span: Span, z: bool, coords: &Coords, out: &mut Vec<u8>) {
    let range = span.0..span.1;
    let (Some(xs), Some(ys), Some(zs)) = (
        coords.xs.get(range.clone()),
        coords.ys.get(range.clone()),
        coords.zs.get(range),
    ) else {
        return;
    };
    for ((&x, &y), &zv) in xs.iter().zip(ys).zip(zs) {
        wkb::write_f64(out, x);
        wkb::write_f64(out, y);
        if z {
            wkb::write_f64(out, zv);
        }
    }
}

fn span_len(span: Span) -> u32 {
    u32::try_from(span.1.saturating_sub(span.0)).unwrap_or(u32::MAX)
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Appends the ISO WKB of a shape; returns false (and writes nothing) for null.
pub fn write_wkb(shape: &Shape, coords: &Coords, out: &mut Vec<u8>) -> bool {
    match shape {
        Shape::Null => return false,
        Shape::Point { at, z } => {
            wkb::write_header(out, wkb::POINT, *z);
            write_coords((*at, at + 1), *z, coords, out);
        }
        Shape::MultiPoint { span, z } => {
            wkb::write_header(out, wkb::MULTIPOINT, *z);
            wkb::write_u32(out, span_len(*span));
            for i in span.0..span.1 {
                wkb::write_header(out, wkb::POINT, *z);
                write_coords((i, i + 1), *z, coords, out);
            }
        }
        Shape::Lines { parts, z } => {
            let parts = coords.parts.get(parts.0..parts.1).unwrap_or_default();
            if let [part] = parts {
                wkb::write_header(out, wkb::LINESTRING, *z);
                wkb::write_u32(out, span_len(*part));
                write_coords(*part, *z, coords, out);
            } else {
                wkb::write_header(out, wkb::MULTILINESTRING, *z);
                wkb::write_u32(out, len_u32(parts.len()));
                for part in parts {
                    wkb::write_header(out, wkb::LINESTRING, *z);
                    wkb::write_u32(out, span_len(*part));
                    write_coords(*part, *z, coords, out);
                }
            }
        }
        Shape::Polygons { polygons, z } => {
            let write_polygon = |rings: &Span, out: &mut Vec<u8>| {
                let rings = coords.parts.get(rings.0..rings.1).unwrap_or_default();
                wkb::write_header(out, wkb::POLYGON, *z);
                wkb::write_u32(out, len_u32(rings.len()));
                for ring in rings {
                    wkb::write_u32(out, span_len(*ring));
                    write_coords(*ring, *z, coords, out);
                }
            };
            let polygons = coords
                .polygons
                .get(polygons.0..polygons.1)
                .unwrap_or_default();
            if let [polygon] = polygons {
                write_polygon(polygon, out);
            } else {
                wkb::write_header(out, wkb::MULTIPOLYGON, *z);
                wkb::write_u32(out, len_u32(polygons.len()));
                for polygon in polygons {
                    write_polygon(polygon, out);
                }
            }
        }
    }
    true
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn cw(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<(f64, f64)> {
        vec![(x0, y0), (x0, y1), (x1, y1), (x1, y0), (x0, y0)]
    }

    pub fn ccw(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<(f64, f64)> {
        vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    }

    /// The content of a polygon/polyline record (shape type, bbox, parts, points, z).
    pub fn parts_record(shape_type: i32, parts: &[Vec<(f64, f64)>], zs: Option<&[f64]>) -> Vec<u8> {
        let mut out = shape_type.to_le_bytes().to_vec();
        for v in [0.0f64; 4] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let n: usize = parts.iter().map(Vec::len).sum();
        out.extend_from_slice(&(parts.len() as i32).to_le_bytes());
        out.extend_from_slice(&(n as i32).to_le_bytes());
        let mut start = 0i32;
        for part in parts {
            out.extend_from_slice(&start.to_le_bytes());
            start += part.len() as i32;
        }
        for &(x, y) in parts.iter().flatten() {
            out.extend_from_slice(&x.to_le_bytes());
            out.extend_from_slice(&y.to_le_bytes());
        }
        if let Some(zs) = zs {
            out.extend_from_slice(&[0u8; 16]);
            for z in zs {
                out.extend_from_slice(&z.to_le_bytes());
            }
        }
        out
    }

    /// Each polygon's rings, as coordinate spans.
    fn polygons_of(shape: &Shape, coords: &Coords) -> Vec<Vec<Span>> {
        let Shape::Polygons { polygons, .. } = shape else {
            panic!("{shape:?}")
        };
        coords.polygons[polygons.0..polygons.1]
            .iter()
            .map(|&(a, b)| coords.parts[a..b].to_vec())
            .collect()
    }

    #[test]
    fn hole_goes_to_the_shell_that_contains_it() {
        // Shell A, shell B, then a hole that lies in B (the second shell).
        let record = parts_record(
            5,
            &[
                cw(0.0, 0.0, 4.0, 4.0),
                cw(10.0, 10.0, 14.0, 14.0),
                ccw(11.0, 11.0, 12.0, 12.0),
            ],
            None,
        );
        let mut coords = Coords::default();
        let shape = decode(&record, &mut coords).unwrap();
        assert_eq!(
            polygons_of(&shape, &coords),
            vec![vec![(0, 5)], vec![(5, 10), (10, 15)]]
        );
        let mut out = Vec::new();
        assert!(write_wkb(&shape, &coords, &mut out));
        assert_eq!(wkb::peek_type(&out).unwrap().base, wkb::MULTIPOLYGON);
        // 1+4+4, polygon A: 1+4+4 + 4 + 5*16, polygon B: 1+4+4 + 2*(4 + 5*16)
        assert_eq!(out.len(), 9 + (9 + 4 + 80) + (9 + 2 * 84));
    }

    #[test]
    fn nested_shells_and_orphans() {
        let rings = [
            cw(0.0, 0.0, 10.0, 10.0),
            ccw(1.0, 1.0, 9.0, 9.0),
            cw(2.0, 2.0, 8.0, 8.0),
            ccw(3.0, 3.0, 4.0, 4.0),
            ccw(20.0, 20.0, 21.0, 21.0),
        ];
        let record = parts_record(5, &rings, None);
        let mut coords = Coords::default();
        let shape = decode(&record, &mut coords).unwrap();
        assert_eq!(
            polygons_of(&shape, &coords),
            vec![
                vec![(0, 5), (5, 10)],
                vec![(10, 15), (15, 20)],
                vec![(20, 25)]
            ]
        );
        // All counter-clockwise: each ring stands alone, as GDAL reads it.
        let record = parts_record(5, &[ccw(0.0, 0.0, 4.0, 4.0), ccw(1.0, 1.0, 2.0, 2.0)], None);
        let mut coords = Coords::default();
        let shape = decode(&record, &mut coords).unwrap();
        assert_eq!(polygons_of(&shape, &coords).len(), 2);
    }

    #[test]
    fn points_lines_and_z() {
        let mut record = 11i32.to_le_bytes().to_vec();
        for v in [1.0f64, 2.0, 3.0, 4.0] {
            record.extend_from_slice(&v.to_le_bytes());
        }
        let mut coords = Coords::default();
        let shape = decode(&record, &mut coords).unwrap();
        let mut out = Vec::new();
        write_wkb(&shape, &coords, &mut out);
        assert_eq!(&out[..5], &[1, 0xE9, 0x03, 0, 0]);
        assert_eq!(out.len(), 29);

        let record = parts_record(13, &[vec![(0.0, 0.0), (1.0, 1.0)]], Some(&[5.0, 6.0]));
        let mut coords = Coords::default();
        let shape = decode(&record, &mut coords).unwrap();
        assert_eq!(coords.zs, vec![5.0, 6.0]);
        let mut out = Vec::new();
        write_wkb(&shape, &coords, &mut out);
        assert_eq!(
            wkb::peek_type(&out).unwrap(),
            wkb::GeomType {
                base: wkb::LINESTRING,
                has_z: true,
                has_m: false,
                has_srid: false
            }
        );
    }

    #[test]
    fn hostile_records_are_errors() {
        let mut coords = Coords::default();
        assert!(decode(&[1, 0], &mut coords).is_err());
        assert!(decode(&31i32.to_le_bytes(), &mut coords)
            .unwrap_err()
            .contains("MultiPatch"));
        // Claims a billion points in a tiny record.
        let mut record = parts_record(3, &[vec![(0.0, 0.0), (1.0, 1.0)]], None);
        record[40..44].copy_from_slice(&1_000_000_000i32.to_le_bytes());
        assert!(decode(&record, &mut coords).is_err());
        let mut record = parts_record(3, &[vec![(0.0, 0.0), (1.0, 1.0)]], None);
        record[36..40].copy_from_slice(&(-1i32).to_le_bytes());
        assert!(decode(&record, &mut coords).is_err());
        // Truncated z block.
        let record = parts_record(13, &[vec![(0.0, 0.0), (1.0, 1.0)]], Some(&[5.0]));
        assert!(decode(&record, &mut coords).is_err());
    }
}
