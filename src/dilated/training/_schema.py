"""Config sections as frozen dataclasses, read from YAML mappings with one-line errors.

A section is a frozen dataclass whose fields are declared with :func:`option` (a default, or none for a required
key, and a line of help). :func:`read_section` builds it from a mapping: unknown keys are refused with the valid
ones and the nearest valid name (``difflib``), values are checked against the field's annotation and coerced where
YAML is loose (``1e-4`` is read as a string; ``[0.9, 0.999]`` becomes a tuple), ``Literal`` annotations give the
allowed values. :func:`write_section` is the inverse (tuples back to lists, for YAML).

Kinds of value, from the annotation (or the option's ``kind`` for the two unions that need a rule of their own):
``int``, ``float``, ``int | float`` (a count or a share), ``bool``, ``str``, ``tuple[...]`` (a list), ``Literal``,
any of them ``| None``; ``devices`` (a number, a list of ids or ``auto``) and ``class_weights`` (``balanced`` or a
list of numbers).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass
from typing import Any, Literal, Union, get_args, get_origin

import yaml


def option(default: Any = MISSING, help: str = "", kind: str | None = None) -> Any:
    """A config field: its default (none: the key is required), a line of help, and optionally a special kind."""
    metadata = {"help": help, "kind": kind}
    if isinstance(default, (list, dict, set)):
        raise TypeError("option defaults must be immutable (use a tuple)")
    return dataclasses.field(default=default, metadata=metadata)


def unknown_key(
    where: str, key: Any, valid: Iterable[str], noun: str = "key", context: str = "", valid_label: str | None = None
) -> ValueError:
    """``ValueError``: ``WHERE: unknown key 'K'CONTEXT; valid keys: A, B (did you mean 'A'?)``."""
    valid = [str(v) for v in valid]
    close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    label = valid_label or f"valid {noun}s"
    return ValueError(f"{where}: unknown {noun} {key!r}{context}; {label}: {', '.join(valid)}{hint}")


@dataclass(frozen=True)
class _Kind:
    """What a field accepts: the base kind, allowed values, and whether null is allowed."""

    name: str  # int, float, number, bool, str, list, devices, class_weights
    choices: tuple[Any, ...] | None
    nullable: bool

    def describe(self) -> str:
        text = {
            "int": "an integer",
            "float": "a number",
            "number": "a number",
            "bool": "true or false",
            "str": "a string",
            "list": "a list",
            "devices": "a number, a list of device ids or 'auto'",
            "class_weights": "'balanced' or a list of numbers",
        }[self.name]
        return text + (" or null" if self.nullable else "")


def _kind(annotation: Any, special: str | None) -> _Kind:
    args = get_args(annotation)
    union = get_origin(annotation) in (Union, types.UnionType)
    nullable = union and type(None) in args
    members = [a for a in args if a is not type(None)] if union else [annotation]
    if special is not None:
        return _Kind(special, None, nullable)
    if len(members) == 2 and set(members) == {int, float}:
        return _Kind("number", None, nullable)
    (member,) = members
    if get_origin(member) is Literal:
        choices = get_args(member)
        return _Kind("int" if all(isinstance(c, int) for c in choices) else "str", choices, nullable)
    if get_origin(member) is tuple:
        return _Kind("list", None, nullable)
    names = {int: "int", float: "float", bool: "bool", str: "str"}
    if member not in names:
        raise TypeError(f"config fields cannot be of type {member!r}")
    return _Kind(names[member], None, nullable)


def _coerce(value: Any, kind: _Kind) -> Any:
    """``value`` as ``kind``; ``TypeError`` or ``ValueError`` if it is not one."""
    if kind.name in ("int", "float", "number") and isinstance(value, bool):
        raise TypeError
    coerce = _COERCE.get(kind.name)
    if coerce is None:
        raise AssertionError(kind.name)
    return coerce(value)


def _int(value: Any) -> int:
    number = float(value) if isinstance(value, str) else value
    if not float(number).is_integer():
        raise TypeError
    return int(number)


def _number(value: Any) -> int | float:
    if isinstance(value, str):  # "10" -> 10 batches, "0.5" -> half of them
        return float(value) if any(c in value for c in ".eE") else int(value)
    if not isinstance(value, (int, float)):
        raise TypeError
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError
    return value


def _str(value: Any) -> str:
    if isinstance(value, (dict, list, tuple, bool)):
        raise TypeError
    return str(value)


def _list(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise TypeError
    return tuple(value)


def _devices(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, str, list, tuple)):
        raise TypeError
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _class_weights(value: Any) -> str | tuple[float, ...]:
    if value == "balanced":
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return tuple(float(v) for v in value)
    raise TypeError


# kind name -> the function reading a (non-null) value as that kind
_COERCE: dict[str, Callable[[Any], Any]] = {
    "int": _int,
    "float": float,
    "number": _number,
    "bool": _bool,
    "str": _str,
    "list": _list,
    "devices": _devices,
    "class_weights": _class_weights,
}


def fields_of(cls: type) -> dict[str, tuple[dataclasses.Field, _Kind]]:
    """The fields of a section class with their kinds, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: (f, _kind(hints[f.name], f.metadata.get("kind"))) for f in dataclasses.fields(cls)}


def help_of(field: dataclasses.Field) -> str:
    return field.metadata.get("help", "")


def read_section(cls: type, values: Any, where: str, skip: Iterable[str] = ()) -> Any:
    """An instance of section ``cls`` from a mapping (None: all defaults); ``ValueError`` naming the first problem.

    ``skip``: keys that belong to the mapping but not to ``cls`` (e.g. a data section's ``kind``).
    """
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: expected a mapping of keys, got {values!r}")
    skip = tuple(skip)
    fields = fields_of(cls)
    for key in values:
        if key not in fields and key not in skip:
            raise unknown_key(where, key, [*skip, *fields])
    resolved = {}
    for key, (field, kind) in fields.items():
        if key not in values:
            if field.default is MISSING:
                raise ValueError(f"{where}.{key} is required ({help_of(field)})")
            continue
        value = values[key]
        if value is None:
            if not kind.nullable:
                raise ValueError(f"{where}.{key}: a value is required ({help_of(field)})")
        else:
            try:
                value = _coerce(value, kind)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{where}.{key}: expected {kind.describe()}, got {value!r} ({help_of(field)})"
                ) from None
            if kind.choices is not None and value not in kind.choices:
                raise ValueError(f"{where}.{key}: {value!r} is not one of {', '.join(map(str, kind.choices))}")
        resolved[key] = value
    try:
        return cls(**resolved)
    except ValueError as error:  # a section's own checks (__post_init__) name the key without the location
        raise ValueError(f"{where}.{error}") from None


def plain(value: Any) -> Any:
    """Tuples as lists, recursively (YAML and JSON spell sequences as lists)."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def write_section(section: Any) -> dict[str, Any]:
    """A section as a plain mapping, every key written out."""
    return {f.name: plain(getattr(section, f.name)) for f in dataclasses.fields(section)}


def section_help(cls: type, indent: str = "    ") -> list[str]:
    """One line per key: ``key: default  -- help``."""
    lines = []
    for key, (field, _) in fields_of(cls).items():
        default = (
            "required"
            if field.default is MISSING
            else yaml.safe_dump(plain(field.default), default_flow_style=True).strip().removesuffix("...").strip()
        )
        lines.append(f"{indent}{key}: {default}  -- {help_of(field)}")
    return lines
