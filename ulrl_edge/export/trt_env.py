"""The TensorRT environment: importing it lazily, its logger, and which GPU this is.

Shared by the engine build and the engine runner. Nothing here imports ``tensorrt`` at module
level, so ``import ulrl_edge`` and ``ulrl-edge --help`` work without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ulrl_edge.errors import MissingDependency

HOW_TO_GET_TENSORRT = (
    "on a Jetson it comes with JetPack (sudo apt install nvidia-jetpack, then use the "
    "system python3); on x86 with an NVIDIA GPU and CUDA: pip install 'ulrl-edge[tensorrt]'"
)


def import_tensorrt(purpose: str = "building a TensorRT engine") -> Any:
    """``import tensorrt``, or a one-line error that says how to get it.

    Raises:
        MissingDependency: Not importable (or its libraries are missing), or older than 10.
    """
    try:
        import tensorrt as trt
    except (ImportError, OSError) as err:
        raise MissingDependency(
            f"{purpose} needs TensorRT, which is not importable ({_short(err)}); "
            f"{HOW_TO_GET_TENSORRT}"
        ) from None
    version = str(getattr(trt, "__version__", "0"))
    if _major(version) < 10:
        raise MissingDependency(
            f"{purpose} needs TensorRT 10 or newer; this is TensorRT {version}; "
            f"{HOW_TO_GET_TENSORRT}"
        )
    return trt


def gpu_description() -> dict[str, Any]:
    """Name and compute capability of CUDA device 0: from PyTorch, else libcudart and the
    Jetson device tree; None where nothing tells."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return {"name": torch.cuda.get_device_name(0), "compute_capability": f"{major}.{minor}"}
    except Exception:  # noqa: BLE001 - a description is best effort
        pass
    name, capability = None, None
    try:
        import ctypes

        from ulrl_edge.export.cuda_memory import load_cudart

        lib, values = load_cudart(), []
        for attribute in (75, 76):  # cudaDevAttrComputeCapabilityMajor / Minor
            value = ctypes.c_int(0)
            if lib.cudaDeviceGetAttribute(ctypes.byref(value), attribute, 0) == 0:
                values.append(value.value)
        capability = f"{values[0]}.{values[1]}" if len(values) == 2 else None
    except Exception:  # noqa: BLE001
        pass
    model = Path("/proc/device-tree/model")
    if model.is_file():
        name = model.read_bytes().rstrip(b"\0").decode(errors="replace")
    return {"name": name, "compute_capability": capability}


def collecting_logger(trt: Any) -> Any:
    """A TensorRT logger that keeps errors and warnings instead of printing them."""

    class CollectingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.warnings: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR):
                self.errors.append(" ".join(str(msg).split()))
            elif severity == trt.ILogger.WARNING:
                self.warnings.append(" ".join(str(msg).split()))

        def last_error(self, default: str = "no reason given") -> str:
            return self.errors[-1][:300] if self.errors else default

    return CollectingLogger()


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def _short(err: Any, limit: int = 240) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
