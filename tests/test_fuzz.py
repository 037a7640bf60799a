"""Fuzz targets: random and mutated input never crashes with anything but the documented errors.

Every target here parses or checks user input, and every refusal of that input is documented (docs/errors.md) as
a ``ValueError`` with a one-line message; so each target accepts ``ValueError`` only. A ``TypeError``,
``IndexError`` or ``KeyError`` is how a programming bug shows, and fails the test.

The default run is brief; `python benchmarks/fuzz.py` runs the same targets with many more examples
(`HYPOTHESIS_PROFILE=fuzz`).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from dilated._resolve import build_stack, model_from_config, read_yaml
from dilated.data import bundled_lobster_sample, read_fi2010, read_lobster
from dilated.geometry import Layer, stack_geometry
from dilated.summaries import summary

DOCUMENTED = (ValueError,)  # what every target below documents (see the module docstring)
FUNCTION_SCOPED = [HealthCheck.function_scoped_fixture]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=True), st.text(max_size=8))
layer_specs = st.dictionaries(
    st.sampled_from(
        [
            "type",
            "channels",
            "filters",
            "kernel_size",
            "stride",
            "strides",
            "dilation",
            "padding",
            "units",
            "pool_size",
            "activation",
            "rate",
            "groups",
            "bias",
            "kernal_size",
        ]
    ),
    st.one_of(
        scalars,
        st.sampled_from(
            [
                "conv1d",
                "dense",
                "maxpool1d",
                "avgpool1d",
                "relu",
                "dropout",
                "causal",
                "same",
                "valid",
                "conv2d",
                "tanh",
            ]
        ),
    ),
    max_size=6,
)
configs = st.one_of(
    st.dictionaries(
        st.sampled_from(["input", "layers", "model", "options", "name"]),
        st.one_of(
            scalars,
            st.lists(st.one_of(layer_specs, scalars), max_size=4),
            st.lists(st.integers(-1, 300), max_size=3),
            st.sampled_from(["tcn", "translob", "x"]),
        ),
        max_size=4,
    ),
    st.lists(scalars, max_size=3),
    scalars,
)


@settings(suppress_health_check=FUNCTION_SCOPED)
@given(configs)
def test_config_parser(tmp_path, config):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    try:
        target = model_from_config(read_yaml(path), "config.yaml")
    except DOCUMENTED:
        return
    assert isinstance(target.model, nn.Module)


@given(st.lists(layer_specs, min_size=1, max_size=4), st.integers(1, 4), st.integers(1, 64))
def test_stack_build_and_forward(specs, channels, length):
    try:
        model = build_stack(specs, channels)
        model(torch.randn(1, channels, length))
    except DOCUMENTED:
        return


@settings(suppress_health_check=FUNCTION_SCOPED)
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_yaml_reader_on_garbage(tmp_path, content):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    try:
        read_yaml(path)
    except DOCUMENTED:
        return


def _valid_fi2010_text(events: int = 120) -> str:
    rows = np.random.default_rng(0).standard_normal((149, events))
    rows[144:] = np.random.default_rng(1).integers(1, 4, (5, events))
    return "\n".join("  ".join(f"{v:.7e}" for v in row) for row in rows) + "\n"


FI2010 = _valid_fi2010_text()


@settings(suppress_health_check=FUNCTION_SCOPED)
@given(
    st.lists(
        st.tuples(st.integers(0, len(FI2010) - 1), st.integers(0, 40), st.text(max_size=6)), min_size=1, max_size=4
    )
)
def test_fi2010_parser_on_mutated_files(tmp_path, edits):
    text = FI2010
    for position, cut, insert in edits:
        text = text[:position] + insert + text[position + cut :]
    path = tmp_path / "Train_Dst_NoAuction_ZScore_CF_7.txt"
    path.write_text(text)
    try:
        book, labels = read_fi2010(path, cache_dir=tmp_path / "cache", progress=False)
    except DOCUMENTED:
        return
    assert book.shape[1] == 40 and labels.shape[1] == 5 and np.isfinite(book).all()


MESSAGES, BOOK = (Path(p) for p in bundled_lobster_sample())
BOOK_LINES = BOOK.read_text().splitlines()[:60]
MESSAGE_LINES = MESSAGES.read_text().splitlines()[:60]


@settings(suppress_health_check=FUNCTION_SCOPED)
@given(
    st.integers(0, 59),
    st.integers(0, 39),
    st.sampled_from(["", "x", "nan", "-1", "1e400", "9999999999", ",,"]),
    st.booleans(),
)
def test_lobster_parser_on_mutated_files(tmp_path, row, column, value, in_book):
    lines = list(BOOK_LINES if in_book else MESSAGE_LINES)
    cells = lines[row].split(",")
    cells[column % len(cells)] = value
    lines[row] = ",".join(cells)
    book_path, message_path = tmp_path / "book.csv", tmp_path / "messages.csv"
    book_path.write_text("\n".join(lines if in_book else BOOK_LINES) + "\n")
    message_path.write_text("\n".join(MESSAGE_LINES if in_book else lines) + "\n")
    try:
        parsed = read_lobster(message_path, book_path)
    except DOCUMENTED:
        return
    assert parsed.snapshots.shape == (60, 40) and np.isfinite(parsed.snapshots).all()


layer_settings = st.fixed_dictionaries(
    {
        "kernel_size": st.integers(-1, 6),
        "stride": st.integers(0, 4),
        "dilation": st.integers(0, 5),
        "padding": st.sampled_from(["causal", "same", "valid", 0, 2, (1, 0), "full", -1, None]),
        "kind": st.sampled_from(["conv", "maxpool", "avgpool", "pointwise", "global", "dense"]),
        "semantics": st.sampled_from(["keras", "torch"]),
        "ceil_mode": st.booleans(),
    }
)


@given(st.lists(layer_settings, min_size=1, max_size=5), st.one_of(st.integers(-2, 80), st.none(), st.just(3.5)))
def test_geometry_on_random_stacks(stack, length):
    try:
        rows = stack_geometry([Layer(**settings) for settings in stack], length)
    except DOCUMENTED:
        return
    assert all(row.output_length >= 1 and row.receptive_field >= 1 for row in rows)


@pytest.mark.filterwarnings("ignore::UserWarning")
@given(st.lists(layer_specs, min_size=1, max_size=3), st.integers(1, 3), st.integers(1, 80))
def test_summary_on_random_stacks(specs, channels, length):
    try:
        model = build_stack(specs, channels)
        result = summary(model, (channels, length))
    except DOCUMENTED:
        return
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert str(result)
