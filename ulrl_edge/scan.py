"""scan(): ULRL's unlearning phase only — which classes look like backdoor targets.

Gradient ascent on clean samples moves the head rows of backdoor target classes far more
than the others; the MAD outlier test names them (``auto`` adds a class that a small
universal perturbation reaches far more easily than any other). No model is written.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ulrl_edge.report import RunReport, peak_memory_mb


@dataclass
class ScanResult:
    """What :func:`scan` found.

    Attributes:
        suspicious: Flagged classes, most suspicious first: index, name, Δ and z.
        report: Every number of the run.
    """

    suspicious: list[dict]
    report: RunReport

    @property
    def verdict(self) -> str:
        if not self.suspicious:
            return "no suspicious class"
        names = ", ".join(f"{s['class']} ({s['name']})" for s in self.suspicious)
        return f"suspicious: {names}"


def found_by(found: dict, k: int) -> list[str]:
    """Which detectors flagged class ``k``: ``unlearning``, ``target probe``, ``warp probe``,
    ``patch probe``."""
    by_unlearning = found.get("unlearning_flagged", found["flagged"])
    probes = (("target probe", "probe"), ("warp probe", "warp_probe"),
              ("patch probe", "patch_probe"))  # fmt: skip
    return ["unlearning"] * (k in by_unlearning) + [
        name for name, key in probes if (found.get(key) or {}).get("flagged") == k
    ]


def scan(
    model_path: str | Path,
    data,
    *,
    preset: str = "auto",
    seed: int = 0,
    device: str = "cpu",
    amp: bool = True,
    config_overrides: dict | None = None,
    report_dir: str | Path | None = None,
    argv: list[str] | None = None,
    progress=None,
) -> ScanResult:
    """Run ULRL's unlearning phase on all clean samples and flag outlier head rows.

    Args:
        model_path: The ONNX model to scan; never modified.
        data: :class:`~ulrl_edge.pipeline.DataOptions` for the clean samples.
        preset: ULRL preset (``auto`` or ``paper``).
        seed: Seed for shuffling and augmentation.
        device: ``cpu``, ``cuda`` or ``auto``.
        amp: Mixed precision on CUDA (no effect on the CPU).
        config_overrides: ULRL settings that replace the preset's.
        report_dir: Folder for ``report.json``; None writes none.
        argv: The command line, for the report.
        progress: Receives progress events.

    Returns:
        The suspicious classes (possibly none) and the report.
    """
    from ulrl_edge import stages
    from ulrl_edge.defenses import TrainingData, get_defense, seed_everything
    from ulrl_edge.defenses.precision import dtype_name, mixed_precision
    from ulrl_edge.defenses.ulrl import unlearn
    from ulrl_edge.head import logits_module
    from ulrl_edge.pipeline import resolve_device

    emit = progress or (lambda event: None)
    model_path = Path(model_path)
    report = RunReport("scan", argv=list(argv or []), method="ulrl", preset=preset, seed=seed)
    start = time.perf_counter()
    loaded, spec, images = stages.load_inputs(model_path, data)
    report.source = {"path": str(model_path), "sha256": loaded.sha256}
    model, head, parity = stages.import_checked(loaded)
    stages.check_labels_fit(images, head.num_classes, data.source)
    report.parity["import"] = parity.to_dict()
    report.data = stages.describe_data(data, spec, images, images.subset(slice(0, 0)))

    seed_everything(seed)
    config = stages.make_config(get_defense("ulrl"), preset, seed, config_overrides)
    cfg = config.resolve(len(images), head.num_classes)
    report.config = asdict(cfg)
    device = resolve_device(device)
    precision = stages.precision_for("ulrl", device, amp)
    report.compute = {"device": device, "amp": dtype_name(precision)}
    model = logits_module(model).to(device)  # cross-entropy needs logits
    clean = TrainingData(images=images, spec=spec, flip=data.flip)
    t_unlearn = time.perf_counter()
    with mixed_precision(device, precision):
        found = unlearn(model, clean, cfg, emit)
    report.defense = found
    report.timings = {"unlearn": round(time.perf_counter() - t_unlearn, 3),
                      "total": round(time.perf_counter() - start, 3)}
    report.peak_memory_mb = peak_memory_mb()

    names = list(images.class_names) or [str(k) for k in range(head.num_classes)]
    z = found["mad"]["z"]
    votes = found.get("votes")
    suspicious = [
        {"class": k, "name": names[k] if k < len(names) else str(k),
         "delta": found["delta"][k], "z": z[k], "found_by": found_by(found, k),
         "runs_agreeing": votes[k] if votes else None, "runs": len(found["runs"])}
        for k in found["flagged"]
    ]
    report.metrics = {"suspicious": suspicious}
    if report_dir is not None:
        from ulrl_edge.report import write_report

        write_report(report, Path(report_dir))
    return ScanResult(suspicious, report)
