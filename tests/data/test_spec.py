"""Resolving the preprocessing spec from the model, its metadata, a file and flags."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ulrl_edge.data import METADATA_KEY, PreprocessSpec, resolve_spec
from ulrl_edge.errors import BadInput, UnsupportedModel


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (("batch", 3, 224, 224), ("nchw", (224, 224), "rgb")),
        ((1, 1, 28, 28), ("nchw", (28, 28), "gray")),
        (("N", 32, 32, 3), ("nhwc", (32, 32), "rgb")),
        ((None, 16, 16, 1), ("nhwc", (16, 16), "gray")),
        ((1, "c", 20, 20), ("nchw", (20, 20), "rgb")),
    ],
)
def test_guessed_from_the_shape(shape, expected):
    spec = resolve_spec(shape, {})
    assert (spec.layout, spec.size, spec.channels) == expected
    assert (spec.scale, spec.mean, spec.std) == (1.0, (0.0,), (1.0,))


def test_layers_metadata_then_file_then_flags(tmp_path):
    meta = {METADATA_KEY: json.dumps({"mean": [0.5], "std": [0.5], "channels": "bgr"})}
    spec = resolve_spec((1, 3, 8, 8), meta)
    assert (spec.mean, spec.std, spec.channels) == ((0.5,), (0.5,), "bgr")
    file = tmp_path / "pre.json"
    file.write_text(json.dumps({"scale": 255, "mean": [1, 2, 3]}))
    spec = resolve_spec((1, 3, 8, 8), meta, file=file)
    assert (spec.scale, spec.mean, spec.std) == (255.0, (1.0, 2.0, 3.0), (0.5,))
    assert spec.channels == "bgr"
    spec = resolve_spec((1, 3, 8, 8), meta, file=file, overrides={"mean": (0.1,), "scale": None})
    assert (spec.scale, spec.mean) == (255.0, (0.1,))


def test_dynamic_size_needs_a_size():
    with pytest.raises(BadInput, match="dynamic height or width; pass --size H W"):
        resolve_spec(("n", 3, "h", "w"), {})
    spec = resolve_spec(("n", 3, "h", "w"), {}, overrides={"size": (40, 30)})
    assert spec.size == (40, 30)


@pytest.mark.parametrize(
    ("shape", "overrides", "match"),
    [
        ((1, 3, 16, 16), {"size": (32, 32)}, r"size 32×32 \(from --size\) contradicts .* 16×16"),
        ((1, 1, 16, 16), {"channels": "rgb"}, r"channels rgb \(from --channels\).*1 channel"),
        ((1, 3, 16, 16), {"channels": "gray"}, r"channels gray .* 3 channels"),
        ((1, 3, 16, 16), {"layout": "nhwc"}, r"layout nhwc .* 16 channels"),
        ((1, 3, 16, 16), {"mean": (1.0, 2.0)}, "needs 1 or 3 numbers"),
        ((1, 1, 16, 16), {"mean": (1.0, 2.0, 3.0)}, "has 3 values but the model takes 1"),
        ((1, 3, 16, 16), {"std": (0.0,)}, "'std' must be positive"),
    ],
)
def test_contradictions_are_bad_input(tmp_path, shape, overrides, match):
    model = tmp_path / "m.onnx"
    with pytest.raises(BadInput, match=match) as info:
        resolve_spec(shape, {}, overrides=overrides, model=model)
    assert "\n" not in str(info.value)


def test_file_and_metadata_errors_name_their_source(tmp_path):
    file = tmp_path / "pre.json"
    file.write_text('{"mena": [0.5]}')
    with pytest.raises(BadInput, match=r"pre.json: unknown preprocessing key 'mena' \(did you"):
        resolve_spec((1, 3, 8, 8), {}, file=file)
    file.write_text("{not json")
    with pytest.raises(BadInput, match="pre.json: preprocessing file is not valid JSON"):
        resolve_spec((1, 3, 8, 8), {}, file=file)
    with pytest.raises(BadInput, match="preprocessing file not found"):
        resolve_spec((1, 3, 8, 8), {}, file=tmp_path / "absent.json")
    with pytest.raises(BadInput, match=f"metadata '{METADATA_KEY}'"):
        resolve_spec((1, 3, 8, 8), {METADATA_KEY: '{"layout": "chw"}'})
    file.write_text('{"size": [32, 32]}')
    with pytest.raises(BadInput, match=r"from .*pre.json\) contradicts"):
        resolve_spec((1, 3, 8, 8), {}, file=file)


def test_not_an_image_model():
    with pytest.raises(UnsupportedModel, match="expected an image tensor"):
        resolve_spec((1, 784), {})
    with pytest.raises(UnsupportedModel, match="has 4 channels"):
        resolve_spec((1, 4, 16, 16), {}, overrides={"layout": None})


_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
_specs = st.builds(
    PreprocessSpec,
    layout=st.sampled_from(["nchw", "nhwc"]),
    size=st.none() | st.tuples(st.integers(1, 4096), st.integers(1, 4096)),
    channels=st.sampled_from(["rgb", "bgr", "gray"]),
    scale=st.floats(min_value=1e-6, max_value=1e6),
    mean=st.lists(_floats, min_size=1, max_size=1).map(tuple),
    std=st.lists(st.floats(min_value=1e-6, max_value=1e6), min_size=1, max_size=1).map(tuple),
)


@given(_specs)
def test_spec_json_round_trip(spec):
    assert PreprocessSpec.from_json(spec.to_json()) == spec


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=5), max_size=3))
def test_from_dict_accepts_or_says_why(data):
    try:
        spec = PreprocessSpec.from_dict(data)
    except BadInput as err:
        assert "\n" not in str(err)
    else:
        assert spec.layout in ("nchw", "nhwc")
