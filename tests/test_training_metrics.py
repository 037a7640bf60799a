"""Metrics against hand computation, the metric table, trivial baselines, output/target alignment, class weights,
resumable data order."""

import math
from itertools import chain

import pandas as pd
import pytest
import torch

from dilated.training import _runs as runs
from dilated.training._baselines import MajorityClass, Persistence, TrainingMean, baseline_from_info
from dilated.training._config import TrainConfig
from dilated.training._datamodule import ResumableSampler
from dilated.training._datasets import build_splits
from dilated.training._evaluate import evaluate_outputs, run_model
from dilated.training._metric_table import METRICS, canonical_monitor, higher_is_better, metrics_for, monitors
from dilated.training._metrics import (
    TaskMetrics,
    classification_metrics,
    format_metrics,
    majority_baseline,
    regression_metrics,
)
from dilated.training._objective import LOB_CLASSES, Task, align_output, balanced_class_weights, task_loss

# rows: true class (up, stationary, down), columns: predicted
CONFUSION = [[5, 2, 1], [1, 6, 3], [0, 2, 4]]


def _labels(matrix, seed=0):
    pairs = [(i, j) for i, row in enumerate(matrix) for j, n in enumerate(row) for _ in range(n)]
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))
    target = torch.tensor([pairs[k][0] for k in order])
    predicted = torch.tensor([pairs[k][1] for k in order])
    return predicted, target


def test_classification_metrics_match_a_hand_computation():
    predicted, target = _labels(CONFUSION)
    result = classification_metrics(predicted, target, 3, LOB_CLASSES)
    # 24 samples; column sums (predicted) 6, 10, 8; row sums (true) 8, 10, 6
    precision = [5 / 6, 6 / 10, 4 / 8]
    recall = [5 / 8, 6 / 10, 4 / 6]
    f1 = [2 * 5 / (6 + 8), 2 * 6 / (10 + 10), 2 * 4 / (8 + 6)]  # 2 TP / (predicted + true)
    assert result["confusion_matrix"] == CONFUSION
    assert result["samples"] == 24
    support = [8 / 24, 10 / 24, 6 / 24]
    assert result["accuracy"] == pytest.approx(15 / 24)
    assert result["precision_macro"] == pytest.approx(sum(precision) / 3)  # 0.644444
    assert result["recall_macro"] == pytest.approx(sum(recall) / 3)  # 0.630556
    assert result["f1_macro"] == pytest.approx(sum(f1) / 3)  # 0.628571
    assert result["precision_weighted"] == pytest.approx(sum(w * p for w, p in zip(support, precision)))  # 0.652778
    assert result["recall_weighted"] == pytest.approx(15 / 24)  # weighted recall is accuracy
    assert result["f1_weighted"] == pytest.approx(sum(w * f for w, f in zip(support, f1)))  # 0.630952
    # multi-class MCC: (correct * n - sum_k predicted_k * true_k) / sqrt((n^2 - sum predicted^2)(n^2 - sum true^2))
    predicted_sums, true_sums = (6, 10, 8), (8, 10, 6)
    covariance = 15 * 24 - sum(p * t for p, t in zip(predicted_sums, true_sums))  # 360 - 196
    spread = (24**2 - sum(p * p for p in predicted_sums)) * (24**2 - sum(t * t for t in true_sums))
    mcc = covariance / math.sqrt(spread)
    assert result["mcc"] == pytest.approx(mcc) and result["mcc"] == pytest.approx(164 / 376)
    for name, p, r, f, n in zip(LOB_CLASSES, precision, recall, f1, (8, 10, 6), strict=True):
        row = result["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == (
            pytest.approx(p),
            pytest.approx(r),
            pytest.approx(f),
            n,
        )


def test_logits_are_scored_by_their_argmax():
    predicted, target = _labels(CONFUSION, seed=1)
    logits = torch.nn.functional.one_hot(predicted, 3).float() * 3 - 1
    assert classification_metrics(logits, target, 3)["accuracy"] == pytest.approx(15 / 24)


def test_a_class_never_predicted_has_precision_zero_and_counts_in_the_macro_mean():
    matrix = [[3, 1, 0], [2, 2, 0], [1, 1, 0]]  # "down" is never predicted
    predicted, target = _labels(matrix)
    result = classification_metrics(predicted, target, 3, LOB_CLASSES)
    assert result["per_class"]["down"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert result["precision_macro"] == pytest.approx((3 / 6 + 2 / 4 + 0) / 3)
    assert result["recall_macro"] == pytest.approx((3 / 4 + 2 / 4 + 0) / 3)
    assert result["precision_weighted"] == pytest.approx((4 * 3 / 6 + 4 * 2 / 4 + 0) / 10)


def test_a_class_absent_from_targets_and_predictions_is_left_out_of_the_macro_mean():
    matrix = [[3, 1, 0], [1, 3, 0], [0, 0, 0]]
    predicted, target = _labels(matrix)
    result = classification_metrics(predicted, target, 3)
    assert result["f1_macro"] == pytest.approx(0.75)  # mean over the two classes present, as scikit-learn


def test_the_majority_baseline_predicts_the_most_frequent_training_class():
    floor = majority_baseline([155, 194, 241], [49, 25, 17], LOB_CLASSES)
    assert floor["class"] == "down" and floor["accuracy"] == pytest.approx(17 / 91)
    assert floor["f1_macro"] == pytest.approx(2 * 17 / (91 + 17) / 3)  # only "down" scores: 2 TP / (predicted + true)
    assert floor["f1_weighted"] == pytest.approx(17 / 91 * 2 * 17 / (91 + 17))
    assert floor["precision_weighted"] == pytest.approx(17 / 91 * 17 / 91) and floor["mcc"] == 0.0  # a constant


def test_the_metric_table_is_the_one_list_of_names():
    names = [m.name for m in METRICS]
    assert names == [
        "loss",
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "mcc",
        "mse",
        "mae",
    ]
    assert monitors("regression") == ("val_loss", "val_mse", "val_mae")
    assert runs.HISTORY_COLUMNS == ("epoch", "step", "lr", "train_loss", *(f"val_{n}" for n in names), "seconds")
    result = classification_metrics(*_labels(CONFUSION), 3)
    assert [m.name for m in metrics_for("classification")[1:]] == [k for k in result if isinstance(result[k], float)]
    assert (higher_is_better("val_mcc"), higher_is_better("val_mae"), higher_is_better("loss")) == (True, False, False)
    assert canonical_monitor("val_f1") == "val_f1_macro"  # a run folder written before the weighted metrics
    assert (
        TrainConfig.from_dict(
            {"model": "tcn", "data": {"kind": "lobster"}, "training": {"monitor": "val_recall"}}
        ).training.monitor
        == "val_recall_macro"
    )
    rows = runs.test_csv({**result, "samples": 24}).splitlines()
    assert rows[4].startswith("macro,0.644") and rows[5].startswith("weighted,0.652")
    assert rows[6].startswith("accuracy,,,0.625") and rows[7].startswith("mcc,,,0.436")


def test_baselines_predict_from_the_window_or_the_training_split():
    x = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, -1.0]], [[4.0, 5.0, 6.0], [0.0, 0.0, 2.0]]])  # (2, 2, 3)
    assert Persistence(1, mean=10.0, std=2.0).predict(x, torch.zeros(2, 1)).tolist() == [[8.0], [14.0]]
    assert MajorityClass.from_counts([3, 7, 7], ("a", "b", "c")) == MajorityClass(1, "b")  # the first on a tie
    assert MajorityClass(1, "b").predict(x, torch.zeros(2, 5, dtype=torch.long)).tolist() == [[1] * 5] * 2
    assert TrainingMean(0.5).predict(x, torch.zeros(2)).tolist() == [0.5, 0.5]
    for rule in (Persistence(1, 10.0, 2.0), MajorityClass(1, "b"), TrainingMean(0.5)):
        assert baseline_from_info(rule.to_info()) == rule


def test_persistence_on_a_forecast_is_scored_with_exact_numbers(tmp_path):
    values = [0.0, 1.0, 3.0, 6.0, 10.0, 15.0, 21.0, 28.0, 36.0, 45.0, 55.0, 66.0]  # steps grow by 1, 2, 3, ...
    pd.DataFrame({"y": values}).to_csv(tmp_path / "series.csv", index=False)
    config = TrainConfig.from_dict(
        {
            "model": "tcn",
            "data": {
                "kind": "table",
                "path": str(tmp_path / "series.csv"),
                "target": "y",
                "window": 2,
                "horizon": 1,
                "fractions": [0.5, 0.25, 0.25],
            },
        }
    )
    splits = build_splits(config.data, progress=False)
    assert isinstance(splits.baseline, Persistence) and splits.info["baseline"]["rule"] == "persistence"
    assert splits.test.ends.tolist() == [10]  # the window of rows 9, 10 predicts row 11
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(1))
    outputs = run_model(model, splits.test, splits.task, progress=False, device="cpu", baseline=splits.baseline)
    result = evaluate_outputs(outputs, splits.task, splits.baseline)
    # persistence predicts the last value, 55, for the target 66: error 11
    assert result["baseline"]["mae"] == pytest.approx(11.0, rel=1e-6)
    assert result["baseline"]["mse"] == pytest.approx(121.0, rel=1e-6)
    assert result["baseline"]["name"] == "persistence: the window's last value of the target series"


def test_the_training_mean_is_the_baseline_of_a_regression_without_its_series_as_input(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})
    frame["y"] = 2 * frame["x"]
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = TrainConfig.from_dict(
        {
            "model": "tcn",
            "data": {
                "kind": "table",
                "path": str(tmp_path / "t.csv"),
                "target": "y",
                "features": ["x"],
                "window": 1,
                "horizon": 0,
                "fractions": [0.5, 0.25, 0.25],
            },
        }
    )
    splits = build_splits(config.data, progress=False)
    assert splits.baseline == TrainingMean(pytest.approx(5.0))  # training targets 2, 4, 6, 8
    x, y = splits.test[0]
    assert splits.baseline.predict(x[None], y[None]).item() == pytest.approx(5.0)


def test_regression_metrics_match_a_hand_computation():
    result = regression_metrics(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.5, 2.0, 1.0]))
    assert result == {"mse": pytest.approx((0.25 + 0 + 9) / 3), "mae": pytest.approx(3.5 / 3), "samples": 3}


def test_streaming_metrics_equal_one_shot_metrics_and_regression_is_in_data_units():
    predicted, target = _labels(CONFUSION)
    logits = torch.nn.functional.one_hot(predicted, 3).float()
    stream = TaskMetrics(Task("classification", 3, LOB_CLASSES))
    for chunk in range(0, 24, 5):
        stream.update(logits[chunk : chunk + 5], target[chunk : chunk + 5])
    assert stream.compute() == classification_metrics(predicted, target, 3, LOB_CLASSES)
    task = Task("regression", target_mean=10.0, target_std=2.0)
    values = TaskMetrics(task)
    values.update(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 1.0]))  # z-scored: data units 10, 12 vs 11, 12
    assert values.compute() == {"mse": pytest.approx(0.5), "mae": pytest.approx(0.5), "samples": 2}
    assert "confusion matrix" in format_metrics(stream.compute())


def test_the_report_shows_the_baseline_beside_the_model():
    result = {**classification_metrics(*_labels(CONFUSION), 3, LOB_CLASSES), "loss": 0.9}
    result["baseline"] = {"name": "always 'stationary'", **majority_baseline([1, 5, 2], [8, 10, 6])}
    lines = format_metrics(result, "test metrics").splitlines()
    assert lines[0] == "test metrics (24 samples)" and lines[1].split() == ["model", "baseline"]
    assert lines[2].split() == ["loss", "0.9000", "-"]
    assert lines[3].split() == ["accuracy", "0.6250", "0.4167"]  # the baseline's 10 of 24
    assert lines[10].split() == ["mcc", "0.4362", "0.0000"] and lines[11] == "  baseline: always 'stationary'"
    old = {"accuracy": 0.5, "f1": 0.4, "samples": 3, "baseline": {"name": "b", "accuracy": 0.3, "f1_macro": 0.2}}
    assert format_metrics(old).splitlines()[3].split() == ["f1", "0.4000", "0.2000"]  # an old run folder's keys


@pytest.mark.parametrize(
    "output_shape,target_shape,kind,aligned",
    [
        ((4, 3), (4,), "classification", (4, 3)),  # TransLOB, DeepLOB
        ((4, 3, 20), (4,), "classification", (4, 3)),  # per-step head, window label: the last step
        ((4, 10, 20), (4, 20), "per_step", (4, 10, 20)),  # copy memory
        ((4, 1), (4, 1), "regression", (4, 1)),  # adding problem
        ((4, 1, 32), (4,), "regression", (4,)),  # WaveNet regression: the last step
    ],
)
def test_outputs_are_aligned_with_targets(output_shape, target_shape, kind, aligned):
    classes = output_shape[1]
    task = Task("regression") if kind == "regression" else Task("classification", classes, per_step=kind == "per_step")
    target = torch.zeros(target_shape, dtype=torch.float32 if kind == "regression" else torch.long)
    output = align_output(torch.randn(output_shape), target, task)
    assert tuple(output.shape) == aligned
    assert task_loss(output, target, task).dim() == 0


def test_a_wrong_class_count_is_named():
    with pytest.raises(ValueError, match=r"expected \(4, 3\).*num_classes"):
        align_output(torch.randn(4, 5), torch.zeros(4, dtype=torch.long), Task("classification", 3))


def test_balanced_class_weights_follow_scikit_learn():
    weights = balanced_class_weights(torch.tensor([155, 194, 241]))
    assert weights.tolist() == pytest.approx([590 / (3 * 155), 590 / (3 * 194), 590 / (3 * 241)])
    assert balanced_class_weights(torch.tensor([4, 0]))[1] == 0


def test_data_order_depends_on_seed_and_epoch_only_and_resumes_mid_epoch():
    sampler = ResumableSampler(10, seed=5)
    sampler.set_epoch(2)
    epoch_two = list(sampler)
    assert sorted(epoch_two) == list(range(10))
    again = ResumableSampler(10, seed=5)
    again.set_epoch(2)
    assert list(again) == epoch_two
    again.set_epoch(3)
    assert list(again) != epoch_two
    resumed = ResumableSampler(10, seed=5)
    resumed.start(2, skip=4)
    assert len(resumed) == 10 and list(resumed) == epoch_two[4:]
    assert list(resumed) == epoch_two  # the skip applies to the resumed epoch only


def test_shards_cover_the_data_like_distributed_sampler():
    shards = [ResumableSampler(11, seed=1, rank=r, world_size=3) for r in range(3)]
    for shard in shards:
        shard.set_epoch(4)
    indices = [list(s) for s in shards]
    assert [len(i) for i in indices] == [4, 4, 4] and set(chain(*indices)) == set(range(11))
    reference = torch.utils.data.DistributedSampler(range(11), num_replicas=3, rank=1, seed=1)
    reference.set_epoch(4)
    assert indices[1] == list(reference)
    evaluation = [list(ResumableSampler(11, shuffle=False, rank=r, world_size=3, pad=False)) for r in range(3)]
    assert sorted(chain(*evaluation)) == list(range(11))
