#!/usr/bin/env python3
"""The README's main job (`cargo run --release --example train` with its defaults) in plain
PyTorch on the CPU, for a whole-run speed comparison with the crate.

    # once: the job's long-tailed training subset and the test set, as the crate selects them
    cargo run --release --example train -- gpu-check --write-data /tmp/lt-data --data-dir data
    python3 benches/pytorch/default_job.py --data-dir /tmp/lt-data [--epochs N]
        [--method rescom|balanced-softmax] [--threads N] [--workers N] [--seed S]

The run is the crate's default job (examples/train/main.rs, `Recipe::cpu_default()`):

- data: Fashion-MNIST-LT, the 1,485 training images (600 down to 6 per class) that
  `train gpu-check --write-data DIR` writes under DIR/fashion-mnist, and the 10,000 test
  images; the class counts of the loss come from the training set, as in the crate;
- augmentation of each view (`Pipeline::fashion_mnist_train`): random crop 28 with 4 pixels of
  zero padding, horizontal flip (p 0.5), torchvision's AutoAugment with the CIFAR-10 policy
  (fill 128, the crate's fill), `ToTensor`, Cutout of side 14 as the crate cuts it (one square
  centred at a uniform pixel, rows and columns `c - 7 .. c + 7` clipped at the borders, zeroed
  before normalisation), normalisation with mean 0.2860 and std 0.3530; the test images are only
  normalised;
- network: CIFAR ResNet-20 with one input channel, option-A shortcuts, projection MLP
  64 -> 64 -> BN -> ReLU -> 32 and a linear classifier (cifar_resnet.py, the crate's
  initialisation);
- batch: 64 images x 2 views, both views in one forward pass (view-major, batch norm over the
  128 rows), shuffled every epoch, the last incomplete batch (13 images) kept: 24 steps per
  epoch;
- loss: ResCom (rescom_torch.py) with the crate's defaults for 10 classes: tau 0.2, K 10,
  k_pos 1, k_neg min(400, (C - 1) K / 2) = 45, lambda 0.5, beta 0.999999, eta 0; the view-1
  keys are enqueued after the backward pass. `--method balanced-softmax`: the Balanced
  Softmax baseline on the logits of both views, the projection MLP not run, as in the crate;
- optimiser: SGD, momentum 0.9, weight decay 5e-4 on every parameter, lr 0.1 with the crate's
  per-epoch schedule (linear warm-up over max(1, epochs / 40) epochs, x0.1 at 80 % and x0.01
  at 90 % of the epochs);
- evaluation on the test set every max(1, epochs / 6) epochs and after the last (every 3 of
  the 20 epochs), batch 64, batch norm in inference mode;
- data loading: torch's DataLoader with `--workers` worker processes (default 2, the crate's
  loader threads; persistent, 2 batches each in flight: the crate's 4 batches of prefetch),
  `torch.set_num_threads(--threads)` (default: the usable cores).

Where it departs from the crate: torchvision's AutoAugment is not the PIL implementation the
crate follows (torchvision draws a sign for Rotate and shears with nearest-neighbour sampling
about the corner; solarize thresholds differ by at most one level), and every random draw
comes from torch's generators, so the views are not those of the crate, only of the same
distribution. The crate's run also writes checkpoints, metrics and plots after every epoch;
this program writes nothing.

Output (stdout): one line per epoch (loss, train top-1 over both views, images per second of
the training steps counted as the crate counts them: each image once, not per view, over the
time from the start of the epoch's first step to the end of its last; the test figures after
an evaluated epoch), then one JSON line: mean images/s over epochs 2.. (the first is warm-up;
over the only epoch when there is one), the last test top-1 (and top-5, many/medium/few-shot
top-1) and the wall time of the whole program, `import torch` included.
"""

import time

_START = time.perf_counter()  # the whole run, imports included

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision.transforms as T  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar_resnet import ResComNet  # noqa: E402
from rescom_torch import ResComLoss, balanced_softmax_loss, log_prior  # noqa: E402

FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530
# Recipe::cpu_default() and the loss defaults (ResComLossConfig, HardPairMinerConfig::scaled).
DEPTH, PROJ_DIM, BATCH, LR, MOMENTUM, WEIGHT_DECAY, EPOCHS = 20, 32, 64, 0.1, 0.9, 5e-4, 20
TAU, K, K_POS, K_NEG_MAX, LAMBDA, BETA, ETA = 0.2, 10, 1, 400, 0.5, 0.999999, 0.0
# Shot groups of the evaluation (training images per class): many > 100, few < 20.
MANY, FEW = 100, 20


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def read_idx(path: str) -> np.ndarray:
    """An IDX file (raw, or gzip-compressed as PATH.gz) as a uint8 array."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {body.size} values for dimensions {dims}")
    return body.reshape(dims).copy()  # writable, for torch.from_numpy


def load_split(directory: str, prefix: str):
    images = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"{directory}/{prefix}: {images.shape} images, {labels.shape} labels")
    return images, labels


class Cutout:
    """Cutout as the crate cuts it (src/data/augment/mod.rs `cutout`): the square of side
    `length` centred at a uniformly random pixel (cy, cx), rows cy - length/2 .. cy + length/2
    and likewise for columns, clipped at the borders, set to zero in every channel of the
    [0, 1] view."""

    def __init__(self, length: int):
        self.length = length

    def __call__(self, view: torch.Tensor) -> torch.Tensor:
        _, h, w = view.shape
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        half = self.length // 2
        view[:, max(cy - half, 0):min(cy + half, h), max(cx - half, 0):min(cx + half, w)] = 0.0
        return view


def train_transform():
    return T.Compose([
        T.RandomCrop(28, padding=4),
        T.RandomHorizontalFlip(),
        T.AutoAugment(T.AutoAugmentPolicy.CIFAR10, fill=128),
        T.ToTensor(),
        Cutout(14),
        T.Normalize((FASHION_MNIST_MEAN,), (FASHION_MNIST_STD,)),
    ])


class TwoViews(Dataset):
    """Each item: two independently augmented views of one image and its label."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels
        self.transform = train_transform()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i])  # mode "L"
        return self.transform(img), self.transform(img), int(self.labels[i])


class Normalized(Dataset):
    """Each item: the image, normalised only (`Pipeline::fashion_mnist_eval`), and its label."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i]).to(torch.float32).div_(255.0)
        x = x.sub_(FASHION_MNIST_MEAN).div_(FASHION_MNIST_STD).unsqueeze(0)
        return x, int(self.labels[i])


def loader(dataset, batch, workers, shuffle, seed):
    extra = dict(persistent_workers=True, prefetch_factor=2) if workers > 0 else {}
    return DataLoader(dataset, batch_size=batch, shuffle=shuffle, drop_last=False,
                      num_workers=workers, generator=torch.Generator().manual_seed(seed),
                      **extra)


# --------------------------------------------------------------------------------------
# Schedule and evaluation
# --------------------------------------------------------------------------------------


def lr_at(epoch: int, epochs: int, lr: float = LR) -> float:
    """`LrSchedule::cifar_recipe(lr, epochs)` at the 0-based epoch."""
    warmup = min(max(epochs // 40, 1), epochs)
    if epoch < warmup:
        return lr * (epoch + 1) / warmup
    passed = sum(1 for m in (epochs * 8 // 10, epochs * 9 // 10) if m <= epoch)
    return lr * 0.1 ** passed


@torch.no_grad()
def evaluate(model, test_loader, counts, with_projection):
    """Top-1, top-5 and the many/medium/few-shot top-1 (mean over the groups' test images)."""
    model.eval()
    classes = len(counts)
    hits = torch.zeros(classes, dtype=torch.long)
    seen = torch.zeros(classes, dtype=torch.long)
    top5 = 0
    for x, y in test_loader:
        logits, _ = model(x, with_projection=with_projection)
        pred = logits.topk(min(5, classes), dim=1).indices
        top5 += int((pred == y.unsqueeze(1)).any(dim=1).sum())
        hits += torch.bincount(y[pred[:, 0] == y], minlength=classes)
        seen += torch.bincount(y, minlength=classes)
    model.train()
    counts_t = torch.tensor(counts)

    def group(mask):
        n = int(seen[mask].sum())
        return int(hits[mask].sum()) / n if n else None

    total = int(seen.sum())
    return {
        "top1": int(hits.sum()) / total,
        "top5": top5 / total,
        "many": group(counts_t > MANY),
        "medium": group((counts_t <= MANY) & (counts_t >= FEW)),
        "few": group(counts_t < FEW),
    }


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def default_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def pct(v):
    return "-" if v is None else f"{100 * v:.1f}"


def main(argv=None):
    p = argparse.ArgumentParser(
        description="The crate's default training job (Fashion-MNIST-LT, ResNet-20) in PyTorch.")
    p.add_argument("--data-dir", required=True,
                   help="folder holding fashion-mnist/ as `train gpu-check --write-data` writes it")
    p.add_argument("--method", choices=["rescom", "balanced-softmax"], default="rescom")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--eval-every", type=int, default=None,
                   help="evaluate every this many epochs (default max(1, epochs / 6)); "
                        "the last epoch is always evaluated")
    p.add_argument("--threads", type=int, default=default_threads(),
                   help="torch.set_num_threads (default: the usable cores)")
    p.add_argument("--workers", type=int, default=2,
                   help="DataLoader worker processes (default 2, the crate's loader threads)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.threads < 1 or args.workers < 0:
        p.error("need --epochs >= 1, --threads >= 1, --workers >= 0")
    eval_every = args.eval_every or max(args.epochs // 6, 1)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    directory = os.path.join(args.data_dir, "fashion-mnist")
    train_images, train_labels = load_split(directory, "train")
    test_images, test_labels = load_split(directory, "t10k")
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    counts = np.bincount(train_labels, minlength=classes).tolist()
    if len(train_labels) == 60000:
        p.error(f"{directory} holds the full training set; write the job's long-tailed subset "
                "with `cargo run --release --example train -- gpu-check --write-data DIR`")
    if min(counts) == 0:
        p.error(f"a class has no training image: {counts}")

    rescom = args.method == "rescom"
    model = ResComNet(DEPTH, classes, PROJ_DIM, in_channels=1).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr_at(0, args.epochs), momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY)
    k_neg = min(K_NEG_MAX, (classes - 1) * K // 2)
    loss_fn = (ResComLoss(counts, K, PROJ_DIM, k_pos=K_POS, k_neg=k_neg, tau=TAU, lam=LAMBDA,
                          beta=BETA, eta=ETA, seed=args.seed) if rescom else None)
    log_pi = log_prior(counts)
    train_loader = loader(TwoViews(train_images, train_labels), BATCH, args.workers, True,
                          args.seed)
    test_loader = loader(Normalized(test_images, test_labels), BATCH, args.workers, False,
                         args.seed)
    print(f"# Fashion-MNIST-LT: {len(train_labels)} training images in {classes} classes "
          f"({max(counts)} .. {min(counts)} per class), {len(test_labels)} test images; "
          f"{args.method} with resnet{DEPTH}, {args.epochs} epoch{'s' if args.epochs > 1 else ''}, batch {BATCH} x 2 views; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.workers} loader workers", file=sys.stderr, flush=True)

    epochs, report = [], None
    for epoch in range(args.epochs):
        lr = lr_at(epoch, args.epochs)
        for group in opt.param_groups:
            group["lr"] = lr
        steps = rows = images = correct = 0
        sums = {"loss": 0.0, "cls": 0.0, "con": 0.0}
        first = last = None
        for v1, v2, y in train_loader:
            started = time.perf_counter()
            if first is None:
                first = started
            n = y.shape[0]
            x, labels = torch.cat([v1, v2]), torch.cat([y, y])  # view-major
            opt.zero_grad(set_to_none=True)
            if rescom:
                logits, z = model(x)
                out = loss_fn(z, logits, labels)
                out.total.backward()
                opt.step()
                loss_fn.enqueue(out.q[:n], labels[:n])
                total, cls, con = out.total.item(), out.classification.item(), out.contrastive.item()
            else:
                logits, _ = model(x, with_projection=False)
                loss = balanced_softmax_loss(logits, labels, log_pi)
                loss.backward()
                opt.step()
                total = cls = loss.item()
                con = 0.0
            if not math.isfinite(total):
                print(f"error: the loss is not finite at epoch {epoch + 1}, step {steps + 1}",
                      file=sys.stderr)
                return 1
            correct += int((logits.detach().argmax(dim=1) == labels).sum())
            steps, rows, images = steps + 1, rows + 2 * n, images + n
            sums["loss"] += total
            sums["cls"] += cls
            sums["con"] += con
            last = time.perf_counter()
        seconds = last - first
        record = {"epoch": epoch + 1, "lr": lr, "loss": sums["loss"] / steps,
                  "classification": sums["cls"] / steps,
                  "contrastive": sums["con"] / steps if rescom else None,
                  "train_top1": correct / rows, "images_per_second": images / max(seconds, 1e-9),
                  "seconds": seconds}
        line = (f"epoch {epoch + 1}: loss {record['loss']:.4f} (cls {record['classification']:.4f}"
                + (f", con {record['contrastive']:.4f}" if rescom else "")
                + f"), train top-1 {100 * record['train_top1']:.1f} %, "
                f"{record['images_per_second']:.0f} img/s, lr {lr:.4f}")
        if epoch + 1 == args.epochs or (epoch + 1) % eval_every == 0:
            t = time.perf_counter()
            report = evaluate(model, test_loader, counts, rescom)
            record["eval"] = dict(report, seconds=time.perf_counter() - t)
            line += (f" | test top-1 {100 * report['top1']:.2f} % (many {pct(report['many'])}, "
                     f"medium {pct(report['medium'])}, few {pct(report['few'])})")
        epochs.append(record)
        print(line, flush=True)

    rates = [r["images_per_second"] for r in epochs]
    timed = rates[1:] if len(rates) > 1 else rates
    summary = {
        "job": "default", "framework": "pytorch", "torch": torch.__version__,
        "method": args.method, "epochs": args.epochs, "threads": torch.get_num_threads(),
        "workers": args.workers, "train_images": len(train_labels),
        "images_per_second": sum(timed) / len(timed),
        "images_per_second_epochs": f"2..{len(rates)}" if len(rates) > 1 else "1",
        "images_per_second_per_epoch": [round(r, 1) for r in rates],
        "train_seconds": sum(r["seconds"] for r in epochs),
        "test_top1": report["top1"], "test_top5": report["top5"],
        "many": report["many"], "medium": report["medium"], "few": report["few"],
        "wall_s": time.perf_counter() - _START,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
