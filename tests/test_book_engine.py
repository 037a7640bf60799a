"""The compiled book engine against the pure-Python book (its oracle): the same rows bit for bit and the same stats,
on the real feeds of ../shared/data (skipped where absent) and on generated feeds with every edge case; the raw
DBN record layouts against databento-dbn's own decoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import databento_dbn as dbn
import numpy as np
import pytest
import zstandard

from dilated.data import (
    Book,
    binance_book,
    bitstamp_book,
    databento_mbo_book,
    databento_mbp10_book,
    read_book,
    synthetic_feed,
    write_book,
)
from dilated.data._book_readers import bitstamp_rows, mbo_rows, mbp10_rows
from dilated.data._convert import convert_book, convert_book_file
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
def test_engines_identical_on_generated_mbp10(tmp_path: Path, edge_cases: bool) -> None:
    """The generated MBP-10 file: databento-dbn decodes it, the compiled reader equals the Python one, and (without
    edge cases) its books are the MBO replay of the same simulated flow, level for level."""
    path = synthetic_feed("databento-mbp10", tmp_path / "day.mbp10.dbn.zst", 6_000, seed=3, edge_cases=edge_cases)
    assert len(decoded(path)) == 6_000
    compiled = databento_mbp10_book(path)
    assert_identical(compiled, databento_mbp10_book(path, engine="python"))
    assert_identical(mbp10_rows(path, 10, chunk=777).book(), compiled)
    assert compiled.stats["messages"] == 6_000 and compiled.stats["events"] > 1_000
    if not edge_cases:
        mbo = databento_mbo_book(synthetic_feed("databento-mbo", tmp_path / "day.mbo.dbn", 6_000, seed=3))
        np.testing.assert_array_equal(compiled.ts, mbo.ts)
        np.testing.assert_array_equal(compiled.values.view(np.int64), mbo.values.view(np.int64))


@pytest.mark.parametrize("edge_cases", [False, True])
def test_engines_identical_on_generated_bitstamp(tmp_path: Path, edge_cases: bool) -> None:
    path = synthetic_feed("bitstamp", tmp_path / "orders.csv", 6_000, seed=4, edge_cases=edge_cases)
    for uncross in (True, False):
        compiled = bitstamp_book(path, levels=5, uncross=uncross)
        assert_identical(compiled, bitstamp_book(path, levels=5, uncross=uncross, engine="python"))
    assert (compiled.stats["crossed_events"] > 0) == edge_cases  # missed deletions leave stale crossing orders


def test_bitstamp_stream_cut_anywhere_equals_the_python_book(tmp_path: Path) -> None:
    """Files cut inside events and chunks of a few rows: events still span them, as in one concatenated stream."""
    path = synthetic_feed("bitstamp", tmp_path / "orders.csv", 3_000, seed=9, edge_cases=True)
    header, *lines = path.read_text().splitlines(keepends=True)
    cuts = [0, 700, 701, 1500, len(lines)]
    files = [tmp_path / f"part{k}.csv" for k in range(len(cuts) - 1)]
    for file, start, stop in zip(files, cuts, cuts[1:]):
        file.write_text(header + "".join(lines[start:stop]))
    python = bitstamp_book(files, levels=5, engine="python")
    for chunk in (41, 10_000):
        assert_identical(bitstamp_rows(files, 5, chunk=chunk).book(), python)


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


@pytest.mark.parametrize("format", ["binance", "bitstamp"])
def test_streamed_parquet_equals_the_python_book(tmp_path: Path, format: str) -> None:
    path = synthetic_feed(format, tmp_path / "feed.txt", 3_000, seed=8, edge_cases=True)
    options: dict[str, Any] = {"gaps": "truncate"} if format == "binance" else {}
    streamed, rows = convert_book_file(path, tmp_path / "streamed.parquet", levels=4, **options)
    whole = write_book(convert_book(path, levels=4, engine="python", **options), tmp_path / "whole.parquet")
    assert rows == len(read_book(whole))
    assert_identical(read_book(streamed), read_book(whole))


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


SCANNED = (  # lines the byte scanner reads itself
    '{"stream":"x@depth","data":{"e":"depthUpdate","E":5,"T":4,"s":"XY","U":9,"u":12,"pu":8,'
    '"b":[["9.5","2"],["9.25","0.00100000"]],"a":[["10.5","3"]]}}',
    '{"e":"depthUpdate","E":6,"s":"XY","U":13,"u":14,"pu":12,"b":[],"a":[["10.50","0.0"],["11","7"]]}',
)
ORJSON = (  # lines it hands to orjson: white space, an escape, asks first, powers of ten beyond 1e22, long or numeric decimals
    '{"stream": "x@depth", "data": {"e": "depthUpdate", "E": 7, "s": "XY", "U": 15, "u": 16, "pu": 14, '
    '"b": [["9.5", "1"]], "a": []}}',
    '{"stream":"x\\u0040depth","data":{"e":"depthUpdate","E":8,"s":"XY","U":17,"u":18,"pu":16,"b":[],"a":[]}}',
    '{"e":"depthUpdate","E":9,"s":"XY","U":19,"u":20,"pu":18,"a":[["12","1"]],"b":[["9.75","4"]]}',
    '{"e":"depthUpdate","E":10,"s":"XY","U":21,"u":22,"pu":20,"b":[["9.1e-30","1"]],"a":[]}',
    '{"e":"depthUpdate","E":11,"s":"XY","U":23,"u":24,"pu":22,"b":[["9.0000000000000000001","3"]],"a":[]}',
    '{"e":"depthUpdate","E":12,"s":"XY","U":25,"u":26,"pu":24,"b":[[9.5,5]],"a":[]}',
    '{"e":"depthUpdate","E":13,"s":"XY","U":27,"u":28,"pu":26,"b":[["0.30000000000000004441","1"]],"a":[]}',
)


def test_binance_byte_scanner_reads_its_lines_and_orjson_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dilated.data import _binance_lines

    snapshot = '{"lastUpdateId":10,"bids":[["9","1"]],"asks":[["11","1"]]}'
    ticker = '{"stream":"x@bookTicker","data":{"u":1,"s":"XY","b":"9","B":"1","a":"11","A":"1"}}'
    lines = [snapshot, ticker, *SCANNED, ticker, *ORJSON]
    path = tmp_path / "x.txt"
    path.write_text("".join(f"{n} {line}\n" for n, line in enumerate(lines, start=100)))
    read: list[bytes] = []
    orjson_line = _binance_lines._python_line

    def counted(line: bytes, *args: object) -> None:
        read.append(line)
        orjson_line(line, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_binance_lines, "_python_line", counted)
    monkeypatch.setattr(_binance_lines, "BLOCK", 200)  # blocks end inside lines: they are cut at line ends
    compiled = binance_book(path, levels=3)
    assert_identical(compiled, binance_book(path, levels=3, engine="python"))
    first_diff = 2  # the first diff is read by orjson: it names the symbol the scanner then expects
    assert len(read) == 1 + 1 + len(ORJSON) and read[first_diff - 1].endswith(SCANNED[0].encode())
    assert compiled.stats["applied"] == len(SCANNED) + len(ORJSON) and compiled.stats["other_messages"] == 2
    np.testing.assert_array_equal(compiled.values[-1, :4], [11.0, 7.0, 9.75, 4.0])

    path.write_text(path.read_text().replace("\n", "\r\n"))  # bytes.splitlines' line ends
    assert_identical(binance_book(path, levels=3), binance_book(path, levels=3, engine="python"))
    other = path.read_text().replace('"E":9,"s":"XY"', '"E":9,"s":"ZW"')
    path.write_text(other)
    with pytest.raises(ValueError, match=r"depth diffs of 2 symbols \(\['XY', 'ZW'\]\)"):
        binance_book(path, levels=3)


@pytest.mark.parametrize("format", ["binance", "bitstamp"])
def test_streamed_memory_is_flat_in_the_number_of_days(
    tmp_path: Path, format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed cut into 8 day files: converting all 8 peaks at the memory of converting the first 2 (one block or
    chunk of rows at a time; the small block and chunk make 2 days already many of them)."""
    import tracemalloc

    from dilated.data import _binance_lines
    from dilated.data._book_readers import binance_rows

    monkeypatch.setattr(_binance_lines, "BLOCK", 1 << 14)
    whole = synthetic_feed(format, tmp_path / "whole.txt", 80_000, seed=10)
    header, *lines = whole.read_text().splitlines(keepends=True)
    header, lines = (header, lines) if format == "bitstamp" else ("", [header, *lines])
    days = [tmp_path / f"day{k}.txt" for k in range(8)]
    for k, day in enumerate(days):
        day.write_text(header + "".join(lines[k * len(lines) // 8 : (k + 1) * len(lines) // 8]))

    def convert(files: list[Path]) -> int:
        tracemalloc.start()
        rows = binance_rows(files, 5, "raise") if format == "binance" else bitstamp_rows(files, 5, chunk=2_000)
        rows.write_parquet(tmp_path / "out.parquet")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    convert(days[:1])  # compile and import first
    peaks = {n: convert(days[:n]) for n in (2, 8)}
    assert peaks[8] < 1.25 * peaks[2] + 2**18, peaks  # about 0.3 MiB (binance), 0.9 MiB (bitstamp) here


@pytest.mark.parametrize("rows", [0, 1, 8, 1_001])
def test_book_table_equals_pyarrow_masks(rows: int) -> None:
    """The compiled transpose and validity bitmaps give the table pyarrow builds from NaN masks, nulls included."""
    import pyarrow as pa

    from dilated.data._orderbook import book_schema, book_table

    rng = np.random.default_rng(rows)
    values = rng.normal(size=(rows, 12))
    values[rng.random(values.shape) < 0.3] = np.nan
    ts = np.arange(rows, dtype=np.int64)
    schema = book_schema(3)
    reference = pa.Table.from_arrays(
        [pa.array(ts)] + [pa.array(c, mask=np.isnan(c)) for c in np.ascontiguousarray(values.T)], schema=schema
    )
    table = book_table(ts, values, schema)
    assert table.equals(reference)
    assert [c.null_count for c in table.columns] == [c.null_count for c in reference.columns]
