//! Generates a click-stream export shaped like real history, deterministically (seeded).
//!
//! ```text
//! cargo run --release --example gen_export -- --events 1000000 --out /tmp/export
//! ```
//! Writes `events/YYYY/MM/DD/HH/` (Firehose-style JSON, 2 to 12 small files an hour: newline-
//! delimited `.json` files, back-to-back objects in files without extension, gzip-compressed every
//! fifth hour), `items.csv` (catalog: commas, quotes, non-ASCII, line breaks, `A>B>C` categories)
//! and `users.parquet` (customer profiles). `--layout one-file` writes the same events into one
//! newline-delimited `events/events.json` instead. Users and items are Zipf-skewed. Per event:
//! ~1 % exact duplicates, the user id missing, null or a numeric string in ~0.5 %, ~0.3 %
//! unreadable timestamps, a nested `context` object, `price` on purchases only (~4 %), and ~4 %
//! for SKUs the catalog does not have.
//!
//! The bundled `testdata/` was written by this generator at `--events 1500` before those rates
//! (commit 06a1f7d: 0.5 % duplicates, 0.1 % bad, every SKU in the catalog, 2 files an hour); the
//! tests count on its rows, so it is kept as it is.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Date32Array, Int32Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;

/// SplitMix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// Zipf-like rank in 0..n (skew ~1): inverse-CDF of a power law.
    fn zipf(&mut self, n: u64) -> u64 {
        let u = self.unit();
        (((n as f64 + 1.0).powf(u) - 1.0) as u64).min(n - 1)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// Hour folders, several files each (Firehose).
    Hourly,
    /// events/events.json, newline-delimited: the "few huge files" case.
    OneFile,
}

struct Args {
    events: u64,
    out: PathBuf,
    seed: u64,
    layout: Layout,
}

const USAGE: &str = "usage: gen_export [--events N] [--out DIR] [--seed S] [--layout L]
  --events N  events to write (default 100000; 1M events are about 170 MB)
  --out DIR   where to write events/, items.csv and users.parquet (default ./export)
  --seed S    the seed: the same N and S write the same files (default 42)
  --layout L  hourly (default): hour folders of small files, newline-delimited, back-to-back and
              gzip; one-file: the same events in one newline-delimited events/events.json";

/// Stops with the usage on stderr and exit code 2.
fn usage_error(message: &str) -> ! {
    eprintln!("gen_export: {message}\n{USAGE}");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        events: 100_000,
        out: PathBuf::from("export"),
        seed: 42,
        layout: Layout::Hourly,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if matches!(flag.as_str(), "-h" | "--help") {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it
            .next()
            .unwrap_or_else(|| usage_error(&format!("{flag} needs a value")));
        let number = |what: &str| {
            value
                .parse()
                .unwrap_or_else(|_| usage_error(&format!("{what} takes a number, not {value:?}")))
        };
        match flag.as_str() {
            "--events" => args.events = number("--events"),
            "--out" => args.out = PathBuf::from(&value),
            "--seed" => args.seed = number("--seed"),
            "--layout" => {
                args.layout = match value.as_str() {
                    "hourly" => Layout::Hourly,
                    "one-file" => Layout::OneFile,
                    _ => usage_error(&format!("--layout is hourly or one-file, not {value:?}")),
                }
            }
            other => usage_error(&format!("unknown flag {other}")),
        }
    }
    args
}

const EVENT_TYPES: &[(&str, u64)] = &[
    ("view", 70),
    ("click", 18),
    ("add_to_cart", 8),
    ("purchase", 4),
];
const DEVICES: &[&str] = &["ios", "android", "web", "web", "web"];
const PAGES: &[&str] = &["home", "search", "product", "cart", "category"];
const CATEGORIES: &[&str] = &[
    "Kitchen>Knives>Chef",
    "Kitchen>Cookware>Pans",
    "Home>Décor>Lamps",
    "Garden>Tools",
    "Outdoor>Camping>Tents",
    "Books>Cuisine>Français",
    "Toys>Board Games",
    "Electronics>Audio>Headphones",
];
const BRANDS: &[&str] = &[
    "Acme",
    "Nordwerk",
    "Søstrene",
    "Café & Co",
    "Zenith",
    "O'Brien",
];
const WORDS: &[&str] = &[
    "steel", "classic", "compact", "pro", "deluxe", "eco", "mini", "crème", "öko", "naïve", "grand",
];
/// 2024-03-01T00:00:00Z.
const START: i64 = 1_709_251_200;

fn main() -> std::io::Result<()> {
    let args = parse_args();
    let mut rng = Rng(args.seed);
    std::fs::create_dir_all(&args.out)?;
    let items = (args.events / 100).clamp(50, 500_000);
    let users = (args.events / 20).clamp(40, 5_000_000);
    write_items(&args.out, items, &mut rng)?;
    write_users(&args.out, users, &mut rng)?;
    write_events(&args.out, args.layout, args.events, items, users, &mut rng)?;
    eprintln!(
        "wrote {} events, {items} items, {users} users to {}",
        args.events,
        args.out.display()
    );
    Ok(())
}

fn sku(index: u64) -> String {
    format!("SKU-{index:06}")
}

fn iso(epoch: i64, millis: u64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn write_items(out: &Path, count: u64, rng: &mut Rng) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(out.join("items.csv"))?);
    writeln!(
        file,
        "sku,title,category_path,price,brand,created_at,description"
    )?;
    for i in 0..count {
        let w1 = rng.pick(WORDS);
        let w2 = rng.pick(WORDS);
        let title = match i % 7 {
            0 => format!("{w1} 12\" knife, {w2}"),
            1 => format!("{w1} lamp \"{w2}\""),
            _ => format!("{w1} {w2} {}", i % 97),
        };
        let category = rng.pick(CATEGORIES);
        let price = format!("{:.2}", 2.0 + rng.unit() * 300.0);
        let brand = rng.pick(BRANDS);
        let created = iso(START - 86_400 * 365 + rng.below(86_400 * 300) as i64, 0);
        let description = match i % 11 {
            0 => format!("Line one.\nLine two with a path C:\\{w1}\\{w2}."),
            1 => format!("Made in Zürich, \"{w1}\" edition; 100% {w2}."),
            _ => format!("A {w1}, {w2} item for everyday use."),
        };
        writeln!(
            file,
            "{},{},{},{},{},{},{}",
            sku(i),
            csv_field(&title),
            csv_field(category),
            price,
            csv_field(brand),
            created,
            csv_field(&description)
        )?;
    }
    file.flush()
}

fn write_users(out: &Path, count: u64, rng: &mut Rng) -> std::io::Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("age", DataType::Int32, true),
        Field::new("gender", DataType::Utf8, true),
        Field::new("loyalty_tier", DataType::Utf8, true),
        Field::new("signup_date", DataType::Date32, true),
    ]));
    let file = std::fs::File::create(out.join("users.parquet"))?;
    let mut writer =
        ArrowWriter::try_new(file, Arc::clone(&schema), None).map_err(std::io::Error::other)?;
    let chunk = 65_536u64;
    let mut start = 0;
    while start < count {
        let n = chunk.min(count - start);
        let ids: Vec<i64> = (start..start + n).map(user_id_number).collect();
        let ages: Vec<Option<i32>> = (0..n)
            .map(|_| (rng.below(10) != 0).then(|| 18 + rng.below(60) as i32))
            .collect();
        let genders: Vec<Option<&str>> =
            (0..n).map(|_| Some(*rng.pick(&["f", "m", "x"]))).collect();
        let tiers: Vec<Option<&str>> = (0..n)
            .map(|_| Some(*rng.pick(&["bronze", "bronze", "silver", "gold"])))
            .collect();
        let signup: Vec<Option<i32>> = (0..n)
            .map(|_| Some(19_000 + rng.below(800) as i32))
            .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(Int32Array::from(ages)),
            Arc::new(StringArray::from(genders)),
            Arc::new(StringArray::from(tiers)),
            Arc::new(Date32Array::from(signup)),
        ];
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), columns).map_err(std::io::Error::other)?;
        writer.write(&batch).map_err(std::io::Error::other)?;
        start += n;
    }
    writer.close().map_err(std::io::Error::other)?;
    Ok(())
}

/// User ids look like a production system's: most small, a few beyond 2^53.
fn user_id_number(index: u64) -> i64 {
    if index % 97 == 13 {
        9_007_199_254_740_993 + index as i64
    } else {
        100_000 + index as i64
    }
}

/// Where the events go: one hour folder per hour of history with several small files each (the
/// default), or every event in one newline-delimited file.
struct Sink<'a> {
    out: &'a Path,
    one_file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Sink<'_> {
    fn write_hour(
        &mut self,
        hour: u64,
        hour_start: i64,
        records: &[String],
    ) -> std::io::Result<()> {
        if let Some(file) = &mut self.one_file {
            for record in records {
                file.write_all(record.as_bytes())?;
                file.write_all(b"\n")?;
            }
            return Ok(());
        }
        let (y, m, d) = civil(hour_start.div_euclid(86_400));
        let h = hour_start.rem_euclid(86_400) / 3600;
        let dir = self.out.join(format!("events/{y:04}/{m:02}/{d:02}/{h:02}"));
        std::fs::create_dir_all(&dir)?;
        // Firehose delivers a file every few minutes: one per ~300 events of the hour, 2 to 12.
        let files = (records.len() as u64 / 300).clamp(2, 12) as usize;
        let per_file = records.len().div_ceil(files).max(1);
        for (index, chunk) in records.chunks(per_file).enumerate() {
            // Even files newline-delimited with a .json name; odd files Firehose-style: objects
            // back to back, no extension, and every fifth hour gzip-compressed.
            let (path, separator, gzip) = if index % 2 == 0 {
                (
                    dir.join(format!("events-{hour:05}-{index:02}.json")),
                    &b"\n"[..],
                    false,
                )
            } else {
                let name =
                    format!("pengine-stream-1-{y:04}-{m:02}-{d:02}-{h:02}-{index:02}-00-{hour:05}");
                (dir.join(name), &b""[..], hour % 5 == 4)
            };
            let mut body = Vec::with_capacity(chunk.iter().map(|r| r.len() + 1).sum());
            for record in chunk {
                body.extend_from_slice(record.as_bytes());
                body.extend_from_slice(separator);
            }
            if gzip {
                let file = std::fs::File::create(path)?;
                let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::default());
                enc.write_all(&body)?;
                enc.finish()?;
            } else {
                std::fs::write(path, body)?;
            }
        }
        Ok(())
    }
}

fn write_events(
    out: &Path,
    layout: Layout,
    events: u64,
    items: u64,
    users: u64,
    rng: &mut Rng,
) -> std::io::Result<()> {
    // About 4 hours of history per 1,000 events at small sizes, capped at 30 days of hours. The
    // events are the same in both layouts; only the files they are written to differ.
    let hours = (events / 250).clamp(2, 24 * 30);
    let per_hour = events.div_ceil(hours);
    let total_weight: u64 = EVENT_TYPES.iter().map(|(_, w)| w).sum();
    let mut sink = Sink {
        out,
        one_file: None,
    };
    if layout == Layout::OneFile {
        std::fs::create_dir_all(out.join("events"))?;
        let file = std::fs::File::create(out.join("events/events.json"))?;
        sink.one_file = Some(std::io::BufWriter::with_capacity(1 << 20, file));
    }
    let mut written = 0u64;
    let mut records = Vec::new();
    let mut previous: Option<String> = None;
    for hour in 0..hours {
        let hour_start = START + hour as i64 * 3600;
        records.clear();
        while (records.len() as u64) < per_hour && written < events {
            written += 1;
            let record = match (&previous, rng.below(100)) {
                // ~1 % exact duplicates of the previous event (a producer's retry).
                (Some(prev), 0) => prev.clone(),
                _ => event(rng, hour_start, items, users, total_weight),
            };
            previous = Some(record.clone());
            records.push(record);
        }
        sink.write_hour(hour, hour_start, &records)?;
    }
    if let Some(mut file) = sink.one_file.take() {
        file.flush()?;
    }
    Ok(())
}

/// Timestamps no reader should accept (~0.3 % of events).
const BAD_TIMESTAMPS: &[&str] = &["03/01/2024 13:00", "2024-02-30T10:00:00Z", "yesterday"];

fn event(rng: &mut Rng, hour_start: i64, items: u64, users: u64, total_weight: u64) -> String {
    let user_index = rng.zipf(users);
    let user = user_id_number(user_index);
    // ~4 % of events are for SKUs the catalog does not have (items..2*items).
    let item = if rng.below(100) < 4 {
        sku(items + rng.below(items))
    } else {
        sku(rng.zipf(items))
    };
    let mut roll = rng.below(total_weight);
    let mut event_type = EVENT_TYPES[0].0;
    for (name, weight) in EVENT_TYPES {
        if roll < *weight {
            event_type = name;
            break;
        }
        roll -= weight;
    }
    let ts = iso(hour_start + rng.below(3600) as i64, rng.below(1000));
    // Per 10,000 events: 15 without a user id, 15 with a null one, 20 with the id as a numeric
    // string (a second producer), 30 with an unreadable timestamp.
    let anomaly = rng.below(10_000);
    let user_field = match anomaly {
        0..15 => String::new(),
        15..30 => "\"user_id\":null,".to_string(),
        30..50 => format!("\"user_id\":\"{user}\","),
        _ => format!("\"user_id\":{user},"),
    };
    let ts_field = if (50..80).contains(&anomaly) {
        rng.pick(BAD_TIMESTAMPS).to_string()
    } else {
        ts
    };
    // A field present on ~4 % of events only: schema inference from a sample can miss it.
    let price = if event_type == "purchase" {
        format!(",\"price\":{:.2}", 2.0 + rng.unit() * 300.0)
    } else {
        String::new()
    };
    format!(
        "{{{user_field}\"item_id\":\"{item}\",\"event_type\":\"{event_type}\",\"ts\":\"{ts_field}\"{price},\
         \"session_id\":\"s-{:08x}\",\"device\":\"{}\",\"context\":{{\"page\":\"{}\",\"campaign\":{}}}}}",
        rng.next() as u32,
        rng.pick(DEVICES),
        rng.pick(PAGES),
        if rng.below(10) == 0 {
            "\"spring-sale\"".to_string()
        } else {
            "null".to_string()
        }
    )
}
