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
from dataclasses import dataclass, field
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


@dataclass
class LobReferences:
    """The class-weighted logistic regressions on imbalance and mid changes (``logistic``) and on order flow
    (``logistic_flow``, where the book has a tick size), gathered one book (or dataset day) at a time: every
    training part is visited before the parts scored (:func:`~dilated.data.dataset_splits` reads them in that
    order). A training book keeps at most ``sample`` windows (evenly spread) and the fit at most ``sample`` of all
    of them, so the cost does not grow with the data; the scored parts keep only logits and labels."""

    window: int
    sample: int = REFERENCE_SAMPLE
    _train: dict[str, list[np.ndarray]] = field(default_factory=dict)  # rule -> features per book
    _train_labels: list[np.ndarray] = field(default_factory=list)
    _models: dict[str, LogisticRegression] = field(default_factory=dict)
    _fitted_on: int = 0
    _scored: dict[str, dict[str, list[torch.Tensor]]] = field(default_factory=dict)  # part -> rule -> logits
    _labels: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def visit(self, part: str, book: Book, ends: np.ndarray, labels: np.ndarray, tick: float | None) -> None:
        """Take the windows of ``book`` ending at ``ends`` (labels: ``labels[ends]``) of ``part`` (``train``
        first)."""
        rules = {"logistic": lambda e: lob_features(book, e, self.window)}
        if tick:
            rules["logistic_flow"] = lambda e: flow_features(book, e, self.window, tick)
        if part == "train":
            if self._models:
                raise RuntimeError("LobReferences: a training part visited after a scored one")
            chosen = strided_sample(ends, self.sample)
            for rule, features in rules.items():
                self._train.setdefault(rule, []).append(features(chosen))
            self._train_labels.append(labels[chosen])
            return
        if not self._models:
            self._fit()
        for rule, model in self._models.items():
            self._scored.setdefault(part, {}).setdefault(rule, []).append(model.logits(rules[rule](ends)))
        self._labels.setdefault(part, []).append(labels[ends])

    def _fit(self) -> None:
        labels = np.concatenate(self._train_labels)
        kept = strided_sample(np.arange(len(labels)), self.sample)
        self._fitted_on = len(kept)
        for rule, features in self._train.items():
            x = np.concatenate(features)[kept]
            self._models[rule] = LogisticRegression.fit(x, labels[kept], len(LOB_CLASS_NAMES), balanced=True)

    def scores(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{part: {rule: {"name": ..., metric: value}}}`` of the parts visited after training."""
        result: dict[str, dict[str, dict[str, Any]]] = {}
        for part, rules in self._scored.items():
            labels = torch.from_numpy(np.concatenate(self._labels[part]))
            result[part] = {
                rule: {
                    "name": f"{_NAMES[rule]}, fitted on {self._fitted_on:,} training windows",
                    **scalar_metrics(classification_metrics(torch.cat(logits), labels, 3, LOB_CLASS_NAMES)),
                }
                for rule, logits in rules.items()
            }
        return result


_NAMES = {
    "logistic": "logistic regression on imbalance and mid changes",
    "logistic_flow": "logistic regression on order flow",
}


def lob_references(
    splits: BookSplits, parts: Sequence[str] = ("val", "test"), sample: int = REFERENCE_SAMPLE
) -> dict[str, dict[str, dict[str, Any]]]:
    """:class:`LobReferences` of one book's splits, fitted on at most ``sample`` training windows, scored on
    ``parts``: ``{part: {rule: {"name": ..., metric: value}}}`` (module notes)."""
    references = LobReferences(splits.full.window, sample)
    labels, tick = splits.train.targets.numpy(), splits.info.get("tick_size")
    for part in ("train", *parts):
        references.visit(part, splits.book, getattr(splits, part).ends.numpy(), labels, tick)
    return references.scores()
