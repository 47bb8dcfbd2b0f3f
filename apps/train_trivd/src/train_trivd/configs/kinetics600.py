"""TrIVD-GAN-FP on Kinetics-600 at 64x64: 5 conditioning frames -> 11 predicted (section 4).

Prepare the clips once (a folder of videos listed in a CSV `path,label,split`):
  prepare-video-data --source=folder --root=/data/k600 --csv=/data/k600/clips.csv \
      --preprocess=trivd --num_frames=16 --size=64 --out=/data/k600_trivd
Train:
  train-trivd --config=kinetics600 --config.data.data_dir=/data/k600_trivd
  train-trivd --config=kinetics600:medium --config.data.data_dir=...   # ch 48

Hardware and expected result:
  large (default, the paper's final TrIVD-GAN-FP: TSRU_p + DVD-GAN-FP_stronger, G ch 120):
    batch 512 on 32-512 TPUv3 cores (or 8+ H100s), 700k steps; paper: test FVD 25.74 +- 0.66,
    IS 12.54 +- 0.06 (Table 3).
  medium (ch 48): same hardware class, 1M steps; paper Table 1 (validation, time budget):
    FVD 39.3, IS 11.8 with DVD-GAN-FP_stronger; Table 2 (500k steps, _faster): 43.7.
"""

from train_trivd.configs.common import base_config


def get_config(arg=None):
    """`arg`: None/"large" (ch 120, 700k steps) or "medium" (ch 48, 1M steps)."""
    variant = arg or "large"
    if variant not in ("large", "medium"):
        raise ValueError(f"kinetics600 config arg must be 'large' or 'medium', got {arg!r}")
    c = base_config()
    c.name = f"kinetics600_{variant}"
    c.model.update(num_cond_frames=5, num_pred_frames=11)
    if variant == "large":
        c.model.update(g_ch=120, d_ch=120)
        c.num_steps = 700_000
    else:
        c.num_steps = 1_000_000
    c.data.update(kind="prepared", batch_size=512)
    c.eval.update(every=10_000, num_clips=256, fvd_num_clips=50_000, batch_size=64)
    return c
