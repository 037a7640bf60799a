"""Receptive-field diagrams: the drawn data agrees with `dilated.geometry`, and every format reopens as an image.

Most checks use `layout` (no rendering); a few render small stacks to each format.
"""

import subprocess
import sys
from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from dilated._resolve import resolve_target
from dilated.cli import main
from dilated.diagrams import MAX_STEPS, compare, draw, layout
from dilated.geometry import Layer, LayerKind, Padding, Semantics, causal_stack, dependencies, stack_geometry
from dilated.layers import Conv1d, Dense
from helpers import HandDelay

PADDINGS = st.one_of(
    st.sampled_from(["valid", "same", "causal"]), st.integers(0, 3), st.tuples(st.integers(0, 4), st.integers(0, 4))
)


def make_layer(
    kind: LayerKind, kernel: int, stride: int, dilation: int, padding: Padding, semantics: Semantics
) -> Layer:
    """A valid layer near the drawn settings (settings Keras or torch refuse are relaxed, not rejected)."""
    if kind in ("pointwise", "global"):
        return Layer(kind=kind, name=kind)
    if semantics == "keras" and (kind != "conv" or stride > 1):
        dilation = 1
    if padding == "causal" and (kind != "conv" or semantics == "torch"):
        padding = "valid"
    if semantics == "torch" and padding == "same" and stride > 1:
        padding = "valid"
    if semantics == "torch" and kind != "conv" and not isinstance(padding, str):
        left, right = (padding, padding) if isinstance(padding, int) else padding
        padding = (min(left, kernel // 2), min(right, kernel // 2))
    return Layer(kernel, stride, dilation, padding, kind, f"{kind}", semantics)


@st.composite
def stacks(draw):
    """Random stacks (kernel 1..5, dilation 1..4, stride 1..3, every padding) and an input that fits them."""
    layers = [
        make_layer(
            draw(st.sampled_from(["conv", "conv", "conv", "maxpool", "avgpool", "pointwise", "global"])),
            draw(st.integers(1, 5)),
            draw(st.integers(1, 3)),
            draw(st.integers(1, 4)),
            draw(PADDINGS),
            draw(st.sampled_from(["keras", "torch"])),
        )
        for _ in range(draw(st.integers(1, 4)))
    ]
    length = draw(st.integers(1, 48))
    while True:
        try:
            outputs = stack_geometry(layers, length)[-1].output_length
            break
        except ValueError:  # too short for this stack: lengthen the input
            length += 8
    return layers, length, draw(st.integers(0, outputs - 1))


@settings(max_examples=80, deadline=None)
@given(stacks())
def test_highlighted_nodes_are_the_exact_dependencies_and_padding_matches_geometry(case):
    layers, length, output = case
    diagram = layout(layers, length, output, max_steps=10_000)
    geometry = stack_geometry(layers, length)
    expected = dependencies(layers, length, output)
    assert not diagram.windowed and diagram.output_index == output
    assert [row.highlighted for row in diagram.rows] == expected
    first, last = geometry[-1].field(output)
    if any(layer.kind == "global" for layer in layers):
        first, last = 0, length - 1  # a global layer reads every step
    assert diagram.field == (max(first, 0), min(last, length - 1))
    assert diagram.receptive_field == geometry[-1].receptive_field
    assert all(first <= t <= last for t in expected[0])  # the exact taps lie inside the span
    for r, row in enumerate(diagram.rows):
        pad_left, pad_right = (geometry[r].pad_left, geometry[r].pad_right) if r < len(geometry) else (0, 0)
        left, right = row.padding_nodes
        assert (len(left), len(right)) == (pad_left, pad_right) == (row.pad_left, row.pad_right)
        assert [n.index for n in row.nodes if not n.padding] == list(range(row.length))
    assert [row.length for row in diagram.rows] == [length] + [g.output_length for g in geometry]
    lit = {(n.row, n.index) for row in diagram.rows for n in row.nodes if n.highlighted}
    for edge in diagram.edges:
        if edge.highlighted:
            assert (edge.row, edge.target) in lit and (edge.row - 1, edge.source) in lit


@settings(max_examples=60, deadline=None)
@given(stacks())
def test_each_output_sits_under_the_inputs_it_reads(case):
    layers, length, _ = case
    diagram = layout(layers, length, max_steps=10_000)
    for r, g in enumerate(stack_geometry(layers, length), start=1):
        below, row = diagram.rows[r - 1], diagram.rows[r]
        if g.layer.kind == "global":
            assert (row.x0, row.dx) == (below.x0, below.dx)
            continue
        for t in range(row.length):
            first = t * g.layer.stride - g.pad_left
            last = first + g.layer.span - 1
            causal = g.layer.padding == "causal" or (g.pad_left == g.layer.span - 1 > 0 and g.pad_right == 0)
            expected = below.x(last) if causal else (below.x(first) + below.x(last)) / 2
            assert row.x(t) == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(stacks(), st.integers(2, 24))
def test_a_window_shows_the_dependencies_that_fall_inside_it(case, max_steps):
    layers, length, output = case
    diagram = layout(layers, length, output, max_steps=max_steps)
    lo, hi = diagram.window
    assert hi - lo + 1 == min(length, max_steps) and diagram.windowed == (length > max_steps)
    first, last = diagram.field
    if last - first + 1 <= max_steps:
        assert lo <= first and last <= hi  # the whole clipped field is drawn
    for row, expected in zip(diagram.rows, dependencies(layers, length, output)):
        shown = {n.index for n in row.nodes}
        assert row.highlighted == [t for t in expected if t in shown]
    assert all(lo - 0.5 <= n.x <= hi + 0.5 for n in diagram.rows[0].nodes if not n.padding)


@settings(max_examples=8, deadline=None)
@given(stacks())
def test_any_stack_renders(tmp_path_factory, case):
    layers, length, output = case
    path = tmp_path_factory.mktemp("render") / "stack.png"
    diagram = draw(layers, length, path=path, output=output)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[1] > 100
    assert diagram.output_index == output


@st.composite
def gapless_stacks(draw):
    """Stride-1 causal stacks whose field has no holes: each dilation at most the field so far."""
    layers, field = [], 1
    for i in range(draw(st.integers(1, 5))):
        kernel = draw(st.integers(1, 5))
        dilation = draw(st.integers(1, min(field, 8)))
        layers.append(Layer(kernel, 1, dilation, "causal", name=f"c{i}"))
        field += dilation * (kernel - 1)
    length = draw(st.integers(1, MAX_STEPS))
    return layers, length, draw(st.integers(0, length - 1))


@settings(max_examples=60, deadline=None)
@given(gapless_stacks())
def test_contiguous_stacks_light_up_their_whole_clipped_receptive_field(case):
    layers, length, output = case
    diagram = layout(layers, length, output)
    first, last = stack_geometry(layers, length)[-1].field(output)
    assert diagram.rows[0].highlighted == list(range(max(first, 0), min(last, length - 1) + 1))


def test_wavenet_stack_is_the_wavenet_tree():
    diagram = layout(causal_stack(2, [1, 2, 4, 8]), 16)
    assert [row.highlighted for row in diagram.rows] == [
        list(range(16)),
        list(range(1, 16, 2)),
        [3, 7, 11, 15],
        [7, 15],
        [15],
    ]
    assert all(n.x == n.index for row in diagram.rows for n in row.nodes)  # causal: each node above its input
    assert [row.padding_nodes[0] for row in diagram.rows] == [[-1], [-2, -1], [-4, -3, -2, -1], list(range(-8, 0)), []]
    assert diagram.receptive_field == 16 and diagram.field == (0, 15)


def test_strided_stack_has_fewer_nodes_placed_under_their_last_input():
    layers = [Layer(5, 2, padding="causal"), Layer(5, 4, padding="causal"), Layer(1)]
    diagram = layout(layers, 32)
    assert [row.length for row in diagram.rows] == [32, 16, 4, 4]
    assert [n.x for n in diagram.rows[2].nodes if not n.padding] == [0, 8, 16, 24]
    assert diagram.rows[0].highlighted == list(range(12, 25)) and diagram.receptive_field == 13


def test_long_inputs_draw_only_the_last_window():
    layers = causal_stack(3, [1, 2, 4])
    diagram = layout(layers, 500)
    assert diagram.windowed and diagram.window == (500 - MAX_STEPS, 499)
    assert "showing input steps 436..499 of 500" in diagram.title
    inputs = diagram.rows[0]
    assert not any(n.padding for n in inputs.nodes) and len(inputs.nodes) == MAX_STEPS
    assert inputs.highlighted == dependencies(layers, 500, 499)[0] == list(range(485, 500))


def test_a_field_wider_than_the_window_keeps_its_newest_steps():
    layers = causal_stack(2, [1, 2, 4, 8, 16, 32, 64])
    diagram = layout(layers, 300, output=200, max_steps=40)
    assert diagram.window == (161, 200) and "wider than the window" in diagram.title
    assert diagram.rows[0].highlighted == list(range(161, 201))


def test_bad_arguments_are_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="output index must be an int in"):
        layout(causal_stack(2, [1, 2]), 8, output=8)
    with pytest.raises(ValueError, match="no time-axis layers"):
        layout([], 8)
    with pytest.raises(ValueError, match="use a .png, .svg or .gif"):
        draw(causal_stack(2, [1]), 8, path=tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="as a GIF"):
        draw(causal_stack(2, [1]), 8, path=tmp_path / "x.png", animate=True)
    with pytest.raises(ValueError, match="input_length"):
        draw(nn.Sequential(Conv1d(2, 3, 2)), path=tmp_path / "x.png")


def test_png_of_a_torch_module_labels_each_time_axis_layer(tmp_path):
    model = nn.Sequential(Conv1d(2, 5, 5, dilation=2), nn.ReLU(), Dense(5, 1))
    diagram = draw(model, 24, path=tmp_path / "model.png", title="two layers")
    assert [row.label for row in diagram.rows] == ["input", "0: Conv1d", "2: Dense"]
    assert diagram.title.startswith("two layers") and diagram.receptive_field == 9
    with Image.open(tmp_path / "model.png") as image:
        assert image.format == "PNG" and image.size[0] > 500


def test_svg_of_a_target_is_valid_xml(tmp_path):
    diagram = draw(resolve_target("example-dilated", (2, 20)), path=tmp_path / "example.svg")
    root = ElementTree.parse(tmp_path / "example.svg").getroot()
    assert root.tag.endswith("svg")
    assert diagram.rows[0].highlighted == dependencies([Layer(5, 1, 2, "causal"), Layer(5, 1, 4, "causal")], 20, 19)[0]


def test_animated_gif_has_one_frame_per_output(tmp_path):
    diagram = draw(causal_stack(2, [1, 2]), 6, path=tmp_path / "tree.gif", animate=True)
    assert diagram.frames == tuple(range(6))
    with Image.open(tmp_path / "tree.gif") as image:
        assert image.format == "GIF" and image.n_frames == 6


def test_compare_draws_two_stacks_on_one_figure(tmp_path):
    a, b = compare(
        resolve_target("example-dilated", (2, 16)),
        resolve_target("example-strided", (2, 16)),
        path=tmp_path / "both.png",
    )
    assert (a.rows[-1].length, b.rows[-1].length) == (16, 2)
    assert (a.receptive_field, b.receptive_field) == (25, 13)
    with Image.open(tmp_path / "both.png") as image:
        assert image.format == "PNG"


def test_cli_draw_writes_the_image(tmp_path, capsys):
    path = tmp_path / "example.png"
    assert main(["draw", "example-dilated", "--input", "2,16", "--output-index", "-3", "-o", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    with Image.open(path) as image:
        assert image.format == "PNG"
    assert (
        main(
            [
                "draw",
                "example-dilated",
                "--input",
                "2,16",
                "--compare",
                "example-strided",
                "-o",
                str(tmp_path / "both.svg"),
            ]
        )
        == 0
    )
    assert ElementTree.parse(tmp_path / "both.svg").getroot().tag.endswith("svg")


def test_cli_draw_errors_are_one_line(tmp_path, capsys):
    assert main(["draw", "example-dilated", "-o", str(tmp_path / "x.jpg")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    result = subprocess.run(
        [sys.executable, "-m", "dilated.cli", "draw", "no-such-target"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dilated: error: unknown target 'no-such-target'")
    assert not list(tmp_path.iterdir())


def test_a_model_of_unknown_causality_says_so_in_the_title(tmp_path):
    diagram = draw(nn.Sequential(Conv1d(1, 2, 3), HandDelay()), 16, path=tmp_path / "delay.png")
    assert [row.label for row in diagram.rows] == ["input", "0: Conv1d"]
    assert diagram.title.splitlines()[-1].startswith("Causal: unknown (layer 1 is not followed: 1: its steps read")
