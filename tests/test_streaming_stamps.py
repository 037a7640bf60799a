"""The weight stamps (:mod:`dilated.streaming._stamps`): the C++ helper reads what torch's own accessors read, sees
what the Python fallback sees (and more), is built once per cache by racing processes, and falls back in Python
with a reason when it cannot be built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import types
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from dilated.streaming import _stamps

SRC = str(Path(_stamps.__file__).parents[2])


@pytest.fixture
def helper() -> _stamps.Native:
    native = _stamps.native()
    assert native is not None, _stamps.native_reason()
    return native


def _random_tensors(generator: torch.Generator) -> list[torch.Tensor]:
    """Tensors, views and buffers of random shapes: offsets, transposes, zero strides, empty, 0-d, other dtypes."""

    def draw(high: int) -> int:
        return int(torch.randint(1, high, (1,), generator=generator))

    base = torch.randn(draw(6), draw(6), draw(5), generator=generator)
    module = nn.Conv1d(draw(4), draw(4), draw(4))
    module.register_buffer("running", torch.zeros(draw(7), dtype=torch.float64))
    with torch.no_grad():
        for _ in range(draw(4)):
            module.weight.add_(1.0)
    return [
        base,
        base[draw(base.shape[0] + 1) - 1 :, :, 1:],
        base.transpose(0, 2),
        base.permute(1, 2, 0)[..., ::2],
        base[0, 0].expand(3, -1),
        torch.arange(draw(9), dtype=torch.int64)[1:],
        torch.empty(0, draw(3)),
        torch.tensor(float(draw(9))),
        *module.parameters(),
        *module.buffers(),
    ]


@pytest.mark.parametrize("seed", range(5))
def test_the_helper_reads_what_torch_reads(helper, seed):
    """Each stamp equals the one read through torch's Python accessors (dtype word aside), word for word; one dtype
    word per dtype."""
    tensors = _random_tensors(torch.Generator().manual_seed(seed))
    assert helper.agrees_with_torch(tensors)
    each = helper.each(tensors)
    assert each is not None
    codes: dict[torch.dtype, set[int]] = {}
    for t, stamp in zip(tensors, each, strict=True):
        codes.setdefault(t.dtype, set()).add(stamp[3])
    assert all(len(words) == 1 for words in codes.values())  # one dtype word per dtype, a different one for each
    assert len(set.union(*codes.values())) == len(codes)


def test_the_helper_is_an_extension_module_called_without_arguments(helper):
    """Imported from the cache file named for this Python; ``changed`` is the module's own method (no Python frame,
    no ctypes conversion per call)."""
    assert _stamps.library_path().name.endswith(sysconfig.get_config_var("EXT_SUFFIX"))
    assert helper.module.__file__ == str(_stamps.library_path())
    stamps = _stamps.read_stamps([torch.ones(2, 3), torch.ones(4)])
    assert isinstance(stamps.changed, types.BuiltinMethodType)
    assert stamps.changed() == 0


def _changes() -> dict[str, tuple[Callable[[nn.Parameter], None], set[str]]]:
    """A change to a parameter, and the paths that see it."""

    def in_place(p: nn.Parameter) -> None:
        with torch.no_grad():
            p.mul_(2.0)

    def data_assigned(p: nn.Parameter) -> None:
        p.data = torch.randn_like(p)

    def data_transposed(p: nn.Parameter) -> None:
        p.data = p.data.transpose(0, 1)

    def data_reshaped(p: nn.Parameter) -> None:  # (another dim: the head is compared before sizes and strides)
        p.data = p.data.reshape(-1)

    def written_through_data(p: nn.Parameter) -> None:
        p.data.mul_(2.0)

    both, native = {"native", "python"}, {"native"}
    return {
        "in-place": (in_place, both),
        "data-assigned": (data_assigned, both),
        "data-transposed": (data_transposed, native),
        "data-reshaped": (data_reshaped, native),
        "written-through-data": (written_through_data, set()),  # the documented gap
        "none": (lambda p: None, set()),
    }


@pytest.mark.parametrize("path", ["native", "python"])
@pytest.mark.parametrize("change", list(_changes()))
def test_what_each_path_sees(change, path, monkeypatch):
    if path == "python":
        monkeypatch.setenv(_stamps.PATH_ENV, "python")
    parameters = [nn.Parameter(torch.randn(3, 3, 2)) for _ in range(4)]
    stamps = _stamps.read_stamps(parameters)
    assert stamps.path == path, _stamps.native_reason()
    apply, seen_by = _changes()[change]
    apply(parameters[2])
    assert bool(stamps.changed()) == (path in seen_by)


@pytest.mark.parametrize("path", ["native", "python"])
def test_memory_freed_by_a_swap_does_not_come_back_unseen(path, monkeypatch):
    """Two swaps between reads, the second to freshly allocated memory: always seen (the stamped storage is held)."""
    if path == "python":
        monkeypatch.setenv(_stamps.PATH_ENV, "python")
    p = nn.Parameter(torch.randn(64))
    for _ in range(50):
        stamps = _stamps.read_stamps([p])
        p.data = torch.randn(64)
        p.data = torch.randn(64)
        assert stamps.changed()


def _run(code: str, env: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, **env}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)


_REPORT = (
    "import json; from dilated.streaming import _stamps; "
    "print(json.dumps([_stamps.native() is not None, _stamps.native_reason(), str(_stamps.library_path())]))"
)


def test_two_processes_building_at_once_both_load_one_library(tmp_path):
    processes = [_run(_REPORT, {_stamps.CACHE_ENV: str(tmp_path)}) for _ in range(2)]
    reports = [json.loads(process.communicate(timeout=600)[0]) for process in processes]
    assert [loaded for loaded, _, _ in reports] == [True, True], reports
    assert {path for _, _, path in reports} == {str(next(tmp_path.iterdir()))}
    assert [p.name for p in tmp_path.iterdir()] == [Path(reports[0][2]).name]  # no temporary file left


def test_without_a_compiler_the_stamps_are_read_in_python_and_say_why(tmp_path):
    code = _REPORT.replace("print(", "import torch; s = _stamps.read_stamps([torch.ones(2)]); print(s.path, ")
    process = _run(code, {_stamps.CACHE_ENV: str(tmp_path), "CXX": "no-such-compiler"})
    path, report = process.communicate(timeout=600)[0].split(" ", 1)
    loaded, reason, _ = json.loads(report)
    assert (path, loaded) == ("python", False)
    assert reason == "the stamps helper is unavailable: no C++ compiler 'no-such-compiler' on PATH (set CXX)"
    assert list(tmp_path.iterdir()) == []
