import os

import numpy as np
import pytest
import torch
from test_models_common import assert_causal, overfit

from dilated.models import TransLOB, TransLOBConfig, build_model

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
ops = keras.ops


# ---- jwallbridge/translob rebuilt in Keras 3, layer for layer (python/LobAttention.py, LobTransformer.py,
# LobPosition.py, LobFeatures.lob_dilated, and the notebook's assembly). The weights are the reference's; the
# attention call is the standard masked multi-head attention the reference describes (its reshape quirks are
# documented in dilated.models.translob), so outputs can be compared too.

class MultiHeadSelfAttention(keras.layers.Layer):
    def __init__(self, num_heads: int, use_masking: bool, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.use_masking = num_heads, use_masking

    def build(self, input_shape):
        d_model = input_shape[-1]
        self.qkv_weights = self.add_weight(name="qkv_weights", shape=(d_model, d_model * 3),
                                           initializer="glorot_uniform")

    def call(self, inputs):
        _, seq_len, d_model = inputs.shape
        heads, d_sub = self.num_heads, d_model // self.num_heads
        qkv = ops.matmul(inputs, self.qkv_weights)
        q, k, v = (ops.transpose(ops.reshape(qkv[..., i * d_model:(i + 1) * d_model], (-1, seq_len, heads, d_sub)),
                                 (0, 2, 1, 3)) for i in range(3))
        a = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / np.sqrt(d_sub)
        if self.use_masking:
            lower = ops.convert_to_tensor(np.tril(np.ones((seq_len, seq_len), dtype="float32")))
            a = lower * a + (-1e9) * (1.0 - lower)
        heads_out = ops.matmul(ops.softmax(a, axis=-1), v)  # (B, heads, T, d_sub)
        return ops.reshape(ops.transpose(heads_out, (0, 2, 1, 3)), (-1, seq_len, d_model))


class LayerNormalization(keras.layers.Layer):
    def build(self, input_shape):
        self.gain = self.add_weight(name="gain", shape=(input_shape[-1],), initializer="ones")
        self.bias = self.add_weight(name="bias", shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs):
        mean = ops.mean(inputs, axis=-1, keepdims=True)
        variance = ops.mean(ops.square(inputs - mean), axis=-1, keepdims=True)
        return self.gain * (inputs - mean) / ops.sqrt(variance + 1e-5) + self.bias


class TransformerTransition(keras.layers.Layer):
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
    def call(self, x):
        steps = x.shape[1]
        position = np.array([[(2 / (steps - 1)) * t - 1] for t in range(steps)], dtype="float32")
        return ops.concatenate([x, ops.tile(ops.convert_to_tensor(position[None]), (ops.shape(x)[0], 1, 1))], axis=-1)


def keras_translob(share_weights: bool = True):
    """The reference model: returns it and its parts, for per-layer comparisons."""
    inputs = keras.Input(shape=(100, 40))
    x, convs = inputs, []
    for dilation in (1, 2, 4, 8, 16):
        convs.append(keras.layers.Conv1D(14, kernel_size=2, dilation_rate=dilation, activation="relu",
                                         padding="causal"))
        x = convs[-1](x)
    norm = LayerNormalization()
    x = PositionalEncoding()(norm(x))
    blocks = [TransformerBlock("tb1", 3, True)] * 2 if share_weights else \
        [TransformerBlock(f"tb{i}", 3, True) for i in range(2)]
    for block in blocks:
        x = block(x)
    hidden = keras.layers.Dense(64, activation="relu", kernel_regularizer="l2")
    classifier = keras.layers.Dense(3, activation="softmax")
    out = classifier(keras.layers.Dropout(0.1)(hidden(keras.layers.Flatten()(x))))
    parts = {"convs": convs, "norm": norm, "blocks": blocks, "hidden": hidden, "classifier": classifier}
    return keras.Model(inputs, out), parts


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("share", [True, False])
def test_parameter_count_matches_the_keras_reference_layer_by_layer(share):
    reference, parts = keras_translob(share)
    ours = TransLOB(TransLOBConfig(share_block_weights=share))
    assert count(ours.conv) == sum(conv.count_params() for conv in parts["convs"]) == 1134 + 4 * 406
    assert count(ours.norm) == parts["norm"].count_params() == 28
    for mine, theirs in zip(ours.blocks, parts["blocks"], strict=True):
        assert count(mine) == theirs.count_params() == 2610
        assert count(mine.attention) == theirs.attention_layer.count_params() == 15 * 45  # no bias, no projection
    assert count(ours.hidden) == parts["hidden"].count_params() == 96064
    assert count(ours.classifier) == parts["classifier"].count_params() == 195
    assert count(ours) == reference.count_params() == (101_655 if share else 104_265)


def load_keras_weights(ours: TransLOB, parts: dict) -> None:
    def put(param: torch.nn.Parameter, value) -> None:
        param.data.copy_(torch.as_tensor(np.asarray(value)))

    for conv, k in zip(ours.conv.convs, parts["convs"]):
        kernel, bias = k.get_weights()
        put(conv.weight, kernel.transpose(2, 1, 0))  # (k, in, out) -> (out, in, k)
        put(conv.bias, bias)
    put(ours.norm.weight, parts["norm"].gain.numpy())
    put(ours.norm.bias, parts["norm"].bias.numpy())
    for mine, theirs in zip(ours.blocks, parts["blocks"]):
        put(mine.attention.qkv.weight, theirs.attention_layer.qkv_weights.numpy().T)
        t = theirs.transition_layer
        put(mine.ffn[0].weight, t.weights1.numpy().T)
        put(mine.ffn[0].bias, t.biases1.numpy())
        put(mine.ffn[2].weight, t.weights2.numpy().T)
        put(mine.ffn[2].bias, t.biases2.numpy())
        for norm, k in ((mine.norm1, theirs.norm1_layer), (mine.norm2, theirs.norm2_layer)):
            put(norm.weight, k.gain.numpy())
            put(norm.bias, k.bias.numpy())
    for linear, k in ((ours.hidden, parts["hidden"]), (ours.classifier, parts["classifier"])):
        kernel, bias = k.get_weights()
        put(linear.weight, kernel.T)
        put(linear.bias, bias)


@pytest.mark.parametrize("share", [True, False])
def test_same_function_as_the_keras_rebuild_with_its_weights(share):
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    reference, parts = keras_translob(share)
    # random non-trivial norm parameters, so that their mapping is checked too
    for norm in [parts["norm"], *(n for b in parts["blocks"] for n in (b.norm1_layer, b.norm2_layer))]:
        norm.gain.assign(np.random.uniform(0.5, 1.5, norm.gain.shape).astype("float32"))
        norm.bias.assign(np.random.uniform(-0.5, 0.5, norm.bias.shape).astype("float32"))
    ours = TransLOB(TransLOBConfig(share_block_weights=share)).eval()
    load_keras_weights(ours, parts)
    paper_layout = torch.randn(4, 100, 40)  # (batch, events, features), as the reference takes it
    expected = np.asarray(reference(paper_layout.numpy(), training=False).detach())
    with torch.no_grad():
        got = torch.softmax(ours(paper_layout.transpose(1, 2)), dim=-1).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_shapes_and_layout_errors():
    model = build_model("translob")
    x = torch.randn(3, 40, 100)
    assert model(x).shape == (3, 3)
    assert model.features(x).shape == (3, 100, 15)
    with pytest.raises(ValueError, match=r"transpose\(1, 2\)"):
        model(torch.randn(3, 100, 40))
    with pytest.raises(ValueError, match="windows of 100 events"):
        model(torch.randn(3, 40, 50))


@pytest.mark.parametrize("kernel, dilations", [(2, (1, 2, 4, 8, 16)), (3, (1, 2, 4)), (2, (1,))])
def test_receptive_field_of_the_conv_module(kernel, dilations):
    model = TransLOB(TransLOBConfig(conv_kernel_size=kernel, conv_dilations=dilations))
    assert model.receptive_field == 1 + (kernel - 1) * sum(dilations)


@pytest.mark.parametrize("t", [0, 31, 64, 98])
def test_conv_module_and_masked_transformer_are_causal(t):
    torch.manual_seed(0)
    model = build_model("translob").eval()
    x = torch.randn(2, 40, 100)
    assert_causal(model.conv, x, t)
    assert_causal(lambda z: model.features(z).transpose(1, 2), x, t)  # (B, d_model, T)


def test_unmasked_attention_is_not_causal():
    torch.manual_seed(0)
    model = build_model("translob", causal_attention=False).eval()
    x = torch.randn(1, 40, 100)
    x2 = x.clone()
    x2[..., 99] += 1.0
    with torch.no_grad():
        assert not torch.equal(model.features(x)[:, 0], model.features(x2)[:, 0])


def test_attention_options():
    wide = build_model("translob", head_dim=15, attention_output_projection=True)
    assert count(wide.blocks[0].attention) == 15 * 3 * 45 + 45 * 15  # Keras-MultiHeadAttention-like heads
    assert wide(torch.randn(2, 40, 100)).shape == (2, 3)
    with pytest.raises(ValueError, match="attention_output_projection"):
        build_model("translob", head_dim=15)
    with pytest.raises(ValueError, match="divisible"):
        build_model("translob", num_heads=4)
    assert count(build_model("translob", qkv_bias=True).blocks[0].attention) == 15 * 45 + 45
    shared = build_model("translob")
    assert shared.blocks[0] is shared.blocks[1]


def test_attention_scale_is_one_over_sqrt_head_dim():
    model = build_model("translob")
    assert model.blocks[0].attention.scale == pytest.approx(1 / np.sqrt(5))
    assert build_model("translob", attention_scale=0.1).blocks[0].attention.scale == 0.1


def test_regularization_loss_is_keras_l2_on_the_hidden_kernel():
    model = build_model("translob")
    assert torch.allclose(model.regularization_loss(), 0.01 * (model.hidden.weight**2).sum())


def test_overfits_32_windows():
    torch.manual_seed(0)
    model = build_model("translob")
    x, target = torch.randn(32, 40, 100), torch.randint(0, 3, (32,))
    first, last = overfit(model, x, target, torch.nn.functional.cross_entropy, lr=1e-3)
    assert last < first / 10
