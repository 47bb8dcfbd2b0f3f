"""Configs, sample writers, progress line, NaN guard and SIGTERM handling of the generic trainer."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal

import av
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from video_training import (
    NonFiniteLossError,
    PeriodicHook,
    ProgressLine,
    Trainer,
    TrainerConfig,
    apply_override,
    flow_grid,
    parse_config_args,
    sample_grid,
    write_gif,
    write_mp4,
)
from video_training.video_io import COND_COLOR, PRED_COLOR

CONFIG = """
import ml_collections

def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.batch_size = 64
    c.lr = 1e-4
    c.name = "base"
    c.use_ema = True
    c.shape = (16, 64, 64)
    c.model = ml_collections.ConfigDict({"width": 128})
    if arg == "tiny":
        c.batch_size = 4
        c.model.width = 8
    return c
"""


def test_config_file_with_arg_and_overrides(tmp_path):
    path = tmp_path / "x.py"
    path.write_text(CONFIG)
    argv = [f"--config={path}:tiny", "--config.batch_size=8", "--config.model.width", "16",
            "--config.lr=3e-4", "--config.use_ema=false", "--config.shape=(8, 32, 32)", "--other=1"]  # fmt: skip
    cfg, rest = parse_config_args(argv)
    assert (cfg.batch_size, cfg.model.width, cfg.lr, cfg.use_ema) == (8, 16, 3e-4, False)
    assert cfg.shape == (8, 32, 32) and cfg.name == "base"
    assert rest == ["--other=1"]
    with pytest.raises(KeyError, match="batchsize"):
        apply_override(cfg, "batchsize", "3")
    with pytest.raises(ValueError, match="config.batch_size"):
        apply_override(cfg, "batch_size", "eight")
    with pytest.raises(FileNotFoundError, match="nope.py"):
        parse_config_args(["--config=nope.py"])


def test_sample_grid_frames_conditioning_and_predictions(tmp_path):
    rng = np.random.default_rng(0)
    videos = rng.uniform(-1, 1, (3, 5, 8, 10, 3)).astype(np.float32)
    grid = sample_grid(videos, num_cond=2, columns=2, border=1)
    assert grid.shape == (5, 2 * 10, 2 * 12, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[0, 0, 0], COND_COLOR)
    np.testing.assert_array_equal(grid[1, 0, 12], COND_COLOR)
    np.testing.assert_array_equal(grid[2, 0, 0], PRED_COLOR)
    np.testing.assert_array_equal(grid[4, 10, 0], PRED_COLOR)  # third video, second row
    expected = np.clip(np.round((videos[1, 3] + 1) * 127.5), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(grid[3, 1:9, 13:23], expected)
    assert grid[:, 10:, 12:].max() == 0  # empty cell
    # Small frames are enlarged (nearest) to at least min_size before tiling.
    big = sample_grid(videos, num_cond=2, columns=2, border=1, min_size=20)
    assert big.shape == (5, 2 * (24 + 2), 2 * (30 + 2), 3)  # factor ceil(20 / 8) = 3
    np.testing.assert_array_equal(big[3, 1:25:3, 33:63:3], expected)
    np.testing.assert_array_equal(big[3, 3, 35], big[3, 1, 33])  # a 3x3 block per pixel
    assert sample_grid(videos, 2, border=1, min_size=8).shape == grid.shape  # already large

    gif = write_gif(str(tmp_path / "s.gif"), grid)
    with Image.open(gif) as im:
        assert im.n_frames == 5 and im.size == (24, 20)
    mp4 = write_mp4(str(tmp_path / "s.mp4"), grid)
    with av.open(mp4) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (20, 24, 3)

    flows = rng.normal(size=(2, 4, 8, 10, 2))
    seen = []

    def to_rgb(f):
        seen.append(f.shape)
        return np.concatenate([np.tanh(f), np.zeros(f.shape[:-1] + (1,))], axis=-1)

    fg = flow_grid(flows, to_rgb, border=1)
    assert seen == [(2, 4, 8, 10, 2)] and fg.shape == (4, 10, 24, 3)
    with pytest.raises(ValueError, match="flow_to_rgb"):
        flow_grid(flows, lambda f: f)


def test_progress_line_reports_rate_and_eta():
    out = io.StringIO()
    p = ProgressLine(100, start_step=20, stream=out)
    line = p.update(30, {"loss": 0.5, "d_loss": np.float32(1.25)})
    assert line.startswith("step 30/100 | ") and "steps/s | ETA " in line
    assert "loss 0.5" in line and "d_loss 1.25" in line
    assert out.getvalue().strip() == line


def _linear_fns(nan_at=None):
    """A linear-regression state; `nan_at`: the update producing that step number yields NaN."""

    def init_fn(rng):
        return {"w": jax.random.normal(rng, (4,)), "step": jnp.zeros((), jnp.int32)}

    def update_fn(state, rng, batch):
        x = batch["x"] + 0.01 * jax.random.normal(rng, batch["x"].shape)
        loss_fn = lambda w: jnp.mean(jnp.square(x @ w - batch["y"]))
        loss, g = jax.value_and_grad(loss_fn)(state["w"])
        step = state["step"] + 1
        if nan_at is not None:
            loss = jnp.where(step == nan_at, jnp.nan, loss)
            g = jnp.where(step == nan_at, jnp.nan, g)
        return {"w": state["w"] - 0.1 * g, "step": step}, {"loss": loss}

    return init_fn, update_fn


def _batches(seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=4).astype(np.float32)
    while True:
        x = rng.normal(size=(8, 4)).astype(np.float32)
        yield {"x": x, "y": x @ w}


def test_nan_guard_names_step_and_keeps_last_good_checkpoint(tmp_path):
    init_fn, update_fn = _linear_fns(nan_at=7)
    cfg = TrainerConfig(
        workdir=str(tmp_path),
        num_steps=10,
        checkpoint_every=3,
        log_every=100,
        metrics_backend="jsonl",
    )
    trainer = Trainer(cfg, init_fn=init_fn, update_fn=update_fn)
    with pytest.raises(
        NonFiniteLossError, match=r"loss 'loss' = nan at step 7.*last good checkpoint \(step 6\)"
    ) as e:
        trainer.train(_batches())
    trainer.close()
    assert e.value.step == 7 and e.value.last_good_step == 6
    assert trainer.checkpointer.manager.all_steps() == [3, 6]
    # The kept checkpoint is finite and restorable.
    again = Trainer(cfg, init_fn=init_fn, update_fn=update_fn)
    state, step = again.init_or_restore()
    again.close()
    assert step == 6 and np.all(np.isfinite(np.asarray(state["w"])))


def test_nan_guard_catches_poisoned_state_between_checks(tmp_path):
    init_fn, update_fn = _linear_fns(nan_at=2)
    cfg = TrainerConfig(
        workdir=str(tmp_path),
        num_steps=4,
        checkpoint_every=3,
        check_finite_every=0,
        metrics_backend="jsonl",
    )
    trainer = Trainer(cfg, init_fn=init_fn, update_fn=update_fn)
    with pytest.raises(NonFiniteLossError, match="step 3"):
        trainer.train(_batches())  # step 2's NaN went unchecked; step 3's save refuses it
    trainer.close()
    assert trainer.checkpointer.manager.all_steps() == []


def test_sigterm_saves_and_stops_then_resumes(tmp_path):
    init_fn, update_fn = _linear_fns()
    cfg = TrainerConfig(
        workdir=str(tmp_path),
        num_steps=20,
        checkpoint_every=100,
        log_every=100,
        metrics_backend="jsonl",
    )

    def preempt(step, state, metrics):
        if step == 5:
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    trainer = Trainer(cfg, init_fn=init_fn, update_fn=update_fn)
    result = trainer.train(_batches(), hooks=[PeriodicHook(1, preempt)])
    trainer.close()
    assert signal.getsignal(signal.SIGTERM) == previous  # handler released
    assert result.preempted and result.step == 5
    assert trainer.checkpointer.manager.all_steps() == [5]
    evals = []

    def eval_fn(state, step):
        evals.append(step)
        return {"w_norm": float(jnp.linalg.norm(state["w"]))}

    cfg2 = dataclasses.replace(cfg, eval_every=5)
    resumed = Trainer(cfg2, init_fn=init_fn, update_fn=update_fn)
    result2 = resumed.train(_batches(), eval_fn=eval_fn)
    resumed.close()
    assert result2.start_step == 5 and result2.step == 20 and not result2.preempted
    assert result2.last_metrics["loss"] < 0.1 * result.last_metrics["loss"]
    assert evals == [10, 15, 20]
    with open(tmp_path / "metrics.jsonl") as f:
        written = [json.loads(line) for line in f]
    assert [r["step"] for r in written if "eval/w_norm" in r] == [10, 15, 20]
    assert any(r["step"] == 20 and "loss" in r for r in written)
