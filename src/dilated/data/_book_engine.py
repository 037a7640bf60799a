"""The compiled book engine: Numba kernels that apply feed messages to a book held in flat arrays, and record rows.

It reproduces :mod:`dilated.data._orderbook` (the pure-Python book, kept as the test oracle) exactly: the same
rows, bit for bit, and the same counts. State lives in NumPy arrays owned by :class:`OrderBookArrays` (market by
order: Databento MBO, Bitstamp) or :class:`LevelBookArrays` (aggregated levels: Binance diffs), so a feed is applied
in chunks and the caller keeps only one chunk of input and output at a time.

Layout:
- A side is a sorted array of price levels stored worst first (asks descending, bids ascending), so the best level
  is the last one and the busy top of the book moves few entries on an insert. Depth ``d`` is index ``n - 1 - d``.
- Market-by-order books keep each level's orders in a doubly linked list (least recently updated first, as the
  Python book's per-level dicts), the orders in a pool of slots, and an open-addressing hash table (linear
  probing, backward-shift deletion) from order id to slot.
- Capacities are checked before each chunk (a chunk of ``n`` messages adds at most ``n`` orders and ``n`` levels
  per side), so no kernel ever grows an array.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

ASK, BID = 0, 1
# order pool rows (OrderBookArrays.orders)
_SIDE, _SIZE, _SEQ, _PREV, _NEXT, _ID = range(6)
# scalar state (OrderBookArrays.state)
_ST_SEQ, _ST_FREE, _ST_USED, _ST_LIVE, _ST_PENDING, _ST_SNAPSHOT, _ST_TS = range(7)
# counters (OrderBookArrays.counts): shared by the MBO and Bitstamp kernels, named by each reader
CROSSED = 0
MBO_SNAPSHOTS, MBO_CLEARS, MBO_UNKNOWN_CANCELS, MBO_MODIFY_ADDS, MBO_SIDELESS = 1, 2, 3, 4, 5
BS_UNKNOWN_DELETES, BS_UNKNOWN_CHANGES, BS_UNCROSS_EVENTS, BS_UNCROSS_ORDERS, BS_UNCROSS_LEVELS = 1, 2, 3, 4, 5
BS_UNCROSS_VOLUME = 6
# Databento MBO codes (ASCII)
F_LAST, F_SNAPSHOT = 0x80, 0x20
_A, _B, _C, _M, _R = ord("A"), ord("B"), ord("C"), ord("M"), ord("R")
# Bitstamp action codes
BS_CREATED, BS_CHANGED, BS_DELETED = 0, 1, 2
_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as int64: Fibonacci hashing


# ----------------------------------------------------------------------------------------- hash: id -> slot


@njit(cache=True, inline="always")
def _home(key: int, mask: int) -> int:
    h = key * _GOLDEN
    return (h ^ (h >> 29)) & mask


@njit(cache=True)
def _find(keys: np.ndarray, slots: np.ndarray, key: int) -> int:
    """The slot of ``key``, or -1."""
    mask = len(keys) - 1
    i = _home(key, mask)
    while slots[i] >= 0:
        if keys[i] == key:
            return slots[i]
        i = (i + 1) & mask
    return -1


@njit(cache=True)
def _insert(keys: np.ndarray, slots: np.ndarray, key: int, slot: int) -> None:
    """Map ``key`` (not present) to ``slot``."""
    mask = len(keys) - 1
    i = _home(key, mask)
    while slots[i] >= 0:
        i = (i + 1) & mask
    keys[i], slots[i] = key, slot


@njit(cache=True)
def _delete(keys: np.ndarray, slots: np.ndarray, key: int) -> None:
    """Remove ``key`` (present), shifting its probe run back so that no tombstone is needed."""
    mask = len(keys) - 1
    i = _home(key, mask)
    while keys[i] != key or slots[i] < 0:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        if slots[j] < 0:
            break
        k = _home(keys[j], mask)
        if (i < j and i < k <= j) or (i > j and (k > i or k <= j)):
            continue  # its home lies between the hole and it: it stays
        keys[i], slots[i] = keys[j], slots[j]
        i = j
    slots[i] = -1


@njit(cache=True)
def _rehash(keys: np.ndarray, slots: np.ndarray, new_keys: np.ndarray, new_slots: np.ndarray) -> None:
    for i in range(len(keys)):
        if slots[i] >= 0:
            _insert(new_keys, new_slots, keys[i], slots[i])


# ------------------------------------------------------------------------------------------------ price levels


@njit(cache=True, inline="always")
def _open_gap(row: np.ndarray, i: int, n: int) -> None:
    """Move ``row[i:n]`` one place up (a memmove: unsigned indices carry no negative-index wraparound, so LLVM
    vectorises the copy; the levels of a deep book move 5-6x faster)."""
    for k in range(n - i):
        row[uint64(n - k)] = row[uint64(n - k - 1)]


@njit(cache=True, inline="always")
def _close_gap(row: np.ndarray, i: int, n: int) -> None:
    """Move ``row[i + 1:n]`` one place down (a memmove, as :func:`_open_gap`)."""
    for k in range(n - 1 - i):
        row[uint64(i + k)] = row[uint64(i + k + 1)]


@njit(cache=True, inline="always")
def _search(prices: np.ndarray, side: int, n: int, price: float) -> int:
    """First index whose price is not worse than ``price`` (the side is stored worst first)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        worse = prices[side, mid] > price if side == ASK else prices[side, mid] < price
        if worse:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _record(
    ts: int,
    prices: np.ndarray,
    sizes: np.ndarray,
    counts_per_side: np.ndarray,
    levels: int,
    price_scale: float,
    size_scale: float,
    out_ts: np.ndarray,
    out_values: np.ndarray,
    row: int,
) -> bool:
    """Write the best ``levels`` of each side as row ``row``; returns whether the book is crossed (bid >= ask)."""
    out_ts[row] = ts
    for side in range(2):
        n = counts_per_side[side]
        for depth in range(levels):
            column = 4 * depth + 2 * side
            if depth < n:
                out_values[row, column] = prices[side, n - 1 - depth] * price_scale
                out_values[row, column + 1] = sizes[side, n - 1 - depth] * size_scale
            else:
                out_values[row, column] = np.nan
                out_values[row, column + 1] = np.nan
    na, nb = counts_per_side[ASK], counts_per_side[BID]
    return na > 0 and nb > 0 and prices[BID, nb - 1] >= prices[ASK, na - 1]


@njit(cache=True)
def columns_and_validity(values: np.ndarray, columns: np.ndarray, valid: np.ndarray) -> None:
    """Book rows ``values (rows, width)`` as ``columns (width, rows)`` and Arrow validity bitmaps ``valid (width,
    ceil(rows / 8))`` (zeros on entry; bit ``i`` of a column set where row ``i`` is not NaN, least significant bit
    first): the transposing copy and the null masks of a Parquet write in one pass, a block of rows at a time."""
    rows, width = values.shape
    for start in range(0, rows, 512):
        stop = min(start + 512, rows)
        for j in range(width):
            for i in range(start, stop):
                value = values[i, j]
                columns[j, i] = value
                if value == value:  # not NaN
                    valid[j, i >> 3] |= np.uint8(1 << (i & 7))


# ------------------------------------------------------------------------------------ market-by-order books


@njit(cache=True)
def _level_open(
    prices: np.ndarray,
    sizes: np.ndarray,
    heads: np.ndarray,
    tails: np.ndarray,
    n_side: np.ndarray,
    side: int,
    price: float,
) -> int:
    """Index of the level at ``price``, inserted empty if the side does not hold it."""
    n = n_side[side]
    i = _search(prices, side, n, price)
    if i < n and prices[side, i] == price:
        return i
    _open_gap(prices[side], i, n)
    _open_gap(sizes[side], i, n)
    _open_gap(heads[side], i, n)
    _open_gap(tails[side], i, n)
    prices[side, i] = price
    sizes[side, i] = 0
    heads[side, i] = -1
    tails[side, i] = -1
    n_side[side] = n + 1
    return i


@njit(cache=True)
def _level_drop(
    prices: np.ndarray, sizes: np.ndarray, heads: np.ndarray, tails: np.ndarray, n_side: np.ndarray, side: int, i: int
) -> None:
    n = n_side[side]
    _close_gap(prices[side], i, n)
    _close_gap(sizes[side], i, n)
    _close_gap(heads[side], i, n)
    _close_gap(tails[side], i, n)
    n_side[side] = n - 1


@njit(cache=True)
def _remove_order(
    slot: int,
    state: np.ndarray,
    keys: np.ndarray,
    slots: np.ndarray,
    orders: np.ndarray,
    order_prices: np.ndarray,
    prices: np.ndarray,
    sizes: np.ndarray,
    heads: np.ndarray,
    tails: np.ndarray,
    n_side: np.ndarray,
) -> int:
    """Take the order in ``slot`` off the book (its level goes with its last order); returns its size."""
    side, size = orders[_SIDE, slot], orders[_SIZE, slot]
    i = _search(prices, side, n_side[side], order_prices[slot])
    before, after = orders[_PREV, slot], orders[_NEXT, slot]
    if before >= 0:
        orders[_NEXT, before] = after
    else:
        heads[side, i] = after
    if after >= 0:
        orders[_PREV, after] = before
    else:
        tails[side, i] = before
    if heads[side, i] < 0:
        _level_drop(prices, sizes, heads, tails, n_side, side, i)
    else:
        sizes[side, i] -= size
    _delete(keys, slots, orders[_ID, slot])
    orders[_NEXT, slot] = state[_ST_FREE]
    state[_ST_FREE] = slot
    state[_ST_LIVE] -= 1
    return size


@njit(cache=True)
def _add_order(
    order_id: int,
    side: int,
    price: float,
    size: int,
    state: np.ndarray,
    keys: np.ndarray,
    slots: np.ndarray,
    orders: np.ndarray,
    order_prices: np.ndarray,
    prices: np.ndarray,
    sizes: np.ndarray,
    heads: np.ndarray,
    tails: np.ndarray,
    n_side: np.ndarray,
) -> None:
    """A new resting order at the back of its level (an id already resting is replaced; size <= 0: removed)."""
    slot = _find(keys, slots, order_id)
    if slot >= 0:
        _remove_order(slot, state, keys, slots, orders, order_prices, prices, sizes, heads, tails, n_side)
    if size <= 0:
        return
    slot = state[_ST_FREE]
    if slot >= 0:
        state[_ST_FREE] = orders[_NEXT, slot]
    else:
        slot = state[_ST_USED]
        state[_ST_USED] += 1
    state[_ST_SEQ] += 1
    state[_ST_LIVE] += 1
    orders[_SIDE, slot], orders[_SIZE, slot], orders[_SEQ, slot], orders[_ID, slot] = (
        side,
        size,
        state[_ST_SEQ],
        order_id,
    )
    order_prices[slot] = price
    _insert(keys, slots, order_id, slot)
    i = _level_open(prices, sizes, heads, tails, n_side, side, price)
    last = tails[side, i]
    orders[_PREV, slot], orders[_NEXT, slot] = last, -1
    if last >= 0:
        orders[_NEXT, last] = slot
    else:
        heads[side, i] = slot
    tails[side, i] = slot
    sizes[side, i] += size


@njit(cache=True)
def _clear(state: np.ndarray, slots: np.ndarray, n_side: np.ndarray) -> None:
    slots[:] = -1
    state[_ST_FREE], state[_ST_USED], state[_ST_LIVE] = -1, 0, 0
    n_side[:] = 0


@njit(cache=True)
def mbo_chunk(
    ts_recv: np.ndarray,
    order_id: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    action: np.ndarray,
    side_code: np.ndarray,
    flags: np.ndarray,
    state: np.ndarray,
    counts: np.ndarray,
    keys: np.ndarray,
    slots: np.ndarray,
    orders: np.ndarray,
    order_prices: np.ndarray,
    prices: np.ndarray,
    sizes: np.ndarray,
    heads: np.ndarray,
    tails: np.ndarray,
    n_side: np.ndarray,
    levels: int,
    price_scale: float,
    out_ts: np.ndarray,
    out_values: np.ndarray,
) -> int:
    """Apply ``(messages,)`` Databento MBO fields (the rules of :mod:`dilated.data._databento`) and record a row at
    each event's end into ``out_ts (messages,)`` / ``out_values (messages, 4 * levels)``; returns the rows written.
    ``state`` carries the open event (pending, snapshot, ts) across chunks of one file."""
    row = 0
    for m in range(len(ts_recv)):
        flag = flags[m]
        if flag & F_SNAPSHOT and not state[_ST_SNAPSHOT]:  # a snapshot starts: it replaces the book
            if state[_ST_PENDING]:
                counts[CROSSED] += _record(
                    state[_ST_TS], prices, sizes, n_side, levels, price_scale, 1.0, out_ts, out_values, row
                )
                row += 1
            _clear(state, slots, n_side)
            state[_ST_SNAPSHOT], state[_ST_PENDING] = 1, 0
            counts[MBO_SNAPSHOTS] += 1
        elif state[_ST_SNAPSHOT] and not flag & F_SNAPSHOT:  # the snapshot ended without F_LAST
            counts[CROSSED] += _record(
                state[_ST_TS], prices, sizes, n_side, levels, price_scale, 1.0, out_ts, out_values, row
            )
            row += 1
            state[_ST_SNAPSHOT], state[_ST_PENDING] = 0, 0
        state[_ST_TS] = ts_recv[m]
        act = action[m]
        if act == _R:
            _clear(state, slots, n_side)
            counts[MBO_CLEARS] += 1
        elif act == _A or act == _C or act == _M:
            code = side_code[m]
            if code != _A and code != _B:
                counts[MBO_SIDELESS] += 1
            else:
                side = ASK if code == _A else BID
                oid = order_id[m]
                if act == _C:
                    slot = _find(keys, slots, oid)
                    if slot < 0:
                        counts[MBO_UNKNOWN_CANCELS] += 1
                    elif size[m] >= orders[_SIZE, slot]:
                        _remove_order(
                            slot, state, keys, slots, orders, order_prices, prices, sizes, heads, tails, n_side
                        )
                    else:  # a partial cancel: the order keeps its place in the queue
                        own = orders[_SIDE, slot]
                        orders[_SIZE, slot] -= size[m]
                        sizes[own, _search(prices, own, n_side[own], order_prices[slot])] -= size[m]
                else:
                    if act == _M and _find(keys, slots, oid) < 0:
                        counts[MBO_MODIFY_ADDS] += 1
                    _add_order(
                        oid,
                        side,
                        price[m],
                        size[m],
                        state,
                        keys,
                        slots,
                        orders,
                        order_prices,
                        prices,
                        sizes,
                        heads,
                        tails,
                        n_side,
                    )
        state[_ST_PENDING] = 1
        if flag & F_LAST:
            counts[CROSSED] += _record(
                state[_ST_TS], prices, sizes, n_side, levels, price_scale, 1.0, out_ts, out_values, row
            )
            row += 1
            state[_ST_PENDING], state[_ST_SNAPSHOT] = 0, 0
    return row


@njit(cache=True)
def mbo_flush(
    state: np.ndarray,
    counts: np.ndarray,
    prices: np.ndarray,
    sizes: np.ndarray,
    n_side: np.ndarray,
    levels: int,
    price_scale: float,
    out_ts: np.ndarray,
    out_values: np.ndarray,
) -> int:
    """At a file's end: record the event still open (1 row) or nothing (0), and reset the per-file state."""
    rows = 0
    if state[_ST_PENDING]:
        counts[CROSSED] += _record(
            state[_ST_TS], prices, sizes, n_side, levels, price_scale, 1.0, out_ts, out_values, 0
        )
        rows = 1
    state[_ST_PENDING], state[_ST_SNAPSHOT], state[_ST_TS] = 0, 0, 0
    return rows


@njit(cache=True)
def bitstamp_chunk(
    ends: np.ndarray,
    times: np.ndarray,
    order_id: np.ndarray,
    action: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    units: np.ndarray,
    uncross: bool,
    state: np.ndarray,
    counts: np.ndarray,
    keys: np.ndarray,
    slots: np.ndarray,
    orders: np.ndarray,
    order_prices: np.ndarray,
    prices: np.ndarray,
    sizes: np.ndarray,
    heads: np.ndarray,
    tails: np.ndarray,
    n_side: np.ndarray,
    levels: int,
    size_scale: float,
    out_ts: np.ndarray,
    out_values: np.ndarray,
) -> int:
    """Apply Bitstamp rows ``(rows,)`` event by event (``ends``: each event's last row) with the uncrossing rule of
    :mod:`dilated.data._bitstamp`, recording one row per event; returns the rows written (``len(ends)``)."""
    start = 0
    for event in range(len(ends)):
        end = ends[event]
        for r in range(start, end + 1):
            oid = order_id[r]
            if action[r] == BS_DELETED:
                slot = _find(keys, slots, oid)
                if slot >= 0:
                    _remove_order(slot, state, keys, slots, orders, order_prices, prices, sizes, heads, tails, n_side)
                else:
                    counts[BS_UNKNOWN_DELETES] += 1
            else:
                if action[r] == BS_CHANGED and _find(keys, slots, oid) < 0:
                    counts[BS_UNKNOWN_CHANGES] += 1
                _add_order(
                    oid,
                    side[r],
                    price[r],
                    units[r],
                    state,
                    keys,
                    slots,
                    orders,
                    order_prices,
                    prices,
                    sizes,
                    heads,
                    tails,
                    n_side,
                )
        start = end + 1
        if uncross and _crossed(prices, n_side):
            counts[BS_UNCROSS_EVENTS] += 1
            while _crossed(prices, n_side):
                ia, ib = n_side[ASK] - 1, n_side[BID] - 1
                stale = BID if orders[_SEQ, tails[BID, ib]] < orders[_SEQ, tails[ASK, ia]] else ASK
                slot = heads[stale, ib if stale == BID else ia]
                while slot >= 0:
                    after = orders[_NEXT, slot]
                    counts[BS_UNCROSS_VOLUME] += _remove_order(
                        slot, state, keys, slots, orders, order_prices, prices, sizes, heads, tails, n_side
                    )
                    counts[BS_UNCROSS_ORDERS] += 1
                    slot = after
                counts[BS_UNCROSS_LEVELS] += 1
        counts[CROSSED] += _record(
            times[end] * 1_000_000, prices, sizes, n_side, levels, 1.0, size_scale, out_ts, out_values, event
        )
    return len(ends)


@njit(cache=True, inline="always")
def _crossed(prices: np.ndarray, n_side: np.ndarray) -> bool:
    na, nb = n_side[ASK], n_side[BID]
    return na > 0 and nb > 0 and prices[BID, nb - 1] >= prices[ASK, na - 1]


BookArrays = tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
]  # state, counts, keys, slots, orders, order_prices, prices, sizes, heads, tails, n_side


_BOOK_NAMES = (
    "state",
    "counts",
    "keys",
    "slots",
    "orders",
    "order_prices",
    "prices",
    "sizes",
    "heads",
    "tails",
    "n_side",
)


class OrderBookArrays:
    """A market-by-order book between chunks: orders by id, and both sides' levels with their order queues.

    Args:
        price_dtype: the feed's price type (int64 fixed-point for Databento, float64 for Bitstamp); the kernels are
            compiled once per type.
    """

    def __init__(self, price_dtype: type[np.generic]) -> None:
        self.state = np.array([0, -1, 0, 0, 0, 0, 0], dtype=np.int64)
        self.counts = np.zeros(8, dtype=np.int64)
        self.keys = np.zeros(16, dtype=np.int64)
        self.slots = np.full(16, -1, dtype=np.int64)
        self.orders = np.zeros((6, 0), dtype=np.int64)  # rows _SIDE .. _ID, one column per slot
        self.order_prices = np.zeros(0, dtype=price_dtype)
        self.prices = np.zeros((2, 0), dtype=price_dtype)  # (side, level), worst first
        self.sizes = np.zeros((2, 0), dtype=np.int64)
        self.heads = np.zeros((2, 0), dtype=np.int64)
        self.tails = np.zeros((2, 0), dtype=np.int64)
        self.n_side = np.zeros(2, dtype=np.int64)

    def reserve(self, messages: int) -> None:
        """Room for ``messages`` more messages: each adds at most one order and one level per side."""
        live = int(self.state[_ST_LIVE])
        if self.orders.shape[1] < live + messages:
            grow = max(2 * self.orders.shape[1], live + messages) - self.orders.shape[1]
            self.orders = np.concatenate([self.orders, np.zeros((6, grow), np.int64)], axis=1)
            self.order_prices = np.concatenate([self.order_prices, np.zeros(grow, self.order_prices.dtype)])
        if self.prices.shape[1] < int(self.n_side.max()) + messages:
            grow = max(self.prices.shape[1], int(self.n_side.max()) + messages)
            self.prices, self.sizes, self.heads, self.tails = (
                np.concatenate([a, np.zeros((2, grow), a.dtype)], axis=1)
                for a in (self.prices, self.sizes, self.heads, self.tails)
            )
        if len(self.keys) < 2 * (live + messages):
            size = 1 << int(2 * (live + messages) - 1).bit_length()
            keys, slots = np.zeros(size, np.int64), np.full(size, -1, np.int64)
            _rehash(self.keys, self.slots, keys, slots)
            self.keys, self.slots = keys, slots

    def saved(self) -> dict[str, np.ndarray]:
        """The book as named arrays (the order pool and the levels cut to what is in use), for :meth:`restored`."""
        used, depth = int(self.state[_ST_USED]), int(self.n_side.max())
        named = dict(zip(_BOOK_NAMES, self.book_arrays()))
        named.update(
            orders=self.orders[:, :used],
            order_prices=self.order_prices[:used],
            **{name: named[name][:, :depth] for name in ("prices", "sizes", "heads", "tails")},
        )
        return named

    @classmethod
    def restored(cls, arrays: dict[str, np.ndarray]) -> OrderBookArrays:
        """The book :meth:`saved` returned (writable copies; :meth:`reserve` grows it as the next chunk needs)."""
        book = cls(arrays["order_prices"].dtype.type)
        for name in _BOOK_NAMES:
            setattr(book, name, np.array(arrays[name]))
        return book

    def book_arrays(self) -> BookArrays:
        """The arrays every order kernel takes, in their order (state .. n_side)."""
        return (
            self.state,
            self.counts,
            self.keys,
            self.slots,
            self.orders,
            self.order_prices,
            self.prices,
            self.sizes,
            self.heads,
            self.tails,
            self.n_side,
        )


# ------------------------------------------------------------------------------------ aggregated level books


@njit(cache=True)
def _set_level(prices: np.ndarray, sizes: np.ndarray, n_side: np.ndarray, side: int, price: float, size: float) -> None:
    """The size at ``price`` becomes ``size``; 0 or less (or NaN) removes the level."""
    n = n_side[side]
    i = _search(prices, side, n, price)
    found = i < n and prices[side, i] == price
    if size > 0:
        if found:
            sizes[side, i] = size
            return
        _open_gap(prices[side], i, n)
        _open_gap(sizes[side], i, n)
        prices[side, i], sizes[side, i] = price, size
        n_side[side] = n + 1
    elif found:
        _close_gap(prices[side], i, n)
        _close_gap(sizes[side], i, n)
        n_side[side] = n - 1


@njit(cache=True)
def set_levels(
    side: np.ndarray, price: np.ndarray, size: np.ndarray, prices: np.ndarray, sizes: np.ndarray, n_side: np.ndarray
) -> None:
    """Set ``(updates,)`` levels in order (a depth snapshot)."""
    for k in range(len(side)):
        _set_level(prices, sizes, n_side, side[k], price[k], size[k])


# binance state: the snapshot's lastUpdateId, the previous applied u, whether one was applied
BN_LAST_ID, BN_PREVIOUS, BN_STARTED = 0, 1, 2
BN_OLDER, BN_APPLIED = 1, 2  # counts (CROSSED = 0)


class LevelBookArrays:
    """An aggregated-level book between chunks (Binance): both sides' levels worst first, prices and sizes
    ``(2, capacity)``, the level count per side ``n_side`` ``(2,)``, the sequence ``state`` (``BN_*``) and ``counts``."""

    def __init__(self, last_update_id: int) -> None:
        self.prices, self.sizes = np.zeros((2, 0)), np.zeros((2, 0))
        self.n_side = np.zeros(2, dtype=np.int64)
        self.state = np.array([last_update_id, 0, 0], dtype=np.int64)
        self.counts = np.zeros(3, dtype=np.int64)

    def reserve(self, updates: int) -> None:
        """Room for ``updates`` more levels per side."""
        if self.prices.shape[1] < int(self.n_side.max()) + updates:
            grow = max(self.prices.shape[1], int(self.n_side.max()) + updates)
            self.prices, self.sizes = (
                np.concatenate([a, np.zeros((2, grow))], axis=1) for a in (self.prices, self.sizes)
            )


@njit(cache=True)
def binance_chunk(
    event_ms: np.ndarray,
    first: np.ndarray,
    final: np.ndarray,
    previous_final: np.ndarray,
    futures: np.ndarray,
    offsets: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    state: np.ndarray,
    counts: np.ndarray,
    prices: np.ndarray,
    sizes: np.ndarray,
    n_side: np.ndarray,
    levels: int,
    out_ts: np.ndarray,
    out_values: np.ndarray,
) -> tuple[int, int]:
    """Apply ``(diffs,)`` Binance depth diffs (levels ``offsets[d]:offsets[d + 1]`` of ``side``/``price``/``size``)
    with the sequence rules of :mod:`dilated.data._binance`, recording a row per applied diff. Returns the rows
    written and the index of the first diff that breaks the sequence (-1: none; the caller stops there)."""
    row = 0
    for d in range(len(first)):
        if final[d] <= state[BN_LAST_ID]:
            counts[BN_OLDER] += 1
            continue
        if not state[BN_STARTED]:
            bridge = state[BN_LAST_ID] if futures[d] else state[BN_LAST_ID] + 1
            follows = first[d] <= bridge <= final[d]
        elif futures[d]:
            follows = previous_final[d] == state[BN_PREVIOUS]
        else:
            follows = first[d] == state[BN_PREVIOUS] + 1
        if not follows:
            return row, d
        state[BN_PREVIOUS], state[BN_STARTED] = final[d], 1
        for k in range(offsets[d], offsets[d + 1]):
            _set_level(prices, sizes, n_side, side[k], price[k], size[k])
        counts[CROSSED] += _record(
            event_ms[d] * 1_000_000, prices, sizes, n_side, levels, 1.0, 1.0, out_ts, out_values, row
        )
        counts[BN_APPLIED] += 1
        row += 1
    return row, -1
