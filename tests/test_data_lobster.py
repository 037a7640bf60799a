"""LOBSTER loader on the bundled real sample (AAPL 2012-06-21) and on small files with empty levels."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from dilated.data._lobster import (
    LobsterBook,
    ZScore,
    balanced_alpha,
    bundled_lobster_sample,
    lobster_dataset,
    lobster_splits,
    movement_labels,
    read_lobster,
    smoothed_returns,
)

EMPTY_ASK, EMPTY_BID = 9999999999, -9999999999


@pytest.fixture(scope="module")
def book() -> LobsterBook:
    return read_lobster(*bundled_lobster_sample())


def reference_labels(horizon: int, alpha: float) -> list[int]:
    """Plain-python labels from the orderbook CSV: m_plus = mean of the next k mids, l = (m_plus - m_t) / m_t."""
    with open(bundled_lobster_sample()[1], newline="") as file:
        mids = [(float(row[0]) + float(row[2])) / 2 for row in csv.reader(file)]
    labels = []
    for t in range(len(mids) - horizon):
        m_plus = sum(mids[t + 1 : t + 1 + horizon]) / horizon
        change = (m_plus - mids[t]) / mids[t]
        labels.append(0 if change > alpha else 2 if change < -alpha else 1)
    return labels


def test_bundled_sample_shapes(book: LobsterBook) -> None:
    message, orderbook = bundled_lobster_sample()
    assert message.name == "AAPL_2012-06-21_34200000_57600000_message_10.csv"
    assert (message.parent / "CREDITS.md").read_text().count("LOBSTER") >= 2
    assert book.snapshots.shape == (999, 40) and book.messages.shape == (999, 6)
    # event 0 (LOBSTER's first row): ask 58.594 x 200, bid 58.533 x 18
    np.testing.assert_array_equal(book.snapshots[0, :4], [5859400, 200, 5853300, 18])
    assert book.mid[0] == (5859400 + 5853300) / 2
    assert book.messages[0, 1] == 1 and book.messages[0, 4] == 5853300


@pytest.mark.parametrize(("horizon", "alpha", "counts"), [(10, 1e-5, [291, 334, 364]), (50, 3e-5, [262, 293, 394])])
def test_labels_match_plain_python_reference(horizon: int, alpha: float, counts: list[int], book: LobsterBook) -> None:
    labels = movement_labels(smoothed_returns(book.mid, horizon), alpha)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels[-horizon:], -1)  # no full horizon: no label, no padding
    np.testing.assert_array_equal(labels[:-horizon], reference_labels(horizon, alpha))
    np.testing.assert_array_equal(np.bincount(labels[:-horizon]), counts)


def test_dataset_windows_have_no_look_ahead(book: LobsterBook) -> None:
    horizon, window = 10, 100
    data = lobster_dataset(book, horizon, alpha=1e-5, window=window, fit=slice(0, 500))
    assert len(data) == 999 - horizon - (window - 1)  # windows need 100 events, labels 10 more
    assert int(data.ends[0]) == window - 1 and int(data.ends[-1]) == 999 - 1 - horizon
    zscore = ZScore.fit(book.snapshots[:500])
    labels = reference_labels(horizon, 1e-5)
    for i in (0, 7, len(data) - 1):
        x, y = data[i]
        end = int(data.ends[i])
        assert x.shape == (40, window) and x.dtype == torch.float32
        torch.testing.assert_close(x, torch.from_numpy(zscore(book.snapshots[end - window + 1 : end + 1]).T))
        assert y.item() == labels[end]
    # changing every event after a window's end leaves that window unchanged
    end = int(data.ends[0])
    future = book.snapshots.copy()
    future[end + 1 :] *= 2
    changed = lobster_dataset(LobsterBook(book.messages, future), horizon, 1e-5, window, fit=zscore)
    torch.testing.assert_close(changed[0][0], data[0][0])


def test_zscore_default_fit_is_the_first_70_percent(book: LobsterBook) -> None:
    data = lobster_dataset(book, 10, alpha=1e-5)
    first = data.features[:, :699].double().numpy()
    np.testing.assert_allclose(first.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(first.std(axis=1), 1, atol=1e-5)
    later = data.features[:, 699:].double().numpy()
    assert np.abs(later.mean(axis=1)).max() > 0.1  # statistics of the first part only


def test_zscore_from_a_prior_period(book: LobsterBook) -> None:
    prior = ZScore(mean=np.full(40, 100.0), std=np.full(40, 4.0))
    data = lobster_dataset(book, 10, alpha=1e-5, fit=prior)
    torch.testing.assert_close(data.features[:, 5], torch.from_numpy((book.snapshots[5] - 100) / 4).float())
    constant_first = ZScore.fit(np.array([[1.0, 2.0], [1.0, 4.0]]))
    np.testing.assert_array_equal(constant_first.mean, [1, 3])
    np.testing.assert_array_equal(constant_first.std, [1, 1])  # a constant feature keeps std 1
    with pytest.raises(ValueError, match="z-score fitted on 20 features"):
        ZScore(np.zeros(20), np.ones(20))(book.snapshots)


def test_balanced_alpha_on_training_part(book: LobsterBook) -> None:
    train_returns = smoothed_returns(book.mid[:699], 20)
    alpha = balanced_alpha(train_returns)
    labels = movement_labels(train_returns, alpha)
    counts = np.bincount(labels[labels >= 0], minlength=3)
    assert abs(counts[1] / counts.sum() - 1 / 3) < 0.02
    assert np.isnan(train_returns[-20:]).all()  # nothing past event 698 is used


def test_splits_are_chronological_and_never_straddle(book: LobsterBook) -> None:
    horizon, window = 10, 50
    parts = lobster_splits(book, horizon, window=window)
    bounds = [(0, 699), (699, 849), (849, 999)]
    assert [len(p) for p in parts] == [stop - start - window + 1 - horizon for start, stop in bounds]
    for part, (start, stop) in zip(parts, bounds, strict=True):
        assert int(part.ends[0]) - window + 1 == start and int(part.ends[-1]) + horizon == stop - 1
    alpha = balanced_alpha(smoothed_returns(book.mid[:699], horizon))
    expected = movement_labels(smoothed_returns(book.mid, horizon), alpha)
    for part in parts:
        np.testing.assert_array_equal(part.targets[part.ends].numpy(), expected[part.ends.numpy()])


def write_csv(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    path.write_text("".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return path


def small_files(tmp_path: Path, book_rows: Sequence[Sequence[object]]) -> tuple[Path, Path]:
    messages = [[34200.0 + i, 1, i, 100, 10000, 1] for i in range(len(book_rows))]
    return write_csv(tmp_path / "message.csv", messages), write_csv(tmp_path / "orderbook.csv", book_rows)


def test_empty_levels_take_the_nearest_quote(tmp_path: Path) -> None:
    rows = [
        [101, 5, 100, 7, 102, 1, 99, 2],
        [101, 5, 100, 7, EMPTY_ASK, 0, EMPTY_BID, 0],  # level 2 empty on both sides
        [101, 5, EMPTY_BID, 0, EMPTY_ASK, 0, EMPTY_BID, 0],  # no bid at all: the previous snapshot's bids
    ]
    book = read_lobster(*small_files(tmp_path, rows), levels=2)
    np.testing.assert_array_equal(
        book.snapshots,
        [[101, 5, 100, 7, 102, 1, 99, 2], [101, 5, 100, 7, 101, 0, 100, 0], [101, 5, 100, 0, 101, 0, 100, 0]],
    )
    with pytest.raises(ValueError, match="line 1 has no bid quote"):
        read_lobster(*small_files(tmp_path, rows[2:]), levels=2)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: rows[:2] + [rows[2][:-1]], r"line 3 has 7 columns but line 1 has 8"),
        (lambda rows: [rows[0], rows[1][:4] + ["abc"] + rows[1][5:], rows[2]], r"line 2, column 5 .* is 'abc'"),
        (lambda rows: [rows[0], rows[1], rows[2][:6] + ["nan", 1]], r"line 3, column 7 .* is nan"),
        (lambda rows: [], r"no rows"),
    ],
)
def test_bad_orderbook_raises_clear_errors(tmp_path: Path, edit, message: str) -> None:
    rows = [[101, 5, 100, 7, 102, 1, 99, 2]] * 3
    message_path, orderbook_path = small_files(tmp_path, rows)
    write_csv(orderbook_path, edit([list(r) for r in rows]))
    with pytest.raises(ValueError, match=message) as error:
        read_lobster(message_path, orderbook_path, levels=2)
    assert str(orderbook_path) in str(error.value)


def test_bad_pairs_and_arguments_raise_clear_errors(tmp_path: Path, book: LobsterBook) -> None:
    rows = [[101, 5, 100, 7, 102, 1, 99, 2]] * 3
    message_path, orderbook_path = small_files(tmp_path, rows)
    write_csv(message_path, [[34200.0, 1, 1, 100, 10000, 1]] * 2)
    with pytest.raises(ValueError, match="has 2 rows but .* has 3"):
        read_lobster(message_path, orderbook_path, levels=2)
    with pytest.raises(ValueError, match="8 columns; need 4 per level .* at least 10 levels"):
        read_lobster(*small_files(tmp_path, rows))
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        smoothed_returns(book.mid, 0)
    with pytest.raises(ValueError, match="alpha must be a threshold >= 0"):
        movement_labels(smoothed_returns(book.mid, 5), -0.1)
    with pytest.raises(ValueError, match="no finite returns"):
        balanced_alpha(smoothed_returns(book.mid[:5], 10))
