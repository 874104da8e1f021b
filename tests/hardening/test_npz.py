"""Broken .npz files through verify and purify: refused before any large allocation."""

from __future__ import annotations

import pytest

from tests.hardening import corpus
from tests.hardening.checks import TINY, run_refused


@pytest.mark.parametrize("case", corpus.NPZ_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("command", ["verify", "purify"])
def test_npz_refused(run_cli, tmp_path, case, command):
    model = corpus.good_model(tmp_path)
    data = case.build(tmp_path)
    if command == "verify":
        args = ["verify", model, "--data", data]
    else:
        args = ["purify", model, "-c", data, "-o", tmp_path / "out.onnx", *TINY]
    run_refused(run_cli, args, tmp_path, case.code, case.message)


def test_pickles_are_never_loaded(tmp_path, monkeypatch):
    """Loading the pickled case must not reach pickle at all."""
    import pickle

    from ulrl_edge.data import PreprocessSpec, load_images
    from ulrl_edge.errors import BadInput

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle.load was called")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    spec = PreprocessSpec(layout="nchw", size=(8, 8), channels="gray")
    for build in (corpus.npz_pickled, corpus.npz_not_zip):
        with pytest.raises(BadInput):
            load_images(build(tmp_path), spec)
