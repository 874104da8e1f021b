"""Broken image folders through verify and purify; unusual but valid images decode right."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.hardening import corpus
from tests.hardening.checks import TINY, run_refused


@pytest.mark.parametrize("case", corpus.IMAGE_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("command", ["verify", "purify"])
def test_image_folder_refused(run_cli, tmp_path, case, command):
    model = corpus.good_model(tmp_path)
    data = case.build(tmp_path)
    if command == "verify":
        args = ["verify", model, "--data", data]
    else:
        args = ["purify", model, "-c", data, "-o", tmp_path / "out.onnx", *TINY]
    run_refused(run_cli, args, tmp_path, case.code, case.message)


def test_single_class_is_refused_by_purify(run_cli, tmp_path):
    model = corpus.good_model(tmp_path)
    x, _ = corpus.good_arrays(100)
    np.savez(tmp_path / "one.npz", x=x, y=np.full(len(x), 3))
    run_refused(
        run_cli,
        ["purify", model, "-c", tmp_path / "one.npz", "-o", tmp_path / "o.onnx", *TINY],
        tmp_path,
        3,
        r"one\.npz: every clean sample is of class 3; purifying needs .* classes",
    )
    # Measuring one class is legitimate.
    run_cli(["verify", model, "--data", tmp_path / "one.npz", "--json"], expect_exit=0)


def test_fewer_samples_than_classes_is_refused(run_cli, tmp_path):
    model = corpus.good_model(tmp_path)
    x, y = corpus.good_arrays(6)
    np.savez(tmp_path / "few.npz", x=x, y=y)
    run_refused(
        run_cli,
        ["purify", model, "-c", tmp_path / "few.npz", "-o", tmp_path / "o.onnx", *TINY],
        tmp_path,
        3,
        r"few\.npz: class 0 has 1 image\(s\).*give that class 8 or more images",
    )


def test_sixteen_bit_png_reads_like_eight_bit(run_cli, tmp_path):
    model = corpus.good_model(tmp_path)
    wide, narrow = corpus.gray16_folder(tmp_path)
    got = [
        json.loads(run_cli(["verify", model, "--data", d, "--json"]).stdout) for d in (wide, narrow)
    ]
    assert got[0]["n"] == got[1]["n"] == 20
    assert got[0]["accuracy"] == got[1]["accuracy"]
    assert got[0]["confusion"] == got[1]["confusion"]


def test_cmyk_jpeg_is_converted(run_cli, tmp_path):
    model = corpus.good_model(tmp_path)
    result = run_cli(["verify", model, "--data", corpus.cmyk_folder(tmp_path), "--json"])
    assert json.loads(result.stdout)["n"] == corpus.NUM_CLASSES
