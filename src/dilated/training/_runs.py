"""Run folders: what one `dilated train` run leaves behind, and the report that reads it.

    RUN/
      config.yaml          the resolved config: every default written out
      checkpoints/         one folder per checkpoint (dilated.training._checkpoints), e.g. epoch=0007-step=000133
      metrics.csv          one row per epoch: loss, validation metrics, learning rate, time
      metrics.json         {"history": [...], "best": {...}, "test": {...}, "model": {...}, "data": {...}, ...}
      test_metrics.csv     the final test metrics, one row per class plus the macro and weighted averages
      plots/               curves.png, confusion_matrix.png, per_class.png (or predictions.png for regression)
      logs/                Lightning's per-step log (CSVLogger or TensorBoardLogger), one version per start

Every file of the run folder's own is written atomically (:mod:`dilated.training._atomic`). ``metrics.json``'s
``test`` holds the test metrics and, under ``baseline``, those of the trivial baseline on the same windows.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dilated._resolve import read_yaml
from dilated.training._atomic import atomic_write_json, atomic_write_text
from dilated.training._checkpoints import (
    MANIFEST_FILE,
    CheckpointError,
    find_checkpoints,
    latest_checkpoint,
    load_weights,
)
from dilated.training._config import TrainConfig
from dilated.training._metric_table import METRICS, VALIDATION_PREFIX
from dilated.training._metrics import format_metrics, scalar_metrics
from dilated.training._schema import write_section

HISTORY_COLUMNS = ("epoch", "step", "lr", "train_loss", *(VALIDATION_PREFIX + m.name for m in METRICS), "seconds")
AVERAGES = ("macro", "weighted")


class RunDir:
    """The files of one training run (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.yaml")
    checkpoints = property(lambda self: self.path / "checkpoints")
    metrics_csv = property(lambda self: self.path / "metrics.csv")
    metrics_json = property(lambda self: self.path / "metrics.json")
    test_csv = property(lambda self: self.path / "test_metrics.csv")
    plots = property(lambda self: self.path / "plots")

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def create(cls, path: str | Path, config: TrainConfig) -> RunDir:
        """Make the folder (if needed) and write ``config.yaml``."""
        run = cls(path)
        run.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.config_path, config.dump())
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run folder; ``ValueError`` if ``path`` is not one."""
        run = cls(path)
        if not run.config_path.is_file():
            raise ValueError(f"{path}: not a run folder (no config.yaml); give the folder `dilated train` wrote")
        return run

    logs = property(lambda self: self.path / "logs")

    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(read_yaml(self.config_path), str(self.config_path))

    def metrics(self) -> dict[str, Any]:
        """The contents of ``metrics.json`` (empty before the first epoch ends)."""
        if not self.metrics_json.is_file():
            return {}
        return json.loads(self.metrics_json.read_text())

    def update_metrics(self, **fields: Any) -> None:
        """Set top-level entries of ``metrics.json`` (and rewrite ``metrics.csv`` when ``history`` is given)."""
        metrics = self.metrics()
        metrics.update(fields)
        atomic_write_json(self.metrics_json, metrics)
        if "history" in fields:
            atomic_write_text(self.metrics_csv, history_csv(fields["history"]))

    def write_test(self, result: Mapping[str, Any], split: str = "test") -> None:
        """Store final metrics in ``metrics.json`` (under ``split``) and ``test_metrics.csv``."""
        self.update_metrics(**{split: dict(result)})
        if split == "test":
            atomic_write_text(self.test_csv, test_csv(result))

    def latest_checkpoint(self) -> Path | None:
        """The newest checkpoint that verifies, or None."""
        return latest_checkpoint(self.checkpoints)

    def best_checkpoint(self) -> Path | None:
        """The best checkpoint by the run's monitor, verified; the newest good one if the run recorded no best
        (no epoch finished with a finite value of the monitor).

        Raises:
            CheckpointError: the best checkpoint cannot be loaded (naming it): never a silent switch to another.
        """
        best = (self.metrics().get("best") or {}).get("checkpoint")
        if not best:
            return self.latest_checkpoint()
        path = self.checkpoints / best
        try:
            load_weights(path)
        except CheckpointError as error:
            raise CheckpointError(
                f"the best checkpoint {path} cannot be loaded: {error}; evaluate another "
                "with --checkpoint last or a checkpoint folder"
            ) from None
        return path


def default_run_dir(name: str, root: str | Path = "runs") -> Path:
    """``runs/NAME-YYYYmmdd-HHMMSS`` (a suffix is added if that exists already)."""
    stem = Path(root) / f"{Path(name).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, number = stem, 1
    while path.exists():
        number += 1
        path = stem.with_name(f"{stem.name}-{number}")
    return path


def locate(target: str | Path) -> tuple[RunDir, Path | None]:
    """A run folder, or a checkpoint folder inside one (``RUN/checkpoints/NAME``): the run and the checkpoint."""
    path = Path(target)
    if (path / "config.yaml").is_file():
        return RunDir(path), None
    if (path / MANIFEST_FILE).is_file() or path.parent.name == "checkpoints":
        run_path = path.parent.parent
        if (run_path / "config.yaml").is_file():
            return RunDir(run_path), path
        raise ValueError(
            f"{target}: a checkpoint outside a run folder (no config.yaml two levels up); its model cannot be rebuilt"
        )
    if not path.exists():
        raise ValueError(f"{target}: no such run or checkpoint folder")
    raise ValueError(f"{target}: not a run folder (no config.yaml) nor a checkpoint folder (no {MANIFEST_FILE})")


def history_csv(history: Sequence[Mapping[str, Any]]) -> str:
    """The per-epoch rows as CSV text (known columns first, then any others)."""
    extra = [k for row in history for k in row if k not in HISTORY_COLUMNS]
    present = [c for c in HISTORY_COLUMNS if any(c in row for row in history)]
    columns = present + list(dict.fromkeys(extra))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: ("" if row.get(c) is None else row[c]) for c in columns} for row in history)
    return buffer.getvalue()


def test_csv(result: Mapping[str, Any]) -> str:
    """Final metrics as CSV: one row per class (classification) plus a macro row, or one row of scalars."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    per_class = result.get("per_class")
    if per_class:
        writer.writerow(["class", "precision", "recall", "f1", "support"])
        for name, row in per_class.items():
            writer.writerow([name, row["precision"], row["recall"], row["f1"], row["support"]])
        for average in AVERAGES:
            writer.writerow(
                [average, *(result[f"{key}_{average}"] for key in ("precision", "recall", "f1")), result["samples"]]
            )
        writer.writerow(["accuracy", "", "", result["accuracy"], result["samples"]])
        writer.writerow(["mcc", "", "", result["mcc"], result["samples"]])
    else:
        scalars = scalar_metrics(result)
        writer.writerow([*scalars, "samples"])
        writer.writerow([*scalars.values(), result.get("samples", "")])
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "-"
    return str(value)


def run_report(run: RunDir) -> dict[str, Any]:
    """What :func:`report` shows, JSON-ready (``dilated report --json``, docs/json.md): the model, data, training
    and trainer settings, the progress (status, epochs, best and last epoch, checkpoints) and the test metrics."""
    config, metrics = run.config(), run.metrics()
    model_info, data_info = metrics.get("model", {}), metrics.get("data", {})
    history = metrics.get("history", [])
    training, trainer = write_section(config.training), config.trainer
    checkpoints, latest = find_checkpoints(run.checkpoints), latest_checkpoint(run.checkpoints)
    status = metrics.get("status", "not started" if not history else "running or stopped")
    plots = sorted(run.plots.glob("*.png")) if run.plots.is_dir() else []
    return {
        "run": str(run.path),
        "model": {
            "name": config.model.name,
            "options": dict(config.model.options),
            "parameters": model_info.get("parameters"),
            "receptive_field": model_info.get("receptive_field"),
        },
        "data": {"section": config.data.to_dict(), "samples": data_info.get("sizes"), "alpha": data_info.get("alpha")},
        "training": {k: training[k] for k in _REPORTED_TRAINING},
        "trainer": {k: getattr(trainer, k) for k in ("accelerator", "devices", "num_nodes", "strategy")},
        "status": status,
        "epochs": len(history),
        "wall_time_s": metrics.get("wall_time_s"),
        "best": metrics.get("best") or None,
        "last": history[-1] if history else None,
        "checkpoints": {
            "folder": str(run.checkpoints),
            "count": len(checkpoints),
            "latest_good": latest.name if latest else None,
        },
        "resume": f"dilated train --resume {run.path}" if latest and status != "finished" else None,
        "test": metrics.get("test"),
        "plots": [str(p) for p in plots],
    }


def report(run: RunDir) -> str:
    """A plain-text summary of a run: config, data, epochs, best epoch, checkpoints, test metrics, plots (the
    text of :func:`run_report`)."""
    facts = run_report(run)
    lines = [f"run          {facts['run']}", *_setup_lines(facts), *_progress_lines(facts), *_result_lines(facts)]
    return "\n".join(lines)


# the training options a report shows, in order
_REPORTED_TRAINING = (
    "optimizer",
    "lr",
    "batch_size",
    "max_epochs",
    "patience",
    "scheduler",
    "warmup_steps",
    "clip",
    "class_weights",
    "seed",
    "precision",
)


def _setup_lines(facts: Mapping[str, Any]) -> list[str]:
    """The report's model, data, samples, training and trainer lines."""
    model, data = facts["model"], facts["data"]
    options = ", ".join(f"{k}={v}" for k, v in model["options"].items())
    params = f", {model['parameters']:,} parameters" if model["parameters"] is not None else ""
    receptive = f", receptive field {model['receptive_field']}" if model["receptive_field"] else ""
    lines = [f"model        {model['name']}{params}{receptive}" + (f"  ({options})" if options else "")]
    section = {k: v for k, v in data["section"].items() if k != "kind" and v is not None}
    lines.append(f"data         {data['section']['kind']}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in section.items()))
    if data["samples"]:
        sizes = data["samples"]
        alpha = f", alpha {data['alpha']:.3g}" if data["alpha"] is not None else ""
        lines.append(f"samples      train {sizes['train']}, val {sizes['val']}, test {sizes['test']}{alpha}")
    lines.append("training     " + ", ".join(f"{k}={_fmt(v)}" for k, v in facts["training"].items()))
    lines.append("trainer      " + ", ".join(f"{k}={v}" for k, v in facts["trainer"].items()))
    return lines


def _progress_lines(facts: Mapping[str, Any]) -> list[str]:
    """The report's status, best and last epoch, checkpoints, and how to continue an unfinished run."""
    best, last, checkpoints = facts["best"], facts["last"], facts["checkpoints"]
    wall = f", {facts['wall_time_s']:.0f} s" if facts["wall_time_s"] else ""
    lines = [f"status       {facts['status']}: {facts['epochs']} epoch(s){wall}"]
    if best:
        lines.append(f"best epoch   {best['epoch']} ({best['monitor']} {_fmt(best['value'])})")
    if last:
        shown = {k: v for k, v in last.items() if k not in ("epoch", "step", "seconds") and v is not None}
        lines.append(f"last epoch   {last['epoch']}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
    latest = checkpoints["latest_good"]
    lines.append(
        f"checkpoints  {checkpoints['count']} in {checkpoints['folder']}"
        + (f"; latest good: {latest}" if latest else "; none usable")
    )
    if facts["resume"]:
        lines.append(f"continue     {facts['resume']}")
    return lines


def _result_lines(facts: Mapping[str, Any]) -> list[str]:
    """The report's test metrics and plots, each after a blank line (none: nothing)."""
    lines = []
    if facts["test"] is not None:
        lines += ["", format_metrics(facts["test"], "test metrics")]
    if facts["plots"]:
        lines += ["", "plots        " + "\n             ".join(facts["plots"])]
    return lines
