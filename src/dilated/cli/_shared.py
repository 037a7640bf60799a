"""What several command groups share: the :class:`Command` factory each ``add_..._commands`` takes, the TARGET
help of the commands that read a model, the arguments that name a trained run and its checkpoint, and the one JSON
envelope of every ``--json`` (docs/json.md)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

Handler = Callable[[argparse.Namespace], int]
Epilog = str | Callable[[], str]  # a callable is called when the help is printed (it may import what it describes)


class Parser(argparse.ArgumentParser):
    """An argument parser whose epilog may be a function, called only when the help is printed: the text of
    ``dilated train --help`` comes from the config schema, which no other command needs to import."""

    late_epilog: Callable[[], str] | None = None

    def format_help(self) -> str:
        if self.late_epilog is not None:
            self.epilog, self.late_epilog = self.late_epilog(), None
        return super().format_help()


class Command(Protocol):
    """Adds the subcommand ``name`` (help and description ``help_text``, ``epilog`` shown after the arguments)
    that runs ``handler``, and returns its parser for the command's arguments."""

    def __call__(
        self, name: str, handler: Handler, help_text: str, epilog: Epilog | None = None
    ) -> argparse.ArgumentParser: ...


def add_subcommand(
    commands: argparse._SubParsersAction,
    name: str,
    handler: Handler,
    help_text: str,
    description: str,
    epilog: Epilog | None = None,
) -> argparse.ArgumentParser:
    """The subcommand ``name`` of ``commands`` (``help_text`` in its parent's list), running ``handler``; its
    description and epilog are printed as written."""
    sub = commands.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=None if callable(epilog) else epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if callable(epilog) and isinstance(sub, Parser):
        sub.late_epilog = epilog
    sub.set_defaults(handler=handler)
    return sub


TARGET_HELP = """\
TARGET is one of:
  a saved Keras model           model.keras            (loaded in Keras safe mode)
  a converted model             model.yaml             (written by `dilated convert`, or a hand-written graph)
  a model config file (YAML)    my_stack.yaml          (a 'layers:' stack or 'model: NAME')
  a Python factory              mypkg.models:build     (a function returning a torch or Keras model)
  a Python model                mymodel.py:model       (a torch or Keras model, taken as it is)
  a bundled example             example-dilated, example-strided
  a registered model            wavenet, tcn, translob, deeplob   (see `dilated models`)

A stack config looks like:
  input: [2, 200]            # (channels, time)
  layers:
    - {type: conv1d, channels: 5, kernel_size: 5, padding: causal, dilation: 2}
    - {type: conv1d, channels: 5, kernel_size: 5, padding: causal, dilation: 4}
    - {type: dense, units: 1}
Layer types: conv1d, dense, maxpool1d, avgpool1d, dropout, relu, tanh, sigmoid, gelu, elu, silu.
Keras spellings work too: filters, strides, dilation_rate, pool_size.
"""


def is_keras(model: object) -> bool:
    """Whether ``model`` is a Keras model (the adapter is imported on first use, as each command imports its part)."""
    from dilated.keras_bridge import is_keras_model

    return is_keras_model(model)


def add_run_arguments(sub: argparse.ArgumentParser, dest: str, metavar: str) -> None:
    """The trained run a command reads (positional ``dest``) and ``--checkpoint``: best or last."""
    sub.add_argument(dest, metavar=metavar, help="a run folder, or a checkpoint folder inside one")
    sub.add_argument(
        "--checkpoint",
        default="best",
        choices=("best", "last"),
        help="for a run folder: the best checkpoint by the run's monitor, or the last",
    )


def add_json_argument(sub: argparse.ArgumentParser, what: str) -> None:
    """``--json``: print ``what`` as one JSON object instead of text (see :func:`print_json`)."""
    sub.add_argument("--json", action="store_true", help=f"print {what} as JSON (schema in docs/json.md)")


def print_json(schema: str, payload: Mapping[str, Any]) -> None:
    """Print ``{"schema": schema, **payload}`` on stdout as one JSON object, the envelope of every ``--json``:
    ``schema`` is ``dilated.<command>/<version>``; numbers stay numbers, a NaN or infinity is written ``null``
    (JSON has none), NumPy values as their Python equivalents, paths as strings."""
    print(json.dumps(_plain({"schema": schema, **payload}), indent=2, default=str))


def _plain(value: Any) -> Any:
    """``value`` with JSON's types only (see :func:`print_json`)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "tolist"):  # NumPy scalars and arrays, tensors
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
