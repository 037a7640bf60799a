"""Feed files read as raw bytes, a block of whole lines at a time, so memory stays flat however long the file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


def text_blocks(path: Path, size: int, opener: Callable[[Path], BinaryIO], what: str) -> Iterator[bytes]:
    """The bytes of ``path`` as ``opener`` gives them (decompressed), ``size`` or so at a time, each ending at a
    line end but the last; a read error is refused as not ``what``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with opener(path) as raw:
            rest = b""
            while block := raw.read(size):
                cut = block.rfind(b"\n") + 1
                if cut:
                    yield rest + block[:cut]
                    rest = block[cut:]
                else:
                    rest += block
            if rest:
                yield rest
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: not {what} ({error})") from None
