"""`train-videotx`: train the Video Transformer from a config file (default: the tiny CPU run)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from video_training import parse_config_args

DEFAULT_CONFIG = "default.py:tiny"
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")

USAGE = """usage: train-videotx [--config=FILE.py[:ARG]] [--config.FIELD=VALUE ...]

  FILE is a path, or a name in train_videotx/configs (default.py, bair.py, kinetics600.py,
  moving_mnist.py); with no flags: --config=default.py:tiny (a few minutes on a CPU).
  The run writes to --config.workdir (default runs/<config.name>) and resumes from it.
"""


def resolve_config_spec(spec: str) -> str:
    """`bair.py:tiny` or `configs/bair.py` -> the packaged file when the path does not exist."""
    path, sep, arg = spec.partition(":")
    if not os.path.exists(path):
        packaged = os.path.join(CONFIG_DIR, os.path.basename(path))
        if not packaged.endswith(".py"):
            packaged += ".py"
        if os.path.exists(packaged):
            path = packaged
    return path + sep + arg


def parse_args(argv: Sequence[str]):
    """`(config, unparsed)` from `--config=...` and `--config.a.b=value` overrides."""
    argv = list(argv)
    specs = [a for a in argv if a == "--config" or a.startswith("--config=")]
    if not specs:
        argv.insert(0, f"--config={DEFAULT_CONFIG}")
    resolved = []
    for i, a in enumerate(argv):
        if a.startswith("--config="):
            a = "--config=" + resolve_config_spec(a.split("=", 1)[1])
        elif i and argv[i - 1] == "--config":
            a = resolve_config_spec(a)
        resolved.append(a)
    return parse_config_args(resolved)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    config, rest = parse_args(argv)
    if rest:
        raise SystemExit(f"unknown arguments {rest}\n{USAGE}")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("train_videotx").setLevel(logging.INFO)
    from train_videotx.train import train  # heavy imports after argument checks

    summary = train(config)
    print(
        f"trained {config.name} from step {summary.start_step} to {summary.step} "
        f"in {summary.seconds:.0f} s"
    )
    print(f"  workdir:     {summary.workdir}")
    print(f"  checkpoints: {summary.checkpoint_dir}")
    print(f"  metrics:     {summary.workdir} (metrics.jsonl or TensorBoard events)")
    for path in summary.samples:
        print(f"  samples:     {os.path.abspath(path)}")
    for key in sorted(k for k in summary.metrics if k.startswith("eval/")):
        print(f"  {key} = {summary.metrics[key]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
