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

`--reach` prints instead how far the clips of the `recurrent_units.py` runs (linear paths over
the `photos+video_frames` pool) move per predicted frame, against the reach of one warp of
G's finest stage: a k x k kernel on a map of half the frame size shifts by at most
(k - 1) / 2 map pixels per axis, k - 1 frame pixels (2 for the paper's k = 3, 4 for k = 5).
A field that is an expectation over the kernel's taps cannot follow motion beyond that.

  python3 -m uv run python apps/train_trivd/experiments/camera_predictability.py
  python3 -m uv run python apps/train_trivd/experiments/camera_predictability.py --reach
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from train_trivd.motion import true_flow_for_predictions
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


def reach_stats(flow: np.ndarray, warp_sizes=(3, 5), frame_per_map: int = 2) -> dict:
    """How much of a flow a single k x k warp on a coarser map can follow.

    Args:
      flow: `[..., 2]` flow in frame pixels.
      warp_sizes: odd kernel sizes k.
      frame_per_map: frame pixels per map pixel of the warping stage (2: half-size maps).

    Returns:
      `mean_length`, `p90_length` (px) and, per k, `within_k<k>`: the fraction of pixels
      whose flow has both components within `(k - 1) / 2 * frame_per_map`.
    """
    flow = np.asarray(flow, np.float64)
    if flow.ndim < 1 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be [..., 2], got shape {flow.shape}")
    for k in warp_sizes:
        if k < 1 or k % 2 == 0:
            raise ValueError(f"warp_sizes: expected odd sizes >= 1, got {k}")
    length = np.linalg.norm(flow, axis=-1)
    largest = np.abs(flow).max(axis=-1)
    stats = {"mean_length": float(length.mean()), "p90_length": float(np.percentile(length, 90))}
    for k in warp_sizes:
        stats[f"within_k{k}"] = float(np.mean(largest <= (k - 1) / 2 * frame_per_map))
    return stats


# The data settings of the `recurrent_units.py` runs, which this shipped generator shares.
REACH_RUN = "camera_linear_tiny_hybrid"


def reach_table(config, num_clips: int) -> list[str]:
    """`reach_stats` of the predicted frames' true flow on the first `num_clips` clips of each
    split of `config`'s camera-motion set (rendered under `data.root` on first use)."""
    from train_trivd import data
    from video_training.data import load_info

    m = config.model
    directory = data.data_dir(config)
    header = (
        "| split | clips | mean length px | 90th percentile px | within k=3 reach (2 px) "
        "| within k=5 reach (4 px) |"
    )
    lines = [header, "|---|---|---|---|---|---|"]
    for split in ("train", "test", "test_stills"):
        c = config.copy_and_resolve_references()
        c.data.eval_split = split
        n = min(num_clips, load_info(directory)["splits"][split]["num_examples"])
        flow = np.concatenate([b["flow"] for b in data.eval_clips(c, directory, n)])
        r = reach_stats(true_flow_for_predictions(flow, m.num_cond_frames, m.num_pred_frames))
        lines.append(
            f"| {split} | {n} | {r['mean_length']:.2f} | {r['p90_length']:.2f} | "
            f"{r['within_k3']:.0%} | {r['within_k5']:.0%} |"
        )
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--num-clips",
        type=int,
        default=32,
        help="held-out clips; with --reach, clips of each split (default: 32)",
    )
    p.add_argument(
        "--base-side",
        type=int,
        default=24,
        help="photo side in px (default: 24; not used with --reach)",
    )
    p.add_argument(
        "--reach",
        action="store_true",
        help="print the motion of the recurrent_units.py runs' clips (the data config of the "
        f"shipped {REACH_RUN}) against one warp's reach instead",
    )
    args = p.parse_args(argv)
    if args.num_clips < 1 or args.base_side < 20:
        raise SystemExit(
            f"--num-clips: expected >= 1, got {args.num_clips}; --base-side: expected >= 20 "
            f"(the 16 px view and its zoom must fit), got {args.base_side}"
        )
    if args.reach:
        from train_trivd import pretrained
        from train_trivd.train import load_run_config

        config = load_run_config(pretrained.folder(REACH_RUN))
        print("\n".join(reach_table(config, args.num_clips)))
        return 0
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
