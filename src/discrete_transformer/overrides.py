"""``--set section.field=value`` overrides of the frozen configs, parsed against their fields.

One generic option instead of a flag per knob: ``--set model.mlp_arity=3``,
``--set model.attention_routing=positional``, ``--set train.estimator=reinforce``,
``--set extract.sr_operators=add,sub,mul``, ``--set model.forbid_reads=L0.*:x,readout:pos``.
Values are parsed by the field's annotated type: bool (true/false/1/0/yes/no), int, float,
``None`` for optional fields, comma-separated tuples, and ``module:variable`` pairs for
``forbid_reads``. Every error names the offending key and value in one line.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from .config import ModelConfig, TrainConfig
from .extraction.pipeline import ExtractConfig

SECTIONS = ("model", "train", "extract")


class OverrideError(ValueError):
    """A malformed or unknown ``--set`` override."""


def _section_class(section: str) -> type:
    if section == "model":
        return ModelConfig
    if section == "train":
        return TrainConfig
    return ExtractConfig


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1", "yes", "on"):
        return True
    if t in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse(tp: Any, text: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if text.strip().lower() in ("none", "null", ""):
            return None
        return _parse(inner[0], text)
    if origin is Literal:
        if text not in args:
            raise ValueError(f"expected one of {', '.join(map(str, args))}, got {text!r}")
        return text
    if origin is tuple:
        items = [s.strip() for s in text.split(",") if s.strip()]
        inner = args[0] if args else str
        if typing.get_origin(inner) is tuple:  # pairs: "module:variable,module:variable"
            pairs = []
            for item in items:
                parts = item.split(":")
                if len(parts) != 2 or not all(parts):
                    raise ValueError(f"expected module:variable pairs, got {item!r}")
                pairs.append((parts[0], parts[1]))
            return tuple(pairs)
        return tuple(_parse(inner, s) for s in items)
    if tp is bool:
        return _parse_bool(text)
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is str:
        return text
    raise ValueError(f"cannot parse a value of type {tp!r}")


def parse_overrides(items: list[str] | tuple[str, ...] | None) -> dict[str, dict[str, Any]]:
    """``["model.mlp_arity=3", ...]`` -> ``{"model": {"mlp_arity": 3}, "train": {}, "extract": {}}``."""
    out: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or "." not in key:
            raise OverrideError(f"--set {item!r}: expected section.field=value, e.g. model.mlp_arity=3")
        section, _, name = key.partition(".")
        if section not in SECTIONS:
            raise OverrideError(f"--set {item!r}: unknown section {section!r}; expected one of {', '.join(SECTIONS)}")
        cls = _section_class(section)
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)}
        if name not in fields:
            raise OverrideError(
                f"--set {item!r}: {cls.__name__} has no field {name!r}; fields: {', '.join(sorted(fields))}"
            )
        try:
            out[section][name] = _parse(hints[name], value.strip())
        except ValueError as e:
            raise OverrideError(f"--set {item!r}: {e}") from None
    return out


def apply(base: Any, values: dict[str, Any]) -> Any:
    """``dataclasses.replace`` with the config's own validation; errors become OverrideError."""
    if not values:
        return base
    try:
        return dataclasses.replace(base, **values)
    except (ValueError, TypeError) as e:
        raise OverrideError(f"--set: {e}") from None


def configs_from_overrides(items: list[str] | tuple[str, ...] | None, train_base: TrainConfig | None = None):
    """(ModelConfig, TrainConfig, ExtractConfig) with the overrides applied to the defaults
    (`train_base` replaces TrainConfig()); a section without overrides is returned as None, so
    the caller's own default applies unchanged."""
    vals = parse_overrides(items)
    model = apply(ModelConfig(), vals["model"]) if vals["model"] else None
    train = apply(train_base or TrainConfig(), vals["train"]) if vals["train"] else None
    extract = apply(ExtractConfig(), vals["extract"]) if vals["extract"] else None
    return model, train, extract
