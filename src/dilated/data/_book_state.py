"""A reader's book state saved at a file boundary, so that a resumed dataset conversion starts after its last
converted file instead of replaying every earlier one.

A state is a set of named NumPy arrays (the compiled engine's book and the reader's counters,
:func:`~dilated.data._book_readers.mbo_rows`' ``resume``) in one ``.npz`` file (no pickles), written under a
temporary name then renamed. It is keyed by what decides it: the reader's format and settings and every source file
up to the boundary (path, size, mtime); the key and a SHA-256 digest of the arrays are stored beside them, so a state
that is missing, unreadable, altered or saved for other files or settings reads as ``None`` and the caller replays.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

STATE_VERSION = 1
_KEY, _DIGEST = "_key", "_digest"


def state_key(**decided_by: Any) -> str:
    """The key of a state: a digest of the JSON-ready values that decide it (format, settings, sources ...)."""
    text = json.dumps({"version": STATE_VERSION, **decided_by}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(key: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    digest = hashlib.sha256(key.encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return np.frombuffer(digest.digest(), np.uint8)


def save_state(path: str | Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as the state ``key`` at ``path`` (atomically: a reader sees the old file or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        named: dict[str, Any] = {**arrays, _KEY: np.frombuffer(key.encode(), np.uint8), _DIGEST: _digest(key, arrays)}
        with open(temporary, "wb") as out:
            np.savez(out, allow_pickle=False, **named)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_state(path: str | Path, key: str) -> dict[str, np.ndarray] | None:
    """The arrays of the state ``key`` at ``path``; ``None`` if it is missing, damaged or another key's."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in saved.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    found, digest = arrays.pop(_KEY, None), arrays.pop(_DIGEST, None)
    if found is None or digest is None or found.tobytes() != key.encode():
        return None
    return arrays if np.array_equal(digest, _digest(key, arrays)) else None
