//! The parse floor of the benchmark: every event of an export's `events/` parsed (validated) by
//! serde_json without building values, on N threads, and nothing else (no schema, no columns, no
//! output). Files are read and gunzipped as pengine reads them.
//!
//! ```text
//! cargo run --release --example parse_floor -- /tmp/pengine-bench/export-1000000/events 2
//! ```
//! Prints the records parsed and the wall time. The issue's target for pengine's declared-columns
//! job is 1.5 times this on the same cores (benches/README.md).

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

/// The file's text, gunzipped when it starts with gzip's magic bytes.
fn text(path: &Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 8);
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        return Ok(out);
    }
    Ok(raw)
}

/// Records parsed in `bytes` (back-to-back or newline-delimited objects; bad ones skipped).
fn parse(bytes: &[u8]) -> u64 {
    let mut records = 0;
    let mut stream =
        serde_json::Deserializer::from_slice(bytes).into_iter::<serde::de::IgnoredAny>();
    loop {
        match stream.next() {
            Some(Ok(_)) => records += 1,
            Some(Err(_)) => {
                // Go on after the next line break, as a reader of exports would.
                let at = stream.byte_offset();
                let Some(next) = bytes[at..].iter().position(|b| *b == b'\n') else {
                    break;
                };
                return records + parse(&bytes[at + next + 1..]);
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
            .expect("usage: parse_floor EVENTS_DIR [THREADS]"),
    );
    let threads: usize = args.next().map_or(2, |t| t.parse().expect("THREADS"));
    let mut all = Vec::new();
    files(&dir, &mut all)?;
    let started = Instant::now();
    let queue = Mutex::new(all);
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut records = 0;
                    while let Some(path) = queue.lock().unwrap().pop() {
                        records += parse(&text(&path).expect("readable"));
                    }
                    records
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    println!(
        "{total} records parsed in {:.3} s on {threads} threads",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
