//! Closed-form transforms for CRS pairs whose PROJ operation is a fixed formula, used
//! in place of PROJ where they reproduce its result:
//!
//! - EPSG:4326 <-> EPSG:3857: PROJ's `webmerc` (spherical Mercator on the WGS 84
//!   semi-major axis, no datum shift);
//! - geographic -> Transverse Mercator grids, with or without a Helmert datum shift
//!   (EPSG:4326 -> 27700, UTM zones, ...): the pipeline of the operation PROJ ranks
//!   first, read from its PROJ string ([`tmerc`]), used inside that operation's area of
//!   use when PROJ would pick it there (it is first, and no other candidate claims a
//!   better accuracy).
//!
//! A fast path only takes a chunk whose every coordinate lies inside its domain (for
//! web mercator: no longitude wrapping, away from the poles; for TM: the operation's
//! area of use), finite; any other chunk goes to PROJ whole, so errors and edge cases
//! stay PROJ's. [`FastPath::detect`] also checks the formula against the PROJ
//! transformer on a grid of sample points before it is used, so a PROJ whose
//! operation differs silently keeps PROJ.

pub mod tmerc;

use crate::crs::{candidate_operations, Crs, Transformer};
use tmerc::{TmPipeline, MAX_ETA};

/// WGS 84 semi-major axis, the sphere radius of web mercator (EPSG:3857).
const WGS84_A: f64 = 6_378_137.0;
/// PROJ's degree to radian factor (`unitconvert`), and its inverse.
const DEG_TO_RAD: f64 = std::f64::consts::PI / 180.0;
const RAD_TO_DEG: f64 = 1.0 / DEG_TO_RAD;
/// Latitudes beyond this (degrees) go to PROJ: near the poles web mercator is
/// ill-conditioned and PROJ reports the pole itself as an error.
const MAX_LATITUDE: f64 = 89.5;
/// Northings (metres) beyond this go to PROJ (about 89.5° of latitude).
const MAX_NORTHING: f64 = 3.5e7;
/// Agreement with PROJ required on the detection samples (metres, degrees).
const CHECK_METRES: f64 = 1e-7;
const CHECK_DEGREES: f64 = 1e-12;
/// TM fast paths keep well inside PROJ's own limit on η.
const SAFE_ETA: f64 = 2.0;

/// A CRS pair with a closed-form transform.
#[derive(Debug, Clone, PartialEq)]
pub enum FastPath {
    /// Geographic WGS 84 (lon/lat degrees) to web mercator.
    WebMercatorForward,
    /// Web mercator to geographic WGS 84 (lon/lat degrees).
    WebMercatorInverse,
    /// Geographic (lon/lat degrees) to a TM grid, inside `area` (west, south, east,
    /// north).
    TransverseMercator {
        pipeline: Box<TmPipeline>,
        area: [f64; 4],
    },
}

fn is_wgs84_geographic(crs: &Crs) -> bool {
    matches!(crs.authority.as_deref(), Some("EPSG:4326" | "OGC:CRS84"))
}

fn is_web_mercator(crs: &Crs) -> bool {
    crs.authority.as_deref() == Some("EPSG:3857")
}

/// The TM fast path of a pair, from PROJ's candidate operations.
fn transverse_mercator(source: &Crs, target: &Crs) -> Option<FastPath> {
    let candidates = candidate_operations(source, target).ok()?;
    let (first, others) = candidates.split_first()?;
    let pipeline = TmPipeline::parse(first.proj_string.as_deref()?)?;
    let area = first.area?;
    let [west, south, east, north] = area;
    if !(west < east && south < north) {
        return None;
    }
    // PROJ picks, for a point in several operations' areas, the best accuracy: the
    // first must beat every other that states one.
    let best = others.is_empty()
        || (first.accuracy >= 0.0
            && others
                .iter()
                .all(|o| o.accuracy < 0.0 || o.accuracy > first.accuracy));
    best.then(|| FastPath::TransverseMercator {
        pipeline: Box::new(pipeline),
        area,
    })
}

impl FastPath {
    /// The fast path of `source` -> `target`, if there is one and it agrees with
    /// `proj` (the PROJ transformer of the same pair) on sample points.
    pub fn detect(source: &Crs, target: &Crs, proj: &mut Transformer) -> Option<Self> {
        let candidate = if is_wgs84_geographic(source) && is_web_mercator(target) {
            FastPath::WebMercatorForward
        } else if is_web_mercator(source) && is_wgs84_geographic(target) {
            FastPath::WebMercatorInverse
        } else if is_wgs84_geographic(source) {
            transverse_mercator(source, target)?
        } else {
            return None;
        };
        candidate.agrees_with(proj).then_some(candidate)
    }

    /// Sample points across the domain (edges included), in the source CRS.
    fn samples(&self) -> (Vec<f64>, Vec<f64>) {
        let (x0, y0, x1, y1) = match self {
            FastPath::WebMercatorForward => (-180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE),
            FastPath::WebMercatorInverse => {
                let x = std::f64::consts::PI * WGS84_A;
                (-x, -MAX_NORTHING, x, MAX_NORTHING)
            }
            FastPath::TransverseMercator { area, .. } => (area[0], area[1], area[2], area[3]),
        };
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let steps = 24;
        for i in 0..=steps {
            for j in 0..=steps {
                let u = f64::from(i) / f64::from(steps);
                let v = f64::from(j) / f64::from(steps);
                xs.push(x0 + (x1 - x0) * u);
                ys.push(y0 + (y1 - y0) * v);
            }
        }
        (xs, ys)
    }

    fn agrees_with(&self, proj: &mut Transformer) -> bool {
        let (xs, ys) = self.samples();
        let (mut px, mut py) = (xs.clone(), ys.clone());
        if proj.transform(&mut px, &mut py, None).is_err() {
            return false;
        }
        let (mut fx, mut fy) = (xs, ys);
        if !self.apply(&mut fx, &mut fy, None) {
            return false;
        }
        let tolerance = match self {
            FastPath::WebMercatorInverse => CHECK_DEGREES,
            _ => CHECK_METRES,
        };
        px.iter()
            .zip(&py)
            .zip(fx.iter().zip(&fy))
            .all(|((px, py), (fx, fy))| {
                (px - fx).abs() <= tolerance && (py - fy).abs() <= tolerance
            })
    }

    /// Whether a coordinate is inside the domain where the formula is PROJ's result.
    #[inline]
    fn in_domain(&self, x: f64, y: f64) -> bool {
        match self {
            FastPath::WebMercatorForward => x.abs() <= 180.0 && y.abs() <= MAX_LATITUDE,
            FastPath::WebMercatorInverse => {
                x.abs() <= std::f64::consts::PI * WGS84_A && y.abs() <= MAX_NORTHING
            }
            FastPath::TransverseMercator { area, .. } => {
                x >= area[0] && x <= area[2] && y >= area[1] && y <= area[3]
            }
        }
    }

    /// Transforms the coordinates in place and returns true, or leaves them untouched
    /// and returns false when any of them is outside the domain (NaN included). `zs`
    /// (heights) are read, never changed: PROJ's operations here keep them.
    pub fn apply(&self, xs: &mut [f64], ys: &mut [f64], zs: Option<&[f64]>) -> bool {
        if !xs
            .iter()
            .zip(ys.iter())
            .all(|(&x, &y)| self.in_domain(x, y))
        {
            return false;
        }
        match self {
            FastPath::WebMercatorForward => {
                for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
                    *x = WGS84_A * (*x * DEG_TO_RAD);
                    *y = WGS84_A * (*y * DEG_TO_RAD).tan().asinh();
                }
            }
            FastPath::WebMercatorInverse => {
                let ra = 1.0 / WGS84_A;
                for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
                    *x = (*x * ra) * RAD_TO_DEG;
                    *y = (*y * ra).sinh().atan() * RAD_TO_DEG;
                }
            }
            FastPath::TransverseMercator { pipeline, .. } => {
                if zs.is_some_and(|zs| zs.len() != xs.len() || !zs.iter().all(|z| z.is_finite())) {
                    return false;
                }
                // Computed aside first: a result beyond the safe η leaves the chunk to
                // PROJ untouched.
                let n = xs.len();
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    let (Some(&x), Some(&y)) = (xs.get(i), ys.get(i)) else {
                        return false;
                    };
                    let h = zs.and_then(|zs| zs.get(i)).copied().unwrap_or(0.0);
                    let (e, north, eta) = pipeline.forward(x, y, h);
                    if !(eta.abs() <= SAFE_ETA && eta.abs() < MAX_ETA) {
                        return false;
                    }
                    out.push((e, north));
                }
                for ((x, y), (e, north)) in xs.iter_mut().zip(ys.iter_mut()).zip(out) {
                    *x = e;
                    *y = north;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(from: &str, to: &str) -> (Crs, Crs, Transformer) {
        let source = Crs::parse(from, "test").unwrap();
        let target = Crs::parse(to, "test").unwrap();
        let proj = Transformer::new(&source, &target).unwrap();
        (source, target, proj)
    }

    #[test]
    fn web_mercator_matches_proj() {
        for (from, to, expected) in [
            ("EPSG:4326", "EPSG:3857", FastPath::WebMercatorForward),
            ("OGC:CRS84", "EPSG:3857", FastPath::WebMercatorForward),
            ("EPSG:3857", "EPSG:4326", FastPath::WebMercatorInverse),
        ] {
            let (source, target, mut proj) = pair(from, to);
            let fast = FastPath::detect(&source, &target, &mut proj);
            assert_eq!(fast, Some(expected), "{from} -> {to}");
        }
        for (to, found) in [
            ("EPSG:27700", true),
            ("EPSG:32633", true),
            ("EPSG:2157", true),
            ("EPSG:31467", false),
            ("EPSG:3035", false),
        ] {
            let (source, target, mut proj) = pair("EPSG:4326", to);
            let fast = FastPath::detect(&source, &target, &mut proj);
            assert_eq!(
                matches!(fast, Some(FastPath::TransverseMercator { .. })),
                found,
                "{to}"
            );
        }
    }

    #[test]
    fn outside_the_domain_nothing_changes() {
        let fast = FastPath::WebMercatorForward;
        for (x, y) in [
            (0.0, 89.6),
            (180.5, 0.0),
            (f64::NAN, 0.0),
            (0.0, f64::INFINITY),
        ] {
            let (mut xs, mut ys) = (vec![1.0, x], vec![1.0, y]);
            assert!(!fast.apply(&mut xs, &mut ys, None));
            assert_eq!(xs[0], 1.0);
        }
        let (mut xs, mut ys) = (vec![10.0], vec![0.0]);
        assert!(fast.apply(&mut xs, &mut ys, None));
        assert!((xs[0] - 1_113_194.907_932_735_7).abs() < 1e-8);
        assert_eq!(ys[0], 0.0);
    }
}
