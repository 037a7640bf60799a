"""What the torch tracer knows of one tensor (:class:`Traced`), and the element codes its data moves run on.

A data move (slicing, padding, a reshape, ...) is run again on a tensor of *element codes* (:func:`element_codes`):
each code names the operand and group an element comes from and its time index, so the moved codes say where every
output element comes from; :func:`find_time_axis` reads the time axis back from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dilated.analysis._fields import EMPTY, Field, Steps
from dilated.analysis._graph import Sources, Unfollowed, merge_fields

BIG = float(1 << 24)  # element codes: (value * MAX_GROUPS + group) * BIG + time index + 1; 0 = no source
MAX_GROUPS = 64


@dataclass
class Traced:
    """What the analysis knows of one tensor.

    Compact form: ``axis`` (the time axis, ``None`` when there is none and every element sees absolute steps) and
    ``groups``: one :data:`Sources` per group of elements with different fields (e.g. the channels of a ``cat`` of
    two paths), ``group_of`` (int64, broadcastable to the shape; -1: a constant element) saying which. A *mixed*
    value has ``tau``, the time index of every element (the time axis merged with another by a reshape).
    """

    tensor: torch.Tensor
    axis: int | None = None
    groups: tuple[Sources, ...] = ()
    group_of: torch.Tensor | None = None
    tau: torch.Tensor | None = None
    opaque: str | None = None

    @property
    def sources(self) -> Sources:
        """Every source of any element (the union over groups)."""
        merged: Sources = {}
        for group in self.groups:
            for s, f in group.items():
                merged[s] = f if s not in merged else merge_fields(merged[s], f, None)
        return merged


def make_compact(
    t: torch.Tensor,
    axis: int | None,
    groups: Sequence[Sources],
    group_of: torch.Tensor | None,
    fill_axis: int | None = None,
) -> Traced:
    """``t``'s :class:`Traced` in compact form: equal groups merged, ``group_of`` shrunk along the axes where it
    does not change (and gone when one group covers everything)."""
    groups = list(groups)
    if group_of is not None:
        if fill_axis is not None:  # padding along time is not another group: fill it from its step neighbours
            top = group_of.amax(dim=fill_axis, keepdim=True)
            if bool(((group_of == -1) | (group_of == top)).all()):
                group_of = top
        group_of = _compress(group_of)
    unique: list[Sources] = []
    remap = []
    for g in groups:
        if g in unique:
            remap.append(unique.index(g))
        else:
            remap.append(len(unique))
            unique.append(g)
    if group_of is not None:
        table = torch.tensor([-1] + remap, dtype=torch.int64)
        group_of = table[group_of + 1]
        if len(unique) == 1 and bool((group_of == 0).all()):
            group_of = None
    if not unique:
        unique = [{}]
    return Traced(t, axis=axis, groups=tuple(unique), group_of=group_of)


def _compress(group_of: torch.Tensor) -> torch.Tensor:
    """``group_of`` with every axis along which it does not change shrunk to size 1."""
    for d in range(group_of.dim()):
        if group_of.shape[d] > 1 and bool((group_of == group_of.narrow(d, 0, 1)).all()):
            group_of = group_of.narrow(d, 0, 1)
    return group_of


def broadcast_group_of(group_of: torch.Tensor | None, shape: torch.Size) -> torch.Tensor | None:
    """``group_of`` with leading axes of size 1 up to the rank of ``shape`` (what broadcasting does to it)."""
    if group_of is None:
        return None
    return group_of.reshape((1,) * (len(shape) - group_of.dim()) + tuple(group_of.shape))


def pool_group_of(v: Traced) -> torch.Tensor | None:
    if v.group_of is None or v.axis is None:
        return v.group_of
    if v.group_of.shape[v.axis] != 1:
        raise Unfollowed("a pool over steps that come from different paths")
    return v.group_of


def reduce_groups(v: Traced, dims: tuple[int, ...], keepdim: bool) -> tuple[list[Sources], torch.Tensor | None]:
    """The groups after combining elements along ``dims``: one per distinct set of groups met."""
    if v.group_of is None or len(v.groups) == 1:
        return list(v.groups), None
    g = v.group_of
    present = torch.stack(
        [(g == i).amax(dim=dims, keepdim=True) if g.dim() else (g == i) for i in range(len(v.groups))], dim=-1
    )
    key = (present.to(torch.int64) * (2 ** torch.arange(len(v.groups)))).sum(-1)
    signatures, group_of = torch.unique(key, return_inverse=True)
    groups = []
    for signature in signatures.tolist():
        merged: Sources = {}
        for i in range(len(v.groups)):
            if signature >> i & 1:
                for s, f in v.groups[i].items():
                    merged[s] = f if s not in merged else merge_fields(merged[s], f, None)
        groups.append(merged)
    group_of = group_of.reshape(key.shape)
    if not keepdim:
        group_of = group_of.squeeze(dims) if dims else group_of
    return groups, group_of


def swap_last_axes(v: Traced, moved: torch.Tensor) -> Traced:
    axis = v.axis
    n = moved.dim()
    if axis is not None and axis in (n - 1, n - 2):
        axis = (2 * n - 3) - axis
    group_of = v.group_of.transpose(-1, -2) if v.group_of is not None and v.group_of.dim() >= 2 else v.group_of
    return Traced(moved, axis=axis, groups=v.groups, group_of=group_of)


def element_codes(v: Traced, k: int) -> torch.Tensor:
    """Element codes of a traced tensor (see :data:`BIG`)."""
    shape = v.tensor.shape
    if v.tau is not None:
        tau = v.tau.to(torch.float64)
    elif v.axis is not None:
        view = [1] * len(shape)
        view[v.axis] = shape[v.axis]
        tau = torch.arange(shape[v.axis], dtype=torch.float64).view(view).expand(shape)
    else:
        tau = torch.zeros(shape, dtype=torch.float64)
    group = (
        v.group_of.to(torch.float64).expand(shape)
        if v.group_of is not None
        else torch.zeros((1,) * len(shape), dtype=torch.float64)
    )
    codes = (k * MAX_GROUPS + group) * BIG + tau + 1
    dead = (tau < 0) | (group < 0)
    return torch.where(dead, torch.zeros((), dtype=torch.float64), codes).expand(shape).contiguous()


def find_time_axis(tau: torch.Tensor, mask: torch.Tensor, ndim: int) -> tuple[int, tuple[int, int, list[Steps]]] | None:
    """The output axis along which ``tau`` (where ``mask``) changes and its periodic form, or ``None``."""
    inf = torch.iinfo(torch.int64)
    for axis in range(ndim):
        n = tau.shape[axis]
        if n < 2:
            continue
        t = tau.movedim(axis, 0).reshape(n, -1)
        m = mask.movedim(axis, 0).reshape(n, -1)
        lo = torch.where(m, t, torch.full_like(t, inf.max)).amin(1)
        hi = torch.where(m, t, torch.full_like(t, inf.min)).amax(1)
        defined = m.any(1)
        if bool((lo[defined] != hi[defined]).any()):
            continue
        seq = torch.where(defined, lo, torch.full_like(lo, -1)).numpy()
        found = _periodic(seq)
        if found is not None:
            return axis, found
    return None


def _periodic(seq: np.ndarray) -> tuple[int, int, list[Steps]] | None:
    """``(period, step, offsets)`` with ``seq[q * period + r] = q * step + offsets[r]`` wherever defined
    (``-1``: undefined; undefined ends, e.g. padding, are ignored)."""
    defined = np.nonzero(seq >= 0)[0]
    if len(defined) < 2:
        return None
    first, last = defined[0], defined[-1]
    n = len(seq)
    for period in range(1, n // 2 + 1):  # at least two whole periods, or a wrap-around can look periodic
        a, b = seq[:-period], seq[period:]
        both = (a >= 0) & (b >= 0)
        if not both.any():
            continue
        diff = (b - a)[both]
        if not (diff == diff[0]).all() or diff[0] <= 0:
            continue
        inner = slice(first, last - period + 1)
        if not np.array_equal(a[inner] >= 0, b[inner] >= 0):
            continue
        step = int(diff[0])
        offsets = []
        for r in range(period):
            where = defined[defined % period == r]
            if not len(where):
                offsets.append(EMPTY)
                continue
            i = int(where[len(where) // 2])
            offsets.append(Steps.of([int(seq[i]) - (i // period) * step]))
        return period, step, offsets
    return None


def everything_seen(f: Field, tau: torch.Tensor, length: int | None) -> Steps:
    """Every source step any element of a mixed value sees (``tau``: the time index of each element, -1: none)."""
    taus = torch.unique(tau[tau >= 0]).tolist()
    seen = EMPTY
    for t in taus:
        seen |= f.at(int(t))
    return seen.clip(0, length - 1) if length is not None else seen


class NeedsValues(Exception):
    """A constant's values are needed (a mask, an index) but the pass runs on meta tensors."""


def concrete(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself, whose values a rule reads (a mask, a condition); :class:`NeedsValues` on the meta pass."""
    if t.device.type == "meta":
        raise NeedsValues
    return t
