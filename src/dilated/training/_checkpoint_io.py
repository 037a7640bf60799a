"""Lightning's checkpoint dict to and from a :mod:`dilated.training._checkpoints` folder (a ``CheckpointIO`` plugin).

Lightning decides when to checkpoint and what goes in (loops, optimizer and scheduler states, callback states); this
plugin decides the format: the model's weights in safetensors, the rest in a state file that loads with
``torch.load(weights_only=True)``, SHA-256 hashes in a manifest, every file written atomically.
"""

from __future__ import annotations

from typing import Any

from lightning.fabric.plugins import CheckpointIO

from dilated.training._checkpoints import CheckpointError, load_checkpoint, remove_checkpoint, save_checkpoint

INFO_KEY = "dilated"  # the entry of Lightning's checkpoint dict that goes to the manifest's ``info``


class SafeCheckpointIO(CheckpointIO):
    """Lightning's checkpoint dict to and from a checkpoint folder.

    The ``state_dict`` entry (the model's weights, keys without the ``model.`` prefix) goes to safetensors, the
    rest to the weights_only-safe state file, the ``"dilated"`` entry to the manifest's ``info``.
    """

    prefix = "model."

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        state = dict(checkpoint)
        weights = state.pop("state_dict")
        info = state.pop(INFO_KEY, {})
        stray = [k for k in weights if not k.startswith(self.prefix)]
        if stray:
            raise CheckpointError(f"weights outside the model cannot be checkpointed: {stray[:3]}")
        save_checkpoint(path, {k.removeprefix(self.prefix): v for k, v in weights.items()}, state, info)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict:
        loaded = load_checkpoint(path, map_location="cpu")
        return {**loaded.state, "state_dict": {self.prefix + k: v for k, v in loaded.weights.items()}}

    def remove_checkpoint(self, path: Any) -> None:
        remove_checkpoint(path)
