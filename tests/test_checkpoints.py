"""Checkpoint safety: atomic writes, verification before use, refusal of pickled code, fallback to a good one."""

import hashlib
import json
import subprocess
import sys

import pytest
import torch

from dilated.training._atomic import atomic_write_bytes, atomic_write_json
from dilated.training._checkpoints import (
    MANIFEST_FILE,
    STATE_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    checkpoint_name,
    find_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    quarantine,
    save_checkpoint,
    verify_checkpoint,
)
from helpers import plant_malicious_state


def _weights():
    shared = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    return {"block.0.w": shared, "block.1.w": shared, "head.b": torch.tensor([0.5, -1.0])}  # tied like TransLOB


def _state():
    optimizer = {"state": {0: {"step": torch.tensor(7.0)}}, "param_groups": [{"lr": 0.01, "betas": (0.9, 0.99)}]}
    return {
        "epoch": 3,
        "global_step": 120,
        "optimizer_states": [optimizer],
        "rng": {"torch": torch.get_rng_state(), "python": {"version": 3, "state": [1, 2, 3], "gauss_next": None}},
    }


def test_round_trip_keeps_weights_state_and_info(tmp_path):
    folder = save_checkpoint(tmp_path / checkpoint_name(3, 120), _weights(), _state(), {"kind": "epoch", "epoch": 3})
    assert folder.name == "epoch=0003-step=000120"
    loaded = load_checkpoint(folder)
    assert set(loaded.weights) == {"block.0.w", "block.1.w", "head.b"}
    assert torch.equal(loaded.weights["block.1.w"], _weights()["block.1.w"])
    assert loaded.state["global_step"] == 120 and loaded.state["optimizer_states"][0]["param_groups"][0]["betas"] == (
        0.9,
        0.99,
    )
    assert torch.equal(loaded.state["rng"]["torch"], _state()["rng"]["torch"])
    assert loaded.info == {"kind": "epoch", "epoch": 3}
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    for name in (WEIGHTS_FILE, STATE_FILE):
        data = (folder / name).read_bytes()
        assert manifest["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert torch.equal(load_weights(folder)["head.b"], torch.tensor([0.5, -1.0]))


def test_a_state_the_safe_loader_would_refuse_is_never_written(tmp_path):
    with pytest.raises(CheckpointError, match="weights_only"):
        save_checkpoint(tmp_path / "c", _weights(), {"callback": object()})
    assert not (tmp_path / "c" / MANIFEST_FILE).exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("raw_pickle", [False, True], ids=["torch.save", "raw pickle"])
def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path, raw_pickle):
    marker = tmp_path / "pwned"
    folder = save_checkpoint(tmp_path / "ckpt", _weights(), _state())
    plant_malicious_state(folder, marker, raw_pickle)
    verify_checkpoint(folder)  # the hashes agree ...
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(folder)  # ... but the content is refused
    assert not marker.exists()


def test_truncated_checkpoint_gives_a_clear_error_and_the_previous_one_is_used(tmp_path):
    old = save_checkpoint(tmp_path / checkpoint_name(1, 10), _weights(), _state())
    new = save_checkpoint(tmp_path / checkpoint_name(2, 20), _weights(), _state())
    weights = new / WEIGHTS_FILE
    size = weights.stat().st_size
    with open(weights, "r+b") as handle:
        handle.truncate(size // 2)
    with pytest.raises(CheckpointError, match=rf"{size // 2} bytes, the manifest says {size} \(truncated"):
        load_checkpoint(new)
    skipped = []
    assert latest_checkpoint(tmp_path, on_skip=lambda folder, error: skipped.append(folder)) == old
    assert skipped == [new]


def test_corrupt_bytes_of_the_same_size_fail_the_hash(tmp_path):
    folder = save_checkpoint(tmp_path / "c-step=000001", _weights(), _state())
    data = bytearray((folder / STATE_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / STATE_FILE).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256 .* differs from the manifest"):
        load_checkpoint(folder)


def test_unfinished_checkpoint_without_manifest_is_skipped(tmp_path):
    good = save_checkpoint(tmp_path / checkpoint_name(1, 5), _weights(), _state())
    unfinished = save_checkpoint(tmp_path / checkpoint_name(2, 10), _weights(), _state())
    (unfinished / MANIFEST_FILE).unlink()
    with pytest.raises(CheckpointError, match="unfinished checkpoint"):
        load_checkpoint(unfinished)
    assert latest_checkpoint(tmp_path) == good
    moved = quarantine(unfinished)
    assert moved.name.endswith(".corrupt") and find_checkpoints(tmp_path) == [good]


def test_checkpoints_are_ordered_by_step_with_epoch_ends_after_interrupts(tmp_path):
    names = [
        checkpoint_name(2, 100),
        checkpoint_name(3, 137, "interrupt"),
        checkpoint_name(1, 50),
        checkpoint_name(3, 150),
        checkpoint_name(3, 150, "interrupt"),
    ]
    for name in names:
        (tmp_path / name).mkdir()
    order = [p.name for p in find_checkpoints(tmp_path)]
    assert order == [
        "epoch=0001-step=000050",
        "epoch=0002-step=000100",
        "epoch=0003-step=000137-interrupt",
        "epoch=0003-step=000150-interrupt",
        "epoch=0003-step=000150",
    ]


def test_rewriting_a_checkpoint_removes_the_old_manifest_first(tmp_path):
    folder = save_checkpoint(tmp_path / "c", _weights(), {"epoch": 1})
    folder = save_checkpoint(folder, {"w": torch.ones(3)}, {"epoch": 2})
    loaded = load_checkpoint(folder)
    assert loaded.state["epoch"] == 2 and set(loaded.weights) == {"w"}


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"x" * 1000)
    atomic_write_bytes(tmp_path / "a.bin", b"y")
    atomic_write_json(tmp_path / "m.json", {"loss": float("nan"), "n": [1, 2.5]})
    assert (tmp_path / "a.bin").read_bytes() == b"y"
    assert json.loads((tmp_path / "m.json").read_text()) == {"loss": None, "n": [1, 2.5]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "m.json"]


def test_a_write_killed_midway_leaves_the_old_file(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    code = (
        "import os, dilated.training._atomic as a\n"
        "real = os.replace\n"
        "def die(*args): os._exit(9)\n"
        "a.os.replace = die\n"
        f"a.atomic_write_bytes({str(target)!r}, b'new' * 100000)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False)
    assert result.returncode == 9
    assert target.read_text() == "old"
