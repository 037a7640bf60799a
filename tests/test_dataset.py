"""The partitioned book dataset (`dilated data convert -o DIR/`): layout, book carried across days, resume,
failures, manifest, flat memory, and Dask distributed giving the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dilated.data import convert_book, convert_dataset, dataset_info, synthetic_feed
from helpers import CLI_ENV, DAY_NS, FIRST_DAY, dilated_cli, mbo_days

DAYS = ("2024-01-02", "2024-01-03", "2024-01-04")


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[Path], Path]]:
    """Two instruments of three synthetic Databento MBO days each: {symbol: (day files, the same as one file)}."""
    folder = tmp_path_factory.mktemp("feeds")
    return {symbol: mbo_days(folder, symbol, 3, 4_000, seed) for symbol, seed in (("AAA", 1), ("BBB", 2))}


def day_files(feeds: dict[str, tuple[list[Path], Path]]) -> list[Path]:
    return [path for files, _ in feeds.values() for path in files]


def dataset_rows(root: Path, instrument: str) -> tuple[np.ndarray, np.ndarray]:
    """An instrument's rows over all its dates, in date order, as (ts (rows,), values (rows, 4 * levels))."""
    import pyarrow.dataset as ds

    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        filter=ds.field("instrument") == instrument
    )
    table = table.sort_by([("date", "ascending")])  # a stable sort: rows keep their order within a date
    frame = table.drop_columns(["instrument", "date"]).to_pandas()
    return frame["ts"].to_numpy(), frame.drop(columns="ts").to_numpy()


def test_partitioned_by_instrument_and_date_with_a_manifest(tmp_path: Path, feeds: dict) -> None:
    root = tmp_path / "books"
    report = convert_dataset(day_files(feeds), f"{root}/", levels=5, processes=1)
    assert sorted(report["converted"]) == ["AAA", "BBB"] and not report["failed"]
    manifest = json.loads((root / "_manifest.json").read_text())
    parts = sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))
    assert parts == sorted(p for e in manifest["instruments"].values() for f in e["files"] for p in f["parts"])
    assert [p.split("/")[:2] for p in parts] == [[f"instrument={s}", f"date={d}"] for s in ("AAA", "BBB") for d in DAYS]
    for symbol, (files, _) in feeds.items():
        entry = manifest["instruments"][symbol]
        sources = [f["source"] for f in entry["files"]]
        assert [s["path"] for s in sources] == [str(f.resolve()) for f in files]  # in time order
        assert [s["size"] for s in sources] == [f.stat().st_size for f in files]
        assert [s["mtime_ns"] for s in sources] == [f.stat().st_mtime_ns for f in files]
        assert [list(f["dates"]) for f in entry["files"]] == [[d] for d in DAYS]  # one day per file
        assert entry["settings"]["levels"] == 5 and entry["format"] == "databento-mbo"
        assert entry["tick_size"] == 0.25 and entry["tick_source"] == "observed"  # the synthetic ES-like tick
        assert entry["stats"]["messages"] == sum(map(_records, files))  # every message read
        ts, _ = dataset_rows(root, symbol)
        dates = [str(d)[:10] for d in ts.astype("datetime64[ns]")]
        assert entry["dates"] == {d: dates.count(d) for d in DAYS} and entry["rows"] == len(ts)
    info = dataset_info(root)
    assert info["rows"] == sum(e["rows"] for e in manifest["instruments"].values()) and info["dates"] == 3
    assert info["instruments"]["AAA"]["tick_size"] == 0.25 and info["failures"] == []


def test_book_carried_across_days_equals_one_file(tmp_path: Path, feeds: dict) -> None:
    convert_dataset(day_files(feeds), tmp_path / "books", levels=5, processes=1)
    for symbol, (_, whole) in feeds.items():
        book = convert_book(whole, levels=5)
        ts, values = dataset_rows(tmp_path / "books", symbol)
        np.testing.assert_array_equal(ts, book.ts)
        np.testing.assert_array_equal(values, book.values)  # NaN at the same places too
        assert len(ts) > 3 * 1_000


def test_resume_skips_what_is_done_and_redoes_a_changed_file(tmp_path: Path, feeds: dict) -> None:
    root = tmp_path / "books"
    files = [Path(tmp_path / f.name) for f in day_files(feeds)]
    for source, copy in zip(day_files(feeds), files):
        copy.write_bytes(source.read_bytes())
    convert_dataset(files, root, processes=1)
    written = {p: p.stat().st_mtime_ns for p in root.rglob("part-*.parquet")}
    again = convert_dataset(files, root, processes=1)
    assert again["converted"] == [] and sorted(again["skipped"]) == ["AAA", "BBB"]
    assert {p: p.stat().st_mtime_ns for p in root.rglob("part-*.parquet")} == written  # nothing rewritten
    changed = files[1]  # AAA's second day, one record fewer (the last event of that day)
    changed.write_bytes(changed.read_bytes()[:-56])
    redo = convert_dataset(files, root, processes=1)
    assert redo["converted"] == ["AAA"] and redo["skipped"] == ["BBB"]
    now = {p: p.stat().st_mtime_ns for p in root.rglob("part-*.parquet")}
    rewritten = sorted(str(p.parent.relative_to(root)) for p in now if now[p] != written.get(p))
    assert rewritten == [f"instrument=AAA/date={d}" for d in DAYS[1:]]  # day 1 kept; day 2 and the days after it
    manifest = json.loads((root / "_manifest.json").read_text())
    assert manifest["instruments"]["AAA"]["files"][1]["source"]["size"] == changed.stat().st_size
    assert not list(root.rglob(".*tmp*"))  # no temporary file left
    ts, values = dataset_rows(root, "AAA")  # the book still flows from day 1 into the redone days
    book = convert_book(files[:3], levels=10)
    np.testing.assert_array_equal(ts, book.ts)
    np.testing.assert_array_equal(values, book.values)


def _same_dataset(one: Path, other: Path) -> None:
    """Both datasets hold the same part files, byte for byte, and the same manifest entries (but ``replayed``)."""
    parts = sorted(p.relative_to(one) for p in one.rglob("part-*.parquet"))
    assert parts == sorted(p.relative_to(other) for p in other.rglob("part-*.parquet")) and parts
    for part in parts:
        assert (one / part).read_bytes() == (other / part).read_bytes()
    entries = [json.loads((root / "_manifest.json").read_text())["instruments"] for root in (one, other)]
    for entry in (*entries[0].values(), *entries[1].values()):
        entry.pop("replayed")
    assert entries[0] == entries[1]


@pytest.mark.parametrize("damage", [None, "corrupt", "other key", "missing"])
def test_resume_goes_on_from_the_saved_book_state(tmp_path: Path, feeds: dict, damage: str | None) -> None:
    """A day added to a dataset is converted from the book state saved after the last converted day (nothing
    replayed), and the dataset equals one converted from scratch; a damaged, foreign or missing state is replayed."""
    files, _ = feeds["AAA"]
    convert_dataset(files, tmp_path / "scratch", processes=1)
    root = tmp_path / "resumed"
    convert_dataset(files[:2], root, processes=1)
    states = root / "instrument=AAA" / "_state"
    saved = sorted(states.glob("*.npz"), key=lambda p: p.stat().st_mtime_ns)
    assert len(saved) == 2  # one after each converted day
    if damage == "corrupt":
        data = bytearray(saved[1].read_bytes())
        data[len(data) // 2] ^= 0xFF
        saved[1].write_bytes(bytes(data))
    elif damage == "other key":  # the state after day 1 under day 2's name: read, but for other files
        saved[1].write_bytes(saved[0].read_bytes())
    elif damage == "missing":
        saved[1].unlink()
    report = convert_dataset(files, root, processes=1)
    assert report["converted"] == ["AAA"]
    entry = json.loads((root / "_manifest.json").read_text())["instruments"]["AAA"]
    assert entry["replayed"] == (0 if damage is None else 2)  # which path ran
    _same_dataset(tmp_path / "scratch", root)
    assert len(list(states.glob("*.npz"))) == 3 and not list(states.glob(".*tmp*"))


def test_mbp10_resume_goes_on_from_the_saved_counts(tmp_path: Path) -> None:
    """MBP-10 days (books already: the state is the reader's counts) resume without replaying, byte for byte."""
    files = [
        synthetic_feed("databento-mbp10", tmp_path / f"M-{k}.mbp10.dbn", 1_500, seed=k, start=FIRST_DAY + k * DAY_NS)
        for k in range(3)
    ]
    convert_dataset(files, tmp_path / "scratch", processes=1, instrument="M")
    convert_dataset(files[:2], tmp_path / "resumed", processes=1, instrument="M")
    convert_dataset(files, tmp_path / "resumed", processes=1, instrument="M")
    entry = json.loads((tmp_path / "resumed" / "_manifest.json").read_text())["instruments"]["M"]
    assert entry["replayed"] == 0 and entry["format"] == "databento-mbp10" and entry["stats"]["messages"] == 4_500
    _same_dataset(tmp_path / "scratch", tmp_path / "resumed")


def test_a_corrupt_file_fails_its_instrument_only(tmp_path: Path, feeds: dict) -> None:
    files = [Path(tmp_path / f.name) for f in day_files(feeds)]
    for source, copy in zip(day_files(feeds), files):
        copy.write_bytes(source.read_bytes())
    bad = files[4]  # BBB's second day: its last record cut short
    bad.write_bytes(bad.read_bytes()[:-10])
    result = dilated_cli("data", "convert", *map(str, files), "-o", "books/", "--jobs", "2", cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    cut = f"record {_records(bad)} is truncated (46 of 56 bytes); the file is damaged"
    assert errors == [f"error: BBB: {bad.resolve()}: {cut}"]
    info = dataset_info(tmp_path / "books")
    assert info["instruments"]["AAA"]["dates"] == 3 and info["instruments"]["AAA"]["error"] is None
    assert info["instruments"]["BBB"]["error"] is not None and str(bad.resolve()) in info["instruments"]["BBB"]["error"]
    assert [f["source"] for f in info["failures"]] == ["BBB"]
    kept = sorted(p.parent.name for p in (tmp_path / "books").glob("instrument=BBB/*/part-*.parquet"))
    assert kept == [f"date={DAYS[0]}"] and info["instruments"]["BBB"]["files"] == 1  # the day before the bad one
    shown = dilated_cli("data", "info", "books", cwd=tmp_path)
    assert shown.returncode == 1 and "failed: BBB:" in shown.stdout and "AAA: databento-mbo, 3 files" in shown.stdout


def _records(path: Path) -> int:
    """Whole 56-byte MBO records after the header of an uncompressed DBN file."""
    import struct

    data = path.read_bytes()
    return (len(data) - 8 - struct.unpack("<I", data[4:8])[0]) // 56


def test_other_formats_and_unreadable_files(tmp_path: Path) -> None:
    feeds = [
        synthetic_feed("binance", tmp_path / "x.txt", 2_000, seed=1, symbol="ABC"),
        synthetic_feed("bitstamp", tmp_path / "btcusd_orders.csv", 2_000, seed=2),
        tmp_path / "missing.dbn",
    ]
    report = convert_dataset(feeds, tmp_path / "books", levels=3, processes=1)
    assert sorted(report["converted"]) == ["ABCUSDT", "BTCUSD"]  # Binance's own symbol; the file name's first part
    assert list(report["failed"]) == [str(tmp_path / "missing.dbn")]
    info = dataset_info(tmp_path / "books")
    assert info["instruments"]["ABCUSDT"]["tick_size"] == 0.1 and info["instruments"]["BTCUSD"]["tick_size"] == 1
    book = convert_book(feeds[0], levels=3)
    assert info["instruments"]["ABCUSDT"]["rows"] == len(book)
    ticked = convert_dataset(feeds[:1], tmp_path / "books", levels=3, processes=1, tick_size=0.5)
    assert (
        ticked["skipped"] == ["ABCUSDT"]
        and dataset_info(tmp_path / "books")["instruments"]["ABCUSDT"]["tick_source"] == "option"
    )


MEMORY_SCRIPT = """
import sys, tracemalloc
from pathlib import Path
from dilated.data import convert_dataset
files = sorted(Path(sys.argv[1]).glob("*-2*.mbo.dbn"))
convert_dataset(files[:1], sys.argv[2] + "-warm", processes=1)  # compile and import first
tracemalloc.start()
convert_dataset(files, sys.argv[2], processes=1)
print(tracemalloc.get_traced_memory()[1])
"""


def test_memory_is_flat_in_the_number_of_days(tmp_path: Path) -> None:
    peaks = {}
    for days in (2, 8):
        mbo_days(tmp_path / f"d{days}", "MEM", days, 40_000, seed=3)
        run = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path / f"d{days}"), str(tmp_path / f"out{days}")],
            capture_output=True,
            text=True,
            env={**CLI_ENV, "PYTHONPATH": os.pathsep.join(sys.path)},
            check=True,
        )
        peaks[days] = int(run.stdout.split()[-1])
    assert peaks[8] < 1.25 * peaks[2] + 2**20, peaks  # 4x the days: the peak stays that of one chunk


def test_dask_cluster_writes_the_same_bytes(tmp_path: Path, feeds: dict) -> None:
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    local = convert_dataset(day_files(feeds), tmp_path / "local", processes=1)
    with LocalCluster(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        remote = convert_dataset(day_files(feeds), tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert sorted(remote["converted"]) == sorted(local["converted"]) == ["AAA", "BBB"]
    parts = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("part-*.parquet"))
    assert len(parts) == 6
    for part in parts:
        assert (tmp_path / "dask" / part).read_bytes() == (tmp_path / "local" / part).read_bytes()
    manifests = [json.loads((tmp_path / name / "_manifest.json").read_text()) for name in ("local", "dask")]
    assert manifests[0]["instruments"] == manifests[1]["instruments"]


@pytest.mark.parametrize("format", ["binance", "bitstamp"])
def test_day_two_continues_day_one(tmp_path: Path, format: str) -> None:
    """A recording cut in two files (Binance: day 2 has no snapshot, its update ids follow day 1's) converts as
    the one file does."""
    whole = synthetic_feed(format, tmp_path / "btcusd_whole.txt", 3_000, seed=4)
    lines = whole.read_text().splitlines(keepends=True)
    header = lines[:1] if format == "bitstamp" else []
    cut = len(lines) // 2
    while format == "bitstamp" and lines[cut].split(",")[1] == lines[cut - 1].split(",")[1]:
        cut += 1  # not inside an event (rows of one timestamp)
    first, second = tmp_path / "btcusd_1.txt", tmp_path / "btcusd_2.txt"
    first.write_text("".join(lines[:cut]))
    second.write_text("".join(header + lines[cut:]))
    convert_dataset([second, first], tmp_path / "books", format=format, levels=4, instrument="X", processes=1)
    book = convert_book(whole, format=format, levels=4)
    ts, values = dataset_rows(tmp_path / "books", "X")
    np.testing.assert_array_equal(ts, book.ts)
    np.testing.assert_array_equal(values, book.values)
    assert len(ts) > 100


def test_tick_size_from_instrument_definitions(tmp_path: Path, feeds: dict) -> None:
    """A Databento definition file among the sources gives the tick size (read, not converted); --tick-size wins."""
    from typing import Any, cast

    import databento_dbn as dbn

    header = dbn.Metadata(
        dataset="GLBX.MDP3",
        schema=cast(dbn.Schema, dbn.Schema.DEFINITION),
        start=0,
        stype_in=cast(dbn.SType, dbn.SType.RAW_SYMBOL),
        stype_out=cast(dbn.SType, dbn.SType.INSTRUMENT_ID),
        symbols=["AAA"],
        partial=[],
        not_found=[],
        mappings=[],
    ).encode()
    definition = dbn.InstrumentDefMsg(
        publisher_id=1,
        instrument_id=1,
        ts_event=0,
        ts_recv=0,
        min_price_increment=125_000_000,  # 0.125 in DBN's 1e-9 units
        display_factor=1,
        raw_symbol="AAA",
        asset="AA",
        security_type="FUT",
        instrument_class=cast(Any, dbn.InstrumentClass.FUTURE),
        security_update_action=cast(Any, dbn.SecurityUpdateAction.ADD),
    )
    path = tmp_path / "definitions.dbn"
    path.write_bytes(header + bytes(definition))
    report = convert_dataset([path, *day_files(feeds)], tmp_path / "books", processes=1)
    assert sorted(report["converted"]) == ["AAA", "BBB"] and not report["failed"]
    rows = dataset_info(tmp_path / "books")["instruments"]
    assert (rows["AAA"]["tick_size"], rows["AAA"]["tick_source"]) == (0.125, "definition")
    assert (rows["BBB"]["tick_size"], rows["BBB"]["tick_source"]) == (0.25, "observed")
    convert_dataset([path, *day_files(feeds)], tmp_path / "books", processes=1, tick_size=0.5)
    assert dataset_info(tmp_path / "books")["instruments"]["AAA"]["tick_source"] == "option"
