import keras
import numpy as np
import pytest
import torch

from dilated import receptive_field
from dilated.models import DeepLOB, DeepLOBConfig, build_model
from helpers import overfit
from references import keras_deeplob, load_keras_deeplob_weights


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def time_convs(model: DeepLOB) -> list[torch.nn.Conv2d]:
    return [m for m in model.features.modules() if isinstance(m, torch.nn.Conv2d)]


@pytest.mark.parametrize(
    "conv, inception, hidden, keras_total",
    [
        (32, 64, 64, 142_435),  # the reference notebooks (142,691 with the TF1 notebook's CuDNNLSTM, as ours)
        (16, 32, 64, 60_691),  # the widths of jwallbridge/translob's LobFeatures.lob_cnn / lob_inception
        (8, 8, 16, 5_811),
    ],
)
def test_parameter_count_matches_the_keras_reference_layer_by_layer(conv, inception, hidden, keras_total):
    reference, parts = keras_deeplob(conv, inception, hidden)
    ours = DeepLOB(DeepLOBConfig(conv_channels=conv, inception_channels=inception, lstm_hidden=hidden))
    for mine, theirs in zip(time_convs(ours), parts["convs"], strict=True):
        assert count(mine) == theirs.count_params()
    assert count(ours.inception) == sum(layer.count_params() for branch in parts["branches"] for layer in branch)
    # torch's LSTM has two bias vectors (b_ih, b_hh), Keras' one: 4 * hidden more parameters, nothing else
    assert count(ours.lstm) == parts["lstm"].count_params() + 4 * hidden
    assert count(ours.classifier) == parts["dense"].count_params()
    assert reference.count_params() == keras_total
    assert count(ours) == keras_total + 4 * hidden


def test_same_function_as_the_keras_reference_with_its_weights():
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    reference, parts = keras_deeplob(conv=8, inception=8, hidden=16)
    for layer in [*parts["convs"], *(k for branch in parts["branches"] for k in branch), parts["lstm"]]:
        bias = layer.weights[-1]
        bias.assign(np.random.uniform(-0.3, 0.3, bias.shape).astype("float32"))  # non-zero biases
    ours = DeepLOB(DeepLOBConfig(conv_channels=8, inception_channels=8, lstm_hidden=16)).eval()
    load_keras_deeplob_weights(ours, parts)
    paper_layout = torch.randn(3, 100, 40)  # (batch, events, features)
    expected = np.asarray(reference(paper_layout[..., None].numpy(), training=False).detach())
    with torch.no_grad():
        got = torch.softmax(ours(paper_layout.transpose(1, 2)), dim=-1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_shapes_and_layout_errors():
    model = build_model("deeplob")
    assert model(torch.randn(2, 40, 100)).shape == (2, 3)
    assert model(torch.randn(2, 40, 37)).shape == (2, 3)  # the LSTM takes any length
    with pytest.raises(ValueError, match=r"transpose\(1, 2\)"):
        model(torch.randn(2, 100, 40))


@pytest.mark.parametrize("options", [{}, {"conv_channels": 16, "inception_channels": 32}, {"num_features": 20}])
def test_receptive_field_six_4x1_convs_and_the_widest_inception_branch(options):
    """Found from the dataflow, with no declaration: the inception branches are parallel, not stacked."""
    model = build_model("deeplob", **options)
    rf = receptive_field(model, (model.config.num_features, 100))
    rows = {row.name: row for row in rf.layers}
    assert rows["dropout"].size == 1 + 6 * (4 - 1) + (5 - 1)
    assert [rows[f"inception.branches.{i}.{j}"].size for i, j in ((0, 2), (1, 2), (2, 1))] == [21, 23, 21]
    assert rf.whole_input and rows["lstm"].past


def test_the_front_end_is_not_causal_same_padding_looks_ahead():
    """Documented behaviour: 'same' padding lets conv features at step t see later steps."""
    torch.manual_seed(0)
    model = build_model("deeplob").eval()
    x = torch.randn(1, 40, 100)
    x2 = x.clone()
    x2[..., 51] += 1.0
    with torch.no_grad():
        front = [model.inception(model.features(z.transpose(1, 2).unsqueeze(1))) for z in (x, x2)]
    changed = (front[0] != front[1]).any(dim=(0, 1, 3)).nonzero().flatten().tolist()
    # output t sees inputs t + start .. t + start + rf - 1 (start = -8: 6 x 1 step back, 2 in the inception)
    rf = receptive_field(model, (40, 100))
    front_end = next(row for row in rf.layers if row.name == "dropout")
    assert (front_end.start, front_end.size, front_end.causal) == (-8, 23, False)
    assert rf.first_noncausal.name == "features.0.2"
    assert changed == list(range(51 - (front_end.start + 22), 51 - front_end.start + 1))  # steps 37 .. 59


def test_dropout_drops_whole_channels_for_all_steps():
    torch.manual_seed(0)
    model = build_model("deeplob", dropout=0.5).train()
    h = torch.ones(4, 192, 100)
    dropped = model.dropout(h) == 0
    assert torch.equal(dropped.all(dim=-1), dropped.any(dim=-1))


def test_overfits_32_windows():
    torch.manual_seed(0)
    model = build_model("deeplob", conv_channels=8, inception_channels=8, lstm_hidden=16, dropout=0.0)
    x, target = torch.randn(32, 40, 100), torch.randint(0, 3, (32,))
    first, last = overfit(model, x, target, torch.nn.functional.cross_entropy, lr=3e-3)
    assert last < first / 10


def test_batch_norm_after_every_leaky_relu_as_the_pytorch_reference():
    plain, normed = DeepLOB(), DeepLOB(DeepLOBConfig(batch_norm=True))
    norms = [m for m in normed.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == sum(isinstance(m, torch.nn.LeakyReLU) for m in normed.modules()) == 14
    assert count(normed) - count(plain) == 2 * (9 * 32 + 5 * 64)  # 9 conv-block and 5 inception convs
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())  # the Keras reference: none


def test_batch_norm_keeps_the_front_end_scale_that_the_keras_init_loses():
    # Why the planted benchmark uses batch_norm (benchmarks/lob_planted.py): at the Keras initialisation the conv
    # front end shrinks z-scored inputs ~200x, so the LSTM reads almost constant features.
    torch.manual_seed(0)
    x = torch.randn(64, 40, 64)
    scales = {}
    for batch_norm in (False, True):
        model = DeepLOB(DeepLOBConfig(batch_norm=batch_norm)).train()
        features = model.features(x.transpose(1, 2).unsqueeze(1))  # (B, 32, T, 1)
        scales[batch_norm] = features.std(dim=0).mean().item()
    assert scales[False] < 0.05 < 0.5 < scales[True]
