"""The state of the torch tracer and its one general rule: an op that moves data is run again on element codes
(:mod:`~dilated.analysis._values`), and what every output element comes from is read back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from dilated.analysis._fields import Field
from dilated.analysis._graph import Sources, TensorTable, Unfollowed, clip, tensors_in
from dilated.analysis._values import BIG, MAX_GROUPS, Traced, concrete, element_codes, find_time_axis, make_compact


class TracerBase(TorchFunctionMode):
    """What one forward pass has traced so far: the :class:`Traced` of every tensor that depends on the input, and
    the output length of every source node. The op rules (``ops_*`` modules) build on it."""

    def __init__(self, originals: TensorTable[torch.Tensor] | None = None) -> None:
        super().__init__()
        self.values: TensorTable[Traced] = TensorTable()
        self.originals = originals if originals is not None else TensorTable()  # meta stand-in -> the model's own
        self.lengths: dict[int, int | None] = {}  # source node -> steps on its output's time axis
        self.stack: list[str] = []  # names of the modules running, innermost last

    # -- values ---------------------------------------------------------------------------------------------------
    def value(self, t: Any) -> Traced | None:
        """The :class:`Traced` of ``t``; ``None`` where ``t`` is no tensor or does not depend on the input."""
        return self.values.get(t)

    def traced(self, t: Any) -> Traced:
        """The :class:`Traced` of ``t``, which an op's rule reads as depending on the input."""
        v = self.value(t)
        if v is None:
            raise Unfollowed("an operand the rule reads as input-dependent is a constant")
        return v

    def constant(self, t: torch.Tensor) -> torch.Tensor:
        """The values of constant ``t`` (a weight, a mask) that a rule reads: on the meta pass those of the model's
        own parameter or buffer that ``t`` stands for; :class:`~dilated.analysis._values.NeedsValues` where it
        stands for none (a tensor computed in the forward: the pass then runs again on the model itself)."""
        real = self.originals.get(t)
        return real if real is not None else concrete(t)

    def register(self, v: Traced) -> None:
        self.values.put(v.tensor, v)

    def compact(
        self, t: torch.Tensor, axis: int | None, groups: Sequence[Sources], group_of: torch.Tensor | None = None
    ) -> None:
        """Register ``t``; groups that see nothing are dropped, equal ones merged."""
        self.register(make_compact(t, axis, groups, group_of))

    def where(self) -> str:
        return f" (in {self.stack[-1]})" if self.stack and self.stack[-1] else ""

    # -- element codes -------------------------------------------------------------------------------------------
    def move(self, fn: Callable[..., Any], inputs: list[Any], out: Any, merges: bool = False) -> None:
        """Run ``fn`` on element codes of ``inputs`` (tensors; untraced ones carry no source) and register what
        every output element comes from. Only a reshape (``merges``) may merge the time axis with another one; any
        other op whose steps land out of order along an axis (a roll, a flip, an index or a window that reorders or
        repeats steps) is :class:`Unfollowed`."""
        values = [self.value(t) for t in inputs]
        codes = [
            element_codes(v, k) if v is not None else torch.zeros(t.shape, dtype=torch.float64)
            for k, (v, t) in enumerate(zip(values, inputs))
        ]
        with torch.no_grad():
            moved = tensors_in(fn(*codes))
        results = tensors_in(out)
        if len(moved) != len(results) or any(m.shape != r.shape for m, r in zip(moved, results)):
            raise Unfollowed("the op does not give the same shapes on element codes")
        merges = merges or any(v is not None and v.tau is not None for v in values)
        for real, code in zip(results, moved):
            self.register(self.decode(real, code, values, merges))

    def decode(self, real: torch.Tensor, codes: torch.Tensor, values: list[Traced | None], merges: bool) -> Traced:
        """What ``real``'s elements see, from the codes a move produced for them (``merges``: the time axis may
        end up merged with another one)."""
        valid = codes > 0
        flat = torch.where(valid, codes - 1, torch.zeros_like(codes))
        source = torch.floor(flat / BIG)
        tau = (flat - source * BIG).to(torch.int64)
        source = source.to(torch.int64)
        present = torch.unique(source[valid]).tolist()
        if not present:
            return Traced(real, axis=None, groups=({},))  # every element is a constant (padding)
        ndim = real.dim()
        parts: list[tuple[int | None, Sources, torch.Tensor]] = []
        mixed = False
        for code in present:
            v = values[code // MAX_GROUPS]
            sources = v.groups[code % MAX_GROUPS]
            mask = valid & (source == code)
            if v.axis is None and v.tau is None:
                parts.append((None, sources, mask))
                continue
            taus = tau[mask]
            lo, hi = int(taus.min()), int(taus.max())
            if lo == hi:  # one step of the source: absolute
                parts.append(
                    (None, {s: clip(Field.constant(f.at(lo)), self.lengths.get(s)) for s, f in sources.items()}, mask)
                )
                continue
            found = find_time_axis(tau, mask, ndim)
            if found is None:
                mixed = True
                break
            axis, (period, step, offsets) = found
            parts.append((axis, {s: f.gather(period, step, offsets) for s, f in sources.items()}, mask))
        if not mixed:
            axes = {a for a, _, _ in parts if a is not None}
            if len(axes) <= 1:
                out_axis = axes.pop() if axes else None
                group_of = torch.full(real.shape, -1, dtype=torch.int64)
                for i, (_, _, mask) in enumerate(parts):
                    group_of[mask] = i
                return make_compact(real, out_axis, [s for _, s, _ in parts], group_of, fill_axis=out_axis)
        if not merges:
            raise Unfollowed("moves steps along the time axis out of order (reversed, rolled, repeated or windowed)")
        # the time axis merged with another one (a flatten): keep every element's own time index
        groups, group_of = [], torch.full(real.shape, -1, dtype=torch.int64)
        for i, code in enumerate(present):
            v = values[code // MAX_GROUPS]
            if v.axis is None and v.tau is None:
                raise Unfollowed("a reshape merging the time axis with a tensor without one")
            groups.append(v.groups[code % MAX_GROUPS])
            group_of[valid & (source == code)] = i
        return Traced(real, groups=tuple(groups), group_of=group_of, tau=torch.where(valid, tau, -1))
