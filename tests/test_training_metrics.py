"""Metrics against hand computation, output/target alignment, class weights, resumable data order."""

from itertools import chain

import pytest
import torch

from dilated.metrics import (
    TaskMetrics,
    classification_metrics,
    format_metrics,
    majority_baseline,
    regression_metrics,
)
from dilated.tasks import LOB_CLASSES, Task, align_output, balanced_class_weights, task_loss
from dilated.training import ResumableSampler

# rows: true class (up, stationary, down), columns: predicted
CONFUSION = [[5, 2, 1],
             [1, 6, 3],
             [0, 2, 4]]


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
    assert result["accuracy"] == pytest.approx(15 / 24)
    assert result["precision"] == pytest.approx(sum(precision) / 3)  # 0.644444
    assert result["recall"] == pytest.approx(sum(recall) / 3)  # 0.630556
    assert result["f1"] == pytest.approx(sum(f1) / 3)  # 0.628571
    for name, p, r, f, n in zip(LOB_CLASSES, precision, recall, f1, (8, 10, 6), strict=True):
        row = result["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == (
            pytest.approx(p), pytest.approx(r), pytest.approx(f), n)


def test_logits_are_scored_by_their_argmax():
    predicted, target = _labels(CONFUSION, seed=1)
    logits = torch.nn.functional.one_hot(predicted, 3).float() * 3 - 1
    assert classification_metrics(logits, target, 3)["accuracy"] == pytest.approx(15 / 24)


def test_a_class_never_predicted_has_precision_zero_and_counts_in_the_macro_mean():
    matrix = [[3, 1, 0], [2, 2, 0], [1, 1, 0]]  # "down" is never predicted
    predicted, target = _labels(matrix)
    result = classification_metrics(predicted, target, 3, LOB_CLASSES)
    assert result["per_class"]["down"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert result["precision"] == pytest.approx((3 / 6 + 2 / 4 + 0) / 3)
    assert result["recall"] == pytest.approx((3 / 4 + 2 / 4 + 0) / 3)


def test_a_class_absent_from_targets_and_predictions_is_left_out_of_the_macro_mean():
    matrix = [[3, 1, 0], [1, 3, 0], [0, 0, 0]]
    predicted, target = _labels(matrix)
    result = classification_metrics(predicted, target, 3)
    assert result["f1"] == pytest.approx(0.75)  # mean over the two classes present, as scikit-learn


def test_the_majority_baseline_predicts_the_most_frequent_training_class():
    floor = majority_baseline([155, 194, 241], [49, 25, 17], LOB_CLASSES)
    assert floor["class"] == "down" and floor["accuracy"] == pytest.approx(17 / 91)
    assert floor["f1"] == pytest.approx(2 * 17 / (91 + 17) / 3)  # only "down" scores: 2 TP / (predicted + true)


def test_regression_metrics_match_a_hand_computation():
    result = regression_metrics(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.5, 2.0, 1.0]))
    assert result == {"mse": pytest.approx((0.25 + 0 + 9) / 3), "mae": pytest.approx(3.5 / 3), "samples": 3}


def test_streaming_metrics_equal_one_shot_metrics_and_regression_is_in_data_units():
    predicted, target = _labels(CONFUSION)
    logits = torch.nn.functional.one_hot(predicted, 3).float()
    stream = TaskMetrics(Task("classification", 3, LOB_CLASSES))
    for chunk in range(0, 24, 5):
        stream.update(logits[chunk:chunk + 5], target[chunk:chunk + 5])
    assert stream.compute() == classification_metrics(predicted, target, 3, LOB_CLASSES)
    task = Task("regression", target_mean=10.0, target_std=2.0)
    values = TaskMetrics(task)
    values.update(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 1.0]))  # z-scored: data units 10, 12 vs 11, 12
    assert values.compute() == {"mse": pytest.approx(0.5), "mae": pytest.approx(0.5), "samples": 2}
    assert "confusion matrix" in format_metrics(stream.compute())


@pytest.mark.parametrize("output_shape,target_shape,kind,aligned", [
    ((4, 3), (4,), "classification", (4, 3)),          # TransLOB, DeepLOB
    ((4, 3, 20), (4,), "classification", (4, 3)),      # per-step head, window label: the last step
    ((4, 10, 20), (4, 20), "per_step", (4, 10, 20)),   # copy memory
    ((4, 1), (4, 1), "regression", (4, 1)),            # adding problem
    ((4, 1, 32), (4,), "regression", (4,)),            # WaveNet regression: the last step
])
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
