//! JSON schema inference over every record, not a sample.
//!
//! DataFusion decides a JSON table's schema from its first 1,000 records, so a user id that is a
//! number early and a string later fails the scan, and a field first seen in a later file is
//! dropped. pengine reads every record once (files in parallel) and merges what it sees: numbers
//! mixed with strings become text (kept exactly: the decoder copies the number's digits), integers
//! beyond 64 bits become text, integers mixed with fractions become floats.

use std::io::Read;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};

use super::framing::{Framing, RecordEnds};

/// What the records seen so far say about one value's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Inferred {
    Null,
    Bool,
    Int,
    Float,
    /// Text, or a mix of scalar kinds: read as the value's exact text.
    Text,
    List(Box<Inferred>),
    /// Fields in first-seen order.
    Object(Vec<(String, Inferred)>),
    /// An object in some records and a scalar or list in others: cannot be one Arrow type.
    Conflict(&'static str),
}

impl Inferred {
    /// Merges what two records say.
    pub fn merge(self, other: Inferred) -> Inferred {
        use Inferred::*;
        match (self, other) {
            (Null, x) | (x, Null) => x,
            (c @ Conflict(_), _) | (_, c @ Conflict(_)) => c,
            (Int, Int) => Int,
            (Int | Float, Int | Float) => Float,
            (Bool, Bool) => Bool,
            (List(a), List(b)) => List(Box::new(a.merge(*b))),
            (Object(mut a), Object(b)) => {
                for (name, kind) in b {
                    match a.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, existing)) => {
                            let merged = std::mem::replace(existing, Null).merge(kind);
                            *existing = merged;
                        }
                        None => a.push((name, kind)),
                    }
                }
                Object(a)
            }
            (Object(_), _) | (_, Object(_)) => {
                Conflict("an object in some records and not in others")
            }
            (List(_), _) | (_, List(_)) => Conflict("a list in some records and not in others"),
            // Any other mix of scalars (number and text, bool and number): exact text.
            _ => Text,
        }
    }

    fn data_type(&self, path: &str) -> Result<DataType, String> {
        Ok(match self {
            Inferred::Null | Inferred::Text => DataType::Utf8,
            Inferred::Bool => DataType::Boolean,
            Inferred::Int => DataType::Int64,
            Inferred::Float => DataType::Float64,
            Inferred::List(item) => DataType::List(std::sync::Arc::new(Field::new(
                "item",
                item.data_type(path)?,
                true,
            ))),
            Inferred::Object(fields) => DataType::Struct(fields_of(fields, path)?),
            Inferred::Conflict(why) => {
                return Err(format!(
                    "field '{path}' holds {why}; declare the table's columns in CREATE EXTERNAL \
                     TABLE (e.g. `{path} VARCHAR`) or fix the source"
                ));
            }
        })
    }
}

fn fields_of(fields: &[(String, Inferred)], parent: &str) -> Result<Fields, String> {
    fields
        .iter()
        .map(|(name, kind)| {
            let path = if parent.is_empty() {
                name.clone()
            } else {
                format!("{parent}.{name}")
            };
            Ok(Field::new(name, kind.data_type(&path)?, true))
        })
        .collect()
}

/// The Arrow schema for records whose merged type is `record`.
pub fn to_schema(record: &Inferred) -> Result<Schema, String> {
    match record {
        Inferred::Object(fields) => Ok(Schema::new(fields_of(fields, "")?)),
        Inferred::Null => Ok(Schema::empty()),
        _ => Err("the records are not JSON objects".into()),
    }
}

/// Bytes read from the file at a time; records are parsed from memory, not byte by byte.
const BLOCK: usize = 4 << 20;

/// Reads every record of one (decompressed) JSON file and merges their types. Stops after
/// `limit` records when one is given. Types are merged while parsing: no value is built.
///
/// The file is read in blocks; each block's complete records are parsed from the slice (a record
/// cut by the block's end waits for the next block), so memory is a block plus the longest record.
pub fn infer_records(reader: impl Read, limit: Option<usize>) -> Result<(Inferred, usize), String> {
    infer_in_blocks(reader, limit, BLOCK)
}

fn infer_in_blocks(
    mut reader: impl Read,
    limit: Option<usize>,
    block: usize,
) -> Result<(Inferred, usize), String> {
    let mut framing = Framing::default();
    let mut scanner = RecordEnds::default();
    let mut ends = Vec::new();
    let mut merged = Inferred::Null;
    let mut count = 0usize;
    let mut buffer: Vec<u8> = Vec::new();
    // Bytes of the file before `buffer[0]`.
    let mut consumed = 0usize;
    loop {
        let old = buffer.len();
        // Appends up to a block (without zeroing it first: files are often much smaller).
        let read = (&mut reader)
            .take(block as u64)
            .read_to_end(&mut buffer)
            .map_err(|e| format!("reading failed after {} bytes: {e}", consumed + old))?;
        if let Some(rewritten) = framing.process(&buffer[old..]) {
            buffer[old..].copy_from_slice(&rewritten);
        }
        ends.clear();
        scanner.scan(&buffer[old..], old, &mut ends);
        let at_end = read == 0;
        // Each complete record is parsed from its own slice (with the whitespace before it).
        let mut start = 0;
        for &end in &ends {
            if limit.is_some_and(|limit| count >= limit) {
                return Ok((merged, count));
            }
            merge_record(&buffer[start..end], &mut merged, count, consumed + start)?;
            count += 1;
            start = end;
        }
        if at_end {
            // Whatever follows the last complete record: nothing, or a cut or broken one.
            let rest = &buffer[start..];
            if rest.iter().any(|b| !b.is_ascii_whitespace()) && limit.is_none_or(|l| count < l) {
                merge_record(rest, &mut merged, count, consumed + start)?;
                count += 1;
            }
            return Ok((merged, count));
        }
        buffer.drain(..start);
        consumed += start;
    }
}

/// Merges the type of one record (`text`, which starts after byte `at` of the file) into
/// `merged`; `index` records came before it.
fn merge_record(text: &[u8], merged: &mut Inferred, index: usize, at: usize) -> Result<(), String> {
    let invalid = |e: serde_json::Error| {
        // serde_json's line and column count from the record, not the file: left out.
        let message = e.to_string();
        let what = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        format!(
            "invalid JSON at record {} (after byte {at}): {what}",
            index + 1
        )
    };
    let mut record = serde_json::Deserializer::from_slice(text);
    TypeSeed(merged).deserialize(&mut record).map_err(invalid)?;
    if !matches!(merged, Inferred::Object(_)) {
        return Err(format!(
            "record {} is not a JSON object (found {})",
            index + 1,
            merged.describe()
        ));
    }
    record.end().map_err(invalid)
}

impl Inferred {
    fn describe(&self) -> &'static str {
        match self {
            Inferred::Null => "null",
            Inferred::Bool => "a boolean",
            Inferred::Int | Inferred::Float => "a number",
            Inferred::Text => "a string",
            Inferred::List(_) => "an array",
            Inferred::Object(_) => "an object",
            Inferred::Conflict(_) => "mixed values",
        }
    }

    fn absorb(&mut self, seen: Inferred) {
        let current = std::mem::replace(self, Inferred::Null);
        *self = current.merge(seen);
    }
}

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Merges the type of the next JSON value into the slot it borrows.
struct TypeSeed<'a>(&'a mut Inferred);

impl<'de> DeserializeSeed<'de> for TypeSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TypeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.0.absorb(Inferred::Bool);
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.0.absorb(Inferred::Int);
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        // Beyond i64: an id, kept as its exact text.
        self.0.absorb(if i64::try_from(v).is_ok() {
            Inferred::Int
        } else {
            Inferred::Text
        });
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.0.absorb(Inferred::Float);
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.0.absorb(Inferred::Text);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut item = match self.0 {
            Inferred::List(item) => std::mem::replace(item.as_mut(), Inferred::Null),
            _ => Inferred::Null,
        };
        while seq.next_element_seed(TypeSeed(&mut item))?.is_some() {}
        self.0.absorb(Inferred::List(Box::new(item)));
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut fields = match self.0 {
            Inferred::Object(fields) => std::mem::take(fields),
            _ => Vec::new(),
        };
        while let Some(index) = map.next_key_seed(FieldIndex(&mut fields))? {
            map.next_value_seed(TypeSeed(&mut fields[index].1))?;
        }
        self.0.absorb(Inferred::Object(fields));
        Ok(())
    }
}

/// Finds (or adds) a key among the fields seen so far, without allocating for known keys.
struct FieldIndex<'a>(&'a mut Vec<(String, Inferred)>);

impl<'de> DeserializeSeed<'de> for FieldIndex<'_> {
    type Value = usize;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldIndex<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E>(self, key: &str) -> Result<usize, E> {
        if let Some(index) = self.0.iter().position(|(name, _)| name == key) {
            return Ok(index);
        }
        self.0.push((key.to_string(), Inferred::Null));
        Ok(self.0.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(text: &str) -> Schema {
        let (merged, _) = infer_records(text.as_bytes(), None).unwrap();
        to_schema(&merged).unwrap()
    }

    #[test]
    fn numbers_mixed_with_strings_become_text() {
        let s = schema_of("{\"u\":1}{\"u\":\"x\"}");
        assert_eq!(s.field(0).data_type(), &DataType::Utf8);
    }

    #[test]
    fn late_fields_and_late_text_are_seen() {
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&format!("{{\"u\":{i}}}\n"));
        }
        text.push_str("{\"u\":\"0042\",\"extra\":true}\n");
        let s = schema_of(&text);
        assert_eq!(s.field(0).data_type(), &DataType::Utf8);
        assert_eq!(s.field(1).name(), "extra");
    }

    #[test]
    fn huge_integers_stay_text_and_int_float_mix_is_float() {
        let s = schema_of("[{\"id\":18446744073709551615,\"p\":1},{\"id\":1,\"p\":2.5}]");
        assert_eq!(s.field(0).data_type(), &DataType::Utf8);
        assert_eq!(s.field(1).data_type(), &DataType::Float64);
    }

    #[test]
    fn nested_objects_merge() {
        let s = schema_of("{\"c\":{\"a\":1}}{\"c\":{\"b\":\"x\"}}");
        let DataType::Struct(fields) = s.field(0).data_type() else {
            panic!()
        };
        assert_eq!(fields.len(), 2);
    }

    #[test]
    fn object_scalar_conflict_is_a_named_error() {
        let (merged, _) = infer_records("{\"c\":{\"a\":1}}{\"c\":3}".as_bytes(), None).unwrap();
        let e = to_schema(&merged).unwrap_err();
        assert!(e.contains("field 'c'"), "{e}");
    }

    #[test]
    fn non_object_records_are_rejected() {
        assert!(infer_records("[1,2]".as_bytes(), None).is_err());
    }

    #[test]
    fn records_cut_by_block_ends_are_read_whole() {
        let layouts = [
            "{\"a\":1,\"b\":\"x\"}\n{\"a\":\"2\",\"c\":[1.5]}\n",
            "{\"a\":1,\"b\":\"x\"}{\"a\":\"2\",\"c\":[1.5]}",
            "[{\"a\":1,\"b\":\"x\"},\n {\"a\":\"2\",\"c\":[1.5]}]",
        ];
        for text in layouts {
            for block in [1, 3, 7, 64] {
                let (merged, count) = infer_in_blocks(text.as_bytes(), None, block).unwrap();
                assert_eq!(count, 2, "{text} in blocks of {block}");
                let schema = to_schema(&merged).unwrap();
                assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
                assert_eq!(schema.fields().len(), 3);
            }
        }
        let error = infer_in_blocks("{\"a\":1}\n{\"a\":}".as_bytes(), None, 4).unwrap_err();
        assert!(
            error.contains("record 2") && error.contains("after byte 7"),
            "{error}"
        );
        let error = infer_in_blocks("{\"a\":1}\n{\"a\":2".as_bytes(), None, 4).unwrap_err();
        assert!(error.contains("record 2"), "{error}");
    }
}
