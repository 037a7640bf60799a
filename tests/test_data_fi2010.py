"""FI-2010 loader on small files written in the dataset's exact text format (149 rows x events, `%16.7e`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pytest
import torch

from dilated.data import _fi2010 as fi2010
from dilated.data._fi2010 import FI2010_HORIZONS, find_fi2010_files, load_fi2010, read_fi2010
from helpers import TEST_DAYS, TRAIN, book_values, fi2010_text, label_values, write_fi2010


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The official zip's layout, with decoys (other normalisation, auction, folds) that must not be picked."""
    base = tmp_path / "BenchmarkDatasets" / "NoAuction" / "1.NoAuction_Zscore"
    write_fi2010(base / "NoAuction_Zscore_Training" / TRAIN, 150)
    write_fi2010(base / "NoAuction_Zscore_Training" / "Train_Dst_NoAuction_ZScore_CF_1.txt", 110, day=5)
    for fold, events in TEST_DAYS.items():
        write_fi2010(base / "NoAuction_Zscore_Testing" / f"Test_Dst_NoAuction_ZScore_CF_{fold}.txt", events, fold)
    decoy = tmp_path / "BenchmarkDatasets" / "Auction" / "3.Auction_DecPre" / "Auction_DecPre_Training"
    write_fi2010(decoy / "Train_Dst_Auction_DecPre_CF_7.txt", 105, day=6)
    return tmp_path


def test_file_format_matches_the_real_files(root: Path) -> None:
    text = (root / "BenchmarkDatasets/NoAuction/1.NoAuction_Zscore/NoAuction_Zscore_Training" / TRAIN).read_text()
    lines = text.splitlines()
    assert len(lines) == 149
    assert lines[144].startswith("   1.0000000e+00   2.0000000e+00")
    assert len(lines[0].split()) == 150


def test_find_files_standard_split(root: Path) -> None:
    assert [p.name for p in find_fi2010_files(root, "train")] == [TRAIN]
    test = find_fi2010_files(root, "test")
    assert [p.name for p in test] == [f"Test_Dst_NoAuction_ZScore_CF_{f}.txt" for f in (7, 8, 9)]
    assert find_fi2010_files(root, "train", "DecPre", auction=True)[0].parent.name == "Auction_DecPre_Training"


def test_read_shapes_and_labels_shifted_to_zero(root: Path) -> None:
    book, labels = read_fi2010(find_fi2010_files(root)[0])
    assert book.shape == (150, 40) and book.dtype == np.float32
    assert labels.shape == (150, 5) and labels.dtype == np.int64
    np.testing.assert_array_equal(book, book_values(150, 0).astype(np.float32))
    np.testing.assert_array_equal(labels, label_values(150, 0) - 1)


@pytest.mark.parametrize("row", range(5))
def test_horizon_maps_to_label_row(root: Path, row: int) -> None:
    """Label row 144 + r is the horizon FI2010_HORIZONS[r] = 10, 20, 30, 50, 100 events."""
    horizon = (10, 20, 30, 50, 100)[row]
    assert FI2010_HORIZONS[row] == horizon
    data = load_fi2010(root, horizon=horizon)
    expected = label_values(150, 0)[99:, row] - 1
    np.testing.assert_array_equal(data.targets[data.ends].numpy(), expected)
    assert data.lookahead == horizon


def test_train_windows_counts_and_alignment(root: Path) -> None:
    """DeepLOB's data_classification: sample i = events [i, i + 100) with the label of event i + 99."""
    data = load_fi2010(root, "train", horizon=100)
    assert len(data) == 150 - 100 + 1
    labels = label_values(150, 0)[:, 4] - 1
    # events 99..149 of label row 148 hold 1 + (j // 5) % 3: 15 up, 16 stationary, 20 down
    np.testing.assert_array_equal(np.bincount(data.targets[data.ends].numpy(), minlength=3), [15, 16, 20])
    for i in (0, 1, 25, 50):
        x, y = data[i]
        assert x.shape == (40, 100) and x.dtype == torch.float32 and y.dtype == torch.int64
        events = x[0].numpy()  # book row 0 holds the event index
        np.testing.assert_array_equal(events, np.arange(i, i + 100))
        assert events.max() == i + 99  # nothing after the labelled event
        assert y.item() == labels[i + 99]
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=8)))
    assert batch[0].shape == (8, 40, 100) and batch[1].shape == (8,)


def test_test_split_concatenates_days_8_to_10(root: Path) -> None:
    data = load_fi2010(root, "test", horizon=50, window=100)
    assert len(data) == sum(TEST_DAYS.values()) - 99
    expected = np.concatenate([label_values(n, fold)[:, 3] - 1 for fold, n in TEST_DAYS.items()])
    np.testing.assert_array_equal(data.targets.numpy(), expected)
    np.testing.assert_array_equal(data[0][0][0].numpy(), 7000 + np.arange(100))
    np.testing.assert_array_equal(data[len(data) - 1][0][0].numpy()[-1], 9000 + TEST_DAYS[9] - 1)


def test_second_load_reads_the_cache(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = find_fi2010_files(root)[0]
    first = read_fi2010(path)
    stat = path.stat()
    cached = list((path.parent / ".dilated_cache").iterdir())
    assert [c.name for c in cached] == [f"{TRAIN}.{stat.st_size}.{stat.st_mtime_ns}.v1.npy"]

    def no_parsing(*args: object) -> None:
        raise AssertionError("parsed again instead of reading the cache")

    monkeypatch.setattr(fi2010, "_parse", no_parsing)
    second = read_fi2010(path)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_changed_file_invalidates_the_cache(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = find_fi2010_files(root)[0]
    read_fi2010(path)
    calls: list[tuple[Path, bool]] = []
    parse = fi2010._parse

    def counting_parse(path: Path, progress: bool) -> np.ndarray:
        calls.append((path, progress))
        return parse(path, progress)

    monkeypatch.setattr(fi2010, "_parse", counting_parse)

    write_fi2010(path, 160, day=3)  # new content and size
    book, labels = read_fi2010(path)
    assert len(calls) == 1 and book.shape == (160, 40)
    np.testing.assert_array_equal(labels, label_values(160, 3) - 1)
    assert len(list((path.parent / ".dilated_cache").glob("*.npy"))) == 1  # the stale cache is gone

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, newer modification time
    read_fi2010(path)
    assert len(calls) == 2


def test_cache_dir_and_atomic_write(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = find_fi2010_files(root)[0]
    cache = tmp_path / "cache"

    def crash(file: BinaryIO, array: np.ndarray) -> None:
        file.write(b"\x93NUMPY half written")
        raise RuntimeError("crash while saving")

    monkeypatch.setattr(np, "save", crash)
    with pytest.raises(RuntimeError):
        read_fi2010(path, cache_dir=cache)
    assert list(cache.iterdir()) == []  # neither a partial .npy nor a temp file
    monkeypatch.undo()
    read_fi2010(path, cache_dir=cache)
    assert [p.suffix for p in cache.iterdir()] == [".npy"]


def test_unwritable_default_cache_warns(root: Path) -> None:
    path = find_fi2010_files(root)[0]
    (path.parent / ".dilated_cache").write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="cannot cache"):
        book, _ = read_fi2010(path)
    assert book.shape == (150, 40)


def test_progress_bar_for_large_files(root: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    path = find_fi2010_files(root)[0]
    read_fi2010(path, cache_dir=root / "quiet", progress=True)
    assert "parsing" not in capsys.readouterr().err  # a small file parses without a bar
    monkeypatch.setattr(fi2010, "_PROGRESS_MIN_BYTES", 0)
    read_fi2010(path, cache_dir=root / "log", progress=True)
    assert "parsing" not in capsys.readouterr().err  # stderr is not a terminal (a log): no bar frames
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    read_fi2010(path, cache_dir=root / "shown", progress=True)
    assert f"parsing {TRAIN}" in capsys.readouterr().err
    read_fi2010(path, cache_dir=root / "off", progress=False)
    assert "parsing" not in capsys.readouterr().err


def rewrite(path: Path, edit) -> Path:
    rows = fi2010_text(book_values(150, 0), label_values(150, 0))
    path.write_text("".join(edit(rows)))
    return path


def set_cell(row: int, column: int, text: str):
    def edit(rows: list[str]) -> list[str]:
        cells = rows[row].split()
        cells[column] = text
        rows[row] = "   ".join(cells) + "\n"
        return rows

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: rows[:100], r"100 rows, but an FI-2010 file has 149"),
        (lambda rows: rows + rows[:1], r"150 rows"),
        (lambda rows: rows[:-1] + [rows[-1][:800] + "\n"], r"row 148 has 50 values but row 0 has 150"),
        (set_cell(3, 5, "abc"), r"row 3, column 5 \(counted from 0\) is 'abc', not a number"),
        (set_cell(10, 7, "nan"), r"row 10, column 7 \(counted from 0\) is nan"),
        (set_cell(20, 0, "inf"), r"row 20, column 0 \(counted from 0\) is inf"),
        (set_cell(146, 9, "4.0000000e+00"), r"row 146, column 9 \(counted from 0\) is 4.0; label rows"),
        (lambda rows: [], r"0 rows"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path: Path, edit, message: str) -> None:
    path = rewrite(tmp_path / TRAIN, edit)
    with pytest.raises(ValueError, match=message) as error:
        read_fi2010(path)
    assert str(path) in str(error.value)


def test_bad_arguments_raise_clear_errors(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown FI-2010 horizon 5; use one of \(10, 20, 30, 50, 100\)"):
        load_fi2010(root, horizon=5)
    with pytest.raises(ValueError, match=r"no file named Train_Dst_NoAuction_MinMax_CF_7.txt"):
        load_fi2010(root, normalisation="MinMax")
    with pytest.raises(ValueError, match="normalisation must be one of"):
        find_fi2010_files(root, normalisation="zscore")
    with pytest.raises(ValueError, match="split must be"):
        find_fi2010_files(root, split=cast(Any, "val"))  # deliberately invalid: the check is under test
    with pytest.raises(ValueError, match="no complete window"):
        load_fi2010(root, window=151)
    write_fi2010(root / "copy" / TRAIN, 150)
    with pytest.raises(ValueError, match=rf"2 files named {TRAIN}"):
        find_fi2010_files(root)
