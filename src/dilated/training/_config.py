"""The typed training config: which model, on which data, trained how, on which hardware.

A config is a YAML mapping with five sections (everything but ``model`` and ``data.kind`` has a default)::

    model: translob            # a registered model (see `dilated models`)
    options: {}                # its options; what the data fixes (channels, window, classes) is filled in
    data:
      kind: lobster            # lobster | fi2010 | table | adding | copy_memory, then that kind's options
      horizon: 10
      window: 100
    training:
      optimizer: adam
      lr: 1.0e-4
      batch_size: 32
      max_epochs: 150
    trainer:                   # passed to lightning.Trainer
      devices: 1

In Python it is a :class:`TrainConfig` of frozen dataclasses: ``model`` (:class:`ModelSpec`: name and options),
``data`` (one :class:`~dilated.training.DataSource` subclass per kind, e.g. ``LobsterData``),
``training`` (:class:`TrainingConfig`) and ``trainer`` (:class:`TrainerConfig`)::

    config = load_config("configs/tcn_adding.yaml", ["training.lr=0.01"])   # file + --override values
    config = TrainConfig.from_dict(yaml_mapping)                             # or from a mapping
    config.training.lr, config.data.seq_len, config.to_dict()                # typed; back to the YAML layout

Unknown keys are refused with the valid ones and the nearest valid name; values are checked and coerced; every
default is written out by :meth:`TrainConfig.to_dict`, so that ``config.yaml`` in a run folder says exactly what
ran. What a data source fixes for a model is not guessed from option names: each model's registry entry declares it
(:class:`dilated.models.DataFit`) and :meth:`TrainConfig.fitted` applies it.

Why frozen dataclasses, not pydantic or LightningCLI/jsonargparse: the sections are small and flat, and the
project's one-line errors (``training.lr: expected a number, got 'abc' (learning rate)``) and ``--override a.b=c``
are part of the CLI's contract. Pydantic would need its error texts translated back and adds a dependency for ~100
lines of checks; LightningCLI/jsonargparse would replace the CLI and the config layout (``class_path`` /
``init_args``, its own subcommands) and the run folders written from it. Dataclasses keep the schema readable as
code (nanoGPT style), typed for the editor and type checker, and need nothing beyond the standard library. A data
kind is one class in :mod:`dilated.training._kinds`. Reading the schema imports no torch (``dilated train --help``
prints it): the model registry and YAML stacks are imported where a config is checked or read.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from dilated.training._kinds import DATA_KINDS, DataSource, TableData
from dilated.training._metric_table import canonical_monitor, metric, monitors
from dilated.training._packaged import demo_config_path
from dilated.training._schema import option, read_section, section_help, unknown_key, write_section

if TYPE_CHECKING:
    from dilated.models import DataShape

Precision = Literal["auto", "32", "32-true", "16-mixed", "bf16-mixed", "64", "64-true"]  # training.precision

SECTIONS = ("model", "options", "data", "training", "trainer")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model and its options (validated against the model's config dataclass)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingConfig:
    """The ``training:`` section: optimizer, schedule, batches, stopping, checkpoints."""

    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = option("adam", "optimizer")
    lr: float = option(1e-3, "learning rate")
    betas: tuple[float, float] = option((0.9, 0.999), "Adam/AdamW beta1, beta2")
    eps: float = option(1e-8, "Adam/AdamW/RMSprop epsilon (DeepLOB uses 1)")
    weight_decay: float = option(0.0, "weight decay (decoupled for adamw)")
    momentum: float = option(0.0, "momentum (sgd, rmsprop)")
    batch_size: int = option(32, "training batch size (per device)")
    eval_batch_size: int | None = option(None, "evaluation batch size (default: 4 x batch_size)")
    max_epochs: int = option(10, "upper limit of epochs")
    patience: int | None = option(None, "early stopping: epochs without improvement of `monitor` (null: off)")
    monitor: str = option(
        "val_loss", "validation metric for early stopping, best checkpoint and plateau LR: " + ", ".join(monitors())
    )
    scheduler: Literal["none", "plateau", "cosine"] = option("none", "learning-rate schedule, stepped once per epoch")
    scheduler_patience: int = option(5, "plateau: epochs without improvement before the LR is cut")
    scheduler_factor: float = option(0.5, "plateau: LR multiplier")
    min_lr: float = option(0.0, "plateau/cosine: lowest LR")
    warmup_steps: int = option(
        0,
        "linear LR warmup: optimizer step s (from 0) of the first N runs at (s + 1) / N of the scheduled LR "
        "(0: off); keeps Adam's first coherent steps from killing a wide ReLU layer (docs/results/lob_planted.md)",
    )
    clip: float | None = option(None, "gradient-norm clipping (null or <= 0: off)")
    class_weights: str | tuple[float, ...] | None = option(
        None, "null, 'balanced' (from training labels) or one weight per class", kind="class_weights"
    )
    regularization: bool = option(True, "add the model's regularization_loss() (TransLOB's L2) when it has one")
    zero_head: bool = option(
        False,
        "start the output layer (the model's last linear or conv module) at zero, so that the first steps learn from the data "
        "instead of silencing a random head (which kills TransLOB's ReLU head: docs/results/lob_planted.md)",
    )
    seed: int = option(0, "seed for weights, dropout and data order")
    precision: Precision = option("auto", "auto (bf16-mixed or 16-mixed on a GPU, 32 on CPU), 32, 16-mixed, bf16-mixed")
    num_workers: int = option(0, "DataLoader worker processes")
    keep_checkpoints: int = option(3, "end-of-epoch checkpoints kept (plus the best one)")

    def __post_init__(self) -> None:
        for key in ("lr", "batch_size", "max_epochs"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0; got {getattr(self, key)}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0; got {self.warmup_steps}")
        betas = self.betas
        if len(betas) != 2 or not all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas
        ):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {list(betas)!r}")
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        name = canonical_monitor(self.monitor)  # val_f1 (older run folders) -> val_f1_macro
        if name not in monitors():
            raise unknown_key("monitor", self.monitor, monitors(), noun="metric")
        object.__setattr__(self, "monitor", name)

    @property
    def evaluation_batch_size(self) -> int:
        """``eval_batch_size``, or 4 x ``batch_size`` when it is not set."""
        return self.eval_batch_size or 4 * self.batch_size


@dataclass(frozen=True)
class TrainerConfig:
    """The ``trainer:`` section: hardware and loop settings passed to ``lightning.Trainer``."""

    accelerator: str = option("auto", "cpu, gpu, cuda, mps, tpu or auto")
    devices: int | str | tuple[int, ...] = option(
        1, "devices per node: a number, a list of ids, or auto", kind="devices"
    )
    num_nodes: int = option(1, "machines (each runs `dilated train` with the same --run-dir)")
    strategy: str = option("auto", "auto, ddp, ddp_spawn, fsdp, ... (lightning strategies)")
    deterministic: bool | None = option(None, "deterministic algorithms (null: on CPU only)")
    limit_train_batches: int | float | None = option(None, "batches per training epoch (int) or share (float)")
    limit_val_batches: int | float | None = option(None, "batches per validation (int) or share (float)")
    accumulate_grad_batches: int = option(1, "batches per optimizer step")
    log_every_n_steps: int = option(50, "progress-bar/metric refresh interval in steps")
    progress_bar: bool = option(True, "show progress bars")
    threads: int | None = option(
        None,
        "torch CPU threads per process (null: torch's default); small models on shared CPUs often run fastest with 1",
    )
    logger: Literal["csv", "tensorboard", "none"] = option(
        "csv", "Lightning logger of per-step values, in RUN/logs/ (tensorboard needs `pip install tensorboard`)"
    )


@dataclass(frozen=True)
class TrainConfig:
    """A whole training config (see the module docstring)."""

    model: ModelSpec
    data: DataSource
    training: TrainingConfig = TrainingConfig()
    trainer: TrainerConfig = TrainerConfig()

    def __post_init__(self) -> None:
        kind = self.data.task_kind
        if not metric(self.training.monitor).applies_to(kind):
            raise ValueError(
                f"training.monitor: {self.training.monitor} does not apply to a {kind} task; use one "
                f"of {', '.join(monitors(kind))}"
            )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "config") -> TrainConfig:
        """Check a mapping (as read from YAML) and fill in every default; ``ValueError`` naming the first problem."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{source}: expected a mapping with {', '.join(SECTIONS)}")
        if "layers" in raw and "data" not in raw:
            raise ValueError(
                f"{source}: this is a layer-stack config for `dilated summary`; a training config "
                f"has {', '.join(SECTIONS)} (see `dilated train --help`)"
            )
        for key in raw:
            if key not in SECTIONS:
                raise unknown_key(source, key, SECTIONS)
        from dilated.models import available_models, model_options

        name = raw.get("model")
        if not isinstance(name, str):
            raise ValueError(f"{source}: 'model' must name a registered model: {', '.join(available_models())}")
        valid_options = model_options(name)  # ValueError listing the models for an unknown name
        options = raw.get("options") or {}
        if not isinstance(options, Mapping):
            raise ValueError(f"{source}: options: expected a mapping of model options, got {options!r}")
        for key in options:
            if key not in valid_options:
                raise unknown_key(f"{source}: options", key, valid_options, context=f" for model {name!r}")
        data = read_data(raw.get("data"), source)
        training = read_section(TrainingConfig, raw.get("training"), f"{source}: training")
        trainer = read_section(TrainerConfig, raw.get("trainer"), f"{source}: trainer")
        try:
            return cls(ModelSpec(name, dict(options)), data, training, trainer)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        """The config in its YAML layout (``model``, ``options``, ``data``, ``training``, ``trainer``)."""
        return {
            "model": self.model.name,
            "options": copy.deepcopy(self.model.options),
            "data": self.data.to_dict(),
            "training": write_section(self.training),
            "trainer": write_section(self.trainer),
        }

    def dump(self) -> str:
        """YAML text of the config, sections in their usual order."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def fitted(self, shape: DataShape) -> TrainConfig:
        """The config with the model options the data fixes filled in (the model's :class:`DataFit`); options the
        config gives win."""
        from dilated.models import fitted_options

        options = fitted_options(self.model.name, self.model.options, shape)
        return dataclasses.replace(self, model=ModelSpec(self.model.name, options))


def read_data(values: Any, source: str = "config") -> DataSource:
    """A ``data:`` section: its ``kind`` picks the class (:data:`~dilated.training.DATA_KINDS`)."""
    if not isinstance(values, Mapping) or "kind" not in values:
        raise ValueError(f"{source}: 'data' needs a 'kind': {', '.join(DATA_KINDS)}")
    kind = values["kind"]
    if kind not in DATA_KINDS:
        raise unknown_key("data.kind", kind, DATA_KINDS, noun="kind")
    return read_section(DATA_KINDS[kind], values, f"{source}: data", skip=("kind",))


def as_config(config: TrainConfig | Mapping[str, Any], source: str = "config") -> TrainConfig:
    """A :class:`TrainConfig` as it is, or one read from a mapping (e.g. ``yaml.safe_load`` of a config file)."""
    return config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config, source)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"training.lr=1e-3"`` -> ``(["training", "lr"], 0.001)``; the value is parsed as YAML."""
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise ValueError(f"--override {text!r}: expected SECTION.KEY=VALUE, e.g. training.lr=0.001")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return list(path.strip().split(".")), parsed


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of the mapping ``raw`` with ``section.key=value`` overrides set; unknown paths raise ``ValueError``."""
    result = copy.deepcopy(dict(raw))
    for text in overrides:
        keys, value = parse_override(text)
        where = f"--override {text}"
        section = keys[0]
        if section not in SECTIONS:
            raise unknown_key(where, section, SECTIONS, noun="section", valid_label="valid")
        if section == "model":
            if len(keys) != 1:
                raise ValueError(f"{where}: 'model' takes a name, e.g. model=tcn")
            result["model"] = value
            continue
        if len(keys) != 2:
            raise ValueError(f"{where}: expected SECTION.KEY=VALUE with one key, e.g. training.lr=0.001")
        key = keys[1]
        target = result.get(section)
        if not isinstance(target, dict):
            target = {} if target is None else dict(target)
            result[section] = target
        valid = _section_keys(section, result, value if key == "kind" else target.get("kind"))
        if key not in valid:
            raise unknown_key(where, key, valid, context=f" in {section!r}")
        target[key] = value
    return result


def _section_keys(section: str, raw: Mapping[str, Any], kind: Any) -> list[str]:
    if section == "options":
        from dilated.models import model_options

        return list(model_options(str(raw.get("model"))))
    if section == "data":
        if kind not in DATA_KINDS:
            raise unknown_key("data.kind", kind, DATA_KINDS, noun="kind")
        return ["kind", *(f.name for f in dataclasses.fields(DATA_KINDS[kind]))]
    return [f.name for f in dataclasses.fields(TrainingConfig if section == "training" else TrainerConfig)]


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> TrainConfig:
    """Read a training config file, apply ``--override`` values and check it (see the module docstring)."""
    from dilated._resolve import read_yaml

    return TrainConfig.from_dict(apply_overrides(read_yaml(path), overrides), str(path))


def demo_config() -> TrainConfig:
    """The config of ``dilated demo``."""
    return load_config(demo_config_path())


def data_override(base: DataSource, spec: str) -> DataSource:
    """The ``data:`` section to evaluate a trained run on other data (``dilated evaluate --data SPEC``).

    ``SPEC`` is a YAML file (a config with a ``data:`` section, or just that mapping; keys it leaves out keep the
    run's values when the kind is the same) or, for a run trained on ``table`` data, a .csv/.parquet file with
    the same columns.
    """
    from dilated._resolve import read_yaml

    lowered = spec.lower()
    if lowered.endswith((".yaml", ".yml")):
        raw = read_yaml(spec)
        data = raw.get("data", raw)
        if not isinstance(data, Mapping):
            raise ValueError(f"{spec}: expected a 'data:' mapping")
        merged = {**base.to_dict(), **data} if data.get("kind", base.kind) == base.kind else dict(data)
        merged.setdefault("kind", base.kind)
        return read_data(merged, spec)
    if lowered.endswith((".csv", ".parquet", ".pq")):
        if not isinstance(base, TableData):
            raise ValueError(
                f"--data {spec}: a table file fits runs trained on table data; this run used "
                f"{base.kind!r}: give a YAML file with a 'data:' section"
            )
        return dataclasses.replace(base, path=spec)
    raise ValueError(f"--data {spec}: expected a .yaml file with a 'data:' section, or a .csv/.parquet table")


def config_help() -> str:
    """The schema as text, for ``dilated train --help``."""
    lines = [
        "Config sections and keys (default, then meaning):",
        "  model: NAME            a registered model (dilated models)",
        "  options: {...}         model options; what the data fixes (channels, window, classes) is filled in",
    ]
    for kind, source in DATA_KINDS.items():
        lines.append(f"  data (kind: {kind}):")
        lines.extend(section_help(source))
    for title, section in (("training:", TrainingConfig), ("trainer:", TrainerConfig)):
        lines.append(f"  {title}")
        lines.extend(section_help(section))
    return "\n".join(lines)
