"""The tracer's rules for attention (``scaled_dot_product_attention``) and the modules it takes whole (RNNs,
``nn.MultiheadAttention``: their insides are fused kernels)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dilated.analysis._attention import allowed_keys, attention_rows, read_keys
from dilated.analysis._fields import Field, FieldError
from dilated.analysis._graph import Sources, Unfollowed, clip, tensors_in, union_sources
from dilated.analysis._op_names import arg
from dilated.analysis._ops_contractions import ContractionOps
from dilated.analysis._values import Traced, concrete


class AttentionOps(ContractionOps):
    """Attention and the modules taken whole."""

    # -- attention ----------------------------------------------------------------------------------------------------
    def sdpa(self, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        q, k, val = args[0], args[1], args[2]
        mask = arg(args, kwargs, 3, "attn_mask")
        causal = bool(arg(args, kwargs, 5, "is_causal", False))
        if self.value(mask) is not None:
            raise Unfollowed("an attention mask computed from the input")
        allowed = allowed_keys(mask, q.shape[-2], k.shape[-2], causal, true_attends=True)
        self.attend(q, [k, val], q.dim() - 2, [k.dim() - 2, val.dim() - 2], allowed, tensors_in(out)[0])

    def attend(
        self,
        query: torch.Tensor,
        keys: list[torch.Tensor],
        q_axis: int,
        k_axes: list[int],
        allowed: np.ndarray,
        result: torch.Tensor,
    ) -> None:
        """Step ``i`` of ``result`` sees query step ``i`` and the key/value steps ``j`` with ``allowed[i, j]``."""
        rows = attention_rows(allowed)
        merged: Sources = {}
        for t, k_axis in zip(keys, k_axes):
            v = self.value(t)
            if v is None:
                continue
            if v.tau is not None:
                raise Unfollowed("attention over a reshaped time axis")
            sources = self.channel_union(v, t.dim() - 1)
            if v.axis is not None and v.axis != k_axis:
                raise Unfollowed("attention whose keys carry time on another axis than the sequence axis")
            if v.axis is not None:
                sources = {
                    s: clip(read_keys(f, rows, t.shape[k_axis]), self.lengths.get(s)) for s, f in sources.items()
                }
            merged = union_sources(merged, sources, self.lengths)
        vq = self.value(query)
        axis: int | None = q_axis
        if vq is not None:
            if vq.tau is not None or (vq.axis is not None and vq.axis != q_axis):
                raise Unfollowed("attention whose queries carry time on another axis than the sequence axis")
            merged = union_sources(merged, self.channel_union(vq, query.dim() - 1), self.lengths)
            if vq.axis is None and all(f.absolute for f in merged.values()):
                axis = None  # nothing moves with the query position
        self.compact(result, axis, [merged])

    # -- modules taken whole -----------------------------------------------------------------------------------------
    def atomic_module(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        inputs = [v for v in map(self.value, tensors_in(args) + tensors_in(kwargs)) if v is not None]
        if not inputs:
            return
        where = f"{type(module).__name__}{self.where()}"
        opaque = next((v.opaque for v in inputs if v.opaque), None)
        try:
            if opaque:
                raise Unfollowed(opaque)
            if isinstance(module, nn.RNNBase):
                self.rnn(module, args, kwargs, out)
            else:
                assert isinstance(module, nn.MultiheadAttention), "ATOMIC holds RNNs and multi-head attention only"
                self.multihead(module, args, kwargs, out)
        except (Unfollowed, FieldError) as error:
            for t in tensors_in(out):
                self.register(Traced(t, opaque=str(error) if opaque else f"{where}: {error}"))

    def rnn(self, module: nn.RNNBase, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        x = args[0]
        if not isinstance(x, torch.Tensor):
            raise Unfollowed("a packed sequence")
        if any(self.value(t) is not None for t in tensors_in(args[1:]) + tensors_in(kwargs)):
            raise Unfollowed("an initial state computed from the input")
        v = self.traced(x)
        seq = 0 if x.dim() == 2 or not module.batch_first else 1
        if v.tau is not None:
            raise Unfollowed("an RNN over a reshaped time axis")
        features = self.channel_union(v, x.dim() - 1)  # every step mixes all its features
        output, states = out[0], tensors_in(out[1:])
        length = x.shape[v.axis] if v.axis is not None else 1
        whole = {s: clip(Field.constant(f.union_of(length)), self.lengths.get(s)) for s, f in features.items()}
        if v.axis is None or v.axis != seq:
            if v.axis is not None and v.axis != x.dim() - 1:
                raise Unfollowed("an RNN whose input carries time on the batch axis")
            self.compact(output, None, [whole])  # time is not the sequence axis: every output sees all of it
        elif module.bidirectional:
            self.compact(output, seq, [whole])
        else:
            self.compact(
                output, seq, [{s: Field(1, 1, (f.prefix(0),)) if not f.absolute else f for s, f in features.items()}]
            )
        for state in states:
            self.compact(state, None, [whole])

    def multihead(self, module: nn.MultiheadAttention, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        query, key, value = (arg(args, kwargs, i, name) for i, name in enumerate(("query", "key", "value")))
        padding = arg(args, kwargs, 3, "key_padding_mask")
        mask = arg(args, kwargs, 5, "attn_mask")
        causal = bool(arg(args, kwargs, 7, "is_causal", False))
        if any(self.value(t) is not None for t in (padding, mask)):
            raise Unfollowed("an attention mask computed from the input")
        if padding is not None and bool(concrete(torch.as_tensor(padding)).to(torch.bool).any()):
            raise Unfollowed("a key_padding_mask that hides keys")
        seq = 0 if query.dim() == 2 or not module.batch_first else 1
        allowed = allowed_keys(mask, query.shape[seq], key.shape[seq], causal and mask is None, true_attends=False)
        results = tensors_in(out)
        self.attend(query, [key, value], seq, [seq, seq], allowed, results[0])
        for weights in results[1:]:
            self.register(
                Traced(
                    weights,
                    opaque=f"the attention weights of {type(module).__name__}{self.where()} "
                    "(one time axis per query and per key)",
                )
            )
