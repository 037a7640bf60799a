"""The tracer's rules for data movement: padding, slicing, splitting, concatenating, reshaping, nearest upsampling,
assignment into slices; the common ones without element codes."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from dilated.analysis._fields import Steps
from dilated.analysis._graph import Unfollowed, tensors_in
from dilated.analysis._op_names import arg
from dilated.analysis._tracer_base import TracerBase
from dilated.analysis._values import Traced, concrete


class MoveOps(TracerBase):
    """Ops that only move elements: where every output element comes from."""

    # -- data movement ------------------------------------------------------------------------------------------------
    def data_move(self, base: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if base == "interpolate":
            mode = arg(args, kwargs, 3, "mode", "nearest")
            if mode not in ("nearest", "nearest-exact"):
                raise Unfollowed(f"interpolation mode {mode!r} (nearest is followed)")
        data: Any = args[0] if args else kwargs.get("input", kwargs.get("tensors"))  # a tensor, or several (cat)
        rest = list(args[1:])
        if base == "setitem":
            index, item = args[1], args[2]
            if any(self.value(t) is not None for t in tensors_in(index)):
                raise Unfollowed("indexing with a tensor computed from the input")
            inputs = [args[0]] + ([item] if self.value(item) is not None else [])

            def assign(target: torch.Tensor, *value: torch.Tensor) -> torch.Tensor:
                codes = target.clone()
                codes[index] = value[0] if value else 0.0
                return codes

            self.move(assign, inputs, args[0])
            return
        if any(
            self.value(t) is not None
            for t in tensors_in(rest) + tensors_in({k: v for k, v in kwargs.items() if k not in ("input", "tensors")})
        ):
            raise Unfollowed("an index or shape computed from the input")
        if base == "pad":
            mode = arg(args, kwargs, 2, "mode", "constant")
            pad = arg(args, kwargs, 1, "pad")

            v = self.traced(data)
            if mode == "constant" and v.tau is None and v.group_of is None and v.axis is not None:
                pairs = [tuple(pad[i : i + 2]) for i in range(0, len(pad), 2)]  # from the last axis backwards
                back = data.dim() - 1 - v.axis
                left = pairs[back][0] if back < len(pairs) else 0
                result = tensors_in(out)[0]
                groups = tuple({s: f.gather(1, 1, [Steps.of([-left])]) for s, f in g.items()} for g in v.groups)
                self.register(Traced(result, axis=v.axis, groups=groups))  # padded channels carry no source
                return

            def padded(codes: torch.Tensor) -> torch.Tensor:
                return F.pad(codes, pad, mode, 0.0) if mode == "constant" else F.pad(codes, pad, mode)

            self.move(padded, [data], out)
            return
        if base == "masked_fill":
            mask = concrete(arg(args, kwargs, 1, "mask"))
            self.move(lambda codes: codes.masked_fill(mask, 0.0), [data], out)
            return
        if self.fast_move(base, args, kwargs, out):
            return
        listed = isinstance(data, tuple | list)
        inputs = list(data) if listed else [data]

        def moved(*codes: torch.Tensor) -> Any:
            if base.endswith(".__get__"):
                return getattr(codes[0], base.split(".")[0])
            first = list(codes) if listed else codes[0]
            if args:
                return func(first, *args[1:], **kwargs)
            key = "tensors" if "tensors" in kwargs else "input"
            return func(**{**kwargs, key: first})

        self.move(moved, inputs, out)

    def fast_move(self, base: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> bool:
        """The common moves of one plain tensor, without element codes: splitting or relabelling the axes
        around the time axis. Returns whether it applied."""
        if not args:
            return False
        x = args[0]
        v = self.value(x)
        if v is None or v.tau is not None or v.group_of is not None or v.axis is None:
            return False
        results = tensors_in(out)
        if base in ("chunk", "split", "tensor_split", "split_with_sizes", "narrow", "unbind"):
            dim = (
                arg(args, kwargs, 2 if base in ("chunk", "split", "split_with_sizes", "tensor_split") else 1, "dim", 0)
                % x.dim()
            )
            if dim == v.axis:
                return False
            axis = v.axis - (1 if base == "unbind" and dim < v.axis else 0)
        elif base in ("transpose", "swapaxes", "swapdims"):
            a, b = (int(d) % x.dim() for d in args[1:3])
            axis = b if v.axis == a else a if v.axis == b else v.axis
        elif base == "permute":
            dims = args[1:] if len(args) > 2 or isinstance(args[1], int) else args[1]
            axis = [int(d) % x.dim() for d in dims].index(v.axis)
        elif base == "unsqueeze":
            dim = int(arg(args, kwargs, 1, "dim")) % (x.dim() + 1)
            axis = v.axis + (dim <= v.axis)
        elif base in ("T.__get__", "t"):
            axis = x.dim() - 1 - v.axis
        else:
            return False
        for result in results:
            if result.shape[axis] != x.shape[v.axis]:
                return False
        for result in results:
            self.register(Traced(result, axis=axis, groups=v.groups))
        return True
