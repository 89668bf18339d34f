//! The schema pass over a GeoJSON file: every feature's id and properties classified
//! (no values kept, no geometry decoded), giving the columns and their types before
//! the first batch is built, and the crs members wherever they are in the file.
//! Memory stays bounded by one batch of feature texts.

use std::collections::HashMap;
use std::path::Path;

use arrow_schema::{DataType, Field};
use rayon::prelude::*;

use super::json::{Json, JsonResult, Shallow};
use super::scan::{FeatureBatch, Feeder, Filled};
use crate::columns::parse_iso_date;
use crate::error::{Error, Location, Result};
use crate::text_source::TextSource;

/// Features classified per rayon task.
const CHUNK: usize = 2048;

/// The Arrow type a property (or the feature id) becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyKind {
    Bool,
    Int64,
    Float64,
    Date32,
    /// Strings; numbers, booleans and nested values as their JSON text.
    Utf8,
}

impl PropertyKind {
    pub fn data_type(&self) -> DataType {
        match self {
            PropertyKind::Bool => DataType::Boolean,
            PropertyKind::Int64 => DataType::Int64,
            PropertyKind::Float64 => DataType::Float64,
            PropertyKind::Date32 => DataType::Date32,
            PropertyKind::Utf8 => DataType::Utf8,
        }
    }
}

/// The kinds of value seen in one column.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    bool: bool,
    int: bool,
    float: bool,
    date: bool,
    text: bool,
    nested: bool,
}

impl Seen {
    fn add(&mut self, value: Shallow<'_>) {
        match value {
            Shallow::Null => {}
            Shallow::Bool => self.bool = true,
            Shallow::Int => self.int = true,
            Shallow::Float => self.float = true,
            Shallow::Str { raw, escaped } => {
                // A date with escapes in it is text (the builder would still take it).
                let date = !escaped && raw.len() == 10 && parse_iso_date(raw).is_some();
                if date {
                    self.date = true;
                } else {
                    self.text = true;
                }
            }
            Shallow::Nested => self.nested = true,
        }
    }

    fn merge(&mut self, other: Seen) {
        self.bool |= other.bool;
        self.int |= other.int;
        self.float |= other.float;
        self.date |= other.date;
        self.text |= other.text;
        self.nested |= other.nested;
    }

    /// Whether any non-null value was seen.
    pub fn any(&self) -> bool {
        self.bool || self.int || self.float || self.date || self.text || self.nested
    }

    /// The narrowest type holding every value: int widens to float, anything mixed
    /// (or nested) to text; a column of nulls is text.
    pub fn kind(&self) -> PropertyKind {
        let numbers = self.int || self.float;
        let others = self.text || self.nested;
        match (self.bool, numbers, self.date, others) {
            (true, false, false, false) => PropertyKind::Bool,
            (false, true, false, false) if self.float => PropertyKind::Float64,
            (false, true, false, false) => PropertyKind::Int64,
            (false, false, true, false) => PropertyKind::Date32,
            _ => PropertyKind::Utf8,
        }
    }
}

/// What the schema pass found.
#[derive(Debug, Default)]
pub struct Inferred {
    /// The feature ids' kinds (never `any()` when no feature has an id).
    pub id: Seen,
    /// Properties in the order they first appear.
    pub properties: Vec<(String, Seen)>,
    index: HashMap<String, usize>,
    pub features: u64,
    /// The JSON text of every top-level crs member.
    pub crs: Vec<Vec<u8>>,
}

impl Inferred {
    fn slot(&mut self, key: &str, hint: usize) -> usize {
        if self
            .properties
            .get(hint)
            .is_some_and(|(name, _)| name == key)
        {
            return hint;
        }
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let i = self.properties.len();
        self.properties.push((key.to_string(), Seen::default()));
        self.index.insert(key.to_string(), i);
        i
    }

    /// Adds one feature's id and properties.
    fn classify(&mut self, text: &str) -> JsonResult<()> {
        let mut json = Json::new(text);
        json.begin_object()?;
        let mut first = true;
        while let Some(key) = json.next_key(&mut first)? {
            match key.as_ref() {
                "id" => self.id.add(json.shallow()?),
                "properties" => {
                    if json.null() {
                        continue;
                    }
                    json.begin_object()?;
                    let mut first = true;
                    let mut hint = 0;
                    while let Some(key) = json.next_key(&mut first)? {
                        let slot = self.slot(&key, hint);
                        hint = slot + 1;
                        let value = json.shallow()?;
                        if let Some((_, seen)) = self.properties.get_mut(slot) {
                            seen.add(value);
                        }
                    }
                }
                _ => json.skip(0)?,
            }
        }
        json.end()
    }

    /// Folds in what a later part of the file showed.
    fn merge(&mut self, other: Inferred) {
        self.id.merge(other.id);
        for (key, seen) in other.properties {
            let slot = self.slot(&key, usize::MAX);
            if let Some((_, mine)) = self.properties.get_mut(slot) {
                mine.merge(seen);
            }
        }
        self.features += other.features;
    }

    /// The column layout: the feature id column when any feature has an id (named
    /// `id`, or `feature_id` when a property is called `id`, with a number added
    /// while that is taken too), then the properties.
    pub fn layout(&self) -> Layout {
        let id = self.id.any().then(|| {
            let taken = |name: &str| self.index.contains_key(name);
            let mut name = "id".to_string();
            let mut n = 1;
            if taken(&name) {
                name = "feature_id".to_string();
            }
            while taken(&name) {
                name = format!("feature_id_{n}");
                n += 1;
            }
            (name, self.id.kind())
        });
        let properties = self
            .properties
            .iter()
            .map(|(name, seen)| (name.clone(), seen.kind()))
            .collect();
        Layout::new(id, properties)
    }
}

/// Classifies every feature of `source`, reading `batch_size` features at a time
/// (the next batch is scanned while the current one is classified).
pub fn infer(source: &TextSource, batch_size: usize) -> Result<Inferred> {
    let path = source.path();
    let mut feeder = Feeder::new(source.open()?, path, batch_size.max(CHUNK));
    let mut inferred = Inferred::default();
    let mut current = feeder.next(FeatureBatch::default())?;
    let mut spare = FeatureBatch::default();
    loop {
        let fetch = !feeder.exhausted();
        let (next, parts) = rayon::join(
            || fetch.then(|| feeder.next(std::mem::take(&mut spare))),
            || classify_batch(&current, path),
        );
        for part in parts? {
            inferred.merge(part);
        }
        inferred.crs.append(&mut current.batch.crs);
        match next.transpose()? {
            Some(next) => spare = std::mem::replace(&mut current, next).batch,
            None => break,
        }
    }
    Ok(inferred)
}

/// The error of a feature whose text is not UTF-8.
pub fn not_utf8(path: &Path, number: u64) -> Error {
    Error::format(
        Location::feature(path, number),
        "invalid JSON: the text is not valid UTF-8",
    )
}

fn classify_batch(filled: &Filled, path: &Path) -> Result<Vec<Inferred>> {
    let text = filled
        .batch
        .utf8()
        .map_err(|i| not_utf8(path, filled.first_number + i as u64))?;
    filled
        .batch
        .spans
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(chunk, spans)| {
            let first_number = filled.first_number + (chunk * CHUNK) as u64;
            let mut part = Inferred::default();
            for (i, &(start, end)) in spans.iter().enumerate() {
                let text = text.get(start..end).unwrap_or_default();
                part.classify(text).map_err(|message| {
                    Error::format(Location::feature(path, first_number + i as u64), message)
                })?;
                part.features += 1;
            }
            Ok(part)
        })
        .collect()
}

/// The attribute columns of a GeoJSON table: names, types, and the lookup from a
/// property name to its column.
#[derive(Debug)]
pub struct Layout {
    names: Vec<String>,
    kinds: Vec<PropertyKind>,
    has_id: bool,
    lookup: HashMap<String, usize>,
}

impl Layout {
    pub fn new(
        id: Option<(String, PropertyKind)>,
        properties: Vec<(String, PropertyKind)>,
    ) -> Self {
        let has_id = id.is_some();
        let first = usize::from(has_id);
        let lookup = properties
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), first + i))
            .collect();
        let (names, kinds) = id.into_iter().chain(properties).unzip();
        Self {
            names,
            kinds,
            has_id,
            lookup,
        }
    }

    pub fn kinds(&self) -> impl Iterator<Item = PropertyKind> + '_ {
        self.kinds.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The column of the feature id, if there is one (always the first).
    pub fn id_column(&self) -> Option<usize> {
        self.has_id.then_some(0)
    }

    /// The column of the first property.
    pub fn first_property(&self) -> usize {
        usize::from(self.has_id)
    }

    /// The column of property `key`; `hint` is checked first (features usually list
    /// their properties in the same order).
    #[inline]
    pub fn find(&self, key: &str, hint: usize) -> Option<usize> {
        if hint >= self.first_property() && self.names.get(hint).is_some_and(|name| name == key) {
            return Some(hint);
        }
        self.lookup.get(key).copied()
    }

    pub fn name(&self, column: usize) -> &str {
        self.names.get(column).map_or("", String::as_str)
    }

    pub fn kind(&self, column: usize) -> PropertyKind {
        self.kinds
            .get(column)
            .copied()
            .unwrap_or(PropertyKind::Utf8)
    }

    pub fn fields(&self) -> Vec<Field> {
        self.names
            .iter()
            .zip(&self.kinds)
            .map(|(name, kind)| Field::new(name.clone(), kind.data_type(), true))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inferred(features: &[&str]) -> Inferred {
        let mut all = Inferred::default();
        for text in features {
            let mut part = Inferred::default();
            part.classify(text).unwrap();
            all.merge(part);
        }
        all
    }

    #[test]
    fn types_widen_across_features() {
        let all = inferred(&[
            r#"{"id":1,"properties":{"i":1,"f":1,"s":"a","d":"2024-01-31","b":true,"n":null,"o":{"k":1}}}"#,
            r#"{"id":"x","properties":{"i":2,"f":2.5,"s":3,"d":"2024-02-30","b":false,"late":1}}"#,
        ]);
        let layout = all.layout();
        let columns: Vec<(&str, PropertyKind)> = (0..layout.len())
            .map(|i| (layout.name(i), layout.kind(i)))
            .collect();
        assert_eq!(
            columns,
            [
                ("id", PropertyKind::Utf8),
                ("i", PropertyKind::Int64),
                ("f", PropertyKind::Float64),
                ("s", PropertyKind::Utf8),
                ("d", PropertyKind::Utf8),
                ("b", PropertyKind::Bool),
                ("n", PropertyKind::Utf8),
                ("o", PropertyKind::Utf8),
                ("late", PropertyKind::Int64),
            ]
        );
        assert_eq!(layout.find("late", 0), Some(8));
        assert_eq!(layout.find("i", 1), Some(1));
    }

    #[test]
    fn the_feature_id_column_avoids_property_names() {
        let all = inferred(&[r#"{"id":7,"properties":{"id":"a","feature_id":1}}"#]);
        let layout = all.layout();
        assert_eq!(layout.name(0), "feature_id_1");
        assert_eq!(layout.kind(0), PropertyKind::Int64);
        assert_eq!(layout.find("id", 1), Some(1));
        let all = inferred(&[r#"{"id":null,"properties":{"a":1}}"#]);
        assert_eq!(all.layout().id_column(), None);
    }
}
