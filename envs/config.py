"""Typed dataclass configs, validated once at load.

`merge(default, data)` applies a (YAML-loaded) mapping on top of a dataclass instance and returns a new
instance. Every error names the dotted field it is about: unknown keys, wrong types, bad values
(raised as ValueError from a dataclass's ``__post_init__``). Nothing here imports torch.

Two conventions let configs hold data that is not a fixed set of fields:

- Presets: a dataclass with a ``load_preset(ref, where) -> mapping`` classmethod and a ``preset`` field takes a string
  (``robot: my_robot.yaml``) or a mapping with a ``preset`` key: the preset's mapping is applied to a blank instance,
  then the other keys of the mapping on top.
- Term sections: a dataclass with ``__terms__ = True`` holds its terms in a ``terms: dict[str, TermCfg]`` field, written
  flat beside its own fields (``rewards: {only_positive: true, torques: {weight: -2e-4}}``). A key that is not a
  field names a term: an existing one is updated, a new one must name a function of the section (its
  ``term_names()``) or give its own ``func``; terms are turned off, never removed (so that a saved config merged onto
  the defaults gives back the same config). A scalar is the term's ``__shorthand__`` field
  (``torques: -2e-4`` sets the weight). A dict field of dataclasses is merged key by key the same way, and so is a
  dict field whose metadata says ``merge="update"`` (a term's `params`); other dicts (joint tables) are replaced.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration value is wrong; the message starts with the dotted field name."""


MAX_PRESET_DEPTH = 8
FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")  # scientific notation YAML 1.1 leaves a string


def merge(default: Any, data: Any, path: str = "", _depth: int = 0) -> Any:
    """Return a copy of the dataclass instance `default` with the mapping `data` applied, validated."""
    if data is None:
        return default
    cls = type(default)
    loader = getattr(cls, "load_preset", None)
    if loader is not None and isinstance(data, str):
        data = {"preset": data}
    if shorthand := getattr(cls, "__shorthand__", None):
        if not isinstance(data, dict):
            data = {shorthand: data}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or cls.__name__}: expected a mapping, got {type(data).__name__}")
    if loader is not None and data.get("preset"):
        if _depth >= MAX_PRESET_DEPTH:
            raise ConfigError(f"{path}.preset: presets nest more than {MAX_PRESET_DEPTH} deep (a cycle?)")
        ref, rest = data["preset"], {k: v for k, v in data.items() if k != "preset"}
        where = f"{path}.preset" if path else "preset"
        if not isinstance(ref, str):
            raise ConfigError(f"{where}: expected a string, got {ref!r}")
        base = merge(cls(), loader(ref, where), path, _depth + 1)
        return merge(dataclasses.replace(base, preset=cls.preset_name(ref)), rest, path, _depth)
    fields = {f.name: f for f in dataclasses.fields(default)}
    hints = typing.get_type_hints(cls)
    changes: dict[str, Any] = {}
    terms = dict(default.terms) if getattr(cls, "__terms__", False) else None
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields or (terms is not None and key == "terms"):
            if terms is None:
                raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(fields))})")
            items = value.items() if key == "terms" and isinstance(value, dict) else [(key, value)]
            for name, term in items:
                term_where = f"{path}.{name}" if path else str(name)
                if name not in terms and not (isinstance(term, dict) and term.get("func")) \
                        and name not in cls.term_names():
                    known = sorted(set(fields) - {"terms"} | set(terms) | set(cls.term_names()))
                    raise ConfigError(f"{term_where}: unknown key (known: {', '.join(known)})")
            _merge_entries(terms, dict(items), typing.get_args(hints["terms"])[1], path)
            continue
        current = getattr(default, key)
        if dataclasses.is_dataclass(current):
            changes[key] = merge(current, value, where)
        elif fields[key].metadata.get("merge") == "update" and isinstance(value, dict):
            changes[key] = {**current, **convert(hints[key], value, where)}
        elif _is_dataclass_dict(hints[key]) and isinstance(value, dict):
            entries = dict(current)
            _merge_entries(entries, value, typing.get_args(hints[key])[1], where)
            changes[key] = entries
        else:
            changes[key] = convert(hints[key], value, where)
    if terms is not None:
        changes["terms"] = terms
    try:
        return dataclasses.replace(default, **changes)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path or type(default).__name__}: {exc}") from None


def _is_dataclass_dict(hint: Any) -> bool:
    args = typing.get_args(hint)
    return typing.get_origin(hint) is dict and len(args) == 2 and dataclasses.is_dataclass(args[1])


def _merge_entries(entries: dict, data: dict, cls: type, path: str) -> None:
    """Merge the mapping `data` into `entries` (name -> dataclass of type `cls`) in place. Entries are never
    removed (a run's saved config, merged onto the defaults, must give back the same config): terms are turned off."""
    for name, value in data.items():
        where = f"{path}.{name}" if path else str(name)
        if value is None:
            off = "weight: 0" if getattr(cls, "__shorthand__", None) == "weight" else "enabled: false"
            raise ConfigError(f"{where}: a term is turned off, not removed: set {off}")
        entries[name] = merge(entries[name] if name in entries else cls(), value, where)


def convert(hint: Any, value: Any, where: str) -> Any:
    """Check `value` against the type annotation `hint` and return it in that type."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return convert(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc).split(": ", 1)[1])
        raise ConfigError(f"{where}: {' or '.join(errors)}")
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str) and FLOAT.fullmatch(value.strip()):  # YAML 1.1 reads 1e-4 (no dot) as a string
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list of {len(args)}, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)}, got {len(value)} items")
        return tuple(convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {convert(args[0], k, where): convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return merge(hint(), value, where)
    raise ConfigError(f"{where}: unsupported type {hint}")


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; an unreadable or non-mapping file is a ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def parse_overrides(items: list[str]) -> dict:
    """Turn ``["a.b=1", "c=[0, 1]"]`` into the nested mapping ``{"a": {"b": 1}, "c": [0, 1]}``."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part} is set twice")
        value = yaml.safe_load(raw)
        node[parts[-1]] = float(value) if isinstance(value, str) and FLOAT.fullmatch(value.strip()) else value
    return out


def deep_update(base: dict, new: dict) -> dict:
    """A copy of the nested mapping `base` with `new` written over it, key by key at every depth."""
    out = dict(base)
    for key, value in new.items():
        out[key] = deep_update(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def to_dict(cfg: Any) -> Any:
    """A dataclass config as plain YAML-able data (tuples become lists; a term section's terms written flat)."""
    if dataclasses.is_dataclass(cfg):
        out = {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
        if getattr(type(cfg), "__terms__", False):
            out.update(out.pop("terms"))
        return out
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg
