#!/usr/bin/env python3
"""PyTorch timings for the ResCom benchmark cases; one JSON line per case on stdout.

    python3 benches/pytorch/bench.py [--threads N] [--device cpu|cuda] [--cases a,b] [--quick]
                                     [--authors CHECKOUT]

With `--authors CHECKOUT` (a dvlab-research/ResCom checkout) the cases `loss_*_authors` time
the authors' own loss (authors_loss.py) at the same sizes.

Each timed case reports the median over samples of the mean time of one call (samples of
several calls for short cases), after warm-up. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar_resnet import ResComNet  # noqa: E402
from rescom_torch import (  # noqa: E402
    ResComLoss,
    build_index_tables,
    mine_hard_pairs,
    mine_hard_pairs_index_table,
)

SEED = 20220323


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------


def exp_profile(num_classes: int, n_max: int, imbalance: float):
    """Exponential long-tailed profile (docs/method.md, Long-tailed splits)."""
    return [int(math.floor(n_max * imbalance ** (-c / (num_classes - 1)))) for c in range(num_classes)]


# CIFAR-100-LT IF 100: 500 .. 5 per class (published recipe, docs/method.md).
CIFAR100 = dict(counts=exp_profile(100, 500, 100.0), rows=256, dim=32, K=10, k_pos=1, k_neg=400,
                tau=0.2, lam=0.5, beta=0.999999)
# ImageNet-LT sized (C=1000), with the same exponential 500 .. 5 profile and loss settings as
# the crate's criterion bench (the histogram only shapes the label draw and the weights).
IMAGENET_LT = dict(counts=exp_profile(1000, 500, 100.0), rows=512, dim=128, K=4, k_pos=2,
                   k_neg=1000, tau=0.2, lam=0.5, beta=0.999999)
# iNaturalist 2018 sized, for the mining memory case only.
INAT = dict(C=8142, K=2, dim=128, rows=512, k_pos=2, k_neg=1000)

LOSS_CASES = {"cifar100": CIFAR100, "imagenet_lt": IMAGENET_LT}

ALL_CASES = [
    "loss_cifar100", "loss_cifar100_loop", "loss_imagenet_lt", "loss_imagenet_lt_loop",
    "enqueue_cifar100", "enqueue_cifar100_loop", "enqueue_imagenet_lt", "enqueue_imagenet_lt_loop",
    "mining_cifar100", "mining_imagenet_lt",
    "resnet32_step_ce", "resnet32_step_rescom",
    "mining_memory_inat",
]
# The authors' own code at the loss sizes; they need --authors.
AUTHORS_CASES = ["loss_cifar100_authors", "loss_imagenet_lt_authors"]


class Ctx:
    def __init__(self, device: str, threads: int, quick: bool, authors=None):
        self.device = torch.device(device)
        self.threads = threads
        self.quick = quick
        self.cuda = self.device.type == "cuda"
        self.authors = authors  # their modules (authors_loss.load), or None

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def gen(self, offset=0):
        return torch.Generator().manual_seed(SEED + offset)


def emit(ctx: Ctx, case: str, ms, **extra):
    line = {"case": case, "ms": None if ms is None else round(ms, 6),
            "device": str(ctx.device) if not ctx.cuda else torch.cuda.get_device_name(ctx.device),
            "threads": ctx.threads}
    line.update(extra)
    print(json.dumps(line), flush=True)


def time_ms(ctx: Ctx, fn, heavy: bool = False, cpu_ms=None):
    """Median per-call time in ms.

    Short cases: warm-up for >= 0.5 s (0.1 s quick) and >= 5 calls, then samples of as many
    calls as fill ~20 ms (5 ms quick); 25 samples (7 quick).
    Heavy cases (training steps): 2 warm-up + 5 timed single calls (1 + 3 quick).
    With a list `cpu_ms`, the median per-call CPU time of the process (all threads) is
    appended to it.
    """
    if heavy:
        warm, samples, per_sample_s, min_warm_s = (1, 3, 0.0, 0.0) if ctx.quick else (2, 5, 0.0, 0.0)
    else:
        warm, samples, per_sample_s, min_warm_s = (5, 7, 0.005, 0.1) if ctx.quick else (5, 25, 0.02, 0.5)
    ctx.sync()
    t0 = time.perf_counter()
    n = 0
    while n < warm or time.perf_counter() - t0 < min_warm_s:
        fn()
        n += 1
        ctx.sync()
    one = (time.perf_counter() - t0) / n
    inner = 1 if heavy else max(1, int(per_sample_s / max(one, 1e-9)))
    times, cpu = [], []
    for _ in range(samples):
        ctx.sync()
        t, c = time.perf_counter(), time.process_time()
        for _ in range(inner):
            fn()
        ctx.sync()
        times.append((time.perf_counter() - t) / inner)
        cpu.append((time.process_time() - c) / inner)
    if cpu_ms is not None:
        cpu_ms.append(statistics.median(cpu) * 1e3)
    return statistics.median(times) * 1e3


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


def make_labels(ctx: Ctx, counts, n: int, offset=0):
    """n labels drawn from the long-tailed prior, duplicated view-major (length 2n)."""
    p = torch.tensor(counts, dtype=torch.float64)
    y = torch.multinomial(p / p.sum(), n, replacement=True, generator=ctx.gen(offset))
    return torch.cat([y, y]).to(ctx.device)


def make_loss(ctx: Ctx, s):
    return ResComLoss(s["counts"], s["K"], s["dim"], k_pos=s["k_pos"], k_neg=s["k_neg"],
                      tau=s["tau"], lam=s["lam"], beta=s["beta"], eta=0.0, device=ctx.device,
                      seed=SEED)


# --------------------------------------------------------------------------------------
# Loss, enqueue and mining cases
# --------------------------------------------------------------------------------------


def loss_inputs(ctx: Ctx, s):
    """The loss of setting `s`, raw features and logits that require gradients, and labels
    (view-major), drawn the same way for every loss case."""
    m, n = s["rows"], s["rows"] // 2
    loss = make_loss(ctx, s)
    g = ctx.gen(1)
    feats = torch.randn(m, s["dim"], generator=g).to(ctx.device).requires_grad_()
    logits = torch.randn(m, len(s["counts"]), generator=g).to(ctx.device).requires_grad_()
    return loss, feats, logits, make_labels(ctx, s["counts"], n, 2)


def bench_loss(ctx: Ctx, s, mode: str):
    n = s["rows"] // 2
    loss, feats, logits, labels = loss_inputs(ctx, s)

    def step():
        feats.grad = None
        logits.grad = None
        out = loss(feats, logits, labels)
        out.total.backward()
        loss.enqueue(out.q[:n], labels[:n], mode)

    return time_ms(ctx, step)


def bench_authors_loss(ctx: Ctx, s):
    """The authors' code on the inputs and starting queue of bench_loss (same generators).

    Before timing, their first total is checked against rescom_torch's on the same inputs
    and queue (float32, relative 1e-5): the shims leave their computation intact."""
    import authors_loss

    loss, feats, logits, labels = loss_inputs(ctx, s)
    step = authors_loss.loss_step(ctx.authors, s, feats, logits, labels, loss.queue.keys)
    ours = float(loss(feats, logits, labels).total.detach())
    theirs = float(step())
    if not abs(theirs - ours) <= 1e-5 * abs(ours):
        raise RuntimeError(f"the authors' loss {theirs} differs from rescom_torch's {ours}")
    return time_ms(ctx, step)


def bench_enqueue(ctx: Ctx, s, mode: str):
    n = s["rows"] // 2
    loss = make_loss(ctx, s)
    q = F.normalize(torch.randn(n, s["dim"], generator=ctx.gen(3)), dim=1).to(ctx.device)
    labels = make_labels(ctx, s["counts"], n, 2)[:n]
    return time_ms(ctx, lambda: loss.queue.enqueue(q, labels, mode))


def bench_mining(ctx: Ctx, s):
    m = s["rows"]
    loss = make_loss(ctx, s)
    q = F.normalize(torch.randn(m, s["dim"], generator=ctx.gen(4)), dim=1).to(ctx.device)
    labels = make_labels(ctx, s["counts"], m // 2, 2)
    keys = loss.queue.keys
    c_, k = len(s["counts"]), s["K"]

    @torch.no_grad()
    def step():
        return mine_hard_pairs(q @ keys.t(), labels, c_, k, s["k_pos"], s["k_neg"])

    return time_ms(ctx, step)


# --------------------------------------------------------------------------------------
# CIFAR ResNet-32 training step (the network: cifar_resnet.py)
# --------------------------------------------------------------------------------------


def resnet_step(ctx: Ctx, rescom: bool):
    """One training step of the ResNet-32 setting, as a closure (built once, run many times)."""
    s = CIFAR100
    n = 128
    torch.manual_seed(SEED)
    model = ResComNet(32, len(s["counts"]), s["dim"]).to(ctx.device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    g = ctx.gen(5)
    x = torch.randn(2 * n, 3, 32, 32, generator=g).to(ctx.device)
    labels = make_labels(ctx, s["counts"], n, 6)
    loss = make_loss(ctx, s) if rescom else None

    def step():
        opt.zero_grad(set_to_none=True)
        if rescom:
            logits, z = model(x, with_projection=True)
            out = loss(z, logits, labels)
            out.total.backward()
            opt.step()
            loss.enqueue(out.q[:n], labels[:n])
        else:
            logits, _ = model(x, with_projection=False)
            F.cross_entropy(logits, labels).backward()
            opt.step()

    return step


def bench_resnet(ctx: Ctx, rescom: bool, cpu_ms=None):
    return time_ms(ctx, resnet_step(ctx, rescom), heavy=True, cpu_ms=cpu_ms)


def resident_kib():
    """(VmRSS, VmHWM) of this process in KiB, from /proc/self/status (Linux)."""
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(rest.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def step_memory(ctx: Ctx, steps: int):
    """Resident memory before `steps` ResCom ResNet-32 steps and the peak after them (the
    Rust side: `cargo bench --bench model_step -- --memory N`)."""
    step = resnet_step(ctx, True)
    before, _ = resident_kib()
    for _ in range(steps):
        step()
    _, peak = resident_kib()
    print(json.dumps({"case": "resnet32_step_rescom", "steps": steps,
                      "rss_before_kib": before, "peak_kib": peak}))


# --------------------------------------------------------------------------------------
# Mining memory at iNaturalist scale
# --------------------------------------------------------------------------------------

MB = 1e6


def memory_formula(kind: str, s=INAT):
    """Bytes of every tensor the float32 no-grad mining step allocates (all alive at its end)."""
    c_, k, m, kp, kn = s["C"], s["K"], s["rows"], s["k_pos"], s["k_neg"]
    f4, i8 = 4, 8
    sim = m * c_ * k * f4
    topk_pos = m * kp * (f4 + i8)
    topk_neg = m * kn * (f4 + i8) + m * kn * i8  # values + slots, + classes
    if kind == "masked":
        # sim (masked in place) + own-class block copy [M, K]
        return {"step": sim + m * k * f4 + topk_pos + topk_neg, "persistent": 0}
    tables = c_ * k * i8 + c_ * (c_ - 1) * k * i8
    per_step = (sim + m * k * (i8 + f4)  # pos slots + gathered
                + m * (c_ - 1) * k * (i8 + f4)  # neg slots [M, (C-1)K] int64 + gathered sims
                + topk_pos + topk_neg + m * kn * i8)  # + slot gather from the top-k
    return {"step": per_step, "persistent": tables}


def _proc_kb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory_probe(kind: str, device: str):
    """Run in a fresh process: peak memory increase of one mining step (tables included)."""
    s = INAT
    dev = torch.device(device)
    g = torch.Generator().manual_seed(SEED)
    q = F.normalize(torch.randn(s["rows"], s["dim"], generator=g), dim=1).to(dev)
    keys = F.normalize(torch.randn(s["C"] * s["K"], s["dim"], generator=g), dim=1).to(dev)
    labels = torch.randint(0, s["C"], (s["rows"] // 2,), generator=g).repeat(2).to(dev)
    torch.arange(10).sum()  # warm lazy init
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        with open("/proc/self/clear_refs", "w") as fh:  # reset the peak-RSS mark (VmHWM)
            fh.write("5")
        base = _proc_kb("VmRSS") * 1024
    with torch.no_grad():
        if kind == "masked":
            mined = mine_hard_pairs(q @ keys.t(), labels, s["C"], s["K"], s["k_pos"], s["k_neg"])
        else:
            pos_t, neg_t = build_index_tables(s["C"], s["K"], dev)
            mined = mine_hard_pairs_index_table(q @ keys.t(), labels, pos_t, neg_t, s["K"],
                                                s["k_pos"], s["k_neg"])
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _proc_kb("VmHWM") * 1024 - base
    del mined
    print(json.dumps({"peak_bytes": peak}))


def bench_memory(ctx: Ctx):
    measured = {}
    method = ("CUDA allocator peak (max_memory_allocated) increase" if ctx.cuda
              else "peak RSS increase (VmHWM after reset) in a fresh process")
    for kind in ("masked", "table"):
        try:
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-probe", kind,
                                  "--device", str(ctx.device), "--threads", str(ctx.threads)],
                                 capture_output=True, text=True, check=True)
            measured[kind] = json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"] / MB
        except (subprocess.CalledProcessError, OSError, ValueError, KeyError) as err:
            print(f"memory probe '{kind}' failed: {err}", file=sys.stderr)
            measured[kind] = None
    fm, ft = memory_formula("masked"), memory_formula("table")
    r = lambda v: None if v is None else round(v, 1)  # noqa: E731
    emit(ctx, "mining_memory_inat", None, unit="MB (1e6 bytes)",
         C=INAT["C"], K=INAT["K"], D=INAT["dim"], rows=INAT["rows"], k_pos=INAT["k_pos"],
         k_neg=INAT["k_neg"],
         masked_topk_mb=r(fm["step"] / MB),
         index_table_mb=r((ft["step"] + ft["persistent"]) / MB),
         index_table_persistent_mb=r(ft["persistent"] / MB),
         index_table_step_mb=r(ft["step"] / MB),
         masked_topk_measured_mb=r(measured["masked"]),
         index_table_measured_mb=r(measured["table"]),
         computed="exact sum of the float32/int64 tensors each approach allocates",
         measured=method)


# --------------------------------------------------------------------------------------


def run_case(ctx: Ctx, case: str):
    if case == "mining_memory_inat":
        return bench_memory(ctx)
    if case.startswith("resnet32_step_"):
        cpu = []
        ms = bench_resnet(ctx, case.endswith("rescom"), cpu)
        return emit(ctx, case, ms, cpu_ms=round(cpu[0], 3))
    if case in AUTHORS_CASES:
        s = LOSS_CASES[case[len("loss_"):-len("_authors")]]
        return emit(ctx, case, bench_authors_loss(ctx, s), code=f"authors {ctx.authors[2] or 'checkout'}")
    kind, _, rest = case.partition("_")
    loop = rest.endswith("_loop")
    s = LOSS_CASES[rest[:-5] if loop else rest]
    mode = "loop" if loop else "vectorised"
    if kind == "loss":
        ms = bench_loss(ctx, s, mode)
    elif kind == "enqueue":
        ms = bench_enqueue(ctx, s, mode)
    elif kind == "mining":
        ms = bench_mining(ctx, s)
    else:
        raise ValueError(case)
    emit(ctx, case, ms)


def default_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main(argv=None):
    p = argparse.ArgumentParser(description="PyTorch side of the ResCom benchmarks (JSON lines).")
    p.add_argument("--threads", type=int, default=default_threads(),
                   help="torch.set_num_threads (default: number of usable cores)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--cases", default=",".join(ALL_CASES),
                   help="comma-separated subset of: " + ", ".join(ALL_CASES))
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--authors", metavar="CHECKOUT",
                   help="a dvlab-research/ResCom checkout (the folder holding ResCom/): enables "
                        "the cases " + ", ".join(AUTHORS_CASES) + " (CPU only)")
    p.add_argument("--memory-probe", choices=["masked", "table"], help=argparse.SUPPRESS)
    p.add_argument("--memory", type=int, metavar="STEPS",
                   help="run STEPS ResCom ResNet-32 steps alone and print the resident memory "
                        "before them and the peak (KiB, one JSON line)")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            p.error("--device cuda: this torch build sees no CUDA device")
        torch.backends.cudnn.benchmark = True
    elif args.device != "cpu":
        p.error(f"unsupported device {args.device!r}")
    if args.memory_probe:
        memory_probe(args.memory_probe, args.device)
        return 0
    if args.memory is not None:
        step_memory(Ctx(args.device, args.threads, True), args.memory)
        return 0

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    known = ALL_CASES + AUTHORS_CASES
    unknown = [c for c in cases if c not in known]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(known)}")
    authors = None
    if any(c in AUTHORS_CASES for c in cases):
        if args.authors is None:
            p.error(f"{', '.join(AUTHORS_CASES)} need --authors CHECKOUT")
        if args.device != "cpu":
            p.error("--authors runs on the CPU only (their loss module is shimmed to it)")
        import authors_loss

        authors = authors_loss.load(args.authors)
    ctx = Ctx(args.device, args.threads, args.quick, authors)
    print(f"# torch {torch.__version__}, device {ctx.device}, threads {torch.get_num_threads()}"
          f"{', quick' if args.quick else ''}", file=sys.stderr)
    for case in cases:
        run_case(ctx, case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
