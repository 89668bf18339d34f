//! The GeoJSON reader (FeatureCollection, sequences, lone features; the `crs`
//! member; property type inference) over arbitrary bytes, streamed in small batches.
#![no_main]

use geo_engine::geojson::{GeoJsonOptions, GeoJsonReader};
use geo_engine::text_source::TextSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = GeoJsonOptions {
        target_crs: None,
        batch_size: 3,
        ..Default::default()
    };
    let source = TextSource::memory("fuzz.geojson", data.to_vec());
    if let Ok(mut reader) = GeoJsonReader::from_source(source, options) {
        while let Ok(Some(_)) = reader.next_batch() {}
    }
});
