"""BAIR Robot Pushing (section 4.2): 30-frame 64x64 videos, primed on the first frame.

  prepare-video-data --source=bair --out=runs/data/bair     # needs the [tfds] extra, downloads
  uv run train-videotx --config=bair.py                      # base, spatiotemporal subscaling
  uv run train-videotx --config=bair.py:large                # d = 2048, 16 heads in layers 5-8
  uv run train-videotx --config=bair.py:single_frame         # or :spatial

Hardware: base on one H100 / a TPU v3-8 (batch of 64 slices); large needs a pod slice or
several GPUs (`--config.batch_size` scales the global batch over the `data` mesh axis).
Expected (paper Table 1a, 300K steps base / 1M large): held-out bits/dim 1.53 (spatiotemporal
base), 1.35 (large); FVD of the first 16 frames 106 / 94, unrolled average over the 15
16-frame windows of 30 frames 106 / 96, sampling at temperature 0.9.
`bair.py:tiny` runs the same pipeline with the tiny model on a CPU (data must be prepared).

Action-conditioned (section 3.2, appendix A): `bair.py:action` is the base spatiotemporal
model with BAIR's recorded robot actions (`action [30, 4]`, kept by the data preparation)
concatenated to the encoder input, one row per frame; `bair.py:action_tiny` the same on the
CPU model. The paper reports no action-conditioned BAIR numbers (its Table 1a is
unconditioned); frame f is paired with action f - 1, the command that moved the arm into it
(`data.conditioning_shift`, see `common.py`); every position of a slice sees the action of
its own frame, in every slice, and the continuations used for FVD and the sample grids run
under the held-out clip's own actions.
"""

from train_videotx.configs import common


def get_config(arg=None):
    """`arg`: None/"spatiotemporal", "spatial", "single_frame", "large", "tiny", "action" or
    "action_tiny"."""
    c = common.base_config()
    c.name = f"bair_{arg or 'spatiotemporal'}"
    c.data.source = "bair"
    c.data.dir = "runs/data/bair"
    c.data.num_frames, c.data.size = 30, 64
    common.priming(c, train=1, bits=1, continuations=1)  # Table 1a: all primed on frame 1
    c.num_steps = 300_000
    c.fvd.every = 100_000
    c.sample.num_frames = 30
    c.fvd.num_videos = 256  # the 256 test videos
    if arg in ("action", "action_tiny"):
        c.data.conditioning_key, c.model.conditioning_size = "action", 4
    if arg in (None, "spatiotemporal", "spatial", "single_frame", "action"):
        c.model.variant = "spatiotemporal" if arg in (None, "action") else arg
    elif arg == "large":
        c.model.size = "large"
        c.num_steps = 1_000_000
    elif arg in ("tiny", "action_tiny"):
        common.tiny_model(c, video_shape=(8, 16, 16))
        common.cpu_run(c)
        c.data.dir, c.data.size = "runs/data/bair_16", 16
        c.sample.num_frames = 16
    else:
        raise ValueError(
            "arg must be None, 'spatiotemporal', 'spatial', 'single_frame', 'large', 'tiny', "
            f"'action' or 'action_tiny', got {arg!r}"
        )
    return c
