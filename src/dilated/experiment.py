"""Moved to :mod:`dilated.training.config` (the typed config); these names stay for code written against the old
module. ``load_config`` and ``resolve_config`` here return the resolved config as a plain dict, as they did."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from dilated.training import config as typed
from dilated.training.config import (  # noqa: F401 - re-exported
    SECTIONS,
    TrainConfig,
    apply_overrides,
    config_help,
    demo_config_path,
    parse_override,
)

DEMO_CONFIG: dict[str, Any] = yaml.safe_load(demo_config_path().read_text())  # the raw demo config mapping


def resolve_config(raw: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """The resolved config as a dict (``TrainConfig.from_dict(raw).to_dict()``)."""
    return TrainConfig.from_dict(raw, source).to_dict()


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The resolved config of a file, as a dict (``dilated.training.load_config(...).to_dict()``)."""
    return typed.load_config(path, overrides).to_dict()
