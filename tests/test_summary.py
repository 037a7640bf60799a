"""dilated.summary on the Keras question's models, in dilated and through the Keras adapter."""

import json

import pytest
import torch
from torch import nn

from dilated._resolve import resolve_target
from dilated.summaries import summary
from example_models import check, example_keras, example_torch


@pytest.mark.parametrize("kind", ["dilated", "strided"])
def test_example_models_in_dilated(kind):
    check(summary(example_torch(kind), (2, 200)), kind, "channels_first")


@pytest.mark.parametrize("kind", ["dilated", "strided"])
def test_example_models_through_the_keras_adapter(kind):
    check(summary(example_keras(kind)), kind, "channels_last")


@pytest.mark.parametrize("kind", ["dilated", "strided"])
def test_bundled_examples_are_the_example_models(kind):
    target = resolve_target(f"example-{kind}")
    check(summary(target.model, target.input_shape), kind, "channels_first")


def test_table_looks_like_keras_and_adds_receptive_fields():
    text = str(summary(example_torch("dilated"), (2, 200)))
    assert "Layer (type)" in text and "Output Shape" in text and "Param #" in text
    assert "Receptive field" in text and "Jump" in text
    assert "(None, 5, 200)" in text and "k=5 d=4 causal" in text
    assert "Total params: 191" in text and "Receptive field: 25 input steps" in text
    assert "WARNING" not in text


def test_warns_when_the_input_is_shorter_than_the_receptive_field():
    text = str(summary(example_torch("dilated"), (2, 20)))
    assert "WARNING: the input (20 steps) is shorter than the receptive field (25)" in text


def test_summary_json_is_the_table_as_data(capsys):
    from dilated.cli import main

    assert main(["summary", "example-dilated", "--input", "2,20", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = summary(example_torch("dilated"), (2, 20))
    assert data["schema"] == "dilated.summary/1" and data["title"] == "example-dilated"
    assert (data["receptive_field"], data["jump"], data["output_length"], data["fed"]) == (25, 1, 20, 13)
    assert (data["total_params"], data["trainable_params"], data["causal"]) == (191, 191, True)
    assert data["warning"] == expected.short_input and data["warning"].startswith("WARNING: the input (20 steps)")
    assert [
        (r["name"], r["params"], r["receptive_field"], r["coverage"], r["jump"], r["detail"]) for r in data["layers"]
    ] == [(r.name, r.params, r.receptive_field, r.coverage, r.jump, r.detail) for r in expected.layers]
    assert data["layers"][1]["ops"] == [
        {"kind": "conv", "kernel_size": 5, "dilation": 4, "stride": 1, "padding": "causal"}
    ]


def test_torch_layers_rnns_and_frozen_parameters():
    model = nn.Sequential(
        nn.Conv1d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(4, 4, 3, dilation=2),
        nn.Flatten(),
        nn.Linear(4 * 46, 3),
    )
    model[0].weight.requires_grad_(False)
    s = summary(model, (2, 100))
    assert [row.output_shape for row in s.layers] == [
        (None, 4, 100),
        (None, 4, 100),
        (None, 4, 50),
        (None, 4, 46),
        (None, 184),
        (None, 3),
    ]
    assert [row.receptive_field for row in s.layers[:4]] == [3, 3, 4, 12]
    assert s.layers[4].sees_whole_input and s.layers[5].sees_whole_input
    assert s.total_params == 2 * 4 * 3 + 4 + 4 * 4 * 3 + 4 + 184 * 3 + 3
    assert s.trainable_params == s.total_params - 24
    assert "all" in str(s)


def test_summary_leaves_the_model_as_it_was():
    model = example_torch("dilated").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary(model, (2, 200))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="give the input shape"):
        summary(example_torch("dilated"))
    with pytest.raises(ValueError, match=r"expected input \(batch, 2, time\)"):
        summary(example_torch("dilated"), (3, 200))
