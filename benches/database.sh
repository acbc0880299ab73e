#!/usr/bin/env bash
# A PostgreSQL table to an Items dataset, read two ways, with the same rows checked:
#   direct:  pengine reads the table (STORED AS POSTGRES)
#   via CSV: `psql \copy (SELECT ...) TO file CSV`, then pengine reads the file
# Prints wall time, rows per second and peak RSS of each step. Starts its own server (Debian's
# PostgreSQL, as .ci/test-servers installs it) in $BENCH_DIR on a free loopback port.
#
#   benches/database.sh [ROWS]            # default 10,000,000 rows
#   PENGINE_BIN=path benches/database.sh  # a pengine already built (else: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."

rows=${1:-10000000}
bench=${BENCH_DIR:-/tmp/pengine-bench-db}
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
if [ -z "${PENGINE_BIN:-}" ]; then
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/pengine-target} cargo build --release --locked
  PENGINE_BIN=${CARGO_TARGET_DIR:-$HOME/.cache/pengine-target}/release/pengine
fi
[ -x /usr/bin/time ] || { echo "needs GNU time as /usr/bin/time (apt-get install time)" >&2; exit 1; }

rm -rf "$bench" && mkdir -p "$bench"
# The server refuses to run as root: it runs as the postgres account then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$bench"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg "$pg_bin/initdb" -D "$bench/data" -U bench --auth=trust --no-sync >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$bench/data" -l "$bench/server.log" -w start \
  -o "-p $port -k $bench -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null
trap 'as_pg "$pg_bin/pg_ctl" -D "$bench/data" -m fast stop >/dev/null' EXIT
psql() { "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U bench -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

echo "creating $rows rows..." >&2
psql -c "CREATE TABLE items AS
  SELECT i::bigint AS item_id,
         'title of item ' || i AS title,
         (ARRAY['shoes', 'hats', 'bags', 'coats', 'socks'])[1 + i % 5] AS category,
         round((i % 10000) / 7.0, 2)::numeric(10,2) AS price,
         timestamptz '2020-01-01 00:00:00+00' + (i % 100000000) * interval '1 second' AS created
    FROM generate_series(1, $rows) i"
psql -c "VACUUM ANALYZE items"
table_size=$(psql -c "SELECT pg_size_pretty(pg_table_size('items'))")

cat > "$bench/items.sql" <<'SQL'
-- pengine: dataset = items
CREATE EXTERNAL TABLE items STORED AS POSTGRES LOCATION '${pg}' OPTIONS ('table' 'public.items');
SELECT item_id AS item_id, title AS title, category AS category, price AS price,
       created AS creation_timestamp
FROM items;
SQL
cat > "$bench/items_csv.sql" <<'SQL'
-- pengine: dataset = items
CREATE EXTERNAL TABLE items STORED AS CSV LOCATION '${csv}';
SELECT item_id AS item_id, title AS title, category AS category, price AS price,
       created AS creation_timestamp
FROM items;
SQL

# Runs a command under GNU time; prints "seconds peak_kib".
timed() { /usr/bin/time -f '%e %M' -o "$bench/time" "$@" >/dev/null 2>"$bench/stderr" \
  || { cat "$bench/stderr" >&2; exit 1; }; cat "$bench/time"; }

url="postgres://bench@127.0.0.1:$port/postgres?sslmode=disable"
read -r direct_s direct_kib < <(timed "$PENGINE_BIN" run "$bench/items.sql" --var "pg=$url" \
  -o "$bench/out-direct" --no-progress --no-insights)
read -r copy_s copy_kib < <(timed "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U bench -d postgres \
  -v ON_ERROR_STOP=1 -qc "\\copy (SELECT item_id, title, category, price::float8 AS price,
     extract(epoch FROM created)::bigint AS created FROM items) TO '$bench/items.csv' CSV HEADER")
read -r csv_s csv_kib < <(timed "$PENGINE_BIN" run "$bench/items_csv.sql" --var "csv=$bench/items.csv" \
  -o "$bench/out-csv" --no-progress --no-insights)

# The same rows both ways (order aside).
digest() { tail -q -n +2 "$1"/items/part-*.csv | LC_ALL=C sort | sha256sum | cut -d' ' -f1; }
same=$([ "$(digest "$bench/out-direct")" = "$(digest "$bench/out-csv")" ] && echo yes || echo NO)
written=$(tail -q -n +2 "$bench"/out-direct/items/part-*.csv | wc -l)
[ "$written" = "$rows" ] || { echo "direct run wrote $written rows of $rows" >&2; exit 1; }

python3 - "$rows" "$table_size" "$same" "$direct_s" "$direct_kib" "$copy_s" "$copy_kib" "$csv_s" "$csv_kib" <<'PY'
import sys
rows, size, same = int(sys.argv[1]), sys.argv[2], sys.argv[3]
d_s, d_k, c_s, c_k, f_s, f_k = map(float, sys.argv[4:])
print(f"{rows:,} rows, table {size}; same rows both ways: {same}")
print("| step | wall | rows/s | peak RSS |")
print("|---|---|---|---|")
print(f"| pengine, STORED AS POSTGRES | {d_s:.1f} s | {rows / d_s:,.0f} | {d_k / 1024:.0f} MiB |")
print(f"| psql \\copy to CSV | {c_s:.1f} s | {rows / c_s:,.0f} | {c_k / 1024:.0f} MiB |")
print(f"| pengine on the CSV | {f_s:.1f} s | {rows / f_s:,.0f} | {f_k / 1024:.0f} MiB |")
print(f"| \\copy + pengine | {c_s + f_s:.1f} s | {rows / (c_s + f_s):,.0f} | |")
PY
