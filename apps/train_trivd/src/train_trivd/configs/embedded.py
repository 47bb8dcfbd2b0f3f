"""TrIVD-GAN-FP on the embedded procedural camera-motion data (true flow stored with each clip).

Real photographs (scikit-image) panned and zoomed along smooth random trajectories; train and
test use disjoint photos. Because the exact backward flow is known, evaluation reports the
end-point error (EPE) between the generator's motion field (TSRU warps combined across
resolutions) and the true flow, next to the EPE of a zero flow as a baseline.

Commands:
  train-trivd                                   # == --config=embedded:tiny, a CPU smoke run
  train-trivd --config=embedded                 # 64x64, 5 -> 11 frames, ch 48
  train-trivd --config=embedded:tiny --config.eval.fvd_num_clips=4   # tiny run with FVD/IS

Hardware and expected result:
  tiny: 2 CPU cores, 16x16, 2 -> 3 frames, ch 4, 40 steps. Measured from a fresh checkout: 2 min
    11 s wall on 2 cores (5 min 8 s while other jobs loaded the machine to 7-11); about 2
    CPU-minutes of that is
    XLA compiling the init, train step and samplers (cached in runs/jax_cache, so a resumed
    run starts in seconds). Writes a checkpoint, metrics.jsonl (losses, eval/epe,
    eval/epe_zero_flow), a sample GIF and a motion-field PNG under runs/embedded_tiny. It is
    a smoke test: 40 steps do not learn motion, so eval/epe stays near eval/epe_zero_flow.
    FVD/IS are off (I3D costs ~1 s per clip on a CPU and needs >= 9 frames: tiny clips are
    repeated in time to 16).
  default: one GPU (H100) or a TPU v3-8, batch 64, 100k steps (not yet run: no accelerator
    was available when this was written). The motion field should beat the zero-flow EPE
    once the TSRUs learn to warp; there is no published number (this dataset is ours).
"""

from train_trivd.configs.common import base_config


def get_config(arg=None):
    """`arg`: None/"default" (64x64 GPU run) or "tiny" (CPU smoke run)."""
    variant = arg or "default"
    if variant not in ("default", "tiny"):
        raise ValueError(f"embedded config arg must be 'default' or 'tiny', got {arg!r}")
    c = base_config()
    c.name = f"embedded_{variant}"
    c.data.kind = "camera_motion"
    c.data.batch_size = 64
    c.data.num_train = 192  # a fresh batch of 64 for each of the 2 D updates, and room to shuffle
    c.num_steps = 100_000
    c.log_every = 100
    c.checkpoint_every = 2_000
    c.train.ema_start = 5_000
    c.eval.every = 5_000
    c.eval.num_clips = 32
    c.eval.fvd_num_clips = 32
    c.eval.batch_size = 32
    if variant == "tiny":
        c.model.update(
            resolution=16,
            num_cond_frames=2,
            num_pred_frames=3,
            g_ch=4,
            d_ch=4,
            z_dim=8,
            class_dim=8,
            num_sampled_frames=2,
        )
        # Photos at 24 px keep the pans at ~5 px per frame (max ~8), inside the 14 px a
        # 3-stage 3x3 warp can express at 16x16.
        c.data.update(
            batch_size=4,
            num_train=16,
            num_test=8,
            camera_base_side=24,
            camera_zoom_range=(0.9, 1.1),
        )
        c.train.update(ema_start=10, ema_decay=0.9)
        c.num_steps = 40
        c.log_every = 10
        c.checkpoint_every = 20
        c.async_checkpoints = False
        c.metrics_backend = "jsonl"
        c.xla_fast_compile = True
        c.eval.update(
            every=0,
            batch_size=4,
            num_clips=4,
            num_samples=4,
            standing_batches=2,
            fvd_num_clips=0,
            fvd_batch_size=4,
        )
    return c
