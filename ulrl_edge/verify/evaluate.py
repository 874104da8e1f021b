"""Measure an ONNX file: clean accuracy and, for a known trigger, attack success rate.

What ships is what is measured: the numbers come from onnxruntime running the file, not from
the PyTorch model it was exported from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ulrl_edge.data.images import ImageSet
from ulrl_edge.data.poisoning import triggered_test_set
from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.data.sources import check_labels
from ulrl_edge.data.triggers import Trigger
from ulrl_edge.errors import BadInput
from ulrl_edge.verify.metrics import Metrics, compute_metrics
from ulrl_edge.verify.runners import OrtRunner

Progress = Callable[[dict[str, Any]], None]


def _check_images(images: ImageSet, spec: PreprocessSpec) -> None:
    if len(images) == 0:
        raise BadInput("no images to verify with", images.source)
    h, w, c = images.hwc
    if spec.size is not None and (h, w) != tuple(spec.size):
        raise BadInput(
            f"images are {h}×{w} but the preprocessing spec says {spec.size[0]}×{spec.size[1]}",
            images.source,
        )
    if c != spec.num_channels:
        raise BadInput(
            f"images have {c} channel(s) but the spec's channels '{spec.channels}' has "
            f"{spec.num_channels}",
            images.source,
        )


def evaluate(
    onnx_path: str | Path | OrtRunner,
    images: ImageSet,
    spec: PreprocessSpec,
    *,
    trigger: Trigger | None = None,
    target: int | None = None,
    mode: str = "all2one",
    runtime: str = "ort-cpu",
    batch_size: int = 64,
    progress: Progress | None = None,
) -> Metrics:
    """ACC (and ASR when a trigger is given) of an ONNX model on canonical images.

    Args:
        onnx_path: The model file, or an :class:`OrtRunner` already open on it.
        images: Clean labelled images, canonical for ``spec`` (see :func:`load_images`).
        spec: How the images become the model's input.
        trigger: A trigger to measure the ASR with, or None for ACC only.
        target: The attack target class (needed for ``all2one``).
        mode: ``all2one`` (ASR over images whose true label is not the target) or
            ``all2all`` (label y is attacked towards (y + 1) mod K).
        runtime: ``ort-cpu``, ``ort-cuda`` or ``ort-trt``.
        batch_size: Images per onnxruntime call.
        progress: Receives ``{"phase": "verify", "done": i, "total": n}`` after each batch.

    Returns:
        The metrics; confusion and per-class accuracy cover the model's K classes.

    Raises:
        BadInput: No images, images that do not fit the spec, labels outside the model's
            classes, a missing or invalid target, or no image whose label is not the target.
    """
    _check_images(images, spec)
    runner = onnx_path if isinstance(onnx_path, OrtRunner) else OrtRunner(onnx_path, runtime)
    prepare = spec.to_model_input

    num_classes = runner.num_classes
    if num_classes is None:  # dynamic output width: one image tells
        num_classes = runner.run(images.x[:1], transform=prepare).shape[1]
    check_labels(images, num_classes)

    attacked = None
    if trigger is not None:
        if mode == "all2one" and target is None:
            raise BadInput("a trigger needs the attack's target class (--target K)")
        attacked = triggered_test_set(
            images, trigger, target, mode, num_classes=num_classes, channels=spec.channels
        )
        if len(attacked) == 0:
            raise BadInput(
                f"every image is of the target class {target}; the ASR needs images of "
                "other classes",
                images.source,
            )
    total = len(images) + (len(attacked) if attacked is not None else 0)

    def hook(offset: int) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, _n: progress({"phase": "verify", "done": offset + done, "total": total})

    clean = runner.run(images.x, batch_size=batch_size, transform=prepare, on_batch=hook(0))
    attack_pred = None
    if attacked is not None:
        out = runner.run(
            attacked.x, batch_size=batch_size, transform=prepare, on_batch=hook(len(images))
        )
        attack_pred = out.argmax(axis=1)
    return compute_metrics(
        clean.argmax(axis=1),
        images.y,
        num_classes,
        class_names=images.class_names,
        attack_predicted=attack_pred,
        attack_labels=attacked.y if attacked is not None else None,
        target=None if trigger is None or mode == "all2all" else int(target),
        mode=mode if trigger is not None else None,
        trigger=trigger.to_spec() if trigger is not None else None,
    )
