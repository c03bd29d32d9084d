#!/usr/bin/env python3
"""The layout rules of the crate, checked (CI runs this):

- no file in src/ over 500 lines and no function over 80;
- no `#[path]` include in examples/, benches/ or tests/ (what they share is the `support`
  workspace member);
- the top-level modules of src/ import only modules below them, in this order (data flows
  one way: the method, then the networks, then the runs):

      error rng device check ops kernels stats memory mining loss
      nn model data eval train report run

Usage: scripts/check-structure.py [--graph]   (--graph prints every edge between modules)
Exit status 1 with one line per violation.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ORDER = ["error", "rng", "device", "check", "ops", "kernels", "stats", "memory", "mining",
         "loss", "nn", "model", "data", "eval", "train", "report", "run"]
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80


def rust_files(folder):
    for root, _, files in os.walk(os.path.join(ROOT, folder)):
        for name in sorted(files):
            if name.endswith(".rs"):
                yield os.path.join(root, name)


def code_only(line):
    """The line without its comment and with string and char literals emptied."""
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return re.sub(r"//.*", "", line)


def functions(lines):
    """(name, first line, length) of every `fn` with a body."""
    found = []
    start = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
    for i, line in enumerate(lines):
        m = start.match(line)
        if not m:
            continue
        depth, opened = 0, False
        for j in range(i, len(lines)):
            code = code_only(lines[j])
            for ch in code:
                if ch == "{":
                    depth += 1
                    opened = True
                elif ch == "}":
                    depth -= 1
            if opened and depth == 0:
                found.append((m.group(6), i + 1, j - i + 1))
                break
            if not opened and code.rstrip().endswith(";"):
                break
    return found


def module_edges():
    """{module: {modules it imports}} between the top-level modules of src/, tests left out."""
    edges = {}
    for path in rust_files("src"):
        rel = os.path.relpath(path, os.path.join(ROOT, "src"))
        top = rel.split(os.sep)[0].removesuffix(".rs")
        name = os.path.basename(path)
        if top == "lib" or name == "tests.rs" or name.endswith("_parity.rs"):
            continue
        text = "\n".join(code_only(l) for l in open(path).read().split("\n"))
        cut = text.find("#[cfg(test)]\nmod tests {")
        if cut >= 0:
            text = text[:cut]
        targets = set(re.findall(r"crate::([a-z_]+)", text))
        for group in re.findall(r"crate::\{([^}]*)\}", text):
            targets.update(p.strip().split("::")[0] for p in group.split(",") if p.strip())
        edges.setdefault(top, set()).update(t for t in targets if t != top)
    return edges


def main():
    problems = []
    for path in rust_files("src"):
        lines = open(path).read().split("\n")
        rel = os.path.relpath(path, ROOT)
        if len(lines) - 1 > MAX_FILE_LINES:
            problems.append(f"{rel}: {len(lines) - 1} lines (at most {MAX_FILE_LINES})")
        for name, first, length in functions(lines):
            if length > MAX_FUNCTION_LINES:
                problems.append(f"{rel}:{first}: fn {name} has {length} lines "
                                f"(at most {MAX_FUNCTION_LINES})")
    for folder in ["examples", "benches", "tests"]:
        for path in rust_files(folder):
            for i, line in enumerate(open(path).read().split("\n")):
                if re.match(r"\s*#\[path\s*=", line):
                    problems.append(f"{os.path.relpath(path, ROOT)}:{i + 1}: a #[path] include")
    rank = {m: i for i, m in enumerate(ORDER)}
    edges = module_edges()
    for module in sorted(edges, key=lambda m: rank.get(m, len(ORDER))):
        targets = sorted(edges[module], key=lambda m: rank.get(m, len(ORDER)))
        if "--graph" in sys.argv:
            print(f"{module:8} -> {', '.join(targets)}")
        if module not in rank:
            problems.append(f"src/{module}: a top-level module missing from the layer order")
            continue
        for target in targets:
            if target not in rank:
                problems.append(f"src/{module} imports crate::{target}, not in the layer order")
            elif rank[target] >= rank[module]:
                problems.append(f"src/{module} imports crate::{target}, a layer above it")
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print("structure: files, functions, includes and module layers as the layout says")


if __name__ == "__main__":
    main()
