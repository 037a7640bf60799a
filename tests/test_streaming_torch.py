"""Plain torch models stream exactly, or are refused; never accepted wrong.

Models are written the way their users write them: locuslab's TCN (weight-normed ``nn.Conv1d`` padded on both
sides, ``Chomp1d``), left pads (``F.pad``, ``nn.ConstantPad1d``, ``nn.ZeroPad1d``) before unpadded convs, weight
norm (old and parametrized APIs) and spectral norm, eval BatchNorm, dropout, residual 1x1 downsampling, and
pytorch-tcn's ``TCN``. Every streamed output is compared with the model's own forward; every fast-engine case
asserts that the compiled kernel ran (no silent fall back to the eager engine).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from pytorch_tcn import TCN as PytorchTCN
from torch import nn
from torch.nn.utils import spectral_norm
from torch.nn.utils import weight_norm as old_weight_norm
from torch.nn.utils.parametrizations import weight_norm

from dilated.streaming import EagerStream, StatefulConv, stream
from dilated.streaming._interface import Backend
from streaming_helpers import Chomp1d, LocuslabTCN, offline, run_in_chunks, stepwise

TOL = 1e-5
ENGINES = ["eager", "fast"]


def assert_streams_exactly(
    model: nn.Module, x: torch.Tensor, backend: Backend, sizes: tuple[int, ...] = (1, 6, 2), **kwargs: object
) -> None:
    s = stream(model, x.shape[0], backend=backend)
    got = run_in_chunks(s, x, list(sizes), **kwargs)
    assert s.backend == backend  # the fast engine did not fall back to eager
    torch.testing.assert_close(got, offline(model, x, **kwargs), atol=TOL, rtol=TOL)


class LeftPadded(nn.Module):
    """``F.pad(x, (left, 0))`` in the forward, then an unpadded conv."""

    def __init__(self, cin: int, cout: int, k: int, d: int) -> None:
        super().__init__()
        self.left = (k - 1) * d
        self.conv = nn.Conv1d(cin, cout, k, dilation=d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.left, 0)))


# --------------------------------------------------------------------------------------------------------------------
# The regression case of issue 14 and its relatives
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", [None, weight_norm, old_weight_norm, spectral_norm])
@pytest.mark.parametrize("backend", ENGINES)
def test_padded_conv_with_right_trim_streams_exactly(norm, backend):
    """The case that used to be accepted and wrong by 1.1: a weight-normed nn.Conv1d(1, 4, 2, padding=1) + trim."""
    torch.manual_seed(0)
    conv = nn.Conv1d(1, 4, 2, padding=1)
    model = nn.Sequential(norm(conv) if norm else conv, Chomp1d(1)).eval()  # (spectral norm iterates in train mode)
    x = torch.randn(1, 1, 20)
    s = stream(model, 1, backend=backend)
    torch.testing.assert_close(stepwise(s, x), offline(model, x), atol=TOL, rtol=TOL)
    assert s.backend == backend


@pytest.mark.parametrize("backend", ENGINES)
def test_locuslab_tcn_streams_exactly(backend):
    torch.manual_seed(1)
    model = LocuslabTCN(3, [32] * 10, kernel_size=2, dropout=0.2).eval()  # (train mode: dropout is refused)
    x = torch.randn(2, 3, 40)
    assert_streams_exactly(model, x, backend, sizes=(1, 13, 3))
    assert not model.training  # untouched


@pytest.mark.parametrize("norm", [old_weight_norm, spectral_norm])
def test_locuslab_tcn_with_old_weight_norm_and_spectral_norm(norm):
    torch.manual_seed(2)
    model = LocuslabTCN(2, [6, 6, 4], kernel_size=3, norm=norm)
    x = torch.randn(2, 2, 30)
    with torch.no_grad():  # a few training-mode forwards: spectral norm's power iteration settles (weights ~1)
        for _ in range(5):
            model(x)
    model.eval()  # (in train mode spectral norm iterates at every forward: the stream refuses it)
    for backend in ENGINES:
        assert_streams_exactly(model, x, backend)


@pytest.mark.parametrize("pad", ["F.pad", "ConstantPad1d", "ZeroPad1d"])
@pytest.mark.parametrize("backend", ENGINES)
def test_left_pad_then_unpadded_conv_streams_exactly(pad, backend):
    torch.manual_seed(3)
    if pad == "F.pad":
        model = nn.Sequential(LeftPadded(2, 4, 3, 2), nn.ReLU(), LeftPadded(4, 3, 2, 4))
    else:

        def make(n: int) -> nn.Module:
            return nn.ConstantPad1d((n, 0), 0.0) if pad == "ConstantPad1d" else nn.ZeroPad1d((n, 0))

        model = nn.Sequential(
            make(4), nn.Conv1d(2, 4, 3, dilation=2), nn.Tanh(), make(4), nn.Conv1d(4, 3, 2, dilation=4)
        )
    assert_streams_exactly(model, torch.randn(3, 2, 25), backend)


class NormedResidual(nn.Module):
    """Eval BatchNorm, dropout and a residual 1x1 downsample around a trimmed conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 5, 3, padding=4, dilation=2)
        self.bn = nn.BatchNorm1d(5)
        self.drop = nn.Dropout(0.3)
        self.down = nn.Conv1d(3, 5, 1)
        running_mean, running_var = self.bn.running_mean, self.bn.running_var
        assert running_mean is not None and running_var is not None  # track_running_stats is on
        with torch.no_grad():
            running_mean.uniform_(-1, 1)
            running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.relu(self.bn(self.conv(x)[:, :, :-4])))
        return torch.relu(h + self.down(x))


@pytest.mark.parametrize("backend", ENGINES)
def test_batchnorm_dropout_and_downsample_stream_exactly(backend):
    torch.manual_seed(4)
    assert_streams_exactly(NormedResidual().eval(), torch.randn(2, 3, 30), backend)


# --------------------------------------------------------------------------------------------------------------------
# pytorch-tcn
# --------------------------------------------------------------------------------------------------------------------

PYTORCH_TCN = {
    "default": {},
    "weight_norm": {"use_norm": "weight_norm", "kernel_size": 3},
    "no_norm": {"use_norm": None},
    "batch_norm": {"use_norm": "batch_norm"},
    "layer_norm": {"use_norm": "layer_norm"},
    "skip": {"use_skip_connections": True, "num_channels": [6, 8, 8]},
    "gelu": {"activation": "gelu", "kernel_size": 2},
    "projection": {"output_projection": 3, "output_activation": "tanh"},
}


@pytest.mark.parametrize("variant", sorted(PYTORCH_TCN))
def test_pytorch_tcn_streams_exactly(variant):
    torch.manual_seed(5)
    options = {"num_channels": [8, 8, 8], "dropout": 0.1, "causal": True, **PYTORCH_TCN[variant]}
    model = PytorchTCN(3, **options).eval()
    if variant == "batch_norm":
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 30)
    for backend in ENGINES:
        assert_streams_exactly(model, x, backend)


@pytest.mark.parametrize("embedding", ["constant", "per_step"])
def test_pytorch_tcn_embeddings_stream_exactly(embedding):
    torch.manual_seed(6)
    shape = (4,) if embedding == "constant" else (4, 30)
    model = PytorchTCN(3, [8, 8], kernel_size=3, embedding_shapes=[shape], embedding_mode="add").eval()
    x = torch.randn(2, 3, 30)
    e = torch.randn(2, 4) if embedding == "constant" else torch.randn(2, 4, 30)
    expected = offline(model, x, embeddings=e)
    s = stream(model, 2, backend="eager")
    if embedding == "constant":
        got = stepwise(s, x, embeddings=e)
    else:
        got = torch.cat([s.step_many(x[..., a : a + 5], embeddings=e[..., a : a + 5]) for a in range(0, 30, 5)], -1)
    torch.testing.assert_close(got, expected, atol=TOL, rtol=TOL)


def test_non_causal_pytorch_tcn_is_refused_naming_the_layer_that_sees_the_future():
    future = r"layer 'network\.0\.conv1' sees the future.*right padding of 'network\.0\.conv1\.padder\.pad'"
    with pytest.raises(ValueError, match=future):
        EagerStream(PytorchTCN(3, [8, 8], kernel_size=3, causal=False).eval(), 1)


# --------------------------------------------------------------------------------------------------------------------
# Hypothesis: causal stacks of plain torch layers
# --------------------------------------------------------------------------------------------------------------------


class Branch(nn.Module):
    """A residual branch: trimmed conv, activation, plus a 1x1 downsample of the input."""

    def __init__(self, cin: int, cout: int, k: int, d: int, norm) -> None:
        super().__init__()
        pad = (k - 1) * d
        self.body = nn.Sequential(
            norm(nn.Conv1d(cin, cout, k, padding=pad, dilation=d)), Chomp1d(pad) if pad else nn.Identity(), nn.ReLU()
        )
        self.down = nn.Conv1d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.down(x)


def torch_stack(spec: list[tuple], c_in: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    layers, c = [], c_in
    norms = {"none": lambda m: m, "weight_norm": weight_norm, "old_weight_norm": old_weight_norm}
    for kind, k, d, width, norm_name in spec:
        norm = norms[norm_name]
        if kind == "trim":
            pad = (k - 1) * d
            layers += [norm(nn.Conv1d(c, width, k, padding=pad, dilation=d))] + ([Chomp1d(pad)] if pad else [])
        elif kind == "left_pad":
            layers += [nn.ConstantPad1d(((k - 1) * d, 0), 0.0), norm(nn.Conv1d(c, width, k, dilation=d))]
        elif kind == "f_pad":
            layers.append(LeftPadded(c, width, k, d))
        else:
            layers.append(Branch(c, width, k, d, norm))
        layers.append(nn.Tanh())
        c = width
    return nn.Sequential(*layers)


torch_layer = st.tuples(
    st.sampled_from(["trim", "left_pad", "f_pad", "branch"]),
    st.integers(1, 4),
    st.integers(1, 5),
    st.integers(1, 5),
    st.sampled_from(["none", "weight_norm", "old_weight_norm"]),
)


@settings(max_examples=15)
@given(
    st.lists(torch_layer, min_size=1, max_size=4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.lists(st.integers(1, 7), min_size=1, max_size=3),
    st.integers(1, 25),
    st.integers(0, 10**6),
)
def test_random_causal_torch_stacks_stream_exactly(spec, c_in, batch, sizes, length, seed):
    model = torch_stack(spec, c_in, seed)
    x = torch.randn(batch, c_in, length, generator=torch.Generator().manual_seed(seed))
    expected = offline(model, x)
    for backend in ENGINES:
        s = stream(model, batch, backend=backend)
        torch.testing.assert_close(run_in_chunks(s, x, sizes), expected, atol=TOL, rtol=TOL)
        assert s.backend == backend


# --------------------------------------------------------------------------------------------------------------------
# Refusals and the construction check
# --------------------------------------------------------------------------------------------------------------------


def test_conv_that_sees_the_future_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"cannot stream layer '1' \(Conv1d\).*sees 1 future step"):
        EagerStream(nn.Sequential(nn.Conv1d(2, 2, 1), nn.Conv1d(2, 2, 3, padding=1)), 1)


def test_right_padding_that_nothing_trims_is_refused():
    with pytest.raises(ValueError, match=r"'0' pads the right by 1 step"):
        EagerStream(nn.Sequential(nn.Conv1d(2, 3, 2, padding=1), nn.ReLU()), 1)


def test_a_corrupted_stream_is_caught_by_the_construction_check(monkeypatch):
    model = LocuslabTCN(2, [4, 4], kernel_size=3).eval()
    EagerStream(model, 1)  # passes as it is

    def forgetful(self, x):  # a stream bug: the conv forgets its history between chunks
        h = torch.cat([torch.zeros_like(self.state), x], dim=2)
        self._extend(x)
        return self._future(self.inner(h))

    monkeypatch.setattr(StatefulConv, "forward", forgetful)
    with pytest.raises(ValueError, match=r"differs from the model's forward: first at layer 'network\.0\.conv1'"):
        EagerStream(model, 1)
    EagerStream(model, 1, verify=False)  # the opt-out builds it without the check


def test_the_check_runs_at_the_first_step_when_the_input_cannot_be_inferred():
    class Doubled(nn.Module):  # its first conv takes twice the input's channels: no input can be inferred from it
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(4, 2, 2, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(torch.cat([x, x], dim=1))[:, :, :-1].cumsum(-1)

    s = EagerStream(Doubled(), 1)  # constructed: the check waits for the input's shape
    with pytest.raises(ValueError, match="mixes time steps outside the layers the stream makes stateful"):
        s.step(torch.randn(1, 2))
