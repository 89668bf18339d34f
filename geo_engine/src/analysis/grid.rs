//! Grid inference: per-cell statistics of the points inside each cell, or an
//! inverse-distance-weighted (IDW) estimate at each cell centre.

use rayon::prelude::*;

use super::{check_points, Grid};
use crate::error::{Error, Result};

/// Per-cell statistics, each a row-major `height * width` array (row 0 north).
/// Cells with fewer than `min_points` points have NaN `sum`, `mean`, `min`, `max`;
/// `count` is always the true count.
#[derive(Debug, Clone, PartialEq)]
pub struct CellStats {
    pub count: Vec<i64>,
    pub sum: Vec<f64>,
    pub mean: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

/// The bin edges `numpy.linspace(start, stop, bins + 1)` gives, so that points on an
/// edge fall in the same bin as with `numpy.histogram2d`.
fn edges(start: f64, stop: f64, bins: usize) -> Vec<f64> {
    let step = (stop - start) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 * step + start).collect();
    if let Some(last) = edges.last_mut() {
        *last = stop;
    }
    edges
}

/// The bin of `value` among `edges`: `[e_i, e_i+1)`, the last bin closed, as
/// `numpy.histogram` counts; None outside.
fn bin(edges: &[f64], value: f64) -> Option<usize> {
    let (first, last) = (*edges.first()?, *edges.last()?);
    if !(value >= first && value <= last) {
        return None;
    }
    let bins = edges.len() - 1;
    // A first guess from the uniform step, then corrected against the edges
    // themselves (the guess can be one off through rounding).
    let guess = ((value - first) / (last - first) * bins as f64) as usize;
    let mut index = guess.min(bins - 1);
    while index > 0 && edges.get(index).is_some_and(|&e| value < e) {
        index -= 1;
    }
    while index + 1 < bins && edges.get(index + 1).is_some_and(|&e| value >= e) {
        index += 1;
    }
    Some(index)
}

/// The row-major cell of every point (`usize::MAX` for points outside the bbox).
fn cell_of_points(grid: &Grid, x: &[f64], y: &[f64]) -> Vec<usize> {
    let xedges = edges(grid.xmin, grid.xmax, grid.width);
    let yedges = edges(grid.ymin, grid.ymax, grid.height);
    x.par_iter()
        .zip(y.par_iter())
        .map(|(&px, &py)| match (bin(&xedges, px), bin(&yedges, py)) {
            // y bins count from the south; rows from the north.
            (Some(col), Some(ybin)) => (grid.height - 1 - ybin) * grid.width + col,
            _ => usize::MAX,
        })
        .collect()
}

/// Count, sum, mean, min and max of the values of the points inside each cell.
pub fn cell_stats(
    grid: &Grid,
    x: &[f64],
    y: &[f64],
    values: &[f64],
    min_points: usize,
) -> Result<CellStats> {
    check_points(x, y, values)?;
    let cells = cell_of_points(grid, x, y);
    let n = grid.cells();
    let mut count = vec![0i64; n];
    let mut sum = vec![0.0f64; n];
    let mut min = vec![f64::INFINITY; n];
    let mut max = vec![f64::NEG_INFINITY; n];
    // Bands of rows in parallel, each scanning every point in input order, so each
    // cell's sum adds its values in the same order as NumPy does.
    let band_rows = grid
        .height
        .div_ceil(rayon::current_num_threads().max(1) * 4);
    let band = band_rows * grid.width;
    count
        .par_chunks_mut(band)
        .zip(sum.par_chunks_mut(band))
        .zip(min.par_chunks_mut(band))
        .zip(max.par_chunks_mut(band))
        .enumerate()
        .for_each(|(index, (((count, sum), min), max))| {
            let start = index * band;
            let end = start + count.len();
            for (&cell, &value) in cells.iter().zip(values) {
                if cell < start || cell >= end {
                    continue;
                }
                let local = cell - start;
                if let (Some(c), Some(s), Some(lo), Some(hi)) = (
                    count.get_mut(local),
                    sum.get_mut(local),
                    min.get_mut(local),
                    max.get_mut(local),
                ) {
                    *c += 1;
                    *s += value;
                    *lo = lo.min(value);
                    *hi = hi.max(value);
                }
            }
        });
    let enough = |c: i64| c > 0 && c as u64 >= min_points as u64;
    let mean = count
        .par_iter()
        .zip(sum.par_iter())
        .map(|(&c, &s)| if enough(c) { s / c as f64 } else { f64::NAN })
        .collect();
    let blank = |array: &mut Vec<f64>| {
        array
            .par_iter_mut()
            .zip(count.par_iter())
            .for_each(|(v, &c)| {
                if !enough(c) {
                    *v = f64::NAN;
                }
            })
    };
    blank(&mut sum);
    blank(&mut min);
    blank(&mut max);
    Ok(CellStats {
        count,
        sum,
        mean,
        min,
        max,
    })
}

/// Points bucketed into square buckets (compressed rows: `start[b]..start[b+1]`
/// indexes `order`), for radius queries.
struct Buckets {
    x0: f64,
    y0: f64,
    size: f64,
    nx: usize,
    ny: usize,
    start: Vec<usize>,
    order: Vec<usize>,
}

impl Buckets {
    fn new(x: &[f64], y: &[f64], radius: f64) -> Self {
        let fold = |a: &[f64]| {
            a.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                })
        };
        let ((x0, x1), (y0, y1)) = (fold(x), fold(y));
        // Buckets no smaller than the radius, and no more of them than about four
        // per point (a tiny radius over a wide extent would otherwise allocate a
        // huge empty index).
        let extent = (x1 - x0).max(y1 - y0).max(f64::MIN_POSITIVE);
        let most = ((4 * x.len().max(1)) as f64).sqrt();
        let size = radius.max(extent / most);
        let nx = ((x1 - x0) / size) as usize + 1;
        let ny = ((y1 - y0) / size) as usize + 1;
        let key = |px: f64, py: f64| {
            let bx = (((px - x0) / size) as usize).min(nx - 1);
            let by = (((py - y0) / size) as usize).min(ny - 1);
            by * nx + bx
        };
        let keys: Vec<usize> = x.iter().zip(y).map(|(&px, &py)| key(px, py)).collect();
        let mut start = vec![0usize; nx * ny + 1];
        for &k in &keys {
            if let Some(slot) = start.get_mut(k + 1) {
                *slot += 1;
            }
        }
        for i in 1..start.len() {
            let previous = start.get(i - 1).copied().unwrap_or(0);
            if let Some(slot) = start.get_mut(i) {
                *slot += previous;
            }
        }
        let mut fill = start.clone();
        let mut order = vec![0usize; keys.len()];
        for (index, &k) in keys.iter().enumerate() {
            if let Some(next) = fill.get_mut(k) {
                if let Some(slot) = order.get_mut(*next) {
                    *slot = index;
                }
                *next += 1;
            }
        }
        Self {
            x0,
            y0,
            size,
            nx,
            ny,
            start,
            order,
        }
    }

    /// Calls `visit` with the index of every point of the buckets that a disc of
    /// `radius` around (cx, cy) touches.
    fn each_near(&self, cx: f64, cy: f64, radius: f64, mut visit: impl FnMut(usize)) {
        let range = |c: f64, origin: f64, n: usize| {
            let lo = ((c - radius - origin) / self.size).floor();
            let hi = ((c + radius - origin) / self.size).floor();
            if hi < 0.0 || lo >= n as f64 {
                return None;
            }
            Some((lo.max(0.0) as usize, (hi as usize).min(n - 1)))
        };
        let (Some((bx0, bx1)), Some((by0, by1))) =
            (range(cx, self.x0, self.nx), range(cy, self.y0, self.ny))
        else {
            return;
        };
        for by in by0..=by1 {
            let (Some(&first), Some(&end)) = (
                self.start.get(by * self.nx + bx0),
                self.start.get(by * self.nx + bx1 + 1),
            ) else {
                continue;
            };
            for &index in self.order.get(first..end).unwrap_or(&[]) {
                visit(index);
            }
        }
    }
}

/// Running sums of one cell's IDW estimate.
#[derive(Default)]
struct Idw {
    used: usize,
    exact: usize,
    exact_sum: f64,
    weight_sum: f64,
    weighted: f64,
}

impl Idw {
    fn add(&mut self, d2: f64, value: f64, half_power: f64) {
        self.used += 1;
        if d2 == 0.0 {
            self.exact += 1;
            self.exact_sum += value;
        } else {
            let w = if half_power == 1.0 {
                1.0 / d2
            } else {
                d2.powf(-half_power)
            };
            self.weight_sum += w;
            self.weighted += w * value;
        }
    }

    fn estimate(&self, min_points: usize) -> Option<f64> {
        if self.used == 0 || self.used < min_points {
            None
        } else if self.exact > 0 {
            Some(self.exact_sum / self.exact as f64)
        } else if self.weight_sum.is_finite() && self.weight_sum > 0.0 {
            Some(self.weighted / self.weight_sum)
        } else {
            None
        }
    }
}

/// Inverse-distance-weighted estimate at every cell centre from the points within
/// `radius` (every point when None); NaN where fewer than `min_points` are used.
pub fn idw(
    grid: &Grid,
    x: &[f64],
    y: &[f64],
    values: &[f64],
    power: f64,
    radius: Option<f64>,
    min_points: usize,
) -> Result<Vec<f64>> {
    check_points(x, y, values)?;
    if !(power.is_finite() && power > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "power must be a positive number (got {power})"
        )));
    }
    if let Some(r) = radius {
        if !(r.is_finite() && r > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "radius must be a positive number (got {r})"
            )));
        }
    }
    let half_power = power / 2.0;
    let buckets = radius.map(|r| Buckets::new(x, y, r));
    let mut out = vec![f64::NAN; grid.cells()];
    out.par_chunks_mut(grid.width)
        .enumerate()
        .for_each(|(row, line)| {
            let cy = grid.centre_y(row);
            for (col, cell) in line.iter_mut().enumerate() {
                let cx = grid.centre_x(col);
                let estimate = match (&buckets, radius) {
                    (Some(buckets), Some(r)) => {
                        let r2 = r * r;
                        let visit = |acc: &mut Idw, index: usize| {
                            if let (Some(&px), Some(&py), Some(&v)) =
                                (x.get(index), y.get(index), values.get(index))
                            {
                                let d2 = (px - cx) * (px - cx) + (py - cy) * (py - cy);
                                if d2 <= r2 {
                                    acc.add(d2, v, half_power);
                                }
                            }
                        };
                        let mut acc = Idw::default();
                        buckets.each_near(cx, cy, r, |index| visit(&mut acc, index));
                        rescaled(
                            acc,
                            min_points,
                            || {
                                let mut pts = Vec::new();
                                buckets.each_near(cx, cy, r, |index| pts.push(index));
                                pts.into_iter()
                                    .filter_map(|i| point_d2(x, y, values, i, cx, cy))
                                    .filter(|&(d2, _)| d2 <= r2)
                                    .collect()
                            },
                            half_power,
                        )
                    }
                    _ => {
                        let mut acc = Idw::default();
                        for ((&px, &py), &v) in x.iter().zip(y).zip(values) {
                            let d2 = (px - cx) * (px - cx) + (py - cy) * (py - cy);
                            acc.add(d2, v, half_power);
                        }
                        rescaled(
                            acc,
                            min_points,
                            || {
                                (0..x.len())
                                    .filter_map(|i| point_d2(x, y, values, i, cx, cy))
                                    .collect()
                            },
                            half_power,
                        )
                    }
                };
                *cell = estimate.unwrap_or(f64::NAN);
            }
        });
    Ok(out)
}

fn point_d2(
    x: &[f64],
    y: &[f64],
    values: &[f64],
    i: usize,
    cx: f64,
    cy: f64,
) -> Option<(f64, f64)> {
    let (px, py, v) = (*x.get(i)?, *y.get(i)?, *values.get(i)?);
    Some(((px - cx) * (px - cx) + (py - cy) * (py - cy), v))
}

/// The estimate of `acc`, or, when its weights overflowed (a point extremely close
/// to the centre with a high power), the same estimate with every weight divided by
/// the largest one, from the (d2, value) pairs `points` gives.
fn rescaled(
    acc: Idw,
    min_points: usize,
    points: impl FnOnce() -> Vec<(f64, f64)>,
    half_power: f64,
) -> Option<f64> {
    if acc.used < min_points || acc.used == 0 || acc.exact > 0 || acc.weight_sum.is_finite() {
        return acc.estimate(min_points);
    }
    let pairs = points();
    let nearest = pairs
        .iter()
        .map(|&(d2, _)| d2)
        .fold(f64::INFINITY, f64::min);
    let (mut wsum, mut vsum) = (0.0, 0.0);
    for (d2, v) in pairs {
        let w = (nearest / d2).powf(half_power);
        wsum += w;
        vsum += w * v;
    }
    Some(vsum / wsum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid::try_new((0.0, 0.0, 4.0, 2.0), 4, 2).unwrap()
    }

    #[test]
    fn stats_per_cell_row_zero_north() {
        // (0.5, 1.5) is in the north-west cell; (3.9, 0.1) in the south-east one;
        // (4.0, 0.0) lies on the closed east and south edges; (5, 1) is outside.
        let x = [0.5, 0.6, 3.9, 4.0, 5.0];
        let y = [1.5, 1.9, 0.1, 0.0, 1.0];
        let v = [1.0, 3.0, 10.0, 20.0, 99.0];
        let s = cell_stats(&grid(), &x, &y, &v, 1).unwrap();
        assert_eq!(s.count, vec![2, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(s.sum[0], 4.0);
        assert_eq!(s.mean[0], 2.0);
        assert_eq!((s.min[0], s.max[0]), (1.0, 3.0));
        assert_eq!((s.min[7], s.max[7], s.mean[7]), (10.0, 20.0, 15.0));
        assert!(s.sum[1].is_nan() && s.mean[1].is_nan());
        let s = cell_stats(&grid(), &x, &y, &v, 3).unwrap();
        assert_eq!(s.count[0], 2);
        assert!(s.mean[0].is_nan());
    }

    #[test]
    fn bins_follow_the_edges() {
        let e = edges(0.0, 1.0, 10);
        assert_eq!(bin(&e, 0.0), Some(0));
        assert_eq!(bin(&e, 0.35), Some(3));
        // The edge is 0.30000000000000004 (as numpy.linspace makes it): 0.3 is below it.
        assert_eq!(bin(&e, 0.3), Some(2));
        assert_eq!(bin(&e, 1.0), Some(9));
        assert_eq!(bin(&e, -0.1), None);
        assert_eq!(bin(&e, f64::NAN), None);
    }

    #[test]
    fn idw_weights_and_exact_hits() {
        let g = Grid::try_new((0.0, 0.0, 2.0, 1.0), 2, 1).unwrap();
        // Centres (0.5, 0.5) and (1.5, 0.5); the first point sits on the first.
        let x = [0.5, 1.5 + 0.5];
        let y = [0.5, 0.5];
        let v = [2.0, 8.0];
        let out = idw(&g, &x, &y, &v, 2.0, None, 1).unwrap();
        assert_eq!(out[0], 2.0);
        // Distances 1 and 0.5 from the second centre: weights 1 and 4.
        assert!((out[1] - (2.0 + 4.0 * 8.0) / 5.0).abs() < 1e-12);
        let out = idw(&g, &x, &y, &v, 2.0, Some(0.6), 1).unwrap();
        assert_eq!(out[0], 2.0);
        assert_eq!(out[1], 8.0);
        let out = idw(&g, &x, &y, &v, 2.0, Some(0.6), 2).unwrap();
        assert!(out[0].is_nan() && out[1].is_nan());
    }

    #[test]
    fn idw_survives_overflowing_weights() {
        let g = Grid::try_new((0.0, 0.0, 2.0, 2.0), 1, 1).unwrap();
        let x = [1.0 + 1e-110, 2.0];
        let y = [1.0, 1.0];
        let out = idw(&g, &x, &y, &[5.0, 7.0], 3.0, None, 1).unwrap();
        assert_eq!(out[0], 5.0);
    }

    #[test]
    fn refuses_nan_and_bad_arguments() {
        let g = grid();
        assert!(matches!(
            cell_stats(&g, &[0.0, f64::NAN], &[0.0, 0.0], &[1.0, 1.0], 1),
            Err(Error::Analysis(_))
        ));
        assert!(idw(&g, &[0.0], &[0.0], &[1.0], 0.0, None, 1).is_err());
        assert!(idw(&g, &[0.0], &[0.0], &[1.0], 2.0, Some(-1.0), 1).is_err());
        assert!(cell_stats(&g, &[0.0], &[0.0, 1.0], &[1.0], 1).is_err());
        assert!(Grid::try_new((1.0, 0.0, 0.0, 1.0), 1, 1).is_err());
        assert!(Grid::try_new((0.0, 0.0, 1.0, 1.0), 0, 1).is_err());
    }
}
