#!/usr/bin/env python3
"""Float64 reference implementation of the ResCom loss, and the tool that keeps the golden
cases in `tests/golden/` honest.

The method is the one documented in `docs/method.md`: class statistics, Siamese Balanced
Softmax, the class-balanced queue (read before the step, view-1 keys enqueued after it by
the sequential rule), hard positive/negative mining from that queue, the class-balanced
supervised contrastive loss with the prior term, and the total. Everything here is plain
NumPy in float64 with hand-derived gradients; a central finite-difference check of those
gradients runs before anything is written or compared.

Usage (from the repository root):

    python3 tests/reference/golden.py            # recompute `expected`; rewrite the cases
                                                 # that differ beyond the --check tolerance
    python3 tests/reference/golden.py --check    # recompute and compare; exit 1 on a difference
    python3 tests/reference/golden.py new NAME --seed 7 --counts 50,20,5 ...   # add a case

Only the inputs of a committed case (config, queue_init, queue_ptr_init and each step's
features, logits, labels) are read; `expected` is always recomputed from them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

PRIOR_EPS = 1e-9  # log prior is log(pi_c + 1e-9)
NORM_EPS = 1e-12  # q = f / max(||f||, 1e-12)

# --check tolerance: |recomputed - committed| <= CHECK_ABS + CHECK_REL * |committed|
CHECK_REL = 1e-10
CHECK_ABS = 1e-12

# finite-difference self-check of the analytic gradients
FD_STEP = 1e-6
FD_REL = 1e-6
FD_ABS = 1e-7

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"


# --------------------------------------------------------------------------------------
# Class statistics
# --------------------------------------------------------------------------------------


def class_statistics(counts, beta):
    """(log prior log(pi_c + 1e-9), effective-number weights w_c) of a class histogram."""
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim != 1 or n.size == 0:
        raise ValueError("class_counts must be a non-empty list")
    if np.any(n <= 0):
        raise ValueError("every class needs at least one training sample")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"effective_num_beta must be in [0, 1), got {beta}")
    log_prior = np.log(n / n.sum() + PRIOR_EPS)
    effective = (1.0 - np.power(beta, n)) / (1.0 - beta)
    weights = (effective.sum() / n.size) / effective
    return log_prior, weights


# --------------------------------------------------------------------------------------
# One step: forward, analytic backward, enqueue
# --------------------------------------------------------------------------------------


def normalize(f):
    """Row-wise q = f / max(||f||, eps) and the norms used by the backward pass."""
    norms = np.sqrt((f * f).sum(axis=1))
    denom = np.maximum(norms, NORM_EPS)
    return f / denom[:, None], norms, denom


def normalize_backward(grad_q, q, norms, denom):
    """Gradient with respect to f of q = f / max(||f||, eps)."""
    radial = (q * grad_q).sum(axis=1, keepdims=True)
    above = (norms > NORM_EPS)[:, None]
    return np.where(above, (grad_q - q * radial) / denom[:, None], grad_q / NORM_EPS)


def log_softmax_masked(a, mask):
    """log_softmax over the columns where `mask` is true; -inf elsewhere."""
    a = np.where(mask, a, -np.inf)
    top = a.max(axis=1, keepdims=True)
    lse = top + np.log(np.exp(a - top).sum(axis=1, keepdims=True))
    return a - lse


def mine(sim_queue, labels, num_classes, per_class, k_pos, k_neg):
    """Boolean [M, C*K] selection of mined positives and mined negatives.

    Positives: the k_pos smallest similarities among the K slots of the row's class.
    Negatives: the k_neg largest similarities among the (C-1)*K slots of other classes.
    """
    m = sim_queue.shape[0]
    slot_class = np.arange(num_classes * per_class) // per_class
    pos = np.zeros_like(sim_queue, dtype=bool)
    neg = np.zeros_like(sim_queue, dtype=bool)
    for i in range(m):
        own = np.flatnonzero(slot_class == labels[i])
        other = np.flatnonzero(slot_class != labels[i])
        pos[i, own[np.argsort(sim_queue[i, own], kind="stable")[:k_pos]]] = True
        if k_neg > 0:
            neg[i, other[np.argsort(-sim_queue[i, other], kind="stable")[:k_neg]]] = True
    return pos, neg


def loss_and_grads(cfg, queue, features, logits, labels, selection=None):
    """Losses and gradients of the total with respect to raw features and logits.

    `queue` is the queue before the step. `selection` fixes the mined slots (used by the
    finite-difference check so that a perturbation cannot change which slots are mined).
    Returns a dict with total, classification, contrastive, grad_features, grad_logits,
    the normalised q and the selection.
    """
    counts = cfg["class_counts"]
    num_classes = len(counts)
    per_class = cfg["queue_per_class"]
    k_pos, k_neg = cfg["hard_positives"], cfg["hard_negatives"]
    tau, lam = cfg["temperature"], cfg["contrast_weight"]
    eta = cfg["prior_strength"]
    log_prior, weights = class_statistics(counts, cfg["effective_num_beta"])

    f = np.asarray(features, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    m = y.size
    if f.shape[0] != m or z.shape != (m, num_classes) or m % 2:
        raise ValueError("features/logits/labels do not describe 2N rows")
    half = m // 2
    if not np.array_equal(y[:half], y[half:]):
        raise ValueError("labels of view 2 must repeat those of view 1")

    # Siamese Balanced Softmax over both views.
    shifted = z + log_prior[None, :]
    logp_cls = log_softmax_masked(shifted, np.ones_like(shifted, dtype=bool))
    classification = -logp_cls[np.arange(m), y].mean()
    grad_logits = np.exp(logp_cls)
    grad_logits[np.arange(m), y] -= 1.0
    grad_logits /= m

    # Contrast logits over [batch rows | queue slots], with masks of what takes part.
    q, norms, denom = normalize(f)
    slot_class = np.arange(num_classes * per_class) // per_class
    sim_batch = q @ q.T
    sim_queue = q @ queue.T
    if selection is None:
        selection = mine(sim_queue, y, num_classes, per_class, k_pos, k_neg)
    pos_q, neg_q = selection
    not_self = ~np.eye(m, dtype=bool)
    take = np.concatenate([not_self, pos_q | neg_q], axis=1)
    positive = np.concatenate([not_self & (y[:, None] == y[None, :]), pos_q], axis=1)
    column_class = np.concatenate([y, slot_class])
    a = np.concatenate([sim_batch, sim_queue], axis=1) / tau + eta * log_prior[column_class][None, :]
    logp = log_softmax_masked(a, take)
    num_pos = positive.sum(axis=1)
    safe = np.maximum(num_pos, 1)
    per_row = np.where(
        num_pos > 0, -np.where(positive, logp, 0.0).sum(axis=1) / safe, 0.0
    )
    row_weight = weights[y]
    contrastive = (row_weight * per_row).sum() / m
    total = classification + lam * contrastive

    # d total / d a: (lambda / M) * w_{y_i} * (softmax - [positive] / |P|) over taken columns.
    soft = np.where(take, np.exp(logp), 0.0)
    g = soft - positive / safe[:, None]
    g = np.where((num_pos > 0)[:, None], g, 0.0) * (lam * row_weight / m)[:, None]
    g_batch, g_queue = g[:, :m] / tau, g[:, m:] / tau
    grad_q = (g_batch + g_batch.T) @ q + g_queue @ queue
    grad_features = normalize_backward(grad_q, q, norms, denom)

    return {
        "total": total,
        "classification": classification,
        "contrastive": contrastive,
        "grad_features": grad_features,
        "grad_logits": grad_logits,
        "q": q,
        "selection": selection,
    }


def enqueue(queue, pointers, keys, labels, per_class):
    """Sequential enqueue: for each row i of class c, queue[c*K + ptr[c]] = key; ptr[c] += 1 mod K."""
    queue = queue.copy()
    pointers = pointers.copy()
    for key, c in zip(keys, labels):
        queue[c * per_class + pointers[c]] = key
        pointers[c] = (pointers[c] + 1) % per_class
    return queue, pointers


def validate_config(cfg, queue, pointers):
    c = len(cfg["class_counts"])
    k = cfg["queue_per_class"]
    if k < 1 or cfg["dim"] < 1:
        raise ValueError("queue_per_class and dim must be at least 1")
    if not 1 <= cfg["hard_positives"] <= k:
        raise ValueError("hard_positives must be in 1..=queue_per_class")
    if not 0 <= cfg["hard_negatives"] <= (c - 1) * k:
        raise ValueError("hard_negatives must be in 0..=(C-1)*queue_per_class")
    if not cfg["temperature"] > 0 or cfg["contrast_weight"] < 0 or cfg["prior_strength"] < 0:
        raise ValueError("temperature must be > 0, contrast_weight and prior_strength >= 0")
    if queue.shape != (c * k, cfg["dim"]):
        raise ValueError(f"queue_init has shape {queue.shape}, expected {(c * k, cfg['dim'])}")
    if pointers.shape != (c,) or np.any(pointers < 0) or np.any(pointers >= k):
        raise ValueError("queue_ptr_init must hold C pointers in 0..K")


def compute_expected(case):
    """Runs the steps of a case in order on one queue; returns the list of `expected` dicts."""
    cfg = case["config"]
    queue = np.asarray(case["queue_init"], dtype=np.float64)
    pointers = np.asarray(case["queue_ptr_init"], dtype=np.int64)
    validate_config(cfg, queue, pointers)
    out = []
    for step in case["steps"]:
        r = loss_and_grads(cfg, queue, step["features"], step["logits"], step["labels"])
        labels = np.asarray(step["labels"], dtype=np.int64)
        half = labels.size // 2
        queue, pointers = enqueue(queue, pointers, r["q"][:half], labels[:half], cfg["queue_per_class"])
        out.append(
            {
                "total": float(r["total"]),
                "classification": float(r["classification"]),
                "contrastive": float(r["contrastive"]),
                "grad_features": r["grad_features"].tolist(),
                "grad_logits": r["grad_logits"].tolist(),
                "queue_after": queue.tolist(),
                "queue_ptr_after": [int(p) for p in pointers],
            }
        )
    return out


# --------------------------------------------------------------------------------------
# Finite-difference self-check of the hand-derived gradients
# --------------------------------------------------------------------------------------


def finite_difference_errors(case):
    """Central differences of `total` against the analytic gradients, every step of a case.

    The mined slots are held fixed at those of the unperturbed inputs (the selection is
    piecewise constant, so it carries no gradient). Returns a list of messages.
    """
    cfg = case["config"]
    queue = np.asarray(case["queue_init"], dtype=np.float64)
    pointers = np.asarray(case["queue_ptr_init"], dtype=np.int64)
    errors = []
    for s, step in enumerate(case["steps"]):
        f = np.asarray(step["features"], dtype=np.float64)
        z = np.asarray(step["logits"], dtype=np.float64)
        y = step["labels"]
        base = loss_and_grads(cfg, queue, f, z, y)
        sel = base["selection"]
        for name, x, grad in (("features", f, base["grad_features"]), ("logits", z, base["grad_logits"])):
            for idx in np.ndindex(*x.shape):
                plus, minus = x.copy(), x.copy()
                plus[idx] += FD_STEP
                minus[idx] -= FD_STEP
                args = (plus, z) if name == "features" else (f, plus)
                up = loss_and_grads(cfg, queue, *args, y, sel)["total"]
                args = (minus, z) if name == "features" else (f, minus)
                down = loss_and_grads(cfg, queue, *args, y, sel)["total"]
                numeric = (up - down) / (2 * FD_STEP)
                if abs(numeric - grad[idx]) > FD_ABS + FD_REL * abs(grad[idx]):
                    errors.append(
                        f"step {s} grad_{name}{list(idx)}: analytic {grad[idx]:.12g}, "
                        f"finite difference {numeric:.12g}"
                    )
        labels = np.asarray(y, dtype=np.int64)
        half = labels.size // 2
        queue, pointers = enqueue(queue, pointers, base["q"][:half], labels[:half], cfg["queue_per_class"])
    return errors


# --------------------------------------------------------------------------------------
# Case files
# --------------------------------------------------------------------------------------


def case_paths(directory):
    paths = sorted(Path(directory).glob("*.json"))
    if not paths:
        raise SystemExit(f"no golden case (*.json) in {directory}")
    return paths


def inputs_of(case):
    """The case with only its inputs, in the canonical key order."""
    return {
        "name": case["name"],
        "config": case["config"],
        "queue_init": case["queue_init"],
        "queue_ptr_init": case["queue_ptr_init"],
        "steps": [
            {"features": s["features"], "logits": s["logits"], "labels": s["labels"]}
            for s in case["steps"]
        ],
    }


def with_expected(case, expected):
    out = inputs_of(case)
    for step, e in zip(out["steps"], expected):
        step["expected"] = e
    return out


def write_case(path, case):
    """Atomic write of one case (single-line JSON, shortest round-trip floats)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(case))
    tmp.replace(path)


def compare(name, recomputed, committed, errors):
    """Appends a message for the worst element outside the tolerance; returns max rel diff."""
    r = np.asarray(recomputed, dtype=np.float64)
    c = np.asarray(committed, dtype=np.float64)
    if r.shape != c.shape:
        errors.append(f"{name}: shape {r.shape}, committed {c.shape}")
        return np.inf
    diff = np.abs(r - c)
    bad = diff > CHECK_ABS + CHECK_REL * np.abs(c)
    if bad.any():
        k = int(np.argmax(np.where(bad, diff, -1.0)))
        errors.append(
            f"{name}: {int(bad.sum())} of {bad.size} values differ; worst at flat index {k}: "
            f"recomputed {float(r.flat[k])!r}, committed {float(c.flat[k])!r}"
        )
    scale = np.maximum(np.abs(c), CHECK_ABS / CHECK_REL)
    return float((diff / scale).max()) if diff.size else 0.0


def check_case(case):
    """Recomputes a case; returns (messages for values outside the tolerance, max rel diff)."""
    errors = []
    worst = 0.0
    for s, (committed, recomputed) in enumerate(zip(case["steps"], compute_expected(case))):
        if "expected" not in committed:
            errors.append(f"step {s}: no `expected`")
            continue
        e = committed["expected"]
        for key in ("total", "classification", "contrastive", "grad_features", "grad_logits", "queue_after"):
            worst = max(worst, compare(f"step {s} {key}", recomputed[key], e[key], errors))
        if recomputed["queue_ptr_after"] != e["queue_ptr_after"]:
            errors.append(
                f"step {s} queue_ptr_after: recomputed {recomputed['queue_ptr_after']}, "
                f"committed {e['queue_ptr_after']}"
            )
    return errors, worst


def self_check(cases):
    """Finite-difference check on every step of every case; exits on a failure."""
    failed = False
    for path, case in cases:
        errors = finite_difference_errors(case)
        if errors:
            failed = True
            print(f"FAIL gradient self-check {path.name}")
            for e in errors[:10]:
                print(f"     {e}")
    if failed:
        raise SystemExit("the analytic gradients disagree with finite differences")
    print(f"ok   gradient self-check (central differences) on {len(cases)} cases")


def run(directory, check, rewrite_all=False):
    cases = [(p, json.loads(p.read_text())) for p in case_paths(directory)]
    self_check(cases)
    failed = False
    for path, case in cases:
        if check:
            errors, worst = check_case(case)
            if errors:
                failed = True
                print(f"FAIL {path.name}")
                for e in errors[:20]:
                    print(f"     {e}")
            else:
                print(f"ok   {path.name}: {len(case['steps'])} steps, max relative difference {worst:.1e}")
        else:
            errors, _ = check_case(case)
            if errors or rewrite_all:
                write_case(path, with_expected(case, compute_expected(case)))
                print(f"wrote {path}")
            else:
                print(f"kept {path.name}: committed values agree with the reference")
    if check:
        print("golden check: " + ("FAILED" if failed else "passed"))
    return 1 if failed else 0


# --------------------------------------------------------------------------------------
# New cases
# --------------------------------------------------------------------------------------


def int_list(text):
    return [int(v) for v in text.split(",") if v.strip()]


def new_case(args):
    rng = np.random.default_rng(args.seed)
    counts = int_list(args.counts)
    c, k, d = len(counts), args.queue_per_class, args.dim
    cfg = {
        "class_counts": counts,
        "queue_per_class": k,
        "hard_positives": args.hard_positives,
        "hard_negatives": (c - 1) * k if args.hard_negatives == "all" else int(args.hard_negatives),
        "temperature": args.temperature,
        "contrast_weight": args.contrast_weight,
        "effective_num_beta": args.effective_num_beta,
        "prior_strength": args.prior_strength,
        "dim": d,
    }
    queue = rng.standard_normal((c * k, d))
    queue /= np.linalg.norm(queue, axis=1, keepdims=True)
    pointers = rng.integers(0, k, size=c) if args.random_pointers else np.zeros(c, dtype=np.int64)
    if args.labels:
        view1 = [int_list(s) for s in args.labels.split(";")]
    else:
        prior = np.asarray(counts, dtype=np.float64) / sum(counts)
        view1 = [rng.choice(c, size=args.batch, p=prior).tolist() for _ in range(args.steps)]
    steps = []
    for labels in view1:
        if any(not 0 <= v < c for v in labels):
            raise SystemExit(f"label out of range 0..{c}: {labels}")
        m = 2 * len(labels)
        # raw projections of varied norms (the loss normalises them) and logits of scale ~2
        scale = rng.uniform(0.5, 3.0, size=(m, 1))
        steps.append(
            {
                "features": (rng.standard_normal((m, d)) * scale).tolist(),
                "logits": (2.0 * rng.standard_normal((m, c))).tolist(),
                "labels": labels + labels,
            }
        )
    case = {
        "name": args.name,
        "config": cfg,
        "queue_init": queue.tolist(),
        "queue_ptr_init": [int(p) for p in pointers],
        "steps": steps,
    }
    validate_config(cfg, queue, np.asarray(pointers))
    path = Path(args.dir) / f"{args.name}.json"
    if path.exists() and not args.force:
        raise SystemExit(f"{path} exists (use --force to replace it)")
    errors = finite_difference_errors(case)
    if errors:
        raise SystemExit("gradient self-check failed:\n" + "\n".join(errors[:10]))
    write_case(path, with_expected(case, compute_expected(case)))
    print(f"wrote {path}")
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "new":
        p = argparse.ArgumentParser(prog="golden.py new", description="Create a new golden case.")
        p.add_argument("name", help="case name; the file is DIR/NAME.json")
        p.add_argument("--dir", default=str(GOLDEN_DIR), help="where to write (default tests/golden)")
        p.add_argument("--seed", type=int, required=True, help="seed of the random inputs")
        p.add_argument("--counts", required=True, help="class histogram n_c, e.g. 50,20,5")
        p.add_argument("--queue-per-class", type=int, default=2, help="K")
        p.add_argument("--hard-positives", type=int, default=1, help="k_pos")
        p.add_argument("--hard-negatives", default="2", help="k_neg, or `all` for (C-1)*K")
        p.add_argument("--temperature", type=float, default=0.1)
        p.add_argument("--contrast-weight", type=float, default=1.0)
        p.add_argument("--effective-num-beta", type=float, default=0.99)
        p.add_argument("--prior-strength", type=float, default=0.0)
        p.add_argument("--dim", type=int, default=4)
        p.add_argument("--batch", type=int, default=4, help="images N per step (2N rows)")
        p.add_argument("--steps", type=int, default=2)
        p.add_argument(
            "--labels",
            help="view-1 labels per step, e.g. '0,0,2;1,1,0' (view 2 repeats them); "
            "default: drawn from the class prior",
        )
        p.add_argument("--random-pointers", action="store_true", help="random initial ring pointers")
        p.add_argument("--force", action="store_true", help="replace an existing file")
        return new_case(p.parse_args(argv[1:]))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="compare instead of rewriting")
    p.add_argument(
        "--rewrite-all",
        action="store_true",
        help="rewrite every case, also those whose committed values agree within the tolerance",
    )
    p.add_argument("--dir", default=str(GOLDEN_DIR), help="case directory (default tests/golden)")
    args = p.parse_args(argv)
    return run(args.dir, args.check, args.rewrite_all)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ValueError as e:
        sys.exit(f"error: {e}")
