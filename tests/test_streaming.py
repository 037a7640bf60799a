"""dilated.streaming and dilated.fast_stream: step-by-step outputs equal the offline forward pass, exactly.

Every test compares numbers: streamed step ``t`` against ``model(x)[..., t]`` (from the first step on, where zero
history must equal causal padding), the compiled kernel against the eager engine, resumed streams against
uninterrupted ones, ONNX Runtime against PyTorch. Tolerance 1e-5 in float32.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from dilated.layers import Conv1d, Dense, MaxPool1d
from dilated.models import build_model
from dilated.models._mulaw import one_hot
from dilated.streaming import EagerStream, FastStream, StepFunction, Unsupported, WindowStream, generate, stream
from dilated.streaming._fast.instructions import LAYOUT
from dilated.streaming._fast.kernel import kernel_for
from dilated.streaming._fast.memory import CACHE_LINE, aligned_zeros
from streaming_helpers import chunks, offline, run_in_chunks

TOL = 1e-5


# --------------------------------------------------------------------------------------------------------------------
# Test-local models: random causal stacks and a TCN-like residual stack
# --------------------------------------------------------------------------------------------------------------------

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky": lambda: nn.LeakyReLU(0.2),
    "identity": nn.Identity,
}


class Residual(nn.Module):
    """TCN-like block: two weight-normed causal convs, ReLU, dropout, 1x1 downsample when widths differ."""

    def __init__(self, cin: int, cout: int, k: int, d: int) -> None:
        super().__init__()
        self.conv1 = weight_norm(Conv1d(cin, cout, k, dilation=d))
        self.conv2 = weight_norm(Conv1d(cout, cout, k, dilation=d))
        self.drop = nn.Dropout(0.5)
        self.down = Dense(cin, cout) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.relu(self.conv1(x)))
        h = self.drop(torch.relu(self.conv2(h)))
        return torch.relu(h + (x if self.down is None else self.down(x)))


class Gated(nn.Module):
    """WaveNet-like gate: one conv to both halves, tanh * sigmoid, residual and skip 1x1 convs."""

    def __init__(self, c: int, k: int, d: int) -> None:
        super().__init__()
        self.conv = Conv1d(c, 2 * c, k, dilation=d)
        self.res, self.skip = Dense(c, c), Dense(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, g = self.conv(x).chunk(2, dim=1)
        z = torch.tanh(f) * torch.sigmoid(g)
        return x + self.res(z) + 0.5 * self.skip(z)


def random_stack(draw_layers: list[tuple], c_in: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    layers, c = [], c_in
    for kind, k, d, width, act in draw_layers:
        if kind == "conv":
            layers += [Conv1d(c, width, k, dilation=d), ACTIVATIONS[act]()]
            c = width
        elif kind == "residual":
            layers.append(Residual(c, width, k, d))
            c = width
        else:
            layers.append(Gated(c, k, d))
    return nn.Sequential(*layers).eval()  # (dropout: train mode is refused)


layer_spec = st.tuples(
    st.sampled_from(["conv", "conv", "residual", "gated"]),
    st.integers(1, 5),
    st.integers(1, 6),
    st.integers(1, 5),
    st.sampled_from(sorted(ACTIVATIONS)),
)


# --------------------------------------------------------------------------------------------------------------------
# Exactness on random stacks
# --------------------------------------------------------------------------------------------------------------------


@settings(max_examples=20)
@given(
    st.lists(layer_spec, min_size=1, max_size=4),
    st.integers(1, 4),
    st.integers(1, 3),
    st.lists(st.integers(1, 9), min_size=1, max_size=3),
    st.integers(1, 30),
    st.integers(0, 10**6),
)
def test_eager_stream_equals_offline_on_random_stacks(layers, c_in, batch, sizes, length, seed):
    model = random_stack(layers, c_in, seed)
    x = torch.randn(batch, c_in, length, generator=torch.Generator().manual_seed(seed))
    expected = offline(model, x)
    got = run_in_chunks(EagerStream(model, batch), x, sizes)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=TOL, rtol=TOL)
    assert not model.training  # untouched (eval, as random_stack made it)


@settings(max_examples=20)
@given(
    st.lists(layer_spec, min_size=1, max_size=4),
    st.integers(1, 4),
    st.sampled_from([1, 3, 17, 70, 130]),
    st.lists(st.integers(1, 9), min_size=1, max_size=3),
    st.integers(1, 25),
    st.integers(0, 10**6),
)
def test_fast_stream_equals_eager_and_offline_on_random_stacks(layers, c_in, batch, sizes, length, seed):
    model = random_stack(layers, c_in, seed)
    x = torch.randn(batch, c_in, length, generator=torch.Generator().manual_seed(seed))
    fast = FastStream(model, batch, fallback="raise", parallel_threshold=16, threads=2)
    # batch 17: one stream per lane, two threads over blocks of 4 streams and a remainder; batches 70 and 130:
    # groups of 64 and 128 lanes (the second group mostly idle padding), one group per block, one thread each
    fast.chunk = 1 if fast.lanes > 1 else 4
    assert fast.lanes == {70: 64, 130: 128}.get(batch, 1)
    got = run_in_chunks(fast, x, sizes)
    eager = run_in_chunks(EagerStream(model, batch), x, sizes)
    torch.testing.assert_close(got, eager, atol=TOL, rtol=TOL)
    torch.testing.assert_close(got, offline(model, x), atol=TOL, rtol=TOL)


def test_first_steps_equal_causal_zero_padding():
    torch.manual_seed(0)
    model = nn.Sequential(Conv1d(2, 3, 4, dilation=3), nn.Tanh(), Conv1d(3, 2, 3, dilation=5))
    x = torch.randn(1, 2, 3)  # much shorter than the receptive field (1 + 9 + 10 = 20)
    s = EagerStream(model, 1)
    for t in range(3):
        torch.testing.assert_close(s.step(x[..., t]), offline(model, x)[..., t], atol=TOL, rtol=TOL)


def test_streams_of_a_batch_are_independent():
    torch.manual_seed(1)
    model = nn.Sequential(Residual(2, 4, 3, 2), Residual(4, 4, 3, 4)).eval()
    x = torch.randn(3, 2, 20)
    batched = EagerStream(model, 3).step_many(x)
    for b in range(3):
        alone = EagerStream(model, 1).step_many(x[b : b + 1])
        torch.testing.assert_close(batched[b : b + 1], alone, atol=TOL, rtol=TOL)


# --------------------------------------------------------------------------------------------------------------------
# The library's models
# --------------------------------------------------------------------------------------------------------------------


def engines(model: nn.Module, batch: int):
    """The eager engine and the compiled one, with one stream per lane and with groups of 128 lanes."""
    yield EagerStream(model, batch)
    yield FastStream(model, batch, fallback="raise")
    yield FastStream(model, batch, fallback="raise", lanes=128)


@pytest.mark.parametrize("head", [None, "every_step", "last_step"])
def test_tcn_streams_exactly(head):
    options = {"input_channels": 3, "num_channels": (6, 6, 4), "kernel_size": 3, "dropout": 0.2}
    if head:
        options.update(output_size=2, last_step_only=head == "last_step")
    model = build_model("tcn", **options).eval()
    x = torch.randn(2, 3, 24)
    if head == "last_step":  # the model returns (B, out) for the last step: compare with every prefix
        expected = torch.stack([offline(model, x[..., : t + 1]) for t in range(x.shape[-1])], dim=-1)
    else:
        expected = offline(model, x)
    for s in engines(model, 2):
        torch.testing.assert_close(run_in_chunks(s, x, [1, 7, 3, 13]), expected, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("conditioning", ["none", "global", "local"])
def test_wavenet_streams_exactly(conditioning: str) -> None:
    options = {
        "layers_per_stack": 4,
        "stacks": 2,
        "residual_channels": 8,
        "dilation_channels": 8,
        "skip_channels": 16,
        "quantization_channels": 16,
    }
    kwargs: dict = {}
    if conditioning == "global":
        options["global_channels"] = 5
        kwargs["global_condition"] = torch.randn(2, 5)
    model = build_model("wavenet", **options).eval()
    codes = torch.randint(0, 16, (2, 45))
    x = one_hot(codes, 16)
    if conditioning == "local":
        model = build_model("wavenet", **options, local_channels=3).eval()
        local = torch.randn(2, 3, 45)
        expected = offline(model, x, local_condition=local)
        for s in engines(model, 2):
            outs = [
                s.step_many(x[..., a:b], local_condition=local[..., a:b], local_upsampled=True)
                for a, b in chunks(45, [1, 9, 4])
            ]
            torch.testing.assert_close(torch.cat(outs, -1), expected, atol=TOL, rtol=TOL)
        return
    expected = offline(model, x, **kwargs)
    for s in engines(model, 2):
        torch.testing.assert_close(run_in_chunks(s, x, [1, 9, 4], **kwargs), expected, atol=TOL, rtol=TOL)


def test_translob_conv_module_streams_exactly():
    model = build_model("translob")
    x = torch.randn(2, 40, 60)
    for s in engines(model.conv, 2):
        torch.testing.assert_close(run_in_chunks(s, x, [1, 11, 5]), offline(model.conv, x), atol=TOL, rtol=TOL)


def test_translob_window_stream_equals_offline_forward_on_each_window():
    model = build_model("translob", window=40).eval()
    x = torch.randn(2, 40, 90)
    s = WindowStream(model, 2)
    assert s.reach == 31  # TransLOB's conv receptive field 32 - 1: the window steps that see its start's padding
    outs = [s.step(x[..., t]) for t in range(90)]
    assert all(o is None for o in outs[:39]) and not WindowStream(model, 2).ready
    for t in range(39, 90):  # every window: exactly the offline forward on it
        torch.testing.assert_close(outs[t], offline(model, x[..., t - 39 : t + 1]), atol=TOL, rtol=TOL)
    with torch.no_grad():  # what a window's first steps see differs from their features over the whole history
        assert float((model.conv(x)[..., 39:79] - model.conv(x[..., 39:79])).abs().max()) > 0.01

    resumed = WindowStream(model, 2)
    resumed.load_state_dict(s.state_dict())
    more = torch.randn(2, 40)
    torch.testing.assert_close(resumed.step(more), s.step(more), atol=0, rtol=0)


# --------------------------------------------------------------------------------------------------------------------
# State: save, restore, reset
# --------------------------------------------------------------------------------------------------------------------


def roundtrip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@settings(max_examples=5)
@given(st.integers(1, 30), st.integers(1, 3), st.integers(0, 10**6))
def test_state_restore_mid_stream_continues_identically(split, batch, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(Residual(2, 4, 3, 3), Gated(4, 2, 5), Conv1d(4, 3, 4, dilation=2)).eval()
    x = torch.randn(batch, 2, 40)
    kinds = [
        EagerStream,
        lambda m, b: FastStream(m, b, fallback="raise"),
        lambda m, b: FastStream(m, b, fallback="raise", lanes=128),
    ]
    for make_first in kinds:
        first = make_first(model, batch)
        uninterrupted = torch.cat([first.step_many(x[..., :split]), first.step_many(x[..., split:])], -1)
        for make_second in kinds:  # the state format is shared: restore into either engine
            a = make_first(model, batch)
            a.step_many(x[..., :split])
            b = make_second(model, batch)
            b.load_state_dict(roundtrip(a.state_dict()))
            assert b.steps == split
            torch.testing.assert_close(b.step_many(x[..., split:]), uninterrupted[..., split:], atol=TOL, rtol=TOL)


def test_state_is_plain_tensors_and_safetensors_compatible():
    safetensors = pytest.importorskip("safetensors.torch")
    model = build_model("tcn", input_channels=2, num_channels=(4, 4), kernel_size=2).eval()
    s = EagerStream(model, 3)
    s.step_many(torch.randn(3, 2, 9))
    state = s.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert state["steps"].item() == 9 and state["blocks.1.conv2"].shape == (3, 4, 2)
    restored = safetensors.load(safetensors.save(state))
    t = EagerStream(model, 3)
    t.load_state_dict(restored)
    x = torch.randn(3, 2)
    torch.testing.assert_close(t.step(x), s.step(x), atol=0, rtol=0)


def test_reset_and_state_errors():
    model = nn.Sequential(Conv1d(2, 2, 3, dilation=2))
    x = torch.randn(1, 2, 10)
    for s in engines(model, 1):
        first = s.step_many(x)
        s.reset()
        assert s.steps == 0
        torch.testing.assert_close(s.step_many(x), first, atol=TOL, rtol=TOL)
        with pytest.raises(ValueError, match="does not match"):
            s.load_state_dict({"steps": torch.tensor(0), "other": torch.zeros(1)})
        with pytest.raises(ValueError, match="has shape"):
            s.load_state_dict({"steps": torch.tensor(0), "0": torch.zeros(2, 2, 4)})
        with pytest.raises(ValueError, match="streams on the first axis"):
            s.step(torch.randn(3, 2))


# --------------------------------------------------------------------------------------------------------------------
# The user's model is untouched; weight norm; refusals
# --------------------------------------------------------------------------------------------------------------------


def test_model_is_not_modified_and_weights_are_read_live():
    model = build_model("tcn", input_channels=2, num_channels=(4, 4), kernel_size=3, dropout=0.5).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules = dict(model.named_modules())
    s = EagerStream(model, 2)
    s.step_many(torch.randn(2, 2, 12))
    assert not any(m.training for m in model.modules())
    assert dict(model.named_modules()) == modules
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    with torch.no_grad():  # the eager stream reads the current weights (weight norm included)
        model.blocks[0].conv1.parametrizations.weight.original0.mul_(2.0)
    s.reset()
    x = torch.randn(2, 2, 12)
    torch.testing.assert_close(s.step_many(x), offline(model, x), atol=TOL, rtol=TOL)


@pytest.mark.parametrize(
    "layer, name",
    [
        (Conv1d(2, 2, 3, padding="same"), "non-causal"),
        (Conv1d(2, 2, 3, stride=2), "strided"),
        (MaxPool1d(2), "pooling"),
        (nn.Conv1d(2, 2, 3, padding=1), "torch conv"),
    ],
)
def test_refuses_layers_that_mix_time_otherwise(layer, name):
    model = nn.Sequential(Conv1d(2, 2, 2), layer)
    with pytest.raises(ValueError, match=r"cannot stream layer '1'"):
        EagerStream(model, 1)
    s = EagerStream(model, 1, strict=False)  # deferred to the call
    with pytest.raises(ValueError, match=r"cannot stream layer '1'"):
        s.step(torch.randn(1, 2))


def test_refuses_attention_and_rnn_models():
    with pytest.raises(ValueError, match=r"cannot stream layer 'blocks.0' \(TransformerBlock\)"):
        EagerStream(build_model("translob"), 1)
    with pytest.raises(ValueError, match="cannot stream layer"):
        EagerStream(build_model("deeplob"), 1)

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.rnn = Conv1d(2, 2, 2), nn.GRU(2, 2, batch_first=True)

    with pytest.raises(ValueError, match=r"'rnn' \(GRU\).*every time step"):
        EagerStream(Recurrent(), 1)


def test_conv_called_twice_per_step_is_refused():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = Conv1d(2, 2, 2)

        def forward(self, x):
            return self.conv(self.conv(x))

    with pytest.raises(ValueError, match="more than once per forward"):
        EagerStream(Twice(), 1).step(torch.randn(1, 2))


def test_fast_path_falls_back_to_eager_with_a_message():
    class Clamped(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = Conv1d(2, 3, 2)

        def forward(self, x):
            return self.conv(x).clamp(-0.1, 0.1)  # clamp is not in the op list

    model = Clamped()
    x = torch.randn(2, 2, 8)
    s = stream(model, 2, backend="fast")
    with pytest.warns(UserWarning, match="falling back to the eager engine.*'clamp'"):
        got = s.step_many(x)
    assert s.backend == "eager" and "clamp" in s.reason
    torch.testing.assert_close(got, offline(model, x), atol=TOL, rtol=TOL)
    with pytest.raises(Unsupported, match="clamp"):
        FastStream(model, 2, fallback="raise").step(x[..., 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = stream(model, 2)  # "auto" falls back silently
        torch.testing.assert_close(auto.step_many(x), got, atol=TOL, rtol=TOL)


def test_auto_backend_is_fast_for_supported_models_and_numpy_step_matches():
    model = build_model("tcn", input_channels=3, num_channels=(8, 8), kernel_size=2).eval()
    s = stream(model, 1)
    x = torch.randn(1, 3, 6)
    first = s.step(x[..., 0])
    assert s.backend == "fast"
    second = s.step_numpy(x[..., 1].numpy())
    expected = offline(model, x)
    torch.testing.assert_close(first, expected[..., 0], atol=TOL, rtol=TOL)
    torch.testing.assert_close(torch.from_numpy(second), expected[..., 1], atol=TOL, rtol=TOL)


def test_single_steps_are_exact_and_their_outputs_never_share_memory():
    """The hot single step writes each step's outputs into the next slot of a preallocated block: more steps than
    a block holds, through torch and numpy alternately, and every output still equals the offline forward after
    all the later steps ran."""
    torch.manual_seed(0)
    model = build_model("tcn", input_channels=3, num_channels=(8, 8), kernel_size=2).eval()
    x = torch.randn(2, 3, 300)
    s = FastStream(model, 2, fallback="raise")
    outs = []
    for t in range(x.shape[-1]):
        x_t = x[..., t].contiguous()
        outs.append(torch.from_numpy(s.step_numpy(x_t.numpy())) if t % 3 == 2 else s.step(x_t))
        assert s._hot is not None  # the hot path ran (contiguous float32 input, one thread)
    assert s._hot.slots < x.shape[-1]  # (so the steps went through more than one block)
    torch.testing.assert_close(torch.stack(outs, -1), offline(model, x), atol=TOL, rtol=TOL)


def test_single_steps_take_any_layout_and_dtype_of_input():
    """Inputs the hot path does not take (strided views, float64, Fortran order, requiring grad) take the general
    one, with the same numbers; numpy in gives numpy out, torch in gives torch out."""
    torch.manual_seed(1)
    model = build_model("tcn", input_channels=3, num_channels=(8, 8), kernel_size=2).eval()
    x = torch.randn(2, 3, 12)
    variants: list[Callable[[torch.Tensor], object]] = [
        lambda v: v.contiguous(),
        lambda v: v,  # a strided view of x
        lambda v: v.contiguous().requires_grad_(),
        lambda v: v.contiguous().numpy(),
        lambda v: v.double().numpy(),
        lambda v: np.asfortranarray(v.numpy()),
    ]
    s = FastStream(model, 2, fallback="raise")
    outs = []
    for t in range(x.shape[-1]):
        x_t = variants[t % len(variants)](x[..., t])
        if isinstance(x_t, np.ndarray):
            y = s.step_numpy(x_t)
            assert isinstance(y, np.ndarray)
            outs.append(torch.from_numpy(y))
        else:
            assert isinstance(x_t, torch.Tensor)
            outs.append(s.step(x_t).detach())
    torch.testing.assert_close(torch.stack(outs, -1), offline(model, x), atol=TOL, rtol=TOL)


@pytest.mark.parametrize("batch", [1, 128])
def test_kernel_memory_starts_on_a_cache_line(batch):
    """Values are placed 16 floats aligned, so with memory on a cache line no vector loop straddles two (1.4x
    slower at 1,024 streams when numpy's allocator put it 16 bytes past one)."""
    model = build_model("tcn", input_channels=3, num_channels=(8, 8), kernel_size=2).eval()
    s = FastStream(model, batch, fallback="raise")
    s.step(torch.randn(batch, 3))
    assert s._current is not None
    assert s._current.mem.ctypes.data % CACHE_LINE == 0
    assert s.ring.ctypes.data % CACHE_LINE == 0
    for n in (1, 7, 1000):
        a = aligned_zeros(n)
        assert a.shape == (n,) and a.dtype == np.float32 and not a.any() and a.ctypes.data % CACHE_LINE == 0


# --------------------------------------------------------------------------------------------------------------------
# Export and generation
# --------------------------------------------------------------------------------------------------------------------


def test_step_function_is_pure():
    model = build_model("tcn", input_channels=2, num_channels=(4, 4), kernel_size=3).eval()
    fn = StepFunction(model, 2)
    state = fn.initial_state()
    x = torch.randn(2, 2, 10)
    ref = EagerStream(model, 2)
    for t in range(10):
        y, *state = fn(x[..., t], *state)
        torch.testing.assert_close(y, ref.step(x[..., t]), atol=TOL, rtol=TOL)
    assert fn.state_names == list(ref.state_dict())[1:]


def test_onnx_export_reproduces_the_stream(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="the onnx package is needed by torch.onnx.export")
    from dilated.streaming import export_onnx

    model = build_model(
        "wavenet",
        layers_per_stack=3,
        stacks=1,
        residual_channels=4,
        dilation_channels=4,
        skip_channels=8,
        quantization_channels=8,
        global_channels=2,
    )
    g = torch.randn(2, 2)
    x = one_hot(torch.randint(0, 8, (2, 12)), 8)
    path = str(tmp_path / "step.onnx")
    fn = export_onnx(model, path, x[..., 0], global_condition=g)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names[0] == "x" and len(names) == 1 + len(fn.state_names)
    state = [s.numpy() for s in fn.initial_state()]
    ref = EagerStream(model, 2)
    for t in range(12):
        y, *state = session.run(None, {"x": x[..., t].numpy(), **dict(zip(names[1:], state))})
        torch.testing.assert_close(torch.from_numpy(y), ref.step(x[..., t], global_condition=g), atol=TOL, rtol=TOL)


def test_greedy_generation_is_the_argmax_of_the_offline_model():
    model = build_model(
        "wavenet",
        layers_per_stack=4,
        stacks=1,
        residual_channels=6,
        dilation_channels=6,
        skip_channels=12,
        quantization_channels=16,
    ).eval()
    codes = generate(model, 40, batch_size=2, temperature=0.0)
    assert codes.shape == (2, 40) and codes.dtype == torch.int64
    fed = torch.cat([torch.full((2, 1), 8), codes[:, :-1]], dim=1)  # silence first, then each sampled code
    logits = offline(model, one_hot(fed, 16))
    assert torch.equal(logits.argmax(1), codes)


def test_sampled_generation_is_reproducible_and_in_range():
    model = build_model(
        "wavenet",
        layers_per_stack=3,
        stacks=1,
        residual_channels=4,
        dilation_channels=4,
        skip_channels=8,
        quantization_channels=8,
        global_channels=3,
    )
    g = torch.randn(3, 3)
    a = generate(
        model,
        25,
        batch_size=3,
        temperature=0.8,
        global_condition=g,
        generator=torch.Generator().manual_seed(7),
        backend="eager",
    )
    b = generate(
        model,
        25,
        batch_size=3,
        temperature=0.8,
        global_condition=g,
        generator=torch.Generator().manual_seed(7),
        backend="eager",
    )
    assert torch.equal(a, b) and int(a.min()) >= 0 and int(a.max()) < 8
    with pytest.raises(ValueError, match="categorical"):
        generate(build_model("wavenet", output="gaussian", layers_per_stack=2, stacks=1).eval(), 3)


def test_check_finds_time_mixing_the_stream_cannot_see():
    from dilated.streaming import check

    class Cumulative(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = Conv1d(2, 2, 3, dilation=2)

        def forward(self, x):
            return self.conv(x).cumsum(-1)  # mixes time outside any conv

    x = torch.randn(2, 2, 20)
    assert check(build_model("tcn", input_channels=2, num_channels=(4, 4), kernel_size=3).eval(), x) <= TOL
    with pytest.raises(ValueError, match="mixes time steps outside"):
        check(Cumulative(), x)


class Mixed(nn.Module):
    """Norms, channel moves and reductions: every op of the compiled kernel besides the conv ones."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv1d(3, 6, 3, dilation=2)
        self.bn = nn.BatchNorm1d(6)
        self.ln = nn.LayerNorm(6)
        self.conv2 = Conv1d(6, 4, 2, dilation=3, groups=2)
        self.act = nn.GELU(approximate="tanh")
        running_mean, running_var = self.bn.running_mean, self.bn.running_var
        assert running_mean is not None and running_var is not None  # track_running_stats is on
        with torch.no_grad():
            running_mean.uniform_(-1, 1)
            running_var.uniform_(0.5, 2)
        self.eval()  # streamed with its running statistics (train mode is refused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.conv1(x))
        h = self.ln(h.transpose(1, 2)).transpose(1, 2)  # channels-last layer norm, per step
        h = torch.cat([h[:, 3:], h[:, :3].flip(1)], dim=1)  # channel moves
        h = self.act(self.conv2(h))
        parts = torch.stack([h, torch.sigmoid(h), nn.functional.elu(h, 0.5)])
        return parts.sum(0) - 0.25 * parts.mean(0) / 2.0


class Codes(nn.Module):
    """Integer inputs: an embedding and a one-hot branch, both per step."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.conv = Conv1d(14, 3, 3, dilation=2)

    def forward(self, q: torch.Tensor) -> torch.Tensor:  # (B, T) int64
        e = self.embedding(q).transpose(1, 2)  # (B, 4, T)
        h = nn.functional.one_hot(q, 10).float().movedim(-1, 1)  # (B, 10, T)
        return torch.tanh(self.conv(torch.cat([e, h], dim=1)))


@pytest.mark.parametrize("lanes", [1, 128])
def test_fast_path_covers_norms_moves_reductions_and_integer_inputs(lanes):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 25)
    model = Mixed()
    fast = FastStream(model, 2, fallback="raise", lanes=lanes)
    torch.testing.assert_close(run_in_chunks(fast, x, [1, 6, 2]), offline(model, x), atol=TOL, rtol=TOL)
    codes = torch.randint(0, 10, (3, 20))
    model = Codes()
    for s in [EagerStream(model, 3), FastStream(model, 3, fallback="raise", lanes=lanes)]:
        outs = [s.step(codes[:, t]).unsqueeze(-1) if t % 2 else s.step_many(codes[:, t : t + 1]) for t in range(20)]
        torch.testing.assert_close(torch.cat(outs, -1), offline(model, codes), atol=TOL, rtol=TOL)


def test_kernel_cache_key_holds_the_instruction_set():
    """Numba keys its on-disk cache by the kernel file and the closure's values, not by the constants the kernel
    reads from instructions.py: unless the fingerprint of that file sits in both closures, editing the instruction
    set would run stale cached code (measured: swapping two CONV fields then failed the engine's self-check)."""
    kernel = kernel_for(1)
    cells = [c.cell_contents for c in kernel.py_func.__closure__]
    run_groups = next(c for c in cells if hasattr(c, "py_func"))
    assert LAYOUT in cells
    assert LAYOUT in [c.cell_contents for c in run_groups.py_func.__closure__]
