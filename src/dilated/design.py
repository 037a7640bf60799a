"""Design stride-1 causal dilated stacks that reach a receptive field with no holes, and explain a stack's holes.

Pure Python (no torch import); every length, field and tap comes from :mod:`dilated.geometry`.

**Holes.** Output ``t`` of a stride-1 causal stack of kernel-``k`` convs with dilations ``c_1 .. c_n`` reads input
``t - s`` for exactly the offsets ``s`` in the sumset ``{j_1 c_1 + ... + j_n c_n : 0 <= j_i <= k - 1}``; its
receptive field is ``F = 1 + (k - 1) (c_1 + ... + c_n)``. A *hole* is an offset below ``F`` that is not in the
sumset: a step inside the field that feeds nothing (the example's ``k=5, d=2, 4`` stack reads the 13 even offsets of
its 25). A sumset does not depend on the order of its terms, so neither do the fed set nor the holes.

**Theorem** (hole-free condition). With ``k >= 2`` and the dilations sorted ascending, the stack has no holes iff
``c_1 = 1`` and every ``c_i <= F_{i-1} = 1 + (k - 1) (c_1 + ... + c_{i-1})``: each new dilation is at most the
field of the smaller ones.

*Proof.* If ``S_{i-1} = [0, F_{i-1})`` then ``S_i = S_{i-1} + {0, c_i, ..., (k-1) c_i}`` is a union of ``k``
copies of that interval shifted by ``c_i``; consecutive copies touch or overlap iff ``c_i <= F_{i-1}``, and then
``S_i = [0, F_i)``. So the condition suffices, by induction. Conversely, let ``i`` be the first index with
``c_i > F_{i-1}`` (so far ``S_{i-1} = [0, F_{i-1})``). Offset ``F_{i-1}`` uses no term ``c_m, m >= i`` (each is
``>= c_i > F_{i-1}``), and the smaller terms reach at most ``F_{i-1} - 1``; yet ``F_{i-1} < F_i <= F``: a hole.

A residual block of ``m`` convs (``block="residual2"``: ``m = 2``, the TCN block) repeats each block dilation ``m``
times; its skip path reads a subset of the offsets of its convs (the terms ``j = 0``), so it adds no offset and
fills no hole. With ``b_1 <= ... <= b_L`` the block dilations, ``P_{i-1}`` the sum of the first ``i - 1``, the
condition becomes ``b_i <= 1 + m (k - 1) P_{i-1}`` (the second copy of ``b_i`` then holds too) and
``F = 1 + m (k - 1) P_L``.

**The search.** For ``L`` blocks, a dilation cap ``D`` and a target ``N``, write ``S = P_L``. Then:

1. *Feasible sums form an interval* ``[L, S_max(L, D)]``, where ``S_max`` comes from the greedy schedule
   ``b_i = min(D, 1 + m (k - 1) P_{i-1})`` (each term as large as allowed; it is ascending, and no hole-free
   schedule has a larger prefix sum at any position, by induction). Every sum below is reached: lowering the last
   of the largest terms by one keeps the schedule sorted-hole-free (the lowered term ``x - 1`` lands where the term
   it passes already met its cap; the terms it passes gain a larger prefix).
2. So the smallest field ``>= N`` with ``L`` blocks has ``S = max(ceil((N - 1) / (m (k - 1))), L)``, reachable iff
   ``S <= S_max(L, D)``; the fewest blocks is the least such ``L``. Overshoot ``F - N`` follows.
3. Among schedules with that sum, the smallest largest dilation ``M`` is the least ``M`` with
   ``S_max(L, min(D, M)) >= S`` (binary search, by 1.), and the proposal is the lexicographically largest sorted
   schedule with sum ``S`` and terms ``<= M``: the depth-first search over sorted schedules takes at each position
   the largest value allowed and prunes every branch whose remaining ``r`` terms cannot make the rest of the sum,
   i.e. unless ``r * b <= rest <= S_max`` of the remainder (an interval again, by 1.). The first bound gives the
   largest candidate ``b`` directly, and a smaller ``b`` only raises ``rest``, so the search never backtracks.

Parameters and FLOPs per step depend on the block count alone (fixed width and kernel), so for each kernel the
``top`` smallest block counts hold the best proposals under any ordering of the criteria; the brute-force test
checks the whole ranking against every schedule for small targets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from dilated.geometry import Layer, causal_stack, dependencies, receptive_field, stack_geometry

__all__ = [
    "BLOCKS",
    "CRITERIA",
    "MODEL_NAME",
    "Coverage",
    "Proposal",
    "block_cost",
    "design",
    "explain_holes",
    "is_hole_free",
]

Block = Literal["plain", "residual1", "residual2"]
BLOCKS: dict[str, int] = {"plain": 1, "residual1": 1, "residual2": 2}  # convs per block
CRITERIA = ("layers", "params", "flops", "overshoot")
MODEL_NAME = "dilated_stack"  # the registered model a proposal's config builds (dilated.models._stack)


def block_cost(block: Block, in_channels: int, channels: int, kernel_size: int) -> tuple[int, int]:
    """Parameters and multiply-accumulates per output step of one block of :class:`dilated.models.DilatedStack`.

    ``plain``: conv + ReLU. ``residual1``: ReLU(conv(x) + x), a 1x1 conv on ``x`` when the widths differ.
    ``residual2``: the TCN block: two weight-normed convs (weight, bias and one norm gain per output channel) and
    the same 1x1 conv.
    """
    conv = in_channels * channels * kernel_size
    skip = in_channels * channels if in_channels != channels else 0
    skip_params = skip + channels if skip else 0
    if block == "plain":
        return conv + channels, conv
    if block == "residual1":
        return conv + channels + skip_params, conv + skip
    second = channels * channels * kernel_size
    return conv + second + 4 * channels + skip_params, conv + second + skip


@dataclass(frozen=True)
class Proposal:
    """One stack of ``len(dilations)`` causal stride-1 blocks reaching ``receptive_field >= target`` with no holes.

    ``dilations`` are the block dilations, ascending (order changes neither the field nor the holes). ``params``
    and ``flops`` (2 x multiply-accumulates per output step, biases and activations not counted) are those of
    :class:`dilated.models.DilatedStack` with ``input_channels`` inputs and ``channels`` per conv, without a head.
    """

    target: int
    kernel_size: int
    dilations: tuple[int, ...]
    block: Block
    channels: int
    input_channels: int
    receptive_field: int
    params: int
    flops: int

    @property
    def layers(self) -> int:
        """Blocks (for ``residual2`` each holds two convs)."""
        return len(self.dilations)

    @property
    def overshoot(self) -> int:
        return self.receptive_field - self.target

    @property
    def max_dilation(self) -> int:
        return self.dilations[-1]

    @property
    def conv_dilations(self) -> tuple[int, ...]:
        """The dilation of every conv, in order (each block dilation ``m`` times)."""
        return tuple(d for d in self.dilations for _ in range(BLOCKS[self.block]))

    @property
    def geometry(self) -> list[Layer]:
        """The convs as :class:`dilated.geometry.Layer` s (residual skips add no offsets)."""
        return causal_stack(self.kernel_size, self.conv_dilations)

    def to_dict(self) -> dict[str, Any]:
        """The proposal's numbers, JSON-ready: a row of ``dilated design --json`` (docs/json.md)."""
        return {
            "layers": self.layers,
            "block": self.block,
            "kernel_size": self.kernel_size,
            "dilations": list(self.dilations),
            "receptive_field": self.receptive_field,
            "overshoot": self.overshoot,
            "params": self.params,
            "flops": self.flops,
            "max_dilation": self.max_dilation,
            "config": self.config(),
        }

    def config(self) -> dict[str, Any]:
        """A ``model:`` config (``dilated summary / draw / train``, :func:`dilated._resolve.resolve_target`).

        ``input_channels`` is written only when it is not 1, so that ``dilated train`` takes it from the data.
        """
        options: dict[str, Any] = {
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "dilations": list(self.dilations),
            "block": self.block,
        }
        if self.input_channels != 1:
            options = {"input_channels": self.input_channels, **options}
        return {"model": MODEL_NAME, "options": options}

    def yaml(self) -> str:
        """:meth:`config` as YAML, with comment lines saying what it is and how to use it."""
        dilations = ", ".join(map(str, self.dilations))
        header = [
            f"# dilated design: {self.layers} {self.block} blocks of kernel {self.kernel_size}, dilations {dilations}",
            f"# receptive field {self.receptive_field} steps (target {self.target}), no holes; {self.params:,} "
            f"parameters at {self.channels} channels, {self.flops:,} FLOPs per step",
            "# dilated summary FILE | dilated draw FILE | dilated explore FILE | dilated.stream(model)",
            "# dilated train FILE --override data.kind=... (the data fixes input channels and the head)",
        ]
        return "\n".join(header) + "\n" + yaml.safe_dump(self.config(), sort_keys=False, default_flow_style=None)

    def describe(self) -> str:
        """One line, e.g. ``7 plain blocks, k=2, dilations 1,2,4,8,16,32,36: field 100 (overshoot 0)``."""
        return (
            f"{self.layers} {self.block} blocks, k={self.kernel_size}, dilations "
            f"{','.join(map(str, self.dilations))}: field {self.receptive_field} (overshoot {self.overshoot}), "
            f"{self.params:,} params at {self.channels} channels, {self.flops:,} FLOPs per step"
        )


def is_hole_free(kernel_size: int, dilations: Sequence[int]) -> bool:
    """Whether a stride-1 stack of kernel-``kernel_size`` convs with these dilations has no holes (the theorem)."""
    field = 1
    for d in sorted(dilations):
        if d > field:
            return False
        field += (kernel_size - 1) * d
    return True


def _max_sum(layers: int, spread: int, cap: int, start: int = 0) -> int:
    """Largest block-dilation sum of ``layers`` more blocks after a prefix summing to ``start`` (the greedy; once a
    term reaches ``cap`` every later one is ``cap``)."""
    total = start
    for placed in range(layers):
        term = min(cap, 1 + spread * total)
        if term == cap:
            return total + cap * (layers - placed) - start
        total += term
    return total - start


def _schedule(layers: int, total: int, spread: int, cap: int) -> tuple[int, ...] | None:
    """The proposal for ``layers`` blocks summing to ``total``: least largest dilation, then lexicographically
    largest (see the module docstring, step 3); ``None`` when no hole-free schedule has that sum."""
    if not layers <= total <= _max_sum(layers, spread, cap):
        return None
    lo, hi = math.ceil(total / layers), cap
    while lo < hi:  # least largest dilation M with _max_sum(layers, spread, M) >= total
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _max_sum(layers, spread, mid) >= total else (mid + 1, hi)
    largest = lo
    chosen: list[int] = []
    prefix = 0
    for position in range(layers):
        rest = layers - position - 1
        # the largest d the position allows whose remainder can still be made (rest * d <= total - prefix - d);
        # a smaller d only leaves more for the remainder to reach, so if this one fails, every one does
        d = min(largest, 1 + spread * prefix, (total - prefix) // (rest + 1))
        if d < (chosen[-1] if chosen else 1) or total - prefix - d > _max_sum(rest, spread, largest, prefix + d):
            raise AssertionError(f"no schedule for {layers} blocks summing to {total}")  # a bug, never a proposal
        chosen.append(d)
        prefix += d
    return tuple(chosen)


def _check_int(name: str, value: object, minimum: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"design: {name} must be an int >= {minimum}, got {value!r}; {hint}")
    return value


def design(
    receptive_field: int,
    kernel_size: int | Sequence[int],
    max_layers: int | None = None,
    channels: int = 32,
    max_dilation: int | None = None,
    block: Block = "plain",
    *,
    input_channels: int = 1,
    top: int = 5,
    sort_by: Sequence[str] = CRITERIA,
) -> list[Proposal]:
    """Propose stride-1 causal stacks reaching at least ``receptive_field`` input steps with no holes.

    Args:
        receptive_field: the target field ``N`` in input steps (>= 2).
        kernel_size: taps per conv, or several kernel sizes to compare.
        max_layers: most blocks allowed (``None``: no limit).
        channels: width of every conv, for the parameter and FLOP counts.
        max_dilation: largest dilation allowed (``None``: no limit).
        block: ``"plain"`` (conv + ReLU), ``"residual1"`` (one conv and a skip) or ``"residual2"`` (the TCN block:
            two convs of the same dilation and a skip).
        input_channels: channels of the input (the first block's conv).
        top: how many proposals to return (at most one per kernel size and block count).
        sort_by: criteria to rank by first, from ``layers``, ``params``, ``flops``, ``overshoot``; the rest follow
            in that default order, then the smallest largest dilation.

    Returns:
        the best ``top`` proposals, best first. ``ValueError`` naming the constraint when none reaches the target.
    """
    target = _check_int("receptive_field", receptive_field, 2, "a field of 1 step needs no conv")
    kernels = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
    if not kernels:
        raise ValueError("design: give at least one kernel_size")
    for k in kernels:
        _check_int("kernel_size", k, 2, "kernel_size 1 never grows the field")
    _check_int("channels", channels, 1, "the width of every conv")
    _check_int("input_channels", input_channels, 1, "the channels of the input")
    _check_int("top", top, 1, "how many proposals to return")
    if max_layers is not None:
        _check_int("max_layers", max_layers, 1, "or None for no limit")
    if max_dilation is not None:
        _check_int("max_dilation", max_dilation, 1, "or None for no limit")
    if block not in BLOCKS:
        raise ValueError(f"design: block must be one of {', '.join(BLOCKS)}, got {block!r}")
    order = list(sort_by)
    unknown = [c for c in order if c not in CRITERIA]
    if unknown:
        raise ValueError(f"design: unknown sort criterion {unknown[0]!r}; use {', '.join(CRITERIA)}")
    order += [c for c in CRITERIA if c not in order]

    per_block = BLOCKS[block]
    proposals: list[Proposal] = []
    for k in kernels:
        spread = per_block * (k - 1)
        needed = math.ceil((target - 1) / spread)
        cap = max_dilation if max_dilation is not None else needed  # no useful dilation exceeds the needed sum
        fewest = _fewest_layers(needed, spread, cap)
        last = fewest + top - 1 if max_layers is None else min(max_layers, fewest + top - 1)
        for layers in range(fewest, last + 1):
            total = max(needed, layers)
            dilations = _schedule(layers, total, spread, cap)
            if dilations is not None:
                proposals.append(_proposal(target, k, dilations, block, channels, input_channels, spread))
    if not proposals:
        _unreachable(target, kernels, max_layers, max_dilation, block)

    def key(p: Proposal) -> tuple:
        return (*(getattr(p, c) for c in order), p.max_dilation, p.kernel_size, tuple(-d for d in p.dilations))

    return sorted(proposals, key=key)[:top]


def _fewest_layers(needed: int, spread: int, cap: int) -> int:
    """The least block count whose greedy sum reaches ``needed``."""
    total = layers = 0
    while total < needed:
        term = min(cap, 1 + spread * total)
        if term == cap:
            return layers + math.ceil((needed - total) / cap)
        total, layers = total + term, layers + 1
    return layers


def _proposal(
    target: int, k: int, dilations: tuple[int, ...], block: Block, channels: int, input_channels: int, spread: int
) -> Proposal:
    params = flops = 0
    width = input_channels
    for _ in dilations:
        p, macs = block_cost(block, width, channels, k)
        params, flops, width = params + p, flops + 2 * macs, channels
    return Proposal(target, k, dilations, block, channels, input_channels, 1 + spread * sum(dilations), params, flops)


def _unreachable(
    target: int, kernels: Sequence[int], max_layers: int | None, max_dilation: int | None, block: Block
) -> None:
    k = max(kernels)
    cap = max_dilation if max_dilation is not None else target
    spread = BLOCKS[block] * (k - 1)
    best = 1 + spread * _max_sum(max_layers or 1, spread, cap)
    fewest = _fewest_layers(math.ceil((target - 1) / spread), spread, cap)
    limit = f" and dilations <= {max_dilation}" if max_dilation is not None else ""
    raise ValueError(
        f"design: receptive field {target} is unreachable with at most {max_layers} {block} blocks of "
        f"kernel {k}{limit}: they reach at most {best} steps with no holes; allow {fewest} blocks "
        f"or a larger kernel"
    )


# --- holes of an existing stack --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """Which steps under one output's receptive field feed it, and why the others do not.

    ``missing`` are lags: ``0`` is the newest step of the field (``t`` for a causal stack), ``receptive_field - 1``
    the oldest. ``reasons`` are sentences, first the layer that opens the holes.
    """

    receptive_field: int
    fed: int
    missing: tuple[int, ...]
    reasons: tuple[str, ...]

    @property
    def has_holes(self) -> bool:
        return bool(self.missing)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``dilated design --explain --json`` (docs/json.md)."""
        return {
            "receptive_field": self.receptive_field,
            "fed": self.fed,
            "missing": list(self.missing),
            "reasons": list(self.reasons),
        }

    def __str__(self) -> str:
        head = f"reads {self.fed} of the {self.receptive_field} steps under its receptive field" + (
            f"; never read: {_lags(self.missing)}" if self.missing else " (no holes)"
        )
        return "\n".join([head, *self.reasons])


def _lags(lags: Sequence[int], shown: int = 6) -> str:
    text = [f"t-{lag}" if lag else "t" for lag in lags]
    return ", ".join(text if len(text) <= shown else [*text[: shown - 1], "...", text[-1]])


def _fed_lags(layers: Sequence[Layer]) -> tuple[int, set[int]]:
    """Receptive field and the fed lags of one output well inside a long input (no edge effects)."""
    field = receptive_field(layers)
    jump = stack_geometry(layers, 1 << 16)[-1].jump if layers else 1
    length = 3 * field + 4 * jump
    geometry = stack_geometry(layers, length)
    index = geometry[-1].output_length // 2
    newest = geometry[-1].field(index)[1]
    return field, {newest - step for step in dependencies(layers, length, index)[0]}


def explain_holes(layers: Sequence[Layer]) -> Coverage:
    """The holes of a stack's receptive field (time-axis layers in order, up to its first global layer) and why.

    Follows the taps with :func:`dilated.geometry.dependencies`, layer by layer: a layer whose taps lie
    ``dilation x jump`` input steps apart while each tap's own field is shorter skips the steps in between.
    """
    layers = [layer for layer in layers if layer.kind != "pointwise"]
    layers = layers[: next((i for i, layer in enumerate(layers) if layer.kind == "global"), len(layers))]
    if not layers:
        return Coverage(1, 1, (), ("the stack has no time-axis layers: each output reads its own step",))
    field, fed = _fed_lags(layers)
    missing = tuple(lag for lag in range(field) if lag not in fed)
    reasons: list[str] = []
    holes_below = False
    for i, layer in enumerate(layers):
        below = stack_geometry(layers[:i], 1 << 16)[-1] if i else None
        below_field, below_jump = (below.receptive_field, below.jump) if below else (1, 1)
        now_field, now_fed = _fed_lags(layers[: i + 1])
        holes_now = len(now_fed) < now_field
        spacing = layer.dilation * below_jump
        name = f"layer {i} ({layer.describe()})"
        if holes_now and not holes_below and layer.kernel_size > 1:
            reasons.append(
                f"{name}: its taps lie {spacing} input steps apart but what each tap reads below covers "
                f"only {below_field} step{'s' * (below_field > 1)}, so {spacing - below_field} of every "
                f"{spacing} steps go unread"
            )
        elif holes_below and not holes_now:
            reasons.append(f"{name} fills the holes left by the layers before it")
        holes_below = holes_now
    if missing:
        reasons.append("no later layer fills them")
        reasons.extend(_fix(layers, field))
    return Coverage(field, len(fed), missing, tuple(reasons))


def _fix(layers: Sequence[Layer], field: int) -> list[str]:
    """For a stride-1 causal conv stack of one kernel size: the theorem's test and a hole-free schedule."""
    layers = [layer for layer in layers if layer.span > 1 or layer.stride > 1]  # k=1 layers leave time alone
    kernels = {layer.kernel_size for layer in layers}
    if len(kernels) != 1 or any(layer.stride != 1 or layer.padding != "causal" for layer in layers):
        return []
    k = kernels.pop()
    dilations = sorted(layer.dilation for layer in layers)
    below = 1
    for d in dilations:
        if d > below:
            break
        below += (k - 1) * d
    best = design(field, k, top=1)[0]
    lines = [
        f"sorted by dilation, a stride-1 stack has no holes iff each dilation is at most the field of the "
        f"smaller ones; here dilation {d} exceeds {below}"
    ]
    fits = "" if best.layers <= len(layers) else f", {best.layers - len(layers)} more than this stack"
    lines.append(
        f"with no holes, {best.layers} layers of kernel {k}{fits} reach {best.receptive_field} steps: "
        f"dilations {', '.join(map(str, best.dilations))} (dilated design --receptive-field {field} "
        f"--kernel-size {k})"
    )
    return lines
