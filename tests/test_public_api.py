"""The public API by design: every exported name resolves and is documented, every registered model is exported,
every ``dilated.x.y`` that the docs and docstrings name exists, and the commands import only what they use."""

import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import dilated
from dilated.models import available_models, build_model

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "dilated"
PUBLIC_NAMESPACES = [
    "dilated",
    "dilated.analysis",
    "dilated.data",
    "dilated.design",
    "dilated.diagrams",
    "dilated.explore",
    "dilated.geometry",
    "dilated.keras_bridge",
    "dilated.layers",
    "dilated.live",
    "dilated.models",
    "dilated.streaming",
    "dilated.summaries",
    "dilated.training",
]
PUBLIC_NAMES = [
    (namespace, name) for namespace in PUBLIC_NAMESPACES for name in importlib.import_module(namespace).__all__
]


@pytest.mark.parametrize("namespace,name", PUBLIC_NAMES, ids=[f"{n}.{m}" for n, m in PUBLIC_NAMES])
def test_every_public_name_resolves_and_is_documented(namespace: str, name: str) -> None:
    value = getattr(importlib.import_module(namespace), name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert inspect.getdoc(value), f"{namespace}.{name} has no docstring"


def test_the_package_ships_its_types() -> None:
    assert (SRC / "py.typed").is_file()


def test_every_registered_model_is_exported_by_its_class() -> None:
    for name in available_models():
        cls = type(build_model(name))
        assert getattr(dilated, cls.__name__) is cls, f"dilated.{cls.__name__} (model {name!r}) is not exported"


def _named_in_text() -> set[str]:
    # docs/results.md is a generated record of past runs, kept as written
    texts = [
        ROOT / "README.md",
        ROOT / "docs" / "ARCHITECTURE.md",
        ROOT / "docs" / "errors.md",
        ROOT / "docs" / "json.md",
    ]
    texts += [*SRC.rglob("*.py")]
    found: set[str] = set()
    for path in texts:
        found.update(re.findall(r"(?<![\w/\"])dilated(?:\.[A-Za-z_]\w*)+", path.read_text()))
    return found


def _resolve(dotted: str) -> object:
    """The module or attribute a dotted name means: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            value = getattr(value, attribute)
        return value
    raise ModuleNotFoundError(dotted)


def test_every_dotted_name_in_the_docs_exists() -> None:
    missing = []
    for dotted in sorted(_named_in_text()):
        try:
            _resolve(dotted.rstrip("."))
        except (ImportError, AttributeError):
            missing.append(dotted)
    assert not missing, f"named in the docs or docstrings but not found: {missing}"


IMPORT_CHECK = """
import sys
from dilated.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "lightning", "numba", "keras", "pandas"})
print("HEAVY", " ".join(heavy))
"""
COMMANDS = [
    [],
    ["--help"],
    ["--version"],
    ["summary", "--help"],
    ["draw", "--help"],
    ["explore", "--help"],
    ["models", "--help"],
    ["design", "--help"],
    ["demo", "--help"],
    ["train", "--help"],
    ["evaluate", "--help"],
    ["predict", "--help"],
    ["report", "--help"],
    ["convert", "--help"],
    ["export", "--help"],
    ["replay", "--help"],
    ["data", "convert", "--help"],
    ["data", "info", "--help"],
    ["summary"],  # an argument error
    ["design", "--receptive-field", "100"],  # pure Python
]


def _heavy_imports(args: list[str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, *args], capture_output=True, text=True, timeout=120, check=False
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("HEAVY"))
    return set(line.split()[1:])


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "no-arguments")
def test_help_version_and_argument_errors_import_no_torch(args: list[str]) -> None:
    assert _heavy_imports(args) == set()


def test_summary_imports_torch_but_not_lightning() -> None:
    assert _heavy_imports(["summary", "example-dilated"]) == {"torch"}


def test_a_config_typo_is_refused_before_lightning_is_imported() -> None:
    config = str(ROOT / "configs" / "tcn_adding.yaml")
    assert "lightning" not in _heavy_imports(["train", "--check", config, "--override", "trainig.lr=1"])
