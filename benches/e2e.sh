#!/usr/bin/env bash
# End-to-end benchmark: generate an export of N events and time the three example jobs on it.
set -euo pipefail
events=${1:-1000000}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-/tmp/pengine-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/pengine-target}
cargo build --release --quiet --bin pengine --example gen_export --manifest-path "$root/Cargo.toml"
bin=$CARGO_TARGET_DIR/release
data=$bench/export-$events
if [ ! -d "$data" ]; then
  "$bin/examples/gen_export" --events "$events" --out "$data"
fi
input_mb=$(du -sm "$data/events" | cut -f1)
printf '%-13s %9s %11s %11s %9s %9s %10s\n' job wall_s rows rows_per_s in_MB/s out_MB/s peak_RSS_MB
for job in interactions items users; do
  out=$bench/out-$events
  /usr/bin/time -v "$bin/pengine" run "$root/sql/$job.sql" --var "source=$data" -o "$out" \
    --json --no-progress -q "$@" > "$bench/$job.json" 2> "$bench/$job.time"
  python3 - "$bench/$job.json" "$bench/$job.time" "$job" "$input_mb" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
time = open(sys.argv[2]).read()
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", time).group(1))
wall = report["wall_seconds"]
rows = report["rows"]["written"]
in_mb = float(sys.argv[4]) if sys.argv[3] == "interactions" else 0
print(f"{sys.argv[3]:<13} {wall:9.2f} {rows:11d} {rows / wall:11.0f} "
      f"{in_mb / wall:9.1f} {report['bytes_written'] / 1e6 / wall:9.1f} {rss_kb / 1024:10.0f}")
PY
done
