"""purify(): load → import → parity → split → defend → export → verify → gate → report.

Each stage lives in its own module; this file only orders them and records what they did.
What ships is what is measured: metrics are computed with onnxruntime on the exported file.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ulrl_edge.config import VERIFY_FRACTION, Gate
from ulrl_edge.errors import BadInput
from ulrl_edge.report import RunReport, peak_memory_mb

ProgressFn = Callable[[dict], None]


@dataclass(frozen=True)
class DataOptions:
    """Where clean samples come from and how they become model input.

    Attributes:
        source: Image folder (class subfolders) or ``.npz`` file.
        preprocess_file: Optional JSON file with a preprocessing spec.
        overrides: Spec fields given as flags (they win over file and metadata).
        resize: Resize images to the model's size instead of refusing other sizes.
        flip: Allow horizontal flips in training augmentation.
        verify_fraction: Share of the clean samples held out for verification.
    """

    source: Path
    preprocess_file: Path | None = None
    overrides: dict = field(default_factory=dict)
    resize: bool = False
    flip: bool = False
    verify_fraction: float = VERIFY_FRACTION


@dataclass(frozen=True)
class TriggerOptions:
    """A known trigger, to measure the attack success rate (never used to purify)."""

    spec: str
    target: int
    mode: str = "all2one"


@dataclass
class PurifyResult:
    """What :func:`purify` produced."""

    output_path: Path
    report: RunReport
    report_path: Path | None
    gate_passed: bool


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available; ``cuda`` without CUDA is a missing-hardware error."""
    import torch

    from ulrl_edge.errors import MissingDependency

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise MissingDependency(
            "--device cuda needs an NVIDIA GPU and a CUDA build of torch; use --device cpu"
        )
    if device not in ("cpu", "cuda"):
        raise BadInput(f"unknown device {device!r}; use auto, cpu or cuda")
    return device


class _Stopwatch:
    """Seconds per named phase, in the order they ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def phase(self, name: str):
        watch = self

        class _Phase:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                watch.seconds[name] = round(time.perf_counter() - self.start, 3)

        return _Phase()


def _work_folder(out_path: Path) -> tempfile.TemporaryDirectory:
    """A hidden temporary folder beside the output (same file system: the rename is atomic);
    removed on any exit, an interrupt included."""
    from ulrl_edge.onnx_io.to_onnx import write_error

    try:
        return tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".ulrl-edge-")
    except OSError as err:
        raise write_error(err, out_path) from None


def purify(
    model_path: str | Path,
    data: DataOptions,
    out_path: str | Path,
    *,
    method: str = "ulrl",
    preset: str = "auto",
    seed: int = 0,
    device: str = "cpu",
    amp: bool = True,
    config_overrides: dict | None = None,
    trigger: TriggerOptions | None = None,
    gate: Gate = Gate(),
    report_dir: str | Path | None = None,
    argv: list[str] | None = None,
    progress: ProgressFn | None = None,
) -> PurifyResult:
    """Purify a vendor ONNX classifier and verify the file it writes.

    Args:
        model_path: The (possibly backdoored) ONNX model; never modified.
        data: Clean samples and preprocessing.
        out_path: Where to write the purified ONNX model (atomically).
        method: Defense name from the registry (``ulrl``, ``ft``, …).
        preset: Defense preset (``auto`` or ``paper`` for ULRL).
        seed: Seed for the split, shuffling, augmentation and re-initialisation.
        device: ``cpu``, ``cuda`` or ``auto``.
        amp: Mixed precision on CUDA (bfloat16, or float16 with loss scaling) for the
            defenses that support it; no effect on the CPU.
        config_overrides: Defense settings that replace the preset's.
        trigger: A known trigger to measure ASR before and after.
        gate: Largest accepted held-out accuracy drop (and ASR).
        report_dir: Folder for ``report.json``; None writes no report.
        argv: The command line, recorded for reproduction.
        progress: Receives progress events (dicts) for long phases.

    Returns:
        The output path, the report and whether the gate passed. A failed gate still
        writes the output and report; the caller decides the exit code.

    Raises:
        BadInput, UnsupportedModel, MissingDependency: before anything is written.
    """
    from ulrl_edge import stages
    from ulrl_edge.defenses.precision import dtype_name
    from ulrl_edge.onnx_io.to_onnx import check_output_path

    model_path = Path(model_path)
    out_path = check_output_path(out_path, model_path)
    if report_dir is not None and Path(report_dir).exists() and not Path(report_dir).is_dir():
        raise BadInput("report path is a file; give a folder for report.json", report_dir)
    emit = progress or (lambda event: None)
    watch = _Stopwatch()
    report = RunReport("purify", argv=list(argv or []), method=method, preset=preset, seed=seed)

    with watch.phase("load"):
        emit({"phase": "load", "message": f"loading {model_path.name}"})
        loaded, spec, images = stages.load_inputs(model_path, data)
    report.source = {"path": str(model_path), "sha256": loaded.sha256}
    device = resolve_device(device)
    precision = stages.precision_for(method, device, amp)
    report.compute = {"device": device, "amp": dtype_name(precision)}

    with watch.phase("import"):
        emit({"phase": "import", "message": "importing into PyTorch and checking parity"})
        model, head, import_parity = stages.import_checked(loaded)
    stages.check_labels_fit(images, head.num_classes, data.source)
    purify_split, verify_split = stages.split(images, data.verify_fraction, seed)
    report.data = stages.describe_data(data, spec, purify_split, verify_split)
    report.parity["import"] = import_parity.to_dict()

    with watch.phase("defend"):
        defense_result, config = stages.defend(
            model, method, preset, seed, device, config_overrides, spec, purify_split,
            verify_split, data.flip, emit, precision,
        )
    report.config = config
    report.defense = defense_result.details

    with _work_folder(out_path) as work:
        candidate = Path(work) / out_path.name
        with watch.phase("export"):
            emit({"phase": "export", "message": "exporting ONNX"})
            try:
                stages.export(defense_result.model, loaded, candidate, spec, method, seed)
            except BadInput as err:
                if err.path != candidate:
                    raise
                # The candidate is a hidden temporary file; name the output the user asked for.
                raise BadInput(err.message, out_path) from None
            report.parity["export"] = stages.export_parity(candidate, defense_result.model)
        with watch.phase("verify"):
            emit({"phase": "verify", "message": "measuring ACC/ASR with onnxruntime"})
            report.metrics = {
                "before": stages.measure(model_path, verify_split, spec, trigger, emit),
                "after": stages.measure(candidate, verify_split, spec, trigger, emit),
            }
        report.gate = stages.judge(report.metrics, gate)
        report.timings = dict(watch.seconds)
        report.peak_memory_mb = peak_memory_mb()
        stages.finalise(candidate, out_path, report)
    report.timings = dict(watch.seconds)
    report_path = None
    if report_dir is not None:
        from ulrl_edge.report import write_report

        report_path = write_report(report, Path(report_dir))
    return PurifyResult(out_path, report, report_path, bool(report.gate["passed"]))


__all__ = ["DataOptions", "TriggerOptions", "PurifyResult", "purify"]
