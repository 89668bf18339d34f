//! The delimited-text reader (x/y or WKT columns, found by name) over arbitrary
//! bytes, failing on the first bad row and skipping bad rows.
#![no_main]

use geo_engine::csv_points::{BadRows, CsvOptions, CsvPointReader};
use geo_engine::text_source::TextSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for on_bad_rows in [BadRows::Fail, BadRows::Skip] {
        let options = CsvOptions {
            target_crs: None,
            batch_size: 5,
            on_bad_rows,
            ..Default::default()
        };
        let source = TextSource::memory("fuzz.csv", data.to_vec());
        if let Ok(mut reader) = CsvPointReader::from_source(source, options) {
            while let Ok(Some(_)) = reader.next_batch() {}
        }
    }
});
