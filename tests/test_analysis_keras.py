"""dilated.receptive_field on Keras 3 functional graphs (torch backend), against the probe."""

from __future__ import annotations

import random

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dilated
from dilated.analysis import probe_receptive_field, receptive_field
from dilated.examples.gated_wavenet import build_keras

layers = keras.layers
LENGTH, CHANNELS = 64, 2


def agree(model: keras.Model, shape: tuple[int, int] = (CHANNELS, LENGTH)) -> bool:
    rf = receptive_field(model, shape)
    probe = probe_receptive_field(model, shape)
    assert not rf.measured, rf.unfollowed
    if probe.axis is None:
        return rf.whole_input == probe.whole_input
    t = probe.reference
    return all(tuple(rf.steps(s)) == probe.steps(s) for s in (t, t + 1) if s < probe.length)


def random_branch(rng: random.Random, x, depth: int = 0):
    """Rate-keeping pieces (as the two paths of a merge meet step for step)."""
    for _ in range(rng.randint(1, 2)):
        kind = rng.choice(["conv", "conv", "pad-crop"] + (["merge"] if depth < 1 else []))
        if kind == "conv":
            x = layers.Conv1D(
                CHANNELS,
                rng.randint(1, 3),
                dilation_rate=rng.randint(1, 4),
                padding=rng.choice(["causal", "same"]),
                activation=rng.choice(["tanh", "relu", None]),
            )(x)
        elif kind == "pad-crop":
            left, right = rng.randint(0, 3), rng.randint(0, 3)
            x = layers.Cropping1D((right, left))(layers.ZeroPadding1D((left, right))(x))
        else:
            merge = rng.choice([layers.Add, layers.Multiply, layers.Subtract, layers.Average, layers.Concatenate])
            a, b = random_branch(rng, x, depth + 1), random_branch(rng, x, depth + 1)
            x = merge()([a, b])
            x = layers.Conv1D(CHANNELS, 1)(x)
    return x


def random_keras_model(seed: int) -> keras.Model:
    rng = random.Random(seed)
    x = inputs = keras.Input((rng.choice([None, LENGTH]), CHANNELS))
    x = random_branch(rng, x)
    trunk = rng.choice(["pool", "stride", "up", "transposed", "none"])
    if trunk == "pool":
        x = rng.choice([layers.MaxPooling1D, layers.AveragePooling1D])(2, strides=rng.randint(1, 2), padding="same")(x)
    elif trunk == "stride":
        x = layers.Conv1D(CHANNELS, 3, strides=2, padding=rng.choice(["same", "valid"]))(x)
    elif trunk == "up":
        x = layers.UpSampling1D(2)(x)
    elif trunk == "transposed":
        x = layers.Conv1DTranspose(CHANNELS, rng.randint(1, 4), strides=2, padding=rng.choice(["same", "valid"]))(x)
    x = random_branch(rng, x, depth=1)
    return keras.Model(inputs, layers.Dense(1)(x))


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_random_keras_graphs_analysis_equals_probe(seed):
    assert agree(random_keras_model(seed))


def test_gated_wavenet_in_keras_sees_65_steps_on_any_length():
    model = build_keras(4)
    rf = receptive_field(model, (1, 128))
    assert (rf.size, rf.start, rf.jump, rf.causal, rf.coverage) == (65, -64, 1, True, 1.0)
    first_unit = [(row.type_name, row.size) for row in rf.layers[1:4]]  # after the input conv (2 steps)
    assert sorted(first_unit) == [("Conv1D", 3), ("Conv1D", 3), ("Multiply", 3)]  # parallel branches: 3, not 4
    assert agree(model, (1, 128))
    table = dilated.summary(model, (1, 128))
    assert table.receptive_field == 65 and table.input_shape == (None, 128, 1)


@pytest.mark.parametrize(
    "name",
    [
        "gap",
        "lstm-seq",
        "lstm-last",
        "bilstm",
        "mha",
        "mha-causal",
        "attention-causal",
        "crop-pad",
        "transposed-same",
        "transposed-valid",
        "upsample",
        "pool-same",
    ],
)
def test_keras_layers(name):
    x = inputs = keras.Input((32, 2))
    h = layers.Conv1D(3, 2, padding="causal")(x)
    expected = {
        "gap": "all",
        "lstm-last": "all",
        "bilstm": "all",
        "mha": "all",
        "lstm-seq": "past",
        "mha-causal": "past",
        "attention-causal": "past",
    }
    if name == "gap":
        h = layers.GlobalAveragePooling1D()(h)
    elif name == "lstm-seq":
        h = layers.LSTM(3, return_sequences=True)(h)
    elif name == "lstm-last":
        h = layers.GRU(3)(h)
    elif name == "bilstm":
        h = layers.Bidirectional(layers.SimpleRNN(2, return_sequences=True))(h)
    elif name in ("mha", "mha-causal"):
        h = layers.MultiHeadAttention(1, 3)(h, h, use_causal_mask=name == "mha-causal")
    elif name == "attention-causal":
        h = layers.Attention()([h, h], use_causal_mask=True)
    elif name == "crop-pad":
        h = layers.Cropping1D((0, 3))(layers.ZeroPadding1D((3, 0))(h))  # a right shift by 3: causal
    elif name.startswith("transposed"):
        h = layers.Conv1DTranspose(3, 3, strides=2, padding=name.split("-")[1])(h)
    elif name == "upsample":
        h = layers.UpSampling1D(3)(h)
    else:
        h = layers.MaxPooling1D(3, strides=2, padding="same")(h)
    model = keras.Model(inputs, layers.Dense(1)(h))
    rf = receptive_field(model)
    assert not rf.measured
    if name in expected:
        assert rf.whole_input if expected[name] == "all" else (rf.past and rf.causal)
    assert agree(model, (2, 32))


def test_a_layer_it_cannot_follow_is_measured():
    x = inputs = keras.Input((16, 1))
    flip = layers.Lambda(lambda t: t + t[:, -1:], output_shape=(16, 2))  # every step reads the last one
    h = flip(layers.Conv1D(2, 2, padding="causal")(x))
    rf = receptive_field(keras.Model(inputs, h))
    assert rf.measured and "Lambda" in rf.unfollowed and rf.causal is False
