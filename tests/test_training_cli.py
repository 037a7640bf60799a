"""Training runs as a user runs them: `dilated train / evaluate / predict / report` in subprocesses, on the bundled
LOBSTER sample with a tiny TCN; resuming after SIGKILL and Ctrl-C (inside the LR warmup of the first 150 steps, 42 per
epoch) to the same weights; damaged and malicious checkpoints; DDP on CPU."""

import csv
import fcntl
import json
import math
import os
import pty
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from dilated.training._checkpoints import MANIFEST_FILE, WEIGHTS_FILE, find_checkpoints
from helpers import CLI_ENV, dilated_cli, plant_malicious_state

TINY = """\
model: tcn
options: {num_channels: [8, 8], kernel_size: 3, dropout: 0.2}
data: {kind: lobster, horizon: 10, window: 20}
training: {optimizer: adam, lr: 0.003, batch_size: 16, max_epochs: 12, scheduler: plateau, scheduler_patience: 0,
           warmup_steps: 150, class_weights: balanced, clip: 1.0, seed: 3}
trainer: {threads: 1}
"""
TRAIN_SAMPLES, VAL_SAMPLES, TEST_SAMPLES, BATCH = 670, 121, 121, 16


def start(*args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "dilated.cli", *args],
        cwd=cwd,
        env=CLI_ENV,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def epochs_done(run: Path) -> int:
    """The highest epoch with a complete end-of-epoch checkpoint."""
    done = [
        int(m.group(1))
        for p in run.glob(f"checkpoints/*/{MANIFEST_FILE}")
        if (m := re.fullmatch(r"epoch=(\d+)-step=\d+", p.parent.name))
    ]
    return max(done, default=0)


def wait_for_epoch(run: Path, epoch: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while epochs_done(run) < epoch:
        assert process.poll() is None, f"the run ended before epoch {epoch}: {process.communicate()}"
        assert time.monotonic() < deadline, f"no checkpoint of epoch {epoch} after {timeout} s"
        time.sleep(0.01)


def final_weights(run: Path) -> dict:
    return load_file(find_checkpoints(run / "checkpoints")[-1] / WEIGHTS_FILE)


def history(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as rows:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(rows)]


def assert_same_run(run: Path, reference: Path) -> None:
    assert find_checkpoints(run / "checkpoints")[-1].name == find_checkpoints(reference / "checkpoints")[-1].name
    expected, actual = final_weights(reference), final_weights(run)
    assert expected.keys() == actual.keys()
    for name in expected:  # bit for bit
        assert torch.equal(expected[name], actual[name]), name
    assert history(run) == history(reference)
    assert json.loads((run / "metrics.json").read_text())["status"] == "finished"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("training")
    (folder / "tiny.yaml").write_text(TINY)
    return folder


@pytest.fixture(scope="module")
def reference(workdir):
    """The tiny config trained without interruption (12 epochs)."""
    result = dilated_cli("train", "tiny.yaml", "--run-dir", "reference", "--no-progress", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir / "reference"


def test_check_prints_the_resolved_config_data_and_model_without_training(workdir):
    result = dilated_cli("train", "--check", "tiny.yaml", "--max-epochs", "7", cwd=workdir)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout.split("\ndata: ")[0])
    assert resolved["training"]["max_epochs"] == 7 and resolved["options"]["input_channels"] == 40
    assert "data: train 670, val 121, test 121 samples of 40 x 20" in result.stdout
    assert "Total params: 1,955" in result.stdout and "Receptive field: 13 input steps" in result.stdout
    assert not (workdir / "runs").exists(), "a check writes no run folder"
    typo = dilated_cli("train", "--check", "tiny.yaml", "--override", "trainig.lr=1", cwd=workdir)
    assert typo.returncode == 2 and typo.stderr.count("\n") == 1 and "trainig" in typo.stderr


def test_on_a_terminal_the_progress_bar_counts_epochs_from_one(workdir):
    """Lightning's bar says "Epoch 0" for the first epoch; every other place (history, checkpoints, messages)
    counts from 1, and so does the bar here. The command runs in a pseudo-terminal, where bars are drawn."""
    main, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # tqdm draws nothing at width 0
    process = subprocess.Popen(
        [sys.executable, "-m", "dilated.cli", "train", "tiny.yaml", "--run-dir", "tty", "--max-epochs", "2"],
        stdout=follower,
        stderr=follower,
        cwd=workdir,
        env=CLI_ENV,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        screen += chunk
    assert process.wait(timeout=300) == 0, screen.decode(errors="replace")[-2000:]
    text = screen.decode(errors="replace")
    assert "Epoch 1/2" in text and "Epoch 2/2" in text and "Epoch 0" not in text
    assert "\nepoch 1/2:" not in text  # the plain per-epoch lines are for logs only


def test_train_evaluate_predict_resume_report(workdir):
    run = workdir / "e2e"
    # progress bars asked for, but stdout and stderr are pipes: one plain line per epoch, no bar frames
    result = dilated_cli("train", "tiny.yaml", "--run-dir", "e2e", "--max-epochs", "2", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "test metrics (121 samples)" in result.stdout and "plots:" in result.stdout
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epoch_lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("train_loss" in line and "val_loss" in line and line.endswith(" s)") for line in epoch_lines)
    assert not any(code in result.stdout + result.stderr for code in ("\r", "\x1b[", "it/s]"))
    assert "baseline: always 'down', the most frequent class of the training split" in result.stdout
    for name in (
        "config.yaml",
        "metrics.csv",
        "metrics.json",
        "test_metrics.csv",
        "plots/curves.png",
        "plots/confusion_matrix.png",
        "plots/per_class.png",
        "logs/version_0/metrics.csv",
    ):
        assert (run / name).is_file(), name
    with open(run / "logs/version_0/metrics.csv") as handle:  # Lightning's CSVLogger: per-step and per-epoch rows
        logged = list(csv.DictReader(handle))
    assert {"train_loss", "train_loss_epoch", "val_f1_weighted", "val_mcc"} <= set(logged[0])
    assert [float(r["val_loss"]) for r in logged if r["val_loss"]] == [float(r["val_loss"]) for r in history(run)]
    steps = math.ceil(TRAIN_SAMPLES / BATCH)
    assert [(r["epoch"], r["step"]) for r in history(run)] == [("1", str(steps)), ("2", str(2 * steps))]
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    assert test["samples"] == TEST_SAMPLES and sum(map(sum, test["confusion_matrix"])) == TEST_SAMPLES
    assert metrics["data"]["sizes"] == {"train": TRAIN_SAMPLES, "val": VAL_SAMPLES, "test": TEST_SAMPLES}
    assert metrics["model"]["receptive_field"] == 13
    counts = metrics["data"]["class_counts"]["test"]  # the baseline always says "down" (most frequent in training)
    assert metrics["data"]["baseline"] == {"rule": "majority", "class_id": 2, "class": "down"}
    assert test["baseline"]["accuracy"] == pytest.approx(counts[2] / TEST_SAMPLES) and test["baseline"]["mcc"] == 0
    assert set(history(run)[0]) == {
        "epoch",
        "step",
        "lr",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "val_precision_macro",
        "val_recall_macro",
        "val_f1_macro",
        "val_precision_weighted",
        "val_recall_weighted",
        "val_f1_weighted",
        "val_mcc",
    }

    evaluated = dilated_cli("evaluate", "e2e", "-o", "eval.json", "--no-progress", cwd=workdir)
    assert evaluated.returncode == 0, evaluated.stderr
    again = json.loads((workdir / "eval.json").read_text())
    assert again["accuracy"] == test["accuracy"] and again["confusion_matrix"] == test["confusion_matrix"]
    assert again["baseline"] == test["baseline"] and again["f1_weighted"] == test["f1_weighted"]
    row = next(line for line in evaluated.stdout.splitlines() if line.split()[:1] == ["accuracy"])
    assert row.split() == ["accuracy", f"{test['accuracy']:.4f}", f"{test['baseline']['accuracy']:.4f}"]

    predicted = dilated_cli("predict", "e2e", "-o", "predictions.csv", "--no-progress", cwd=workdir)
    assert predicted.returncode == 0, predicted.stderr
    with open(workdir / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == TEST_SAMPLES and list(rows[0]) == [
        "sample",
        "target",
        "prediction",
        "p_up",
        "p_stationary",
        "p_down",
    ]
    assert sum(r["target"] == r["prediction"] for r in rows) == round(test["accuracy"] * TEST_SAMPLES)
    assert sum(float(rows[0][k]) for k in ("p_up", "p_stationary", "p_down")) == pytest.approx(1, abs=1e-5)

    resumed = dilated_cli(
        "train", "--resume", "e2e", "--override", "training.max_epochs=3", "--no-progress", cwd=workdir
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from e2e/checkpoints/epoch=0002-step=000084" in resumed.stdout
    assert [r["epoch"] for r in history(run)] == ["1", "2", "3"]

    report = dilated_cli("report", "e2e", cwd=workdir)
    assert report.returncode == 0, report.stderr
    for text in (
        "model        tcn, 1,955 parameters, receptive field 13",
        "samples      train 670, val 121, test 121",
        "status       finished: 3 epoch(s)",
        "best epoch",
        "test metrics (121 samples)",
        "confusion matrix",
        "plots/curves.png",
    ):
        assert text in report.stdout, text

    fresh = dilated_cli("train", "tiny.yaml", "--run-dir", "e2e", cwd=workdir)
    assert fresh.returncode == 2 and "holds checkpoints of an earlier run" in fresh.stderr


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_reaches_the_same_weights(workdir, reference):
    run = workdir / "killed"
    moments = random.Random(2024)
    command = ["train", "tiny.yaml", "--run-dir", "killed", "--no-progress"]
    for epoch in (2, 5, 8):  # three kills: once past these epochs, at a random moment
        process = start(*command, cwd=workdir)
        wait_for_epoch(run, epoch, process)
        time.sleep(moments.uniform(0, 0.25))
        process.kill()
        process.communicate()
        assert process.returncode == -signal.SIGKILL
        command = ["train", "--resume", "killed", "--no-progress"]
    result = dilated_cli(*command, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "resuming from killed/checkpoints/epoch=" in result.stdout
    assert_same_run(run, reference)


def test_ctrl_c_saves_a_checkpoint_and_resume_reaches_the_same_weights(workdir, reference):
    run = workdir / "interrupted"
    process = start("train", "tiny.yaml", "--run-dir", "interrupted", "--no-progress", cwd=workdir)
    wait_for_epoch(run, 3, process)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate()
    assert process.returncode == 130, stderr
    match = re.search(r"interrupted: checkpoint (\S+); continue with `dilated train --resume interrupted`", stderr)
    assert match, stderr
    assert (workdir / match.group(1) / MANIFEST_FILE).is_file()
    result = dilated_cli("train", "--resume", "interrupted", "--no-progress", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert f"resuming from {match.group(1)}" in result.stdout
    assert_same_run(run, reference)


def test_a_truncated_latest_checkpoint_is_skipped_and_training_redone_identically(workdir, reference):
    run = workdir / "truncated"
    shutil.copytree(reference, run)
    latest = find_checkpoints(run / "checkpoints")[-1]
    assert latest.name == "epoch=0012-step=000504"
    weights = latest / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    result = dilated_cli(
        "train", "--resume", "truncated", "--override", "training.max_epochs=13", "--no-progress", cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"warning: skipping damaged checkpoint epoch=0012-step=000504: .*1000 bytes, the manifest "
        r"says \d+ \(truncated",
        result.stdout,
    )
    assert "resuming from truncated/checkpoints/epoch=0011-step=000462" in result.stdout
    assert (run / "checkpoints" / "epoch=0012-step=000504.corrupt").is_dir()
    redone = load_file(run / "checkpoints/epoch=0012-step=000504" / WEIGHTS_FILE)
    original = load_file(reference / "checkpoints/epoch=0012-step=000504" / WEIGHTS_FILE)
    assert all(torch.equal(redone[k], original[k]) for k in original)
    assert [r["epoch"] for r in history(run)][-2:] == ["12", "13"]


def test_a_best_checkpoint_that_cannot_load_is_an_error_naming_it(workdir, reference):
    run = workdir / "broken_best"
    shutil.copytree(reference, run)
    best = json.loads((run / "metrics.json").read_text())["best"]["checkpoint"]
    assert best != find_checkpoints(run / "checkpoints")[-1].name  # an older epoch: a fallback would go unseen
    weights = run / "checkpoints" / best / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    result = dilated_cli("evaluate", "broken_best", "--no-progress", cwd=workdir)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"the best checkpoint broken_best/checkpoints/{best} cannot be loaded: " in result.stderr
    last = dilated_cli("evaluate", "broken_best", "--checkpoint", "last", "--no-progress", cwd=workdir)
    assert last.returncode == 0 and "checkpoints/epoch=0012-step=000504 (121 samples)" in last.stdout


def test_a_malicious_training_state_is_refused_on_resume(workdir, reference):
    run = workdir / "malicious"
    shutil.copytree(reference, run)
    marker = workdir / "pwned"
    plant_malicious_state(find_checkpoints(run / "checkpoints")[-1], marker)
    result = dilated_cli(
        "train", "--resume", "malicious", "--override", "training.max_epochs=13", "--no-progress", cwd=workdir
    )
    assert result.returncode == 2
    assert re.search(r"dilated: error: .*state\.pt: refused: it holds objects other than tensors", result.stderr)
    assert "Traceback" not in result.stderr
    assert not marker.exists()


@pytest.mark.slow
def test_ddp_with_two_processes_on_cpu(workdir):
    result = dilated_cli(
        "train",
        "tiny.yaml",
        "--run-dir",
        "ddp",
        "--devices",
        "2",
        "--accelerator",
        "cpu",
        "--strategy",
        "ddp",
        "--max-epochs",
        "2",
        "--no-progress",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    run = workdir / "ddp"
    steps = math.ceil(math.ceil(TRAIN_SAMPLES / 2) / BATCH)  # each process takes half the (padded) data
    assert [int(r["step"]) for r in history(run)] == [steps, 2 * steps]
    metrics = json.loads((run / "metrics.json").read_text())
    for row in metrics["history"]:  # validation metrics gathered over both processes' shards
        assert row["val_accuracy"] * VAL_SAMPLES == pytest.approx(round(row["val_accuracy"] * VAL_SAMPLES), abs=1e-3)
    assert metrics["test"]["samples"] == TEST_SAMPLES and metrics["status"] == "finished"
    assert "devices: 2" in (run / "config.yaml").read_text() and "strategy: ddp" in (run / "config.yaml").read_text()


def test_wavenet_forecasts_sunspots_from_a_csv(tmp_path):
    sunspots = pytest.importorskip("statsmodels.api").datasets.sunspots.load_pandas().data
    sunspots.to_csv(tmp_path / "sunspots.csv", index=False)
    config = Path(__file__).resolve().parents[1] / "configs" / "wavenet_series.yaml"
    result = dilated_cli(
        "train",
        str(config),
        "--run-dir",
        "sun",
        "--no-progress",
        "--max-epochs",
        "4",
        "--override",
        "data.path=sunspots.csv",
        "--override",
        "data.target=SUNACTIVITY",
        "--override",
        "data.fractions=[0.6, 0.2, 0.2]",
        "--override",
        "trainer.threads=1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "sun" / "metrics.json").read_text())
    assert metrics["data"]["sizes"] == {"train": 153, "val": 30, "test": 30}
    spread = sunspots["SUNACTIVITY"].iloc[-62:].std()
    assert 0 < metrics["test"]["mae"] < 2 * spread  # in the data's units (sunspot counts), not z-scores
    assert (tmp_path / "sun" / "plots" / "predictions.png").is_file()
    predicted = dilated_cli("predict", "sun", "-o", "forecast.csv", "--no-progress", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    with open(tmp_path / "forecast.csv") as handle:
        rows = list(csv.DictReader(handle))
    first = rows[0]  # the window ending at row `sample` predicts the next row
    assert len(rows) == 30 and float(first["target"]) == sunspots["SUNACTIVITY"].iloc[int(first["sample"]) + 1]


def test_demo_never_replaces_a_folder_it_did_not_make(tmp_path):
    other_run = tmp_path / "my_run"
    (other_run / "checkpoints").mkdir(parents=True)
    (other_run / "config.yaml").write_text("model: tcn\n")
    result = dilated_cli("demo", "--run-dir", str(other_run), "--epochs", "1", cwd=tmp_path)
    assert result.returncode == 2 and "not a demo run folder (nothing was changed in it)" in result.stderr
    assert sorted(p.name for p in other_run.iterdir()) == ["checkpoints", "config.yaml"]
    demo_dir = tmp_path / "demo"
    assert dilated_cli("demo", "--run-dir", str(demo_dir), "--epochs", "1", cwd=tmp_path).returncode == 0
    again = dilated_cli("demo", "--run-dir", str(demo_dir), "--epochs", "1", cwd=tmp_path)
    assert again.returncode == 0 and "replacing the previous demo run" in again.stdout + again.stderr
