"""`train-trivd`: trains TrIVD-GAN-FP from a config (default: the embedded tiny config, on a CPU)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from train_trivd.configs import CONFIG_DIR

DEFAULT_CONFIG = "embedded:tiny"
# LLVM -O0 without expensive passes: ~30% less CPU compile time for the tiny smoke run.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
USAGE = """usage: train-trivd [--config=NAME[:ARG] | --config=path.py[:ARG]] [--config.a.b=VALUE ...]
                   [--workdir=DIR]
NAME is a file in train_trivd/configs (embedded, kinetics600, bair, ucf101); default
embedded:tiny. The run folder defaults to runs/<config name>; rerunning resumes it."""


def resolve_config(spec: str) -> str:
    """`embedded:tiny` -> `<package>/configs/embedded.py:tiny`; paths pass through."""
    path, sep, arg = spec.partition(":")
    if not path.endswith(".py") and os.sep not in path:
        path = os.path.join(CONFIG_DIR, f"{path}.py")
    return f"{path}{sep}{arg}"


def parse_args(argv: Sequence[str]):
    """Returns `(config, workdir)` from `--config`, `--config.x=...` and `--workdir`."""
    from video_training import parse_config_args

    args = [a for a in argv if not a.startswith(("--workdir=", "--config="))]
    spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), DEFAULT_CONFIG)
    config, rest = parse_config_args([f"--config={resolve_config(spec)}", *args])
    workdir = next((a.split("=", 1)[1] for a in argv if a.startswith("--workdir=")), None)
    if rest:
        raise SystemExit(f"unknown arguments: {rest}\n{USAGE}")
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    config, workdir = parse_args(argv)
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
