"""The config that ships inside the package: ``dilated demo``'s. Torch-free, so that ``dilated demo --help`` can
state its epochs without importing the training stack."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEMO_CONFIG_FILE = "demo.yaml"  # package data of dilated.training: the config of `dilated demo`


def demo_config_path() -> Path:
    """The config file of ``dilated demo`` (package data)."""
    return Path(str(resources.files("dilated.training") / DEMO_CONFIG_FILE))
