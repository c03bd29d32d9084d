"""The authors' own ResCom loss at the sizes of the loss bench, for `bench.py --authors DIR`.

What is timed is theirs: their `rescom.builder.ResCom` from the projection onwards (L2
normalisation, `feat @ queue`, the per-class gathers through their `pos_index`/`neg_index`
tables, hard positive and negative mining by `torch.topk`, the in-batch similarities and
masks, and their per-key Python enqueue of the view-1 keys) and their `losses.SiamBS_SPM`
(Siamese Balanced Softmax on the logits, the class-balanced contrastive term), then
`backward()`: the work the crate's `ResComLoss` does in `benches/loss.rs` (forward +
backward + enqueue), on the same kind of inputs (random raw projections and logits that
require gradients, labels drawn from the long-tailed prior, view-major).

Their modules are imported from the checkout given on the command line
(`tests/reference/authors_step.py`'s loader); nothing of theirs is copied. Shims, none of
which changes what their code computes:

1. `torch.device('cuda')` in losses.py is the CPU device (as in authors_step.py);
2. a gloo process group of world size 1 for their `concat_all_gather` (a gather over one
   rank is the tensor itself);
3. their model's `encoder` and `mlp` are identities and its `linear` returns the given
   logits, so that their `forward` starts from the projection and the logits as the crate's
   loss does (their encoder, projection MLP and classifier are network layers, outside the
   loss on both sides).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "..", "tests", "reference")


class GivenLogits(nn.Module):
    """Stands in for their classifier: returns the logits the bench gives (shim 3)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, _features):
        return self.logits


def _one_process_group():
    """Shim 2: a gloo world of one, created once per process."""
    if dist.is_available() and dist.is_initialized():
        return
    folder = tempfile.mkdtemp(prefix="rescom-authors-")
    dist.init_process_group("gloo", store=dist.FileStore(os.path.join(folder, "store"), 1),
                            rank=0, world_size=1)
    atexit.register(lambda: (dist.destroy_process_group(), shutil.rmtree(folder, True)))


def load(checkout: str):
    """Their `builder` and `losses` modules from a dvlab-research/ResCom checkout."""
    sys.path.insert(0, os.path.abspath(REFERENCE))
    from authors_step import load_authors  # noqa: E402  (their import, shim 1 included)

    builder, losses, _, commit = load_authors(checkout)
    _one_process_group()
    return builder, losses, commit


def loss_step(authors, s, feats: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
              keys: torch.Tensor):
    """One closure: their forward from the projection, their loss, backward, their enqueue;
    it returns their total loss.

    `s` is one of bench.py's loss settings; `feats` `[2N, D]` and `logits` `[2N, C]` are
    leaves that require gradients; `labels` `[2N]`, view-major; `keys` `[C K, D]` the
    starting queue (class-major rows, the crate's layout), copied into their `[D, C K]` one.
    """
    builder, losses, _ = authors
    n = s["rows"] // 2
    classes = len(s["counts"])
    net = builder.ResCom(
        lambda num_classes: nn.Identity(),
        dim_feat=s["dim"],
        batch_size=n,
        select_num_pos=s["k_pos"],
        select_num_neg=s["k_neg"],
        num_classes=classes,
        dim=s["dim"],
        queue_size_per_cls=s["K"],
    )
    net.mlp = nn.Identity()
    net.linear = GivenLogits(logits)
    net.to(feats.device).train()
    with torch.no_grad():
        net.queue_list.copy_(keys.t())
    criterion = losses.SiamBS_SPM(
        s["counts"],
        queue_size_per_cls=s["K"],
        balsfx_n=0.0,
        temperature=s["tau"],
        con_weight=s["lam"],
        effective_num_beta=s["beta"],
    )

    def step():
        feats.grad = None
        logits.grad = None
        sim_con, labels_con, logits_cls = net(img=feats, labels=labels)
        _, _, total = criterion(sim_con, labels_con, logits_cls, labels)
        total.backward()
        return total.detach()

    return step
