"""How predictable the camera-motion clips are, without any model (issue #15, item 2).

For the held-out clips of `recurrent_units.py` (16x16, 2 conditioning -> 3 predicted frames,
photos at 24 px, zoom 0.9-1.1) and each trajectory kind, prints three predictors' errors
against the true continuation:

  zero flow   the EPE of predicting no motion (what `eval/epe_zero_flow` reports)
  copy last   the MSE of repeating the last conditioning frame (`eval/mse_copy_last`)
  same flow   the MSE of warping the last conditioning frame, once per predicted frame, with
              the TRUE flow between the two conditioning frames: an oracle of "the motion
              continues", the best a model that extrapolates the seen motion could do

If "same flow" is not far below "copy last", the motion after the conditioning frames is not
determined by them, and no model can beat copying by learning it.

  python3 -m uv run python apps/train_trivd/experiments/camera_predictability.py
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from video_training.data.embedded import TRAJECTORIES, CameraMotionSource, bilinear_sample


def errors(kind: str, *, num_clips: int, base_side: int, cond: int = 2, pred: int = 3) -> dict:
    """Mean zero-flow EPE and copy-last / same-flow MSE (frames in [0, 1]) over the test split."""
    source = CameraMotionSource(
        num_frames=cond + pred,
        size=16,
        num_train=1,
        num_test=num_clips,
        base_side=base_side,
        zoom_range=(0.9, 1.1),
        trajectory=kind,
    )
    ys, xs = np.mgrid[0:16, 0:16].astype(np.float64)
    epe, copy, same = [], [], []
    for ex in source.examples("test"):
        video = ex["video"].astype(np.float64) / 255
        flow = ex["flow"].astype(np.float64)  # [T - 1, H, W, (dx, dy)] backward flow
        epe.append(np.linalg.norm(flow[cond - 1 :], axis=-1).mean())
        seen = flow[cond - 2]  # the motion between the last two conditioning frames
        frame = video[cond - 1]
        for t in range(cond, cond + pred):
            copy.append(np.mean((video[cond - 1] - video[t]) ** 2))
            frame = bilinear_sample(frame, xs + seen[..., 0], ys + seen[..., 1])
            same.append(np.mean((frame - video[t]) ** 2))
    return {
        "epe_zero_flow": np.mean(epe),
        "mse_copy_last": np.mean(copy),
        "mse_same_flow": np.mean(same),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--num-clips", type=int, default=32, help="held-out clips (default: 32)")
    p.add_argument("--base-side", type=int, default=24, help="photo side in px (default: 24)")
    args = p.parse_args(argv)
    if args.num_clips < 1 or args.base_side < 20:
        raise SystemExit(
            f"--num-clips: expected >= 1, got {args.num_clips}; --base-side: expected >= 20 "
            f"(the 16 px view and its zoom must fit), got {args.base_side}"
        )
    print("| trajectory | zero-flow EPE | copy-last MSE | same-flow (oracle) MSE |")
    print("|---|---|---|---|")
    for kind in TRAJECTORIES:
        e = errors(kind, num_clips=args.num_clips, base_side=args.base_side)
        print(
            f"| {kind} | {e['epe_zero_flow']:.3f} | {e['mse_copy_last']:.5f} | "
            f"{e['mse_same_flow']:.5f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
