#!/usr/bin/env bash
# Local against cluster: the headline job (columns inferred) run in this process and on a cluster
# of pengine's own processes on this machine (one scheduler, two executors), in alternating
# rounds; prints each side's median and fastest wall time and checks that both wrote the same rows.
#
#   benches/cluster.sh [-n ROUNDS] [-s SLOTS] EXPORT [pengine run arguments...]
#
# EXPORT: a folder made by `benches/e2e.sh` (e.g. /tmp/pengine-bench/export-1000000). SLOTS: task
# slots per executor (default: one per core). PENGINE_BIN: the binary (default: the release build).
# EXECUTOR_ARGS: more arguments for the executors (e.g. "--memory-limit 512MiB").
# The cluster is started before the first round and stopped at the end; the client's own time
# (planning: listing and inferring the sources) is in the cluster's wall time.
set -euo pipefail

rounds=3
slots=0
while getopts "n:s:h" opt; do
  case $opt in
    n) rounds=$OPTARG ;;
    s) slots=$OPTARG ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "cluster.sh: an export folder is needed (-h for help)" >&2; exit 2; }
export_dir=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
pengine=${PENGINE_BIN:-$root/target/release/pengine}
[ -x "$pengine" ] || { echo "cluster.sh: no pengine binary at $pengine" >&2; exit 2; }
[ -d "$export_dir" ] || { echo "cluster.sh: no export at $export_dir" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "cluster.sh: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$pengine" cluster scheduler --bind 127.0.0.1:0 > "$work/scheduler.out" 2> "$work/scheduler.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/scheduler.out" 2>/dev/null && break; sleep 0.1; done
scheduler=$(sed -n 's/.*listening on //p' "$work/scheduler.out")
[ -n "$scheduler" ] || { echo "cluster.sh: the scheduler did not start" >&2; exit 2; }
for i in 1 2; do
  # shellcheck disable=SC2086 # the extra arguments are words
  "$pengine" cluster executor --scheduler "$scheduler" --slots "$slots" \
    --work-dir "$work/executor-$i" ${EXECUTOR_ARGS:-} > /dev/null 2> "$work/executor-$i.err" &
  pids+=($!)
done
sleep 2

for _ in $(seq "$rounds"); do
  for side in local cluster; do
    rm -rf "${work:?}/$side"
    sync
    extra=()
    [ "$side" = cluster ] && extra=(--cluster "$scheduler")
    /usr/bin/time -f "$side %e %M" -a -o "$work/times" "$pengine" run \
      "$root/benches/jobs/interactions.sql" --var "source=$export_dir" -o "$work/$side" \
      --json --no-progress -q "${extra[@]}" "$@" > "$work/$side.json"
  done
done

# The executors' peak resident memory over every round (VmHWM), before they are stopped.
for pid in "${pids[@]:1}"; do
  awk '/VmHWM/ { print $2 }' "/proc/$pid/status" >> "$work/executor-rss"
done

rows() { cat "$1"/interactions/*.csv | grep -v '^USER_ID,' | sort | md5sum | cut -d' ' -f1; }
[ "$(rows "$work/local")" = "$(rows "$work/cluster")" ] \
  || { echo "cluster.sh: the cluster wrote other rows than the local run" >&2; exit 1; }

python3 - "$work/times" "$work/cluster.json" "$work/executor-rss" <<'PY'
import json, statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
report = json.load(open(sys.argv[2]))
executor_rss = [int(line) // 1024 for line in open(sys.argv[3]) if line.strip()]
for side in ("local", "cluster"):
    wall = [float(r[1]) for r in rows if r[0] == side]
    rss = [int(r[2]) for r in rows if r[0] == side]
    print(f"{side}: wall median {statistics.median(wall):.2f} s, fastest {min(wall):.2f} s "
          f"(runs {' '.join(f'{w:.2f}' for w in wall)}), client peak RSS {max(rss) // 1024} MiB")
print(f"cluster: {len(report['cluster']['executors'])} executors wrote "
      f"{len(report['files'])} parts in {report['cluster']['tasks']} task attempts; "
      f"{report['rows']['written']} rows, the same as the local run's; executors' peak RSS "
      f"{' and '.join(f'{r} MiB' for r in executor_rss)}")
PY
