"""The tracer's rules for ops that act element by element (activations, gates, sums, masks) or combine elements
along some axes (reductions, softmax and normalisations, cumulative ops, embeddings)."""

from __future__ import annotations

import math
from typing import Any

import torch

from dilated.analysis._fields import Field
from dilated.analysis._graph import Sources, Unfollowed, clip, tensors_in, union_sources
from dilated.analysis._op_names import arg, dims_of
from dilated.analysis._tracer_base import TracerBase
from dilated.analysis._values import MAX_GROUPS, Traced, broadcast_group_of, everything_seen, reduce_groups


class PointwiseOps(TracerBase):
    """Elementwise ops, reductions and mixing along axes."""

    # -- elementwise --------------------------------------------------------------------------------------------------
    def elementwise(self, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        result = tensors_in(out)[0]
        traced = [v for v in map(self.value, tensors_in(args) + tensors_in(kwargs)) if v is not None]
        if any(v.tau is not None for v in traced):
            if len(traced) > 1:
                raise Unfollowed("an elementwise op on two tensors whose time axis is merged with another axis")
            v = traced[0]
            tau = v.tau
            assert tau is not None, "the one traced operand is the one with a merged time axis"
            self.register(
                Traced(
                    result,
                    groups=v.groups,
                    group_of=broadcast_group_of(v.group_of, result.shape),
                    tau=tau.broadcast_to(result.shape) if tau.shape != result.shape else tau,
                )
            )
            return
        axis: int | None = None
        parts: list[tuple[tuple[Sources, ...], torch.Tensor | None]] = []
        for v in traced:
            a, groups = self.aligned(v, result)
            if a is not None:
                if axis is not None and a != axis:
                    raise Unfollowed("an elementwise op between tensors with the time axis on different axes")
                axis = a
            parts.append((groups, broadcast_group_of(v.group_of, result.shape)))
        self.compact(result, axis, *self.combine(parts, result.shape))
        for extra in tensors_in(out)[1:]:  # e.g. the indices of max(a, dim): same fields
            self.compact(extra, axis, *self.combine(parts, result.shape))

    def aligned(self, v: Traced, out: torch.Tensor) -> tuple[int | None, tuple[Sources, ...]]:
        """``v``'s time axis in ``out`` after broadcasting; a broadcast single step becomes absolute."""
        if v.axis is None:
            return None, v.groups
        axis = v.axis + out.dim() - v.tensor.dim()
        if v.tensor.shape[v.axis] == 1 and out.shape[axis] != 1:
            return None, tuple({s: Field.constant(f.at(0)) for s, f in g.items()} for g in v.groups)
        return axis, v.groups

    def combine(
        self, parts: list[tuple[tuple[Sources, ...], torch.Tensor | None]], shape: torch.Size
    ) -> tuple[list[Sources], torch.Tensor | None]:
        """Groups of an elementwise op: one per combination of its operands' groups."""
        if all(g is None for _, g in parts):
            merged: Sources = {}
            for operand_groups, _ in parts:
                for group in operand_groups:
                    merged = union_sources(merged, group, self.lengths)
            return [merged], None
        ids = [g if g is not None else torch.zeros((1,) * len(shape), dtype=torch.int64) for _, g in parts]
        ids = torch.broadcast_tensors(*ids)
        key = torch.zeros_like(ids[0])
        for g in ids:
            key = key * (MAX_GROUPS + 1) + (g + 1)
        combos, group_of = torch.unique(key, return_inverse=True)
        groups: list[Sources] = []
        for combo in combos.tolist():
            merged, digits = {}, []
            for _ in parts:
                digits.append(combo % (MAX_GROUPS + 1) - 1)
                combo //= MAX_GROUPS + 1
            for (operand, _), g in zip(parts, reversed(digits)):
                if g >= 0:
                    merged = union_sources(merged, operand[g], self.lengths)
            groups.append(merged)
        return groups, group_of.reshape(key.shape)

    def masking_mul(self, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> bool:
        """``x * c`` with a constant ``c``: elements where ``c == 0`` see nothing."""
        a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
        traced, const = (a, b) if self.value(a) is not None else (b, a)
        if self.value(const) is not None or not isinstance(const, torch.Tensor | int | float):
            return False
        keep = (self.constant(const) if isinstance(const, torch.Tensor) else torch.as_tensor(const)) != 0
        if bool(keep.all()):
            return False
        self.move(lambda codes: codes * keep, [traced], out, merges=True)
        return True

    def masking_add(self, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> bool:
        """``x + c`` with a constant ``c`` holding infinities (an attention mask): those elements see nothing."""
        a, b = args[0], args[1] if len(args) > 1 else kwargs.get("other")
        traced, const = (a, b) if self.value(a) is not None else (b, a)
        if self.value(const) is not None or not isinstance(const, torch.Tensor) or not const.is_floating_point():
            return False
        keep = torch.isfinite(self.constant(const))
        if bool(keep.all()):
            return False
        self.move(lambda codes: codes * keep, [traced], out, merges=True)
        return True

    # -- reductions and mixing ---------------------------------------------------------------------------------------
    def reduction(self, base: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        x = args[0]
        dim = arg(args, kwargs, 2 if base == "norm" else 1, "dim")
        if base in ("max", "min") and isinstance(dim, torch.Tensor):  # max(a, b): elementwise
            self.elementwise(args, kwargs, out)
            return
        dims = dims_of(None if isinstance(dim, bool) else dim, x.dim())
        for result in tensors_in(out):  # keepdim shows in the result's rank
            self.contract(x, dims, result, result.dim() == x.dim() and bool(dims))

    def contract(
        self,
        x: torch.Tensor,
        dims: tuple[int, ...],
        result: torch.Tensor,
        keepdim: bool,
    ) -> None:
        """``result`` combines the elements of ``x`` along ``dims`` (removed unless ``keepdim``)."""
        v = self.traced(x)
        groups, group_of = reduce_groups(v, dims, keepdim)
        if v.tau is not None:
            groups = self.everything(v.tau, v.sources, dims)
            self.compact(result, None, groups, None)
            return
        if v.axis is not None and v.axis in dims:
            groups = [
                {s: clip(Field.constant(f.union_of(x.shape[v.axis])), self.lengths.get(s)) for s, f in g.items()}
                for g in groups
            ]
            axis = v.axis if keepdim else None
            if axis is not None and result.shape[axis] != x.shape[axis]:
                axis = None
        elif v.axis is not None:
            axis = v.axis if keepdim else v.axis - sum(d < v.axis for d in dims)
        else:
            axis = None
        if group_of is not None and group_of.dim() != result.dim():
            group_of = None if len(groups) == 1 else group_of
            if group_of is not None:
                raise Unfollowed("a reduction over part of a tensor whose elements come from different paths")
        self.compact(result, axis, groups, group_of)

    def everything(self, tau: torch.Tensor, sources: Sources, dims: tuple[int, ...]) -> list[Sources]:
        """For a value with a merged time axis (``tau``: each element's time index): reducing over ``dims`` must
        cover the same steps everywhere."""
        keep = [d for d in range(tau.dim()) if d not in dims]
        rows = tau.permute(*keep, *dims).reshape(math.prod(tau.shape[d] for d in keep), -1)
        first = torch.sort(rows[0]).values
        if not all(torch.equal(torch.sort(r).values, first) for r in rows[1:]):
            raise Unfollowed("a reduction over a reshaped time axis that covers different steps for different outputs")
        merged: Sources = {}
        for s, f in sources.items():
            merged = union_sources(
                merged, {s: Field.constant(everything_seen(f, tau, self.lengths.get(s)))}, self.lengths
            )
        return [merged]

    def mixing(self, x: torch.Tensor, dims: tuple[int, ...], out: Any) -> None:
        """Shape-keeping ops that mix ``dims`` (softmax, normalisations)."""
        result = tensors_in(out)[0]
        if not dims:
            self.elementwise((x,), {}, out)
            return
        self.contract(x, dims, result, True)
        done = self.traced(result)
        for extra in tensors_in(out)[1:]:
            self.register(Traced(extra, axis=done.axis, groups=done.groups))

    def prefix(self, x: torch.Tensor, dim: int, out: Any) -> None:
        """``cumsum`` and the like: along time, step ``t`` sees every step up to ``t``."""
        v = self.traced(x)
        dim = dim % x.dim()
        if v.tau is not None:
            raise Unfollowed("a cumulative op over a reshaped time axis")
        if v.axis != dim:
            self.elementwise((x,), {}, out)
            return
        groups = [{s: Field(1, 1, (f.prefix(0),)) for s, f in g.items()} for g in v.groups]
        for result in tensors_in(out):
            self.compact(result, v.axis, groups, v.group_of)

    def append_dim(self, x: torch.Tensor, out: Any) -> None:
        """``embedding``/``one_hot``: one new trailing axis per element."""
        v = self.traced(x)
        result = tensors_in(out)[0]
        if v.tau is not None:
            raise Unfollowed("an embedding of a reshaped time axis")
        group_of = v.group_of.unsqueeze(-1) if v.group_of is not None else None
        self.compact(result, v.axis, v.groups, group_of)
