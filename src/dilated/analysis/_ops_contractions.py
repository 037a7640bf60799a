"""The tracer's rules for weighted sums over windows or whole axes: ``linear``, ``matmul``, ``einsum``, convs,
transposed convs and pools (1-D, 2-D, 3-D; time on any spatial axis)."""

from __future__ import annotations

from typing import Any

import torch

from dilated.analysis._fields import Field, Steps
from dilated.analysis._graph import Sources, Unfollowed, clip, tensors_in, union_sources
from dilated.analysis._op_names import arg, per_axis
from dilated.analysis._ops_pointwise import PointwiseOps
from dilated.analysis._values import Traced, pool_group_of, swap_last_axes


class ContractionOps(PointwiseOps):
    """Linear maps, convolutions and pooling."""

    # -- linear maps --------------------------------------------------------------------------------------------------
    def linear(self, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        x, weight = args[0], arg(args, kwargs, 1, "weight")
        if self.value(weight) is not None or self.value(arg(args, kwargs, 2, "bias")) is not None:
            raise Unfollowed("a weight computed from the input")
        result = tensors_in(out)[0]
        if self.traced(x).axis == x.dim() - 1:
            reads = self.constant(weight) != 0  # (output steps, input steps)
            if not bool(reads.all()):
                self.band_over_time(x, reads, result)
                return
        self.contract(x, (x.dim() - 1,), result, True)
        self._last_replaced(result)

    def band_over_time(self, x: torch.Tensor, reads: torch.Tensor, result: torch.Tensor) -> None:
        """A constant matrix with zeros mapping ``x``'s last axis, time, to ``result``'s: followed where every
        output step ``o`` reads the same offsets from ``o`` (a Toeplitz or banded matrix), or those and every
        earlier step (a lower triangular one), the rows at the ends cut by the input's ends; read from the
        matrix's zeros and checked on every row, else :class:`Unfollowed`."""
        v = self.traced(x)
        if v.group_of is not None and v.group_of.shape[-1] != 1:  # time is the last axis
            raise Unfollowed("a constant matrix over steps that come from different paths")
        rows = [torch.nonzero(row).flatten().tolist() for row in reads]
        middle, length = len(rows) // 2, reads.shape[1]
        band = Steps.of(s - middle for s in rows[middle])
        for taps in (band, band | Steps.before(-middle)):
            if all(taps.shift(o).clip(0, length - 1).values() == row for o, row in enumerate(rows)):
                groups = [{src: f.gather(1, 1, [taps]) for src, f in g.items()} for g in v.groups]
                self.compact(result, v.axis, groups, v.group_of)
                return
        raise Unfollowed("a constant matrix over the time axis whose rows read different offsets (no band)")

    def dense_over_time(self, x: torch.Tensor, axis: int, matrix: torch.Tensor) -> None:
        """A constant ``matrix`` contracted with ``x`` along ``axis``: where that is time, every output must read
        every step (no zero entry), or the outputs read different steps (a triangular or banded matrix) and the
        op is :class:`Unfollowed`."""
        v = self.traced(x)
        if v.axis == axis and not bool((self.constant(matrix) != 0).all()):
            raise Unfollowed("a constant matrix over the time axis whose outputs read different steps")

    def _last_replaced(self, result: torch.Tensor) -> None:
        """The last axis of ``result`` holds new features: it is no time axis."""
        v = self.traced(result)
        if v.axis == result.dim() - 1:
            v.axis = None

    def matmul(self, base: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if base in ("baddbmm", "addmm", "addbmm"):
            bias, a, b = args[0], args[1], args[2]
        else:
            bias, a, b = None, args[0], args[1]
        result = tensors_in(out)[0]
        va, vb = self.value(a), self.value(b)
        if va is not None and vb is not None:
            raise Unfollowed(
                "a product of two tensors that both depend on the input (attention written by hand: "
                "use F.scaled_dot_product_attention or nn.MultiheadAttention)"
            )
        if a.dim() < 2 or b.dim() < 2 or result.dim() < 2:
            raise Unfollowed("a vector product")
        if a.dim() != result.dim() or b.dim() != result.dim():
            raise Unfollowed("a product broadcasting a batch axis")
        if bias is not None and self.value(bias) is not None:
            raise Unfollowed("a matrix product whose added term depends on the input")
        if va is not None:  # (..., n, k) @ const: k is contracted, n stays on axis -2
            self.dense_over_time(a, a.dim() - 1, b)
            self.contract(a, (a.dim() - 1,), result, True)
            self._last_replaced(result)
        else:  # const @ (..., k, m): k (-2) is contracted, m stays last
            assert vb is not None, "a matrix product reaches its rule with a factor or the added term traced"
            self.dense_over_time(b, b.dim() - 2, a)
            moved = b.transpose(-1, -2)
            self.register(swap_last_axes(vb, moved))
            self.contract(moved, (b.dim() - 1,), result, True)
            v = self.traced(result)
            if v.axis == result.dim() - 2:
                v.axis = result.dim() - 1
            if v.group_of is not None:
                v.group_of = v.group_of.expand(*v.group_of.shape[:-1], 1).transpose(-1, -2)
            v.group_of = None if len(v.groups) == 1 else v.group_of

    def einsum(self, args: tuple[Any, ...], out: Any) -> None:
        equation = args[0].replace(" ", "")
        operands = list(args[1]) if len(args) == 2 and isinstance(args[1], tuple | list) else list(args[1:])
        if "..." in equation or "->" not in equation:
            raise Unfollowed("an einsum with '...' or without '->'")
        inputs, output = equation.split("->")
        result = tensors_in(out)[0]
        axis: int | None = None
        merged: Sources = {}
        for letters, operand in zip(inputs.split(","), operands):
            v = self.value(operand)
            if v is None:
                continue
            if v.tau is not None or len(v.groups) > 1:
                raise Unfollowed("an einsum over elements from different paths")
            sources = v.groups[0]
            if v.axis is not None:
                letter = letters[v.axis]
                if letter in output:
                    if axis is not None and output.index(letter) != axis:
                        raise Unfollowed("an einsum between two time axes")
                    axis = output.index(letter)
                else:
                    self._einsum_dense(letter, inputs.split(","), operands)
                    sources = {
                        s: clip(Field.constant(f.union_of(operand.shape[v.axis])), self.lengths.get(s))
                        for s, f in sources.items()
                    }
            merged = union_sources(merged, sources, self.lengths)
        self.compact(result, axis, [merged])

    def _einsum_dense(self, letter: str, letters: list[str], operands: list[Any]) -> None:
        """A time axis (``letter``) summed out of an einsum: each constant operand over it must be dense."""
        for spec, operand in zip(letters, operands):
            if letter in spec and self.value(operand) is None and not bool((self.constant(operand) != 0).all()):
                raise Unfollowed("a constant matrix over the time axis whose outputs read different steps")

    # -- convolutions and pooling -------------------------------------------------------------------------------------
    def _spatial(self, x: torch.Tensor, n: int) -> tuple[Traced, int | None, int]:
        """The input's value, which spatial axis (0..n-1) is time (``None``: channels or batch), and the offset
        of the first spatial axis."""
        v = self.traced(x)
        if v.tau is not None:
            raise Unfollowed("a conv over a reshaped time axis")
        first = x.dim() - n
        if v.axis is None or v.axis < first:
            return v, None, first
        return v, v.axis - first, first

    def conv(self, n: int, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        x, weight = args[0], arg(args, kwargs, 1, "weight")
        if self.value(weight) is not None or self.value(arg(args, kwargs, 2, "bias")) is not None:
            raise Unfollowed("a conv weight computed from the input")
        result = tensors_in(out)[0]
        v, spatial, first = self._spatial(x, n)
        stride = per_axis(arg(args, kwargs, 3, "stride", 1), n)
        padding = arg(args, kwargs, 4, "padding", 0)
        dilation = per_axis(arg(args, kwargs, 5, "dilation", 1), n)
        groups_arg = int(arg(args, kwargs, 6, "groups", 1))
        kernel = tuple(weight.shape[2:])
        if len(v.groups) > 1 and groups_arg != 1:
            raise Unfollowed("a grouped conv over channels that come from different paths")
        sources = self.channel_union(v, first - 1)
        if spatial is None:
            self.across_channels(v, first - 1, sources, result)
            return
        k, s, d = kernel[spatial], stride[spatial], dilation[spatial]
        if isinstance(padding, str):
            left = 0 if padding == "valid" else d * (k - 1) // 2
        else:
            left = per_axis(padding, n)[spatial]
        taps = Steps.of(i * d - left for i in range(k))
        self.compact(result, v.axis, [{src: f.gather(1, s, [taps]) for src, f in sources.items()}])

    def across_channels(self, v: Traced, channel: int, sources: Sources, result: torch.Tensor) -> None:
        """A conv whose input has no time axis among its spatial ones: channels as time are all mixed, a batch
        axis as time is kept."""
        if v.axis is not None and v.axis == channel:
            sources = {
                s: clip(Field.constant(f.union_of(v.tensor.shape[channel])), self.lengths.get(s))
                for s, f in sources.items()
            }
            self.compact(result, None, [sources])
        else:
            self.compact(result, v.axis, [sources])

    def channel_union(self, v: Traced, channel: int) -> Sources:
        """All groups of a tensor whose channels a conv mixes (groups may differ along channels only)."""
        if v.group_of is not None:
            varying = [d for d in range(v.group_of.dim()) if v.group_of.shape[d] > 1 and d != channel]
            if varying and len(v.groups) > 1:
                raise Unfollowed("a conv over a tensor whose steps come from different paths")
        merged: Sources = {}
        for g in v.groups:
            merged = union_sources(merged, g, self.lengths)
        return merged

    def conv_transpose(self, n: int, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        x, weight = args[0], arg(args, kwargs, 1, "weight")
        if self.value(weight) is not None:
            raise Unfollowed("a conv weight computed from the input")
        result = tensors_in(out)[0]
        v, spatial, first = self._spatial(x, n)
        if len(v.groups) > 1 and int(arg(args, kwargs, 6, "groups", 1)) != 1:
            raise Unfollowed("a grouped conv over channels that come from different paths")
        sources = self.channel_union(v, first - 1)
        if spatial is None:
            self.across_channels(v, first - 1, sources, result)
            return
        stride = per_axis(arg(args, kwargs, 3, "stride", 1), n)[spatial]
        padding = per_axis(arg(args, kwargs, 4, "padding", 0), n)[spatial]
        dilation = per_axis(arg(args, kwargs, 7, "dilation", 1), n)[spatial]
        k = weight.shape[2 + spatial]
        # output o = i * stride - padding + j * dilation: phase r of o = q * stride + r reads i = q + (r + p - j d) / s
        offsets = [
            Steps.of(
                (r + padding - j * dilation) // stride for j in range(k) if (r + padding - j * dilation) % stride == 0
            )
            for r in range(stride)
        ]
        self.compact(result, v.axis, [{src: f.gather(stride, 1, offsets) for src, f in sources.items()}])

    def pool(self, base: str, n: int, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        x = args[0]
        v, spatial, first = self._spatial(x, n)
        if base.startswith("lp_pool"):
            kernel = per_axis(arg(args, kwargs, 2, "kernel_size"), n)
            stride = arg(args, kwargs, 3, "stride")
            padding, dilation = (0,) * n, (1,) * n
        else:
            kernel = per_axis(arg(args, kwargs, 1, "kernel_size"), n)
            stride = arg(args, kwargs, 2, "stride")
            padding = per_axis(arg(args, kwargs, 3, "padding", 0), n)
            dilation = per_axis(arg(args, kwargs, 4, "dilation", 1), n) if base.startswith("max") else (1,) * n
        stride = kernel if stride is None or (isinstance(stride, tuple | list) and not stride) else per_axis(stride, n)
        results = tensors_in(out)
        if spatial is None:
            for result in results:
                self.compact(result, v.axis, v.groups, v.group_of)
            return
        k, s, d, p = kernel[spatial], stride[spatial], dilation[spatial], padding[spatial]
        taps = Steps.of(i * d - p for i in range(k))
        groups = [{src: f.gather(1, s, [taps]) for src, f in g.items()} for g in v.groups]
        group_of = pool_group_of(v)
        for result in results:
            self.compact(result, v.axis, groups, group_of)

    def adaptive_pool(self, n: int, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        x = args[0]
        v, spatial, first = self._spatial(x, n)
        results = tensors_in(out)
        if spatial is None:
            for result in results:
                self.compact(result, v.axis, v.groups, v.group_of)
            return
        axis = first + spatial  # the time axis
        length, size = x.shape[axis], results[0].shape[axis]
        if size == 1:
            for result in results:
                self.contract(x, (axis,), result, True)
            return
        if length % size:
            raise Unfollowed(f"adaptive pooling from {length} to {size} steps (windows of unequal width)")
        k = length // size
        groups = [{src: f.gather(1, k, [Steps.span(0, k - 1)]) for src, f in g.items()} for g in v.groups]
        for result in results:
            self.compact(result, v.axis, groups, pool_group_of(v))
