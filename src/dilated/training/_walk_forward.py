"""Walk-forward evaluation and the drift report over the days of a ``book`` dataset folder.

Walk-forward (:func:`walk_forward`): fold k trains on days k+1..k+n, validates on day k+n+1 and tests on day k+n+2,
rolled forward one day at a time (a window of n training days sliding over the dataset). Drift (``drift=True``):
one run on the first n days, then each later day tested on its own with the run's normalisation and label threshold.
Every fold is a normal run folder of :func:`~dilated.training.train` under the output folder; a finished fold (its
config unchanged) is skipped, an unfinished one resumed from its newest checkpoint. The table (``FILE.csv`` and
``FILE.md``) holds each fold's or day's test metrics beside the baselines the run reports; ``summary.json`` and the
markdown's last lines the mean and sample standard deviation over the rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dilated import data
from dilated.training._atomic import atomic_write_csv, atomic_write_json, atomic_write_text
from dilated.training._config import TrainConfig, as_config
from dilated.training._evaluate import evaluate_run
from dilated.training._fit import train
from dilated.training._runs import RunDir

METRICS = ("mcc", "f1_macro", "accuracy")  # the test metrics the tables show, the model's and each baseline's


@dataclass(frozen=True)
class Fold:
    """One fold's name and days (ISO dates) per part."""

    name: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def walk_forward_folds(dates: Sequence[str], train_days: int) -> list[Fold]:
    """Fold k: train on ``dates[k:k+n]``, validate on ``dates[k+n]``, test on ``dates[k+n+1]``."""
    if train_days < 1 or len(dates) < train_days + 2:
        raise ValueError(
            f"walk-forward on {train_days} training day(s) needs at least one and {train_days + 2} days (then one "
            f"validation and one test day); the dataset has {len(dates)}: use fewer training days, or --drift"
        )
    return [
        Fold(
            f"fold-{k + 1:02d}",
            tuple(dates[k : k + train_days]),
            (dates[k + train_days],),
            (dates[k + train_days + 1],),
        )
        for k in range(len(dates) - train_days - 1)
    ]


def _dataset_dates(config: TrainConfig) -> list[str]:
    """The dates of the config's book dataset (between its ``start`` and ``end``)."""
    source = config.data
    if source.kind != "book" or not data.is_book_dataset(getattr(source, "path", "")):
        raise ValueError(
            f"walk-forward and drift need a book dataset folder (data.kind book, data.path a folder of "
            f"dilated data convert -o DIR/); got kind {source.kind!r}"
        )
    _, days = data.dataset_days(source.path, source.instrument, source.start, source.end)  # type: ignore[attr-defined]
    return [d.date for d in days]


def _with_data(config: TrainConfig, **fields: Any) -> TrainConfig:
    raw = config.to_dict()
    return TrainConfig.from_dict({**raw, "data": {**raw["data"], **fields}}, "walk-forward fold")


def _fold_config(config: TrainConfig, fold: Fold) -> TrainConfig:
    return _with_data(config, days=[list(fold.train), list(fold.val), list(fold.test)])


def _same_run(done: TrainConfig, config: TrainConfig) -> bool:
    asked = config.model.options.items()
    same_model = done.model.name == config.model.name and asked <= done.model.options.items()
    return same_model and (done.data, done.training, done.trainer) == (config.data, config.training, config.trainer)


def run_fold(config: TrainConfig, folder: Path, progress: bool, echo: Callable[[str], None]) -> dict[str, Any]:
    """The test metrics of the run in ``folder``: read where it finished with this config (its data, training and
    model; the run's model options hold what the data filled in), else trained (resumed)."""
    run = RunDir(folder)
    metrics = run.metrics()
    if metrics.get("status") == "finished" and "test" in metrics and _same_run(run.config(), config):
        echo(f"{folder} finished already: skipped")
        return dict(metrics["test"])
    result = train(config, folder, resume=True, progress=progress, echo=echo)
    assert result is not None, "walk-forward runs in one process"
    return dict(result.test)


def metric_row(result: Mapping[str, Any]) -> dict[str, Any]:
    """The model's :data:`METRICS` and those of each baseline the result holds (``baseline_mcc``, ...)."""
    row = {name: result[name] for name in METRICS}
    for key, value in result.items():
        if isinstance(value, Mapping) and "name" in value:
            row |= {f"{key}_{name}": value[name] for name in METRICS if name in value}
    return row


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation (0 for one row) of each numeric column."""
    columns = [k for k, v in rows[0].items() if isinstance(v, float | int) and k != "fold"]
    summary = {}
    for column in columns:
        values = [float(row[column]) for row in rows]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[column] = {"mean": statistics.fmean(values), "std": spread}
    return summary


def _write_table(folder: Path, stem: str, title: str, rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``STEM.csv``, ``STEM.md`` (the table and its mean / std) and ``summary.json``; returns the summary."""
    header = list(rows[0])
    atomic_write_csv(folder / f"{stem}.csv", header, [[row[k] for k in header] for row in rows])
    summary = summarise(rows)
    cell = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(row[k]) for k in header) + " |" for row in rows]
    lines += ["", f"Mean and sample standard deviation over {len(rows)} row(s):", ""]
    lines += [f"- {name}: {s['mean']:.4f} +- {s['std']:.4f}" for name, s in summary.items()]
    atomic_write_text(folder / f"{stem}.md", "\n".join(lines) + "\n")
    atomic_write_json(folder / "summary.json", {"rows": len(rows), "metrics": summary})
    return summary


@dataclass
class WalkResult:
    """The rows of the table (one per fold or day), their summary and the table's paths."""

    rows: list[dict[str, Any]]
    summary: dict[str, dict[str, float]]
    table: Path


def walk_forward(
    config: TrainConfig | Mapping[str, Any],
    out_dir: str | Path,
    train_days: int,
    drift: bool = False,
    progress: bool = False,
    echo: Callable[[str], None] = print,
) -> WalkResult:
    """Walk-forward evaluation over the days of a ``book`` dataset config (module notes): every fold of
    :func:`walk_forward_folds` trained and tested into ``OUT/fold-NN/``, the table ``OUT/walk_forward.{csv,md}``.

    With ``drift``: one run on the first ``train_days`` days (one day: its chronological split with its gap; more:
    the last of them validates) into ``OUT/train/``, then each later day tested alone with the run's normalisation
    and label threshold (``OUT/days/DATE.yaml`` the data each is tested on), the table ``OUT/drift.{csv,md}``; a
    one-day run's first row is its own test part.
    """
    return (_drift if drift else _folds)(as_config(config), Path(out_dir), train_days, progress, echo)


def _folds(config: TrainConfig, out: Path, train_days: int, progress: bool, echo: Callable[[str], None]) -> WalkResult:
    rows = []
    for number, fold in enumerate(walk_forward_folds(_dataset_dates(config), train_days), 1):
        echo(f"{fold.name}: train {fold.train[0]}..{fold.train[-1]}, validate {fold.val[0]}, test {fold.test[0]}")
        result = run_fold(_fold_config(config, fold), out / fold.name, progress, echo)
        days = {"train_days": " ".join(fold.train), "val_day": fold.val[0], "test_day": fold.test[0]}
        rows.append({"fold": number, **days, **metric_row(result)})
    title = f"Walk-forward: {train_days} training day(s), {len(rows)} fold(s)"
    return WalkResult(rows, _write_table(out, "walk_forward", title, rows), out / "walk_forward.md")


def _drift_run(
    config: TrainConfig, dates: list[str], train_days: int, out: Path
) -> tuple[TrainConfig, str, dict[str, Path]]:
    """The drift run's config, how its training days are split, and the book file of each day where it trains on
    one: that day's book split in time as a book file is, each day written as one book file (its parts one after
    the other, the config's levels) to ``OUT/days/DATE.parquet``; more days: the last of them the validation day
    and the later days the run's test part."""
    if train_days > 1:
        fold = Fold("drift", tuple(dates[: train_days - 1]), (dates[train_days - 1],), tuple(dates[train_days:]))
        return _fold_config(config, fold), f"validated on {fold.val[0]}", {}
    source = config.data
    _, days = data.dataset_days(source.path, source.instrument)  # type: ignore[attr-defined]
    (out / "days").mkdir(parents=True, exist_ok=True)
    books = {
        day.date: data.write_book(data.read_day(day, source.levels), out / "days" / f"{day.date}.parquet")  # type: ignore[attr-defined]
        for day in days
        if day.date in dates
    }
    run_config = _with_data(config, path=str(books[dates[0]]), instrument=None, days=None)
    return run_config, "its chronological split", books


def _drift(config: TrainConfig, out: Path, train_days: int, progress: bool, echo: Callable[[str], None]) -> WalkResult:
    dates = _dataset_dates(config)
    if train_days < 1 or len(dates) < train_days + 1:
        raise ValueError(
            f"drift on {train_days} training day(s) needs at least {train_days + 1} days; the dataset has {len(dates)}"
        )
    run_config, split, books = _drift_run(config, dates, train_days, out)
    echo(f"drift: train on {dates[0]}..{dates[train_days - 1]} ({split}), test {len(dates) - train_days} day(s)")
    own = run_fold(run_config, out / "train", progress, echo)
    section = run_config.to_dict()["data"] | {"threshold": RunDir(out / "train").metrics()["data"]["threshold"]}
    rows = [{"day": dates[0], "part": "test part", **metric_row(own)}] if books else []
    for day in dates[train_days:]:
        spec = out / "days" / f"{day}.yaml"  # the data each day is tested on, with the run's label threshold
        part = {"path": str(books[day])} if books else {"days": [*section["days"][:2], [day]]}
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(yaml.safe_dump({"data": section | part}, sort_keys=False))
        result = evaluate_run(out / "train", str(spec), "all" if books else "test", progress=progress).result
        rows.append({"day": day, "part": "whole day", **metric_row(result)})
    title = f"Drift: trained on {dates[0]}..{dates[train_days - 1]} ({split}), tested on each later day"
    return WalkResult(rows, _write_table(out, "drift", title, rows), out / "drift.md")
