"""Tests across all models: the registry and its errors, example shapes, summaries."""

import pytest
import torch

from dilated.models import (
    TCN,
    DeepLOB,
    TransLOB,
    WaveNet,
    available_models,
    build_model,
    example_input_shape,
    model_options,
)
from dilated.summaries import summary


def test_available_models():
    assert available_models() == ["deeplob", "dilated_stack", "mlplob", "tcn", "tlob", "translob", "wavenet"]


@pytest.mark.parametrize(
    "name, cls", [("wavenet", WaveNet), ("tcn", TCN), ("translob", TransLOB), ("deeplob", DeepLOB)]
)
def test_build_model_returns_the_registered_class(name, cls):
    assert type(build_model(name)) is cls


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ValueError, match="deeplob, dilated_stack, mlplob, tcn, tlob, translob, wavenet"):
        build_model("resnet")
    with pytest.raises(ValueError, match="available models"):
        example_input_shape("resnet")


def test_unknown_option_lists_the_valid_options():
    with pytest.raises(ValueError, match=r"unknown option\(s\) nlevels .*valid options: input_channels, num_channels"):
        build_model("tcn", nlevels=3)


def test_invalid_option_values_are_value_errors():
    with pytest.raises(ValueError, match="output"):
        build_model("wavenet", output="laplace")
    with pytest.raises(ValueError, match="multiple of 4"):
        build_model("deeplob", num_features=42)
    with pytest.raises(ValueError, match="last_step_only"):
        build_model("tcn", last_step_only=True)


def test_model_options_lists_defaults():
    options = model_options("translob")
    assert options["num_heads"] == 3 and options["conv_dilations"] == (1, 2, 4, 8, 16)


@pytest.mark.parametrize(
    "name, options, shape",
    [
        ("translob", {}, (40, 100)),
        ("deeplob", {}, (40, 100)),
        ("translob", {"window": 50, "num_features": 20}, (20, 50)),
        ("wavenet", {}, (256, 4096)),  # receptive field 3071
        ("wavenet", {"stacks": 1, "output": "gaussian"}, (1, 2048)),  # 1025
        ("tcn", {}, (1, 4096)),  # 3061
        ("tcn", {"num_channels": [8, 8], "kernel_size": 3, "input_channels": 3}, (3, 16)),  # 13
    ],
)
def test_example_input_shape(name, options, shape):
    assert example_input_shape(name, **options) == shape


@pytest.mark.parametrize("name", ["wavenet", "tcn", "translob", "deeplob"])
def test_summary_runs_for_every_model_and_agrees_on_the_receptive_field(name):
    torch.manual_seed(0)
    model = build_model(name)
    shape = example_input_shape(name)
    table = summary(model, shape)
    conv_path = getattr(model, "receptive_field", 23)  # DeepLOB declares none: its front end sees 23 events
    # the convolutional models' outputs see their field; TransLOB's and DeepLOB's see the whole window
    assert table.receptive_field == (shape[-1] if name in ("translob", "deeplob") else conv_path)
    # the widest per-step field of a row: the conv path, found from the dataflow alone
    local = [row.receptive_field for row in table.layers if not row.sees_whole_input and row.receptive_field]
    assert max(local) == conv_path
    assert all(not row.measured for row in table.layers)
    assert table.total_params == sum(p.numel() for p in model.parameters())
    assert shape[-1] >= conv_path
    assert "WARNING" not in str(table)
