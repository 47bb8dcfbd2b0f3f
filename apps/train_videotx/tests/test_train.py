"""`train-videotx` end to end on the tiny config: steps, checkpoints, metrics, grids, FVD, resume."""

from __future__ import annotations

import json
import os

import numpy as np
from vtx_test_utils import gif_frames


def _metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_first_run_trains_evaluates_samples_and_checkpoints(tiny_run):
    first, workdir = tiny_run["first"], tiny_run["workdir"]
    assert (first.start_step, first.step) == (0, 2)
    rows = _metrics(workdir)
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows][:2] == [1, 2]
    assert all(np.isfinite(r["loss"]) and r["bits_per_dim"] > 0 for r in train_rows)
    evals = {r["step"]: r for r in rows if "eval/bits_per_dim" in r}
    # Held-out bits/dim of a barely trained model sits near the uniform model's 8 bits.
    assert 6.0 < evals[2]["eval/bits_per_dim"] < 10.0
    fvd_rows = [r for r in rows if "eval/fvd" in r]
    assert len(fvd_rows) == 1 and fvd_rows[0]["step"] == 2
    assert fvd_rows[0]["eval/fvd_windows"] == 2  # 11 frames, windows of 9 at 0 and 2
    assert fvd_rows[0]["eval/fvd"] > 0 and fvd_rows[0]["eval/fvd_unrolled"] > 0
    # Two draws of continuations: their spread is reported beside the mean.
    assert fvd_rows[0]["eval/fvd_trials"] == 2 and fvd_rows[0]["eval/fvd_std"] > 0
    # The grid: held-out clips on top, samples below; one GIF frame per video frame.
    gif = os.path.join(workdir, "samples", "step_0000002.gif")
    frames = gif_frames(gif)
    assert frames.shape == (11, 2 * (64 + 4), 2 * (64 + 4), 3)  # 8x8 frames shown at 64x64
    assert os.path.getsize(os.path.join(workdir, "samples", "step_0000002.mp4")) > 0


def test_resume_continues_from_the_checkpoint(tiny_run):
    resumed, workdir = tiny_run["resumed"], tiny_run["workdir"]
    assert (resumed.start_step, resumed.step) == (2, 3)
    steps = sorted(int(d) for d in os.listdir(resumed.checkpoint_dir) if d.isdigit())
    assert steps[-1] == 3 and 2 in steps
    rows = _metrics(workdir)
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]  # step 3 ran once, after 2
    # Final evaluation and samples of the resumed run (3 is not a multiple of eval.every).
    assert any(r["step"] == 3 and "eval/bits_per_dim" in r for r in rows)
    assert resumed.samples[0].endswith("step_0000003.gif")
    assert tiny_run["first"].metrics["loss"] != resumed.metrics["loss"]
    with open(os.path.join(workdir, "config.json")) as f:
        saved = json.load(f)
    assert saved["num_steps"] == 3 and os.path.isabs(saved["data"]["dir"])
