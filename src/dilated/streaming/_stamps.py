"""Stamps: what tells that a tensor's values may have changed, short of reading them, for many tensors at once.

A tensor's stamp is its in-place version counter (bumped by every in-place op, under ``no_grad`` too), its storage,
storage offset, dtype, sizes and strides (changed by ``p.data = other``, which keeps the version counter). The stamps
are read by a small C++ helper (``_stamps.cpp``), a CPython extension module compiled on first use against the
installed torch's own headers (so every field is read through torch's inline accessors, with the right ABI: no
layout is guessed) and Python's, and imported from its cache: its ``Stamps`` object holds the tensors' addresses and
stamps, and its ``changed()`` (no arguments, nothing converted) reads and compares them all in one call, where
Python pays tens of nanoseconds per tensor and attribute. The build is cached in ``$DILATED_CACHE_DIR`` (default
``~/.cache/dilated``) under a key of the source, torch's version, install and C++ ABI and Python's extension suffix,
written to a temporary file and renamed into place, so that processes racing to build it each load a whole module
(the first build takes seconds, once per cache). Once loaded, the helper's stamps are checked against torch's Python
accessors on a few probe tensors.

Without it (no C++ compiler, no torch or Python headers, a failed build or check, or ``DILATED_STAMPS=python``),
:func:`native_reason` says why and the stamps are read in Python, more slowly and more coarsely: the sum of the
version counters and each tensor's data address. That still sees in-place changes and ``p.data = other`` with new
memory, but not ``p.data = p.data.t()`` (a view of the same memory at the same address), which the helper sees.

On either path, writes through ``p.data`` (``p.data.mul_(...)``) are not seen: ``.data`` is a new tensor with a
version counter of its own, and nothing short of reading the values would see them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import itertools
import operator
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Callable
from importlib.machinery import ExtensionFileLoader
from pathlib import Path
from types import ModuleType

import torch

CACHE_ENV = "DILATED_CACHE_DIR"
PATH_ENV = "DILATED_STAMPS"  # "python": read the stamps in Python, without building or loading the helper
SOURCE = Path(__file__).with_name("_stamps.cpp")
_VERSION = operator.attrgetter("_version")
_ADDRESS = operator.methodcaller("data_ptr")
MODULE = "dilated_stamps"  # the extension module's name (its PyInit_ function's)
_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
_HEAD = 5  # a stamp's words before its sizes and strides


class _Unavailable(Exception):
    """Why the helper cannot be built or loaded."""


def cache_dir() -> Path:
    """Where compiled helpers are kept: ``$DILATED_CACHE_DIR``, else ``$XDG_CACHE_HOME/dilated`` or ``~/.cache/dilated``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dilated"


def _torch_dir() -> Path:
    return Path(torch.__file__).parent


def library_path() -> Path:
    """The helper's file for this source, torch version, torch install, C++ ABI and Python extension suffix."""
    key = hashlib.sha256(SOURCE.read_bytes())
    for part in (torch.__version__, str(_torch_dir()), str(torch._C._GLIBCXX_USE_CXX11_ABI), _SUFFIX):
        key.update(b"\0" + part.encode())
    return cache_dir() / f"stamps-{key.hexdigest()[:16]}{_SUFFIX}"


def build(path: Path) -> Path:
    """Compile the helper to ``path`` (atomically: a temporary file renamed into place); ``_Unavailable`` if not."""
    include, lib = _torch_dir() / "include", _torch_dir() / "lib"
    if not (include / "c10" / "core" / "TensorImpl.h").is_file():
        raise _Unavailable(f"this torch install has no C++ headers under {include}")
    python_include = Path(sysconfig.get_paths()["include"])
    if not (python_include / "Python.h").is_file():
        raise _Unavailable(f"this Python has no C headers under {python_include}")
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise _Unavailable(f"no C++ compiler {compiler!r} on PATH (set CXX)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{path.stem}.", suffix=".tmp")
    except OSError as error:
        raise _Unavailable(f"cannot write to the cache {path.parent}: {error}") from None
    os.close(handle)
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    command = [compiler, "-O2", "-shared", "-fPIC", "-std=c++17", "-w", f"-D_GLIBCXX_USE_CXX11_ABI={abi}"]
    command += [f"-I{include}", f"-I{python_include}", str(SOURCE), "-o", temporary]
    command += [f"-L{lib}", "-lc10", f"-Wl,-rpath,{lib}"]  # (not libpython: the interpreter loading it provides it)
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
        if result.returncode:
            lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
            raise _Unavailable(f"{compiler} failed: {lines[0]}")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def python_stamp(t: torch.Tensor) -> list[int]:
    """``t``'s stamp as the helper writes it, read through torch's Python accessors, the dtype word left out."""
    storage = t.untyped_storage()._cdata
    return [t._version, storage, t.storage_offset(), t.dim(), *t.shape, *t.stride()]


class Native:
    """The loaded helper: ``Stamps(addresses)`` reads and holds the tensors' stamps, its ``changed()`` returns 1 + the
    first that differs from them, 0 if none (see ``_stamps.cpp``)."""

    def __init__(self, path: Path) -> None:
        loader = ExtensionFileLoader(MODULE, str(path))
        spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
        assert spec is not None  # (a loader was given)
        self.module: ModuleType = importlib.util.module_from_spec(spec)
        loader.exec_module(self.module)

    def stamps(self, tensors: list[torch.Tensor]) -> object | None:
        """The helper's ``Stamps`` of the tensors, read now, or ``None`` if torch refused one."""
        try:
            return self.module.Stamps([t._cdata for t in tensors])
        except RuntimeError:  # e.g. an inference tensor has no version counter
            return None

    def each(self, tensors: list[torch.Tensor]) -> list[list[int]] | None:
        """Each tensor's stamp (``None`` if torch refused one)."""
        read = self.stamps(tensors)
        if read is None:
            return None
        words = read.words()  # type: ignore[attr-defined]
        starts = list(itertools.accumulate((_HEAD + 2 * t.dim() for t in tensors), initial=0))
        return [words[start:end] for start, end in zip(starts, starts[1:])]

    def agrees_with_torch(self, tensors: list[torch.Tensor]) -> bool:
        """Whether the helper's stamps of ``tensors`` equal those read through torch's Python accessors."""
        each = self.each(tensors)
        return each is not None and all(s[:3] + s[4:] == python_stamp(t) for s, t in zip(each, tensors, strict=True))


def _probes() -> list[torch.Tensor]:
    """Tensors whose stamps the helper must read as torch does before it is used: views, offsets, strides."""
    base = torch.randn(4, 6)
    return [base, base[1:, 2:], base.t(), torch.ones(5)[3:], torch.empty(0), torch.tensor(2.0), base.add_(1)]


@functools.cache
def _load() -> tuple[Native | None, str | None]:
    path = library_path()
    try:
        try:
            native = Native(path)
        except ImportError:  # not built yet (or not loadable): build it, then load it
            native = Native(build(path))
    except (_Unavailable, ImportError, OSError, subprocess.TimeoutExpired) as error:
        return None, f"the stamps helper is unavailable: {error}"
    if not native.agrees_with_torch(_probes()):
        return None, f"the stamps helper {path} disagrees with torch on probe tensors"
    return native, None


def native() -> Native | None:
    """The helper, built and loaded on first use; ``None`` when the stamps are read in Python (see
    :func:`native_reason`)."""
    return None if os.environ.get(PATH_ENV) == "python" else _load()[0]


def native_reason() -> str | None:
    """Why the stamps are read in Python, or ``None`` when the helper reads them."""
    if os.environ.get(PATH_ENV) == "python":
        return f"{PATH_ENV}=python"
    return _load()[1]


def _storage(t: torch.Tensor) -> torch.UntypedStorage | None:
    try:
        return t.untyped_storage()
    except (RuntimeError, NotImplementedError):  # a tensor without storage (a wrapper subclass, say)
        return None


class _Stamps:
    """The stamps of ``tensors`` as read at construction; ``changed()`` is true when any differs now. The storages
    are kept alive: memory freed by a swap cannot come back at the same address unseen."""

    path: str  # "native" (the helper reads them) or "python"

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        self.tensors = tensors
        self._storages = [_storage(t) for t in tensors]


class NativeStamps(_Stamps):
    """Stamps read and compared by the helper, in one call."""

    path = "native"

    def __init__(self, tensors: list[torch.Tensor], read: object) -> None:
        super().__init__(tensors)
        # the helper's own bound method, no Python frame per call; nonzero: changed (1 + the first tensor that
        # changed, or -1: torch refused to read one, to be read again)
        self.changed: Callable[[], int] = read.changed  # type: ignore[attr-defined]


class PythonStamps(_Stamps):
    """Stamps read in Python: the sum of the version counters and every data address."""

    path = "python"

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        super().__init__(tensors)
        self._addressable = [t for t, s in zip(tensors, self._storages, strict=True) if s is not None]
        self._version = sum(map(_VERSION, tensors))
        self._addresses = tuple(map(_ADDRESS, self._addressable))

    def changed(self) -> bool:
        """Whether any tensor's stamp differs from the one read at construction."""
        return (
            sum(map(_VERSION, self.tensors)) != self._version
            or tuple(map(_ADDRESS, self._addressable)) != self._addresses
        )


def read_stamps(tensors: list[torch.Tensor]) -> NativeStamps | PythonStamps:
    """The stamps of ``tensors`` now, read by the helper where it is loaded and reads them all, else in Python."""
    helper = native()
    read = helper.stamps(tensors) if helper is not None else None
    if helper is None or read is None:
        return PythonStamps(tensors)
    return NativeStamps(tensors, read)
