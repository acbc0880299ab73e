#!/usr/bin/env bash
# Load check (issue 6): the reference interactions job on an N-event export with damaged files
# added, under --memory-limit (default 384MiB, the run's default) and --on-bad-records skip.
# Prints wall time and peak RSS, and checks that every input record is accounted for:
#   events + catalog rows (known from the generator) = read_from_sources + bad_records
#   read_from_sources + added_by_sql = written + rejected + filtered_by_sql
# Usage: benches/load.sh [N]   (env: PENGINE_BIN, EXPORT, LIMIT, OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000000}
EXPORT=${EXPORT:-/tmp/pengine-bench/export-$N}
LIMIT=${LIMIT:-384MiB}
OUT=${OUT:-/tmp/pengine-bench/load-out-$N}
BIN=${PENGINE_BIN:-}
if [[ -z "$BIN" ]]; then
  cargo build --release --quiet
  BIN="${CARGO_TARGET_DIR:-target}/release/pengine"
fi
if [[ ! -d "$EXPORT/events" ]]; then
  cargo run --release --quiet --example gen_export -- --events "$N" --out "$EXPORT"
fi

# Damage, in an hour folder of its own (removed again on exit): 1,000 good events around a line
# of garbage, a record with a trailing comma, a line cut inside a string and Latin-1 text, and a
# gzip file that ends inside a record.
DAMAGE="$EXPORT/events/2099/01/01/00"
trap 'rm -rf "$EXPORT/events/2099"' EXIT
mkdir -p "$DAMAGE"
python3 - "$DAMAGE" <<'PY'
import gzip, sys
d = sys.argv[1]
good = lambda i: ('{"user_id": %d, "item_id": "SKU-LOAD-%d", "event_type": "view", '
                  '"ts": "2024-01-01T00:00:00.000Z", "device": "web"}\n' % (i, i)).encode()
with open(f"{d}/damaged.json", "wb") as f:
    for i in range(1000):
        f.write(good(i))
        if i == 100: f.write(b"\x00\x01 binary garbage\n")
        if i == 200: f.write(b'{"user_id": 1, "item_id": "x",}\n')
        if i == 300: f.write(b'{"user_id": 1, "item_id": "cut\n')
        if i == 400: f.write(b'{"user_id": 1, "item_id": "caf\xe9"}\n')
with gzip.open(f"{d}/truncated.json.gz", "wb") as f:
    f.write(good(5000) + b'{"user_id": 5001, "item_')
PY
EXTRA_GOOD=1001
EXTRA_BAD=5

report=$(mktemp)
timing=$(mktemp)
/usr/bin/time -v "$BIN" run benches/jobs/interactions.sql --var "source=$EXPORT" -o "$OUT" \
  --memory-limit "$LIMIT" --on-bad-records skip --no-progress --json >"$report" 2>"$timing"
python3 - "$report" "$timing" "$EXPORT/items.csv" "$N" "$EXTRA_GOOD" "$EXTRA_BAD" "$LIMIT" <<'PY'
import csv, json, re, sys
report_file, timing_file, catalog, n, extra_good, extra_bad, limit = sys.argv[1:]
report = json.load(open(report_file))
timing = open(timing_file).read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", timing).group(1)
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing).group(1))
with open(catalog, newline="", encoding="utf-8") as f:
    catalog_rows = sum(1 for _ in csv.reader(f)) - 1
rows = report["rows"]
records_in = int(n) + int(extra_good) + int(extra_bad) + catalog_rows
accounted = rows["read_from_sources"] + rows["bad_records"]
print(f"wall {wall}, peak RSS {rss_kb / 1024:.0f} MiB (memory limit {limit})")
print(f"records in: {records_in} = {n} events + {extra_good} good and {extra_bad} bad added "
      f"+ {catalog_rows} catalog rows")
print(f"read {rows['read_from_sources']} + bad {rows['bad_records']} = {accounted}; "
      f"read + added by SQL {rows['added_by_sql']} = "
      f"{rows['read_from_sources'] + rows['added_by_sql']}; "
      f"written {rows['written']} + rejected {rows['rejected']} + filtered by SQL "
      f"{rows['filtered_by_sql']} = {rows['written'] + rows['rejected'] + rows['filtered_by_sql']} "
      f"(removed by {rows['removed_by']})")
print(f"bad records by file: {report['bad_records']['by_file']}")
ok = (accounted == records_in
      and rows["bad_records"] == int(extra_bad)
      and rows["measured"]
      and rows["written"] + rows["rejected"] + rows["filtered_by_sql"]
      == rows["read_from_sources"] + rows["added_by_sql"])
print("reconciled: yes" if ok else "reconciled: NO")
sys.exit(0 if ok else 1)
PY
