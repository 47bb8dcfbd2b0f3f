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
import json
import os
import sys
from typing import Any

import numpy as np

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
PARAMS_FILE = "params.npz"
ABOUT_FILE = "about.json"
DEFAULT = "default_tiny"


def names() -> list[str]:
    """The shipped models."""
    if not os.path.isdir(PRETRAINED_DIR):
        return []
    return sorted(
        n
        for n in os.listdir(PRETRAINED_DIR)
        if os.path.isfile(os.path.join(PRETRAINED_DIR, n, PARAMS_FILE))
    )


def folder(name: str = DEFAULT) -> str:
    """The folder of the shipped model `name`; ValueError naming the shipped ones otherwise."""
    if name not in names():
        raise ValueError(f"--pretrained: expected one of {names()}, got {name!r}")
    return os.path.join(PRETRAINED_DIR, name)


def is_exported(workdir: str) -> bool:
    """Whether `workdir` is an exported model (params.npz) rather than a training run."""
    return os.path.isfile(os.path.join(workdir, PARAMS_FILE))


def load(abstract_params: Any, folder: str, step: int | None = None) -> tuple[Any, int]:
    """`(params, step)` of the shipped model in `folder`, in the structure of `abstract_params`.

    Raises:
      ValueError: `step` is not the one it holds, or its arrays do not fit the model.
    """
    from video_training import load_tree

    with open(os.path.join(folder, ABOUT_FILE)) as f:
        saved = int(json.load(f)["step"])
    if step is not None and int(step) != saved:
        raise ValueError(f"step={step}: {folder} holds step {saved} only")
    return load_tree(abstract_params, os.path.join(folder, PARAMS_FILE)), saved


def export(workdir: str, out: str, step: int | None = None) -> str:
    """Writes the newest (or `step`) checkpoint of the run in `workdir` as a shipped model."""
    import jax
    from video_training import save_tree

    from train_videotx import model as vtx_model

    config = vtx_model.load_config(workdir)
    setup = vtx_model.make_setup(config)
    params, step = vtx_model.restore_params(setup, workdir, step)
    os.makedirs(out, exist_ok=True)
    save_tree(params, os.path.join(out, PARAMS_FILE))
    shipped = config.to_dict()
    shipped["workdir"] = ""
    # Relative, as the configs have it: held-out clips are prepared there when first needed.
    shipped["data"]["dir"] = f"runs/data/{os.path.basename(config.data.dir.rstrip('/'))}"
    shipped["compilation_cache_dir"] = "runs/.jax_cache"
    with open(os.path.join(out, vtx_model.CONFIG_FILE), "w") as f:
        json.dump(shipped, f, indent=1)
    evals = []
    metrics = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(metrics):
        with open(metrics) as f:
            evals = [r for r in map(json.loads, f) if any(k.startswith("eval/") for k in r)]
    about = {
        "step": step,
        "parameters": int(sum(np.size(x) for x in jax.tree.leaves(params))),
        "evaluations": evals,
        "made_by": [
            "python3 -m uv run train-videotx" + ("" if config.name == "default_tiny" else " ..."),
            f"python3 -m uv run python -m train_videotx.pretrained --workdir {workdir}",
        ],
    }
    with open(os.path.join(out, ABOUT_FILE), "w") as f:
        json.dump(about, f, indent=1)
    return out


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
