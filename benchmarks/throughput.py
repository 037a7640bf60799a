"""Training throughput of `dilated` against its peers, measured side by side in one run.

    python benchmarks/throughput.py [--quick] [--threads 1] [--rounds 15] [--tf-python PATH]

* TransLOB: a full train step (forward, cross-entropy + the reference's L2 penalty, backward, Adam step) on a batch
  of 32 windows, `dilated` against the reference architecture rebuilt in Keras 3 (`tests/references.py`) on its
  torch backend (``model.train_on_batch``), with the same weights. With ``--tf-python`` (a Python that has
  ``tensorflow`` installed) the Keras reference also runs on the TensorFlow backend, in a worker process that takes
  its turn in the same rounds. A separate environment keeps TensorFlow's pins out of the project's:
  ``python -m venv --system-site-packages /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu`` (TensorFlow
  2.21, installed in under 5 minutes here), then ``--tf-python /tmp/tfenv/bin/python``.
* DeepLOB: `dilated`'s train step alone (no peer is built here), for scale.
* TCN: the same full train step (Adam, MSE or cross-entropy) of ``build_model("tcn", ...)`` and ``pytorch_tcn.TCN``
  (locuslab's block, locuslab's linear head) with the same configuration and weights.
* ``dilated.Conv1d`` against ``torch.nn.Conv1d`` after a hand-written ``F.pad`` (``benchmarks/conv1d.py``).

Protocol: after a warm-up, ``--rounds`` rounds; in each round every variant runs ``--steps`` steps in turn, each
timed alone (``time.perf_counter``). Reported: the median step time of each variant over all its steps,
samples/s = batch / median, and the speed-up = peer median / dilated median (> 1: dilated is faster). The
per-round ratios give the spread (min-max over rounds), which shows how much the machine's load moved.
Writes ``docs/results/throughput.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch
import torch.nn.functional as F

EXAMPLES = 0
BATCH = 32


# ---- the steps ------------------------------------------------------------------------------------------------------


def translob_steps(seed: int) -> dict[str, Callable[[], object]]:
    """Train steps of dilated's TransLOB and the Keras reference (torch backend), same weights and batch."""
    import keras

    import common  # noqa: F401  (puts tests/references.py on the path)
    from dilated.models import TransLOB
    from references import keras_translob, load_keras_translob_weights

    torch.manual_seed(seed)
    keras.utils.set_random_seed(seed)
    reference, parts = keras_translob(share_weights=True)
    ours = TransLOB()
    load_keras_translob_weights(ours, parts)
    rng = np.random.default_rng(seed)
    x_paper = rng.standard_normal((BATCH, 100, 40), dtype=np.float32)  # (batch, events, features)
    y = rng.integers(0, 3, BATCH)
    x, target = torch.from_numpy(x_paper).transpose(1, 2).contiguous(), torch.from_numpy(y)  # (B, 40, 100)
    with torch.no_grad():  # the same function, or the timing means nothing
        expected = np.asarray(keras.ops.convert_to_numpy(reference(x_paper, training=False)))
        got = torch.softmax(ours.eval()(x), dim=-1).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-5)
    ours.train()
    reference.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
    optimizer = torch.optim.Adam(ours.parameters(), lr=1e-4)

    def dilated_step() -> None:
        optimizer.zero_grad()
        loss = F.cross_entropy(ours(x), target) + ours.regularization_loss()
        loss.backward()
        optimizer.step()

    return {"dilated": dilated_step, "keras-torch": lambda: reference.train_on_batch(x_paper, y)}


def deeplob_step(seed: int) -> Callable[[], object]:
    from dilated.models import build_model

    torch.manual_seed(seed)
    model = build_model("deeplob")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, target = torch.randn(BATCH, 40, 100), torch.randint(0, 3, (BATCH,))

    def step() -> None:
        optimizer.zero_grad()
        F.cross_entropy(model(x), target).backward()
        optimizer.step()

    return step


TCN_CONFIGS = {  # name: (input channels, channels, kernel, time steps, output size, last step only, batch)
    "adding T=600 (24x8, k=8)": (2, (24,) * 8, 8, 600, 1, True, 32),
    "copy memory T=1000 (10x8, k=8)": (1, (10,) * 8, 8, 1020, 10, False, 32),
    "seq. MNIST (25x8, k=7)": (1, (25,) * 8, 7, 784, 10, True, 64),
    "wide (64x4, k=3)": (16, (64,) * 4, 3, 1000, 1, True, 32),
}


def tcn_steps(config: tuple, seed: int) -> dict[str, Callable[[], object]]:
    """Train steps of dilated's TCN and pytorch_tcn.TCN with locuslab's head, same configuration and weights."""
    import common  # noqa: F401  (puts tests/references.py on the path)
    from dilated.models import build_model
    from references import HeadedTCN, copy_tcn_weights, pytorch_tcn_reference

    inputs, channels, kernel, length, out, last, batch = config
    torch.manual_seed(seed)
    ours = build_model(
        "tcn",
        input_channels=inputs,
        num_channels=channels,
        kernel_size=kernel,
        dropout=0.0,
        output_size=out,
        last_step_only=last,
    )
    peer = HeadedTCN(pytorch_tcn_reference(inputs, channels, kernel, 0.0), channels[-1], out, last)
    copy_tcn_weights(ours, peer)
    x = torch.randn(batch, inputs, length)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    if out == 1:
        target, loss_fn = torch.randn(batch, 1), F.mse_loss
    else:
        target = torch.randint(0, out, (batch,) if last else (batch, length))
        loss_fn = F.cross_entropy
    with torch.no_grad():
        torch.testing.assert_close(ours(x), peer(x), atol=1e-5, rtol=1e-4)

    def make(model: torch.nn.Module) -> Callable[[], None]:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step() -> None:
            optimizer.zero_grad()
            loss_fn(model(x), target).backward()
            optimizer.step()

        return step

    return {"dilated": make(ours), "pytorch-tcn": make(peer)}


# ---- the TensorFlow worker ----------------------------------------------------------------------------------------


class TFWorker:
    """The Keras reference on the TensorFlow backend in another Python, stepping when asked: one line ``N`` on its
    stdin runs N timed train steps and answers one JSON line of step times."""

    def __init__(self, python: str, threads: int, seed: int) -> None:
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        self.proc = subprocess.Popen(
            [python, __file__, "--tf-worker", "--threads", str(threads), "--seed", str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        # both are pipes, never None, with stdin=PIPE and stdout=PIPE
        self.stdin, self.stdout = cast(IO[str], self.proc.stdin), cast(IO[str], self.proc.stdout)
        hello = self.stdout.readline()
        if not hello:
            raise RuntimeError(f"the TensorFlow worker ({python}) did not start")
        self.info = json.loads(hello)
        self.cpu_s = self.wall_s = 0.0

    def steps(self, n: int) -> list[float]:
        """Wall times of ``n`` steps; the worker's CPU time is added up in ``cpu_s``, its wall time in ``wall_s``."""
        self.stdin.write(f"{n}\n")
        self.stdin.flush()
        answer = json.loads(self.stdout.readline())
        self.cpu_s += answer["cpu"]
        self.wall_s += sum(answer["wall"])
        return answer["wall"]

    def close(self) -> None:
        self.stdin.close()
        self.proc.wait(timeout=60)


def tf_worker_main(threads: int, seed: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    import common  # noqa: F401  (puts tests/references.py on the path)
    from references import keras_translob

    keras.utils.set_random_seed(seed)
    reference, _ = keras_translob(share_weights=True)
    reference.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((BATCH, 100, 40), dtype=np.float32), rng.integers(0, 3, BATCH)
    for _ in range(3):
        reference.train_on_batch(x, y)
    print(
        json.dumps(
            {"tensorflow": tf.__version__, "keras": keras.__version__, "jit_compile": bool(reference.jit_compile)}
        ),
        flush=True,
    )
    for line in sys.stdin:
        times, cpu = [], time.process_time()
        for _ in range(int(line)):
            start = time.perf_counter()
            reference.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
        print(json.dumps({"wall": times, "cpu": time.process_time() - cpu}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 3 steps (smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch (and TensorFlow) threads (default 1)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=5, help="steps per variant per round")
    parser.add_argument("--seed", type=int, default=EXAMPLES)
    parser.add_argument("--tf-python", help="a Python with tensorflow installed: also time Keras on TensorFlow")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "results")
    parser.add_argument("--tf-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tf_worker:
        tf_worker_main(args.threads, args.seed)
        return
    from common import interleaved, markdown_table, speedup, write_result
    from conv1d import CONFIGS as CONV_CONFIGS
    from conv1d import measure as conv_measure

    torch.set_num_threads(args.threads)
    rounds, per_round = (3, 3) if args.quick else (args.rounds, args.steps)
    started = time.perf_counter()
    rows, sections, headline, tcn_ratios = [], [], [], []

    # TransLOB vs the Keras reference
    workers, tf_note = {}, ""
    if args.tf_python:
        try:
            workers["keras-tensorflow"] = TFWorker(args.tf_python, args.threads, args.seed)
            info = workers["keras-tensorflow"].info
            tf_note = (
                f"Keras on TensorFlow {info['tensorflow']} (`{args.tf_python}`, jit_compile="
                f"{info['jit_compile']}), in a worker process taking its turn in every round."
            )
        except (OSError, RuntimeError, json.JSONDecodeError) as error:
            tf_note = f"Keras on TensorFlow: the worker at `{args.tf_python}` failed ({error}); not measured."
    else:
        tf_note = (
            "Keras on TensorFlow: not measured in this run (pass `--tf-python` with a Python that has "
            "`tensorflow` installed)."
        )
    result = interleaved(translob_steps(args.seed), rounds, per_round, workers=workers)
    for worker in workers.values():
        worker.close()
        tf_note += (
            (
                f" Its CPU time / wall time while stepping: {worker.cpu_s / worker.wall_s:.2f} "
                f"(about 1 = one busy thread, as `--threads 1` asks)."
            )
            if worker.wall_s
            else ""
        )
    table: list[tuple[object, ...]] = []
    for name, r in result.items():
        ratio = speedup(result, name) if name != "dilated" else (1.0, 1.0, 1.0)
        if name != "dilated":
            headline.append(f"TransLOB train step {ratio[0]:.2f}x {name}")
        table.append(
            (
                name,
                f"{r['median'] * 1e3:.1f}",
                f"{BATCH / r['median']:.0f}",
                f"{ratio[0]:.2f}" if name != "dilated" else "1 (baseline)",
                f"{ratio[1]:.2f}-{ratio[2]:.2f}" if name != "dilated" else "",
            )
        )
        rows.append(
            {
                "benchmark": "translob_train_step",
                "variant": name,
                "batch": BATCH,
                "median_ms": round(r["median"] * 1e3, 3),
                "samples_per_s": round(BATCH / r["median"], 1),
                "speedup_dilated_vs_variant": round(ratio[0], 3),
                "steps": r["n"],
            }
        )
    sections.append(
        "## TransLOB train step, batch 32, input (32, 40, 100)\n\n"
        "Forward, cross-entropy + L2(0.01) on the hidden kernel, backward, Adam(1e-4); the same weights "
        "in both (checked: same softmax outputs). Keras runs `train_on_batch` on a compiled model.\n\n"
        + markdown_table(
            ["implementation", "median ms/step", "samples/s", "dilated speed-up (peer / dilated)", "per-round range"],
            table,
        )
        + f"\n\n{tf_note}"
    )

    # DeepLOB, alone
    result = interleaved({"dilated": deeplob_step(args.seed)}, rounds, per_round)
    median = result["dilated"]["median"]
    rows.append(
        {
            "benchmark": "deeplob_train_step",
            "variant": "dilated",
            "batch": BATCH,
            "median_ms": round(median * 1e3, 3),
            "samples_per_s": round(BATCH / median, 1),
            "steps": result["dilated"]["n"],
        }
    )
    sections.append(
        f"## DeepLOB train step, batch 32 (no peer)\n\n`dilated` DeepLOB: {median * 1e3:.1f} ms/step, "
        f"{BATCH / median:.0f} samples/s."
    )

    # TCN vs pytorch-tcn
    table = []
    for name, config in TCN_CONFIGS.items():
        result = interleaved(tcn_steps(config, args.seed), rounds, per_round)
        ratio = speedup(result, "pytorch-tcn")
        tcn_ratios.append(ratio[0])
        batch = config[-1]
        table.append(
            (
                name,
                batch,
                f"{result['dilated']['median'] * 1e3:.1f}",
                f"{result['pytorch-tcn']['median'] * 1e3:.1f}",
                f"{batch / result['dilated']['median']:.0f}",
                f"{batch / result['pytorch-tcn']['median']:.0f}",
                f"{ratio[0]:.2f}",
                f"{ratio[1]:.2f}-{ratio[2]:.2f}",
            )
        )
        for variant in ("dilated", "pytorch-tcn"):
            rows.append(
                {
                    "benchmark": f"tcn_train_step {name}",
                    "variant": variant,
                    "batch": batch,
                    "median_ms": round(result[variant]["median"] * 1e3, 3),
                    "samples_per_s": round(batch / result[variant]["median"], 1),
                    "speedup_dilated_vs_variant": round(ratio[0], 3) if variant != "dilated" else 1.0,
                    "steps": result[variant]["n"],
                }
            )
    sections.append(
        "## TCN train step: dilated vs pytorch-tcn\n\nSame configuration (weight norm, ReLU, no skip "
        "connections, dropout 0, locuslab's linear head), same weights (checked: same outputs), Adam.\n\n"
        + markdown_table(
            [
                "config",
                "batch",
                "dilated ms",
                "pytorch-tcn ms",
                "dilated samples/s",
                "pytorch-tcn samples/s",
                "speed-up (pytorch-tcn / dilated)",
                "per-round range",
            ],
            table,
        )
    )

    # Conv1d vs torch.nn.Conv1d
    table, ratios = [], []
    for conv_config in CONV_CONFIGS:
        r = conv_measure(*conv_config, repeats=5 if args.quick else 30)
        fwd, bwd = r["fwd_torch"] / r["fwd_dilated"], r["bwd_torch"] / r["bwd_dilated"]
        ratios += [fwd, bwd]
        table.append((*conv_config, f"{fwd:.2f}", f"{bwd:.2f}"))
        rows.append(
            {
                "benchmark": "conv1d",
                "variant": "x".join(map(str, conv_config)),
                "speedup_fwd": round(fwd, 3),
                "speedup_fwd_bwd": round(bwd, 3),
            }
        )
    sections.append(
        "## dilated.Conv1d vs torch.nn.Conv1d + F.pad\n\n(`benchmarks/conv1d.py`'s measurement; "
        "speed-up = torch / dilated, > 1: dilated faster.)\n\n"
        + markdown_table(["batch", "ch", "time", "k", "d", "padding", "fwd speed-up", "fwd+bwd speed-up"], table)
        + f"\n\nGeometric mean speed-up: {statistics.geometric_mean(ratios):.2f}."
    )
    headline += [
        f"TCN train step {min(tcn_ratios):.2f}-{max(tcn_ratios):.2f}x pytorch-tcn",
        f"Conv1d {statistics.geometric_mean(ratios):.2f}x torch.nn.Conv1d + F.pad (geometric mean)",
    ]

    body = (
        f"Threads: {args.threads}; {rounds} rounds x {per_round} steps per variant, interleaved; medians.\n\n"
        + "\n\n".join(sections)
    )
    print(body)
    command = (
        "python benchmarks/throughput.py"
        + (" --quick" if args.quick else "")
        + (f" --tf-python {args.tf_python}" if args.tf_python else "")
    )
    path = write_result(
        "throughput",
        "Training throughput: dilated vs Keras reference and pytorch-tcn",
        body,
        rows,
        command=command,
        seeds=f"{args.seed} (weights and data)",
        headline="dilated speed (peer time / dilated time): " + "; ".join(headline) + ".",
        wall_s=time.perf_counter() - started,
        threads=args.threads,
        out_dir=args.out_dir,
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
