"""Pretrained models shipped with the app: a run's config and parameters, without optimizer state.

A shipped model is a folder `train_videotx/pretrained/<name>/` holding `config.json` (the
run's config, data and cache paths reset to the defaults, relative to the current folder),
`params.npz` (every parameter, keyed by its path in the parameter tree) and `about.json`
(the step, the held-out metrics and the commands that made it). `sample-videotx --pretrained`
reads one in place of a run folder:

  python3 -m uv run sample-videotx --pretrained --video my_clip.mp4
  python3 -m uv run sample-videotx --pretrained            # held-out clips (prepared once)

Export a finished run (this is how `default_tiny` was made, after a no-flag `train-videotx`):

  python3 -m uv run python -m train_videotx.pretrained --workdir runs/default_tiny
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from video_training import shipped
from video_training.shipped import ABOUT_FILE, PARAMS_FILE

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
DEFAULT = "default_tiny"

__all__ = ["ABOUT_FILE", "PARAMS_FILE", "export", "folder", "is_exported", "load", "names"]


def names() -> list[str]:
    """The shipped models."""
    return shipped.names(PRETRAINED_DIR)


def folder(name: str = DEFAULT) -> str:
    """The folder of the shipped model `name`; ValueError naming the shipped ones otherwise."""
    return shipped.folder(PRETRAINED_DIR, name)


is_exported = shipped.is_exported
load = shipped.load


def export(workdir: str, out: str, step: int | None = None) -> str:
    """Writes the newest (or `step`) checkpoint of the run in `workdir` as a shipped model."""
    from train_videotx import model as vtx_model

    config = vtx_model.load_config(workdir)
    setup = vtx_model.make_setup(config)
    params, step = vtx_model.restore_params(setup, workdir, step)
    config_dict: dict[str, Any] = config.to_dict()
    config_dict["workdir"] = ""
    # Relative, as the configs have it: held-out clips are prepared there when first needed.
    config_dict["data"]["dir"] = f"runs/data/{os.path.basename(config.data.dir.rstrip('/'))}"
    config_dict["compilation_cache_dir"] = "runs/.jax_cache"
    return shipped.write(
        out,
        params,
        config_dict,
        step=step,
        evaluations=shipped.run_evaluations(workdir),
        made_by=[
            "python3 -m uv run train-videotx" + ("" if config.name == "default_tiny" else " ..."),
            f"python3 -m uv run python -m train_videotx.pretrained --workdir {workdir}",
        ],
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m train_videotx.pretrained", description="Export a run as a shipped model."
    )
    p.add_argument("--workdir", required=True, help="a finished train-videotx run")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
    p.add_argument(
        "--out", default=None, help=f"output folder (default: {PRETRAINED_DIR}/<config name>)"
    )
    args = p.parse_args(argv)
    from video_training import ConfigError, cli

    from train_videotx import model as vtx_model

    try:
        cli.check_run_folder(args.workdir, trained_by="train-videotx", step=args.step)
    except ConfigError as e:  # the message names the problem
        p.error(str(e))
    out = args.out or os.path.join(PRETRAINED_DIR, vtx_model.load_config(args.workdir).name)
    print(f"exported: {export(args.workdir, out, args.step)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
