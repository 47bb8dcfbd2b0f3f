"""The `train-videotx` loop: RMSProp on slice batches, periodic bits/dim, samples, FVD, checkpoints."""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import ar_video
import ml_collections
from video_training import PeriodicHook, Trainer, TrainerConfig, count_params

from train_videotx import data as vtx_data
from train_videotx.evaluation import Evaluator
from train_videotx.model import (
    enable_compilation_cache,
    make_setup,
    save_config,
    train_prime_frames,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunSummary:
    """Where a run left its outputs and its last numbers."""

    workdir: str
    start_step: int
    step: int
    checkpoint_dir: str
    metrics: dict[str, float]
    samples: list[str]
    seconds: float


def default_workdir(config: ml_collections.ConfigDict) -> str:
    """`config.workdir`, or `runs/<config.name>`."""
    return config.workdir or os.path.join("runs", config.name)


def train(config: ml_collections.ConfigDict) -> RunSummary:
    """Trains (or resumes) `config` in its workdir; evaluates, samples and checkpoints.

    Every `eval.every` steps: held-out bits/dim. Every `sample.every` steps: a grid of
    continuations (0 disables either). Every `fvd.every` steps (when `fvd.enabled`; 0: only at
    the end): FVD on the first 16 frames and unrolled. Each enabled one also runs once after
    the last step.

    Returns:
      A `RunSummary`.
    """
    t0 = time.perf_counter()
    workdir = default_workdir(config)
    saved = ml_collections.ConfigDict(config.to_dict())  # absolute paths: sample from anywhere
    saved.workdir, saved.data.dir = os.path.abspath(workdir), os.path.abspath(config.data.dir)
    if config.compilation_cache_dir:
        saved.compilation_cache_dir = os.path.abspath(config.compilation_cache_dir)
    save_config(saved, workdir)
    enable_compilation_cache(config.compilation_cache_dir)
    data_dir = vtx_data.ensure_prepared(config.data)
    setup = make_setup(config)
    vt = setup.vt_config
    window = vt.video_shape[0]
    if (config.data.size, config.data.size) != vt.video_shape[1:]:
        raise ValueError(
            f"data.size={config.data.size} must match the model frames {vt.video_shape[1:]}"
        )
    vtx_data.check_conditioning(data_dir, config.data, vt.conditioning_size)
    stored = vtx_data.clip_length(data_dir, config.data.train_split)
    if stored < window:
        raise ValueError(f"{data_dir} holds {stored}-frame clips, shorter than the window {window}")
    step_fn = ar_video.make_train_step(
        setup.graphdef,
        setup.optimizer,
        num_prime_frames=train_prime_frames(config, window),
        num_microbatches=int(config.num_microbatches),
    )
    trainer = Trainer(
        TrainerConfig(
            workdir=workdir,
            num_steps=config.num_steps,
            seed=config.seed,
            log_every=config.log_every,
            checkpoint_every=config.checkpoint_every,
            keep_checkpoints=config.keep_checkpoints,
            metrics_backend=config.metrics_backend,
        ),
        init_fn=setup.init_fn,
        update_fn=lambda state, rng, batch: step_fn(state, batch),
    )
    log.info(
        "%s: %s parameters, window %s, subscale %s, %d slices of %s",
        config.name,
        f"{count_params(trainer.abstract_state['params']):,}",
        vt.video_shape,
        vt.subscale_factor,
        vt.num_slices,
        vt.slice_shape,
    )
    loader = vtx_data.train_loader(
        data_dir,
        config.data,
        window=window,
        num_slices=vt.num_slices,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    evaluator = Evaluator(setup, config, data_dir, workdir)
    done: dict[str, int] = {}
    latest: dict[str, float] = {}

    def periodic(name, fn, prefix):
        def hook(step, state, metrics):
            done[name] = step
            t = time.perf_counter()
            out = {f"{prefix}{k}": v for k, v in fn(state["params"], step).items()}
            log.info("step %d: %s took %.1f s %s", step, name, time.perf_counter() - t, out)
            latest.update(out)
            return out

        return hook

    evaluations = []  # (name, period, fn, metric prefix); every = 0 disables eval and samples
    if config.eval.every:
        evaluations.append(
            ("eval", config.eval.every, lambda p, s: evaluator.bits_per_dim(p), "eval/")
        )
    if config.sample.every:
        evaluations.append(("sample", config.sample.every, evaluator.samples, ""))
    if config.fvd.enabled:  # fvd.every = 0: only after the last step
        evaluations.append(("fvd", config.fvd.every, evaluator.fvd, "eval/"))
    hooks = [PeriodicHook(every, periodic(n, f, pre)) for n, every, f, pre in evaluations if every]
    try:
        result = trainer.train(iter(loader), hooks=hooks)
        for name, _, fn, prefix in evaluations:  # once more at the end, unless just done
            if done.get(name) != result.step:
                extra = periodic(name, fn, prefix)(result.step, result.state, {})
                if extra:
                    trainer.writer.write_scalars(result.step, extra)
        trainer.writer.flush()
    finally:
        trainer.close()
    return RunSummary(
        workdir=os.path.abspath(workdir),
        start_step=result.start_step,
        step=result.step,
        checkpoint_dir=trainer.checkpointer.directory,
        metrics={**result.last_metrics, **latest},
        samples=evaluator.last_samples,
        seconds=time.perf_counter() - t0,
    )
