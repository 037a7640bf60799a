"""One entry point for every book reader: detect a feed's format from its files, rebuild the book, describe it.

Formats (:data:`BOOK_FORMATS`): ``databento-mbo``, ``databento-mbp10`` (DBN files, :mod:`dilated.data._databento`),
``binance`` (:mod:`dilated.data._binance`), ``bitstamp`` (:mod:`dilated.data._bitstamp`), ``lobster`` (a message file
and its orderbook file, :mod:`dilated.data._lobster`). :func:`detect_format` reads the first bytes or line of the
first file; :func:`convert_book` returns a :class:`~dilated.data._orderbook.Book`.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dilated.data._binance import binance_book
from dilated.data._bitstamp import bitstamp_book
from dilated.data._choices import BOOK_FORMATS, GAP_POLICIES
from dilated.data._databento import databento_mbo_book, databento_mbp10_book, dbn_schema
from dilated.data._lob_labels import format_label_balance
from dilated.data._lobster import lobster_book
from dilated.data._orderbook import DEFAULT_LEVELS, Book, check_levels

if TYPE_CHECKING:
    from dilated.data._book_readers import BookRows, FileEnd, State

_ZSTD = b"\x28\xb5\x2f\xfd"
_LOBSTER_NAME = re.compile(r"_(message|orderbook)_(\d+)\.csv$")


def _first_line(path: Path) -> str:
    openers: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
    opener = openers.get(path.suffix, open)
    try:
        with opener(path, "rt") as text:
            return text.readline(4096)
    except (OSError, EOFError, UnicodeDecodeError, lzma.LZMAError):
        return ""


def detect_format(path: str | Path) -> str:
    """The book format of a feed file, from its first bytes (DBN, zstd) or first line; ``ValueError`` if unknown."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as raw:
        head = raw.read(4)
    if head[:3] == b"DBN" or head == _ZSTD:
        schema = dbn_schema(path)
        formats = {"mbo": "databento-mbo", "mbp-10": "databento-mbp10"}
        if schema not in formats:
            raise ValueError(f"{path}: DBN schema {schema!r}; books are rebuilt from mbo or mbp-10 files")
        return formats[schema]
    if _LOBSTER_NAME.search(path.name):
        return "lobster"
    line = _first_line(path)
    if re.match(r"\d+ \{", line):
        return "binance"
    header = [c.strip().replace(".", "_") for c in line.split(",")]
    if {"id", "price", "volume", "action", "direction"} <= set(header):
        return "bitstamp"
    raise ValueError(
        f"{path}: cannot tell the feed format (not DBN, not a Binance recording, not a Bitstamp or "
        f"LOBSTER CSV); pass --format, one of {', '.join(BOOK_FORMATS)}"
    )


def _lobster_pair(paths: Sequence[Path]) -> tuple[Path, Path]:
    """The message and orderbook files among ``paths``, or the partner of a single one (same folder)."""
    named = {}
    for path in paths:
        match = _LOBSTER_NAME.search(path.name)
        if match is None:
            raise ValueError(f"{path}: not a LOBSTER file name (..._message_N.csv or ..._orderbook_N.csv)")
        named[match.group(1)] = path
    if len(named) == 1:
        kind, path = next(iter(named.items()))
        other = "orderbook" if kind == "message" else "message"
        named[other] = path.with_name(_LOBSTER_NAME.sub(lambda m: f"_{other}_{m.group(2)}.csv", path.name))
    if not named["message"].is_file() or not named["orderbook"].is_file():
        missing = [str(p) for p in named.values() if not p.is_file()]
        raise FileNotFoundError(f"LOBSTER needs the message and the orderbook file; missing {missing[0]}")
    return named["message"], named["orderbook"]


def convert_book(
    sources: str | Path | Sequence[str | Path],
    format: str | None = None,
    levels: int = DEFAULT_LEVELS,
    progress: bool = False,
    **options: Any,
) -> Book:
    """Rebuild the book of one instrument from its feed files (in time order).

    Args:
        sources: the feed's files, e.g. Databento's snapshot file then the day's file, or Binance's day files.
        format: one of :data:`BOOK_FORMATS`; default: detected from the first file.
        options: passed to the reader (``gaps`` for Binance, ``uncross`` / ``volume_unit`` for Bitstamp,
            ``instrument_id`` for Databento; ``engine="python"`` for the pure-Python book instead of the compiled
            one, every format but LOBSTER).
    """
    paths = [Path(sources)] if isinstance(sources, (str, Path)) else [Path(s) for s in sources]
    if not paths:
        raise ValueError("no feed file given")
    levels = check_levels(levels)
    format = format or detect_format(paths[0])
    readers: dict[str, Callable[..., Book]] = {
        "databento-mbo": databento_mbo_book,
        "databento-mbp10": databento_mbp10_book,
        "binance": binance_book,
        "bitstamp": bitstamp_book,
    }
    if format == "lobster":
        if options:
            raise ValueError(f"the lobster reader takes no options; got {sorted(options)}")
        return lobster_book(*_lobster_pair(paths), levels=levels)
    if format not in readers:
        raise ValueError(f"unknown book format {format!r}; use one of {', '.join(BOOK_FORMATS)}")
    return readers[format](paths, levels=levels, progress=progress, **options)


def convert_book_file(
    sources: str | Path | Sequence[str | Path],
    output: str | Path,
    format: str | None = None,
    levels: int = DEFAULT_LEVELS,
    progress: bool = False,
    **options: Any,
) -> tuple[Path, int]:
    """:func:`convert_book` straight into a Parquet file (:func:`~dilated.data._orderbook.write_book`'s format).

    On the compiled engine every rebuilt format (:data:`ROW_OPTIONS`) streams: files are read, replayed and written a
    chunk at a time, so memory stays flat however long the day. LOBSTER and ``engine="python"`` are rebuilt in
    memory, then written.

    Returns: the path written and its number of events.
    """
    from dilated.data._book_readers import check_engine
    from dilated.data._orderbook import write_book

    paths = [Path(sources)] if isinstance(sources, (str, Path)) else [Path(s) for s in sources]
    format = format or (detect_format(paths[0]) if paths else None)
    if format in ROW_OPTIONS and check_engine(options.pop("engine", "compiled")) == "compiled":
        return book_rows(paths, format, levels, progress, **options).write_parquet(output)
    book = convert_book(paths, format, levels, progress, **options)
    return write_book(book, output), len(book)


ROW_OPTIONS = {  # the reader options each format takes on the compiled engine (book_rows)
    "databento-mbo": ("instrument_id",),
    "databento-mbp10": ("instrument_id",),
    "binance": ("gaps",),
    "bitstamp": ("uncross", "volume_unit"),
}


def book_rows(
    paths: Sequence[Path],
    format: str,
    levels: int,
    progress: bool = False,
    resume: State | None = None,
    on_file_end: FileEnd | None = None,
    **options: Any,
) -> BookRows:
    """The book of ``paths`` (one instrument, in time order) on the compiled engine, yielded chunk by chunk.

    ``format``: one of :data:`ROW_OPTIONS`' keys (LOBSTER ships its books: nothing to rebuild); ``options``: the
    ones it lists, as :func:`convert_book` takes them. ``resume`` / ``on_file_end``: the book state after a file,
    to go on from it / given after each file (:func:`~dilated.data._book_readers.mbo_rows`; the formats of
    :data:`~dilated.data._book_readers.RESUMABLE`).
    """
    from dilated.data._book_readers import RESUMABLE, binance_rows, bitstamp_rows, mbo_rows, mbp10_rows

    if format not in ROW_OPTIONS:
        raise ValueError(f"format {format!r} cannot be rebuilt chunk by chunk; use one of {', '.join(ROW_OPTIONS)}")
    extra = sorted(set(options) - set(ROW_OPTIONS[format]))
    if extra:
        raise ValueError(f"the {format} reader takes {', '.join(ROW_OPTIONS[format])}; got {extra}")
    if (resume is not None or on_file_end is not None) and format not in RESUMABLE:
        raise ValueError(
            f"the {format} reader cannot resume from a saved book state; use one of {', '.join(RESUMABLE)}"
        )
    if format == "databento-mbo":
        return mbo_rows(paths, levels, options.get("instrument_id"), progress, resume=resume, on_file_end=on_file_end)
    if format == "databento-mbp10":
        return mbp10_rows(paths, levels, options.get("instrument_id"), resume=resume, on_file_end=on_file_end)
    if format == "binance":
        gaps = options.get("gaps", "raise")
        if gaps not in GAP_POLICIES:
            raise ValueError(f"gaps must be one of {', '.join(GAP_POLICIES)}; got {gaps!r}")
        return binance_rows(paths, levels, gaps, progress)
    return bitstamp_rows(paths, levels, bool(options.get("uncross", True)), options.get("volume_unit", "auto"))


def _quantiles(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return {}
    points = np.quantile(finite, [0.0, 0.05, 0.5, 0.95, 1.0])
    return {
        "mean": float(finite.mean()),
        **{name: float(v) for name, v in zip(("min", "p5", "median", "p95", "max"), points)},
    }


def book_summary(book: Book) -> dict[str, Any]:
    """Events, time span, levels, crossed and one-sided books, spread and mid-price statistics (JSON-ready)."""
    spread, mid = book.spread, book.mid
    seconds = (int(book.ts[-1]) - int(book.ts[0])) / 1e9 if len(book) else 0.0
    full = ~np.isnan(book.values).any(axis=1)
    return {
        "source": book.source,
        "format": book.format,
        "events": len(book),
        "levels": book.levels,
        "start": str(np.datetime64(int(book.ts[0]), "ns")) if len(book) else None,
        "end": str(np.datetime64(int(book.ts[-1]), "ns")) if len(book) else None,
        "seconds": seconds,
        "events_per_second": len(book) / seconds if seconds > 0 else None,
        "crossed": int(np.sum(spread <= 0)),
        "one_sided": int(np.sum(np.isnan(mid))),
        "all_levels_quoted": int(full.sum()),
        "spread": _quantiles(spread),
        "mid": _quantiles(mid),
        "mid_changes": int(np.sum(np.diff(mid[np.isfinite(mid)]) != 0)),
    }


def format_book_info(summary: dict[str, Any], balance: dict[int, dict[str, Any]] | None = None) -> str:
    """:func:`book_summary` (and :func:`~dilated.data._lob_labels.label_balance`) as plain text."""

    def stats(values: dict[str, float]) -> str:
        return "  ".join(f"{k} {v:.6g}" for k, v in values.items()) if values else "none"

    rate = summary["events_per_second"]
    lines = [
        f"{summary['source']} ({summary['format'] or 'book'})",
        f"  events {summary['events']:,}, {summary['levels']} levels per side, "
        f"{summary['all_levels_quoted']:,} with every level quoted",
        f"  time {summary['start']} to {summary['end']} ({summary['seconds']:.1f} s"
        + (f", {rate:.1f} events/s)" if rate else ")"),
        f"  crossed or locked books (best bid >= best ask) {summary['crossed']:,}, one-sided "
        f"{summary['one_sided']:,}; mid-price changes {summary['mid_changes']:,}",
        f"  spread: {stats(summary['spread'])}",
        f"  mid:    {stats(summary['mid'])}",
    ]
    lines += format_label_balance(balance or {}, "  ")
    return "\n".join(lines)
