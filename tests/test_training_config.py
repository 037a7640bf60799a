"""Training configs: defaults, checks, overrides, what the data fixes for each model, the shipped configs, and
one-line errors from the CLI."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dilated.models import DataShape, available_models, fitted_options, model_options
from dilated.training import train
from dilated.training._config import (
    TrainConfig,
    TrainingConfig,
    apply_overrides,
    as_config,
    data_override,
    demo_config,
    demo_config_path,
    load_config,
)
from dilated.training._datasets import build_splits
from dilated.training._kinds import DATA_KINDS, AddingData, TableData
from helpers import TEST_DAYS, TRAIN, write_fi2010

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def resolve_config(raw, source="config"):
    return TrainConfig.from_dict(raw, source)


def _raw(**sections):
    raw = {"model": "tcn", "data": {"kind": "adding", "seq_len": 50}}
    raw.update(sections)
    return raw


def test_defaults_are_filled_in_and_numbers_parsed():
    config = resolve_config(_raw(training={"lr": "1e-4", "max_epochs": 3, "betas": [0.8, 0.9]}))
    assert config.training.lr == 1e-4  # YAML reads 1e-4 as a string
    assert config.training.optimizer == "adam" and config.training.batch_size == 32
    assert config.training.betas == (0.8, 0.9) and config.training.evaluation_batch_size == 128
    assert config.data == AddingData(seq_len=50)
    assert config.to_dict()["data"] == {
        "kind": "adding",
        "seq_len": 50,
        "train_size": 50000,
        "val_size": 1000,
        "test_size": 1000,
        "halves": False,
        "seed": 0,
    }
    assert list(config.to_dict()["training"]) == [f.name for f in dataclasses.fields(TrainingConfig)]
    assert config.trainer.devices == 1 and config.trainer.strategy == "auto" and config.trainer.logger == "csv"
    assert resolve_config(config.to_dict()) == config  # what config.yaml holds reads back the same
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.training.lr = 1.0


def test_a_plain_mapping_and_the_typed_config_are_the_same_config():
    raw = _raw(training={"lr": 0.01})
    assert as_config(raw) == resolve_config(raw) and as_config(resolve_config(raw)) is not None


@pytest.mark.parametrize("logger", ["none", "tensorboard"])
def test_train_accepts_a_plain_mapping(tmp_path, logger):
    if logger == "tensorboard":
        pytest.importorskip("tensorboard", reason="trainer.logger: tensorboard needs `pip install tensorboard`")
    raw = {
        "model": "tcn",
        "options": {"num_channels": [4], "kernel_size": 2},
        "data": {"kind": "adding", "seq_len": 8, "train_size": 32, "val_size": 16, "test_size": 16},
        "training": {"batch_size": 16, "max_epochs": 1, "monitor": "val_mse"},
        "trainer": {"threads": 1, "progress_bar": False, "logger": logger},
    }
    result = train(raw, tmp_path / "run", echo=lambda _line: None)
    assert result.epochs == 1 and result.test["samples"] == 16
    assert result.run.config().model.options == {
        "num_channels": [4],
        "kernel_size": 2,
        "input_channels": 2,
        "output_size": 1,
        "last_step_only": True,
    }
    assert result.test["baseline"]["name"].endswith("the mean target of the training split")  # not a forecast
    events = list((tmp_path / "run").glob("logs/version_0/events.out.tfevents.*"))
    assert len(events) == (logger == "tensorboard")


@pytest.mark.parametrize(
    "raw,message",
    [
        (
            _raw(trainig={}),
            "unknown key 'trainig'; valid keys: model, options, data, training, trainer (did you mean 'training'?)",
        ),
        (_raw(training={"lrr": 0.1}), "training: unknown key 'lrr'; valid keys: optimizer, lr,"),
        (_raw(training={"epochs": 3}), "(did you mean 'max_epochs'?)"),
        (_raw(training={"monitor": "val_acc"}), "training.monitor: unknown metric 'val_acc'; valid metrics: val_loss"),
        (
            _raw(training={"monitor": "val_f1_macro"}),
            "training.monitor: val_f1_macro does not apply to a regression task; use one of val_loss, val_mse, val_mae",
        ),
        (_raw(training={"betas": [0.9, 1.5]}), "training.betas: expected two numbers in [0, 1), got [0.9, 1.5]"),
        (_raw(training={"lr": 0}), "training.lr must be > 0"),
        (_raw(data={"kind": "adding", "length": 5}), "data: unknown key 'length'; valid keys: kind, seq_len,"),
        (_raw(data={"kind": "lobsters"}), "data.kind: unknown kind 'lobsters'; valid kinds: lobster, fi2010, table"),
        (
            _raw(data={"kind": "adding", "seq_len": 5.5}),
            "data.seq_len: expected an integer, got 5.5 (sequence length T)",
        ),
        (_raw(options={"levels": 3}), "options: unknown key 'levels' for model 'tcn'; valid keys: input_channels"),
        (_raw(model="resnet"), "unknown model 'resnet'"),
        (_raw(training={"optimizer": "adagrad"}), "training.optimizer: 'adagrad' is not one of adam, adamw"),
        (_raw(training={"batch_size": "many"}), "training.batch_size: expected an integer, got 'many'"),
        (_raw(trainer={"gpus": 2}), "trainer: unknown key 'gpus'; valid keys: accelerator, devices"),
        ({"model": "tcn", "data": {"kind": "fi2010"}}, "data.root is required"),
        ({"input": [2, 100], "layers": []}, "layer-stack config for `dilated summary`"),
    ],
)
def test_config_errors_name_the_key_and_list_the_valid_ones(raw, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_config(raw)


def test_overrides_set_values_and_reject_unknown_paths():
    raw = apply_overrides(
        _raw(),
        [
            "training.lr=0.01",
            "data.seq_len=80",
            "options.kernel_size=3",
            "trainer.devices=2",
            "training.class_weights=balanced",
        ],
    )
    config = resolve_config(raw)
    assert (config.training.lr, config.data.seq_len, config.model.options) == (0.01, 80, {"kernel_size": 3})
    assert config.trainer.devices == 2 and config.training.class_weights == "balanced"
    with pytest.raises(
        ValueError,
        match="--override training.learning_rate=1: unknown key 'learning_rate' in "
        "'training'; valid keys: optimizer, lr",
    ):
        apply_overrides(_raw(), ["training.learning_rate=1"])
    with pytest.raises(
        ValueError,
        match="unknown section 'trainig'; valid: model, options, data, training, trainer "
        r"\(did you mean 'training'\?\)",
    ):
        apply_overrides(_raw(), ["trainig.lr=1"])
    switched = apply_overrides(
        {"model": "tcn", "data": {"kind": "adding"}}, ["data.kind=copy_memory", "data.mem_len=4"]
    )
    assert resolve_config(switched).data.mem_len == 4
    with pytest.raises(ValueError, match="expected SECTION.KEY=VALUE"):
        apply_overrides(_raw(), ["training.lr"])


def test_each_registry_entry_declares_what_the_data_fixes():
    lob, per_step = DataShape(40, 100, classes=3), DataShape(1, 1020, classes=10, per_step=True)
    assert fitted_options("translob", {}, lob) == {"num_features": 40, "window": 100, "num_classes": 3}
    assert fitted_options("tcn", {"kernel_size": 3}, DataShape(2, 600)) == {
        "input_channels": 2,
        "output_size": 1,
        "last_step_only": True,
        "kernel_size": 3,
    }
    assert fitted_options("tcn", {}, per_step) == {"input_channels": 1, "output_size": 10, "last_step_only": False}
    assert fitted_options("wavenet", {}, DataShape(1, 32)) == {"input_channels": 1, "output": "regression"}
    assert fitted_options("wavenet", {}, DataShape(1, 32, classes=4)) == {
        "input_channels": 1,
        "output": "categorical",
        "quantization_channels": 4,
    }
    assert fitted_options("deeplob", {"window": 50}, lob)["window"] == 50  # the config wins
    order_flow = DataShape(12, 100, classes=3, representation="order_flow")  # 12 channels: 3 levels to DeepLOB
    with pytest.raises(
        ValueError,
        match="^model deeplob reads the book levels in their raw layout; representation "
        "order_flow is not in it: use raw or stationary_levels$",
    ):
        fitted_options("deeplob", {}, order_flow)
    assert fitted_options("tcn", {}, order_flow)["input_channels"] == 12
    for name in available_models():  # every option a declaration sets exists
        assert set(fitted_options(name, {}, lob)) <= set(model_options(name)), name
    config = resolve_config({"model": "translob", "data": {"kind": "lobster"}}).fitted(lob)
    assert config.model.options == {"num_features": 40, "window": 100, "num_classes": 3}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_resolves(path):
    config = load_config(str(path))
    assert config.model.name in available_models() and config.data.kind in DATA_KINDS


def test_published_hyperparameters():
    translob = load_config(str(CONFIGS / "translob_fi2010_h50.yaml"))
    training = translob.training
    assert (
        translob.data.horizon,
        training.lr,
        training.betas,
        training.eps,
        training.batch_size,
        training.max_epochs,
    ) == (50, 1e-4, (0.9, 0.999), 1e-8, 32, 150)
    deeplob = load_config(str(CONFIGS / "deeplob_fi2010_h100.yaml")).training
    assert (deeplob.lr, deeplob.eps, deeplob.batch_size, deeplob.monitor) == (0.01, 1.0, 32, "val_accuracy")
    adding = load_config(str(CONFIGS / "tcn_adding.yaml"))
    assert adding.model.options["num_channels"] == [30] * 8 and adding.model.options["kernel_size"] == 7
    assert adding.data.seq_len == 600 and adding.training.lr == 4e-3
    copy = load_config(str(CONFIGS / "tcn_copy_memory.yaml"))
    assert copy.training.optimizer == "rmsprop" and copy.data.blank_len == 1000


def test_the_demo_config_is_one_packaged_file_and_the_help_states_its_epochs():
    assert (CONFIGS / "translob_lobster_demo.yaml").resolve() == demo_config_path().resolve()
    config = demo_config()
    assert config == resolve_config(yaml.safe_load(demo_config_path().read_text()))
    assert (config.model.name, config.data.kind, config.training.max_epochs) == ("translob", "lobster", 40)
    result = _cli("demo", "--help")
    assert result.returncode == 0 and "the demo config's 40" in " ".join(result.stdout.split())


def test_evaluation_data_override(tmp_path):
    base = resolve_config(_raw(data={"kind": "table", "path": "a.csv", "target": "y", "window": 10}))
    assert data_override(base.data, "b.csv") == TableData(path="b.csv", target="y", window=10)
    (tmp_path / "other.yaml").write_text("data: {horizon: 3}\n")
    assert data_override(base.data, str(tmp_path / "other.yaml")) == TableData(
        path="a.csv", target="y", window=10, horizon=3
    )
    lobster = resolve_config(_raw(model="tcn", data={"kind": "lobster", "horizon": 20}))
    with pytest.raises(ValueError, match="fits runs trained on table data"):
        data_override(lobster.data, "b.csv")


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "dilated.cli", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


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
    splits = build_splits(demo_config().data, progress=False)
    assert splits.info["sizes"] == {"train": 490, "val": 91, "test": 91}
    assert (splits.channels, splits.length, splits.task.class_names) == (40, 100, ("up", "stationary", "down"))
    assert sum(splits.info["class_counts"]["test"]) == 91 and splits.info["alpha"] > 0
    assert int(splits.train.ends[-1]) + 10 < int(splits.val.ends[0]) - 99  # no window or label crosses a boundary


def test_fi2010_data_section_holds_out_the_end_of_the_training_days(tmp_path):
    write_fi2010(tmp_path / "fi" / TRAIN, 150)
    for fold, events in TEST_DAYS.items():
        write_fi2010(tmp_path / "fi" / f"Test_Dst_NoAuction_ZScore_CF_{fold}.txt", events, fold)
    data = resolve_config(_raw(data={"kind": "fi2010", "root": str(tmp_path / "fi"), "horizon": 10, "window": 5}))
    splits = build_splits(data.data, progress=False)
    # training days: events 0-119 train, 120-149 validation (val_fraction 0.2); a window and its 10-event label
    # horizon stay inside one part
    assert splits.train.ends.tolist() == list(range(4, 110))
    assert splits.val.ends.tolist() == list(range(124, 140))
    assert len(splits.test) == sum(TEST_DAYS.values()) - 4  # days 8-10 joined, as DeepLOB
    assert splits.task.num_classes == 3 and splits.channels == 40


def test_table_data_is_z_scored_with_training_statistics_only(tmp_path):
    values = np.arange(100, dtype=float) ** 1.5
    pd.DataFrame({"y": values}).to_csv(tmp_path / "series.csv", index=False)
    data = resolve_config(
        _raw(
            data={
                "kind": "table",
                "path": str(tmp_path / "series.csv"),
                "target": "y",
                "window": 10,
                "fractions": [0.5, 0.25, 0.25],
            }
        )
    ).data
    splits = build_splits(data, progress=False)
    train_rows = values[: int(splits.train.ends[-1]) + 1]  # the rows the training windows cover
    stats = splits.info["normalisation"]
    assert stats["feature_mean"] == pytest.approx([train_rows.mean()])
    assert stats["feature_std"] == pytest.approx([train_rows.std()])
    x, y = splits.test[0]
    end = int(splits.test.ends[0])
    assert x[0, -1].item() == pytest.approx((values[end] - train_rows.mean()) / train_rows.std(), rel=1e-5)
    assert splits.task.denormalise(y).item() == pytest.approx(values[end + 1], rel=1e-5)  # horizon 1
