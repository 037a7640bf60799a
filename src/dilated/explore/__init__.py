"""``dilated explore``: a self-contained HTML page that shows a model as the analysis sees it, and edits stacks.

The page (``template.html`` + ``explorer.js``, shipped as package data and inlined: no network, no server) is a
view of the same analysis as ``dilated summary`` and ``dilated draw``: its numbers are the summary's
(:meth:`dilated.summaries.Summary.to_dict`, what ``dilated summary --json`` prints), its model graph and tree are
the rows of :func:`dilated.diagrams.graph_plan` (parallel branches side by side, joins where they meet, names
from the model, numbered blocks collapsible), and the tree of the highlighted output zooms and pans over the
whole field. Plain layer stacks (convs, pools, 1x1 layers and activations in one chain) can be edited: add,
remove and reorder layers, swap dilations for strides, run the design search of :mod:`dilated.design`, and export
the stack as a :mod:`dilated._resolve` config; every other model is shown read-only, with the reason.

    from dilated.explore import write_explorer
    write_explorer("explorer.html", "example-dilated")      # any target `dilated summary` takes

The editor's arithmetic is a JavaScript port of :mod:`dilated.geometry` and :mod:`dilated.design`, exposed as
``window.dilatedGeometry`` and ``window.dilatedDesign``; the tests run random stacks through both.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

from torch import nn

from dilated._resolve import Target, resolve_target
from dilated.diagrams import graph_plan, keras_details, torch_details
from dilated.explore._graph import graph_state
from dilated.explore._stack import ReadOnly, stack_state
from dilated.keras_bridge import is_keras_model
from dilated.summaries import Summary, summary

__all__ = [
    "DEFAULT_TARGET",
    "ReadOnly",
    "page",
    "stack_state",
    "target_state",
    "target_summary",
    "write_explorer",
]

DEFAULT_TARGET = "example-dilated"


def target_summary(target: Target) -> Summary:
    """The summary of a resolved target: a Keras model (``--input`` fixes a variable length), or a torch model
    with its input shape."""
    if is_keras_model(target.model):
        result = summary(target.model, target.input_shape)
    elif target.input_shape is None:
        raise ValueError(
            f"{target.name!r} does not fix its input shape: pass --input CHANNELS,TIME (e.g. --input 2,200)"
        )
    else:
        result = summary(target.model, target.input_shape)
    result.title = target.name
    return result


def target_state(target: Target) -> dict[str, Any]:
    """What the page opens on: the summary (``summary``: :meth:`Summary.to_dict`), the analysed graph
    (``graph``, or ``graph_error`` where nothing can be drawn step by step), and the editable stack (``stack``)
    or why there is none (``read_only``)."""
    result = target_summary(target)
    keras = is_keras_model(target.model)
    state: dict[str, Any] = {"name": target.name, "summary": result.to_dict(), "graph": None, "graph_error": None}
    try:
        assert result.field is not None  # summary() always analyses
        state["graph"] = graph_state(graph_plan(result.field), result, keras_details if keras else torch_details)
    except ValueError as error:
        state["graph_error"] = str(error)
    input_shape = tuple(n for n in result.input_shape[1:] if n is not None)
    state["stack"], state["read_only"] = None, None
    try:
        stack = stack_state(result, target.name, input_shape)
        if not keras and not _sequential(target.model, result):
            raise ReadOnly(
                f"{target.name} is a {type(target.model).__name__}, not a layer stack: the editor rebuilds "
                "stack configs and nn.Sequential stacks"
            )
        state["stack"] = stack
    except ReadOnly as reason:
        state["read_only"] = str(reason)
    return state


def _sequential(model: Any, result: Summary) -> bool:
    """Whether a torch model is an ``nn.Sequential`` whose every layer is one row of its summary."""
    return isinstance(model, nn.Sequential) and [str(i) for i in range(len(model))] == [r.name for r in result.layers]


def page(state: dict[str, Any]) -> str:
    """The explorer page as one HTML string, opening on ``state`` (see :func:`target_state`)."""
    folder = resources.files("dilated.explore")
    template = (folder / "template.html").read_text(encoding="utf-8")
    script = (folder / "explorer.js").read_text(encoding="utf-8")
    data = json.dumps(state).replace("</", "<\\/")  # keeps "</script>" inside a name from closing the tag
    return (
        template.replace("__TITLE__", html.escape(str(state["name"])))
        .replace("__STATE__", data)
        .replace("__SCRIPT__", script)
    )


def write_explorer(path: str | Path, target: str | None = None, input_shape: tuple[int, ...] | None = None) -> Path:
    """Write the explorer page opening on ``target`` (default: the example's dilated stack) to ``path``;
    ``input_shape`` ``(channels, time)`` as ``--input`` (Keras models included)."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"explorer page must be written to a .html file, got {path}")
    state = target_state(resolve_target(target or DEFAULT_TARGET, input_shape))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(state), encoding="utf-8")
    return path
