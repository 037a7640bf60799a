"""`--json` of `summary`, `models`, `design`, `data info`, `report` and `evaluate` (docs/json.md): one JSON object on stdout,
``"schema": "dilated.<command>/1"`` first, numbers as numbers, equal to the text output and to the library calls."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from dilated.analysis import receptive_field
from dilated.cli import main
from dilated.cli._shared import print_json
from dilated.data import (
    book_summary,
    convert_book,
    convert_dataset,
    dataset_info,
    dataset_label_balance,
    label_balance,
    synthetic_feed,
    write_book,
    write_planted_dataset,
)
from dilated.design import design
from dilated.models import available_models, build_model, example_input_shape
from dilated.training import RunDir, run_report
from helpers import dilated_cli

DOC = (Path(__file__).parent.parent / "docs" / "json.md").read_text()

TINY = """\
model: tcn
options: {num_channels: [4], kernel_size: 3}
data: {kind: lobster, horizon: 10, window: 20}
training: {batch_size: 32, max_epochs: 1, seed: 3}
trainer: {threads: 1}
"""


def documented_keys(schema: str, kind: str | None = None) -> set[str]:
    """The top-level keys docs/json.md lists for ``schema`` (its tables' first column; of one ``kind``'s table)."""
    section = DOC.split(f'## `"{schema}"`')[1].split("\n## ")[0]
    if kind is not None:
        section = section.split(f'For `"kind": "{kind}"`')[1].split("For `")[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {key for row in rows for key in re.findall(r"`(\w+)`", row)}


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    """``dilated ARGS --json`` run in this process: its stdout parsed (nothing else may be there), every top-level
    key documented in docs/json.md."""
    assert main([*args, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert list(payload)[0] == "schema"
    assert set(payload) - {"schema"} <= documented_keys(payload["schema"], payload.get("kind")), payload["schema"]
    return payload


def cli_text(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_the_envelope_puts_the_schema_first_and_writes_only_json_types(capsys):
    print_json("dilated.test/1", {"a": np.float32(0.5), "b": np.arange(2), "nan": math.nan, "p": Path("x/y")})
    text = capsys.readouterr().out
    assert text.startswith('{\n  "schema": "dilated.test/1",') and "NaN" not in text
    assert json.loads(text) == {"schema": "dilated.test/1", "a": 0.5, "b": [0, 1], "nan": None, "p": "x/y"}


@pytest.mark.slow
def test_models(capsys):
    payload = cli_json(capsys, "models")
    assert list(payload) == ["schema", "models"] and payload["schema"] == "dilated.models/1"
    rows = {row["name"]: row for row in payload["models"]}
    assert list(rows) == available_models()
    for name, row in rows.items():
        model, shape = build_model(name), example_input_shape(name)
        assert row["input"] == list(shape) and row["parameters"] == sum(p.numel() for p in model.parameters())
        field = receptive_field(model, shape)
        assert row["whole_input"] == bool(field.whole_input or field.past)
        assert row["receptive_field"] == (None if row["whole_input"] else field.size)
    assert rows["tcn"]["receptive_field"] == 3061 and rows["translob"]["receptive_field"] is None
    text = cli_text(capsys, "models").splitlines()
    assert text[list(rows).index("wavenet")].endswith("params 556,864  receptive field 3071")


def test_design(capsys, tmp_path):
    payload = cli_json(capsys, "design", "100", "--kernel-size", "3", "--top", "3", "-o", str(tmp_path / "s.yaml"))
    assert payload["schema"] == "dilated.design/1"
    assert {k: payload[k] for k in ("receptive_field", "kernel_sizes", "block", "channels", "input_channels")} == {
        "receptive_field": 100,
        "kernel_sizes": [3],
        "block": "plain",
        "channels": 32,
        "input_channels": 1,
    }
    expected = design(100, [3], top=3)
    assert [row["rank"] for row in payload["proposals"]] == [1, 2, 3]
    for row, proposal in zip(payload["proposals"], expected, strict=True):
        assert row["dilations"] == list(proposal.dilations) and row["params"] == proposal.params
        assert (row["receptive_field"], row["overshoot"], row["flops"]) == (
            proposal.receptive_field,
            proposal.overshoot,
            proposal.flops,
        )
    assert payload["written"] == {"path": str(tmp_path / "s.yaml"), "pick": 1}
    assert (tmp_path / "s.yaml").read_text() == expected[0].yaml()
    table = cli_text(capsys, "design", "100", "--kernel-size", "3", "--top", "3").splitlines()
    first = payload["proposals"][0]
    assert table[2].split()[:6] == [
        "1",
        str(first["layers"]),
        "3",
        f"{first['receptive_field']:,}",
        "1",
        f"{first['params']:,}",
    ]
    holes = cli_json(capsys, "design", "--explain", "example-dilated")
    assert holes["schema"] == "dilated.design-explain/1" and holes["target"] == "example-dilated"
    assert (holes["receptive_field"], holes["fed"], holes["missing"]) == (25, 13, list(range(1, 25, 2)))


def test_data_info_of_a_book_file_and_of_a_dataset_folder(capsys, tmp_path):
    feed = synthetic_feed("binance", tmp_path / "x.txt", 2_000, seed=1, symbol="ABC")
    book = convert_book(feed, levels=3)
    path = write_book(book, tmp_path / "book.parquet")
    payload = cli_json(capsys, "data", "info", str(path), "--horizons", "5,20")
    assert payload["schema"] == "dilated.data-info/1" and payload["kind"] == "book"
    summary = book_summary(book)
    assert {k: payload[k] for k in summary} == json.loads(json.dumps(summary))
    assert payload["events"] == len(book) > 0 and payload["levels"] == 3
    balance = label_balance(book, [5, 20])
    expected = [{"horizon": h, "smoothing": rule, **row} for h, rules in balance.items() for rule, row in rules.items()]
    assert payload["labels"] == json.loads(json.dumps(expected))
    text = cli_text(capsys, "data", "info", str(path), "--horizons", "5,20")
    assert f"events {payload['events']:,}, 3 levels per side" in text
    assert f"k=5 future: threshold {payload['labels'][0]['threshold']:.3g}" in text

    convert_dataset([feed], tmp_path / "books", levels=3, processes=1)
    capsys.readouterr()
    folder = cli_json(capsys, "data", "info", str(tmp_path / "books"), "--horizons", "5")
    labels = {name: row.pop("labels") for name, row in folder["instruments"].items()}
    assert folder == {"schema": "dilated.data-info/1", "kind": "dataset", **dataset_info(tmp_path / "books")}
    assert folder["instruments"]["ABCUSDT"]["rows"] == len(book)
    assert labels["ABCUSDT"][0] == {"horizon": 5, "smoothing": "future", "threshold": None, "labelled": 0} | {
        "rule": "1 day(s); the splits need 3"
    }

    write_planted_dataset(tmp_path / "planted", days=3, events=800)
    planted = cli_json(capsys, "data", "info", str(tmp_path / "planted"), "--horizons", "5,20", "--smoothing", "tlob")
    balance = dataset_label_balance(tmp_path / "planted", "PLANTED", [5, 20], smoothings=["tlob"])
    rows = [{"horizon": h, "smoothing": rule, **row} for h, rules in balance.items() for rule, row in rules.items()]
    assert planted["instruments"]["PLANTED"]["labels"] == json.loads(json.dumps(rows))
    assert rows[0]["labelled"]["test"] > 0
    text = cli_text(capsys, "data", "info", str(tmp_path / "planted"), "--horizons", "5,20", "--smoothing", "tlob")
    assert f"k=20 tlob: threshold {rows[1]['threshold']:.3g}" in text.splitlines()[-1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny TCN trained one epoch on the bundled LOBSTER sample."""
    folder = tmp_path_factory.mktemp("json")
    (folder / "tiny.yaml").write_text(TINY)
    result = dilated_cli("train", "tiny.yaml", "--run-dir", "run", "--no-progress", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "run"


def test_report(capsys, run):
    payload = cli_json(capsys, "report", str(run))
    metrics = json.loads((run / "metrics.json").read_text())
    assert payload["schema"] == "dilated.report/1"
    assert payload == {"schema": "dilated.report/1", **json.loads(json.dumps(run_report(RunDir(run))))}
    assert payload["status"] == "finished" and payload["epochs"] == 1 and payload["last"]["epoch"] == 1
    assert payload["model"]["parameters"] == metrics["model"]["parameters"] == 723
    assert payload["data"]["samples"] == {"train": 670, "val": 121, "test": 121}
    assert payload["best"] == metrics["best"] and payload["test"] == metrics["test"]
    assert payload["checkpoints"]["count"] == 1 and payload["resume"] is None
    text = cli_text(capsys, "report", str(run))
    row = next(line.split() for line in text.splitlines() if line.split()[:1] == ["accuracy"])
    test = payload["test"]
    assert row[1:] == [f"{test['accuracy']:.4f}", f"{test['baseline']['accuracy']:.4f}"]
    assert "model        tcn, 723 parameters, receptive field 5" in text


def test_evaluate_writes_only_json_on_stdout(run):
    result = dilated_cli("evaluate", "run", "--json", "-o", "eval.json", cwd=run.parent)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) - {"schema"} <= documented_keys("dilated.evaluate/1")
    assert result.stderr.strip().endswith("wrote eval.json")
    written = json.loads((run.parent / "eval.json").read_text())
    assert payload == {"schema": "dilated.evaluate/1", **written}
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert payload["split"] == "test" and payload["samples"] == 121
    assert payload["accuracy"] == test["accuracy"] and payload["confusion_matrix"] == test["confusion_matrix"]
    assert payload["baseline"]["accuracy"] == test["baseline"]["accuracy"]


def test_summary_keys_are_documented(capsys):
    payload = cli_json(capsys, "summary", "example-dilated", "--input", "2,20")
    assert payload["schema"] == "dilated.summary/1" and payload["receptive_field"] == 25
