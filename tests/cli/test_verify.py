"""``ulrl-edge verify``: numbers equal to a plain computation, and clean failures."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from tests.fixtures.backdoor import cached_case

BADNETS = "badnets:size=3,pos=br"


def _uint8(x: np.ndarray) -> np.ndarray:
    return np.round(x * 255).astype(np.uint8)


def _write_sources(folder, images) -> tuple:
    """The same uint8 pixels as an .npz and as PNG class folders; returns (npz, dir, x01, y)."""
    pixels = _uint8(images.x)
    npz = folder / "test.npz"
    np.savez(npz, x=pixels, y=images.y)
    root = folder / "images"
    for i, (image, label) in enumerate(zip(pixels, images.y, strict=True)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
            root / str(label) / f"{i:04d}.png"
        )
    return npz, root, pixels.astype(np.float32) / 255, images.y


def _plain(path, x: np.ndarray, layout: str, mean=0.0, std=1.0) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    tensor = (x - mean) / std
    tensor = tensor if layout == "nhwc" else tensor.transpose(0, 3, 1, 2)
    return session.run(None, {"input": np.ascontiguousarray(tensor, np.float32)})[0].argmax(1)


def _expected(path, x, y, layout, **norm) -> tuple[float, float, int]:
    clean = _plain(path, x, layout, **norm)
    stamped = x[y != 0].copy()
    stamped[:, -3:, -3:, :] = 1.0
    attacked = _plain(path, stamped, layout, **norm)
    return float((clean == y).mean()), float((attacked == 0).mean()), len(stamped)


@pytest.mark.parametrize(
    ("channels", "layout"), [(1, "nchw"), (1, "nhwc"), (3, "nchw"), (3, "nhwc")]
)
def test_verify_matches_plain_onnxruntime(run_cli, tmp_path, channels, layout):
    case = cached_case(BADNETS, channels=channels, layout=layout)
    npz, folder, x, y = _write_sources(tmp_path, case.data["test"])
    acc, asr, n_trig = _expected(case.onnx_path, x, y, layout)
    assert asr >= 0.9
    outputs = []
    for source in (npz, folder):
        result = run_cli(
            [
                "verify",
                case.onnx_path,
                "--data",
                source,
                "--trigger",
                BADNETS,
                "--target",
                "0",
                "--json",
            ]
        )
        data = json.loads(result.stdout)
        assert data["accuracy"] == acc and data["attack_success_rate"] == asr
        assert data["n"] == len(y) and data["n_triggered"] == n_trig
        lo, hi = data["ci95"]["accuracy"]
        assert lo < acc < hi
        outputs.append({k: v for k, v in data.items() if k != "data"})
    assert outputs[0] == outputs[1]


def test_human_output_and_clean_model(run_cli, tmp_path):
    case = cached_case(None)
    npz, _, x, y = _write_sources(tmp_path, case.data["test"])
    acc, asr, n_trig = _expected(case.onnx_path, x, y, "nchw")
    result = run_cli(["verify", case.onnx_path, "-d", npz, "--trigger", BADNETS, "--target", "0"])
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"ACC  {acc:.4f}  ({round(acc * len(y))}/{len(y)} images, 95% CI")
    assert lines[1].startswith(f"ASR  {asr:.4f}  (") and f"/{n_trig} triggered images" in lines[1]
    assert asr < 0.1
    plain = run_cli(["verify", case.onnx_path, "-d", npz, "--json"])
    data = json.loads(plain.stdout)
    assert data["attack_success_rate"] is None and data["n_triggered"] == 0


def test_preprocessing_from_flags_file_and_metadata(run_cli, tmp_path):
    norm = {"mean": (0.5,), "std": (0.25,)}
    bare = cached_case(None, **norm)
    tagged = cached_case(None, metadata=True, **norm)
    npz, _, x, y = _write_sources(tmp_path, bare.data["test"])
    right = float((_plain(bare.onnx_path, x, "nchw", mean=0.5, std=0.25) == y).mean())
    wrong = float((_plain(bare.onnx_path, x, "nchw") == y).mean())
    assert right > 0.9 and wrong != right

    def accuracy(model, *extra) -> float:
        result = run_cli(["verify", model, "-d", npz, "--json", *extra])
        return json.loads(result.stdout)["accuracy"]

    spec_file = tmp_path / "pre.json"
    spec_file.write_text(json.dumps({"mean": [0.5], "std": [0.25]}))
    assert accuracy(bare.onnx_path) == wrong
    assert accuracy(bare.onnx_path, "--mean", "0.5", "--std", "0.25") == right
    assert accuracy(bare.onnx_path, "--preprocess", spec_file) == right
    assert accuracy(tagged.onnx_path) == right  # ulrl_edge.preprocess metadata
    assert accuracy(tagged.onnx_path, "--mean", "0", "--std", "1") == wrong  # flags win


def test_resize_with_size_flag(run_cli, tmp_path):
    case = cached_case(BADNETS)
    small = case.data["test"].x[:, ::2, ::2]  # 8×8: the wrong size for the 16×16 model
    npz = tmp_path / "small.npz"
    np.savez(npz, x=_uint8(small), y=case.data["test"].y)
    result = run_cli(["verify", case.onnx_path, "-d", npz, "--size", "16", "16", "--json"])
    assert json.loads(result.stdout)["accuracy"] > 0.5


def _bad_sources(tmp_path, case) -> dict:
    test = case.data["test"]
    empty = tmp_path / "empty"
    empty.mkdir()
    labels = tmp_path / "labels.npz"
    np.savez(labels, x=_uint8(test.x[:20]), y=np.arange(20))
    broken = tmp_path / "broken"
    (broken / "0").mkdir(parents=True)
    (broken / "0" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    small = tmp_path / "small.npz"
    np.savez(small, x=_uint8(test.x[:20, ::2, ::2]), y=test.y[:20])
    good = tmp_path / "good.npz"
    np.savez(good, x=_uint8(test.x[:20]), y=test.y[:20])
    return {"empty": empty, "labels": labels, "broken": broken, "small": small, "good": good}


@pytest.mark.parametrize(
    ("source", "extra", "message"),
    [
        ("empty", [], "no images found"),
        ("labels", [], "labels 10, 11, 12, 13, 14, 15, 16, 17, 18, 19 are outside"),
        ("broken", [], "a.png: cannot decode image"),
        ("small", [], "image is 8×8 but the model takes 16×16; pass --size 16 16"),
        ("good", ["--channels", "rgb"], "channels rgb (from --channels) contradicts"),
        ("good", ["--size", "32", "32"], "size 32×32 (from --size) contradicts"),
        ("good", ["--layout", "nhwc"], "layout nhwc (from --layout) contradicts"),
        (
            "good",
            ["--trigger", "badnets:size=3,where=br", "--target", "0"],
            "unknown parameter 'where'",
        ),
        ("good", ["--trigger", "rainbow", "--target", "0"], "unknown trigger 'rainbow'"),
        ("good", ["--trigger", BADNETS], "--trigger needs --target K"),
        ("missing", [], "no such file or folder"),
    ],
)
def test_bad_input_exits_3_with_one_line(run_cli, tmp_path, source, extra, message):
    case = cached_case(BADNETS)
    sources = _bad_sources(tmp_path, case)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    path = sources.get(source, tmp_path / "missing.npz")
    result = run_cli(["verify", case.onnx_path, "-d", path, "--json", *extra], expect_exit=3)
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 2 and errors[1].startswith("FAILED |"), result.stderr
    assert errors[0].startswith("error: ") and message in errors[0], errors[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_missing_gpu_runtime_exits_5(run_cli, tmp_path):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA provider present")
    case = cached_case(BADNETS)
    good = _bad_sources(tmp_path, case)["good"]
    result = run_cli(["verify", case.onnx_path, "-d", good, "--runtime", "ort-cuda"], expect_exit=5)
    assert "onnxruntime-gpu" in result.stderr
