//! Closed-form transforms for CRS pairs whose PROJ operation is a fixed formula, used
//! in place of PROJ where they reproduce its result: EPSG:4326 <-> EPSG:3857 is PROJ's
//! `webmerc` (spherical Mercator on the WGS 84 semi-major axis, no datum shift).
//!
//! A fast path only takes a chunk whose every coordinate lies well inside the formula's
//! domain (no longitude wrapping, away from the poles, finite); any other chunk goes
//! to PROJ whole, so errors and edge cases stay PROJ's. [`FastPath::detect`] also
//! checks the formula against the PROJ transformer on sample points before it is
//! used, so a PROJ whose operation differs silently keeps PROJ.

use crate::crs::{Crs, Transformer};

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

/// A CRS pair with a closed-form transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastPath {
    /// Geographic WGS 84 (lon/lat degrees) to web mercator.
    WebMercatorForward,
    /// Web mercator to geographic WGS 84 (lon/lat degrees).
    WebMercatorInverse,
}

fn is_wgs84_geographic(crs: &Crs) -> bool {
    matches!(crs.authority.as_deref(), Some("EPSG:4326" | "OGC:CRS84"))
}

fn is_web_mercator(crs: &Crs) -> bool {
    crs.authority.as_deref() == Some("EPSG:3857")
}

impl FastPath {
    /// The fast path of `source` -> `target`, if there is one and it agrees with
    /// `proj` (the PROJ transformer of the same pair) on sample points.
    pub fn detect(source: &Crs, target: &Crs, proj: &mut Transformer) -> Option<Self> {
        let candidate = if is_wgs84_geographic(source) && is_web_mercator(target) {
            FastPath::WebMercatorForward
        } else if is_web_mercator(source) && is_wgs84_geographic(target) {
            FastPath::WebMercatorInverse
        } else {
            return None;
        };
        candidate.agrees_with(proj).then_some(candidate)
    }

    /// Sample points across the domain, in the source CRS.
    fn samples(self) -> (Vec<f64>, Vec<f64>) {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let steps = 24;
        for i in 0..=steps {
            for j in 0..=steps {
                let u = f64::from(i) / f64::from(steps) * 2.0 - 1.0;
                let v = f64::from(j) / f64::from(steps) * 2.0 - 1.0;
                match self {
                    FastPath::WebMercatorForward => {
                        xs.push(u * 180.0);
                        ys.push(v * MAX_LATITUDE);
                    }
                    FastPath::WebMercatorInverse => {
                        xs.push(u * std::f64::consts::PI * WGS84_A);
                        ys.push(v * MAX_NORTHING);
                    }
                }
            }
        }
        (xs, ys)
    }

    fn agrees_with(self, proj: &mut Transformer) -> bool {
        let (xs, ys) = self.samples();
        let (mut px, mut py) = (xs.clone(), ys.clone());
        if proj.transform(&mut px, &mut py, None).is_err() {
            return false;
        }
        let (mut fx, mut fy) = (xs, ys);
        if !self.apply(&mut fx, &mut fy) {
            return false;
        }
        let tolerance = match self {
            FastPath::WebMercatorForward => CHECK_METRES,
            FastPath::WebMercatorInverse => CHECK_DEGREES,
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
    fn in_domain(self, x: f64, y: f64) -> bool {
        match self {
            FastPath::WebMercatorForward => x.abs() <= 180.0 && y.abs() <= MAX_LATITUDE,
            FastPath::WebMercatorInverse => {
                x.abs() <= std::f64::consts::PI * WGS84_A && y.abs() <= MAX_NORTHING
            }
        }
    }

    /// Transforms the coordinates in place and returns true, or leaves them untouched
    /// and returns false when any of them is outside the domain (NaN included).
    pub fn apply(self, xs: &mut [f64], ys: &mut [f64]) -> bool {
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
        let (source, target, mut proj) = pair("EPSG:4326", "EPSG:27700");
        assert_eq!(FastPath::detect(&source, &target, &mut proj), None);
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
            assert!(!fast.apply(&mut xs, &mut ys));
            assert_eq!(xs[0], 1.0);
        }
        let (mut xs, mut ys) = (vec![10.0], vec![0.0]);
        assert!(fast.apply(&mut xs, &mut ys));
        assert!((xs[0] - 1_113_194.907_932_735_7).abs() < 1e-8);
        assert_eq!(ys[0], 0.0);
    }
}
