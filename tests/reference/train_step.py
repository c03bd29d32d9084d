#!/usr/bin/env python3
"""PyTorch reference of ResCom training steps, for tests/train_step.rs.

Regenerate the fixture from the repository root with

    python3 tests/reference/train_step.py

(PyTorch >= 2, NumPy). It writes tests/fixtures/train_step.json.

The step is the published ResCom step written out in plain PyTorch: a CIFAR ResNet with
option-A shortcuts, the projection MLP (Linear, BatchNorm1d, ReLU, Linear) and the linear
classifier, both views of a batch in one forward pass (batch normalisation in training mode
over the 2N rows), the Siamese Balanced Softmax plus the class-balanced supervised contrastive
loss with hard pairs mined from the class-balanced queue, the view-1 keys enqueued once the
loss is computed, then `torch.optim.SGD` (momentum 0.9, dampening 0, weight decay 5e-4 on
every parameter, PyTorch's rule: d = g + wd * p; buf = m * buf + d; p -= lr * buf).

Every tensor is filled from one counter-based stream (the same fill as tests/models.rs), so the
Rust test rebuilds exactly the same start without reading weights from this file. The fixture
keeps, after every step, the three loss values and a summary of every tensor (sum, sum of
absolute values, L2 norm and a fixed sample of elements) for the parameters, the batch-norm
running statistics, the momentum buffers and the queue, plus the queue pointers. The run is
done in float64 and again in float32.
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

# ----- configuration (mirrored in tests/train_step.rs) ---------------------------------------

DEPTH = 8  # CIFAR ResNet 6n + 2, n = 1
WIDTH = 16
IMAGES = 16  # per view
# 16x16 images: 4x fewer ReLU units than 32x32, so that no pre-activation of the float64 run
# lies within float32 rounding of zero (a ReLU whose sign flips between two float32 programs
# moves a whole gradient sum by one term, ~1e-3 relative, far above the float32 tolerance).
SIZE = 16
CLASSES = 10
DIM = 32
QUEUE_PER_CLASS = 4
HARD_POSITIVES = 1
HARD_NEGATIVES = 20
TEMPERATURE = 0.2
CONTRAST_WEIGHT = 0.5
BETA = 0.999
# Burn keeps SGD's momentum and weight decay as f32: the reference uses the same two numbers
# (0.9 and 5e-4 rounded to f32) so that the float64 comparison isolates the arithmetic.
MOMENTUM = float(np.float32(0.9))
WEIGHT_DECAY = float(np.float32(5e-4))
# Small enough that float32 rounding is not amplified by the steps (float32 and float64 runs
# agree to ~5e-6 per tensor); with 0.1 the third step is already sensitive to rounding.
LEARNING_RATES = [0.02, 0.02, 0.01]
# exponential long-tailed profile, 100 images down to 2 (imbalance factor 50)
CLASS_COUNTS = [math.floor(100 * 50 ** (-c / (CLASSES - 1))) for c in range(CLASSES)]
# One label vector per step (view 1; view 2 repeats it). Class 0 occurs 5 > K times in the
# first step, so its ring wraps within one enqueue.
LABELS = [
    [0, 3, 0, 1, 9, 0, 2, 5, 0, 7, 1, 0, 4, 6, 8, 2],
    [1, 1, 2, 3, 0, 5, 6, 7, 8, 9, 4, 4, 2, 0, 3, 5],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 1, 2, 3, 4, 9],
]
SAMPLES = 16  # elements kept per tensor

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "train_step.json")


# ----- deterministic stream -------------------------------------------------------------------


def uniform(start, n):
    """u(i) in [0, 1) for i in start..start+n: top 24 bits of the splitmix64 finaliser."""
    x = (np.arange(n, dtype=np.uint64) + np.uint64(start)) * np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def fill(model, dtype):
    """Fills the state dict in order, skipping num_batches_tracked: weights of rank >= 2 with
    (2u - 1) sqrt(6 / fan_in), batch-norm scales and running variances with 0.5 + u, biases,
    shifts and running means with 0.2 (u - 0.5). Values are rounded to f32 first."""
    i = 0
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            u = uniform(i, t.numel())
            i += t.numel()
            if t.dim() >= 2:
                v = (2 * u - 1) * np.sqrt(6.0 / int(np.prod(t.shape[1:])))
            elif name.endswith("running_var") or name.endswith("weight"):
                v = 0.5 + u
            else:
                v = 0.2 * (u - 0.5)
            t.copy_(torch.from_numpy(v.astype(np.float32).astype(dtype)).reshape(t.shape))


def images(step, dtype):
    """Both views of a step, view-major: [2N, 3, S, S], 2 u(2^40 + 2^32 step + i) - 1."""
    n = 2 * IMAGES * 3 * SIZE * SIZE
    u = uniform((1 << 40) + (step << 32), n)
    return torch.from_numpy((2 * u - 1).astype(np.float32).astype(dtype)).reshape(
        2 * IMAGES, 3, SIZE, SIZE
    )


def initial_queue(dtype):
    """Unit rows of 2 u(2^41 + i) - 1 (rounded to f32, then normalised in f64 and rounded to
    the run's type), all pointers 0."""
    rows = CLASSES * QUEUE_PER_CLASS
    v = (2 * uniform(1 << 41, rows * DIM) - 1).astype(np.float32).astype(np.float64)
    v = v.reshape(rows, DIM)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return torch.from_numpy(v).to(dtype), torch.zeros(CLASSES, dtype=torch.long)


# ----- network --------------------------------------------------------------------------------

# The network is benches/pytorch/cifar_resnet.py's (the one PyTorch definition of the crate's
# CIFAR ResNet and ResCom head), at this configuration.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benches", "pytorch"))
from cifar_resnet import ResComNet  # noqa: E402


class Model(ResComNet):
    """Backbone, projection MLP and classifier, registered in the order of the Rust fields."""

    def __init__(self):
        super().__init__(DEPTH, CLASSES, DIM, in_channels=3, width=WIDTH)


# ----- loss and queue -------------------------------------------------------------------------


class Criterion:
    def __init__(self, dtype):
        counts = np.array(CLASS_COUNTS, dtype=np.float64)
        self.log_prior = torch.from_numpy(np.log(counts / counts.sum() + 1e-9)).to(dtype)
        effective = (1.0 - np.power(BETA, counts)) / (1.0 - BETA)
        self.weights = torch.from_numpy(effective.sum() / len(effective) / effective).to(dtype)
        self.queue, self.pointers = initial_queue(dtype)

    def __call__(self, projections, logits, labels):
        """Returns (total, classification, contrastive); reads the queue as it was before the
        step, then enqueues the normalised view-1 rows in row order."""
        m = labels.shape[0]
        q = F.normalize(projections, dim=1, eps=1e-12)
        classification = F.cross_entropy(logits + self.log_prior, labels)

        k = QUEUE_PER_CLASS
        sims = q @ self.queue.clone().T  # [M, C*K], the queue before the step
        slot_class = torch.arange(CLASSES * k) // k
        own = slot_class[None, :] == labels[:, None]
        positives = sims[own].view(m, k)
        negatives = sims[~own].view(m, (CLASSES - 1) * k)
        hard_pos = -torch.topk(-positives, HARD_POSITIVES, dim=1).values
        hard_neg = torch.topk(negatives, HARD_NEGATIVES, dim=1).values

        off_diag = ~torch.eye(m, dtype=torch.bool)
        batch = (q @ q.T)[off_diag].view(m, m - 1)
        same = (labels[:, None] == labels[None, :])[off_diag].view(m, m - 1)
        contrast = torch.cat([batch, hard_pos, hard_neg], dim=1) / TEMPERATURE
        positive = torch.cat(
            [same, torch.ones_like(hard_pos, dtype=torch.bool), torch.zeros_like(hard_neg, dtype=torch.bool)],
            dim=1,
        ).to(contrast.dtype)
        log_prob = F.log_softmax(contrast, dim=1)
        per_row = -(positive * log_prob).sum(1) / positive.sum(1)
        contrastive = (self.weights[labels] * per_row).mean()
        total = classification + CONTRAST_WEIGHT * contrastive

        # enqueue, sequential rule
        with torch.no_grad():
            keys = q[: m // 2].detach()
            for i in range(m // 2):
                c = int(labels[i])
                self.queue[c * k + int(self.pointers[c])] = keys[i]
                self.pointers[c] = (self.pointers[c] + 1) % k
        # smallest gap at the mining cut-offs (ties there would make the selection fragile)
        neg_sorted = torch.sort(negatives.detach(), dim=1, descending=True).values
        pos_sorted = torch.sort(positives.detach(), dim=1).values
        gap = min(
            float((neg_sorted[:, HARD_NEGATIVES - 1] - neg_sorted[:, HARD_NEGATIVES]).min()),
            float((pos_sorted[:, HARD_POSITIVES] - pos_sorted[:, HARD_POSITIVES - 1]).min()),
        )
        return total, classification, contrastive, gap


# ----- summaries ------------------------------------------------------------------------------


def summary(name, t):
    """Sum, sum of |x|, L2 norm and a fixed sample of a tensor in the Rust layout (linear
    weights transposed to [in, out])."""
    t = t.detach().to(torch.float64)
    if t.dim() == 2 and not name.startswith("queue"):
        t = t.T
    flat = t.contiguous().reshape(-1)
    n = flat.numel()
    index = sorted({round(j * (n - 1) / (SAMPLES - 1)) for j in range(SAMPLES)} | {(7919 * j) % n for j in range(SAMPLES // 2)})
    return {
        "name": name,
        "shape": list(t.shape),
        "sum": float(flat.sum()),
        "abs_sum": float(flat.abs().sum()),
        "norm": float(flat.norm()),
        "index": index,
        "values": [float(flat[i]) for i in index],
    }


def run(dtype):
    torch.manual_seed(0)
    model = Model().to(dtype)
    host = np.float64 if dtype == torch.float64 else np.float32
    fill(model, host)
    model.train()
    criterion = Criterion(dtype)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=LEARNING_RATES[0], momentum=MOMENTUM, dampening=0.0,
        weight_decay=WEIGHT_DECAY, nesterov=False,
    )
    steps = []
    for step, lr in enumerate(LEARNING_RATES):
        for group in optimizer.param_groups:
            group["lr"] = lr
        labels = torch.tensor(LABELS[step] * 2)
        logits, projections = model(images(step, host))
        total, classification, contrastive, gap = criterion(projections, logits, labels)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        tensors = [
            summary(name, t)
            for name, t in model.state_dict().items()
            if not name.endswith("num_batches_tracked")
        ]
        momentum = [
            summary(name, optimizer.state[p]["momentum_buffer"])
            for name, p in model.named_parameters()
        ]
        steps.append(
            {
                "lr": lr,
                "labels": LABELS[step],
                "total": total.item(),
                "classification": classification.item(),
                "contrastive": contrastive.item(),
                "mining_gap": gap,
                "tensors": tensors,
                "momentum": momentum,
                "queue": summary("queue", criterion.queue),
                "queue_pointers": [int(p) for p in criterion.pointers],
            }
        )
    return steps


def main():
    torch.use_deterministic_algorithms(True)
    f64 = run(torch.float64)
    f32 = run(torch.float32)
    # The float32 run must itself agree with the float64 one at the tolerance the Rust test
    # uses for float32 (|a - e| <= 1e-4 |e| + 1e-5; sums to 1e-5 + 1e-4 sum |e|), or comparing
    # the crate's float32 run at that tolerance would mean nothing.
    worst = 0.0

    def ratio(a, e, floor=1e-5):
        return abs(a - e) / (1e-4 * abs(e) + floor)

    for a, b in zip(f64, f32):
        for key in ["total", "classification", "contrastive"]:
            worst = max(worst, ratio(b[key], a[key]))
        for ta, tb in zip(a["tensors"] + a["momentum"] + [a["queue"]], b["tensors"] + b["momentum"] + [b["queue"]]):
            for x, y in zip(ta["values"], tb["values"]):
                worst = max(worst, ratio(y, x))
            worst = max(worst, ratio(tb["norm"], ta["norm"]), ratio(tb["abs_sum"], ta["abs_sum"]))
            worst = max(worst, abs(tb["sum"] - ta["sum"]) / (1e-5 + 1e-4 * ta["abs_sum"]))
    print(f"float32 run against float64, worst error / tolerance: {worst:.3f}")
    assert worst < 0.25, "the float32 reference drifts from the float64 one"
    print("smallest mining gap:", min(s["mining_gap"] for s in f64))
    fixture = {
        "generator": "tests/reference/train_step.py",
        "torch": torch.__version__,
        "config": {
            "depth": DEPTH,
            "width": WIDTH,
            "images": IMAGES,
            "size": SIZE,
            "classes": CLASSES,
            "dim": DIM,
            "class_counts": CLASS_COUNTS,
            "queue_per_class": QUEUE_PER_CLASS,
            "hard_positives": HARD_POSITIVES,
            "hard_negatives": HARD_NEGATIVES,
            "temperature": TEMPERATURE,
            "contrast_weight": CONTRAST_WEIGHT,
            "effective_num_beta": BETA,
            "momentum": MOMENTUM,
            "weight_decay": WEIGHT_DECAY,
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
