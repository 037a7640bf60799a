"""What a stream knows of the model's weights: whether any parameter or buffer changed since it last read them.

The contract, the same on both engines: a stream follows the model's parameters and buffers, changed in place
(an optimizer step, an EMA update under ``no_grad``), through ``p.data = other`` (how weights are often loaded) or
reassigned (``module.weight = nn.Parameter(...)``). The eager engine reads them live (its shadow modules share the
tensors; a reassignment re-points them); the fast engine copies them into its program, so a change makes it compile
the program again (and check it again) before its next step.

Detection, per step: one read of every tensor's stamp (:mod:`dilated.streaming._stamps`: its version counter,
storage, offset, dtype, sizes and strides) by a small C++ extension module built against the installed torch, in
one call without arguments (about 8 ns per tensor); and an identity check only after some module in the process
registered a parameter or buffer (a global torch hook counts them). Without the helper (no C++ compiler or torch
headers) the stamps are read in Python, slower and without seeing ``p.data = p.data.t()`` (a view of the same
memory); ``_stamps.native_reason()`` says why. ``benchmarks/streaming.py`` prints the detection's share of a step
and the path.

Not seen: writes through ``p.data`` (``p.data.mul_(...)``): ``.data`` is a tensor with a version counter of its own.
Change weights in place under ``torch.no_grad()`` instead.
"""

from __future__ import annotations

import torch
from torch import nn

from dilated.streaming._stamps import read_stamps

_registrations = [0]  # parameters and buffers registered (assigned) on any module of the process


def _count(module: nn.Module, name: str, value: torch.Tensor | None) -> None:
    _registrations[0] += 1


nn.modules.module.register_module_parameter_registration_hook(_count)
nn.modules.module.register_module_buffer_registration_hook(_count)


class Weights:
    """The parameters and buffers of ``model`` as last read (:meth:`read`); :meth:`changed` says whether any was
    changed in place or reassigned since."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.read()

    def _current(self) -> list[tuple[str, torch.Tensor]]:
        named = [*self.model.named_parameters(), *self.model.named_buffers()]
        return [(n, t) for n, t in named if isinstance(t, torch.Tensor) and not t.is_inference()]

    def read(self) -> None:
        """Take the current tensors and their versions as the ones the stream uses."""
        self.named = self._current()
        self.tensors = [t for _, t in self.named]
        self.stamps = read_stamps(self.tensors)
        self.registrations = _registrations[0]

    def reassigned(self) -> str | None:
        """The first parameter or buffer (by name) that is no longer the tensor read, or ``None``."""
        if self.registrations == _registrations[0]:
            return None
        self.registrations = _registrations[0]
        current = self._current()
        if len(current) != len(self.named):
            return next((n for (n, _), (m, _) in zip(current, self.named) if n != m), current[-1][0] if current else "")
        return next((n for (n, t), (_, old) in zip(current, self.named) if t is not old), None)

    def changed(self) -> bool:
        """Whether a tensor was reassigned or changed in place since :meth:`read`."""
        if self.registrations != _registrations[0] and self.reassigned() is not None:
            return True
        return self.stamps.changed() != 0
