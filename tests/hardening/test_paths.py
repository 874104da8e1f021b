"""Output paths that must be refused, unusable input paths, specs that do not parse."""

from __future__ import annotations

import os

import pytest

from tests.hardening import corpus
from tests.hardening.checks import TINY, run_refused


@pytest.fixture
def inputs(tmp_path):
    return tmp_path, corpus.good_model(tmp_path), corpus.good_npz(tmp_path, n=100)


def _outputs(folder, model, data):
    """name → (output path, message): every output path purify and roundtrip must refuse."""
    os.symlink(model, folder / "alias.onnx")
    (folder / "sub").mkdir()
    return {
        "same_as_input": (model, r"output path is the input model; refusing to write over it"),
        "symlink_to_input": (folder / "alias.onnx", r"alias\.onnx: output path is the input"),
        "missing_folder": (folder / "nope" / "o.onnx", r"output folder '.*nope' does not exist"),
        "is_a_folder": (folder / "sub", r"output path is a folder"),
        "parent_is_a_file": (data / "o.onnx", r"data\.npz' is a file, not an output folder"),
    }


@pytest.mark.parametrize(
    "name",
    ["same_as_input", "symlink_to_input", "missing_folder", "is_a_folder", "parent_is_a_file"],
)
@pytest.mark.parametrize("command", ["purify", "roundtrip"])
def test_output_path_refused(run_cli, inputs, name, command):
    folder, model, data = inputs
    out, message = _outputs(folder, model, data)[name]
    if command == "purify":
        args = ["purify", model, "-c", data, "-o", out, *TINY]
    else:
        args = ["roundtrip", model, "-o", out]
    run_refused(run_cli, args, folder, 3, message)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_output_folder(run_cli, inputs):
    folder, model, data = inputs
    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        run_refused(
            run_cli,
            ["purify", model, "-c", data, "-o", locked / "o.onnx", *TINY],
            folder,
            3,
            r"output folder '.*locked' is not writable",
        )
    finally:
        locked.chmod(0o700)


def test_report_path_that_is_a_file(run_cli, inputs):
    folder, model, data = inputs
    run_refused(
        run_cli,
        ["purify", model, "-c", data, "-o", folder / "o.onnx", "--report", data, *TINY],
        folder,
        3,
        r"data\.npz: report path is a file",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify", "{folder}/missing.onnx", "--data", "{data}"], r"missing\.onnx: no such file"),
        (["verify", "{folder}", "--data", "{data}"], r"not a file \(expected an \.onnx"),
        (["verify", "{model}", "--data", "{folder}/missing.npz"], r"no such file or folder"),
        (["verify", "{model}", "--data", "{model}"], r"model\.onnx: not a folder or an \.npz"),
        (["inspect", "{folder}/missing.onnx"], r"missing\.onnx: no such file"),
    ],
    ids=["missing_model", "model_is_folder", "missing_data", "data_is_onnx", "inspect_missing"],
)
def test_unusable_input_paths(run_cli, inputs, args, message):
    folder, model, data = inputs
    argv = [a.format(folder=folder, model=model, data=data) for a in args]
    run_refused(run_cli, argv, folder, 3, message)


@pytest.mark.parametrize(("spec", "message"), corpus.BAD_TRIGGERS, ids=lambda v: repr(v))
@pytest.mark.parametrize("command", ["verify", "purify"])
def test_trigger_spec_refused(run_cli, inputs, spec, message, command):
    folder, model, data = inputs
    if command == "verify":
        args = ["verify", model, "--data", data]
    else:
        args = ["purify", model, "-c", data, "-o", folder / "o.onnx", *TINY]
    run_refused(run_cli, [*args, "--trigger", spec, "--target", "0"], folder, 3, message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"pre\.json: preprocessing file is not valid JSON"),
        ('{"layot": "nchw"}', r"unknown preprocessing key 'layot' \(did you mean 'layout'\?\)"),
        ('{"mean": [0.1, 0.2]}', r"preprocessing 'mean' needs 1 or 3 numbers, got 2"),
        ('{"size": [8, -8]}', r"preprocessing 'size' must be \[height, width\]"),
        ("[1, 2, 3]", r"must be a JSON object"),
        ("\udcff", r"not valid JSON"),
    ],
    ids=["not_json", "unknown_key", "mean_count", "negative_size", "not_object", "not_utf8"],
)
def test_preprocessing_file_refused(run_cli, inputs, text, message):
    folder, model, data = inputs
    spec = folder / "pre.json"
    spec.write_bytes(text.encode("utf-8", "surrogateescape"))
    run_refused(
        run_cli, ["verify", model, "--data", data, "--preprocess", spec], folder, 3, message
    )
