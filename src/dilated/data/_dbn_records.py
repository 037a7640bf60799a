"""Databento DBN records as NumPy structured arrays, read in chunks (the compiled engine's decoder).

The metadata header is decoded by ``databento-dbn`` itself; the fixed-size records after it are viewed in place with
``np.frombuffer`` and the dtypes below, which spell out the DBN record layouts (the same in DBN v1, v2 and v3 for
MBO and MBP-10; tests check every field against ``databento-dbn``'s decoded objects). ``.zst`` files are
decompressed as a stream, so a file of any length is read with one chunk in memory.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

_HEADER = [("length", "u1"), ("rtype", "u1"), ("publisher_id", "<u2"), ("instrument_id", "<u4"), ("ts_event", "<u8")]
# ids and receive times are unsigned in DBN; as int64 they keep their bits (ids only compared, times < 2**63)
MBO_DTYPE = np.dtype(
    [
        *_HEADER,
        ("order_id", "<i8"),
        ("price", "<i8"),
        ("size", "<u4"),
        ("flags", "u1"),
        ("channel_id", "u1"),
        ("action", "u1"),
        ("side", "u1"),
        ("ts_recv", "<i8"),
        ("ts_in_delta", "<i4"),
        ("sequence", "<u4"),
    ]
)  # 56 bytes
BID_ASK_PAIR = np.dtype(
    [("bid_px", "<i8"), ("ask_px", "<i8"), ("bid_sz", "<u4"), ("ask_sz", "<u4"), ("bid_ct", "<u4"), ("ask_ct", "<u4")]
)
MBP10_DTYPE = np.dtype(
    [
        *_HEADER,
        ("price", "<i8"),
        ("size", "<u4"),
        ("action", "u1"),
        ("side", "u1"),
        ("flags", "u1"),
        ("depth", "u1"),
        ("ts_recv", "<i8"),
        ("ts_in_delta", "<i4"),
        ("sequence", "<u4"),
        ("levels", BID_ASK_PAIR, (10,)),
    ]
)  # 368 bytes
RTYPES = {"mbo": 0xA0, "mbp-10": 0x0A}
DTYPES = {"mbo": MBO_DTYPE, "mbp-10": MBP10_DTYPE}
_ZSTD = b"\x28\xb5\x2f\xfd"


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, or fewer only at the end of the stream (a zstd reader may return short reads)."""
    parts, left = [], size
    while left > 0:
        part = stream.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


class DbnRecords:
    """One DBN file: its metadata (decoded by databento-dbn) and its records, chunk by chunk.

    Args:
        path: a ``.dbn`` or zstd-compressed ``.dbn.zst`` file of one schema.
    Use as a context manager; :attr:`schema` is e.g. ``"mbo"``.
    """

    def __init__(self, path: str | Path) -> None:
        import databento_dbn

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        self._file = open(self.path, "rb")
        self._stream: IO[bytes] = self._file
        if self._file.read(4) == _ZSTD:
            import zstandard

            self._file.seek(0)
            self._stream = zstandard.ZstdDecompressor().stream_reader(self._file)
        else:
            self._file.seek(0)
        head = _read_exact(self._stream, 8)
        if head[:3] != b"DBN" or len(head) < 8:
            self.close()
            raise ValueError(
                f"{self.path}: not a DBN file (it does not start with 'DBN'); give a Databento .dbn or .dbn.zst "
                "file, or another --format"
            )
        header = head + _read_exact(self._stream, struct.unpack("<I", head[4:8])[0])
        decoder = databento_dbn.DBNDecoder()
        decoder.write(header)
        try:
            decoded = decoder.decode()
        except Exception as error:  # databento_dbn raises its own DBNError for a damaged header
            self.close()
            raise ValueError(f"{self.path}: damaged DBN file ({error})") from None
        if not decoded or not isinstance(decoded[0], databento_dbn.Metadata):
            self.close()
            raise ValueError(f"{self.path}: no DBN metadata; the file is truncated or damaged")
        self.metadata: Any = decoded[0]
        schema: Any = self.metadata.schema
        self.schema = str(schema.value if hasattr(schema, "value") else schema)
        self._count = 0

    def chunks(self, records: int) -> Iterator[np.ndarray]:
        """The records, ``records`` at a time, as ``(n,)`` structured arrays of :data:`DTYPES` [schema] (fields as
        DBN names them). A record of another type or length, or a truncated last record, is refused naming it."""
        expected = DTYPES[self.schema]
        first = _read_exact(self._stream, 1)
        if not first:
            return
        size = 4 * first[0]  # a record's length byte counts 4-byte words; a ts_out field makes it longer
        if size < expected.itemsize:
            raise ValueError(
                f"{self.path}: record 0 is {size} bytes, a {self.schema} record is {expected.itemsize}; "
                "the file is damaged"
            )
        dtype = expected
        if size != expected.itemsize:
            names = list(expected.names or ())
            fields: Any = expected.fields
            dtype = np.dtype(
                {
                    "names": names,
                    "formats": [fields[n][0] for n in names],
                    "offsets": [fields[n][1] for n in names],
                    "itemsize": size,
                }
            )
        pending = first
        while True:
            data = pending + _read_exact(self._stream, records * size - len(pending))
            pending = b""
            whole = len(data) // size * size
            if whole != len(data):
                raise ValueError(
                    f"{self.path}: record {self._count + whole // size} is truncated ({len(data) - whole} of "
                    f"{size} bytes); the file is damaged"
                )
            if not data:
                return
            array = np.frombuffer(data, dtype=dtype)
            bad = np.flatnonzero((array["length"] != first[0]) | (array["rtype"] != RTYPES[self.schema]))
            if len(bad):
                row = int(bad[0])
                raise ValueError(
                    f"{self.path}: record {self._count + row} has rtype {array['rtype'][row]:#04x} and "
                    f"length {4 * array['length'][row]}; a {self.schema} file holds {self.schema} records only"
                )
            self._count += len(array)
            yield array
            if len(array) < records:
                return

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> DbnRecords:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
