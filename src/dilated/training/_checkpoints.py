"""Checkpoints that are safe to load, written atomically, and checked before use.

A checkpoint is a folder of three files:

    model.safetensors   the weights, in safetensors format: reading it runs no code
    state.pt            the training state (optimizer, scheduler, epoch and step counters, RNG states, ...):
                        only tensors, numbers, strings, lists, tuples and dicts, read back with
                        ``torch.load(..., weights_only=True)``, which refuses every other object
    manifest.json       format and version, the SHA-256 and size of both files, and ``info`` (epoch, step, kind,
                        metrics); written last, so a folder without a valid manifest is an unfinished checkpoint

Every file is written with :func:`dilated.training._atomic.atomic_write_bytes` (temporary file, fsync, rename, fsync
of the folder). :func:`load_checkpoint` verifies sizes and hashes before it parses anything and raises
:class:`CheckpointError` naming the file and the problem; :func:`latest_checkpoint` walks back from the newest
checkpoint to the newest one that verifies.

Nothing here needs Lightning: ``load_weights(folder)`` gives a state dict for the plain ``nn.Module``.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from dilated.training._atomic import atomic_write_bytes, fsync_dir

FORMAT = "dilated-checkpoint"
VERSION = 1
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.pt"
MANIFEST_FILE = "manifest.json"
_STEP = re.compile(r"step=(\d+)")
_EPOCH = re.compile(r"epoch=(\d+)")


class CheckpointError(ValueError):
    """A checkpoint that is missing, unfinished, truncated, corrupt or unsafe to load."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: weights for the plain model, the training state and the manifest's ``info``."""

    path: Path
    weights: dict[str, Tensor]
    state: dict[str, Any]
    info: dict[str, Any]


def checkpoint_name(epoch: int, step: int, kind: str = "epoch") -> str:
    """Folder name, e.g. ``epoch=0003-step=000120`` (after 3 epochs) or ``epoch=0004-step=000131-interrupt``."""
    return f"epoch={epoch:04d}-step={step:06d}" + ("" if kind == "epoch" else f"-{kind}")


def checkpoint_epoch(name: str) -> int | None:
    """The epoch count in a checkpoint folder name (``epoch=0003-step=000120`` -> 3), or None."""
    match = _EPOCH.search(name)
    return int(match.group(1)) if match else None


def save_checkpoint(
    folder: str | Path,
    weights: Mapping[str, Tensor],
    state: Mapping[str, Any] | None = None,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder (see the module docstring) and return its path.

    Args:
        weights: a state dict; tensors are copied to CPU (shared tensors, e.g. tied blocks, are stored once each).
        state: anything ``torch.load(weights_only=True)`` accepts; checked by reading it back before it is written.
        info: JSON-serialisable facts stored in the manifest (epoch, step, kind, metrics).

    An existing folder of the same name is replaced file by file, its old manifest removed first so that a crash
    in between leaves an unfinished checkpoint rather than a mix of two.
    """
    folder = Path(folder)
    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in weights.items()}
    weight_bytes = save_safetensors(tensors, metadata={"format": "pt"})
    buffer = io.BytesIO()
    torch.save(dict(state or {}), buffer)
    state_bytes = buffer.getvalue()
    try:  # never write a state that the safe loader would refuse
        torch.load(io.BytesIO(state_bytes), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001
        raise CheckpointError(
            f"{folder}: the training state holds objects that torch.load(weights_only=True) "
            f"refuses ({_first_line(error)}); keep it to tensors, numbers, strings and "
            "containers"
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    fsync_dir(folder)
    files = {}
    for name, data in ((WEIGHTS_FILE, weight_bytes), (STATE_FILE, state_bytes)):
        atomic_write_bytes(folder / name, data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest = {"format": FORMAT, "version": VERSION, "files": files, "info": dict(info or {})}
    atomic_write_bytes(folder / MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode())
    fsync_dir(folder.parent)
    return folder


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The parsed manifest of a checkpoint folder (format checked, files not yet verified)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint not found: {folder} is not a folder")
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{folder}: unfinished checkpoint (no {MANIFEST_FILE}; the run stopped while writing "
            "it); use an earlier checkpoint"
        )
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: corrupt manifest ({error}); use an earlier checkpoint") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise CheckpointError(f"{path}: not a {FORMAT} manifest")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise CheckpointError(
            f"{path}: format version {manifest.get('version')!r}; this dilated reads up to {VERSION}: upgrade dilated"
        )
    for name in (WEIGHTS_FILE, STATE_FILE):
        entry = manifest["files"].get(name)
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not isinstance(entry.get("bytes"), int)
        ):
            raise CheckpointError(f"{path}: no size and SHA-256 for {name}")
    return manifest


def _verified_bytes(folder: Path, name: str, manifest: Mapping[str, Any]) -> bytes:
    """The bytes of one file of the checkpoint, after checking them against the manifest."""
    path = folder / name
    expected = manifest["files"][name]
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the checkpoint is incomplete")
    data = path.read_bytes()
    if len(data) != expected["bytes"]:
        raise CheckpointError(
            f"{path}: {len(data)} bytes, the manifest says {expected['bytes']} (truncated or "
            "overwritten); use an earlier checkpoint"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected["sha256"]:
        raise CheckpointError(
            f"{path}: SHA-256 {digest[:12]}... differs from the manifest's "
            f"{expected['sha256'][:12]}... (corrupt); use an earlier checkpoint"
        )
    return data


def verify_checkpoint(folder: str | Path) -> dict[str, Any]:
    """Check that a checkpoint is complete and intact (sizes and SHA-256); return its manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    for name in (WEIGHTS_FILE, STATE_FILE):
        _verified_bytes(folder, name, manifest)
    return manifest


def load_weights(folder: str | Path) -> dict[str, Tensor]:
    """The verified weights of a checkpoint, as a state dict for the plain model (CPU tensors)."""
    folder = Path(folder)
    data = _verified_bytes(folder, WEIGHTS_FILE, read_manifest(folder))
    return _parse_weights(folder, data)


def _parse_weights(folder: Path, data: bytes) -> dict[str, Tensor]:
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{folder / WEIGHTS_FILE}: not a valid safetensors file ({_first_line(error)})") from None


def load_checkpoint(folder: str | Path, map_location: Any = "cpu") -> Checkpoint:
    """Verify and load a checkpoint folder. Raises :class:`CheckpointError` on any problem.

    The training state is read with ``torch.load(weights_only=True)``: a state file that would unpickle anything
    but tensors and plain containers (e.g. an object whose ``__reduce__`` runs a command) is refused before any of
    it runs.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    weights = _parse_weights(folder, _verified_bytes(folder, WEIGHTS_FILE, manifest))
    state_bytes = _verified_bytes(folder, STATE_FILE, manifest)
    try:
        state = torch.load(io.BytesIO(state_bytes), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{folder / STATE_FILE}: refused: it holds objects other than tensors and plain "
            f"containers, which could run code when loaded ({_first_line(error)})"
        ) from None
    except Exception as error:  # noqa: BLE001 - a damaged zip, a wrong file
        raise CheckpointError(
            f"{folder / STATE_FILE}: unreadable ({type(error).__name__}: {_first_line(error)})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{folder / STATE_FILE}: expected a dict of training state, got {type(state).__name__}")
    return Checkpoint(folder, weights, state, dict(manifest.get("info") or {}))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _order(folder: Path) -> tuple[int, int, str]:
    """Sort key, oldest first: global step, then end-of-epoch after an interrupt at the same step, then name."""
    match = _STEP.search(folder.name)
    step = int(match.group(1)) if match else -1
    return step, 0 if folder.name.endswith("-interrupt") else 1, folder.name


def find_checkpoints(root: str | Path) -> list[Path]:
    """Checkpoint folders below ``root`` (verified or not), oldest first; ``.corrupt`` and hidden ones skipped."""
    root = Path(root)
    if not root.is_dir():
        return []
    folders = [
        p
        for p in root.iterdir()
        if p.is_dir() and _STEP.search(p.name) and not p.name.startswith(".") and not p.name.endswith(".corrupt")
    ]
    return sorted(folders, key=_order)


def latest_checkpoint(
    root: str | Path, on_skip: Callable[[Path, CheckpointError], None] | None = None, kinds: Iterable[str] | None = None
) -> Path | None:
    """The newest checkpoint below ``root`` that verifies (sizes, hashes), or None.

    Args:
        on_skip: called with each newer checkpoint that fails verification (e.g. to warn about it).
        kinds: only checkpoints whose manifest ``info.kind`` is one of these.
    """
    wanted = set(kinds) if kinds is not None else None
    for folder in reversed(find_checkpoints(root)):
        try:
            manifest = verify_checkpoint(folder)
        except CheckpointError as error:
            if on_skip is not None:
                on_skip(folder, error)
            continue
        if wanted is None or manifest.get("info", {}).get("kind") in wanted:
            return folder
    return None


def quarantine(folder: str | Path) -> Path:
    """Rename a bad checkpoint to ``NAME.corrupt`` (kept for inspection, ignored from now on)."""
    folder = Path(folder)
    target = folder.with_name(folder.name + ".corrupt")
    number = 1
    while target.exists():
        number += 1
        target = folder.with_name(f"{folder.name}.{number}.corrupt")
    folder.rename(target)
    fsync_dir(folder.parent)
    return target


def remove_checkpoint(folder: str | Path) -> None:
    """Delete a checkpoint folder: its manifest first, so that a crash midway leaves an unfinished one."""
    folder = Path(folder)
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
