//! A whole .dbf from arbitrary bytes, decoded with its own code page and as UTF-8.
#![no_main]

use std::path::Path;

use geo_engine::dbf;
use geo_engine::encoding::TextEncoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.dbf");
    let _ = dbf::read_table(data, path, None);
    let _ = dbf::read_table(data, path, Some(TextEncoding::Utf8));
});
