#!/usr/bin/env python3
"""The table of benches/e2e.sh, from what it left in its logs folder: pengine's reports and
`/usr/bin/time -v` outputs per job (interactions, interactions_declared, items, users), the
comparison of the two interactions jobs (declared.json), and each peer's run.py JSON
(duckdb.json, polars.json). Exit code: 1 when rows differ, 2 when a job failed, else 0.
Standard library only."""

import argparse
import datetime
import json
import os
import re
import statistics
import sys

JOBS = ("interactions", "items", "users")
PEERS = ("duckdb", "polars")
# what each job reads: its input MB/s is these bytes over its wall time
INPUTS = {"interactions": ["events", "items.csv"], "items": ["items.csv"],
          "users": ["users.parquet"]}


def size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


class Pengine:
    """One pengine job's fastest run, from <logs>/<job>.{rc,json,time,clock,cpu,runs}."""

    def __init__(self, logs, job):
        self.logs, self.job = logs, job
        self.rc = (read(os.path.join(logs, f"{job}.rc")) or "?").strip()
        self.written = self.rc in ("0", "6")  # 6: a dataset-level check failed, the data is written
        self.report = json.loads(read(os.path.join(logs, f"{job}.json"))) if self.written else None
        time_text = read(os.path.join(logs, f"{job}.time")) or ""
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_text)
        self.rss = int(m.group(1)) / 1024 if m else None
        cpu = [float(x)
               for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", time_text)]
        self.cpu = sum(cpu) if len(cpu) == 2 else None
        self.wall = None
        if self.written:
            # the whole process, mapping file parsing and publication included (the report's
            # wall_seconds stops when the data is staged)
            start, end = (float(x) for x in read(os.path.join(logs, f"{job}.clock")).split())
            self.wall = end - start
        runs = read(os.path.join(logs, f"{job}.runs")) or ""
        self.runs = [float(line.split()[1]) for line in runs.splitlines() if line.strip()]

    def others_cpu(self):
        """Share of the machine's CPU used by other processes while the job ran; None for a job
        under a second, where /proc/stat's 10 ms ticks and process start-up make it noise."""
        try:
            lines = read(os.path.join(self.logs, f"{self.job}.cpu")).split("\n")
            before, after = ([int(x) for x in line.split()[1:]] for line in lines[:2])
        except (AttributeError, ValueError):
            return None
        busy = lambda f: sum(f[:8]) - f[3] - f[4]
        total = sum(after[:8]) - sum(before[:8])
        hz = os.sysconf("SC_CLK_TCK")
        if self.cpu is None or total / hz / os.cpu_count() < 1:
            return None
        return max(0.0, (busy(after) - busy(before)) / hz - self.cpu) / (total / hz)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--layout", default="hourly")
    parser.add_argument("--pengine", required=True)
    parser.add_argument("--pengine-args", default="")
    parser.add_argument("--peer", action="append", default=[],
                        help="NAME=WANTED:PYTHON (WANTED 1 or 0; PYTHON empty when not found)")
    args = parser.parse_args()
    logs = args.logs

    wanted, python = {}, {}
    for spec in args.peer:
        name, rest = spec.split("=", 1)
        want, py = rest.split(":", 1)
        wanted[name], python[name] = want == "1", py
    peer = {}
    failed_peer = set()
    for name in PEERS:
        text = read(os.path.join(logs, f"{name}.json"))
        if text:
            peer[name] = json.loads(text)
        elif python.get(name):
            failed_peer.add(name)  # the peer was there but its run.py did not finish
    declared_cmp = json.loads(read(os.path.join(logs, "declared.json")) or "null")

    pengine = {job: Pengine(logs, job) for job in (*JOBS, "interactions_declared")}
    differ = False
    failed = bool(failed_peer) or any(not p.written for p in pengine.values())
    disturbed = False
    rows_out = []
    for job in JOBS:
        p = pengine[job]
        others = [p.others_cpu()]
        row = {"job": job}
        if p.report:
            in_bytes = sum(size(os.path.join(args.data, name)) for name in INPUTS[job])
            row.update(p_wall=f"{p.wall:.2f}", p_rows=str(p.report["rows"]["written"]),
                       p_rate=f"{p.report['rows']['written'] / p.wall:.0f}",
                       p_in=f"{in_bytes / 1e6 / p.wall:.1f}",
                       p_out=f"{p.report['bytes_written'] / 1e6 / p.wall:.1f}",
                       p_rss=f"{p.rss:.0f}" if p.rss is not None else "?")
        else:
            row.update(p_wall=f"exit {p.rc}")
        if job == "interactions":
            q = pengine["interactions_declared"]
            others.append(q.others_cpu())
            if q.report:
                row.update(q_wall=f"{q.wall:.2f}",
                           q_rss=f"{q.rss:.0f}" if q.rss is not None else "?")
                if p.report:
                    same = (declared_cmp or {}).get("same_rows")
                    row["q_same"] = "?" if same is None else "yes" if same else "NO"
                    differ |= same is False
                    failed |= same is None
            else:
                row.update(q_wall=f"exit {q.rc}")
        fastest = None
        for name in PEERS:
            d = peer.get(name, {}).get("jobs", {}).get(job)
            if d and "error" not in d:
                row.update({f"{name}_wall": f"{d['wall_seconds']:.2f}",
                            f"{name}_rss": f"{d['peak_rss_bytes'] / 2**20:.0f}"})
                if p.report:  # else pengine failed: its output folder holds an older run's rows
                    same = d.get("same_rows")
                    row[f"{name}_same"] = "?" if same is None else "yes" if same else "NO"
                    differ |= same is False
                    if fastest is None or d["wall_seconds"] < fastest[1]:
                        fastest = (name, d["wall_seconds"])
                if d["proc_seconds"] >= 1:
                    others.append(d.get("others_cpu"))
            elif d:
                row.update({f"{name}_wall": "failed", f"{name}_same": "?"})
                failed = True
        if fastest and p.report:
            row.update(ratio=f"{p.wall / fastest[1]:.2f}", vs=fastest[0])
        known = [o for o in others if o is not None]
        row["others"] = f"{max(known):.0%}" if known else "-"
        disturbed |= bool(known) and max(known) > 0.10
        rows_out.append(row)

    groups = [("", [("job", "job", "<")]),
              ("pengine (inferred)", [("p_wall", "wall_s", ">"), ("p_rows", "rows", ">"),
                                      ("p_rate", "rows/s", ">"), ("p_in", "in_MB/s", ">"),
                                      ("p_out", "out_MB/s", ">"), ("p_rss", "RSS_MiB", ">")]),
              ("declared", [("q_wall", "wall_s", ">"), ("q_rss", "RSS_MiB", ">"),
                            ("q_same", "same", ">")])]
    for name in PEERS:
        groups.append((name, [(f"{name}_wall", "wall_s", ">"), (f"{name}_rss", "RSS_MiB", ">"),
                              (f"{name}_same", "same", ">")]))
    groups.append(("", [("ratio", "ratio", ">"), ("vs", "vs", "<"), ("others", "others_cpu", ">")]))
    cols = [c for _, cs in groups for c in cs]
    width = {k: max(len(h), *(len(r.get(k, "-")) for r in rows_out)) for k, h, _ in cols}
    print()
    spans = []
    for title, cs in groups:
        span = sum(width[k] for k, _, _ in cs) + 2 * (len(cs) - 1)
        spans.append(f"{f' {title} ' if title else '':-^{span}}" if title else " " * span)
    print("  ".join(spans).rstrip())
    print("  ".join(f"{h:{a}{width[k]}}" for k, h, a in cols))
    for r in rows_out:
        print("  ".join(f"{r.get(k, '-'):{a}{width[k]}}" for k, _, a in cols))

    version = "?"
    if pengine["interactions"].report:
        version = pengine["interactions"].report.get("pengine_version", "?")
    print()
    layout = "one newline-delimited file" if args.layout == "one-file" else "hourly files"
    print(f"N = {args.events:,} events, {layout} ({args.data}); {os.cpu_count()} cores; "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; pengine {version} "
          f"({args.pengine})" + (f" run ... {args.pengine_args}" if args.pengine_args else ""))
    print("pengine (inferred): benches/jobs/interactions.sql, the event columns inferred; "
          "declared: benches/jobs/interactions_declared.sql, same SELECT, columns listed; its "
          "`same` compares its rows with the inferred job's")
    for name in PEERS:
        if name in peer:
            s = peer[name]["settings"]
            print(f"{name} {peer[name]['version']} ({python[name]}): "
                  + " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                             for k, v in s.items()
                             if k not in ("temp_directory", "POLARS_TEMP_DIR"))
                  + f"; its peak RSS includes {peer[name]['baseline_rss_bytes'] / 2**20:.0f} MiB "
                  f"for Python with {name} loaded")
        elif name in failed_peer:
            print(f"{name}: run.py failed, see {logs}/{name}.log")
        elif wanted.get(name):
            reason = (read(os.path.join(logs, f"{name}.skipped")) or "?").strip()
            print(f"{name}: not run: {reason}")
        else:
            print(f"{name}: not run (--no-{name})")
    print("ratio = pengine (inferred) wall_s / the faster peer's wall_s, `vs` (above 1: pengine "
          f"slower); MB = 10^6 bytes; details in {logs}/")
    for job in (*JOBS, "interactions_declared"):
        p = pengine[job]
        if p.rc == "6":
            errors = [f["message"] for f in p.report["checks"]["findings"]
                      if f["severity"] == "error"]
            print(f"{job}: pengine exit 6 (written, but Personalize would not train on it): "
                  + "; ".join(errors))
        elif not p.written:
            print(f"{job}: pengine exit {p.rc}, see {logs}/{job}.stderr")
    if declared_cmp and declared_cmp.get("same_rows") is False:
        print("interactions: declared and inferred rows differ:\n    "
              + "\n    ".join(declared_cmp.get("comparison", [])))
    for job in JOBS:
        for name in PEERS:
            d = peer.get(name, {}).get("jobs", {}).get(job, {})
            if d.get("same_rows") is False and pengine[job].written:
                print(f"{job}: {name}'s rows differ:\n    "
                      + "\n    ".join(d.get("comparison", [])))
            if "error" in d:
                print(f"{job}: {name} failed: {d['error']}")
    for job in JOBS:
        runs = {"pengine": pengine[job].runs}
        if job == "interactions":
            runs["declared"] = pengine["interactions_declared"].runs
        for name in PEERS:
            d = peer.get(name, {}).get("jobs", {}).get(job, {})
            runs[name] = d.get("runs_wall_seconds", [])
        if max(len(r) for r in runs.values()) < 2:
            continue
        line = (f"{job}: fastest of {max(len(r) for r in runs.values())} runs; "
                + "; ".join(f"{k} " + " ".join(f"{w:.2f}" for w in r) + " s"
                            for k, r in runs.items() if r))
        # The fastest runs can flatter either side: the medians' ratio too.
        peer_medians = [(statistics.median(runs[n]), n) for n in PEERS if runs.get(n)]
        if runs["pengine"] and peer_medians:
            median, name = min(peer_medians)
            if median > 0:
                line += (f"; median ratio {statistics.median(runs['pengine']) / median:.2f} "
                         f"(vs {name})")
        print(line)
    if disturbed:
        print("others_cpu above 10 %: other processes used the CPU meanwhile; re-run for timings")
    return 1 if differ else 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
