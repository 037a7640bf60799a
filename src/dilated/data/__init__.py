"""Datasets: FI-2010 and LOBSTER limit order books, books rebuilt from Databento / Binance / Bitstamp feeds, windows
over CSV/Parquet series and books, and the TCN synthetic tasks.

Every dataset yields `(x, y)` with `x` float32 `(channels, time)`; class labels are int64 0 up / 1 stationary / 2 down.
"""

from dilated.data._synthetic_feeds import FEED_FORMATS, synthetic_feed
from dilated.data.binance import binance_book
from dilated.data.bitstamp import bitstamp_book
from dilated.data.convert import BOOK_FORMATS, book_summary, convert_book, detect_format
from dilated.data.databento import databento_mbo_book, databento_mbp10_book
from dilated.data.fi2010 import FI2010_HORIZONS, FI2010_NORMALISATIONS, find_fi2010_files, load_fi2010, read_fi2010
from dilated.data.lob_labels import BookSplits, book_splits, label_balance, smoothed_change
from dilated.data.lobster import (
    LOBSTER_EMPTY_ASK,
    LOBSTER_EMPTY_BID,
    LobsterBook,
    ZScore,
    balanced_alpha,
    bundled_lobster_sample,
    fill_empty_levels,
    lobster_book,
    lobster_dataset,
    lobster_splits,
    movement_labels,
    read_lobster,
    smoothed_returns,
)
from dilated.data.orderbook import Book, book_columns, read_book, write_book
from dilated.data.synthetic import AddingProblem, CopyMemory
from dilated.data.windows import (
    DEFAULT_FRACTIONS,
    WindowDataset,
    chronological_split,
    read_table,
    split_bounds,
    table_dataset,
)

__all__ = [
    "BOOK_FORMATS",
    "DEFAULT_FRACTIONS",
    "FEED_FORMATS",
    "FI2010_HORIZONS",
    "FI2010_NORMALISATIONS",
    "LOBSTER_EMPTY_ASK",
    "LOBSTER_EMPTY_BID",
    "AddingProblem",
    "Book",
    "BookSplits",
    "CopyMemory",
    "LobsterBook",
    "WindowDataset",
    "ZScore",
    "balanced_alpha",
    "binance_book",
    "bitstamp_book",
    "book_columns",
    "book_splits",
    "book_summary",
    "bundled_lobster_sample",
    "chronological_split",
    "convert_book",
    "databento_mbo_book",
    "databento_mbp10_book",
    "detect_format",
    "fill_empty_levels",
    "find_fi2010_files",
    "label_balance",
    "load_fi2010",
    "lobster_book",
    "lobster_dataset",
    "lobster_splits",
    "movement_labels",
    "read_book",
    "read_fi2010",
    "read_lobster",
    "read_table",
    "smoothed_change",
    "smoothed_returns",
    "split_bounds",
    "synthetic_feed",
    "table_dataset",
    "write_book",
]
