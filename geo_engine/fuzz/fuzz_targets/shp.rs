//! The shapefile reader over arbitrary .shp bytes (and, when the first byte is odd, a
//! .shx cut from the end of the input), with a DBF of as many empty records as the
//! .shp has shapes, so that every record reaches the geometry decoder.
#![no_main]

use std::path::Path;

use geo_engine::shp::index::RecordIndex;
use geo_engine::shp::source::Input;
use geo_engine::shp::{ShapefileOptions, ShapefileParts, ShapefileReader};
use libfuzzer_sys::fuzz_target;

/// A DBF with no fields and `count` records.
fn empty_dbf(count: usize) -> Vec<u8> {
    let mut out = vec![3u8, 124, 1, 1];
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out.extend_from_slice(&33u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&[0u8; 20]);
    out.push(0x0D);
    out.resize(out.len() + count, b' ');
    out
}

fuzz_target!(|data: &[u8]| {
    let (shp, shx) = match data.split_first() {
        Some((&mode, rest)) if mode & 1 == 1 && rest.len() >= 2 => {
            // The last two bytes say where the .shx starts.
            let (body, cut) = rest.split_at(rest.len() - 2);
            let at = usize::from(u16::from_le_bytes([cut[0], cut[1]])) % (body.len() + 1);
            let (shp, shx) = body.split_at(at);
            (shp.to_vec(), Some(shx.to_vec()))
        }
        Some((_, rest)) => (rest.to_vec(), None),
        None => return,
    };
    let path = Path::new("fuzz.shp");
    // Count the shapes the way the reader will, to give the DBF as many records.
    let count = match &shx {
        Some(shx) => shx.len().saturating_sub(100) / 8,
        None => match RecordIndex::scan(&Input::from_memory(path.into(), shp.clone().into())) {
            Ok(index) => index.len(),
            Err(_) => 0,
        },
    };
    let parts = ShapefileParts::from_memory(path, shp, shx, Some(empty_dbf(count.min(1 << 16))), None, None);
    let options = ShapefileOptions {
        target_crs: None,
        batch_size: 7,
        ..Default::default()
    };
    if let Ok(mut reader) = ShapefileReader::from_parts(parts, options) {
        let _ = reader.read_all();
    }
});
