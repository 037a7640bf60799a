"""Moved to :mod:`dilated.training.checkpoints`; this alias stays for code written against the old path."""

from dilated.training.checkpoints import (  # noqa: F401 - re-exported
    FORMAT,
    MANIFEST_FILE,
    STATE_FILE,
    VERSION,
    WEIGHTS_FILE,
    Checkpoint,
    CheckpointError,
    checkpoint_name,
    find_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    quarantine,
    read_manifest,
    remove_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
