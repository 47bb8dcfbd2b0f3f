"""Generators shipped with the app: a run's EMA generator weights and state, without D or optimizers.

A shipped model is a folder `train_trivd/pretrained/<name>/` (`video_training.shipped`):
`config.json` (the run's config; its embedded camera-motion data is rendered under
`runs/data` of the current folder when first needed, for the standing statistics),
`params.npz` (`ema`: the EMA generator weights sampling uses; `rest`: the generator's
batch-norm and spectral-norm state) and `about.json` (step, the run's held-out evaluations
beside their baselines, with the run's `extra_evaluations.json` at that step if it has one,
the commands that made it). `sample-trivd --pretrained` reads one in
place of a run folder:

  python3 -m uv run sample-trivd --pretrained --video my_clip.mp4
  python3 -m uv run sample-trivd --pretrained            # held-out camera-motion clips

Export a finished run:

  python3 -m uv run python -m train_trivd.pretrained --workdir RUN --name NAME
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from video_training import shipped

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
DEFAULT = "camera_linear_tiny"
# Evaluations of a finished run on further splits (written by the experiments' scripts beside
# the run's metrics.jsonl): {split: {"step": N, field: value}}.
EXTRA_EVALUATIONS_FILE = "extra_evaluations.json"

__all__ = [
    "DEFAULT",
    "EXTRA_EVALUATIONS_FILE",
    "export",
    "extra_evaluation_keys",
    "folder",
    "is_exported",
    "load_state",
    "names",
    "shipped_config",
    "split_prefix",
]

is_exported = shipped.is_exported


def names() -> list[str]:
    """The shipped generators."""
    return shipped.names(PRETRAINED_DIR)


def folder(name: str = DEFAULT) -> str:
    """The folder of the shipped generator `name`; ValueError naming the shipped ones otherwise."""
    return shipped.folder(PRETRAINED_DIR, name)


def _abstract(gan: Any) -> dict[str, Any]:
    import jax

    state = jax.eval_shape(gan.init, jax.random.key(0))
    return {"ema": state["ema"], "rest": state["g"]["rest"]}


def load_state(gan: Any, path: str, step: int | None = None) -> tuple[dict[str, Any], int]:
    """`(state, step)` of a shipped generator, with the train state's keys that sampling and
    `Evaluator` (with `eval.use_ema`) read: `state["ema"]` and `state["g"]["rest"]`.

    Raises:
      ValueError: `step` is not the one it holds, or its arrays do not fit `gan`'s generator.
    """
    tree, step = shipped.load(_abstract(gan), path, step)
    return {"ema": tree["ema"], "g": {"rest": tree["rest"]}}, step


def shipped_config(config: Any) -> dict[str, Any]:
    """A run's config as a shipped generator keeps it: no run folder; data and compilation
    cache under the current folder (`runs/`); the EMA weights (what a shipped model holds)."""
    config_dict = config.to_dict()
    config_dict["workdir"] = ""
    config_dict["data"]["root"] = "runs/data"  # rendered under the current folder when needed
    config_dict["eval"]["use_ema"] = True
    if os.path.isabs(config_dict.get("jax_cache_dir", "")):
        config_dict["jax_cache_dir"] = "runs/jax_cache"
    return config_dict


def split_prefix(split: str) -> str:
    """The name an extra evaluation's split goes by in results: "train_clips" for the training
    split (the held-out photos' evaluation is "eval"), the split's own name otherwise."""
    return "train_clips" if split == "train" else split


def extra_evaluation_keys(split: str, metrics: dict[str, Any]) -> dict[str, float]:
    """One split's evaluation as `about.json` keys `<split_prefix(split)>/<field>`."""
    prefix = split_prefix(split)
    return {f"{prefix}/{k}": float(v) for k, v in metrics.items() if k != "step"}


def _with_extra_evaluations(workdir: str, evaluations: list[dict[str, Any]], step: int):
    """Adds the run's extra evaluations at `step` (if any) to its evaluation at `step`."""
    path = os.path.join(workdir, EXTRA_EVALUATIONS_FILE)
    at_step = [e for e in evaluations if e.get("step") == step]
    if not os.path.exists(path) or not at_step:
        return evaluations
    with open(path) as f:
        extra = json.load(f)
    for split, metrics in extra.items():
        if metrics.get("step") == step:
            at_step[-1].update(extra_evaluation_keys(split, metrics))
    return evaluations


def export(workdir: str, out: str, step: int | None = None) -> str:
    """Writes the newest (or `step`) checkpoint of the train-trivd run in `workdir` as a
    shipped generator in `out`; returns `out`."""
    import gan_video

    from train_trivd.sample import restore_state
    from train_trivd.train import load_run_config, model_config, train_config

    config = load_run_config(workdir)
    if config.data.kind != "camera_motion":
        raise ValueError(
            f"{workdir}: data.kind={config.data.kind!r}; expected 'camera_motion' (a shipped "
            "generator renders its embedded data for the standing statistics)"
        )
    gan = gan_video.make_gan(model_config(config), train_config(config))
    state, step = restore_state(gan, workdir, step)
    return shipped.write(
        out,
        {"ema": state["ema"], "rest": state["g"]["rest"]},
        shipped_config(config),
        step=step,
        evaluations=_with_extra_evaluations(workdir, shipped.run_evaluations(workdir), step),
        made_by=[
            "python3 -m uv run train-trivd ...",
            f"python3 -m uv run python -m train_trivd.pretrained --workdir {workdir}",
        ],
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m train_trivd.pretrained",
        description="Export a train-trivd run's generator as a shipped model.",
    )
    p.add_argument("--workdir", required=True, help="a finished train-trivd run")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
    p.add_argument("--name", default=DEFAULT, help=f"shipped name (default: {DEFAULT})")
    p.add_argument("--out", default=None, help=f"output folder (default: {PRETRAINED_DIR}/NAME)")
    args = p.parse_args(argv)
    from video_training import ConfigError, cli

    try:
        cli.check_run_folder(args.workdir, trained_by="train-trivd", step=args.step)
        out = export(args.workdir, args.out or os.path.join(PRETRAINED_DIR, args.name), args.step)
    except (ConfigError, ValueError) as e:  # the message names the problem
        p.error(str(e))
    print(f"exported: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
