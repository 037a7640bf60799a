"""Training configs: which model, on which data, trained how, on which hardware.

A config is a YAML mapping with five sections (everything but ``model`` and ``data.kind`` has a default)::

    model: translob            # a registered model (see `dilated models`)
    options: {}                # its options; channels, window and class count are filled in from the data
    data:
      kind: lobster            # lobster | fi2010 | table | book | adding | copy_memory, then that kind's options
      horizon: 10
      window: 100
    training:
      optimizer: adam
      lr: 1.0e-4
      batch_size: 32
      max_epochs: 150
    trainer:                   # passed to lightning.Trainer
      devices: 1

:func:`load_config` reads a file, applies ``section.key=value`` overrides and returns the *resolved* config: every
default written out, so that ``config.yaml`` in a run folder says exactly what ran. Unknown keys raise
``ValueError`` naming the key and listing the valid ones. :data:`FIELDS` is the schema (``dilated train --help``
prints it).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from dilated.targets import read_yaml


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Field:
    """One config key: default, accepted kinds of value, allowed values, and a line of help."""

    default: Any
    kind: str  # int, float, bool, str, list, number, devices, class_weights
    help: str
    choices: tuple[Any, ...] | None = None
    nullable: bool = False


_FRACTIONS = Field([0.7, 0.15, 0.15], "list", "train/validation/test shares of the series, in time order")

DATA_FIELDS: dict[str, dict[str, Field]] = {
    "lobster": {
        "message": Field(None, "str", "LOBSTER message file (default: the bundled AAPL sample)", nullable=True),
        "orderbook": Field(None, "str", "LOBSTER orderbook file (default: the bundled AAPL sample)", nullable=True),
        "levels": Field(10, "int", "book levels used as features (4 per level)"),
        "horizon": Field(10, "int", "label horizon k in events (mean of the next k mid-prices)"),
        "window": Field(100, "int", "events per input window"),
        "alpha": Field(None, "float", "label threshold; null: balanced (a third stationary) from training data",
                       nullable=True),
        "fractions": _FRACTIONS,
    },
    "fi2010": {
        "root": Field(REQUIRED, "str", "folder the FI-2010 zip was extracted to"),
        "horizon": Field(100, "int", "label horizon in events", choices=(10, 20, 30, 50, 100)),
        "window": Field(100, "int", "events per input window"),
        "normalisation": Field("ZScore", "str", "FI-2010 file variant", choices=("ZScore", "MinMax", "DecPre")),
        "auction": Field(False, "bool", "use the files with auction periods"),
        "val_fraction": Field(0.2, "float", "last share of the training days held out for validation (DeepLOB)"),
        "cache_dir": Field(None, "str", "where parsed files are cached (default: next to the files)", nullable=True),
    },
    "table": {
        "path": Field(REQUIRED, "str", "a .csv or .parquet file, one row per time step"),
        "target": Field(REQUIRED, "str", "the column to predict"),
        "features": Field(None, "list", "input columns (default: the target column only)", nullable=True),
        "window": Field(100, "int", "rows per input window"),
        "horizon": Field(1, "int", "the target is read this many rows after the window's last row"),
        "task": Field("regression", "str", "what the target is", choices=("regression", "classification")),
        "normalise": Field(True, "bool", "z-score features (and a regression target) with training statistics"),
        "fractions": _FRACTIONS,
    },
    "adding": {
        "seq_len": Field(600, "int", "sequence length T"),
        "train_size": Field(50000, "int", "training sequences"),
        "val_size": Field(1000, "int", "validation sequences"),
        "test_size": Field(1000, "int", "test sequences"),
        "halves": Field(False, "bool", "one marker in each half (the older RNN-paper variant)"),
        "seed": Field(0, "int", "data seed (validation and test use seed + 1 and seed + 2)"),
    },
    "copy_memory": {
        "blank_len": Field(1000, "int", "blank steps T between the digits and the recall"),
        "mem_len": Field(10, "int", "digits to remember"),
        "train_size": Field(10000, "int", "training sequences"),
        "val_size": Field(1000, "int", "validation sequences"),
        "test_size": Field(1000, "int", "test sequences"),
        "seed": Field(0, "int", "data seed (validation and test use seed + 1 and seed + 2)"),
    },
}

# --- data kind `book`: a Parquet book written by `dilated data convert` (dilated.data.lob_labels.book_splits) ---
DATA_FIELDS["book"] = {
    "path": Field(REQUIRED, "str", "a Parquet book (dilated data convert)"),
    "levels": Field(10, "int", "book levels used as features (4 per level)"),
    "window": Field(100, "int", "events per input window"),
    "horizon": Field(10, "int", "label horizon k in events"),
    "threshold": Field(None, "float", "label threshold on the smoothed change; null: a third of the training "
                       "labels stationary", nullable=True),
    "smoothing": Field("future", "str", "label rule: mean of the next k mids vs the current (future) or vs the "
                       "mean of the past k (past)", choices=("future", "past")),
    "fractions": _FRACTIONS,
    "stride": Field(1, "int", "serve window ends at multiples of this many events only"),
    "start": Field(None, "str", "first event time kept (ISO, UTC), e.g. the session open", nullable=True),
    "end": Field(None, "str", "events before this time are kept (ISO, UTC)", nullable=True),
}

TRAINING_FIELDS: dict[str, Field] = {
    "optimizer": Field("adam", "str", "optimizer", choices=("adam", "adamw", "rmsprop", "sgd")),
    "lr": Field(1e-3, "float", "learning rate"),
    "betas": Field([0.9, 0.999], "list", "Adam/AdamW beta1, beta2"),
    "eps": Field(1e-8, "float", "Adam/AdamW/RMSprop epsilon (DeepLOB uses 1)"),
    "weight_decay": Field(0.0, "float", "weight decay (decoupled for adamw)"),
    "momentum": Field(0.0, "float", "momentum (sgd, rmsprop)"),
    "batch_size": Field(32, "int", "training batch size (per device)"),
    "eval_batch_size": Field(None, "int", "evaluation batch size (default: 4 x batch_size)", nullable=True),
    "max_epochs": Field(10, "int", "upper limit of epochs"),
    "patience": Field(None, "int", "early stopping: epochs without improvement of `monitor` (null: off)",
                      nullable=True),
    "monitor": Field("val_loss", "str", "validation metric for early stopping, best checkpoint and plateau LR",
                     choices=("val_loss", "val_accuracy", "val_f1", "val_precision", "val_recall", "val_mse",
                              "val_mae")),
    "scheduler": Field("none", "str", "learning-rate schedule, stepped once per epoch",
                       choices=("none", "plateau", "cosine")),
    "scheduler_patience": Field(5, "int", "plateau: epochs without improvement before the LR is cut"),
    "scheduler_factor": Field(0.5, "float", "plateau: LR multiplier"),
    "min_lr": Field(0.0, "float", "plateau/cosine: lowest LR"),
    "clip": Field(None, "float", "gradient-norm clipping (null or <= 0: off)", nullable=True),
    "class_weights": Field(None, "class_weights", "null, 'balanced' (from training labels) or one weight per class",
                           nullable=True),
    "regularization": Field(True, "bool", "add the model's regularization_loss() (TransLOB's L2) when it has one"),
    "seed": Field(0, "int", "seed for weights, dropout and data order"),
    "precision": Field("auto", "str", "auto (bf16-mixed or 16-mixed on a GPU, 32 on CPU), 32, 16-mixed, bf16-mixed",
                       choices=("auto", "32", "32-true", "16-mixed", "bf16-mixed", "64", "64-true")),
    "num_workers": Field(0, "int", "DataLoader worker processes"),
    "keep_checkpoints": Field(3, "int", "end-of-epoch checkpoints kept (plus the best one)"),
}

TRAINER_FIELDS: dict[str, Field] = {
    "accelerator": Field("auto", "str", "cpu, gpu, cuda, mps, tpu or auto"),
    "devices": Field(1, "devices", "devices per node: a number, a list of ids, or auto"),
    "num_nodes": Field(1, "int", "machines (each runs `dilated train` with the same --run-dir)"),
    "strategy": Field("auto", "str", "auto, ddp, ddp_spawn, fsdp, ... (lightning strategies)"),
    "deterministic": Field(None, "bool", "deterministic algorithms (null: on CPU only)", nullable=True),
    "limit_train_batches": Field(None, "number", "batches per training epoch (int) or share (float)",
                                 nullable=True),
    "limit_val_batches": Field(None, "number", "batches per validation (int) or share (float)", nullable=True),
    "accumulate_grad_batches": Field(1, "int", "batches per optimizer step"),
    "log_every_n_steps": Field(50, "int", "progress-bar/metric refresh interval in steps"),
    "progress_bar": Field(True, "bool", "show progress bars"),
    "threads": Field(None, "int", "torch CPU threads per process (null: torch's default); small models on shared "
                     "CPUs often run fastest with 1", nullable=True),
}

SECTIONS = ("model", "options", "data", "training", "trainer")

DEMO_CONFIG: dict[str, Any] = {  # `dilated demo`; the same as configs/translob_lobster_demo.yaml
    "model": "translob",
    "options": {},
    "data": {"kind": "lobster", "horizon": 10, "window": 100, "alpha": None, "fractions": [0.6, 0.2, 0.2]},
    "training": {"optimizer": "adam", "lr": 1.0e-4, "betas": [0.9, 0.999], "eps": 1.0e-8, "batch_size": 32,
                 "max_epochs": 40, "patience": 10, "monitor": "val_loss", "class_weights": "balanced", "seed": 0},
    "trainer": {"devices": 1, "threads": 1, "log_every_n_steps": 5},
}


def data_fields(kind: Any) -> dict[str, Field]:
    if kind not in DATA_FIELDS:
        raise ValueError(f"data.kind: unknown kind {kind!r}; valid kinds: {', '.join(DATA_FIELDS)}")
    return DATA_FIELDS[kind]


def _coerce(where: str, value: Any, field: Field) -> Any:
    """``value`` checked against ``field`` (YAML reads ``1e-4`` as a string: numbers are parsed here)."""
    if value is None:
        if field.nullable:
            return None
        raise ValueError(f"{where}: a value is required ({field.help})")
    kind = field.kind
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise TypeError
            number = float(value) if isinstance(value, str) else value
            if not float(number).is_integer():
                raise TypeError
            value = int(number)
        elif kind == "float":
            if isinstance(value, bool):
                raise TypeError
            value = float(value)
        elif kind == "number":
            if isinstance(value, bool):
                raise TypeError
            if isinstance(value, str):  # "10" -> 10 batches, "0.5" -> half of them
                value = float(value) if any(c in value for c in ".eE") else int(value)
            elif not isinstance(value, (int, float)):
                raise TypeError
        elif kind == "bool":
            if not isinstance(value, bool):
                raise TypeError
        elif kind == "str":
            if isinstance(value, (dict, list, bool)) or value is None:
                raise TypeError
            value = str(value)
        elif kind == "list":
            if not isinstance(value, (list, tuple)):
                raise TypeError
            value = list(value)
        elif kind == "devices":
            if isinstance(value, bool) or not isinstance(value, (int, str, list)):
                raise TypeError
        elif kind == "class_weights" and value != "balanced" and not (isinstance(value, list) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected {_describe(field)}, got {value!r} ({field.help})") from None
    if field.choices is not None and value not in field.choices:
        raise ValueError(f"{where}: {value!r} is not one of {', '.join(map(str, field.choices))}")
    return value


def _describe(field: Field) -> str:
    return {"int": "an integer", "float": "a number", "number": "a number", "bool": "true or false",
            "str": "a string", "list": "a list", "devices": "a number, a list of device ids or 'auto'",
            "class_weights": "'balanced' or a list of numbers"}[field.kind] + (" or null" if field.nullable else "")


def _resolve_section(where: str, values: Any, fields: Mapping[str, Field], skip: Iterable[str] = ()) -> dict:
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: expected a mapping of keys, got {values!r}")
    unknown = [k for k in values if k not in fields and k not in skip]
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join([*skip, *fields])}")
    resolved = {}
    for key, field in fields.items():
        if key in values:
            resolved[key] = _coerce(f"{where}.{key}", values[key], field)
        elif field.default is REQUIRED:
            raise ValueError(f"{where}.{key} is required ({field.help})")
        else:
            resolved[key] = copy.deepcopy(field.default)
    return resolved


def resolve_config(raw: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Check a config and fill in every default; ``ValueError`` naming the first problem."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{source}: expected a mapping with {', '.join(SECTIONS)}")
    if "layers" in raw and "data" not in raw:
        raise ValueError(f"{source}: this is a layer-stack config for `dilated summary`; a training config has "
                         f"{', '.join(SECTIONS)} (see `dilated train --help`)")
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise ValueError(f"{source}: unknown key {unknown[0]!r}; valid keys: {', '.join(SECTIONS)}")
    from dilated.models import available_models, model_options

    name = raw.get("model")
    if not isinstance(name, str):
        raise ValueError(f"{source}: 'model' must name a registered model: {', '.join(available_models())}")
    valid_options = model_options(name)  # ValueError listing the models for an unknown name
    options = raw.get("options") or {}
    if not isinstance(options, Mapping):
        raise ValueError(f"{source}: options: expected a mapping of model options, got {options!r}")
    unknown = [k for k in options if k not in valid_options]
    if unknown:
        raise ValueError(f"{source}: options: unknown key {unknown[0]!r} for model {name!r}; valid keys: "
                         f"{', '.join(valid_options)}")
    data = raw.get("data")
    if not isinstance(data, Mapping) or "kind" not in data:
        raise ValueError(f"{source}: 'data' needs a 'kind': {', '.join(DATA_FIELDS)}")
    kind = data["kind"]
    resolved_data = {"kind": kind, **_resolve_section(f"{source}: data", data, data_fields(kind), skip=("kind",))}
    training = _resolve_section(f"{source}: training", raw.get("training"), TRAINING_FIELDS)
    _check_training(f"{source}: training", training)
    trainer = _resolve_section(f"{source}: trainer", raw.get("trainer"), TRAINER_FIELDS)
    return {"model": name, "options": dict(options), "data": resolved_data, "training": training,
            "trainer": trainer}


def _check_training(where: str, training: dict[str, Any]) -> None:
    for key in ("lr", "batch_size", "max_epochs"):
        if training[key] <= 0:
            raise ValueError(f"{where}.{key} must be > 0; got {training[key]}")
    betas = training["betas"]
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
        raise ValueError(f"{where}.betas: expected two numbers in [0, 1), got {betas!r}")
    training["betas"] = [float(b) for b in betas]


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"training.lr=1e-3"`` -> ``(["training", "lr"], 0.001)``; the value is parsed as YAML."""
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise ValueError(f"--override {text!r}: expected SECTION.KEY=VALUE, e.g. training.lr=0.001")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return [p for p in path.strip().split(".")], parsed


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of ``raw`` with ``section.key=value`` overrides set; unknown paths raise ``ValueError``."""
    from dilated.models import model_options

    result = copy.deepcopy(dict(raw))
    for text in overrides:
        keys, value = parse_override(text)
        where = f"--override {text}"
        section = keys[0]
        if section not in SECTIONS:
            raise ValueError(f"{where}: unknown section {section!r}; valid: {', '.join(SECTIONS)}")
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
        if section == "options":
            valid = list(model_options(str(result.get("model"))))
        elif section == "data":
            valid = ["kind", *data_fields(value if key == "kind" else target.get("kind"))]
        else:
            valid = list(TRAINING_FIELDS if section == "training" else TRAINER_FIELDS)
        if key not in valid:
            raise ValueError(f"{where}: unknown key {key!r} in {section!r}; valid keys: {', '.join(valid)}")
        target[key] = value
    return result


def infer_model_options(name: str, options: Mapping[str, Any], channels: int, length: int, task: Any) -> dict:
    """``options`` plus what the data fixes and the config left out: input channels, window and classes.

    By option name (the fields of the model's config dataclass): ``input_channels`` / ``num_features`` = the
    data's channels; ``window`` = its length; ``num_classes`` = its classes. TCN's head (``output_size``,
    ``last_step_only``) and WaveNet's ``output`` / ``quantization_channels`` follow the task.
    """
    from dilated.models import model_options

    valid = model_options(name)
    inferred: dict[str, Any] = {}
    for key in ("input_channels", "num_features"):
        if key in valid:
            inferred[key] = channels
    if "window" in valid:
        inferred["window"] = length
    classes = task.num_classes if task.is_classification else 1
    if "num_classes" in valid and task.is_classification:
        inferred["num_classes"] = classes
    if "output_size" in valid and "last_step_only" in valid:  # TCN's optional linear head
        inferred["output_size"] = classes
        inferred["last_step_only"] = not task.per_step
    if "output" in valid and "quantization_channels" in valid:  # WaveNet's head
        inferred["output"] = "categorical" if task.is_classification else "regression"
        if task.is_classification:
            inferred["quantization_channels"] = classes
    return {**inferred, **options}


def load_config(path: str, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read a training config, apply overrides and resolve it (see the module docstring)."""
    raw = read_yaml(path)
    return resolve_config(apply_overrides(raw, overrides), str(path))


def data_override(base: Mapping[str, Any], spec: str) -> dict[str, Any]:
    """The ``data:`` section to evaluate a trained run on other data (``dilated evaluate --data SPEC``).

    ``SPEC`` is a YAML file (a config with a ``data:`` section, or just that mapping; keys it leaves out keep the
    run's values when the kind is the same) or, for a run trained on ``table`` data, a .csv/.parquet file with
    the same columns.
    """
    lowered = spec.lower()
    if lowered.endswith((".yaml", ".yml")):
        raw = read_yaml(spec)
        data = raw.get("data", raw)
        if not isinstance(data, Mapping):
            raise ValueError(f"{spec}: expected a 'data:' mapping")
        merged = {**base, **data} if data.get("kind", base["kind"]) == base["kind"] else dict(data)
        merged.setdefault("kind", base["kind"])
        return {"kind": merged["kind"], **_resolve_section(f"{spec}: data", merged, data_fields(merged["kind"]),
                                                            skip=("kind",))}
    if lowered.endswith((".csv", ".parquet", ".pq")):
        if base["kind"] != "table":
            raise ValueError(f"--data {spec}: a table file fits runs trained on table data; this run used "
                             f"{base['kind']!r}: give a YAML file with a 'data:' section")
        return {**base, "path": spec}
    raise ValueError(f"--data {spec}: expected a .yaml file with a 'data:' section, or a .csv/.parquet table")


def config_help() -> str:
    """The schema as text, for ``dilated train --help``."""
    lines = ["Config sections and keys (default, then meaning):",
             "  model: NAME            a registered model (dilated models)",
             "  options: {...}         model options; channels, window and classes come from the data"]

    def section(title: str, fields: Mapping[str, Field]) -> None:
        lines.append(f"  {title}")
        for key, field in fields.items():
            default = "required" if field.default is REQUIRED else yaml.safe_dump(
                field.default, default_flow_style=True).strip().removesuffix("...").strip()
            lines.append(f"    {key}: {default}  -- {field.help}")

    for kind, fields in DATA_FIELDS.items():
        section(f"data (kind: {kind}):", fields)
    section("training:", TRAINING_FIELDS)
    section("trainer:", TRAINER_FIELDS)
    return "\n".join(lines)


def dump_config(config: Mapping[str, Any]) -> str:
    """YAML text of a resolved config, sections in their usual order."""
    return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=None)
