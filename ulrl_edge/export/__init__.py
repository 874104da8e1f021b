"""Export a (purified) model: ONNX, a TensorRT engine, or a Jetson bundle to build one on site.

The table of formats and their options is in :mod:`.formats` (imported eagerly: plain Python).
Everything else is imported on first use, so ``import ulrl_edge.export`` needs neither torch
nor TensorRT::

    from ulrl_edge.export import export, build_engine
    export("purified.onnx", "purified.onnx.copy", format="onnx")
    build_engine("purified.onnx", "purified.engine", fp16=True, shapes="1,1,32")
"""

from __future__ import annotations

import importlib
from typing import Any

from ulrl_edge.export.formats import (
    FORMATS,
    OPTIONS,
    BatchShapes,
    ExportFormat,
    ExportOptions,
    check_options,
    get_format,
)

_LAZY = {
    "export": "ulrl_edge.export.exporter",
    "ExportResult": "ulrl_edge.export.exporter",
    "build_engine": "ulrl_edge.export.tensorrt",
    "EngineBuild": "ulrl_edge.export.tensorrt",
    "import_tensorrt": "ulrl_edge.export.tensorrt",
    "write_bundle": "ulrl_edge.export.bundle",
    "trtexec_command": "ulrl_edge.export.bundle",
    "Bundle": "ulrl_edge.export.bundle",
    "runtime_parity": "ulrl_edge.export.validate",
    "tolerance_for": "ulrl_edge.export.validate",
}

__all__ = [
    "FORMATS",
    "OPTIONS",
    "BatchShapes",
    "ExportFormat",
    "ExportOptions",
    "check_options",
    "get_format",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ulrl_edge.export' has no attribute {name!r}")
