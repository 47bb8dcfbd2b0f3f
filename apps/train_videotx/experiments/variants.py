"""Small-scale Video Transformer experiments on the embedded clips (issue #15, item 1).

Trains the three section 4.1 variants, scaled down to 16x16 frames, at two model sizes and
several seeds with the same step budget, and scores each on the whole held-out split (every
frame after the 2 primes of each 16-frame held-out clip) beside the previous-frame baseline
fit on the training clips (baselines.py) and the uniform 8 bits/dim. Resumable: a run whose
workdir already holds its final evaluation is read, not retrained.

  python3 -m uv run python apps/train_videotx/experiments/variants.py            # everything
  python3 -m uv run python apps/train_videotx/experiments/variants.py \\
      --variants single_frame --sizes tiny --seeds 0,1 --steps 3000

Writes `<out>/<variant>_<size>_seed<k>/` (each a `train-videotx` workdir with its log,
metrics.jsonl, checkpoints and a sample grid), `<out>/results.json` and prints a Markdown table.

The variants at 16x16 (the paper's at 64x64 in brackets):
  spatiotemporal  window 8x16x16, s = (2, 2, 2)   [16x64x64, s = (4, 2, 2)]
  spatial         window 4x16x16, s = (1, 2, 2)   [4x64x64, s = (1, 2, 2)], sliding window
  single_frame    window 8x16x16, s = (8, 1, 1)   [16x64x64, s = (16, 1, 1)]
Sizes: tiny (d = 32, 2 + 2 layers) and small (d = 64, 4 + 4 layers); k = s throughout.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

from video_training import experiments as ex

VARIANTS = {
    "spatiotemporal": {"video_shape": (8, 16, 16), "subscale_factor": (2, 2, 2)},
    "spatial": {"video_shape": (4, 16, 16), "subscale_factor": (1, 2, 2)},
    "single_frame": {"video_shape": (8, 16, 16), "subscale_factor": (8, 1, 1)},
}
SIZES = {
    "tiny": {"hidden_size": 32, "num_layers": 2},
    "small": {"hidden_size": 64, "num_layers": 4},
}


def overrides(
    variant: str, size: str, seed: int, steps: int, workdir: str, flip: bool
) -> list[str]:
    """`train-videotx` flags of one run: `default.py:tiny` with the variant, size and budget."""
    v, m = VARIANTS[variant], SIZES[size]
    return [
        "--config=default.py:tiny",
        f"--config.workdir={workdir}",
        f"--config.seed={seed}",
        f"--config.num_steps={steps}",
        f"--config.checkpoint_every={steps}",
        f"--config.model.video_shape={v['video_shape']}",
        f"--config.model.subscale_factor={v['subscale_factor']}",
        f"--config.model.hidden_size={m['hidden_size']}",
        f"--config.model.num_layers={m['num_layers']}",
        f"--config.data.random_flip={flip}",
        # The whole held-out split, every frame after the primes of each 16-frame clip.
        f"--config.eval.every={steps}",
        "--config.eval.num_batches=0",
        "--config.eval.batch_size=2",
        "--config.eval.num_frames=16",
        f"--config.sample.every={steps}",
    ]


def run_one(variant: str, size: str, seed: int, args) -> dict:
    """Trains one run unless its workdir holds the final evaluation; returns its table row."""
    name = f"{variant}_{size}_seed{seed}" + ("" if args.flip else "_noflip")
    workdir = os.path.join(args.out, name)
    log_path = os.path.join(args.out, f"{name}.log")
    result = ex.metrics_at(workdir, args.steps)
    if "eval/bits_per_dim" not in result:
        cmd = [sys.executable, "-m", "train_videotx.main"]
        rc = ex.run_logged(
            cmd + overrides(variant, size, seed, args.steps, workdir, args.flip), log_path, name
        )
        result = ex.metrics_at(workdir, args.steps)
        if rc or "eval/bits_per_dim" not in result:
            raise RuntimeError(f"{name} failed (exit {rc}): see {log_path}")
    text = ex.read_text(log_path)
    params = re.search(r": ([\d,]+) parameters", text)
    trained = re.findall(r"from step 0 to \d+ in (\d+) s", text)
    row = {
        "run": name,
        "variant": variant,
        "size": size,
        "flip": args.flip,
        "seed": seed,
        "steps": args.steps,
        "parameters": int(params.group(1).replace(",", "")) if params else None,
        # This run's training wall time (train-videotx's summary line), else the process's.
        "wall_seconds": int(trained[-1]) if trained else ex.logged_wall(text),
        "bits_per_dim": result["eval/bits_per_dim"],
        "previous_frame": result["eval/bits_per_dim_previous_frame"],
    }
    print(
        f"[{time.strftime('%H:%M:%S')}] done {name}: {row['bits_per_dim']:.3f} bits/dim "
        f"(previous frame {row['previous_frame']:.3f})",
        flush=True,
    )
    return row


HEADER = (
    "variant",
    "size",
    "parameters",
    "flips",
    "seed",
    "steps",
    "train s",
    "held-out bits/dim",
    "previous frame",
    "model - baseline",
)


def table(rows: list[dict]) -> str:
    return ex.markdown_table(
        HEADER,
        [
            (
                r["variant"],
                r["size"],
                f"{r['parameters']:,}",
                "yes" if r.get("flip", True) else "no",
                r["seed"],
                r["steps"],
                r.get("wall_seconds"),
                f"{r['bits_per_dim']:.3f}",
                f"{r['previous_frame']:.3f}",
                f"{r['bits_per_dim'] - r['previous_frame']:+.3f}",
            )
            for r in rows
        ],
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated (default: all)")
    p.add_argument("--sizes", default=",".join(SIZES), help="comma-separated (default: all)")
    p.add_argument("--seeds", default="0,1", help="comma-separated ints (default: 0,1)")
    p.add_argument("--steps", type=int, default=3000, help="training steps per run (default: 3000)")
    p.add_argument("--jobs", type=int, default=2, help="runs at once (default: 2, one per core)")
    p.add_argument(
        "--no-flip", dest="flip", action="store_false", help="no left-right flips of training clips"
    )
    p.add_argument("--out", default="runs/experiments/videotx_variants", help="output folder")
    args = p.parse_args(argv)
    variants = ex.names_arg(args.variants, VARIANTS, "--variants")
    sizes = ex.names_arg(args.sizes, SIZES, "--sizes")
    seeds = ex.seeds_arg(args.seeds)
    if args.steps < 1:
        raise SystemExit(f"--steps: expected an integer >= 1, got {args.steps}")
    plan = [(v, s, k, args) for s in sizes for v in variants for k in seeds]
    print(table(ex.run_plan(run_one, plan, args.jobs, os.path.join(args.out, "results.json"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
