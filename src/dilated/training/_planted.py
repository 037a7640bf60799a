"""The best score a model can reach on a planted-signal book (:func:`dilated.data.planted_book`).

The bound is the score of the best model fitted on the true signal itself: a class-balanced multinomial logistic
regression (:class:`~dilated.training._lob_baseline.LogisticRegression`) on the expected smoothed change
``s`` of each window's label and ``|s|`` (:meth:`~dilated.data.PlantedBook.expected_change`), fitted on the
training windows of the same splits the models train on (the project's labels, horizon and threshold) and scored
on the others. ``s`` is the whole of what the book says about the label's mean (module notes of
:mod:`dilated.data._planted`); given it, the label's spread is that of the unplanted moves, the same everywhere, so
thresholds on ``s`` (which the regression on ``s`` and ``|s|`` can draw: up above one, down below another) are the
Bayes rule's form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dilated.data import LOB_CLASS_NAMES, BookSplits, PlantedBook
from dilated.training._lob_baseline import LogisticRegression
from dilated.training._metrics import classification_metrics


def planted_bound(planted: PlantedBook, splits: BookSplits, parts: Sequence[str] = ("test",)) -> dict[str, Any]:
    """``{part: metrics}`` of the classifier on the true signal (module notes) on ``parts`` of ``splits``, which must
    be the splits of ``planted.book`` with the ``future`` label rule."""
    if splits.info["smoothing"] != "future" or splits.info["events"] != len(planted.book):
        raise ValueError("planted_bound needs the splits of the planted book itself, with smoothing 'future'")
    signal = planted.expected_change(int(splits.info["horizon"]))

    def features(ends: np.ndarray) -> np.ndarray:
        s = signal[ends]
        return np.column_stack([s, np.abs(s)])

    def labels(name: str) -> np.ndarray:
        part = getattr(splits, name)
        return splits.labels[part.ends.numpy()]

    model = LogisticRegression.fit(
        features(splits.train.ends.numpy()), labels("train"), len(LOB_CLASS_NAMES), balanced=True
    )
    return {
        name: classification_metrics(
            model.logits(features(getattr(splits, name).ends.numpy())),
            torch.from_numpy(labels(name)),
            len(LOB_CLASS_NAMES),
            LOB_CLASS_NAMES,
        )
        for name in parts
    }
