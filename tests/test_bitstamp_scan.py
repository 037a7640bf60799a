"""The Bitstamp CSV byte scanner against the pandas reader (its oracle): on random CSVs drawn wider than the scanner
knows (quoted fields, missing values, integer and string ids, CRLF, blank lines, a last line without its end, columns
in any order, several files), the same book bit for bit, and the scanner takes exactly the files it knows."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dilated.data._bitstamp_csv import stream_settings
from dilated.data._bitstamp_scan import scan_orders
from dilated.data._book_readers import bitstamp_rows
from helpers import shared
from test_book_engine import BITSTAMP, assert_identical

COLUMNS = ("id", "timestamp", "price", "volume", "action", "direction")


def _number(draw: st.DrawFn, whole: int) -> str:
    """``whole`` written as an integer, a decimal or with an exponent (pandas reads the column as int or float)."""
    form = draw(st.sampled_from(["int", "point", "fraction", "exponent"]))
    if form == "int":
        return str(whole)
    if form == "point":
        return f"{whole}.0" if draw(st.booleans()) else f"{whole}."
    if form == "fraction":
        return f"{whole}.{draw(st.integers(0, 99999999)):08d}"
    return f"{whole}e-{draw(st.integers(0, 8))}"


@st.composite
def bitstamp_files(draw: st.DrawFn) -> tuple[list[str], bool]:
    """The texts of one to three CSV files of one stream, and whether every id is an integer."""
    exchange = draw(st.sampled_from(["exchange_timestamp", "exchange.timestamp", None]))
    names = [*COLUMNS, *([exchange] if exchange else []), *(["note"] if draw(st.booleans()) else [])]
    names = draw(st.permutations(names))
    string_ids, missing_id = draw(st.booleans()), draw(st.booleans())
    end = draw(st.sampled_from(["\n", "\r\n"]))
    time, exchange_time, texts, id_missed = 1000, 500, [], False
    for _ in range(draw(st.integers(1, 3))):
        lines = [",".join(names)]
        for _ in range(draw(st.integers(1, 25))):
            time += draw(st.sampled_from([0, 0, 1, 7]))
            exchange_time += draw(st.sampled_from([0, 1, 3, -2]))  # sometimes back: then the receive time is used
            order = draw(st.integers(1, 12))
            side = "bid" if order % 2 else "ask"
            price = draw(st.integers(90, 99)) if side == "bid" else draw(st.integers(101, 110))
            volume = _number(draw, draw(st.integers(0, 3)))
            if draw(st.integers(0, 9)) == 0:
                volume = ""  # missing: NaN, then a removal (the engines read a size <= 0 as one)
            fields = {
                "id": f"o{order}" if string_ids else f"{order:0{draw(st.integers(1, 3))}d}",
                "timestamp": str(time),
                "exchange_timestamp": str(exchange_time),
                "exchange.timestamp": str(exchange_time),
                "price": _number(draw, price),
                "volume": volume,
                "action": draw(st.sampled_from(["created", "created", "changed", "deleted"])),
                "direction": side,
                "note": draw(st.sampled_from(["", "x y", "a;b", "7"])),
            }
            if missing_id and draw(st.integers(0, 19)) == 0:
                fields["id"], id_missed = "", True  # pandas then reads the ids as strings
            quoted = draw(st.sets(st.sampled_from(names)))
            lines.append(",".join(f'"{fields[n]}"' if n in quoted else fields[n] for n in names))
            if draw(st.integers(0, 19)) == 0:
                lines.append("")  # a blank line: skipped
        text = end.join(lines)
        texts.append(text + end if draw(st.booleans()) else text)  # the last line may lack its end
    return texts, not string_ids and not id_missed


@given(drawn=bitstamp_files(), chunk=st.sampled_from([3, 16, 10_000]))
@settings(max_examples=60, deadline=None)
def test_scanner_equals_pandas_on_random_csvs(
    drawn: tuple[list[str], bool], chunk: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    texts, integer_ids = drawn
    folder = tmp_path_factory.mktemp("bs")
    files = [folder / f"part{k}.csv" for k in range(len(texts))]
    for file, text in zip(files, texts):
        file.write_bytes(text.encode())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a missing volume (NaN) cast to satoshis, on both paths
        pandas = bitstamp_rows(files, 3, chunk=chunk, scan=False).book()
        scanned = scan_orders(files, "auto", 64 * chunk)
        assert_identical(bitstamp_rows(files, 3, chunk=chunk).book(), pandas)
    if scanned is not None:
        scanned.spill.close()
        assert scanned.settings == stream_settings(files)
    assert (scanned is not None) == integer_ids, texts


@pytest.mark.parametrize("relative", BITSTAMP)
def test_scanner_reads_the_real_files(relative: str) -> None:
    path = shared(relative)
    scanned = scan_orders([path], "auto", 1 << 20)
    assert scanned is not None  # the scanner, not pandas, read them
    scanned.spill.close()
    assert scanned.settings == stream_settings([path])


def test_scanner_leaves_what_it_does_not_know_to_pandas(tmp_path: Path) -> None:
    header = "id,timestamp,price,volume,action,direction\n"
    for name, text in {
        "plain.csv": header + "1,5,100.5,1.25,created,bid\n",
        "spaces.csv": header + "1, 5,100.5,1.25,created,bid\n",
        "escaped.csv": header + '1,5,100.5,1.25,"crea""ted",bid\n',
        "short.csv": header + "1,5,100.5,1.25,created\n",
        "nan.csv": header + "1,5,NaN,1.25,created,bid\n",
        "long.csv": header + "1,5,100.12345678901234567,1.25,created,bid\n",
        "header.csv": header,
        "twice.csv": header.replace("price", "id") + "1,5,100,1,created,bid\n",
        "cr.csv": header.replace("\n", "\r") + "1,5,100,1,created,bid\r",
        "latin.csv": header.replace("\n", ",note\n") + "1,5,100,1,created,bid,caf\xe9\n",  # not UTF-8: pandas refuses
    }.items():
        (tmp_path / name).write_bytes(text.encode("latin-1"))
        scanned = scan_orders([tmp_path / name], "auto", 1 << 20)
        assert (scanned is not None) == (name == "plain.csv"), name
