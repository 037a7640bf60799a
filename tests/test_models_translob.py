import keras
import numpy as np
import pytest
import torch

from dilated.models import TransLOB, TransLOBConfig, build_model
from helpers import assert_causal, overfit
from references import keras_translob, load_keras_translob_weights


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
    load_keras_translob_weights(ours, parts)
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
