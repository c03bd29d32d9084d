#!/usr/bin/env python3
"""The authors' own ResCom modules through the steps of tests/reference/train_step.py.

Regenerate the fixture from the repository root with

    python3 tests/reference/authors_step.py /path/to/ResCom-checkout

where the checkout is the authors' public repository (dvlab-research/ResCom), the folder that
contains ResCom/rescom/builder.py, ResCom/losses.py and ResCom/models/resnet_cifar.py. It needs
PyTorch >= 2 (with the gloo backend of torch.distributed, part of every CPU build) and NumPy,
and writes tests/fixtures/authors_step.json in the format of train_step.json, which
tests/train_step.rs compares with the crate's steps.

Nothing of the authors' code is copied here: their folder is put on sys.path and their modules
are imported when the program runs. The setting is exactly that of train_step.py, whose
configuration and counter-based stream this program imports (weights, images, initial queue,
labels, learning rates, class counts, K, k_pos, k_neg, tau, lambda, beta, momentum, weight
decay). What runs is theirs:

- the model is their `rescom.builder.ResCom` (encoder, `linear` classifier, `mlp` projection;
  their class-balanced queue, hard pair mining, batch contrast and enqueue inside `forward`),
  with their `models.resnet_cifar.ResNet_s(BasicBlock, [1, 1, 1])` as the encoder: ResNet-8,
  the 6n + 2 family of their `resnet20`/`resnet32` at n = 1 (they define no `resnet8`; their
  stem is 16 channels wide, the test's width), `dim_feat = 64`, `batch_size = 16` images per
  view, wrapped in `DistributedDataParallel` as their `main_worker` does;
- the loss is their `losses.SiamBS_SPM` with `balsfx_n = 0` (the published setting);
- the step is their `train()`: both views concatenated, `model(img=img, labels=target)`,
  `criterion(sim_con, labels_con, logits_cls, target)`, `zero_grad`, `backward`, `step`;
- the optimiser is built as their `main_worker` builds it,
  `torch.optim.SGD(model.parameters(), lr, momentum=m, weight_decay=wd)`: every parameter,
  PyTorch's defaults dampening 0 and no Nesterov. `m` and `wd` are 0.9 and 5e-4 (their
  config's defaults) rounded to float32 as Burn holds them, as in train_step.py, so that the
  comparison isolates the arithmetic. The learning rate of each step is written into the
  parameter groups, as their non-CIFAR `adjust_learning_rate` does.

Shims (applied when the modules are imported or built; none changes a value they compute):

1. `torch.device('cuda')` in losses.py answers the CPU device (their module sees a `torch`
   whose `device` maps "cuda" to "cpu"; everything else is torch itself). `SiamBS_SPM` only
   uses it to move its class prior and class weights next to the model; the values are those
   it computes.
2. No GPU and one process: instead of their `main_worker`'s NCCL group of one process per GPU,
   a gloo process group of world size 1 (a file store in a temporary folder). Their
   `concat_all_gather` and `DistributedDataParallel` run unchanged on it: a gather over one
   rank is the tensor itself, and the gradient all-reduce sums one rank and divides by 1. The
   published CIFAR runs were single-GPU runs, the same world of one.
3. Their queue, drawn from `torch.randn` in `ResCom.__init__`, is overwritten after
   construction with train_step.py's initial queue (transposed to their `[D, C*K]` layout,
   pointers 0), and every parameter and batch-norm statistic with train_step.py's fill, in the
   order of the crate's fields (encoder, mlp, linear), so that the start is exactly the crate
   test's. The program checks that the filled tensors equal those of train_step.py's model.
4. The float64 run sets PyTorch's default dtype to float64 before their modules are built, so
   their layers, queue, class prior and every intermediate are float64 (the float32 run keeps
   the default float32).

Where their code departs from the crate's documented method (docs/method.md), in this setting:

a. Class weights in float32. `SiamBS_SPM` builds the effective-number weights with
   `torch.FloatTensor`, which is float32 whatever the default dtype: in the float64 run every
   weight is rounded to float32 (relative <= 2^-24 = 6e-8) while the crate keeps them in f64.
   The fixture keeps their float32 weights (an honest record of their computation). The
   program measures the effect by repeating the float64 run with the same weights in float64
   (a diagnostic run, not written). With torch 2.x it moves the contrastive loss by 1.6e-7
   (relative 1e-8) and the momentum buffers by up to 2.9e-8: an element of a gradient is a
   sum of per-row terms of order 0.5 that each carry the rounding, so where the terms cancel
   (an element of 2.9e-4) the relative difference reaches 1e-4, 22,000 times the 1e-9
   tolerance of the crate's own float64 reference. tests/train_step.rs therefore compares
   its float64 run with this fixture to |a - e| <= 1e-6 |e| + 2e-7 (float32 as usual): the
   float32 weights use 0.14 of it, and the program refuses to write the fixture if they use
   more than a quarter. That is still 100 times tighter in relative terms and 50 times in
   absolute terms than the float32 tolerance (1e-4 |e| + 1e-5).
b. The contrastive normaliser is `|P(i)| + 1e-9` there, `|P(i)|` in the crate. Every row here
   has at least two positives (the other view and one mined positive), so each row's term
   differs by at most 5e-10 relative; through the same cancellation it moves momentum
   elements by up to 1e-10 (relative 2.8e-7, 72 times the 1e-9 tolerance; measured with
   train_step.py given the same normaliser), 0.0005 of (a)'s tolerance.
c. The prior term in the contrast (`balsfx_n != 0`) adds a vector of length M + C*K to logits of
   length M - 1 + k_pos + k_neg and fails there; the published setting, used here, is
   `balsfx_n = 0`, where their code and the crate agree.
d. Their Balanced Softmax prior is computed in the run's dtype by torch (`n_c / n`, then
   `log(pi + 1e-9)`), the crate's in f64: in float32 a rounding difference of the log prior,
   in float64 none beyond rounding.

The program also compares its float64 run, and the diagnostic run, with the crate's own
reference (tests/fixtures/train_step.json, if present) and prints the largest differences. With
float64 weights their float64 run agrees with train_step.py given the `+ 1e-9` normaliser to
0.001 of the 1e-9 tolerance: (a) and (b) are the only differences between their step and the
crate's reading of the method in this setting.
"""

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train_step as ref  # noqa: E402  (the setting and the stream, shared)

OUT = os.path.join(HERE, "..", "fixtures", "authors_step.json")
CRATE_REFERENCE = os.path.join(HERE, "..", "fixtures", "train_step.json")

# tests/train_step.rs compares its float64 run with this fixture to |a - e| <= REL |e| + ABS
# (see (a) in the docstring); float32 as for train_step.json.
F64_REL, F64_ABS = 1e-6, 2e-7
F32_REL, F32_ABS = 1e-4, 1e-5


# ----- the authors' modules -------------------------------------------------------------------


class _TorchOnCpu:
    """torch, except that `device('cuda...')` is the CPU device (shim 1)."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def device(kind, *args, **kwargs):
        if str(kind).startswith("cuda"):
            return torch.device("cpu")
        return torch.device(kind, *args, **kwargs)


def load_authors(checkout):
    root = os.path.join(os.path.abspath(checkout), "ResCom")
    for part in ["rescom/builder.py", "losses.py", "models/resnet_cifar.py"]:
        if not os.path.isfile(os.path.join(root, part)):
            sys.exit(f"{checkout}: no ResCom/{part}; pass the folder of a dvlab-research/ResCom checkout")
    sys.path.insert(0, root)
    builder = importlib.import_module("rescom.builder")
    losses = importlib.import_module("losses")
    resnet_cifar = importlib.import_module("models.resnet_cifar")
    for module in [builder, losses, resnet_cifar]:
        assert os.path.abspath(module.__file__).startswith(root), f"{module.__name__} imported from elsewhere"
    losses.torch = _TorchOnCpu()
    commit = None  # recorded when the checkout is a git work tree of its own
    try:
        git = ["git", "-C", os.path.abspath(checkout), "rev-parse", "--show-toplevel", "HEAD"]
        top, head = subprocess.run(git, capture_output=True, text=True, check=True).stdout.split()
        if os.path.samefile(top, checkout):
            commit = head
    except (OSError, ValueError, subprocess.CalledProcessError):
        pass
    return builder, losses, resnet_cifar, commit


class Ordered(nn.Module):
    """Their model's parameters and statistics in the order of the crate's fields (backbone,
    hidden, norm, projection, classifier), without the queue buffers; shares their modules."""

    def __init__(self, net):
        super().__init__()
        self.encoder = net.encoder
        self.mlp = net.mlp
        self.linear = net.linear


def check_start(ordered, dtype, host):
    """The filled tensors equal those of train_step.py's model (same values, same order)."""
    mine = ref.Model().to(dtype)
    ref.fill(mine, host)
    a = [(n, t) for n, t in ordered.state_dict().items() if not n.endswith("num_batches_tracked")]
    b = [(n, t) for n, t in mine.state_dict().items() if not n.endswith("num_batches_tracked")]
    assert len(a) == len(b), (len(a), len(b))
    for (na, ta), (nb, tb) in zip(a, b):
        assert ta.shape == tb.shape and torch.equal(ta, tb), f"{na} differs from {nb}"


# ----- the steps ------------------------------------------------------------------------------


def run(authors, dtype, f64_class_weights=False):
    """Three of their training steps in `dtype`; with `f64_class_weights` (diagnostic only) the
    loss's class weights are replaced by their float64 values."""
    builder, losses, resnet_cifar, _ = authors
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # shim 4
    try:
        torch.manual_seed(0)
        host = np.float64 if dtype == torch.float64 else np.float32

        def resnet8(num_classes):
            return resnet_cifar.ResNet_s(resnet_cifar.BasicBlock, [1, 1, 1])

        assert ref.DEPTH == 8 and ref.WIDTH == 16, "their ResNet_s is 16 channels wide"
        net = builder.ResCom(
            resnet8,
            dim_feat=4 * ref.WIDTH,
            batch_size=ref.IMAGES,
            select_num_pos=ref.HARD_POSITIVES,
            select_num_neg=ref.HARD_NEGATIVES,
            num_classes=ref.CLASSES,
            dim=ref.DIM,
            queue_size_per_cls=ref.QUEUE_PER_CLASS,
        )
        ordered = Ordered(net)
        ref.fill(ordered, host)  # shim 3
        check_start(ordered, dtype, host)
        queue, pointers = ref.initial_queue(dtype)
        with torch.no_grad():
            net.queue_list.copy_(queue.T)
            net.queue_ptr.copy_(pointers)
        model = nn.parallel.DistributedDataParallel(net)  # shim 2: a world of one
        criterion = losses.SiamBS_SPM(
            ref.CLASS_COUNTS,
            queue_size_per_cls=ref.QUEUE_PER_CLASS,
            balsfx_n=0.0,
            temperature=ref.TEMPERATURE,
            con_weight=ref.CONTRAST_WEIGHT,
            effective_num_beta=ref.BETA,
        )
        if f64_class_weights:
            counts = np.array(ref.CLASS_COUNTS, dtype=np.float64)
            effective = (1.0 - np.power(ref.BETA, counts)) / (1.0 - ref.BETA)
            criterion.class_weight = torch.from_numpy(effective.sum() / len(effective) / effective)
        optimizer = torch.optim.SGD(
            model.parameters(), ref.LEARNING_RATES[0], momentum=ref.MOMENTUM, weight_decay=ref.WEIGHT_DECAY
        )
        captured = {}
        net.mlp.register_forward_hook(lambda m, i, o: captured.__setitem__("projections", o.detach()))

        model.train()
        steps = []
        for step, lr in enumerate(ref.LEARNING_RATES):
            for group in optimizer.param_groups:
                group["lr"] = lr
            views = ref.images(step, host)
            images_org, images_con = views[: ref.IMAGES], views[ref.IMAGES :]
            target = torch.tensor(ref.LABELS[step])
            queue_before = net.queue_list.clone()

            # their train(), one iteration
            img = torch.cat([images_org, images_con], dim=0)
            target = torch.cat([target, target], dim=0)
            sim_con, labels_con, logits_cls = model(img=img, labels=target)
            loss_cls, loss_con, loss = criterion(sim_con, labels_con, logits_cls, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            tensors = [
                ref.summary(name, t)
                for name, t in ordered.state_dict().items()
                if not name.endswith("num_batches_tracked")
            ]
            momentum = [
                ref.summary(name, optimizer.state[p]["momentum_buffer"])
                for name, p in ordered.named_parameters()
            ]
            steps.append(
                {
                    "lr": lr,
                    "labels": ref.LABELS[step],
                    "total": loss.item(),
                    "classification": loss_cls.item(),
                    "contrastive": loss_con.item(),
                    "mining_gap": mining_gap(captured["projections"], queue_before, target),
                    "tensors": tensors,
                    "momentum": momentum,
                    "queue": ref.summary("queue", net.queue_list.T),
                    "queue_pointers": [int(p) for p in net.queue_ptr],
                }
            )
        return steps, [d.dtype for d in (criterion.class_prior, criterion.class_weight)]
    finally:
        torch.set_default_dtype(previous)


def mining_gap(projections, queue, labels):
    """Smallest gap at the mining cut-offs of a step (their selection is fragile on ties)."""
    q = nn.functional.normalize(projections, dim=1)
    sims = q @ queue
    k = ref.QUEUE_PER_CLASS
    own = (torch.arange(ref.CLASSES * k) // k)[None, :] == labels[:, None]
    m = labels.shape[0]
    pos = torch.sort(sims[own].view(m, k), dim=1).values
    neg = torch.sort(sims[~own].view(m, -1), dim=1, descending=True).values
    return min(
        float((neg[:, ref.HARD_NEGATIVES - 1] - neg[:, ref.HARD_NEGATIVES]).min()),
        float((pos[:, ref.HARD_POSITIVES] - pos[:, ref.HARD_POSITIVES - 1]).min()),
    )


# ----- comparisons ----------------------------------------------------------------------------


def worst(actual, expected, rel, abs_):
    """Largest error of `actual` against `expected` (step lists) as a fraction of the Rust
    test's tolerance |a - e| <= rel |e| + abs (sums: abs + rel sum |e|), and where."""
    out = (0.0, "")

    def see(what, a, e, floor):
        nonlocal out
        r = abs(a - e) / (rel * abs(e) + floor)
        if r > out[0]:
            out = (r, what)

    for step, (a, e) in enumerate(zip(actual, expected)):
        for key in ["total", "classification", "contrastive"]:
            see(f"step {step} {key}", a[key], e[key], abs_)
        for ta, te in zip(a["tensors"] + a["momentum"] + [a["queue"]], e["tensors"] + e["momentum"] + [e["queue"]]):
            where = f"step {step} {te['name']}"
            for i, x, y in zip(te["index"], ta["values"], te["values"]):
                see(f"{where}[{i}]", x, y, abs_)
            see(f"{where} norm", ta["norm"], te["norm"], abs_)
            see(f"{where} abs_sum", ta["abs_sum"], te["abs_sum"], abs_)
            see(f"{where} sum", ta["sum"], te["sum"], abs_ + rel * te["abs_sum"])
        assert a["queue_pointers"] == e["queue_pointers"], f"step {step}: queue pointers differ"
    return out


def largest_relative(actual, expected, floor=1e-6):
    """Largest |a - e| / |e| over the losses, norms and sampled elements with |e| >= floor."""
    out = 0.0
    for a, e in zip(actual, expected):
        pairs = [(a[k], e[k]) for k in ["total", "classification", "contrastive"]]
        for ta, te in zip(a["tensors"] + a["momentum"] + [a["queue"]], e["tensors"] + e["momentum"] + [e["queue"]]):
            pairs += list(zip(ta["values"], te["values"])) + [(ta["norm"], te["norm"])]
        out = max([out] + [abs(x - y) / abs(y) for x, y in pairs if abs(y) >= floor])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", help="folder of a dvlab-research/ResCom checkout (holds ResCom/)")
    args = parser.parse_args()
    authors = load_authors(args.checkout)
    torch.use_deterministic_algorithms(True)

    with tempfile.TemporaryDirectory() as tmp:
        dist.init_process_group("gloo", store=dist.FileStore(os.path.join(tmp, "store"), 1), rank=0, world_size=1)
        try:
            f64, dtypes64 = run(authors, torch.float64)
            f32, dtypes32 = run(authors, torch.float32)
            f64_weights, _ = run(authors, torch.float64, f64_class_weights=True)
        finally:
            dist.destroy_process_group()
    print(f"their class prior / class weights: {dtypes64} in the float64 run, {dtypes32} in the float32 run")

    # (a): float32 class weights in the float64 run.
    r64, where64 = worst(f64, f64_weights, 1e-9, 1e-12)
    r, where = worst(f64, f64_weights, F64_REL, F64_ABS)
    print(
        f"float32 class weights (a), float64 run against the same run with float64 weights: "
        f"largest relative {largest_relative(f64, f64_weights):.2e}; {r64:.1f} x the 1e-9 tolerance "
        f"({where64}); {r:.4f} x the fixture's float64 tolerance ({where})"
    )
    assert r < 0.25, "float32 class weights move the float64 run by more than a quarter of the tolerance"
    # The crate's own reference: (a) and (b) are the only differences.
    if os.path.isfile(CRATE_REFERENCE):
        with open(CRATE_REFERENCE) as f:
            crate = json.load(f)
        for name, steps in [("their float64 run", f64), ("with float64 class weights", f64_weights)]:
            r, where = worst(steps, crate["f64"], 1e-9, 1e-12)
            print(
                f"{name} against train_step.json float64: largest relative "
                f"{largest_relative(steps, crate['f64']):.2e}, {r:.3f} x 1e-9 ({where})"
            )
        r, where = worst(f32, crate["f32"], F32_REL, F32_ABS)
        print(f"their float32 run against train_step.json float32: {r:.3f} x the float32 tolerance ({where})")
    # As in train_step.py: the float32 run must stay close to the float64 one.
    r, where = worst(f32, f64, F32_REL, F32_ABS)
    print(f"float32 run against float64, worst error / tolerance: {r:.3f} ({where})")
    assert r < 0.25, "the float32 run drifts from the float64 one"
    print("smallest mining gap:", min(s["mining_gap"] for s in f64))

    fixture = {
        "generator": "tests/reference/authors_step.py",
        "authors": {"repository": "dvlab-research/ResCom", "commit": authors[3]},
        "torch": torch.__version__,
        "config": {
            "depth": ref.DEPTH,
            "width": ref.WIDTH,
            "images": ref.IMAGES,
            "size": ref.SIZE,
            "classes": ref.CLASSES,
            "dim": ref.DIM,
            "class_counts": ref.CLASS_COUNTS,
            "queue_per_class": ref.QUEUE_PER_CLASS,
            "hard_positives": ref.HARD_POSITIVES,
            "hard_negatives": ref.HARD_NEGATIVES,
            "temperature": ref.TEMPERATURE,
            "contrast_weight": ref.CONTRAST_WEIGHT,
            "effective_num_beta": ref.BETA,
            "momentum": ref.MOMENTUM,
            "weight_decay": ref.WEIGHT_DECAY,
        },
        "f64": f64,
        "f32": f32,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, OUT)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
