"""The compiled book engine against the pure-Python book (its oracle): the same rows bit for bit and the same stats,
on the real feeds of ../shared/data (skipped where absent) and on generated feeds with every edge case; the raw
DBN record layouts against databento-dbn's own decoder."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import databento_dbn as dbn
import numpy as np
import pytest
import zstandard

from dilated.data import Book, binance_book, bitstamp_book, databento_mbo_book, read_book, synthetic_feed, write_book
from dilated.data._book_readers import mbo_rows
from dilated.data._convert import convert_book_file
from dilated.data._dbn_records import MBO_DTYPE, MBP10_DTYPE, DbnRecords
from helpers import shared

DATABENTO = ("databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst", "databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst")
BINANCE = {  # instrument: its day files, in order (one of each market; the oracle takes seconds per file)
    "cm/ethusd_perp": ("20240808", "20240809"),
    "spot/btcusdt": ("20240808", "20240809"),  # the diff bridging the snapshot is on the line before it
    "usdm/ethusdt": ("20240808",),  # a gap right after the snapshot
}
BITSTAMP = ("bitstamp/2026-05-02/orders.csv.gz", "bitstamp/2015-05-01/orders.csv.xz")


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


def test_mbp10_record_layout_matches_databento_dbn(tmp_path: Path) -> None:
    pairs = [
        dbn.BidAskPair(bid_px=-i - 1, ask_px=10**12 + i, bid_sz=i, ask_sz=2 * i, bid_ct=3 * i, ask_ct=4 * i)
        for i in range(10)
    ]
    message = dbn.MBP10Msg(
        publisher_id=2,
        instrument_id=3,
        ts_event=4,
        ts_recv=5,
        price=6,
        size=7,
        action=cast(dbn.Action, dbn.Action.ADD),  # the stubs declare enum members as str
        side=cast(dbn.Side, dbn.Side.ASK),
        depth=8,
        flags=0x81,
        sequence=9,
        ts_in_delta=-10,
        levels=pairs,
    )
    record = np.frombuffer(bytes(message), dtype=MBP10_DTYPE)[0]
    assert MBP10_DTYPE.itemsize == len(bytes(message)) == 368
    assert [int(record[n]) for n in ("publisher_id", "instrument_id", "ts_event", "ts_recv", "price", "size")] == [
        2,
        3,
        4,
        5,
        6,
        7,
    ]
    assert (chr(record["action"]), chr(record["side"]), record["depth"], record["flags"]) == ("A", "A", 8, 0x81)
    assert (record["sequence"], record["ts_in_delta"]) == (9, -10)
    for name in ("bid_px", "ask_px", "bid_sz", "ask_sz", "bid_ct", "ask_ct"):
        np.testing.assert_array_equal(record["levels"][name], [getattr(p, name) for p in pairs], err_msg=name)


@pytest.mark.parametrize("name", sorted(BINANCE))
def test_binance_engines_identical_on_real_files(name: str) -> None:
    files = [shared(f"binance/{name}_{day}.gz") for day in BINANCE[name]]
    compiled = binance_book(files, levels=5, gaps="truncate")
    assert_identical(compiled, binance_book(files, levels=5, gaps="truncate", engine="python"))
    assert compiled.stats["gaps"] == (name == "usdm/ethusdt")


@pytest.mark.parametrize(("relative", "uncross"), [(BITSTAMP[0], True), (BITSTAMP[1], True), (BITSTAMP[1], False)])
def test_bitstamp_engines_identical_on_real_files(relative: str, uncross: bool) -> None:
    path = shared(relative)
    compiled = bitstamp_book(path, uncross=uncross)
    assert_identical(compiled, bitstamp_book(path, uncross=uncross, engine="python"))
    assert (compiled.stats["uncross_orders"] > 0) == uncross


@pytest.mark.parametrize("edge_cases", [False, True])
def test_engines_identical_on_generated_mbo(tmp_path: Path, edge_cases: bool) -> None:
    path = synthetic_feed("databento-mbo", tmp_path / "day.mbo.dbn.zst", 6_000, seed=3, edge_cases=edge_cases)
    reference = decoded(path)
    assert len(reference) == 6_000 and {str(r.action) for r in reference} >= {"A", "C", "M", "T", "F"}
    compiled = databento_mbo_book(path, levels=5)
    assert_identical(compiled, databento_mbo_book(path, levels=5, engine="python"))
    stats = compiled.stats
    assert stats["snapshots"] == 1 and stats["crossed_events"] == 0 and not np.isnan(compiled.values[-1]).any()
    edges = (stats["clears"], stats["unknown_cancels"], stats["modify_adds"], stats["sideless"])
    assert all(edges) if edge_cases else not any(edges)
    small = mbo_rows(path, levels=5, chunk=777).book()  # chunk boundaries inside events change nothing
    assert_identical(small, compiled)


@pytest.mark.parametrize("edge_cases", [False, True])
def test_engines_identical_on_generated_bitstamp(tmp_path: Path, edge_cases: bool) -> None:
    path = synthetic_feed("bitstamp", tmp_path / "orders.csv", 6_000, seed=4, edge_cases=edge_cases)
    for uncross in (True, False):
        compiled = bitstamp_book(path, levels=5, uncross=uncross)
        assert_identical(compiled, bitstamp_book(path, levels=5, uncross=uncross, engine="python"))
    assert (compiled.stats["crossed_events"] > 0) == edge_cases  # missed deletions leave stale crossing orders


@pytest.mark.parametrize("edge_cases", [False, True])
def test_engines_identical_on_generated_binance(tmp_path: Path, edge_cases: bool) -> None:
    path = synthetic_feed("binance", tmp_path / "x.txt", 6_000, seed=5, edge_cases=edge_cases)
    compiled = binance_book(path, levels=5, gaps="truncate")
    assert_identical(compiled, binance_book(path, levels=5, gaps="truncate", engine="python"))
    stats = compiled.stats
    assert stats["diffs_before_snapshot_line"] > stats["older_than_snapshot"] > 0 and stats["gaps"] == edge_cases
    if edge_cases:
        message = r"x.txt:\d+: sequence gap after update id \d+ \(pu must equal the previous u"
        for engine in ("compiled", "python"):
            with pytest.raises(ValueError, match=message):
                binance_book(path, engine=engine)


def test_chunked_parquet_equals_write_book(tmp_path: Path) -> None:
    path = synthetic_feed("databento-mbo", tmp_path / "day.mbo.dbn", 3_000, seed=6, edge_cases=True)
    book = databento_mbo_book(path, levels=4)
    written, rows = mbo_rows(path, levels=4, chunk=500).write_parquet(tmp_path / "chunked.parquet")
    assert rows == len(book)
    assert_identical(read_book(written), read_book(write_book(book, tmp_path / "whole.parquet")))
    converted, rows = convert_book_file(path, tmp_path / "converted.parquet", levels=4)
    assert rows == len(book) and read_book(converted).stats == book.stats


def test_bad_dbn_records_name_the_record(tmp_path: Path) -> None:
    path = synthetic_feed("databento-mbo", tmp_path / "day.mbo.dbn", 100, seed=7)
    (tmp_path / "cut.dbn").write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"cut.dbn: record 99 is truncated \(46 of 56 bytes\)"):
        databento_mbo_book(tmp_path / "cut.dbn")
    raw = bytearray(path.read_bytes())
    raw[len(raw) - 56 * 3 + 1] = 0x0A  # record 97 claims to be an MBP-10 record
    (tmp_path / "mixed.dbn").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"mixed.dbn: record 97 has rtype 0x0a"):
        databento_mbo_book(tmp_path / "mixed.dbn")
    with pytest.raises(ValueError, match="engine must be one of compiled, python"):
        databento_mbo_book(path, engine="numba")
