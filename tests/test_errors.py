"""Every row of docs/errors.md: the documented exception and message, from the API (and the CLI for some)."""

import copy
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import yaml
from pytorch_tcn import TCN as PytorchTCN
from safetensors.torch import save_file

import dilated
import dilated.streaming
from dilated._layer_graph import LayerGraphSpec
from dilated._resolve import build_stack, parse_input_shape, read_yaml, resolve_target
from dilated.analysis import first_noncausal_layer
from dilated.cli import build_parser, main
from dilated.data import (
    Book,
    binance_book,
    bitstamp_book,
    book_splits,
    bundled_lobster_sample,
    convert_book,
    convert_dataset,
    databento_mbo_book,
    databento_mbp10_book,
    dataset_info,
    dataset_splits,
    load_fi2010,
    read_book,
    read_fi2010,
    read_lobster,
    synthetic_feed,
    table_dataset,
    write_book,
)
from dilated.data._convert import book_rows
from dilated.design import design
from dilated.explore import stack_state, write_explorer
from dilated.geometry import Layer, stack_geometry
from dilated.keras_bridge._adapter import import_keras
from dilated.keras_bridge._convert import check_conversion, load_converted
from dilated.layers import Conv1d
from dilated.live import Predictor, load_run, replay
from dilated.streaming._export import export_step
from dilated.streaming._export_c import EMITTERS, export_c
from dilated.streaming._fast.instructions import UNARY
from dilated.training import TrainConfig, apply_overrides, check_finite, walk_forward
from dilated.training._checkpoints import load_checkpoint, save_checkpoint
from dilated.training._config import demo_config_path
from dilated.training._kinds.book import BookData
from dilated.training._module import zero_output_layer
from dilated.training._runs import RunDir
from helpers import HandDelay, book_dataset, prices_table, untrained_run

DOC = Path(__file__).parent.parent / "docs" / "errors.md"

# -- trained runs as live predictors: runs as `dilated train` writes them, with initial weights --------------------
LOBSTER_RUN = {"kind": "lobster", "window": 20}

DEMO_CONFIG = yaml.safe_load(demo_config_path().read_text())  # the raw demo config mapping


def lobster_predictor(tmp_path: Path) -> Predictor:
    return load_run(untrained_run(tmp_path / "run", LOBSTER_RUN))


def table_predictor(tmp_path: Path) -> Predictor:
    data = {"kind": "table", "path": str(prices_table(tmp_path / "train.csv")), "target": "price", "window": 20}
    return load_run(untrained_run(tmp_path / "run", data))


def documented_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("id", "---") and not cells[0].startswith("-"):
            rows[cells[0]] = (cells[2], cells[3].strip("`"))
    return rows


def fi2010_file(tmp_path: Path, edit: Callable[[list[str]], list[str]] = lambda lines: lines) -> Path:
    path = tmp_path / "Train_Dst_NoAuction_ZScore_CF_7.txt"
    rows = np.ones((149, 300))
    rows[144:] = 2
    np.savetxt(path, rows, fmt="%.7e")
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    return path


def replace_first_cell(row: int, value: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        lines[row] = lines[row].replace("1.0000000e+00", value, 1)
        return lines

    return edit


def short_lobster_messages(tmp_path: Path) -> None:
    messages, book = bundled_lobster_sample()
    cut = tmp_path / "messages.csv"
    cut.write_text("\n".join(Path(messages).read_text().splitlines()[:500]) + "\n")
    read_lobster(cut, book)


BINANCE_SNAPSHOT = '1 {"lastUpdateId": 10, "bids": [["9", "1"]], "asks": [["11", "1"]]}\n'
BINANCE_DIFFS = (
    '2 {"data": {"e": "depthUpdate", "E": 2, "U": 9, "u": 12, "pu": 8, "b": [], "a": []}}\n'
    '3 {"data": {"e": "depthUpdate", "E": 3, "U": 16, "u": 17, "pu": 15, "b": [], "a": []}}\n'
)


def small_book() -> Book:
    """Twenty events of a two-level book."""
    values = np.tile([10.0, 1.0, 9.0, 1.0, 11.0, 1.0, 8.0, 1.0], (20, 1))
    values[::3, 0] = 10.5
    return Book(np.arange(20, dtype=np.int64), values, "small", "test")


def book_without(tmp_path: Path, *columns: str) -> Path:
    """:func:`small_book` as Parquet with ``columns`` dropped."""
    import pyarrow.parquet as pq

    table = pq.read_table(write_book(small_book(), tmp_path / "whole.parquet")).drop_columns(list(columns))
    pq.write_table(table, tmp_path / "b.parquet")
    return tmp_path / "b.parquet"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- book runs as live predictors (dilated.live._feeds): helpers of the predictor-book-* cases --------------------
def book_predictor(tmp_path: Path) -> Predictor:
    """An untrained run on :func:`small_book` (2 levels, windows of 4 events)."""
    path = write_book(small_book(), tmp_path / "book.parquet")
    return load_run(untrained_run(tmp_path / "run", {"kind": "book", "path": str(path), "levels": 2, "window": 4}))


def often_crossed_book(tmp_path: Path) -> Path:
    """:func:`small_book` crossed at every third event: every window of 4 events holds one."""
    book = small_book()
    book.values[::3, 2] = 12.0  # best bid above the best ask
    return write_book(book, tmp_path / "crossed.parquet")


def demo_config_with(**training: object) -> dict:
    config = copy.deepcopy(DEMO_CONFIG)
    config["training"].update(training)
    return config


def nan_batch() -> None:
    x = torch.zeros(4, 2, 5)
    x[2, 1, 3] = float("nan")
    check_finite(x, torch.zeros(4))


def truncated_checkpoint(tmp_path: Path) -> None:
    folder = save_checkpoint(tmp_path / "checkpoint", {"w": torch.ones(3)}, {"epoch": 1})
    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-5])
    load_checkpoint(folder)


class UnevenPad(torch.nn.Module):
    """A module declaring a k=3 conv padded (3, 1): the explorer page edits no such padding."""

    geometry = Layer(3, padding=(3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def unloadable_best_checkpoint(tmp_path: Path) -> None:
    """A run folder whose metrics.json names a best checkpoint that was truncated since."""
    run = RunDir.create(tmp_path / "run", TrainConfig.from_dict(DEMO_CONFIG))
    truncated_checkpoint_at(run.checkpoints / "epoch=0002-step=000020")
    save_checkpoint(run.checkpoints / "epoch=0003-step=000030", {"w": torch.ones(3)}, {"epoch": 3})
    run.update_metrics(best={"epoch": 2, "monitor": "val_loss", "value": 0.5, "checkpoint": "epoch=0002-step=000020"})
    run.best_checkpoint()


def truncated_checkpoint_at(folder: Path) -> None:
    save_checkpoint(folder, {"w": torch.ones(3)}, {"epoch": 1})
    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-5])


class _Spectrum(torch.nn.Module):
    """An op the receptive-field analysis does not follow (an FFT over time)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(x, dim=-1).abs()


class _Quantised(torch.nn.Module):
    """A conv whose output is rounded to 0: the probe sees no dependency, the analysis does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = Conv1d(1, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(self.conv(x) * 1e-9)


def _any_length_keras() -> object:
    import keras

    inputs = keras.Input((None, 1))
    return keras.Model(inputs, keras.layers.Conv1D(2, 3, padding="causal")(inputs))


def _truncated_dbn(tmp: Path) -> Path:
    """A generated 100-message DBN MBO file whose last record lost all but 20 bytes."""
    path = synthetic_feed("databento-mbo", tmp / "day.dbn", 100, seed=0)
    path.write_bytes(path.read_bytes()[:-36])  # an MBO record is 56 bytes
    return path


def _without_dask(tmp: Path) -> object:
    """convert_dataset(workers=2) as if Dask distributed were not installed."""
    saved = sys.modules.get("distributed")
    sys.modules["distributed"] = None  # type: ignore[assignment]  # makes `import distributed` raise ImportError
    try:
        feed = synthetic_feed("databento-mbo", tmp / "a.dbn", 100)
        return convert_dataset([feed], tmp / "books", workers=2)
    finally:
        if saved is None:
            del sys.modules["distributed"]
        else:
            sys.modules["distributed"] = saved


def _cli_raises(argv: list[str]) -> object:
    """Run a `dilated` command's handler directly, so that its refusal propagates."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


def _chosen(tmp: Path, selection: list[list]) -> object:
    return dataset_splits(book_dataset(tmp, "AAA", 3, 50), levels=3, selection=selection)


def _book_config(path: Path) -> dict:
    return {**DEMO_CONFIG, "data": {"kind": "book", "path": str(path), "levels": 3, "window": 10, "horizon": 2}}


CASES: dict[str, Callable[[Path], object]] = {
    "conv-channels": lambda _: Conv1d(2, 4, 3)(torch.zeros(1, 3, 10)),
    "conv-rank": lambda _: Conv1d(2, 4, 3)(torch.zeros(2, 10)),
    "conv-dtype": lambda _: Conv1d(2, 4, 3)(torch.zeros(1, 2, 10, dtype=torch.long)),
    "conv-short": lambda _: Conv1d(2, 4, 5, dilation=2, padding="valid")(torch.zeros(1, 2, 5)),
    "conv-groups": lambda _: Conv1d(4, 6, 3, groups=4),
    "geometry-kernel": lambda _: Layer(kernel_size=0),
    "geometry-stride-dilation": lambda _: Layer(3, stride=2, dilation=2),
    "geometry-padding": lambda _: Layer(3, padding="full"),
    "geometry-too-short": lambda _: stack_geometry([Layer(3, name="first"), Layer(9, dilation=2, name="second")], 10),
    "summary-no-shape": lambda _: dilated.summary(Conv1d(2, 2, 3)),
    "model-unknown": lambda _: dilated.build_model("transformer"),
    "model-option": lambda _: dilated.build_model("tcn", num_layers=3),
    "model-init": lambda _: dilated.build_model("tcn", init="xavier"),
    "model-window": lambda _: dilated.build_model("translob")(torch.zeros(1, 40, 50)),
    "model-layout": lambda _: dilated.build_model("translob")(torch.zeros(1, 100, 40)),
    "config-missing": lambda _: read_yaml("missing.yaml"),
    "config-yaml": lambda tmp: read_yaml(write(tmp, "config.yaml", "layers: [unclosed\n")),
    "config-layer-type": lambda _: build_stack([{"type": "conv2d", "channels": 3}], 2),
    "config-layer-option": lambda _: build_stack([{"type": "conv1d", "channels": 3, "kernal_size": 3}], 2),
    "config-input": lambda _: parse_input_shape("2,abc", "--input"),
    "config-input-rank": lambda _: parse_input_shape("2", "--input"),
    "keras-missing-file": lambda _: resolve_target("missing.keras"),
    "keras-custom-layer": lambda tmp: resolve_target(str(_unregistered_keras_file(tmp))),
    "fi2010-truncated": lambda tmp: read_fi2010(fi2010_file(tmp, lambda lines: lines[:120]), progress=False),
    "fi2010-cell": lambda tmp: read_fi2010(fi2010_file(tmp, replace_first_cell(5, "abc")), progress=False),
    "fi2010-nan": lambda tmp: read_fi2010(fi2010_file(tmp, replace_first_cell(7, "nan")), progress=False),
    "fi2010-horizon": lambda tmp: load_fi2010(fi2010_file(tmp).parent, horizon=15, progress=False),
    "lobster-mismatch": short_lobster_messages,
    "train-config-key": lambda _: TrainConfig.from_dict(demo_config_with(learning_rat=1)),
    "train-override-section": lambda _: apply_overrides(copy.deepcopy(DEMO_CONFIG), ["trainig.lr=1"]),
    "train-config-type": lambda _: TrainConfig.from_dict(
        apply_overrides(copy.deepcopy(DEMO_CONFIG), ["training.lr=abc"])
    ),
    "train-batch-nan": lambda _: nan_batch(),
    "checkpoint-truncated": truncated_checkpoint,
    "table-column": lambda tmp: table_dataset(
        write(tmp, "t.csv", "a,b\n1,2\n3,4\n"), target="c", features=["a"], window=1
    ),
    # design and explore (issue 16)
    "design-unreachable": lambda _: design(1000, 2, max_layers=5),
    "design-no-field": lambda _: main(["--debug", "design"]),  # --debug raises instead of printing
    "design-kernel": lambda _: design(100, 1),
    "design-target": lambda _: design(1, 2),
    "design-block": lambda _: design(100, 2, block="residual3"),  # type: ignore[arg-type]  # the refusal under test
    "design-sort": lambda _: design(100, 2, sort_by=["speed"]),
    "stack-dilations": lambda _: dilated.build_model("dilated_stack", dilations=[]),
    "explore-padding": lambda _: stack_state(dilated.summary(torch.nn.Sequential(UnevenPad()), (1, 20)), "m", (1, 20)),
    "explore-path": lambda tmp: write_explorer("explorer.png"),
    # --- order books rebuilt from feeds (dilated.data: convert, databento, binance, bitstamp, orderbook, lob_labels)
    "book-format-unknown": lambda tmp: convert_book(write(tmp, "f.csv", "a\n"), format="csv"),
    "book-format-undetected": lambda tmp: convert_book(write(tmp, "notes.txt", "hello\n")),
    "book-levels": lambda tmp: convert_book(write(tmp, "f.csv", "a\n"), format="bitstamp", levels=0),
    "book-not-dbn": lambda tmp: databento_mbo_book(write(tmp, "x.dbn", "id,price\n")),
    "book-engine": lambda tmp: databento_mbo_book(tmp / "x.dbn", engine="rust"),
    "book-dbn-truncated": lambda tmp: databento_mbo_book(_truncated_dbn(tmp)),
    "feed-format": lambda tmp: synthetic_feed("csv", tmp / "f.csv", 10),
    "book-resume-format": lambda tmp: book_rows([tmp / "b.txt"], "binance", 10, resume={}),
    "dataset-no-sources": lambda tmp: convert_dataset([], tmp / "books"),
    "dataset-not-folder": lambda tmp: convert_dataset([tmp / "a.dbn"], write(tmp, "books", "")),
    "dataset-tick-size": lambda tmp: convert_dataset([tmp / "a.dbn"], tmp / "books", tick_size=0.0),
    "dataset-workers": lambda tmp: convert_dataset([tmp / "a.dbn"], tmp / "books", workers=0),
    "dataset-manifest": lambda tmp: convert_dataset([tmp / "a.dbn"], write(tmp, "_manifest.json", "{").parent),
    "dataset-info-no-manifest": lambda tmp: dataset_info(tmp),
    "dataset-dask-missing": lambda tmp: _without_dask(tmp),
    "dataset-options-file-target": lambda tmp: _cli_raises(
        ["data", "convert", "a.dbn", "-o", "b.parquet", "--jobs", "2"]
    ),
    "book-mbp10-levels": lambda tmp: databento_mbp10_book(tmp / "x.dbn", levels=20),
    "book-binance-no-snapshot": lambda tmp: binance_book(write(tmp, "b.txt", BINANCE_DIFFS)),
    "book-binance-gap": lambda tmp: binance_book(write(tmp, "b.txt", BINANCE_SNAPSHOT + BINANCE_DIFFS)),
    "book-binance-gaps-policy": lambda tmp: binance_book(write(tmp, "b.txt", BINANCE_SNAPSHOT), gaps="skip"),  # type: ignore[arg-type]  # the refusal under test
    "book-bitstamp-column": lambda tmp: bitstamp_book(write(tmp, "o.csv", "id,timestamp,price,volume,action\n")),
    "book-bitstamp-action": lambda tmp: bitstamp_book(
        write(tmp, "o.csv", "id,timestamp,price,volume,action,direction\n1,5,9.0,1.0,filled,bid\n")
    ),
    "book-not-parquet": lambda tmp: read_book(write(tmp, "b.parquet", "not parquet")),
    "book-parquet-columns": lambda tmp: read_book(book_without(tmp, "ask_size_1", "bid_price_2")),
    "book-parquet-levels": lambda tmp: read_book(write_book(small_book(), tmp / "b.parquet"), levels=10),
    "book-no-window": lambda _: book_splits(small_book(), levels=1, window=50, horizon=10),
    "book-time": lambda _: book_splits(small_book(), levels=1, window=2, horizon=1, start="yesterday"),
    "book-representation": lambda _: book_splits(small_book(), levels=2, window=2, horizon=1, representation="ofi"),
    "book-representation-model": lambda _: dilated.models.fitted_options(
        "deeplob", {}, dilated.models.DataShape(12, 100, classes=3, representation="order_flow")
    ),
    "book-representation-tick": lambda _: book_splits(
        small_book(), levels=1, window=2, horizon=1, representation="stationary"
    ),
    "book-threshold-unit": lambda _: book_splits(small_book(), levels=1, window=2, horizon=1, threshold_unit="bps"),
    "book-threshold-ticks": lambda _: book_splits(small_book(), levels=1, window=2, horizon=1, threshold_unit="ticks"),
    "book-threshold-spread": lambda _: book_splits(
        Book(np.arange(20, dtype=np.int64), np.tile([10.0, 1.0, 10.0, 1.0], (20, 1)), "locked", "test"),
        levels=1,
        window=2,
        horizon=1,
        threshold_unit="spread",
    ),
    "book-dataset-empty": lambda tmp: dataset_splits(tmp),
    "book-dataset-instrument": lambda tmp: dataset_splits(book_dataset(book_dataset(tmp, "AAA", 3, 50), "BBB", 3, 50)),
    "book-dataset-unknown-instrument": lambda tmp: dataset_splits(book_dataset(tmp, "AAA", 3, 50), "ZZZ"),
    "book-dataset-days": lambda tmp: dataset_splits(book_dataset(tmp, "AAA", 2, 50), levels=3),
    "book-instrument-file": lambda tmp: BookData(str(write_book(small_book(), tmp / "b.parquet")), "AAA").build(
        None, False
    ),
    "book-dataset-live": lambda tmp: BookData(str(book_dataset(tmp, "AAA", 3, 50))).read_events(None, None),
    "book-days-shape": lambda tmp: BookData(str(book_dataset(tmp, "AAA", 3, 50)), days=((0,),)).build(None, False),
    "book-days-unknown": lambda tmp: _chosen(tmp, [["2024-02-30"], [1], [2]]),
    "book-days-empty": lambda tmp: _chosen(tmp, [[0], [], [2]]),
    "book-days-overlap": lambda tmp: _chosen(tmp, [[0, 1], [2], [1]]),
    "book-days-order": lambda tmp: _chosen(tmp, [[1], [2], [0]]),
    "walk-forward-days": lambda tmp: walk_forward(_book_config(book_dataset(tmp, "AAA", 2, 50)), tmp / "w", 1),
    "walk-forward-data": lambda tmp: walk_forward(DEMO_CONFIG, tmp / "w", 1),
    "drift-days": lambda tmp: walk_forward(_book_config(book_dataset(tmp, "AAA", 2, 50)), tmp / "d", 2, drift=True),
    # ---- training (dilated.training): typed config, run folders
    "train-config-nearest": lambda _: TrainConfig.from_dict(demo_config_with(max_epoch=3)),
    "train-data-kind": lambda _: TrainConfig.from_dict({**DEMO_CONFIG, "data": {"kind": "lobsters"}}),
    "train-monitor-task": lambda _: TrainConfig.from_dict(
        {"model": "tcn", "data": {"kind": "adding"}, "training": {"monitor": "val_accuracy"}}
    ),
    "train-zero-head": lambda _: zero_output_layer(torch.nn.Sequential(torch.nn.ReLU())),
    "train-best-unloadable": unloadable_best_checkpoint,
    # -- trained runs as live predictors (dilated.load_run, dilated replay) --------------------------------------
    "predictor-not-a-run": lambda tmp: load_run(tmp),
    "predictor-no-checkpoint": lambda tmp: load_run(untrained_run(tmp / "run", LOBSTER_RUN, checkpoint=False)),
    "predictor-per-step": lambda tmp: load_run(untrained_run(tmp / "run", {"kind": "copy_memory"})),
    "predictor-features": lambda tmp: lobster_predictor(tmp).predict(np.zeros((38, 50))),
    "predictor-short": lambda tmp: lobster_predictor(tmp).predict(np.zeros((40, 5))),
    "predictor-format": lambda tmp: lobster_predictor(tmp).predict(prices_table(tmp / "prices.parquet")),
    "predictor-no-reader": lambda tmp: load_run(
        untrained_run(tmp / "run", {"kind": "fi2010", "root": str(tmp)})
    ).predict(np.zeros((1, 150))),
    "predictor-data-kind": lambda tmp: lobster_predictor(tmp).predict(
        write(tmp, "other.yaml", f"data: {{kind: table, path: {prices_table(tmp / 'p.csv')}, target: price}}\n")
    ),
    "predictor-stream-shape": lambda tmp: lobster_predictor(tmp).stream(2).step(np.zeros((3, 40))),
    "replay-by-lobster": lambda tmp: replay(lobster_predictor(tmp), by="symbol", progress=False),
    "replay-by-column": lambda tmp: replay(
        table_predictor(tmp), prices_table(tmp / "prices.csv"), by="sector", progress=False
    ),
    # book runs (data.kind: book): one block
    "predictor-book-levels": lambda tmp: book_predictor(tmp).predict(
        write_book(Book(small_book().ts, small_book().values[:, :4], "one-level"), tmp / "one.parquet")
    ),
    "predictor-book-unusable": lambda tmp: book_predictor(tmp).predict(often_crossed_book(tmp)),
    "replay-by-book": lambda tmp: replay(book_predictor(tmp), by="symbol", progress=False),
    # --- receptive-field analysis (dilated.receptive_field, dilated.probe_receptive_field) ---
    "rf-no-shape": lambda _: dilated.receptive_field(Conv1d(2, 2, 3)),
    "rf-not-a-model": lambda _: dilated.receptive_field("model", (2, 10)),
    "rf-keras-any-length": lambda _: dilated.receptive_field(_any_length_keras()),
    "rf-keras-shape": lambda _: dilated.receptive_field(_any_length_keras(), (3, 64)),
    "rf-measured-steps": lambda _: dilated.receptive_field(_Spectrum(), (1, 32)).steps(0),
    "rf-probe-disagrees": lambda _: dilated.receptive_field(_Quantised(), (1, 32), probe=True),
    "rf-unfollowed": lambda _: first_noncausal_layer(torch.nn.Sequential(Conv1d(1, 1, 2), HandDelay()), (1, 32)),
    "rf-probe-step": lambda _: dilated.probe_receptive_field(Conv1d(1, 1, 2), (1, 200)).steps(50),
    "rf-probe-module": lambda _: dilated.probe_receptive_field(Conv1d(1, 1, 2), (1, 8), module="decoder"),
    "rf-draw-nothing": lambda tmp: dilated.draw(
        torch.nn.Sequential(torch.nn.AdaptiveAvgPool1d(1)), 8, input_shape=(1, 8), path=tmp / "x.png"
    ),
    "draw-max-steps": lambda tmp: dilated.draw([Layer(2, padding="causal")], 32, path=tmp / "x.png", max_steps=1),
}


# ---- Keras conversion, graph specs and step export -------------------------------------------------------------


def _unregistered_keras_file(tmp):
    """A ``.keras`` file holding a Conv1D subclass, its registration dropped before it is read back."""
    keras = import_keras()

    @keras.saving.register_keras_serializable(package="errors")
    class Reversed(keras.layers.Conv1D):
        def call(self, x):
            return super().call(keras.ops.flip(x, 1))

    x = keras.Input((16, 1))
    path = tmp / "custom.keras"
    keras.Model(x, Reversed(2, 3)(x)).save(path)
    del keras.saving.get_custom_objects()["errors>Reversed"]
    return path


def keras_stack(*layers: object):
    keras = import_keras()
    return keras.Sequential([keras.Input((24, 2)), *layers])


def converted_with_a_wrong_bias() -> None:
    model = keras_stack(keras_layer("Conv1D", 3, 2, padding="causal"))
    graph = dilated.from_keras(model)
    with torch.no_grad():
        bias = next(iter(graph.layers.values())).bias
        assert isinstance(bias, torch.Tensor)
        bias += 1.0
    check_conversion(model, graph)


def mismatched_weights(tmp: Path) -> None:
    spec = (
        "inputs: {x: [2]}\noutputs: [c]\nweights: w.safetensors\ngraph:\n  - {name: c, type: conv1d, inputs: [x], "
        "in_channels: 2, channels: %d, kernel_size: 5}\n"
    )
    write(tmp, "m.yaml", spec % 5)
    save_file({"layers.c.weight": torch.zeros(5, 2, 5), "layers.c.bias": torch.zeros(5)}, str(tmp / "w.safetensors"))
    load_converted(write(tmp, "m.yaml", spec % 6))


def keras_layer(name: str, *args: object, **kwargs: object):
    return getattr(import_keras().layers, name)(*args, **kwargs)


def graph_spec(*nodes: dict) -> None:
    LayerGraphSpec.from_dict({"inputs": {"x": [2]}, "outputs": ["x"], "graph": list(nodes)})


def _c_step(tmp: Path, model: torch.nn.Module | None = None, **options: object) -> None:
    """``export_c`` of a small causal stack (or ``model``) to ``tmp / "step.c"``."""
    stack = torch.nn.Sequential(Conv1d(2, 2, 3), torch.nn.Tanh()) if model is None else model
    export_c(stack.eval(), tmp / "step.c", torch.zeros(1, 2), **options)  # type: ignore[arg-type]


def _without_c_emission(tmp: Path) -> None:
    with mock.patch.dict(EMITTERS):
        del EMITTERS[UNARY]
        _c_step(tmp)


def _without_compiler(tmp: Path) -> None:
    with mock.patch.dict(os.environ, {"CC": "no-such-cc"}):
        _c_step(tmp)


class _Sine(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


KERAS_CASES: dict[str, Callable[[Path], object]] = {
    "keras-unknown-layer": lambda _: dilated.from_keras(keras_stack(keras_layer("LSTM", 3, return_sequences=True))),
    "keras-activation": lambda _: dilated.from_keras(keras_stack(keras_layer("Activation", "sparsemax"))),
    "keras-axis": lambda _: dilated.from_keras(keras_stack(keras_layer("BatchNormalization", axis=1))),
    "keras-data-format": lambda _: dilated.from_keras(
        keras_stack(keras_layer("MaxPooling1D", 2, data_format="channels_first"))
    ),
    "keras-avgpool-same": lambda _: dilated.from_keras(
        keras_stack(keras_layer("AveragePooling1D", 2, strides=1, padding="same"))
    ),
    "keras-not-built": lambda _: dilated.from_keras(import_keras().Sequential([keras_layer("Dense", 2)])),
    "keras-conversion-differs": lambda _: converted_with_a_wrong_bias(),
    "graph-unknown-type": lambda _: graph_spec({"name": "c", "type": "conv2d", "inputs": ["x"]}),
    "graph-missing-tensor": lambda _: graph_spec({"name": "c", "type": "add", "inputs": ["x", "y"]}),
    "graph-spec-missing": lambda tmp: load_converted(tmp / "model.safetensors"),
    "graph-weights-mismatch": mismatched_weights,
    "export-channels": lambda tmp: export_step(torch.nn.Sequential(Conv1d(2, 2, 3)), tmp / "step.onnx"),
    "export-format": lambda tmp: export_step(torch.nn.Sequential(Conv1d(2, 2, 3)), tmp / "step.txt", 2),
    "export-c-dtype": lambda tmp: _c_step(tmp, torch.nn.Sequential(Conv1d(2, 2, 3)).double()),
    "export-c-unsupported": lambda tmp: _c_step(tmp, _Sine()),
    "export-c-emission": _without_c_emission,
    "export-c-prefix": lambda tmp: _c_step(tmp, prefix="2nd"),
    "export-c-compiler": _without_compiler,
}
CASES.update(KERAS_CASES)


# -- streaming plain torch models (dilated.stream): one block, kept together ---------------------------------------
class _Trim(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :-1]


class _ReplicatePadded(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(2, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.nn.functional.pad(x, (2, 0), mode="replicate"))


class _Cumulative(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(2, 2, 2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)[:, :, :-1].cumsum(-1)


class _Twice(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(2, 2, 2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv(x)[:, :, :-1])[:, :, :-1]


class _LengthBranch(torch.nn.Module):
    """A cumsum only on inputs longer than 60 steps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(2, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x.cumsum(-1) if x.shape[-1] > 60 else x


class _EightSteps(torch.nn.Module):
    """A forward that takes windows of 8 steps only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 8:
            raise RuntimeError(f"expects 8 steps, got {x.shape[-1]}")
        return x


def _stream(*layers: torch.nn.Module) -> dilated.streaming.EagerStream:
    return dilated.streaming.EagerStream(torch.nn.Sequential(*layers).eval(), 1)


STREAM_CASES: dict[str, Callable[[Path], object]] = {
    "stream-future-conv": lambda _: _stream(torch.nn.Conv1d(2, 2, 3, padding=1)),
    "stream-strided-conv": lambda _: _stream(torch.nn.Conv1d(2, 2, 3, stride=2, padding=2)),
    "stream-transposed-conv": lambda _: _stream(torch.nn.Conv1d(2, 2, 1), torch.nn.ConvTranspose1d(2, 2, 2)),
    "stream-pad-mode": lambda _: _stream(torch.nn.ReplicationPad1d((2, 0)), torch.nn.Conv1d(2, 2, 3)),
    "stream-pad-value": lambda _: _stream(torch.nn.ConstantPad1d((2, 0), 1.0), torch.nn.Conv1d(2, 2, 3)),
    "stream-fpad-mode": lambda _: dilated.streaming.EagerStream(_ReplicatePadded(), 1),
    "stream-pooling": lambda _: _stream(torch.nn.Conv1d(2, 2, 1), torch.nn.MaxPool1d(2)),
    "stream-global": lambda _: _stream(torch.nn.Conv1d(2, 2, 1), torch.nn.Flatten()),
    "stream-sees-future": lambda _: dilated.streaming.EagerStream(
        PytorchTCN(3, [4], kernel_size=3, causal=False).eval(), 1
    ),
    "stream-untrimmed": lambda _: _stream(torch.nn.Conv1d(2, 2, 2, padding=1)),
    "stream-forward-mixing": lambda _: dilated.streaming.EagerStream(_Cumulative(), 1),
    "stream-double-pad": lambda _: _stream(
        torch.nn.ConstantPad1d((1, 0), 0.0), torch.nn.Conv1d(2, 2, 2, padding=1), _Trim()
    ),
    "stream-called-twice": lambda _: dilated.streaming.EagerStream(_Twice(), 1),
    "stream-train-mode": lambda _: dilated.streaming.EagerStream(
        torch.nn.Sequential(torch.nn.Conv1d(2, 2, 1), torch.nn.Dropout(0.5)).train(), 1
    ),
    "stream-needs-more-steps": lambda _: _stream(torch.nn.Conv1d(2, 2, 1), torch.nn.Conv1d(2, 2, 3)),
    "stream-long-mixing": lambda _: dilated.streaming.EagerStream(_LengthBranch(), 1),
    "stream-forward-fails": lambda _: dilated.streaming.EagerStream(_EightSteps(), 1, example=torch.zeros(1, 2, 8)),
    "fast-state-layout": lambda _: dilated.streaming.FastStream(
        torch.nn.Sequential(torch.nn.ConstantPad1d((2, 0), 0.0), torch.nn.Conv1d(2, 2, 3)), 1, verify=False
    ).state_dict(),
}
CASES.update(STREAM_CASES)
# -- end of the streaming block -------------------------------------------------------------------------------------

ROWS = documented_rows()


def test_every_documented_row_has_a_case_and_every_case_a_row():
    assert set(ROWS) == set(CASES)


@pytest.mark.parametrize("row", sorted(ROWS))
def test_documented_error(row, tmp_path):
    kind, message = ROWS[row]
    exception = {"ValueError": ValueError, "TypeError": TypeError}[kind]
    with pytest.raises(exception, match=re.escape(message)):
        CASES[row](tmp_path)


@pytest.mark.parametrize(
    "args,message",
    [
        (["summary", "missing.yaml"], ROWS["config-missing"][1]),
        (["summary", "example-dilated", "--input", "2,abc"], ROWS["config-input"][1]),
        (["summary", "tcn", "--input", "2"], ROWS["config-input-rank"][1]),
        (["design"], ROWS["design-no-field"][1]),
        (["export", "tcn", "-o", "step.txt"], ROWS["export-format"][1]),
    ],
)
def test_cli_prints_the_same_message_on_one_line(args, message):
    result = subprocess.run([sys.executable, "-m", "dilated.cli", *args], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("dilated: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
