"""Command-line conventions of the app commands: config names, run folders, one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Sequence

import ml_collections
import numpy as np

from video_training.config import (
    ConfigError,
    ConfigNotFoundError,
    parse_config_args,
)

__all__ = [
    "COMPILE_ONLY_USAGE",
    "CONFIG_FORMS",
    "ArgumentParser",
    "CompileRequest",
    "check_run_folder",
    "checkpoint_steps",
    "command",
    "config_names",
    "decode_video_arg",
    "parse_config_flags",
    "pop_compile_only",
    "resolve_config_spec",
    "run_compile_only",
]

CONFIG_FORMS = "NAME, NAME.py or path/to/file.py, each optionally followed by :ARG"
# How the commands exit on a ConfigError or a usage error (argparse's convention).
USAGE_EXIT_CODE = 2


def config_names(config_dir: str) -> tuple[str, ...]:
    """The configs packaged in `config_dir`: its `.py` files that define `get_config`."""
    names = []
    for file in sorted(os.listdir(config_dir)):
        if file.endswith(".py") and not file.startswith("_"):
            with open(os.path.join(config_dir, file)) as f:
                if "def get_config(" in f.read():
                    names.append(file.removesuffix(".py"))
    return tuple(names)


def _expected(config_dir: str) -> str:
    return f"expected {CONFIG_FORMS}, with NAME one of {', '.join(config_names(config_dir))}"


def resolve_config_spec(spec: str, config_dir: str) -> str:
    """`NAME[:ARG]`, `NAME.py[:ARG]` or `path.py[:ARG]` -> the `path.py[:ARG]` to load.

    An existing `.py` file is used as given. Otherwise a bare `NAME` or `NAME.py`, or a path
    that does not exist whose file name is `NAME.py` (e.g. `configs/bair.py` from the README),
    means the packaged `config_dir/NAME.py`. Other paths pass through unchanged (loading them
    reports a missing file).

    Args:
      spec: the `--config` value.
      config_dir: the app's `configs/` folder.

    Raises:
      ConfigNotFoundError: a bare name that is neither a file here nor a packaged config.
    """
    path, sep, arg = spec.partition(":")
    if path.endswith(".py") and os.path.isfile(path):
        return spec
    base = os.path.basename(path)
    name = base.removesuffix(".py")
    if name in config_names(config_dir) and (base == path or not os.path.exists(path)):
        return os.path.join(config_dir, f"{name}.py") + sep + arg
    if base == path:
        raise ConfigNotFoundError(f"--config: unknown config {spec!r}; {_expected(config_dir)}")
    return spec


def parse_config_flags(
    argv: Sequence[str],
    *,
    config_dir: str,
    default: str,
    validate: Callable[[ml_collections.ConfigDict], None] | None = None,
) -> tuple[ml_collections.ConfigDict, list[str]]:
    """`--config=SPEC` (`resolve_config_spec` forms) and `--config.FIELD=VALUE` overrides.

    Args:
      argv: command-line arguments (without the program name).
      config_dir: the app's `configs/` folder.
      default: the spec used without `--config` (e.g. "default:tiny").
      validate: the app's check of the final config (raises `ConfigError`).

    Returns:
      `(config, remaining_argv)`.

    Raises:
      ConfigError: an unknown config or field, a bad `:ARG` or value; nothing is built.
    """

    def resolve(spec: str) -> str:
        resolved = resolve_config_spec(spec, config_dir)
        path = resolved.partition(":")[0]
        if not os.path.exists(path):
            raise ConfigNotFoundError(
                f"--config: file not found: {path!r}; {_expected(config_dir)}"
            )
        return resolved

    config, rest = parse_config_args(argv, default=default, resolve=resolve)
    if validate is not None:
        validate(config)
    return config, rest


def checkpoint_steps(workdir: str) -> list[int]:
    """The steps saved under `<workdir>/checkpoints` (orbax step folders), ascending."""
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        return []
    return sorted(
        int(n) for n in os.listdir(directory) if n.isdigit() and os.path.isdir(f"{directory}/{n}")
    )


def check_run_folder(
    workdir: str, *, trained_by: str, step: int | None = None, config_file: str = "config.json"
) -> int:
    """Checks `--workdir` (and `--step`) name a finished training run before anything is built.

    Args:
      workdir: the `--workdir` value.
      trained_by: the command that writes such folders (for the message).
      step: the `--step` value (None: the newest checkpoint).
      config_file: the run's saved config.

    Returns:
      The checkpoint step to restore.

    Raises:
      ConfigNotFoundError: no such folder, no saved config or no checkpoint.
      ConfigError: `step` was not saved.
    """
    expected = f"expected a {trained_by} run folder (with {config_file} and checkpoints/)"
    if not os.path.isdir(workdir):
        raise ConfigNotFoundError(f"--workdir: {expected}, got {workdir!r}: no such folder")
    if not os.path.isfile(os.path.join(workdir, config_file)):
        raise ConfigNotFoundError(f"--workdir: {expected}, got {workdir!r}: no {config_file}")
    steps = checkpoint_steps(workdir)
    if not steps:
        raise ConfigNotFoundError(
            f"--workdir: {expected}, got {workdir!r}: no checkpoint in checkpoints/"
        )
    if step is None:
        return steps[-1]
    if step not in steps:
        raise ConfigError(
            f"--step={step} has no checkpoint in {workdir!r}; expected one of {steps}"
        )
    return step


def decode_video_arg(
    path: str, *, max_frames: int | None = None, flag: str = "--video"
) -> np.ndarray:
    """`decode_video` for a command-line file: a missing or undecodable file is a ConfigError.

    Returns:
      uint8 `[T, H, W, 3]`.
    """
    from video_training.data import VideoDecodeError, decode_video

    expected = f"{flag}: expected a video file that FFmpeg (PyAV) decodes, got {path!r}"
    if not os.path.isfile(path):
        raise ConfigNotFoundError(f"{expected}: no such file")
    try:
        return decode_video(path, max_frames=max_frames)
    except VideoDecodeError as e:
        raise ConfigError(f"{expected}: {e}") from None


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors raise `ConfigError` (printed as one line by `command`)."""

    def error(self, message: str):
        raise ConfigError(f"{message}; see {self.prog} --help")


def _one_line(message: str) -> str:
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def command(prog: str) -> Callable[[Callable[[list[str]], int]], Callable[..., int]]:
    """Wraps a command's `main(argv) -> int` so that configuration errors exit with status 2.

    The wrapped `main(argv=None)` reads `sys.argv[1:]` when `argv` is None. A `ConfigError`
    (including `ArgumentParser` usage errors) prints `PROG: error: MESSAGE` as one line on
    stderr, without a traceback, and returns 2 (argparse's usage-error status).
    """

    def decorate(main_fn: Callable[[list[str]], int]) -> Callable[..., int]:
        @functools.wraps(main_fn)
        def main(argv: Sequence[str] | None = None) -> int:
            try:
                return main_fn(sys.argv[1:] if argv is None else list(argv))
            except ConfigError as e:
                print(f"{prog}: error: {_one_line(str(e))}", file=sys.stderr, flush=True)
                return USAGE_EXIT_CODE

        return main

    return decorate


# ------------------------------------------------------------------------ --compile_only

COMPILE_ONLY_USAGE = """\
  --compile_only --topology=NAME [--json=PATH]
      compile for NAME instead of running, and print the per-device memory, FLOPs and compile
      time; NAME is a libtpu topology (v3:8x8, v4:4x4x4, v5e:16x16, v5p:4x4x8, v6e:16x16,
      tpu7x:2x2x1, ...) or h100 / h200 (one GPU) or h100:N (N GPUs in a host). Exit status 0:
      fits, 1: compiles but does not fit, 3: the compiler refuses it. Needs the workspace's
      `aot` group: python3 -m uv run --group aot COMMAND --compile_only --topology=NAME"""

_TOPOLOGY = re.compile(r"^((v\d+[a-z]*|tpu\d+[a-z]*):\d+(x\d+){1,2}|h(100|200)(:\d+)?)$")


@dataclasses.dataclass(frozen=True)
class CompileRequest:
    """`--compile_only --topology=NAME [--json=PATH]`."""

    topology: str
    json_path: str | None = None


def _flag_value(argv: list[str], i: int, name: str) -> tuple[str, int]:
    arg = argv[i]
    if arg.startswith(f"{name}="):
        return arg.split("=", 1)[1], i
    if i + 1 == len(argv):
        raise ConfigError(f"{name}: expected a value after it, got nothing")
    return argv[i + 1], i + 1


def pop_compile_only(argv: Sequence[str]) -> tuple[list[str], CompileRequest | None]:
    """Takes `--compile_only`, `--topology` and `--json` out of `argv`.

    Returns:
      `(the other arguments, a CompileRequest or None without --compile_only)`.

    Raises:
      ConfigError: `--topology` missing or not a target name, or given without --compile_only.
    """
    rest, compile_only, topology, json_path = [], False, None, None
    argv = list(argv)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--compile_only", "--compile-only"):
            compile_only = True
        elif arg == "--topology" or arg.startswith("--topology="):
            topology, i = _flag_value(argv, i, "--topology")
        elif arg == "--json" or arg.startswith("--json="):
            json_path, i = _flag_value(argv, i, "--json")
        else:
            rest.append(arg)
        i += 1
    if not compile_only:
        if topology is not None or json_path is not None:
            raise ConfigError("--topology and --json need --compile_only")
        return rest, None
    expected = (
        "expected a TPU topology such as v3:8x8, v5p:4x4x8 or v6e:16x16, or h100, h200, h100:8"
    )
    if not topology:
        raise ConfigError(f"--topology: {expected}, got nothing (--compile_only needs it)")
    if not _TOPOLOGY.match(topology):
        raise ConfigError(f"--topology: {expected}, got {topology!r}")
    return rest, CompileRequest(topology, json_path)


def run_compile_only(build_report: Callable[[], object], request: CompileRequest) -> int:
    """Builds and prints a `compile_only.StepReport`; returns the command's exit status.

    A missing `aot` group or a topology that libtpu does not know is a ConfigError (status 2).
    """
    from video_training import compile_only

    try:
        ct = compile_only.load_targets()
    except SystemExit as e:
        raise ConfigError(str(e)) from None
    try:
        ct.get_target(request.topology)
    except ValueError as e:
        raise ConfigError(f"--topology: {_one_line(str(e))}") from None
    except ct.TargetUnavailableError as e:
        raise ConfigError(f"--topology={request.topology}: {_one_line(str(e))}") from None
    report = build_report()
    report.print()
    if request.json_path:
        with open(request.json_path, "w") as f:
            json.dump(report.as_dict(), f, indent=1)
    sys.stdout.flush()
    return compile_only.exit_status(report)
