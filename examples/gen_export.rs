//! Generates a click-stream export shaped like real history, deterministically (seeded).
//!
//! ```text
//! cargo run --release --example gen_export -- --events 1000000 --out /tmp/export
//! ```
//! Writes `events/YYYY/MM/DD/HH/` (Firehose-style JSON: newline-delimited files, back-to-back
//! objects in files without extension, a few gzip files), `items.csv` (catalog: commas, quotes,
//! non-ASCII, line breaks, `A>B>C` categories) and `users.parquet` (customer profiles). Users and
//! items are Zipf-skewed; ~0.5 % of events are exact duplicates and ~0.1 % are bad (no user id or
//! a malformed timestamp). The bundled `testdata/` is this generator's output at `--events 1500`.

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

struct Args {
    events: u64,
    out: PathBuf,
    seed: u64,
}

const USAGE: &str = "usage: gen_export [--events N] [--out DIR] [--seed S]
  --events N  events to write (default 100000; 1M events are about 170 MB)
  --out DIR   where to write events/, items.csv and users.parquet (default ./export)
  --seed S    the seed: the same N and S write the same files (default 42)";

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
    write_events(&args.out, args.events, items, users, &mut rng)?;
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

fn write_events(
    out: &Path,
    events: u64,
    items: u64,
    users: u64,
    rng: &mut Rng,
) -> std::io::Result<()> {
    // About 4 hours of history per 1,000 events at small sizes, capped at 30 days of hours.
    let hours = (events / 250).clamp(2, 24 * 30);
    let per_hour = events.div_ceil(hours);
    let total_weight: u64 = EVENT_TYPES.iter().map(|(_, w)| w).sum();
    let mut written = 0u64;
    for hour in 0..hours {
        let hour_start = START + hour as i64 * 3600;
        let days = hour_start.div_euclid(86_400);
        let (y, m, d) = civil(days);
        let h = hour_start.rem_euclid(86_400) / 3600;
        let dir = out.join(format!("events/{y:04}/{m:02}/{d:02}/{h:02}"));
        std::fs::create_dir_all(&dir)?;
        // Two files per hour: one newline-delimited, one Firehose back-to-back (no extension);
        // every fifth hour the second one is gzip-compressed.
        let files = [
            (dir.join(format!("events-{hour:05}-a.json")), b'\n', false),
            (
                dir.join(format!(
                    "pengine-stream-1-{y:04}-{m:02}-{d:02}-{h:02}-00-00-{hour:05}"
                )),
                b' ',
                hour % 5 == 4,
            ),
        ];
        let mut previous: Option<String> = None;
        for (file_index, (path, separator, gzip)) in files.iter().enumerate() {
            let mut body = Vec::new();
            let n = if file_index == 0 {
                per_hour / 2
            } else {
                per_hour - per_hour / 2
            };
            for _ in 0..n {
                if written >= events {
                    break;
                }
                written += 1;
                let record = match (&previous, rng.below(200)) {
                    // ~0.5 % exact duplicates of the previous event.
                    (Some(prev), 0) => prev.clone(),
                    _ => event(rng, hour_start, items, users, total_weight),
                };
                body.extend_from_slice(record.as_bytes());
                if *separator == b'\n' {
                    body.push(b'\n');
                }
                previous = Some(record);
            }
            if *gzip {
                let file = std::fs::File::create(path)?;
                let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::default());
                enc.write_all(&body)?;
                enc.finish()?;
            } else {
                std::fs::write(path, body)?;
            }
        }
    }
    Ok(())
}

fn event(rng: &mut Rng, hour_start: i64, items: u64, users: u64, total_weight: u64) -> String {
    let user_index = rng.zipf(users);
    let user = user_id_number(user_index);
    let item = sku(rng.zipf(items));
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
    let bad = rng.below(1000);
    // Mostly integers, some numeric strings (as a second producer writes them).
    let user_field = match (bad, user_index % 5) {
        (0, _) => String::new(),
        (_, 0) => format!("\"user_id\":\"{user}\","),
        _ => format!("\"user_id\":{user},"),
    };
    let ts_field = if bad == 1 {
        "03/01/2024 13:00".to_string()
    } else {
        ts
    };
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
