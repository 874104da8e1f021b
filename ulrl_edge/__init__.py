"""ulrl-edge: remove backdoors from vendor ONNX image classifiers.

``purify`` and ``inspect`` are imported lazily from here, so that ``import ulrl_edge`` stays
fast and the CLI's ``--help`` never loads torch. Scanning, verifying and exporting live in
modules of those names (an attribute here would be replaced by the submodule on import):
``from ulrl_edge.scan import scan``, ``from ulrl_edge.verify import evaluate``,
``from ulrl_edge.export import export``.

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
    "inspect": ("ulrl_edge.onnx_io.info", "inspect_model"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'ulrl_edge' has no attribute {name!r}")
