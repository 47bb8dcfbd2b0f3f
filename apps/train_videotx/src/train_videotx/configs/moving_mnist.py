"""Moving MNIST (appendix A.1): 20-frame 64x64 sequences, primed on 10 frames, 10 predicted.

  prepare-video-data --source=moving_mnist --out=runs/data/moving_mnist   # [tfds] extra
  uv run train-videotx --config=moving_mnist.py            # spatiotemporal base
  uv run train-videotx --config=moving_mnist.py:single_frame

Frames are grey (repeated to RGB). The 16-frame window slides over the 20 frames; the window of
frames 0-15 holds the 10 primes (stride 6 to reach frame 19). Hardware: one H100 / TPU v3-8.
Expected: the paper reports nats/frame with a "deterministic" grey-level loss (Table 2:
90.0 spatiotemporal, 86.2 single frame); this app trains the standard 4-bit channel model and
reports bits/dim instead, so the numbers are not directly comparable. FVD is off (I3D features
of digits are not informative).
"""

from train_videotx.configs import common


def get_config(arg=None):
    """`arg`: None/"spatiotemporal", "spatial", "single_frame" or "tiny"."""
    c = common.base_config()
    c.name = f"moving_mnist_{arg or 'spatiotemporal'}"
    c.data.source = "moving_mnist"
    c.data.dir = "runs/data/moving_mnist"
    c.data.num_frames, c.data.size = 20, 64
    common.priming(c, train=10, bits=10, continuations=10)
    c.num_steps = 300_000
    c.sample.num_frames = 20
    c.eval.num_frames = 20  # bits/dim of the 10 predicted frames
    c.sample.window_stride = 6
    c.fvd.enabled = False
    if arg in (None, "spatiotemporal", "spatial", "single_frame"):
        c.model.variant = arg or "spatiotemporal"
    elif arg == "tiny":
        common.tiny_model(c, video_shape=(16, 16, 16))
        common.cpu_run(c)
        c.data.dir, c.data.size = "runs/data/moving_mnist_16", 16
    else:
        raise ValueError(
            f"arg must be None, 'spatiotemporal', 'spatial', 'single_frame' or 'tiny', got {arg!r}"
        )
    return c
