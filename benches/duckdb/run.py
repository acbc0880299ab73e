#!/usr/bin/env python3
"""DuckDB side of the end-to-end benchmark: the reference jobs of benches/jobs/ as DuckDB SQL.

    run.py --export DIR --out DIR [--pengine-out DIR] [--jobs interactions,items,users]
           [--threads N] [--memory-limit SIZE] [--temp-dir DIR] [--json FILE]

Runs benches/duckdb/{interactions,items,users}.sql on the export in DIR (the layout written by
examples/gen_export.rs), each in its own child process, and prints per job the wall time, rows
written, rows/s and peak RSS. With --pengine-out it then compares each job's rows with pengine's
output of the same export (CSV parts parsed in the Personalize dialect, columns keyed by header
name, rows compared as multisets) and exits 1 when any job differs (2 when a job fails).
--json FILE also writes the settings and every job's figures and comparison as JSON (benches/e2e.sh
reads it to print its combined table).

Needs the `duckdb` Python module (e.g. a venv with `pip install duckdb`); nothing else.
"""

import argparse
import csv
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = ("interactions", "items", "users")


# ----------------------------------------------------------------------------------------------
# Child: one job in this process.


def substitute(sql, values):
    """Fills ${name} placeholders; an unknown one is an error."""

    def fill(match):
        name = match.group(1)
        if name not in values:
            raise SystemExit(f"unknown placeholder ${{{name}}} in the SQL")
        return values[name].replace("'", "''")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", fill, sql)


def run_child(args):
    import duckdb  # imported here so that the parent does not pay for it

    sql_file = os.path.join(HERE, f"{args.child}.sql")
    sql = substitute(open(sql_file, encoding="utf-8").read(),
                     {"source": os.path.abspath(args.export), "output": os.path.abspath(args.out)})
    started = time.perf_counter()
    con = duckdb.connect(":memory:")
    # DuckDB's tuning advice (guides/performance/how_to_tune_workloads, environment, oom):
    # threads = cores, a memory limit (1-4 GB per thread is the stated best practice; the default is
    # 80 % of RAM), an explicit spill folder, and preserve_insertion_order = false for large
    # imports/exports. None of these jobs needs an order.
    con.execute(f"SET threads = {int(args.threads)}")
    con.execute("SET memory_limit = ?", [args.memory_limit])
    con.execute("SET temp_directory = ?", [args.temp_dir])
    con.execute("SET preserve_insertion_order = false")
    try:
        rows = con.execute(sql).fetchall()[0][0]  # the last statement is the COPY: rows written
    except duckdb.Error as e:
        print(f"{args.child}.sql: {e}", file=sys.stderr)
        return 1
    con.close()
    wall = time.perf_counter() - started
    print(json.dumps({"job": args.child, "rows": rows, "wall_seconds": wall,
                      "duckdb_version": duckdb.__version__}))
    return 0


# ----------------------------------------------------------------------------------------------
# Parent: run the jobs, measure, compare.


def cpu_ticks():
    """(busy, total) jiffies of the whole machine from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def run_job(job, args):
    """Runs one job in a child process; returns (child report, process wall s, peak RSS bytes,
    share of the machine's CPU used by other processes meanwhile, or None)."""
    out_dir = os.path.join(args.out, job)
    os.makedirs(out_dir, exist_ok=True)
    for old in glob.glob(os.path.join(out_dir, "part-*.csv")):
        os.remove(old)
    os.makedirs(args.temp_dir, exist_ok=True)
    spill = tempfile.mkdtemp(prefix=f"duckdb-{job}-", dir=args.temp_dir)  # removed afterwards
    cmd = [sys.executable, os.path.abspath(__file__), "--child", job, "--export", args.export,
           "--out", args.out, "--threads", str(args.threads), "--memory-limit", args.memory_limit,
           "--temp-dir", spill]
    time_bin = "/usr/bin/time"
    use_time = os.access(time_bin, os.X_OK)
    if use_time:
        cmd = [time_bin, "-v"] + cmd
    # Dirty pages (earlier runs' output) written back first, as e2e.sh does before pengine's runs.
    os.sync()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        ticks_before = cpu_ticks()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        # wait4 gives this child's own rusage (peak RSS), also when /usr/bin/time is missing.
        _, status, usage = os.wait4(proc.pid, 0)
        proc_wall = time.perf_counter() - started
        ticks_after = cpu_ticks()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    shutil.rmtree(spill, ignore_errors=True)
    if proc.returncode != 0:
        # the child's own messages, without /usr/bin/time's report
        message = re.split(r"\n?(?:Command exited with|\tCommand being timed)", stderr)[0].strip()
        raise RuntimeError(f"exit {proc.returncode}: {message}")
    others = None
    if ticks_before and ticks_after and ticks_after[1] > ticks_before[1]:
        hz = os.sysconf("SC_CLK_TCK")
        busy = (ticks_after[0] - ticks_before[0]) / hz
        total = (ticks_after[1] - ticks_before[1]) / hz
        mine = usage.ru_utime + usage.ru_stime
        others = max(0.0, busy - mine) / total
    rss_kb = None
    if use_time:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
        rss_kb = int(m.group(1)) if m else None
    if rss_kb is None:
        rss_kb = usage.ru_maxrss  # kilobytes on Linux
    report = json.loads(stdout.strip().splitlines()[-1])
    return report, proc_wall, rss_kb * 1024, others


def baseline_rss(args):
    """Peak RSS of a child that only starts Python, imports duckdb and connects."""
    code = "import duckdb; duckdb.connect(':memory:').execute('SELECT 1').fetchall()"
    proc = subprocess.Popen([sys.executable, "-c", code])
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_maxrss * 1024


def part_files(folder):
    return sorted(glob.glob(os.path.join(folder, "part-*.csv")))


DIALECT = dict(delimiter=",", quotechar='"', escapechar="\\", doublequote=False, strict=True)


def read_parts(folder):
    """(header, rows) of the CSV parts of one dataset folder, in the Personalize dialect:
    double quotes, `"` and `\\` escaped by a backslash, a header row in every part. `rows()` reads
    the parts again at each call, one row at a time (a 20M-row dataset is not held in memory)."""
    files = part_files(folder)
    if not files:
        raise RuntimeError(f"no part-*.csv in {folder}")
    with open(files[0], newline="", encoding="utf-8") as f:
        header = next(csv.reader(f, **DIALECT))

    def rows():
        for path in files:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.reader(f, **DIALECT)
                part_header = next(reader)
                if part_header != header:
                    raise RuntimeError(f"{path}: header {part_header} differs from {header}")
                for record in reader:
                    if len(record) != len(header):
                        raise RuntimeError(f"{path}: a row of {len(record)} fields: {record}")
                    yield record

    return header, rows


FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(inf|nan)", re.I)


def numeric_columns(header, pengine_out, job, rows):
    """Columns whose values are compared as numbers: pengine's schema says int/long/float/double;
    without a schema file, columns whose values (in `rows()`, both outputs) all look numeric and
    some hold a '.' or an exponent."""
    schema_path = os.path.join(pengine_out, f"{job}.schema.json")
    if os.path.exists(schema_path):
        schema = json.load(open(schema_path))
        kinds = {}
        for field in schema["fields"]:
            types = field["type"] if isinstance(field["type"], list) else [field["type"]]
            for t in types:
                if t in ("int", "long", "float", "double"):
                    kinds[field["name"]] = t
        return {i for i, name in enumerate(header) if name in kinds}
    candidates, decimal = set(range(len(header))), set()
    seen = set()
    for row in rows():
        for i in list(candidates):
            v = row[i]
            if v == "":
                continue
            seen.add(i)
            if not FLOAT_TEXT.fullmatch(v):
                candidates.discard(i)
            elif i not in decimal and re.search(r"[.eE]", v):
                decimal.add(i)
    return candidates & seen & decimal


def normalise(value, numeric):
    """Null and empty are the same field; numbers compare by value (12 == 12.0 == 1.2e1)."""
    if value == "":
        return None
    if numeric:
        try:
            number = float(value)
        except ValueError:
            return value
        if math.isfinite(number) and number == int(number) and abs(number) < 2**63:
            return int(number)
        return number
    return value


PENGINE_ONE = 1 << 32  # counts: duckdb's in the low 32 bits, pengine's above


def digest(key):
    """64-bit hash of a normalised row. Hashing its repr (SipHash of one string) rather than the
    tuple avoids CPython's structured collisions (hash(-1) == hash(-2)); str hashes are salted per
    process, which is fine: both sides are hashed in this one."""
    return hash(repr(key))


def compare(job, duck_dir, pengine_out):
    """Compares the rows of both outputs as multisets, streaming: each normalised row is counted
    under its 64-bit hash (one dict entry per distinct row, about 100 bytes), and only when the
    counts differ are both outputs read again to show the rows behind them."""
    pengine_dir = os.path.join(pengine_out, job)
    d_header, d_rows = read_parts(duck_dir)
    p_header, p_rows = read_parts(pengine_dir)
    lines = []
    if [h.upper() for h in d_header] != p_header:
        lines.append(f"  header differs: duckdb {d_header} / pengine {p_header}")
    missing = [h for h in p_header if h not in [x.upper() for x in d_header]]
    if missing:
        lines.append(f"  columns missing in duckdb's output: {missing}")
        return False, lines
    d_order = [[x.upper() for x in d_header].index(h) for h in p_header]
    p_order = list(range(len(p_header)))

    def both_sides():  # every row of both outputs, columns in pengine's order
        for rows, order in ((p_rows, p_order), (d_rows, d_order)):
            for row in rows():
                yield [row[p] for p in order]

    numeric = numeric_columns(p_header, pengine_out, job, both_sides)
    flags = [i in numeric for i in range(len(p_header))]

    def keys(rows, order):
        for row in rows():
            yield tuple(normalise(row[p], n) for p, n in zip(order, flags))

    counts, n_duck, n_pengine = {}, 0, 0
    get = counts.get
    for key in keys(d_rows, d_order):
        h = digest(key)
        counts[h] = get(h, 0) + 1
        n_duck += 1
    for key in keys(p_rows, p_order):
        h = digest(key)
        counts[h] = get(h, 0) + PENGINE_ONE
        n_pengine += 1
    mask = PENGINE_ONE - 1
    distinct_duck = sum(1 for v in counts.values() if v & mask)
    distinct_pengine = sum(1 for v in counts.values() if v >> 32)
    only_duck = only_pengine = 0
    differing = {}
    for h, v in counts.items():
        d, p = v & mask, v >> 32
        if d != p:
            only_duck += max(0, d - p)
            only_pengine += max(0, p - d)
            differing[h] = (d - p, p - d)
    del counts
    same = not differing
    lines.append(f"  same rows: {'yes' if same else 'NO'}   rows duckdb {n_duck}, pengine {n_pengine}; "
                 f"distinct duckdb {distinct_duck}, pengine {distinct_pengine}")
    if not same:
        lines.append(f"  rows only in duckdb: {only_duck}, only in pengine: {only_pengine}")
        for side, rows, order, which in (("duckdb", d_rows, d_order, 0),
                                         ("pengine", p_rows, p_order, 1)):
            shown = {}
            for key in keys(rows, order):
                extra = differing.get(digest(key))
                if extra and extra[which] > 0 and key not in shown:
                    shown[key] = extra[which]
                    if len(shown) == 5:
                        break
            for key, count in sorted(shown.items(), key=repr):
                cells = ", ".join(f"{n}={v!r}" for n, v in zip(p_header, key))
                lines.append(f"    only in {side} (x{count}): {cells}")
    return same, lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", required=True, help="the generated export (events/, items.csv, users.parquet)")
    parser.add_argument("--out", required=True, help="output folder: <out>/<job>/part-00000.csv")
    parser.add_argument("--pengine-out", help="pengine's output of the same export, to compare with")
    parser.add_argument("--jobs", default=",".join(JOBS), help="comma-separated subset of the jobs")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--memory-limit", default=None,
                        help="DuckDB memory_limit (default: 2GB per thread, within DuckDB's "
                             "'1-4 GB memory per thread' advice)")
    parser.add_argument("--temp-dir", default=None,
                        help="where each job's spill folder is made (default: <out>/.duckdb-tmp)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the settings, each job's figures and comparison as JSON")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each job this many times and report the fastest run")
    parser.add_argument("--child", choices=JOBS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_limit is None:
        args.memory_limit = f"{2 * args.threads}GB"
    if args.temp_dir is None:
        args.temp_dir = os.path.join(os.path.abspath(args.out), ".duckdb-tmp")
    if args.child:
        return run_child(args)

    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    for job in jobs:
        if job not in JOBS:
            parser.error(f"unknown job {job!r} (one of {', '.join(JOBS)})")
    os.makedirs(args.out, exist_ok=True)
    base = baseline_rss(args)
    results = {}
    summary = {"export": os.path.abspath(args.export), "out": os.path.abspath(args.out),
               "pengine_out": args.pengine_out and os.path.abspath(args.pengine_out),
               "settings": {"threads": args.threads, "memory_limit": args.memory_limit,
                            "temp_directory": args.temp_dir, "preserve_insertion_order": False},
               "baseline_rss_bytes": base, "jobs": {}}
    print(f"threads={args.threads} memory_limit={args.memory_limit} temp_directory={args.temp_dir} "
          f"preserve_insertion_order=false  loadavg={os.getloadavg()[0]:.2f}")
    print(f"{'job':<13} {'wall_s':>8} {'rows':>10} {'rows_per_s':>11} {'peak_RSS_MB':>12} "
          f"{'proc_s':>7} {'out_MB':>7} {'others_cpu':>10}")
    failed = False
    for job in jobs:
        try:
            runs = [run_job(job, args) for _ in range(max(1, args.repeat))]
            report, proc_wall, rss, others = min(runs, key=lambda run: run[0]["wall_seconds"])
        except RuntimeError as e:
            print(f"{job:<13} FAILED: {e}")
            summary["jobs"][job] = {"error": str(e)}
            failed = True
            continue
        results[job] = report
        out_bytes = sum(os.path.getsize(p) for p in part_files(os.path.join(args.out, job)))
        summary["jobs"][job] = {"wall_seconds": report["wall_seconds"], "rows": report["rows"],
                                "proc_seconds": proc_wall, "peak_rss_bytes": rss,
                                "bytes_written": out_bytes, "others_cpu": others,
                                "runs_wall_seconds": [run[0]["wall_seconds"] for run in runs]}
        wall = report["wall_seconds"]
        print(f"{job:<13} {wall:8.2f} {report['rows']:10d} {report['rows'] / wall:11.0f} "
              f"{rss / 2**20:12.0f} {proc_wall:7.2f} {out_bytes / 1e6:7.1f} "
              f"{'?' if others is None else f'{others:.0%}':>10}", flush=True)
    try:
        os.rmdir(args.temp_dir)  # only when empty
    except OSError:
        pass
    version = next(iter(results.values()))["duckdb_version"] if results else "?"
    summary["duckdb_version"] = version
    print(f"duckdb {version}; wall_s = connect → COPY done inside the child; proc_s = the whole "
          f"child process (Python start and `import duckdb` included); peak RSS includes "
          f"{base / 2**20:.0f} MB for Python + duckdb loaded and idle; others_cpu = share of the "
          f"machine's CPU used by other processes during the job (timings are only comparable "
          f"when it is near 0 %)")

    differ = False
    if args.pengine_out:
        for job in results:
            report_path = os.path.join(args.pengine_out, f"{job}.report.json")
            extra = ""
            if os.path.exists(report_path):
                rep = json.load(open(report_path))
                extra = f" (pengine: wall {rep['wall_seconds']:.2f} s, {rep['rows']['written']} rows)"
            print(f"{job}: compared with {os.path.join(args.pengine_out, job)}{extra}")
            try:
                same, lines = compare(job, os.path.join(args.out, job), args.pengine_out)
            except (RuntimeError, csv.Error) as e:
                same, lines = False, [f"  could not compare: {e}"]
            print("\n".join(lines))
            summary["jobs"][job]["same_rows"] = same
            summary["jobs"][job]["comparison"] = [line.strip() for line in lines]
            differ |= not same
    code = 1 if differ else 2 if failed else 0
    if args.json:
        summary["exit_code"] = code
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
