"""WaveNet generation: streaming (the fast-WaveNet ring buffers) against naive recomputation, in one run.

    python benchmarks/generation.py [--samples 16000] [--naive-samples 300] [--backend auto]

Both generate mu-law codes autoregressively from the same default WaveNet (3 stacks of 10 blocks, kernel 2,
receptive field 3,071 steps, 256-way softmax), one sequence, one thread:

* streaming: :func:`dilated.streaming.generate` (each step costs one step of every layer);
* naive: at every step, the model's forward on the last ``receptive_field`` one-hot codes (zero-padded history at
  the start, as the causal convs would see it), keeping the last output.

Naive generation of 16,000 samples would take many minutes, so it is timed on ``--naive-samples`` samples in its
steady state (a full window of ``receptive_field`` codes) and the per-sample time is extrapolated linearly; the
first ``receptive_field`` samples of a real naive run are cheaper (shorter windows). Both decode greedily
(temperature 0) first to check that they produce the same codes, then each is timed with sampling.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from dilated.models import WaveNet
from dilated.models._mulaw import one_hot
from dilated.streaming import generate


def naive_generate(
    model: WaveNet, n_samples: int, temperature: float, generator: torch.Generator | None = None, primed: bool = False
) -> torch.Tensor:
    """Recompute the forward over the last ``receptive_field`` codes at every step (fewer at the start, where
    the causal padding stands for the missing history). ``primed``: start with a full window of random codes (the
    steady state of a long run, for timing)."""
    q, rf = model.config.quantization_channels, model.receptive_field
    history = one_hot(torch.randint(0, q, (1, rf - 1)), q) if primed else torch.zeros(1, q, 0)
    code = torch.tensor([q // 2])
    codes = torch.empty(1, n_samples, dtype=torch.int64)
    with torch.inference_mode():
        for t in range(n_samples):
            history = torch.cat([history, one_hot(code.unsqueeze(-1), q)], dim=-1)[..., -rf:]
            logits = model(history)[..., -1]  # (1, q)
            if temperature == 0:
                code = logits.argmax(-1)
            else:  # the same Gumbel-max sampling as dilated.streaming.generate
                noise = torch.empty_like(logits).exponential_(generator=generator)
                code = (logits / temperature - noise.log_()).argmax(-1)
            codes[:, t] = code
    return codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=16000)
    parser.add_argument("--naive-samples", type=int, default=300)
    parser.add_argument("--backend", default="auto", choices=["auto", "eager", "fast"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = WaveNet().eval()
    print(
        f"WaveNet: {sum(p.numel() for p in model.parameters()):,} parameters, receptive field "
        f"{model.receptive_field:,} steps; backend {args.backend}; 1 thread"
    )

    check = min(args.naive_samples, 200)
    generate(model, 5, backend=args.backend)  # compile the kernel outside the timings
    streamed = generate(model, check, temperature=0.0, backend=args.backend)
    naive = naive_generate(model, check, temperature=0.0)
    same = int((streamed == naive).all(dim=0).int().cumprod(0).sum())
    print(f"greedy decoding: streaming and naive agree on the first {same} of {check} codes")

    start = time.perf_counter()
    naive_generate(model, args.naive_samples, temperature=1.0, generator=torch.Generator().manual_seed(0), primed=True)
    naive_s = time.perf_counter() - start
    naive_per_sample = naive_s / args.naive_samples

    start = time.perf_counter()
    codes = generate(
        model, args.samples, temperature=1.0, generator=torch.Generator().manual_seed(0), backend=args.backend
    )
    stream_s = time.perf_counter() - start
    stream_per_sample = stream_s / args.samples
    assert codes.shape == (1, args.samples)

    print(
        f"\n{'method':10s} {'samples run':>12s} {'seconds':>9s} {'us/sample':>10s} "
        f"{'time for ' + format(args.samples, ','):>18s}"
    )
    print(
        f"{'streaming':10s} {args.samples:12,d} {stream_s:9.2f} {stream_per_sample * 1e6:10.1f} "
        f"{stream_s:15.1f} s (measured)"
    )
    print(
        f"{'naive':10s} {args.naive_samples:12,d} {naive_s:9.2f} {naive_per_sample * 1e6:10.1f} "
        f"{naive_per_sample * args.samples:15.1f} s (extrapolated: {args.naive_samples} samples with a full "
        f"window; a real run's first {model.receptive_field:,} samples have shorter windows)"
    )
    print(
        f"\nper-sample speed-up of streaming over naive recomputation: {naive_per_sample / stream_per_sample:,.0f}x "
        f"({args.samples / stream_s:,.0f} samples/s streaming vs {1 / naive_per_sample:,.1f} naive)"
    )


if __name__ == "__main__":
    main()
