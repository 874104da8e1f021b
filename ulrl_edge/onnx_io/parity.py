"""Do two runs of "the same" model agree? onnxruntime on the original vs torch or another file.

Every output is compared before a verdict, in the order names → shapes → values, and the
report lists each output's max abs / rel difference and top-1 agreement (as optimum's
``_run_validation`` and Polygraphy's comparator do). :func:`raise_if_failed` turns a failed
report into one :class:`~ulrl_edge.errors.CheckFailed` line.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
from torch import nn

from ulrl_edge.config import FP32_PARITY, ParityTolerance
from ulrl_edge.errors import CheckFailed, UnsupportedModel
from ulrl_edge.onnx_io.load import LoadedModel, load_model
from ulrl_edge.onnx_io.shapes import batch_is_dynamic, random_inputs


@dataclass
class OutputParity:
    """How one output compares.

    Attributes:
        name: Output name (the reference's).
        reference_shape: Shape the reference produced.
        candidate_shape: Shape the candidate produced (None when it has no such output).
        max_abs_diff: Largest |ref − cand| (None when shapes differ).
        max_rel_diff: Largest |ref − cand| / (|ref| + atol).
        top1_agreement: Fraction of rows whose arg-max over the last axis agrees (None for
            outputs without a class axis).
        problem: ``missing``, ``shape``, ``values``, ``top1`` or None when it passed.
    """

    name: str
    reference_shape: tuple[int, ...]
    candidate_shape: tuple[int, ...] | None
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    top1_agreement: float | None = None
    problem: str | None = None

    def summary(self) -> str:
        if self.problem == "missing":
            return f"{self.name}: missing in the candidate"
        if self.problem == "shape":
            got, want = list(self.candidate_shape or ()), list(self.reference_shape)
            return f"{self.name}: shape {got} != {want}"
        text = f"{self.name}: max abs diff {self.max_abs_diff:.3g}, rel {self.max_rel_diff:.3g}"
        if self.top1_agreement is not None:
            text += f", top-1 agreement {self.top1_agreement:.1%}"
        return text


@dataclass
class ParityReport:
    """The comparison of a candidate with the reference on one probe batch.

    Attributes:
        reference: What ran as the reference (a file path).
        candidate: What was compared (a file path or ``torch``).
        batch: Probe batch size actually used.
        tolerance: The gate applied.
        outputs: One entry per reference output.
        notes: Things worth telling, e.g. a batch the reference does not accept.
        passed: Every output present, same shape, within ``atol`` and top-1 agreement.
    """

    reference: str
    candidate: str
    batch: int
    tolerance: ParityTolerance
    outputs: list[OutputParity] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    passed: bool = False

    @property
    def max_abs_diff(self) -> float | None:
        values = [o.max_abs_diff for o in self.outputs if o.max_abs_diff is not None]
        return max(values) if values else None

    @property
    def top1_agreement(self) -> float | None:
        values = [o.top1_agreement for o in self.outputs if o.top1_agreement is not None]
        return min(values) if values else None

    def failures(self) -> list[OutputParity]:
        return [o for o in self.outputs if o.problem]

    def summary(self) -> str:
        """One line: verdict and each failing (or, when passing, each) output."""
        shown = self.failures() or self.outputs
        verdict = "passed" if self.passed else "failed"
        return (
            f"parity {verdict} at batch {self.batch} (atol {self.tolerance.atol:g}): "
            + "; ".join(o.summary() for o in shown)
        )

    def to_dict(self) -> dict:
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "batch": self.batch,
            "tolerance": asdict(self.tolerance),
            "passed": self.passed,
            "max_abs_diff": self.max_abs_diff,
            "top1_agreement": self.top1_agreement,
            "outputs": [asdict(o) for o in self.outputs],
            "notes": list(self.notes),
        }


def check_parity(
    reference_onnx: str | Path | LoadedModel,
    candidate: nn.Module | str | Path | LoadedModel | onnx.ModelProto,
    *,
    inputs: dict[str, np.ndarray] | None = None,
    tolerance: ParityTolerance = FP32_PARITY,
    batch: int = 4,
    seed: int = 0,
    size: tuple[int, int] | None = None,
) -> ParityReport:
    """Compare a torch model or another ONNX file with the reference run in onnxruntime.

    Args:
        reference_onnx: The original model (path or loaded).
        candidate: A torch module (run in eval mode, no grad), an ONNX file, a loaded
            model or an in-memory ModelProto.
        inputs: Probe inputs by name; default: seeded random inputs of ``batch`` rows.
        tolerance: The gate (``atol``, ``min_top1_agreement``).
        batch: Rows of the generated probe batch. If the reference cannot run that batch
            (a batch frozen at 1 inside the graph), its outputs are computed one row at a
            time and a note says so.
        seed: Seed for the generated inputs.
        size: (H, W) for dynamic spatial input axes.

    Returns:
        The report; it does not raise on failure (see :func:`raise_if_failed`).

    Raises:
        BadInput: The reference cannot be loaded, or inputs cannot be generated.
        UnsupportedModel: onnxruntime cannot run the reference.
    """
    ref = reference_onnx if isinstance(reference_onnx, LoadedModel) else load_model(reference_onnx)
    notes: list[str] = []
    probe = inputs if inputs is not None else random_inputs(ref, batch, seed, size)
    ref_outputs, error = _run_reference(ref, probe)
    if error is not None or not _rows_match(ref_outputs, _rows(probe)):
        by_row = _run_reference_by_row(ref, probe) if batch_is_dynamic(ref) else None
        if by_row is not None:
            notes.append(
                f"the original does not run a batch of {_rows(probe)} "
                f"({error or 'its output batch differs'}); its outputs were computed one row "
                "at a time"
            )
            ref_outputs, error = by_row, None
    if error is not None:
        raise UnsupportedModel(f"onnxruntime cannot run the model: {error}", ref.path)
    cand_label = _label(candidate)
    try:
        cand_outputs, cand_label = _run_candidate(candidate, probe, ref)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:  # ORT / torch run errors
        cand_outputs = {}
        notes.append(f"the candidate failed to run: {type(err).__name__}: {_short(err)}")
    report = ParityReport(
        reference=str(ref.path),
        candidate=cand_label,
        batch=_rows(probe),
        tolerance=tolerance,
        notes=notes,
    )
    for name, expected in ref_outputs.items():
        report.outputs.append(_compare(name, expected, cand_outputs.get(name), tolerance))
    report.passed = bool(report.outputs) and not report.failures()
    return report


def raise_if_failed(report: ParityReport, what: str) -> None:
    """Raise :class:`CheckFailed` with a one-line summary when ``report`` did not pass.

    Args:
        report: From :func:`check_parity`.
        what: What was checked, e.g. ``"exported file vs original"``.
    """
    if not report.passed:
        raise CheckFailed(f"{what}: {report.summary()}")


def ort_session(model: LoadedModel | str | Path | bytes):
    """A CPU onnxruntime session for a loaded model, a file or serialized bytes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # run errors are caught and reported by the caller
    if isinstance(model, LoadedModel):
        source = model.proto.SerializeToString() if model.proto.ByteSize() < 2**31 - 1 else None
        source = source if source is not None else str(model.path)
    elif isinstance(model, bytes):
        source = model
    else:
        source = str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _run_reference(ref: LoadedModel, probe: dict[str, np.ndarray]):
    try:
        session = ort_session(ref)
        values = session.run(ref.output_names, probe)
    except Exception as err:  # onnxruntime raises its own exception types
        return {}, _short(err)
    return dict(zip(ref.output_names, values, strict=True)), None


def _rows(probe: dict[str, np.ndarray]) -> int:
    first = next(iter(probe.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1


def _rows_match(outputs: dict[str, np.ndarray], batch: int) -> bool:
    return all(v.ndim == 0 or v.shape[0] == batch for v in outputs.values())


def _run_reference_by_row(ref: LoadedModel, probe: dict[str, np.ndarray]):
    """Reference outputs for a batch the graph cannot take (batch frozen at 1 inside),
    computed one row at a time and stacked; None if single rows fail too."""
    count = _rows(probe)
    if count <= 1:
        return None
    parts: list[dict[str, np.ndarray]] = []
    for i in range(count):
        outputs, error = _run_reference(ref, {k: v[i : i + 1] for k, v in probe.items()})
        if error is not None or not _rows_match(outputs, 1):
            return None
        parts.append(outputs)
    return {name: np.concatenate([p[name] for p in parts]) for name in ref.output_names}


def _run_candidate(candidate, probe: dict[str, np.ndarray], ref: LoadedModel):
    if isinstance(candidate, nn.Module):
        ordered = [probe[name] for name in ref.input_names]
        return run_torch(candidate, ordered, ref.output_names), "torch"
    if isinstance(candidate, onnx.ModelProto):
        session, label = ort_session(candidate.SerializeToString()), "onnx (in memory)"
    else:
        model = candidate if isinstance(candidate, LoadedModel) else load_model(candidate)
        session, label = ort_session(model), str(model.path)
    feeds = {i.name: probe[i.name] for i in session.get_inputs() if i.name in probe}
    wanted = [o.name for o in session.get_outputs()]
    return dict(zip(wanted, session.run(wanted, feeds), strict=True)), label


def run_torch(module: nn.Module, arrays: list[np.ndarray], names: list[str]):
    """Outputs of ``module`` (eval mode, no grad) on ``arrays``, by output name."""
    import torch

    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # onnx2torch's tracer-style warnings
            device = next(module.parameters(), torch.empty(0)).device
            tensors = [torch.from_numpy(np.ascontiguousarray(v)).to(device) for v in arrays]
            result = module(*tensors)
    finally:
        module.train(was_training)
    values = list(result) if isinstance(result, (tuple, list)) else [result]
    outputs = [v.detach().cpu().numpy() for v in values if isinstance(v, torch.Tensor)]
    return dict(zip(names, outputs, strict=False))


def _compare(name, expected: np.ndarray, actual, tolerance: ParityTolerance) -> OutputParity:
    entry = OutputParity(name, tuple(expected.shape), None)
    if actual is None:
        entry.problem = "missing"
        return entry
    entry.candidate_shape = tuple(actual.shape)
    if expected.shape != actual.shape:
        entry.problem = "shape"
        return entry
    ref = expected.astype(np.float64)
    cand = actual.astype(np.float64)
    diff = np.abs(ref - cand)
    nan_mismatch = np.isnan(ref) != np.isnan(cand)
    diff = np.where(np.isnan(ref) & np.isnan(cand), 0.0, diff)
    diff = np.where(nan_mismatch, np.inf, diff)
    entry.max_abs_diff = float(diff.max()) if diff.size else 0.0
    rel = diff / (np.abs(np.nan_to_num(ref)) + tolerance.atol)
    entry.max_rel_diff = float(rel.max()) if rel.size else 0.0
    if expected.dtype.kind == "f" and expected.ndim >= 2 and expected.shape[-1] > 1:
        agree = np.argmax(np.nan_to_num(ref), axis=-1) == np.argmax(np.nan_to_num(cand), axis=-1)
        entry.top1_agreement = float(agree.mean()) if agree.size else 1.0
    if entry.max_abs_diff > tolerance.atol:
        entry.problem = "values"
    elif entry.top1_agreement is not None and entry.top1_agreement < tolerance.min_top1_agreement:
        entry.problem = "top1"
    return entry


def _short(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(candidate) -> str:
    if isinstance(candidate, nn.Module):
        return "torch"
    if isinstance(candidate, onnx.ModelProto):
        return "onnx (in memory)"
    return str(candidate.path if isinstance(candidate, LoadedModel) else candidate)
