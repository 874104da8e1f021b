"""The stages :func:`ulrl_edge.pipeline.purify` and :func:`ulrl_edge.scan.scan` run, one
function each, so that the pipelines read as a list of steps and each step is testable."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from ulrl_edge import __version__
from ulrl_edge.config import Gate
from ulrl_edge.errors import UnsupportedModel

METADATA_KEY_PREPROCESS = "ulrl_edge.preprocess"
METADATA_KEY_RUN = "ulrl_edge.run"


def load_inputs(model_path: Path, data):
    """Load the model, resolve preprocessing, and load the clean images for it."""
    from ulrl_edge.data import load_images, resolve_spec
    from ulrl_edge.onnx_io.load import load_model

    loaded = load_model(model_path)
    check_image_classifier_io(loaded)
    spec = resolve_spec(
        loaded.inputs[0].shape,
        loaded.metadata,
        file=data.preprocess_file,
        overrides=data.overrides,
    )
    images = load_images(data.source, spec, resize=data.resize)
    return loaded, spec, images


def check_image_classifier_io(loaded) -> None:
    """One float image input, and a first output that may be N×classes, before any work."""
    inputs = loaded.inputs
    if len(inputs) != 1:
        names = ", ".join(t.name for t in inputs)
        raise UnsupportedModel(
            f"the model has {len(inputs)} inputs ({names}); expected one image input",
            loaded.path,
        )
    if inputs[0].dtype not in ("float32", "float16", "float64"):
        raise UnsupportedModel(
            f"input '{inputs[0].name}' is {inputs[0].dtype}; ulrl-edge feeds float tensors "
            "(a model that takes integer pixels preprocesses inside the graph, which cannot "
            "be purified); export it with a float32 input",
            loaded.path,
        )
    shape = loaded.outputs[0].shape
    if any(isinstance(d, int) and d > 1 for d in shape[2:]):  # a feature map, say
        raise UnsupportedModel(
            f"output '{loaded.outputs[0].name}' has shape {list(shape)}; expected N×classes "
            "(an image classifier)",
            loaded.path,
        )


def import_checked(loaded):
    """Import into PyTorch, find the head, and require output parity with onnxruntime."""
    from ulrl_edge.head import find_head
    from ulrl_edge.onnx_io.parity import check_parity
    from ulrl_edge.onnx_io.to_torch import import_model

    model = import_model(loaded)
    try:
        head = find_head(model)
    except UnsupportedModel as err:  # the head finder sees a module, not the file: name it
        raise UnsupportedModel(err.message, err.path or loaded.path) from None
    parity = check_parity(loaded, model)
    if not parity.passed:
        raise UnsupportedModel(
            f"the PyTorch import does not reproduce the model's outputs ({parity.summary()})",
            loaded.path,
        )
    return model, head, parity


def check_labels_fit(images, num_classes: int, source: Path) -> None:
    import numpy as np

    from ulrl_edge.data import check_labels
    from ulrl_edge.errors import BadInput

    check_labels(images, num_classes)
    present = np.unique(images.y)
    if len(present) < 2:
        # Unlearning and relearning on one class teaches the model to answer that class.
        raise BadInput(
            f"every clean sample is of class {int(present[0])}; purifying needs labelled "
            f"samples of several classes (ideally all {num_classes})",
            source,
        )


def split(images, verify_fraction: float, seed: int):
    from ulrl_edge.data import stratified_split

    return stratified_split(images, verify_fraction=verify_fraction, seed=seed)


def describe_data(data, spec, purify_split, verify_split) -> dict:
    return {
        "source": str(data.source),
        "preprocess": json.loads(spec.to_json()),
        "n_purify": len(purify_split),
        "n_verify": len(verify_split),
        "classes": list(purify_split.class_names),
        "flip": data.flip,
    }


def precision_for(method: str, device: str, amp: bool):
    """The autocast dtype the defense ``method`` runs with on ``device`` (None: float32):
    AMP only on CUDA, and only for defenses whose loops are safe under it."""
    from ulrl_edge.defenses import get_defense
    from ulrl_edge.defenses.precision import amp_dtype

    return amp_dtype(device, amp and get_defense(method).amp)


def defend(model, method, preset, seed, device, overrides, spec, purify_split, verify_split,
           flip, emit, precision=None):
    """Run the named defense on ``model`` (forward passes autocast to ``precision`` if
    given); returns its result and the resolved config."""
    from dataclasses import asdict

    from ulrl_edge.defenses import TrainingData, get_defense, seed_everything
    from ulrl_edge.defenses.precision import mixed_precision
    from ulrl_edge.head import logits_module

    seed_everything(seed)
    defense = get_defense(method)
    config = make_config(defense, preset, seed, overrides)
    clean = TrainingData(images=purify_split, spec=spec, flip=flip, holdout=verify_split)
    model = model.to(device)
    # Cross-entropy needs logits: train a view without the vendor's trailing Softmax, then
    # put the trained weights back into the full graph so the export keeps its contract.
    view = logits_module(model)
    with mixed_precision(device, precision):
        result = defense(view, clean, config, emit)
    if view is not model:
        full = copy.deepcopy(model)
        full.load_state_dict(result.model.state_dict())
        result.model = full
    result.model.to("cpu").eval()
    # The defense resolves settings left to the data (batch size, epochs); report those.
    return result, result.details.get("config", asdict(config))


def make_config(defense, preset: str, seed: int, overrides: dict | None):
    """The defense's config for ``preset`` (a classmethod of its config class), overridden."""
    from ulrl_edge.errors import BadInput

    factory = getattr(defense.config_cls, preset, None)
    if not callable(factory):
        if preset != "auto":
            raise BadInput(f"method {defense.name!r} has no preset {preset!r}")
        factory = defense.config_cls
    return factory().with_overrides(seed=seed, **(overrides or {}))


def export(model, loaded, path: Path, spec, method: str, seed: int) -> None:
    from ulrl_edge.onnx_io.to_onnx import export_model

    export_model(model, loaded, path, metadata={METADATA_KEY_PREPROCESS: spec.to_json()})


def export_parity(path: Path, model) -> dict:
    """Parity of the written file against the torch model it came from (must pass)."""
    from ulrl_edge.onnx_io.parity import check_parity, raise_if_failed

    parity = check_parity(path, model)
    raise_if_failed(parity, "exported model vs. purified PyTorch model")
    return parity.to_dict()


def measure(model_path: Path, images, spec, trigger, emit) -> dict:
    """ACC (and ASR for a known trigger) of an ONNX file with onnxruntime."""
    from ulrl_edge.verify import evaluate

    kwargs = {}
    if trigger is not None:
        from ulrl_edge.data import parse_trigger

        kwargs = {
            "trigger": parse_trigger(trigger.spec),
            "target": trigger.target,
            "mode": trigger.mode,
        }
    metrics = evaluate(model_path, images, spec, progress=emit, **kwargs)
    return metrics.to_dict()


def judge(metrics: dict, gate: Gate) -> dict:
    """Apply the gate: held-out accuracy may drop at most ``gate.max_acc_drop``."""
    before, after = metrics["before"], metrics["after"]
    drop = before["accuracy"] - after["accuracy"]
    reasons = []
    if drop > gate.max_acc_drop:
        reasons.append(f"held-out accuracy dropped {drop:.3f} > {gate.max_acc_drop:.3f}")
    asr = after.get("attack_success_rate")
    if gate.max_asr is not None and asr is not None and asr > gate.max_asr:
        reasons.append(f"attack success rate {asr:.3f} > {gate.max_asr:.3f}")
    return {
        "max_acc_drop": gate.max_acc_drop,
        "max_asr": gate.max_asr,
        "acc_drop": round(drop, 6),
        "passed": not reasons,
        "reasons": reasons,
    }


def run_metadata(report) -> dict[str, str]:
    """The run summary stored in the output file: no timings, so same seed ⇒ same bytes."""
    after = report.metrics.get("after", {})
    before = report.metrics.get("before", {})
    summary = {
        "tool_version": __version__,
        "source_sha256": report.source.get("sha256"),
        "method": report.method,
        "preset": report.preset,
        "seed": report.seed,
        "accuracy_before": before.get("accuracy"),
        "accuracy_after": after.get("accuracy"),
        "attack_success_rate_before": before.get("attack_success_rate"),
        "attack_success_rate_after": after.get("attack_success_rate"),
        "flagged_neurons": report.defense.get("flagged"),
        "gate_passed": report.gate.get("passed"),
    }
    return {METADATA_KEY_RUN: json.dumps(summary, sort_keys=True, default=str)}


def finalise(candidate: Path, out_path: Path, report) -> None:
    """Write the verified candidate to ``out_path`` with the run summary in its metadata."""
    import onnx

    from ulrl_edge.onnx_io.load import sha256_file
    from ulrl_edge.onnx_io.to_onnx import KEY_EXPORT, write_atomically

    proto = onnx.load(str(candidate))
    written_as = next((p.value for p in proto.metadata_props if p.key == KEY_EXPORT), "")
    for key, value in run_metadata(report).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    write_atomically(proto.SerializeToString(deterministic=True), out_path)
    report.output = {
        "path": str(out_path), "sha256": sha256_file(out_path), "written_as": written_as,
    }  # fmt: skip
