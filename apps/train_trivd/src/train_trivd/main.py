"""`train-trivd`: trains TrIVD-GAN-FP from a config (default: the embedded tiny config, on a CPU)."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Sequence

from video_training import ConfigError, cli

from train_trivd.configs import CONFIG_DIR, validate

DEFAULT_CONFIG = "embedded:tiny"
# LLVM -O0 without expensive passes: ~30% less CPU compile time for the tiny smoke run.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
USAGE = f"""usage: train-trivd [--config=NAME[:ARG]] [--config.FIELD=VALUE ...] [--workdir=DIR]
                   [--compile_only --topology=NAME [--json=PATH]]

  --config takes NAME, NAME.py or path/to/file.py, each optionally with :ARG (e.g. embedded,
  embedded.py:tiny, ./my_exp.py:tiny). NAME is a file in train_trivd/configs (bair, embedded,
  kinetics600, ucf101); with no flags: --config=embedded:tiny (a CPU smoke run).
  --config.FIELD=VALUE overrides a field (e.g. --config.data.batch_size=8); unknown fields and
  bad values exit with status 2 before anything is built.
  The run folder defaults to runs/<config name>; rerunning resumes it.
{cli.COMPILE_ONLY_USAGE}"""


def resolve_config(spec: str) -> str:
    """`embedded:tiny` -> `<package>/configs/embedded.py:tiny` (`cli.resolve_config_spec`)."""
    return cli.resolve_config_spec(spec, CONFIG_DIR)


def parse_args(argv: Sequence[str], *, needs_data: bool = True):
    """Returns `(config, workdir)` from `--config`, `--config.x=...` and `--workdir`, validated.

    Args:
      argv: the arguments.
      needs_data: check that the config's data exists (not for `--compile_only`).

    Raises:
      ConfigError: an unknown config, `:ARG`, field or argument, or a bad value.
    """
    config, rest = cli.parse_config_flags(
        argv,
        config_dir=CONFIG_DIR,
        default=DEFAULT_CONFIG,
        validate=functools.partial(validate, needs_data=needs_data),
    )
    workdir, unknown = None, []
    i = 0
    while i < len(rest):
        if rest[i].startswith("--workdir="):
            workdir = rest[i].split("=", 1)[1]
        elif rest[i] == "--workdir":
            if i + 1 == len(rest):
                raise ConfigError("--workdir: expected a folder after it, got nothing")
            workdir, i = rest[i + 1], i + 1
        else:
            unknown.append(rest[i])
        i += 1
    if unknown:
        raise ConfigError(
            f"unrecognized arguments: {' '.join(unknown)}; expected --config=NAME[:ARG], "
            "--config.FIELD=VALUE and --workdir=DIR (see train-trivd --help)"
        )
    return config, workdir or config.workdir or os.path.join("runs", config.name)


def configure_jax(config) -> None:
    """Applies `xla_fast_compile` and `jax_cache_dir` (call before the first computation).

    Flags are added once: the persistent cache key hashes XLA_FLAGS, so repeating them would
    turn every later lookup in the same process into a miss.
    """
    if config.get("xla_fast_compile"):
        flags = os.environ.get("XLA_FLAGS", "").split()
        flags += [f for f in FAST_COMPILE.split() if f not in flags]
        os.environ["XLA_FLAGS"] = " ".join(flags)
    if config.get("jax_cache_dir"):  # compiled steps are reused by resumed runs and sampling
        import jax

        jax.config.update("jax_compilation_cache_dir", os.path.abspath(config.jax_cache_dir))


@cli.command("train-trivd")
def main(argv: list[str]) -> int:
    """Parses and validates the config, then trains; exit status 2 on a configuration error."""
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    argv, compile_request = cli.pop_compile_only(argv)
    config, workdir = parse_args(argv, needs_data=compile_request is None)
    if compile_request:
        from train_trivd.compile_only import train_report

        return cli.run_compile_only(
            lambda: train_report(config, compile_request.topology), compile_request
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    configure_jax(config)
    from train_trivd.train import train_and_evaluate

    print(f"train-trivd: config {config.name}, run folder {os.path.abspath(workdir)}", flush=True)
    summary = train_and_evaluate(config, workdir)
    print(f"trained to step {summary['step']} (started at {summary['start_step']})")
    for name in ("checkpoint", "metrics", "samples", "motion_image", "motion_video"):
        if name in summary:
            print(f"  {name:13s}{os.path.abspath(summary[name])}")
    if summary["eval"]:
        print("  eval         " + ", ".join(f"{k}={v:.4g}" for k, v in summary["eval"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
