#!/usr/bin/env python3
"""Mean and spread over seeds of the runs under a directory (each with a summary.json)."""
import json
import pathlib
import statistics
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "runs/results")
runs = {}
for path in sorted(root.glob("*/summary.json")):
    s = json.loads(path.read_text())
    runs.setdefault(s["method"], []).append(s)
if not runs:
    sys.exit(f"no summary.json under {root}")

def cell(values):
    values = [100 * v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"

order = ["cross-entropy", "balanced-softmax", "rescom"]
methods = sorted(runs, key=lambda m: (order.index(m) if m in order else len(order), m))
for label, pick in (("last epoch", lambda s: s), ("best epoch", lambda s: s["best"])):
    print(f"\n{label} (mean ± sample std over seeds, %):\n")
    print("| method | seeds | top-1 | top-5 | many | medium | few |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for m in methods:
        rs = [pick(s) for s in runs[m]]
        print(f"| {m} | {len(rs)} | " + " | ".join(cell([r[k] for r in rs]) for k in ("top1", "top5", "many", "medium", "few")) + " |")
first = next(iter(runs.values()))[0]
print(f"\n{first['dataset']}, {first['epochs']} epochs; training counts per class {first['train_counts']}")
