"""The empirical receptive field: which input steps change an output step, measured on the model itself.

The independent check of the dataflow analysis, and what it falls back to where the analysis cannot follow an op.
The model is copied to float64 with random positive weights (``[0.25, 0.75] / fan_in``) and fed positive inputs, so
that ReLUs stay active and sums of paths never cancel. Each measurement costs a number of forward and backward passes
that does not grow with the input, so its cost is linear in the input length:

* the output's time axis: a few input steps spread over the input, each in turn (all channels) ``+1000`` then
  ``-1000``; the axis along which the outputs that change move;
* gradients: of a positive combination of one output step's elements at eight random inputs, for the output steps
  measured (the first and last eight, sixteen around the middle, sixteen spread out; all of them for a short
  output); a non-zero entry is a dependency, however small (this catches saturating ops, which a perturbation may
  flatten below rounding, and max-pool windows whose winner changes with the input);
* perturbation by residue: the input steps ``s = j mod P`` perturbed together, for each ``j``; where an output step
  changes but its gradients found no step of that residue (a max whose winner never moved, a difference of two
  paths feeding a max), every step of the residue is perturbed alone.

Both only ever find real dependencies; together, with such weights, they find all of them. The input is then
lengthened (doubled) until a doubling shows no step at a distance not seen before and the middle step's field lies
inside the input, up to :data:`LENGTH_CAP` steps, beyond which the field is reported as "at least" its size there (a
cumsum, an RNN). A model whose forward costs more than linearly in its length (attention: its score matrix is
length x length) is lengthened only while one forward costs at most :data:`COST_SLACK` times the given input's
cost per step times the length, or :data:`COST_FLOOR`; where that stops it, a field that may reach past the input
is "at least" its size too. Costs are floating-point operations counted by torch (deterministic, unlike timings). The distances are taken over every output step measured, so a field with holes (a dilated stack
whose middle step's field has a gap where the input begins) is lengthened too. The lengthening runs only when a
number that needs it is read (``size``, ``start``, ``causal``, ``at_least``), and on the longer inputs only the
first and last steps and those around the middle are measured: comparing steps on the input given costs one
measurement.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cached_property

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from dilated.analysis._readers import reader_for

PERTURBATION = 1000.0
CHUNK = 64  # perturbed inputs per forward pass
TOLERANCE = 1e-9  # relative change that counts (float64 noise is ~1e-16; the gradient sees smaller effects)
TRIALS = 8  # random inputs the gradients are taken at (a max passes its gradient to one winner per input)
SPREAD = 32  # input steps perturbed alone to find the output's time axis
RESIDUES = 32  # groups of input steps perturbed together (steps s = j mod RESIDUES)
ALL_STEPS = 64  # outputs up to this long are measured at every step
LENGTH_CAP = 8192  # the longest input a probe lengthens to; a field still growing there is "at least" its size
COST_SLACK = 4  # a lengthened input's forward may cost this many times the given input's cost per step, per step
COST_FLOOR = 2**22  # floating-point operations of one forward that any lengthening may spend (~600 per measurement)


@dataclass(frozen=True)
class Probe:
    """Measured dependencies of an output on the input's steps.

    ``axis`` is the output's time axis (``None``: it has none, and ``fed[-1]`` is what the whole output depends
    on); ``fed[t]`` lists the input steps output step ``t`` depends on, for the steps measured (the first, the
    last, those around the middle and some spread out). ``longer`` is the steps around the middle measured on the
    longest input the probe lengthened to (where the middle step's field reached an end of this one; measured when
    first read), and ``at_least`` says the field was still growing at :data:`LENGTH_CAP` steps.
    """

    input_length: int
    output_shape: tuple[int, ...]
    axis: int | None
    fed: dict[int, tuple[int, ...]]
    lengthen: Callable[[Probe], tuple[Probe | None, bool]] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def _lengthened(self) -> tuple[Probe | None, bool]:
        return self.lengthen(self) if self.lengthen is not None else (None, False)

    @property
    def longer(self) -> Probe | None:
        """The steps around the middle, measured on the longest input probed (``None``: this one was enough)."""
        return self._lengthened[0]

    @property
    def at_least(self) -> bool:
        """Whether the field was still growing on an input of :data:`LENGTH_CAP` steps (its size is a bound)."""
        return self._lengthened[1]

    @property
    def length(self) -> int:
        """Output steps along the time axis (1 without one)."""
        return self.output_shape[self.axis] if self.axis is not None else 1

    def steps(self, t: int | None = None) -> tuple[int, ...]:
        """Input steps output step ``t`` depends on (default: a step in the middle)."""
        if self.axis is None:
            return self.fed[-1]
        step = self.reference if t is None else t % self.length
        if step not in self.fed:
            raise ValueError(f"output step {step} was not measured; the probe measured steps {sorted(self.fed)}")
        return self.fed[step]

    @property
    def reference(self) -> int:
        """The step the summary numbers describe: the middle one (its field is the least clipped)."""
        return -1 if self.axis is None else self.length // 2

    @property
    def jump(self) -> Fraction:
        """Input steps between neighbouring output steps, from the first fed steps of the middle half."""
        if self.axis is None:
            return Fraction(0)
        middle = self.length // 2

        def inside(t: int) -> bool:  # a field that touches an end of the input may be cut there
            return (
                t in self.fed and bool(self.fed[t]) and self.fed[t][0] > 0 and self.fed[t][-1] < self.input_length - 1
            )

        candidates: list[tuple[int, list[int | None]]] = []
        for period in range(1, 9):  # the shift that maps every step's steps onto the step period later's
            shifts: list[int | None] = []
            for t in range(max(0, middle - 8), min(self.length - period, middle + 8)):
                if not (inside(t) and inside(t + period)):
                    continue
                a, b = self.fed[t], self.fed[t + period]
                gaps = {y - x for x, y in zip(a, b)}
                shifts.append(gaps.pop() if a and len(a) == len(b) and len(gaps) == 1 else None)
            candidates.append((period, shifts))
        # First a period whose shift holds for every step (a 4x upsampling moves by 1 every 4 steps, and by 0 three
        # times in four), then, for fields a probe cannot see whole, one that holds for nearly all; of those, the one
        # compared on the most pairs of steps, then the smallest. Where fields are empty on some steps (a strided
        # transposed conv, then upsampling: empty, a, a, empty, empty, b, b, ...), a shift of 0 holds for the few
        # pairs inside one block, while the period of the blocks compares more pairs and finds the move.
        for share in (1.0, 0.75):
            holding = [
                (len(shifts), -period, Fraction(common, period))
                for period, shifts in candidates
                if shifts
                and (common := max(set(shifts), key=shifts.count)) is not None
                and shifts.count(common) >= share * len(shifts)
            ]
            if holding:
                return max(holding)[2]
        lo, hi = min(self.fed), max(self.fed)  # fields wider than the input: the newest steps still move
        if hi == lo or not self.fed[lo] or not self.fed[hi]:
            return Fraction(1)
        return Fraction(self.fed[hi][-1] - self.fed[lo][-1], hi - lo)

    @property
    def widest(self) -> Probe:
        """This probe, or the one on the longest input it lengthened to: the one whose field is least clipped."""
        return self.longer if self.longer is not None else self

    @property
    def size(self) -> int:
        """The span of the middle step's field, on the longest input measured (a lower bound if ``at_least``)."""
        steps = self.widest.steps()
        return steps[-1] - steps[0] + 1 if steps else 0

    @property
    def start(self) -> int | None:
        """Where output step 0's field begins, from the middle step on the longest input measured."""
        probe = self.widest
        steps = probe.steps()
        if not steps:
            return None
        return int(steps[0] - probe.reference * probe.jump) if probe.axis is not None else steps[0]

    @property
    def offsets(self) -> frozenset[int]:
        """Where the steps each measured output step reads lie from its own position ``t * jump``, over every step
        measured (a step near an end of the input shows offsets that the middle step's field may lose there)."""
        if self.axis is None:
            return frozenset()
        jump = self.jump
        return frozenset(s - math.floor(t * jump) for t, steps in self.fed.items() for s in steps)

    @property
    def clipped(self) -> bool:
        """Whether the middle step's field may reach past an end of the input (a longer input may show more of
        it): its steps touch an end, or an offset another step reads lies outside the input from the middle step
        (a field with holes)."""
        steps = self.steps()
        if self.axis is None or not steps:
            return False
        here, offsets = math.floor(self.reference * self.jump), self.offsets
        touches = steps[0] == 0 or steps[-1] == self.input_length - 1
        return touches or here + min(offsets) < 0 or here + max(offsets) > self.input_length - 1

    @property
    def whole_input(self) -> bool:
        return self.steps() == tuple(range(self.input_length))

    @property
    def causal(self) -> bool | None:
        """No measured output step depends on an input step after its own position ``t * jump`` (``None``: no
        time axis); on the longer input too."""
        if self.axis is None:
            return None
        jump = self.jump
        here = all(not steps or steps[-1] <= t * jump for t, steps in self.fed.items())
        return here and (self.longer is None or bool(self.longer.causal))


def _randomise(model: nn.Module, generator: torch.Generator) -> None:
    """Positive weights in ``[0.25, 0.75] / fan_in``, so activations stay small (tanh and sigmoid far from
    saturation) and no ReLU is dead. The zero entries of a tensor that has non-zero ones stay zero: a triangular
    or banded matrix, a masked tap are the model's structure (the dataflow analysis reads them too); a tensor
    that is zero throughout (a zero-initialised layer) gets random weights like any other."""
    with torch.no_grad():
        for p in model.parameters():
            if not p.is_floating_point():
                continue
            fan_in = p[0].numel() if p.dim() >= 2 else 10
            positive = (0.25 + 0.5 * torch.rand(p.shape, generator=generator, dtype=p.dtype)) / fan_in
            structure = p != 0
            p.copy_(torch.where(structure, positive, 0.0) if bool(structure.any()) else positive)


def torch_probe_function(
    model: nn.Module, module: str | None = None, seed: int = 0
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A float64 copy of ``model`` with positive random weights, as a function of its input returning the model
    output's first tensor, or that of submodule ``module`` (a name from ``model.named_modules()``)."""
    shadow = copy.deepcopy(model).double().eval()
    _randomise(shadow, torch.Generator().manual_seed(seed))
    target = dict(shadow.named_modules()).get(module) if module else None
    if module and target is None:
        raise ValueError(f"no module named {module!r} in the model; names are those of model.named_modules()")

    def run(x: torch.Tensor) -> torch.Tensor:
        if target is None:
            return _first_tensor(shadow(x))
        handle = target.register_forward_hook(_stop)
        try:
            shadow(x)
        except _Reached as reached:
            return reached.output
        finally:
            handle.remove()
        raise ValueError(f"module {module!r} did not run in the model's forward")

    return run


class _Reached(BaseException):
    """Raised by a probed submodule's forward hook: its output is all a probe needs, so the rest of the forward
    (which may cost far more: an attention, an RNN) does not run. A ``BaseException``, so that a forward which
    catches ``Exception`` does not swallow it."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output


def _stop(_module: nn.Module, _args: object, output: object) -> None:
    raise _Reached(_first_tensor(output))


def _first_tensor(value: object) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, tuple | list):
        for v in value:
            if isinstance(v, torch.Tensor):
                return v
    raise ValueError(f"the probed output is not a tensor (got {type(value).__name__})")


def probe_function(
    run: Callable[[torch.Tensor], torch.Tensor], input_shape: Sequence[int], time_axis: int = -1, seed: int = 0
) -> Probe:
    """Measure the dependencies of ``run``'s output on the steps of its input ``(1, *input_shape)`` along
    ``time_axis`` (of the batched input), lengthening the input while the middle step's field reaches its ends;
    see the module docstring."""
    shape = (1, *(int(n) for n in input_shape))
    time_axis = time_axis % len(shape)

    def lengthen(probe: Probe) -> tuple[Probe | None, bool]:
        """The first, last and middle steps on inputs doubled until a doubling shows no new offset and the middle
        step's field lies inside; whether the field may be larger than measured (still growing at the cap, or
        clipped where the cost of a longer input stopped the lengthening)."""
        longer, length, growing, costly = probe, shape[time_axis], False, False
        per_step = COST_SLACK * _flops(run, shape) / length
        while probe.axis is not None and not longer.whole_input and length < LENGTH_CAP:
            length = min(2 * length, LENGTH_CAP)
            wider_shape = (*shape[:time_axis], length, *shape[time_axis + 1 :])
            try:
                costly = _flops(run, wider_shape) > max(per_step * length, COST_FLOOR)
                if costly:
                    break
                wider = measure(run, wider_shape, time_axis, seed, True)
            except (RuntimeError, ValueError):  # a model of one input length (a linear map over time)
                break
            growing = not wider.offsets <= longer.offsets  # steps at a distance no shorter input showed
            longer = wider
            if not growing and not longer.clipped:
                break
        return (None if longer is probe else longer), (growing or costly) and longer.clipped

    return replace(measure(run, shape, time_axis, seed), lengthen=lengthen)


def _flops(run: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...]) -> int:
    """Floating-point operations of one forward on an input of ``shape``, as torch counts them (matrix products,
    convolutions, attention; not elementwise ops, whose cost is linear in the length)."""
    counter = FlopCounterMode(display=False, custom_mapping={_CPU_ATTENTION: _attention_flops})
    with counter, torch.no_grad():
        run(torch.rand(shape, dtype=torch.float64))
    return counter.get_total_flops()


_CPU_ATTENTION = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu  # not in torch's own flop table


def _attention_flops(query: torch.Size, key: torch.Size, value: torch.Size, *_: object, **__: object) -> int:
    return int(sdpa_flop_count(query, key, value))


def measure(
    run: Callable[[torch.Tensor], torch.Tensor],
    shape: tuple[int, ...],
    time_axis: int,
    seed: int,
    middle_only: bool = False,
) -> Probe:
    """One measurement on inputs of ``shape`` (batch 1, time on ``time_axis``): the output's time axis, then the
    fields of the output steps measured (see the module docstring; ``middle_only``: the first, the last and those
    around the middle)."""
    generator = torch.Generator().manual_seed(seed)
    length = shape[time_axis]
    x0 = 0.5 + torch.rand(shape, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        base = run(x0)
    out_shape = tuple(base.shape[1:])
    spread = sorted({round(i * (length - 1) / max(1, min(length, SPREAD) - 1)) for i in range(min(length, SPREAD))})
    axis = _output_axis(_perturbed(run, x0, base, [[s] for s in spread], time_axis))
    targets = _targets(out_shape[axis], middle_only) if axis is not None else [-1]
    inputs = torch.cat([x0, 0.5 + torch.rand((TRIALS - 1, *shape[1:]), generator=generator, dtype=torch.float64)])
    weights = torch.rand(base.shape, generator=generator, dtype=torch.float64) + 0.5
    fed = _gradients(run, inputs, axis, targets, time_axis, weights)
    residues = min(length, RESIDUES)
    groups = [list(range(j, length, residues)) for j in range(residues)]
    changed = _per_step(_perturbed(run, x0, base, groups, time_axis), axis)  # (residue, output step)
    found = {t: {s % residues for s in fed[t]} for t in targets}
    hit = changed.tolist()
    missed = sorted({j for t in targets for j in range(residues) if hit[j][t] and j not in found[t]})
    alone = [s for j in missed for s in groups[j]]
    if alone:
        hits = _per_step(_perturbed(run, x0, base, [[s] for s in alone], time_axis), axis)
        for t in targets:
            fed[t] |= {s for i, s in enumerate(alone) if hits[i, t]}
    return Probe(length, out_shape, axis, {t: tuple(sorted(s)) for t, s in fed.items()})


def _targets(steps: int, middle_only: bool = False) -> list[int]:
    """The output steps measured: all of a short output; else the first and last eight, sixteen around the
    middle and sixteen spread out (``middle_only``: the first, the last and the seventeen around the middle)."""
    middle = steps // 2
    if middle_only:
        return sorted({0, steps - 1, *range(max(0, middle - 8), min(steps, middle + 9))})
    if steps <= ALL_STEPS:
        return list(range(steps))
    chosen = {*range(8), *range(steps - 8, steps), *range(middle - 8, middle + 9)}
    chosen |= {round(i * (steps - 1) / 15) for i in range(16)}
    return sorted(chosen)


def _perturbed(
    run: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    base: torch.Tensor,
    groups: Sequence[Sequence[int]],
    time_axis: int,
) -> torch.Tensor:
    """For each group of input steps perturbed together (``+-1000``, all channels), which output elements change:
    ``(groups, *output shape without batch)``."""
    changed = []
    with torch.no_grad():
        for start in range(0, len(groups), CHUNK):
            chunk = groups[start : start + CHUNK]
            moved = torch.zeros((len(chunk), *base.shape[1:]), dtype=torch.bool)
            where = [1] * x0.dim()
            where[0], where[time_axis] = len(chunk), x0.shape[time_axis]
            bump = torch.zeros(len(chunk), x0.shape[time_axis], dtype=x0.dtype)
            for i, steps in enumerate(chunk):
                bump[i, list(steps)] = PERTURBATION
            for sign in (1.0, -1.0):  # both ways: a difference of paths can lower what a max pools
                batch = x0 + sign * bump.view(where)
                out = run(batch)
                moved |= ((out - base).abs() > TOLERANCE * (1 + base.abs())).reshape(moved.shape)  # BLAS rounding
            changed.append(moved)
    return torch.cat(changed)


def _per_step(depends: torch.Tensor, axis: int | None) -> torch.Tensor:
    """``(groups, output steps)``: whether any element of each output step changed (one column without an axis)."""
    if axis is None:
        return depends.reshape(depends.shape[0], -1).any(1, keepdim=True)
    moved = depends.movedim(axis + 1, 1)
    return moved.reshape(*moved.shape[:2], -1).any(2)


def _gradients(
    run: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    axis: int | None,
    targets: list[int],
    time_axis: int,
    weights: torch.Tensor,
) -> dict[int, set[int]]:
    """The input steps with a non-zero gradient of each target output step (``-1``: the whole output) at each of
    the random ``inputs``."""
    fed: dict[int, set[int]] = {t: set() for t in targets}
    jobs = [(t, trial) for t in targets for trial in range(len(inputs))]
    for start in range(0, len(jobs), CHUNK):  # one batch row per (output step, input): its gradient is that step's
        chunk = [t for t, _ in jobs[start : start + CHUNK]]
        x = inputs[[trial for _, trial in jobs[start : start + CHUNK]]].clone().requires_grad_(True)
        out = run(x) * weights
        if axis is None:
            chosen = out.sum()
        else:
            pick = torch.zeros(len(chunk), out.shape[axis + 1], dtype=out.dtype)
            pick[range(len(chunk)), chunk] = 1.0
            chosen = (out * pick.view(len(chunk), *([1] * axis), -1, *([1] * (out.dim() - axis - 2)))).sum()
        (grad,) = torch.autograd.grad(chosen, x, allow_unused=True)
        if grad is None:
            continue
        length = x.shape[time_axis]
        moved = (grad != 0).movedim(time_axis, 1).reshape(len(chunk), length, -1).any(2)
        for i, t in enumerate(chunk):
            fed[t] |= set(torch.nonzero(moved[i]).flatten().tolist())
    return fed


def _output_axis(depends: torch.Tensor) -> int | None:
    """The output axis (of the unbatched output) along which the dependencies move: the one whose steps, each
    taken over all its other elements, depend on the fewest input steps; ``None`` if every element depends on
    the same steps."""
    flat = depends.reshape(depends.shape[0], -1)
    if bool((flat == flat.any(1, keepdim=True)).all()):
        return None
    counts: dict[int, float] = {}
    for axis in range(depends.dim() - 1):
        moved = depends.movedim(axis + 1, 1)
        counts[axis] = int(moved.reshape(*moved.shape[:2], -1).any(2).sum()) / moved.shape[1]
    best = min(counts, key=counts.__getitem__)
    return best if counts[best] < int(flat.any(1).sum()) else None


def probe_receptive_field(
    model: object, input_shape: Sequence[int] | None = None, *, module: str | None = None, seed: int = 0
) -> Probe:
    """The measured receptive field of a torch module (``input_shape`` without the batch axis, time last) or a
    built Keras 3 model (``input_shape`` ``(channels, time)`` needed only for a variable-length input).

    Returns a :class:`Probe`: ``probe.steps(t)`` lists the input steps output step ``t`` depends on, with
    ``size``, ``jump``, ``causal`` and ``whole_input`` for the middle step. ``module`` probes a submodule's output
    instead of the model's (torch).
    """
    reader = reader_for(model)
    if reader is not None:
        run, shape = reader.probe_function(model, input_shape, seed)
        return probe_function(run, shape, time_axis=1, seed=seed)
    if not isinstance(model, nn.Module):
        raise TypeError(f"probe_receptive_field() takes a torch.nn.Module or a Keras model, got {type(model).__name__}")
    if input_shape is None:
        raise ValueError(
            "probe_receptive_field(model, input_shape): give the input shape without the batch axis, e.g. (2, 200)"
        )
    return probe_function(torch_probe_function(model, module, seed), input_shape, seed=seed)
