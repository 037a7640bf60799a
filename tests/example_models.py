"""The Keras question's two stacks (dilated, strided) in dilated and in Keras, and the summary numbers they must give;
shared by the summary and Keras-conversion tests."""

from typing import Any

import keras
from torch import nn

from dilated.layers import Conv1d, Dense

EXAMPLES: dict[str, dict[str, list[Any]]] = {
    "dilated": dict(shapes=[(None, 5, 200), (None, 5, 200), (None, 1, 200)], fields=[9, 25, 25], jumps=[1, 1, 1]),
    "strided": dict(shapes=[(None, 5, 100), (None, 5, 25), (None, 1, 25)], fields=[5, 13, 13], jumps=[2, 8, 8]),
}


def example_torch(kind: str) -> nn.Sequential:
    strides, dilations = ((1, 1), (2, 4)) if kind == "dilated" else ((2, 4), (1, 1))
    return nn.Sequential(
        Conv1d(2, 5, 5, strides[0], dilations[0], padding="causal"),
        Conv1d(5, 5, 5, strides[1], dilations[1], padding="causal"),
        Dense(5, 1),
    )


def example_keras(kind: str):
    step = dict(dilation_rate=2) if kind == "dilated" else dict(strides=2)
    step2 = dict(dilation_rate=4) if kind == "dilated" else dict(strides=4)
    return keras.Sequential(
        [
            keras.Input((200, 2)),
            keras.layers.Conv1D(5, 5, padding="causal", **step),
            keras.layers.Conv1D(5, 5, padding="causal", **step2),
            keras.layers.Dense(1),
        ]
    )


def check(s, kind: str, layout: str) -> None:
    expected = EXAMPLES[kind]
    shapes = expected["shapes"] if layout == "channels_first" else [(n, t, c) for n, c, t in expected["shapes"]]
    assert [row.output_shape for row in s.layers] == shapes
    assert [row.params for row in s.layers] == [55, 130, 6]
    assert s.total_params == s.trainable_params == 191
    assert [row.receptive_field for row in s.layers] == expected["fields"]
    assert [row.jump for row in s.layers] == expected["jumps"]
    assert s.receptive_field == expected["fields"][-1]
