"""The CIFAR ResNet with the ResCom head, in plain PyTorch: the one definition that the PyTorch
programs of the repository share (benches/pytorch/bench.py, benches/pytorch/default_job.py,
tests/reference/train_step.py and, through it, tests/reference/authors_step.py).

It is the crate's network (src/model/cifar_resnet.rs, head.rs, rescom_model.rs):

- backbone: a 3x3 convolution to `width` channels, batch norm, ReLU; three stages of `n`
  basic blocks with `width`, `2 width`, `4 width` channels (stride 2 at the start of stages 2
  and 3), depth `6n + 2`; global average pooling to a `4 width` feature. Convolutions have no
  bias. Shortcuts are option A: identity, or where the shape changes, every second pixel with
  the new channels zero-padded equally on both sides (no parameters);
- head: projection `Linear(F, F) -> BatchNorm1d -> ReLU -> Linear(F, D)` for the contrastive
  branch, and the linear classifier `Linear(F, C)`;
- initialisation as the crate's: convolutions Kaiming-normal (fan-in, gain sqrt(2)), the
  linear layers PyTorch's default (weights and biases uniform in +-1/sqrt(fan_in)), batch-norm
  scales 1 and shifts 0.

The parameters are registered in the order of the crate's fields (backbone, then hidden, norm,
projection, classifier), which tests/reference/train_step.py relies on to fill them.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """Two 3x3 convolutions; option-A shortcut (subsample, zero channels on both sides)."""

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.pad = stride, (planes - cin) // 2

    def shortcut(self, x):
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad, self.pad))
        return x

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Backbone(nn.Module):
    """CIFAR ResNet of depth 6n + 2 (20, 32, ...), features [B, 4 width]."""

    def __init__(self, depth: int, width: int = 16, in_channels: int = 3):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n >= 1, got {depth}")
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks, cin = [], width
        for stage, planes in enumerate([width, 2 * width, 4 * width]):
            for b in range(n):
                blocks.append(Block(cin, planes, 2 if stage > 0 and b == 0 else 1))
                cin = planes
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = cin

    def forward(self, x):
        return self.blocks(F.relu(self.bn(self.conv(x)))).mean(dim=(2, 3))


class ResComNet(nn.Module):
    """Backbone, projection MLP and classifier, registered in the order of the crate's fields.

    `forward(x)` gives `(logits, projections)`; with `with_projection=False` the projection
    MLP is not run (the baselines) and the second value is None.
    """

    def __init__(self, depth: int, num_classes: int, proj_dim: int = 32, in_channels: int = 3,
                 width: int = 16):
        super().__init__()
        self.backbone = Backbone(depth, width, in_channels)
        f = self.backbone.feature_dim
        self.hidden = nn.Linear(f, f)
        self.norm = nn.BatchNorm1d(f)
        self.projection = nn.Linear(f, proj_dim)
        self.classifier = nn.Linear(f, num_classes)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x, with_projection: bool = True):
        feat = self.backbone(x)
        logits = self.classifier(feat)
        if not with_projection:
            return logits, None
        return logits, self.projection(F.relu(self.norm(self.hidden(feat))))
