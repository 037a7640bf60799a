"""Book inputs (raw / stationary / order flow, robust scaling), label rules and units, the fitted baselines beside the
majority class: values checked by hand on tiny books and against whole-sequence references."""

import json
from pathlib import Path

import numpy as np
import pytest

from dilated.data import (
    LabelRule,
    RobustScale,
    book_inputs,
    book_splits,
    dataset_splits,
    fill_book_levels,
    input_channels,
    label_balance,
    smoothed_change,
)
from dilated.training._lob_baseline import lob_references
from dilated.training._metrics import format_metrics
from helpers import book_dataset, dilated_cli, synthetic_book

# two levels a side: ask price, ask size, bid price, bid size per level
EVENTS = np.array(
    [
        [100.5, 3, 99.5, 4, 101.5, 5, 98.5, 6],
        [100.5, 1, 99.5, 4, 101.5, 5, 98.5, 6],  # best ask size 3 -> 1
        [100.5, 1, 100.0, 2, 101.5, 5, 99.5, 4],  # bid improves to 100.0 (size 2)
        [101.0, 7, 100.0, 2, 101.5, 5, 99.5, 4],  # ask retreats to 101.0 (size 7)
    ]
)


def test_stationary_inputs_are_ticks_from_the_mid_log_sizes_mid_change_and_spread() -> None:
    inputs = book_inputs(EVENTS, "stationary", 0.5)
    assert inputs.shape == (4, input_channels("stationary", 2)) == (4, 10)
    np.testing.assert_allclose(inputs[0, :4], [1.0, np.log1p(3), -1.0, np.log1p(4)])  # mid 100, 1 tick either side
    np.testing.assert_allclose(inputs[0, 4:8], [3.0, np.log1p(5), -3.0, np.log1p(6)])
    np.testing.assert_allclose(inputs[:, 8], [0.0, 0.0, 0.5, 0.5])  # mid change in ticks; the first event's is 0
    np.testing.assert_allclose(inputs[:, 9], [2.0, 2.0, 1.0, 2.0])  # spread in ticks
    levels = book_inputs(EVENTS, "stationary_levels", 0.5)  # the level channels alone, for DeepLOB's layout
    assert levels.shape == (4, input_channels("stationary_levels", 2)) == (4, 8)
    np.testing.assert_array_equal(levels, inputs[:, :8])


def test_order_flow_is_cont_kukanov_stoikov_per_level() -> None:
    flow = book_inputs(EVENTS, "order_flow", 0.5)
    assert flow.shape == (4, input_channels("order_flow", 2)) == (4, 4)
    # event 1: ask size 3 -> 1 at the same price: aOF = -2, e = +2; event 2: bid up to 100.0 with 2: bOF = +2,
    # level 2's bid 98.5 -> 99.5 (higher): bOF = 4; event 3: ask up to 101.0: aOF = +1 (the old size), e = -1
    np.testing.assert_allclose(flow[:, 0], [0.0, 2.0, 2.0, -1.0])
    np.testing.assert_allclose(flow[:, 1], [0.0, 0.0, 4.0, 0.0])


def test_inputs_streamed_one_event_at_a_time_equal_the_whole_book() -> None:
    rows = fill_book_levels(synthetic_book(200).values)
    for representation in ("stationary", "stationary_levels", "order_flow"):
        whole = book_inputs(rows, representation, 0.5)
        previous, streamed = None, []
        for row in rows:
            streamed.append(book_inputs(row[None, None, :], representation, 0.5, previous)[0, 0])
            previous = row[None, :]
        np.testing.assert_array_equal(np.stack(streamed), whole)


def test_robust_scale_clips_and_falls_back_where_the_iqr_is_zero() -> None:
    rows = np.zeros((100, 2))
    rows[:, 0] = np.arange(100)
    rows[::10, 1] = 1.0  # mostly 0: IQR 0, the standard deviation instead
    scale = RobustScale.fit(rows)
    assert scale.center.tolist() == [49.5, 0.0] and scale.scale[1] == pytest.approx(0.3)
    scaled = scale(np.array([[1000.0, 1.0]]))
    assert scaled.dtype == np.float32 and scaled.tolist() == [[5.0, pytest.approx(1 / 0.3)]]
    again = RobustScale.from_info(json.loads(json.dumps(scale.to_info())))
    np.testing.assert_array_equal(again(rows), scale(rows))


def test_tlob_rule_separates_smoothing_from_horizon_and_past_is_tlob_with_the_horizon() -> None:
    mid = 100 + np.cumsum(np.random.default_rng(0).choice([-0.5, 0, 0.5], 300))
    np.testing.assert_array_equal(smoothed_change(mid, 20, "past"), smoothed_change(mid, 20, "tlob", 20))
    tlob = smoothed_change(mid, 20, "tlob", 3)
    t = 50
    expected = (mid[t + 18 : t + 21].mean() - mid[t - 2 : t + 1].mean()) / mid[t - 2 : t + 1].mean()
    assert tlob[t] == pytest.approx(expected) and np.isnan(tlob[1]) and np.isfinite(tlob[2]) and np.isnan(tlob[-20])


def test_thresholds_in_ticks_compare_exactly_and_spread_thresholds_are_the_mean_spread() -> None:
    mid = np.array([100.0, 100.25, 100.25, 100.25])  # one tick of 0.25 up, then flat
    ticks = smoothed_change(mid, 1, "future", tick=0.25)
    assert ticks[:3].tolist() == [1.0, 0.0, 0.0]
    rule = LabelRule(1, tick=0.25)
    assert rule.change(mid)[0] == 1.0
    book = synthetic_book(3000)
    splits = book_splits(book, levels=2, window=20, horizon=10, threshold_unit="spread")
    train = slice(0, 2100)
    assert splits.info["threshold"] == pytest.approx(float(np.mean(book.spread[train] / book.mid[train])))
    assert splits.info["threshold_unit"] == "fraction" and "TLOB" in splits.info["threshold_rule"]
    in_ticks = book_splits(book, levels=2, window=20, horizon=10, threshold=0.5, threshold_unit="ticks")
    assert in_ticks.info["tick_size"] == 1.0 and in_ticks.info["tick_source"] == "observed"


def test_book_splits_scale_stationary_and_order_flow_robustly_on_the_training_part() -> None:
    book = synthetic_book(3000)
    raw = book_splits(book, levels=2, window=20, horizon=10)
    assert raw.info["representation"] == "raw" and "zscore" in raw.info and raw.full.features.shape[0] == 8
    for representation, channels in (("stationary", 10), ("stationary_levels", 8), ("order_flow", 4)):
        splits = book_splits(book, levels=2, window=20, horizon=10, representation=representation, tick_size=0.5)
        assert splits.full.features.shape[0] == channels and splits.info["tick_source"] == "given"
        assert splits.info["scaling"]["clip"] == 5.0 and float(splits.full.features.abs().max()) <= 5.0
        np.testing.assert_array_equal(splits.labels, raw.labels)  # the labels do not depend on the inputs


def test_dataset_folders_take_the_tick_from_the_manifest(tmp_path: Path) -> None:
    root = book_dataset(tmp_path / "ds", "ESH4", days=3, events=600)
    (root / "_manifest.json").write_text(json.dumps({"version": 1, "instruments": {"ESH4": {"tick_size": 0.25}}}))
    splits = dataset_splits(root, levels=2, window=20, horizon=5, representation="order_flow")
    assert splits.info["tick_size"] == 0.25 and splits.info["tick_source"].startswith("manifest")
    assert splits.train[0][0].shape == (4, 20) and float(splits.train[0][0].abs().max()) <= 5.0


def test_the_logistic_baselines_are_fitted_on_a_bounded_training_sample_and_printed() -> None:
    splits = book_splits(synthetic_book(3000), levels=3, window=20, horizon=10)
    references = lob_references(splits, sample=500)
    assert set(references) == {"val", "test"} and set(references["test"]) == {"logistic", "logistic_flow"}
    logistic = references["test"]["logistic"]
    assert "fitted on 500 training windows" in logistic["name"] and -1 <= logistic["mcc"] <= 1
    text = format_metrics({"accuracy": 0.5, "samples": 10, "references": references["test"]})
    assert "logistic_flow" in text.splitlines()[1] and f"{logistic['accuracy']:.4f}" in text


def test_data_info_shows_each_rule_per_split(tmp_path: Path) -> None:
    from dilated.data import write_book

    path = write_book(synthetic_book(3000), tmp_path / "book.parquet")
    report = label_balance(synthetic_book(3000), [10], threshold_unit="spread")
    assert set(report[10]) == {"future", "past", "tlob"} and report[10]["tlob"]["labelled"]["val"] > 0
    result = dilated_cli("data", "info", str(path), "--horizons", "10", "--threshold-unit", "ticks", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "k=10" in line]
    assert len(lines) == 3 and all("train " in line and "val " in line and "test " in line for line in lines)


def test_a_dataset_folders_label_balance_is_that_of_its_days_with_the_training_days_threshold(tmp_path: Path) -> None:
    from dilated.data import LOB_CLASS_NAMES, book_labels, dataset_days, dataset_label_balance, read_day

    root = book_dataset(tmp_path / "books", "ABC", days=5, events=1500)
    balance = dataset_label_balance(root, horizons=[10, 20], smoothings=["future", "tlob"])
    assert list(balance) == [10, 20] and list(balance[10]) == ["future", "tlob"]
    _, days = dataset_days(root)
    parts = {"train": days[:3], "val": days[3:4], "test": days[4:]}  # 70/15/15 of five days
    for horizon, smoothing in [(10, "future"), (20, "tlob")]:
        row = balance[horizon][smoothing]
        splits = dataset_splits(root, levels=3, window=20, horizon=horizon, smoothing=smoothing)
        assert row["threshold"] == splits.info["threshold"] and row["rule"] == splits.info["threshold_rule"]
        for part, part_days in parts.items():
            labels = np.concatenate(
                [book_labels(read_day(d, 3), LabelRule(horizon, smoothing), row["threshold"]) for d in part_days]
            )
            counts = np.bincount(labels[labels >= 0], minlength=3)
            assert row["labelled"][part] == counts.sum() > 0
            assert [row[part][c] for c in LOB_CLASS_NAMES] == pytest.approx(counts / counts.sum())
    short = dataset_label_balance(book_dataset(tmp_path / "two", "ABC", days=2, events=500), horizons=[10])
    assert short[10]["future"] == {"threshold": None, "labelled": 0, "rule": "2 day(s); the splits need 3"}


def test_the_logistic_baselines_of_a_dataset_folder_are_fitted_on_a_sample_across_its_training_days(
    tmp_path: Path,
) -> None:
    import torch

    from dilated.data import LOB_CLASS_NAMES, dataset_days, read_day
    from dilated.training._lob_baseline import LobReferences, LogisticRegression, lob_features
    from dilated.training._metrics import classification_metrics

    root = book_dataset(tmp_path / "books", "ABC", days=5, events=1500)
    bounded, every = LobReferences(20, sample=300), LobReferences(20, sample=10**6)

    def both(*args) -> None:
        bounded.visit(*args)
        every.visit(*args)

    splits = dataset_splits(root, levels=3, window=20, horizon=10, visit=both)
    small, full = bounded.scores(), every.scores()
    assert set(full) == {"val", "test"} and set(full["test"]) == {"logistic", "logistic_flow"}
    assert "fitted on 300 training windows" in small["test"]["logistic"]["name"]
    assert f"fitted on {len(splits.train):,} training windows" in full["test"]["logistic"]["name"]
    # every training window of the three training days: one regression on their features concatenated
    days = dataset_days(root)[1]

    def windows(part, part_days):
        x = [lob_features(read_day(d, 3), w.ends.numpy(), 20) for d, w in zip(part_days, part.datasets, strict=True)]
        return np.concatenate(x), np.concatenate([w.targets[w.ends].numpy() for w in part.datasets])

    train_x, train_y = windows(splits.train, days[:3])
    model = LogisticRegression.fit(train_x, train_y, balanced=True)
    x, y = windows(splits.test, days[4:])
    expected = classification_metrics(model.logits(x), torch.from_numpy(y), 3, LOB_CLASS_NAMES)
    assert full["test"]["logistic"]["mcc"] == pytest.approx(expected["mcc"], abs=1e-9)
    assert full["test"]["logistic"]["accuracy"] == pytest.approx(expected["accuracy"])
