"""The ``dilated`` command: thin wrappers that parse arguments and call the library, one module per command group
(:mod:`._inspection`, :mod:`._training`, :mod:`._conversion`, :mod:`._design`, :mod:`._data`, :mod:`._replay`), each with
its handlers and its ``add_..._commands``.

Errors print one line (``dilated: error: ...``) and exit with status 2 (bad input) or 1 (other failures);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dilated._version import __version__
from dilated.cli._conversion import add_conversion_commands
from dilated.cli._data import add_data_commands
from dilated.cli._design import add_design_commands
from dilated.cli._inspection import add_inspect_commands
from dilated.cli._replay import add_replay_command
from dilated.cli._shared import Epilog, Handler, Parser, add_subcommand
from dilated.cli._training import add_training_commands

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``dilated``."""
    parser = Parser(prog="dilated", description="Dilated causal convolutional sequence models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"dilated {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help_text: str, epilog: Epilog | None = None) -> argparse.ArgumentParser:
        return add_subcommand(commands, name, handler, help_text, help_text, epilog)

    add_inspect_commands(command)
    add_training_commands(command)
    add_conversion_commands(command)
    add_design_commands(command)
    add_data_commands(command)
    add_replay_command(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dilated`` console command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as error:
        if args.debug:
            raise
        print(f"dilated: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `dilated summary ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("dilated: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one readable line for any failure, traceback with --debug
        if args.debug:
            raise
        print(f"dilated: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
