"""TrIVD-GAN-FP trained on UCF-101 (appendix C.2): 5 conditioning frames -> 11 predicted, 64x64.

Prepare (tfds `ucf101`, TrIVD preprocessing: smallest side to 64, random 64x64 crop at read):
  prepare-video-data --source=ucf101 --num_frames=16 --size=64 --out=/data/ucf101_trivd
Train:
  train-trivd --config=ucf101 --config.data.data_dir=/data/ucf101_trivd

Hardware and expected result:
  G and D ch 92, Kinetics hyper-parameters, batch 512 on 32+ TPUv3 cores (or 8+ H100s),
  1M steps. Paper: test FVD 55.2 +- 0.64 (appendix C.2).
"""

from train_trivd.configs.common import base_config


def get_config(arg=None):
    """`arg`: None (this config has one variant; `ucf101:anything` is an error)."""
    if arg is not None:
        raise ValueError(f"ucf101 config takes no arg (expected None), got {arg!r}")
    c = base_config()
    c.name = "ucf101"
    c.model.update(num_cond_frames=5, num_pred_frames=11, g_ch=92, d_ch=92)
    c.num_steps = 1_000_000
    c.data.update(kind="prepared", batch_size=512)
    c.eval.update(every=10_000, num_clips=256, fvd_num_clips=3_783, batch_size=64)
    return c
