"""The tracer's rules for data movement: padding, slicing, splitting, concatenating, reshaping, nearest upsampling,
assignment into slices; the common ones without element codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from dilated.analysis._fields import Steps
from dilated.analysis._graph import Unfollowed, tensors_in
from dilated.analysis._op_names import MERGES, arg
from dilated.analysis._tracer_base import TracerBase
from dilated.analysis._values import Traced

_SPLITS = frozenset(("chunk", "split", "tensor_split", "split_with_sizes", "narrow", "unbind"))


def _split_axis(x: torch.Tensor, axis: int, base: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    """The time axis after splitting ``x`` along another axis (``None``: the split is along time)."""
    dim = int(arg(args, kwargs, 1 if base in ("narrow", "unbind") else 2, "dim", 0)) % x.dim()
    if dim == axis:
        return None
    return axis - (1 if base == "unbind" and dim < axis else 0)


def _swap_axis(x: torch.Tensor, axis: int, base: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    a, b = (int(d) % x.dim() for d in args[1:3])
    return b if axis == a else a if axis == b else axis


def _permute_axis(x: torch.Tensor, axis: int, base: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    dims = args[1:] if len(args) > 2 or isinstance(args[1], int) else args[1]
    return [int(d) % x.dim() for d in dims].index(axis)


def _unsqueeze_axis(x: torch.Tensor, axis: int, base: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    dim = int(arg(args, kwargs, 1, "dim")) % (x.dim() + 1)
    return axis + (dim <= axis)


def _transposed_axis(x: torch.Tensor, axis: int, base: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    return x.dim() - 1 - axis


AxisRule = Callable[[torch.Tensor, int, str, tuple[Any, ...], dict[str, Any]], "int | None"]
_AXIS_AFTER: dict[str, AxisRule] = {
    **dict.fromkeys(_SPLITS, _split_axis),
    **dict.fromkeys(("transpose", "swapaxes", "swapdims"), _swap_axis),
    "permute": _permute_axis,
    "unsqueeze": _unsqueeze_axis,
    "T.__get__": _transposed_axis,
    "t": _transposed_axis,
}  # the moves that relabel axes around an untouched time axis, without element codes


class MoveOps(TracerBase):
    """Ops that only move elements: where every output element comes from."""

    def data_move(self, base: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if base == "setitem":
            self.assign(args, out)
            return
        if base == "interpolate" and arg(args, kwargs, 3, "mode", "nearest") not in ("nearest", "nearest-exact"):
            raise Unfollowed(f"interpolation mode {arg(args, kwargs, 3, 'mode')!r} (nearest is followed)")
        data: Any = args[0] if args else kwargs.get("input", kwargs.get("tensors"))  # a tensor, or several (cat)
        given = tensors_in(list(args[1:])) + tensors_in(
            {k: v for k, v in kwargs.items() if k not in ("input", "tensors")}
        )
        if any(self.value(t) is not None for t in given):
            raise Unfollowed("an index or shape computed from the input")
        if base == "pad":
            self.pad(data, args, kwargs, out)
        elif base == "masked_fill":
            mask = self.constant(arg(args, kwargs, 1, "mask"))
            self.move(lambda codes: codes.masked_fill(mask, 0.0), [data], out, merges=True)
        elif not self.fast_move(base, args, kwargs, out):
            self.replay(base, func, data, args, kwargs, out)

    def assign(self, args: tuple[Any, ...], out: Any) -> None:
        """``target[index] = item``: the assigned elements see what ``item`` sees (nothing for a constant)."""
        target, index, item = args[0], args[1], args[2]
        if any(self.value(t) is not None for t in tensors_in(index)):
            raise Unfollowed("indexing with a tensor computed from the input")
        inputs = [target] + ([item] if self.value(item) is not None else [])

        def assigned(codes: torch.Tensor, *value: torch.Tensor) -> torch.Tensor:
            codes = codes.clone()
            codes[index] = value[0] if value else 0.0
            return codes

        self.move(assigned, inputs, target)

    def pad(self, data: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """``F.pad``: zero padding of a plain tensor shifts its steps; other modes run on element codes."""
        mode = arg(args, kwargs, 2, "mode", "constant")
        pad = arg(args, kwargs, 1, "pad")
        v = self.traced(data)
        if mode == "constant" and v.tau is None and v.group_of is None and v.axis is not None:
            pairs = [tuple(pad[i : i + 2]) for i in range(0, len(pad), 2)]  # from the last axis backwards
            back = data.dim() - 1 - v.axis
            left = pairs[back][0] if back < len(pairs) else 0
            groups = tuple({s: f.gather(1, 1, [Steps.of([-left])]) for s, f in g.items()} for g in v.groups)
            self.register(Traced(tensors_in(out)[0], axis=v.axis, groups=groups))  # padded channels: no source
            return

        def padded(codes: torch.Tensor) -> torch.Tensor:
            return F.pad(codes, pad, mode, 0.0) if mode == "constant" else F.pad(codes, pad, mode)

        self.move(padded, [data], out)

    def replay(self, base: str, func: Any, data: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """Any other move, run again on element codes."""
        listed = isinstance(data, tuple | list)

        def moved(*codes: torch.Tensor) -> Any:
            if base.endswith(".__get__"):
                return getattr(codes[0], base.split(".")[0])
            first = list(codes) if listed else codes[0]
            if args:
                return func(first, *args[1:], **kwargs)
            key = "tensors" if "tensors" in kwargs else "input"
            return func(**{**kwargs, key: first})

        self.move(moved, list(data) if listed else [data], out, merges=base in MERGES)

    def fast_move(self, base: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> bool:
        """The common moves of one plain tensor, without element codes: splitting or relabelling the axes
        around the time axis. Returns whether it applied."""
        rule = _AXIS_AFTER.get(base)
        v = self.value(args[0]) if args and rule is not None else None
        if rule is None or v is None or v.tau is not None or v.group_of is not None or v.axis is None:
            return False
        x, results = args[0], tensors_in(out)
        axis = rule(x, v.axis, base, args, kwargs)
        if axis is None or any(result.shape[axis] != x.shape[v.axis] for result in results):
            return False
        for result in results:
            self.register(Traced(result, axis=axis, groups=v.groups))
        return True
