"""The construction check of a stream: its outputs against the model's own ``forward``, layer by layer.

A stream recognises the layers that mix time steps (:mod:`dilated.streaming._shadow`), but a ``forward`` can mix
time in code no module shows (a ``cumsum``, a slice along time, an FFT, a branch on the input's length). So a stream
exists only once it has been proven equal to the model's forward: before its first step a twin of the stream runs
random inputs in chunks (1 and 2 steps from zero history, then most of the input, then 1 and 3 steps, so the
histories carry over) and its output is compared with the forward's, in the model's own dtype, on

* an input one receptive field plus a margin long, one stream per scale of :data:`SCALES` (small inputs and
  large ones reach thresholds and saturations that scale-1 inputs miss);
* an input ``max(4 x receptive field, 512)`` steps long, one stream (time mixing that shows only on long inputs).

The first layer that disagrees is named (every module's output is recorded by forward hooks); a layer whose
streamed output holds steps computed from right padding (NaN in the stream) is the one that sees the future. A
model left in train mode is first run in train and eval mode: it is refused, naming the first layer whose output
differs, only where the mode changes the output.

What it guarantees: equal to the forward (within :func:`tolerance`) on the inputs, lengths, scales and batch sizes
checked. It costs about three forward passes of its longest input (``benchmarks/streaming_check.py``); the
layers' outputs are recorded only to name the layer where it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from dilated.streaming._shadow import copy_module, time_layer

VERIFY_MARGIN = 8  # steps beyond the receptive field: the check sees every history full
LONG = 512  # the long input is at least this many steps (and 4 receptive fields)
SCALES = (1.0, 1e-3, 1e3)  # one stream per scale on the long input


def tolerance(dtype: torch.dtype) -> float:
    """Absolute and relative tolerance of the comparison in ``dtype``."""
    return {torch.float64: 1e-9, torch.float16: 1e-2, torch.bfloat16: 2e-2}.get(dtype, 1e-4)


def check_lengths(field: int) -> list[int]:
    """The lengths checked: one receptive field plus a margin, and a long one (``max(4 x field, 512)``)."""
    return [field + VERIFY_MARGIN, max(4 * field, LONG)]


class NotAnInput(Exception):
    """The model's forward refuses an inferred example input (the check then waits for the first step)."""


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating parameter or buffer (float32 without any)."""
    tensors = [*model.parameters(), *model.buffers()]
    return next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)


def example_inputs(model: nn.Module) -> list[torch.Tensor]:
    """Inputs ``(1, channels, 1)`` the model may take, in its dtype, from its first convs and embeddings (at most
    three)."""
    found: list[torch.Tensor] = []
    seen: set[tuple[str, int]] = set()
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            key, x = ("codes", module.num_embeddings), torch.zeros(1, 1, dtype=torch.int64)
        elif (
            time_layer(module) is not None
            and isinstance(weight := getattr(module, "weight", None), torch.Tensor)
            and weight.dim() == 3
        ):
            channels = cast(int, module.in_channels)  # a conv (time_layer): its in_channels is an int
            key, x = ("float", channels), torch.zeros(1, channels, 1, dtype=weight.dtype)
        else:
            continue
        if key not in seen:
            seen.add(key)
            found.append(x)
        if len(found) == 3:
            break
    return found


def like_input(
    x: torch.Tensor, args: tuple, kwargs: dict, length: int, scales: tuple[float, ...] = (1.0,)
) -> tuple[torch.Tensor, tuple, dict]:
    """Random inputs of ``len(scales)`` streams and ``length`` steps shaped like ``x`` ``(batch, ..., n)`` and the
    extra arguments: per-step tensors (last axis ``n``) get ``length`` random steps (floating ones times each
    stream's scale), other tensors repeat their first row."""
    generator = torch.Generator().manual_seed(0)
    n, batch = x.shape[-1], len(scales)

    def like(value: Any, per_step: bool) -> Any:
        if not isinstance(value, torch.Tensor):
            return value
        first = value[:1]
        if not per_step:
            return first.expand(batch, *first.shape[1:]).clone()
        shape = (batch, *first.shape[1:-1], length)
        if value.is_floating_point():
            scale = torch.tensor(scales, dtype=value.dtype).reshape(batch, *[1] * (len(shape) - 1))
            return torch.randn(shape, generator=generator, dtype=value.dtype) * scale
        high = max(int(value.max()) + 1, 2) if value.numel() else 2
        return torch.randint(0, high, shape, generator=generator, dtype=value.dtype)

    def per_step(value: Any) -> bool:
        return isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[-1] == n

    return (
        like(x, True),
        tuple(like(a, per_step(a)) for a in args),
        {k: like(v, per_step(v)) for k, v in kwargs.items()},
    )


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, tuple | list):
        return next((t for t in map(_first_tensor, value) if t is not None), None)
    return None


@contextmanager
def _recording(paths: dict[int, str], outputs: dict[str, torch.Tensor] | None, running: list[str]) -> Iterator[None]:
    """Record the first output of every module in ``paths`` (``id`` -> path) per call of the model (unless
    ``outputs`` is ``None``), and keep in ``running`` the paths of the modules being run (innermost last)."""

    def enter(module: nn.Module, args: Any) -> None:
        path = paths.get(id(module))
        if path is not None:
            running.append(path)

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        path = paths.get(id(module))
        tensor = _first_tensor(out)
        if path is not None:
            running.pop()
            if outputs is not None and tensor is not None and path not in outputs:
                outputs[path] = tensor.detach()

    handles = [
        nn.modules.module.register_module_forward_pre_hook(enter),
        nn.modules.module.register_module_forward_hook(hook),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _eval_copy(model: nn.Module) -> tuple[nn.Module, dict[int, str]]:
    """Shallow eval-mode copies of the model's tree (parameters shared) and each copy's module path."""
    paths: dict[int, str] = {}
    memo: dict[int, nn.Module] = {}

    def visit(module: nn.Module, path: str) -> nn.Module:
        if id(module) not in memo:
            clone = copy_module(module)
            clone.__dict__["_modules"] = {
                n: None if c is None else visit(c, f"{path}.{n}" if path else n) for n, c in module._modules.items()
            }
            memo[id(module)], paths[id(clone)] = clone, path or type(module).__name__
        return memo[id(module)]

    return visit(model, ""), paths


def _chunks(length: int) -> list[tuple[int, int]]:
    """Chunks of 1 and 2 steps from zero history, most of the input in one chunk (histories fill up), then chunks
    of 1 and 3 steps (they carry over)."""
    bounds = sorted({0, min(1, length), min(3, length), max(3, length - 4), max(3, length - 3), length})
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def disagreement(ref: torch.Tensor, got: torch.Tensor) -> tuple[float, bool]:
    """Largest excess over the tolerance (0 if within; relative to the value and to its stream's largest output) and
    whether the stream has NaN where the forward has not."""
    finite = torch.isfinite(ref)
    future = bool((torch.isnan(got) & finite).any())
    tol = tolerance(ref.dtype)
    rows = ref.nan_to_num(0.0, 0.0, 0.0).abs().reshape(ref.shape[0], -1).amax(1) if ref.dim() else ref.abs()
    scale = rows.reshape(-1, *[1] * (ref.dim() - 1)) if ref.dim() else rows  # each stream's largest output
    excess = ((got.to(ref.dtype) - ref).abs() - tol * (1 + ref.abs() + scale))[finite & torch.isfinite(got)]
    return max(0.0, float(excess.max())) if excess.numel() else 0.0, future


@dataclass
class Case:
    """One input of the check ``(streams, channels, length)`` with the extra arguments, and the model's output on
    it (``expected``, in eval mode) with every layer's output by path (``layers``)."""

    x: torch.Tensor
    args: tuple
    kwargs: dict
    expected: torch.Tensor | None
    layers: dict[str, torch.Tensor]  # (recorded only to name the layer where the stream disagrees)


def reference(
    model: nn.Module, x: torch.Tensor, args: tuple, kwargs: dict, inferred: bool = False, record: bool = False
) -> Case:
    """The model's eval-mode forward on ``x`` (with ``record``, every layer's output too); :class:`NotAnInput`
    when ``inferred`` and the forward refuses ``x``."""
    copy_, paths = _eval_copy(model)
    layers: dict[str, torch.Tensor] = {}
    with torch.no_grad(), _recording(paths, layers if record else None, []):
        try:
            out = _first_tensor(copy_(x, *args, **kwargs))
        except Exception as error:
            if inferred:
                raise NotAnInput(str(error)) from error
            raise ValueError(
                f"cannot check the stream against the model: its forward fails on a random input of shape "
                f"{tuple(x.shape)} ({_cause(error)})"
            ) from error
    return Case(x, args, kwargs, out, layers)


def _train_forward(model: nn.Module, case: Case, outputs: dict[str, torch.Tensor] | None) -> torch.Tensor | None:
    """The model's train-mode output on ``case``, with every layer's output in ``outputs`` unless it is ``None``.
    Runs the model itself (a deep copy fails on the old ``weight_norm``), then restores its buffers (batch norm's
    running statistics) and the random state (dropout draws from it)."""
    buffers = list(model.buffers())
    saved = [b.clone() for b in buffers]
    paths = {id(m): n or type(m).__name__ for n, m in model.named_modules()}
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]), _recording(paths, outputs, []):
            return _first_tensor(model(case.x, *case.args, **case.kwargs))
    finally:
        with torch.no_grad():
            for buffer, value in zip(buffers, saved):
                buffer.copy_(value)


def mode_dependence(model: nn.Module, case: Case) -> str | None:
    """Why a model left in train mode cannot be streamed as its eval copy (``None`` if it is in eval mode or its
    output does not depend on the mode): the first layer whose train-mode output differs from ``case``'s."""
    if not any(m.training for m in model.modules()):
        return None
    fix = "call model.eval() before streaming"
    try:
        out = _train_forward(model, case, None)
    except Exception as error:  # noqa: BLE001 - whatever fails, the cause is named
        return f"cannot stream this model in train mode: its train-mode forward fails ({_cause(error)}); {fix}"
    if out is not None and case.expected is not None and not _differs(case.expected, out):
        return None
    outputs: dict[str, torch.Tensor] = {}
    _train_forward(model, case, outputs)
    layers = reference(model, case.x, case.args, case.kwargs, record=True).layers
    differs = [p for p, y in outputs.items() if p in layers and _differs(layers[p], y)]
    where = f"layer {differs[0]!r}" if differs else f"the model ({type(model).__name__})"
    return (
        f"cannot stream this model in train mode: {where} gives other outputs in train mode than in eval mode "
        f"(dropout, or a norm using batch statistics); {fix}"
    )


def _differs(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape:
        return True
    excess, _ = disagreement(a, b)
    return excess > 0 or bool((torch.isnan(a) != torch.isnan(b)).any())


def _cause(error: BaseException) -> str:
    """One line of an exception: its first (TorchScript: its last, the original error's) line, or its type."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return (lines[-1] if isinstance(error, torch.jit.Error) else lines[0]).strip()


def _cut(value: Any, a: int, b: int, length: int) -> Any:
    """Steps ``a:b`` of a per-step tensor (last axis ``length``); other values as they are."""
    return (
        value[..., a:b] if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[-1] == length else value
    )


def _run_twin(
    twin: Any, case: Case, spans: list[tuple[int, int]], record: bool = False
) -> tuple[list[Any], dict[str, list[torch.Tensor]]]:
    """Stream ``case`` through ``twin`` in chunks: each chunk's output and (with ``record``) every layer's outputs
    by path. Raises ``ValueError`` naming the layer where a chunk fails to run (a layer needing more steps)."""
    length = case.x.shape[-1]
    outs: list[Any] = []
    got: dict[str, list[torch.Tensor]] = {}
    for a, b in spans:
        chunk: dict[str, torch.Tensor] = {}
        running: list[str] = []
        try:
            with _recording(twin.tree.paths, chunk if record else None, running):
                y = twin.step_many(
                    case.x[..., a:b],
                    *(_cut(v, a, b, length) for v in case.args),
                    **{k: _cut(v, a, b, length) for k, v in case.kwargs.items()},
                )
        except (RuntimeError, ValueError, IndexError, torch.jit.Error) as error:
            where = f"layer {running[-1]!r}" if running else "the model"
            raise ValueError(
                f"cannot stream {where}: on a chunk of {b - a} step(s) it fails ({_cause(error)}); it needs more steps "
                "than it is given (an unpadded 'valid' conv, or a norm over time: InstanceNorm, a norm without "
                "running statistics)"
            ) from error
        outs.append(_first_tensor(y))
        for path, tensor in chunk.items():
            got.setdefault(path, []).append(tensor)
    twin.reset()
    return outs, got


def _joined(outs: list[Any], spans: list[tuple[int, int]], x: torch.Tensor, out: torch.Tensor | None) -> Any:
    """The chunks' outputs as one ``(streams, ..., length)`` tensor shaped like ``out`` (a last-step model: its
    last step), or ``None`` where they do not fit together."""
    outs = [y.unsqueeze(-1) if y is not None and y.dim() < x.dim() else y for y in outs]  # one step per call
    full = [o for o in outs if o is not None]
    lengths_match = len(full) == len(outs) and all(o.shape[-1] == b - a for o, (a, b) in zip(full, spans))
    if not lengths_match or len({o.dim() for o in full}) != 1:
        return None
    streamed = torch.cat(full, dim=-1)
    if out is not None and out.dim() == streamed.dim() - 1:  # a last-step-only model
        streamed = streamed[..., -1]
    return streamed


def _untrimmed(twin: Any) -> str | None:
    untrimmed = [
        f"layer {p!r} pads the right by {layer.right} step(s)" for p, layer in twin.convs.items() if layer.right
    ]
    if not untrimmed:
        return None
    return (
        f"cannot stream this model: {' and '.join(untrimmed)} and nothing trims them, so its output keeps steps "
        "that depend on the future; trim them (x[:, :, :-n]) or pad only on the left"
    )


def compare(model: nn.Module, case: Case, twin: Callable[[int], Any]) -> float:
    """Stream ``case`` through a fresh ``twin(streams)`` in chunks and compare with the forward's output; returns
    the largest difference, or raises ``ValueError`` naming the first layer (in the forward's call order) whose
    streamed output differs (found by running both again, recording every layer)."""
    spans = _chunks(case.x.shape[-1])
    streams = case.x.shape[0]
    outs, _ = _run_twin(twin(streams), case, spans)
    out, streamed = case.expected, _joined(outs, spans, case.x, case.expected)
    matched = out is not None and streamed is not None and streamed.shape == out.shape
    if out is not None and matched:
        excess, future = disagreement(out, streamed)
        if not (excess or future):
            return float((streamed.to(out.dtype) - out).abs().nan_to_num(0.0).max())
    last = twin(streams)
    _, got = _run_twin(last, case, spans, record=True)
    layers = reference(model, case.x, case.args, case.kwargs, record=True).layers
    if not matched:
        if streamed is None and (reason := _untrimmed(last)):
            raise ValueError(reason)
        shape = None if out is None else tuple(out.shape)
        what = "the stream's output does not match the forward's" + (f" {shape}" if shape else "")
        raise ValueError(_message(layers, got, spans, what, last))
    raise ValueError(_message(layers, got, spans, "the stream differs from the model's forward", last))


def cases(model: nn.Module, x: torch.Tensor, args: tuple, kwargs: dict, field: int, inferred: bool) -> list[Case]:
    """The check's inputs (see the module docstring) shaped like ``x`` and the arguments, with the forward's
    outputs; the long one last. Raises ``ValueError`` for a model whose train mode changes its output."""
    short, long = check_lengths(field)
    found = [
        reference(model, *like_input(x, args, kwargs, short, SCALES), inferred=inferred),
        reference(model, *like_input(x, args, kwargs, long), inferred=inferred),
    ]
    reason = mode_dependence(model, found[-1])
    if reason:
        raise ValueError(reason)
    return found


def verify(
    model: nn.Module, twin: Any, x: torch.Tensor, args: tuple, kwargs: dict, field: int, inferred: bool = False
) -> tuple[float, list[Case]]:
    """The construction check (see the module docstring): ``twin(streams)`` builds a fresh stream of ``model``;
    returns the largest output difference and the cases checked (the long one last)."""
    checked = cases(model, x, args, kwargs, field, inferred)
    worst = max(compare(model, case, twin) for case in checked)
    return worst, checked


def _message(
    expected: dict[str, torch.Tensor],
    got: dict[str, list[torch.Tensor]],
    spans: list[tuple[int, int]],
    what: str,
    twin: Any,
) -> str:
    """The error: ``what``, then the first layer whose streamed output disagrees with the forward's."""
    future_sources = [p for p, layer in twin.convs.items() if layer.right]
    for path, ref in expected.items():  # in call order
        chunks = got.get(path)
        if chunks is None or ref.dim() < 3 or len(chunks) != len(spans):
            continue
        if any(
            c.dim() != ref.dim() or c.shape[2] < b - a or c.shape[:2] != ref.shape[:2] or c.shape[3:] != ref.shape[3:]
            for c, (a, b) in zip(chunks, spans)
        ):
            continue  # not a (batch, channels, time, ...) output
        streamed = torch.cat([c.narrow(2, 0, b - a) for c, (a, b) in zip(chunks, spans)], dim=2)
        length = spans[-1][1]
        if ref.shape[2] < length or streamed.shape[:2] != ref.shape[:2] or streamed.shape[3:] != ref.shape[3:]:
            continue
        excess, future = disagreement(ref.narrow(2, 0, length), streamed)
        tol = tolerance(ref.dtype)
        if future:
            sources = (
                f" (steps computed from the right padding of {', '.join(map(repr, future_sources))})"
                if future_sources
                else ""
            )
            return (
                f"{what}: layer {path!r} sees the future: its output uses steps that only right padding "
                f"provides{sources}; trim them right after the padded layer, or pad only on the left"
            )
        if excess:
            return (
                f"{what}: first at layer {path!r} (by {excess + tol:.3g}): it mixes time steps outside "
                "the layers the stream makes stateful (e.g. a cumsum, a slice or a conv call along time in its "
                "forward)"
            )
    return (
        f"{what}, and no single layer's output shows where: the model mixes time steps outside the layers the "
        "stream makes stateful"
    )
