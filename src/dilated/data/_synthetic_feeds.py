"""Synthetic market-data feeds in the real file formats, sized by message count: for tests and benchmarks of the
book readers without real data.

One simulated order flow (:func:`_simulate`, Numba) drives every format: orders arrive on either side of a
mid price that walks in ticks, are partly or fully cancelled, modified (new price and size, losing their queue
place), and filled by trades (Databento's T / F messages then the resting order's C). Every cancel, modify and
fill refers to an order that is resting, so the lifecycle is consistent; ``edge_cases=True`` adds, at a small rate,
what real feeds hold too: book clears (R), cancels of unknown orders, modifies of unknown orders (an add), and
messages without a side.

Formats (:func:`synthetic_feed`):
- ``databento-mbo``: a DBN file (header encoded by ``databento-dbn``; records written with the MBO layout of
  :mod:`dilated.data._dbn_records`, which tests check against ``databento-dbn``'s decoder), starting with a
  snapshot (``F_SNAPSHOT``) of the book; ``.zst`` paths are zstd-compressed.
- ``databento-mbp10``: a DBN MBP-10 file (header by ``databento-dbn``, records in the MBP-10 layout of
  :mod:`dilated.data._dbn_records`): one record per simulated message, its action, side, price and size, and the
  ten best levels of each side (price, size, order count) after it; the MBO file's flags (snapshot, event ends).
- ``bitstamp``: an order-stream CSV (created / changed / deleted); trades show only as the resting order's change
  or deletion, as on Bitstamp; with ``edge_cases`` some deletions are left out, so stale orders cross the book.
- ``binance``: ``<ns> <json>`` lines: depth diffs of the aggregated levels (one per few messages), a REST snapshot
  line after the diff that bridges it (two older diffs before it), and ``bookTicker`` lines between; futures-style
  diffs (``pu``); with ``edge_cases`` one update id is skipped near the end (a gap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
from numba import njit

FEED_FORMATS = ("databento-mbo", "databento-mbp10", "bitstamp", "binance")
TICKS = 4096  # price ticks the simulated mid walks within
_A, _B, _C, _F, _M, _N, _R, _T = (ord(c) for c in "ABCFMNRT")
_LAST, _SNAPSHOT = 0x80, 0x20


@njit(cache=True)
def _best(totals: np.ndarray, side: int, start: int) -> int:
    """The best tick of a side (0 ask: lowest; 1 bid: highest) at or beyond ``start``; TICKS / -1 when empty."""
    if side == 0:
        t = max(start, 0)
        while t < TICKS and totals[0, t] == 0:
            t += 1
        return t
    t = min(start, TICKS - 1)
    while t >= 0 and totals[1, t] == 0:
        t -= 1
    return t


@njit(cache=True)
def _place(totals: np.ndarray, side: int) -> int:
    """A tick for a new order of ``side``: at or behind its best, sometimes inside the spread; never crossing."""
    ask, bid = _best(totals, 0, 0), _best(totals, 1, TICKS - 1)
    if ask == TICKS and bid < 0:
        ask, bid = TICKS // 2 + 1, TICKS // 2 - 1
    elif ask == TICKS:
        ask = bid + 2
    elif bid < 0:
        bid = ask - 2
    if ask - bid > 1 and np.random.random() < 0.15:  # improve the best
        return ask - 1 if side == 0 else bid + 1
    distance = int(np.random.exponential(4.0))
    t = ask + distance if side == 0 else bid - distance
    return min(max(t, 1), TICKS - 2)


@njit(cache=True)
def _message(
    out: tuple[np.ndarray, ...], m: int, now: int, a: int, sd: int, oid: int, t: int, q: int, rest: int
) -> None:
    """Message ``m`` of ``out`` (ts, action, side, order id, tick, size, flags, left): ``rest`` the order's size left."""
    ts, action, side, order_id, tick, size, _, left = out
    ts[m], action[m], side[m], order_id[m], tick[m], size[m], left[m] = now, a, sd, oid, t, q, rest


@njit(cache=True)
def _rest(orders: tuple[np.ndarray, ...], totals: np.ndarray, live: int, oid: int, sd: int, t: int, q: int) -> int:
    """Order ``oid`` rests (``orders``: id, side, tick, size of each live order); returns the live orders."""
    live_id, live_side, live_tick, live_size = orders
    live_id[live], live_side[live], live_tick[live], live_size[live] = oid, sd, t, q
    totals[sd, t] += q
    return live + 1


@njit(cache=True)
def _rare(
    out: tuple[np.ndarray, ...],
    m: int,
    now: int,
    orders: tuple[np.ndarray, ...],
    totals: np.ndarray,
    live: int,
    oid: int,
) -> int:
    """An edge case as message ``m``: a clear, an unknown cancel or modify, no side; returns the live orders."""
    kind = np.random.randint(0, 4)
    t = _place(totals, 1)
    _message(out, m, now, (_R, _C, _M, _A)[kind], _N if kind == 0 or kind == 3 else _B, oid, t, 1, 1)
    if kind == 0:
        totals[:] = 0
        return 0
    if kind == 2:  # an M of an unknown order rests like an add
        return _rest(orders, totals, live, oid, 1, t, 1)
    return live


@njit(cache=True)
def _chosen(orders: tuple[np.ndarray, ...], totals: np.ndarray, live: int, u: float) -> int:
    """The live order a cancel or modify (``u < 0.85``: any) or a trade (the first at the other side's best) hits."""
    if u < 0.85:
        return np.random.randint(0, live)
    _, live_side, live_tick, _ = orders
    sd = np.random.randint(0, 2)
    best = _best(totals, sd, 0 if sd == 0 else TICKS - 1)
    k = 0
    while k < live - 1 and not (live_side[k] == sd and live_tick[k] == best):
        k += 1
    return k


@njit(cache=True)
def _hit(
    out: tuple[np.ndarray, ...], m: int, now: int, u: float, totals: np.ndarray, oid: int, sd: int, t: int, q: int
) -> tuple[int, int, int]:
    """A resting order (``oid`` of side ``sd``, ``q`` at ``t``, already off ``totals``) cancelled in part or all,
    modified, or filled (T, F, C) from message ``m``; returns the next message, its tick and size after."""
    codes, messages = (_A, _B), len(out[0])
    if u < 0.72:
        cut = q if np.random.random() < 0.7 else 1 + np.random.randint(0, q)
        _message(out, m, now, _C, codes[sd], oid, t, cut, q - cut)
        return m + 1, t, q - cut
    if u < 0.85:
        t, q = _place(totals, sd), 1 + int(np.random.exponential(4.0))
        _message(out, m, now, _M, codes[sd], oid, t, q, q)
        return m + 1, t, q
    fill = min(q, 1 + int(np.random.exponential(2.0)))
    for step in range(3):  # T (the aggressor's side, no order id), F, then C of the resting order
        if m < messages:
            aggressor = step == 0
            a = (_T, _F, _C)[step]
            _message(
                out, m, now, a, codes[1 - sd] if aggressor else codes[sd], 0 if aggressor else oid, t, fill, q - fill
            )
            m += 1
    return m, t, q - fill


@njit(cache=True)
def _simulate(messages: int, seed: int, edge_cases: bool) -> tuple[np.ndarray, ...]:
    """``messages`` MBO messages: ts (ns), action, side, order id, price tick, size, flags, and the order's size
    left after it (``(messages,)`` each)."""
    np.random.seed(seed)
    out = (
        np.zeros(messages, np.int64),  # ts
        np.zeros(messages, np.uint8),  # action
        np.zeros(messages, np.uint8),  # side
        np.zeros(messages, np.int64),  # order id
        np.zeros(messages, np.int64),  # tick
        np.zeros(messages, np.int64),  # size
        np.zeros(messages, np.uint8),  # flags
        np.zeros(messages, np.int64),  # size left
    )
    orders = (
        np.zeros(messages, np.int64),
        np.zeros(messages, np.int64),
        np.zeros(messages, np.int64),
        np.zeros(messages, np.int64),
    )
    live_id, live_side, live_tick, live_size = orders
    totals = np.zeros((2, TICKS), np.int64)  # resting size per side (0 ask, 1 bid) and tick
    live, next_id, now, m = 0, 1, 1_700_000_000_000_000_000, 0
    snapshot = min(200, messages // 10)
    flags = out[6]
    while m < messages:
        now += 1 + int(np.random.exponential(200_000.0))
        u = np.random.random()
        first = m
        if m < snapshot or live < 20 or u < (0.45 if live < 600 else 0.3):  # a new order
            sd = np.random.randint(0, 2)
            t, q = _place(totals, sd), 1 + int(np.random.exponential(4.0))
            live = _rest(orders, totals, live, next_id, sd, t, q)
            _message(out, m, now, _A, (_A, _B)[sd], next_id, t, q, q)
            next_id, m = next_id + 1, m + 1
        elif edge_cases and u > 0.995:  # the rare ones
            live = _rare(out, m, now, orders, totals, live, next_id)
            next_id, m = next_id + 1, m + 1
        else:
            k = _chosen(orders, totals, live, u)
            sd = live_side[k]
            totals[sd, live_tick[k]] -= live_size[k]
            m, t, q = _hit(out, m, now, u, totals, live_id[k], sd, live_tick[k], live_size[k])
            live_tick[k], live_size[k] = t, q
            totals[sd, t] += q
            if q == 0:  # the last live order takes its place
                live -= 1
                for column in orders:
                    column[k] = column[live]
        for j in range(first, m):
            flags[j] = _SNAPSHOT if j < snapshot else 0
        if m >= snapshot:  # a snapshot is one event: F_LAST on its last record only
            flags[m - 1] |= _LAST
    return out


@njit(cache=True)
def _touch(seen: np.ndarray, d: int, s: int, t: int, changed: tuple[np.ndarray, ...], count: int) -> int:
    """Level ``(s, t)`` changed in diff ``d``: listed in ``changed`` (diff, side, tick) once per diff; returns the
    count listed."""
    if seen[s, t] == d:
        return count
    seen[s, t] = d
    out_diff, out_side, out_tick = changed
    out_diff[count], out_side[count], out_tick[count] = d, s, t
    return count + 1


@njit(cache=True)
def _levels_of(totals: np.ndarray, level_side: np.ndarray, level_tick: np.ndarray, level_qty: np.ndarray) -> int:
    """The quoted levels of ``totals`` into the arrays; returns how many."""
    n = 0
    for s in range(2):
        for t in range(TICKS):
            if totals[s, t] > 0:
                level_side[n], level_tick[n], level_qty[n] = s, t, totals[s, t]
                n += 1
    return n


@njit(cache=True)
def _apply(
    a: int,
    sd: int,
    oid: int,
    t_new: int,
    q_new: int,
    orders: tuple[np.ndarray, ...],
    totals: np.ndarray,
    seen: np.ndarray,
    d: int,
    changed: tuple[np.ndarray, ...],
    count: int,
) -> int:
    """An A, C or M of side ``sd`` (Databento code) applied to the level totals, its levels listed as changed."""
    o_side, o_tick, o_size = orders
    if a == _C and o_size[oid] == 0:
        return count  # an unknown order
    if o_size[oid] > 0:  # its old place goes (a modify, or a cancel before it is put back smaller)
        s, t = o_side[oid], o_tick[oid]
        totals[s, t] -= o_size[oid]
        count = _touch(seen, d, s, t, changed, count)
    if a == _C:
        o_size[oid] = max(o_size[oid] - q_new, 0)
        if o_size[oid] == 0:
            return count
        q, s, t = o_size[oid], o_side[oid], o_tick[oid]
    else:
        q, s, t = q_new, 0 if sd == _A else 1, t_new
    o_side[oid], o_tick[oid], o_size[oid] = s, t, q
    totals[s, t] += q
    return _touch(seen, d, s, t, changed, count)


@njit(cache=True)
def _level_diffs(
    action: np.ndarray,
    side: np.ndarray,
    order_id: np.ndarray,
    tick: np.ndarray,
    size: np.ndarray,
    per_diff: int,
    snapshot_diff: int,
) -> tuple[np.ndarray, ...]:
    """The simulated flow as aggregated depth diffs, one per ``per_diff`` messages: for every changed level its
    diff, side (0 ask, 1 bid), tick and new total (0: gone); and the levels before diff ``snapshot_diff``."""
    n = len(action)
    totals = np.zeros((2, TICKS), np.int64)
    seen = np.full((2, TICKS), -1, np.int64)
    ids = np.max(order_id) + 1 if n else 1
    orders = (np.zeros(ids, np.int64), np.zeros(ids, np.int64), np.zeros(ids, np.int64))  # side, tick, size by id
    changed = (
        np.zeros(2 * n + 2 * TICKS, np.int64),
        np.zeros(2 * n + 2 * TICKS, np.int64),
        np.zeros(2 * n + 2 * TICKS, np.int64),
    )
    out_diff, out_side, out_tick = changed
    out_qty = np.zeros(2 * n + 2 * TICKS, np.int64)
    snapshot = (np.zeros(2 * TICKS, np.int64), np.zeros(2 * TICKS, np.int64), np.zeros(2 * TICKS, np.int64))
    count, snapped, start = 0, 0, 0
    for m in range(n):
        d = m // per_diff
        if m % per_diff == 0:  # the previous diff is complete: its levels' totals are final
            for e in range(start, count):
                out_qty[e] = totals[out_side[e], out_tick[e]]
            start = count
            if d == snapshot_diff:
                snapped = _levels_of(totals, *snapshot)
        a = action[m]
        if a == _R:
            for s in range(2):
                for t in range(TICKS):
                    if totals[s, t] > 0:
                        count = _touch(seen, d, s, t, changed, count)
            totals[:] = 0
            orders[2][:] = 0
        elif side[m] != _N and (a == _A or a == _C or a == _M):
            count = _apply(a, side[m], order_id[m], tick[m], size[m], orders, totals, seen, d, changed, count)
    for e in range(start, count):
        out_qty[e] = totals[out_side[e], out_tick[e]]
    snap_side, snap_tick, snap_qty = snapshot
    return (
        out_diff[:count],
        out_side[:count],
        out_tick[:count],
        out_qty[:count],
        snap_side[:snapped],
        snap_tick[:snapped],
        snap_qty[:snapped],
    )


PRICE_BASE, PRICE_TICK = 4_000 * 10**9, 250_000_000  # Databento: ES-like, 0.25 points a tick (1e-9 units)


def synthetic_feed(
    format: str,
    path: str | Path,
    messages: int,
    seed: int = 0,
    edge_cases: bool = False,
    per_diff: int = 8,
    start: int | None = None,
    symbol: str = "SYN",
) -> Path:
    """Write a synthetic feed of ``messages`` simulated order-flow messages (module notes) to ``path``.

    Args:
        format: ``databento-mbo`` or ``databento-mbp10`` (``.dbn`` or ``.dbn.zst``), ``bitstamp`` (CSV) or
            ``binance`` (text lines).
        messages: MBO messages simulated; the Bitstamp file holds the book-changing ones (trades only as fills),
            the Binance file one depth diff per ``per_diff`` of them.
        edge_cases: add clears, unknown ids and sideless messages (module notes).
        start: the receive time of the first message, ns since the epoch (default 2023-11-14 22:13:20 UTC).
        symbol: the instrument's symbol (the DBN header's; Binance's is ``symbol + "USDT"``).

    Returns: ``path``.
    """
    if format not in FEED_FORMATS:
        raise ValueError(f"format must be one of {', '.join(FEED_FORMATS)}; got {format!r}")
    if messages < 1:
        raise ValueError(f"messages must be >= 1; got {messages}")
    ts, *rest = _simulate(int(messages), int(seed), bool(edge_cases))
    flow = (ts if start is None else ts - ts[0] + int(start), *rest)
    path = Path(path)
    writers = {
        "databento-mbo": _write_mbo,
        "databento-mbp10": _write_mbp10,
        "bitstamp": _write_bitstamp,
        "binance": _write_binance,
    }
    writers[format](path, flow, edge_cases, per_diff, symbol)
    return path


def mbo_header(symbol: str, start: int, schema: str = "mbo") -> bytes:
    """The DBN metadata of a CME Globex file of ``symbol`` (``schema``: ``mbo`` or ``mbp-10``) starting at
    ``start`` (ns), encoded by databento-dbn."""
    import databento_dbn as dbn

    return dbn.Metadata(
        dataset="GLBX.MDP3",
        schema=cast(dbn.Schema, dbn.Schema.from_str(schema)),  # the stubs declare enum members as str
        start=start,
        stype_in=cast(dbn.SType, dbn.SType.RAW_SYMBOL),
        stype_out=cast(dbn.SType, dbn.SType.INSTRUMENT_ID),
        symbols=[symbol],
        partial=[],
        not_found=[],
        mappings=[],
    ).encode()


def _write_dbn(path: Path, schema: str, flow: tuple[np.ndarray, ...], symbol: str, fill: Any) -> None:
    """A DBN file of ``schema`` for ``flow``: the header, then records a block at a time, their common fields set
    here and the rest by ``fill(records, block)`` (``block`` a slice of the flow); ``.zst`` paths compressed."""
    from dilated.data._dbn_records import DTYPES, RTYPES

    ts, action, side, _, tick, size, flags, _ = flow
    dtype = DTYPES[schema]
    with open(path, "wb") as raw:
        out: Any = raw
        if path.suffix == ".zst":
            import zstandard

            out = zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False)
        out.write(mbo_header(symbol, int(ts[0]), schema))
        step = (56 << 20) // dtype.itemsize  # 2**20 MBO records
        for start in range(0, len(ts), step):
            part = slice(start, start + step)
            records = np.zeros(len(ts[part]), dtype)
            records["length"], records["rtype"] = dtype.itemsize // 4, RTYPES[schema]
            records["publisher_id"], records["instrument_id"] = 1, 1
            records["ts_event"], records["ts_recv"] = ts[part] - 5_000, ts[part]
            records["price"], records["size"] = PRICE_BASE + tick[part] * PRICE_TICK, size[part]
            records["flags"], records["action"], records["side"] = flags[part], action[part], side[part]
            records["sequence"] = np.arange(start, start + len(records))
            fill(records, part)
            out.write(records.tobytes())
        if out is not raw:
            out.close()


def _write_mbo(path: Path, flow: tuple[np.ndarray, ...], edge_cases: bool, per_diff: int, symbol: str) -> None:
    def fill(records: np.ndarray, part: slice) -> None:
        records["order_id"] = flow[3][part]

    _write_dbn(path, "mbo", flow, symbol, fill)


@njit(cache=True)
def _mbp_levels(
    action: np.ndarray, side: np.ndarray, order_id: np.ndarray, tick: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ten best levels of each side after each message: tick (-1: none), size and order count
    ``(messages, 2, 10)`` each (side 0 ask, 1 bid), and the depth of the level each message changed."""
    n = len(action)
    ticks = np.full((n, 2, 10), -1, np.int32)
    sizes, counts = np.zeros((n, 2, 10), np.int32), np.zeros((n, 2, 10), np.int32)
    depth = np.zeros(n, np.uint8)
    totals, orders_at = np.zeros((2, TICKS), np.int64), np.zeros((2, TICKS), np.int64)
    ids = np.max(order_id) + 1 if n else 1
    orders = (np.zeros(ids, np.int64), np.zeros(ids, np.int64), np.zeros(ids, np.int64))  # side, tick, size by id
    o_side, o_tick, o_size = orders
    seen, changed = (
        np.full((2, TICKS), -1, np.int64),
        (np.zeros(2, np.int64), np.zeros(2, np.int64), np.zeros(2, np.int64)),
    )
    best = np.array([TICKS, -1])  # best ask and bid tick (TICKS / -1: an empty side)
    for m in range(n):
        a, oid, at = action[m], order_id[m], -1  # ``at``: the side * TICKS + tick the message leaves an order at
        if a == _R:
            totals[:], orders_at[:], o_size[:], best[0], best[1] = 0, 0, 0, TICKS, -1
        elif side[m] != _N and (a == _A or a == _C or a == _M):
            if o_size[oid] > 0:
                orders_at[o_side[oid], o_tick[oid]] -= 1
            _apply(a, side[m], oid, tick[m], size[m], orders, totals, seen, m, changed, 0)
            if o_size[oid] > 0:
                s, t = o_side[oid], o_tick[oid]
                orders_at[s, t] += 1
                if (t < best[0]) if s == 0 else (t > best[1]):
                    best[s] = t
                at = s * TICKS + t
        for s in range(2):
            if 0 <= best[s] < TICKS and totals[s, best[s]] == 0:
                best[s] = _best(totals, s, best[s])
            t, level = best[s], 0
            while level < 10 and 0 <= t < TICKS:
                if totals[s, t] > 0:
                    ticks[m, s, level], sizes[m, s, level], counts[m, s, level] = t, totals[s, t], orders_at[s, t]
                    if at == s * TICKS + t:
                        depth[m] = level
                    level += 1
                t += 1 if s == 0 else -1
    return ticks, sizes, counts, depth


def _write_mbp10(path: Path, flow: tuple[np.ndarray, ...], edge_cases: bool, per_diff: int, symbol: str) -> None:
    from databento_dbn import UNDEF_PRICE

    _, action, side, order_id, tick, size, _, _ = flow
    ticks, sizes, counts, depth = _mbp_levels(action, side, order_id, tick, size)

    def fill(records: np.ndarray, part: slice) -> None:
        records["depth"] = depth[part]
        levels = records["levels"]
        for s, (px, sz, ct) in enumerate((("ask_px", "ask_sz", "ask_ct"), ("bid_px", "bid_sz", "bid_ct"))):
            quoted = ticks[part, s] >= 0
            levels[px] = np.where(quoted, PRICE_BASE + ticks[part, s].astype(np.int64) * PRICE_TICK, UNDEF_PRICE)
            levels[sz], levels[ct] = sizes[part, s], counts[part, s]

    _write_dbn(path, "mbp-10", flow, symbol, fill)


def _write_bitstamp(path: Path, flow: tuple[np.ndarray, ...], edge_cases: bool, per_diff: int, symbol: str) -> None:
    import pandas as pd

    ts, action, side, order_id, tick, size, _, left = flow
    booked = (side != _N) & ((action == _A) | (action == _M) | (action == _C))
    if edge_cases:  # the feed misses some deletions: those orders stay, stale, until uncrossing removes them
        rng = np.random.default_rng(int(ts[0]) % 2**32)
        booked &= ~((action == _C) & (left == 0) & (rng.random(len(action)) < 0.02))
    rows = np.flatnonzero(booked)
    kind = np.where(action[rows] == _A, "created", np.where(left[rows] == 0, "deleted", "changed"))
    volume = np.where(action[rows] == _C, left[rows], size[rows])  # the order's remaining volume
    deleted = kind == "deleted"
    volume = np.where(deleted, size[rows], volume)  # a deletion shows the volume it had
    exchange = ts[rows] // 1_000_000
    frame = pd.DataFrame(
        {
            "id": order_id[rows],
            "timestamp": exchange + 40,
            "exchange_timestamp": exchange,
            "price": (60_000 + tick[rows]).astype(np.float64),
            "volume": volume / 1000,
            "action": kind,
            "direction": np.where(side[rows] == _A, "ask", "bid"),
        }
    )
    frame.to_csv(path, index=False, float_format="%.8f")


def _write_binance(path: Path, flow: tuple[np.ndarray, ...], edge_cases: bool, per_diff: int, symbol: str) -> None:
    import orjson

    ts, action, side, order_id, tick, size, _, _ = flow
    bounds_ms = [int(t) // 1_000_000 for t in ts[per_diff - 1 :: per_diff]] + [int(ts[-1]) // 1_000_000]
    snapshot_diff = 3
    diff, level_side, level_tick, qty, snap_side, snap_tick, snap_qty = _level_diffs(
        action, side, order_id, tick, size, per_diff, snapshot_diff
    )

    def price(t: int) -> str:
        return f"{60_000 + t // 10}.{t % 10}"

    def pairs(mask: np.ndarray, ticks: np.ndarray, sizes: np.ndarray) -> list[list[str]]:
        return [[price(t), str(q)] for t, q in zip(ticks[mask].tolist(), sizes[mask].tolist())]

    bounds = np.searchsorted(diff, np.arange(diff[-1] + 2 if len(diff) else 1))
    emitted = [d for d in range(len(bounds) - 1) if bounds[d + 1] > bounds[d]]  # Binance sends no empty diff
    gap_at = int(0.9 * len(emitted)) if edge_cases and len(emitted) > 10 else -1
    lines, u, last_id = [], 1_000, 0
    for number, d in enumerate(emitted):
        part = slice(bounds[d], bounds[d + 1])
        lost = 3 if number == gap_at else 0
        previous, first = u + lost, u + lost + 1
        first, previous = int(first), int(previous)
        u = first + int(bounds[d + 1] - bounds[d])  # u > U: a futures snapshot can sit inside the range
        event_ms = bounds_ms[d]
        data = {
            "e": "depthUpdate",
            "E": event_ms,
            "T": event_ms,
            "s": f"{symbol}USDT",
            "U": first,
            "u": u,
            "pu": previous,
            "b": pairs(level_side[part] == 1, level_tick[part], qty[part]),
            "a": pairs(level_side[part] == 0, level_tick[part], qty[part]),
        }
        received = event_ms * 1_000_000 + 7_000_000
        lines.append(f"{received} ".encode() + orjson.dumps({"stream": f"{symbol.lower()}usdt@depth", "data": data}))
        if d >= snapshot_diff and not last_id:  # the REST reply arrives after the diff that bridges it
            last_id = first
            rest = {
                "lastUpdateId": last_id,
                "bids": pairs(snap_side == 1, snap_tick, snap_qty),
                "asks": pairs(snap_side == 0, snap_tick, snap_qty),
            }
            lines.append(f"{received} ".encode() + orjson.dumps(rest))
        if number % 3 == 2:
            ticker = {"e": "bookTicker", "u": u, "s": f"{symbol}USDT", "b": "1", "B": "1", "a": "2", "A": "1"}
            lines.append(
                f"{received} ".encode() + orjson.dumps({"stream": f"{symbol.lower()}usdt@bookTicker", "data": ticker})
            )
    path.write_bytes(b"\n".join(lines) + b"\n")
