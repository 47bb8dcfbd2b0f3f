"""`train_and_evaluate(config, workdir)`: the TrIVD-GAN-FP training loop with periodic evaluation."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

import gan_video
import ml_collections
import video_training as vt

from train_trivd import data
from train_trivd.configs import batch_axis
from train_trivd.evaluate import Evaluator

log = logging.getLogger(__name__)

__all__ = ["model_config", "train_and_evaluate", "train_config"]

CONFIG_FILE = "config.json"


def _fields(cls, cfg: ml_collections.ConfigDict) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(cfg.keys()) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields in config: {sorted(unknown)}")
    # JSON round trips turn tuples into lists; the frozen dataclasses want tuples.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.to_dict().items()}


def model_config(config: ml_collections.ConfigDict) -> gan_video.ModelConfig:
    """`config.model` -> `gan_video.ModelConfig` (validated there)."""
    return gan_video.ModelConfig(**_fields(gan_video.ModelConfig, config.model))


def train_config(config: ml_collections.ConfigDict) -> gan_video.TrainConfig:
    """`config.train` -> `gan_video.TrainConfig`."""
    return gan_video.TrainConfig(**_fields(gan_video.TrainConfig, config.train))


def save_config(config: ml_collections.ConfigDict, workdir: str) -> str:
    """Writes the run's config to `<workdir>/config.json` (read back by `sample-trivd`)."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, CONFIG_FILE)
    with open(path, "w") as f:
        f.write(config.to_json(indent=1))
    return path


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """Reads `<workdir>/config.json` written by `train_and_evaluate`."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is {workdir!r} a train-trivd run folder?")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains (resuming from `<workdir>/checkpoints` if present) and evaluates.

    Evaluation runs every `eval.every` steps and once more at the end if the last step was
    not evaluated (see `Evaluator` for the metrics and files).

    Args:
      config: an experiment ConfigDict (`configs/*.py`).
      workdir: run folder for checkpoints, metrics, samples and motion fields.

    Returns:
      A summary: `step`, `start_step`, `checkpoint` (newest checkpoint folder), `metrics`
      (file), `eval` (last eval metrics) and the written sample/motion paths.
    """
    mc, tc = model_config(config), train_config(config)
    save_config(config, workdir)
    directory = data.data_dir(config)
    gan = gan_video.make_gan(mc, tc)
    trainer_config = vt.TrainerConfig(
        workdir=workdir,
        num_steps=config.num_steps,
        seed=config.seed,
        log_every=config.log_every,
        checkpoint_every=config.checkpoint_every,
        keep_checkpoints=config.keep_checkpoints,
        eval_every=config.eval.every,
        async_checkpoints=config.async_checkpoints,
        metrics_backend=config.metrics_backend,
    )
    trainer = vt.Trainer(
        trainer_config,
        init_fn=gan.init,
        update_fn=gan.train_step,
        batch_axis=batch_axis(config),
    )
    batches = data.eval_clips(
        config, directory, max(config.eval.num_clips, config.eval.fvd_num_clips)
    )
    evaluator = Evaluator(
        gan,
        mc,
        config.eval,
        batches,
        workdir,
        standing_source=lambda: data.standing_batches(config, directory),
    )
    loader = data.train_loader(config, directory)
    try:
        result = trainer.train(iter(loader), eval_fn=evaluator)
        final_eval: dict[str, float] = {}
        if evaluator.last_step != result.step and not result.preempted:
            final_eval = evaluator(result.state, result.step)
            trainer.writer.write_scalars(
                result.step, {f"eval/{k}": v for k, v in final_eval.items()}
            )
            trainer.writer.flush()
    finally:
        trainer.close()
    summary = {
        "step": result.step,
        "start_step": result.start_step,
        "preempted": result.preempted,
        "checkpoint": os.path.join(trainer.checkpointer.directory, str(result.step)),
        "metrics": _metrics_location(workdir),
        "eval": final_eval,
        **evaluator.last_paths,
    }
    log.info("summary: %s", summary)
    return summary


def _metrics_location(workdir: str) -> str:
    """`metrics.jsonl` when the JSONL writer was used, else the TensorBoard folder."""
    jsonl = os.path.join(workdir, "metrics.jsonl")
    return jsonl if os.path.exists(jsonl) else workdir
