"""Book reconstruction: every reader replays random order streams exactly as a naive reference book, at every event;
real feeds from ../shared/data (skipped where absent); the Parquet format; labels and splits on books; CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import cast

import databento_dbn as dbn
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dilated.data import (
    Book,
    binance_book,
    bitstamp_book,
    book_columns,
    book_splits,
    bundled_lobster_sample,
    convert_book,
    databento_mbo_book,
    databento_mbp10_book,
    detect_format,
    label_balance,
    read_book,
    smoothed_change,
    write_book,
)
from dilated.data._book_readers import ENGINES
from dilated.data._orderbook import PriceLevels
from dilated.data._windows import WindowDataset
from dilated.training._config import TrainConfig
from dilated.training._datasets import build_splits, dataset_size
from dilated.training._lob_baseline import LogisticRegression, lob_baselines, lob_features
from helpers import shared, synthetic_book

# databento_dbn's stubs declare its enum members as ``str``: the members used here, typed as what they are
MBO, MBP_10 = cast(dbn.Schema, dbn.Schema.MBO), cast(dbn.Schema, dbn.Schema.MBP_10)
RAW_SYMBOL, INSTRUMENT_ID = cast(dbn.SType, dbn.SType.RAW_SYMBOL), cast(dbn.SType, dbn.SType.INSTRUMENT_ID)
ADD, BID = cast(dbn.Action, dbn.Action.ADD), cast(dbn.Side, dbn.Side.BID)


# ------------------------------------------------------------------------------------------ the reference book


def reference_row(asks: dict, bids: dict, levels: int, price_scale: float = 1.0, size_scale: float = 1.0) -> list:
    """The naive book: sort the dicts, take the best ``levels``, pad with NaN."""
    row = []
    ask_levels = sorted((p, s) for p, s in asks.items() if s > 0)[:levels]
    bid_levels = sorted(((p, s) for p, s in bids.items() if s > 0), reverse=True)[:levels]
    for i in range(levels):
        for side in (ask_levels, bid_levels):
            row += [side[i][0] * price_scale, side[i][1] * size_scale] if i < len(side) else [np.nan, np.nan]
    return row


def assert_same_book(book: Book, expected_ts: list, expected_rows: list) -> None:
    np.testing.assert_array_equal(book.ts, np.array(expected_ts, dtype=np.int64))
    np.testing.assert_array_equal(book.values, np.array(expected_rows, dtype=np.float64).reshape(book.values.shape))


def test_price_levels_keep_best_first() -> None:
    bids = PriceLevels("bid")
    for price, size in ((10, 1), (12, 2), (11, 3), (12, 0), (9, 4)):
        bids.set(price, size)
    assert bids.top(2) == [(11, 3), (10, 1)] and bids.best() == 11 and len(bids) == 3
    assert bids.depth_of(10.5) == 1 and bids.prices() == [11, 10, 9]


# ------------------------------------------------------------------------------------------------- Databento

ORDER_IDS = st.integers(1, 12)
MBO_MESSAGES = st.lists(
    st.tuples(
        st.sampled_from("AACMTFR"),
        ORDER_IDS,
        st.sampled_from("AB"),
        st.integers(95, 105),
        st.integers(1, 5),
        st.booleans(),
    ),
    min_size=1,
    max_size=60,
)


def metadata(schema: dbn.Schema = MBO) -> bytes:
    """The DBN header of a file of one instrument, "X"."""
    return dbn.Metadata(
        dataset="GLBX.MDP3",
        schema=schema,
        start=0,
        stype_in=RAW_SYMBOL,
        stype_out=INSTRUMENT_ID,
        symbols=["X"],
        partial=[],
        not_found=[],
        mappings=[],
    ).encode()


def mbo(
    sequence: int,
    ts_event: int,
    ts_recv: int,
    order_id: int,
    price: int,
    size: int,
    action: dbn.Action,
    side: dbn.Side,
    flags: int,
) -> bytes:
    """One MBO record of instrument 7 (``price`` in currency units)."""
    message = dbn.MBOMsg(
        publisher_id=1,
        instrument_id=7,
        ts_event=ts_event,
        ts_recv=ts_recv,
        order_id=order_id,
        price=price * 10**9,
        size=size,
        action=action,
        side=side,
        flags=flags,
        sequence=sequence,
    )
    return bytes(message)


def write_mbo(path: Path, messages: list[tuple]) -> Path:
    records = [
        mbo(
            n,
            n,
            1000 + n,
            order_id,
            price,
            size,
            dbn.Action(action),
            dbn.Side(side),
            0x80 if last or n == len(messages) - 1 else 0,
        )
        for n, (action, order_id, side, price, size, last) in enumerate(messages)
    ]
    path.write_bytes(metadata() + b"".join(records))
    return path


@pytest.mark.parametrize("engine", ENGINES)
@given(messages=MBO_MESSAGES)
@settings(max_examples=40)
def test_databento_mbo_equals_reference(
    engine: str, messages: list[tuple], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = write_mbo(tmp_path_factory.mktemp("mbo") / "x.mbo.dbn", messages)
    book = databento_mbo_book(path, levels=3, engine=engine)
    orders: dict[int, tuple[str, int, int]] = {}
    expected_ts, expected = [], []
    for number, (action, order_id, side, price, size, last) in enumerate(messages):
        if action == "R":
            orders.clear()
        elif action == "A" or (action == "M"):
            orders[order_id] = (side, price, size)
        elif action == "C" and order_id in orders:
            side0, price0, size0 = orders[order_id]
            if size >= size0:
                del orders[order_id]
            else:
                orders[order_id] = (side0, price0, size0 - size)
        if last or number == len(messages) - 1:
            levels: dict[str, dict[int, int]] = {"A": {}, "B": {}}
            for side0, price0, size0 in orders.values():
                levels[side0][price0 * 10**9] = levels[side0].get(price0 * 10**9, 0) + size0
            expected_ts.append(1000 + number)
            expected.append(reference_row(levels["A"], levels["B"], 3, price_scale=1e-9))
    assert_same_book(book, expected_ts, expected)


def test_databento_snapshot_replaces_the_book(tmp_path: Path) -> None:
    day = [("A", 1, "B", 99, 2, True), ("A", 2, "A", 101, 3, True)]
    snapshot = tmp_path / "snap.dbn"
    snapshot.write_bytes(metadata() + mbo(0, 0, 1, 9, 98, 5, ADD, BID, 0x20 | 0x80))  # a stale snapshot: order 9
    fresh = mbo(1, 0, 2, 1, 99, 2, ADD, BID, 0x20)  # the day's own snapshot record
    live = write_mbo(tmp_path / "live.dbn", day[1:])
    (tmp_path / "day.dbn").write_bytes(metadata() + fresh + live.read_bytes()[len(metadata()) :])
    book = databento_mbo_book([snapshot, tmp_path / "day.dbn"], levels=2)
    assert book.stats["snapshots"] == 2 and len(book) == 3
    assert book.column("bid_price")[1] == 99.0 and np.isnan(book.column("bid_price", 2)[1])  # order 9 is gone
    assert book.column("ask_price")[2] == 101.0 and book.column("bid_size")[2] == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_databento_mbp10_rows(tmp_path: Path, engine: str) -> None:
    undefined = dbn.UNDEF_PRICE
    pairs = [
        dbn.BidAskPair(
            bid_px=(100 - i) * 10**9 if i < 2 else undefined,
            ask_px=(101 + i) * 10**9,
            bid_sz=5 + i if i < 2 else 0,
            ask_sz=3,
            bid_ct=1,
            ask_ct=1,
        )
        for i in range(10)
    ]
    records = [
        dbn.MBP10Msg(
            publisher_id=1,
            instrument_id=7,
            ts_event=0,
            ts_recv=5 + n,
            price=0,
            size=0,
            action=ADD,
            side=BID,
            depth=0,
            flags=0x80 if n != 1 else 0,
            sequence=n,
            levels=pairs,
        )
        for n in range(3)
    ]
    path = tmp_path / "x.mbp10.dbn"
    path.write_bytes(metadata(MBP_10) + b"".join(bytes(r) for r in records))
    assert detect_format(path) == "databento-mbp10"
    book = databento_mbp10_book(path, levels=3, engine=engine)
    assert book.ts.tolist() == [5, 7]  # the record without F_LAST is inside an event
    np.testing.assert_array_equal(book.values[0], [101, 3, 100, 5, 102, 3, 99, 6, 103, 3, np.nan, np.nan])


def test_databento_mbo_real_file() -> None:
    snapshot = shared("databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst")
    day = shared("databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst")
    book = convert_book([snapshot, day])
    assert book.stats["messages"] == 77_517 and len(book) == 47_024 and book.stats["snapshots"] == 2
    assert book.stats["unknown_cancels"] == 0 and not np.isnan(book.values).any()
    crossed = book.ts[book.spread <= 0]  # only in the pre-open auction, which ends at 23:00 UTC
    assert len(crossed) == 891 and crossed.max() <= np.datetime64("2023-12-25T23:00:00.001", "ns").astype(np.int64)
    alone = databento_mbo_book(day)  # the day file repeats the snapshot: the same books from its snapshot on
    np.testing.assert_array_equal(alone.values, book.values[1:])


# --------------------------------------------------------------------------------------------------- Binance

LEVEL_UPDATES = st.lists(st.tuples(st.integers(90, 99), st.integers(0, 3)), max_size=4)


def write_binance(path: Path, snapshot: dict, diffs: list[dict], futures: bool) -> Path:
    lines = []
    for diff in diffs:
        data = {
            "e": "depthUpdate",
            "E": diff["E"],
            "s": "X",
            "U": diff["U"],
            "u": diff["u"],
            "b": diff["b"],
            "a": diff["a"],
            **({"pu": diff["pu"]} if futures else {}),
        }
        lines.append(f"{diff['E'] * 10**6} " + json.dumps({"stream": "x@depth", "data": data}))
    lines.insert(1, f"{10**6} " + json.dumps(snapshot))  # the first diff arrives before the REST reply
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("engine", ENGINES)
@given(updates=st.lists(st.tuples(LEVEL_UPDATES, LEVEL_UPDATES), min_size=1, max_size=30), futures=st.booleans())
@settings(max_examples=40)
def test_binance_equals_reference(
    engine: str, updates: list, futures: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    snapshot = {"lastUpdateId": 10, "bids": [["95.0", "1.5"], ["94.0", "2"]], "asks": [["105.0", "1"]]}
    diffs, previous, expected, expected_ts = [], 10, [], []
    bids, asks = {95.0: 1.5, 94.0: 2.0}, {105.0: 1.0}
    for number, (bid_updates, ask_updates) in enumerate(updates):
        first = 9 if number == 0 else previous + 1  # the first diff bridges the snapshot
        last = first + 2
        diffs.append(
            {
                "E": 100 + number,
                "U": first,
                "u": last,
                "pu": previous,
                "b": [[f"{p}.0", str(q)] for p, q in bid_updates],
                "a": [[f"{p + 11}.00", str(q)] for p, q in ask_updates],
            }
        )
        previous = last
        for side, changes, offset in ((bids, bid_updates, 0), (asks, ask_updates, 11)):
            for price, quantity in changes:
                side[float(price + offset)] = float(quantity)
        expected_ts.append((100 + number) * 10**6)
        expected.append(reference_row(asks, bids, 2))
    path = write_binance(tmp_path_factory.mktemp("bn") / "x.txt", snapshot, diffs, futures)
    book = binance_book(path, levels=2, engine=engine)
    assert_same_book(book, expected_ts, expected)
    assert book.stats["gaps"] == 0 and book.stats["diffs_before_snapshot_line"] == 1


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("futures", [False, True])
def test_binance_gap_raises_or_truncates(tmp_path: Path, futures: bool, engine: str) -> None:
    snapshot = {"lastUpdateId": 10, "bids": [["95", "1"]], "asks": [["105", "1"]]}
    diffs = [
        {"E": 1, "U": 9, "u": 12, "pu": 8, "b": [], "a": []},
        {"E": 2, "U": 13, "u": 14, "pu": 12, "b": [["96", "1"]], "a": []},
        {"E": 3, "U": 16, "u": 17, "pu": 15, "b": [], "a": []},
    ]  # 15 is missing
    path = write_binance(tmp_path / "x.txt", snapshot, diffs, futures)
    with pytest.raises(ValueError, match=r"x.txt:4: sequence gap after update id 14"):
        binance_book(path, engine=engine)
    book = binance_book(path, gaps="truncate", engine=engine)
    assert len(book) == 2 and book.stats["gaps"] == 1 and book.column("bid_price")[-1] == 96.0
    assert book.stats["first_gap"]["where"].endswith("x.txt:4")


def test_binance_spot_real_file_is_never_crossed() -> None:
    """The diff that bridges the snapshot sits before the snapshot line; applied, no book is crossed."""
    files = [shared("binance/spot/btcusdt_20240808.gz"), shared("binance/spot/btcusdt_20240809.gz")]
    book = convert_book(files)
    assert book.stats["gaps"] == 0 and book.stats["crossed_events"] == 0 and len(book) == 6_493
    assert book.stats["diffs_before_snapshot_line"] == 3 and book.stats["older_than_snapshot"] == 2


def test_binance_coin_m_real_files() -> None:
    files = [shared("binance/cm/btcusd_perp_20240808.gz"), shared("binance/cm/btcusd_perp_20240809.gz")]
    book = convert_book(files, levels=5)
    assert len(book) == 44_772 and book.stats["gaps"] == 0 and book.stats["crossed_events"] == 0
    assert book.values.shape == (44_772, 20) and np.nanmin(book.spread) == pytest.approx(0.1)


# -------------------------------------------------------------------------------------------------- Bitstamp

BITSTAMP_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["created", "created", "changed", "deleted"]),
        st.integers(1, 10),
        st.integers(0, 9),
        st.integers(1, 10**8),
    ),
    min_size=1,
    max_size=60,
)


def write_bitstamp(path: Path, rows: list[tuple]) -> Path:
    lines = ["id,timestamp,exchange_timestamp,price,volume,action,direction"]
    lines += [
        f"{order_id},{2000 + ms},{1000 + ms},{price}.0,{volume / 1e8:.8f},{action},{side}"
        for ms, (order_id, price, volume, action, side) in enumerate(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("engine", ENGINES)
@given(rows=BITSTAMP_ROWS)
@settings(max_examples=40)
def test_bitstamp_equals_reference(engine: str, rows: list[tuple], tmp_path_factory: pytest.TempPathFactory) -> None:
    """Odd order ids bid below 100, even ones ask above it: the book never crosses, so nothing is uncrossed."""
    feed, expected, expected_ts = [], [], []
    orders: dict[int, tuple[str, int, int]] = {}
    for ms, (action, order_id, offset, satoshi) in enumerate(rows):
        side, price = ("bid", 90 + offset) if order_id % 2 else ("ask", 101 + offset)
        feed.append((order_id, price, satoshi, action, side))
        if action == "deleted":
            orders.pop(order_id, None)
        else:
            orders[order_id] = (side, price, satoshi)
        levels: dict[str, dict[float, int]] = {"ask": {}, "bid": {}}
        for side0, price0, units in orders.values():
            levels[side0][float(price0)] = levels[side0].get(float(price0), 0) + units
        expected_ts.append((1000 + ms) * 10**6)
        expected.append(reference_row(levels["ask"], levels["bid"], 3, size_scale=1e-8))
    path = write_bitstamp(tmp_path_factory.mktemp("bs") / "orders.csv", feed)
    book = bitstamp_book(path, levels=3, volume_unit="coin", engine=engine)
    assert_same_book(book, expected_ts, expected)
    assert book.stats["uncross_orders"] == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_bitstamp_uncrossing_removes_the_stale_side(tmp_path: Path, engine: str) -> None:
    rows = [
        (1, 101, 10**8, "created", "ask"),
        (2, 102, 10**8, "created", "ask"),
        (3, 99, 10**8, "created", "bid"),
        (4, 103, 10**8, "created", "bid"),  # a newer bid above both asks: the two asks are stale
        (5, 100, 10**8, "created", "ask"),
    ]
    book = bitstamp_book(write_bitstamp(tmp_path / "orders.csv", rows), levels=2, engine=engine)
    # then the ask at 100, below the bid at 103, is newer: the bid goes
    assert book.stats["uncross_orders"] == 3 and book.stats["uncross_events"] == 2
    assert book.stats["crossed_events"] == 0
    np.testing.assert_array_equal(book.values[-1], [100, 1, 99, 1, np.nan, np.nan, np.nan, np.nan])
    raw = bitstamp_book(tmp_path / "orders.csv", levels=2, uncross=False, engine=engine)
    assert raw.stats["crossed_events"] == 2


def test_bitstamp_same_exchange_millisecond_is_one_event(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "id,timestamp,exchange_timestamp,price,volume,action,direction\n"
        "1,10,5,99.0,1.0,created,bid\n2,11,5,101.0,1.0,created,bid\n"  # a taker bid at 101 ...
        "3,12,5,101.0,0.5,created,ask\n2,12,5,101.0,0.5,changed,bid\n2,13,5,101.0,0.5,deleted,bid\n"
        "3,14,5,101.0,0.5,deleted,ask\n"
    )  # ... matched within one exchange millisecond
    book = bitstamp_book(path, levels=1)
    assert len(book) == 1 and book.stats["uncross_orders"] == 0 and book.stats["time_column"] == "exchange_timestamp"


def test_bitstamp_real_file() -> None:
    book = convert_book(shared("bitstamp/2026-05-02/orders.csv.gz"))
    stats = book.stats
    assert stats["messages"] == 314_057 and len(book) == 168_657 and stats["crossed_events"] == 0
    assert (stats["uncross_orders"], stats["uncross_events"]) == (2, 2)  # two stale asks of the start snapshot
    assert np.nanmin(book.spread) == 1.0


# ------------------------------------------------------------------------------------------- LOBSTER, format


def test_lobster_book_in_the_common_format(tmp_path: Path) -> None:
    message, orderbook = bundled_lobster_sample()
    assert detect_format(message) == "lobster"
    book = convert_book(orderbook)  # the partner file is found beside it
    raw = np.loadtxt(orderbook, delimiter=",")
    assert len(book) == 999 and book.levels == 10
    np.testing.assert_array_equal(book.column("ask_price"), raw[:, 0] / 10_000)
    assert (
        book.ts[0]
        == np.datetime64("2012-06-21T13:30:00", "ns").astype(np.int64) + round(34200.004241176 * 1e9) - 34_200 * 10**9
    )
    path = write_book(book, tmp_path / "aapl.parquet")
    again = read_book(path, levels=2)
    assert again.format == "lobster" and again.values.shape == (999, 8)
    np.testing.assert_array_equal(again.values, book.values[:, :8])
    assert list(book.to_frame().columns[:5]) == ["ts", *book_columns(1)]


# ------------------------------------------------------------------------------------------- labels, splits


def test_smoothed_change_is_exact_for_unchanged_prices() -> None:
    mid = np.full(50, 61773.6)
    assert np.all(smoothed_change(mid, 10)[:40] == 0) and np.all(smoothed_change(mid, 5, "past")[4:45] == 0)
    mid = np.array([1.0, 1.0, 2.0, 2.0, 2.0, 4.0])
    np.testing.assert_allclose(smoothed_change(mid, 2)[:4], [0.5, 1.0, 0.0, 0.5])
    np.testing.assert_allclose(smoothed_change(mid, 2, "past")[1:4], [(2 - 1) / 1, (2 - 1.5) / 1.5, (3 - 2) / 2])


def test_book_splits_gap_zscore_and_balance() -> None:
    book = synthetic_book()
    book.values[1000, 0] = np.nan  # an empty ask side: no window may hold it
    splits = book_splits(book, levels=3, window=20, horizon=10)
    for before, after in ((splits.train, splits.val), (splits.val, splits.test)):
        assert int(after.ends[0] - before.ends[-1]) >= 20 + 10
    ends = splits.full.ends.numpy()
    assert not np.any((ends >= 1000) & (ends - 19 <= 1000)) and not np.any((ends < 1000) & (ends + 10 >= 1000))
    train_steps = splits.full.features[:, : int(splits.train.ends[-1]) + 11]
    assert abs(float(train_steps.mean())) < 0.05  # z-scored with the training part's statistics
    balance = splits.info["label_balance"]["train"]
    assert 0.2 < balance[1] < 0.5 and splits.info["threshold_rule"] == "a third of the training labels stationary"
    assert sum(splits.info["label_counts"]["test"]) == len(splits.test)
    strided = book_splits(book, levels=3, window=20, horizon=10, stride=7)
    assert np.all(strided.full.ends.numpy() % 7 == 0)
    report = label_balance(book, [10], threshold=0.0)
    assert set(report[10]) == {"future", "past", "tlob"} and report[10]["future"]["rule"] == "given"
    for part in ("train", "val", "test"):
        assert sum(report[10]["future"][part].values()) == pytest.approx(1.0)


def test_book_data_kind_builds_splits(tmp_path: Path) -> None:
    path = write_book(synthetic_book(), tmp_path / "book.parquet")
    config = TrainConfig.from_dict(
        {
            "model": "translob",
            "data": {"kind": "book", "path": str(path), "levels": 3, "window": 20, "horizon": 10, "stride": 2},
        }
    )
    splits = build_splits(config.data, progress=False)
    assert (splits.channels, splits.length) == (12, 20) and splits.task.num_classes == 3
    assert splits.info["sizes"]["train"] == dataset_size(splits.train) and "threshold" in splits.info
    x, y = splits.train[0]
    assert x.shape == (12, 20) and int(y) in (0, 1, 2)


def test_a_book_run_evaluated_on_another_book_keeps_its_normalisation(tmp_path: Path) -> None:
    """`dilated evaluate --data other.yaml` passes the run's statistics: the model sees the other book on the scale
    it was trained on, as LOBSTER runs do, not re-normalised to that book's own training part."""
    trained = book_splits(synthetic_book(), levels=3, window=20, horizon=10)
    other = synthetic_book()
    other.values[:, 0::2] *= 2.0  # prices twice as high: another market
    path = write_book(other, tmp_path / "other.parquet")
    data = TrainConfig.from_dict(
        {"model": "translob", "data": {"kind": "book", "path": str(path), "levels": 3, "window": 20, "horizon": 10}}
    ).data
    stats = trained.info["zscore"]
    splits = build_splits(data, stats=stats, progress=False)
    assert splits.info["normalisation"] == stats and isinstance(splits.full, WindowDataset)
    raw = other.values[:, :12]
    np.testing.assert_allclose(
        splits.full.features[:, 100].numpy(), (raw[100] - np.array(stats["mean"])) / np.array(stats["std"]), rtol=1e-5
    )
    refit = build_splits(data, progress=False)  # a run of its own fits the other book's statistics
    assert refit.info["normalisation"] != stats


def test_baselines_on_a_book() -> None:
    book = synthetic_book()
    ends = np.array([30, 40])
    features = lob_features(book, ends, window=20, depth=3)
    bids, asks = book.values[ends][:, 3], book.values[ends][:, 1]
    np.testing.assert_allclose(features[:, 0], (bids - asks) / (bids + asks))
    assert features.shape == (2, 3 + 4 + 1)  # imbalance depth 3, lags 1, 2, 5, 10, spread
    separable = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    model = LogisticRegression.fit(separable, np.array([2, 2, 1, 1, 0, 0]), l2=0.0)
    assert model.logits(separable).argmax(1).tolist() == [2, 2, 1, 1, 0, 0]
    result = lob_baselines(book_splits(book, levels=3, window=20, horizon=10))
    assert set(result) == {"majority", "logistic"} and result["logistic"]["test"]["samples"] > 100


# ------------------------------------------------------------------------------------------------------- CLI


def test_cli_convert_and_info(tmp_path: Path) -> None:
    feed = write_bitstamp(
        tmp_path / "orders.csv",
        [(1, 99, 10**8, "created", "bid"), (2, 101, 10**8, "created", "ask"), (3, 100, 10**8, "created", "bid")],
    )
    out = tmp_path / "book.parquet"
    command = [
        sys.executable,
        "-m",
        "dilated.cli",
        "data",
        "convert",
        str(feed),
        "-o",
        str(out),
        "--levels",
        "2",
        "--no-progress",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "wrote" in result.stdout and "3 events x 2 levels" in result.stdout
    assert read_book(out).format == "bitstamp"
    info = subprocess.run(
        [sys.executable, "-m", "dilated.cli", "data", "info", str(out), "--horizons", "1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "events 3, 2 levels per side" in info and "k=1 future: none (too few usable events)" in info
    bad = subprocess.run(
        [sys.executable, "-m", "dilated.cli", "data", "convert", str(feed), "-o", str(out), "--format", "binance"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("dilated: error: ") and bad.stderr.count("\n") == 1
