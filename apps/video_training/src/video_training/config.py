"""ml_collections ConfigDicts from `configs/*.py` files with `--config.a.b=value` overrides."""

from __future__ import annotations

import ast
import importlib.util
import os
from collections.abc import Sequence
from typing import Any

import ml_collections


def load_config_file(spec: str) -> ml_collections.ConfigDict:
    """Loads `path.py` or `path.py:arg` by calling the file's `get_config(arg)`.

    Args:
      spec: e.g. "configs/trivd_bair.py:tiny" (the part after ":" is passed as `arg`).

    Returns:
      The ConfigDict returned by `get_config`.
    """
    path, _, arg = spec.partition(":")
    if not os.path.exists(path):
        raise FileNotFoundError(f"config file not found: {path!r} (from --config={spec})")
    module_spec = importlib.util.spec_from_file_location(f"_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {path} must define get_config(arg=None)")
    cfg = module.get_config(arg) if arg else module.get_config()
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise TypeError(f"{path}:get_config must return a ConfigDict, got {type(cfg).__name__}")
    return cfg


def _parse_value(text: str, current: Any) -> Any:
    if isinstance(current, bool):
        low = text.lower()
        if low not in ("true", "false", "1", "0"):
            raise ValueError(f"expected a bool (true/false), got {text!r}")
        return low in ("true", "1")
    if isinstance(current, str):
        return text
    if isinstance(current, int) and not isinstance(current, bool):
        return int(text)
    if isinstance(current, float):
        return float(text)
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    return value


def apply_override(cfg: ml_collections.ConfigDict, dotted: str, text: str) -> None:
    """Sets `cfg.a.b = parse(text)`, parsed according to the current field's type.

    Raises:
      KeyError: if the field does not exist (typos fail loudly).
    """
    *parents, leaf = dotted.split(".")
    node = cfg
    for p in parents:
        if p not in node:
            raise KeyError(f"no config field {dotted!r} ({p!r} missing)")
        node = node[p]
    if leaf not in node:
        raise KeyError(f"no config field {dotted!r}; fields here: {sorted(node.keys())}")
    current = node[leaf]
    try:
        value = _parse_value(text, current)
    except ValueError as e:
        raise ValueError(f"--config.{dotted}={text!r}: {e}") from None
    with node.unlocked() if hasattr(node, "unlocked") else _null():
        node[leaf] = value


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def parse_config_args(
    argv: Sequence[str], *, flag: str = "config"
) -> tuple[ml_collections.ConfigDict, list[str]]:
    """Parses `--config=path.py[:arg]` and `--config.x.y=value` out of a command line.

    Args:
      argv: command-line arguments (without the program name).
      flag: the flag name ("config").

    Returns:
      `(config, remaining_argv)`; the overrides are applied in order.
    """
    spec, overrides, rest = None, [], []
    args = list(argv)
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith(f"--{flag}=") or a == f"--{flag}":
            if "=" in a:
                spec = a.split("=", 1)[1]
            else:
                i += 1
                spec = args[i]
        elif a.startswith(f"--{flag}."):
            key = a[len(flag) + 3 :]
            if "=" in key:
                key, value = key.split("=", 1)
            else:
                i += 1
                value = args[i]
            overrides.append((key, value))
        else:
            rest.append(a)
        i += 1
    if spec is None:
        raise ValueError(f"--{flag}=path/to/config.py[:arg] is required")
    cfg = load_config_file(spec)
    for key, value in overrides:
        apply_override(cfg, key, value)
    return cfg, rest


def define_config_flag(
    name: str = "config", default: str | None = None, help_string: str = "Experiment config file."
) -> Any:
    """absl alternative: `config_flags.DEFINE_config_file` (same `path:arg` and override syntax).

    For apps that use `absl.app.run`; `parse_config_args` needs no absl.
    """
    from ml_collections import config_flags

    return config_flags.DEFINE_config_file(name, default, help_string, lock_config=True)
