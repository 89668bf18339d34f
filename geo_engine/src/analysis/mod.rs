//! Analysis kernels: thin-plate spline interpolation, raster-to-vector and grid
//! inference. Pure Rust (no PyO3): the bindings are in `python_analysis`.

pub mod grid;
pub mod spline;
pub mod vectorize;

use crate::error::{Error, Result};

/// A north-up grid of `height` rows and `width` columns covering a bbox; row 0 is
/// the north edge, as rasters are stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    pub xmin: f64,
    pub ymin: f64,
    pub xmax: f64,
    pub ymax: f64,
    pub width: usize,
    pub height: usize,
}

impl Grid {
    /// Checks the bbox (finite, min < max) and the size (non-zero, no overflow).
    pub fn try_new(bbox: (f64, f64, f64, f64), width: usize, height: usize) -> Result<Self> {
        let (xmin, ymin, xmax, ymax) = bbox;
        if ![xmin, ymin, xmax, ymax].iter().all(|v| v.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "bbox {bbox:?} has a non-finite coordinate"
            )));
        }
        if xmin >= xmax || ymin >= ymax {
            return Err(Error::InvalidArgument(format!(
                "bbox {bbox:?} must be (xmin, ymin, xmax, ymax) with xmin < xmax and ymin < ymax"
            )));
        }
        if width == 0 || height == 0 {
            return Err(Error::InvalidArgument(format!(
                "width and height must be at least 1 (got {width} x {height})"
            )));
        }
        if width
            .checked_mul(height)
            .is_none_or(|cells| cells > isize::MAX as usize / 8)
        {
            return Err(Error::InvalidArgument(format!(
                "a grid of {width} x {height} cells is too large"
            )));
        }
        Ok(Self {
            xmin,
            ymin,
            xmax,
            ymax,
            width,
            height,
        })
    }

    pub fn cells(&self) -> usize {
        self.width * self.height
    }

    pub fn dx(&self) -> f64 {
        (self.xmax - self.xmin) / self.width as f64
    }

    pub fn dy(&self) -> f64 {
        (self.ymax - self.ymin) / self.height as f64
    }

    /// The x of the centre of column `col`.
    pub fn centre_x(&self, col: usize) -> f64 {
        self.xmin + (col as f64 + 0.5) * self.dx()
    }

    /// The y of the centre of row `row` (row 0 at the north edge).
    pub fn centre_y(&self, row: usize) -> f64 {
        self.ymax - (row as f64 + 0.5) * self.dy()
    }
}

/// Checks that the coordinate and value arrays agree in length and hold only finite
/// numbers: a NaN would otherwise spread silently through a whole grid.
pub fn check_points(x: &[f64], y: &[f64], values: &[f64]) -> Result<()> {
    if x.len() != y.len() || x.len() != values.len() {
        return Err(Error::InvalidArgument(format!(
            "x, y and values differ in length ({}, {}, {})",
            x.len(),
            y.len(),
            values.len()
        )));
    }
    let bad = |name: &str, array: &[f64]| -> Result<()> {
        let count = array.iter().filter(|v| !v.is_finite()).count();
        match array.iter().position(|v| !v.is_finite()) {
            Some(first) => Err(Error::analysis(format!(
                "{name} has {count} non-finite value(s) (NaN or infinity), the first at \
                 index {first}: drop them before calling"
            ))),
            None => Ok(()),
        }
    };
    bad("x", x)?;
    bad("y", y)?;
    bad("values", values)
}
