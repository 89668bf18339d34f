//! Thin-plate spline interpolation with a degree-1 polynomial term, the system
//! `scipy.interpolate.RBFInterpolator(kernel="thin_plate_spline")` solves:
//!
//! ```text
//! [ K + diag(smoothing)  P ] [w]   [d]
//! [ P^T                  0 ] [a] = [0]
//! ```
//!
//! with `K[i][j] = r^2 ln r` (r the distance between points i and j, unscaled) and
//! `P[i] = [1, (x_i - sx) / hx, (y_i - sy) / hy]`, where the shift `s` and scale `h`
//! map the points' bounding box onto [-1, 1] (a zero scale becomes 1), as SciPy does.
//!
//! Up to [`EXACT_MAX_POINTS`] points the global system is solved exactly (dense LU
//! with partial pivoting, one step of iterative refinement, and a conditioning
//! check). Beyond that, or when `neighbors` is given, each cell gets the spline of
//! its `k` nearest points, as `RBFInterpolator(neighbors=k)` does.

use faer::linalg::solvers::Solve;
use faer::Mat;
use rayon::prelude::*;
use rstar::primitives::GeomWithData;
use rstar::RTree;

use super::{check_points, Grid};
use crate::error::{Error, Result};

/// The largest point count solved as one dense system (a 5,003^2 matrix is 200 MB).
pub const EXACT_MAX_POINTS: usize = 5000;

/// Neighbourhood size of the local method used beyond [`EXACT_MAX_POINTS`].
pub const DEFAULT_NEIGHBORS: usize = 64;

/// The relative size of the iterative-refinement correction beyond which the system
/// is called ill-conditioned (its condition number is then about 1e14 or more).
const REFINEMENT_LIMIT: f64 = 1e-2;

/// `r^2 ln r` from the squared distance, 0 at 0.
#[inline(always)]
fn tps(d2: f64) -> f64 {
    0.5 * d2 * d2.max(f64::MIN_POSITIVE).ln()
}

/// The polynomial's shift and scale of a set of points (SciPy's `_build_system`).
#[derive(Debug, Clone, Copy)]
struct Frame {
    sx: f64,
    sy: f64,
    hx: f64,
    hy: f64,
}

impl Frame {
    fn of(points: impl Iterator<Item = (f64, f64)>) -> Self {
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for (x, y) in points {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        let half = |lo: f64, hi: f64| {
            let h = (hi - lo) / 2.0;
            if h == 0.0 {
                1.0
            } else {
                h
            }
        };
        Self {
            sx: (x1 + x0) / 2.0,
            sy: (y1 + y0) / 2.0,
            hx: half(x0, x1),
            hy: half(y0, y1),
        }
    }
}

/// A solved spline: kernel weights at its points, and the polynomial.
struct Spline {
    px: Vec<f64>,
    py: Vec<f64>,
    w: Vec<f64>,
    poly: [f64; 3],
    frame: Frame,
}

impl Spline {
    #[inline]
    fn at(&self, x: f64, y: f64) -> f64 {
        let mut acc = 0.0;
        for ((&px, &py), &w) in self.px.iter().zip(&self.py).zip(&self.w) {
            let (dx, dy) = (x - px, y - py);
            acc += w * tps(dx * dx + dy * dy);
        }
        let [a0, a1, a2] = self.poly;
        acc + a0
            + a1 * (x - self.frame.sx) / self.frame.hx
            + a2 * (y - self.frame.sy) / self.frame.hy
    }
}

/// Solves the spline system of the points `(px, py)` with values `d`; `what` names
/// the points in errors.
fn solve(px: Vec<f64>, py: Vec<f64>, d: &[f64], smoothing: f64, what: &str) -> Result<Spline> {
    let n = px.len();
    let m = n + 3;
    let frame = Frame::of(px.iter().copied().zip(py.iter().copied()));
    let mut lhs = Mat::<f64>::zeros(m, m);
    let fill = |j: usize, col: &mut [f64]| {
        if let (Some(&xj), Some(&yj)) = (px.get(j), py.get(j)) {
            for (i, (cell, (&xi, &yi))) in col.iter_mut().zip(px.iter().zip(&py)).enumerate() {
                let (dx, dy) = (xi - xj, yi - yj);
                *cell = tps(dx * dx + dy * dy) + if i == j { smoothing } else { 0.0 };
            }
            if let Some(tail) = col.get_mut(n..) {
                let poly = [1.0, (xj - frame.sx) / frame.hx, (yj - frame.sy) / frame.hy];
                tail.iter_mut().zip(poly).for_each(|(cell, p)| *cell = p);
            }
        } else if let Some(k) = j.checked_sub(n) {
            // The P^T rows' columns: column n + k holds P[:, k] then zeros.
            for (cell, (&xi, &yi)) in col.iter_mut().zip(px.iter().zip(&py)) {
                *cell = match k {
                    0 => 1.0,
                    1 => (xi - frame.sx) / frame.hx,
                    _ => (yi - frame.sy) / frame.hy,
                };
            }
        }
    };
    if n > 256 {
        let columns: Vec<(usize, Vec<f64>)> = (0..m)
            .into_par_iter()
            .map(|j| {
                let mut col = vec![0.0; m];
                fill(j, &mut col);
                (j, col)
            })
            .collect();
        for (j, col) in columns {
            lhs.col_as_slice_mut(j).copy_from_slice(&col);
        }
    } else {
        for j in 0..m {
            fill(j, lhs.col_as_slice_mut(j));
        }
    }
    let mut rhs = Mat::<f64>::zeros(m, 1);
    if let Some(head) = rhs.col_as_slice_mut(0).get_mut(..n) {
        head.copy_from_slice(d);
    }
    let lu = lhs.partial_piv_lu();
    let mut x = lu.solve(&rhs);
    // One step of iterative refinement: its correction also measures how far the
    // system is from singular.
    let residual = &rhs - &lhs * &x;
    let correction = lu.solve(&residual);
    x += &correction;
    let coeffs = x.col_as_slice(0);
    let size = coeffs.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let change = correction
        .col_as_slice(0)
        .iter()
        .fold(0.0f64, |a, v| a.max(v.abs()));
    if !size.is_finite() || !change.is_finite() || change > REFINEMENT_LIMIT * size {
        return Err(Error::analysis(format!(
            "the spline system of {what} is singular or ill-conditioned (nearly \
             duplicate or nearly collinear points): use a smoothing > 0 or thin the points"
        )));
    }
    let w = coeffs.get(..n).unwrap_or(&[]).to_vec();
    let tail = coeffs.get(n..).unwrap_or(&[]);
    let poly = [
        tail.first().copied().unwrap_or(0.0),
        tail.get(1).copied().unwrap_or(0.0),
        tail.get(2).copied().unwrap_or(0.0),
    ];
    Ok(Spline {
        px,
        py,
        w,
        poly,
        frame,
    })
}

/// Refuses inputs whose spline is undefined: fewer than 3 points, all points on one
/// line, and (without smoothing) two points at the same place.
fn check_geometry(x: &[f64], y: &[f64], smoothing: f64) -> Result<()> {
    if x.len() < 3 {
        return Err(Error::analysis(format!(
            "a thin-plate spline needs at least 3 points (got {})",
            x.len()
        )));
    }
    // Collinear: every point's distance from the line through the first point and
    // the point farthest from it is negligible.
    let (x0, y0) = (
        x.first().copied().unwrap_or(0.0),
        y.first().copied().unwrap_or(0.0),
    );
    let (far, _) = x
        .iter()
        .zip(y)
        .enumerate()
        .map(|(i, (&px, &py))| (i, (px - x0).powi(2) + (py - y0).powi(2)))
        .fold(
            (0, 0.0),
            |best, item| if item.1 > best.1 { item } else { best },
        );
    let (ux, uy) = (
        x.get(far).copied().unwrap_or(x0) - x0,
        y.get(far).copied().unwrap_or(y0) - y0,
    );
    let length2 = ux * ux + uy * uy;
    let off_line = x
        .iter()
        .zip(y)
        .map(|(&px, &py)| ((px - x0) * uy - (py - y0) * ux).abs())
        .fold(0.0f64, f64::max);
    if length2 == 0.0 || off_line <= 1e-12 * length2 {
        return Err(Error::analysis(
            "the points are collinear (or all at one place): a thin-plate spline \
             with a linear term needs points spanning an area",
        ));
    }
    if smoothing == 0.0 {
        let mut order: Vec<usize> = (0..x.len()).collect();
        let key = |i: &usize| (x.get(*i).copied(), y.get(*i).copied());
        order.par_sort_unstable_by(|a, b| {
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        if let Some(pair) = order.windows(2).find(|p| match p {
            [a, b] => key(a) == key(b),
            _ => false,
        }) {
            let (a, b) = match pair {
                [a, b] => ((*a).min(*b), (*a).max(*b)),
                _ => (0, 0),
            };
            return Err(Error::analysis(format!(
                "points {a} and {b} are at the same place: an interpolating spline \
                 (smoothing=0) is undefined there; merge them or use smoothing > 0"
            )));
        }
    }
    Ok(())
}

/// Thin-plate spline of the points evaluated at every cell centre of `grid`
/// (row-major, row 0 north). `neighbors`: None solves exactly up to
/// [`EXACT_MAX_POINTS`] points and uses [`DEFAULT_NEIGHBORS`] beyond; `Some(k)`
/// always uses the local method with `k` neighbours.
pub fn interpolate(
    grid: &Grid,
    x: &[f64],
    y: &[f64],
    values: &[f64],
    smoothing: f64,
    neighbors: Option<usize>,
) -> Result<Vec<f64>> {
    check_points(x, y, values)?;
    if !(smoothing.is_finite() && smoothing >= 0.0) {
        return Err(Error::InvalidArgument(format!(
            "smoothing must be a finite number >= 0 (got {smoothing})"
        )));
    }
    if let Some(k) = neighbors {
        if k < 3 {
            return Err(Error::InvalidArgument(format!(
                "neighbors must be at least 3 (got {k})"
            )));
        }
    }
    check_geometry(x, y, smoothing)?;
    let mut out = vec![0.0; grid.cells()];
    match neighbors.or((x.len() > EXACT_MAX_POINTS).then_some(DEFAULT_NEIGHBORS)) {
        None => {
            let spline = solve(x.to_vec(), y.to_vec(), values, smoothing, "the points")?;
            out.par_chunks_mut(grid.width)
                .enumerate()
                .for_each(|(row, line)| {
                    let cy = grid.centre_y(row);
                    for (col, cell) in line.iter_mut().enumerate() {
                        *cell = spline.at(grid.centre_x(col), cy);
                    }
                });
        }
        Some(k) => local(grid, x, y, values, smoothing, k.min(x.len()), &mut out)?,
    }
    Ok(out)
}

type Indexed = GeomWithData<[f64; 2], usize>;

/// The local method: each cell's value from the spline of its `k` nearest points;
/// neighbouring cells with the same neighbourhood share one solve.
fn local(
    grid: &Grid,
    x: &[f64],
    y: &[f64],
    values: &[f64],
    smoothing: f64,
    k: usize,
    out: &mut [f64],
) -> Result<()> {
    let tree = RTree::bulk_load(
        x.iter()
            .zip(y)
            .enumerate()
            .map(|(i, (&px, &py))| Indexed::new([px, py], i))
            .collect(),
    );
    out.par_chunks_mut(grid.width)
        .enumerate()
        .try_for_each(|(row, line)| -> Result<()> {
            let cy = grid.centre_y(row);
            let mut current: Option<(Vec<usize>, Spline)> = None;
            for (col, cell) in line.iter_mut().enumerate() {
                let cx = grid.centre_x(col);
                let mut near: Vec<usize> = tree
                    .nearest_neighbor_iter(&[cx, cy])
                    .take(k)
                    .map(|p| p.data)
                    .collect();
                near.sort_unstable();
                let reuse = matches!(&current, Some((set, _)) if *set == near);
                if !reuse {
                    let px = near.iter().filter_map(|&i| x.get(i).copied()).collect();
                    let py = near.iter().filter_map(|&i| y.get(i).copied()).collect();
                    let d: Vec<f64> = near
                        .iter()
                        .filter_map(|&i| values.get(i).copied())
                        .collect();
                    let what = format!("the {k} points nearest to cell (row {row}, column {col})");
                    let spline = solve(px, py, &d, smoothing, &what)?;
                    current = Some((near, spline));
                }
                if let Some((_, spline)) = &current {
                    *cell = spline.at(cx, cy);
                }
            }
            Ok(())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let x: Vec<f64> = vec![0.0, 1.0, 0.0, 1.0, 0.3, 0.7];
        let y = vec![0.0, 0.0, 1.0, 1.0, 0.6, 0.2];
        let v = x
            .iter()
            .zip(&y)
            .map(|(a, b): (&f64, &f64)| (a * 3.0).sin() + b * b)
            .collect();
        (x, y, v)
    }

    #[test]
    fn interpolates_its_points_and_reproduces_planes() {
        let (x, y, v) = points();
        let spline = solve(x.clone(), y.clone(), &v, 0.0, "test").unwrap();
        for i in 0..x.len() {
            assert!((spline.at(x[i], y[i]) - v[i]).abs() < 1e-10);
        }
        // A plane is in the polynomial part: the kernel weights vanish.
        let plane: Vec<f64> = x.iter().zip(&y).map(|(a, b)| 2.0 + 3.0 * a - b).collect();
        let spline = solve(x.clone(), y.clone(), &plane, 0.0, "test").unwrap();
        assert!((spline.at(0.25, 0.75) - (2.0 + 0.75 - 0.75)).abs() < 1e-10);
    }

    #[test]
    fn grid_centres_north_first() {
        let (x, y, _) = points();
        let plane: Vec<f64> = y.iter().map(|b| 10.0 * b).collect();
        let grid = Grid::try_new((0.0, 0.0, 1.0, 1.0), 1, 2).unwrap();
        let out = interpolate(&grid, &x, &y, &plane, 0.0, None).unwrap();
        assert!((out[0] - 7.5).abs() < 1e-9 && (out[1] - 2.5).abs() < 1e-9);
        let local = interpolate(&grid, &x, &y, &plane, 0.0, Some(4)).unwrap();
        assert!((local[0] - 7.5).abs() < 1e-9 && (local[1] - 2.5).abs() < 1e-9);
    }

    #[test]
    fn refuses_degenerate_input() {
        let grid = Grid::try_new((0.0, 0.0, 1.0, 1.0), 2, 2).unwrap();
        let line = [0.0, 1.0, 2.0, 3.0];
        let err = interpolate(&grid, &line, &line, &[1.0, 2.0, 3.0, 4.0], 0.0, None);
        assert!(matches!(err, Err(Error::Analysis(m)) if m.contains("collinear")));
        let err = interpolate(&grid, &[0.0, 1.0], &[0.0, 1.0], &[1.0, 2.0], 0.0, None);
        assert!(matches!(err, Err(Error::Analysis(m)) if m.contains("at least 3")));
        let (x, y, v) = (
            [0.0, 1.0, 0.0, 1.0],
            [0.0, 0.0, 1.0, 0.0],
            [1.0, 2.0, 3.0, 4.0],
        );
        let err = interpolate(&grid, &x, &y, &v, 0.0, None);
        assert!(matches!(err, Err(Error::Analysis(m)) if m.contains("points 1 and 3")));
        // With smoothing, duplicates are a least-squares fit, as in SciPy.
        assert!(interpolate(&grid, &x, &y, &v, 0.1, None).is_ok());
        let err = interpolate(&grid, &x, &y, &[1.0, f64::NAN, 3.0, 4.0], 0.1, None);
        assert!(matches!(err, Err(Error::Analysis(m)) if m.contains("index 1")));
        assert!(interpolate(&grid, &x, &y, &v, -1.0, None).is_err());
    }
}
