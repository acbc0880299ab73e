//! The staged files of a cluster's tasks: bad records read again by a retried task are staged
//! once.

use super::*;
use crate::sources::bad_records::{BadRecord, to_json_line};

fn lines(records: &[BadRecord]) -> Vec<u8> {
    records.iter().flat_map(to_json_line).collect()
}

#[tokio::test]
async fn bad_records_read_by_two_attempts_are_staged_once_in_file_order() {
    let dest = memory_destination();
    let staging = Staging::begin(&dest, DatasetType::Users, options(false))
        .await
        .unwrap();
    let a = |at| BadRecord::at_byte("a.json", at, "not JSON", b"{x");
    let b = BadRecord {
        line: Some(3),
        ..BadRecord::at_byte("b.csv", 12, "3 fields", b"1,2,3")
    };
    let dir = staging.task_bad_records_dir();
    // A lost executor's attempt wrote two records before it went; the retry wrote all three.
    put(
        &dest.store,
        &dir.clone().join("x.jsonl"),
        &lines(&[a(90), b.clone()]),
        &dest,
    )
    .await
    .unwrap();
    put(
        &dest.store,
        &dir.clone().join("y.jsonl"),
        &lines(&[b.clone(), a(90), a(5)]),
        &dest,
    )
    .await
    .unwrap();

    let counts = staging.gather_bad_records().await.unwrap();
    assert_eq!(counts.total, 3);
    assert_eq!(counts.by_file["a.json"], 2);
    let staged = all_objects(&dest).await;
    let file = &staged[staging.dir().join(STAGED_BAD_RECORDS).as_ref()];
    assert_eq!(file, &lines(&[a(5), a(90), b]));
    assert!(
        !staged.keys().any(|k| k.starts_with(dir.as_ref())),
        "the tasks' objects are deleted"
    );
}

#[tokio::test]
async fn no_bad_records_stage_no_file() {
    let dest = memory_destination();
    let staging = Staging::begin(&dest, DatasetType::Users, options(false))
        .await
        .unwrap();
    let counts = staging.gather_bad_records().await.unwrap();
    assert_eq!(counts.total, 0);
    assert!(
        !all_objects(&dest)
            .await
            .contains_key(staging.dir().join(STAGED_BAD_RECORDS).as_ref())
    );
}
