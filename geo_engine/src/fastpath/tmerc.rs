//! Geographic longitude/latitude to a Transverse Mercator grid in closed form, with
//! an optional Helmert datum shift: the PROJ pipelines `unitconvert, [push v_3, cart,
//! helmert, inv cart, pop v_3,] tmerc|utm` (e.g. EPSG:4326 -> EPSG:27700 through
//! "OSGB36 to WGS 84 (6)"), read from the PROJ string of the operation PROJ chose.
//!
//! The same mathematics as PROJ's steps (geocentric conversion, Bowring's inverse,
//! the small-angle Helmert matrix, the Poder/Engsager transverse Mercator with the
//! 6th-order Krüger series), with sines and cosines carried from one step to the next
//! instead of angles where the identities allow, which saves most trigonometric calls.

/// One parsed `+key[=value]` of a PROJ string step.
type Params<'a> = Vec<(&'a str, Option<&'a str>)>;

/// An ellipsoid: semi-major axis and squared eccentricity.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ellipsoid {
    a: f64,
    es: f64,
}

impl Ellipsoid {
    /// PROJ's built-in ellipsoids that PROJ strings of EPSG operations name (by
    /// inverse flattening).
    fn named(name: &str) -> Option<Self> {
        let (a, rf) = match name {
            "WGS84" => (6_378_137.0, 298.257_223_563),
            "GRS80" => (6_378_137.0, 298.257_222_101),
            "airy" => (6_377_563.396, 299.324_964_6),
            "mod_airy" => (6_377_340.189, 299.324_964_6),
            "bessel" => (6_377_397.155, 299.152_812_8),
            "intl" => (6_378_388.0, 297.0),
            "krass" => (6_378_245.0, 298.3),
            _ => return None,
        };
        let f = 1.0 / rf;
        Some(Self {
            a,
            es: 2.0 * f - f * f,
        })
    }

    fn of(params: &Params<'_>) -> Option<Self> {
        Self::named(value(params, "ellps")?)
    }

    fn b(&self) -> f64 {
        self.a * (1.0 - self.es).sqrt()
    }
}

/// A 7-parameter Helmert shift between geocentric frames (small-angle rotations, as
/// PROJ applies it without `+exact`), forward or inverse.
#[derive(Debug, Clone, PartialEq)]
struct Helmert {
    t: [f64; 3],
    /// The rotation matrix applied in the forward direction.
    r: [[f64; 3]; 3],
    scale: f64,
    inverse: bool,
}

impl Helmert {
    fn parse(params: &Params<'_>, inverse: bool) -> Option<Self> {
        let mut t = [0.0; 3];
        let mut rot = [0.0; 3];
        let mut s = 0.0;
        let mut convention = None;
        for &(key, v) in params {
            let number = || v.and_then(|v| v.parse::<f64>().ok());
            match key {
                "proj" => {}
                "x" => t[0] = number()?,
                "y" => t[1] = number()?,
                "z" => t[2] = number()?,
                "rx" => rot[0] = number()?,
                "ry" => rot[1] = number()?,
                "rz" => rot[2] = number()?,
                "s" => s = number()?,
                "convention" => convention = Some(v?),
                _ => return None,
            }
        }
        let arcsec = std::f64::consts::PI / 180.0 / 3600.0;
        let [rx, ry, rz] = rot.map(|r| r * arcsec);
        // Position vector (EPSG:9606): X' = T + (1 + s) R X with this R; coordinate
        // frame (EPSG:9607) rotates the other way (R transposed).
        let position_vector = [[1.0, -rz, ry], [rz, 1.0, -rx], [-ry, rx, 1.0]];
        let r = match convention {
            Some("position_vector") => position_vector,
            Some("coordinate_frame") => transpose(position_vector),
            None if rot == [0.0; 3] => position_vector,
            _ => return None,
        };
        Some(Self {
            t,
            r,
            scale: 1.0 + s * 1e-6,
            inverse,
        })
    }

    #[inline]
    fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let [[r00, r01, r02], [r10, r11, r12], [r20, r21, r22]] = self.r;
        let [tx, ty, tz] = self.t;
        if self.inverse {
            // As PROJ inverts it: the transposed matrix (not the exact inverse of the
            // small-angle one).
            let (x, y, z) = (
                (p[0] - tx) / self.scale,
                (p[1] - ty) / self.scale,
                (p[2] - tz) / self.scale,
            );
            [
                r00 * x + r10 * y + r20 * z,
                r01 * x + r11 * y + r21 * z,
                r02 * x + r12 * y + r22 * z,
            ]
        } else {
            let [x, y, z] = p;
            [
                self.scale * (r00 * x + r01 * y + r02 * z) + tx,
                self.scale * (r10 * x + r11 * y + r12 * z) + ty,
                self.scale * (r20 * x + r21 * y + r22 * z) + tz,
            ]
        }
    }
}

fn transpose(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let [[a, b, c], [d, e, f], [g, h, i]] = m;
    [[a, d, g], [b, e, h], [c, f, i]]
}

/// Geodetic (sines and cosines, height) to geocentric.
#[inline]
fn geocentric(
    ell: &Ellipsoid,
    sin_phi: f64,
    cos_phi: f64,
    sin_lam: f64,
    cos_lam: f64,
    h: f64,
) -> [f64; 3] {
    let n = ell.a / (1.0 - ell.es * sin_phi * sin_phi).sqrt();
    [
        (n + h) * cos_phi * cos_lam,
        (n + h) * cos_phi * sin_lam,
        (n * (1.0 - ell.es) + h) * sin_phi,
    ]
}

/// Geocentric to geodetic by Bowring's formula: (sin φ, cos φ, sin λ, cos λ).
#[inline]
fn geodetic(ell: &Ellipsoid, b: f64, e2s: f64, p: [f64; 3]) -> (f64, f64, f64, f64) {
    let [x, y, z] = p;
    let rho = x.hypot(y);
    let (st, ct) = {
        let (u, v) = (z * ell.a, rho * b);
        let norm = u.hypot(v);
        (u / norm, v / norm)
    };
    let num = z + e2s * b * st * st * st;
    let den = rho - ell.es * ell.a * ct * ct * ct;
    let norm = num.hypot(den);
    (num / norm, den / norm, y / rho, x / rho)
}

/// Clenshaw summation of Σ c[k] sin(2(k+1)θ), given sin 2θ and cos 2θ.
fn clenshaw_sin(c: &[f64; 6], sin2: f64, cos2: f64) -> f64 {
    let (mut h1, mut h2) = (0.0, 0.0);
    for &ck in c.iter().rev() {
        let h = 2.0 * cos2 * h1 - h2 + ck;
        h2 = h1;
        h1 = h;
    }
    sin2 * h1
}

/// Complex Clenshaw summation of Σ c[k] sin(2(k+1)(ξ + iη)), given sin/cos 2ξ and
/// sinh/cosh 2η: the real and imaginary parts.
fn clenshaw_sin_complex(c: &[f64; 6], s2: f64, c2: f64, sh2: f64, ch2: f64) -> (f64, f64) {
    // cos 2z = c2 ch2 - i s2 sh2; sin 2z = s2 ch2 + i c2 sh2.
    let (cr, ci) = (2.0 * c2 * ch2, -2.0 * s2 * sh2);
    let (mut hr1, mut hi1, mut hr2, mut hi2) = (0.0, 0.0, 0.0, 0.0);
    for &ck in c.iter().rev() {
        let hr = cr * hr1 - ci * hi1 - hr2 + ck;
        let hi = ci * hr1 + cr * hi1 - hi2;
        hr2 = hr1;
        hi2 = hi1;
        hr1 = hr;
        hi1 = hi;
    }
    let (sr, si) = (s2 * ch2, c2 * sh2);
    (sr * hr1 - si * hi1, sr * hi1 + si * hr1)
}

/// Evaluates Σ c[i] n^(i+first) (Horner).
fn series(n: f64, first: i32, c: &[f64]) -> f64 {
    c.iter().rev().fold(0.0, |acc, &ci| acc * n + ci) * n.powi(first)
}

/// The Poder/Engsager transverse Mercator of one ellipsoid and origin.
#[derive(Debug, Clone, PartialEq)]
struct Tm {
    a: f64,
    /// Geodetic to conformal latitude, and conformal sphere to TM (Krüger α).
    cbg: [f64; 6],
    gtu: [f64; 6],
    qn: f64,
    zb: f64,
    sin_lam0: f64,
    cos_lam0: f64,
    x0: f64,
    y0: f64,
}

impl Tm {
    fn new(ell: &Ellipsoid, phi0: f64, lam0: f64, k0: f64, x0: f64, y0: f64) -> Self {
        let f = ell.es / (1.0 + (1.0 - ell.es).sqrt());
        let n = f / (2.0 - f);
        let cbg = [
            series(
                n,
                1,
                &[
                    -2.0,
                    2.0 / 3.0,
                    4.0 / 3.0,
                    -82.0 / 45.0,
                    32.0 / 45.0,
                    4642.0 / 4725.0,
                ],
            ),
            series(
                n,
                2,
                &[
                    5.0 / 3.0,
                    -16.0 / 15.0,
                    -13.0 / 9.0,
                    904.0 / 315.0,
                    -1522.0 / 945.0,
                ],
            ),
            series(
                n,
                3,
                &[-26.0 / 15.0, 34.0 / 21.0, 8.0 / 5.0, -12686.0 / 2835.0],
            ),
            series(n, 4, &[1237.0 / 630.0, -12.0 / 5.0, -24832.0 / 14175.0]),
            series(n, 5, &[-734.0 / 315.0, 109_598.0 / 31185.0]),
            series(n, 6, &[444_337.0 / 155_925.0]),
        ];
        let gtu = [
            series(
                n,
                1,
                &[
                    0.5,
                    -2.0 / 3.0,
                    5.0 / 16.0,
                    41.0 / 180.0,
                    -127.0 / 288.0,
                    7891.0 / 37800.0,
                ],
            ),
            series(
                n,
                2,
                &[
                    13.0 / 48.0,
                    -3.0 / 5.0,
                    557.0 / 1440.0,
                    281.0 / 630.0,
                    -1_983_433.0 / 1_935_360.0,
                ],
            ),
            series(
                n,
                3,
                &[
                    61.0 / 240.0,
                    -103.0 / 140.0,
                    15061.0 / 26880.0,
                    167_603.0 / 181_440.0,
                ],
            ),
            series(
                n,
                4,
                &[
                    49561.0 / 161_280.0,
                    -179.0 / 168.0,
                    6_601_661.0 / 7_257_600.0,
                ],
            ),
            series(n, 5, &[34729.0 / 80640.0, -3_418_889.0 / 1_995_840.0]),
            series(n, 6, &[212_378_941.0 / 319_334_400.0]),
        ];
        let n2 = n * n;
        let qn = k0 / (1.0 + n) * (1.0 + n2 * (0.25 + n2 * (1.0 / 64.0 + n2 / 256.0)));
        // The conformal latitude of the origin, and its northing on the TM.
        let z = phi0 + clenshaw_sin(&cbg, (2.0 * phi0).sin(), (2.0 * phi0).cos());
        let zb = -qn * (z + clenshaw_sin(&gtu, (2.0 * z).sin(), (2.0 * z).cos()));
        Self {
            a: ell.a,
            cbg,
            gtu,
            qn,
            zb,
            sin_lam0: lam0.sin(),
            cos_lam0: lam0.cos(),
            x0,
            y0,
        }
    }

    fn parse(params: &Params<'_>) -> Option<(Self, Ellipsoid)> {
        let ell = Ellipsoid::of(params)?;
        let number = |key: &str| value(params, key).and_then(|v| v.parse::<f64>().ok());
        let deg = std::f64::consts::PI / 180.0;
        match value(params, "proj")? {
            "tmerc" => {
                allow_only(
                    params,
                    &[
                        "proj", "lat_0", "lon_0", "k", "k_0", "x_0", "y_0", "ellps", "units",
                    ],
                )?;
                if value(params, "units").is_some_and(|u| u != "m") {
                    return None;
                }
                let k0 = number("k").or_else(|| number("k_0")).unwrap_or(1.0);
                let phi0 = number("lat_0").unwrap_or(0.0) * deg;
                let lam0 = number("lon_0").unwrap_or(0.0) * deg;
                let tm = Self::new(
                    &ell,
                    phi0,
                    lam0,
                    k0,
                    number("x_0").unwrap_or(0.0),
                    number("y_0").unwrap_or(0.0),
                );
                Some((tm, ell))
            }
            "utm" => {
                allow_only(params, &["proj", "zone", "south", "ellps", "units"])?;
                let zone = number("zone")?;
                if !(1.0..=60.0).contains(&zone) || zone.fract() != 0.0 {
                    return None;
                }
                let lam0 = ((zone - 0.5) * 6.0 - 180.0) * deg;
                let south = params.iter().any(|&(k, _)| k == "south");
                let y0 = if south { 10_000_000.0 } else { 0.0 };
                Some((Self::new(&ell, 0.0, lam0, 0.9996, 500_000.0, y0), ell))
            }
            _ => None,
        }
    }

    /// Easting and northing of a geodetic position given by sines and cosines, and
    /// the imaginary part η of the result (|η| beyond PROJ's limit means an error).
    #[inline]
    fn forward(&self, sin_phi: f64, cos_phi: f64, sin_lam: f64, cos_lam: f64) -> (f64, f64, f64) {
        // Geodetic to conformal latitude: χ = φ + δ.
        let delta = clenshaw_sin(
            &self.cbg,
            2.0 * sin_phi * cos_phi,
            (cos_phi - sin_phi) * (cos_phi + sin_phi),
        );
        let (sd, cd) = delta.sin_cos();
        let sin_chi = sin_phi * cd + cos_phi * sd;
        let cos_chi = cos_phi * cd - sin_phi * sd;
        // Longitude from the central meridian.
        let sin_dl = sin_lam * self.cos_lam0 - cos_lam * self.sin_lam0;
        let cos_dl = cos_lam * self.cos_lam0 + sin_lam * self.sin_lam0;
        // Conformal sphere to the transverse sphere: ξ, and η = asinh(tan Ce).
        let u = cos_dl * cos_chi;
        let r = sin_chi.hypot(u);
        let xi = sin_chi.atan2(u);
        let t = sin_dl * cos_chi / r;
        let eta = t.asinh();
        let (s_xi, c_xi) = (sin_chi / r, u / r);
        let s2 = 2.0 * s_xi * c_xi;
        let c2 = (c_xi - s_xi) * (c_xi + s_xi);
        let ch = (1.0 + t * t).sqrt();
        let (sh2, ch2) = (2.0 * t * ch, 1.0 + 2.0 * t * t);
        let (dxi, deta) = clenshaw_sin_complex(&self.gtu, s2, c2, sh2, ch2);
        let (xi, eta) = (xi + dxi, eta + deta);
        (
            self.a * (self.qn * eta) + self.x0,
            self.a * (self.qn * xi + self.zb) + self.y0,
            eta,
        )
    }
}

/// PROJ's limit on η in its transverse Mercator (beyond it: an error).
pub const MAX_ETA: f64 = 2.623_395_162_778;

/// A whole pipeline from geographic degrees to a TM grid.
#[derive(Debug, Clone, PartialEq)]
pub struct TmPipeline {
    /// The datum shift: source ellipsoid, Helmert, target ellipsoid.
    shift: Option<(Ellipsoid, Helmert, Ellipsoid)>,
    tm: Tm,
}

fn value<'a>(params: &Params<'a>, key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|&&(k, _)| k == key)
        .and_then(|&(_, v)| v)
}

fn allow_only(params: &Params<'_>, keys: &[&str]) -> Option<()> {
    params.iter().all(|(k, _)| keys.contains(k)).then_some(())
}

/// The steps of a PROJ pipeline string: each step's `inv` flag and parameters.
fn steps(text: &str) -> Option<Vec<(bool, Params<'_>)>> {
    let mut tokens = text.split_whitespace();
    if tokens.next()? != "+proj=pipeline" {
        return None;
    }
    let mut out: Vec<(bool, Params<'_>)> = Vec::new();
    for token in tokens {
        let token = token.strip_prefix('+')?;
        if token == "step" {
            out.push((false, Vec::new()));
            continue;
        }
        let (inv, params) = out.last_mut()?;
        if token == "inv" {
            *inv = true;
            continue;
        }
        let (key, v) = match token.split_once('=') {
            Some((key, v)) => (key, Some(v)),
            None => (token, None),
        };
        params.push((key, v));
    }
    Some(out)
}

fn is_step(
    step: &(bool, Params<'_>),
    inv: bool,
    proj: &str,
    params: &[(&str, Option<&str>)],
) -> bool {
    step.0 == inv && value(&step.1, "proj") == Some(proj) && {
        let mut expected = vec![("proj", Some(proj))];
        expected.extend_from_slice(params);
        step.1.len() == expected.len() && expected.iter().all(|p| step.1.contains(p))
    }
}

impl TmPipeline {
    /// The pipeline of a PROJ string, if it is one this module computes exactly.
    pub fn parse(text: &str) -> Option<Self> {
        let mut steps = steps(text)?;
        // Axis swaps at either end are what axis normalisation removes: coordinates
        // here are always x/lon first.
        let swap =
            |s: &(bool, Params<'_>)| is_step(s, false, "axisswap", &[("order", Some("2,1"))]);
        if steps.first().is_some_and(swap) {
            steps.remove(0);
        }
        if steps.last().is_some_and(swap) {
            steps.pop();
        }
        let unit = is_step(
            steps.first()?,
            false,
            "unitconvert",
            &[("xy_in", Some("deg")), ("xy_out", Some("rad"))],
        );
        if !unit {
            return None;
        }
        match steps.as_slice() {
            [_, (false, tm)] => {
                let (tm, _) = Tm::parse(tm)?;
                Some(Self { shift: None, tm })
            }
            [_, push, (false, cart1), (inv, helmert), (true, cart2), pop, (false, tm)] => {
                let v3 = [("v_3", None)];
                if !is_step(push, false, "push", &v3) || !is_step(pop, false, "pop", &v3) {
                    return None;
                }
                let cart = |params: &Params<'_>| {
                    allow_only(params, &["proj", "ellps"])?;
                    (value(params, "proj") == Some("cart"))
                        .then(|| Ellipsoid::of(params))
                        .flatten()
                };
                let from = cart(cart1)?;
                let to = cart(cart2)?;
                if value(helmert, "proj") != Some("helmert") {
                    return None;
                }
                let helmert = Helmert::parse(helmert, *inv)?;
                let (tm, tm_ell) = Tm::parse(tm)?;
                (tm_ell == to).then_some(Self {
                    shift: Some((from, helmert, to)),
                    tm,
                })
            }
            _ => None,
        }
    }

    /// Easting, northing and η of a longitude/latitude (degrees) at height `h`.
    #[inline]
    pub fn forward(&self, lon: f64, lat: f64, h: f64) -> (f64, f64, f64) {
        let deg = std::f64::consts::PI / 180.0;
        let (sin_phi, cos_phi) = (lat * deg).sin_cos();
        let (sin_lam, cos_lam) = (lon * deg).sin_cos();
        match &self.shift {
            None => self.tm.forward(sin_phi, cos_phi, sin_lam, cos_lam),
            Some((from, helmert, to)) => {
                let p = geocentric(from, sin_phi, cos_phi, sin_lam, cos_lam, h);
                let q = helmert.apply(p);
                let b = to.b();
                let e2s = to.es / (1.0 - to.es);
                let (sp, cp, sl, cl) = geodetic(to, b, e2s, q);
                self.tm.forward(sp, cp, sl, cl)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BNG: &str = "+proj=pipeline +step +proj=axisswap +order=2,1 +step +proj=unitconvert +xy_in=deg +xy_out=rad +step +proj=push +v_3 +step +proj=cart +ellps=WGS84 +step +inv +proj=helmert +x=446.448 +y=-125.157 +z=542.06 +rx=0.15 +ry=0.247 +rz=0.842 +s=-20.489 +convention=position_vector +step +inv +proj=cart +ellps=airy +step +proj=pop +v_3 +step +proj=tmerc +lat_0=49 +lon_0=-2 +k=0.9996012717 +x_0=400000 +y_0=-100000 +ellps=airy";

    #[test]
    fn parses_the_pipelines_it_computes() {
        assert!(TmPipeline::parse(BNG).unwrap().shift.is_some());
        let utm = "+proj=pipeline +step +proj=axisswap +order=2,1 +step +proj=unitconvert +xy_in=deg +xy_out=rad +step +proj=utm +zone=33 +ellps=WGS84";
        assert!(TmPipeline::parse(utm).unwrap().shift.is_none());
        for other in [
            BNG.replace("+k=", "+approx +k="),
            BNG.replace("-100000 +ellps=airy", "-100000 +ellps=clrk80ign"),
            BNG.replace("tmerc", "lcc"),
            BNG.replace(
                "+convention=position_vector",
                "+exact +convention=position_vector",
            ),
            BNG.replace("+proj=push +v_3", "+proj=push +v_4"),
            BNG.replace("-100000 +ellps=airy", "-100000 +ellps=GRS80"),
            "+proj=webmerc +ellps=WGS84".to_string(),
        ] {
            assert!(TmPipeline::parse(&other).is_none(), "{other}");
        }
    }

    #[test]
    fn british_national_grid() {
        // Reference: PROJ 9.1 (cs2cs EPSG:4326 EPSG:27700) for 51.5 N, 0.1 W.
        let pipeline = TmPipeline::parse(BNG).unwrap();
        let (x, y, _) = pipeline.forward(-0.1, 51.5, 0.0);
        assert!((x - 531_979.292_711).abs() < 1e-6, "{x}");
        assert!((y - 179_606.908_536).abs() < 1e-6, "{y}");
    }
}
