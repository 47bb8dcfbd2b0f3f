"""Models shipped inside an app: a run's config and weights, without optimizer state.

A shipped model is a folder `<root>/<name>/` holding `config.json` (the run's config, with
paths made relative so the data is prepared under the current folder when first needed),
`params.npz` (every array of the shipped tree, keyed by its path; `checkpoint.save_tree`) and
`about.json` (the step, the run's held-out evaluations and the commands that made it). The
apps (`train_videotx.pretrained`, `train_trivd.pretrained`) choose what the tree holds and
where `<root>` is; this module reads and writes the folders.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from video_training.checkpoint import load_tree, save_tree

PARAMS_FILE = "params.npz"
ABOUT_FILE = "about.json"
CONFIG_FILE = "config.json"

__all__ = [
    "ABOUT_FILE",
    "PARAMS_FILE",
    "folder",
    "is_exported",
    "load",
    "names",
    "resolve_folder",
    "run_evaluations",
    "saved_step",
    "write",
]


def names(root: str) -> list[str]:
    """The shipped models under `root` (folders holding params.npz)."""
    if not os.path.isdir(root):
        return []
    return sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, PARAMS_FILE)))


def folder(root: str, name: str, flag: str = "--pretrained") -> str:
    """The folder of the shipped model `name`; ValueError naming `flag` and the shipped ones."""
    shipped = names(root)
    if name not in shipped:
        raise ValueError(f"{flag}: expected one of {shipped}, got {name!r}")
    return os.path.join(root, name)


def resolve_folder(workdir: str | None, name: str | None, root: str, trained_by: str) -> str:
    """The folder a sampling command's `--workdir RUN` or `--pretrained NAME` (exactly one of
    them) names: the run folder, or the shipped model `name` under `root`.

    Raises:
      ConfigError: both or neither flag given, or no shipped model `name`.
    """
    from video_training.config import ConfigError

    if name is None:
        if not workdir:
            raise ConfigError(f"required: --workdir=RUN (a {trained_by} run) or --pretrained")
        return workdir
    if workdir:
        raise ConfigError(f"--pretrained={name} and --workdir={workdir}: expected one of them")
    try:
        return folder(root, name)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def is_exported(path: str) -> bool:
    """Whether `path` is a shipped model folder (params.npz) rather than a training run."""
    return os.path.isfile(os.path.join(path, PARAMS_FILE))


def saved_step(path: str, step: int | None = None) -> int:
    """The training step of the shipped model in `path`.

    Raises:
      ValueError: `step` is given and is not that step.
    """
    with open(os.path.join(path, ABOUT_FILE)) as f:
        saved = int(json.load(f)["step"])
    if step is not None and int(step) != saved:
        raise ValueError(f"step={step}: {path} holds step {saved} only")
    return saved


def load(abstract: Any, path: str, step: int | None = None) -> tuple[Any, int]:
    """`(tree, step)` of the shipped model in `path`, in the structure of `abstract`.

    Raises:
      ValueError: `step` is not the one it holds, or its arrays do not fit `abstract`.
    """
    saved = saved_step(path, step)
    return load_tree(abstract, os.path.join(path, PARAMS_FILE)), saved


def run_evaluations(workdir: str) -> list[dict[str, Any]]:
    """The rows of `<workdir>/metrics.jsonl` that hold `eval/` metrics (none without the file)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [r for r in map(json.loads, f) if any(k.startswith("eval/") for k in r)]


def write(
    out: str,
    tree: Any,
    config: dict[str, Any],
    *,
    step: int,
    evaluations: Sequence[dict[str, Any]],
    made_by: Sequence[str],
) -> str:
    """Writes a shipped model folder `out` (params.npz, config.json, about.json); returns it."""
    import jax

    os.makedirs(out, exist_ok=True)
    save_tree(tree, os.path.join(out, PARAMS_FILE))
    with open(os.path.join(out, CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=1)
    about = {
        "step": int(step),
        "parameters": int(sum(np.size(x) for x in jax.tree.leaves(tree))),
        "evaluations": list(evaluations),
        "made_by": list(made_by),
    }
    with open(os.path.join(out, ABOUT_FILE), "w") as f:
        json.dump(about, f, indent=1)
    return out
