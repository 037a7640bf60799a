"""Streaming inference: microseconds per step, every method measured side by side in one run.

    python benchmarks/streaming.py [--repeats 7] [--quick]

Single-stream numbers use one thread (``torch.set_num_threads(1)``; the Numba kernel is serial for one stream).
Each cell is the median over ``--repeats`` rounds; rounds interleave the methods so that load from other processes
on a shared machine hits them alike. Columns:

* naive: the model's forward on the last ``receptive_field`` inputs, keeping the last output (what a service
  without streaming state does);
* pytorch-tcn: ``pytorch_tcn.TCN(...).inference(x_t)``, its own streaming mode, on a model with the same weights
  (checked equal to ours offline);
* eager: :class:`dilated.streaming.Stream` (the model's forward with stateful convs);
* fast: :class:`dilated.streaming.FastStream` through its torch API (``step``), and fast/np through its numpy API
  (``step_numpy``).

Rows for models people already have: a TCN written as locuslab's users write it (weight-normed ``nn.Conv1d``
padded on both sides, ``Chomp1d``, ReLU, dropout, 1x1 downsample) and pytorch-tcn's own ``TCN``, both 10 levels of
32 channels, k=2, streamed by ``dilated.stream`` and compared with pytorch-tcn's ``inference`` mode on a pytorch-tcn
model of the same architecture; and the cost of the stream's construction check.

Then: candidate compilers of the step for the same TCN (TorchScript and ONNX Runtime on the pure step function);
``FastStream.step`` and ``step_numpy`` against the bare kernel (``Compiled.run`` with numpy arrays, and the kernel
call alone) and the cost of the weights contract's detection per step, in CPU time (``time.process_time``), for the
TCN and the 30-block WaveNet, with the path that reads the weight stamps (the compiled helper or Python); the
flat-cost check (same depth and width, receptive field 127 -> 16,383) and the per-stream cost of 1,024 streams
stepped together. Source trees (an old commit against this one) are compared by ``streaming_compare.py``.
Benchmarks print ratios; tests never check time.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import cast

import numba
import numpy as np
import pytorch_tcn
import torch
from torch import nn

import common  # noqa: F401 - puts tests/ on the path: the locuslab-style TCN of the streaming tests
from dilated.models import build_model
from dilated.models._blocks import TemporalBlock
from dilated.models._mulaw import one_hot
from dilated.streaming import EagerStream, FastStream, StepFunction
from dilated.streaming._fast.kernel import kernel_for
from dilated.streaming._stamps import native_reason
from dilated.streaming._verify import check_lengths
from streaming_helpers import LocuslabTCN


def per_call_us(fn: Callable[[], object], calls: int, clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls * 1e6


def rounds(
    methods: dict[str, tuple[Callable[[], object], int]],
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Microseconds per call of each method in each of ``repeats`` interleaved rounds; ``methods``: name ->
    (call, calls per round). ``clock=time.process_time`` counts this process's CPU time only, which other
    processes' load inflates less than wall time."""
    for fn, calls in methods.values():  # warm up (compilation, caches, page faults)
        per_call_us(fn, max(1, calls // 4))
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, (fn, calls) in methods.items():
            samples[name].append(per_call_us(fn, calls, clock))
    return samples


def interleaved(methods: dict[str, tuple[Callable[[], object], int]], repeats: int) -> dict[str, float]:
    """Median microseconds per call of each method over interleaved rounds (see :func:`rounds`)."""
    return {name: statistics.median(values) for name, values in rounds(methods, repeats).items()}


class TCNStack(nn.Module):
    """The TCN of :mod:`dilated.models._tcn` with chosen dilations (same depth and width, other receptive field)."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(TemporalBlock(channels, channels, kernel_size, d) for d in dilations))
        self.receptive_field = 1 + 2 * (kernel_size - 1) * sum(dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def pytorch_tcn_twin(model: nn.Module, channels: int, levels: int, kernel_size: int) -> pytorch_tcn.TCN:
    """A ``pytorch_tcn.TCN`` with our TCN's weights (weight norm g, v and biases), checked equal offline."""
    twin = pytorch_tcn.TCN(
        channels, [channels] * levels, kernel_size=kernel_size, dropout=0.0, use_norm="weight_norm", causal=True
    ).eval()
    with torch.no_grad():
        for ours, theirs in zip(model.get_submodule("blocks").children(), twin.network):
            for a, b in ((ours.get_submodule("conv1"), theirs.conv1), (ours.get_submodule("conv2"), theirs.conv2)):
                for name in ("parametrizations.weight.original0", "parametrizations.weight.original1", "bias"):
                    b.get_parameter(name).copy_(a.get_parameter(name))
        x = torch.randn(1, channels, 300)
        error = (twin(x) - model.eval()(x)).abs().max().item()
    if error > 1e-5:
        raise RuntimeError(f"pytorch-tcn twin differs from our TCN by {error}")
    twin.reset_buffers()
    return twin


def check_cost(model: nn.Module, x_t: torch.Tensor, repeats: int) -> tuple[float, float, int]:
    """Milliseconds of the construction check (a stream built with and without it) and of one offline forward of
    the longest checked input."""
    verified = EagerStream(model, 1)
    length = max(check_lengths(1 + sum(layer.history for layer in verified.convs.values())))  # as prepare checks
    window = torch.randn(1, x_t.shape[1], length)

    def forward() -> None:
        with torch.inference_mode():
            model(window)

    times = interleaved(
        {
            "with": (lambda: EagerStream(model, 1), 1),
            "without": (lambda: EagerStream(model, 1, verify=False), 1),
            "forward": (forward, 1),
        },
        repeats,
    )
    return (times["with"] - times["without"]) / 1e3, times["forward"] / 1e3, length


def single_stream_row(
    name: str,
    model: nn.Module,
    x_t: torch.Tensor,
    repeats: int,
    naive_calls: int,
    twin: pytorch_tcn.TCN | None = None,
    kwargs: dict | None = None,
    rf: int | None = None,
) -> dict[str, float]:
    kwargs = kwargs or {}
    field = rf if rf is not None else cast(int, model.receptive_field)
    window = x_t.unsqueeze(-1).expand(*x_t.shape, field).contiguous()
    eager = EagerStream(model, 1)
    methods: dict[str, tuple[Callable[[], object], int]] = {}

    def naive() -> torch.Tensor:
        with torch.inference_mode():
            return model(window, **kwargs)[..., -1]

    methods["naive"] = (naive, naive_calls)
    if twin is not None:
        step_in = x_t.unsqueeze(-1)

        def pytorch_tcn_step() -> torch.Tensor:
            with torch.inference_mode():
                return twin.inference(step_in)

        methods["pytorch-tcn"] = (pytorch_tcn_step, 100)
    methods["eager"] = (lambda: eager.step(x_t, **kwargs), 100)
    fast = FastStream(model, 1, fallback="raise")
    fast.step(x_t, **kwargs)
    assert fast.backend == "fast"
    methods["fast"] = (lambda: fast.step(x_t, **kwargs), 2000)
    if not kwargs:
        x_np = x_t.numpy()
        methods["fast/np"] = (lambda: fast.step_numpy(x_np), 2000)
    times = interleaved(methods, repeats)
    times["rf"] = field
    return times


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def wrapper_rows(name: str, model: nn.Module, x_t: torch.Tensor, repeats: int, calls: int) -> None:
    """``FastStream.step`` and ``step_numpy`` of ``model`` against its bare kernel, and the weight-change
    detection's share of a step, printed."""
    fast = FastStream(model, 1, fallback="raise")
    fast.step(x_t)
    compiled = fast._current
    assert compiled is not None  # the step above compiled it
    kernel = kernel_for(1)
    (meta,) = compiled.metas(1, 1, fast._chunk(compiled), 1, 1)
    x_np, y_np, xin = x_t.numpy(), np.empty(compiled.n_out, np.float32), x_t.numpy().reshape(1, 1, -1)
    head = (compiled.prog, compiled.params, compiled.idx, compiled.mem, fast.ring)
    labels = {
        "step": "FastStream.step (torch in/out)",
        "numpy": "FastStream.step_numpy (numpy in/out)",
        "bare": "bare kernel: Compiled.run (numpy in/out)",
        "alone": "the kernel call alone (numpy buffers)",
        "detection": "weight-change detection (Weights.changed)",
    }
    wrapper = rounds(
        {
            "step": (lambda: fast.step(x_t), calls),
            "numpy": (lambda: fast.step_numpy(x_np), calls),
            "bare": (lambda: compiled.run(compiled.mem, fast.ring, 0, xin, 1, 1), calls),
            "alone": (lambda: kernel(*head, x_np.ravel(), y_np, meta), calls),
            "detection": (fast.weights.changed, 5000),
        },
        repeats,
        time.process_time,
    )
    print(f"{name}:")
    for key, values in wrapper.items():
        print(f"  {labels[key]:45s} {statistics.median(values):8.2f} [{min(values):.2f}-{max(values):.2f}]")
    step_us, numpy_us, bare_us, alone_us, detection = (statistics.median(v) for v in wrapper.values())
    tensors = len(fast.weights.tensors)
    print(
        f"  step / bare kernel: torch {step_us / bare_us:.2f}x, numpy {numpy_us / bare_us:.2f}x (target <= 1.3x); "
        f"against the kernel call alone: {step_us / alone_us:.2f}x, {numpy_us / alone_us:.2f}x"
    )
    print(
        f"  detection: {detection / step_us:.1%} of a torch step, {detection / numpy_us:.1%} of a numpy step "
        f"(target <= 10%); {tensors} tensors stamped, {detection / tensors * 1e3:.0f} ns each; without it the step "
        f"would be {(step_us - detection) / bare_us:.2f}x / {(numpy_us - detection) / bare_us:.2f}x the bare kernel"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer and smaller models (a smoke run)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    print(
        f"streaming benchmark: torch {torch.__version__}, numba {numba.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f}; median of {args.repeats} interleaved rounds; single stream on 1 thread"
    )

    # -- single stream --------------------------------------------------------------------------------------------
    channels, levels, k = 32, 10, 2
    tcn = build_model(
        "tcn", input_channels=channels, num_channels=(channels,) * levels, kernel_size=k, dropout=0.0
    ).eval()
    twin = pytorch_tcn_twin(tcn, channels, levels, k)
    rows = [("TCN 10x32 k=2", single_stream_row("tcn", tcn, torch.randn(1, channels), args.repeats, 20, twin))]
    # models people already have, same architecture: locuslab-style and pytorch-tcn's own TCN
    locuslab = LocuslabTCN(channels, [channels] * levels, k).eval()
    theirs = pytorch_tcn.TCN(
        channels, [channels] * levels, kernel_size=k, dropout=0.0, use_norm="weight_norm", causal=True
    ).eval()
    theirs_inference = copy.deepcopy(theirs)  # its inference mode keeps buffers in the model: a copy of its own
    tcn_field = cast(int, tcn.receptive_field)
    rows.append(
        (
            "locuslab-style TCN 10x32 k=2",
            single_stream_row(
                "locuslab", locuslab, torch.randn(1, channels), args.repeats, 20, theirs_inference, rf=tcn_field
            ),
        )
    )
    rows.append(
        (
            "pytorch-tcn TCN 10x32 k=2",
            single_stream_row(
                "pytorch_tcn", theirs, torch.randn(1, channels), args.repeats, 20, theirs_inference, rf=tcn_field
            ),
        )
    )
    if not args.quick:
        wavenet = build_model("wavenet").eval()  # 3 stacks of 10 blocks, 32 residual / 256 skip, one-hot input
        x_w = one_hot(torch.randint(0, 256, (1, 1)), 256)[..., 0]
        rows.append(("WaveNet 30 blocks", single_stream_row("wavenet", wavenet, x_w, args.repeats, 3)))
        wavenet_g = build_model("wavenet", global_channels=16).eval()
        rows.append(
            (
                "WaveNet 30 blocks + global cond.",
                single_stream_row(
                    "wavenet_g", wavenet_g, x_w, args.repeats, 3, kwargs={"global_condition": torch.randn(1, 16)}
                ),
            )
        )
    print("\nSingle stream, us per step (lower is better); ratios = other / fast")
    header = (
        "model",
        "RF",
        "naive",
        "pytorch-tcn",
        "eager",
        "fast",
        "fast/np",
        "naive/fast",
        "pytorch-tcn/fast",
        "eager/fast",
    )
    table: list[tuple[str, ...]] = [header]
    for name, t in rows:
        fast_us = t.get("fast")
        table.append(
            (
                name,
                str(t["rf"]),
                fmt(t["naive"]),
                fmt(t.get("pytorch-tcn")),
                fmt(t["eager"]),
                fmt(fast_us),
                fmt(t.get("fast/np")),
                *(
                    f"{t[key] / fast_us:,.0f}x" if fast_us and key in t else "-"
                    for key in ("naive", "pytorch-tcn", "eager")
                ),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))

    theirs_fast = next(t for name, t in rows if name.startswith("locuslab"))
    print(
        f"  locuslab-style TCN streamed by dilated (fast) vs pytorch-tcn's inference mode on the same architecture: "
        f"{theirs_fast['pytorch-tcn'] / theirs_fast['fast']:,.0f}x (target >= 100x)"
    )

    # -- the construction check ------------------------------------------------------------------------------------
    print("\nConstruction check (the stream against the model's forward; its longest input, max(4 x field, 512)):")
    for name, model in (("TCN 10x32 k=2", tcn), ("locuslab-style TCN", locuslab), ("pytorch-tcn TCN", theirs)):
        check_ms, forward_ms, length = check_cost(model, torch.randn(1, channels), max(3, args.repeats // 2))
        print(
            f"  {name:20s} check {check_ms:7.1f} ms = {check_ms / forward_ms:4.2f} offline forwards of {length:,} "
            f"steps ({forward_ms:.1f} ms)"
        )

    # -- candidates for compiling the step ------------------------------------------------------------------------
    print("\nCandidates for the compiled step, same TCN, us per step:")
    x_t = torch.randn(1, channels)
    fn = StepFunction(tcn, 1).eval()
    state = fn.initial_state()
    candidates: dict[str, tuple[Callable[[], object], int]] = {}
    with torch.no_grad():
        scripted = torch.jit.trace(fn, (x_t, *state), check_trace=False)
    script_state = list(state)

    def torchscript_step() -> None:
        nonlocal script_state
        with torch.no_grad():
            _, *script_state = scripted(x_t, *script_state)

    candidates["TorchScript (traced pure step)"] = (torchscript_step, 200)
    try:
        import onnxruntime as ort

        from dilated.streaming import export_onnx

        path = os.path.join(tempfile.mkdtemp(), "step.onnx")
        export_onnx(tcn, path, x_t)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        ort_state = [s.numpy() for s in state]
        feed_x = x_t.numpy()

        def ort_step() -> None:
            nonlocal ort_state
            _, *ort_state = session.run(None, {"x": feed_x, **dict(zip(names[1:], ort_state))})

        candidates["ONNX Runtime (exported pure step)"] = (ort_step, 200)
    except ImportError:
        pass
    fast = FastStream(tcn, 1, fallback="raise")
    fast.step(x_t)
    compiled = fast._current
    assert compiled is not None  # the step above compiled it
    xin = x_t.numpy().reshape(1, 1, -1)
    candidates["Numba kernel, one call (numpy in/out)"] = (
        lambda: compiled.run(compiled.mem, fast.ring, 0, xin, 1, 1),
        5000,
    )
    candidates["Numba via FastStream.step (torch in/out)"] = (lambda: fast.step(x_t), 2000)
    for name, value in interleaved(candidates, args.repeats).items():
        print(f"  {name:45s} {value:10.1f}")

    # -- the wrapper around the kernel and the weights contract's detection ----------------------------------------
    print(
        "\nFastStream's step against the bare kernel, one stream, CPU us per step, median [min-max]; weight stamps "
        f"read by {'Python: ' + reason if (reason := native_reason()) else 'the compiled helper'}"
    )
    wrapper_rows("TCN 10x32 k=2", tcn, x_t, args.repeats, 5000)
    wavenet = build_model("wavenet").eval()
    wrapper_rows("WaveNet 30 blocks", wavenet, one_hot(torch.randint(0, 256, (1, 1)), 256)[..., 0], args.repeats, 500)

    # -- flat cost in the receptive field ------------------------------------------------------------------------
    print("\nFlat cost: fast path, 10 TCN blocks x 32 channels, kernel 2, only the dilations differ:")
    patterns = {
        127: [1, 2, 4, 8, 16, 16, 8, 4, 2, 2],
        2047: [2**i for i in range(10)],
        16383: [1, 4, 16, 64, 256, 1024, 4096, 2048, 512, 170],
    }
    flat: dict[str, tuple[Callable[[], object], int]] = {}
    for rf, dilations in patterns.items():
        model = TCNStack(channels, k, dilations).eval()
        assert model.receptive_field == rf
        s = FastStream(model, 1, fallback="raise")
        s.step_many(torch.randn(1, channels, rf + 1))  # warm: every ring row written once
        flat[str(rf)] = (functools.partial(s.step, x_t), 3000)
    flat_times = interleaved(flat, args.repeats)
    for field, value in flat_times.items():
        print(f"  RF {int(field):6,d}: {value:6.2f} us per step")
    print(f"  ratio RF 16,383 / RF 127: {flat_times['16383'] / flat_times['127']:.2f}x (target < 1.5x)")

    # -- many streams ---------------------------------------------------------------------------------------------
    streams, cores = 1024, os.cpu_count() or 1
    torch.set_num_threads(cores)
    print(
        f"\n{streams:,} streams stepped together, TCN 10x32 k=2 (RF 2047), {cores} cores "
        f"(load average before: {os.getloadavg()[0]:.2f}):"
    )
    xb = torch.randn(streams, channels)
    threaded = FastStream(tcn, streams, fallback="raise", threads=cores)
    serial = FastStream(tcn, streams, fallback="raise", threads=1)
    one_lane = FastStream(tcn, streams, fallback="raise", threads=cores, lanes=1)  # the stream-major layout
    for s in (threaded, serial, one_lane):
        s.step_many(torch.randn(streams, channels, 8))
    many: dict[str, tuple[Callable[[], object], int]] = {
        f"fast, {cores} threads": (lambda: threaded.step(xb), 20),
        "fast, 1 thread": (lambda: serial.step(xb), 10),
        f"fast, 1 lane, {cores} thr.": (lambda: one_lane.step(xb), 10),
    }
    many_times = interleaved(many, max(3, args.repeats // 2))
    # measured after, not interleaved: torch's OpenMP threads keep spinning on the cores after an eager step
    eager_many = EagerStream(tcn, streams)
    many_times.update(interleaved({"eager, torch threads": (lambda: eager_many.step(xb), 1)}, 3))
    for name, value in many_times.items():
        print(f"  {name:22s} {value:12,.0f} us per step = {value / streams:8.3f} us per stream")
    print(
        f"  {threaded.lanes} streams per vector group vs one stream per lane: "
        f"{many_times[f'fast, 1 lane, {cores} thr.'] / many_times[f'fast, {cores} threads']:.2f}x faster; "
        f"target < 1 us per stream"
    )
    print(
        f"  (load average after: {os.getloadavg()[0]:.2f}; on a machine shared with other jobs the threaded "
        "number needs a free core)"
    )


if __name__ == "__main__":
    main()
