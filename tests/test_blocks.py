import pytest
import torch
from torch import nn

from dilated import receptive_field
from dilated.layers import Conv1d, Dense, channels_first, channels_last
from dilated.models._blocks import (
    CausalConvStack,
    GatedActivation,
    ResidualBlock,
    TemporalBlock,
    init_like_keras,
)
from helpers import assert_causal


def test_layout_conversions_are_named_transposes():
    x = torch.randn(2, 3, 5)
    assert channels_last(x).shape == (2, 5, 3)
    assert torch.equal(channels_first(channels_last(x)), x)
    assert torch.equal(channels_last(x)[1, 4], x[1, :, 4])


@pytest.mark.parametrize("kernel, dilations", [(2, (1, 2, 4, 8, 16)), (3, (1, 3)), (5, (2,))])
def test_causal_conv_stack_geometry_shapes_and_causality(kernel, dilations):
    torch.manual_seed(0)
    stack = CausalConvStack(4, 6, kernel, dilations)
    rf = receptive_field(stack, (4, 40))
    assert (rf.size, rf.start, rf.causal) == (1 + (kernel - 1) * sum(dilations), -(kernel - 1) * sum(dilations), True)
    x = torch.randn(2, 4, 40)
    assert stack(x).shape == (2, 6, 40)
    assert_causal(stack, x, 17)


def test_gated_activation_is_tanh_times_sigmoid_of_the_conv_halves():
    torch.manual_seed(0)
    gate = GatedActivation(3, 4, kernel_size=2, dilation=2)
    x = torch.randn(2, 3, 10)
    f, g = gate.conv(x).chunk(2, dim=1)
    assert torch.allclose(gate(x), torch.tanh(f) * torch.sigmoid(g))
    assert receptive_field(gate, (3, 10)).size == 3  # both halves of one conv: not stacked


def test_gated_activation_conditioning_adds_projections_to_both_halves():
    torch.manual_seed(0)
    gate = GatedActivation(3, 4, 2, 1, global_channels=5, local_channels=2)
    x, h, c = torch.randn(2, 3, 10), torch.randn(2, 5), torch.randn(2, 2, 10)
    z = gate.conv(x) + gate.global_projection(h)[:, :, None] + gate.local_projection(c)
    f, g = z.chunk(2, dim=1)
    assert torch.allclose(gate(x, h, c), torch.tanh(f) * torch.sigmoid(g))
    assert gate.global_projection.bias is None and gate.local_projection.bias is None
    with pytest.raises(ValueError, match="global_condition"):
        gate(x, None, c)
    with pytest.raises(ValueError, match="local_condition"):
        gate(x, h, None)


def test_residual_block_outputs_and_parameter_count():
    torch.manual_seed(0)
    block = ResidualBlock(residual_channels=8, dilation_channels=6, skip_channels=10, kernel_size=2, dilation=4)
    x = torch.randn(3, 8, 20)
    out, skip = block(x)
    z = block.gate(x)
    assert torch.allclose(out, x + block.residual(z)) and torch.allclose(skip, block.skip(z))
    assert skip.shape == (3, 10, 20)
    expected = (8 * 12 * 2 + 12) + (6 * 8 + 8) + (6 * 10 + 10)
    assert sum(p.numel() for p in block.parameters()) == expected
    last = ResidualBlock(8, 6, 10, 2, 4, residual=False)
    out, _ = last(x)
    assert last.residual is None and out is x
    rf = receptive_field(block, (8, 20))  # the residual output: the input (field 1) or the gate (k=2, d=4)
    assert (rf.size, rf.fed, rf.start) == (5, 2, -4)


@pytest.mark.parametrize("cin, cout", [(3, 5), (5, 5)])
def test_temporal_block_structure_weight_norm_and_init(cin, cout):
    torch.manual_seed(0)
    block = TemporalBlock(cin, cout, kernel_size=3, dilation=2, dropout=0.0)
    names = {n for n, _ in block.named_parameters()}
    assert "conv1.parametrizations.weight.original0" in names  # g
    assert "conv1.parametrizations.weight.original1" in names  # v
    assert isinstance(block.conv1, Conv1d) and block.conv1.geometry.padding == "causal"
    assert (block.downsample is not None) == (cin != cout)
    # weight norm starts at g = ||v||, so the effective weight is the draw: torch's Kaiming-uniform by default
    # (U(-b, b), b = 1 / sqrt(fan_in), as locuslab's code ends up with), normal(0, 0.01) with init="normal"
    wide = TemporalBlock(64, 32, kernel_size=4, dilation=1)
    bound = 1 / (64 * 4) ** 0.5
    assert abs(wide.conv1.weight.std().item() - bound / 3**0.5) < 0.1 * bound
    assert wide.conv1.weight.abs().max().item() <= bound
    normal = TemporalBlock(64, 32, kernel_size=4, dilation=1, init="normal")
    assert abs(normal.conv1.weight.std().item() - 0.01) < 0.001
    for b in (wide, normal):  # the 1x1 conv is normal(0, 0.01) either way, as in locuslab's code
        assert abs(b.downsample.weight.std().item() - 0.01) < 0.002
    x = torch.randn(2, cin, 30)
    res = x if block.downsample is None else block.downsample(x)
    inner = torch.relu(block.conv2(torch.relu(block.conv1(x))))
    assert torch.allclose(block(x), torch.relu(inner + res))
    assert receptive_field(block, (cin, 30)).size == 1 + 2 * (3 - 1) * 2  # weight-normed convs are followed
    assert_causal(block, x, 11)


def test_init_like_keras():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 50), Dense(4, 6))
    lstm = nn.LSTM(8, 16)
    init_like_keras(model)
    init_like_keras(lstm)
    bound = (6 / (30 + 50)) ** 0.5
    assert model[0].weight.abs().max() <= bound and model[0].bias.abs().max() == 0
    assert model[1].bias.abs().max() == 0
    assert torch.equal(lstm.bias_ih_l0[16:32], torch.ones(16))  # forget gate, Keras unit_forget_bias
    assert lstm.bias_ih_l0[:16].abs().max() == 0 and lstm.bias_hh_l0.abs().max() == 0
    w = lstm.weight_hh_l0  # (4H, H): orthonormal columns, as Keras' orthogonal (H, 4H) recurrent kernel
    assert torch.allclose(w.T @ w, torch.eye(16), atol=1e-5)
