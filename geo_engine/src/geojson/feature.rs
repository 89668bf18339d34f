//! GeoJSON features parsed straight into Arrow columns: the geometry written as ISO
//! WKB while it is read, the id and properties appended to typed builders (the
//! columns' types come from the schema pass, see `schema`).

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
};
use arrow_array::ArrayRef;

use super::json::{self, Json, JsonResult, Value};
use super::schema::{Layout, PropertyKind};
use crate::columns::parse_iso_date;
use crate::wkb;

/// Geometries nested deeper than this (collections of collections) are refused.
const MAX_DEPTH: usize = 32;

/// One typed column being built.
pub enum Builder {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Date(Date32Builder),
    Text(StringBuilder),
}

impl Builder {
    pub fn new(kind: PropertyKind, capacity: usize) -> Self {
        match kind {
            PropertyKind::Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            PropertyKind::Int64 => Builder::Int(Int64Builder::with_capacity(capacity)),
            PropertyKind::Float64 => Builder::Float(Float64Builder::with_capacity(capacity)),
            PropertyKind::Date32 => Builder::Date(Date32Builder::with_capacity(capacity)),
            PropertyKind::Utf8 => {
                Builder::Text(StringBuilder::with_capacity(capacity, capacity * 8))
            }
        }
    }

    /// Appends a value (`None`: absent or null); false if it does not fit the type.
    pub fn append(&mut self, value: Option<&Value<'_>>) -> bool {
        let value = match value {
            None | Some(Value::Null) => {
                match self {
                    Builder::Bool(b) => b.append_null(),
                    Builder::Int(b) => b.append_null(),
                    Builder::Float(b) => b.append_null(),
                    Builder::Date(b) => b.append_null(),
                    Builder::Text(b) => b.append_null(),
                }
                return true;
            }
            Some(value) => value,
        };
        match (self, value) {
            (Builder::Bool(b), Value::Bool(v)) => b.append_value(*v),
            (Builder::Int(b), Value::Int(v, _)) => b.append_value(*v),
            (Builder::Float(b), Value::Int(v, _)) => b.append_value(*v as f64),
            (Builder::Float(b), Value::Float(v, _)) => b.append_value(*v),
            (Builder::Date(b), Value::Str(s)) => match parse_iso_date(s) {
                Some(days) => b.append_value(days),
                None => return false,
            },
            (Builder::Text(b), Value::Str(s)) => b.append_value(s),
            (Builder::Text(b), Value::Bool(v)) => b.append_value(if *v { "true" } else { "false" }),
            (Builder::Text(b), Value::Int(_, text) | Value::Float(_, text)) => b.append_value(text),
            (Builder::Text(b), Value::Nested(raw)) => b.append_value(json::compact(raw)),
            _ => return false,
        }
        true
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
        }
    }
}

/// The columns of a run of features.
pub struct Rows<'l> {
    layout: &'l Layout,
    /// One builder per column of `layout` (the id first, when there is one).
    pub builders: Vec<Builder>,
    /// The WKB of every geometry, back to back; `wkb_ends[i]` ends row i's.
    pub wkb: Vec<u8>,
    pub wkb_ends: Vec<usize>,
    pub valid: Vec<bool>,
}

/// Why a feature could not be added: a message, or the column a value does not fit.
#[derive(Debug)]
pub enum Problem {
    Invalid(String),
    Misfit { column: usize, value: String },
}

impl From<String> for Problem {
    fn from(message: String) -> Self {
        Problem::Invalid(message)
    }
}

/// The text of a value, for messages.
fn describe(value: &Value<'_>) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(_, text) | Value::Float(_, text) => (*text).to_string(),
        Value::Str(s) => format!("{s:?}"),
        Value::Nested(raw) => json::compact(raw),
    }
}

impl<'l> Rows<'l> {
    pub fn new(layout: &'l Layout, capacity: usize) -> Self {
        Self {
            layout,
            builders: layout
                .kinds()
                .map(|kind| Builder::new(kind, capacity))
                .collect(),
            wkb: Vec::with_capacity(capacity * 32),
            wkb_ends: Vec::with_capacity(capacity),
            valid: Vec::with_capacity(capacity),
        }
    }

    /// Parses one feature (or lone geometry) and appends it as a row.
    pub fn add<'a>(
        &mut self,
        text: &'a str,
        scratch: &mut Vec<Option<Value<'a>>>,
    ) -> Result<(), Problem> {
        scratch.clear();
        scratch.resize(self.builders.len(), None);
        let mut json = Json::new(text);
        let geometry_start = self.wkb.len();
        let has_geometry = self.parse_object(&mut json, scratch, geometry_start)?;
        json.end()?;
        for (column, (builder, value)) in self.builders.iter_mut().zip(scratch.iter()).enumerate() {
            if !builder.append(value.as_ref()) {
                return Err(Problem::Misfit {
                    column,
                    value: value.as_ref().map_or_else(|| "null".into(), describe),
                });
            }
        }
        if !has_geometry {
            self.wkb.truncate(geometry_start);
        }
        self.wkb_ends.push(self.wkb.len());
        self.valid.push(has_geometry);
        Ok(())
    }

    /// The top-level object: a Feature, or a geometry. Returns whether a geometry
    /// was written (at `geometry_start`).
    fn parse_object<'a>(
        &mut self,
        json: &mut Json<'a>,
        scratch: &mut [Option<Value<'a>>],
        geometry_start: usize,
    ) -> JsonResult<bool> {
        json.begin_object()?;
        let mut first = true;
        let mut kind: Option<Cow<'a, str>> = None;
        let mut geometry: Option<bool> = None;
        let mut coordinates: Option<&'a str> = None;
        let mut geometries: Option<&'a str> = None;
        while let Some(key) = json.next_key(&mut first)? {
            match key.as_ref() {
                "type" => kind = Some(json.string()?),
                "id" => {
                    let value = json.value()?;
                    if let Some(slot) = self.layout.id_column().and_then(|i| scratch.get_mut(i)) {
                        *slot = Some(value);
                    }
                }
                "properties" => self.properties(json, scratch)?,
                "geometry" => {
                    // A repeated member replaces the earlier one, as in a JSON parser.
                    self.wkb.truncate(geometry_start);
                    geometry = Some(write_geometry_value(json, &mut self.wkb, 0)?);
                }
                "coordinates" => coordinates = Some(json.raw()?),
                "geometries" => geometries = Some(json.raw()?),
                _ => json.skip(0)?,
            }
        }
        match kind.as_deref() {
            None | Some("Feature") => Ok(geometry.unwrap_or(false)),
            Some("FeatureCollection") => Err("a FeatureCollection nested in features".into()),
            Some(other) => {
                // A lone geometry: its members are the geometry's.
                self.wkb.truncate(geometry_start);
                let parts = Parts {
                    kind: Cow::Owned(other.to_string()),
                    coordinates,
                    geometries,
                };
                let has_z = parts.has_z(0)?;
                parts.write(has_z, &mut self.wkb, 0)?;
                Ok(true)
            }
        }
    }

    fn properties<'a>(
        &mut self,
        json: &mut Json<'a>,
        scratch: &mut [Option<Value<'a>>],
    ) -> JsonResult<()> {
        if json.null() {
            return Ok(());
        }
        json.begin_object()?;
        let mut first = true;
        let mut hint = self.layout.first_property();
        while let Some(key) = json.next_key(&mut first)? {
            let column = self.layout.find(&key, hint).ok_or_else(|| {
                format!(
                    "property {key:?} was not in the file when its columns were inferred \
                     (did it change while being read?)"
                )
            })?;
            hint = column + 1;
            let value = json.value()?;
            if let Some(slot) = scratch.get_mut(column) {
                *slot = Some(value);
            }
        }
        Ok(())
    }

    /// The row count so far.
    pub fn len(&self) -> usize {
        self.valid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.valid.is_empty()
    }
}

/// The members of a geometry object that make its WKB.
struct Parts<'a> {
    kind: Cow<'a, str>,
    coordinates: Option<&'a str>,
    geometries: Option<&'a str>,
}

/// Reads a geometry object (or null) at the cursor; writes its WKB and returns true,
/// or false for null.
fn write_geometry_value(json: &mut Json<'_>, out: &mut Vec<u8>, depth: usize) -> JsonResult<bool> {
    if json.null() {
        return Ok(false);
    }
    let parts = Parts::read(json)?;
    let has_z = parts.has_z(depth)?;
    parts.write(has_z, out, depth)?;
    Ok(true)
}

impl<'a> Parts<'a> {
    fn read(json: &mut Json<'a>) -> JsonResult<Self> {
        json.begin_object()?;
        let mut first = true;
        let mut kind = None;
        let mut coordinates = None;
        let mut geometries = None;
        while let Some(key) = json.next_key(&mut first)? {
            match key.as_ref() {
                "type" => kind = Some(json.string()?),
                "coordinates" => coordinates = Some(json.raw()?),
                "geometries" => geometries = Some(json.raw()?),
                _ => json.skip(0)?,
            }
        }
        let kind = kind.ok_or_else(|| "a geometry without a type".to_string())?;
        Ok(Self {
            kind,
            coordinates,
            geometries,
        })
    }

    fn coordinates(&self) -> JsonResult<Json<'a>> {
        self.coordinates
            .map(Json::new)
            .ok_or_else(|| format!("a {} without coordinates", self.kind))
    }

    /// Whether the geometry has a third coordinate, decided by its first position
    /// (for a collection, by its first member's).
    fn has_z(&self, depth: usize) -> JsonResult<bool> {
        if depth > MAX_DEPTH {
            return Err(format!("geometry nested deeper than {MAX_DEPTH} levels"));
        }
        if self.kind == "GeometryCollection" {
            let Some(raw) = self.geometries else {
                return Ok(false);
            };
            let mut json = Json::new(raw);
            json.begin_array()?;
            let mut first = true;
            if !json.next_element(&mut first)? || json.null() {
                return Ok(false);
            }
            return Parts::read(&mut json)?.has_z(depth + 1);
        }
        Ok(self
            .coordinates
            .is_some_and(|raw| first_position_len(raw) >= 3))
    }

    fn write(&self, has_z: bool, out: &mut Vec<u8>, depth: usize) -> JsonResult<()> {
        if depth > MAX_DEPTH {
            return Err(format!("geometry nested deeper than {MAX_DEPTH} levels"));
        }
        match self.kind.as_ref() {
            "Point" => {
                wkb::write_header(out, wkb::POINT, has_z);
                let mut json = self.coordinates()?;
                point_coordinates(&mut json, has_z, out)?;
                json.end()
            }
            "LineString" => self.nested(wkb::LINESTRING, 1, has_z, out),
            "Polygon" => self.nested(wkb::POLYGON, 2, has_z, out),
            "MultiPoint" => self.nested(wkb::MULTIPOINT, 1, has_z, out),
            "MultiLineString" => self.nested(wkb::MULTILINESTRING, 2, has_z, out),
            "MultiPolygon" => self.nested(wkb::MULTIPOLYGON, 3, has_z, out),
            "GeometryCollection" => {
                wkb::write_header(out, wkb::GEOMETRYCOLLECTION, has_z);
                let count_at = out.len();
                wkb::write_u32(out, 0);
                let mut count = 0u32;
                if let Some(raw) = self.geometries {
                    let mut json = Json::new(raw);
                    json.begin_array()?;
                    let mut first = true;
                    while json.next_element(&mut first)? {
                        let member = Parts::read(&mut json)?;
                        member.write(has_z, out, depth + 1)?;
                        count = count.checked_add(1).ok_or("too many geometries")?;
                    }
                    json.end()?;
                }
                patch_u32(out, count_at, count);
                Ok(())
            }
            other => Err(format!("unknown geometry type {other:?}")),
        }
    }

    /// A geometry whose coordinates are arrays `levels` deep above the positions.
    fn nested(&self, base: u32, levels: usize, has_z: bool, out: &mut Vec<u8>) -> JsonResult<()> {
        wkb::write_header(out, base, has_z);
        let mut json = self.coordinates()?;
        let member = match base {
            wkb::MULTIPOINT => Some(wkb::POINT),
            wkb::MULTILINESTRING => Some(wkb::LINESTRING),
            wkb::MULTIPOLYGON => Some(wkb::POLYGON),
            _ => None,
        };
        nested_array(&mut json, levels, member, has_z, out)?;
        json.end()
    }
}

fn patch_u32(out: &mut [u8], at: usize, value: u32) {
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
}

/// An array of `levels` nesting (1: positions); each element of the outer array is
/// a `member` geometry with its own header when given (multi geometries).
fn nested_array(
    json: &mut Json<'_>,
    levels: usize,
    member: Option<u32>,
    has_z: bool,
    out: &mut Vec<u8>,
) -> JsonResult<()> {
    if json.peek() != Some(b'[') {
        return Err("expected an array of coordinates".into());
    }
    json.begin_array()?;
    let count_at = out.len();
    wkb::write_u32(out, 0);
    let mut count = 0u32;
    let mut first = true;
    while json.next_element(&mut first)? {
        if let Some(base) = member {
            wkb::write_header(out, base, has_z);
        }
        if levels == 1 {
            if member == Some(wkb::POINT) {
                point_coordinates(json, has_z, out)?;
            } else {
                position(json, has_z, out)?;
            }
        } else {
            nested_array(json, levels - 1, None, has_z, out)?;
        }
        count = count
            .checked_add(1)
            .ok_or_else(|| "too many coordinates".to_string())?;
    }
    patch_u32(out, count_at, count);
    Ok(())
}

/// A point's coordinates: a position, or `[]` (an empty point, NaN coordinates).
fn point_coordinates(json: &mut Json<'_>, has_z: bool, out: &mut Vec<u8>) -> JsonResult<()> {
    let mut probe = json.clone();
    if probe.begin_array().is_ok() && probe.peek() == Some(b']') {
        // Consumes the closing bracket.
        probe.next_element(&mut true)?;
        *json = probe;
        for _ in 0..(2 + usize::from(has_z)) {
            wkb::write_f64(out, f64::NAN);
        }
        return Ok(());
    }
    position(json, has_z, out)
}

/// A position: at least two numbers; the third is z (0 when absent and the geometry
/// has z); more are dropped (M).
fn position(json: &mut Json<'_>, has_z: bool, out: &mut Vec<u8>) -> JsonResult<()> {
    if json.peek() != Some(b'[') {
        return Err("expected a position (an array of numbers)".into());
    }
    json.begin_array()?;
    let mut first = true;
    let mut n = 0usize;
    while json.next_element(&mut first)? {
        if json.peek() == Some(b'[') {
            return Err("a position holds an array".into());
        }
        let value = json
            .f64()
            .map_err(|_| "a position holds something other than numbers".to_string())?;
        if n < 2 || (n == 2 && has_z) {
            wkb::write_f64(out, value);
        }
        n += 1;
    }
    if n < 2 {
        return Err("a position needs at least two numbers".into());
    }
    if has_z && n == 2 {
        wkb::write_f64(out, 0.0);
    }
    Ok(())
}

/// How many values the first position of a coordinates array holds (0 if none).
fn first_position_len(raw: &str) -> usize {
    let mut json = Json::new(raw);
    let mut depth = 0;
    while json.peek() == Some(b'[') {
        if json.begin_array().is_err() || depth > MAX_DEPTH {
            return 0;
        }
        depth += 1;
    }
    if depth == 0 {
        return 0;
    }
    let mut first = true;
    let mut n = 0;
    while let Ok(true) = json.next_element(&mut first) {
        if json.f64().is_err() {
            break;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::geojson::schema::Layout;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::Array;

    /// Parses lone features with no attribute columns: the WKB, or the message.
    pub fn geometry_of(text: &str) -> Result<Option<Vec<u8>>, String> {
        let layout = Layout::new(None, Vec::new());
        let mut rows = Rows::new(&layout, 1);
        let mut scratch = Vec::new();
        rows.add(text, &mut scratch).map_err(|p| format!("{p:?}"))?;
        Ok(rows.valid[0].then(|| rows.wkb.clone()))
    }

    #[test]
    fn features_and_geometries() {
        let wkb_bytes = geometry_of(r#"{"type":"Feature","properties":{},"geometry":{"coordinates":[1.5,2],"type":"Point"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(wkb_bytes.len(), 21);
        assert_eq!(wkb::read_f64(&wkb_bytes, 5, true), Some(1.5));
        let g =
            geometry_of(r#"{"type":"Polygon","coordinates":[[[0,0,1],[0,1,1],[1,1,1],[0,0,1]]]}"#)
                .unwrap()
                .unwrap();
        assert!(wkb::peek_type(&g).unwrap().has_z);
        assert_eq!(g.len(), 9 + 4 + 4 * 24);
        assert!(
            geometry_of(r#"{"type":"Feature","geometry":null,"properties":null}"#)
                .unwrap()
                .is_none()
        );
        let c = geometry_of(r#"{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"MultiLineString","coordinates":[[[0,0],[1,1]]]}]}"#)
            .unwrap()
            .unwrap();
        let mut refs = Vec::new();
        wkb::coordinates(&c, &mut refs).unwrap();
        assert_eq!(refs.len(), 3);
        let empty = geometry_of(r#"{"type":"Point","coordinates":[]}"#)
            .unwrap()
            .unwrap();
        assert!(wkb::read_f64(&empty, 5, true).unwrap().is_nan());
        let multi = geometry_of(r#"{"type":"MultiPoint","coordinates":[[1,2,3,4],[5,6]]}"#)
            .unwrap()
            .unwrap();
        // z from the first position, 0 where missing, M dropped.
        assert_eq!(multi.len(), 9 + 2 * 29);
        assert_eq!(wkb::read_f64(&multi, 9 + 29 + 5 + 16, true), Some(0.0));
    }

    #[test]
    fn bad_geometries() {
        for text in [
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[1]}}"#,
            r#"{"type":"Feature","geometry":{"type":"Circle","coordinates":[1,2]}}"#,
            r#"{"type":"Feature","geometry":{"type":"LineString","coordinates":[1,2]}}"#,
            r#"{"type":"Feature","geometry":{"type":"Polygon"}}"#,
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":["a","b"]}}"#,
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[[1,2]]}}"#,
            r#"{"type":"Feature","geometry":{"coordinates":[1,2]}}"#,
            r#"{"type":"FeatureCollection","features":[]}"#,
            r#"not json"#,
        ] {
            assert!(geometry_of(text).is_err(), "{text}");
        }
    }

    #[test]
    fn properties_into_typed_columns() {
        let layout = Layout::new(
            Some(("id".into(), PropertyKind::Int64)),
            vec![
                ("a".into(), PropertyKind::Utf8),
                ("b".into(), PropertyKind::Int64),
            ],
        );
        let mut rows = Rows::new(&layout, 2);
        let mut scratch = Vec::new();
        rows.add(
            r#"{"id":3,"properties":{"b":1,"a":{"k": [1, 2]},"b":2}}"#,
            &mut scratch,
        )
        .unwrap();
        rows.add(r#"{"properties":{"a":1.50}}"#, &mut scratch)
            .unwrap();
        let err = rows
            .add(r#"{"properties":{"b":"x"}}"#, &mut scratch)
            .unwrap_err();
        assert!(matches!(err, Problem::Misfit { column: 2, .. }), "{err:?}");
        let columns: Vec<ArrayRef> = rows.builders.iter_mut().map(Builder::finish).collect();
        assert_eq!(columns[0].as_primitive::<Int64Type>().value(0), 3);
        assert!(columns[0].is_null(1));
        assert_eq!(columns[1].as_string::<i32>().value(0), r#"{"k":[1,2]}"#);
        assert_eq!(columns[1].as_string::<i32>().value(1), "1.50");
        // The last of repeated members wins.
        assert_eq!(columns[2].as_primitive::<Int64Type>().value(0), 2);
    }
}
