"""Measure what ships: ACC and ASR of an ONNX file, computed with onnxruntime.

:func:`evaluate` gives :class:`Metrics` (ACC, ASR, Wilson 95% intervals, per-class accuracy,
confusion); :func:`predict` runs a ready model input and is reused by parity checks.
onnxruntime is imported only when a runner is created.
"""

from __future__ import annotations

from ulrl_edge.verify.evaluate import evaluate
from ulrl_edge.verify.metrics import Metrics, compute_metrics, wilson_interval
from ulrl_edge.verify.runners import RUNTIMES, OrtRunner, predict

__all__ = [
    "RUNTIMES",
    "Metrics",
    "OrtRunner",
    "compute_metrics",
    "evaluate",
    "predict",
    "wilson_interval",
]
