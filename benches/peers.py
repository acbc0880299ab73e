"""What the peers of the end-to-end benchmark share (benches/duckdb/run.py, benches/polars/run.py):
running each job in its own timed child process, and comparing a job's rows with pengine's.

A peer's run.py calls `main(Peer(...))`. The parent process runs every job in a child (the same
run.py with --child JOB) under /usr/bin/time -v, so that the peak RSS is the job's own; the child
does the work and prints one JSON line: rows written, wall seconds from the start of the work to the
end of the write, the engine's version. With --pengine-out the parent then compares each job's rows
with pengine's output of the same export, and exits 1 when any job differs (2 when a job fails).

The comparison is also a command, for two outputs of pengine (e2e.sh compares the declared
interactions job with the inferred one this way):

    python3 benches/peers.py compare JOB OTHER_DIR PENGINE_OUT [--label NAME] [--json FILE]

Standard library only: the comparison runs under any python3.
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
from dataclasses import dataclass, field
from typing import Callable

JOBS = ("interactions", "items", "users")


@dataclass
class Peer:
    name: str  # "duckdb"
    script: str  # the peer's run.py, run again with --child JOB
    doc: str  # its module docstring, for --help
    # In the child, before the clock starts: imports the engine and returns its module.
    load: Callable[[], object]
    # In the child: runs one job (args.child) on args.export into args.out with the engine module;
    # returns the number of rows written, or None when they are to be counted from the output
    # (after the clock stops).
    run_job: Callable[[argparse.Namespace, object], "int | None"]
    version: Callable[[object], str]
    # Code a child runs to measure the RSS of Python with the engine loaded and idle.
    baseline_code: str
    # The settings used (printed, and in the JSON), from the parsed arguments.
    settings: Callable[[argparse.Namespace], dict]
    # Environment of the child process (e.g. the engine's thread count), from the parsed arguments.
    child_env: Callable[[argparse.Namespace], dict] = lambda args: {}
    # Extra command-line options: (flags, argparse keyword arguments).
    options: list = field(default_factory=list)


def substitute(text, values):
    """Fills ${name} placeholders; an unknown one is an error."""

    def fill(match):
        name = match.group(1)
        if name not in values:
            raise SystemExit(f"unknown placeholder ${{{name}}}")
        return values[name].replace("'", "''")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", fill, text)


# ----------------------------------------------------------------------------------------------
# Child: one job in this process.


def run_child(peer, args):
    out_dir = os.path.join(args.out, args.child)
    os.makedirs(out_dir, exist_ok=True)
    engine = peer.load()  # Python's start and the import are not part of the job's time
    started = time.perf_counter()
    try:
        rows = peer.run_job(args, engine)
    except Exception as e:  # the engine's own error, shown by the parent
        print(f"{peer.name} {args.child}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - started
    if rows is None:  # counted after the clock stopped: lines of the parts minus their headers
        rows = 0
        for path in part_files(out_dir):
            with open(path, "rb") as f:
                rows += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) - 1
    print(json.dumps({"job": args.child, "rows": rows, "wall_seconds": wall,
                      "version": peer.version(engine)}))
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


def run_job(peer, job, args):
    """Runs one job in a child process; returns (child report, process wall s, peak RSS bytes,
    share of the machine's CPU used by other processes meanwhile, or None)."""
    out_dir = os.path.join(args.out, job)
    # The previous run's output is deleted before the clock starts, as e2e.sh does for pengine.
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    os.makedirs(args.temp_dir, exist_ok=True)
    spill = tempfile.mkdtemp(prefix=f"{peer.name}-{job}-", dir=args.temp_dir)  # removed afterwards
    cmd = [sys.executable, peer.script, "--child", job, "--export", args.export, "--out", args.out,
           "--threads", str(args.threads), "--temp-dir", spill]
    for flags, _ in peer.options:
        dest = flags[0].lstrip("-").replace("-", "_")
        if getattr(args, dest) is not None:
            cmd += [flags[0], str(getattr(args, dest))]
    time_bin = "/usr/bin/time"
    use_time = os.access(time_bin, os.X_OK)
    if use_time:
        cmd = [time_bin, "-v"] + cmd
    env = dict(os.environ, **peer.child_env(args))
    # Dirty pages (earlier runs' output) written back first, as e2e.sh does before pengine's runs.
    os.sync()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        ticks_before = cpu_ticks()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
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
        raise RuntimeError(f"exit {proc.returncode}: {message[-2000:]}")
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


def baseline_rss(peer, args):
    """Peak RSS of a child that only starts Python and loads the engine."""
    proc = subprocess.Popen([sys.executable, "-c", peer.baseline_code],
                            env=dict(os.environ, **peer.child_env(args)))
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss * 1024


# ----------------------------------------------------------------------------------------------
# The comparison.


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
        for fld in schema["fields"]:
            types = fld["type"] if isinstance(fld["type"], list) else [fld["type"]]
            for t in types:
                if t in ("int", "long", "float", "double"):
                    kinds[fld["name"]] = t
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


PENGINE_ONE = 1 << 32  # counts: the other side's in the low 32 bits, pengine's above


def digest(key):
    """64-bit hash of a normalised row. Hashing its repr (SipHash of one string) rather than the
    tuple avoids CPython's structured collisions (hash(-1) == hash(-2)); str hashes are salted per
    process, which is fine: both sides are hashed in this one."""
    return hash(repr(key))


def compare(job, other_dir, pengine_out, label="peer", pengine_dir=None):
    """Compares the rows of `other_dir` with pengine's `<pengine_out>/<job>` (or `pengine_dir`) as
    multisets, streaming: each normalised row is counted under its 64-bit hash (one dict entry per
    distinct row, about 100 bytes), and only when the counts differ are both outputs read again to
    show the rows behind them. Returns (same, lines)."""
    pengine_dir = pengine_dir or os.path.join(pengine_out, job)
    o_header, o_rows = read_parts(other_dir)
    p_header, p_rows = read_parts(pengine_dir)
    lines = []
    if [h.upper() for h in o_header] != p_header:
        lines.append(f"  header differs: {label} {o_header} / pengine {p_header}")
    missing = [h for h in p_header if h not in [x.upper() for x in o_header]]
    if missing:
        lines.append(f"  columns missing in {label}'s output: {missing}")
        return False, lines
    o_order = [[x.upper() for x in o_header].index(h) for h in p_header]
    p_order = list(range(len(p_header)))

    def both_sides():  # every row of both outputs, columns in pengine's order
        for rows, order in ((p_rows, p_order), (o_rows, o_order)):
            for row in rows():
                yield [row[p] for p in order]

    numeric = numeric_columns(p_header, pengine_out, job, both_sides)
    flags = [i in numeric for i in range(len(p_header))]

    def keys(rows, order):
        for row in rows():
            yield tuple(normalise(row[p], n) for p, n in zip(order, flags))

    counts, n_other, n_pengine = {}, 0, 0
    get = counts.get
    for key in keys(o_rows, o_order):
        h = digest(key)
        counts[h] = get(h, 0) + 1
        n_other += 1
    for key in keys(p_rows, p_order):
        h = digest(key)
        counts[h] = get(h, 0) + PENGINE_ONE
        n_pengine += 1
    mask = PENGINE_ONE - 1
    distinct_other = sum(1 for v in counts.values() if v & mask)
    distinct_pengine = sum(1 for v in counts.values() if v >> 32)
    only_other = only_pengine = 0
    differing = {}
    for h, v in counts.items():
        o, p = v & mask, v >> 32
        if o != p:
            only_other += max(0, o - p)
            only_pengine += max(0, p - o)
            differing[h] = (o - p, p - o)
    del counts
    same = not differing
    lines.append(f"  same rows: {'yes' if same else 'NO'}   rows {label} {n_other}, pengine "
                 f"{n_pengine}; distinct {label} {distinct_other}, pengine {distinct_pengine}")
    if not same:
        lines.append(f"  rows only in {label}: {only_other}, only in pengine: {only_pengine}")
        for side, rows, order, which in ((label, o_rows, o_order, 0),
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


# ----------------------------------------------------------------------------------------------
# A peer's command line.


def main(peer):
    parser = argparse.ArgumentParser(description=peer.doc.split("\n\n")[0])
    parser.add_argument("--export", required=True,
                        help="the generated export (events/, items.csv, users.parquet)")
    parser.add_argument("--out", required=True, help="output folder: <out>/<job>/part-00000.csv")
    parser.add_argument("--pengine-out",
                        help="pengine's output of the same export, to compare with")
    parser.add_argument("--jobs", default=",".join(JOBS), help="comma-separated subset of the jobs")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--temp-dir", default=None,
                        help="where each job's spill folder is made (default: <out>/.<peer>-tmp)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the settings, each job's figures and comparison as JSON")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each job this many times and report the fastest run")
    parser.add_argument("--child", choices=JOBS, help=argparse.SUPPRESS)
    for flags, kwargs in peer.options:
        parser.add_argument(*flags, **kwargs)
    args = parser.parse_args()
    args.export = os.path.abspath(args.export)
    args.out = os.path.abspath(args.out)
    if args.temp_dir is None:
        args.temp_dir = os.path.join(args.out, f".{peer.name}-tmp")
    if args.child:
        return run_child(peer, args)

    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    for job in jobs:
        if job not in JOBS:
            parser.error(f"unknown job {job!r} (one of {', '.join(JOBS)})")
    os.makedirs(args.out, exist_ok=True)
    base = baseline_rss(peer, args)
    settings = peer.settings(args)
    summary = {"peer": peer.name, "export": args.export, "out": args.out,
               "pengine_out": args.pengine_out and os.path.abspath(args.pengine_out),
               "settings": settings, "baseline_rss_bytes": base, "jobs": {}}
    shown = (f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items())
    print(" ".join(shown) + f"  loadavg={os.getloadavg()[0]:.2f}")
    print(f"{'job':<13} {'wall_s':>8} {'rows':>10} {'rows_per_s':>11} {'peak_RSS_MB':>12} "
          f"{'proc_s':>7} {'out_MB':>7} {'others_cpu':>10}")
    failed = False
    results = {}
    for job in jobs:
        try:
            runs = [run_job(peer, job, args) for _ in range(max(1, args.repeat))]
            report, proc_wall, rss, others = min(runs, key=lambda run: run[0]["wall_seconds"])
        except RuntimeError as e:
            print(f"{job:<13} FAILED: {e}")
            summary["jobs"][job] = {"error": str(e)}
            failed = True
            continue
        # the output on disk is the last run's; its rows are the same in every run
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
    version = next(iter(results.values()))["version"] if results else "?"
    summary["version"] = version
    print(f"{peer.name} {version}; wall_s = start of the work → end of the write inside the "
          f"child; proc_s = the whole child process (Python's start and the import included); peak RSS "
          f"includes {base / 2**20:.0f} MB for Python with {peer.name} loaded and idle; others_cpu "
          f"= share of the machine's CPU used by other processes during the job (timings are only "
          f"comparable when it is near 0 %)")

    differ = False
    if args.pengine_out:
        for job in results:
            print(f"{job}: compared with {os.path.join(args.pengine_out, job)}")
            try:
                same, lines = compare(job, os.path.join(args.out, job), args.pengine_out, peer.name)
            except (RuntimeError, csv.Error, UnicodeDecodeError) as e:
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


def compare_command(argv):
    parser = argparse.ArgumentParser(prog="peers.py compare",
                                     description="Compares a dataset folder's rows with pengine's.")
    parser.add_argument("job", choices=JOBS)
    parser.add_argument("other", help="the dataset folder to compare (CSV parts)")
    parser.add_argument("pengine_out",
                        help="pengine's output folder (<job>/ and <job>.schema.json)")
    parser.add_argument("--label", default="other", help="the other side's name in the messages")
    parser.add_argument("--json", metavar="FILE", help="write {same_rows, comparison} as JSON")
    args = parser.parse_args(argv)
    try:
        same, lines = compare(args.job, args.other, args.pengine_out, args.label)
    except (RuntimeError, csv.Error, UnicodeDecodeError) as e:
        same, lines = False, [f"  could not compare: {e}"]
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"same_rows": same, "comparison": [line.strip() for line in lines]}, f)
            f.write("\n")
    return 0 if same else 1


if __name__ == "__main__":
    if sys.argv[1:2] != ["compare"]:
        sys.exit(__doc__)
    sys.exit(compare_command(sys.argv[2:]))
