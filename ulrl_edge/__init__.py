"""ulrl-edge: remove backdoors from vendor ONNX image classifiers.

The public API is imported lazily so that ``import ulrl_edge`` stays fast and works without
torch for the CLI's ``--help``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
