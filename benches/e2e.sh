#!/usr/bin/env bash
# End-to-end benchmark (benches/README.md): generate an export of N events, run the reference jobs
# of benches/jobs/ on it with pengine (the interactions job twice: as a user writes it, columns
# inferred, and with the event columns declared), run the same jobs with DuckDB
# (benches/duckdb/run.py) and Polars (benches/polars/run.py) on the same files, check that every
# engine wrote the same rows, and print one table.
#
#   benches/e2e.sh [--one-file] [--no-duckdb] [--no-polars] [--repeat R] [N] [pengine run args...]
#
# N defaults to 1,000,000. Arguments after N go to every `pengine run` (e.g. --memory-limit 512MiB);
# --threads N given there is also given to the peers. --one-file uses an export whose events are in
# one newline-delimited file (export-N-onefile) instead of thousands of small hourly files
# (export-N). --no-duckdb / --no-polars leave a peer out; they may appear anywhere. --repeat R
# (before N) runs every job R times in each engine and reports each engine's fastest run, with all
# the runs' times and the median ratio listed under the table (timings on a shared VM vary by
# 10-20 %).
# Exit code: 0; 1 when two engines (or pengine's two interactions jobs) wrote different rows; 2 when
# a job failed.
#
# Environment (all optional):
#   BENCH_DIR         where exports, outputs and logs go (default /tmp/pengine-bench)
#   PENGINE_BIN       the pengine binary to time; when set, pengine is not built
#   GEN_EXPORT        the gen_export example binary; when set (or the export exists), not built
#   CARGO_TARGET_DIR  where cargo builds (default ~/.cache/pengine-target)
#   DUCKDB_PYTHON     a Python with the duckdb module (>= 2.0) to use as it is
#   POLARS_PYTHON     a Python with the polars module (>= 2.1) to use as it is
#   BENCH_VENV        the venv made for the peers when no Python has them (default
#                     ~/.cache/pengine-bench-venv; created, and `pip install` of what is missing)
#   DUCKDB_ARGS       extra arguments for duckdb/run.py (e.g. "--memory-limit 1GB")
#   POLARS_ARGS       extra arguments for polars/run.py
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

duckdb=1
polars=1
layout=hourly
repeat=1
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --no-duckdb) duckdb=0 ;;
    --no-polars) polars=0 ;;
    --one-file) layout=one-file ;;
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
tag=$events
[ "$layout" = hourly ] || tag=$events-onefile
data=$bench/export-$tag
out=$bench/out-$tag                      # pengine: the inferred interactions job, items, users
declared_out=$bench/out-$tag-declared    # pengine: the declared interactions job
logs=$bench/logs-$tag
mkdir -p "$bench" "$logs"

command -v python3 >/dev/null ||
  { echo "e2e.sh: python3 is needed (to read the reports)" >&2; exit 2; }

# ---- build (skipped for what PENGINE_BIN / GEN_EXPORT provide) --------------------------------
targets=()
[ -n "${PENGINE_BIN:-}" ] || targets+=(--bin pengine)
[ -n "${GEN_EXPORT:-}" ] || [ -d "$data" ] || targets+=(--example gen_export)
if [ ${#targets[@]} -gt 0 ]; then
  cargo build --release --quiet "${targets[@]}" --manifest-path "$root/Cargo.toml"
fi
pengine=${PENGINE_BIN:-$CARGO_TARGET_DIR/release/pengine}
gen=${GEN_EXPORT:-$CARGO_TARGET_DIR/release/examples/gen_export}

# ---- data: generated once per N and layout, into a temporary folder renamed when complete -------
# The stamp names the generator's version (bump it when examples/gen_export.rs writes other data):
# an export made by another version is used, with a warning, never deleted here.
stamp="gen_export 2 --events $events --layout $layout"
if [ ! -d "$data" ]; then
  rm -rf "$data.partial"
  "$gen" --events "$events" --layout "$layout" --out "$data.partial"
  echo "$stamp" > "$data.partial/.e2e-export"
  mv "$data.partial" "$data"
elif [ "$(cat "$data/.e2e-export" 2>/dev/null)" != "$stamp" ]; then
  echo "e2e.sh: $data was made by another version of gen_export (its .e2e-export is not" \
       "'$stamp'): delete it to generate it anew" >&2
fi

# ---- peers: a Python with the module, else the venv, else python3, else the venv made now -------
venv=${BENCH_VENV:-$HOME/.cache/pengine-bench-venv}
has_module() {  # PYTHON MODULE MAJOR.MINOR: the module loads and its version is at least that
  "$1" -c 'import importlib, sys
m = importlib.import_module(sys.argv[1])
have = tuple(int(x) for x in m.__version__.split(".")[:2])
sys.exit(have < tuple(int(x) for x in sys.argv[2].split(".")))' "$2" "$3" 2>/dev/null
}
skip() {  # PEER REASON...: the reason is repeated under the table
  local peer=$1
  shift
  echo "e2e.sh: $peer skipped: $*" >&2
  echo "$*" > "$logs/$peer.skipped"
}
# find_python PEER MIN_VERSION: sets py_<peer> to a Python that has the module, or installs it into
# the venv (pip, from PyPI), or says why the peer is skipped.
find_python() {
  local peer=$1 min=$2 var py
  var=$(echo "$peer" | tr '[:lower:]' '[:upper:]')_PYTHON
  py=
  if [ -n "${!var:-}" ]; then
    if has_module "${!var}" "$peer" "$min"; then py=${!var}
    else skip "$peer" "$var=${!var} has no $peer >= $min"; fi
  elif has_module "$venv/bin/python" "$peer" "$min"; then
    py=$venv/bin/python
  elif has_module python3 "$peer" "$min"; then
    py=python3
  else
    echo "e2e.sh: installing $peer into $venv (pip, from PyPI)" >&2
    if [ ! -x "$venv/bin/python" ] && ! python3 -m venv "$venv" >"$logs/venv.log" 2>&1; then
      skip "$peer" "'python3 -m venv $venv' failed (on Debian/Ubuntu: apt-get install" \
           "python3-venv), see $logs/venv.log; or set $var to a Python that has $peer >= $min"
    elif ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 20 \
           --retries 1 "$peer>=$min" >"$logs/pip-$peer.log" 2>&1; then
      skip "$peer" "'pip install $peer' into $venv failed (PyPI unreachable? a venv left without" \
           "pip by a failed 'python3 -m venv': delete it), see $logs/pip-$peer.log; or set $var" \
           "to a Python that has $peer >= $min"
    elif has_module "$venv/bin/python" "$peer" "$min"; then
      py=$venv/bin/python
    else
      skip "$peer" "$peer installed in $venv does not load, see $logs/pip-$peer.log"
    fi
  fi
  printf -v "py_$peer" '%s' "$py"
}
rm -f "$logs/duckdb.skipped" "$logs/polars.skipped"
py_duckdb=
py_polars=
[ "$duckdb" = 0 ] || find_python duckdb 2.0
[ "$polars" = 0 ] || find_python polars 2.1

# ---- pengine: each job in its own process, timed by /usr/bin/time -v ----------------------------
[ -x /usr/bin/time ] ||
  echo "e2e.sh: /usr/bin/time not found (apt-get install time): no peak RSS for pengine" >&2
now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi; }
# Each run's logs go to <job>.run<i>.*; the fastest run's (or a failed run's) become <job>.*.
for job in interactions interactions_declared items users; do
  job_out=$out
  dataset=$job
  if [ "$job" = interactions_declared ]; then job_out=$declared_out; dataset=interactions; fi
  : > "$logs/$job.runs"
  best=
  for i in $(seq 1 "$repeat"); do
    run=$logs/$job.run$i
    rm -f "$run.time"
    timer=()
    [ ! -x /usr/bin/time ] || timer=(/usr/bin/time -v -o "$run.time")
    # As the peers' runs do: the job's previous parts are removed and dirty pages written back
    # before the clock starts, so that no run pays for deleting or flushing an earlier run's files.
    rm -rf "${job_out:?}/$dataset"
    sync
    head -1 /proc/stat > "$run.cpu" 2>/dev/null || true
    start=$(now)
    rc=0
    ${timer[@]+"${timer[@]}"} "$pengine" run "$root/benches/jobs/$job.sql" \
      --var "source=$data" -o "$job_out" --json --no-progress -q "$@" \
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

# The two interactions jobs must write the same rows.
written() { case $(cat "$logs/$1.rc") in 0|6) return 0 ;; *) return 1 ;; esac; }
rm -f "$logs/declared.json"
if written interactions && written interactions_declared; then
  python3 "$root/benches/peers.py" compare interactions "$declared_out/interactions" "$out" \
    --label declared --json "$logs/declared.json" > "$logs/declared.log" 2>&1 || true
fi

# ---- peers: the same jobs on the same files, rows compared with pengine's -----------------------
threads=()
prev=
for a in "$@"; do
  case $a in --threads=*) threads=(--threads "${a#--threads=}") ;; esac
  [ "$prev" = --threads ] && threads=(--threads "$a")
  prev=$a
done
for peer in duckdb polars; do
  py_var=py_$peer
  rm -f "$logs/$peer.json"
  [ -n "${!py_var}" ] || continue
  extra_var=$(echo "$peer" | tr '[:lower:]' '[:upper:]')_ARGS
  # shellcheck disable=SC2086 # DUCKDB_ARGS / POLARS_ARGS are lists of words
  "${!py_var}" "$root/benches/$peer/run.py" --export "$data" --out "$bench/$peer-out-$tag" \
    --pengine-out "$out" --json "$logs/$peer.json" --repeat "$repeat" \
    ${threads[@]+"${threads[@]}"} ${!extra_var:-} > "$logs/$peer.log" 2>&1 || true
  [ -f "$logs/$peer.json" ] ||
    { echo "e2e.sh: $peer/run.py failed:" >&2; tail -20 "$logs/$peer.log" >&2; }
done

# ---- one table (its exit code is the script's) ---------------------------------------------------
python3 "$root/benches/e2e_table.py" --logs "$logs" --data "$data" --events "$events" \
  --layout "$layout" --pengine "$pengine" --pengine-args "$*" \
  --peer "duckdb=$duckdb:$py_duckdb" --peer "polars=$polars:$py_polars"
