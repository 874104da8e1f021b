"""ONNX in and out: safe loading, import to torch, export back, parity, inspection.

Names are imported lazily so that ``import ulrl_edge.onnx_io`` does not load torch:

* :func:`load_model`, :class:`LoadedModel`, :class:`TensorInfo`, :func:`sha256_file` (``load``)
* :func:`import_model`, :func:`promote_buffers_to_parameters` (``to_torch``)
* :func:`export_model` (``to_onnx``)
* :func:`check_parity`, :class:`ParityReport`, :func:`raise_if_failed` (``parity``)
* :func:`inspect_model` (``info``), :func:`roundtrip`, :class:`RoundtripReport` (``round_trip``)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_model": "load",
    "LoadedModel": "load",
    "TensorInfo": "load",
    "sha256_file": "load",
    "import_model": "to_torch",
    "promote_buffers_to_parameters": "to_torch",
    "export_model": "to_onnx",
    "check_parity": "parity",
    "ParityReport": "parity",
    "raise_if_failed": "parity",
    "inspect_model": "info",
    "roundtrip": "round_trip",
    "RoundtripReport": "round_trip",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
