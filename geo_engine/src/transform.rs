//! Coordinate transforms of whole arrays, in parallel: plain x/y(/z) arrays, and
//! WKB geometry arrays.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::{Array, BinaryArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::DataType;
use rayon::prelude::*;

use crate::crs::{Crs, TransformerPool};
use crate::error::{Error, Result};
use crate::wkb::{self, CoordRef};

/// Coordinates per rayon task.
const CHUNK: usize = 1 << 16;
/// Geometries per rayon task.
const GEOMETRY_CHUNK: usize = 4096;
/// Transformer pools kept between calls (their creation costs PROJ database lookups).
const CACHE_LIMIT: usize = 32;

type PoolCache = Mutex<HashMap<(String, String), Option<Arc<TransformerPool>>>>;

/// The pool for `from` -> `to`, cached; `None` when the CRSs are equivalent.
pub fn pool(from: &str, to: &str) -> Result<Option<Arc<TransformerPool>>> {
    static CACHE: OnceLock<PoolCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = (from.to_string(), to.to_string());
    if let Some(found) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(found.clone());
    }
    let source = Crs::parse(from, "from_crs")?;
    let target = Crs::parse(to, "to_crs")?;
    let pool = TransformerPool::new(&source, &target)?.map(Arc::new);
    let mut guard = cache.lock().unwrap_or_else(|p| p.into_inner());
    if guard.len() >= CACHE_LIMIT {
        guard.clear();
    }
    guard.insert(key, pool.clone());
    Ok(pool)
}

fn failure(pool: &TransformerPool, what: &str, reason: &str) -> Error {
    Error::crs(
        what.to_string(),
        format!(
            "cannot transform from {} to {}: {reason}",
            pool.source.label(),
            pool.target.label()
        ),
    )
}

/// Transforms coordinate arrays in place, in parallel chunks.
pub fn transform_arrays(
    pool: &TransformerPool,
    xs: &mut [f64],
    ys: &mut [f64],
    zs: Option<&mut [f64]>,
) -> Result<()> {
    if xs.len() != ys.len() || zs.as_ref().is_some_and(|z| z.len() != xs.len()) {
        return Err(Error::InvalidArgument(format!(
            "coordinate arrays differ in length: x {}, y {}{}",
            xs.len(),
            ys.len(),
            zs.as_ref()
                .map(|z| format!(", z {}", z.len()))
                .unwrap_or_default()
        )));
    }
    let outcomes: Vec<Result<std::result::Result<(), (usize, String)>>> = match zs {
        Some(zs) => xs
            .par_chunks_mut(CHUNK)
            .zip(ys.par_chunks_mut(CHUNK))
            .zip(zs.par_chunks_mut(CHUNK))
            .map(|((x, y), z)| pool.transform(x, y, Some(z)))
            .collect(),
        None => xs
            .par_chunks_mut(CHUNK)
            .zip(ys.par_chunks_mut(CHUNK))
            .map(|(x, y)| pool.transform(x, y, None))
            .collect(),
    };
    for (chunk, outcome) in outcomes.into_iter().enumerate() {
        if let Err((at, reason)) = outcome? {
            return Err(failure(
                pool,
                &format!("point {}", chunk * CHUNK + at),
                &reason,
            ));
        }
    }
    Ok(())
}

/// Reprojects every geometry of a WKB array (Binary, LargeBinary or BinaryView);
/// returns a Binary array of the same WKB with new coordinates, nulls kept.
pub fn transform_wkb_array(
    array: &dyn Array,
    pool: Option<&TransformerPool>,
) -> Result<BinaryArray> {
    let values: Vec<Option<&[u8]>> = match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().iter().collect(),
        DataType::LargeBinary => array.as_binary::<i64>().iter().collect(),
        DataType::BinaryView => array.as_binary_view().iter().collect(),
        other => {
            return Err(Error::InvalidArgument(format!(
                "expected a WKB (binary) array, got {other}"
            )))
        }
    };
    let chunks = values
        .par_chunks(GEOMETRY_CHUNK)
        .enumerate()
        .map(|(chunk, rows)| transform_chunk(chunk * GEOMETRY_CHUNK, rows, pool))
        .collect::<Result<Vec<(Vec<u8>, Vec<usize>)>>>()?;
    let mut out = Vec::with_capacity(chunks.iter().map(|(v, _)| v.len()).sum());
    let mut offsets = Vec::with_capacity(values.len() + 1);
    offsets.push(0i32);
    for (bytes, lens) in chunks {
        out.extend_from_slice(&bytes);
        for len in lens {
            let last = offsets.last().copied().unwrap_or(0);
            let next = i32::try_from(len)
                .ok()
                .and_then(|l| last.checked_add(l))
                .ok_or_else(|| {
                    Error::InvalidArgument("more than 2 GiB of WKB in one array".into())
                })?;
            offsets.push(next);
        }
    }
    Ok(BinaryArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(out),
        array.logical_nulls(),
    )?)
}

fn transform_chunk(
    first_row: usize,
    rows: &[Option<&[u8]>],
    pool: Option<&TransformerPool>,
) -> Result<(Vec<u8>, Vec<usize>)> {
    let mut out = Vec::with_capacity(rows.iter().map(|r| r.map_or(0, <[u8]>::len)).sum());
    let mut lens = Vec::with_capacity(rows.len());
    let mut spans = Vec::with_capacity(rows.len());
    for row in rows {
        let start = out.len();
        if let Some(bytes) = row {
            out.extend_from_slice(bytes);
        }
        lens.push(out.len() - start);
        spans.push(row.map(|_| (start, out.len())));
    }
    transform_wkb_in_place(&mut out, &spans, pool, first_row, &|row| {
        format!("row {row}")
    })?;
    Ok((out, lens))
}

/// Checks the WKB of every row (`spans[i]`: row i's bytes in `values`, `None` for
/// null) and, with a pool, reprojects its coordinates where they are. Rows are
/// numbered from `first_row`; `name` says what a row is called in a CRS error.
pub fn transform_wkb_in_place(
    values: &mut [u8],
    spans: &[Option<(usize, usize)>],
    pool: Option<&TransformerPool>,
    first_row: usize,
    name: &dyn Fn(usize) -> String,
) -> Result<()> {
    let mut refs: Vec<CoordRef> = Vec::new();
    // (row, first coordinate of the row in refs)
    let mut row_starts = Vec::with_capacity(spans.len());
    for (i, span) in spans.iter().enumerate() {
        let row_number = first_row + i;
        let Some((start, end)) = *span else {
            continue;
        };
        let bytes = values
            .get(start..end)
            .ok_or_else(|| Error::geometry(row_number, "WKB outside its buffer"))?;
        let first_ref = refs.len();
        wkb::coordinates(bytes, &mut refs)
            .map_err(|m| Error::geometry(row_number, format!("invalid WKB: {m}")))?;
        for r in refs.iter_mut().skip(first_ref) {
            r.offset += start;
        }
        row_starts.push((row_number, first_ref));
    }
    let Some(pool) = pool else {
        return Ok(());
    };
    let n = refs.len();
    let mut xs = Vec::with_capacity(n);
    let mut ys = Vec::with_capacity(n);
    let mut zs = Vec::with_capacity(n);
    for r in &refs {
        xs.push(wkb::read_f64(values, r.offset, r.little).unwrap_or(f64::NAN));
        ys.push(wkb::read_f64(values, r.offset + 8, r.little).unwrap_or(f64::NAN));
        zs.push(if r.has_z {
            wkb::read_f64(values, r.offset + 16, r.little).unwrap_or(0.0)
        } else {
            0.0
        });
    }
    let any_z = refs.iter().any(|r| r.has_z);
    let outcome = pool.transform(&mut xs, &mut ys, if any_z { Some(&mut zs) } else { None })?;
    if let Err((at, reason)) = outcome {
        let slot = row_starts
            .partition_point(|&(_, first)| first <= at)
            .saturating_sub(1);
        let row = row_starts.get(slot).map_or(first_row, |&(row, _)| row);
        return Err(failure(pool, &name(row), &reason));
    }
    for (((r, x), y), z) in refs.iter().zip(xs).zip(ys).zip(zs) {
        wkb::write_f64_at(values, r.offset, r.little, x);
        wkb::write_f64_at(values, r.offset + 8, r.little, y);
        if r.has_z {
            wkb::write_f64_at(values, r.offset + 16, r.little, z);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_in_parallel_chunks() {
        let pool = pool("EPSG:4326", "EPSG:3857").unwrap().unwrap();
        let n = CHUNK * 2 + 7;
        let mut xs = vec![10.0; n];
        let mut ys = vec![0.0; n];
        transform_arrays(&pool, &mut xs, &mut ys, None).unwrap();
        assert!(xs
            .iter()
            .all(|&x| (x - 1_113_194.907_932_735_7).abs() < 1e-6));
        ys[n - 1] = 95.0;
        let mut ys2 = ys.clone();
        ys2[n - 1] = 95.0;
        let mut xs2 = vec![10.0; n];
        let err = transform_arrays(&pool, &mut xs2, &mut ys2, None).unwrap_err();
        assert!(
            err.to_string().contains(&format!("point {}", n - 1)),
            "{err}"
        );
        assert!(pool_is_cached());
        assert!(super::pool("EPSG:4326", "OGC:CRS84").unwrap().is_none());
    }

    fn pool_is_cached() -> bool {
        let a = pool("EPSG:4326", "EPSG:3857").unwrap().unwrap();
        let b = pool("EPSG:4326", "EPSG:3857").unwrap().unwrap();
        Arc::ptr_eq(&a, &b)
    }

    #[test]
    fn wkb_arrays() {
        let mut point = Vec::new();
        wkb::write_header(&mut point, wkb::POINT, false);
        wkb::write_f64(&mut point, 10.0);
        wkb::write_f64(&mut point, 0.0);
        let input = BinaryArray::from(vec![Some(point.as_slice()), None]);
        let pool = pool("EPSG:4326", "EPSG:3857").unwrap().unwrap();
        let out = transform_wkb_array(&input, Some(&pool)).unwrap();
        assert!(out.is_null(1));
        let x = wkb::read_f64(out.value(0), 5, true).unwrap();
        assert!((x - 1_113_194.907_932_735_7).abs() < 1e-6);
        let bad = BinaryArray::from(vec![&point[..], &point[..9]]);
        let err = transform_wkb_array(&bad, Some(&pool)).unwrap_err();
        assert!(matches!(err, Error::Geometry { row: 1, .. }), "{err}");
    }
}
