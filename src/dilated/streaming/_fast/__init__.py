"""The fast path: the instruction set (:mod:`.instructions`), the compiler that traces a model's step into it
(:mod:`.compiler`, with the program being built in :mod:`.builder` and the layers compiled as one instruction in
:mod:`.layers`), the Numba kernel that runs it (:mod:`.kernel`, :mod:`.program`) and the engine (:mod:`.engine`).
"""

from dilated.streaming._fast.compiler import Unsupported, compile_step
from dilated.streaming._fast.engine import FastStream, unsupported_reason

__all__ = ["FastStream", "Unsupported", "compile_step", "unsupported_reason"]
