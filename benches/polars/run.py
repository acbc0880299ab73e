#!/usr/bin/env python3
"""Polars peer of the end-to-end benchmark: the reference jobs of benches/jobs/ in Polars' lazy API.

    run.py --export DIR --out DIR [--pengine-out DIR] [--jobs interactions,items,users]
           [--threads N] [--temp-dir DIR] [--repeat R] [--json FILE]

Runs the three jobs below on the export in DIR (the layout written by examples/gen_export.rs), each
in its own child process, with the streaming engine (`sink_csv`), and prints per job the wall time,
rows written, rows/s and peak RSS. With --pengine-out it then compares each job's rows with
pengine's output of the same export and exits 1 when any job differs (2 when a job fails); --json
FILE writes the figures for benches/e2e.sh. The measuring and the comparison are benches/peers.py's.
benches/polars/README.md says what the code has to spell out that pengine does itself.

Needs the `polars` Python module (2.1 or later); nothing else.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ left in benches/
sys.path.insert(0, os.path.dirname(HERE))
import peers  # noqa: E402  (benches/peers.py)

# The timestamps of the events: ISO 8601 with fractional seconds and `Z` or an offset (`%#z`
# accepts both). Polars would otherwise infer one format from the first value and apply it to all.
TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"
# A top-level object boundary: `}` then `{` with only blanks between. In a JSON document a `}` is
# followed by `,`, `}`, `]` or its end, so outside strings this only matches between two objects
# written back to back; inside a string value, splitting there leaves an unterminated string, which
# json_decode rejects (the job fails rather than writing wrong rows).
BOUNDARY = r"\}[ \t\r]*\{"
# Firehose files hold objects back to back; detected by a boundary on their first line.
BACK_TO_BACK = re.compile(rb"\}[ \t\r]*\{")
SNIFF_BYTES = 64 * 1024


def load():
    import polars

    return polars


def event_schema(pl):
    """The event fields the job reads, as the DuckDB job declares them and as Polars' docs advise
    for NDJSON whose fields are not in every record (price is on ~4 % of events): inference from the
    first rows would miss it or type user_id by its first values. user_id is text: numbers and
    numeric strings alike become their digits. Fields not listed (session_id, context) are not
    read."""
    return {"user_id": pl.String, "item_id": pl.String, "event_type": pl.String,
            "ts": pl.String, "price": pl.Float64, "device": pl.String}


def sniff(path):
    """True when the file's first line holds two objects back to back (gzip read through)."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if head[:2] == b"\x1f\x8b":
        import zlib

        head = zlib.decompressobj(wbits=31).decompress(head, SNIFF_BYTES)
    return BACK_TO_BACK.search(head.split(b"\n", 1)[0]) is not None


def scan_events(pl, folder):
    """All event files under `folder`, newline-delimited or back to back, gzip (detected by Polars
    from the magic bytes, without `.gz`) or not, as one LazyFrame of the declared fields."""
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(folder) for f in names)
    back_to_back = [f for f in files if sniff(f)]
    ndjson = sorted(set(files) - set(back_to_back))
    schema = event_schema(pl)
    frames = []
    if ndjson:
        frames.append(pl.scan_ndjson(ndjson, schema=schema))
    if back_to_back:
        # scan_ndjson stops at `}{` ("error parsing line"): read such files as lines of text, cut
        # each line at the object boundaries and decode every piece.
        frames.append(
            pl.scan_lines(back_to_back)
            .select(pl.col("line").str.replace_all(BOUNDARY, "}\n{").str.split("\n"))
            .explode("line")
            .filter(pl.col("line").str.strip_chars() != "")
            .select(pl.col("line").str.json_decode(pl.Struct(schema)))
            .unnest("line"))
    if not frames:
        return pl.LazyFrame(schema=schema)
    return pl.concat(frames, how="vertical")


def personalize_text(pl, text):
    """A text column (name or expression) as Personalize's CSV wants it, quoted by hand: a line
    break becomes a space (\\r\\n counts as one), `\\` and `"` are escaped by a backslash, the value
    is quoted; null stays null (an empty field). Polars' CSV writer doubles quotes instead, so the
    file is written with quote_style='never' and every text column goes through this."""
    if isinstance(text, str):
        text = pl.col(text)
    for old, new in (("\r\n", " "), ("\r", " "), ("\n", " "), ("\\", "\\\\"), ('"', '\\"')):
        text = text.str.replace_all(old, new, literal=True)
    return pl.concat_str([pl.lit('"'), text, pl.lit('"')])


def catalog(pl, export):
    return pl.scan_csv(os.path.join(export, "items.csv"), has_header=True, quote_char='"',
                       schema={"sku": pl.String, "title": pl.String, "category_path": pl.String,
                               "price": pl.Float64, "brand": pl.String, "created_at": pl.String,
                               "description": pl.String})


def interactions(pl, args):
    events = scan_events(pl, os.path.join(args.export, "events"))
    ts = pl.col("ts").str.to_datetime(TS_FORMAT, time_unit="ns", time_zone="UTC", strict=False)
    return (
        events
        .filter(pl.col("user_id").is_not_null() & ts.is_not_null())
        # events for SKUs missing from the catalog are dropped (the SQL's inner join; the catalog's
        # SKUs are its key, so a semi join keeps the same rows)
        .join(catalog(pl, args.export).select("sku"), left_on="item_id", right_on="sku",
              how="semi")
        # duplicates judged on the values as written: epoch seconds rounded down (// floors)
        .select("user_id", "item_id", "event_type", pl.col("price").alias("event_value"),
                (ts.dt.epoch("ns") // 1_000_000_000).alias("ts_seconds"), "device")
        .unique()
        .select(personalize_text(pl, "user_id").alias("USER_ID"),
                personalize_text(pl, "item_id").alias("ITEM_ID"),
                personalize_text(pl, "event_type").alias("EVENT_TYPE"),
                pl.col("event_value").alias("EVENT_VALUE"),
                pl.col("ts_seconds").alias("TIMESTAMP"),
                personalize_text(pl, "device").alias("DEVICE")))


def epoch_seconds(pl, column):
    """pengine's text timestamp: digits are epoch seconds, else ISO 8601 (seconds rounded down)."""
    text = pl.col(column)
    iso = text.str.to_datetime(TS_FORMAT, time_unit="ns", time_zone="UTC", strict=False)
    return (pl.when(text.str.contains(r"^-?[0-9]+$"))
            .then(text.cast(pl.Int64, strict=False))
            .otherwise(iso.dt.epoch("ns") // 1_000_000_000))


def items(pl, args):
    return catalog(pl, args.export).select(
        personalize_text(pl, "sku").alias("ITEM_ID"),
        personalize_text(pl, pl.col("category_path").str.replace_all(">", "|", literal=True))
        .alias("CATEGORIES"),
        personalize_text(pl, pl.col("category_path").str.split(">").list.first())
        .alias("CATEGORY_L1"),
        personalize_text(pl, "brand").alias("BRAND"),
        pl.col("price").alias("PRICE"),
        epoch_seconds(pl, "created_at").alias("CREATION_TIMESTAMP"),
        personalize_text(pl, "title").alias("TITLE"),
        personalize_text(pl, "description").alias("DESCRIPTION"))


def users(pl, args):
    return pl.scan_parquet(os.path.join(args.export, "users.parquet")).select(
        personalize_text(pl, pl.col("customer_id").cast(pl.String)).alias("USER_ID"),
        pl.col("age").alias("AGE"),
        personalize_text(pl, "gender").alias("GENDER"),
        personalize_text(pl, "loyalty_tier").alias("LOYALTY_TIER"),
        # a date → epoch seconds of its midnight UTC
        pl.col("signup_date").cast(pl.Datetime("ms")).dt.epoch("s").alias("SIGNUP_DATE"))


JOBS = {"interactions": interactions, "items": items, "users": users}


def run_job(args, pl):
    query = JOBS[args.child](pl, args)
    # quote_style='never': the text columns are quoted and escaped by personalize_text
    query.sink_csv(os.path.join(args.out, args.child, "part-00000.csv"), quote_style="never",
                   null_value="", engine="streaming")
    return None  # rows counted from the file


def settings(args):
    return {"threads": args.threads, "engine": "streaming", "POLARS_TEMP_DIR": args.temp_dir}


PEER = peers.Peer(
    name="polars",
    script=os.path.abspath(__file__),
    doc=__doc__,
    load=load,
    run_job=run_job,
    version=lambda pl: pl.__version__,
    baseline_code="import polars as pl; pl.DataFrame({'a': [1]}).lazy().collect()",
    settings=settings,
    # Polars reads its thread count from the environment when it is imported.
    child_env=lambda args: {"POLARS_MAX_THREADS": str(args.threads),
                            "POLARS_TEMP_DIR": args.temp_dir},
)

if __name__ == "__main__":
    sys.exit(peers.main(PEER))
