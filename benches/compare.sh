#!/usr/bin/env bash
# Compares two pengine binaries on one reference job by alternating runs (A, B, A, B, ...), so that
# the drift of a shared machine between half hours hits both alike; prints each binary's median
# and fastest wall time and median CPU time (user + system).
#
#   benches/compare.sh [-n RUNS] [-j JOB] BINARY_A BINARY_B [pengine run arguments...]
#
# RUNS: runs per binary (default 10). JOB: interactions (default, the event columns inferred),
# interactions_declared, interactions_csv, items or users. The export is $BENCH_DIR/export-1000000 (default
# /tmp/pengine-bench; make it with `benches/e2e.sh --no-duckdb --no-polars`) or $EXPORT. As in
# e2e.sh, the previous output is deleted and `sync` runs before every run.
set -euo pipefail

runs=10
job=interactions
while getopts "n:j:h" opt; do
  case $opt in
    n) runs=$OPTARG ;;
    j) job=$OPTARG ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || { echo "compare.sh: two pengine binaries needed (-h for help)" >&2; exit 2; }
a=$1 b=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
export_dir=${EXPORT:-${BENCH_DIR:-/tmp/pengine-bench}/export-1000000}
[ -d "$export_dir" ] || { echo "compare.sh: no export at $export_dir" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "compare.sh: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
out=$(mktemp -d)
times=$(mktemp)
trap 'rm -rf "$out" "$times"' EXIT

for _ in $(seq "$runs"); do
  for side in A B; do
    bin=$a
    [ "$side" = B ] && bin=$b
    rm -rf "${out:?}" && mkdir "$out"
    sync
    /usr/bin/time -f "$side %e %U %S" -a -o "$times" "$bin" run "$root/benches/jobs/$job.sql" \
      --var "source=$export_dir" -o "$out" --json --no-progress -q "$@" > /dev/null
  done
done

python3 - "$times" "$a" "$b" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
for side, binary in (("A", sys.argv[2]), ("B", sys.argv[3])):
    wall = [float(r[1]) for r in rows if r[0] == side]
    cpu = [float(r[2]) + float(r[3]) for r in rows if r[0] == side]
    print(f"{side} {binary}: wall median {statistics.median(wall):.3f} s, fastest {min(wall):.3f} s, "
          f"CPU median {statistics.median(cpu):.3f} s ({len(wall)} runs)")
PY
