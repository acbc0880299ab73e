#!/usr/bin/env bash
# The headline comparison in alternating rounds (benches/README.md, "Alternating rounds"): the
# interactions job as a user writes it (pengine, columns inferred), then DuckDB's, then Polars', R
# times over, so that a shared machine's drift between minutes hits every engine alike. Prints each
# round's wall times, each engine's median and fastest, and the ratio of pengine's median to the
# faster peer's median; checks once, after the last round, that every engine wrote the same rows.
#
#   benches/alternate.sh [--one-file] [--rounds R] [--no-duckdb] [--no-polars] [N] [pengine args...]
#
# N defaults to 1,000,000, R to 5. The export ($BENCH_DIR/export-N, or export-N-onefile) and the
# peers' Python are e2e.sh's: run `benches/e2e.sh N` (with --one-file for that layout) once first.
# Arguments after N go to `pengine run` (a --threads N to the peers too). Exit code: 0; 1 when an
# engine's rows differ from pengine's; 2 when a run failed or something needed is missing.
#
# Environment: BENCH_DIR (default /tmp/pengine-bench), PENGINE_BIN (default
# $CARGO_TARGET_DIR/release/pengine, not built here), DUCKDB_PYTHON / POLARS_PYTHON (default: the
# venv e2e.sh made, $BENCH_VENV or ~/.cache/pengine-bench-venv).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

layout=hourly
rounds=5
peers=(duckdb polars)
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --one-file) layout=one-file ;;
    --rounds) rounds=${2:-}; shift ;;
    --no-duckdb) peers=("${peers[@]/duckdb}") ;;
    --no-polars) peers=("${peers[@]/polars}") ;;
    -h|--help) usage; exit 0 ;;
    *) args+=("$1") ;;
  esac
  shift
done
case $rounds in
  ''|*[!0-9]*|0) echo "alternate.sh: --rounds takes a positive number" >&2; exit 2 ;;
esac
set -- ${args[@]+"${args[@]}"}
events=1000000
case ${1:-} in
  ''|*[!0-9]*) ;;
  *) events=$1; shift ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-/tmp/pengine-bench}
target=${CARGO_TARGET_DIR:-$HOME/.cache/pengine-target}
pengine=${PENGINE_BIN:-$target/release/pengine}
venv=${BENCH_VENV:-$HOME/.cache/pengine-bench-venv}
tag=$events
[ "$layout" = hourly ] || tag=$events-onefile
data=$bench/export-$tag
work=$bench/alternate-$tag
[ -d "$data" ] || { echo "alternate.sh: no export at $data: run benches/e2e.sh first" >&2; exit 2; }
[ -x "$pengine" ] || { echo "alternate.sh: no pengine binary at $pengine (PENGINE_BIN)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "alternate.sh: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
rm -rf "$work"
mkdir -p "$work/logs"

python_of() {  # PEER: the Python to run its run.py with
  local var
  var=$(echo "$1" | tr '[:lower:]' '[:upper:]')_PYTHON
  echo "${!var:-$venv/bin/python}"
}

# A --threads N for pengine is given to the peers too, as e2e.sh does.
threads=()
prev=
for a in "$@"; do
  case $a in --threads=*) threads=(--threads "${a#--threads=}") ;; esac
  [ "$prev" = --threads ] && threads=(--threads "$a")
  prev=$a
done

# One round: each engine once, in the same order every round; a wall time per line.
times=$work/times
: > "$times"
for round in $(seq 1 "$rounds"); do
  rm -rf "$work/pengine"
  sync
  rc=0
  /usr/bin/time -f '%e %M' -o "$work/logs/pengine.time" "$pengine" run \
    "$root/benches/jobs/interactions.sql" --var "source=$data" -o "$work/pengine" \
    --no-progress -q "$@" > "$work/logs/pengine.log" 2>&1 || rc=$?
  if [ "$rc" != 0 ] && [ "$rc" != 6 ]; then
    echo "alternate.sh: pengine failed (exit $rc):" >&2
    tail -20 "$work/logs/pengine.log" >&2
    exit 2
  fi
  read -r wall rss_kb < "$work/logs/pengine.time"
  echo "$round pengine $wall $((rss_kb / 1024))" >> "$times"
  for peer in "${peers[@]}"; do
    [ -n "$peer" ] || continue
    json=$work/logs/$peer.json
    # The rows are compared after the last round only (a 20M comparison takes minutes).
    compare=()
    [ "$round" != "$rounds" ] || compare=(--pengine-out "$work/pengine")
    "$(python_of "$peer")" "$root/benches/$peer/run.py" --export "$data" \
      --out "$work/$peer" --jobs interactions --json "$json" ${compare[@]+"${compare[@]}"} \
      ${threads[@]+"${threads[@]}"} \
      > "$work/logs/$peer.log" 2>&1 || true
    python3 - "$json" "$round" "$peer" >> "$times" <<'EOF' ||
import json, sys
job = json.load(open(sys.argv[1]))["jobs"]["interactions"]
print(sys.argv[2], sys.argv[3], f'{job["wall_seconds"]:.2f}', job["peak_rss_bytes"] >> 20)
EOF
      { echo "alternate.sh: $peer failed, see $work/logs/$peer.log" >&2; exit 2; }
  done
done

python3 - "$times" "$work/logs" "$tag" <<'EOF'
import json, os, statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
engines = list(dict.fromkeys(r[1] for r in rows))
walls = {e: [float(r[2]) for r in rows if r[1] == e] for e in engines}
rss = {e: max(int(r[3]) for r in rows if r[1] == e) for e in engines}
print(f"interactions, {sys.argv[3]} events, alternating rounds (wall s; peak RSS MiB)")
for e in engines:
    w = walls[e]
    print(f"  {e:8} median {statistics.median(w):6.2f}  fastest {min(w):6.2f}  RSS {rss[e]:5}"
          f"   runs {' '.join(f'{x:.2f}' for x in w)}")
peers = [e for e in engines if e != "pengine"]
status = 0
if peers:
    best = min(peers, key=lambda e: statistics.median(walls[e]))
    ratios = [p / min(walls[e][i] for e in peers) for i, p in enumerate(walls["pengine"])]
    print(f"  ratio pengine / {best}: median {statistics.median(walls['pengine']) / statistics.median(walls[best]):.2f}"
          f" (per round, against that round's faster peer: {' '.join(f'{r:.2f}' for r in ratios)})")
    for e in peers:
        same = json.load(open(os.path.join(sys.argv[2], f"{e}.json")))["jobs"]["interactions"].get("same_rows")
        print(f"  same rows as pengine, {e}: {'yes' if same else 'NO'}")
        status = status or (0 if same else 1)
sys.exit(status)
EOF
