//! Raster to vector: connected regions of equal value (4- or 8-connected) to
//! polygons with holes, as GDAL's polygonize (`rasterio.features.shapes`) gives.
//!
//! Pixels are labelled with a two-pass union-find; then each region's rings are
//! traced along the pixel edges ("crack following"), regions in parallel. Where a
//! region touches itself at a pixel corner (two diagonal pixels of it, the two others
//! not), its ring passes through the corner from one of its pixels to the other, so
//! an enclosed area touching the exterior at a corner is a hole of its own.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::wkb;

const NONE: u32 = u32::MAX;

/// An affine transform in GDAL/rasterio order: `x = a*col + b*row + c`,
/// `y = d*col + e*row + f` (col, row the pixel corner coordinates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
    pub e: f64,
    pub f: f64,
}

impl Affine {
    /// From rasterio's `Affine` (9 numbers, the last row 0, 0, 1) or a 6-tuple.
    pub fn from_coefficients(values: &[f64]) -> Result<Self> {
        let ok_tail = match values.get(6..) {
            Some([]) => true,
            Some([g, h, i]) => *g == 0.0 && *h == 0.0 && *i == 1.0,
            _ => false,
        };
        match values.get(..6) {
            Some(&[a, b, c, d, e, f]) if ok_tail => {
                let t = Self { a, b, c, d, e, f };
                if !values.iter().all(|v| v.is_finite()) || t.det() == 0.0 {
                    return Err(Error::InvalidArgument(format!(
                        "transform {values:?} is degenerate or not finite"
                    )));
                }
                Ok(t)
            }
            _ => Err(Error::InvalidArgument(format!(
                "transform must be 6 numbers (a, b, c, d, e, f) or a rasterio Affine \
                 (got {values:?})"
            ))),
        }
    }

    fn det(&self) -> f64 {
        self.a * self.e - self.b * self.d
    }

    fn apply(&self, col: f64, row: f64) -> (f64, f64) {
        (
            self.a * col + self.b * row + self.c,
            self.d * col + self.e * row + self.f,
        )
    }
}

/// A pixel type that can be compared for equality; NaN is never a region.
pub trait Pixel: Copy + PartialEq + Send + Sync {
    fn to_f64(self) -> f64;
}

macro_rules! pixel {
    ($($t:ty),*) => {$(
        impl Pixel for $t {
            #[inline]
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
        }
    )*};
}
pixel!(u8, i8, u16, i16, u32, i32, f32, f64);

/// One polygon per region: its value and its WKB (exterior ring counter-clockwise in
/// map coordinates, holes clockwise), regions in the order of their first pixel.
#[derive(Debug, Default)]
pub struct Polygons {
    pub values: Vec<f64>,
    pub wkb: Vec<Vec<u8>>,
}

/// Regions of `data` (row-major, `height` x `width`) as polygons.
pub fn vectorize<T: Pixel>(
    data: &[T],
    width: usize,
    height: usize,
    transform: &Affine,
    nodata: Option<T>,
    connectivity: u8,
) -> Result<Polygons> {
    if connectivity != 4 && connectivity != 8 {
        return Err(Error::InvalidArgument(format!(
            "connectivity must be 4 or 8 (got {connectivity})"
        )));
    }
    if width.checked_mul(height) != Some(data.len()) {
        return Err(Error::InvalidArgument(format!(
            "the array has {} pixels, not {width} x {height}",
            data.len()
        )));
    }
    if data.len() >= NONE as usize {
        return Err(Error::InvalidArgument(format!(
            "a raster of {} pixels is too large to vectorize",
            data.len()
        )));
    }
    let eight = connectivity == 8;
    let (labels, count) = label(data, width, height, nodata, eight);
    let starts = start_pixels(&labels, width, count);
    let visited: Vec<AtomicBool> = (0..labels.len()).map(|_| AtomicBool::new(false)).collect();
    let tracer = Tracer {
        labels: &labels,
        width,
        height,
        visited: &visited,
    };
    let reverse = transform.det() < 0.0;
    let polygons: Vec<(f64, Vec<u8>)> = (0..count)
        .into_par_iter()
        .with_min_len(64)
        .map(|region| {
            let pixels = starts.pixels(region);
            let first = pixels.first().copied().unwrap_or(0);
            let value = data.get(first as usize).map_or(f64::NAN, |v| v.to_f64());
            let mut rings = Vec::new();
            for &p in pixels {
                if !visited
                    .get(p as usize)
                    .is_some_and(|v| v.load(Ordering::Relaxed))
                {
                    rings.push(tracer.ring(region as u32, p as usize));
                }
            }
            (value, encode(&rings, transform, reverse))
        })
        .collect();
    let (values, wkb) = polygons.into_iter().unzip();
    Ok(Polygons { values, wkb })
}

/// Union-find root with path halving.
fn find(parent: &mut [u32], mut i: u32) -> u32 {
    loop {
        let p = parent.get(i as usize).copied().unwrap_or(i);
        if p == i {
            return i;
        }
        let gp = parent.get(p as usize).copied().unwrap_or(p);
        if let Some(slot) = parent.get_mut(i as usize) {
            *slot = gp;
        }
        i = gp;
    }
}

fn union(parent: &mut [u32], a: u32, b: u32) -> u32 {
    let (ra, rb) = (find(parent, a), find(parent, b));
    let (lo, hi) = (ra.min(rb), ra.max(rb));
    if let Some(slot) = parent.get_mut(hi as usize) {
        *slot = lo;
    }
    lo
}

/// Labels of the regions (0.. in the order of their first pixel, NONE for nodata
/// and NaN) and their count.
fn label<T: Pixel>(
    data: &[T],
    width: usize,
    height: usize,
    nodata: Option<T>,
    eight: bool,
) -> (Vec<u32>, usize) {
    // NaN is never a region (NaN != NaN).
    #[allow(clippy::eq_op)]
    let valid = |v: T| v == v && nodata != Some(v);
    let mut labels = vec![NONE; data.len()];
    let mut parent: Vec<u32> = Vec::new();
    for row in 0..height {
        for col in 0..width {
            let i = row * width + col;
            let Some(&v) = data.get(i) else { continue };
            if !valid(v) {
                continue;
            }
            let mut neighbours = [NONE; 4];
            let same = |j: usize| match (data.get(j), labels.get(j)) {
                (Some(&w), Some(&l)) if w == v && l != NONE => l,
                _ => NONE,
            };
            if col > 0 {
                neighbours[0] = same(i - 1);
            }
            if row > 0 {
                neighbours[1] = same(i - width);
                if eight && col > 0 {
                    neighbours[2] = same(i - width - 1);
                }
                if eight && col + 1 < width {
                    neighbours[3] = same(i - width + 1);
                }
            }
            let mut mine = NONE;
            for &n in neighbours.iter().filter(|&&n| n != NONE) {
                mine = if mine == NONE {
                    n
                } else {
                    union(&mut parent, mine, n)
                };
            }
            if mine == NONE {
                mine = parent.len() as u32;
                parent.push(mine);
            }
            if let Some(slot) = labels.get_mut(i) {
                *slot = mine;
            }
        }
    }
    // Roots to dense labels, numbered by first appearance.
    let mut dense = vec![NONE; parent.len()];
    let mut count = 0u32;
    for l in labels.iter_mut().filter(|l| **l != NONE) {
        let root = find(&mut parent, *l);
        if let Some(d) = dense.get_mut(root as usize) {
            if *d == NONE {
                *d = count;
                count += 1;
            }
            *l = *d;
        }
    }
    (labels, count as usize)
}

/// Per region, its pixels whose top edge is on the region's boundary (every ring has
/// at least one), in scan order: compressed rows over `pixels`.
struct Starts {
    offsets: Vec<usize>,
    pixels: Vec<u32>,
}

impl Starts {
    fn pixels(&self, region: usize) -> &[u32] {
        match (self.offsets.get(region), self.offsets.get(region + 1)) {
            (Some(&a), Some(&b)) => self.pixels.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }
}

fn start_pixels(labels: &[u32], width: usize, count: usize) -> Starts {
    let is_start = |i: usize, l: u32| l != NONE && (i < width || labels.get(i - width) != Some(&l));
    let mut offsets = vec![0usize; count + 1];
    for (i, &l) in labels.iter().enumerate() {
        if is_start(i, l) {
            if let Some(slot) = offsets.get_mut(l as usize + 1) {
                *slot += 1;
            }
        }
    }
    for i in 1..offsets.len() {
        let previous = offsets.get(i - 1).copied().unwrap_or(0);
        if let Some(slot) = offsets.get_mut(i) {
            *slot += previous;
        }
    }
    let mut fill = offsets.clone();
    let mut pixels = vec![0u32; offsets.last().copied().unwrap_or(0)];
    for (i, &l) in labels.iter().enumerate() {
        if is_start(i, l) {
            if let Some(next) = fill.get_mut(l as usize) {
                if let Some(slot) = pixels.get_mut(*next) {
                    *slot = i as u32;
                }
                *next += 1;
            }
        }
    }
    Starts { offsets, pixels }
}

struct Tracer<'a> {
    labels: &'a [u32],
    width: usize,
    height: usize,
    visited: &'a [AtomicBool],
}

// Directions of travel on the pixel grid (y = row, downwards); north is 3.
const EAST: u8 = 0;
const SOUTH: u8 = 1;
const WEST: u8 = 2;

impl Tracer<'_> {
    /// Whether pixel (row, col) belongs to `region` (false outside the raster).
    #[inline]
    fn inside(&self, region: u32, row: i64, col: i64) -> bool {
        if row < 0 || col < 0 || row as usize >= self.height || col as usize >= self.width {
            return false;
        }
        self.labels.get(row as usize * self.width + col as usize) == Some(&region)
    }

    /// The ring through the top edge of pixel `start`, as its corner vertices
    /// (col, row), walking with the region on the clockwise side (screen
    /// orientation): exteriors come out with a positive shoelace area in
    /// (col, row), holes negative.
    fn ring(&self, region: u32, start: usize) -> Vec<(i64, i64)> {
        let (sx, sy) = ((start % self.width) as i64, (start / self.width) as i64);
        let (mut vx, mut vy, mut dir) = (sx, sy, EAST);
        let mut vertices = vec![(sx, sy)];
        loop {
            if dir == EAST {
                if let Some(flag) = self.visited.get(vy as usize * self.width + vx as usize) {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            match dir {
                EAST => vx += 1,
                SOUTH => vy += 1,
                WEST => vx -= 1,
                _ => vy -= 1,
            }
            // The two pixels ahead: on the region's side, and on the other.
            let ((ir, ic), (or, oc)) = match dir {
                EAST => ((vy, vx), (vy - 1, vx)),
                SOUTH => ((vy, vx - 1), (vy, vx)),
                WEST => ((vy - 1, vx - 1), (vy, vx - 1)),
                _ => ((vy - 1, vx), (vy - 1, vx - 1)),
            };
            let front_in = self.inside(region, ir, ic);
            let front_out = self.inside(region, or, oc);
            let next = match (front_in, front_out) {
                (true, false) => dir,
                // Concave, or a corner touch (two diagonal pixels of the region): turn
                // towards the pixel ahead, so the ring keeps the region together and
                // the two outside pixels on separate rings (an exterior and a hole
                // touching at a point, as OGC validity wants).
                (_, true) => (dir + 3) % 4,
                (false, false) => (dir + 1) % 4,
            };
            if (vx, vy) == (sx, sy) && next == EAST {
                break;
            }
            if next != dir {
                vertices.push((vx, vy));
            }
            dir = next;
        }
        vertices
    }
}

/// One Polygon's WKB; rings reversed when the transform flips orientation.
fn encode(rings: &[Vec<(i64, i64)>], transform: &Affine, reverse: bool) -> Vec<u8> {
    let points: usize = rings.iter().map(|r| r.len() + 1).sum();
    let mut out = Vec::with_capacity(9 + 4 * rings.len() + 16 * points);
    wkb::write_header(&mut out, 3, false);
    wkb::write_u32(&mut out, rings.len() as u32);
    for ring in rings {
        wkb::write_u32(&mut out, ring.len() as u32 + 1);
        let mut emit = |&(col, row): &(i64, i64)| {
            let (x, y) = transform.apply(col as f64, row as f64);
            wkb::write_f64(&mut out, x);
            wkb::write_f64(&mut out, y);
        };
        let closing = ring.first();
        if reverse {
            closing
                .into_iter()
                .chain(ring.iter().rev())
                .for_each(&mut emit);
        } else {
            ring.iter().chain(closing).for_each(&mut emit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: Affine = Affine {
        a: 1.0,
        b: 0.0,
        c: 0.0,
        d: 0.0,
        e: 1.0,
        f: 0.0,
    };

    /// Rings of each polygon as (col, row) pairs, from the WKB.
    fn rings(wkb: &[u8]) -> Vec<Vec<(f64, f64)>> {
        let mut at = 5;
        let u32_at = |at: usize| u32::from_le_bytes(wkb[at..at + 4].try_into().unwrap()) as usize;
        let f64_at = |at: usize| f64::from_le_bytes(wkb[at..at + 8].try_into().unwrap());
        let n = u32_at(at);
        at += 4;
        let mut out = Vec::new();
        for _ in 0..n {
            let m = u32_at(at);
            at += 4;
            out.push(
                (0..m)
                    .map(|k| (f64_at(at + 16 * k), f64_at(at + 16 * k + 8)))
                    .collect(),
            );
            at += 16 * m;
        }
        out
    }

    fn area(ring: &[(f64, f64)]) -> f64 {
        ring.windows(2)
            .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
            .sum::<f64>()
            / 2.0
    }

    #[test]
    fn a_ring_with_a_hole() {
        let data = [1u8, 1, 1, 1, 2, 1, 1, 1, 1];
        let p = vectorize(&data, 3, 3, &IDENTITY, None, 4).unwrap();
        assert_eq!(p.values, vec![1.0, 2.0]);
        let outer = rings(&p.wkb[0]);
        assert_eq!(outer.len(), 2);
        assert_eq!(
            outer[0],
            vec![(0., 0.), (3., 0.), (3., 3.), (0., 3.), (0., 0.)]
        );
        assert_eq!(area(&outer[0]), 9.0);
        assert_eq!(area(&outer[1]), -1.0);
        assert_eq!(rings(&p.wkb[1]).len(), 1);
    }

    #[test]
    fn diagonal_pixels_join_only_with_eight_connectivity() {
        let data = [5i32, 0, 0, 5];
        let four = vectorize(&data, 2, 2, &IDENTITY, Some(0), 4).unwrap();
        assert_eq!(four.values, vec![5.0, 5.0]);
        let eight = vectorize(&data, 2, 2, &IDENTITY, Some(0), 8).unwrap();
        assert_eq!(eight.values, vec![5.0]);
        let ring = &rings(&eight.wkb[0])[0];
        assert_eq!(area(ring), 2.0);
        assert_eq!(ring.len(), 9);
    }

    #[test]
    fn a_corner_touching_hole_stays_a_hole_with_four_connectivity() {
        // The 2 at the centre is enclosed; the 1s touch at its top-left corner only.
        let data = [0u8, 1, 1, 1, 2, 1, 1, 1, 1];
        let p = vectorize(&data, 3, 3, &IDENTITY, None, 4).unwrap();
        let ones = rings(&p.wkb[1]);
        assert_eq!(p.values[1], 1.0);
        assert_eq!(ones.len(), 2);
        assert_eq!(area(&ones[0]) + area(&ones[1]), 7.0);
    }

    #[test]
    fn north_up_transform_keeps_exteriors_counter_clockwise() {
        let t = Affine::from_coefficients(&[10.0, 0.0, 100.0, 0.0, -10.0, 50.0]).unwrap();
        let p = vectorize(&[1.0f32, f32::NAN], 2, 1, &t, None, 4).unwrap();
        assert_eq!(p.values, vec![1.0]);
        let ring = &rings(&p.wkb[0])[0];
        assert_eq!(ring[0], (100.0, 50.0));
        assert_eq!(area(ring), 100.0);
    }

    #[test]
    fn refuses_bad_arguments() {
        assert!(vectorize(&[1u8], 1, 1, &IDENTITY, None, 6).is_err());
        assert!(vectorize(&[1u8], 2, 1, &IDENTITY, None, 4).is_err());
        assert!(Affine::from_coefficients(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]).is_err());
        assert!(Affine::from_coefficients(&[1.0, 0.0, 0.0]).is_err());
        assert!(Affine::from_coefficients(&[1., 0., 0., 0., 1., 0., 0., 0., 1.]).is_ok());
    }
}
