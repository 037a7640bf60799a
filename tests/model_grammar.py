"""A grammar of random torch sequence models ``(batch, channels, time) -> (batch, channels', time')`` for differential
tests (Csmith-style): hypothesis draws models wide enough to include what ``dilated`` does not support, and a test
asserts one invariant on every draw (a stream equal to the model's forward or a one-line refusal; a receptive field
flagged or containing every step autograd finds).

Use :func:`models`: a strategy of ``(model, input_shape, description)``, or :func:`tagged_models`, which adds the
parts that may shrink a gradient (see :attr:`Part.shrinks`). ``input_shape`` is ``(batch, channels,
time)`` with ``time`` long enough for every layer (any longer length works too, except where a TorchScript trace
baked a length in: the model's own forward then refuses it); ``description`` is one line naming every part and
its arguments, so a failing draw reads as a model. The model is in the mode (train/eval) and dtype
(float32/float64) the draw chose, possibly wrapped by ``torch.jit.script`` or ``torch.jit.trace``.

The grammar (each part maps ``(B, C, T)`` to ``(B, C', T')``):

- convs: causal (left ``F.pad``, or symmetric padding then a right trim), "same", "valid" and explicit padding,
  with dilation, stride and groups; a Linear over channels;
- ``F.pad`` of either side, trims and strided slices along time, delays made of ``cat`` along time;
- norms: BatchNorm1d (with and without running statistics), LayerNorm over channels, InstanceNorm1d, GroupNorm;
- activations with random arguments passed positionally or by keyword, as modules and as functions;
- time mixing: roll, flip, cumsum, an FFT low-pass, a branch on the input's length, average/max pooling,
  GRU/LSTM (one- or two-way), self-attention (causal mask or none), Dropout;
- composition: residual sums over a part that keeps the shape, gates ``tanh(a) * sigmoid(b)``, ``cat`` of two
  branches along channels.

A part *shrinks* a gradient where its output can be flat in an input it reads on every input drawn: a max (only the
winner gets a gradient), a ReLU, clamp or hardtanh (zero beyond their thresholds: a dead unit), a LayerNorm over one
channel (its output is a constant). Every other part's gradient is non-zero at a generic input, so autograd on a few
random inputs finds exactly the steps a model reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

# ---- parts whose forward is more than one torch module (all TorchScript-compatible) --------------------------------


class LeftPad(nn.Module):
    """``F.pad`` of ``left`` zeros before and ``right`` zeros after the time axis."""

    def __init__(self, left: int, right: int) -> None:
        super().__init__()
        self.left, self.right = left, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (self.left, self.right))


class Trim(nn.Module):
    """Drop ``start`` steps at the front and ``end`` at the back, keeping every ``step``-th: ``x[..., a:-b:s]``."""

    def __init__(self, start: int, end: int, step: int) -> None:
        super().__init__()
        self.start, self.end, self.step = start, end, step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.start : x.shape[-1] - self.end : self.step]


class Delay(nn.Module):
    """``cat`` along time: ``steps`` zeros, then the input without its last ``steps`` (a pure delay)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zeros = x.new_zeros(*x.shape[:-1], self.steps)
        return torch.cat([zeros, x], dim=-1)[..., : x.shape[-1]]  # any length, shorter than the delay too


class TimeOp(nn.Module):
    """One op along time: ``roll``, ``flip``, ``cumsum``, ``lowpass`` (rfft, keep ``k`` bins, irfft) or ``branch``
    (a cumsum only when the input is longer than ``k`` steps)."""

    def __init__(self, op: str, k: int) -> None:
        super().__init__()
        self.op, self.k = op, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "roll":
            return torch.roll(x, self.k, -1)
        if self.op == "flip":
            return torch.flip(x, [-1])
        if self.op == "cumsum":
            return torch.cumsum(x, -1)
        if self.op == "lowpass":
            spectrum = torch.fft.rfft(x, dim=-1)
            keep = torch.arange(spectrum.shape[-1], device=x.device) < self.k
            return torch.fft.irfft(spectrum * keep, n=x.shape[-1], dim=-1)
        if x.shape[-1] > self.k:  # "branch"
            return x.cumsum(-1)
        return x


class Activation(nn.Module):
    """A functional activation with its arguments passed positionally (``args``) or by keyword (``kwargs``)."""

    def __init__(self, name: str, values: list[float], keyword: bool) -> None:
        super().__init__()
        self.name, self.values, self.keyword = name, values, keyword

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.values
        if self.name == "softplus":
            return F.softplus(x, beta=v[0], threshold=v[1]) if self.keyword else F.softplus(x, v[0], v[1])
        if self.name == "leaky_relu":
            return F.leaky_relu(x, negative_slope=v[0]) if self.keyword else F.leaky_relu(x, v[0])
        if self.name == "elu":
            return F.elu(x, alpha=v[0]) if self.keyword else F.elu(x, v[0])
        if self.name == "hardtanh":
            return F.hardtanh(x, min_val=v[0], max_val=v[1]) if self.keyword else F.hardtanh(x, v[0], v[1])
        if self.name == "clamp":
            return torch.clamp(x, min=v[0], max=v[1]) if self.keyword else torch.clamp(x, v[0], v[1])
        if self.name == "celu":
            return F.celu(x, alpha=v[0]) if self.keyword else F.celu(x, v[0])
        return torch.tanh(x) * v[0]  # "scaled_tanh"


class OverChannels(nn.Module):
    """A module over the channel axis at each step (Linear, LayerNorm): ``(B, C, T) -> (B, C', T)``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.transpose(1, 2)).transpose(1, 2)


class Recurrent(nn.Module):
    """A GRU or LSTM over time, batch first: ``(B, C, T) -> (B, hidden * directions, T)``."""

    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x.transpose(1, 2))
        return y.transpose(1, 2)


class Attention(nn.Module):
    """Self-attention over time (one head per ``heads``), with a causal mask or none."""

    def __init__(self, channels: int, heads: int, causal: bool) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)
        n = h.shape[1]
        mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1) if self.causal else None
        y, _ = self.attention(h, h, h, attn_mask=mask, need_weights=False)
        return y.transpose(1, 2)


class Residual(nn.Module):
    """``x + inner(x)`` (``inner`` keeps the shape)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.inner(x)


class Gate(nn.Module):
    """WaveNet's gate: ``tanh(a) * sigmoid(b)`` of the two channel halves of ``inner(x)``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.inner(x).chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)


class Branches(nn.Module):
    """``cat`` of two branches along channels (both keep the time axis alike)."""

    def __init__(self, left: nn.Module, right: nn.Module) -> None:
        super().__init__()
        self.left, self.right = left, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.left(x), self.right(x)], dim=1)


# ---- the grammar ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """A drawn part: its module, output channels, how it maps lengths and one line describing it.

    The input length it needs for ``n`` output steps is ``(n - 1) * stride + span`` (at least ``n`` when it keeps
    the length: ``stride 1, span 1``). ``shrinks``: it may shrink a gradient (see the module docstring).
    """

    module: nn.Module
    channels: int
    text: str
    stride: int = 1
    span: int = 1
    shrinks: bool = False

    @property
    def keeps_length(self) -> bool:
        return self.stride == 1 and self.span == 1


Draw = st.DrawFn


def _conv(draw: Draw, c: int, keep_length: bool = False) -> Part:
    kernel, dilation = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    out = draw(st.sampled_from([c, 2 * c, max(1, c // 2) if c > 1 else c, draw(st.integers(1, 6))]))
    groups = c if out % c == 0 and draw(st.booleans()) else 1
    kinds = ["causal", "chomp", "same"] + ([] if keep_length else ["valid", "explicit", "strided", "right"])
    kind = draw(st.sampled_from(kinds))
    reach = dilation * (kernel - 1)
    args = f"{c}->{out} k={kernel} d={dilation}" + (f" groups={groups}" if groups > 1 else "")
    if kind == "same":
        conv = nn.Conv1d(c, out, kernel, dilation=dilation, padding="same", groups=groups)
        return Part(conv, out, f"conv[same {args}]")
    if kind == "causal":
        module = nn.Sequential(LeftPad(reach, 0), nn.Conv1d(c, out, kernel, dilation=dilation, groups=groups))
        return Part(module, out, f"conv[causal F.pad {args}]")
    if kind == "chomp":  # locuslab: symmetric padding, then trim the right
        conv = nn.Conv1d(c, out, kernel, dilation=dilation, padding=reach, groups=groups)
        return Part(nn.Sequential(conv, Trim(0, reach, 1)), out, f"conv[padding={reach} + chomp {args}]")
    if kind == "right":  # pads only the right: reads the future
        module = nn.Sequential(LeftPad(0, reach), nn.Conv1d(c, out, kernel, dilation=dilation, groups=groups))
        return Part(module, out, f"conv[right F.pad {args}]")
    stride = draw(st.integers(1, 3)) if kind == "strided" else 1
    padding = draw(st.integers(0, reach)) if kind == "explicit" else 0
    if kind == "strided":
        left = reach
        conv = nn.Conv1d(c, out, kernel, stride=stride, dilation=dilation, groups=groups)
        return Part(nn.Sequential(LeftPad(left, 0), conv), out, f"conv[causal stride={stride} {args}]", stride, 1)
    conv = nn.Conv1d(c, out, kernel, dilation=dilation, padding=padding, groups=groups)
    return Part(conv, out, f"conv[{kind} padding={padding} {args}]", 1, max(1, reach + 1 - 2 * padding))


def _activation(draw: Draw, c: int) -> Part:
    keyword = draw(st.booleans())
    form = "keyword" if keyword else "positional"
    name = draw(
        st.sampled_from(
            ["relu", "tanh", "sigmoid", "gelu", "prelu", "softplus_module", "leaky_module", "elu_module"]
            + ["softplus", "leaky_relu", "elu", "hardtanh", "clamp", "celu", "scaled_tanh"]
        )
    )
    small = st.floats(0.05, 3.0).map(lambda v: round(v, 3))
    if name in ("relu", "tanh", "sigmoid"):
        return Part({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[name](), c, name, shrinks=name == "relu")
    if name == "gelu":
        approximate = draw(st.sampled_from(["none", "tanh"]))
        return Part(nn.GELU(approximate=approximate), c, f"GELU(approximate={approximate!r})")
    if name == "prelu":
        return Part(nn.PReLU(draw(st.sampled_from([1, c]))), c, "PReLU")
    if name == "softplus_module":
        beta, threshold = draw(small), draw(st.floats(0.5, 20.0).map(lambda v: round(v, 2)))
        softplus = nn.Softplus(beta=beta, threshold=threshold) if keyword else nn.Softplus(beta, threshold)
        return Part(softplus, c, f"nn.Softplus({beta}, {threshold}, {form})")
    if name == "leaky_module":
        slope = draw(small)
        leaky = nn.LeakyReLU(negative_slope=slope) if keyword else nn.LeakyReLU(slope)
        return Part(leaky, c, f"nn.LeakyReLU({slope}, {form})")
    if name == "elu_module":
        alpha = draw(small)
        return Part(nn.ELU(alpha=alpha) if keyword else nn.ELU(alpha), c, f"nn.ELU({alpha}, {form})")
    low = draw(st.floats(-3.0, 0.0).map(lambda v: round(v, 2)))
    values = {
        "softplus": [draw(small), draw(st.floats(0.5, 20.0).map(lambda v: round(v, 2)))],
        "hardtanh": [low, low + draw(small)],
        "clamp": [low, low + draw(small)],
    }.get(name, [draw(small)])
    clips = name in ("hardtanh", "clamp")
    return Part(Activation(name, values, keyword), c, f"F.{name}{tuple(values)} {form}", shrinks=clips)


def _norm(draw: Draw, c: int) -> Part:
    kind = draw(st.sampled_from(["batch", "batch_no_stats", "layer", "instance", "group"]))
    if kind == "batch":
        norm = nn.BatchNorm1d(c)
        norm.running_mean = torch.empty(c).uniform_(-1, 1)  # non-trivial running statistics
        norm.running_var = torch.empty(c).uniform_(0.5, 2)
        return Part(norm, c, "BatchNorm1d")
    if kind == "batch_no_stats":
        return Part(nn.BatchNorm1d(c, track_running_stats=False), c, "BatchNorm1d(track_running_stats=False)")
    if kind == "layer":
        return Part(OverChannels(nn.LayerNorm(c)), c, "LayerNorm over channels", shrinks=c == 1)
    if kind == "instance":
        affine, track = draw(st.booleans()), draw(st.booleans())
        text = f"InstanceNorm1d(affine={affine}, track_running_stats={track})"
        return Part(nn.InstanceNorm1d(c, affine=affine, track_running_stats=track), c, text)
    groups = draw(st.sampled_from([g for g in (1, 2, c) if c % g == 0]))
    return Part(nn.GroupNorm(groups, c), c, f"GroupNorm({groups}, {c})")


def _time(draw: Draw, c: int) -> Part:
    kind = draw(st.sampled_from(["pad", "trim", "slice", "delay", "roll", "flip", "cumsum", "lowpass", "branch"]))
    k = draw(st.integers(1, 6))
    if kind == "pad":
        left, right = draw(st.integers(0, 4)), draw(st.integers(0, 2))
        return Part(LeftPad(left, right), c, f"F.pad({left}, {right})")
    if kind == "trim":
        start, end = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        return Part(Trim(start, end, 1), c, f"x[..., {start}:-{end}]", 1, start + end + 1)
    if kind == "slice":
        step = draw(st.integers(2, 3))
        return Part(Trim(0, 0, step), c, f"x[..., ::{step}]", step, 1)
    if kind == "delay":
        return Part(Delay(k), c, f"delay {k} by cat")
    if kind in ("lowpass", "branch"):
        k = draw(st.integers(2, 80))
    return Part(TimeOp(kind, k), c, f"{kind}({k})")


def _mixer(draw: Draw, c: int) -> Part:
    kind = draw(st.sampled_from(["avgpool", "maxpool", "gru", "lstm", "attention", "linear", "dropout"]))
    if kind in ("avgpool", "maxpool"):
        kernel = draw(st.integers(1, 4))
        stride = draw(st.integers(1, kernel))
        padding = draw(st.integers(0, kernel // 2))
        pool = (nn.AvgPool1d if kind == "avgpool" else nn.MaxPool1d)(kernel, stride, padding)
        text, span = f"{kind}(k={kernel}, s={stride}, p={padding})", max(1, kernel - 2 * padding)
        return Part(pool, c, text, stride, span, shrinks=kind == "maxpool")
    if kind in ("gru", "lstm"):
        hidden, two_way = draw(st.integers(1, 6)), draw(st.booleans())
        rnn = (nn.GRU if kind == "gru" else nn.LSTM)(c, hidden, batch_first=True, bidirectional=two_way)
        return Part(Recurrent(rnn), hidden * (1 + two_way), f"{kind}({c}->{hidden}, bidirectional={two_way})")
    if kind == "attention":
        heads, causal = draw(st.sampled_from([h for h in (1, 2) if c % h == 0])), draw(st.booleans())
        return Part(Attention(c, heads, causal), c, f"attention(heads={heads}, causal={causal})")
    if kind == "linear":
        out = draw(st.integers(1, 6))
        return Part(OverChannels(nn.Linear(c, out)), out, f"Linear over channels {c}->{out}")
    p = draw(st.sampled_from([0.0, 0.2]))
    return Part(nn.Dropout(p), c, f"Dropout({p})")


def _shaped(draw: Draw, c: int) -> Part:
    """A part keeping ``(C, T)``: a residual's or gate's inside."""
    inner = draw(st.sampled_from([_conv, _activation, _norm]))
    if inner is _conv:
        part = _conv(draw, c, keep_length=True)
        if part.channels != c:
            return Part(nn.Sequential(part.module, nn.Conv1d(part.channels, c, 1)), c, f"{part.text} + 1x1")
        return part
    return inner(draw, c)


def _composite(draw: Draw, c: int) -> Part:
    kind = draw(st.sampled_from(["residual", "gate", "branches"]))
    if kind == "residual":
        inner = _shaped(draw, c)
        return Part(Residual(inner.module), c, f"residual({inner.text})", shrinks=inner.shrinks)
    if kind == "gate":
        conv = _conv(draw, c, keep_length=True)
        doubled = nn.Sequential(conv.module, nn.Conv1d(conv.channels, 2 * c, 1))
        return Part(Gate(doubled), c, f"gate({conv.text})")
    left, right = _shaped(draw, c), _shaped(draw, c)
    text = f"cat[{left.text} | {right.text}]"
    return Part(Branches(left.module, right.module), 2 * c, text, shrinks=left.shrinks or right.shrinks)


@st.composite
def parts(draw: Draw, channels: int) -> Part:
    """One part over ``channels`` inputs, drawn from every family of the grammar."""
    family = draw(st.sampled_from([_conv, _conv, _activation, _norm, _time, _mixer, _composite]))
    return family(draw, channels)


def _needed(chain: list[Part], out_steps: int) -> int:
    """Input steps the chain needs for ``out_steps`` output steps."""
    n = out_steps
    for part in reversed(chain):
        n = (n - 1) * part.stride + part.span
    return n


def models(
    max_parts: int = 5, wrappers: bool = True, modes: bool = True, float64: bool = True
) -> st.SearchStrategy[tuple[nn.Module, tuple[int, int, int], str]]:
    """A random model, its input shape ``(batch, channels, time)`` and a one-line description of it.

    Args:
        max_parts: at most this many parts in sequence (at least one).
        wrappers: may wrap the model in ``torch.jit.script`` or ``torch.jit.trace``.
        modes: may leave the model in train mode (else eval).
        float64: may convert the model to float64 (else float32).
    """
    return tagged_models(max_parts, wrappers, modes, float64).map(lambda drawn: drawn[:3])


@st.composite
def tagged_models(
    draw: Draw, max_parts: int = 5, wrappers: bool = True, modes: bool = True, float64: bool = True
) -> tuple[nn.Module, tuple[int, int, int], str, tuple[str, ...]]:
    """What :func:`models` draws (same arguments), and the descriptions of the parts that may shrink a gradient
    (see :attr:`Part.shrinks`; empty: autograd finds every step the model reads)."""
    channels = draw(st.integers(1, 4))
    chain: list[Part] = []
    c = channels
    for _ in range(draw(st.integers(1, max_parts))):
        part = draw(parts(c))
        chain.append(part)
        c = part.channels
    model: nn.Module = nn.Sequential(*(part.module for part in chain))
    train = modes and draw(st.booleans())
    model.train(train)
    dtype = torch.float64 if float64 and draw(st.booleans()) else torch.float32
    model.to(dtype)
    batch = draw(st.integers(1, 3))
    shape = (batch, channels, _needed(chain, draw(st.integers(4, 24))))
    wrapper = draw(st.sampled_from(["none", "script", "trace"])) if wrappers else "none"
    if wrapper == "script":
        try:
            model = torch.jit.script(model)
        except Exception:  # some parts (attention's optional mask) do not script: trace instead, and say so
            wrapper = "trace (script failed)"
    if wrapper.startswith("trace"):
        model = torch.jit.trace(model, torch.randn(shape, dtype=dtype), check_trace=False)
    mode = "train" if train else "eval"
    description = f"[{' -> '.join(p.text for p in chain)}] {mode} {str(dtype)[6:]} jit={wrapper} input={shape}"
    return model, shape, description, tuple(part.text for part in chain if part.shrinks)
