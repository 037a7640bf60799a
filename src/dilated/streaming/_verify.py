"""The construction check of a stream: its outputs against the model's own ``forward``, layer by layer.

A stream recognises the layers that mix time steps (:mod:`dilated.streaming._shadow`), but a ``forward`` can mix
time in code no module shows (a ``cumsum``, a slice along time, a conv called through ``F.conv1d``). So before its
first step a stream runs a one-stream twin over a random input one receptive field long plus a margin, in chunks
of several sizes (so the histories carry over between chunks), and compares every layer's output with the same
layer's output in the model's own ``forward`` (recorded by forward hooks). The first layer that disagrees is named
in the error; a layer whose streamed output holds steps computed from right padding (NaN in the stream) is the
one that sees the future. The check costs about two offline forwards of that length.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch
from torch import nn

from dilated.streaming._shadow import copy_module, time_layer

VERIFY_MARGIN = 8  # steps beyond the receptive field: the check sees every history full
TOLERANCE = 1e-4  # absolute and relative, in float32


class NotAnInput(Exception):
    """The model's forward refuses an inferred example input (the check then waits for the first step)."""


def example_inputs(model: nn.Module) -> list[torch.Tensor]:
    """Inputs ``(1, channels, 1)`` the model may take, from its first convs and embeddings (at most three)."""
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
            key, x = ("float", channels), torch.zeros(1, channels, 1)
        else:
            continue
        if key not in seen:
            seen.add(key)
            found.append(x)
        if len(found) == 3:
            break
    return found


def like_input(x: torch.Tensor, args: tuple, kwargs: dict, length: int) -> tuple[torch.Tensor, tuple, dict]:
    """Random inputs of one stream and ``length`` steps shaped like ``x`` ``(batch, ..., n)`` and the extra
    arguments: per-step tensors (last axis ``n``) get ``length`` random steps, other tensors keep their first row."""
    generator = torch.Generator().manual_seed(0)
    n = x.shape[-1]

    def like(value: Any, per_step: bool) -> Any:
        if not isinstance(value, torch.Tensor):
            return value
        value = value[:1]
        if not per_step:
            return value.clone()
        shape = (*value.shape[:-1], length)
        if value.is_floating_point():
            return torch.randn(shape, generator=generator, dtype=value.dtype)
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
def _recording(paths: dict[int, str], outputs: dict[str, torch.Tensor]) -> Iterator[None]:
    """Record the first output of every module in ``paths`` (``id`` -> path) per call of the model."""

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        path = paths.get(id(module))
        tensor = _first_tensor(out)
        if path is not None and tensor is not None and path not in outputs:
            outputs[path] = tensor.detach()

    handle = nn.modules.module.register_module_forward_hook(hook)
    try:
        yield
    finally:
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
    """Most of the input in one chunk (histories fill up), then chunks of 1 and 3 steps (they carry over)."""
    first = max(1, length - 4)
    bounds = [0, first, min(first + 1, length), length]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def _disagreement(ref: torch.Tensor, got: torch.Tensor) -> tuple[float, bool]:
    """Largest excess over the tolerance (0 if within) and whether the stream has NaN where the forward has not."""
    finite = torch.isfinite(ref)
    future = bool((torch.isnan(got) & finite).any())
    excess = ((got - ref).abs() - TOLERANCE * (1 + ref.abs()))[finite & torch.isfinite(got)]
    return max(0.0, float(excess.max())) if excess.numel() else 0.0, future


def verify(model: nn.Module, twin: Any, x: torch.Tensor, args: tuple, kwargs: dict, inferred: bool = False) -> float:
    """Stream ``x`` ``(1, channels, length)`` through ``twin`` (a fresh one-stream stream of ``model``) in chunks
    and compare with ``model``'s forward, layer by layer; returns the largest output difference.

    Raises ``ValueError`` naming the first layer (in the forward's call order) whose streamed output differs, or
    :class:`NotAnInput` when ``inferred`` and the forward refuses ``x``.
    """
    reference, ref_paths = _eval_copy(model)
    expected: dict[str, torch.Tensor] = {}
    with torch.no_grad(), _recording(ref_paths, expected):
        try:
            out = _first_tensor(reference(x, *args, **kwargs))
        except Exception as error:
            if inferred:
                raise NotAnInput(str(error)) from error
            raise
    got_chunks: dict[str, list[torch.Tensor]] = {}
    outs, spans = [], _chunks(x.shape[-1])
    for a, b in spans:

        def cut(v: Any, a: int = a, b: int = b) -> Any:
            return v[..., a:b] if isinstance(v, torch.Tensor) and v.dim() >= 2 and v.shape[-1] == x.shape[-1] else v

        chunk: dict[str, torch.Tensor] = {}
        with _recording(twin.tree.paths, chunk):
            y = _first_tensor(twin.step_many(x[..., a:b], *map(cut, args), **{k: cut(v) for k, v in kwargs.items()}))
        outs.append(y.unsqueeze(-1) if y is not None and y.dim() < x.dim() else y)  # one step of a last-step model
        for path, tensor in chunk.items():
            got_chunks.setdefault(path, []).append(tensor)
    twin.reset()
    full = [o for o in outs if o is not None]
    lengths_match = len(full) == len(outs) and all(
        o.dim() < x.dim() or o.shape[-1] == b - a for o, (a, b) in zip(full, spans)
    )
    streamed = torch.cat(full, dim=-1) if lengths_match and len({o.dim() for o in full}) == 1 else None
    if streamed is not None and out is not None and out.dim() == streamed.dim() - 1:  # a last-step-only model
        streamed = streamed[..., -1]
    if out is None or streamed is None or streamed.shape != out.shape:
        untrimmed = [
            f"layer {p!r} pads the right by {layer.right} step(s)" for p, layer in twin.convs.items() if layer.right
        ]
        if untrimmed and not lengths_match:
            raise ValueError(
                f"cannot stream this model: {' and '.join(untrimmed)} and nothing trims them, so its "
                "output keeps steps that depend on the future; trim them (x[:, :, :-n]) or pad only "
                "on the left"
            )
        shape = None if out is None else tuple(out.shape)
        what = "the stream's output does not match the forward's" + (f" {shape}" if shape else "")
        raise ValueError(_message(expected, got_chunks, spans, what, twin))
    excess, future = _disagreement(out, streamed)
    if excess or future:
        raise ValueError(_message(expected, got_chunks, spans, "the stream differs from the model's forward", twin))
    return float((streamed - out).abs().nan_to_num(0.0).max())


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
        if any(c.dim() != ref.dim() or c.shape[2] < b - a for c, (a, b) in zip(chunks, spans)):
            continue
        streamed = torch.cat([c.narrow(2, 0, b - a) for c, (a, b) in zip(chunks, spans)], dim=2)
        length = spans[-1][1]
        if ref.shape[2] < length or streamed.shape[:2] != ref.shape[:2] or streamed.shape[3:] != ref.shape[3:]:
            continue
        excess, future = _disagreement(ref.narrow(2, 0, length), streamed)
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
                f"{what}: first at layer {path!r} (by {excess + TOLERANCE:.3g}): it mixes time steps outside "
                "the layers the stream makes stateful (e.g. a cumsum, a slice or a conv call along time in its "
                "forward)"
            )
    return (
        f"{what}, and no single layer's output shows where: the model mixes time steps outside the layers the "
        "stream makes stateful"
    )
