"""The model registry (re-exported by :mod:`dilated.models`): every model is registered by name with its config
dataclass and an example input shape.

    >>> from dilated.models import available_models, build_model, example_input_shape
    >>> available_models()
    ['deeplob', 'dilated_stack', 'mlplob', 'tcn', 'tlob', 'translob', 'wavenet']
    >>> model = build_model("tcn", num_channels=(32, 32, 32), kernel_size=3)
    >>> example_input_shape("translob")
    (40, 100)

Options are the fields of the model's config dataclass; an unknown name or option raises ``ValueError`` listing the
valid ones. Inputs are ``(batch, channels, time)`` for every model.

Each entry also declares what a data source fixes for the model (:class:`DataFit`): which option takes the input
channels, which the window length, which the number of classes, and how the output head follows the task. Training
(``dilated train``) reads that declaration through :func:`fitted_options`; a model registered without one gets
nothing filled in (its options must then match the data).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from torch import nn

Shape = tuple[int, ...]


class _ChannelsConfig(Protocol):
    @property
    def input_channels(self) -> int: ...


class CoverableModel(Protocol):
    """A model with a config naming its ``input_channels`` and a ``receptive_field`` in steps."""

    @property
    def config(self) -> _ChannelsConfig: ...

    @property
    def receptive_field(self) -> int: ...


@dataclass(frozen=True)
class DataShape:
    """What a data source gives a model: inputs ``(batch, channels, length)`` and what each sample asks for.

    Attributes:
        channels, length: the input's channels and time steps.
        classes: the number of classes of a classification task; None for regression (one value per target).
        per_step: one target per time step (else one per window).
        representation: a book's input representation (``raw``, ``stationary``, ...); None for other data.
    """

    channels: int
    length: int
    classes: int | None = None
    per_step: bool = False
    representation: str | None = None


@dataclass(frozen=True)
class DataFit:
    """Which options of a model a data source fixes.

    Attributes:
        channels: the option that takes the input channels (e.g. ``input_channels``), or None.
        length: the option that takes the window length, for models sized to it (e.g. a dense head), or None.
        classes: the option that takes the number of classes (classification only), or None.
        head: further options from the :class:`DataShape`, e.g. a TCN's linear head or WaveNet's output kind.
        representations: the book representations the model can read, for a front end built on the levels' raw
            layout (DeepLOB pairs price with size, then ask with bid); None: any.
    """

    channels: str | None = None
    length: str | None = None
    classes: str | None = None
    head: Callable[[DataShape], dict[str, Any]] | None = None
    representations: tuple[str, ...] | None = None

    def options(self, shape: DataShape) -> dict[str, Any]:
        """The options this data shape fixes."""
        fixed: dict[str, Any] = {}
        if self.channels:
            fixed[self.channels] = shape.channels
        if self.length:
            fixed[self.length] = shape.length
        if self.classes and shape.classes is not None:
            fixed[self.classes] = shape.classes
        if self.head is not None:
            fixed.update(self.head(shape))
        return fixed


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model."""

    name: str
    model_cls: type[nn.Module]
    config_cls: type
    example_input_shape: Callable[[nn.Module], Shape]
    fits: DataFit = DataFit()


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str, config_cls: type, example_input_shape: Shape | Callable[[Any], Shape], fits: DataFit | None = None
):
    """Class decorator registering a model built as ``model_cls(config_cls(**options))``.

    ``example_input_shape`` is the input shape without the batch axis, or a function of the built model returning
    it (e.g. long enough to cover the model's receptive field). ``fits`` declares the options a data source fixes
    (see :class:`DataFit`; each option it names must be a field of ``config_cls``).
    """
    fits = fits or DataFit()
    fields = {f.name for f in dataclasses.fields(config_cls)}
    named = [option for option in (fits.channels, fits.length, fits.classes) if option is not None]
    if any(option not in fields for option in named):
        raise TypeError(
            f"register_model({name!r}): DataFit names {named}, but {config_cls.__name__} has only {sorted(fields)}"
        )
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"register_model({name!r}): config_cls must be a dataclass, got {config_cls!r}")
    shape_fn = example_input_shape if callable(example_input_shape) else (lambda _model: tuple(example_input_shape))

    def decorator(model_cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name].model_cls is not model_cls:
            raise ValueError(f"a model named {name!r} is already registered ({_REGISTRY[name].model_cls.__name__})")
        _REGISTRY[name] = ModelEntry(name, model_cls, config_cls, shape_fn, fits)
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
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for model {name!r}; valid options: {', '.join(valid)}"
        )
    return entry.config_cls(**options)


def fitted_options(name: str, options: dict[str, Any], shape: DataShape) -> dict[str, Any]:
    """``options`` plus what ``shape`` fixes for model ``name`` (its :class:`DataFit`); given options win.
    A book representation the model cannot read is refused (the channel count alone may fit: 10 levels of
    ``order_flow`` are 12 channels, three levels to DeepLOB)."""
    fits = _entry(name).fits
    readable = fits.representations
    if readable is not None and shape.representation is not None and shape.representation not in readable:
        raise ValueError(
            f"model {name} reads the book levels in their raw layout; representation {shape.representation} is "
            f"not in it: use {' or '.join(readable)}"
        )
    return {**fits.options(shape), **options}


def build_model(name: str, **options: Any) -> nn.Module:
    """Build a registered model, e.g. ``build_model("wavenet", stacks=2)``."""
    return _entry(name).model_cls(model_config(name, **options))


def example_input_shape(name: str, **options: Any) -> Shape:
    """An input shape (without the batch axis) the model accepts, e.g. ``(40, 100)`` for TransLOB."""
    return tuple(_entry(name).example_input_shape(build_model(name, **options)))


def covering_input_shape(model: CoverableModel) -> Shape:
    """``(config.input_channels, length)`` with the smallest power-of-two length covering the receptive field."""
    return model.config.input_channels, 1 << (model.receptive_field - 1).bit_length()
