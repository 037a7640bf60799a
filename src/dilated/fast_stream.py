"""Old import path of the compiled engine; it lives in :mod:`dilated.streaming.fast`."""

from dilated.streaming.fast import FastStream, Unsupported, unsupported_reason

__all__ = ["FastStream", "Unsupported", "unsupported_reason"]
