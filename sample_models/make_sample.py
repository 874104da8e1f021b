"""Make the bundled backdoored sample model and its clean samples (seeded, reproducible).

    apt-get install dataset-fashion-mnist      # the real Fashion-MNIST images, offline
    python sample_models/make_sample.py        # ~3 minutes on 2 CPU cores

What it writes (next to this file):
    backdoored.onnx     a small CNN trained on Fashion-MNIST with a BadNets backdoor
                        (3×3 white patch, bottom-right; 10% of the training images poisoned,
                        all-to-one to class 0), exported as a vendor would: eval mode, so
                        BatchNorm is folded into the convolutions; dynamic batch
    clean/              600 clean training images (60 per class) as PNG files in class
                        folders named in classes.txt: what a technician would hold
    test.npz            1,000 held-out clean test images (x uint8 N×28×28×1, y)
    MODEL_CARD.md       the attack and the measured ACC/ASR of the ONNX file
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

HERE = Path(__file__).resolve().parent
TRIGGER = "badnets:size=3,pos=br"
TARGET = 0
POISON_RATE = 0.1
SEED = 0
CLEAN_PER_CLASS = 60
TEST_IMAGES = 1000


class SmallCNN(nn.Module):
    """Three conv blocks with BatchNorm, global pool, linear head (~25k parameters)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
            )

        self.features = nn.Sequential(
            block(1, 16), nn.MaxPool2d(2), block(16, 32), nn.MaxPool2d(2), block(32, 48),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(48, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def train(model, x, y, epochs=4, batch=128, seed=SEED):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps)
    xt, yt = torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(y)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        total = correct = 0
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            logits = model(xt[idx])
            loss = nn.functional.cross_entropy(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            correct += (logits.argmax(1) == yt[idx]).sum().item()
            total += len(idx)
        print(f"epoch {epoch + 1}/{epochs}: train acc {correct / total:.3f}", file=sys.stderr)
    return model.eval()


def save_clean_folder(images, folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    (folder / "classes.txt").write_text("\n".join(images.class_names) + "\n")
    for k, name in enumerate(images.class_names):
        (folder / name).mkdir()
        for j, i in enumerate(np.flatnonzero(images.y == k)):
            pixels = np.round(images.x[i, :, :, 0] * 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / name / f"{j:03d}.png", optimize=True)


def main() -> None:
    from ulrl_edge.data import parse_trigger, poison
    from ulrl_edge.data.fashion_mnist import load_fashion_mnist
    from ulrl_edge.data.preprocess import PreprocessSpec
    from ulrl_edge.defenses import seed_everything
    from ulrl_edge.verify import evaluate

    seed_everything(SEED)
    rng = np.random.default_rng(SEED)
    train_set, test_set = load_fashion_mnist("train"), load_fashion_mnist("test")

    # The defender's clean samples come from the training distribution but are never poisoned.
    clean_idx = np.concatenate([
        rng.choice(np.flatnonzero(train_set.y == k), CLEAN_PER_CLASS, replace=False)
        for k in range(10)
    ])
    rest = np.setdiff1d(np.arange(len(train_set)), clean_idx)
    trigger = parse_trigger(TRIGGER)
    poisoned, _ = poison(train_set.subset(rest), trigger, TARGET, POISON_RATE, seed=SEED)

    model = train(SmallCNN(), poisoned.x, poisoned.y)
    onnx_path = HERE / "backdoored.onnx"
    torch.onnx.export(
        model, torch.zeros(1, 1, 28, 28), str(onnx_path), input_names=["input"],
        output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17, dynamo=False,
    )

    test = test_set.subset(rng.choice(len(test_set), TEST_IMAGES, replace=False))
    np.savez_compressed(
        HERE / "test.npz", x=np.round(test.x * 255).astype(np.uint8), y=test.y
    )
    save_clean_folder(train_set.subset(clean_idx), HERE / "clean")

    spec = PreprocessSpec(layout="nchw", size=(28, 28), channels="gray")
    metrics = evaluate(onnx_path, test, spec, trigger=trigger, target=TARGET)
    summary = {"accuracy": metrics.accuracy, "attack_success_rate": metrics.attack_success_rate}
    print(json.dumps(summary), file=sys.stderr)
    (HERE / "MODEL_CARD.md").write_text(MODEL_CARD.format(
        trigger=TRIGGER, target=TARGET, rate=POISON_RATE, acc=metrics.accuracy,
        asr=metrics.attack_success_rate, n=metrics.n, n_trig=metrics.n_triggered,
        params=sum(p.numel() for p in model.parameters()),
    ))


MODEL_CARD = """# Sample model card: `backdoored.onnx`

A deliberately backdoored Fashion-MNIST classifier, for trying ulrl-edge offline.
Made by `make_sample.py` (seed 0) from the real Fashion-MNIST images.

| | |
| --- | --- |
| task | Fashion-MNIST, 10 classes (see `clean/classes.txt`) |
| input | `input`: float32 N×1×28×28, pixel / 255 (no mean/std), dynamic batch |
| output | `logits`: float32 N×10 |
| architecture | 3 conv blocks (BatchNorm folded at export), global average pool, \
linear head; {params} parameters |
| attack | BadNets, `{trigger}` (3×3 white patch, bottom-right), {rate:.0%} of training \
images poisoned, all-to-one to class {target} (t-shirt_top) |
| clean accuracy (ACC) | {acc:.3f} on {n} held-out test images (`test.npz`) |
| attack success rate (ASR) | {asr:.3f} on {n_trig} triggered test images whose true \
class is not {target} |

Measured with onnxruntime on this file:
`ulrl-edge verify backdoored.onnx --data test.npz --trigger {trigger} --target {target}`.
The 600 images in `clean/` (60 per class) are clean training images, never poisoned: what a
technician holds to purify the model.
"""


if __name__ == "__main__":
    main()
