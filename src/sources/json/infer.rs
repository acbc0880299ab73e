//! JSON schema inference over every record, not a sample.
//!
//! DataFusion decides a JSON table's schema from its first 1,000 records, so a user id that is a
//! number early and a string later fails the scan, and a field first seen in a later file is
//! dropped. pengine reads every record once (files in parallel) and merges what it sees: numbers
//! mixed with strings become text (kept exactly: the decoder copies the number's digits), integers
//! beyond 64 bits become text, integers mixed with fractions become floats.

use std::io::Read;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};

use super::framing::Framing;
use super::records::{Splitter, Window};
use crate::sources::bad_records::BadRecordLog;
use crate::sources::split::RangeEnd;

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

/// How to read one file for inference.
pub struct Reading<'a> {
    /// The file's name, for bad records.
    pub file: &'a str,
    /// Stop after this many records.
    pub limit: Option<usize>,
    pub max_record_bytes: u64,
    /// Where bad records go: under `fail` the first one is the error; under `skip` they are
    /// left out of the schema (the scan records them).
    pub bad_records: &'a BadRecordLog,
}

/// What inference learnt of one file.
#[derive(Debug)]
pub struct FileInference {
    pub merged: Inferred,
    /// Records read (bad ones not included).
    pub records: usize,
    /// Where the bad records start, and why they are bad (under `skip`). The scan treats the
    /// records at these offsets as bad too, whether or not its decoder could read them, so the
    /// two always agree.
    pub bad: Vec<(u64, String)>,
}

impl FileInference {
    /// What a part of a file holding no record says.
    pub fn empty() -> FileInference {
        FileInference {
            merged: Inferred::Null,
            records: 0,
            bad: Vec::new(),
        }
    }

    /// What a file says, from what its first part says and what the part after it says (byte
    /// ranges read apart, in file order): the same as reading both parts in one go.
    pub fn then(self, next: FileInference) -> FileInference {
        let mut bad = self.bad;
        bad.extend(next.bad);
        FileInference {
            merged: self.merged.merge(next.merged),
            records: self.records + next.records,
            bad,
        }
    }
}

/// Reads every record of one (decompressed) JSON file and merges their types. Types are merged while parsing: no value is built.
///
/// The file is read in blocks cut into records (see [`records`](super::records)), so memory is a
/// block plus the longest record. A bad record's types are not kept: the block is merged again
/// from before it, without it.
pub fn infer_records(reader: impl Read, reading: &Reading) -> Result<FileInference, String> {
    infer_in_blocks(reader, reading, BLOCK)
}

/// [`infer_records`] for the records of one byte range of a file ([`crate::sources::split`]):
/// `reader` reads the file from `start` (a record start) on, and the records starting at `end`'s
/// boundary or later are left to the next range. Offsets of bad records are the file's. None when
/// a record crosses a cut at the range's end ([`RangeEnd::crossed_by_record`]).
pub fn infer_range(
    reader: impl Read,
    reading: &Reading,
    start: u64,
    end: RangeEnd,
) -> Result<Option<FileInference>, String> {
    infer_span_in_blocks(reader, reading, BLOCK, start, end)
}

fn infer_in_blocks(
    reader: impl Read,
    reading: &Reading,
    block: usize,
) -> Result<FileInference, String> {
    infer_span_in_blocks(reader, reading, block, 0, RangeEnd::none())?
        .ok_or_else(|| "a whole file has no cut to cross".to_string())
}

fn infer_span_in_blocks(
    mut reader: impl Read,
    reading: &Reading,
    block: usize,
    start: u64,
    mut end: RangeEnd,
) -> Result<Option<FileInference>, String> {
    let mut framing = match start {
        0 => Framing::default(),
        _ => Framing::objects(),
    };
    let mut splitter = Splitter::new(reading.max_record_bytes);
    splitter.restart_at(start);
    let mut window = Window {
        base: start,
        bytes: Vec::new(),
    };
    let mut pieces = Vec::new();
    let mut merged = Inferred::Null;
    let mut count = 0usize;
    let mut bad_offsets = Vec::new();
    let mut at_end = false;
    while !at_end && !end.reached(splitter.pending_start(), splitter.scanned()) {
        window.drop_before(splitter.keep_from());
        let old = window.bytes.len();
        // Appends up to a block (without zeroing it first: files are often much smaller).
        let read = (&mut reader)
            .take(block as u64)
            .read_to_end(&mut window.bytes)
            .map_err(|e| format!("reading failed after {} bytes: {e}", window.end()))?;
        // The first block is whole (read_to_end fills it), so a byte-order mark is seen whole.
        if let Some(rewritten) = framing.process(&window.bytes[old..]) {
            window.bytes[old..].copy_from_slice(&rewritten);
        }
        end.observe(window.base + old as u64, &window.bytes[old..]);
        at_end = read == 0;
        pieces.clear();
        splitter.split(&window, at_end, &mut pieces);
        if pieces.iter().any(|p| crosses(&end, &window, p)) {
            return Ok(None);
        }
        // Records starting past the range are the next range's.
        pieces.retain(|p| end.includes(p.start));
        // The block's records, merged onto what came before; merged again from this snapshot
        // without a record that turns out bad.
        let before = (merged.clone(), count);
        let take = reading
            .limit
            .map_or(pieces.len(), |limit| limit.saturating_sub(count))
            .min(pieces.len());
        if let Some(both) = merge_on_two_threads(&window, &pieces[..take], &merged, reading) {
            merged = both;
            count += take;
            if take < pieces.len() || reading.limit.is_some_and(|limit| count >= limit) {
                return Ok(Some(FileInference {
                    merged,
                    records: count,
                    bad: bad_offsets,
                }));
            }
            continue;
        }
        let mut index = 0;
        while index < pieces.len() {
            if reading.limit.is_some_and(|limit| count >= limit) {
                return Ok(Some(FileInference {
                    merged,
                    records: count,
                    bad: bad_offsets,
                }));
            }
            let piece = &pieces[index];
            let failure = match piece.kind_reason(reading.max_record_bytes) {
                Some(reason) => Some(reason),
                None => merge_record(window.slice(piece.start, piece.end), &mut merged).err(),
            };
            let Some(reason) = failure else {
                count += 1;
                index += 1;
                continue;
            };
            let (bad, resync) = piece.to_bad_record(reading.file, reason, &window);
            reading.bad_records.seen_while_inferring(&bad)?;
            bad_offsets.push((piece.start, bad.reason));
            // Leave it out: merge the block again up to here, then go on after it.
            pieces.remove(index);
            if let Some(offset) = resync {
                pieces.truncate(index);
                splitter.restart_at(offset);
                splitter.split(&window, at_end, &mut pieces);
                if pieces.iter().any(|p| crosses(&end, &window, p)) {
                    return Ok(None);
                }
                pieces.retain(|p| end.includes(p.start));
            }
            (merged, count) = before.clone();
            for piece in &pieces[..index] {
                merge_record(window.slice(piece.start, piece.end), &mut merged)?;
                count += 1;
            }
        }
    }
    Ok(Some(FileInference {
        merged,
        records: count,
        bad: bad_offsets,
    }))
}

/// Records a block must hold to be merged on two threads: below it a thread's start is a
/// noticeable share of the work.
const TWO_THREADS_MIN_RECORDS: usize = 4_096;

/// `merged` with the types of `pieces` (good records, in file order) merged in, the second half
/// on a thread of its own: merging is associative and keeps fields in first-seen order, so this
/// is what merging them one by one gives. None when there are too few, or one is bad (the caller
/// then merges them one by one, setting the bad ones aside).
fn merge_on_two_threads(
    window: &Window,
    pieces: &[super::records::Piece],
    merged: &Inferred,
    reading: &Reading,
) -> Option<Inferred> {
    if pieces.len() < TWO_THREADS_MIN_RECORDS
        || pieces
            .iter()
            .any(|p| p.kind_reason(reading.max_record_bytes).is_some())
    {
        return None;
    }
    let merge_all = |pieces: &[super::records::Piece], mut into: Inferred| {
        for piece in pieces {
            merge_record(window.slice(piece.start, piece.end), &mut into).ok()?;
        }
        Some(into)
    };
    let (first, second) = pieces.split_at(pieces.len() / 2);
    let (first, second) = std::thread::scope(|scope| {
        let later = scope.spawn(|| merge_all(second, Inferred::Null));
        let first = merge_all(first, merged.clone());
        (first, later.join().ok().flatten())
    });
    Some(first?.merge(second?))
}

/// Merges the type of one record into `merged`; the error says why the record is bad.
/// Whether `piece` crosses the range's end where a whole read would not agree
/// ([`RangeEnd::crossed_by_record`]): the file is then inferred whole.
fn crosses(end: &RangeEnd, window: &Window, piece: &super::records::Piece) -> bool {
    let valid = || piece.is_valid_json(window);
    end.crossed_by_record(piece.start, piece.end, valid)
        .is_some()
}

fn merge_record(text: &[u8], merged: &mut Inferred) -> Result<(), String> {
    let invalid = |e: serde_json::Error| invalid_record(text, &e);
    let mut record = serde_json::Deserializer::from_slice(text);
    TypeSeed(merged).deserialize(&mut record).map_err(invalid)?;
    if !matches!(merged, Inferred::Object(_)) {
        return Err(format!("not a JSON object (found {})", merged.describe()));
    }
    record.end().map_err(invalid)
}

/// Why `text` (one record) is not a JSON object, in the words bad records are reported with;
/// None when it is. The judgement (and the message) schema inference gives every record, so a
/// record is bad or good the same way whether the table's columns are inferred or declared.
pub fn json_syntax_error(text: &[u8]) -> Option<String> {
    merge_record(text, &mut Inferred::Null).err()
}

/// The type of one record alone (an object), or why it is bad.
pub fn record_type(text: &[u8]) -> Result<Inferred, String> {
    let mut own = Inferred::Null;
    merge_record(text, &mut own)?;
    Ok(own)
}

/// The reason for a record serde_json refused.
fn invalid_record(text: &[u8], e: &serde_json::Error) -> String {
    if let Err(bad) = std::str::from_utf8(text) {
        let at = bad.valid_up_to();
        return format!(
            "not UTF-8: byte 0x{:02X} at {at} bytes into the record (Latin-1 or another \
             encoding?); name the file's encoding with OPTIONS ('format.encoding' \
             'windows-1252') (or 'latin1', 'utf-16le', ...), or convert the file to UTF-8",
            text[at]
        );
    }
    // serde_json's line and column count from the record, not the file: left out.
    let message = e.to_string();
    let what = message.split(" at line ").next().unwrap_or(&message);
    format!("invalid JSON: {what}")
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
    use crate::sources::bad_records::BadRecordPolicy;

    static FAIL: std::sync::LazyLock<BadRecordLog> =
        std::sync::LazyLock::new(BadRecordLog::default);

    fn reading(log: &BadRecordLog) -> Reading<'_> {
        Reading {
            file: "f.json",
            limit: None,
            max_record_bytes: 1 << 20,
            bad_records: log,
        }
    }

    fn schema_of(text: &str) -> Schema {
        let inferred = infer_records(text.as_bytes(), &reading(&FAIL)).unwrap();
        to_schema(&inferred.merged).unwrap()
    }

    /// Blocks of many records are merged on two threads; the result is the one-by-one merge's
    /// (small blocks): the same types, fields in the same order, the same count, with and
    /// without a record limit, bad records set aside alike.
    #[test]
    fn records_merged_on_two_threads_give_the_one_by_one_merge() {
        let text = |bad_at: Option<u32>| {
            let mut text = String::new();
            for i in 0..30_000u32 {
                let user = match i % 7 {
                    0 => format!("\"u-{i}\""),
                    _ => i.to_string(),
                };
                let late = match i > 25_000 {
                    true => format!(",\"late{}\":{i}.5", i % 3),
                    false => String::new(),
                };
                let nested = match i % 5 {
                    0 => format!(",\"ctx\":{{\"a\":{i},\"b{}\":[\"x\"]}}", i % 4),
                    _ => String::new(),
                };
                text.push_str(&format!("{{\"user\":{user}{nested}{late},\"n\":{i}}}\n"));
                if Some(i) == bad_at {
                    text.push_str("{\"user\": oops}\n");
                }
            }
            text
        };
        let log = BadRecordLog::new(BadRecordPolicy::Skip);
        // Without a bad record every block of the first read is merged on two threads.
        for (text, bad) in [(text(None), 0), (text(Some(17_000)), 1)] {
            for limit in [None, Some(20_000), Some(10_001), Some(30_000)] {
                let reading = Reading {
                    limit,
                    ..reading(&log)
                };
                let two = infer_in_blocks(text.as_bytes(), &reading, BLOCK).unwrap();
                let one_by_one = infer_in_blocks(text.as_bytes(), &reading, 64 << 10).unwrap();
                assert_eq!(two.merged, one_by_one.merged, "{limit:?}");
                assert_eq!(two.records, one_by_one.records, "{limit:?}");
                assert_eq!(two.bad, one_by_one.bad, "{limit:?}");
                assert_eq!(two.records, limit.unwrap_or(30_000), "{limit:?}");
                let past_bad = limit.is_none_or(|l| l > 17_000);
                assert_eq!(two.bad.len(), bad * usize::from(past_bad), "{limit:?}");
            }
        }
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
        let inferred =
            infer_records("{\"c\":{\"a\":1}}{\"c\":3}".as_bytes(), &reading(&FAIL)).unwrap();
        let e = to_schema(&inferred.merged).unwrap_err();
        assert!(e.contains("field 'c'"), "{e}");
    }

    #[test]
    fn non_object_records_are_rejected() {
        assert!(infer_records("[1,2]".as_bytes(), &reading(&FAIL)).is_err());
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
                let inferred = infer_in_blocks(text.as_bytes(), &reading(&FAIL), block).unwrap();
                assert_eq!(inferred.records, 2, "{text} in blocks of {block}");
                let schema = to_schema(&inferred.merged).unwrap();
                assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
                assert_eq!(schema.fields().len(), 3);
            }
        }
        let error =
            infer_in_blocks("{\"a\":1}\n{\"a\":}".as_bytes(), &reading(&FAIL), 4).unwrap_err();
        assert!(
            error.starts_with("byte 8: invalid JSON: expected value: `{\"a\":}`"),
            "{error}"
        );
        let error =
            infer_in_blocks("{\"a\":1}\n{\"a\":2".as_bytes(), &reading(&FAIL), 4).unwrap_err();
        assert!(
            error.contains("byte 8: the file ends inside this record"),
            "{error}"
        );
    }

    #[test]
    fn bad_records_are_left_out_of_the_schema_under_skip() {
        let skip = BadRecordLog::new(BadRecordPolicy::Skip);
        // A cut line whose text would make `a` a string, garbage, a record with a number where a
        // bracket should be, and an oversized one.
        let mut text = String::from("{\"a\":1}\n{\"a\":\"cut\n\u{1}\u{2}junk\n{\"a\":2,}\n");
        text.push_str(&format!("{{\"b\":\"{}\"}}\n{{\"a\":3}}", "x".repeat(300)));
        for block in [1, 5, 64, 4096] {
            let reading = Reading {
                max_record_bytes: 100,
                ..reading(&skip)
            };
            let inferred = infer_in_blocks(text.as_bytes(), &reading, block).unwrap();
            assert_eq!(inferred.records, 2, "blocks of {block}");
            let offsets: Vec<u64> = inferred.bad.iter().map(|(at, _)| *at).collect();
            assert_eq!(offsets, [8, 18, 25, 34], "blocks of {block}");
            let schema = to_schema(&inferred.merged).unwrap();
            assert_eq!(schema.fields().len(), 1, "{schema:?}");
            assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        }
        assert_eq!(
            skip.counts().total,
            0,
            "inference does not count (the scan does)"
        );
    }
}
