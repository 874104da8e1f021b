"""Property tests the existing suites lack: spec files and flags, resolved specs, structured
trigger specs, MAD permutation and constants. (Round trips and the never-crash text fuzz of
the trigger parser live in tests/data and tests/defenses.)"""

from __future__ import annotations

import math

import typer
from hypothesis import given, settings
from hypothesis import strategies as st

from ulrl_edge.data import PreprocessSpec, parse_trigger
from ulrl_edge.data.preprocess import SPEC_FIELDS, parse_spec_fields
from ulrl_edge.data.spec import read_spec_file, resolve_spec
from ulrl_edge.data.triggers import FAMILIES
from ulrl_edge.defenses.mad import mad_outliers
from ulrl_edge.errors import BadInput, UnsupportedModel

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(SPEC_FIELDS), json_values, max_size=4))
def test_spec_fields_are_normalised_or_refused_in_one_line(data):
    try:
        fields = parse_spec_fields(data, source="spec.json")
    except BadInput as err:
        assert "\n" not in str(err) and str(err).startswith("spec.json: ")
        return
    assert set(fields) <= set(data)
    for key in ("mean", "std"):
        if key in fields:
            assert len(fields[key]) in (1, 3) and all(math.isfinite(v) for v in fields[key])
    if "size" in fields:
        assert all(isinstance(v, int) and v > 0 for v in fields["size"])


@settings(max_examples=100)
@given(st.binary(max_size=200))
def test_spec_files_of_any_bytes_never_crash(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("spec") / "spec.json"
    path.write_bytes(content)
    try:
        read_spec_file(path)
    except BadInput as err:
        assert "\n" not in str(err)


@settings(max_examples=200)
@given(st.text(alphabet="0123456789.,-e +naif", max_size=20))
def test_mean_std_flags_give_one_or_three_finite_or_refuse(text):
    from ulrl_edge.cli.options import _numbers

    try:
        normalised = _numbers(text)
    except typer.BadParameter:
        return
    values = [float(v) for v in normalised.split(",")]
    assert len(values) in (1, 3)
    assert _numbers(normalised) == normalised  # idempotent


dims = st.one_of(st.integers(-2, 300), st.sampled_from(["batch", "h", "w", ""]), st.none())


@settings(max_examples=200)
@given(st.lists(dims, max_size=6))
def test_resolve_spec_answers_any_input_shape(shape):
    try:
        spec = resolve_spec(shape, {})
    except (BadInput, UnsupportedModel) as err:
        assert "\n" not in str(err)
        return
    assert isinstance(spec, PreprocessSpec)
    assert spec.layout in ("nchw", "nhwc") and all(s > 0 for s in spec.size)


@st.composite
def structured_trigger_specs(draw):
    """A real family with real or misspelt keys and arbitrary values (no files)."""
    name = draw(st.sampled_from(["badnets", "sig", "wanet", "blend"]))
    keys = [k for k, p in FAMILIES[name].params.items() if p.kind != "path"]
    items = draw(
        st.lists(
            st.tuples(
                st.sampled_from([*keys, "x", keys[0].upper()]),
                st.text(alphabet="0123456789.-+eEabcdefinf#", max_size=8),
            ),
            max_size=4,
        )
    )
    return name + (":" + ",".join(f"{k}={v}" for k, v in items) if items else "")


@settings(max_examples=300)
@given(structured_trigger_specs())
def test_structured_trigger_specs_parse_or_say_why(spec):
    try:
        trigger = parse_trigger(spec)
    except BadInput as err:
        assert "\n" not in str(err) and repr(spec) in str(err)
        return
    assert parse_trigger(trigger.to_spec()) == trigger
    for key, value in trigger.params.items():
        param = FAMILIES[trigger.name].params[key]
        if param.kind in ("int", "float") and value is not None:
            assert param.low <= value <= param.high


scores = st.lists(st.floats(0.0, 1e3, allow_nan=False), min_size=3, max_size=20)


@settings(max_examples=150)
@given(scores, st.randoms(use_true_random=False))
def test_mad_flags_follow_a_permutation(values, rnd):
    order = list(range(len(values)))
    rnd.shuffle(order)
    base = mad_outliers(values, max_flagged=None)
    permuted = mad_outliers([values[i] for i in order], max_flagged=None)
    assert {order[k] for k in permuted.flagged} == set(base.flagged)


@given(st.floats(-1e6, 1e6, allow_nan=False), st.integers(2, 50))
def test_mad_constant_scores_never_flag(value, n):
    result = mad_outliers([value] * n, max_flagged=None)
    assert result.mad == 0.0 and result.flagged == ()
