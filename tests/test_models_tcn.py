import pytest
import torch

from dilated.models import TCN, TCNConfig, build_model
from helpers import assert_causal, overfit
from references import pytorch_tcn_reference

CONFIGS = [  # (input_channels, num_channels, kernel_size, dropout)
    (1, (25,) * 8, 7, 0.05),  # locuslab sequential MNIST
    (2, (30,) * 8, 7, 0.0),  # locuslab adding problem
    (3, (16, 32, 32, 8), 3, 0.1),  # width changes: 1x1 residual convs
    (5, (5, 5), 2, 0.2),
]


@pytest.mark.parametrize("inputs, channels, kernel, dropout", CONFIGS)
def test_parameter_count_matches_pytorch_tcn_per_level(inputs, channels, kernel, dropout):
    ours = TCN(TCNConfig(inputs, channels, kernel, dropout))
    ref = pytorch_tcn_reference(inputs, channels, kernel, dropout)
    for mine, theirs in zip(ours.blocks, ref.network, strict=True):
        assert sum(p.numel() for p in mine.parameters()) == sum(p.numel() for p in theirs.parameters())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("inputs, channels, kernel, dropout", CONFIGS[2:])
def test_same_function_as_pytorch_tcn_with_its_weights(inputs, channels, kernel, dropout):
    torch.manual_seed(0)
    ref = pytorch_tcn_reference(inputs, channels, kernel, dropout).eval()
    ours = TCN(TCNConfig(inputs, channels, kernel, dropout)).eval()
    ours.load_state_dict(
        {k.replace("network.", "blocks."): v for k, v in ref.state_dict().items() if not k.endswith("buffer")}
    )
    x = torch.randn(3, inputs, 50)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-6)


@pytest.mark.parametrize("levels, kernel", [(8, 7), (4, 2), (1, 3), (6, 5)])
def test_receptive_field_matches_the_closed_form(levels, kernel):
    model = TCN(TCNConfig(num_channels=(4,) * levels, kernel_size=kernel))
    assert model.receptive_field == 1 + 2 * (kernel - 1) * (2**levels - 1)


@pytest.mark.parametrize("init, std", [("locuslab", 1 / (64 * 4 * 3) ** 0.5), ("normal", 0.01)])
def test_weight_norm_and_init(init, std):
    """locuslab's effective init is torch's Kaiming-uniform U(+-1/sqrt(fan_in)), std 1/sqrt(3 fan_in)."""
    model = TCN(TCNConfig(num_channels=(64, 64), kernel_size=4, init=init))
    conv = model.blocks[1].conv1
    assert hasattr(conv, "parametrizations") and tuple(conv.parametrizations.weight.original0.shape) == (64, 1, 1)
    assert abs(conv.weight.std().item() - std) < 0.1 * std


@pytest.mark.parametrize(
    "options, shape",
    [
        ({}, (2, 25, 70)),
        ({"output_size": 4}, (2, 4, 70)),  # copy memory: a head per step
        ({"output_size": 1, "last_step_only": True}, (2, 1)),  # adding problem
    ],
)
def test_output_shapes(options, shape):
    assert build_model("tcn", **options)(torch.randn(2, 1, 70)).shape == shape


def test_last_step_head_reads_the_last_step():
    torch.manual_seed(0)
    model = build_model("tcn", num_channels=(8, 8), kernel_size=3, output_size=2, last_step_only=True).eval()
    per_step = build_model("tcn", num_channels=(8, 8), kernel_size=3, output_size=2).eval()
    per_step.load_state_dict(model.state_dict())
    x = torch.randn(3, 1, 20)
    assert torch.allclose(model(x), per_step(x)[:, :, -1])


@pytest.mark.parametrize("t", [0, 13, 50, 98])
def test_causality(t):
    torch.manual_seed(0)
    model = build_model("tcn", input_channels=2, num_channels=(8, 8, 16, 16), kernel_size=3, output_size=3).eval()
    assert_causal(model, torch.randn(2, 2, 100), t)


def test_input_channel_check():
    with pytest.raises(ValueError, match=r"\(batch, 1, time\)"):
        build_model("tcn")(torch.randn(2, 3, 10))


def test_overfits_32_adding_problem_samples():
    torch.manual_seed(0)
    model = build_model(
        "tcn",
        input_channels=2,
        num_channels=(16, 16, 16),
        kernel_size=3,
        dropout=0.0,
        output_size=1,
        last_step_only=True,
    )
    x, target = torch.randn(32, 2, 50), torch.randn(32, 1)
    first, last = overfit(model, x, target, torch.nn.functional.mse_loss, lr=1e-2)
    assert last < first / 10
