#!/usr/bin/env python3
"""Writes a CSV interactions export for the CSV benchmarks (benches/README.md, "CSV columns
inferred"): ROWS events over FILES files, as a warehouse unload writes them.

    python3 benches/csv_export.py ROWS FILES OUT_DIR

Columns: user_id (integers, a few empty), item_id (SKU codes with leading zeros, so text),
ts (epoch seconds), event_type, event_value (a float on a small share, else empty), device,
and a quoted page title holding commas. The same arguments write the same files."""

import os
import random
import sys


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    rows, files, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(42)
    types = ["view", "view", "view", "click", "cart", "purchase"]
    devices = ["ios", "android", "web"]
    per_file = -(-rows // files)
    written = 0
    for f in range(files):
        with open(os.path.join(out, f"part-{f:05d}.csv"), "w", encoding="utf-8") as fh:
            fh.write("user_id,item_id,ts,event_type,event_value,device,title\n")
            lines = []
            for _ in range(min(per_file, rows - written)):
                i = written
                written += 1
                user = "" if rng.random() < 0.005 else str(rng.randrange(200_000))
                item = f"{rng.randrange(50_000):07d}"
                event = rng.choice(types)
                value = f"{rng.random() * 100:.2f}" if event == "purchase" else ""
                title = f'"Item {item}, size {rng.randrange(10)}, colour {rng.randrange(20)}"'
                lines.append(
                    f"{user},{item},{1_700_000_000 + i},{event},{value},"
                    f"{rng.choice(devices)},{title}\n"
                )
            fh.writelines(lines)


if __name__ == "__main__":
    main()
