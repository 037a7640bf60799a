"""dilated.receptive_field (the dataflow analysis) against dilated.probe_receptive_field (the measurement).

Random torch graphs with parallel branches, residual and skip sums, gates, concatenation, pad + trim, strides,
pooling, upsampling and transposed convs: the analysis must give exactly the steps the probe measures, and the
same jump. Then the gated WaveNet (65) and the registered models, and the op-by-op coverage.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

import dilated
from dilated.analysis import first_noncausal_layer, probe_receptive_field, receptive_field
from dilated.analysis._fields import Field, Steps
from dilated.examples.gated_wavenet import build
from dilated.layers import Conv1d, Dense
from dilated.models import build_model, example_input_shape

LENGTH = 96
CHANNELS = 3


class Chomp(nn.Module):
    """locuslab's Chomp1d: drop the last ``n`` steps."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : -self.n] if self.n else x


class Branches(nn.Module):
    """Two parallel paths, joined by ``join``: ``cat`` (channels), ``sum`` (residual/skip) or ``gate``."""

    def __init__(self, a: nn.Module, b: nn.Module, join: str) -> None:
        super().__init__()
        self.a, self.b, self.join = a, b, join

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a(x), self.b(x)
        steps = min(a.shape[-1], b.shape[-1])  # align the newest steps (branches of different lengths)
        a, b = a[..., a.shape[-1] - steps :], b[..., b.shape[-1] - steps :]
        if self.join == "cat":
            return torch.cat([a, b], dim=1)[:, ::2]  # and keep every other channel: some of each path
        if self.join == "gate":
            return torch.tanh(a) * torch.sigmoid(b)
        return a + b


def random_layer(rng: random.Random, depth: int = 0) -> nn.Module:
    """One random time-mixing piece on ``CHANNELS`` channels (a branch point below ``depth`` 2). Inside branches
    every piece keeps the rate (strides, pooling and upsampling go on the trunk), as the two paths of a real
    model's sum or concatenation meet step for step."""
    rate = ["pool", "stride", "up", "transposed"] if depth == 0 else []
    kind = rng.choice(["dconv", "conv", "conv", "chomp", "pad", "wn", *rate] + (["branch"] * 3 if depth < 2 else []))
    k, d = rng.randint(1, 4), rng.randint(1, 4)
    if kind == "dconv":
        return Conv1d(CHANNELS, CHANNELS, k, dilation=d, padding=rng.choice(["causal", "same", "valid"]))
    if kind == "conv":
        return nn.Conv1d(CHANNELS, CHANNELS, k, dilation=d, padding=rng.randint(0, 2))
    if kind == "chomp":  # symmetric padding trimmed on the right: causal (locuslab's TCN)
        p = (k - 1) * d
        return nn.Sequential(nn.Conv1d(CHANNELS, CHANNELS, k, dilation=d, padding=p), Chomp(p))
    if kind == "pad":
        left, right = rng.randint(0, 3), rng.randint(0, 3)
        pad = rng.choice([nn.ConstantPad1d((left, right), 0.0), nn.ZeroPad1d((left, right))])
        return nn.Sequential(pad, Chomp(rng.randint(0, 2)))
    if kind == "pool":
        pool = rng.choice([nn.MaxPool1d, nn.AvgPool1d])
        return pool(rng.randint(2, 3), stride=rng.randint(1, 2), padding=1)
    if kind == "stride":
        return Conv1d(CHANNELS, CHANNELS, rng.randint(2, 4), stride=2, padding=rng.choice(["causal", "same"]))
    if kind == "up":
        return nn.Upsample(scale_factor=2)
    if kind == "transposed":
        return nn.ConvTranspose1d(CHANNELS, CHANNELS, rng.randint(1, 4), stride=rng.randint(1, 2))
    if kind == "wn":
        return weight_norm(Conv1d(CHANNELS, CHANNELS, k, dilation=d))
    return Branches(random_stack(rng, depth + 1), random_stack(rng, depth + 1), rng.choice(["cat", "sum", "gate"]))


def random_stack(rng: random.Random, depth: int = 0) -> nn.Module:
    layers = [random_layer(rng, depth) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.5:
        layers.insert(rng.randint(0, len(layers)), rng.choice([nn.ReLU(), nn.Tanh(), Dense(CHANNELS, CHANNELS)]))
    return nn.Sequential(*layers)


def random_model(seed: int) -> nn.Module | None:
    """A random graph that runs on ``(1, CHANNELS, LENGTH)`` and keeps at least 8 output steps, or ``None``."""
    torch.manual_seed(seed)
    model = nn.Sequential(random_stack(random.Random(seed)), Dense(CHANNELS, 2))
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, CHANNELS, LENGTH))
    except RuntimeError:  # too short for the random convs
        return None
    return model if 8 <= out.shape[-1] <= 4 * LENGTH else None


def agrees(model: nn.Module) -> bool:
    """The analysis reads exactly the steps the probe measures, at the middle step and its neighbour, with the
    same jump; where the middle field reaches out of the input, the probe's clipped steps are compared."""
    rf = receptive_field(model, (CHANNELS, LENGTH))
    probe = probe_receptive_field(model, (CHANNELS, LENGTH))
    assert not rf.measured, rf.unfollowed
    t = probe.reference
    same_steps = all(tuple(rf.steps(s)) == probe.steps(s) for s in (t, t + 1) if s < probe.length)
    inside = (
        rf.start is not None
        and rf.start + t * rf.jump >= 0
        and rf.size is not None
        and (rf.start + t * rf.jump + rf.size <= LENGTH)
    )
    return same_steps and (not inside or rf.jump == probe.jump)


def test_the_probe_finds_the_jump_of_fields_empty_on_some_steps():
    """A stride-2 transposed conv of kernel 1 leaves every other step empty, and a 2x upsampling then gives fields
    empty, a, a, empty, empty, b, b, ...: within each block the field does not move, across blocks it moves by one
    input step every 4 output steps (found by the random graphs below, seed 196620: the probe said 0)."""
    model = nn.Sequential(nn.ConvTranspose1d(3, 3, 1, stride=2), nn.Upsample(scale_factor=2.0), nn.Tanh())
    assert probe_receptive_field(model, (CHANNELS, LENGTH)).jump == Fraction(1, 4)
    assert agrees(model)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_random_torch_graphs_analysis_equals_probe(seed):
    model = random_model(seed)
    if model is None:
        return
    assert agrees(model)


@pytest.mark.slow
def test_census_of_random_torch_graphs():
    """The first 40 runnable random graphs: how many the analysis gets exactly right (all of them)."""
    models = [m for m in (random_model(seed) for seed in range(300)) if m is not None][:40]
    assert len(models) == 40
    assert sum(agrees(m) for m in models) == 40


def test_branches_are_parallel_not_stacked():
    # the case: two parallel dilated branches joined by concatenation, reported 2.6x too wide before
    model = nn.Sequential(Branches(Conv1d(3, 3, 3, dilation=4), Conv1d(3, 3, 3, dilation=1), "cat"), Dense(3, 1))
    rf = receptive_field(model, (3, 64))
    assert (rf.size, rf.fed, rf.start, rf.causal) == (9, 5, -8, True)
    assert rf.steps(63) == [55, 59, 61, 62, 63]


def test_a_bare_layer_is_its_own_row():
    """``nn.Conv1d`` given alone (no container) is one row, as in a Sequential of one, not an empty table."""
    bare = receptive_field(nn.Conv1d(1, 1, 3, dilation=2), (1, 32))
    wrapped = receptive_field(nn.Sequential(nn.Conv1d(1, 1, 3, dilation=2)), (1, 32))
    assert [(row.name, row.size, row.output_shape) for row in bare.layers] == [("conv1d", 5, (None, 1, 28))]
    assert [(row.size, row.output_shape) for row in wrapped.layers] == [(5, (None, 1, 28))]
    assert receptive_field(nn.LSTM(2, 3), (5, 2)).layers[0].name == "lstm"


@pytest.mark.parametrize("length", [128, 4096])
def test_gated_wavenet_in_torch_sees_65_steps(length):
    model = build()
    rf = receptive_field(model, (1, length))
    assert (rf.size, rf.start, rf.jump, rf.causal, rf.holes) == (65, -64, 1, True, 0)
    rows = {row.name: row for row in rf.layers}
    assert (rows["units.0.filter"].size, rows["units.0.gate"].size) == (3, 3)  # parallel: 3, not 4
    assert [rows[f"units.{i}.skip"].size for i in range(6)] == [3, 5, 9, 17, 33, 65]
    assert first_noncausal_layer(model, (1, length)) is None


def test_gated_wavenet_in_torch_agrees_with_the_probe():
    model = build(4)
    rf = receptive_field(model, (1, 200), probe=True)  # raises if the probe disagrees
    assert rf.steps(150) == list(range(86, 151))


@pytest.mark.parametrize("name", ["wavenet", "tcn", "translob", "deeplob"])
def test_registered_models(name):
    options = {
        "wavenet": {  # the full structure (gates, skips, categorical head) at narrow widths: the probe is cheap
            "layers_per_stack": 4,
            "stacks": 2,
            "quantization_channels": 16,
            "residual_channels": 8,
            "dilation_channels": 8,
            "skip_channels": 16,
        },
        "tcn": {"num_channels": (4, 4, 4)},
        "translob": {},
        "deeplob": {},
    }[name]
    model = build_model(name, **options)
    shape = example_input_shape(name, **options)
    rf = receptive_field(model, shape)
    probe = probe_receptive_field(model, shape)
    assert rf.steps(probe.reference if probe.axis is not None else 0) == list(probe.steps())
    if name in ("wavenet", "tcn"):
        assert (rf.size, rf.causal) == (model.receptive_field, True)
    else:
        assert rf.whole_input and probe.whole_input
    if name == "translob":
        conv = next(row for row in rf.layers if row.name == "conv.convs.4")
        assert conv.size == model.receptive_field == 32


def test_timing_of_the_largest_models_is_measured_not_asserted():
    """The analysis of a 30-block WaveNet and a 25-level TCN (field 67,108,863) runs; benchmarks/receptive_field.py
    times them."""
    wavenet = receptive_field(build_model("wavenet"), (256, 64))
    assert wavenet.size == 3071 and len(wavenet.layers) == 30 * 3 + 4 - 1 + 4 - 3
    tcn = receptive_field(build_model("tcn", num_channels=(2,) * 25, kernel_size=2), (1, 64))
    assert tcn.size == 1 + 2 * (2**25 - 1)


# --- op by op ---------------------------------------------------------------------------------------------------


class Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


OPS = {
    "transpose-conv2d-time-first": (
        lambda x: (
            F.conv2d(x.transpose(1, 2).unsqueeze(1), x.new_ones(1, 1, 3, 2), padding=(1, 0))
            .squeeze(1)
            .sum(-1, keepdim=True)
        ),
        3,
        -1,
    ),
    "narrow": (lambda x: x.narrow(-1, 2, x.shape[-1] - 2), 1, 2),
    "stack-channels": (lambda x: torch.stack([x, F.pad(x, (1, 0))[..., :-1]], 1).flatten(1, 2), 2, -1),
    "broadcast-global": (lambda x: x + x.mean(-1, keepdim=True), "all", None),
    "cumsum": (lambda x: x.cumsum(-1), "past", None),
    "interpolate": (lambda x: F.interpolate(x, scale_factor=3), 1, 0),
    "repeat-interleave": (lambda x: x.repeat_interleave(2, dim=-1), 1, 0),
    "reshape-flatten-linear": (
        lambda x: F.linear(x.transpose(1, 2).reshape(len(x), -1), x.new_ones(1, 96)),
        "all",
        None,
    ),
    "masked": (lambda x: x * (torch.arange(x.shape[-1]) % 2 == 0), 1, 0),
    "sdpa-causal": (lambda x: F.scaled_dot_product_attention(*(x.transpose(1, 2),) * 3, is_causal=True), "past", None),
    "sdpa": (lambda x: F.scaled_dot_product_attention(*(x.transpose(1, 2),) * 3), "all", None),
    "sdpa-band": (
        lambda x: F.scaled_dot_product_attention(
            *(x.transpose(1, 2),) * 3, attn_mask=torch.ones(32, 32, dtype=torch.bool).tril().triu(-3)
        ),
        4,
        -3,
    ),
    "lstm": (nn.Sequential(Lambda(lambda x: x.transpose(1, 2)), nn.LSTM(3, 2, batch_first=True)), "past", None),
    "bilstm": (nn.LSTM(3, 2, bidirectional=True, batch_first=True), "all", None),
    "mha-causal": (None, "past", None),
    "adaptive-pool": (nn.AdaptiveAvgPool1d(8), 4, 0),
    "instance-norm-running-stats": (nn.InstanceNorm1d(3, track_running_stats=True), 1, 0),  # eval: elementwise
    "instance-norm": (nn.InstanceNorm1d(3), "all", None),
    "global-max": (Lambda(lambda x: x.amax(-1)), "all", None),
}


class CausalSelfAttention(nn.Module):
    """``nn.MultiheadAttention`` over ``(T, B, C)`` with a boolean mask (True: may not attend)."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.permute(2, 0, 1)  # (T, B, C)
        mask = torch.ones(x.shape[-1], x.shape[-1], dtype=torch.bool).triu(1)
        return self.attention(seq, seq, seq, attn_mask=mask)[0].permute(1, 2, 0)


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_op_is_followed_and_agrees_with_the_probe(name):
    fn, size, start = OPS[name]
    model = fn if isinstance(fn, nn.Module) else Lambda(fn)
    if name == "bilstm":
        model = nn.Sequential(Lambda(lambda x: x.transpose(1, 2)), fn)
    if name == "mha-causal":
        model = CausalSelfAttention()
    shape = (3, 32)
    rf = receptive_field(model, shape, probe=True)
    assert not rf.measured
    if size == "all":
        assert rf.whole_input
    elif size == "past":
        assert rf.past or rf.whole_input
    else:
        assert (rf.size, rf.start) == (size, start)


def test_an_op_it_cannot_follow_is_named_and_measured():
    model = nn.Sequential(Conv1d(1, 2, 3), Lambda(lambda x: torch.fft.rfft(x, dim=-1).abs()))
    rf = receptive_field(model, (1, 32))
    assert rf.measured and "fft_rfft" in rf.unfollowed
    assert rf.whole_input  # measured: every frequency depends on every step
    assert not rf.layers[0].measured and rf.layers[0].size == 3  # the conv before it is still followed
    assert "* measured by the probe: the analysis cannot follow fft_rfft" in str(dilated.summary(model, (1, 32)))


def test_first_noncausal_layer_names_the_first_look_ahead():
    model = nn.Sequential(Conv1d(1, 2, 3), nn.ReLU(), Conv1d(2, 2, 3, padding="same"), Dense(2, 1))
    assert first_noncausal_layer(model, (1, 32)) == "2"
    assert first_noncausal_layer(build(), (1, 64)) is None


def test_fields_arithmetic():
    f = Field.identity().gather(1, 2, [Steps.of([-4, -3, -2, -1, 0])])  # k=5 s=2 causal
    assert (f.period, f.jump, f.at(3).values()) == (1, 2, [2, 3, 4, 5, 6])
    up = f.gather(2, 1, [Steps.of([0]), Steps.of([0])])  # nearest upsampling by 2: back to rate 1 in 2 phases
    assert up.rate == 1 and up.at(7).values() == f.at(3).values()
    assert Field.identity().prefix(4) == Steps.before(5)
    assert (Steps.before(3) | Steps.of([5])).clip(0, 9).values() == [0, 1, 2, 5]


def _linear_over_time(mask: torch.Tensor) -> nn.Module:
    """A Conv1d, then a Linear over its 16 time steps whose weight is zero where ``mask`` is False."""
    linear = nn.Linear(mask.shape[1], mask.shape[0])
    with torch.no_grad():
        linear.weight.copy_((torch.rand(mask.shape) + 0.1) * mask)
    return nn.Sequential(nn.Conv1d(2, 3, 1), linear)


def _reads(model: nn.Module, t: int) -> list[int]:
    """Input steps whose gradient reaches output step ``t``."""
    x = torch.randn(1, 2, 16, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(model.double()(x)[..., t].sum(), x)
    return torch.nonzero(grad.abs().sum(1)[0]).flatten().tolist()


_ONES = torch.ones(16, 16, dtype=torch.bool)
_EYE = torch.eye(16, dtype=torch.bool)
BANDS = {  # mask, then (size, start, causal) of the field followed from its zeros (size None: every past step)
    "triangular": (_ONES.tril(), (None, None, True)),
    "banded": (_ONES.tril().triu(-2), (3, -2, True)),
    "dilated": (_EYE | _EYE.roll(-3, 1).tril(), (4, -3, True)),
    "ahead": (_ONES.triu().tril(1), (2, 0, False)),
    "shorter-output": (_ONES[:10].tril(5), (None, None, False)),
}


@pytest.mark.parametrize("kind", BANDS)
def test_a_linear_over_time_with_a_band_of_weights_is_followed_from_its_zeros(kind):
    """The meta pass reads the model's own weight: a Toeplitz, banded or lower triangular nonzero pattern is a
    field like a conv's (the rows at the ends cut by the input's ends), equal to autograd's at every step."""
    mask, numbers = BANDS[kind]
    model = _linear_over_time(mask)
    rf = receptive_field(model, (2, 16))
    assert not rf.measured and (rf.size, rf.start, rf.causal) == numbers
    assert all(rf.steps(t) == _reads(model, t) for t in range(mask.shape[0]))


@pytest.mark.parametrize("kind", ["upper-triangular", "scattered", "full"])
def test_a_linear_over_time_without_a_band_is_measured_or_reads_every_step(kind):
    """Rows that read different offsets (an upper triangular matrix reads every later step, which a field has no
    form for; scattered zeros) are not followed and their measured field keeps the zeros; a full matrix reads
    every step (issue 21)."""
    scattered = torch.rand(16, 16, generator=torch.Generator().manual_seed(0)) > 0.5
    mask = {"upper-triangular": _ONES.triu(), "scattered": scattered, "full": _ONES}[kind]
    model = _linear_over_time(mask)
    rf = receptive_field(model, (2, 16))
    if kind == "full":
        assert not rf.measured and rf.whole_input and rf.steps(5) == list(range(16))
        return
    assert rf.measured and "rows read different offsets" in rf.unfollowed and not rf.whole_input
    assert list(probe_receptive_field(model, (2, 16)).steps(8)) == _reads(model, 8)


class LeftPad(nn.Module):
    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (self.steps, 0))


@pytest.mark.parametrize(("dilation", "length"), [(40, 24), (8, 12), (3, 8)])
def test_the_probe_lengthens_a_field_with_holes(dilation, length):
    """A causal conv k=2 whose middle output step reads only itself on the input given (its other tap lies before
    the input; the last step may not see it either): the probe lengthens the input until no new distance shows."""
    model = nn.Sequential(LeftPad(dilation), nn.Conv1d(1, 1, 2, dilation=dilation))
    probe = probe_receptive_field(model, (1, length))
    assert (probe.size, probe.start, probe.causal, probe.at_least) == (dilation + 1, -dilation, True, False)
    middle = length // 2  # on the input given, the middle step's field may show no gap at all
    assert probe.steps() == ((middle,) if dilation > middle else (middle - dilation, middle))


def test_steps_at_the_ends_read_no_padding_of_an_inner_layer():
    """A causal dilated conv, then a "same" conv (even kernel: one step of padding on the right): the last output
    step reads the padding after the first conv's output, which holds no input step (a fuzzer find)."""
    model = nn.Sequential(LeftPad(2), nn.Conv1d(2, 2, 2, dilation=2), nn.Conv1d(2, 1, 2, padding="same"))
    rf = receptive_field(model, (2, 4), probe=True)
    assert [rf.steps(t) for t in range(4)] == [[0, 1], [0, 1, 2], [0, 1, 2, 3], [1, 3]]
    assert (rf.size, rf.start) == (4, -2)  # the field of a step away from the ends
