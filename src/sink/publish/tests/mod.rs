//! The publication protocol against an in-memory store: each step, a step repeated after a crash
//! converges to the same export, a reader following the pointer never sees a mix of runs, and
//! files pengine did not write are never deleted.

mod recovery;
mod snapshots;
mod task_files;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::memory::InMemory;

use super::objects::{data_files, put};
use super::promote::recover;
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

fn options(take_over: bool) -> PublishOptions {
    PublishOptions {
        take_over,
        ..PublishOptions::default()
    }
}

/// Publishes `parts` (staged with one line each) through the whole protocol.
async fn publish(dest: &Destination, parts: &[&str], take_over: bool) -> Result<Vec<String>> {
    publish_with(dest, parts, options(take_over), "x").await
}

/// Publishes `parts`, each holding the one user `user`, with `options`.
async fn publish_with(
    dest: &Destination,
    parts: &[&str],
    options: PublishOptions,
    user: &str,
) -> Result<Vec<String>> {
    let staging = Staging::begin(dest, DatasetType::Users, options).await?;
    let infos: Vec<PartInfo> = parts.iter().map(|p| part(p)).collect();
    for info in &infos {
        let path = staging.data_dir().join(info.name.as_str());
        let text = format!("USER_ID\n{user}\n");
        put(&dest.store, &path, text.as_bytes(), dest).await?;
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

/// Every object in the store with its bytes.
async fn all_objects(dest: &Destination) -> BTreeMap<String, Vec<u8>> {
    let objects: Vec<_> = dest.store.list(None).try_collect().await.unwrap();
    let mut all = BTreeMap::new();
    for meta in objects {
        let bytes = dest.store.get(&meta.location).await.unwrap();
        let bytes = bytes.bytes().await.unwrap().to_vec();
        all.insert(meta.location.to_string(), bytes);
    }
    all
}

/// The run folders under `.pengine/snapshots/users/`.
async fn snapshot_folders(dest: &Destination) -> Vec<String> {
    let root = dest.snapshots_dir(DatasetType::Users);
    let listing = dest.store.list_with_delimiter(Some(&root)).await.unwrap();
    let mut names: Vec<String> = listing
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .collect();
    names.sort();
    names
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
        dest.current_path(dataset),
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
    let staging = Staging::begin(&dest, DatasetType::Users, options(false))
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
async fn a_discarded_run_leaves_the_export_as_it_was() {
    let dest = memory_destination();
    publish(&dest, &["part-00000.csv", "part-00001.csv"], false)
        .await
        .unwrap();
    let export = all_objects(&dest).await;
    let staging = Staging::begin(&dest, DatasetType::Users, options(false))
        .await
        .unwrap();
    let data = staging.data_dir().join("part-00000.csv");
    put(&dest.store, &data, b"USER_ID\nother\n", &dest)
        .await
        .unwrap();
    staging.clear_data().await.unwrap();
    assert!(!all_objects(&dest).await.contains_key(data.as_ref()));
    put(&dest.store, &data, b"USER_ID\nother\n", &dest)
        .await
        .unwrap();
    staging.discard().await;
    assert_eq!(all_objects(&dest).await, export);
}

#[tokio::test]
async fn a_users_file_added_during_a_run_survives_its_commit() {
    let dest = memory_destination();
    publish(&dest, &["part-00000.csv", "part-00001.csv"], false)
        .await
        .unwrap();
    let staging = Staging::begin(&dest, DatasetType::Users, options(false))
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
