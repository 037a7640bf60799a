"""Datasets: FI-2010 and LOBSTER limit order books, books rebuilt from Databento / Binance / Bitstamp feeds, windows
over CSV/Parquet series and books, and the TCN synthetic tasks.

Every dataset yields `(x, y)` with `x` float32 `(channels, time)`; class labels are int64 0 up / 1 stationary / 2 down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dilated._lazy import lazy_exports

_EXPORTS = {  # public name -> the private module that defines it, imported on first use
    "GAP_POLICIES": "._choices",
    "binance_book": "._binance",
    "bitstamp_book": "._bitstamp",
    "BOOK_FORMATS": "._choices",
    "FEED_FORMATS": "._synthetic_feeds",
    "synthetic_feed": "._synthetic_feeds",
    "convert_book_file": "._convert",
    "DATASET_FORMATS": "._dataset",
    "DATE_RULE": "._dataset",
    "convert_dataset": "._dataset",
    "dataset_info": "._dataset",
    "format_dataset_info": "._dataset",
    "is_dataset_target": "._dataset",
    "BookDay": "._book_days",
    "DaySplits": "._book_days",
    "dataset_days": "._book_days",
    "dataset_splits": "._book_days",
    "dataset_label_balance": "._book_days",
    "read_day": "._book_days",
    "is_book_dataset": "._book_days",
    "SMOOTHINGS": "._choices",
    "THRESHOLD_UNITS": "._choices",
    "REPRESENTATIONS": "._choices",
    "RobustScale": "._book_features",
    "book_inputs": "._book_features",
    "input_channels": "._book_features",
    "book_summary": "._convert",
    "convert_book": "._convert",
    "detect_format": "._convert",
    "format_book_info": "._convert",
    "databento_mbo_book": "._databento",
    "databento_mbp10_book": "._databento",
    "FI2010_HORIZONS": "._fi2010",
    "FI2010_NORMALISATIONS": "._fi2010",
    "find_fi2010_files": "._fi2010",
    "load_fi2010": "._fi2010",
    "read_fi2010": "._fi2010",
    "LOB_CLASS_NAMES": "._lob_labels",
    "PlantedBook": "._planted",
    "PlantedMarket": "._planted",
    "planted_book": "._planted",
    "write_planted_dataset": "._planted",
    "BookSplits": "._lob_labels",
    "book_labels": "._lob_labels",
    "LabelRule": "._lob_labels",
    "book_splits": "._lob_labels",
    "fill_book_levels": "._lob_labels",
    "label_balance": "._lob_labels",
    "select_events": "._lob_labels",
    "smoothed_change": "._lob_labels",
    "usable_events": "._lob_labels",
    "LOBSTER_EMPTY_ASK": "._lobster",
    "LOBSTER_EMPTY_BID": "._lobster",
    "LobsterBook": "._lobster",
    "ZScore": "._lobster",
    "balanced_alpha": "._lobster",
    "bundled_lobster_sample": "._lobster",
    "fill_empty_levels": "._lobster",
    "lobster_book": "._lobster",
    "lobster_dataset": "._lobster",
    "lobster_splits": "._lobster",
    "movement_labels": "._lobster",
    "read_lobster": "._lobster",
    "smoothed_returns": "._lobster",
    "Book": "._orderbook",
    "book_columns": "._orderbook",
    "read_book": "._orderbook",
    "write_book": "._orderbook",
    "AddingProblem": "._synthetic",
    "CopyMemory": "._synthetic",
    "DEFAULT_FRACTIONS": "._windows",
    "WindowDataset": "._windows",
    "chronological_split": "._windows",
    "read_table": "._windows",
    "split_bounds": "._windows",
    "table_dataset": "._windows",
}
__all__ = sorted(_EXPORTS)  # names imported on first use (PEP 562)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # the names as type checkers see them
    from dilated.data._binance import binance_book as binance_book
    from dilated.data._bitstamp import bitstamp_book as bitstamp_book
    from dilated.data._book_days import BookDay as BookDay
    from dilated.data._book_days import DaySplits as DaySplits
    from dilated.data._book_days import dataset_days as dataset_days
    from dilated.data._book_days import dataset_label_balance as dataset_label_balance
    from dilated.data._book_days import dataset_splits as dataset_splits
    from dilated.data._book_days import is_book_dataset as is_book_dataset
    from dilated.data._book_days import read_day as read_day
    from dilated.data._book_features import RobustScale as RobustScale
    from dilated.data._book_features import book_inputs as book_inputs
    from dilated.data._book_features import input_channels as input_channels
    from dilated.data._choices import BOOK_FORMATS as BOOK_FORMATS
    from dilated.data._choices import GAP_POLICIES as GAP_POLICIES
    from dilated.data._choices import REPRESENTATIONS as REPRESENTATIONS
    from dilated.data._choices import SMOOTHINGS as SMOOTHINGS
    from dilated.data._choices import THRESHOLD_UNITS as THRESHOLD_UNITS
    from dilated.data._convert import (
        book_summary as book_summary,
    )
    from dilated.data._convert import (
        convert_book as convert_book,
    )
    from dilated.data._convert import convert_book_file as convert_book_file
    from dilated.data._convert import (
        detect_format as detect_format,
    )
    from dilated.data._convert import (
        format_book_info as format_book_info,
    )
    from dilated.data._databento import (
        databento_mbo_book as databento_mbo_book,
    )
    from dilated.data._databento import (
        databento_mbp10_book as databento_mbp10_book,
    )
    from dilated.data._dataset import DATASET_FORMATS as DATASET_FORMATS
    from dilated.data._dataset import DATE_RULE as DATE_RULE
    from dilated.data._dataset import convert_dataset as convert_dataset
    from dilated.data._dataset import dataset_info as dataset_info
    from dilated.data._dataset import format_dataset_info as format_dataset_info
    from dilated.data._dataset import is_dataset_target as is_dataset_target
    from dilated.data._fi2010 import (
        FI2010_HORIZONS as FI2010_HORIZONS,
    )
    from dilated.data._fi2010 import (
        FI2010_NORMALISATIONS as FI2010_NORMALISATIONS,
    )
    from dilated.data._fi2010 import (
        find_fi2010_files as find_fi2010_files,
    )
    from dilated.data._fi2010 import (
        load_fi2010 as load_fi2010,
    )
    from dilated.data._fi2010 import (
        read_fi2010 as read_fi2010,
    )
    from dilated.data._lob_labels import (
        LOB_CLASS_NAMES as LOB_CLASS_NAMES,
    )
    from dilated.data._lob_labels import (
        BookSplits as BookSplits,
    )
    from dilated.data._lob_labels import LabelRule as LabelRule
    from dilated.data._lob_labels import (
        book_labels as book_labels,
    )
    from dilated.data._lob_labels import (
        book_splits as book_splits,
    )
    from dilated.data._lob_labels import (
        fill_book_levels as fill_book_levels,
    )
    from dilated.data._lob_labels import (
        label_balance as label_balance,
    )
    from dilated.data._lob_labels import (
        select_events as select_events,
    )
    from dilated.data._lob_labels import (
        smoothed_change as smoothed_change,
    )
    from dilated.data._lob_labels import (
        usable_events as usable_events,
    )
    from dilated.data._lobster import (
        LOBSTER_EMPTY_ASK as LOBSTER_EMPTY_ASK,
    )
    from dilated.data._lobster import (
        LOBSTER_EMPTY_BID as LOBSTER_EMPTY_BID,
    )
    from dilated.data._lobster import (
        LobsterBook as LobsterBook,
    )
    from dilated.data._lobster import (
        ZScore as ZScore,
    )
    from dilated.data._lobster import (
        balanced_alpha as balanced_alpha,
    )
    from dilated.data._lobster import (
        bundled_lobster_sample as bundled_lobster_sample,
    )
    from dilated.data._lobster import (
        fill_empty_levels as fill_empty_levels,
    )
    from dilated.data._lobster import (
        lobster_book as lobster_book,
    )
    from dilated.data._lobster import (
        lobster_dataset as lobster_dataset,
    )
    from dilated.data._lobster import (
        lobster_splits as lobster_splits,
    )
    from dilated.data._lobster import (
        movement_labels as movement_labels,
    )
    from dilated.data._lobster import (
        read_lobster as read_lobster,
    )
    from dilated.data._lobster import (
        smoothed_returns as smoothed_returns,
    )
    from dilated.data._orderbook import (
        Book as Book,
    )
    from dilated.data._orderbook import (
        book_columns as book_columns,
    )
    from dilated.data._orderbook import (
        read_book as read_book,
    )
    from dilated.data._orderbook import (
        write_book as write_book,
    )
    from dilated.data._planted import PlantedBook as PlantedBook
    from dilated.data._planted import PlantedMarket as PlantedMarket
    from dilated.data._planted import planted_book as planted_book
    from dilated.data._planted import write_planted_dataset as write_planted_dataset
    from dilated.data._synthetic import AddingProblem as AddingProblem
    from dilated.data._synthetic import CopyMemory as CopyMemory
    from dilated.data._synthetic_feeds import FEED_FORMATS as FEED_FORMATS
    from dilated.data._synthetic_feeds import synthetic_feed as synthetic_feed
    from dilated.data._windows import (
        DEFAULT_FRACTIONS as DEFAULT_FRACTIONS,
    )
    from dilated.data._windows import (
        WindowDataset as WindowDataset,
    )
    from dilated.data._windows import (
        chronological_split as chronological_split,
    )
    from dilated.data._windows import (
        read_table as read_table,
    )
    from dilated.data._windows import (
        split_bounds as split_bounds,
    )
    from dilated.data._windows import (
        table_dataset as table_dataset,
    )
