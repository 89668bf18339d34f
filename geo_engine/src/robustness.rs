//! Hostile input must give errors, never panics: every decoder is fed random and
//! mutated bytes.

use crate::shp::geometry::{self, Coords};
use crate::{geometry_ops, wkb, wkt};

/// xorshift64*: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.next() as usize) % max;
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A copy of `seed` with a few bytes changed, cut or repeated.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut out = seed.to_vec();
        for _ in 0..1 + self.next() % 4 {
            if out.is_empty() {
                break;
            }
            let at = (self.next() as usize) % out.len();
            match self.next() % 3 {
                0 => out[at] = self.next() as u8,
                1 => out.truncate(at),
                _ => {
                    let tail = out[at..].to_vec();
                    out.extend(tail);
                }
            }
        }
        out
    }
}

fn seeds() -> Vec<Vec<u8>> {
    [
        "POINT (1 2)",
        "LINESTRING Z (0 0 0, 1 1 1)",
        "POLYGON ((0 0, 0 1, 1 1, 0 0), (0.1 0.1, 0.2 0.1, 0.2 0.2, 0.1 0.1))",
        "MULTIPOLYGON (((0 0, 0 1, 1 1, 0 0)), ((5 5, 5 6, 6 6, 5 5)))",
        "GEOMETRYCOLLECTION (POINT (1 2), MULTIPOINT ((0 0), (1 1)))",
    ]
    .iter()
    .map(|text| {
        let mut out = Vec::new();
        wkt::to_wkb(text, &mut out).unwrap();
        out
    })
    .collect()
}

#[test]
fn wkb_decoders_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let seeds = seeds();
    for i in 0..20_000 {
        let input = if i % 4 == 0 {
            rng.bytes(64)
        } else {
            rng.mutate(&seeds[i % seeds.len()])
        };
        let _ = wkb::to_ewkb(&input, Some(4326), &mut Vec::new());
        let _ = wkb::coordinates(&input, &mut Vec::new());
        let _ = geometry_ops::from_wkb(&input);
    }
}

#[test]
fn shape_records_never_panic() {
    let mut rng = Rng(42);
    let seeds = [
        geometry::tests::parts_record(
            5,
            &[
                geometry::tests::cw(0.0, 0.0, 4.0, 4.0),
                geometry::tests::ccw(1.0, 1.0, 2.0, 2.0),
            ],
            None,
        ),
        geometry::tests::parts_record(13, &[vec![(0.0, 0.0), (1.0, 1.0)]], Some(&[1.0, 2.0])),
    ];
    for i in 0..20_000 {
        let input = if i % 4 == 0 {
            rng.bytes(96)
        } else {
            rng.mutate(&seeds[i % 2])
        };
        let mut coords = Coords::default();
        if let Ok(shape) = geometry::decode(&input, &mut coords) {
            geometry::write_wkb(&shape, &coords, &mut Vec::new());
        }
    }
}

#[test]
fn text_decoders_never_panic() {
    let mut rng = Rng(7);
    let texts = [
        &b"GEOMETRYCOLLECTION (POINT Z (1 2 3), POLYGON ((0 0, 0 1, 1 1, 0 0)))"[..],
        br#"{"type":"Feature","properties":{"a":[1,{"b":"c"}]},"geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[0,1],[1,1],[0,0]]]]}}"#,
        br#"{"type":"FeatureCollection","crs":{"type":"name"},"features":[{"type":"Feature","geometry":null}]}"#,
    ];
    for i in 0..20_000 {
        let input = rng.mutate(texts[i % texts.len()]);
        let text = String::from_utf8_lossy(&input);
        let _ = wkt::to_wkb(&text, &mut Vec::new());
        let _ = crate::geojson::feature::tests::geometry_of(&text);
        let _ = crate::geojson::json::Json::new(&text).skip(0);
        let mut scanner = crate::geojson::scan::Scanner::new(input.as_slice());
        for _ in 0..10 {
            match scanner.next_item() {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
}
