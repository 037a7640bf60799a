"""Training windows from a partitioned book dataset (``dilated data convert -o DIR/``) that need not fit in memory.

One instrument's days (``DIR/instrument=X/date=D/part-*.parquet``; part names sort in time order) are read one day
at a time, as :func:`~dilated.data._lob_labels.book_splits` reads one book, except that:

- The parts are days: ``fractions`` of the days in date order (training days first), each part at least one day
  (:func:`day_bounds`), or the days a ``selection`` names (:func:`chosen_days`). ``start`` / ``end`` keep the events in ``[start, end)``; days left without one are dropped.
- Windows never cross a day: labels, usable stretches and window ends are those of each day alone (a label whose
  horizon runs off its day is none; ``stride`` counts from each day's first event).
- Statistics come from the training days only, streamed over them: the z-score merges each day's count, mean and sum
  of squared deviations (Chan, Golub & LeVeque 1979); the balanced threshold (a third stationary) is the exact 1/3
  quantile of the training days' |l| (:class:`StreamedQuantile`). Both equal, to float rounding, those of the
  training days concatenated.
- Each day's z-scored features ``(channels, events)`` float32, labels ``(events,)`` and window ends are written once
  to a temporary folder (``TMPDIR``) as ``.npy`` files, memory-mapped and unlinked (the mapping keeps the file until
  it is dropped, Linux and macOS). A part is a ``ConcatDataset`` of one :class:`WindowDataset` per day over those
  mappings: a window costs page reads, the page cache is the only cache, and what a day keeps in memory does not
  depend on its length. Memory then stays that of the largest day, whatever the number of days; what does grow is
  the training sampler's permutation, 8 bytes per training window.
"""

from __future__ import annotations

import itertools
import math
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import torch
from torch.utils.data import ConcatDataset
from tqdm import tqdm

from dilated._progress import bar_disabled
from dilated.data._book_features import SCALE_SAMPLE, BookInputs, RobustScale, observed_tick, scaling_sample
from dilated.data._choices import SMOOTHINGS
from dilated.data._dataset import read_manifest
from dilated.data._lob_labels import (
    SMOOTHING_WINDOW,
    LabelRule,
    book_labels,
    fill_book_levels,
    in_time,
    input_info,
    label_info,
    label_shares,
    label_threshold,
    threshold_rule,
    time_ns,
    usable_events,
    window_ends,
)
from dilated.data._lobster import ZScore
from dilated.data._orderbook import Book, check_levels, read_book
from dilated.data._windows import DEFAULT_FRACTIONS, WindowDataset, split_bounds

_DAY_NS = 86_400 * 10**9
_PARTS = ("train", "validation", "test")
DayVisitor = Callable[[str, Book, np.ndarray, np.ndarray, "float | None"], None]


def is_book_dataset(path: str | Path) -> bool:
    """Whether a ``book`` data path is a dataset folder (else a Parquet book file)."""
    return Path(path).is_dir()


@dataclass(frozen=True)
class BookDay:
    """One date of one instrument: its Parquet parts in time order."""

    date: str
    parts: tuple[Path, ...]


def dataset_days(
    root: str | Path, instrument: str | None = None, start: Any = None, end: Any = None
) -> tuple[str, list[BookDay]]:
    """The instrument (the only one where ``instrument`` is None) and its days in date order (those holding a time
    in ``[start, end)`` where given)."""
    root = Path(root)
    folders = sorted(p for p in root.glob("instrument=*") if p.is_dir())
    names = [unquote(p.name.partition("=")[2]) for p in folders]
    if not names:
        raise ValueError(f"{root}: no instrument=... folder; not a dataset written by dilated data convert -o DIR/")
    if instrument is None and len(names) > 1:
        raise ValueError(
            f"{root}: a dataset of {len(names)} instruments ({', '.join(names)}); choose one with instrument"
        )
    chosen = names[0] if instrument is None else instrument
    if chosen not in names:
        raise ValueError(f"{root}: no instrument {chosen!r}; the dataset holds {', '.join(names)}")
    folder = folders[names.index(chosen)]
    days = [
        BookDay(d.name.partition("=")[2], tuple(sorted(d.glob("part-*.parquet")))) for d in sorted(folder.iterdir())
    ]
    first = -math.inf if start is None else time_ns(start, "start") // _DAY_NS
    last = math.inf if end is None else (time_ns(end, "end") - 1) // _DAY_NS
    dated = [d for d in days if d.date and d.parts]
    return chosen, [d for d in dated if first <= np.datetime64(d.date, "D").astype(np.int64) <= last]


def read_day(day: BookDay, levels: int | None, start: Any = None, end: Any = None) -> Book:
    """A day's rows (its parts one after the other), the first ``levels`` levels (None: all), ``start <= ts < end``."""
    books = [read_book(path, levels) for path in day.parts]
    ts = books[0].ts if len(books) == 1 else np.concatenate([b.ts for b in books])
    values = books[0].values if len(books) == 1 else np.concatenate([b.values for b in books])
    keep = in_time(ts, start, end)
    if not keep.all():
        ts, values = ts[keep], values[keep]
    return Book(ts, values, str(day.parts[0].parent), books[0].format)


def _date(day: BookDay) -> str:
    return day.date


def chosen_days(days: list[BookDay], selection: Sequence[Sequence[str | int]], name: str) -> list[list[BookDay]]:
    """The train, validation and test days named by ``selection`` (per part, ISO dates or 0-based indices into
    ``days``): each part at least one day, no day in two parts, and the parts in time order."""
    dates = [d.date for d in days]
    parts: list[list[BookDay]] = []
    for part, chosen in zip(_PARTS, selection, strict=True):
        if not chosen:
            raise ValueError(f"{name}: no {part} day chosen; name at least one (an ISO date or an index)")
        picked = []
        for day in chosen:
            index = day if isinstance(day, int) else dates.index(day) if day in dates else -1
            if not 0 <= index < len(days):
                raise ValueError(
                    f"{name}: no day {day!r} among its {len(days)} days ({dates[0]} to {dates[-1]}); give ISO dates "
                    f"or indices 0 to {len(days) - 1}"
                )
            picked.append(days[index])
        parts.append(sorted(set(picked), key=_date))
    for (early, first), (late, second) in itertools.combinations(zip(_PARTS, parts, strict=True), 2):
        if set(first) & set(second):
            both = sorted(set(first) & set(second), key=_date)[0].date
            raise ValueError(f"{name}: day {both} is both a {early} and a {late} day; a day belongs to one part")
        if second[0].date < first[-1].date:
            raise ValueError(
                f"{name}: {late} day {second[0].date} comes before {early} day {first[-1].date}; the parts must "
                "follow each other in time (train, then validation, then test)"
            )
    return parts


def day_bounds(days: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list[tuple[int, int]]:
    """Consecutive ``[first, stop)`` day ranges by ``fractions`` of ``days`` (rounded), each at least one day."""
    cuts = [first for first, _ in split_bounds(days, fractions)] + [days]
    for i in range(1, len(fractions)):
        cuts[i] = min(max(cuts[i], cuts[i - 1] + 1), days - (len(fractions) - i))
    return list(zip(cuts[:-1], cuts[1:], strict=True))


@dataclass
class Moments:
    """Per-feature count, mean and sum of squared deviations, merged a batch of rows at a time (Chan et al.)."""

    count: int = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None

    def add(self, rows: np.ndarray) -> None:
        """``rows`` ``(rows, features)``."""
        if len(rows) == 0:
            return
        n, mean = len(rows), rows.mean(axis=0)
        m2 = ((rows - mean) ** 2).sum(axis=0)
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total, delta = self.count + n, mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    def zscore(self) -> ZScore:
        """As :meth:`ZScore.fit` of all rows added (population standard deviation, 1 where it is 0)."""
        assert self.mean is not None and self.m2 is not None, "no rows added"
        std = np.sqrt(self.m2 / self.count)
        return ZScore(self.mean, np.where(std > 0, std, 1.0))


@dataclass
class StreamedQuantile:
    """``np.quantile(values, q)`` (linear) of non-negative values given in chunks twice: every chunk to
    :meth:`count`, then every chunk again to :meth:`collect`. Memory: a count per bin (the binary exponent and 12
    mantissa bits: bins 1/4096 wide relative to their values, 0 a bin of its own) and the values of the (at most
    two) bins that hold the ranks the quantile reads."""

    q: float
    counts: dict[int, int] = field(default_factory=dict)
    _targets: list[tuple[int, int]] = field(default_factory=list)  # (rank in its bin, bin) of the two ranks read
    _kept: dict[int, list[np.ndarray]] = field(default_factory=dict)

    _ZERO = -(2**62)

    @classmethod
    def _bins(cls, values: np.ndarray) -> np.ndarray:
        mantissa, exponent = np.frexp(values)  # values = mantissa * 2**exponent, mantissa in [0.5, 1)
        bins = exponent.astype(np.int64) * 4096 + ((mantissa - 0.5) * 8192).astype(np.int64)
        return np.where(values == 0, cls._ZERO, bins)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, values: np.ndarray) -> None:
        bins, counts = np.unique(self._bins(values), return_counts=True)
        for key, n in zip(bins.tolist(), counts.tolist(), strict=True):
            self.counts[key] = self.counts.get(key, 0) + n

    def _position(self) -> float:
        return (self.total - 1) * self.q

    def collect(self, values: np.ndarray) -> None:
        if not self._targets:
            keys = sorted(self.counts)
            ends = np.cumsum([self.counts[k] for k in keys])
            low = math.floor(self._position())
            for rank in (low, min(low + 1, self.total - 1)):
                index = int(np.searchsorted(ends, rank, side="right"))
                self._targets.append((rank - int(ends[index] - self.counts[keys[index]]), keys[index]))
            self._kept = {key: [] for _, key in self._targets if key != self._ZERO}
        bins = self._bins(values)
        for key, kept in self._kept.items():
            kept.append(values[bins == key])

    def result(self) -> float:
        ordered = {key: np.sort(np.concatenate(kept)) for key, kept in self._kept.items()}
        low, high = (0.0 if key == self._ZERO else float(ordered[key][rank]) for rank, key in self._targets)
        position = self._position()
        return float(np.quantile(np.array([low, high]), position - math.floor(position)))


@dataclass
class DaySplits:
    """Train/validation/test windows of a dataset's days (module notes).

    Attributes:
        train, val, test: ``ConcatDataset`` of one :class:`WindowDataset` per day, ``x`` float32
            ``(4 * levels, window)`` and ``y`` int64 in {0 up, 1 stationary, 2 down}.
        full: the three parts one after the other.
        info: JSON-ready facts: instrument, days per part, threshold, events, class counts per part, z-score.
    """

    train: ConcatDataset
    val: ConcatDataset
    test: ConcatDataset
    full: ConcatDataset
    info: dict[str, Any] = field(default_factory=dict)


def _mapped(folder: str, array: np.ndarray) -> torch.Tensor:
    """``array`` as a tensor over a memory-mapped copy on disk (the file unlinked: the mapping keeps it)."""
    path = Path(folder) / f"{uuid.uuid4().hex}.npy"
    np.save(path, np.ascontiguousarray(array))
    mapped = np.load(path, mmap_mode="c")  # copy-on-write: writable for torch, never written back
    path.unlink()
    return torch.from_numpy(mapped)


@dataclass
class _DayReader:
    """Reads the selected days one at a time (one day's book in memory), advancing the progress bar."""

    levels: int | None
    start: Any
    end: Any
    bar: Any  # a tqdm bar

    def books(self, selected: list[BookDay]) -> Iterator[tuple[Book, np.ndarray]]:
        """Each day's book and usable events."""
        for day in selected:
            book = read_day(day, self.levels, self.start, self.end)
            yield book, usable_events(book)
            self.bar.update()


def _select_days(
    root: str | Path, instrument: str | None, start: Any, end: Any, parts: int
) -> tuple[str, list[BookDay], str]:
    """The instrument, its days between ``start`` and ``end`` (at least one per part) and its name for errors."""
    instrument, days = dataset_days(root, instrument, start, end)
    name = f"{root} ({instrument})"
    if len(days) < parts:
        raise ValueError(
            f"{name}: {len(days)} day(s) between start and end; a dataset is split by days and needs at least "
            f"{parts}, one per part of fractions"
        )
    return instrument, days, name


def _changes(book: Book, usable: np.ndarray, rule: LabelRule) -> np.ndarray:
    """The finite |l_t| of a day's usable events (what the label threshold is a quantile of)."""
    change = np.abs(rule.change(np.where(usable, book.mid, np.nan)))
    return change[np.isfinite(change)]


def _dataset_tick(
    root: str | Path, instrument: str, reader: _DayReader, days: list[BookDay]
) -> tuple[float | None, str]:
    """The manifest's tick size of ``instrument`` where it records one, else the smallest level gap of ``days``."""
    recorded = read_manifest(root).get("instruments", {}).get(instrument, {})
    if recorded.get("tick_size"):
        return float(recorded["tick_size"]), f"manifest ({recorded.get('tick_source')})"
    steps = [observed_tick(book.values) for book, _ in reader.books(days)]
    known = [s for s in steps if s is not None]
    return (min(known) if known else None), "observed"


def _fit_training_days(
    reader: _DayReader,
    train_days: list[BookDay],
    scaling: ZScore | RobustScale | None,
    threshold: float | None,
    unit: str,
    rule: LabelRule,
    representation: str,
    tick: float | None,
    name: str,
) -> tuple[BookInputs, float, str]:
    """The input scaling and label threshold of the training days (those not given), streamed one day at a time;
    a robust scaling is fitted on a sample of at most ``SCALE_SAMPLE`` events shared evenly among the days."""
    moments, quantile, samples = Moments(), StreamedQuantile(1 / 3), []
    spreads, spread_count = 0.0, 0
    per_day = math.ceil(SCALE_SAMPLE / len(train_days))
    balanced = threshold is None and unit != "spread"
    if scaling is None or balanced or unit == "spread":
        for book, usable in reader.books(train_days):
            if scaling is None and representation == "raw":
                moments.add(fill_book_levels(book.values)[usable])
            elif scaling is None:
                samples.append(scaling_sample(fill_book_levels(book.values), usable, representation, tick, per_day))
            if balanced:
                quantile.count(_changes(book, usable, rule))
            if unit == "spread":
                spreads += float(np.sum(book.spread[usable] / book.mid[usable]))
                spread_count += int(usable.sum())
    if scaling is None:
        if representation == "raw" and moments.count == 0 or representation != "raw" and not sum(map(len, samples)):
            raise ValueError(f"{name}: the training days hold no usable event (two-sided, uncrossed book)")
        scaling = moments.zscore() if representation == "raw" else RobustScale.fit(np.concatenate(samples))
    inputs = BookInputs(representation, tick, scaling)
    if not balanced:
        mean_spread = np.array([spreads / spread_count]) if spread_count else np.array([])
        return (inputs, *label_threshold(threshold, unit, np.array([]), mean_spread))
    if quantile.total == 0:
        raise ValueError(f"{name}: no smoothed change on the training days; use more days or a shorter horizon")
    for book, usable in reader.books(train_days):
        quantile.collect(_changes(book, usable, rule))
    threshold = quantile.result()
    return inputs, threshold, threshold_rule(threshold)


def _part_windows(
    reader: _DayReader,
    days: list[BookDay],
    folder: str,
    inputs: BookInputs,
    threshold: float,
    rule: LabelRule,
    window: int,
    stride: int,
    visit: DayVisitor | None,
    part: str,
) -> tuple[list[WindowDataset], np.ndarray, int, int]:
    """One part's windows (one memory-mapped :class:`WindowDataset` per day), its label counts, events and usable
    events; ``visit`` sees each day's book, window ends and labels."""
    windows, count, events, usable_count = [], np.zeros(3, dtype=np.int64), 0, 0
    for book, usable in reader.books(days):
        events, usable_count = events + len(book), usable_count + int(usable.sum())
        labels = book_labels(book, rule, threshold)
        ends = window_ends(usable, labels, window, rule, stride)
        if len(ends) == 0:
            continue
        if visit is not None:
            visit(part, book, ends, labels, inputs.tick)
        count += np.bincount(labels[ends], minlength=3)
        normalised = inputs(fill_book_levels(book.values))  # (channels, events)
        mapped = (_mapped(folder, normalised), _mapped(folder, labels), _mapped(folder, ends))
        windows.append(WindowDataset(mapped[0], mapped[1], window, mapped[2], lookahead=rule.horizon))
    return windows, count, events, usable_count


def dataset_splits(
    root: str | Path,
    instrument: str | None = None,
    levels: int = 10,
    window: int = 100,
    horizon: int = 10,
    threshold: float | None = None,
    smoothing: str = "future",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    stride: int = 1,
    start: Any = None,
    end: Any = None,
    scaling: ZScore | RobustScale | None = None,
    progress: bool = False,
    smoothing_window: int = SMOOTHING_WINDOW,
    threshold_unit: str = "fraction",
    representation: str = "raw",
    tick_size: float | None = None,
    selection: Sequence[Sequence[str | int]] | None = None,
    visit: DayVisitor | None = None,
) -> DaySplits:
    """Windows, labels and splits by days of one instrument of a dataset folder (module notes); the arguments are
    those of :func:`~dilated.data.book_splits`, ``fractions`` of the days, and ``instrument`` (None: the only one);
    the tick: ``tick_size``, else the manifest's, else the smallest level gap of the training days. ``selection``
    names the train, validation and test days instead of ``fractions`` (:func:`chosen_days`). ``visit(part, book,
    ends, labels, tick)``, where given, is called with each day's book (``part`` ``train``, ``val`` or ``test``, in
    that order), its window ends and labels while the windows are built, e.g. to fit a reference on them."""
    levels = check_levels(levels)
    if window < 1 or horizon < 1 or stride < 1:
        raise ValueError(f"window, horizon and stride must be >= 1; got {window}, {horizon}, {stride}")
    fractions = tuple(float(f) for f in fractions)
    instrument, days, name = _select_days(root, instrument, start, end, len(fractions))
    if selection is None:
        chosen = [days[lo:hi] for lo, hi in day_bounds(len(days), fractions)]
    else:
        chosen = chosen_days(days, selection, name)
    train_days = chosen[0]
    balanced = threshold is None and threshold_unit != "spread"
    passes = (scaling is None or balanced or threshold_unit == "spread") + balanced
    bar = tqdm(
        total=(passes + (tick_size is None)) * len(train_days) + sum(map(len, chosen)),
        desc=f"reading {instrument} days",
        unit="day",
        disable=bar_disabled(progress),
        leave=False,
    )
    reader = _DayReader(levels, start, end, bar)
    tick, tick_source = (
        (tick_size, "given") if tick_size is not None else _dataset_tick(root, instrument, reader, train_days)
    )
    if threshold_unit == "ticks" and tick is None:
        raise ValueError(f"{name}: threshold_unit ticks needs a tick size: give tick_size")
    rule = LabelRule(horizon, smoothing, smoothing_window, tick if threshold_unit == "ticks" else None)
    inputs, threshold, how = _fit_training_days(
        reader, train_days, scaling, threshold, threshold_unit, rule, representation, tick, name
    )
    parts: list[ConcatDataset] = []
    counts: dict[str, list[int]] = {}
    events = usable_count = 0
    with tempfile.TemporaryDirectory(prefix="dilated-days-") as folder:
        for part, part_days in zip(("train", "val", "test"), chosen, strict=True):
            windows, count, part_events, part_usable = _part_windows(
                reader, part_days, folder, inputs, threshold, rule, window, stride, visit, part
            )
            events, usable_count = events + part_events, usable_count + part_usable
            if not windows:
                raise ValueError(
                    f"{name}: the {part} days {', '.join(d.date for d in part_days)} hold no window of {window} "
                    f"usable events with a {horizon}-event horizon; use a smaller window or horizon, or other fractions"
                )
            parts.append(ConcatDataset(windows))
            counts[part] = count.tolist()
    bar.close()
    info = {
        "source": str(root),
        "instrument": instrument,
        "days": {part: [d.date for d in part_days] for part, part_days in zip(("train", "val", "test"), chosen)},
        "events": events,
        "usable_events": usable_count,
        **label_info(rule, threshold, how, threshold_unit),
        "window": window,
        "stride": stride,
        "levels": levels,
        "label_balance": {part: [round(c / max(1, sum(v)), 4) for c in v] for part, v in counts.items()},
        "label_counts": counts,
        **input_info(representation, tick, tick_source, inputs.scaling),
    }
    train, val, test = parts
    return DaySplits(train, val, test, ConcatDataset(parts), info)


def dataset_label_balance(
    root: str | Path,
    instrument: str | None = None,
    horizons: Sequence[int] = (10, 50, 100),
    threshold: float | None = None,
    smoothings: Sequence[str] = SMOOTHINGS,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    threshold_unit: str = "fraction",
    tick_size: float | None = None,
    smoothing_window: int = SMOOTHING_WINDOW,
) -> dict[int, dict[str, Any]]:
    """:func:`~dilated.data.label_balance` of one instrument of a dataset folder: per horizon and label rule, the
    threshold chosen on the training days as :func:`dataset_splits` chooses it, and the label shares of each part's
    days (``fractions`` of the days, each day labelled alone). Reads each training day three times and every other
    day once, one day in memory at a time."""
    fractions = tuple(float(f) for f in fractions)
    instrument, days = dataset_days(root, instrument)
    name = f"{root} ({instrument})"
    if len(days) < len(fractions):
        why = {"threshold": None, "labelled": 0, "rule": f"{len(days)} day(s); the splits need {len(fractions)}"}
        return {int(h): {s: dict(why) for s in smoothings} for h in horizons}
    chosen = [days[lo:hi] for lo, hi in day_bounds(len(days), fractions)]
    reader = _DayReader(None, None, None, tqdm(disable=True))
    tick = tick_size if tick_size is not None else _dataset_tick(root, instrument, reader, chosen[0])[0]
    if threshold_unit == "ticks" and tick is None:
        raise ValueError(f"{name}: threshold_unit ticks needs a tick size: give tick_size")
    rules = {
        (int(h), s): LabelRule(int(h), s, smoothing_window, tick if threshold_unit == "ticks" else None)
        for h in horizons
        for s in smoothings
    }
    balanced = threshold is None and threshold_unit != "spread"
    quantiles = {key: StreamedQuantile(1 / 3) for key in rules}
    spreads, spread_count = 0.0, 0
    for book, usable in reader.books(chosen[0]):
        spreads += float(np.sum(book.spread[usable] / book.mid[usable]))
        spread_count += int(usable.sum())
        for key, rule in rules.items() if balanced else ():
            quantiles[key].count(_changes(book, usable, rule))
    if balanced:
        for book, usable in reader.books(chosen[0]):
            for key, rule in rules.items():
                if quantiles[key].total:
                    quantiles[key].collect(_changes(book, usable, rule))
    mean_spread = np.array([spreads / spread_count]) if spread_count else np.array([])
    thresholds: dict[tuple[int, str], tuple[float, str]] = {}
    for key in rules:
        if not balanced:
            thresholds[key] = label_threshold(threshold, threshold_unit, np.array([]), mean_spread)
        elif quantiles[key].total:
            alpha = quantiles[key].result()
            thresholds[key] = alpha, threshold_rule(alpha)
    counts = {key: {part: np.zeros(3, dtype=np.int64) for part in ("train", "val", "test")} for key in thresholds}
    for part, part_days in zip(("train", "val", "test"), chosen, strict=True):
        for book, _ in reader.books(part_days):
            for key, (alpha, _how) in thresholds.items():
                labels = book_labels(book, rules[key], alpha)
                counts[key][part] += np.bincount(labels[labels >= 0], minlength=3)
    result: dict[int, dict[str, Any]] = {}
    for horizon, smoothing in rules:
        rows = result.setdefault(horizon, {})
        if (horizon, smoothing) not in thresholds:
            rows[smoothing] = {"threshold": None, "labelled": 0, "rule": "too few usable events"}
            continue
        alpha, how = thresholds[horizon, smoothing]
        rows[smoothing] = {"threshold": alpha, "rule": how, **label_shares(counts[horizon, smoothing])}
    return result
