"""Two DDP processes (Lightning's ``ddp`` strategy on CPU, gloo) training from a partitioned book dataset: each rank
takes its own shard of the epoch's windows (:class:`~dilated.training._datamodule.ResumableSampler`)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dilated.data import dataset_splits
from helpers import CLI_ENV, book_dataset

SCRIPT = """
import json, sys
from types import SimpleNamespace
import lightning as L, torch
from torch.utils.data import Dataset
from dilated.data import dataset_splits
from dilated.training._datamodule import SplitsData

class Indexed(Dataset):
    def __init__(self, data):
        self.data = data
    def __len__(self):
        return len(self.data)
    def __getitem__(self, i):
        return (i, *self.data[i])

class Recorder(L.LightningModule):
    def __init__(self, inputs):
        super().__init__()
        self.linear, self.seen = torch.nn.Linear(inputs, 3), []
    def training_step(self, batch, _):
        index, x, y = batch
        self.seen += index.tolist()
        return torch.nn.functional.cross_entropy(self.linear(x.flatten(1)), y)
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)
    def on_train_epoch_end(self):
        with open(f"{sys.argv[2]}/seen-{self.global_rank}.json", "w") as out:
            json.dump(self.seen, out)

if __name__ == "__main__":
    torch.set_num_threads(1)
    splits = dataset_splits(sys.argv[1], levels=3, window=20, horizon=5, stride=4, fractions=(0.5, 0.25, 0.25))
    data = SplitsData(SimpleNamespace(train=Indexed(splits.train), val=splits.val), 16, 64, seed=0)
    trainer = L.Trainer(
        strategy="ddp", devices=2, accelerator="cpu", max_epochs=1, use_distributed_sampler=False,
        limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Recorder(3 * 4 * 20), datamodule=data)
"""


@pytest.mark.slow
def test_two_ddp_ranks_take_disjoint_shards_of_the_dataset_windows(tmp_path: Path) -> None:
    root = book_dataset(tmp_path / "books", "XYZ", 4, 1500, seed=2)  # training part: the first 2 days
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), str(root), str(tmp_path)],
        capture_output=True,
        text=True,
        env={**CLI_ENV, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = [json.loads((tmp_path / f"seen-{rank}.json").read_text()) for rank in (0, 1)]
    train = dataset_splits(root, levels=3, window=20, horizon=5, stride=4, fractions=(0.5, 0.25, 0.25)).train
    windows = len(train)
    assert len(train.datasets) == 2 and windows > 100  # windows of both days
    assert len(seen[0]) == len(seen[1]) == math.ceil(windows / 2)
    assert set(seen[0]) | set(seen[1]) == set(range(windows))
    assert len(set(seen[0]) & set(seen[1])) == windows % 2  # an odd epoch pads one window onto the second rank
