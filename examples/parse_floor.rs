//! The parse floor of the benchmark: every event of an export's `events/` parsed by serde_json on N
//! threads, and nothing else (no schema, no columns, no output). Files are read and gunzipped as
//! pengine reads them. Two floors:
//!
//! - by default the text is only validated (`IgnoredAny`: no value is built), the lowest cost
//!   any reader of the export pays;
//! - with `--typed`, each event is parsed into a typed record, every field's value built (owned
//!   strings, the user id as number or text): a plain program that reads the export;
//! - with `--value`, each event is parsed into a `serde_json::Value`, as a program that does not
//!   know the export's fields parses it.
//!
//! ```text
//! cargo run --release --example parse_floor -- /tmp/pengine-bench/export-1000000/events 2 [--typed|--value]
//! ```
//! Prints the records parsed and the wall time. The issue's target for pengine's declared-columns
//! job is 1.5 times a plain parse on the same cores (benches/README.md).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

fn files(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(&path, found)?;
        } else {
            found.push(path);
        }
    }
    Ok(())
}

/// The file's text, gunzipped (by pengine's own inflater) when it starts with gzip's magic bytes.
fn text(path: &Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 8);
        pengine::sources::gzip::GzipReader::new(&raw[..]).read_to_end(&mut out)?;
        return Ok(out);
    }
    Ok(raw)
}

/// One event of the benchmark's export, every field a value of its own.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // Built to be paid for, not read.
struct Event {
    user_id: Option<UserId>,
    item_id: String,
    event_type: String,
    ts: String,
    price: Option<f64>,
    session_id: String,
    device: String,
    context: Context,
}

/// A number in most events, text in some.
#[derive(serde::Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum UserId {
    Number(i64),
    Text(String),
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Context {
    page: String,
    campaign: Option<String>,
}

/// Records parsed as `T` in `bytes` (back-to-back or newline-delimited objects; bad ones skipped).
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> u64 {
    let mut records = 0;
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<T>();
    loop {
        match stream.next() {
            Some(Ok(_)) => records += 1,
            Some(Err(_)) => {
                // Go on after the next line break, as a reader of exports would.
                let at = stream.byte_offset();
                let Some(next) = bytes[at..].iter().position(|b| *b == b'\n') else {
                    break;
                };
                return records + parse::<T>(&bytes[at + next + 1..]);
            }
            None => break,
        }
    }
    records
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .expect("usage: parse_floor EVENTS_DIR [THREADS [--typed|--value]]"),
    );
    let threads: usize = args.next().map_or(2, |t| t.parse().expect("THREADS"));
    let floor = args.next().unwrap_or_default();
    let (parse, into): (fn(&[u8]) -> u64, &str) = match floor.as_str() {
        "--typed" => (parse::<Event>, " into typed events"),
        "--value" => (parse::<serde_json::Value>, " into JSON values"),
        "" => (parse::<serde::de::IgnoredAny>, ""),
        other => panic!("unknown floor {other}: --typed or --value"),
    };
    let mut all = Vec::new();
    files(&dir, &mut all)?;
    let started = Instant::now();
    let queue = Mutex::new(all);
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut records = 0;
                    loop {
                        // Its own statement: the lock must not be held while the file is parsed
                        // (a `while let` holds it through the loop's body).
                        let next = queue.lock().unwrap().pop();
                        let Some(path) = next else { break };
                        records += parse(&text(&path).expect("readable"));
                    }
                    records
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    println!(
        "{total} records parsed{into} in {:.3} s on {threads} threads",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
