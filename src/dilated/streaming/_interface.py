"""What every streaming engine offers (:class:`StreamEngine`) and the factory that picks one (:func:`stream`)."""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from dilated.streaming._eager import EagerStream
from dilated.streaming._fast.engine import FastStream

Backend = Literal["auto", "eager", "fast"]


@runtime_checkable
class StreamEngine(Protocol):
    """A stream of ``batch_size`` independent sequences through a causal model, one step at a time.

    Implemented by :class:`~dilated.streaming.EagerStream` (eager PyTorch) and
    :class:`~dilated.streaming._fast.FastStream` (the compiled kernel); both keep the same state format, so a state
    saved from one loads into the other.
    """

    batch_size: int
    steps: int

    @property
    def backend(self) -> str:
        """``"eager"`` or ``"fast"``: the engine that actually runs the steps."""
        ...

    @property
    def receptive_field(self) -> int:
        """Steps of input that each output depends on."""
        ...

    def step(self, x_t: torch.Tensor, **kwargs: Any) -> Any:
        """One step for every stream: ``(batch, channels) -> (batch, out_channels)``."""
        ...

    def step_many(self, x: torch.Tensor, **kwargs: Any) -> Any:
        """A chunk of ``n`` steps: ``(batch, channels, n) -> (batch, out_channels, n)``."""
        ...

    def reset(self) -> None:
        """Forget every stream's history (back to zero padding)."""
        ...

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``{"steps": int64 scalar, layer path: (batch, channels, history)}``: plain tensors, safe to save."""
        ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Resume from :meth:`state_dict` (of either engine)."""
        ...


def stream(
    model: nn.Module,
    batch_size: int = 1,
    backend: Backend = "auto",
    verify: bool = True,
    example: torch.Tensor | None = None,
) -> StreamEngine:
    """A stream of ``batch_size`` independent sequences through ``model`` (see :class:`StreamEngine`).

    Args:
        backend: ``"eager"`` (:class:`~dilated.streaming.EagerStream`), ``"fast"`` (the compiled kernel of
            :class:`~dilated.streaming._fast.FastStream`; it warns and runs the eager engine when the model uses an
            op the kernel does not cover), or ``"auto"``: fast where it applies, otherwise eager without a warning.
        verify, example: the construction check against the model's own forward, see
            :class:`~dilated.streaming.EagerStream`: whatever the backend (the compiled kernel, the eager engine,
            the fallback from one to the other, a TorchScript module), no stream gives an output before it has
            been proven equal to the forward on random inputs of several lengths, scales and batch sizes in the
            model's dtype (:mod:`dilated.streaming._verify`). ``verify=False`` is the only way to skip it, and then
            nothing proves the stream right: only for a model whose stream has been checked already.

    Weights: the stream follows the model's parameters and buffers, changed in place, through ``p.data = ...`` or
    reassigned, on both engines (:mod:`dilated.streaming._weights`); after a change it goes on from its state
    (histories computed with the old weights) with the new ones. A model in train mode is refused only where the
    mode changes its output (call ``model.eval()``).
    """
    if backend not in ("auto", "eager", "fast"):
        raise ValueError(f"backend must be 'auto', 'eager' or 'fast', got {backend!r}")
    if backend == "eager" or not isinstance(model, nn.Module):  # (EagerStream raises the TypeError naming the type)
        return EagerStream(model, batch_size, verify=verify, example=example)
    return FastStream(
        model, batch_size, fallback="warn" if backend == "fast" else "silent", verify=verify, example=example
    )
