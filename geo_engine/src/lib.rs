//! geo_engine: the Rust core of the import pipeline. Pure-Rust readers and encoders
//! (no PyO3 outside `python`), each returning [`error::Result`].

// Hostile input must never panic: these stay errors outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod analysis;
pub mod columns;
pub mod copy;
pub mod crs;
pub mod csv_build;
pub mod csv_points;
pub mod csv_rows;
pub mod dbf;
pub mod encoding;
pub mod error;
pub mod fastpath;
pub mod geojson;
pub mod geometry_ops;
pub mod inspect;
pub mod metadata;
pub mod python;
pub mod python_analysis;
pub mod shp;
pub mod text_source;
pub mod transform;
pub mod wkb;
pub mod wkt;

pub use error::{Error, Result};

#[cfg(test)]
mod robustness;
