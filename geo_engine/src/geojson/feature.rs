//! One GeoJSON feature (or lone geometry) parsed from its JSON text: its geometry
//! written as ISO WKB, its properties kept as JSON values.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::wkb;

const MAX_DEPTH: usize = 32;

/// Nested coordinate arrays, read without knowing the geometry type yet.
#[derive(Debug, Clone, PartialEq)]
pub enum Nested {
    Number(f64),
    List(Vec<Nested>),
}

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NestedVisitor;
        impl<'de> Visitor<'de> for NestedVisitor {
            type Value = Nested;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or an array of coordinates")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Nested, E> {
                Ok(Nested::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Nested, E> {
                Ok(Nested::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Nested, E> {
                Ok(Nested::Number(v as f64))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Nested, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Nested::List(items))
            }
        }
        deserializer.deserialize_any(NestedVisitor)
    }
}

#[derive(Debug, Deserialize)]
pub struct GeometryIn {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub coordinates: Option<Nested>,
    #[serde(default)]
    pub geometries: Option<Vec<GeometryIn>>,
}

/// A feature, or a lone geometry (then `kind` is its type and the geometry members
/// are set).
#[derive(Debug, Deserialize)]
pub struct FeatureIn {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub geometry: Option<GeometryIn>,
    #[serde(default)]
    pub properties: Option<Map<String, Value>>,
    #[serde(default)]
    pub coordinates: Option<Nested>,
    #[serde(default)]
    pub geometries: Option<Vec<GeometryIn>>,
}

/// A parsed feature: WKB (None for a null geometry) and properties.
#[derive(Debug)]
pub struct Parsed {
    pub wkb: Option<Vec<u8>>,
    pub properties: Map<String, Value>,
}

pub fn parse(json: &[u8]) -> Result<Parsed, String> {
    let feature: FeatureIn =
        serde_json::from_slice(json).map_err(|err| format!("invalid feature: {err}"))?;
    let geometry = match feature.kind.as_deref() {
        Some("Feature") | None => feature.geometry,
        Some("FeatureCollection") => return Err("a FeatureCollection nested in features".into()),
        Some(kind) => Some(GeometryIn {
            kind: kind.to_string(),
            coordinates: feature.coordinates,
            geometries: feature.geometries,
        }),
    };
    let wkb = match geometry {
        Some(geometry) => {
            let mut out = Vec::new();
            let has_z = has_z(&geometry);
            write_geometry(&geometry, has_z, &mut out, 0)?;
            Some(out)
        }
        None => None,
    };
    Ok(Parsed {
        wkb,
        properties: feature.properties.unwrap_or_default(),
    })
}

fn first_position(nested: &Nested) -> Option<&[Nested]> {
    match nested {
        Nested::Number(_) => None,
        Nested::List(items) => match items.first() {
            Some(Nested::Number(_)) => Some(items),
            Some(inner) => first_position(inner),
            None => None,
        },
    }
}

/// Whether the geometry has a third coordinate (decided by its first position).
fn has_z(geometry: &GeometryIn) -> bool {
    if let Some(coordinates) = &geometry.coordinates {
        return first_position(coordinates).is_some_and(|p| p.len() >= 3);
    }
    geometry
        .geometries
        .as_ref()
        .and_then(|g| g.first())
        .is_some_and(has_z)
}

fn position(nested: &Nested, has_z: bool, out: &mut Vec<u8>) -> Result<(), String> {
    let Nested::List(values) = nested else {
        return Err("expected a position (an array of numbers)".into());
    };
    let number = |i: usize| match values.get(i) {
        Some(Nested::Number(v)) => Ok(Some(*v)),
        Some(Nested::List(_)) => Err("a position holds an array".to_string()),
        None => Ok(None),
    };
    let (Some(x), Some(y)) = (number(0)?, number(1)?) else {
        return Err("a position needs at least two numbers".into());
    };
    wkb::write_f64(out, x);
    wkb::write_f64(out, y);
    if has_z {
        wkb::write_f64(out, number(2)?.unwrap_or(0.0));
    }
    Ok(())
}

fn list(nested: &Nested) -> Result<&[Nested], String> {
    match nested {
        Nested::List(items) => Ok(items),
        Nested::Number(_) => Err("expected an array of coordinates".into()),
    }
}

fn count(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| "too many coordinates".to_string())
}

fn positions(nested: &Nested, has_z: bool, out: &mut Vec<u8>) -> Result<(), String> {
    let items = list(nested)?;
    wkb::write_u32(out, count(items.len())?);
    items.iter().try_for_each(|p| position(p, has_z, out))
}

fn rings(nested: &Nested, has_z: bool, out: &mut Vec<u8>) -> Result<(), String> {
    let items = list(nested)?;
    wkb::write_u32(out, count(items.len())?);
    items.iter().try_for_each(|r| positions(r, has_z, out))
}

fn write_geometry(
    geometry: &GeometryIn,
    has_z: bool,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("geometry nested deeper than {MAX_DEPTH} levels"));
    }
    let coordinates = || {
        geometry
            .coordinates
            .as_ref()
            .ok_or_else(|| format!("a {} without coordinates", geometry.kind))
    };
    match geometry.kind.as_str() {
        "Point" => {
            wkb::write_header(out, wkb::POINT, has_z);
            match coordinates()? {
                Nested::List(items) if items.is_empty() => {
                    for _ in 0..(2 + usize::from(has_z)) {
                        wkb::write_f64(out, f64::NAN);
                    }
                    Ok(())
                }
                c => position(c, has_z, out),
            }
        }
        "LineString" => {
            wkb::write_header(out, wkb::LINESTRING, has_z);
            positions(coordinates()?, has_z, out)
        }
        "Polygon" => {
            wkb::write_header(out, wkb::POLYGON, has_z);
            rings(coordinates()?, has_z, out)
        }
        "MultiPoint" => {
            wkb::write_header(out, wkb::MULTIPOINT, has_z);
            let items = list(coordinates()?)?;
            wkb::write_u32(out, count(items.len())?);
            items.iter().try_for_each(|p| {
                wkb::write_header(out, wkb::POINT, has_z);
                position(p, has_z, out)
            })
        }
        "MultiLineString" => {
            wkb::write_header(out, wkb::MULTILINESTRING, has_z);
            let items = list(coordinates()?)?;
            wkb::write_u32(out, count(items.len())?);
            items.iter().try_for_each(|l| {
                wkb::write_header(out, wkb::LINESTRING, has_z);
                positions(l, has_z, out)
            })
        }
        "MultiPolygon" => {
            wkb::write_header(out, wkb::MULTIPOLYGON, has_z);
            let items = list(coordinates()?)?;
            wkb::write_u32(out, count(items.len())?);
            items.iter().try_for_each(|p| {
                wkb::write_header(out, wkb::POLYGON, has_z);
                rings(p, has_z, out)
            })
        }
        "GeometryCollection" => {
            wkb::write_header(out, wkb::GEOMETRYCOLLECTION, has_z);
            let parts = geometry.geometries.as_deref().unwrap_or_default();
            wkb::write_u32(out, count(parts.len())?);
            parts
                .iter()
                .try_for_each(|g| write_geometry(g, has_z, out, depth + 1))
        }
        other => Err(format!("unknown geometry type {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_and_geometries() {
        let f = parse(br#"{"type":"Feature","properties":{"b":1,"a":"x"},"geometry":{"coordinates":[1.5,2],"type":"Point"}}"#).unwrap();
        let wkb_bytes = f.wkb.unwrap();
        assert_eq!(wkb_bytes.len(), 21);
        assert_eq!(wkb::read_f64(&wkb_bytes, 5, true), Some(1.5));
        assert_eq!(f.properties.keys().collect::<Vec<_>>(), ["b", "a"]);
        let g = parse(br#"{"type":"Polygon","coordinates":[[[0,0,1],[0,1,1],[1,1,1],[0,0,1]]]}"#)
            .unwrap();
        assert!(wkb::peek_type(&g.wkb.unwrap()).unwrap().has_z);
        let n = parse(br#"{"type":"Feature","geometry":null,"properties":null}"#).unwrap();
        assert!(n.wkb.is_none() && n.properties.is_empty());
        let c = parse(br#"{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"MultiLineString","coordinates":[[[0,0],[1,1]]]}]}"#).unwrap();
        let mut refs = Vec::new();
        wkb::coordinates(&c.wkb.unwrap(), &mut refs).unwrap();
        assert_eq!(refs.len(), 3);
    }

    #[test]
    fn bad_geometries() {
        for text in [
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[1]}}"#,
            r#"{"type":"Feature","geometry":{"type":"Circle","coordinates":[1,2]}}"#,
            r#"{"type":"Feature","geometry":{"type":"LineString","coordinates":[1,2]}}"#,
            r#"{"type":"Feature","geometry":{"type":"Polygon"}}"#,
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":["a","b"]}}"#,
            r#"not json"#,
        ] {
            assert!(parse(text.as_bytes()).is_err(), "{text}");
        }
    }
}
