#!/usr/bin/env python3
"""DuckDB peer of the end-to-end benchmark: the reference jobs of benches/jobs/ as DuckDB SQL.

    run.py --export DIR --out DIR [--pengine-out DIR] [--jobs interactions,items,users]
           [--threads N] [--memory-limit SIZE] [--temp-dir DIR] [--repeat R] [--json FILE]

Runs benches/duckdb/{interactions,items,users}.sql on the export in DIR (the layout written by
examples/gen_export.rs), each in its own child process, and prints per job the wall time, rows
written, rows/s and peak RSS. With --pengine-out it then compares each job's rows with pengine's
output of the same export (CSV parts parsed in the Personalize dialect, columns keyed by header
name, rows compared as multisets) and exits 1 when any job differs (2 when a job fails).
--json FILE also writes the settings and every job's figures and comparison as JSON (benches/e2e.sh
reads it to print its combined table). The measuring and the comparison are benches/peers.py's.

Needs the `duckdb` Python module (2.0 or later; e.g. a venv with `pip install duckdb`); nothing
else.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ left in benches/
sys.path.insert(0, os.path.dirname(HERE))
import peers  # noqa: E402  (benches/peers.py)


def load():
    import duckdb

    return duckdb


def run_job(args, duckdb):
    sql_file = os.path.join(HERE, f"{args.child}.sql")
    sql = peers.substitute(open(sql_file, encoding="utf-8").read(),
                           {"source": args.export, "output": args.out})
    con = duckdb.connect(":memory:")
    # DuckDB's tuning advice (guides/performance/how_to_tune_workloads, environment, oom):
    # threads = cores, a memory limit (1-4 GB per thread is the stated best practice; the default is
    # 80 % of RAM), an explicit spill folder, and preserve_insertion_order = false for large
    # imports/exports. None of these jobs needs an order.
    con.execute(f"SET threads = {int(args.threads)}")
    con.execute("SET memory_limit = ?", [memory_limit(args)])
    con.execute("SET temp_directory = ?", [args.temp_dir])
    con.execute("SET preserve_insertion_order = false")
    rows = con.execute(sql).fetchall()[0][0]  # the last statement is the COPY: rows written
    con.close()
    return rows


def memory_limit(args):
    return args.memory_limit or f"{2 * args.threads}GB"


def settings(args):
    return {"threads": args.threads, "memory_limit": memory_limit(args),
            "temp_directory": args.temp_dir, "preserve_insertion_order": False}


PEER = peers.Peer(
    name="duckdb",
    script=os.path.abspath(__file__),
    doc=__doc__,
    load=load,
    run_job=run_job,
    version=lambda duckdb: duckdb.__version__,
    baseline_code="import duckdb; duckdb.connect(':memory:').execute('SELECT 1').fetchall()",
    settings=settings,
    options=[(["--memory-limit"],
              dict(default=None, help="DuckDB memory_limit (default: 2GB per thread, within "
                                      "DuckDB's '1-4 GB memory per thread' advice)"))],
)

if __name__ == "__main__":
    sys.exit(peers.main(PEER))
