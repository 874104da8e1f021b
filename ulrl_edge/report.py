"""RunReport: every number a run produced, as stable JSON (and a page a person reads).

The schema is versioned (``schema_version``) and documented in ``docs/report-schema.md``
(JSON Schema: ``docs/report-schema.json``); fields are only ever added. The same dict,
trimmed to scalars, is written into the output ONNX file's metadata.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA_VERSION = 1


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the numbers (for reproduction)."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["ulrl-edge", "torch", "onnx", "onnxruntime", "onnx2torch", "numpy"]
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    found["python"] = sys.version.split()[0]
    found["platform"] = platform.platform()
    return found


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process, and peak CUDA memory when torch used CUDA."""
    found: dict[str, float] = {}
    try:
        import resource  # POSIX only
    except ImportError:
        resource = None
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, B on macOS
        found["rss"] = round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)
    torch = sys.modules.get("torch")  # never import torch just to ask
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        found["cuda"] = round(torch.cuda.max_memory_allocated() / (1024 * 1024), 1)
    return found


@dataclass
class RunReport:
    """What a purify / scan / verify run did and measured.

    Attributes:
        command: ``purify``, ``scan`` or ``verify``.
        argv: The exact command line, to reproduce the run.
        source: Input model path and SHA-256.
        output: Output model path and SHA-256 (purify only).
        method: Defense name; ``preset`` and ``config`` give its resolved settings.
        seed: The seed every random choice derived from.
        data: Clean-sample source, counts per split, preprocessing spec.
        metrics: ``before`` / ``after`` metric dicts (ACC, ASR, CIs, per class).
        gate: Gate thresholds and verdict.
        parity: Import and export parity reports.
        defense: The defense's own details (Δ, z, flagged rows, curves).
        timings: Seconds per phase.
        peak_memory_mb: Peak resident memory of the process (and CUDA, when used).
        compute: Where the defense ran (``device``) and its mixed precision (``amp``:
            ``bfloat16``, ``float16`` or None for float32).
        versions: Tool and library versions.
        cwd: Working directory the command ran in (``argv`` paths are relative to it).
        created: When the report was made, UTC, ISO 8601.
    """

    command: str
    argv: list[str] = field(default_factory=list)
    source: dict = field(default_factory=dict)
    output: dict = field(default_factory=dict)
    method: str = ""
    preset: str = ""
    seed: int = 0
    config: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    gate: dict = field(default_factory=dict)
    parity: dict = field(default_factory=dict)
    defense: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    peak_memory_mb: dict = field(default_factory=dict)
    compute: dict = field(default_factory=dict)
    versions: dict = field(default_factory=library_versions)
    schema_version: int = SCHEMA_VERSION
    cwd: str = field(default_factory=os.getcwd)
    created: str = field(default_factory=_utc_now)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return to_json(self.to_dict())


def _jsonable(value):
    """numpy/torch scalars and paths in reports become plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def reproduce_command(report: dict, *, multiline: bool = False) -> str:
    """The shell command that reruns the run of ``report`` (a RunReport dict).

    Args:
        report: The report dict.
        multiline: One option per line, joined with backslash continuations.
    """
    argv = [str(a) for a in report.get("argv") or []]
    if not argv:
        return ""
    if multiline:  # options start a new line; their values stay beside them
        words: list[str] = []
        for arg in argv:
            quoted = shlex.quote(arg)
            if arg.startswith("-") or not words:
                words.append(quoted)
            else:
                words[-1] += " " + quoted
        line = " \\\n    ".join(words)
    else:
        line = shlex.join(argv)
    cwd = report.get("cwd")
    return f"cd {shlex.quote(cwd)} && {line}" if cwd else line


def verify_report(
    model_path: str | Path,
    data_source: str | Path,
    metrics: dict,
    *,
    sha256: str | None = None,
    preprocess: dict | None = None,
    runtime: str = "ort-cpu",
    batch_size: int | None = None,
    seconds: float | None = None,
    argv: list[str] | None = None,
) -> RunReport:
    """The report of a ``verify`` run: one model measured on one data source.

    Args:
        model_path: The measured ONNX file.
        data_source: The image folder or ``.npz`` measured on.
        metrics: ``Metrics.to_dict()`` of the run; stored as ``metrics["measured"]``.
        sha256: The model's SHA-256 (computed from the file when None).
        preprocess: The preprocessing spec as a dict (``json.loads(spec.to_json())``).
        runtime: onnxruntime execution provider name.
        batch_size: Images per batch.
        seconds: Wall time of the measurement.
        argv: The command line.
    """
    if sha256 is None:
        from ulrl_edge.onnx_io.load import sha256_file

        sha256 = sha256_file(model_path)
    report = RunReport("verify", argv=list(argv or []))
    report.source = {"path": str(model_path), "sha256": sha256}
    report.data = {
        "source": str(data_source),
        "preprocess": preprocess or {},
        "n_verify": int(metrics.get("n", 0)),
        "classes": list(metrics.get("class_names") or []),
    }
    report.config = {"runtime": runtime, "batch_size": batch_size}
    report.metrics = {"measured": metrics}
    if seconds is not None:
        report.timings = {"verify": round(float(seconds), 3)}
    report.peak_memory_mb = peak_memory_mb()
    return report


def write_report(report: RunReport | dict, folder: Path, *, html: bool = True) -> Path:
    """Write ``report.json`` (and ``report.html``) into ``folder``, created if missing.

    Args:
        report: The run's report.
        folder: Output folder.
        html: Also write the self-contained HTML page (plots need matplotlib).

    Returns:
        The path of ``report.json``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    from ulrl_edge.onnx_io.to_onnx import write_atomically

    text = report.to_json() if isinstance(report, RunReport) else to_json(report)
    path = folder / "report.json"
    write_atomically((text + "\n").encode("utf-8"), path)
    if html:
        from ulrl_edge.report_html import write_html

        write_html(json.loads(text), folder)
    return path


def to_json(report: dict) -> str:
    """A report dict as the JSON text ``report.json`` holds (strict JSON: NaN/inf → null)."""
    return json.dumps(_finite(report), indent=2, sort_keys=True, default=_jsonable,
                      allow_nan=False)


def _finite(value):
    """Non-finite floats become None, so every JSON parser reads the file."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _finite(value.tolist())
    return value
