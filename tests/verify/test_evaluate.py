"""ACC and ASR of real backdoored ONNX models, checked against a plain computation."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from ulrl_edge.data import ImageSet, parse_trigger
from ulrl_edge.errors import BadInput
from ulrl_edge.verify import evaluate

BADNETS = "badnets:size=3,pos=br"


def _plain_argmax(path, x_nhwc: np.ndarray, layout: str) -> np.ndarray:
    """Independent of ulrl_edge: onnxruntime on the raw tensor, numpy argmax."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    tensor = x_nhwc if layout == "nhwc" else x_nhwc.transpose(0, 3, 1, 2)
    return session.run(None, {"input": np.ascontiguousarray(tensor)})[0].argmax(1)


def _stamp(x: np.ndarray) -> np.ndarray:
    out = x.copy()
    out[:, -3:, -3:, :] = 1.0  # a white 3×3 patch in the bottom-right corner
    return out


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_backdoored_model_matches_plain_computation(backdoor_models, layout):
    case = backdoor_models(BADNETS, layout=layout)
    test = case.data["test"]
    metrics = evaluate(
        case.onnx_path,
        test,
        case.data["spec"],
        trigger=parse_trigger(BADNETS),
        target=0,
        batch_size=50,
    )
    clean = _plain_argmax(case.onnx_path, test.x, layout)
    others = test.y != 0
    attacked = _plain_argmax(case.onnx_path, _stamp(test.x[others]), layout)
    assert metrics.n == len(test) and metrics.n_triggered == int(others.sum())
    assert metrics.n_correct == int((clean == test.y).sum())
    assert metrics.accuracy == (clean == test.y).mean()
    assert metrics.attack_success_rate == (attacked == 0).mean()
    assert metrics.accuracy > 0.9 and metrics.attack_success_rate >= 0.9
    expected = np.zeros((10, 10), int)
    np.add.at(expected, (test.y, clean), 1)
    assert metrics.confusion == expected.tolist()


def test_layouts_give_the_same_numbers(backdoor_models):
    results = []
    for layout in ("nchw", "nhwc"):
        case = backdoor_models("blend:alpha=0.2", layout=layout)
        metrics = evaluate(
            case.onnx_path,
            case.data["test"],
            case.data["spec"],
            trigger=case.data["trigger"],
            target=0,
        )
        results.append(metrics.to_dict())
    assert results[0] == results[1]
    assert results[0]["attack_success_rate"] >= 0.9


def test_clean_model_has_low_asr(backdoor_models):
    case = backdoor_models(None)
    for spec in (BADNETS, "blend:alpha=0.2"):
        metrics = evaluate(
            case.onnx_path,
            case.data["test"],
            case.data["spec"],
            trigger=parse_trigger(spec),
            target=0,
        )
        assert metrics.accuracy > 0.9 and metrics.attack_success_rate < 0.1, spec


def test_rgb_model_and_all2all(backdoor_models):
    case = backdoor_models(BADNETS, channels=3)
    test = case.data["test"]
    metrics = evaluate(
        case.onnx_path, test, case.data["spec"], trigger=parse_trigger(BADNETS), target=0
    )
    assert metrics.accuracy > 0.85 and metrics.attack_success_rate >= 0.9
    all2all = evaluate(
        case.onnx_path, test, case.data["spec"], trigger=parse_trigger(BADNETS), mode="all2all"
    )
    attacked = _plain_argmax(case.onnx_path, _stamp(test.x), "nchw")
    assert all2all.n_triggered == len(test)
    assert all2all.attack_success_rate == (attacked == (test.y + 1) % 10).mean()


def test_progress_events_and_bad_inputs(backdoor_models):
    case = backdoor_models(BADNETS)
    test = case.data["test"].subset(np.arange(100))
    events = []
    evaluate(
        case.onnx_path,
        test,
        case.data["spec"],
        trigger=parse_trigger(BADNETS),
        target=0,
        batch_size=32,
        progress=events.append,
    )
    done = [e["done"] for e in events]
    total = 100 + int((test.y != 0).sum())
    assert done == sorted(done) and done[-1] == events[-1]["total"] == total
    assert {e["phase"] for e in events} == {"verify"}

    wrong = ImageSet(test.x, test.y + 5, source=case.onnx_path.parent)
    with pytest.raises(BadInput, match=r"labels 10, 11, 12, 13, 14 are outside the model's 10"):
        evaluate(case.onnx_path, wrong, case.data["spec"])
    with pytest.raises(BadInput, match="needs the attack's target class"):
        evaluate(case.onnx_path, test, case.data["spec"], trigger=parse_trigger(BADNETS))
    zeros = test.subset(np.flatnonzero(test.y == 0))
    with pytest.raises(BadInput, match="every image is of the target class 0"):
        evaluate(case.onnx_path, zeros, case.data["spec"], trigger=parse_trigger(BADNETS), target=0)
    with pytest.raises(BadInput, match="images have 1 channel"):
        evaluate(case.onnx_path, test, case.data["spec"].updated(channels="rgb"))
