"""Matplotlib rendering of a :class:`Diagram`: panels side by side on the Agg canvas (never a screen), written as
PNG or SVG, or as a GIF (with Pillow) whose frames light up one output after another.

matplotlib and Pillow are imported inside the functions that draw, so that ``import dilated`` does not load them;
the types below are for the type checker only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dilated.diagrams._parts import Diagram, DiagramNode, Edge, Row

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.typing import LineStyleType

# Colours (Open Color): one strong hue for what feeds the chosen output, greys for everything else.
HIGHLIGHT = "#e8590c"
HIGHLIGHT_DARK = "#a93f06"
FIELD_BAND = "#fff0e0"
EDGE = "#ced4da"
NODE = "#dee2e6"
NODE_EDGE = "#868e96"
PADDING_EDGE = "#adb5bd"
TEXT = "#212529"
MUTED = "#6c757d"

INCHES_PER_STEP = 0.16
INCHES_PER_ROW = 0.95
LABEL_INCHES = 1.3  # at least; grows with the longest row label
BOTTOM_INCHES = 1.7
NODE_SIZE, PADDING_SIZE = 52.0, 40.0  # marker areas in points^2


def render(panels: list[list[Diagram]], path: Path) -> None:
    """Draw panels side by side (each a list of frames, all of one panel's frames share their nodes) to ``path``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from PIL import Image  # noqa: F401 - checked here, used for GIFs
    except ImportError as error:
        raise ImportError(f"drawing needs matplotlib and Pillow: pip install matplotlib pillow ({error})") from None

    n_rows = max(len(frames[0].rows) for frames in panels)
    widths = [_data_width(frames[0]) + _label_steps(frames[0]) for frames in panels]
    head = 0.45 + 0.2 * max(d.title.count("\n") for frames in panels for d in frames)
    height = INCHES_PER_ROW * (n_rows - 1) + BOTTOM_INCHES + head
    width = sum(widths) * INCHES_PER_STEP + 0.3 * (len(panels) + 1)
    figure = Figure(figsize=(width, height), facecolor="white")
    canvas = FigureCanvasAgg(figure)
    axes, left = [], 0.3
    for frames, w in zip(panels, widths):
        ax = figure.add_axes((left / width, 0.0, w * INCHES_PER_STEP / width, 1.0))
        left += w * INCHES_PER_STEP + 0.3
        ax.set_axis_off()
        ax.set_xlim(_x_range(frames[0])[0] - _label_steps(frames[0]), _x_range(frames[0])[1])
        ax.set_ylim(-BOTTOM_INCHES / INCHES_PER_ROW, n_rows - 1 + head / INCHES_PER_ROW)
        _draw_base(ax, frames[0])
        axes.append(ax)
    _legend(figure)
    if path.suffix.lower() != ".gif":
        import matplotlib

        for ax, frames in zip(axes, panels):
            _draw_highlight(ax, frames[0], height)
        # no date or version in the file and fixed SVG ids: regenerated images change only when the drawing does
        metadata = {"Date": None} if path.suffix.lower() == ".svg" else {"Software": None}
        with matplotlib.rc_context({"svg.hashsalt": "dilated"}):
            figure.savefig(path, dpi=110, metadata=metadata)
        return
    _write_gif(canvas, axes, panels, path)


def _write_gif(canvas: FigureCanvasAgg, axes: list[Axes], panels: list[list[Diagram]], path: Path) -> None:
    """One frame per output of the longest panel (a shorter panel keeps its last), on the canvas's figure."""
    from PIL import Image

    canvas.figure.set_dpi(90)
    height = canvas.figure.get_figheight()
    n_frames = max(len(frames) for frames in panels)
    images = []
    for k in range(n_frames):
        artists = [_draw_highlight(ax, frames[min(k, len(frames) - 1)], height) for ax, frames in zip(axes, panels)]
        canvas.draw()
        images.append(Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB"))
        for artist in (a for group in artists for a in group):
            artist.remove()
    palette = images[-1].quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    frames = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    durations = [450] * len(frames)
    durations[-1] = 1800
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)


def _x_range(diagram: Diagram) -> tuple[float, float]:
    xs = [n.x for row in diagram.rows for n in row.nodes]
    return min(xs) - 1.0, max(xs) + 1.0


def _label_steps(diagram: Diagram) -> float:
    """Width of the row-label column, in input steps (about 0.075 in per bold 9 pt character)."""
    chars = max(
        max(len(row.label) * 0.075, *(len(line) * 0.058 for line in row.detail.split("\n"))) for row in diagram.rows
    )
    return max(LABEL_INCHES, chars + 0.45) / INCHES_PER_STEP


def _data_width(diagram: Diagram) -> float:
    lo, hi = _x_range(diagram)
    return hi - lo


def _segments(rows: Sequence[Row], edges: Sequence[Edge]) -> list[list[tuple[float, int]]]:
    return [[(rows[e.below].x(e.source), e.below), (rows[e.row].x(e.target), e.row)] for e in edges]


def _xy(nodes: Sequence[DiagramNode]) -> tuple[list[float], list[int]]:
    """The positions of ``nodes``: x in input steps, y their row."""
    return [n.x for n in nodes], [n.row for n in nodes]


def _draw_base(ax: Axes, diagram: Diagram) -> None:
    """Everything that does not depend on the highlighted output: grey edges and nodes, row labels."""
    from matplotlib.collections import LineCollection

    rows = diagram.rows
    ax.add_collection(LineCollection(_segments(rows, diagram.edges), colors=EDGE, linewidths=0.7, zorder=1))
    real = [n for row in rows for n in row.nodes if not n.padding]
    pads = [n for row in rows for n in row.nodes if n.padding]
    if real:
        ax.scatter(*_xy(real), s=NODE_SIZE, c=NODE, edgecolors=NODE_EDGE, linewidths=0.8, zorder=2)
    if pads:
        ax.scatter(
            *_xy(pads),
            s=PADDING_SIZE,
            c="white",
            edgecolors=PADDING_EDGE,
            linewidths=0.9,
            linestyle=(0, (2, 1.5)),
            zorder=2,
        )
    left = ax.get_xlim()[0] + 0.3
    for r, row in enumerate(rows):
        ax.text(left, r + 0.14, row.label, ha="left", va="bottom", fontsize=9, fontweight="bold", color=TEXT)
        detail = row.detail or f"T={row.length}"
        ax.text(left, r + 0.1, detail, ha="left", va="top", fontsize=7.5, color=MUTED, linespacing=1.25)
    # input step numbers at the ends of the input row, so a windowed diagram says where it is
    inputs = [n for n in rows[0].nodes if not n.padding]
    for node in (inputs[0], inputs[-1]) if len(inputs) > 1 else inputs[:1]:
        ax.text(node.x, -0.32, f"t={node.index}", ha="center", va="top", fontsize=7, color=MUTED)


def _draw_highlight(ax: Axes, diagram: Diagram, height: float) -> list[Artist]:
    """The chosen output's tree, its receptive field on the input row and the title (placed for a figure
    ``height`` inches high); returns the artists."""
    from matplotlib.collections import LineCollection
    from matplotlib.patches import FancyBboxPatch

    rows = diagram.rows
    artists: list[Artist] = []
    first, last = diagram.field
    lo, hi = diagram.window
    drawn = (max(first, lo), min(last, hi))  # the part of the field inside the window
    y = -0.72
    if drawn[0] <= drawn[1]:
        band = FancyBboxPatch(
            (drawn[0] - 0.42, -0.3),
            drawn[1] - drawn[0] + 0.84,
            0.6,
            boxstyle="round,pad=0,rounding_size=0.25",
            facecolor=FIELD_BAND,
            edgecolor=HIGHLIGHT,
            linewidth=0.8,
            linestyle=(0, (3, 2)),
            zorder=0,
        )
        artists.append(ax.add_patch(band))
        ticks = (0.12 if first >= lo else 0.0, 0.12 if last <= hi else 0.0)  # open where the field goes on
        artists += ax.plot(
            [drawn[0] - 0.4, drawn[0] - 0.4, drawn[1] + 0.4, drawn[1] + 0.4],
            [y + ticks[0], y, y, y + ticks[1]],
            color=HIGHLIGHT,
            linewidth=1.2,
            solid_capstyle="butt",
            zorder=3,
        )
        centre = (drawn[0] + drawn[1]) / 2
    else:
        centre = rows[-1].x(diagram.output_index)
    text, remark = _field_text(diagram)
    artists.append(
        ax.text(
            _text_x(ax, centre, len(text) * 0.4),
            y - 0.1,
            text,
            ha="center",
            va="top",
            fontsize=9,
            color=HIGHLIGHT_DARK,
            fontweight="bold",
            zorder=3,
        )
    )
    if remark:
        artists.append(
            ax.text(
                _text_x(ax, centre, len(remark) * 0.33),
                y - 0.36,
                remark,
                ha="center",
                va="top",
                fontsize=8,
                color=MUTED,
                zorder=3,
            )
        )
    lit = [e for e in diagram.edges if e.highlighted]
    styles = ["-" if 0 <= e.source < rows[e.below].length else (0, (2, 2)) for e in lit]  # dashed into padding
    if lit:
        artists.append(
            ax.add_collection(
                LineCollection(_segments(rows, lit), colors=HIGHLIGHT, linewidths=1.5, linestyles=styles, zorder=3)
            )
        )
    real_nodes = [n for row in rows for n in row.nodes if n.highlighted and not n.padding]
    pad_nodes = [n for row in rows for n in row.nodes if n.highlighted and n.padding]
    if real_nodes:
        artists.append(
            ax.scatter(*_xy(real_nodes), s=NODE_SIZE, c=HIGHLIGHT, edgecolors=HIGHLIGHT_DARK, linewidths=0.9, zorder=4)
        )
    if pad_nodes:
        artists.append(
            ax.scatter(*_xy(pad_nodes), s=PADDING_SIZE, c="white", edgecolors=HIGHLIGHT, linewidths=1.2, zorder=4)
        )
    top = rows[-1].x(diagram.output_index)
    artists.append(
        ax.scatter(
            [top], [len(rows) - 1], s=150, facecolors="none", edgecolors=HIGHLIGHT_DARK, linewidths=1.4, zorder=5
        )
    )
    inch = 1 / height
    artists.append(
        ax.text(
            0.5,
            1 - 0.12 * inch,
            diagram.title,
            ha="center",
            va="top",
            transform=ax.transAxes,
            fontsize=10.5,
            color=TEXT,
            linespacing=1.35,
        )
    )
    return artists


def _field_text(diagram: Diagram) -> tuple[str, str]:
    """The label under the input row: the receptive field, then what of it is padding, off-window or unread."""
    first, last = diagram.field
    real = max(0, last - first + 1)
    lo, hi = diagram.window
    drawn = max(0, min(last, hi) - max(first, lo) + 1)
    remarks = []
    in_padding = (diagram.span[1] - diagram.span[0] + 1) - real
    if in_padding > 0:
        remarks.append(f"{in_padding} of them fall in the zero padding" if real else "all in the zero padding")
    if drawn < real:
        remarks.append(f"{real - drawn} lie outside the drawn window")
    used = len(diagram.rows[0].highlighted)
    if used < drawn:
        remarks.append(f"{used} of the {drawn} input steps under the bracket are read")
    return f"receptive field = {diagram.receptive_field} steps", "; ".join(remarks)


def _text_x(ax: Axes, x: float, width: float) -> float:
    """``x`` moved so that centred text about ``width`` steps wide stays inside the panel."""
    x_lo, x_hi = ax.get_xlim()
    return min(max(x, x_lo + width / 2), x_hi - width / 2)


def _legend(figure: Figure) -> None:
    from matplotlib.lines import Line2D

    kinds: tuple[
        tuple[str, LineStyleType, str | None, str, str], ...
    ] = (  # label, line style, line colour (None: the default, no line is drawn), marker face, marker edge
        ("feeds the highlighted output", "-", HIGHLIGHT, HIGHLIGHT, HIGHLIGHT_DARK),
        ("other steps", "-", EDGE, NODE, NODE_EDGE),
        ("zero padding", "none", None, "white", PADDING_EDGE),
    )
    handles = [
        Line2D([], [], marker="o", linestyle=style, color=line, markerfacecolor=face, markeredgecolor=edge, label=label)
        for label, style, line, face, edge in kinds
    ]
    figure.legend(handles=handles, loc="lower center", ncol=3, frameon=False, fontsize=8, bbox_to_anchor=(0.5, 0.0))
