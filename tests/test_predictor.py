"""From a trained run to live predictions: `dilated.load_run` and `dilated replay` against `dilated predict`, on
tiny runs trained on the bundled LOBSTER sample, on a CSV table and on a Parquet book; raw events into runs trained
on z-scores."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import dilated
from dilated.data import LOBSTER_EMPTY_ASK, LOBSTER_EMPTY_BID, Book, book_splits, bundled_lobster_sample, write_book
from dilated.live import PARITY, replay
from dilated.training import DATA_KINDS, DataSource
from dilated.training._evaluate import evaluate_run
from dilated.training._objective import LOB_CLASSES
from helpers import dilated_cli, prices_table, synthetic_book, untrained_run

TCN_LOBSTER = """\
model: tcn
options: {num_channels: [8, 8], kernel_size: 3}
data: {kind: lobster, horizon: 10, window: 20}
training: {lr: 0.003, batch_size: 32, max_epochs: 1, seed: 3}
trainer: {threads: 1}
"""
TRANSLOB_LOBSTER = """\
model: translob
options: {}
data: {kind: lobster, horizon: 10, window: 100, fractions: [0.6, 0.2, 0.2]}
training: {lr: 0.001, batch_size: 32, max_epochs: 1, seed: 0}
trainer: {threads: 1, limit_train_batches: 3}
"""
TCN_TABLE = """\
model: tcn
options: {num_channels: [8, 8], kernel_size: 3}
data: {kind: table, path: PRICES, target: price, features: [price, volume], window: 16, horizon: 1}
training: {lr: 0.003, batch_size: 32, max_epochs: 1, seed: 0}
trainer: {threads: 1}
"""
TCN_LONG_FIELD = TCN_LOBSTER.replace("[8, 8]", "[4, 4, 4, 4]")  # receptive field 61 > window 20


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs, each trained for one epoch by `dilated train`: TCN and TransLOB on LOBSTER, TCN on a table."""
    folder = tmp_path_factory.mktemp("runs")
    prices_table(folder / "prices.csv")
    for name, config in (
        ("tcn", TCN_LOBSTER),
        ("translob", TRANSLOB_LOBSTER),
        ("table", TCN_TABLE),
        ("long", TCN_LONG_FIELD),
    ):
        (folder / f"{name}.yaml").write_text(config.replace("PRICES", str(folder / "prices.csv")))
        result = dilated_cli("train", f"{name}.yaml", "--run-dir", name, "--no-progress", cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder


def read_csv(path: Path) -> list[dict]:
    with open(path) as rows:
        return list(csv.DictReader(rows))


@pytest.mark.slow
@pytest.mark.parametrize("name,engine", [("tcn", "stream"), ("translob", "window"), ("table", "stream")])
def test_replay_equals_dilated_predict_on_all_windows(runs, name, engine):
    replayed = dilated_cli("replay", name, "-o", f"{name}_replay.csv", "--check", "--no-progress", cwd=runs)
    assert replayed.returncode == 0, replayed.stderr
    assert f"through the {engine} engine" in replayed.stdout and "events/s, step latency p50" in replayed.stdout
    assert "against the offline prediction, largest difference" in replayed.stdout
    predicted = dilated_cli("predict", name, "--split", "all", "-o", f"{name}_predict.csv", "--no-progress", cwd=runs)
    assert predicted.returncode == 0, predicted.stderr
    stream_rows, offline_rows = read_csv(runs / f"{name}_replay.csv"), read_csv(runs / f"{name}_predict.csv")
    assert list(stream_rows[0]) == list(offline_rows[0])  # the same columns
    horizon = {"tcn": 10, "translob": 10, "table": 1}[name]  # the last windows' targets lie beyond the feed
    assert len(stream_rows) == len(offline_rows) + horizon
    by_sample = {row["sample"]: row for row in stream_rows}
    probabilities = [k for k in offline_rows[0] if k.startswith("p_")]
    for row in offline_rows:  # every sample of `dilated predict --split all`
        streamed = by_sample[row["sample"]]
        assert streamed["target"] == row["target"]
        if probabilities:
            assert max(abs(float(streamed[k]) - float(row[k])) for k in probabilities) <= PARITY
        else:
            assert float(streamed["prediction"]) == pytest.approx(float(row["prediction"]), rel=1e-5)
    assert all(row["target"] == "" for row in stream_rows[-horizon:])


@pytest.mark.slow
def test_raw_events_into_a_run_trained_on_z_scores(runs):
    predictor = dilated.load_run(runs / "tcn")
    assert predictor.window == 20 and predictor.receptive_field == 13 and predictor.task.class_names == LOB_CLASSES
    assert predictor.normalisation.mean[0] > 5e6  # the z-score of prices in dollars x 10000
    evaluation = evaluate_run(runs / "tcn", split="all", progress=False)  # the windows `dilated predict` sees
    message, orderbook = bundled_lobster_sample()
    raw = np.loadtxt(orderbook, delimiter=",")  # (events, 40): the orderbook rows as LOBSTER writes them
    live = predictor.stream(1)
    assert live.engine == "stream" and live.parity <= PARITY
    streamed = [out for row in raw if (out := live.step(row[None])) is not None]
    assert len(streamed) == len(raw) - 19 and streamed[0].steps.tolist() == [19]
    outputs = torch.cat([out.output for out in streamed])
    ends = torch.tensor(evaluation.ids) - 19  # labelled windows: all but the last 10 events' horizon
    assert len(ends) == 970
    assert float((outputs[ends] - evaluation.outputs.output).abs().max()) <= PARITY
    offline = predictor.predict((message, orderbook))
    assert float((outputs - offline.output).abs().max()) <= PARITY
    assert streamed[-1].labels[0] in LOB_CLASSES and float(streamed[-1].probabilities.sum()) == pytest.approx(1)
    z_scored = predictor.predict(predictor.normalisation(raw.T).numpy())  # z-scores fed as if raw: not the same
    assert float((z_scored.output - offline.output).abs().max()) > 0.01


@pytest.mark.slow
def test_empty_book_levels_are_filled_event_by_event_as_the_file_reader_fills_them(runs, tmp_path):
    message, orderbook = bundled_lobster_sample()
    raw = np.loadtxt(orderbook, delimiter=",")
    raw[100:400:3, 36] = LOBSTER_EMPTY_ASK  # the deepest ask level empty (price sentinel, size 0)
    raw[100:400:3, 37] = 0
    raw[200:220, 2::4] = LOBSTER_EMPTY_BID  # no bid at all for 20 events: the previous book's bids hold
    raw[200:220, 3::4] = 0
    empty = tmp_path / Path(orderbook).name
    np.savetxt(empty, raw, delimiter=",", fmt="%d")
    predictor = dilated.load_run(runs / "tcn")
    offline = predictor.predict((message, empty))
    live = predictor.stream(1)
    outputs = torch.cat([out.output for row in raw if (out := live.step(row[None])) is not None])
    assert float((outputs - offline.output).abs().max()) <= PARITY
    assert float((offline.output - predictor.predict((message, orderbook)).output).abs().max()) > 1e-4


@pytest.mark.slow
def test_by_streams_each_instrument_of_a_table_as_one_of_a_batch_of_streams(runs):
    replayed = dilated_cli(
        "replay",
        "table",
        "--input",
        "prices.csv",
        "--by",
        "symbol",
        "-o",
        "by.csv",
        "--check",
        "--no-progress",
        cwd=runs,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "in 2 streams by symbol" in replayed.stdout
    rows = read_csv(runs / "by.csv")
    assert list(rows[0]) == ["symbol", "sample", "target", "prediction"]
    predictor = dilated.load_run(runs / "table")
    frame = pd.read_csv(runs / "prices.csv")
    for symbol in ("A", "B"):
        group = frame[frame.symbol == symbol]
        offline = predictor.predict(group)
        mine = [row for row in rows if row["symbol"] == symbol]
        assert len(mine) == len(group) - 15 == len(offline)
        assert [int(row["sample"]) for row in mine] == group.index[15:].tolist()  # rows of the file
        forecasts = offline.forecasts.tolist()
        assert all(float(row["prediction"]) == pytest.approx(f, rel=1e-5) for row, f in zip(mine, forecasts))
        assert float(mine[0]["target"]) == pytest.approx(group.price.iloc[16], rel=1e-6)  # one row ahead
    assert abs(np.mean([float(r["prediction"]) for r in rows]) - frame.price.mean()) < 20  # in the data's units


@pytest.mark.slow
def test_a_model_whose_receptive_field_exceeds_its_window_recomputes_each_window(runs):
    predictor = dilated.load_run(runs / "long")
    assert predictor.receptive_field == 61 > predictor.window
    feed = predictor.read()
    result = replay(predictor, check=True, progress=False)
    assert result.engine == "recompute" and result.compared == len(feed) - 19 and result.difference <= PARITY


def test_window_stream_is_model_of_every_window_of_a_random_stream():
    model = dilated.build_model("translob").eval()  # the paper's window of 100 events, 3 streams
    x = torch.randn(3, 40, 160)
    s = dilated.WindowStream(model, 3)
    outs = [s.step(x[..., t]) for t in range(160)]
    with torch.inference_mode():
        expected = torch.stack([model(x[..., t - 99 : t + 1]) for t in range(99, 160)])
    assert all(out is None for out in outs[:99])
    assert float((torch.stack(outs[99:]) - expected).abs().max()) <= PARITY


def test_a_run_folder_without_checkpoints_gives_one_line_on_the_command_line(tmp_path):
    untrained_run(tmp_path / "run", {"kind": "lobster", "window": 20}, checkpoint=False)
    result = dilated_cli("replay", "run", "-o", "out.csv", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "run: no usable checkpoint (none written yet, or all damaged)" in result.stderr


@pytest.mark.parametrize("kind", list(DATA_KINDS))
def test_every_data_kind_serves_its_whole_live_half_or_none_of_it(kind):
    """A kind overrides all of read_events, prepare and event_features, or none (and then refuses them)."""
    cls = DATA_KINDS[kind]
    overridden = {getattr(cls, m) is not getattr(DataSource, m) for m in ("read_events", "prepare", "event_features")}
    assert len(overridden) == 1
    assert overridden.pop() == (kind in ("lobster", "table", "book"))


def test_a_run_on_data_without_raw_events_refuses_files_arrays_and_live_events(tmp_path):
    predictor = dilated.load_run(untrained_run(tmp_path / "run", {"kind": "adding", "seq_len": 20}))
    assert predictor.task.kind == "regression" and predictor.channels == 2  # the model itself loads
    refusal = "data kind 'adding' has no live reading: raw events are read for lobster, table, book runs"
    with pytest.raises(ValueError, match=refusal):
        predictor.predict("adding.csv")
    with pytest.raises(ValueError, match=refusal):
        predictor.predict(np.zeros((2, 30)))  # no catch-all passing the rows through unprepared
    with pytest.raises(ValueError, match=refusal):
        predictor.stream(1).step(np.zeros((1, 2)))


def test_a_yaml_data_section_is_read_with_the_run_s_label_threshold(tmp_path):
    """``--data`` YAML: the section's files, labelled with the alpha the run stored (metrics.json), not the YAML's."""
    predictor = dilated.load_run(untrained_run(tmp_path / "run", {"kind": "lobster", "window": 20}))
    message, orderbook = bundled_lobster_sample()
    spec = tmp_path / "data.yaml"
    spec.write_text(f"data: {{message: {message}, orderbook: {orderbook}, alpha: 0.5}}\n")
    own, other = predictor.read(), predictor.read(spec)
    assert torch.equal(own.raw, other.raw) and torch.equal(own.targets, other.targets)  # alpha 1e-4, not 0.5
    assert 0 < int((own.targets == 1).sum()) < len(own)


def test_stream_engines_are_chosen_by_what_the_model_does(tmp_path):
    lobster = {"kind": "lobster", "window": 100}
    translob = dilated.load_run(untrained_run(tmp_path / "translob", lobster, model="translob", options={}))
    deeplob = dilated.load_run(untrained_run(tmp_path / "deeplob", lobster, model="deeplob", options={}))
    assert translob.stream(2).engine == "window" and deeplob.stream(2).engine == "recompute"
    rng = np.random.default_rng(1)
    events = rng.normal(size=(2, 110, 40))
    for predictor in (translob, deeplob):
        live = predictor.stream(2)
        outs = [live.step(events[:, t]) for t in range(110)]
        for feed in range(2):
            offline = predictor.predict(events[feed].T)
            streamed = torch.stack([out.output[feed] for out in outs[99:]])
            assert float((streamed - offline.output).abs().max()) <= PARITY


# -- book runs (data.kind: book): Parquet books of `dilated data convert` read as training reads them ---------------
TCN_BOOK = """\
model: tcn
options: {num_channels: [8, 8], kernel_size: 3}
data: {kind: book, path: book.parquet, levels: 2, window: 16, horizon: 5}
training: {lr: 0.003, batch_size: 64, max_epochs: 1, seed: 0}
trainer: {threads: 1}
"""


def random_walk_book(seed: int = 0) -> Book:
    """:func:`synthetic_book` of 1500 events, 3 levels a side (the run reads 2), its second ask level empty at
    every 7th event (NaN, as `dilated data convert` writes it): training and live must fill it alike."""
    book = synthetic_book(1500, seed)
    book.values[::7, 4:6] = np.nan
    return book


@pytest.fixture(scope="module")
def book_run(tmp_path_factory):
    """A TCN trained for one epoch by `dilated train` on a 1500-event book (folder ``run`` next to ``book.parquet``)."""
    folder = tmp_path_factory.mktemp("book")
    write_book(random_walk_book(), folder / "book.parquet")
    (folder / "book.yaml").write_text(TCN_BOOK.replace("book.parquet", str(folder / "book.parquet")))
    result = dilated_cli("train", "book.yaml", "--run-dir", "run", "--no-progress", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def test_a_book_run_predicts_what_the_model_gives_on_the_windows_book_splits_builds(book_run):
    predictor = dilated.load_run(book_run / "run")
    assert (predictor.window, predictor.channels) == (16, 8) and predictor.task.class_names == LOB_CLASSES
    assert predictor.normalisation.mean[0] == pytest.approx(103, abs=10)  # best ask in currency units, not z-scores
    offline = predictor.predict(book_run / "book.parquet")
    assert len(offline) == 1500 - 15 and offline.steps[0] == 15
    splits = book_splits(book_run / "book.parquet", levels=2, window=16, horizon=5)
    for part in (splits.test, splits.train):
        windows = torch.stack([part[i][0] for i in range(len(part))])  # (n, 8, 16): training's z-scored windows
        with torch.inference_mode():
            expected = predictor.model(windows)
        at = part.ends - 15
        assert float((offline.output[at] - expected).abs().max()) <= PARITY
        assert torch.equal(offline.targets[at], part.targets[part.ends]) and bool(offline.labelled[at].all())
    evaluation = evaluate_run(book_run / "run", split="test", progress=False)  # `dilated evaluate`'s test windows
    assert len(evaluation.ids) == len(splits.test) == 205
    at = torch.tensor(evaluation.ids) - 15
    assert float((offline.output[at] - evaluation.outputs.output).abs().max()) <= PARITY
    feed = predictor.read(book_run / "book.parquet")
    assert bool(torch.isfinite(feed.raw).all()) and torch.equal(feed.raw[4, ::7], feed.raw[0, ::7])  # filled
    assert int((~feed.labelled).sum()) == 5  # the last horizon's events have no label


def test_a_live_stream_fed_book_rows_one_at_a_time_equals_predict(book_run):
    predictor = dilated.load_run(book_run / "run")
    forward = random_walk_book().values[:, :8]  # (events, 8): the run's 2 levels of each row, NaN where empty
    backward = random_walk_book(seed=1).values[:, :8]
    live = predictor.stream(2)
    assert live.engine == "stream" and live.parity <= PARITY
    outs = [live.step(np.stack([forward[t], backward[t]])) for t in range(len(forward))]
    assert all(out is None for out in outs[:15]) and outs[15] is not None and outs[15].steps.tolist() == [15, 15]
    streamed = torch.stack([out.output for out in outs[15:] if out is not None], dim=1)  # (2, windows, 3)
    for feed, rows in enumerate((forward, backward)):
        offline = predictor.predict(rows.T)  # raw events as an array: prepared as a stream prepares them
        assert float((streamed[feed] - offline.output).abs().max()) <= PARITY
    from_file = predictor.predict(book_run / "book.parquet")
    assert float((streamed[0] - from_file.output).abs().max()) <= PARITY
    assert outs[-1] is not None and outs[-1].labels[0] in LOB_CLASSES


def test_windows_holding_events_training_never_served_are_left_out_or_withheld(book_run, tmp_path):
    """A crossed row (300) and a stretch without asks (400-409) end no window that training served: predict leaves
    out the 16 + 25 windows that hold one, a live stream withholds their predictions (NaN, not valid) and goes on,
    and every other window gives what it gives in the clean book."""
    predictor = dilated.load_run(book_run / "run")
    clean = random_walk_book()
    book = random_walk_book()
    book.values[300, 2] = book.values[300, 0] + 0.5  # crossed: best bid above best ask
    book.values[400:410, 0:2] = np.nan  # no ask at all
    offline = predictor.predict(write_book(book, tmp_path / "crossed.parquet"))
    reference = predictor.predict(clean)

    def holds(end: int) -> bool:  # whether the window ending at `end` holds row 300 or one of rows 400-409
        return end - 15 <= 300 <= end or (end - 15 <= 409 and end >= 400)

    kept = [end for end in range(15, 1500) if not holds(end)]
    assert offline.steps.tolist() == kept and len(kept) == 1485 - 16 - 25
    assert float((offline.output - reference.output[torch.tensor(kept) - 15]).abs().max()) <= PARITY
    live = predictor.stream(1)
    outs = [live.step(book.values[t : t + 1, :8]) for t in range(500)]
    valid = [out.valid is None or bool(out.valid[0]) for out in outs[15:] if out is not None]
    assert [end for end, ok in zip(range(15, 500), valid) if not ok] == [e for e in range(15, 500) if holds(e)]
    withheld, clean_again = outs[300], outs[499]
    assert withheld is not None and bool(withheld.output.isnan().all()) and withheld.labels == [None]
    assert clean_again is not None and clean_again.valid is None  # no window holds an unusable event any more
    streamed = torch.cat([out.output for out in outs[15:] if out is not None and (out.valid is None or out.valid[0])])
    assert float((streamed - offline.output[: len(streamed)]).abs().max()) <= PARITY
    replayed = replay(predictor, tmp_path / "crossed.parquet", check=True, progress=False)
    assert replayed.withheld == 41 and replayed.passed and replayed.streamed[None].steps.tolist() == kept
    thin = Book(book.ts, book.values[:, :4], "one level")
    with pytest.raises(ValueError, match="the book holds 1 levels per side; the run was trained on 2"):
        predictor.predict(thin)


REPRESENTED = {  # book runs on the other representations, with the other label rules and units
    "stationary": {
        "representation": "stationary",
        "tick_size": 0.5,
        "smoothing": "tlob",
        "smoothing_window": 3,
        "threshold": 1.0,
        "threshold_unit": "ticks",
    },
    "order_flow": {"representation": "order_flow", "threshold_unit": "spread"},
}


@pytest.fixture(scope="module", params=sorted(REPRESENTED))
def represented_run(request, tmp_path_factory):
    """A TCN trained for one epoch on the book of ``book_run`` in another representation (folder ``run``)."""
    folder = tmp_path_factory.mktemp(request.param)
    write_book(random_walk_book(), folder / "book.parquet")
    config = TCN_BOOK.replace("book.parquet", str(folder / "book.parquet")).replace(
        "horizon: 5}", "horizon: 5, " + ", ".join(f"{k}: {v}" for k, v in REPRESENTED[request.param].items()) + "}"
    )
    (folder / "book.yaml").write_text(config)
    result = dilated_cli("train", "book.yaml", "--run-dir", "run", "--no-progress", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "logistic regression on imbalance and mid changes" in result.stdout  # beside the majority class
    return folder, request.param


@pytest.mark.slow
def test_book_runs_in_every_representation_predict_stream_and_replay_as_training_prepared(represented_run):
    """Predictions on the book equal the model on the windows `book_splits` builds with the run's options and
    stored scaling; a live stream fed raw rows one at a time, and `replay`, equal them."""
    folder, representation = represented_run
    predictor = dilated.load_run(folder / "run")
    info = predictor._info
    assert info["representation"] == representation and info["normalisation"]["clip"] == 5.0
    assert (predictor.channels, predictor.event_values) == ({"stationary": 10, "order_flow": 4}[representation], 8)
    offline = predictor.predict(folder / "book.parquet")
    assert len(offline) == 1500 - 15
    splits = book_splits(folder / "book.parquet", levels=2, window=16, horizon=5, **REPRESENTED[representation])
    assert splits.info["scaling"] == info["normalisation"] and splits.info["threshold"] == info["threshold"]
    for part in (splits.test, splits.train):
        windows = torch.stack([part[i][0] for i in range(len(part))])  # training's scaled windows
        with torch.inference_mode():
            expected = predictor.model(windows)
        at = part.ends - 15
        assert float((offline.output[at] - expected).abs().max()) <= PARITY
        assert torch.equal(offline.targets[at], part.targets[part.ends])
    evaluation = evaluate_run(folder / "run", split="test", progress=False)  # `dilated evaluate`'s report
    assert set(evaluation.result["references"]) == {"logistic", "logistic_flow"}
    live = predictor.stream(1)
    rows = random_walk_book().values[:300, :8]  # the first 300 events: the previous event carried from step to step
    outs = [live.step(rows[t : t + 1]) for t in range(len(rows))]
    streamed = torch.cat([out.output for out in outs[15:] if out is not None])
    assert float((streamed - offline.output[: 300 - 15]).abs().max()) <= PARITY
    short = write_book(
        Book(*(a[:300] for a in (random_walk_book().ts, random_walk_book().values))), folder / "short.parquet"
    )
    replayed = replay(predictor, short, check=True, progress=False)
    assert replayed.passed and replayed.compared == 300 - 15


@pytest.mark.slow
def test_dilated_replay_on_a_book_equals_dilated_predict(book_run):
    replayed = dilated_cli("replay", "run", "--input", "book.parquet", "-o", "replay.csv", "--check", cwd=book_run)
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1,500 events through the stream engine" in replayed.stdout and ": equal" in replayed.stdout
    predicted = dilated_cli("predict", "run", "--split", "all", "-o", "predict.csv", "--no-progress", cwd=book_run)
    assert predicted.returncode == 0, predicted.stderr
    stream_rows, offline_rows = read_csv(book_run / "replay.csv"), read_csv(book_run / "predict.csv")
    assert list(stream_rows[0]) == ["sample", "target", "prediction", "p_up", "p_stationary", "p_down"]
    assert len(stream_rows) == 1485 and len(offline_rows) == 1500 - 15 - 5  # windows with a label
    by_sample = {row["sample"]: row for row in stream_rows}
    for row in offline_rows:
        streamed = by_sample[row["sample"]]
        assert streamed["target"] == row["target"]
        assert max(abs(float(streamed[k]) - float(row[k])) for k in ("p_up", "p_stationary", "p_down")) <= PARITY
