"""The compiled book engine against the pure-Python book (its oracle): the same rows bit for bit and the same stats,
on the real feeds of ../shared/data (skipped where absent) and on generated feeds with every edge case; the raw
DBN record layouts against databento-dbn's own decoder."""

from __future__ import annotations

from pathlib import Path

import databento_dbn as dbn
import numpy as np
import pytest
import zstandard

from dilated.data import Book, databento_mbo_book
from dilated.data._dbn_records import MBO_DTYPE, DbnRecords
from helpers import shared

DATABENTO = ("databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst", "databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst")


def assert_identical(compiled: Book, python: Book) -> None:
    """Same events, same bits (NaN included), same stats, source and format."""
    assert compiled.values.shape == python.values.shape
    np.testing.assert_array_equal(compiled.ts, python.ts)
    np.testing.assert_array_equal(compiled.values.view(np.int64), python.values.view(np.int64))
    assert compiled.stats == python.stats and list(compiled.stats) == list(python.stats)
    assert (compiled.source, compiled.format) == (python.source, python.format)


def decoded(path: Path) -> list:
    """databento-dbn's records of a file (the reference decoder)."""
    raw = path.read_bytes()
    if path.suffix == ".zst":
        raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
    decoder = dbn.DBNDecoder()
    decoder.write(raw)
    return decoder.decode()[1:]


def test_mbo_record_layout_matches_databento_dbn() -> None:
    path = shared(DATABENTO[1])
    with DbnRecords(path) as reader:
        assert reader.schema == "mbo"
        records = np.concatenate(list(reader.chunks(10_000)))
    reference = decoded(path)
    assert len(records) == len(reference) and MBO_DTYPE.itemsize == 56
    for name in ("instrument_id", "ts_event", "order_id", "price", "size", "flags", "ts_recv", "sequence"):
        expected = np.array([int(getattr(r, name)) for r in reference], dtype=np.uint64)
        np.testing.assert_array_equal(records[name].astype(np.uint64), expected, err_msg=name)
    for name in ("action", "side"):
        np.testing.assert_array_equal(records[name], [ord(str(getattr(r, name))) for r in reference], err_msg=name)


@pytest.mark.parametrize("levels", [10, 3])
def test_mbo_engines_identical_on_real_files(levels: int) -> None:
    files = [shared(f) for f in DATABENTO]
    assert_identical(databento_mbo_book(files, levels), databento_mbo_book(files, levels, engine="python"))
    day = files[1]
    assert_identical(databento_mbo_book(day, levels), databento_mbo_book(day, levels, engine="python"))
