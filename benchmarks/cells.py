"""One benchmark cell: (data, attack, architecture, seed) → a cached backdoored ONNX file.

The vendor path, as in real use: train in torch on the poisoned subset, export with
``torch.onnx.export(dynamo=False)``, then the defenses see only what
``load_model`` + ``import_model`` make of that file.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.attacks import TARGET, Attack, trigger_of
from benchmarks.models import build
from ulrl_edge.data import ImageSet, PreprocessSpec, poison
from ulrl_edge.data.augment import random_crop_flip


@dataclass(frozen=True)
class DataSplits:
    """Everything a cell needs from one data set."""

    name: str
    train: ImageSet  # the vendor's training subset (gets poisoned)
    clean: ImageSet  # the defender's clean data: 1% of the training subset, ≥10 per class
    test: ImageSet  # held-out test images for ACC / ASR
    spec: PreprocessSpec
    flip: bool


def load_data(
    name: str, n_train: int, n_test: int, cache: Path, n_clean: int | None = None
) -> DataSplits:
    """The splits of ``fmnist`` or ``rgb``; the draw is fixed (seed 0) across model seeds.

    Args:
        n_clean: The defender's clean images (default: 1% of ``n_train``, >= 10 per class).
    """
    rng = np.random.default_rng(0)
    if name == "fmnist":
        from ulrl_edge.data.fashion_mnist import load_fashion_mnist

        full, test_full = load_fashion_mnist("train"), load_fashion_mnist("test")
        spec = PreprocessSpec(
            layout="nchw", size=(28, 28), channels="gray", mean=(0.286,), std=(0.353,)
        )
        flip = True  # clothes are left/right symmetric enough; BackdoorBench flips too
    elif name == "rgb":
        from benchmarks.rgb_data import load_rgb

        full, test_full = load_rgb(n_train * 2, seed=1), load_rgb(n_test, seed=2)
        spec = PreprocessSpec(
            layout="nchw", size=(32, 32), channels="rgb", mean=(0.5,) * 3, std=(0.25,) * 3
        )
        flip = True
    else:
        raise ValueError(f"unknown data set {name!r}; choose fmnist or rgb")
    order = rng.permutation(len(full))
    train = full.subset(order[:n_train])
    classes = int(full.y.max()) + 1
    n_clean = n_clean or max(int(round(0.01 * n_train)), 10 * classes)
    # The defender's clean images are disjoint from the vendor's training subset.
    rest = full.subset(order[n_train:])
    picks = np.concatenate(
        [np.flatnonzero(rest.y == c)[: math.ceil(n_clean / classes)] for c in range(classes)]
    )
    clean = rest.subset(picks)
    test = test_full.subset(rng.permutation(len(test_full))[:n_test])
    return DataSplits(name, train, clean, test, spec, flip)


def _train(model: nn.Module, data: ImageSet, spec: PreprocessSpec, epochs: int, seed: int,
           flip: bool, device: str = "cpu") -> nn.Module:  # fmt: skip
    torch.manual_seed(seed)
    model.to(device)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    steps = epochs * math.ceil(len(data) / 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), 128):
            i = order[s : s + 128]
            xb = random_crop_flip(x[i], padding=2, flip=flip, generator=g)
            logits = model(spec.to_model_input_torch(xb).to(device))
            loss = nn.functional.cross_entropy(logits, y[i].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.cpu().eval()


def backdoored_onnx(
    data: DataSplits, attack: Attack, arch: str, seed: int, epochs: int, cache: Path,
    device: str = "cpu",
) -> tuple[Path, dict]:  # fmt: skip
    """The cached backdoored model of a cell (trained on ``device``, exported on first use).

    Returns:
        The ONNX path and facts about its training (time, parameters, poisoned count).
    """
    n = len(data.train)
    stem = f"{data.name}_{attack.name}_{arch}_s{seed}_n{n}_e{epochs}"
    path, info_path = cache / f"{stem}.onnx", cache / f"{stem}.json"
    if path.exists() and info_path.exists():
        return path, json.loads(info_path.read_text())
    cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    poisoned, mask = poison(
        data.train, trigger_of(attack), TARGET, attack.rate, seed=seed, mode=attack.mode
    )
    h, w, c = data.train.hwc
    model = build(arch, c, len(data.train.class_names) or int(data.train.y.max()) + 1, h)
    _train(model, poisoned, data.spec, epochs, seed, data.flip, device)
    tmp = path.with_suffix(".tmp")
    torch.onnx.export(
        model, (torch.zeros(1, c, h, w),), str(tmp), dynamo=False, opset_version=17,
        input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "n"},
        "logits": {0: "n"}},
    )  # fmt: skip
    tmp.replace(path)
    info = {
        "train_s": round(time.perf_counter() - start, 2),
        "params": sum(p.numel() for p in model.parameters()),
        "poisoned": int(mask.sum()),
        "n_train": n,
        "epochs": epochs,
        "train_device": device,
    }
    info_path.write_text(json.dumps(info))
    return path, info
