"""The rules of the feeds that both book engines (the compiled one and the pure-Python reference) apply: Binance's
lines, stream checks and sequence-gap rules, Bitstamp's units."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dilated.data._orderbook import describe_sources

SATOSHI = 1e-8  # Bitstamp volumes are whole satoshis in the order stream


def check_stream(paths: Sequence[Path], symbols: set[str], snapshot: bool, diffs: int) -> None:
    """Refuse a recording of several symbols, without a snapshot, or without diffs."""
    source = describe_sources(paths)
    if len(symbols) > 1:
        raise ValueError(
            f"{source}: depth diffs of {len(symbols)} symbols ({sorted(symbols)}); "
            "a book is one symbol: give one instrument's files"
        )
    if not snapshot:
        raise ValueError(
            f"{source}: no REST depth snapshot (a line with lastUpdateId); the book's starting state "
            "is unknown: give the file that holds the snapshot first"
        )
    if not diffs:
        raise ValueError(f"{source}: no depthUpdate messages after the snapshot; nothing to replay")


def note_gap(stats: dict[str, Any], where: str, gap: dict[str, Any], previous: int, gaps: str) -> None:
    """Count the first gap in ``stats``; raise for ``gaps="raise"``."""
    stats["gaps"] += 1
    stats["first_gap"] = {"where": where, **gap}
    if gaps == "raise":
        raise ValueError(
            f"{where}: sequence gap after update id {previous} ({gap['rule']}: expected {gap['expected']}, found "
            f"{gap['found']}); the book is unknown from here: use gaps='truncate' (--gaps truncate) to keep the "
            "book up to the gap"
        )


def gap_reason(data: dict[str, Any], first: int, previous: int | None, last_id: int) -> dict[str, Any] | None:
    """Why this diff does not follow the previous one (or bridge the snapshot), or None when it does."""
    futures = "pu" in data
    if previous is None:
        bridge = last_id if futures else last_id + 1
        if first <= bridge <= int(data["u"]):
            return None
        return {
            "rule": "first diff must bridge the snapshot",
            "expected": f"U <= {bridge} <= u",
            "found": f"U={first}, u={data['u']}",
        }
    if futures:
        if int(data["pu"]) == previous:
            return None
        return {"rule": "pu must equal the previous u", "expected": previous, "found": int(data["pu"])}
    if first == previous + 1:
        return None
    return {"rule": "U must be the previous u + 1", "expected": previous + 1, "found": first}


def read_line(line: bytes, where: str, loads: Callable[[bytes], Any]) -> tuple[str, dict[str, Any]]:
    """What a line of a recording is: ``("diff", the depthUpdate's data)``, ``("snapshot", the REST reply)`` or
    ``("other", {})`` (bookTicker, trade: not parsed where the line names neither); ``loads`` reads JSON."""
    stamp, _, text = line.partition(b" ")
    if b"depthUpdate" not in text and b"lastUpdateId" not in text and stamp.isdigit():
        return "other", {}
    try:
        int(stamp)
        message = loads(text)
    except ValueError:
        raise ValueError(f"{where}: not a '<receive time ns> <json>' line of a Binance depth recording") from None
    if "lastUpdateId" in message:
        return "snapshot", message
    data = message.get("data", message)
    return ("diff", data) if data.get("e") == "depthUpdate" else ("other", {})
