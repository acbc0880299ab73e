//! Snapshots: a reader that follows the pointer sees one whole run at every step of a
//! publication; old snapshots go after the configured number; increments extend the chain.

use super::*;
use crate::sink::publish::pointer::{Current, MirrorPlan, RunKind, read_current};
use crate::sink::publish::promote::promote;

/// What a reader that follows the pointer sees: the run ids it names and every line of their
/// parts (header left out).
async fn read_via_pointer(dest: &Destination) -> (Vec<String>, Vec<String>) {
    let users = DatasetType::Users;
    let current = read_current(dest, users).await.unwrap().unwrap();
    let mut runs = Vec::new();
    let mut lines = Vec::new();
    for run in &current.chain {
        runs.push(run.run_id.clone());
        let data = dest.snapshot_data_dir(users, &run.run_id);
        let listed: Vec<_> = dest.store.list(Some(&data)).try_collect().await.unwrap();
        assert_eq!(listed.len(), run.parts.len(), "snapshot {}", run.run_id);
        for meta in listed {
            let bytes = dest.store.get(&meta.location).await.unwrap();
            let text = String::from_utf8(bytes.bytes().await.unwrap().to_vec()).unwrap();
            lines.extend(text.lines().skip(1).map(str::to_string));
        }
    }
    lines.sort();
    (runs, lines)
}

/// A first run of two parts, each holding the one user `user`.
async fn publish_two_parts_of(dest: &Destination, user: &str) {
    let parts = ["part-00000.csv", "part-00001.csv"];
    publish_with(dest, &parts, options(false), user)
        .await
        .unwrap();
}

fn lines(user: &str, parts: usize) -> Vec<String> {
    vec![user.to_string(); parts]
}

#[tokio::test]
async fn a_reader_following_the_pointer_sees_one_whole_run_at_every_step() {
    let users = DatasetType::Users;
    let dest = memory_destination();
    publish_two_parts_of(&dest, "a").await;
    let (run_a, seen) = read_via_pointer(&dest).await;
    assert_eq!(seen, lines("a", 2));

    // Run b stages one part: until its pointer is written, readers see run a.
    let staging = Staging::begin(&dest, users, options(false)).await.unwrap();
    let run_b = staging.run_id.clone();
    let parts = [part("part-00000.csv")];
    let data = staging.data_dir().join("part-00000.csv");
    put(&dest.store, &data, b"USER_ID\nb\n", &dest)
        .await
        .unwrap();
    for name in [STAGED_SCHEMA, STAGED_REPORT] {
        put(&dest.store, &staging.dir().join(name), b"{}", &dest)
            .await
            .unwrap();
    }
    assert_eq!(
        read_via_pointer(&dest).await,
        (run_a.clone(), lines("a", 2))
    );

    // The commit point: from now on readers see run b, whatever the mirror holds.
    let delete = staging.deletions(&parts).await.unwrap();
    let current = staging.pointer(
        &parts,
        MirrorPlan {
            delete,
            ..MirrorPlan::default()
        },
    );
    let text = pointer::to_bytes(&current).unwrap();
    put(&dest.store, &dest.current_path(users), &text, &dest)
        .await
        .unwrap();
    assert_eq!(
        read_via_pointer(&dest).await,
        (vec![run_b.clone()], lines("b", 1))
    );
    // Mid-promotion the mirror mixes the two runs (the README says so); the pointer does not.
    let mirror_part = dest.data_dir(users).join("part-00000.csv");
    dest.store.copy(&data, &mirror_part).await.unwrap();
    let mirror = all_objects(&dest).await;
    assert_eq!(mirror["out/users/part-00000.csv"], b"USER_ID\nb\n");
    assert_eq!(mirror["out/users/part-00001.csv"], b"USER_ID\na\n");
    assert_eq!(
        read_via_pointer(&dest).await,
        (vec![run_b.clone()], lines("b", 1))
    );
    promote(&dest, users, &current).await.unwrap();
    assert_eq!(names(&dest).await, ["part-00000.csv"]);
    assert_eq!(
        read_via_pointer(&dest).await,
        (vec![run_b.clone()], lines("b", 1))
    );

    // A reader that read run a's pointer before the commit still finds all of run a.
    let mut folders = run_a.clone();
    folders.push(run_b.clone());
    folders.sort();
    assert_eq!(snapshot_folders(&dest).await, folders);
    let kept: Vec<_> = dest
        .store
        .list(Some(&dest.snapshot_data_dir(users, &run_a[0])))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(kept.len(), 2);
}

#[tokio::test]
async fn snapshots_past_the_retention_are_deleted() {
    for keep_previous in [0, 1, 2] {
        let dest = memory_destination();
        let mut runs = Vec::new();
        for user in ["a", "b", "c", "d"] {
            let options = PublishOptions {
                keep_previous,
                ..PublishOptions::default()
            };
            publish_with(&dest, &["part-00000.csv"], options, user)
                .await
                .unwrap();
            runs.push(read_via_pointer(&dest).await.0[0].clone());
        }
        let mut expected = runs[runs.len() - 1 - keep_previous..].to_vec();
        expected.sort();
        assert_eq!(
            snapshot_folders(&dest).await,
            expected,
            "keep {keep_previous}"
        );
        let current = read_current(&dest, DatasetType::Users)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(current.previous.len(), keep_previous);
        assert_eq!(read_via_pointer(&dest).await.1, lines("d", 1));
    }
}

#[tokio::test]
async fn an_increment_extends_the_chain_and_the_mirror_without_deleting() {
    let users = DatasetType::Users;
    let dest = memory_destination();
    publish_two_parts_of(&dest, "a").await;
    let increment = PublishOptions {
        kind: RunKind::Increment,
        ..PublishOptions::default()
    };
    let deleted = publish_with(&dest, &["part-00000.csv"], increment, "b")
        .await
        .unwrap();
    assert!(deleted.is_empty(), "{deleted:?}");
    let current = read_current(&dest, users).await.unwrap().unwrap();
    assert_eq!(current.chain.len(), 2);
    assert_eq!(current.chain[1].kind, RunKind::Increment);
    assert!(current.previous.is_empty());
    let increment_part = format!("{}-part-00000.csv", current.chain[1].run_id);
    let mut expected = vec![
        increment_part,
        "part-00000.csv".to_string(),
        "part-00001.csv".to_string(),
    ];
    expected.sort();
    assert_eq!(names(&dest).await, expected);
    let (runs, seen) = read_via_pointer(&dest).await;
    assert_eq!(runs.len(), 2);
    assert_eq!(seen, ["a", "a", "b"]);

    // A full run replaces the whole chain, increment included, and keeps it as the previous.
    publish_with(&dest, &["part-00000.csv"], options(false), "c")
        .await
        .unwrap();
    assert_eq!(names(&dest).await, ["part-00000.csv"]);
    let after = read_current(&dest, users).await.unwrap().unwrap();
    assert_eq!(after.chain.len(), 1);
    assert_eq!(after.previous, vec![runs]);
    assert_eq!(snapshot_folders(&dest).await.len(), 3);
}

#[tokio::test]
async fn an_increment_without_a_committed_snapshot_is_refused() {
    let dest = memory_destination();
    let increment = PublishOptions {
        kind: RunKind::Increment,
        ..PublishOptions::default()
    };
    assert!(
        Staging::begin(&dest, DatasetType::Users, increment)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_damaged_or_newer_pointer_is_an_error_naming_it() {
    let dest = memory_destination();
    publish(&dest, &["part-00000.csv"], false).await.unwrap();
    let path = dest.current_path(DatasetType::Users);
    let mut current: Current =
        serde_json::from_slice(&dest.read_optional(&path).await.unwrap().unwrap()).unwrap();
    current.format = pointer::POINTER_FORMAT + 1;
    let text = pointer::to_bytes(&current).unwrap();
    put(&dest.store, &path, &text, &dest).await.unwrap();
    let err = publish(&dest, &["part-00000.csv"], false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("newer pengine"), "{err}");
    put_text(&dest, "out/users.current.json", "{not json").await;
    let err = publish(&dest, &["part-00000.csv"], false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("users.current.json is damaged"),
        "{err}"
    );
}
