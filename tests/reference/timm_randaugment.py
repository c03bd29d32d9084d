#!/usr/bin/env python3
"""Golden hashes of timm's RandAugment `rand-n2-m10-mstd0.5`, for tests/data_timm.rs.

Regenerate the fixture from the repository root with

    python3 tests/reference/timm_randaugment.py           # writes tests/fixtures/timm_randaugment.json
    python3 tests/reference/timm_randaugment.py --check   # recompute and compare; exit 1 on a difference

(timm, Pillow, NumPy). The transform is built exactly as the ImageNet-LT / iNaturalist recipe
builds it, `rand_augment_transform('rand-n2-m10-mstd0.5', dict(translate_const=100,
img_mean=(124, 116, 104)))`, and run through timm's own `RandAugment.__call__` on real images
(the CIFAR-10 test fixture, and a 57x83 image made of its pixel bytes). Its random choices are
scripted instead of drawn: each case lists, per layer, the operation, whether the layer is
applied, the magnitude returned by `random.gauss` (before timm clips it to [0, 10]), the sign
and the resampling filter, and the fixture keeps the FNV-1a 64-bit hash of the CHW bytes of
timm's output. The Rust test applies the same layers with the crate's implementation and
compares the hashes, so every operation, the level-to-argument mapping, the clipping and the
composition of two layers are checked bit for bit.

Cases: every operation alone (the second layer not applied) at magnitudes 10.3 (clipped to 10), 9.31, 7.5, 6.87, 2.05 and -0.4
(clipped to 0; Posterize only from 7.5 up, since newer Pillow refuses 0 bits), with both
signs and both filters, on three images; then 120 random two-layer
cases with magnitudes drawn from N(10, 0.5).
"""

import json
import os
import random as stdlib_random
import sys

import numpy as np
import PIL
from PIL import Image
import timm
from timm.data import auto_augment

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "cifar10_test20.bin")
OUT = os.path.join(ROOT, "tests", "fixtures", "timm_randaugment.json")

HPARAMS = dict(translate_const=int(224 * 0.45), img_mean=(124, 116, 104))
OPS = list(auto_augment._RAND_TRANSFORMS)
GEOMETRIC = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}


def images():
    raw = open(FIXTURE, "rb").read()

    def record(i):
        return np.frombuffer(raw[i * 3073 + 1 : (i + 1) * 3073], np.uint8)

    def cifar(i):
        return record(i).reshape(3, 32, 32).transpose(1, 2, 0).copy()

    pixels = np.concatenate([record(i) for i in range(20)])
    return {
        "c0": cifar(0),
        "c5": cifar(5),
        # 57x83 RGB image whose interleaved bytes are the fixture's pixel bytes in file order
        "big": pixels[: 57 * 83 * 3].reshape(57, 83, 3).copy(),
    }


def fnv(data):
    h = 0xCBF29CE484222325
    for x in data:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def chw(image):
    a = np.asarray(image)
    return a.transpose(2, 0, 1).tobytes()


class Script:
    """Stands in for the `random` module inside timm's auto_augment: returns the scripted
    values in the order timm asks for them, and checks that all of them are consumed."""

    def __init__(self, layers):
        self.uniform, self.gauss_values, self.choices = [], [], []
        for layer in layers:
            # prob check: the layer runs unless random() > 0.5
            self.uniform.append(0.25 if layer["applied"] else 0.75)
            if not layer["applied"]:
                continue
            self.gauss_values.append(layer["magnitude"])
            if layer["op"] in GEOMETRIC:
                # _randomly_negate: -v if random() > 0.5
                self.uniform.append(0.75 if layer["negate"] else 0.25)
                self.choices.append(layer["bicubic"])

    def random(self):
        return self.uniform.pop(0)

    def gauss(self, mu, sigma):
        assert (mu, sigma) == (10, 0.5), (mu, sigma)
        return self.gauss_values.pop(0)

    def choice(self, seq):
        assert list(seq) == [Image.Resampling.BILINEAR, Image.Resampling.BICUBIC], seq
        return seq[1] if self.choices.pop(0) else seq[0]

    def done(self):
        return not (self.uniform or self.gauss_values or self.choices)


def run(transform, image, layers):
    script = Script(layers)
    by_name = {op.name: op for op in transform.ops}
    chosen = [by_name[layer["op"]] for layer in layers]
    original_choice = np.random.choice
    original_random = auto_augment.random
    try:
        np.random.choice = lambda ops, n, replace=True, p=None: (
            chosen if (n, replace, p) == (len(chosen), True, None) else None
        )
        auto_augment.random = script
        out = transform(Image.fromarray(image))
    finally:
        np.random.choice = original_choice
        auto_augment.random = original_random
    assert script.done(), "a scripted draw was not used"
    return out


def cases():
    out = []
    for name in ["c0", "c5", "big"]:
        k = 0
        for op in OPS:
            for magnitude in [10.3, 9.31, 7.5, 6.87, 2.05, -0.4]:
                if op == "Posterize" and magnitude < 2.5:
                    # 0 bits: Pillow >= 10 refuses ImageOps.posterize(img, 0), older Pillow
                    # (and the crate) return black; the recipe's N(10, 0.5) never gets there.
                    continue
                layer = {
                    "op": op,
                    "applied": True,
                    "magnitude": magnitude,
                    "negate": k % 2 == 1,
                    "bicubic": (k // 2) % 2 == 1,
                }
                k += 1
                # the second layer is drawn but not applied
                idle = {"op": OPS[k % 15], "applied": False, "magnitude": 10.0, "negate": False, "bicubic": False}
                out.append({"image": name, "layers": [layer, idle]})
    rng = stdlib_random.Random(20240601)
    for i in range(120):
        layers = [
            {
                "op": rng.choice(OPS),
                "applied": rng.random() <= 0.5,
                "magnitude": rng.gauss(10, 0.5),
                "negate": rng.random() > 0.5,
                "bicubic": rng.random() > 0.5,
            }
            for _ in range(2)
        ]
        out.append({"image": ["c0", "c5", "big"][i % 3], "layers": layers})
    return out


def main():
    check = "--check" in sys.argv[1:]
    transform = auto_augment.rand_augment_transform("rand-n2-m10-mstd0.5", dict(HPARAMS))
    assert [op.name for op in transform.ops] == OPS and len(OPS) == 15
    assert all(op.prob == 0.5 and op.magnitude == 10 and op.magnitude_std == 0.5 for op in transform.ops)
    inputs = images()
    results = []
    for case in cases():
        result = run(transform, inputs[case["image"]], case["layers"])
        results.append(dict(case, hash=f"{fnv(chw(result)):016x}"))
    fixture = {
        "generator": "tests/reference/timm_randaugment.py",
        "timm": timm.__version__,
        "pillow": PIL.__version__,
        "fill": list(HPARAMS["img_mean"]),
        "cases": results,
    }
    if check:
        committed = json.load(open(OUT))
        differ = [
            (a["image"], a["layers"], a["hash"], b["hash"])
            for a, b in zip(committed["cases"], results)
            if a != b
        ]
        if differ or len(committed["cases"]) != len(results):
            print(f"{len(differ)} cases differ from {OUT}", file=sys.stderr)
            sys.exit(1)
        print(f"{len(results)} cases agree with {os.path.normpath(OUT)}")
        return
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(fixture, f, indent=0)
        f.write("\n")
    os.replace(tmp, OUT)
    print(f"wrote {os.path.normpath(OUT)}: {len(results)} cases, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
