"""ulrl-edge: remove backdoors from vendor ONNX image classifiers.

The public API (``purify``, ``scan``, ``verify``, ``inspect``) is imported lazily so that
``import ulrl_edge`` stays fast and the CLI's ``--help`` never loads torch. Exporting lives in
the subpackage of the same name: ``from ulrl_edge.export import export``.

Example::

    from ulrl_edge import purify
    from ulrl_edge.pipeline import DataOptions

    result = purify("vendor.onnx", DataOptions("samples/"), "purified.onnx")
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "purify": ("ulrl_edge.pipeline", "purify"),
    "DataOptions": ("ulrl_edge.pipeline", "DataOptions"),
    "TriggerOptions": ("ulrl_edge.pipeline", "TriggerOptions"),
    "scan": ("ulrl_edge.scan", "scan"),
    "verify": ("ulrl_edge.verify", "evaluate"),
    "inspect": ("ulrl_edge.onnx_io.info", "inspect_model"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'ulrl_edge' has no attribute {name!r}")
