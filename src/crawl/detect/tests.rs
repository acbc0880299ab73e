//! The sniffing and guessing of detection, on hand-written file heads and folder listings.

use super::sniff::{json_layout, sniff_encoding};
use super::*;

#[test]
fn csv_header_and_delimiter_are_guessed() {
    let with = guess_csv(b"sku;price;added\nA1;9.5;2024-01-02\nA2;3;2024-02-03\n");
    assert_eq!(with.delimiter, ';');
    assert!(with.has_header, "{}", with.header_reason);
    let without = guess_csv(b"u1,i1,1709251200\nu2,i2,1709251300\nu3,i1,1709251400\n");
    assert_eq!(without.delimiter, ',');
    assert!(!without.has_header, "{}", without.header_reason);
    let names = guess_csv(b"user,item\nu1,i1\nu2,i2\n");
    assert!(names.has_header);
    let quoted = guess_csv(b"id,text\n1,\"two\nlines\"\n2,x\n");
    assert!(quoted.newlines_in_values);
}

#[test]
fn layouts_are_told_apart() {
    let dated = folder_layout(["2024/03/01/13/a.json", "2024/03/01/14/b"].into_iter());
    assert_eq!(dated, Layout::DateFolders { depth: 4 });
    let hive = folder_layout(["dt=2024-01-01/a.parquet", "dt=2024-01-02/b.parquet"].into_iter());
    assert_eq!(
        hive,
        Layout::Partitions {
            keys: vec!["dt".into()]
        }
    );
    assert_eq!(
        folder_layout(["a.json", "b.json"].into_iter()),
        Layout::Flat
    );
    assert_eq!(
        folder_layout(["x/a.json", "b.json"].into_iter()),
        Layout::Nested
    );
}

#[test]
fn json_layouts_are_told_apart() {
    assert_eq!(json_layout(b"{\"a\":1}{\"a\":2}"), "back-to-back objects");
    assert_eq!(json_layout(b"{\"a\":1}\n{\"a\":2}\n"), "newline-delimited");
}

#[test]
fn encodings_are_sniffed_without_changing_utf8_text() {
    assert_eq!(
        sniff_encoding(b"id,city\nu1,Montr\xe9al\n"),
        Some(("windows-1252", true))
    );
    assert_eq!(
        sniff_encoding(b"\xff\xfei\x00d\x00"),
        Some(("utf-16le", false))
    );
    assert_eq!(sniff_encoding("id,city\nu1,Montréal\n".as_bytes()), None);
    // UTF-8 with one damaged byte stays UTF-8 (its record is bad, the others unchanged).
    assert_eq!(sniff_encoding(b"u1,Montr\xc3\xa9al\nu2,Qu\xe9bec\n"), None);
    // A character cut by the end of the head.
    assert_eq!(sniff_encoding(b"u1,Montr\xc3"), None);
}

#[test]
fn table_names_come_from_the_location() {
    let url = url::Url::parse("s3://b/exports/items.csv.gz").unwrap();
    assert_eq!(table_name(&url, true), "items");
    let url = url::Url::parse("s3://b/exports/Click-Events/").unwrap();
    assert_eq!(table_name(&url, false), "click_events");
}
