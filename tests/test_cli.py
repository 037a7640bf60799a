"""The `dilated` command as a user runs it: a real subprocess, real files."""

import subprocess
import sys

import keras
import pytest


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dilated.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"KERAS_BACKEND": "torch", "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )


def test_summary_of_a_bundled_example():
    result = run("summary", "example-strided")
    assert result.returncode == 0, result.stderr
    assert "(None, 5, 25)" in result.stdout and "Receptive field: 13 input steps" in result.stdout


def test_summary_of_a_yaml_stack_with_keras_spellings(tmp_path):
    config = tmp_path / "stack.yaml"
    config.write_text(
        "input: [3, 64]\nlayers:\n"
        "  - {type: conv1d, filters: 8, kernel_size: 2, dilation_rate: 8, activation: relu}\n"
        "  - {type: maxpool1d, pool_size: 2}\n  - {type: dense, units: 1}\n"
    )
    result = run("summary", str(config), "--input", "3,100")
    assert result.returncode == 0, result.stderr
    assert "(None, 8, 100)" in result.stdout and "(None, 1, 50)" in result.stdout
    assert "Receptive field: 10 input steps (input length 100)" in result.stdout


def test_summary_of_a_saved_keras_model(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((200, 2)),
            keras.layers.Conv1D(5, 5, padding="causal", dilation_rate=2),
            keras.layers.Conv1D(5, 5, padding="causal", dilation_rate=4),
            keras.layers.Dense(1),
        ]
    )
    path = tmp_path / "example.keras"
    model.save(path)
    result = run("summary", str(path))
    assert result.returncode == 0, result.stderr
    assert "(None, 200, 5)" in result.stdout and "Total params: 191" in result.stdout
    assert "Receptive field: 25 input steps" in result.stdout


def test_summary_of_a_python_factory(tmp_path):
    (tmp_path / "mymodels.py").write_text(
        "from torch import nn\nfrom dilated.layers import Conv1d\n"
        "def build():\n    return nn.Sequential(Conv1d(1, 4, 3, dilation=3), nn.ReLU(), Conv1d(4, 1, 3, dilation=9))\n"
    )
    result = run("summary", "mymodels:build", "--input", "1,50", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Receptive field: 25 input steps" in result.stdout


def test_summary_of_a_model_instance_takes_it_as_it_is(tmp_path):
    """``module:attr`` naming an ``nn.Module`` (callable, but not a factory) is not called with no arguments."""
    (tmp_path / "mymodel.py").write_text(
        "from torch import nn\nfrom dilated.layers import Conv1d\n"
        "model = nn.Sequential(Conv1d(1, 4, 3, dilation=3), nn.ReLU(), Conv1d(4, 1, 3, dilation=9))\n"
    )
    result = run("summary", "mymodel:model", "--input", "1,50", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Receptive field: 25 input steps" in result.stdout


def test_summary_of_a_model_in_a_python_file(tmp_path):
    """``path/to/file.py:attr``: the file is imported as a module, its model taken as it is."""
    from helpers import dilated_cli

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.py").write_text(
        "from torch import nn\nfrom dilated.layers import Conv1d\n"
        "model = nn.Sequential(Conv1d(1, 4, 3, dilation=3), nn.ReLU(), Conv1d(4, 1, 3, dilation=9))\n"
    )
    result = dilated_cli("summary", "models/mine.py:model", "--input", "1,50", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Receptive field: 25 input steps" in result.stdout
    missing = dilated_cli("summary", "models/none.py:model", cwd=tmp_path)
    assert missing.returncode == 2 and "no Python file models/none.py" in missing.stderr


def test_design_takes_the_field_as_its_argument():
    positional, spelled = run("design", "100", "--top", "2"), run("design", "--receptive-field", "100", "--top", "2")
    assert positional.returncode == 0, positional.stderr
    assert positional.stdout == spelled.stdout and "reaching >= 100 steps" in positional.stdout


def test_help_explains_the_target_formats_with_an_example():
    result = run("summary", "--help")
    assert result.returncode == 0
    assert "model.keras" in result.stdout and "mypkg.models:build" in result.stdout and "layers:" in result.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["summary", "missing.keras"], "Keras model file not found: missing.keras"),
        (["summary", "missing.yaml"], "config file not found: missing.yaml"),
        (["summary", "no_such_model"], "unknown target 'no_such_model'"),
        (["summary", "example-dilated", "--input", "2,abc"], "--input: expected an input shape like 2,200"),
        (["summary", "example-dilated", "--input", "3,200"], r"expected input (batch, 2, time)"),
        (["summary", "nosuchmodule:build"], "cannot import 'nosuchmodule'"),
    ],
)
def test_errors_are_one_line_without_traceback(args, message):
    result = run(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert message in result.stderr


def test_unknown_layer_type_in_a_config(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("input: [2, 50]\nlayers:\n  - {type: conv2d, channels: 3}\n")
    result = run("summary", str(config))
    assert result.returncode == 2 and "unknown layer type 'conv2d'" in result.stderr and "conv1d" in result.stderr


def test_debug_shows_the_traceback():
    result = run("--debug", "summary", "missing.yaml")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_data_info_names_the_missing_columns_of_a_book_and_fails(tmp_path):
    import numpy as np
    import pyarrow.parquet as pq

    from dilated.data import Book, write_book
    from helpers import dilated_cli

    book = Book(np.arange(5, dtype=np.int64), np.ones((5, 40)), "ten", "test")
    table = pq.read_table(write_book(book, tmp_path / "whole.parquet")).drop_columns(["ask_size_3", "bid_price_7"])
    pq.write_table(table, tmp_path / "book.parquet")
    result = dilated_cli("data", "info", "book.parquet", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "book.parquet: missing columns ask_size_3, bid_price_7 (" in result.stderr
    assert result.stderr.count("\n") == 1


def test_data_info_and_data_convert_each_have_their_own_help(capsys):
    from dilated.cli import main

    helps = {}
    for action in ("info", "convert"):
        with pytest.raises(SystemExit):
            main(["data", action, "--help"])
        helps[action] = capsys.readouterr().out
    assert "Describe a book" in helps["info"] and "  dilated data info esh4.parquet --json" in helps["info"]
    assert "  dilated data convert " not in helps["info"] and "Rebuild limit order books" not in helps["info"]
    assert "Rebuild limit order books" in helps["convert"] and "dilated data info" not in helps["convert"]
