#!/usr/bin/env bash
# End-to-end benchmark (benches/README.md): generate an export of N events, run the three reference
# jobs of benches/jobs/ on it with pengine, run the same jobs in DuckDB on the same files
# (benches/duckdb/run.py), check that both wrote the same rows, and print one table.
#
#   benches/e2e.sh [--no-duckdb] [--repeat R] [N] [pengine run arguments...]
#
# N defaults to 1,000,000. Arguments after N go to every `pengine run` (e.g. --memory-limit 512MiB);
# --threads N given there is also given to DuckDB. --no-duckdb may appear anywhere. --repeat R
# (before N) runs every job R times in each engine and reports each engine's fastest run, with
# all the runs' times and the ratio of the two engines' medians listed under the table (timings
# on a shared VM vary by 10-20 %).
# Exit code: 0; 1 when a pengine job and its DuckDB job wrote different rows; 2 when a job failed.
#
# Environment (all optional):
#   BENCH_DIR         where exports, outputs and logs go (default /tmp/pengine-bench)
#   PENGINE_BIN       the pengine binary to time; when set, pengine is not built
#   GEN_EXPORT        the gen_export example binary; when set (or the export exists), not built
#   CARGO_TARGET_DIR  where cargo builds (default ~/.cache/pengine-target)
#   DUCKDB_PYTHON     a Python with the duckdb module (>= 2.0) to use as it is
#   BENCH_VENV        the venv made for DuckDB when no Python has it (default
#                     ~/.cache/pengine-bench-venv; created and `pip install duckdb` when missing)
#   DUCKDB_ARGS       extra arguments for run.py (e.g. "--memory-limit 1GB")
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

duckdb=1
repeat=1
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --no-duckdb) duckdb=0 ;;
    --repeat) repeat=${2:-}; shift ;;
    --repeat=*) repeat=${1#--repeat=} ;;
    -h|--help) usage; exit 0 ;;
    *) args+=("$1") ;;
  esac
  shift
done
case $repeat in
  ''|*[!0-9]*|0) echo "e2e.sh: --repeat takes a positive number of runs" >&2; exit 2 ;;
esac
set -- ${args[@]+"${args[@]}"}
events=1000000
if [ $# -gt 0 ]; then
  case $1 in
    ''|*[!0-9]*) ;;                          # not a number: N defaulted, all of it is for pengine
    *) events=$1; shift ;;
  esac
fi
if [ "$events" -lt 1 ]; then
  echo "e2e.sh: N must be a positive number of events" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-/tmp/pengine-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/pengine-target}
data=$bench/export-$events
out=$bench/out-$events
duck_out=$bench/duckdb-out-$events
logs=$bench/logs-$events
mkdir -p "$bench" "$logs"

command -v python3 >/dev/null || { echo "e2e.sh: python3 is needed (to read the reports)" >&2; exit 2; }

# ---- build (skipped for what PENGINE_BIN / GEN_EXPORT provide) --------------------------------
targets=()
[ -n "${PENGINE_BIN:-}" ] || targets+=(--bin pengine)
[ -n "${GEN_EXPORT:-}" ] || [ -d "$data" ] || targets+=(--example gen_export)
if [ ${#targets[@]} -gt 0 ]; then
  cargo build --release --quiet "${targets[@]}" --manifest-path "$root/Cargo.toml"
fi
pengine=${PENGINE_BIN:-$CARGO_TARGET_DIR/release/pengine}
gen=${GEN_EXPORT:-$CARGO_TARGET_DIR/release/examples/gen_export}

# ---- data: generated once per N, into a temporary folder renamed when complete ----------------
if [ ! -d "$data" ]; then
  rm -rf "$data.partial"
  "$gen" --events "$events" --out "$data.partial"
  mv "$data.partial" "$data"
fi

# ---- DuckDB: a Python with duckdb >= 2.0, else a venv with it, else skipped --------------------
has_duckdb() {
  "$1" -c 'import sys, duckdb; sys.exit(int(duckdb.__version__.split(".")[0]) < 2)' 2>/dev/null
}
skip() {  # the reason is repeated under the table
  echo "e2e.sh: DuckDB skipped: $*" >&2
  echo "$*" > "$logs/duckdb.skipped"
}
rm -f "$logs/duckdb.skipped"
py=
if [ "$duckdb" = 1 ]; then
  venv=${BENCH_VENV:-$HOME/.cache/pengine-bench-venv}
  if [ -n "${DUCKDB_PYTHON:-}" ]; then
    if has_duckdb "$DUCKDB_PYTHON"; then py=$DUCKDB_PYTHON
    else skip "DUCKDB_PYTHON=$DUCKDB_PYTHON has no duckdb >= 2.0"; fi
  elif has_duckdb "$venv/bin/python"; then
    py=$venv/bin/python
  elif has_duckdb python3; then
    py=python3
  else
    echo "e2e.sh: installing duckdb into $venv (pip, from PyPI)" >&2
    if [ ! -x "$venv/bin/python" ] && ! python3 -m venv "$venv" >"$logs/venv.log" 2>&1; then
      skip "'python3 -m venv $venv' failed (on Debian/Ubuntu: apt-get install python3-venv)," \
           "see $logs/venv.log; or set DUCKDB_PYTHON to a Python that has duckdb >= 2.0"
    elif ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 20 \
           --retries 1 'duckdb>=2.0' >"$logs/pip.log" 2>&1; then
      skip "'pip install duckdb' into $venv failed (PyPI unreachable? a venv left without pip" \
           "by a failed 'python3 -m venv': delete it), see $logs/pip.log; or set DUCKDB_PYTHON" \
           "to a Python that has duckdb >= 2.0"
    elif has_duckdb "$venv/bin/python"; then
      py=$venv/bin/python
    else
      skip "duckdb installed in $venv does not load, see $logs/pip.log"
    fi
  fi
fi

# ---- pengine: each job in its own process, timed by /usr/bin/time -v ----------------------------
[ -x /usr/bin/time ] ||
  echo "e2e.sh: /usr/bin/time not found (apt-get install time): no peak RSS for pengine" >&2
now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi; }
# Each run's logs go to <job>.run<i>.*; the fastest run's (or a failed run's) become <job>.*.
for job in interactions items users; do
  : > "$logs/$job.runs"
  best=
  for i in $(seq 1 "$repeat"); do
    run=$logs/$job.run$i
    rm -f "$run.time"
    timer=()
    [ ! -x /usr/bin/time ] || timer=(/usr/bin/time -v -o "$run.time")
    # As run.py does for DuckDB: the job's previous parts are removed and dirty pages written back
    # before the clock starts, so that no run pays for deleting or flushing an earlier run's files.
    rm -rf "${out:?}/$job"
    sync
    head -1 /proc/stat > "$run.cpu" 2>/dev/null || true
    start=$(now)
    rc=0
    ${timer[@]+"${timer[@]}"} "$pengine" run "$root/benches/jobs/$job.sql" \
      --var "source=$data" -o "$out" --json --no-progress -q "$@" \
      > "$run.json" 2> "$run.stderr" || rc=$?
    echo "$start $(now)" > "$run.clock"
    head -1 /proc/stat >> "$run.cpu" 2>/dev/null || true
    echo "$rc" > "$run.rc"
    # 6: a dataset-level check failed (e.g. under 1,000 interactions); the data is written anyway.
    if [ "$rc" != 0 ] && [ "$rc" != 6 ]; then
      echo "e2e.sh: pengine $job failed (exit $rc):" >&2
      tail -20 "$run.stderr" >&2
      best=$i
      break
    fi
    awk -v i="$i" '{ printf "%d %.2f\n", i, $2 - $1 }' "$run.clock" >> "$logs/$job.runs"
  done
  [ -n "$best" ] || best=$(sort -k2 -g "$logs/$job.runs" | head -1 | cut -d' ' -f1)
  for ext in time cpu json stderr clock rc; do
    rm -f "$logs/$job.$ext"
    [ ! -e "$logs/$job.run$best.$ext" ] || cp "$logs/$job.run$best.$ext" "$logs/$job.$ext"
  done
  rm -f "$logs/$job".run*.*
done

# ---- DuckDB: the same jobs on the same files, rows compared with pengine's ---------------------
rm -f "$logs/duckdb.json"
if [ -n "$py" ]; then
  threads=()
  prev=
  for a in "$@"; do
    case $a in --threads=*) threads=(--threads "${a#--threads=}") ;; esac
    [ "$prev" = --threads ] && threads=(--threads "$a")
    prev=$a
  done
  # shellcheck disable=SC2086 # DUCKDB_ARGS is a list of words
  "$py" "$root/benches/duckdb/run.py" --export "$data" --out "$duck_out" --pengine-out "$out" \
    --json "$logs/duckdb.json" --repeat "$repeat" ${threads[@]+"${threads[@]}"} ${DUCKDB_ARGS:-} \
    > "$logs/duckdb.log" 2>&1 || true
  [ -f "$logs/duckdb.json" ] || { echo "e2e.sh: run.py failed:" >&2; tail -20 "$logs/duckdb.log" >&2; }
fi

# ---- one table ---------------------------------------------------------------------------------
python3 - "$logs" "$data" "$events" "$pengine" "${py:-}" "$duckdb" "$*" <<'PY'  # its exit code is the script's
import datetime, json, os, re, statistics, sys

logs, data, events, pengine, py, duckdb_wanted, pengine_args = sys.argv[1:8]
JOBS = ("interactions", "items", "users")
# what each job reads: its input MB/s is these bytes over its wall time
INPUTS = {"interactions": ["events", "items.csv"], "items": ["items.csv"], "users": ["users.parquet"]}


def size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def others_cpu(job, own_cpu_s):
    """Share of the machine's CPU used by other processes while the job ran; None for a job under
    a second, where /proc/stat's 10 ms ticks and process start-up make it noise."""
    try:
        lines = open(os.path.join(logs, f"{job}.cpu")).read().split("\n")
        before, after = ([int(x) for x in line.split()[1:]] for line in lines[:2])
    except (OSError, ValueError):
        return None
    busy = lambda f: sum(f[:8]) - f[3] - f[4]
    total = sum(after[:8]) - sum(before[:8])
    hz = os.sysconf("SC_CLK_TCK")
    if own_cpu_s is None or total / hz / os.cpu_count() < 1:
        return None
    return max(0.0, (busy(after) - busy(before)) / hz - own_cpu_s) / (total / hz)


duck = None
if os.path.exists(os.path.join(logs, "duckdb.json")):
    duck = json.load(open(os.path.join(logs, "duckdb.json")))
failed_run_py = bool(py) and duck is None  # DuckDB was there but run.py did not finish

rows_out, differ, failed, disturbed = [], False, failed_run_py, False
for job in JOBS:
    rc = open(os.path.join(logs, f"{job}.rc")).read().strip()
    report = None
    if rc in ("0", "6"):  # 6: a dataset-level check failed, the data is written
        report = json.load(open(os.path.join(logs, f"{job}.json")))
    else:
        failed = True
    time_text = ""
    if os.path.exists(os.path.join(logs, f"{job}.time")):
        time_text = open(os.path.join(logs, f"{job}.time")).read()
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_text)
    rss = int(m.group(1)) / 1024 if m else None
    cpu = [float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", time_text)]
    others = [others_cpu(job, sum(cpu) if len(cpu) == 2 else None)]
    row = {"job": job}
    if report:
        # the whole process, mapping file parsing and publication included (the report's
        # wall_seconds stops when the data is staged)
        start, end = (float(x) for x in open(os.path.join(logs, f"{job}.clock")).read().split())
        wall = end - start
        in_bytes = sum(size(os.path.join(data, name)) for name in INPUTS[job])
        row.update(p_wall=f"{wall:.2f}", p_rows=str(report["rows"]["written"]),
                   p_rate=f"{report['rows']['written'] / wall:.0f}",
                   p_in=f"{in_bytes / 1e6 / wall:.1f}",
                   p_out=f"{report['bytes_written'] / 1e6 / wall:.1f}",
                   p_rss=f"{rss:.0f}" if rss is not None else "?")
    else:
        row.update(p_wall=f"exit {rc}")
    d = (duck or {}).get("jobs", {}).get(job)
    if d and "error" not in d:
        row.update(d_wall=f"{d['wall_seconds']:.2f}", d_rss=f"{d['peak_rss_bytes'] / 2**20:.0f}")
        if report:  # else pengine failed: its output folder holds an older run's rows
            row["ratio"] = f"{wall / d['wall_seconds']:.2f}"
            same = d.get("same_rows")
            row["same"] = "?" if same is None else "yes" if same else "NO"
            differ |= same is False
        if d["proc_seconds"] >= 1:
            others.append(d.get("others_cpu"))
    elif d:
        row.update(d_wall="failed", same="?")
        failed = True
    known = [o for o in others if o is not None]
    row["others"] = f"{max(known):.0%}" if known else "-"
    disturbed |= bool(known) and max(known) > 0.10
    rows_out.append(row)

cols = [("job", "job", "<"), ("p_wall", "wall_s", ">"), ("p_rows", "rows", ">"),
        ("p_rate", "rows/s", ">"), ("p_in", "in_MB/s", ">"), ("p_out", "out_MB/s", ">"),
        ("p_rss", "RSS_MiB", ">"), ("d_wall", "wall_s", ">"), ("d_rss", "RSS_MiB", ">"),
        ("ratio", "ratio", ">"), ("same", "same_rows", ">"), ("others", "others_cpu", ">")]
width = {k: max(len(h), *(len(r.get(k, "-")) for r in rows_out)) for k, h, _ in cols}
line = lambda cells: "  ".join(f"{c:{a}{width[k]}}" for (k, _, a), c in zip(cols, cells))
p_span = sum(width[k] for k, _, _ in cols[1:7]) + 2 * 5
d_span = sum(width[k] for k, _, _ in cols[7:9]) + 2
print()
print(" " * width["job"] + "  " + f"{' pengine ':-^{p_span}}" + "  " + f"{' duckdb ':-^{d_span}}")
print(line([h for _, h, _ in cols]))
for r in rows_out:
    print(line([r.get(k, "-") for k, _, _ in cols]))

version = "?"
try:
    version = json.load(open(os.path.join(logs, "interactions.json")))["pengine_version"]
except (OSError, ValueError, KeyError):
    pass
print()
print(f"N = {int(events):,} events ({data}); {os.cpu_count()} cores; "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; pengine {version} ({pengine})"
      + (f" run ... {pengine_args}" if pengine_args else ""))
if duck:
    s = duck["settings"]
    print(f"duckdb {duck['duckdb_version']} ({py}): threads={s['threads']} "
          f"memory_limit={s['memory_limit']} preserve_insertion_order=false; its peak RSS includes "
          f"{duck['baseline_rss_bytes'] / 2**20:.0f} MiB for Python with duckdb loaded")
elif failed_run_py:
    print(f"duckdb: run.py failed, see {logs}/duckdb.log")
elif duckdb_wanted == "1":
    reason = "?"
    if os.path.exists(os.path.join(logs, "duckdb.skipped")):
        reason = open(os.path.join(logs, "duckdb.skipped")).read().strip()
    print(f"duckdb: not run: {reason}")
else:
    print("duckdb: not run (--no-duckdb)")
print("ratio = pengine wall_s / duckdb wall_s (above 1: pengine slower); MB = 10^6 bytes; "
      f"details in {logs}/")
for job in JOBS:
    if open(os.path.join(logs, f"{job}.rc")).read().strip() == "6":
        report = json.load(open(os.path.join(logs, f"{job}.json")))
        errors = [f["message"] for f in report["checks"]["findings"] if f["severity"] == "error"]
        print(f"{job}: pengine exit 6 (written, but Personalize would not train on it): "
              + "; ".join(errors))
    d = (duck or {}).get("jobs", {}).get(job, {})
    if d.get("same_rows") is False and rows_out[JOBS.index(job)].get("same") == "NO":
        print(f"{job}: rows differ:\n    " + "\n    ".join(d.get("comparison", [])))
    if "error" in d:
        print(f"{job}: duckdb failed: {d['error']}")
for job in JOBS:
    runs_file = os.path.join(logs, f"{job}.runs")
    p_runs = [line.split()[1] for line in open(runs_file)] if os.path.exists(runs_file) else []
    d_runs = (duck or {}).get("jobs", {}).get(job, {}).get("runs_wall_seconds", [])
    if len(p_runs) > 1 or len(d_runs) > 1:
        line = (f"{job}: fastest of {max(len(p_runs), len(d_runs))} runs; pengine "
                + " ".join(p_runs) + " s; duckdb " + " ".join(f"{w:.2f}" for w in d_runs) + " s")
        if p_runs and d_runs:
            # The fastest runs can flatter either engine: the medians' ratio too.
            p_median = statistics.median(float(w) for w in p_runs)
            d_median = statistics.median(d_runs)
            if d_median > 0:
                line += f"; median ratio {p_median / d_median:.2f}"
        print(line)
if disturbed:
    print("others_cpu above 10 %: other processes used the CPU meanwhile; re-run for timings")
sys.exit(1 if differ else 2 if failed else 0)
PY
