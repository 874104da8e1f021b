"""The whole flow on the bundled sample model, offline: verify → purify → verify.

The sample (``sample_models/``, see its MODEL_CARD.md) is a Fashion-MNIST CNN with a
BadNets backdoor (3×3 white patch bottom-right → class 0), 600 clean training images and
1,000 held-out test images.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ulrl_edge.errors import BadInput, MissingDependency

SAMPLE_TRIGGER = "badnets:size=3,pos=br"
SAMPLE_TARGET = 0
SAMPLE_FILES = ("backdoored.onnx", "test.npz", "MODEL_CARD.md", "clean")
MARKER = ".ulrl-edge-demo"


def sample_dir() -> Path:
    """The installed sample folder.

    Raises:
        MissingDependency: The package was installed without its sample files.
    """
    folder = Path(str(resources.files("ulrl_edge.sample_models")))
    if not (folder / "backdoored.onnx").is_file():
        raise MissingDependency(
            f"the sample model is missing from {folder}; reinstall ulrl-edge from its source"
        )
    return folder


def prepare_workdir(out_dir: Path) -> Path:
    """Copy the sample files into ``out_dir``; refuse a non-empty folder that is not ours."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise BadInput("demo output path exists and is not a folder", out_dir)
        if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
            raise BadInput(
                "folder is not empty and was not made by 'ulrl-edge demo'; choose another --out",
                out_dir,
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("made by ulrl-edge demo; safe to delete\n")
    source = sample_dir()
    for name in SAMPLE_FILES:
        src, dst = source / name, out_dir / name
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    return out_dir


@dataclass
class DemoResult:
    """Test-set metrics of the backdoored and the purified model, and where things are."""

    workdir: Path
    before: dict
    after: dict
    purify: object  # PurifyResult


def run_demo(out_dir: str | Path, *, preset: str = "auto", seed: int = 0, progress=None):
    """Verify the sample model, purify it with ULRL, verify the purified file.

    Args:
        out_dir: Work folder (created; the sample files are copied into it).
        preset: ULRL preset.
        seed: Seed of the purification.
        progress: Receives progress events.

    Returns:
        A :class:`DemoResult` with ACC/ASR on the 1,000 held-out test images.
    """
    from ulrl_edge.data import load_images, parse_trigger, resolve_spec
    from ulrl_edge.onnx_io.load import load_model
    from ulrl_edge.pipeline import DataOptions, TriggerOptions, purify
    from ulrl_edge.verify import evaluate

    emit = progress or (lambda event: None)
    work = prepare_workdir(Path(out_dir))
    model = work / "backdoored.onnx"
    loaded = load_model(model)
    spec = resolve_spec(loaded.inputs[0].shape, loaded.metadata)
    test = load_images(work / "test.npz", spec)
    trigger = parse_trigger(SAMPLE_TRIGGER)

    def measure(path: Path) -> dict:
        return evaluate(path, test, spec, trigger=trigger, target=SAMPLE_TARGET).to_dict()

    emit({"phase": "demo", "message": "measuring the backdoored model on the test set"})
    before = measure(model)
    result = purify(
        model,
        DataOptions(source=work / "clean"),
        work / "purified.onnx",
        preset=preset,
        seed=seed,
        trigger=TriggerOptions(SAMPLE_TRIGGER, SAMPLE_TARGET),
        report_dir=work / "report",
        argv=["ulrl-edge", "purify", str(model), "--clean", str(work / "clean"), "-o",
              str(work / "purified.onnx"), "--report", str(work / "report"),
              "--trigger", SAMPLE_TRIGGER, "--target", str(SAMPLE_TARGET),
              "--preset", preset, "--seed", str(seed)],
        progress=emit,
    )
    emit({"phase": "demo", "message": "measuring the purified model on the test set"})
    after = measure(result.output_path)
    return DemoResult(work, before, after, result)
