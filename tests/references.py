"""Reference implementations `dilated` is checked and benchmarked against, built the way their authors build them.

Needs the ``dev`` extras (Keras 3 and pytorch-tcn); used by the tests and, through ``benchmarks/common.py``, the
benchmarks. The package never imports it.

* :func:`keras_translob`: TransLOB as jwallbridge/translob builds it (``python/LobAttention.py``,
  ``LobTransformer.py``, ``LobPosition.py``, ``LobFeatures.lob_dilated`` and the notebook's assembly), rebuilt
  layer for layer in Keras 3 (used by ``tests/test_models_translob.py`` and the benchmarks). The attention call is
  the standard masked multi-head attention the reference describes (its reshape quirks are documented in
  :mod:`dilated.models._translob`); :func:`load_keras_translob_weights` copies its weights into a
  :class:`dilated.models.TransLOB`, after which both compute the same function.
* :func:`keras_deeplob`: DeepLOB as zcakhaa/DeepLOB builds it, in Keras 3; :func:`load_keras_deeplob_weights` copies its
  weights into a :class:`dilated.models.DeepLOB`.
* :func:`keras_wavenet`: a WaveNet written with the Keras functional API the usual way (parallel tanh and sigmoid
  convs multiplied, 1x1 residual and skip convs), the model ``dilated.from_keras`` is tested and benchmarked on.
* :func:`pytorch_tcn_reference`: ``pytorch_tcn.TCN`` set up as locuslab/TCN (the settings of
  ``tests/test_models_tcn.py``), with locuslab's linear head (:class:`HeadedTCN`);
  :func:`copy_tcn_weights` gives it the weights of a :func:`dilated.build_model` TCN.

Keras runs on the backend named by ``KERAS_BACKEND`` (``torch`` unless set before this module is imported).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
import torch
from keras import ops
from pytorch_tcn import TCN as PytorchTCN
from torch import nn

from dilated.models import DeepLOB, TransLOB

# ---- TransLOB, the Keras reference -------------------------------------------------------------------------------


class MultiHeadSelfAttention(keras.layers.Layer):
    """Reference ``MultiHeadSelfAttention``: one bias-free ``(d, 3d)`` kernel, heads of ``d // heads``, no output
    projection, optional causal mask (``-1e9`` above the diagonal)."""

    def __init__(self, num_heads: int, use_masking: bool, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.use_masking = num_heads, use_masking

    def build(self, input_shape):
        d_model = input_shape[-1]
        self.qkv_weights = self.add_weight(
            name="qkv_weights", shape=(d_model, d_model * 3), initializer="glorot_uniform"
        )

    def call(self, inputs):
        _, seq_len, d_model = inputs.shape
        heads, d_sub = self.num_heads, d_model // self.num_heads
        qkv = ops.matmul(inputs, self.qkv_weights)
        q, k, v = (
            ops.transpose(
                ops.reshape(qkv[..., i * d_model : (i + 1) * d_model], (-1, seq_len, heads, d_sub)), (0, 2, 1, 3)
            )
            for i in range(3)
        )
        a = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / np.sqrt(d_sub)
        if self.use_masking:
            lower = ops.convert_to_tensor(np.tril(np.ones((seq_len, seq_len), dtype="float32")))
            a = lower * a + (-1e9) * (1.0 - lower)
        heads_out = ops.matmul(ops.softmax(a, axis=-1), v)  # (B, heads, T, d_sub)
        return ops.reshape(ops.transpose(heads_out, (0, 2, 1, 3)), (-1, seq_len, d_model))


class LayerNormalization(keras.layers.Layer):
    """Reference ``LayerNormalization`` (epsilon 1e-5)."""

    def build(self, input_shape):
        self.gain = self.add_weight(name="gain", shape=(input_shape[-1],), initializer="ones")
        self.bias = self.add_weight(name="bias", shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs):
        mean = ops.mean(inputs, axis=-1, keepdims=True)
        variance = ops.mean(ops.square(inputs - mean), axis=-1, keepdims=True)
        return self.gain * (inputs - mean) / ops.sqrt(variance + 1e-5) + self.bias


class TransformerTransition(keras.layers.Layer):
    """Reference ``TransformerTransition``: ``Dense(4d, relu) -> Dense(d)`` as raw matmuls."""

    def build(self, input_shape):
        d = input_shape[-1]
        self.weights1 = self.add_weight(name="weights1", shape=(d, 4 * d), initializer="glorot_uniform")
        self.biases1 = self.add_weight(name="biases1", shape=(4 * d,), initializer="zeros")
        self.weights2 = self.add_weight(name="weights2", shape=(4 * d, d), initializer="glorot_uniform")
        self.biases2 = self.add_weight(name="biases2", shape=(d,), initializer="zeros")

    def call(self, inputs):
        return ops.matmul(ops.relu(ops.matmul(inputs, self.weights1) + self.biases1), self.weights2) + self.biases2


class TransformerBlock:
    """The reference's pseudo-layer: attention, add, norm, transition, add, norm."""

    def __init__(self, name: str, num_heads: int, use_masking: bool = True):
        self.attention_layer = MultiHeadSelfAttention(num_heads, use_masking, name=f"{name}_self_attention")
        self.norm1_layer = LayerNormalization(name=f"{name}_normalization1")
        self.norm2_layer = LayerNormalization(name=f"{name}_normalization2")
        self.transition_layer = TransformerTransition(name=f"{name}_transition")
        self.addition_layer = keras.layers.Add(name=f"{name}_add")

    def __call__(self, x):
        norm1 = self.norm1_layer(self.addition_layer([x, self.attention_layer(x)]))
        return self.norm2_layer(self.addition_layer([norm1, self.transition_layer(norm1)]))

    def count_params(self) -> int:
        parts = (self.attention_layer, self.norm1_layer, self.norm2_layer, self.transition_layer)
        return sum(p.count_params() for p in parts)


class PositionalEncoding(keras.layers.Layer):
    """Reference ``LobPosition``: the linear position in ``[-1, 1]`` appended as a last feature."""

    def call(self, x):
        steps = x.shape[1]
        position = np.array([[(2 / (steps - 1)) * t - 1] for t in range(steps)], dtype="float32")
        return ops.concatenate([x, ops.tile(ops.convert_to_tensor(position[None]), (ops.shape(x)[0], 1, 1))], axis=-1)


def keras_translob(share_weights: bool = True) -> tuple[keras.Model, dict]:
    """The reference TransLOB, input ``(batch, 100, 40)`` (events, features), softmax output ``(batch, 3)``.

    Returns the model and its parts (``convs``, ``norm``, ``blocks``, ``hidden``, ``classifier``), for weight copies.
    """
    inputs = keras.Input(shape=(100, 40))
    x, convs = inputs, []
    for dilation in (1, 2, 4, 8, 16):
        convs.append(
            keras.layers.Conv1D(14, kernel_size=2, dilation_rate=dilation, activation="relu", padding="causal")
        )
        x = convs[-1](x)
    norm = LayerNormalization()
    x = PositionalEncoding()(norm(x))
    blocks = (
        [TransformerBlock("tb1", 3, True)] * 2
        if share_weights
        else [TransformerBlock(f"tb{i}", 3, True) for i in range(2)]
    )
    for block in blocks:
        x = block(x)
    hidden = keras.layers.Dense(64, activation="relu", kernel_regularizer="l2")
    classifier = keras.layers.Dense(3, activation="softmax")
    out = classifier(keras.layers.Dropout(0.1)(hidden(keras.layers.Flatten()(x))))
    parts = {"convs": convs, "norm": norm, "blocks": blocks, "hidden": hidden, "classifier": classifier}
    return keras.Model(inputs, out), parts


def load_keras_translob_weights(ours: TransLOB, parts: dict) -> None:
    """Copy the reference's weights into a :class:`dilated.models.TransLOB` built with the same sharing."""

    def put(module: nn.Module, name: str, value) -> None:
        module.get_parameter(name).data.copy_(torch.as_tensor(np.asarray(value)))

    for conv, k in zip(ours.conv.convs, parts["convs"], strict=True):
        kernel, bias = k.get_weights()
        put(conv, "weight", kernel.transpose(2, 1, 0))  # (k, in, out) -> (out, in, k)
        put(conv, "bias", bias)
    put(ours.norm, "weight", keras.ops.convert_to_numpy(parts["norm"].gain))
    put(ours.norm, "bias", keras.ops.convert_to_numpy(parts["norm"].bias))
    for mine, theirs in zip(ours.blocks, parts["blocks"], strict=True):
        numpy = keras.ops.convert_to_numpy
        put(mine, "attention.qkv.weight", numpy(theirs.attention_layer.qkv_weights).T)
        t = theirs.transition_layer
        put(mine, "ffn.0.weight", numpy(t.weights1).T)
        put(mine, "ffn.0.bias", numpy(t.biases1))
        put(mine, "ffn.2.weight", numpy(t.weights2).T)
        put(mine, "ffn.2.bias", numpy(t.biases2))
        for norm, k in (("norm1", theirs.norm1_layer), ("norm2", theirs.norm2_layer)):
            put(mine, f"{norm}.weight", numpy(k.gain))
            put(mine, f"{norm}.bias", numpy(k.bias))
    for linear, k in ((ours.hidden, parts["hidden"]), (ours.classifier, parts["classifier"])):
        kernel, bias = k.get_weights()
        put(linear, "weight", kernel.T)
        put(linear, "bias", bias)


# ---- TCN, pytorch-tcn set up as locuslab/TCN -------------------------------------------------------------------


def pytorch_tcn_reference(inputs: int, channels: tuple[int, ...], kernel: int, dropout: float) -> PytorchTCN:
    """``pytorch_tcn.TCN`` with locuslab's block: no skip connections, no gate, no conditioning, causal left
    padding, weight norm on both convs, ReLU, dilations ``2**i``, no output projection."""
    return PytorchTCN(
        inputs,
        list(channels),
        kernel_size=kernel,
        dropout=dropout,
        causal=True,
        use_norm="weight_norm",
        activation="relu",
        use_skip_connections=False,
        use_gate=False,
        embedding_shapes=None,
        output_projection=None,
        output_activation=None,
    )


class HeadedTCN(nn.Module):
    """A TCN body plus locuslab's ``nn.Linear`` head on the last step (adding problem) or on every step (copy
    memory): ``(B, C_in, T) -> (B, out)`` or ``(B, out, T)``, the layouts of ``build_model("tcn", output_size=...)``.
    """

    def __init__(self, body: nn.Module, channels: int, output_size: int, last_step_only: bool) -> None:
        super().__init__()
        self.body, self.last_step_only = body, last_step_only
        self.linear = nn.Linear(channels, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)  # (B, C, T)
        if self.last_step_only:
            return self.linear(h[:, :, -1])  # (B, out)
        return self.linear(h.transpose(1, 2)).transpose(1, 2)  # (B, out, T)


def copy_tcn_weights(ours: nn.Module, reference: nn.Module) -> None:
    """Give ``reference`` (a :class:`HeadedTCN` or a bare ``pytorch_tcn.TCN``) the weights of ``ours``, a
    ``dilated`` TCN of the same configuration, so that both start from the same point."""
    body = reference.body if isinstance(reference, HeadedTCN) else reference
    state = {k.replace("blocks.", "network.", 1): v for k, v in ours.state_dict().items() if not k.startswith("head.")}
    missing, unexpected = body.load_state_dict(state, strict=False)
    if unexpected or any(not k.endswith("buffer") for k in missing):
        raise ValueError(f"weights do not map: missing {missing}, unexpected {unexpected}")
    if isinstance(reference, HeadedTCN):
        with torch.no_grad():
            reference.linear.weight.copy_(ours.get_parameter("head.weight").squeeze(-1))
            reference.linear.bias.copy_(ours.get_parameter("head.bias"))


# ---- DeepLOB, the Keras reference ---------------------------------------------------------------------------------


def keras_deeplob(conv: int = 32, inception: int = 64, hidden: int = 64, steps: int = 100, features: int = 40):
    """``create_deeplob`` of zcakhaa/DeepLOB (jupyter_tensorflow/run_train_tensorflow-version2.ipynb) in Keras 3,
    with the filter counts as arguments. The dropout is called without the reference's ``training=True`` so that
    inference is deterministic. Returns the model and its parts in our module order."""
    layers = keras.layers

    def leaky(x):
        return layers.LeakyReLU(negative_slope=0.01)(x)

    inputs = layers.Input(shape=(steps, features, 1))
    convs = [
        layers.Conv2D(conv, (1, 2), strides=(1, 2)),
        layers.Conv2D(conv, (4, 1), padding="same"),
        layers.Conv2D(conv, (4, 1), padding="same"),
        layers.Conv2D(conv, (1, 2), strides=(1, 2)),
        layers.Conv2D(conv, (4, 1), padding="same"),
        layers.Conv2D(conv, (4, 1), padding="same"),
        layers.Conv2D(conv, (1, features // 4)),
        layers.Conv2D(conv, (4, 1), padding="same"),
        layers.Conv2D(conv, (4, 1), padding="same"),
    ]
    x = inputs
    for layer in convs:
        x = leaky(layer(x))
    branch_convs = [
        [layers.Conv2D(inception, (1, 1), padding="same"), layers.Conv2D(inception, (k, 1), padding="same")]
        for k in (3, 5)
    ] + [[layers.Conv2D(inception, (1, 1), padding="same")]]
    a = leaky(branch_convs[0][1](leaky(branch_convs[0][0](x))))
    b = leaky(branch_convs[1][1](leaky(branch_convs[1][0](x))))
    c = leaky(branch_convs[2][0](layers.MaxPooling2D((3, 1), strides=(1, 1), padding="same")(x)))
    y = layers.concatenate([a, b, c], axis=3)
    y = layers.Reshape((int(y.shape[1]), int(y.shape[3])))(y)
    y = layers.Dropout(0.2, noise_shape=(None, 1, int(y.shape[2])))(y)
    lstm = layers.LSTM(hidden)
    dense = layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, dense(lstm(y)))
    return model, {"convs": convs, "branches": branch_convs, "lstm": lstm, "dense": dense}


def load_keras_deeplob_weights(ours: DeepLOB, parts: dict) -> None:
    """Copy the weights of :func:`keras_deeplob`'s ``parts`` into ``ours`` (same filter counts)."""

    def put(module: nn.Module, name: str, value) -> None:
        module.get_parameter(name).data.copy_(torch.as_tensor(np.ascontiguousarray(value)))

    def put_conv(mine: torch.nn.Conv2d, theirs) -> None:
        kernel, bias = theirs.get_weights()
        put(mine, "weight", kernel.transpose(3, 2, 0, 1))  # (kh, kw, in, out) -> (out, in, kh, kw)
        put(mine, "bias", bias)

    time_convs = [m for m in ours.features.modules() if isinstance(m, torch.nn.Conv2d)]
    for mine, theirs in zip(time_convs, parts["convs"], strict=True):
        put_conv(mine, theirs)
    for branch, theirs in zip(ours.inception.branches, parts["branches"]):
        for mine, k in zip([m for m in branch.children() if isinstance(m, torch.nn.Conv2d)], theirs, strict=True):
            put_conv(mine, k)
    kernel, recurrent, bias = parts["lstm"].get_weights()
    put(ours.lstm, "weight_ih_l0", kernel.T)  # gates i, f, c, o in both
    put(ours.lstm, "weight_hh_l0", recurrent.T)
    put(ours.lstm, "bias_ih_l0", bias)
    put(ours.lstm, "bias_hh_l0", np.zeros_like(bias))
    kernel, bias = parts["dense"].get_weights()
    put(ours.classifier, "weight", kernel.T)
    put(ours.classifier, "bias", bias)


# ---- WaveNet, written with the Keras functional API --------------------------------------------------------------


def keras_wavenet(
    channels: int = 16,
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32),
    in_channels: int = 1,
    length: int | None = None,
) -> keras.Model:
    """Input causal conv (k=2); per dilation a gated unit ``tanh(conv) * sigmoid(conv)`` (two parallel k=2 convs
    on the same input), a 1x1 residual conv added back and a 1x1 skip conv; skips summed, ReLU, 1x1 output conv.
    Input ``(batch, length, in_channels)`` (``length=None``: any); receptive field ``2 + sum(dilations)``."""
    layers = keras.layers
    x = keras.Input((length, in_channels), name="x")
    h = layers.Conv1D(channels, 2, padding="causal", name="causal")(x)
    skips = []
    for i, d in enumerate(dilations):
        filtered = layers.Conv1D(channels, 2, padding="causal", dilation_rate=d, activation="tanh", name=f"filter_{i}")(
            h
        )
        gate = layers.Conv1D(channels, 2, padding="causal", dilation_rate=d, activation="sigmoid", name=f"gate_{i}")(h)
        z = layers.Multiply(name=f"gated_{i}")([filtered, gate])
        skips.append(layers.Conv1D(channels, 1, name=f"skip_{i}")(z))
        h = layers.Add(name=f"residual_{i}")([h, layers.Conv1D(channels, 1, name=f"res_{i}")(z)])
    out = layers.Activation("relu", name="relu")(layers.Add(name="skips")(skips))
    return keras.Model(x, layers.Conv1D(1, 1, name="out")(out), name="wavenet")
