"""ml_collections ConfigDicts from `configs/*.py` files with `--config.a.b=value` overrides."""

from __future__ import annotations

import ast
import importlib.util
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import ml_collections


class ConfigError(ValueError):
    """A mistake in a config or on the command line: the commands print it as one line, exit 2."""


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """A config file, config name or run folder that does not exist."""


class UnknownFieldError(ConfigError, KeyError):
    """`--config.FIELD=...` names a field the config does not have."""

    __str__ = BaseException.__str__  # KeyError would quote the message


def load_config_file(spec: str, *, given: str | None = None) -> ml_collections.ConfigDict:
    """Loads `path.py` or `path.py:arg` by calling the file's `get_config(arg)`.

    Args:
      spec: e.g. "configs/trivd_bair.py:tiny" (the part after ":" is passed as `arg`).
      given: what the user typed, when `spec` was resolved from it (for error messages).

    Returns:
      The ConfigDict returned by `get_config`.

    Raises:
      ConfigNotFoundError: the file does not exist.
      ConfigError: not a `.py` file, no `get_config`, or `get_config` rejected `arg`
        (its ValueError, e.g. an unknown variant, is passed on with the spec in front).
    """
    path, _, arg = spec.partition(":")
    if not os.path.exists(path):
        raise ConfigNotFoundError(
            f"--config: file not found: {path!r}; expected a .py file with get_config(arg=None)"
        )
    if not os.path.isfile(path) or not path.endswith(".py"):
        raise ConfigError(f"--config: expected a .py file with get_config(arg=None), got {path!r}")
    module_spec = importlib.util.spec_from_file_location(f"_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"--config: {path} must define get_config(arg=None)")
    try:
        cfg = module.get_config(arg) if arg else module.get_config()
    except ValueError as e:  # the file's own check of `arg` names the accepted values
        raise ConfigError(f"--config={given or spec}: {e}") from None
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise ConfigError(
            f"--config: {path}:get_config must return a ConfigDict, got {type(cfg).__name__}"
        )
    return cfg


def _parse_value(text: str, current: Any) -> Any:
    """`text` as the type of the field's `current` value (bool, str, int, float, tuple)."""
    if isinstance(current, bool):
        low = text.lower()
        if low not in ("true", "false", "1", "0"):
            raise ValueError(f"expected a bool (true/false), got {text!r}")
        return low in ("true", "1")
    if isinstance(current, str):
        return text
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    if isinstance(current, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a tuple like {current!r}, got {text!r}")
        value = tuple(value)
    return value


def apply_override(cfg: ml_collections.ConfigDict, dotted: str, text: str) -> None:
    """Sets `cfg.a.b = parse(text)`, parsed according to the current field's type.

    Raises:
      UnknownFieldError: the field does not exist (typos fail loudly; a KeyError too).
      ConfigError: `text` does not parse as the field's type.
    """
    names = dotted.split(".")
    node, prefix = cfg, "config"
    for depth, name in enumerate(names):
        if not isinstance(node, ml_collections.ConfigDict) or name not in node:
            fields = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            raise UnknownFieldError(
                f"--config.{dotted}={text}: {prefix} has no field {name!r}; "
                f"expected one of: {', '.join(fields) or '(none, not a group of fields)'}"
            )
        if depth < len(names) - 1:
            node, prefix = node[name], f"{prefix}.{name}"
    leaf = names[-1]
    current = node[leaf]
    try:
        value = _parse_value(text, current)
        with node.unlocked():
            node[leaf] = value
    except (ValueError, TypeError) as e:  # TypeError: ConfigDict's own type check
        raise ConfigError(f"--config.{dotted}: {e}") from None


def parse_config_args(
    argv: Sequence[str],
    *,
    flag: str = "config",
    default: str | None = None,
    resolve: Callable[[str], str] | None = None,
) -> tuple[ml_collections.ConfigDict, list[str]]:
    """Parses `--config=path.py[:arg]` and `--config.x.y=value` out of a command line.

    Args:
      argv: command-line arguments (without the program name).
      flag: the flag name ("config").
      default: the spec used when `--config` is not given (None: the flag is required).
      resolve: maps the spec to `path.py[:arg]` before loading (e.g. a config name to the
        packaged file, see `video_training.cli.resolve_config_spec`).

    Returns:
      `(config, remaining_argv)`; the overrides are applied in order.

    Raises:
      ConfigError: a missing flag or value, an unloadable config or a bad override.
    """
    spec, overrides, rest = default, [], []
    args = list(argv)
    i = 0

    def next_value(name: str) -> str:
        if i + 1 >= len(args):
            raise ConfigError(f"--{name}: expected a value after it, got nothing")
        return args[i + 1]

    while i < len(args):
        a = args[i]
        if a.startswith(f"--{flag}=") or a == f"--{flag}":
            if "=" in a:
                spec = a.split("=", 1)[1]
            else:
                spec = next_value(flag)
                i += 1
        elif a.startswith(f"--{flag}."):
            key = a[len(flag) + 3 :]
            if "=" in key:
                key, value = key.split("=", 1)
            else:
                value = next_value(f"{flag}.{key}")
                i += 1
            overrides.append((key, value))
        else:
            rest.append(a)
        i += 1
    if spec is None:
        raise ConfigError(f"--{flag}: required; expected --{flag}=path/to/config.py[:arg]")
    cfg = load_config_file(resolve(spec), given=spec) if resolve else load_config_file(spec)
    for key, value in overrides:
        apply_override(cfg, key, value)
    return cfg, rest


def get_field(cfg: ml_collections.ConfigDict, dotted: str) -> Any:
    """`cfg.a.b` for `dotted = "a.b"`."""
    node = cfg
    for name in dotted.split("."):
        node = node[name]
    return node


def check_field(cfg: ml_collections.ConfigDict, field: str, ok: bool, expected: str) -> None:
    """Raises `ConfigError("--config.FIELD: expected EXPECTED, got VALUE")` unless `ok`."""
    if not ok:
        raise ConfigError(f"--config.{field}: expected {expected}, got {get_field(cfg, field)!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(cfg: ml_collections.ConfigDict, *fields: str, min_value: int = 1) -> None:
    """Each field is an integer `>= min_value` (batch sizes, steps, frame counts, sizes)."""
    for field in fields:
        value = get_field(cfg, field)
        check_field(cfg, field, _is_int(value) and value >= min_value, f"an integer >= {min_value}")


def check_number(
    cfg: ml_collections.ConfigDict,
    *fields: str,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
) -> None:
    """Each field is a number in the given range (e.g. `above=0` for a learning rate)."""
    bounds = [
        *([f"> {above:g}"] if above is not None else []),
        *([f">= {at_least:g}"] if at_least is not None else []),
        *([f"< {below:g}"] if below is not None else []),
    ]
    for field in fields:
        v = get_field(cfg, field)
        ok = (_is_int(v) or isinstance(v, float)) and math.isfinite(v)
        ok = ok and (above is None or v > above) and (at_least is None or v >= at_least)
        ok = ok and (below is None or v < below)
        check_field(cfg, field, ok, " ".join(["a number", " and ".join(bounds)]).strip())


def check_choice(cfg: ml_collections.ConfigDict, field: str, choices: Sequence[Any]) -> None:
    """The field is one of `choices`."""
    check_field(
        cfg,
        field,
        get_field(cfg, field) in tuple(choices),
        "one of " + ", ".join(repr(c) for c in choices),
    )


def define_config_flag(
    name: str = "config", default: str | None = None, help_string: str = "Experiment config file."
) -> Any:
    """absl alternative: `config_flags.DEFINE_config_file` (same `path:arg` and override syntax).

    For apps that use `absl.app.run`; `parse_config_args` needs no absl.
    """
    from ml_collections import config_flags

    return config_flags.DEFINE_config_file(name, default, help_string, lock_config=True)
