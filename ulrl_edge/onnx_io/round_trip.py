"""Import → export unchanged → prove the new file equals the original (``ulrl-edge roundtrip``).

The round trip is the tool's self-test on a user's model: if it passes, everything a defense
changes later is the defense's doing, not the conversion's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ulrl_edge.config import ParityTolerance
from ulrl_edge.errors import CheckFailed, UlrlEdgeError
from ulrl_edge.onnx_io.parity import ParityReport


@dataclass
class RoundtripReport:
    """The outcome of :func:`roundtrip`.

    Attributes:
        source: The original file.
        output: The written file (kept even when parity failed).
        torch_parity: Imported torch model vs original (onnxruntime).
        onnx_parity: Exported file vs original, one report per probe batch (1 and 4 when
            the original's batch is dynamic).
        head: ``Head.describe()`` of the found head, or None.
        head_error: Why no head was found, or None.
        sizes: Node counts, file sizes and opsets before and after.
        notes: Graph fixes applied on import.
    """

    source: Path
    output: Path
    torch_parity: ParityReport
    onnx_parity: list[ParityReport]
    head: dict | None = None
    head_error: str | None = None
    sizes: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def reports(self) -> list[ParityReport]:
        return [self.torch_parity, *self.onnx_parity]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports)

    def summary(self) -> str:
        failing = [r for r in self.reports if not r.passed] or self.reports
        return "; ".join(f"{r.candidate} vs original: {r.summary()}" for r in failing)

    def raise_if_failed(self) -> None:
        """Raise CheckFailed (exit 1) naming the kept output when any parity failed."""
        if not self.passed:
            raise CheckFailed(
                f"round trip does not match the original (output kept, do not ship it): "
                f"{self.summary()}",
                self.output,
            )

    def to_dict(self) -> dict:
        return {
            "source": str(self.source),
            "output": str(self.output),
            "passed": self.passed,
            "torch_parity": self.torch_parity.to_dict(),
            "onnx_parity": [r.to_dict() for r in self.onnx_parity],
            "head": self.head,
            "head_error": self.head_error,
            "sizes": self.sizes,
            "notes": self.notes,
        }


def roundtrip(
    model_path: str | Path,
    out_path: str | Path,
    *,
    atol: float = 1e-4,
    size: tuple[int, int] | None = None,
    seed: int = 0,
) -> RoundtripReport:
    """Import ``model_path``, export it unchanged to ``out_path`` and compare both ways.

    Args:
        model_path: The original .onnx file (never written).
        out_path: Where the re-exported file goes (atomically).
        atol: Largest allowed absolute output difference; top-1 must agree on every row.
        size: (H, W) for dynamic spatial input axes.
        seed: Seed of the probe inputs.

    Returns:
        The report; check ``passed`` or call ``raise_if_failed()``.

    Raises:
        BadInput: Unusable input file or output path (checked before any work).
        UnsupportedModel: The model cannot be imported or exported (names the op).
    """
    from ulrl_edge.head import find_head
    from ulrl_edge.onnx_io.load import load_model
    from ulrl_edge.onnx_io.parity import check_parity
    from ulrl_edge.onnx_io.shapes import batch_is_dynamic, concrete_shapes
    from ulrl_edge.onnx_io.to_onnx import check_output_path, export_model
    from ulrl_edge.onnx_io.to_torch import META_KEY, import_model

    source = load_model(model_path)
    out = check_output_path(out_path, source.path)
    concrete_shapes(source, batch=1, size=size)  # refuse free spatial axes before any work
    tolerance = ParityTolerance(atol=atol)
    model = import_model(source)
    torch_report = check_parity(source, model, tolerance=tolerance, seed=seed, size=size)
    head, head_error = None, None
    try:
        head = find_head(model).describe()
    except UlrlEdgeError as err:  # reported: the round trip itself does not need a head
        head_error = err.message
    export_model(model, source, out, size=size)
    exported = load_model(out)
    batches = [1, 4] if batch_is_dynamic(source) else [None]
    onnx_reports = [
        check_parity(source, exported, tolerance=tolerance, seed=seed, size=size, batch=b or 1)
        for b in batches
    ]
    sizes = {
        "nodes_before": len(source.proto.graph.node),
        "nodes_after": len(exported.proto.graph.node),
        "bytes_before": source.path.stat().st_size,
        "bytes_after": out.stat().st_size,
        "opset_before": source.opset,
        "opset_after": exported.opset,
    }
    return RoundtripReport(
        source=source.path,
        output=out,
        torch_parity=torch_report,
        onnx_parity=onnx_reports,
        head=head,
        head_error=head_error,
        sizes=sizes,
        notes=list(model.meta[META_KEY]["notes"]),
    )
