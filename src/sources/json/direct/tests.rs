//! The direct decoder against arrow-json (the opener's own decoding path) on random records.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};

use super::{DirectDecoder, Refusal};
use crate::sources::json::opener::{decode_into, new_decoder};
use crate::sources::json::records::{Piece, PieceKind, Window};
use crate::test_random::Random;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("a", DataType::Utf8View, true),
        Field::new("b", DataType::Utf8, true),
        Field::new("c", DataType::Float64, true),
        Field::new("d", DataType::Int64, true),
        Field::new("e", DataType::Boolean, true),
        Field::new("f", DataType::LargeUtf8, true),
    ]))
}

/// Records laid out one per line, as the splitter would hand them over.
fn window_of(records: &[Vec<u8>]) -> (Window, Vec<Piece>) {
    let mut window = Window::default();
    let mut pieces = Vec::new();
    for record in records {
        let start = window.bytes.len() as u64;
        window.bytes.extend_from_slice(record);
        pieces.push(Piece {
            start,
            end: window.bytes.len() as u64,
            kind: PieceKind::Object,
        });
        window.bytes.push(b'\n');
    }
    (window, pieces)
}

fn direct(
    schema: &SchemaRef,
    records: &[&str],
) -> Result<datafusion::arrow::record_batch::RecordBatch, Refusal> {
    let records: Vec<Vec<u8>> = records.iter().map(|r| r.as_bytes().to_vec()).collect();
    let (window, pieces) = window_of(&records);
    DirectDecoder::for_schema(schema)
        .expect("flat schema")
        .decode(&window, &pieces)
}

#[test]
fn reads_declared_fields_and_steps_over_the_rest() {
    let schema = schema();
    let batch = direct(
        &schema,
        &[
            r#"{"a":"x","ctx":{"p":[1,{"q":"}"}],"r":null},"c":2.5,"d":-7,"zz":"\"\\"}"#,
            r#" { "d" : 12 , "a" : 12345678901234567890 , "e" : true } "#,
            r#"{"a":"caf\u00e9 \"quoted\"\ttab","b":false,"f":-0.5e3}"#,
            r#"{}"#,
        ],
    )
    .expect("accepted");
    let a = batch.column(0).as_string_view();
    assert_eq!(a.value(0), "x");
    // A number in a text column keeps its digits exactly.
    assert_eq!(a.value(1), "12345678901234567890");
    assert_eq!(a.value(2), "café \"quoted\"\ttab");
    assert!(a.is_null(3));
    let c = batch.column(2).as_primitive::<Float64Type>();
    assert_eq!(c.value(0), 2.5);
    assert!(c.is_null(1));
    let d = batch.column(3).as_primitive::<Int64Type>();
    assert_eq!((d.value(0), d.value(1)), (-7, 12));
    assert_eq!(batch.num_rows(), 4);
}

/// Names matched in place (the column after the last one found) and names read and looked up
/// give the same rows: fields in the usual order, out of order, a name that only starts like the
/// expected one, blanks around the colon.
#[test]
fn names_matched_in_place_are_the_names_read() {
    let schema = schema();
    let batch = direct(
        &schema,
        &[
            r#"{"a":"1","b":"2","c":3.0,"d":4}"#,
            r#"{"a":"5","b":"6","c":7.0,"d":8}"#,
            r#"{"b":"10","a":"9","d":12,"c":11.0}"#,
            r#"{"ab":"x","a" : "13","bb":1,"b"  :"14"}"#,
            r#"{"d":16,"a":"15"}"#,
        ],
    )
    .expect("accepted");
    let a = batch.column(0).as_string_view();
    let b = batch.column(1).as_string::<i32>();
    let d = batch.column(3).as_primitive::<Int64Type>();
    let a: Vec<_> = (0..5).map(|i| a.value(i)).collect();
    assert_eq!(a, ["1", "5", "9", "13", "15"]);
    assert_eq!((b.value(2), b.value(3)), ("10", "14"));
    assert!(b.is_null(4));
    assert_eq!((d.value(1), d.value(2), d.value(4)), (8, 12, 16));
    // A name given twice, or escaped, is arrow-json's to read, even where matching in place
    // would have taken it.
    for record in [
        r#"{"a":"1","a":"2"}"#,
        r#"{"\u0061":"1"}"#,
        r#"{"a\"":"1"}"#,
    ] {
        assert_eq!(
            direct(&schema, &[r#"{"a":"0"}"#, record]).unwrap_err(),
            Refusal::Declined,
            "{record}"
        );
    }
}

#[test]
fn declines_what_arrow_json_must_judge() {
    let schema = schema();
    for record in [
        r#"{"c":"2.5"}"#, // a string in a numeric column
        r#"{"d":1.5}"#,   // a fraction in an integer column
        r#"{"d":99999999999999999999}"#,
        r#"{"a":1,"a":2}"#,        // a field given twice
        r#"{"a":"\ud83d\ude00"}"#, // a surrogate pair
        r#"{"a":{"b":1}}"#,        // an object in a text column
        r#"{"u\u0061":1}"#,        // an escaped key
    ] {
        assert_eq!(
            direct(&schema, &[r#"{"a":"fine"}"#, record]).unwrap_err(),
            Refusal::Declined,
            "{record}"
        );
    }
}

#[test]
fn names_the_records_that_are_not_json() {
    let schema = schema();
    let records = [
        r#"{"a":"\x"}"#, // not an escape
        r#"{"a":"fine"}"#,
        r#"{"a":01}"#, // not a JSON number
        r#"{"a":1,}"#, // a trailing comma (arrow-json lets it through)
        r#"{"a":1} x"#,
        r#"{"a":1"#,
        r#"{"x":tru}"#,
    ];
    let Err(Refusal::Invalid(invalid)) = direct(&schema, &records) else {
        panic!("not refused as invalid");
    };
    let indexes: Vec<usize> = invalid.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [0, 2, 3, 4, 5, 6]);
    assert!(
        invalid
            .iter()
            .all(|(_, reason)| reason.starts_with("invalid JSON"))
    );
    let bad_utf8 = vec![b"{\"a\":\"caf\xe9\"}".to_vec()];
    let (window, pieces) = window_of(&bad_utf8);
    let Err(Refusal::Invalid(invalid)) = DirectDecoder::for_schema(&schema)
        .unwrap()
        .decode(&window, &pieces)
    else {
        panic!("not refused as invalid");
    };
    assert!(
        invalid[0].1.starts_with("not UTF-8: byte 0xE9"),
        "{invalid:?}"
    );
}

#[test]
fn only_flat_nullable_schemas() {
    let nested = Arc::new(Schema::new(vec![Field::new(
        "t",
        DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Nanosecond, None),
        true,
    )]));
    assert!(DirectDecoder::for_schema(&nested).is_none());
    let required = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, false)]));
    assert!(DirectDecoder::for_schema(&required).is_none());
}

const PLAIN_STRINGS: &[&str] = &[
    "",
    "x",
    "SKU-000001",
    "naïve café",
    "😀 emoji",
    "twelve chars",
    "a longer string of text",
    r#"esc \" \\ \/ \n \t \b \f \r"#,
    r"\u00e9\u0041\u4e2d",
    "comma, and: colon {}[]",
];
const WILD_STRINGS: &[&str] = &[
    r"\ud83d\ude00",
    r"\ud83d",
    r"\x",
    r"\u12G4",
    "raw\u{1}control",
];
const PLAIN_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "7",
    "-42",
    "123456789012",
    "9223372036854775807",
    "-9223372036854775808",
    "2.5",
    "-0.125",
    "1e3",
    "1E-3",
    "6.02e+23",
    "0.1",
    "1.7976931348623157e308",
];
const WILD_NUMBERS: &[&str] = &[
    "01",
    "1.",
    "-",
    "1e",
    "1.2.3",
    "+1",
    "1e400",
    "99999999999999999999",
    "--1",
    "1-2",
    ".5",
];

/// One value: `wild` adds what the direct decoder declines or arrow-json refuses.
fn value(r: &mut Random, depth: usize, wild: bool) -> String {
    let kinds = if depth < 3 { 7 } else { 5 };
    match r.below(kinds) {
        0 => {
            let s = if wild && r.below(4) == 0 {
                r.pick(WILD_STRINGS)
            } else {
                r.pick(PLAIN_STRINGS)
            };
            format!("\"{s}\"")
        }
        1 => (if wild && r.below(4) == 0 {
            r.pick(WILD_NUMBERS)
        } else {
            r.pick(PLAIN_NUMBERS)
        })
        .to_string(),
        2 => r.pick(&["true", "false"]).to_string(),
        3 => "null".to_string(),
        4 => (if wild {
            r.pick(&["nul", "tru", "fals", "True"])
        } else {
            "null"
        })
        .to_string(),
        5 => {
            let n = r.below(4);
            let items: Vec<String> = (0..n).map(|_| value(r, depth + 1, wild)).collect();
            format!("[{}]", items.join(","))
        }
        _ => object(r, depth + 1, wild),
    }
}

const KEYS: &[&str] = &["a", "b", "c", "d", "e", "f", "x", "ctx", "A", "a b", "é"];

fn object(r: &mut Random, depth: usize, wild: bool) -> String {
    let n = r.below(8);
    let mut keys: Vec<&str> = Vec::new();
    let mut members = Vec::new();
    for _ in 0..n {
        let key = r.pick(KEYS);
        if keys.contains(&key) && !(wild && r.below(3) == 0) {
            continue;
        }
        keys.push(key);
        let blank = if r.below(4) == 0 {
            r.pick(&[" ", "\n", "\t ", "\r\n"])
        } else {
            ""
        };
        let v = if depth == 0 && ["c", "d", "e"].contains(&key) && !wild {
            // Typed columns get values of their type (or null) in plain records.
            match key {
                "c" => r.pick(&["2.5", "-1", "1e3", "null", "0"]).to_string(),
                "d" => r.pick(&["12", "-7", "0", "null"]).to_string(),
                _ => r.pick(&["true", "false", "null"]).to_string(),
            }
        } else if depth == 0 && ["a", "b", "f"].contains(&key) && !wild {
            match r.below(4) {
                0 => r.pick(PLAIN_NUMBERS).to_string(),
                1 => r.pick(&["true", "false", "null"]).to_string(),
                _ => format!("\"{}\"", r.pick(PLAIN_STRINGS)),
            }
        } else {
            value(r, depth, wild)
        };
        members.push(format!("{blank}\"{key}\"{blank}:{blank}{v}{blank}"));
    }
    let sep = if wild && r.below(10) == 0 { ",," } else { "," };
    let tail = if wild && r.below(10) == 0 && !members.is_empty() {
        ","
    } else {
        ""
    };
    format!("{{{}{tail}}}", members.join(sep))
}

/// A byte changed, removed or added somewhere (sometimes one that is not UTF-8).
fn mutate(r: &mut Random, record: &mut Vec<u8>) {
    if record.is_empty() {
        return;
    }
    let at = r.below(record.len());
    const BYTES: &[u8] = b"{}[]\",:\\ 0e-.atn\xff\xc3";
    let byte = BYTES[r.below(BYTES.len())];
    match r.below(3) {
        0 => record[at] = byte,
        1 => {
            record.remove(at);
        }
        _ => record.insert(at, byte),
    }
}

fn arrow_json(
    schema: &SchemaRef,
    window: &Window,
    pieces: &[Piece],
) -> Option<datafusion::arrow::record_batch::RecordBatch> {
    let mut decoder = new_decoder(schema, pieces.len().max(1)).expect("decoder");
    match decode_into(&mut decoder, window, pieces) {
        Ok(Some(batch)) if batch.num_rows() == pieces.len() => Some(batch),
        _ => None,
    }
}

#[test]
fn same_batches_as_arrow_json_and_declines_what_it_refuses() {
    let schema = schema();
    let decoder = DirectDecoder::for_schema(&schema).unwrap();
    let mut r = Random(0x2545_f491_4f6c_dd1d);
    let (mut accepted, mut declined_plain, mut arrow_refused) = (0, 0, 0);
    let mut not_json_batches = 0;
    for case in 0..6000 {
        let wild = case % 2 == 1;
        let records: Vec<Vec<u8>> = (0..1 + r.below(6))
            .map(|_| {
                let mut record = object(&mut r, 0, wild).into_bytes();
                if wild && r.below(3) == 0 {
                    mutate(&mut r, &mut record);
                }
                record
            })
            .collect();
        let (window, pieces) = window_of(&records);
        let refusal = decoder.decode(&window, &pieces).err();
        let ours = decoder.decode(&window, &pieces).ok();
        let theirs = arrow_json(&schema, &window, &pieces);
        let shown = || String::from_utf8_lossy(&window.bytes).into_owned();
        // Exactly the records serde_json refuses are named as not JSON.
        let not_json: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| crate::sources::json::infer::json_syntax_error(r).is_some())
            .map(|(i, _)| i)
            .collect();
        match &refusal {
            Some(Refusal::Invalid(invalid)) => {
                let named: Vec<usize> = invalid.iter().map(|(i, _)| *i).collect();
                assert_eq!(named, not_json, "case {case}: {}", shown());
                not_json_batches += 1;
            }
            _ => assert!(not_json.is_empty(), "case {case}: {not_json:?} not named"),
        }
        match (&ours, &theirs) {
            (Some(a), Some(b)) => {
                assert_eq!(a, b, "case {case}: {}", shown());
                accepted += 1;
            }
            (Some(_), None) => panic!("case {case}: accepted what arrow-json refuses: {}", shown()),
            (None, None) => arrow_refused += 1,
            (None, Some(_)) => {}
        }
        if !wild && ours.is_none() {
            declined_plain += 1;
            eprintln!("declined plain: {}", shown());
        }
    }
    // Plain records (what exports hold) are all decoded directly, and the wild ones exercise
    // both kinds of refusal.
    assert_eq!(declined_plain, 0);
    assert!(accepted > 3000, "{accepted}");
    assert!(arrow_refused > 300, "{arrow_refused}");
    assert!(not_json_batches > 300, "{not_json_batches}");
}
