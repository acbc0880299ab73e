//! Crashes after the commit point: the next recovery finishes the promotion, from any step and
//! only once; a run killed before it leaves nothing; an older version's commit record is
//! finished the way that version promoted.

use super::*;
use crate::sink::publish::legacy::CommitRecord;
use crate::sink::publish::pointer::{Current, MirrorPlan};
use crate::sink::publish::promote::promote;

const RUN: &str = "20990101T000000Z-run1";

/// An export of two parts, a user's `mine.txt` added to its data folder after the next run
/// began, and that run ([`RUN`]) staged and committed (its pointer written) but not promoted: it
/// replaces the parts with one, and stages a schema, report, rejects file and id sample.
async fn committed_run(dest: &Destination) -> Current {
    publish(dest, &["part-00000.csv", "part-00001.csv"], false)
        .await
        .unwrap();
    let mut staging = Staging::begin(dest, DatasetType::Users, options(false))
        .await
        .unwrap();
    staging.run_id = RUN.into();
    staging.dir = dest.snapshot_dir(DatasetType::Users, RUN);
    put_text(dest, "out/users/mine.txt", "the user's").await;
    let data = staging.data_dir().join("part-00000.csv");
    put(&dest.store, &data, b"USER_ID\nnew\n", dest)
        .await
        .unwrap();
    for (name, text) in [
        (STAGED_SCHEMA, "schema of run 1"),
        (STAGED_REPORT, "report of run 1"),
        (STAGED_REJECTS, "rejects of run 1"),
    ] {
        put(
            &dest.store,
            &staging.dir().join(name),
            text.as_bytes(),
            dest,
        )
        .await
        .unwrap();
    }
    let ids = staging.dir().join(STAGED_IDS).join("USER_ID");
    put(&dest.store, &ids, b"ids of run 1", dest).await.unwrap();
    let parts = [part("part-00000.csv")];
    let delete = staging.deletions(&parts).await.unwrap();
    assert_eq!(delete, ["part-00001.csv"]);
    let mirror = MirrorPlan {
        delete,
        rejects: true,
        bad_records: false,
        id_columns: vec!["USER_ID".into()],
    };
    let current = staging.pointer(&parts, mirror);
    let text = pointer::to_bytes(&current).unwrap();
    put(
        &dest.store,
        &dest.current_path(DatasetType::Users),
        &text,
        dest,
    )
    .await
    .unwrap();
    current
}

/// The objects a user sees: everything but the snapshots and the pointer (which name the
/// first, random, run id; [`assert_run_published`] checks them).
async fn published(dest: &Destination) -> BTreeMap<String, Vec<u8>> {
    let snapshots = dest.snapshots_dir(DatasetType::Users).to_string();
    let pointer = dest.current_path(DatasetType::Users).to_string();
    let mut all = all_objects(dest).await;
    all.retain(|path, _| !path.starts_with(&snapshots) && *path != pointer);
    all
}

/// What [`committed_run`] must publish, checked file by file.
async fn assert_run_published(dest: &Destination, current: &Current) {
    let users = DatasetType::Users;
    let all = all_objects(dest).await;
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
    let pointer: Current = serde_json::from_str(&text(dest.current_path(users))).unwrap();
    assert_eq!(&pointer, current, "the pointer changed after its commit");
    // The run's snapshot and the one before it (kept by default), nothing else.
    let mut kept: Vec<String> = current.kept_runs().map(str::to_string).collect();
    kept.sort();
    assert_eq!(snapshot_folders(dest).await, kept);
    assert_eq!(kept.len(), 2);
}

#[tokio::test]
async fn a_committed_run_is_promoted_by_the_next_recovery_and_only_once() {
    let dest = memory_destination();
    let current = committed_run(&dest).await;
    let finished = recover(&dest, DatasetType::Users).await.unwrap();
    assert_eq!(finished.as_deref(), Some(RUN));
    assert_run_published(&dest, &current).await;
    let everything = all_objects(&dest).await;
    // Nothing left to finish: a second recovery changes nothing.
    assert_eq!(recover(&dest, DatasetType::Users).await.unwrap(), None);
    assert_eq!(all_objects(&dest).await, everything);
}

#[tokio::test]
async fn a_promotion_killed_at_any_step_converges_when_repeated() {
    // The promotion's steps, in order, each done by hand up to the crash.
    let users = DatasetType::Users;
    let reference = memory_destination();
    committed_run(&reference).await;
    recover(&reference, users).await.unwrap();
    let expected = published(&reference).await;
    for crash_after in 0..=6 {
        let dest = memory_destination();
        let current = committed_run(&dest).await;
        let snapshot = dest.snapshot_dir(users, RUN);
        let steps: [(Path, Option<Path>); 6] = [
            (
                dest.snapshot_data_dir(users, RUN).join("part-00000.csv"),
                Some(dest.data_dir(users).join("part-00000.csv")),
            ),
            (dest.data_dir(users).join("part-00001.csv"), None),
            (
                snapshot.clone().join(STAGED_SCHEMA),
                Some(dest.schema_path(users)),
            ),
            (
                snapshot.clone().join(STAGED_IDS).join("USER_ID"),
                Some(dest.ids_path(users, "USER_ID")),
            ),
            (
                snapshot.clone().join(STAGED_REJECTS),
                Some(dest.rejects_path(users)),
            ),
            (
                snapshot.clone().join(STAGED_REPORT),
                Some(dest.report_path(users)),
            ),
        ];
        for (from, to) in steps.iter().take(crash_after) {
            match to {
                Some(to) => dest.store.copy(from, to).await.unwrap(),
                None => dest.store.delete(from).await.unwrap(),
            }
        }
        let finished = recover(&dest, users).await.unwrap();
        assert_eq!(finished.as_deref(), Some(RUN), "crash after {crash_after}");
        assert_run_published(&dest, &current).await;
        assert_eq!(
            published(&dest).await,
            expected,
            "crash after {crash_after}"
        );
        // Killed again at the very end (before the old snapshots went): done again, the same.
        promote(&dest, users, &current).await.unwrap();
        assert_eq!(
            published(&dest).await,
            expected,
            "repeated after {crash_after}"
        );
    }
}

#[tokio::test]
async fn leftovers_of_a_run_killed_before_its_commit_point_are_deleted_and_the_export_kept() {
    let dest = memory_destination();
    publish(&dest, &["part-00000.csv"], false).await.unwrap();
    let export = all_objects(&dest).await;
    // Staged, never committed: no pointer names it.
    let data = dest
        .snapshot_data_dir(DatasetType::Users, RUN)
        .join("part-00000.csv");
    put(&dest.store, &data, b"USER_ID\nhalf\n", &dest)
        .await
        .unwrap();
    assert_eq!(recover(&dest, DatasetType::Users).await.unwrap(), None);
    assert_eq!(all_objects(&dest).await, export);
    // Staging::begin recovers the same way.
    put(&dest.store, &data, b"USER_ID\nhalf\n", &dest)
        .await
        .unwrap();
    let staging = Staging::begin(&dest, DatasetType::Users, options(false))
        .await
        .unwrap();
    assert_eq!(all_objects(&dest).await, export);
    staging.discard().await;
    assert_eq!(all_objects(&dest).await, export);
}

#[tokio::test]
async fn a_data_folder_published_after_the_pointer_is_not_rolled_back() {
    // An older pengine (without snapshots) published over an output that has a pointer: its
    // manifest names a later run, and recovery must not copy the pointer's older run over it.
    let dest = memory_destination();
    publish(&dest, &["part-00000.csv"], false).await.unwrap();
    put_text(&dest, "out/users/part-00000.csv", "USER_ID\nlater\n").await;
    put_text(
        &dest,
        "out/.pengine/published/users.json",
        r#"{"run_id": "20991231T000000Z-older", "parts": ["part-00000.csv"]}"#,
    )
    .await;
    let before = all_objects(&dest).await;
    assert_eq!(recover(&dest, DatasetType::Users).await.unwrap(), None);
    assert_eq!(all_objects(&dest).await, before);
}

#[tokio::test]
async fn a_commit_record_of_an_older_version_is_finished_as_that_version_promoted() {
    let dest = memory_destination();
    let users = DatasetType::Users;
    // An output of a version before snapshots: two parts, a manifest, no pointer, and a run
    // killed right after its commit record.
    put_text(&dest, "out/users/part-00000.csv", "USER_ID\nold\n").await;
    put_text(&dest, "out/users/part-00001.csv", "USER_ID\nold\n").await;
    put_text(
        &dest,
        "out/.pengine/published/users.json",
        r#"{"run_id": "20250101T000000Z-old0", "parts": ["part-00000.csv", "part-00001.csv"]}"#,
    )
    .await;
    let run = "20250102T000000Z-old1";
    let staged = dest
        .state_dir(users)
        .clone()
        .join(run)
        .join(STAGED_DATA)
        .join("part-00000.csv");
    put(&dest.store, &staged, b"USER_ID\nnew\n", &dest)
        .await
        .unwrap();
    let record = CommitRecord {
        run_id: run.into(),
        parts: vec![part("part-00000.csv")],
        rejects: false,
        bad_records: false,
        id_columns: Vec::new(),
        delete: vec!["part-00001.csv".into()],
    };
    let text = serde_json::to_vec(&record).unwrap();
    put(&dest.store, &dest.commit_path(users), &text, &dest)
        .await
        .unwrap();
    let finished = recover(&dest, users).await.unwrap();
    assert_eq!(finished.as_deref(), Some(run));
    assert_eq!(names(&dest).await, ["part-00000.csv"]);
    let all = all_objects(&dest).await;
    assert_eq!(all["out/users/part-00000.csv"], b"USER_ID\nnew\n");
    let state = dest.state_dir(users).to_string();
    let left: Vec<&String> = all.keys().filter(|k| k.starts_with(&state)).collect();
    assert!(left.is_empty(), "{left:?}");
    // The next run of this version takes it from there.
    publish(&dest, &["part-00000.csv"], false).await.unwrap();
    assert_eq!(names(&dest).await, ["part-00000.csv"]);
}
