"""``dilated demo``: TransLOB on the bundled LOBSTER sample (real AAPL data), evaluated on its test part.

The config is package data (``dilated/training/demo.yaml``, also at ``configs/translob_lobster_demo.yaml``), read by
:func:`dilated.training._config.demo_config`.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

from dilated.training._config import demo_config
from dilated.training._fit import TrainResult, train
from dilated.training._kinds import LobsterData

DEMO_MARKER = ".dilated-demo"


def _echo(message: str) -> None:
    print(message, flush=True)


def demo(
    run_dir: str | Path = "runs/demo",
    max_epochs: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = _echo,
) -> TrainResult | None:
    """Train the demo config into ``run_dir`` (a previous demo run there is replaced; any other folder is refused
    untouched) and print the test metrics beside the majority-class baseline, and the plots' paths."""
    config = demo_config()
    if max_epochs is not None:
        config = dataclasses.replace(config, training=dataclasses.replace(config.training, max_epochs=max_epochs))
    path = Path(run_dir)
    if (path / DEMO_MARKER).is_file():  # only a folder the demo made itself is replaced, never another run
        echo(f"replacing the previous demo run in {path}")
        for name in ("checkpoints", "plots", "logs"):
            shutil.rmtree(path / name, ignore_errors=True)
        for name in ("metrics.csv", "metrics.json", "test_metrics.csv"):
            (path / name).unlink(missing_ok=True)
    elif path.exists() and any(path.iterdir()):
        raise ValueError(
            f"{path} exists and is not a demo run folder (nothing was changed in it); choose another --run-dir"
        )
    path.mkdir(parents=True, exist_ok=True)
    (path / DEMO_MARKER).write_text("made by `dilated demo`; the next demo run replaces this folder\n")
    data = config.data
    if not isinstance(data, LobsterData):
        raise TypeError(f"the demo config must read LOBSTER data; {data.kind!r} found")
    echo(
        f"dilated demo: TransLOB (Wallbridge 2020) on the bundled LOBSTER sample (AAPL, 2012-06-21, first 999 "
        f"events): up/stationary/down of the mean mid-price over the next {data.horizon} events, from windows "
        f"of {data.window} events"
    )
    result = train(config, path, progress=progress, echo=echo)
    if result is not None:
        echo(
            "999 events are minutes of trading, so expect scores near the baseline's: train on FI-2010 (configs/) "
            "for the paper's setting"
        )
    return result
