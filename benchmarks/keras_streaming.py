"""Streaming a converted Keras model: microseconds per step, every method measured side by side in one run.

    python benchmarks/keras_streaming.py [--repeats 7] [--quick]

The model is a functional Keras WaveNet (`keras_wavenet` in tests/references.py: parallel tanh/sigmoid convs
multiplied, 1x1 residual and skip convs), converted with :func:`dilated.from_keras`. One stream, one thread
(``torch.set_num_threads(1)``); each cell is the median over ``--repeats`` interleaved rounds. Columns:

* keras naive: the Keras model (torch backend) on the last ``receptive_field`` inputs, keeping the last output
  (what a service without streaming state does);
* torch naive: the same with the converted module;
* stream: ``dilated.stream(converted, 1).step(x_t)`` (the engine it picked is named).

Before timing, the streamed outputs are checked equal to the Keras model's on the whole sequence.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import common  # noqa: E402, F401  (puts tests/references.py on the path)
import dilated  # noqa: E402
from references import keras_wavenet  # noqa: E402
from streaming import interleaved  # noqa: E402 (benchmarks/streaming.py: median of interleaved rounds)

CONFIGS = [
    ("WaveNet 6 units x 16 ch", 16, (1, 2, 4, 8, 16, 32)),
    ("WaveNet 10 units x 32 ch", 32, tuple(2**i for i in range(10))),
]


def row(name: str, channels: int, dilations: tuple[int, ...], repeats: int) -> dict[str, Any]:
    model = keras_wavenet(channels, dilations)
    field = 2 + sum(dilations)
    converted = dilated.from_keras(model)
    x = np.random.default_rng(0).standard_normal((1, field + 50, 1)).astype("float32")
    s = dilated.stream(converted, 1)
    with torch.no_grad():
        streamed = torch.stack([s.step(torch.from_numpy(x[:, t])) for t in range(x.shape[1])], dim=1).numpy()
        expected = keras.ops.convert_to_numpy(model(x))
    error = float(np.abs(streamed - expected).max())
    assert error < 1e-5, f"{name}: stream differs from Keras by {error}"

    window = x[:, -field:]  # (1, field, 1)
    window_t = torch.from_numpy(window).transpose(1, 2).contiguous()  # (1, 1, field)
    x_t = torch.from_numpy(x[:, -1])  # (1, 1)

    def keras_naive() -> object:
        with torch.no_grad():
            return model(window)[:, -1]

    def torch_naive() -> object:
        with torch.no_grad():
            return converted(window_t)[..., -1]

    slow = 3 if field > 500 else 10
    times = interleaved(
        {
            "keras naive": (keras_naive, slow),
            "torch naive": (torch_naive, slow * 4),
            "stream": (lambda: s.step(x_t), 2_000),
        },
        repeats,
    )
    return {"name": name, "field": field, "engine": type(s).__name__, "error": error, **times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="the small model only, 3 rounds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    configs, repeats = (CONFIGS[:1], 3) if args.quick else (CONFIGS, args.repeats)
    load = os.getloadavg()[0]
    print(
        f"Keras streaming benchmark: keras {keras.__version__} (torch backend), torch {torch.__version__}, "
        f"{os.cpu_count()} cores, load average {load:.2f}; median of {repeats} interleaved rounds; one stream on "
        "1 thread"
    )
    print("\nus per step (lower is better); ratios = naive / stream")
    header = (
        f"{'model':26s} {'RF':>5s} {'keras naive':>12s} {'torch naive':>12s} {'stream':>8s}  engine      "
        f"{'keras/stream':>12s} {'torch/stream':>12s}  max |stream - keras|"
    )
    print(header)
    for name, channels, dilations in configs:
        r = row(name, channels, dilations, repeats)
        print(
            f"{r['name']:26s} {r['field']:5d} {r['keras naive']:12,.0f} {r['torch naive']:12,.0f} "
            f"{r['stream']:8,.1f}  {r['engine']:10s}  {r['keras naive'] / r['stream']:11,.0f}x "
            f"{r['torch naive'] / r['stream']:11,.0f}x  {r['error']:.1e}"
        )


if __name__ == "__main__":
    main()
