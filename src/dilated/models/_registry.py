"""The model registry (re-exported by :mod:`dilated.models`): every model is registered by name with its config dataclass and an example input shape.

    >>> from dilated.models import available_models, build_model, example_input_shape
    >>> available_models()
    ['deeplob', 'dilated_stack', 'tcn', 'translob', 'wavenet']
    >>> model = build_model("tcn", num_channels=(32, 32, 32), kernel_size=3)
    >>> example_input_shape("translob")
    (40, 100)

Options are the fields of the model's config dataclass; an unknown name or option raises ``ValueError`` listing the
valid ones. Inputs are ``(batch, channels, time)`` for every model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model."""

    name: str
    model_cls: type[nn.Module]
    config_cls: type
    example_input_shape: Callable[[nn.Module], Shape]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, config_cls: type, example_input_shape: Shape | Callable[[Any], Shape]):
    """Class decorator registering a model built as ``model_cls(config_cls(**options))``.

    ``example_input_shape`` is the input shape without the batch axis, or a function of the built model returning
    it (e.g. long enough to cover the model's receptive field).
    """
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"register_model({name!r}): config_cls must be a dataclass, got {config_cls!r}")
    shape_fn = example_input_shape if callable(example_input_shape) else (lambda _model: tuple(example_input_shape))

    def decorator(model_cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name].model_cls is not model_cls:
            raise ValueError(f"a model named {name!r} is already registered ({_REGISTRY[name].model_cls.__name__})")
        _REGISTRY[name] = ModelEntry(name, model_cls, config_cls, shape_fn)
        return model_cls

    return decorator


def available_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(available_models())}")
    return _REGISTRY[name]


def model_options(name: str) -> dict[str, Any]:
    """The options of a model and their defaults (the fields of its config dataclass)."""
    entry = _entry(name)
    return {f.name: getattr(entry.config_cls(), f.name) for f in dataclasses.fields(entry.config_cls)}


def model_config(name: str, **options: Any) -> Any:
    """The config dataclass of ``name`` built from ``options`` (``ValueError`` on an unknown option)."""
    entry = _entry(name)
    valid = [f.name for f in dataclasses.fields(entry.config_cls)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for model {name!r}; "
                         f"valid options: {', '.join(valid)}")
    return entry.config_cls(**options)


def build_model(name: str, **options: Any) -> nn.Module:
    """Build a registered model, e.g. ``build_model("wavenet", stacks=2)``."""
    return _entry(name).model_cls(model_config(name, **options))


def example_input_shape(name: str, **options: Any) -> Shape:
    """An input shape (without the batch axis) the model accepts, e.g. ``(40, 100)`` for TransLOB."""
    return tuple(_entry(name).example_input_shape(build_model(name, **options)))


def covering_input_shape(model: nn.Module) -> Shape:
    """``(config.input_channels, length)`` with the smallest power-of-two length covering the receptive field."""
    return model.config.input_channels, 1 << (model.receptive_field - 1).bit_length()
