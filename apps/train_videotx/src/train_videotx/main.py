"""`train-videotx`: train the Video Transformer from a config file (default: the tiny CPU run)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from video_training import ConfigError, cli

from train_videotx.configs import CONFIG_DIR, validate

DEFAULT_CONFIG = "default:tiny"

USAGE = f"""usage: train-videotx [--config=NAME[:ARG]] [--config.FIELD=VALUE ...]
                     [--compile_only --topology=NAME [--json=PATH]]

  --config takes NAME, NAME.py or path/to/file.py, each optionally with :ARG (e.g. bair,
  bair.py:tiny, ./my_exp.py:tiny). NAME is a file in train_videotx/configs (bair, default,
  kinetics600, moving_mnist); with no flags: --config=default:tiny (minutes on a CPU).
  --config.FIELD=VALUE overrides a field (e.g. --config.batch_size=8); unknown fields and
  bad values exit with status 2 before anything is built.
  The run writes to --config.workdir (default runs/<config.name>) and resumes from it.
{cli.COMPILE_ONLY_USAGE}
"""


def parse_args(argv: Sequence[str]):
    """`(config, unparsed)` from `--config=...` and `--config.a.b=value`, validated.

    Raises:
      ConfigError: an unknown config, `:ARG`, field or a bad value.
    """
    return cli.parse_config_flags(
        argv, config_dir=CONFIG_DIR, default=DEFAULT_CONFIG, validate=validate
    )


@cli.command("train-videotx")
def main(argv: list[str]) -> int:
    """Parses and validates the config, then trains; exit status 2 on a configuration error."""
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    argv, compile_request = cli.pop_compile_only(argv)
    config, rest = parse_args(argv)
    if rest:
        raise ConfigError(
            f"unrecognized arguments: {' '.join(rest)}; expected --config=NAME[:ARG] and "
            "--config.FIELD=VALUE (see train-videotx --help)"
        )
    if compile_request:
        from train_videotx.compile_only import train_report

        return cli.run_compile_only(
            lambda: train_report(config, compile_request.topology), compile_request
        )
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
