"""The version of dilated: one home, read by the package root, the CLI's --version and pyproject.toml."""

__version__ = "0.1.0"
