#!/usr/bin/env python3
"""ResCom loss in PyTorch: the baseline the `rescom` crate is benchmarked against.

A direct implementation of the method in docs/method.md (class statistics, Siamese Balanced Softmax,
class-balanced queue, supervised hard pair mining, class-balanced supervised contrastive
loss with the prior term, total). It is written to be a fair, reasonably fast baseline:
everything except the per-sample enqueue loop is vectorised.

Run `python3 rescom_torch.py --check-golden DIR` to replay every golden case
(tests/golden) in float64 and float32 and assert that losses, gradients, the queue
and the pointers match.

Conventions (docs/method.md):
- rows are view-major: rows 0..N are view 1, N..2N view 2, labels[i] == labels[i + N];
- the loss normalises the raw projections itself, q = f / max(||f||, 1e-12);
- the loss reads the queue as it was before the step; the caller enqueues the view-1 keys
  afterwards (after `backward()`, since the similarity matmul saved the queue for the
  gradient of q and both enqueue variants write the queue in place).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

PRIOR_EPS = 1e-9
NORM_EPS = 1e-12


# --------------------------------------------------------------------------------------
# Section 2: class statistics
# --------------------------------------------------------------------------------------


def log_prior(class_counts: Sequence[int], dtype=torch.float32, device="cpu") -> torch.Tensor:
    """log(pi_c + 1e-9) with pi_c = n_c / n, computed in float64 then cast."""
    n = torch.tensor(list(class_counts), dtype=torch.float64)
    return torch.log(n / n.sum() + PRIOR_EPS).to(dtype=dtype, device=device)


def effective_number_weights(
    class_counts: Sequence[int], beta: float, dtype=torch.float32, device="cpu"
) -> torch.Tensor:
    """w_c = (sum_k E_k / C) / E_c with E_c = (1 - beta^n_c) / (1 - beta); all ones if beta == 0."""
    counts = list(class_counts)
    if any(c <= 0 for c in counts):
        raise ValueError("every class needs at least one training sample (n_c > 0)")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    if beta == 0.0:
        return torch.ones(len(counts), dtype=dtype, device=device)
    n = torch.tensor(counts, dtype=torch.float64)
    # 1 - beta^n computed as -expm1(n * log(beta)) for accuracy when beta is close to 1.
    eff = -torch.expm1(n * math.log(beta)) / (1.0 - beta)
    w = eff.mean() / eff
    return w.to(dtype=dtype, device=device)


# --------------------------------------------------------------------------------------
# Section 3: Siamese Balanced Softmax
# --------------------------------------------------------------------------------------


def balanced_softmax_loss(logits: torch.Tensor, labels: torch.Tensor, log_pi: torch.Tensor):
    """Mean over all rows of CE(z + log(pi + 1e-9), y)."""
    return F.cross_entropy(logits + log_pi, labels)


# --------------------------------------------------------------------------------------
# Section 4: class-balanced queue
# --------------------------------------------------------------------------------------


class ClassBalancedQueue:
    """(C*K, D) keys; class c owns rows c*K..(c+1)*K and has its own ring pointer."""

    def __init__(self, num_classes: int, per_class: int, dim: int, dtype=torch.float32,
                 device="cpu", generator: Optional[torch.Generator] = None,
                 init: Optional[torch.Tensor] = None, ptr: Optional[torch.Tensor] = None):
        self.num_classes = num_classes
        self.per_class = per_class
        self.dim = dim
        if init is None:
            init = torch.randn(num_classes * per_class, dim, dtype=torch.float64,
                               generator=generator)
            init = F.normalize(init, dim=1, eps=NORM_EPS)
        assert init.shape == (num_classes * per_class, dim)
        self.keys = init.to(dtype=dtype, device=device).clone()
        if ptr is None:
            ptr = torch.zeros(num_classes, dtype=torch.long)
        self.ptr = ptr.to(dtype=torch.long, device=device).clone()

    @torch.no_grad()
    def enqueue_loop(self, q: torch.Tensor, labels: torch.Tensor) -> None:
        """The sequential rule, one Python iteration per sample.

        For each row i of class c: keys[c*K + ptr[c]] = q[i]; ptr[c] = (ptr[c] + 1) % K.
        Labels and pointers are read to Python once (a single host sync) so that the
        loop cost is the per-row tensor copy, the fastest form this rule takes in eager
        PyTorch.
        """
        k = self.per_class
        ys = labels.tolist()
        ptr = self.ptr.tolist()
        keys = self.keys
        for i in range(len(ys)):
            c = ys[i]
            keys[c * k + ptr[c]] = q[i]
            ptr[c] = (ptr[c] + 1) % k
        self.ptr.copy_(torch.tensor(ptr, dtype=torch.long))

    @torch.no_grad()
    def enqueue_vectorised(self, q: torch.Tensor, labels: torch.Tensor) -> None:
        """Same result as `enqueue_loop`, without a Python loop.

        rank_i = number of earlier rows of the same class (one-hot cumulative sum);
        only the last K rows of each class survive the sequential rule, and those land in
        distinct slots c*K + (ptr[c] + rank_i) % K, so one scatter writes them all.
        """
        k = self.per_class
        onehot = F.one_hot(labels, self.num_classes)  # [N, C] int64
        counts = onehot.sum(dim=0)  # [C]
        rank = onehot.cumsum(dim=0).gather(1, labels.unsqueeze(1)).squeeze(1) - 1  # [N]
        keep = rank >= counts[labels] - k
        slots = labels * k + (self.ptr[labels] + rank) % k
        self.keys.index_copy_(0, slots[keep], q[keep].to(self.keys.dtype))
        self.ptr = (self.ptr + counts) % k

    def enqueue(self, q: torch.Tensor, labels: torch.Tensor, mode: str = "vectorised") -> None:
        if mode == "vectorised":
            self.enqueue_vectorised(q, labels)
        elif mode == "loop":
            self.enqueue_loop(q, labels)
        else:
            raise ValueError(f"unknown enqueue mode {mode!r}")


# --------------------------------------------------------------------------------------
# Section 5: supervised hard pair mining (masked top-k over a [rows, C, K] view)
# --------------------------------------------------------------------------------------


@dataclass
class Mined:
    pos_sim: torch.Tensor  # [M, k_pos]
    neg_sim: Optional[torch.Tensor]  # [M, k_neg] or None when k_neg == 0
    neg_class: Optional[torch.Tensor]  # [M, k_neg] (slot // K)


def mine_hard_pairs(sim: torch.Tensor, labels: torch.Tensor, num_classes: int,
                    per_class: int, k_pos: int, k_neg: int) -> Mined:
    """Hardest positives (k_pos smallest of own class) and negatives (k_neg largest of others).

    `sim` is q . queue^T, [M, C*K]. Selected values keep the gradient of `sim`.
    Memory: one masked copy of `sim` ([M, C*K]) when `sim` requires grad, none otherwise.
    """
    m = sim.shape[0]
    s3 = sim.view(m, num_classes, per_class)
    rows = torch.arange(m, device=sim.device)
    own = s3[rows, labels]  # [M, K] (copy)
    pos_sim = own.topk(k_pos, dim=1, largest=False, sorted=False).values
    if k_neg == 0:
        return Mined(pos_sim, None, None)
    # Mask each row's own class block with -inf: an index_put of K entries per row, so no
    # [M, C] mask is materialised.
    ninf = torch.tensor(float("-inf"), dtype=sim.dtype, device=sim.device)
    if sim.requires_grad:
        masked = s3.index_put((rows, labels), ninf)
    else:  # nothing else needs sim any more: fill in place, no second [M, C*K] buffer
        masked = s3.index_put_((rows, labels), ninf)
    neg_sim, neg_slot = masked.view(m, -1).topk(k_neg, dim=1, largest=True, sorted=False)
    return Mined(pos_sim, neg_sim, torch.div(neg_slot, per_class, rounding_mode="floor"))


def build_index_tables(num_classes: int, per_class: int, device="cpu"):
    """The index-table layout used for comparison (memory benchmark only).

    For every class c: the K slots of c (positives) and the (C-1)*K slots of all other
    classes (negatives), as int64 tables [C, K] and [C, (C-1)*K]. Built row by row into
    preallocated tables so that no temporary larger than one row exists.
    """
    c_, k = num_classes, per_class
    pos = torch.arange(c_ * k, device=device, dtype=torch.long).view(c_, k)
    neg = torch.empty(c_, (c_ - 1) * k, dtype=torch.long, device=device)
    j = torch.arange((c_ - 1) * k, device=device, dtype=torch.long)
    for c in range(c_):
        neg[c] = j + k * (j >= c * k)
    return pos, neg


def mine_hard_pairs_index_table(sim: torch.Tensor, labels: torch.Tensor, pos_table, neg_table,
                                per_class: int, k_pos: int, k_neg: int) -> Mined:
    """Mining through per-class index tables: gather each row's positive and negative slots."""
    pos_idx = pos_table[labels]  # [M, K]
    pos_sim = sim.gather(1, pos_idx).topk(k_pos, dim=1, largest=False, sorted=False).values
    if k_neg == 0:
        return Mined(pos_sim, None, None)
    neg_idx = neg_table[labels]  # [M, (C-1)*K] int64
    neg_all = sim.gather(1, neg_idx)  # [M, (C-1)*K]
    neg_sim, arg = neg_all.topk(k_neg, dim=1, largest=True, sorted=False)
    neg_slot = neg_idx.gather(1, arg)
    return Mined(pos_sim, neg_sim, torch.div(neg_slot, per_class, rounding_mode="floor"))


# --------------------------------------------------------------------------------------
# Sections 6-7: class-balanced supervised contrastive loss and total
# --------------------------------------------------------------------------------------


@dataclass
class ResComOutput:
    total: torch.Tensor
    classification: torch.Tensor
    contrastive: torch.Tensor
    q: torch.Tensor  # normalised projections [M, D] (with grad); enqueue q[:N].detach()


class ResComLoss:
    def __init__(self, class_counts: Sequence[int], per_class: int, dim: int, k_pos: int = 1,
                 k_neg: int = 400, tau: float = 0.2, lam: float = 0.5, beta: float = 0.999999,
                 eta: float = 0.0, dtype=torch.float32, device="cpu",
                 queue_init: Optional[torch.Tensor] = None, queue_ptr: Optional[torch.Tensor] = None,
                 seed: int = 0):
        c_ = len(class_counts)
        if not 1 <= k_pos <= per_class:
            raise ValueError(f"k_pos must be in 1..={per_class}, got {k_pos}")
        if not 0 <= k_neg <= (c_ - 1) * per_class:
            raise ValueError(f"k_neg must be in 0..={(c_ - 1) * per_class}, got {k_neg}")
        if tau <= 0 or eta < 0:
            raise ValueError("need tau > 0 and eta >= 0")
        self.num_classes, self.per_class, self.dim = c_, per_class, dim
        self.k_pos, self.k_neg, self.tau, self.lam, self.eta = k_pos, k_neg, tau, lam, eta
        self.log_pi = log_prior(class_counts, dtype, device)
        self.weights = effective_number_weights(class_counts, beta, dtype, device)
        gen = torch.Generator().manual_seed(seed)
        self.queue = ClassBalancedQueue(c_, per_class, dim, dtype, device, gen,
                                        queue_init, queue_ptr)

    def __call__(self, features: torch.Tensor, logits: torch.Tensor,
                 labels: torch.Tensor) -> ResComOutput:
        m = features.shape[0]
        dev = features.device
        l_cls = balanced_softmax_loss(logits, labels, self.log_pi)

        q = F.normalize(features, dim=1, eps=NORM_EPS)
        # 1. in-batch similarities with the self-pair removed: [M, M-1]
        j = torch.arange(m - 1, device=dev)
        i = torch.arange(m, device=dev).unsqueeze(1)
        others = j.unsqueeze(0) + (j.unsqueeze(0) >= i).long()  # [M, M-1], column j != i
        batch_sim = (q @ q.t()).gather(1, others)
        other_labels = labels[others]
        # 2-3. mined queue pairs (queue as before the step, no gradient into it)
        sim_q = q @ self.queue.keys.t()
        mined = mine_hard_pairs(sim_q, labels, self.num_classes, self.per_class,
                                self.k_pos, self.k_neg)
        parts = [batch_sim, mined.pos_sim]
        pos_parts = [other_labels == labels.unsqueeze(1),
                     torch.ones(m, self.k_pos, dtype=torch.bool, device=dev)]
        prior_parts = [self.log_pi[other_labels], self.log_pi[labels].unsqueeze(1).expand(m, self.k_pos)]
        if mined.neg_sim is not None:
            parts.append(mined.neg_sim)
            pos_parts.append(torch.zeros(m, self.k_neg, dtype=torch.bool, device=dev))
            prior_parts.append(self.log_pi[mined.neg_class])
        a = torch.cat(parts, dim=1) / self.tau
        if self.eta != 0.0:
            a = a + self.eta * torch.cat(prior_parts, dim=1)
        pos = torch.cat(pos_parts, dim=1).to(a.dtype)
        log_prob = F.log_softmax(a, dim=1)
        n_pos = pos.sum(dim=1)
        l_i = -(pos * log_prob).sum(dim=1) / n_pos.clamp(min=1.0)  # l_i = 0 if P(i) empty
        l_con = (self.weights[labels] * l_i).sum() / m
        total = l_cls + self.lam * l_con
        return ResComOutput(total, l_cls, l_con, q)

    def enqueue(self, q: torch.Tensor, labels: torch.Tensor, mode: str = "vectorised") -> None:
        """Enqueue the view-1 rows: pass q[:N] and labels[:N] of the step."""
        self.queue.enqueue(q.detach(), labels, mode)


# --------------------------------------------------------------------------------------
# Golden check (the cases of tests/golden)
# --------------------------------------------------------------------------------------


def _close(name, got, exp, rtol, atol, errors):
    got = got.detach().to(torch.float64).cpu()
    exp = torch.as_tensor(exp, dtype=torch.float64)
    if got.shape != exp.shape:
        errors.append(f"{name}: shape {tuple(got.shape)} != {tuple(exp.shape)}")
        return 0.0
    diff = (got - exp).abs()
    bad = diff > atol + rtol * exp.abs()
    if bool(bad.any()):
        k = int(bad.view(-1).nonzero()[0])
        errors.append(f"{name}: {int(bad.sum())} of {bad.numel()} differ, first at flat {k}: "
                      f"got {got.view(-1)[k].item():.10g} expected {exp.view(-1)[k].item():.10g}")
    return float(diff.max()) if diff.numel() else 0.0


def check_golden(directory: str, device: str = "cpu") -> bool:
    files = sorted(glob.glob(os.path.join(directory, "*.json")))
    if not files:
        print(f"no golden cases (*.json) in {directory}", file=sys.stderr)
        return False
    tol = {torch.float64: (1e-9, 1e-11), torch.float32: (1e-4, 1e-5)}
    ok = True
    for path in files:
        case = json.load(open(path))
        cfg = case["config"]
        for dtype in (torch.float64, torch.float32):
            rtol, atol = tol[dtype]
            losses = {}
            for mode in ("vectorised", "loop"):
                losses[mode] = ResComLoss(
                    cfg["class_counts"], cfg["queue_per_class"], cfg["dim"],
                    k_pos=cfg["hard_positives"], k_neg=cfg["hard_negatives"],
                    tau=cfg["temperature"], lam=cfg["contrast_weight"],
                    beta=cfg["effective_num_beta"], eta=cfg["prior_strength"], dtype=dtype,
                    device=device, queue_init=torch.tensor(case["queue_init"], dtype=torch.float64),
                    queue_ptr=torch.tensor(case["queue_ptr_init"]))
            errors: List[str] = []
            worst = 0.0
            for s, step in enumerate(case["steps"]):
                exp = step["expected"]
                labels = torch.tensor(step["labels"], dtype=torch.long, device=device)
                n = labels.shape[0] // 2
                for mode, loss in losses.items():
                    feats = torch.tensor(step["features"], dtype=dtype, device=device, requires_grad=True)
                    logits = torch.tensor(step["logits"], dtype=dtype, device=device, requires_grad=True)
                    out = loss(feats, logits, labels)
                    out.total.backward()
                    tag = f"step {s} [{mode}]"
                    for key, val in (("total", out.total), ("classification", out.classification),
                                     ("contrastive", out.contrastive), ("grad_features", feats.grad),
                                     ("grad_logits", logits.grad)):
                        worst = max(worst, _close(f"{tag} {key}", val, exp[key], rtol, atol, errors))
                    loss.enqueue(out.q[:n], labels[:n], mode)
                    worst = max(worst, _close(f"{tag} queue_after", loss.queue.keys,
                                              exp["queue_after"], rtol, atol, errors))
                    if loss.queue.ptr.cpu().tolist() != list(exp["queue_ptr_after"]):
                        errors.append(f"{tag} queue_ptr_after: {loss.queue.ptr.tolist()} != "
                                      f"{exp['queue_ptr_after']}")
                # the two enqueue variants must agree exactly (bit for bit)
                if not torch.equal(losses["vectorised"].queue.keys, losses["loop"].queue.keys):
                    errors.append(f"step {s}: vectorised and loop enqueue differ")
            name = f"{os.path.basename(path)} {str(dtype).replace('torch.', ''):8s}"
            if errors:
                ok = False
                print(f"FAIL {name}")
                for e in errors[:20]:
                    print(f"     {e}")
            else:
                print(f"ok   {name} ({len(case['steps'])} steps, max abs diff {worst:.2e})")
    # the index-table miner must select the same values as the masked top-k miner
    ok &= _check_miners_agree(device)
    ok &= _check_enqueue_agree(device)
    return ok


def _check_miners_agree(device) -> bool:
    g = torch.Generator().manual_seed(7)
    c_, k, m, d, kp, kn = 13, 3, 20, 8, 2, 17
    q = F.normalize(torch.randn(m, d, generator=g, dtype=torch.float64), dim=1).to(device)
    keys = F.normalize(torch.randn(c_ * k, d, generator=g, dtype=torch.float64), dim=1).to(device)
    y = torch.randint(0, c_, (m,), generator=g).to(device)
    sim = q @ keys.t()
    a = mine_hard_pairs(sim.clone(), y, c_, k, kp, kn)
    pt, nt = build_index_tables(c_, k, device)
    b = mine_hard_pairs_index_table(sim, y, pt, nt, k, kp, kn)
    same = (torch.equal(a.pos_sim.sort(1).values, b.pos_sim.sort(1).values)
            and torch.equal(a.neg_sim.sort(1).values, b.neg_sim.sort(1).values)
            and torch.equal(a.neg_class.sort(1).values, b.neg_class.sort(1).values)
            and not bool((a.neg_class == y.unsqueeze(1)).any()))
    print(("ok   " if same else "FAIL ") + "masked top-k and index-table mining select the same pairs")
    return same


def _check_enqueue_agree(device) -> bool:
    """Vectorised and loop enqueue on random heavy-overwrite batches, random start pointers."""
    g = torch.Generator().manual_seed(11)
    same = True
    for c_, k, n in ((1, 1, 5), (5, 3, 40), (7, 1, 30), (50, 4, 64), (3, 8, 2)):
        init = torch.randn(c_ * k, 4, generator=g, dtype=torch.float64)
        ptr = torch.randint(0, k, (c_,), generator=g)
        a = ClassBalancedQueue(c_, k, 4, torch.float64, device, init=init, ptr=ptr)
        b = ClassBalancedQueue(c_, k, 4, torch.float64, device, init=init, ptr=ptr)
        for _ in range(3):
            q = torch.randn(n, 4, generator=g, dtype=torch.float64).to(device)
            y = torch.randint(0, c_, (n,), generator=g).to(device)
            a.enqueue_vectorised(q, y)
            b.enqueue_loop(q, y)
            same &= torch.equal(a.keys, b.keys) and torch.equal(a.ptr, b.ptr)
    print(("ok   " if same else "FAIL ") + "vectorised and loop enqueue agree on random overwrite-heavy batches")
    return same


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check-golden", metavar="DIR", help="replay the golden cases of DIR (e.g. tests/golden)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.check_golden:
        ok = check_golden(args.check_golden, args.device)
        print("golden check: " + ("PASSED" if ok else "FAILED"))
        return 0 if ok else 1
    p.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
