"""Every row of docs/errors.md: the documented exception and message, from the API (and the CLI for some)."""

import copy
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import dilated
from dilated.analysis import first_noncausal_layer
from dilated.checkpoints import load_checkpoint, save_checkpoint
from dilated.data import bundled_lobster_sample, load_fi2010, read_fi2010, read_lobster, table_dataset
from dilated.experiment import DEMO_CONFIG, apply_overrides, resolve_config
from dilated.geometry import Layer, stack_geometry
from dilated.layers import Conv1d
from dilated.targets import build_stack, parse_input_shape, read_yaml, resolve_target
from dilated.training import check_finite

DOC = Path(__file__).parent.parent / "docs" / "errors.md"


def documented_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("id", "---") and not cells[0].startswith("-"):
            rows[cells[0]] = (cells[2], cells[3].strip("`"))
    return rows


def fi2010_file(tmp_path: Path, edit: Callable[[list[str]], list[str]] = lambda lines: lines) -> Path:
    path = tmp_path / "Train_Dst_NoAuction_ZScore_CF_7.txt"
    rows = np.ones((149, 300))
    rows[144:] = 2
    np.savetxt(path, rows, fmt="%.7e")
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    return path


def replace_first_cell(row: int, value: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        lines[row] = lines[row].replace("1.0000000e+00", value, 1)
        return lines
    return edit


def short_lobster_messages(tmp_path: Path) -> None:
    messages, book = bundled_lobster_sample()
    cut = tmp_path / "messages.csv"
    cut.write_text("\n".join(Path(messages).read_text().splitlines()[:500]) + "\n")
    read_lobster(cut, book)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def demo_config_with(**training: object) -> dict:
    config = copy.deepcopy(DEMO_CONFIG)
    config["training"].update(training)
    return config


def nan_batch() -> None:
    x = torch.zeros(4, 2, 5)
    x[2, 1, 3] = float("nan")
    check_finite(x, torch.zeros(4))


def truncated_checkpoint(tmp_path: Path) -> None:
    folder = save_checkpoint(tmp_path / "checkpoint", {"w": torch.ones(3)}, {"epoch": 1})
    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-5])
    load_checkpoint(folder)


class _Spectrum(torch.nn.Module):
    """An op the receptive-field analysis does not follow (an FFT over time)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(x, dim=-1).abs()


class _Quantised(torch.nn.Module):
    """A conv whose output is rounded to 0: the probe sees no dependency, the analysis does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = Conv1d(1, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(self.conv(x) * 1e-9)


def _any_length_keras() -> object:
    import keras

    inputs = keras.Input((None, 1))
    return keras.Model(inputs, keras.layers.Conv1D(2, 3, padding="causal")(inputs))


CASES: dict[str, Callable[[Path], object]] = {
    "conv-channels": lambda _: Conv1d(2, 4, 3)(torch.zeros(1, 3, 10)),
    "conv-rank": lambda _: Conv1d(2, 4, 3)(torch.zeros(2, 10)),
    "conv-dtype": lambda _: Conv1d(2, 4, 3)(torch.zeros(1, 2, 10, dtype=torch.long)),
    "conv-short": lambda _: Conv1d(2, 4, 5, dilation=2, padding="valid")(torch.zeros(1, 2, 5)),
    "conv-groups": lambda _: Conv1d(4, 6, 3, groups=4),
    "geometry-kernel": lambda _: Layer(kernel_size=0),
    "geometry-stride-dilation": lambda _: Layer(3, stride=2, dilation=2),
    "geometry-padding": lambda _: Layer(3, padding="full"),
    "geometry-too-short": lambda _: stack_geometry(
        [Layer(3, name="first"), Layer(9, dilation=2, name="second")], 10),
    "summary-no-shape": lambda _: dilated.summary(Conv1d(2, 2, 3)),
    "model-unknown": lambda _: dilated.build_model("transformer"),
    "model-option": lambda _: dilated.build_model("tcn", num_layers=3),
    "model-init": lambda _: dilated.build_model("tcn", init="xavier"),
    "model-window": lambda _: dilated.build_model("translob")(torch.zeros(1, 40, 50)),
    "model-layout": lambda _: dilated.build_model("translob")(torch.zeros(1, 100, 40)),
    "config-missing": lambda _: read_yaml("missing.yaml"),
    "config-yaml": lambda tmp: read_yaml(write(tmp, "config.yaml", "layers: [unclosed\n")),
    "config-layer-type": lambda _: build_stack([{"type": "conv2d", "channels": 3}], 2),
    "config-layer-option": lambda _: build_stack([{"type": "conv1d", "channels": 3, "kernal_size": 3}], 2),
    "config-input": lambda _: parse_input_shape("2,abc", "--input"),
    "keras-missing-file": lambda _: resolve_target("missing.keras"),
    "fi2010-truncated": lambda tmp: read_fi2010(fi2010_file(tmp, lambda lines: lines[:120]), progress=False),
    "fi2010-cell": lambda tmp: read_fi2010(fi2010_file(tmp, replace_first_cell(5, "abc")), progress=False),
    "fi2010-nan": lambda tmp: read_fi2010(fi2010_file(tmp, replace_first_cell(7, "nan")), progress=False),
    "fi2010-horizon": lambda tmp: load_fi2010(fi2010_file(tmp).parent, horizon=15, progress=False),
    "lobster-mismatch": short_lobster_messages,
    "train-config-key": lambda _: resolve_config(demo_config_with(learning_rat=1)),
    "train-override-section": lambda _: apply_overrides(copy.deepcopy(DEMO_CONFIG), ["trainig.lr=1"]),
    "train-config-type": lambda _: resolve_config(apply_overrides(copy.deepcopy(DEMO_CONFIG), ["training.lr=abc"])),
    "train-batch-nan": lambda _: nan_batch(),
    "checkpoint-truncated": truncated_checkpoint,
    "table-column": lambda tmp: table_dataset(write(tmp, "t.csv", "a,b\n1,2\n3,4\n"), target="c", features=["a"],
                                              window=1),
    # --- receptive-field analysis (dilated.receptive_field, dilated.probe_receptive_field) ---
    "rf-no-shape": lambda _: dilated.receptive_field(Conv1d(2, 2, 3)),
    "rf-not-a-model": lambda _: dilated.receptive_field("model", (2, 10)),
    "rf-keras-any-length": lambda _: dilated.receptive_field(_any_length_keras()),
    "rf-keras-shape": lambda _: dilated.receptive_field(_any_length_keras(), (3, 64)),
    "rf-measured-steps": lambda _: dilated.receptive_field(_Spectrum(), (1, 32)).steps(0),
    "rf-probe-disagrees": lambda _: dilated.receptive_field(_Quantised(), (1, 32), probe=True),
    "rf-unfollowed": lambda _: first_noncausal_layer(torch.nn.Sequential(Conv1d(1, 1, 2), _Spectrum()), (1, 32)),
    "rf-probe-module": lambda _: dilated.probe_receptive_field(Conv1d(1, 1, 2), (1, 8), module="decoder"),
    "rf-draw-nothing": lambda tmp: dilated.draw(torch.nn.Sequential(torch.nn.AdaptiveAvgPool1d(1)), 8,
                                                input_shape=(1, 8), path=tmp / "x.png"),
}

ROWS = documented_rows()


def test_every_documented_row_has_a_case_and_every_case_a_row():
    assert set(ROWS) == set(CASES)


@pytest.mark.parametrize("row", sorted(ROWS))
def test_documented_error(row, tmp_path):
    kind, message = ROWS[row]
    exception = {"ValueError": ValueError, "TypeError": TypeError}[kind]
    with pytest.raises(exception, match=re.escape(message)):
        CASES[row](tmp_path)


@pytest.mark.parametrize("args,message", [
    (["summary", "missing.yaml"], ROWS["config-missing"][1]),
    (["summary", "seed-dilated", "--input", "2,abc"], ROWS["config-input"][1]),
])
def test_cli_prints_the_same_message_on_one_line(args, message):
    result = subprocess.run([sys.executable, "-m", "dilated.cli", *args], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("dilated: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
