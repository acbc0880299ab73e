//! The publication protocol against an in-memory store: each step, a step repeated after a crash
//! converges to the same export, and files pengine did not write are never deleted.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::memory::InMemory;

use super::objects::{data_files, put};
use super::promote::{CommitRecord, recover};
use super::*;

fn memory_destination() -> Destination {
    Destination {
        store: Arc::new(InMemory::new()),
        root: Path::from("out"),
        display: "mem://out".into(),
        local_root: None,
    }
}

async fn put_text(dest: &Destination, path: &str, text: &str) {
    put(&dest.store, &Path::from(path), text.as_bytes(), dest)
        .await
        .unwrap();
}

async fn names(dest: &Destination) -> Vec<String> {
    let mut names = data_files(dest, DatasetType::Users).await.unwrap();
    names.sort();
    names
}

fn part(name: &str) -> PartInfo {
    PartInfo {
        name: name.into(),
        rows: 1,
        bytes: 1,
    }
}

/// Publishes `parts` (staged with one line each) through the whole protocol.
async fn publish(dest: &Destination, parts: &[&str], take_over: bool) -> Result<Vec<String>> {
    let staging = Staging::begin(dest, DatasetType::Users, take_over).await?;
    let infos: Vec<PartInfo> = parts.iter().map(|p| part(p)).collect();
    for info in &infos {
        let path = staging.data_dir().join(info.name.as_str());
        put(&dest.store, &path, b"USER_ID\nx\n", dest).await?;
    }
    let delete = staging.deletions(&infos).await?;
    staging
        .commit(
            &infos,
            delete.clone(),
            SideFiles::default(),
            &[],
            "{}",
            "{}",
        )
        .await?;
    Ok(delete)
}

#[test]
fn every_side_file_name_is_known_to_source_listings() {
    let dest = memory_destination();
    let dataset = DatasetType::Users;
    for path in [
        dest.schema_path(dataset),
        dest.report_path(dataset),
        dest.rejects_path(dataset),
        dest.bad_records_path(dataset),
    ] {
        let name = path.filename().unwrap();
        assert!(
            crate::sources::listing::OUTPUT_SIDE_SUFFIXES
                .iter()
                .any(|suffix| name == format!("{}{suffix}", dataset.key())),
            "{name} is not in OUTPUT_SIDE_SUFFIXES"
        );
    }
}

#[tokio::test]
async fn a_run_deletes_only_the_parts_pengine_published() {
    let dest = memory_destination();
    publish(&dest, &["part-00000.csv", "part-00001.csv"], false)
        .await
        .unwrap();
    assert_eq!(names(&dest).await, ["part-00000.csv", "part-00001.csv"]);
    let deleted = publish(&dest, &["part-00000.csv"], false).await.unwrap();
    assert_eq!(deleted, ["part-00001.csv"]);
    assert_eq!(names(&dest).await, ["part-00000.csv"]);
}

#[tokio::test]
async fn foreign_files_stop_a_run_before_anything_is_staged() {
    let dest = memory_destination();
    put_text(&dest, "out/users/README.md", "mine").await;
    let err = publish(&dest, &["part-00000.csv"], false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("README.md"), "{err}");
    assert!(matches!(err, Error::Destination(_)));
    let all: Vec<_> = dest.store.list(None).try_collect().await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    // Taken over on purpose: replaced, and the deletion is told.
    let deleted = publish(&dest, &["part-00000.csv"], true).await.unwrap();
    assert_eq!(deleted, ["README.md"]);
    assert_eq!(names(&dest).await, ["part-00000.csv"]);
}

#[tokio::test]
async fn a_file_added_after_the_run_began_is_kept() {
    let dest = memory_destination();
    publish(&dest, &["part-00000.csv", "part-00001.csv"], false)
        .await
        .unwrap();
    let staging = Staging::begin(&dest, DatasetType::Users, false)
        .await
        .unwrap();
    put_text(&dest, "out/users/late.csv", "x").await;
    let delete = staging.deletions(&[part("part-00000.csv")]).await.unwrap();
    assert_eq!(delete, ["part-00001.csv"]);
    staging.discard().await;
}

#[tokio::test]
async fn an_older_output_is_known_by_its_report() {
    let dest = memory_destination();
    put_text(&dest, "out/users/part-00000.csv", "USER_ID\nx\n").await;
    put_text(
        &dest,
        "out/users.report.json",
        r#"{"files": [{"name": "part-00000.csv", "rows": 1, "bytes": 10}]}"#,
    )
    .await;
    let deleted = publish(&dest, &["part-00001.csv"], false).await.unwrap();
    assert_eq!(deleted, ["part-00000.csv"]);
}

#[tokio::test]
async fn a_commit_record_finishes_the_promotion_in_the_next_run() {
    let dest = memory_destination();
    publish(&dest, &["part-00000.csv", "part-00001.csv"], false)
        .await
        .unwrap();
    // A run killed right after its commit point: the record names what to move and delete.
    let staging = Staging::begin(&dest, DatasetType::Users, false)
        .await
        .unwrap();
    let staged = staging.data_dir().join("part-00000.csv");
    put(&dest.store, &staged, b"USER_ID\nnew\n", &dest)
        .await
        .unwrap();
    let record = CommitRecord {
        run_id: staging.run_id.clone(),
        parts: vec![part("part-00000.csv")],
        rejects: false,
        bad_records: false,
        id_columns: Vec::new(),
        delete: vec!["part-00001.csv".into()],
    };
    let text = serde_json::to_vec(&record).unwrap();
    put(
        &dest.store,
        &dest.commit_path(DatasetType::Users),
        &text,
        &dest,
    )
    .await
    .unwrap();
    let finished = recover(&dest, DatasetType::Users).await.unwrap();
    assert_eq!(finished.as_deref(), Some(staging.run_id.as_str()));
    assert_eq!(names(&dest).await, ["part-00000.csv"]);
    let bytes = dest
        .store
        .get(&dest.data_dir(DatasetType::Users).join("part-00000.csv"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"USER_ID\nnew\n");
    let state: Vec<_> = dest
        .store
        .list(Some(&dest.state_dir(DatasetType::Users)))
        .try_collect()
        .await
        .unwrap();
    assert!(state.is_empty(), "{state:?}");
}

/// Every object in the store with its bytes.
async fn snapshot(dest: &Destination) -> std::collections::BTreeMap<String, Vec<u8>> {
    let objects: Vec<_> = dest.store.list(None).try_collect().await.unwrap();
    let mut all = std::collections::BTreeMap::new();
    for meta in objects {
        let bytes = dest.store.get(&meta.location).await.unwrap();
        let bytes = bytes.bytes().await.unwrap().to_vec();
        all.insert(meta.location.to_string(), bytes);
    }
    all
}

const RUN: &str = "20260101T000000Z-run1";

fn staged(dest: &Destination, name: &str) -> Path {
    dest.state_dir(DatasetType::Users)
        .clone()
        .join(RUN)
        .join(name)
}

/// An export of two parts, a user's `mine.txt` added to its data folder after the next run
/// began, and that run ([`RUN`]) staged and committed but not promoted: it replaces the parts
/// with one, and stages a schema, report, rejects file and id sample.
async fn committed_run(dest: &Destination) -> CommitRecord {
    publish(dest, &["part-00000.csv", "part-00001.csv"], false)
        .await
        .unwrap();
    put_text(dest, "out/users/mine.txt", "the user's").await;
    let data = staged(dest, STAGED_DATA).join("part-00000.csv");
    put(&dest.store, &data, b"USER_ID\nnew\n", dest)
        .await
        .unwrap();
    for (name, text) in [
        (STAGED_SCHEMA, "schema of run 1"),
        (STAGED_REPORT, "report of run 1"),
        (STAGED_REJECTS, "rejects of run 1"),
    ] {
        put(&dest.store, &staged(dest, name), text.as_bytes(), dest)
            .await
            .unwrap();
    }
    let ids = staged(dest, STAGED_IDS).join("USER_ID");
    put(&dest.store, &ids, b"ids of run 1", dest).await.unwrap();
    let record = CommitRecord {
        run_id: RUN.into(),
        parts: vec![part("part-00000.csv")],
        rejects: true,
        bad_records: false,
        id_columns: vec!["USER_ID".into()],
        delete: vec!["part-00001.csv".into()],
    };
    let text = serde_json::to_vec(&record).unwrap();
    put(
        &dest.store,
        &dest.commit_path(DatasetType::Users),
        &text,
        dest,
    )
    .await
    .unwrap();
    record
}

/// What [`committed_run`] must publish, checked file by file.
async fn assert_run_published(dest: &Destination) {
    let users = DatasetType::Users;
    let all = snapshot(dest).await;
    let text = |path: Path| {
        let bytes = all
            .get(path.as_ref())
            .unwrap_or_else(|| panic!("no {path}"));
        String::from_utf8(bytes.clone()).unwrap()
    };
    assert_eq!(names(dest).await, ["mine.txt", "part-00000.csv"]);
    assert_eq!(text(dest.data_dir(users).join("mine.txt")), "the user's");
    assert_eq!(
        text(dest.data_dir(users).join("part-00000.csv")),
        "USER_ID\nnew\n"
    );
    assert_eq!(text(dest.schema_path(users)), "schema of run 1");
    assert_eq!(text(dest.report_path(users)), "report of run 1");
    assert_eq!(text(dest.rejects_path(users)), "rejects of run 1");
    assert_eq!(text(dest.ids_path(users, "USER_ID")), "ids of run 1");
    assert!(text(dest.published_path(users)).contains(RUN));
    let state = dest.state_dir(users).to_string();
    let left: Vec<&String> = all.keys().filter(|k| k.starts_with(&state)).collect();
    assert!(left.is_empty(), "staging or commit record left: {left:?}");
}

#[tokio::test]
async fn a_committed_run_is_promoted_by_the_next_recovery_and_only_once() {
    let dest = memory_destination();
    committed_run(&dest).await;
    let finished = recover(&dest, DatasetType::Users).await.unwrap();
    assert_eq!(finished.as_deref(), Some(RUN));
    assert_run_published(&dest).await;
    let published = snapshot(&dest).await;
    // Nothing left to finish: a second recovery changes nothing.
    assert_eq!(recover(&dest, DatasetType::Users).await.unwrap(), None);
    assert_eq!(snapshot(&dest).await, published);
}

#[tokio::test]
async fn a_promotion_killed_at_any_step_converges_when_repeated() {
    // The promotion's steps, in order, each done by hand up to the crash.
    let users = DatasetType::Users;
    let reference = memory_destination();
    committed_run(&reference).await;
    recover(&reference, users).await.unwrap();
    let published = snapshot(&reference).await;
    for crash_after in 0..=5 {
        let dest = memory_destination();
        let record = committed_run(&dest).await;
        let steps: [(Path, Option<Path>); 5] = [
            (
                staged(&dest, STAGED_DATA).join("part-00000.csv"),
                Some(dest.data_dir(users).join("part-00000.csv")),
            ),
            (dest.data_dir(users).join("part-00001.csv"), None),
            (staged(&dest, STAGED_SCHEMA), Some(dest.schema_path(users))),
            (staged(&dest, STAGED_REPORT), Some(dest.report_path(users))),
            (
                staged(&dest, STAGED_REJECTS),
                Some(dest.rejects_path(users)),
            ),
        ];
        for (from, to) in steps.iter().take(crash_after) {
            match to {
                Some(to) => dest.store.rename(from, to).await.unwrap(),
                None => dest.store.delete(from).await.unwrap(),
            }
        }
        let finished = recover(&dest, users).await.unwrap();
        assert_eq!(finished.as_deref(), Some(RUN), "crash after {crash_after}");
        assert_run_published(&dest).await;
        assert_eq!(
            snapshot(&dest).await,
            published,
            "crash after {crash_after}"
        );
        // Killed again after the whole promotion, before the record was deleted: done again.
        let text = serde_json::to_vec(&record).unwrap();
        put(&dest.store, &dest.commit_path(users), &text, &dest)
            .await
            .unwrap();
        assert_eq!(recover(&dest, users).await.unwrap().as_deref(), Some(RUN));
        assert_eq!(
            snapshot(&dest).await,
            published,
            "repeated after {crash_after}"
        );
    }
}

#[tokio::test]
async fn leftovers_of_a_run_killed_before_its_commit_point_are_deleted_and_the_export_kept() {
    let dest = memory_destination();
    publish(&dest, &["part-00000.csv"], false).await.unwrap();
    let export = snapshot(&dest).await;
    // Staged, never committed.
    let data = staged(&dest, STAGED_DATA).join("part-00000.csv");
    put(&dest.store, &data, b"USER_ID\nhalf\n", &dest)
        .await
        .unwrap();
    assert_eq!(recover(&dest, DatasetType::Users).await.unwrap(), None);
    assert_eq!(snapshot(&dest).await, export);
    // Staging::begin recovers the same way.
    put(&dest.store, &data, b"USER_ID\nhalf\n", &dest)
        .await
        .unwrap();
    let staging = Staging::begin(&dest, DatasetType::Users, false)
        .await
        .unwrap();
    assert_eq!(snapshot(&dest).await, export);
    staging.discard().await;
}

#[tokio::test]
async fn a_discarded_run_leaves_the_export_as_it_was() {
    let dest = memory_destination();
    publish(&dest, &["part-00000.csv", "part-00001.csv"], false)
        .await
        .unwrap();
    let export = snapshot(&dest).await;
    let staging = Staging::begin(&dest, DatasetType::Users, false)
        .await
        .unwrap();
    let data = staging.data_dir().join("part-00000.csv");
    put(&dest.store, &data, b"USER_ID\nother\n", &dest)
        .await
        .unwrap();
    staging.clear_data().await.unwrap();
    assert!(!snapshot(&dest).await.contains_key(data.as_ref()));
    put(&dest.store, &data, b"USER_ID\nother\n", &dest)
        .await
        .unwrap();
    staging.discard().await;
    assert_eq!(snapshot(&dest).await, export);
}

#[tokio::test]
async fn a_users_file_added_during_a_run_survives_its_commit() {
    let dest = memory_destination();
    publish(&dest, &["part-00000.csv", "part-00001.csv"], false)
        .await
        .unwrap();
    let staging = Staging::begin(&dest, DatasetType::Users, false)
        .await
        .unwrap();
    put_text(&dest, "out/users/mine.txt", "the user's").await;
    let parts = [part("part-00002.csv")];
    let data = staging.data_dir().join("part-00002.csv");
    put(&dest.store, &data, b"USER_ID\nx\n", &dest)
        .await
        .unwrap();
    let delete = staging.deletions(&parts).await.unwrap();
    assert_eq!(delete, ["part-00000.csv", "part-00001.csv"]);
    staging
        .commit(&parts, delete, SideFiles::default(), &[], "{}", "{}")
        .await
        .unwrap();
    assert_eq!(names(&dest).await, ["mine.txt", "part-00002.csv"]);
    // The next run stops on it rather than delete it.
    let err = publish(&dest, &["part-00000.csv"], false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mine.txt"), "{err}");
    assert_eq!(names(&dest).await, ["mine.txt", "part-00002.csv"]);
}
