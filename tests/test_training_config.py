"""Training configs: defaults, checks, overrides, the shipped configs, and one-line errors from the CLI."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dilated.experiment import (
    DEMO_CONFIG,
    TRAINING_FIELDS,
    apply_overrides,
    data_override,
    infer_model_options,
    load_config,
    resolve_config,
)
from dilated.tasks import Task

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _raw(**sections):
    raw = {"model": "tcn", "data": {"kind": "adding", "seq_len": 50}}
    raw.update(sections)
    return raw


def test_defaults_are_filled_in_and_numbers_parsed():
    config = resolve_config(_raw(training={"lr": "1e-4", "max_epochs": 3}))
    assert config["training"]["lr"] == 1e-4  # YAML reads 1e-4 as a string
    assert config["training"]["optimizer"] == "adam" and config["training"]["batch_size"] == 32
    assert config["data"] == {"kind": "adding", "seq_len": 50, "train_size": 50000, "val_size": 1000,
                              "test_size": 1000, "halves": False, "seed": 0}
    assert set(config["training"]) == set(TRAINING_FIELDS)
    assert config["trainer"]["devices"] == 1 and config["trainer"]["strategy"] == "auto"


@pytest.mark.parametrize("raw,message", [
    (_raw(trainig={}), "unknown key 'trainig'; valid keys: model, options, data, training, trainer"),
    (_raw(training={"lrr": 0.1}), "training: unknown key 'lrr'; valid keys: optimizer, lr,"),
    (_raw(data={"kind": "adding", "length": 5}), "data: unknown key 'length'; valid keys: kind, seq_len,"),
    (_raw(data={"kind": "lobsters"}), "data.kind: unknown kind 'lobsters'; valid kinds: lobster, fi2010, table"),
    (_raw(options={"levels": 3}), "options: unknown key 'levels' for model 'tcn'; valid keys: input_channels"),
    (_raw(model="resnet"), "unknown model 'resnet'"),
    (_raw(training={"optimizer": "adagrad"}), "training.optimizer: 'adagrad' is not one of adam, adamw"),
    (_raw(training={"batch_size": "many"}), "training.batch_size: expected an integer, got 'many'"),
    (_raw(trainer={"gpus": 2}), "trainer: unknown key 'gpus'; valid keys: accelerator, devices"),
    ({"model": "tcn", "data": {"kind": "fi2010"}}, "data.root is required"),
    ({"input": [2, 100], "layers": []}, "layer-stack config for `dilated summary`"),
])
def test_config_errors_name_the_key_and_list_the_valid_ones(raw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_config(raw)


def test_overrides_set_values_and_reject_unknown_paths():
    raw = apply_overrides(_raw(), ["training.lr=0.01", "data.seq_len=80", "options.kernel_size=3",
                                   "trainer.devices=2", "training.class_weights=balanced"])
    config = resolve_config(raw)
    assert (config["training"]["lr"], config["data"]["seq_len"], config["options"]) == (0.01, 80, {"kernel_size": 3})
    assert config["trainer"]["devices"] == 2 and config["training"]["class_weights"] == "balanced"
    with pytest.raises(ValueError, match="--override training.learning_rate=1: unknown key 'learning_rate' in "
                                         "'training'; valid keys: optimizer, lr"):
        apply_overrides(_raw(), ["training.learning_rate=1"])
    with pytest.raises(ValueError, match="unknown section 'train'"):
        apply_overrides(_raw(), ["train.lr=1"])
    with pytest.raises(ValueError, match="expected SECTION.KEY=VALUE"):
        apply_overrides(_raw(), ["training.lr"])


def test_model_options_follow_the_data():
    lob = Task("classification", 3)
    assert infer_model_options("translob", {}, 40, 100, lob) == {"num_features": 40, "window": 100, "num_classes": 3}
    assert infer_model_options("tcn", {"kernel_size": 3}, 2, 600, Task("regression")) == {
        "input_channels": 2, "output_size": 1, "last_step_only": True, "kernel_size": 3}
    assert infer_model_options("tcn", {}, 1, 1020, Task("classification", 10, per_step=True))["last_step_only"] is False
    assert infer_model_options("wavenet", {}, 1, 32, Task("regression"))["output"] == "regression"
    assert infer_model_options("deeplob", {"window": 50}, 40, 100, lob)["window"] == 50  # the config wins


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_resolves(path):
    config = load_config(str(path))
    assert config["model"] in ("translob", "deeplob", "tcn", "wavenet")


def test_published_hyperparameters():
    translob = load_config(str(CONFIGS / "translob_fi2010_h50.yaml"))
    assert (translob["data"]["horizon"], translob["training"]["lr"], translob["training"]["betas"],
            translob["training"]["eps"], translob["training"]["batch_size"], translob["training"]["max_epochs"]) == (
        50, 1e-4, [0.9, 0.999], 1e-8, 32, 150)
    deeplob = load_config(str(CONFIGS / "deeplob_fi2010_h100.yaml"))
    assert (deeplob["training"]["lr"], deeplob["training"]["eps"], deeplob["training"]["batch_size"]) == (0.01, 1.0, 32)
    adding = load_config(str(CONFIGS / "tcn_adding.yaml"))
    assert adding["options"]["num_channels"] == [30] * 8 and adding["options"]["kernel_size"] == 7
    assert adding["data"]["seq_len"] == 600 and adding["training"]["lr"] == 4e-3
    copy = load_config(str(CONFIGS / "tcn_copy_memory.yaml"))
    assert copy["training"]["optimizer"] == "rmsprop" and copy["data"]["blank_len"] == 1000


def test_the_demo_config_file_is_the_demo():
    assert resolve_config(yaml.safe_load((CONFIGS / "translob_lobster_demo.yaml").read_text())) == resolve_config(
        DEMO_CONFIG)


def test_evaluation_data_override():
    base = resolve_config(_raw(data={"kind": "table", "path": "a.csv", "target": "y", "window": 10}))["data"]
    assert data_override(base, "b.csv")["path"] == "b.csv"
    lobster = resolve_config(_raw(data={"kind": "lobster", "horizon": 20}))["data"]
    with pytest.raises(ValueError, match="fits runs trained on table data"):
        data_override(lobster, "b.csv")


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dilated.cli", *args], capture_output=True, text=True, cwd=cwd,
                          check=False)


def test_an_unknown_config_key_is_one_line_from_the_cli(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model: tcn\ndata: {kind: adding}\ntraining: {epochs: 3}\n")
    result = _cli("train", str(config), "--override", "training.lr=0.1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "training: unknown key 'epochs'; valid keys: optimizer, lr, betas" in result.stderr
    assert "max_epochs" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_lobster_data_section_builds_time_ordered_splits():
    from dilated.datasets import build_splits

    splits = build_splits(resolve_config(DEMO_CONFIG)["data"], progress=False)
    assert splits.info["sizes"] == {"train": 490, "val": 91, "test": 91}
    assert (splits.channels, splits.length, splits.task.class_names) == (40, 100, ("up", "stationary", "down"))
    assert sum(splits.info["class_counts"]["test"]) == 91 and splits.info["alpha"] > 0
    assert int(splits.train.ends[-1]) + 10 < int(splits.val.ends[0]) - 99  # no window or label crosses a boundary


def test_fi2010_data_section_holds_out_the_end_of_the_training_days(tmp_path):
    from test_data_fi2010 import TEST_DAYS, TRAIN, write_fi2010

    from dilated.datasets import build_splits

    write_fi2010(tmp_path / "fi" / TRAIN, 150)
    for fold, events in TEST_DAYS.items():
        write_fi2010(tmp_path / "fi" / f"Test_Dst_NoAuction_ZScore_CF_{fold}.txt", events, fold)
    data = resolve_config(_raw(data={"kind": "fi2010", "root": str(tmp_path / "fi"), "horizon": 10, "window": 5}))
    splits = build_splits(data["data"], progress=False)
    # training days: events 0-119 train, 120-149 validation (val_fraction 0.2); a window and its 10-event label
    # horizon stay inside one part
    assert splits.train.ends.tolist() == list(range(4, 110))
    assert splits.val.ends.tolist() == list(range(124, 140))
    assert len(splits.test) == sum(TEST_DAYS.values()) - 4  # days 8-10 joined, as DeepLOB
    assert splits.task.num_classes == 3 and splits.channels == 40


def test_table_data_is_z_scored_with_training_statistics_only(tmp_path):
    import numpy as np
    import pandas as pd

    from dilated.datasets import build_splits

    values = np.arange(100, dtype=float) ** 1.5
    pd.DataFrame({"y": values}).to_csv(tmp_path / "series.csv", index=False)
    data = resolve_config(_raw(data={"kind": "table", "path": str(tmp_path / "series.csv"), "target": "y",
                                     "window": 10, "fractions": [0.5, 0.25, 0.25]}))["data"]
    splits = build_splits(data, progress=False)
    train_rows = values[: int(splits.train.ends[-1]) + 1]  # the rows the training windows cover
    stats = splits.info["normalisation"]
    assert stats["feature_mean"] == pytest.approx([train_rows.mean()])
    assert stats["feature_std"] == pytest.approx([train_rows.std()])
    x, y = splits.test[0]
    end = int(splits.test.ends[0])
    assert x[0, -1].item() == pytest.approx((values[end] - train_rows.mean()) / train_rows.std(), rel=1e-5)
    assert splits.task.denormalise(y).item() == pytest.approx(values[end + 1], rel=1e-5)  # horizon 1
