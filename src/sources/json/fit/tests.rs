use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Schema;

use super::*;
use crate::sources::json::direct::{DirectDecoder, Refusal};
use crate::sources::json::infer::{record_type, to_schema};
use crate::sources::json::records::{Piece, PieceKind, Window};
use crate::test_random::Random;

fn shape_of(records: &[&str]) -> Arc<Shape> {
    let mut merged = Inferred::Null;
    for record in records {
        merged = merged.merge(record_type(record.as_bytes()).unwrap());
    }
    Shape::new(merged, records.len())
}

/// What inference itself says of `record` after the sample: the verdict the check must give.
fn expected(shape: &Shape, record: &str) -> Fit {
    if let Some(reason) = json_syntax_error(record.as_bytes()) {
        return Fit::Invalid(reason);
    }
    let merged = shape
        .record
        .clone()
        .merge(record_type(record.as_bytes()).unwrap());
    match first_difference(&shape.record, &merged, "") {
        None => Fit::Fits,
        Some(path) => Fit::Misfit(path),
    }
}

#[test]
fn numbers_are_typed_as_inference_types_them() {
    let cases = [
        ("0", Inferred::Int),
        ("-0", Inferred::Float),
        ("-1", Inferred::Int),
        ("9223372036854775807", Inferred::Int),
        ("9223372036854775808", Inferred::Text),
        ("18446744073709551615", Inferred::Text),
        ("18446744073709551616", Inferred::Float),
        ("-9223372036854775808", Inferred::Int),
        ("-9223372036854775809", Inferred::Float),
        ("1.5", Inferred::Float),
        ("1e3", Inferred::Float),
        ("1E-3", Inferred::Float),
    ];
    for (literal, kind) in cases {
        let record = format!("{{\"n\":{literal}}}");
        let Inferred::Object(fields) = record_type(record.as_bytes()).unwrap() else {
            panic!("{record}")
        };
        assert_eq!(fields[0].1, kind, "inference of {literal}");
        let mut at = Cursor::new(literal);
        let (text, integral) = at.number().unwrap();
        assert_eq!(number_kind(text, integral), kind, "{literal}");
    }
}

#[test]
fn records_that_widen_the_sample_do_not_fit_and_name_the_field() {
    let shape = shape_of(&[
        r#"{"u":1,"p":2.5,"t":"a","b":true,"c":{"page":"home","n":1},"l":[1,2]}"#,
        r#"{"u":2,"p":3,"t":7,"b":false,"c":{"page":"cart"},"l":[],"z":null}"#,
    ]);
    let fits = [
        r#"{"u":3}"#,
        r#"{"u":null,"p":4,"t":true,"b":null,"c":null,"l":null}"#,
        r#"{"t":18446744073709551615,"p":-0,"c":{"n":null},"l":[null,3]}"#,
        r#"{"z":null}"#,
        "  {\"u\" : 5 , \"u\":6}\n",
    ];
    for record in fits {
        assert_eq!(
            check_record(&shape, record.as_bytes()),
            Fit::Fits,
            "{record}"
        );
    }
    let misfits = [
        (r#"{"u":"3"}"#, "u"),
        (r#"{"u":1.5}"#, "u"),
        (r#"{"u":9223372036854775808}"#, "u"),
        (r#"{"p":"x"}"#, "p"),
        (r#"{"b":1}"#, "b"),
        (r#"{"new":null}"#, "new"),
        (r#"{"c":{"campaign":"x"}}"#, "c.campaign"),
        (r#"{"c":{"n":"x"}}"#, "c.n"),
        (r#"{"c":[1]}"#, "c"),
        (r#"{"l":[1.5]}"#, "l[]"),
        (r#"{"l":1}"#, "l"),
        (r#"{"z":"was always null"}"#, "z"),
        (r#"{"t":{"a":1}}"#, "t"),
    ];
    for (record, field) in misfits {
        assert_eq!(
            check_record(&shape, record.as_bytes()),
            Fit::Misfit(field.into()),
            "{record}"
        );
    }
}

#[test]
fn a_broken_record_is_invalid_not_a_misfit() {
    let shape = shape_of(&[r#"{"u":1}"#]);
    for record in [
        r#"{"new":1,}"#,
        r#"{"u":"x" "v":2}"#,
        "{\"u\":1e400}",
        "{\"new\":\"\\ud800\"",
    ] {
        assert!(
            matches!(check_record(&shape, record.as_bytes()), Fit::Invalid(_)),
            "{record}"
        );
    }
    // What the walk is unsure of goes to inference's reader, which reads it exactly.
    assert_eq!(
        check_record(&shape, br#"{"u":1,"new\u0041":2}"#),
        Fit::Misfit("newA".into())
    );
    assert_eq!(check_record(&shape, br#"{"u":1,"\u0075":2}"#), Fit::Fits);
}

/// A random JSON value of a few kinds, with numbers at the edges of the integer types.
fn random_value(random: &mut Random, depth: usize) -> String {
    let scalar = [
        "null",
        "true",
        "0",
        "-0",
        "17",
        "-5",
        "2.5",
        "1e2",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551616",
        "-9223372036854775809",
        "\"x\"",
        "\"\\u00e9\"",
        "\"\"",
    ];
    match random.below(if depth > 2 { 1 } else { 6 }) {
        0..=3 => random.pick(&scalar).to_string(),
        4 => {
            let items: Vec<String> = (0..random.below(3))
                .map(|_| random_value(random, depth + 1))
                .collect();
            format!("[{}]", items.join(","))
        }
        _ => random_object(random, depth + 1),
    }
}

fn random_object(random: &mut Random, depth: usize) -> String {
    let keys = ["a", "b", "c", "d"];
    let members: Vec<String> = (0..random.below(4))
        .map(|_| format!("\"{}\":{}", random.pick(&keys), random_value(random, depth)))
        .collect();
    format!("{{{}}}", members.join(","))
}

#[test]
fn the_check_agrees_with_inference_on_random_records() {
    let mut random = Random(0x05EE_DF17);
    let mut misfits = 0;
    for _ in 0..300 {
        let sample: Vec<String> = (0..1 + random.below(4))
            .map(|_| random_object(&mut random, 0))
            .collect();
        let sample: Vec<&str> = sample.iter().map(String::as_str).collect();
        let shape = shape_of(&sample);
        if to_schema(&shape.record).is_err() {
            continue;
        }
        for _ in 0..20 {
            let record = random_object(&mut random, 0);
            let want = expected(&shape, &record);
            misfits += usize::from(matches!(want, Fit::Misfit(_)));
            // Which field is named, when several do not fit, may differ.
            let kind = |fit: Fit| match fit {
                Fit::Misfit(_) => Fit::Misfit(String::new()),
                other => other,
            };
            assert_eq!(
                kind(check_record(&shape, record.as_bytes())),
                kind(want),
                "{record} against {sample:?}"
            );
        }
    }
    assert!(misfits > 100, "the cases cover misfits: {misfits}");
}

/// `records`, one per line, decoded by `decoder` as the opener hands a batch over.
fn decode_lines(
    decoder: &DirectDecoder,
    records: &[&str],
) -> Result<datafusion::arrow::record_batch::RecordBatch, Refusal> {
    let mut window = Window::default();
    let mut pieces = Vec::new();
    for record in records {
        let start = window.bytes.len() as u64;
        window.bytes.extend_from_slice(record.as_bytes());
        pieces.push(Piece {
            start,
            end: window.bytes.len() as u64,
            kind: PieceKind::Object,
        });
        window.bytes.push(b'\n');
    }
    decoder.decode(&window, &pieces)
}

/// The direct decoder with a shape: the same rows as without one when the records fit, and the
/// record that does not fit named.
#[test]
fn the_direct_decoder_checks_every_field_it_steps_over() {
    let shape = shape_of(&[r#"{"u":1,"t":"a","c":{"page":"home"}}"#]);
    let schema = Arc::new(Schema::new(vec![datafusion::arrow::datatypes::Field::new(
        "u",
        datafusion::arrow::datatypes::DataType::Int64,
        true,
    )]));
    let decoder = DirectDecoder::for_schema(&schema)
        .unwrap()
        .with_shape(Arc::clone(&shape));
    let decode = |records: &[&str]| decode_lines(&decoder, records);
    let batch = decode(&[r#"{"u":1,"c":{"page":"x"}}"#, r#"{"t":"b"}"#]).unwrap();
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(
        decode(&[r#"{"u":1}"#, r#"{"u":2,"c":{"page":"x","new":1}}"#]).unwrap_err(),
        Refusal::Misfit(1, "c.new".into())
    );
    assert_eq!(
        decode(&[r#"{"u":"1"}"#]).unwrap_err(),
        Refusal::Misfit(0, "u".into())
    );
    assert_eq!(
        decode(&[r#"{"u":1,"x":2}"#]).unwrap_err(),
        Refusal::Misfit(0, "x".into())
    );
    assert!(matches!(
        decode(&[r#"{"u":1,"x":2,}"#]).unwrap_err(),
        Refusal::Invalid(_)
    ));
}

/// Fields matched in place by their quoted names are checked as looked-up ones are: a field in
/// another order, one whose name only starts like the expected one, one escaped.
#[test]
fn fields_matched_in_place_are_checked_like_the_rest() {
    let shape = shape_of(&[r#"{"u":1,"uu":"a","t":"b"}"#]);
    let schema = Arc::new(Schema::new(vec![datafusion::arrow::datatypes::Field::new(
        "t",
        datafusion::arrow::datatypes::DataType::Utf8,
        true,
    )]));
    let decoder = DirectDecoder::for_schema(&schema)
        .unwrap()
        .with_shape(Arc::clone(&shape));
    let decode = |records: &[&str]| decode_lines(&decoder, records);
    let batch = decode(&[
        r#"{"u":1,"uu":"a","t":"b"}"#,
        r#"{"uu":"c","u":2,"t":"d"}"#,
        r#"{"t" : "e" , "u":3}"#,
    ])
    .unwrap();
    let t = batch.column(0).as_string::<i32>();
    assert_eq!((t.value(0), t.value(1), t.value(2)), ("b", "d", "e"));
    assert_eq!(
        decode(&[r#"{"u":1}"#, r#"{"uu":"a","u":"x"}"#]).unwrap_err(),
        Refusal::Misfit(1, "u".into())
    );
    assert_eq!(
        decode(&[r#"{"u":1,"uuu":2}"#]).unwrap_err(),
        Refusal::Misfit(0, "uuu".into())
    );
    assert_eq!(
        decode(&[r#"{"u":1}"#, r#"{"\u0075":1}"#]).unwrap_err(),
        Refusal::Declined
    );
}
