"""dilated.layers: numerical parity with Keras 3 Conv1D (torch backend) on random layers and stacks."""

import keras
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dilated.keras_bridge._convert import from_keras
from dilated.layers import AvgPool1d, Conv1d, Dense, MaxPool1d, channels_first

paddings = st.sampled_from(["causal", "same", "valid"])


def keras_output(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x).detach().cpu())


def dilated_output(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(channels_first(torch.from_numpy(x))).transpose(1, 2).numpy()


@settings(max_examples=40)
@given(
    st.integers(1, 6),
    st.integers(1, 3),
    st.integers(1, 4),
    paddings,
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(6, 30),
    st.sampled_from([1, 2]),
)
def test_conv1d_equals_keras_conv1d(k, s, d, padding, c_in, c_out, length, groups):
    if s > 1:
        d = 1
    c_in, c_out = c_in * groups, c_out * groups
    layer = keras.layers.Conv1D(c_out, k, strides=s, dilation_rate=d, padding=padding, groups=groups)
    x = np.random.default_rng(k * 100 + length).standard_normal((2, length, c_in)).astype("float32")
    if padding == "valid" and length < d * (k - 1) + 1:
        with pytest.raises(ValueError, match="needs at least"):
            Conv1d(c_in, c_out, k, s, d, padding, groups)(channels_first(torch.from_numpy(x)))
        return
    expected = keras_output(layer, x)
    kernel, bias = (np.asarray(w) for w in layer.get_weights())
    conv = Conv1d(c_in, c_out, k, stride=s, dilation=d, padding=padding, groups=groups)
    assert conv.weight.shape == (c_out, c_in // groups, k)
    with torch.no_grad():  # Keras kernel (k, in/groups, out) -> torch (out, in/groups, k)
        conv.weight.copy_(torch.from_numpy(kernel).permute(2, 1, 0))
        conv.bias.copy_(torch.from_numpy(bias))
    actual = dilated_output(conv, x)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=1e-5)


@settings(max_examples=15)
@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.integers(1, 2), st.integers(1, 8), paddings, st.integers(1, 4)),
        min_size=1,
        max_size=4,
    ),
    st.integers(40, 80),
)
def test_random_keras_stacks_convert_exactly(specs, length):
    layers = [keras.Input((length, 3))]
    for k, s, d, padding, channels in specs:
        layers.append(
            keras.layers.Conv1D(
                channels, k, strides=s, dilation_rate=1 if s > 1 else d, padding=padding, activation="relu"
            )
        )
    layers.append(keras.layers.Dense(2))
    try:
        model = keras.Sequential(layers)
    except ValueError:  # Keras finds the input too short for a valid stack
        return
    x = np.random.default_rng(length).standard_normal((2, length, 3)).astype("float32")
    np.testing.assert_allclose(dilated_output(from_keras(model), x), keras_output(model, x), atol=1e-5)


@pytest.mark.parametrize(
    "pool,keras_pool", [(MaxPool1d, keras.layers.MaxPooling1D), (AvgPool1d, keras.layers.AveragePooling1D)]
)
@pytest.mark.parametrize(
    "k,s,padding,length",
    [
        (2, 2, "valid", 9),
        (3, 1, "same", 9),
        (3, 2, "same", 9),
        (2, 1, "same", 10),
        (4, 3, "valid", 13),
        (5, 5, "same", 12),
    ],
)
def test_pooling_equals_keras(pool, keras_pool, k, s, padding, length):
    x = np.random.default_rng(length).standard_normal((2, length, 3)).astype("float32")
    expected = keras_output(keras_pool(k, strides=s, padding=padding), x)
    actual = dilated_output(pool(k, s, padding), x)
    assert actual.shape == expected.shape
    total_pad = sum(pool(k, s, padding).padding_for(length))
    if pool is AvgPool1d and total_pad % 2:
        # Keras's torch backend pads uneven "same" average pooling by repeating the edge; TF/JAX and dilated
        # average over the real steps only. The windows away from both edges agree.
        actual, expected = actual[:, 1:-1], expected[:, 1:-1]
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_causal_conv_output_never_sees_the_future():
    conv = Conv1d(2, 3, kernel_size=3, dilation=4)
    x = torch.randn(1, 2, 50)
    y = conv(x)
    x2 = x.clone()
    x2[..., 30:] = torch.randn(1, 2, 20)
    assert torch.equal(conv(x2)[..., :30], y[..., :30])
    assert not torch.equal(conv(x2)[..., 30:], y[..., 30:])


def test_dense_is_a_per_step_linear_layer():
    dense = Dense(4, 3)
    x = torch.randn(2, 4, 7)
    linear = nn.Linear(4, 3)
    linear.weight.data = dense.weight[..., 0]
    linear.bias.data = dense.bias
    torch.testing.assert_close(dense(x), linear(x.transpose(1, 2)).transpose(1, 2))


def test_initialisation_matches_torch_conv1d():
    torch.manual_seed(0)
    ours = Conv1d(3, 4, 5)
    torch.manual_seed(0)
    theirs = nn.Conv1d(3, 4, 5)
    torch.testing.assert_close(ours.weight, theirs.weight)
    torch.testing.assert_close(ours.bias, theirs.bias)


@pytest.mark.parametrize(
    "x,error,message",
    [
        (torch.zeros(2, 3, 10), ValueError, r"expected input \(batch, 2, time\), got shape \(2, 3, 10\)"),
        (torch.zeros(2, 10), ValueError, "expected input"),
        (torch.zeros(2, 2, 10, dtype=torch.long), TypeError, "expected a float tensor"),
    ],
)
def test_bad_inputs_get_clear_errors(x, error, message):
    with pytest.raises(error, match=message):
        Conv1d(2, 4, 3)(x)


def test_too_short_valid_input_says_how_long_it_must_be():
    with pytest.raises(ValueError, match="needs at least 9 time steps, got 5"):
        Conv1d(2, 4, 5, dilation=2, padding="valid")(torch.zeros(1, 2, 5))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(kernel_size=0), "kernel_size must be >= 1"),
        (dict(kernel_size=3, stride=2, dilation=2), "Keras refuses"),
        (dict(kernel_size=3, groups=3), "divisible by groups"),
    ],
)
def test_bad_settings_get_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv1d(4, 4, **kwargs)
