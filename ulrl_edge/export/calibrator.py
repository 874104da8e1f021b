"""Int8 entropy calibration fed from the clean samples (TensorRT 10; lazy import).

The calibrator class derives from ``tensorrt.IInt8EntropyCalibrator2``, which exists only
once TensorRT is imported, so :func:`make_calibrator` defines it on demand. Batches go to the
GPU through :mod:`.cuda_memory` (PyTorch or libcudart). Every build calibrates
afresh; the cache TensorRT writes goes next to the engine for ``trtexec --calib`` and the
Jetson bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ulrl_edge.onnx_io.to_onnx import write_atomically

MAX_CALIBRATION_IMAGES = 512  # TensorRT's guidance: ~500 images cover the ranges


def calibration_batches(model_input: np.ndarray, batch: int, seed: int = 0) -> list[np.ndarray]:
    """Split preprocessed images into full batches (a seeded subset of at most 512 images).

    A remainder smaller than a batch is dropped; a set smaller than one batch is repeated to
    fill it, so TensorRT always sees the batch size it was promised.
    """
    x = np.asarray(model_input)
    if len(x) == 0:
        return []
    if len(x) > MAX_CALIBRATION_IMAGES:
        keep = np.random.default_rng(seed).permutation(len(x))[:MAX_CALIBRATION_IMAGES]
        x = x[np.sort(keep)]
    if len(x) < batch:
        x = np.resize(x, (batch, *x.shape[1:]))
    count = len(x) // batch
    return [np.ascontiguousarray(x[i * batch : (i + 1) * batch]) for i in range(count)]


def make_calibrator(trt: Any, memory: Any, batches: list[np.ndarray], cache_path: Path) -> Any:
    """An ``IInt8EntropyCalibrator2`` over ``batches`` that writes its cache to ``cache_path``.

    Args:
        trt: The imported ``tensorrt`` module.
        memory: GPU memory from :func:`~ulrl_edge.export.cuda_memory.open_cuda_memory`.
        batches: Model inputs, all of the same shape (batch first).
        cache_path: Where TensorRT's calibration cache is written.
    """

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = batches
            self.index = 0
            self.device_batch = None  # keeps the current batch alive while TensorRT reads it

        def get_batch_size(self) -> int:
            return int(self.batches[0].shape[0]) if self.batches else 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.index >= len(self.batches):
                return None
            host = self.batches[self.index]
            self.index += 1
            self.device_batch = memory.upload(host)
            return [self.device_batch.ptr] * len(names)

        def read_calibration_cache(self) -> bytes | None:
            return None  # calibrate on this data every time: a stale cache is silent damage

        def write_calibration_cache(self, cache: Any) -> None:
            write_atomically(memoryview(cache).tobytes(), cache_path)

    return EntropyCalibrator()
