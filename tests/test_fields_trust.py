"""Receptive fields are exact or flagged, never guessed (issue 21, items 6-8): ops that move steps along time out of
order, groups of steps from different places, constant time matrices, and the probe's field over every output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dilated
from dilated.analysis import first_noncausal_layer, probe_receptive_field, receptive_field
from helpers import HandDelay
from model_grammar import Attention, LeftPad, Recurrent, TimeOp

LENGTH = 32


def autograd_steps(model: nn.Module, shape: tuple[int, ...], t: int, draws: int = 4) -> list[int]:
    """The input steps whose gradient reaches output step ``t`` (time last) over a few random inputs."""
    seen: set[int] = set()
    for seed in range(draws):
        x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(seed), requires_grad=True)
        out = model(x)
        (grad,) = torch.autograd.grad(out[..., t].sum(), x)
        seen |= set(torch.nonzero(grad.reshape(-1, shape[-1]).abs().sum(0)).flatten().tolist())
    return sorted(seen)


class After(nn.Module):
    """A 1x1 conv, then ``fn`` on its output ``(batch, 1, time)``."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 1)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.conv(x))


class FlippingConv(nn.Conv1d):
    """A Conv1d subclass whose forward reads time backwards."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flip(-1))


_REVERSE = torch.arange(LENGTH - 1, -1, -1)
_AHEAD = torch.clamp(torch.arange(LENGTH) + 2, max=LENGTH - 1)
_PAST = torch.triu(torch.ones(LENGTH, LENGTH))  # (t, s): output s reads t <= s

REORDERS = {
    "roll": lambda x: torch.roll(x, 3, -1),
    "flip": lambda x: torch.flip(x, (-1,)),
    "index_select-reversed": lambda x: x.index_select(-1, _REVERSE),
    "index_select-ahead": lambda x: x.index_select(-1, _AHEAD),
    "gather-reversed": lambda x: x.gather(-1, _REVERSE.expand(*x.shape[:-1], -1)),
    "einsum-time-matrix": lambda x: torch.einsum("bct,ts->bcs", x, _PAST.to(x.dtype)),
    "matmul-time-matrix": lambda x: x @ _PAST.to(x.dtype),
    "cat-then-step": lambda x: torch.cat([x, x], -1)[..., ::2],
}


@pytest.mark.parametrize("name", sorted(REORDERS))
def test_a_reordering_op_is_flagged_and_measured_never_guessed(name):
    model = After(REORDERS[name])
    rf = receptive_field(model, (1, LENGTH))
    assert rf.measured and rf.unfollowed, (name, rf.unfollowed)
    for t in (0, LENGTH // 2, LENGTH - 1):
        assert autograd_steps(model, (1, LENGTH), t) == list(probe_receptive_field(model, (1, LENGTH)).steps(t))


def test_a_model_reading_only_future_steps_is_not_causal_everywhere():
    model = After(REORDERS["index_select-ahead"])
    rf = receptive_field(model, (1, LENGTH))
    assert rf.causal is False
    assert first_noncausal_layer(model, (1, LENGTH)) == "<output>"
    assert "Not causal" in dilated.summary(model, input_shape=(1, LENGTH)).__str__()


def test_a_conv_subclass_that_flips_is_not_causal():
    model = nn.Sequential(FlippingConv(1, 1, 3, padding=2), nn.ReLU())
    rf = receptive_field(model, (1, LENGTH))
    assert rf.measured and rf.causal is False
    assert rf.layers[0].unfollowed.startswith("flip")


def test_cat_along_time_then_every_other_step_reads_one_step():
    """Output 16 of ``cat([x, x])[..., ::2]`` reads input step 0 only (once reported as [0, 30, 31])."""
    model = After(REORDERS["cat-then-step"])
    probe = probe_receptive_field(model, (1, LENGTH))
    assert probe.steps(16) == (0,) and probe.steps(3) == (6,)
    assert autograd_steps(model, (1, LENGTH), 16) == [0]


def test_cat_of_the_two_halves_of_time_is_still_followed():
    model = After(lambda x: torch.cat([x[..., :16], x[..., 16:]], -1))
    rf = receptive_field(model, (1, LENGTH))
    assert not rf.measured and (rf.size, rf.causal) == (1, True) and rf.steps(20) == [20]


def test_a_dense_linear_over_time_still_reads_every_step():
    model = After(nn.Linear(LENGTH, 4))
    rf = receptive_field(model, (1, LENGTH))
    assert not rf.measured and rf.whole_input


def test_keras_nested_sequential_is_analysed_inside_and_a_subclass_is_measured():
    keras = pytest.importorskip("keras")
    inner = keras.Sequential(
        [
            keras.Input((None, 4)),
            keras.layers.Conv1D(4, 3, padding="causal"),
            keras.layers.Conv1D(4, 3, padding="causal", dilation_rate=2),
        ]
    )
    x = keras.Input((64, 2))
    nested = keras.Model(x, inner(keras.layers.Conv1D(4, 1)(x)))
    rf = receptive_field(nested)
    assert (rf.size, rf.causal, rf.measured) == (7, True, False)

    class Reversed(keras.layers.Conv1D):
        def call(self, x):
            return super().call(keras.ops.flip(x, 1))

    x = keras.Input((64, 2))
    rf = receptive_field(keras.Model(x, Reversed(4, 3, padding="causal")(x)))
    assert rf.measured and rf.causal is False and "not a Keras layer class" in rf.unfollowed


def test_keras_layer_of_a_nested_model_is_probed_by_its_outer_inner_name():
    keras = pytest.importorskip("keras")

    class Plain(keras.layers.Conv1D):
        """A subclass that changes nothing: not followed, so measured inside the nested model."""

    inner = keras.Sequential(
        [keras.Input((None, 4)), keras.layers.Conv1D(4, 3, padding="causal"), Plain(4, 3, padding="causal")],
        name="inner",
    )
    x = keras.Input((64, 2))
    rf = receptive_field(keras.Model(x, inner(keras.layers.Conv1D(4, 1)(x))))
    row = next(r for r in rf.layers if r.name == "inner.plain")
    assert (row.measured, row.size, row.causal) == (True, 5, "unknown")
    assert rf.causality.startswith("Causal: unknown (layer inner.plain is not followed")


def test_a_field_still_growing_at_the_cap_is_at_least_its_size():
    """A cumsum after a measured layer: the probe doubles the input up to 8192 steps and reports ">=" there."""
    model = nn.Sequential(nn.Conv1d(1, 1, 1), HandDelay(), After(lambda x: x.cumsum(-1)))
    rf = receptive_field(model, (1, LENGTH))
    assert rf.measured and rf.at_least and rf.size == 4096 and rf.causal == "unknown"
    assert "Receptive field: at least 4096 input steps" in str(dilated.summary(model, (1, LENGTH)))


def test_a_probe_lengthens_only_when_a_number_needs_it():
    probe = probe_receptive_field(nn.Conv1d(1, 1, 5, padding=2), (1, LENGTH))
    assert probe.steps(16) == tuple(range(14, 19)) and "_lengthened" not in probe.__dict__
    assert (probe.size, probe.at_least) == (5, False)
    assert probe.longer.input_length == 2 * LENGTH  # one doubling, which shows no step at a new distance
    cumsum = probe_receptive_field(After(lambda x: x.cumsum(-1)), (1, LENGTH))
    assert cumsum.steps(16) == tuple(range(17)) and cumsum.at_least and cumsum.longer.input_length == 8192


def test_a_flip_then_causal_attention_stops_lengthening_where_a_forward_outgrows_linear_cost():
    """Seed 3's slow draw of the fields fuzzer (it ran for more than 16 CPU-minutes): the attention after a flip
    reads every later step, so its probe doubled the input up to 8192 steps, each forward costing length^2. It now
    stops where one forward would cost more than 4x linear growth (counted floating-point operations: the same on
    every machine) and says "at least"."""
    model = nn.Sequential(
        nn.Sequential(LeftPad(0, 1), nn.Conv1d(4, 8, 2)),
        TimeOp("flip", 1),
        Attention(8, 1, causal=True),
        Recurrent(nn.LSTM(8, 2, batch_first=True, bidirectional=True)),
    ).double()
    rf = receptive_field(model.eval(), (4, 5))
    attention = next(row for row in rf.layers if row.name == "2.attention")
    assert (attention.measured, attention.at_least, attention.size, attention.causal) == (True, True, 161, False)
    assert (rf.measured, rf.whole_input, rf.size) == (True, True, 5)  # 161: measured on 320 steps, not 8192


def test_a_probe_of_a_layer_runs_the_model_only_up_to_it():
    lengths: list[int] = []

    class Seen(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            lengths.append(x.shape[-1])
            return x

    probe = probe_receptive_field(nn.Sequential(nn.Conv1d(1, 1, 3), Seen()), (1, LENGTH), module="0")
    assert (probe.size, probe.start, lengths) == (3, 0, [])


class _PaddedStack(nn.Module):
    """Two causal convs (k=2, dilations 1 and 2): a field of 4 steps."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Conv1d(2, 4, 2), nn.Conv1d(4, 4, 2, dilation=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(nn.functional.pad(self.first(nn.functional.pad(x, (1, 0))), (2, 0)))


class _HoldsAScriptedStack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = torch.jit.script(_PaddedStack())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.inner(x))


@pytest.mark.parametrize("form", ["script", "trace", "scripted-child"])
def test_torchscript_is_measured_never_taken_for_a_constant(form):
    # A traced model's ops run in TorchScript's interpreter, out of the tracer's sight: its output used to read as a
    # constant (field 0), and a scripted one raised torch's "hooks not supported on ScriptModules".
    plain = _PaddedStack().eval()
    model = {
        "script": lambda: torch.jit.script(plain),
        "trace": lambda: torch.jit.trace(plain, torch.randn(1, 2, 32)),
        "scripted-child": lambda: _HoldsAScriptedStack().eval(),
    }[form]()
    rf, followed = receptive_field(model, (2, 32)), receptive_field(plain, (2, 32))
    assert rf.measured and "TorchScript" in (rf.unfollowed or "")
    assert (rf.size, rf.start) == (4, -3) == (followed.size, followed.start)
    assert "measured by the probe" in str(dilated.summary(model, (2, 32)))
