"""Trigger specs, their effect on images, and the poisoning helpers."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ulrl_edge.data import ImageSet, make_trigger, parse_trigger, poison, triggered_test_set
from ulrl_edge.data.triggers import FAMILIES
from ulrl_edge.errors import BadInput


def _x(n: int = 4, size: int = 16, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size, c), dtype=np.float32)


def test_badnets_patch_position_and_colour():
    x = np.zeros((2, 16, 16, 3), np.float32)
    out = parse_trigger("badnets:size=3,pos=br").apply(x)
    assert out[:, 13:, 13:].min() == 1.0 and out[:, :13].max() == 0.0 and out[:, :, :13].max() == 0
    red = parse_trigger("badnets:size=2,pos=tl,margin=1,color=#FF0000")
    out = red.apply(x)
    np.testing.assert_array_equal(out[0, 1:3, 1:3], [[[1, 0, 0]] * 2] * 2)
    bgr = red.apply(x, channels="bgr")  # still red for a BGR model
    np.testing.assert_array_equal(bgr[0, 1, 1], [0, 0, 1])
    gray = red.apply(np.zeros((1, 16, 16, 1), np.float32), channels="gray")
    assert gray[0, 1, 1, 0] == pytest.approx(0.299)
    center = parse_trigger("badnets:size=4,pos=c").apply(np.zeros((1, 10, 10, 1), np.float32))
    assert center[0, 3:7, 3:7].min() == 1 and center.sum() == 16


def test_every_family_changes_images_deterministically(tmp_path):
    pattern = tmp_path / "p.png"
    Image.fromarray(np.full((5, 7, 3), 255, np.uint8)).save(pattern)
    mask = tmp_path / "m.png"
    m = np.zeros((16, 16), np.uint8)
    m[:4, :4] = 255
    Image.fromarray(m).save(mask)
    x = _x()
    specs = [
        "badnets",
        "badnets:color=random",
        "blend",
        f"blend:{pattern},alpha=0.5",
        "sig",
        "wanet",
        f"image:{pattern},mask={mask}",
    ]
    for spec in specs:
        trigger = parse_trigger(spec)
        out = trigger.apply(x)
        assert out.shape == x.shape and out.dtype == np.float32, spec
        assert out.min() >= 0.0 and out.max() <= 1.0, spec
        assert np.abs(out - x).max() > 0.05, spec
        np.testing.assert_array_equal(out, parse_trigger(trigger.to_spec()).apply(x))
    user = parse_trigger(f"image:{pattern},mask={mask},alpha=1").apply(x)
    np.testing.assert_allclose(user[:, :4, :4], 1.0)
    np.testing.assert_array_equal(user[:, 4:], x[:, 4:])
    half = parse_trigger(f"blend:img={pattern},alpha=0.5").apply(x)
    np.testing.assert_allclose(half, 0.5 * x + 0.5, atol=1e-6)


def test_triggers_pickle_and_copy():
    trigger = parse_trigger("wanet:seed=5")
    assert pickle.loads(pickle.dumps(trigger)) == trigger == copy.deepcopy(trigger)
    assert hash(trigger) == hash(parse_trigger(trigger.to_spec()))
    with pytest.raises(TypeError):
        trigger.params["seed"] = 6  # read-only


def test_seeds_change_random_triggers():
    x = _x()
    for family in ("blend", "wanet", "badnets:color=random,size=6"):
        a = parse_trigger(f"{family},seed=1" if ":" in family else f"{family}:seed=1").apply(x)
        b = parse_trigger(f"{family},seed=2" if ":" in family else f"{family}:seed=2").apply(x)
        assert not np.array_equal(a, b), family


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "empty trigger spec"),
        ("badnet", "unknown trigger 'badnet' \\(did you mean 'badnets'\\?\\)"),
        ("badnets:siz=3", "unknown parameter 'siz' \\(did you mean 'size'\\?\\)"),
        ("badnets:size=0", "size must be between 1 and 4096"),
        ("badnets:size=three", "size must be an integer"),
        ("badnets:pos=middle", "pos must be one of br|bl|tr|tl|c"),
        ("badnets:color=purpleish", "color must be"),
        ("blend:alpha=2", "alpha must be between 0 and 1"),
        ("blend:alpha", "'alpha' is not key=value"),
        ("sig:freq=6,freq=7", "'freq' is given twice"),
        ("sig:delta=", "'delta' has no value"),
        ("image:mask=m.png", "image needs img=FILE"),
        ("image:nothere.png,mask=m.png", "img file not found: nothere.png"),
        ("wanet:k=1", "k must be between 2 and 64"),
    ],
)
def test_bad_specs_say_why(spec, match):
    with pytest.raises(BadInput, match=match) as info:
        parse_trigger(spec)
    assert "\n" not in str(info.value)


def test_patch_that_does_not_fit():
    with pytest.raises(BadInput, match="does not fit 8×8 images"):
        parse_trigger("badnets:size=8,margin=1").apply(np.zeros((1, 8, 8, 1), np.float32))


_values = {
    "int": lambda p: st.integers(int(p.low), int(min(p.high, 10**6))),
    "float": lambda p: st.floats(p.low, p.high, allow_nan=False),
    "choice": lambda p: st.sampled_from(p.choices),
    "color": lambda p: st.sampled_from(["white", "random", "00ff7f", "#ABCDEF"]),
}


@st.composite
def _trigger_params(draw):
    name = draw(st.sampled_from(["badnets", "blend", "sig", "wanet"]))
    params = {
        key: draw(_values[p.kind](p))
        for key, p in FAMILIES[name].params.items()
        if p.kind != "path" and draw(st.booleans())
    }
    return name, params


@settings(max_examples=200)
@given(_trigger_params())
def test_spec_strings_round_trip(case):
    name, params = case
    items = [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()]
    spec = name + (":" + ",".join(items) if items else "")
    trigger = parse_trigger(spec)
    assert trigger == make_trigger(name, **params)
    assert parse_trigger(trigger.to_spec()) == trigger
    assert trigger.to_spec() == parse_trigger(trigger.to_spec()).to_spec()
    for key, value in params.items():
        expected = value.lower().removeprefix("#") if isinstance(value, str) else value
        assert trigger.params[key] == expected


@given(st.text(max_size=40))
def test_parser_never_crashes(text):
    try:
        trigger = parse_trigger(text)
    except BadInput as err:
        assert "\n" not in str(err)
    else:
        assert parse_trigger(trigger.to_spec()) == trigger


def _set(n_per_class: int = 20, k: int = 4) -> ImageSet:
    y = np.repeat(np.arange(k), n_per_class)
    return ImageSet(_x(len(y), 8, 1), y, tuple(str(i) for i in range(k)))


def test_poison_all2one():
    images = _set()
    trigger = parse_trigger("badnets:size=2")
    poisoned, mask = poison(images, trigger, target=1, rate=0.1, seed=0)
    assert mask.sum() == 8
    assert not np.any(images.y[mask] == 1)  # drawn from non-target images
    assert np.all(poisoned.y[mask] == 1) and np.array_equal(poisoned.y[~mask], images.y[~mask])
    np.testing.assert_array_equal(poisoned.x[mask], trigger.apply(images.x[mask]))
    np.testing.assert_array_equal(poisoned.x[~mask], images.x[~mask])
    again, mask2 = poison(images, trigger, target=1, rate=0.1, seed=0)
    np.testing.assert_array_equal(mask, mask2)
    assert not np.array_equal(mask, poison(images, trigger, 1, 0.1, seed=1)[1])


def test_poison_all2all_and_bad_arguments():
    images = _set()
    poisoned, mask = poison(images, parse_trigger("sig"), None, 0.5, mode="all2all")
    assert mask.sum() == 40
    np.testing.assert_array_equal(poisoned.y[mask], (images.y[mask] + 1) % 4)
    with pytest.raises(BadInput, match="target must be a class in 0..3"):
        poison(images, parse_trigger("sig"), 7, 0.1)
    with pytest.raises(BadInput, match="rate must be in"):
        poison(images, parse_trigger("sig"), 0, 1.5)
    with pytest.raises(BadInput, match="all2one or all2all"):
        poison(images, parse_trigger("sig"), 0, 0.1, mode="one2one")


def test_triggered_test_set():
    images = _set()
    trigger = parse_trigger("badnets:size=2")
    attacked = triggered_test_set(images, trigger, target=2)
    assert len(attacked) == 60 and np.all(attacked.y == 2)
    np.testing.assert_array_equal(attacked.x, trigger.apply(images.x[images.y != 2]))
    everyone = triggered_test_set(images, trigger, None, mode="all2all", num_classes=10)
    assert len(everyone) == 80
    np.testing.assert_array_equal(everyone.y, (images.y + 1) % 10)
