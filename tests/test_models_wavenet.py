import math

import pytest
import torch

from dilated.layers import Conv1d
from dilated.models import WaveNet, WaveNetConfig, build_model
from dilated.models._mulaw import one_hot
from helpers import assert_causal, overfit


@pytest.mark.parametrize(
    "layers, stacks, kernel, input_kernel", [(10, 3, 2, 2), (4, 2, 3, 2), (1, 1, 2, 5), (6, 1, 2, 32)]
)
def test_receptive_field_matches_the_closed_form(layers, stacks, kernel, input_kernel):
    model = WaveNet(
        WaveNetConfig(
            layers_per_stack=layers,
            stacks=stacks,
            kernel_size=kernel,
            input_kernel_size=input_kernel,
            residual_channels=4,
            dilation_channels=4,
            skip_channels=4,
        )
    )
    dilations = [2**i for i in range(layers)] * stacks
    assert model.receptive_field == 1 + (kernel - 1) * sum(dilations) + (input_kernel - 1)


def test_default_dilations_follow_the_paper():
    config = WaveNetConfig()
    assert config.dilations == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] * 3
    assert WaveNet(config).receptive_field == 3071


@pytest.mark.parametrize("output, channels", [("categorical", 256), ("gaussian", 2), ("regression", 1)])
def test_output_shapes(output, channels):
    model = build_model("wavenet", layers_per_stack=3, stacks=2, output=output)
    in_channels = 256 if output == "categorical" else 1
    assert model.config.input_channels == in_channels
    assert model(torch.randn(2, in_channels, 37)).shape == (2, channels, 37)


def expected_parameters(c: WaveNetConfig) -> int:
    blocks = len(c.dilations)
    gate = c.residual_channels * 2 * c.dilation_channels * c.kernel_size + 2 * c.dilation_channels
    conditioning = (c.global_channels + c.local_channels) * 2 * c.dilation_channels
    residual = c.dilation_channels * c.residual_channels + c.residual_channels
    skip = c.dilation_channels * c.skip_channels + c.skip_channels
    head = c.skip_channels * c.skip_channels + c.skip_channels + c.skip_channels * c.output_channels + c.output_channels
    upsample = c.local_channels**2 * c.upsample_factor + c.local_channels if c.local_channels else 0
    return (
        c.resolved_input_channels * c.residual_channels * c.input_kernel_size
        + c.residual_channels
        + blocks * (gate + conditioning + skip)
        + (blocks - 1) * residual
        + head
        + upsample
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "layers_per_stack": 3,
            "stacks": 2,
            "residual_channels": 8,
            "dilation_channels": 6,
            "skip_channels": 10,
            "global_channels": 4,
            "local_channels": 3,
            "upsample_factor": 5,
            "output": "gaussian",
        },
    ],
)
def test_parameter_count(options):
    model = build_model("wavenet", **options)
    assert sum(p.numel() for p in model.parameters()) == expected_parameters(model.config)


def test_all_time_mixing_is_causal_conv1d_at_stride_1():
    model = build_model("wavenet", layers_per_stack=3, stacks=1, global_channels=2, local_channels=2)
    for module in model.modules():
        if isinstance(module, Conv1d) and module.geometry.kernel_size > 1:
            assert module.geometry.padding == "causal" and module.geometry.stride == 1
        assert not isinstance(module, torch.nn.Conv1d)


@pytest.mark.parametrize("t", [0, 9, 40, 62])
def test_causality_with_conditioning(t):
    torch.manual_seed(0)
    model = build_model(
        "wavenet",
        layers_per_stack=5,
        stacks=2,
        residual_channels=8,
        dilation_channels=8,
        skip_channels=16,
        global_channels=3,
        local_channels=2,
        upsample_factor=4,
    ).eval()
    g, c = torch.randn(2, 3), model.upsample_conditioning(torch.randn(2, 2, 16)).detach()
    assert_causal(lambda x: model(x, g, c, local_upsampled=True), torch.randn(2, 256, 64), t)


@pytest.mark.parametrize("mode", ["transposed", "repeat"])
def test_local_conditioning_upsampling(mode):
    torch.manual_seed(0)
    model = build_model(
        "wavenet",
        layers_per_stack=2,
        stacks=1,
        local_channels=3,
        upsample_factor=4,
        upsample_mode=mode,
        residual_channels=4,
        dilation_channels=4,
        skip_channels=4,
    ).eval()
    c = torch.randn(2, 3, 5)
    up = model.upsample_conditioning(c)
    assert up.shape == (2, 3, 20)
    # each input-rate step depends on one conditioning step only: step t comes from c[..., t // 4]
    c2 = c.clone()
    c2[..., 2] += 1.0
    changed = (model.upsample_conditioning(c2) != up).any(dim=(0, 1))
    assert changed.nonzero().flatten().tolist() == [8, 9, 10, 11]
    x = torch.randn(2, 256, 20)
    assert torch.equal(model(x, local_condition=c), model(x, local_condition=up, local_upsampled=True))
    with pytest.raises(ValueError, match="time // upsample_factor"):
        model(x, local_condition=up)  # already upsampled but not declared so


def test_global_conditioning_changes_the_output_and_is_required():
    torch.manual_seed(0)
    model = build_model("wavenet", layers_per_stack=2, stacks=1, global_channels=2).eval()
    x = torch.randn(1, 256, 8)
    assert not torch.equal(model(x, torch.tensor([[1.0, 0.0]])), model(x, torch.tensor([[0.0, 1.0]])))
    with pytest.raises(ValueError, match="global_condition"):
        model(x)
    with pytest.raises(ValueError, match="local_condition"):
        build_model("wavenet", layers_per_stack=1, stacks=1)(x, local_condition=torch.randn(1, 2, 8))


def test_losses():
    torch.manual_seed(0)
    gaussian = build_model("wavenet", layers_per_stack=1, stacks=1, output="gaussian")
    out, target = torch.randn(2, 2, 7), torch.randn(2, 7)
    log_scale = out[:, 1].clamp(min=-7.0)
    normal = torch.distributions.Normal(out[:, 0], log_scale.exp())
    assert torch.allclose(gaussian.loss(out, target), -normal.log_prob(target).mean())
    assert gaussian.loss(torch.tensor([[[0.0]], [[-20.0]]]).view(1, 2, 1), torch.zeros(1, 1)).item() == pytest.approx(
        -7.0 + 0.5 * math.log(2 * math.pi)
    )  # log-scale clamped at log_scale_min
    regression = build_model("wavenet", layers_per_stack=1, stacks=1, output="regression")
    assert torch.allclose(regression.loss(out[:, :1], target), ((out[:, 0] - target) ** 2).mean())


def test_overfits_32_sequences_of_mu_law_codes():
    torch.manual_seed(0)
    model = build_model(
        "wavenet", layers_per_stack=4, stacks=1, residual_channels=32, dilation_channels=32, skip_channels=64
    )
    codes = torch.randint(0, 256, (32, 65))
    x, target = one_hot(codes[:, :-1]), codes[:, 1:]  # output t predicts code t + 1
    first, last = overfit(model, x, target, model.loss, lr=1e-2)
    assert first == pytest.approx(math.log(256), rel=0.1)
    assert last < first / 10
