"""The classifier head: the last linear map to the logits, as rows [classes, features].

ULRL reads and re-initialises rows of this matrix. In imported graphs the map may be a
Gemm/Linear (weight [K, F]), a MatMul (+Add) whose weight is stored [F, K], or a 1×1 Conv
(weight [K, F, 1, 1]) before a global pool. :class:`Head` hides those storage differences:
:meth:`Head.rows` is always a differentiable [K, F] view of the live parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

HeadKind = Literal["linear", "matmul", "conv1x1"]


@dataclass
class Head:
    """A located classifier head.

    Attributes:
        kind: How the weight is stored: ``linear`` [K, F], ``matmul`` [F, K], ``conv1x1``
            [K, F, 1, 1].
        name: Qualified name of the module (or graph node) that owns the weight.
        weight: The live weight parameter.
        bias: The live bias parameter, or None.
        onnx_op: The ONNX op type the head came from (for reports), e.g. ``Gemm``.
    """

    kind: HeadKind
    name: str
    weight: nn.Parameter
    bias: nn.Parameter | None = None
    onnx_op: str = ""

    def rows(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The weight as [classes, features], a view sharing storage (differentiable).

        Args:
            weight: Another tensor stored like this head's weight (e.g. a saved copy);
                defaults to the live weight.
        """
        w = self.weight if weight is None else weight
        if self.kind == "linear":
            return w
        if self.kind == "matmul":
            return w.t()
        return w.reshape(w.shape[0], -1)

    @property
    def num_classes(self) -> int:
        return int(self.rows().shape[0])

    @property
    def in_features(self) -> int:
        return int(self.rows().shape[1])

    def bias_values(self) -> torch.Tensor | None:
        """The bias as a flat [classes] view, or None."""
        return None if self.bias is None else self.bias.reshape(-1)

    @torch.no_grad()
    def reinit_rows(self, index: list[int], generator: torch.Generator | None = None) -> None:
        """Re-initialise rows as the reference does: U(±sqrt(2/d)) weights, zero bias.

        Args:
            index: Class indices (rows) to reset.
            generator: Seeded generator, so that the reset is repeatable.
        """
        rows = self.rows()
        bound = math.sqrt(2.0 / self.in_features)
        for k in index:
            fresh = torch.rand(rows.shape[1], generator=generator, dtype=rows.dtype)
            rows[k].copy_((fresh * 2 - 1).mul_(bound).to(rows.device))
            if self.bias is not None:
                self.bias_values()[k] = 0.0

    def describe(self) -> dict:
        """A JSON-ready summary: op, storage kind, name and [classes, features]."""
        return {
            "onnx_op": self.onnx_op,
            "kind": self.kind,
            "name": self.name,
            "classes": self.num_classes,
            "features": self.in_features,
            "has_bias": self.bias is not None,
        }
