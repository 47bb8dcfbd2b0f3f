"""TrIVD-GAN-FP on BAIR robot pushing (appendix C.1): 1 conditioning frame -> 15 predicted.

Prepare the balanced split (train: first 70% of train; test: last 30% + the 256 test videos):
  prepare-video-data --source=bair_balanced --out=/data/bair_balanced     # 30-frame clips
Train (a random 16-frame window of each 30-frame clip):
  train-trivd --config=bair --config.data.data_dir=/data/bair_balanced
  train-trivd --config=bair:original --config.data.data_dir=/data/bair   # 256 test clips

Hardware and expected result:
  G ch 48, D ch 92, lr G 2e-5 / D 3e-5 (appendix C.1), batch 256 on 32+ TPUv3 cores or 8
  H100s, 1M steps. Paper: test FVD 31.8 on the balanced split (30k samples, 10 runs); on the
  original split FVD is estimated from 256 samples and is biased by about 100 (Table 4).
"""

from train_trivd.configs.common import base_config


def get_config(arg=None):
    """`arg`: None/"balanced" (30k-sample FVD) or "original" (256 test clips)."""
    variant = arg or "balanced"
    if variant not in ("balanced", "original"):
        raise ValueError(f"bair config arg must be 'balanced' or 'original', got {arg!r}")
    c = base_config()
    c.name = f"bair_{variant}"
    c.model.update(num_cond_frames=1, num_pred_frames=15, g_ch=48, d_ch=92)
    c.train.update(g_lr=2e-5, d_lr=3e-5)
    c.num_steps = 1_000_000
    c.data.update(kind="prepared", batch_size=256)
    fvd_clips = 30_000 if variant == "balanced" else 256
    c.eval.update(every=10_000, num_clips=256, fvd_num_clips=fvd_clips, batch_size=64)
    return c
