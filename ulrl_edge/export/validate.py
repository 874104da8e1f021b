"""Parity across runtimes: the ONNX reference on onnxruntime CPU vs any other runtime.

The candidate is an ONNX file on ``ort-cpu``, ``ort-cuda`` or ``ort-trt``, or an engine on
``tensorrt``; both run the same preprocessed images. The gate depends on the precision the
candidate was built in: fp32 keeps the 1e-4 gate, fp16 the looser ``FP16_PARITY`` with top-1
agreement ≥ 99.5 % on the verify images (optimum's validation and Polygraphy's comparator
likewise loosen tolerances for reduced precision). Top-1 agreement is only a gate on real
images: on random noise near-ties are common and say nothing about the model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ulrl_edge.config import FP16_PARITY, FP32_PARITY, ParityTolerance
from ulrl_edge.data.preprocess import PreprocessSpec

# Shared with the other parity checks so a gate means the same everywhere.
from ulrl_edge.onnx_io.parity import ParityReport, _compare
from ulrl_edge.verify.runners import OrtRunner, open_runner

# int8 logits move by tenths; what must hold is the class. (Candidate for config.py.)
INT8_PARITY = ParityTolerance(atol=1.0, rtol=1.0, min_top1_agreement=0.99)
RANDOM_PROBES = 256


def tolerance_for(precision: str) -> ParityTolerance:
    """The default gate for an engine of ``precision`` (``fp32``, ``fp16`` or ``int8``)."""
    return {"fp16": FP16_PARITY, "int8": INT8_PARITY}.get(precision, FP32_PARITY)


def parity_inputs(
    spec: PreprocessSpec,
    data: Any = None,
    *,
    resize: bool = False,
    count: int = RANDOM_PROBES,
    seed: int = 0,
) -> tuple[np.ndarray, bool, str]:
    """Model inputs for a parity check.

    Args:
        spec: How images become the model input.
        data: Clean images (folder, .npz or ImageSet), or None for seeded random images.
        resize: Allow resizing ``data`` images to the model's size.
        count: Number of random images when ``data`` is None.
        seed: Seed of the random images.

    Returns:
        (model input, whether these are real images, a description for reports).
    """
    if data is not None:
        from ulrl_edge.data.images import ImageSet
        from ulrl_edge.data.sources import load_images

        images = data if isinstance(data, ImageSet) else load_images(data, spec, resize=resize)
        return spec.to_model_input(images.x), True, f"{len(images)} images of {images.source}"
    h, w = spec.size or (1, 1)
    pixels = np.random.default_rng(seed).random((count, h, w, spec.num_channels), np.float32)
    return spec.to_model_input(pixels), False, f"{count} seeded random images"


def runtime_parity(
    reference: str | Path,
    candidate: str | Path | OrtRunner,
    model_input: np.ndarray,
    *,
    runtime: str = "ort-cpu",
    tolerance: ParityTolerance = FP32_PARITY,
    real_images: bool = True,
    batch_size: int = 32,
) -> ParityReport:
    """Compare a candidate (file + runtime, or an open runner) with onnxruntime CPU.

    Args:
        reference: The ONNX file; run on ``ort-cpu``.
        candidate: An ONNX file or engine, or a runner already open on one.
        model_input: Preprocessed inputs, batch first.
        runtime: The candidate's runtime (``ort-cpu``, ``ort-cuda``, ``ort-trt``, ``tensorrt``).
        tolerance: The gate.
        real_images: False for random inputs: top-1 agreement is then reported, not gated.
        batch_size: Rows per run.

    Returns:
        The report (first output only: the class scores); it does not raise on failure.

    Raises:
        BadInput / UnsupportedModel / MissingDependency: From opening either runner.
    """
    ref_runner = OrtRunner(reference, "ort-cpu")
    runner = candidate if isinstance(candidate, OrtRunner) else open_runner(candidate, runtime)
    gate = tolerance if real_images else replace(tolerance, min_top1_agreement=0.0)
    expected = ref_runner.run(model_input, batch_size=batch_size)
    actual = runner.run(model_input, batch_size=batch_size)
    report = ParityReport(
        reference=f"{reference} (ort-cpu)",
        candidate=f"{runner.path} ({runner.runtime})",
        batch=len(model_input),
        tolerance=gate,
    )
    if not real_images:
        report.notes.append("random inputs: top-1 agreement reported, not gated")
    report.outputs.append(_compare(ref_runner.output_name, expected, actual, gate))
    report.passed = not report.failures()
    return report
