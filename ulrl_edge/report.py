"""RunReport: every number a run produced, as stable JSON.

The schema is versioned (``schema_version``); fields are only ever added. The same dict,
trimmed to scalars, is written into the output ONNX file's metadata.
"""

from __future__ import annotations

import json
import platform
import sys
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
        versions: Tool and library versions.
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
    versions: dict = field(default_factory=library_versions)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=_jsonable)


def _jsonable(value):
    """numpy/torch scalars and paths in reports become plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def write_report(report: RunReport, folder: Path) -> Path:
    """Write ``report.json`` into ``folder`` (created if missing); returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    from ulrl_edge.onnx_io.to_onnx import write_atomically

    path = folder / "report.json"
    write_atomically((report.to_json() + "\n").encode("utf-8"), path)
    return path
