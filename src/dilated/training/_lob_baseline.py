"""Baselines for limit-order-book mid-price direction, scored like the models (:mod:`dilated.training`'s metrics).

- Majority class: always the most frequent training label (:func:`dilated.training._metrics.majority_baseline`).
- Logistic regression (multinomial, L2-penalised, fitted by L-BFGS in torch) on features of the same windows the
  models see, read at each window's last event e from the raw book (Cont, Kukanov & Stoikov 2014 on imbalance):
  order-book imbalance at cumulative depths j = 1 .. depth, (sum of bid sizes of levels 1..j - sum of ask sizes) /
  (their total); relative mid-price changes (p_e - p_{e-d}) / p_{e-d} over lags d = 1, 2, 5, 10, 20, 50, ... within
  the window; and the relative spread. Features are z-scored with training statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dilated.data import LOB_CLASS_NAMES, Book, BookSplits, WindowDataset, book_inputs, fill_book_levels
from dilated.data._book_features import strided_sample
from dilated.training._metrics import classification_metrics, majority_baseline, scalar_metrics
from dilated.training._objective import balanced_class_weights

LAGS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
REFERENCE_SAMPLE = 20_000


def lob_features(book: Book, ends: np.ndarray, window: int, depth: int = 10) -> np.ndarray:
    """``(samples, depth + lags + 1)`` float64 baseline features of the windows ending at ``ends`` (module notes)."""
    depth = min(depth, book.levels)
    ask = np.nan_to_num(np.column_stack([book.column("ask_size", i) for i in range(1, depth + 1)])[ends])
    bid = np.nan_to_num(np.column_stack([book.column("bid_size", i) for i in range(1, depth + 1)])[ends])
    ask_depth, bid_depth = np.cumsum(ask, axis=1), np.cumsum(bid, axis=1)
    total = ask_depth + bid_depth
    imbalance = np.divide(bid_depth - ask_depth, total, out=np.zeros_like(total), where=total > 0)
    mid = book.mid
    lags = [lag for lag in LAGS if lag < window]
    changes = np.column_stack([(mid[ends] - mid[ends - lag]) / mid[ends - lag] for lag in lags])
    spread = (book.spread[ends] / mid[ends])[:, None]
    return np.concatenate([imbalance, changes, spread], axis=1)


def flow_features(book: Book, ends: np.ndarray, window: int, tick: float) -> np.ndarray:
    """``(samples, levels x lags)`` float64: each level's order-flow imbalance summed over the last d events of
    the windows ending at ``ends``, for the lags d < ``window`` (module notes)."""
    flow = book_inputs(fill_book_levels(book.values), "order_flow", tick)[:, : book.levels]  # (events, levels)
    total = np.concatenate([np.zeros((1, book.levels)), np.cumsum(flow, axis=0)])  # total[e] = flow[:e].sum()
    lags = [lag for lag in LAGS if lag < window]
    return np.concatenate([total[ends + 1] - total[ends + 1 - lag] for lag in lags], axis=1)


@dataclass
class LogisticRegression:
    """Multinomial logistic regression on z-scored features: ``weight (features, classes)``, ``bias (classes,)``."""

    mean: np.ndarray
    std: np.ndarray
    weight: torch.Tensor
    bias: torch.Tensor

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        classes: int = 3,
        l2: float = 1e-4,
        iterations: int = 200,
        balanced: bool = False,
    ) -> LogisticRegression:
        """Minimise mean cross-entropy + ``l2 * |weight|^2`` with L-BFGS (deterministic on CPU); ``balanced``
        weights the classes as training with ``class_weights: balanced`` does."""
        mean, std = features.mean(axis=0), features.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        x = torch.from_numpy((features - mean) / std)
        y = torch.from_numpy(labels).long()
        class_weights = balanced_class_weights(torch.bincount(y, minlength=classes)).double() if balanced else None
        weight = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = (
                torch.nn.functional.cross_entropy(x @ weight + bias, y, weight=class_weights) + l2 * (weight**2).sum()
            )
            loss.backward()
            return loss

        optimizer.step(closure)
        return cls(mean, std, weight.detach(), bias.detach())

    def logits(self, features: np.ndarray) -> torch.Tensor:
        """``(samples, classes)``."""
        return torch.from_numpy((features - self.mean) / self.std) @ self.weight + self.bias


def _labels(part: WindowDataset) -> np.ndarray:
    return part.targets[part.ends].numpy()


def lob_baselines(
    splits: BookSplits, depth: int = 10, l2: float = 1e-4, parts: Sequence[str] = ("test",), balanced: bool = False
) -> dict[str, Any]:
    """Majority-class and logistic-regression scores on ``parts`` of a book's splits (``balanced``: class-weighted
    logistic regression, see :meth:`LogisticRegression.fit`).

    Returns: ``{"majority": {part: metrics}, "logistic": {part: metrics}}``, metrics as
    ``classification_metrics`` returns them (with the confusion matrix).
    """
    window = splits.full.window
    train_x = lob_features(splits.book, splits.train.ends.numpy(), window, depth)
    model = LogisticRegression.fit(train_x, _labels(splits.train), len(LOB_CLASS_NAMES), l2, balanced=balanced)
    train_counts = np.bincount(_labels(splits.train), minlength=3).tolist()
    result: dict[str, Any] = {"majority": {}, "logistic": {}}
    for name in parts:
        part = getattr(splits, name)
        labels = _labels(part)
        logits = model.logits(lob_features(splits.book, part.ends.numpy(), window, depth))
        result["logistic"][name] = classification_metrics(logits, torch.from_numpy(labels), 3, LOB_CLASS_NAMES)
        counts = np.bincount(labels, minlength=3).tolist()
        result["majority"][name] = majority_baseline(train_counts, counts, LOB_CLASS_NAMES)
    return result


def lob_references(
    splits: BookSplits, parts: Sequence[str] = ("val", "test"), sample: int = REFERENCE_SAMPLE
) -> dict[str, dict[str, dict[str, Any]]]:
    """The class-weighted logistic regressions on imbalance and mid changes (``logistic``) and on order flow
    (``logistic_flow``, where the book has a tick size), fitted on at most ``sample`` training windows, scored on
    ``parts``: ``{part: {rule: {"name": ..., metric: value}}}`` (module notes)."""
    window, book = splits.full.window, splits.book
    train_ends = strided_sample(splits.train.ends.numpy(), sample)
    rules = {"logistic": ("logistic regression on imbalance and mid changes", lambda e: lob_features(book, e, window))}
    tick = splits.info.get("tick_size")
    if tick:
        rules["logistic_flow"] = ("logistic regression on order flow", lambda e: flow_features(book, e, window, tick))
    labels = splits.train.targets.numpy()
    result: dict[str, dict[str, dict[str, Any]]] = {part: {} for part in parts}
    for rule, (name, features) in rules.items():
        model = LogisticRegression.fit(features(train_ends), labels[train_ends], len(LOB_CLASS_NAMES), balanced=True)
        for part in parts:
            ends = getattr(splits, part).ends.numpy()
            scores = classification_metrics(
                model.logits(features(ends)), torch.from_numpy(labels[ends]), 3, LOB_CLASS_NAMES
            )
            result[part][rule] = {
                "name": f"{name}, fitted on {len(train_ends):,} training windows",
                **scalar_metrics(scores),
            }
    return result
