"""dilated.geometry against the real thing: torch.nn output lengths and Keras 3 output shapes."""

import math
import subprocess
import sys

import keras
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from dilated.geometry import (
    Layer,
    causal_stack,
    dependencies,
    output_length,
    padding_amounts,
    receptive_field,
    stack_geometry,
)

kernels = st.integers(1, 7)
lengths = st.integers(1, 40)


def test_geometry_module_needs_no_torch():
    """geometry.py loads on its own (e.g. vendored into a Keras-only project) without importing torch."""
    import dilated.geometry

    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('geometry', {dilated.geometry.__file__!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['geometry'] = module\n"
        "spec.loader.exec_module(module)\n"
        "assert module.receptive_field(module.causal_stack(2, [1, 2, 4])) == 8\n"
        "assert 'torch' not in sys.modules, 'geometry imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@given(kernels, st.integers(1, 4), st.integers(1, 4), st.integers(0, 4), lengths)
def test_conv_length_matches_torch(k, s, d, p, length):
    layer = Layer(k, s, d, p, semantics="torch")
    conv = nn.Conv1d(1, 1, k, stride=s, dilation=d, padding=p)
    try:
        expected = conv(torch.zeros(1, 1, length)).shape[-1]
    except RuntimeError:
        with pytest.raises(ValueError, match="needs at least"):
            output_length(layer, length)
        return
    assert output_length(layer, length) == expected


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")  # torch's own note on its copy
@given(kernels, st.integers(1, 4), lengths)
def test_torch_same_padding_matches_torch(k, d, length):
    conv = nn.Conv1d(1, 1, k, dilation=d, padding="same")
    layer = Layer(k, 1, d, "same", semantics="torch")
    assert output_length(layer, length) == conv(torch.zeros(1, 1, length)).shape[-1] == length
    total = d * (k - 1)
    assert padding_amounts(layer, length) == (total // 2, total - total // 2)  # torch: extra step on the right


@given(kernels, st.integers(1, 4), st.data(), lengths, st.booleans(), st.sampled_from(["max", "avg"]))
def test_pool_length_matches_torch(k, s, data, length, ceil_mode, kind):
    p = data.draw(st.integers(0, k // 2))
    pool = (nn.MaxPool1d if kind == "max" else nn.AvgPool1d)(k, s, p, ceil_mode=ceil_mode)
    layer = Layer(k, s, 1, p, f"{kind}pool", semantics="torch", ceil_mode=ceil_mode)
    try:
        expected = pool(torch.zeros(1, 1, length)).shape[-1]
    except RuntimeError:
        with pytest.raises(ValueError):
            output_length(layer, length)
        return
    assert output_length(layer, length) == expected


def _keras_length(layer, length: int) -> int | None:
    """Keras's output length, or None where Keras finds the input too short."""
    try:
        out = layer.compute_output_shape((None, length, 1))[1]
    except ValueError:
        return None
    return out if out and out > 0 else None


@given(kernels, st.integers(1, 4), st.integers(1, 4), st.sampled_from(["causal", "same", "valid"]), lengths)
def test_conv_length_matches_keras(k, s, d, padding, length):
    if s > 1 and d > 1:
        with pytest.raises(ValueError, match="Keras refuses"):
            Layer(k, s, d, padding)
        with pytest.raises(ValueError):
            keras.layers.Conv1D(1, k, strides=s, dilation_rate=d, padding=padding)
        return
    layer = Layer(k, s, d, padding)
    expected = _keras_length(keras.layers.Conv1D(1, k, strides=s, dilation_rate=d, padding=padding), length)
    if expected is None:
        with pytest.raises(ValueError, match="needs at least"):
            output_length(layer, length)
    else:
        assert output_length(layer, length) == expected


@given(kernels, st.integers(1, 4), st.sampled_from(["same", "valid"]), lengths, st.sampled_from(["max", "avg"]))
def test_pool_length_matches_keras(k, s, padding, length, kind):
    cls = keras.layers.MaxPooling1D if kind == "max" else keras.layers.AveragePooling1D
    expected = _keras_length(cls(k, strides=s, padding=padding), length)
    layer = Layer(k, s, 1, padding, f"{kind}pool")
    if expected is None:
        with pytest.raises(ValueError):
            output_length(layer, length)
    else:
        assert output_length(layer, length) == expected


@pytest.mark.parametrize(
    "length,k,s,expected",
    [(10, 4, 2, (1, 1)), (11, 4, 2, (1, 2)), (10, 2, 1, (0, 1)), (9, 3, 3, (0, 0)), (8, 5, 3, (1, 2))],
)
def test_same_padding_puts_the_extra_step_on_the_right(length, k, s, expected):
    out = math.ceil(length / s)
    assert padding_amounts(Layer(k, s, 1, "same"), length) == expected
    assert sum(expected) == max(0, (out - 1) * s + k - length)


def test_causal_padding_is_all_left():
    assert padding_amounts(Layer(5, 1, 4, "causal"), 200) == (16, 0)
    assert padding_amounts(Layer(5, 2, 1, "causal"), 200) == (4, 0)


def test_seed_models():
    dilated = [Layer(5, 1, 2, "causal", name="c1"), Layer(5, 1, 4, "causal", name="c2"), Layer(1, name="dense")]
    rows = stack_geometry(dilated, 200)
    assert [r.output_length for r in rows] == [200, 200, 200]
    assert [r.receptive_field for r in rows] == [9, 25, 25]
    assert [r.jump for r in rows] == [1, 1, 1]
    assert rows[-1].start == -24  # causal: the first output sees 24 padded steps and input 0
    strided = [Layer(5, 2, 1, "causal"), Layer(5, 4, 1, "causal"), Layer(1)]
    rows = stack_geometry(strided, 200)
    assert [r.output_length for r in rows] == [100, 25, 25]
    assert [r.receptive_field for r in rows] == [5, 13, 13]
    assert [r.jump for r in rows] == [2, 8, 8]


def test_wavenet_receptive_field():
    stack = causal_stack(2, [2**i for i in range(10)] * 3)
    assert receptive_field(stack) == 1 + 3 * 1023


@given(
    st.lists(
        st.tuples(kernels, st.integers(1, 3), st.integers(1, 3), st.sampled_from(["causal", "same", "valid"])),
        min_size=1,
        max_size=4,
    ),
    st.integers(20, 60),
)
@example([(1, 2, 1, "causal"), (1, 2, 1, "causal"), (1, 3, 1, "causal"), (2, 1, 3, "same")], 20)
def test_field_span_matches_exact_dependencies(specs, length):
    layers = [Layer(k, s if d == 1 else 1, d, p, name=f"l{i}") for i, (k, s, d, p) in enumerate(specs)]
    try:
        rows = stack_geometry(layers, length)
    except ValueError:
        return
    last = rows[-1]
    for t in {0, last.output_length - 1}:
        deps = dependencies(layers, length, t)[0]
        first, final = last.field(t)
        if deps:  # none: the output's taps all fall on padding ('same' with a dilation wider than the input)
            assert first <= min(deps) and max(deps) <= final
        else:
            assert first < 0 or final >= length, "an output that reads no input has a field reaching the padding"
        assert final - first + 1 == last.receptive_field


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(kernel_size=0), "kernel_size must be >= 1"),
        (dict(kernel_size=3, stride=2, dilation=2), "set one of them to 1"),
        (dict(kernel_size=3, padding="causal", kind="maxpool"), "padding 'causal' is not supported"),
        (dict(kernel_size=3, padding="full"), "use one of valid, same, causal"),
        (dict(kernel_size=3, padding=-1), "padding must be"),
        (dict(kernel_size=3, stride=2, padding="same", semantics="torch"), "torch refuses padding='same'"),
    ],
)
def test_invalid_layers_name_the_layer_and_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        Layer(name="block3.conv", **kwargs)
    assert "block3.conv" in str(error.value)


def test_too_short_input_names_the_layer():
    layers = [Layer(3, name="first", padding="valid"), Layer(9, dilation=2, padding="valid", name="second")]
    with pytest.raises(ValueError, match="'second'.*needs at least 17 input steps, got 8"):
        stack_geometry(layers, 10)
