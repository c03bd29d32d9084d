#!/usr/bin/env python3
"""Runs a command and measures its peak memory, with its child processes (Linux).

    python3 benches/peak_memory.py OUT.json -- CMD [ARGS...]

The command's output passes through; its exit status is this script's. OUT.json receives:
- `process_peak_kib`: the peak resident set of the largest single process (the command's
  own, or one of its children it waited for), exact (`wait4`'s `ru_maxrss`);
- `tree_peak_pss_kib`: the largest total proportional set size (PSS: shared pages split
  between the processes that share them) of the command and all its descendants, sampled
  every 20 ms; this is the figure to compare between a program that loads data in threads
  and one that forks worker processes (whose copy-on-write pages a sum of RSS would count
  several times);
- `max_processes`: the most processes alive at one sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

INTERVAL_S = 0.02


def children(pid: int) -> list[int]:
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                found.extend(int(c) for c in fh.read().split())
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(children(p))
    return pids


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out, cmd = argv[0], argv[2:]
    child = subprocess.Popen(cmd)
    tree_peak = max_procs = 0
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid == child.pid:
            break
        pids = tree(child.pid)
        tree_peak = max(tree_peak, sum(pss_kib(p) for p in pids))
        max_procs = max(max_procs, len(pids))
        time.sleep(INTERVAL_S)
    code = os.waitstatus_to_exitcode(status)
    tmp = f"{out}.tmp"
    with open(tmp, "w") as fh:
        json.dump({"command": cmd, "process_peak_kib": usage.ru_maxrss, "tree_peak_pss_kib": tree_peak,
                   "max_processes": max_procs, "interval_s": INTERVAL_S}, fh)
    os.replace(tmp, out)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
