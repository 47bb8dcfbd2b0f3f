"""TSRU_p against ConvGRU on the embedded camera-motion clips (issue #15, item 2; paper Table 2).

Trains `embedded:tiny` (16x16, 2 conditioning -> 3 predicted frames) with each recurrent unit,
the same step budget and seeds, then evaluates each on the held-out photos' clips: the motion
field's end-point error against the true flow (TSRU_p only: ConvGRU has no motion field)
beside the zero-flow EPE, and the prediction error (MSE, PSNR) of the truncated samples
against the true continuation beside copying the last conditioning frame. Then the same
evaluation of each run's final checkpoint on its first 8 training clips and, with
`--set data.camera_photo_pool=photos+video_frames`, on the 32 "test_stills" clips (unseen frames
of the pool's videos), in `<workdir>/extra_evaluations.json`. `--standing-batches N` evaluates
each final checkpoint again on every split with N batches for G's standing statistics
(`embedded:tiny`'s 2 make some checkpoints' numbers noisy) and tables those. Resumable: a run
whose workdir holds its final evaluation is read, not retrained.

  python3 -m uv run python apps/train_trivd/experiments/recurrent_units.py
  python3 -m uv run python apps/train_trivd/experiments/recurrent_units.py \\
      --units tsru_p --seeds 0 --steps 500
  python3 -m uv run python apps/train_trivd/experiments/recurrent_units.py \\
      --evaluate camera_linear_tiny      # or a run folder: only the extra evaluations
  python3 -m uv run python apps/train_trivd/experiments/recurrent_units.py \\
      --evaluate RUN_FOLDER --standing-batches 25   # every split, 25 standing batches

Writes `<out>/<unit>_seed<k>/` (each a `train-trivd` workdir with its log, metrics.jsonl,
checkpoint, sample grids and motion-field images), `<out>/results.json` and prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from train_trivd.pretrained import EXTRA_EVALUATIONS_FILE, split_prefix
from video_training import experiments as ex

UNITS = ("tsru_p", "convgru")
# "epe_finest1": the motion field of G's finest warping stage alone (`Evaluator`'s
# epe_finest<n>); "epe" combines every stage (`eval.motion_levels` = 0).
FIELDS = ("epe", "epe_finest1", "epe_zero_flow", "mse", "mse_copy_last", "psnr", "psnr_copy_last")


# Training clips: 256 trajectories over the 6 training photos (16 in `embedded:tiny`).
NUM_TRAIN = 256
# Widths: G's recurrent units start from the encoder's features of the conditioning frames,
# the finest at 8x8 from D's first block (d_ch channels). With `embedded:tiny`'s d_ch=4 that
# is 8 x 8 x 4 = 256 numbers for a 16 x 16 x 3 = 768-number frame, too few to reproduce it.
G_CH, D_CH = 8, 16


def overrides(
    unit: str, seed: int, steps: int, workdir: str, trajectory: str, extra: list[str] = ()
) -> list[str]:
    """`train-trivd` flags of one run: `embedded:tiny` with the unit, the step budget and the
    camera trajectories (`linear`: constant velocity, predictable from the two conditioning
    frames; `smooth`: turning within the clip, as `embedded:tiny` renders by default)."""
    return [
        "--config=embedded:tiny",
        f"--workdir={workdir}",
        f"--config.seed={seed}",
        f"--config.model.recurrent_unit={unit}",
        f"--config.num_steps={steps}",
        f"--config.checkpoint_every={steps}",
        f"--config.log_every={max(steps // 20, 1)}",
        # Optimised XLA code: the longer run repays the extra compile time.
        "--config.xla_fast_compile=False",
        "--config.train.ema_decay=0.99",
        f"--config.data.camera_trajectory={trajectory}",
        f"--config.data.num_train={NUM_TRAIN}",
        f"--config.model.g_ch={G_CH}",
        f"--config.model.d_ch={D_CH}",
        "--config.eval.num_clips=8",  # every held-out clip (data.num_test = 8)
        "--config.eval.num_samples=8",
        *extra,  # --set flags: later flags win
    ]


def add_set_flag(p: argparse.ArgumentParser) -> None:
    """`--set FIELD=VALUE` (repeatable): an extra config override for every run."""
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="an extra config override for every run, e.g. --set train.d_lr=2e-4 (repeatable;"
        " use a separate --out per setting)",
    )


def set_overrides(items: list[str]) -> list[str]:
    """`--set` values as `train-trivd` flags (`--config.FIELD=VALUE`), checked for the form."""
    for item in items:
        if "=" not in item or item.startswith("-"):
            raise SystemExit(f"--set: expected FIELD=VALUE, got {item!r}")
    return [f"--config.{item}" for item in items]


# Evaluations of a finished run beside the held-out photos' ("test"): the first 8 training
# clips (what the model fits) and, with the photo pool, the 32 "test_stills" clips (unseen
# frames of the pool's videos: held out from the training images' own distribution).
EXTRA_SPLITS = {"train": 8, "test_stills": 32}
EXTRA_FILE = EXTRA_EVALUATIONS_FILE


def standing_file(standing_batches: int) -> str:
    """Where `evaluate_run(..., standing_batches=N)` caches its evaluations (the run's own
    extra evaluations, at the config's count, stay in `EXTRA_FILE`)."""
    return f"evaluations_standing{standing_batches}.json"


def extra_splits(config) -> list[str]:
    """The `EXTRA_SPLITS` a run's config has (test_stills only with the photo pool)."""
    from video_training.data.embedded import camera_motion_splits

    splits = camera_motion_splits(config.data.get("camera_photo_pool", "photos"))
    return [s for s in EXTRA_SPLITS if s in splits]


def evaluate_split(
    gan, mc, config, state, step: int, split: str, folder: str, standing_batches=None
) -> dict:
    """`Evaluator` (standing statistics of the training clips, truncated latents) on the first
    `EXTRA_SPLITS[split]` clips of `split` (of "test", the held-out photos, the run's own
    `eval.num_clips`, as its training-time evaluation), with `standing_batches`
    batches for G's standing statistics (None: the config's); writes its grids under `folder`."""
    from train_trivd import data
    from train_trivd.evaluate import Evaluator

    c = config.copy_and_resolve_references()
    c.data.eval_split = split
    if standing_batches is not None:
        c.eval.standing_batches = standing_batches
    directory = data.data_dir(c)
    clips = data.eval_clips(c, directory, EXTRA_SPLITS.get(split, c.eval.num_clips))
    evaluator = Evaluator(
        gan,
        mc,
        c.eval,
        clips,
        folder,
        standing_source=lambda: data.standing_batches(c, directory),
    )
    return {k: float(v) for k, v in evaluator(state, step).items()}


def evaluate_run(run: str, standing_batches: int | None = None) -> dict:
    """Evaluates a run's newest checkpoint (a `train-trivd` workdir) or a shipped generator (a
    name of `train_trivd.pretrained`) on `extra_splits`; returns `{split: metrics}`, cached in
    `<workdir>/extra_evaluations.json` (runs/experiments/shipped_<name>/ for a shipped one).

    With `standing_batches=N`: on the held-out photos ("test") too, with N batches for G's
    standing statistics instead of the config's, cached in `<workdir>/standing_file(N)`.
    """
    import gan_video
    from train_trivd import pretrained
    from train_trivd.main import configure_jax
    from train_trivd.sample import restore_state
    from train_trivd.train import load_run_config, model_config, train_config

    shipped = not os.path.isdir(run)
    folder = pretrained.folder(run) if shipped else run
    out = os.path.join("runs/experiments", f"shipped_{run}") if shipped else run
    if standing_batches is not None and standing_batches < 1:
        raise ValueError(f"standing_batches: expected an integer >= 1, got {standing_batches}")
    name = EXTRA_FILE if standing_batches is None else standing_file(standing_batches)
    path = os.path.join(out, name)
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    config = load_run_config(folder)
    splits = extra_splits(config) if standing_batches is None else ["test", *extra_splits(config)]
    todo = [s for s in splits if s not in results]
    if todo:
        configure_jax(config)
        mc = model_config(config)
        gan = gan_video.make_gan(mc, train_config(config))
        if shipped:
            state, step = pretrained.load_state(gan, folder)
        else:
            state, step = restore_state(gan, folder)
        suffix = "" if standing_batches is None else f"_standing{standing_batches}"
        for split in todo:
            folder_out = os.path.join(out, f"eval_{split}{suffix}")
            metrics = evaluate_split(
                gan, mc, config, state, step, split, folder_out, standing_batches
            )
            results[split] = {"step": step, **metrics}
            if standing_batches is not None:
                results[split]["standing_batches"] = standing_batches
        os.makedirs(out, exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump(results, f, indent=1)
        os.replace(path + ".tmp", path)
    return results


def extra_columns(row: dict, results: dict) -> None:
    """Adds `<split>_<field>` entries (`train_clips_*` for "train") of `results` to `row`."""
    for split, metrics in results.items():
        row.update({f"{split_prefix(split)}_{k}": metrics.get(k) for k in FIELDS})


def run_one(unit: str, seed: int, args) -> dict:
    """Trains one run unless its workdir holds the final evaluation; returns its table row."""
    name = f"{unit}_seed{seed}"
    workdir = os.path.join(args.out, name)
    log_path = os.path.join(args.out, f"{name}.log")
    result = ex.metrics_at(workdir, args.steps)
    if "eval/mse" not in result:
        cmd = [
            sys.executable,
            "-m",
            "train_trivd.main",
            *overrides(unit, seed, args.steps, workdir, args.trajectory, args.set),
        ]
        rc = ex.run_logged(cmd, log_path, name)
        result = ex.metrics_at(workdir, args.steps)
        if rc or "eval/mse" not in result:
            raise RuntimeError(f"{name} failed (exit {rc}): see {log_path}")
    row = {"run": name, "unit": unit, "seed": seed, "steps": args.steps}
    row["trajectory"] = args.trajectory
    row["overrides"] = list(args.set)
    row["wall_seconds"] = ex.logged_wall(ex.read_text(log_path))
    row.update({k: result.get(f"eval/{k}") for k in FIELDS})
    with open(os.path.join(workdir, "config.json")) as f:
        row["standing_batches"] = json.load(f)["eval"]["standing_batches"]
    # In a process of its own, as the training (this script's threads share one interpreter).
    cmd = [sys.executable, os.path.abspath(__file__), "--evaluate", workdir]
    if ex.run_logged(cmd, os.path.join(args.out, f"{name}_extra.log"), name):
        raise RuntimeError(f"{name}: evaluation failed: see {name}_extra.log")
    with open(os.path.join(workdir, EXTRA_FILE)) as f:
        extra_columns(row, json.load(f))
    if args.standing_batches is not None:
        # Every split again with that many standing batches: these numbers replace the above.
        n = args.standing_batches
        cmd += ["--standing-batches", str(n)]
        if ex.run_logged(cmd, os.path.join(args.out, f"{name}_standing{n}.log"), name):
            raise RuntimeError(f"{name}: evaluation failed: see {name}_standing{n}.log")
        with open(os.path.join(workdir, standing_file(n))) as f:
            results = json.load(f)
        test = results.pop("test")
        row.update({k: test.get(k) for k in FIELDS})
        extra_columns(row, results)
        row["standing_batches"] = n
    print(f"[{time.strftime('%H:%M:%S')}] done {name}: {row}", flush=True)
    return row


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4g}"


HEADER = ("unit", "seed", "steps", "wall s", "standing", "EPE", "EPE finest stage")
HEADER += ("zero-flow EPE", "MSE")
HEADER += ("copy-last MSE", "PSNR dB", "copy-last PSNR dB")


EXTRA_HEADER = ("unit", "seed", "steps", "clips", "standing", "EPE", "EPE finest stage")
EXTRA_HEADER += ("zero-flow EPE", "MSE")
EXTRA_HEADER += ("copy-last MSE", "PSNR dB", "copy-last PSNR dB")


def table(rows: list[dict]) -> str:
    """The held-out photos' table, then (rows that have them) the extra splits' table."""
    text = ex.markdown_table(
        HEADER,
        [
            (
                r["unit"],
                r["seed"],
                r["steps"],
                r["wall_seconds"],
                r.get("standing_batches", "-"),
                *(_fmt(r.get(k)) for k in FIELDS),
            )
            for r in rows
        ],
    )
    extra = []
    for r in rows:
        for prefix, clips in (("train_clips", "training (8)"), ("test_stills", "test_stills (32)")):
            if r.get(f"{prefix}_mse") is not None:
                cells = (_fmt(r.get(f"{prefix}_{k}")) for k in FIELDS)
                standing = r.get("standing_batches", "-")
                extra.append((r["unit"], r["seed"], r["steps"], clips, standing, *cells))
    if extra:
        text += "\n\n" + ex.markdown_table(EXTRA_HEADER, extra)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--units", default=",".join(UNITS), help="comma-separated (default: tsru_p,convgru)"
    )
    p.add_argument("--seeds", default="0,1", help="comma-separated ints (default: 0,1)")
    p.add_argument("--steps", type=int, default=2000, help="training steps per run (default: 2000)")
    p.add_argument("--jobs", type=int, default=2, help="runs at once (default: 2, one per core)")
    p.add_argument(
        "--trajectory",
        default="linear",
        choices=("linear", "smooth"),
        help="camera paths of the clips (default: linear, predictable from the conditioning"
        " frames; smooth: they turn within a clip)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="output folder (default: runs/experiments/trivd_units_<trajectory>)",
    )
    add_set_flag(p)
    p.add_argument(
        "--evaluate",
        metavar="RUN",
        help="only evaluate RUN (a train-trivd workdir, its newest checkpoint, or the name of a"
        " shipped generator) on the first 8 training clips and, with the photo pool, the 32"
        " test_stills clips; print the metrics",
    )
    p.add_argument(
        "--standing-batches",
        type=int,
        default=None,
        metavar="N",
        help="evaluate each run's final checkpoint again, on every split (the held-out photos"
        " too), with N batches of training clips for G's standing statistics instead of the"
        " config's (embedded:tiny has 2: noisy); the table shows those numbers",
    )
    args = p.parse_args(argv)
    if args.standing_batches is not None and args.standing_batches < 1:
        raise SystemExit(
            f"--standing-batches: expected an integer >= 1, got {args.standing_batches}"
        )
    if args.evaluate:
        print(json.dumps(evaluate_run(args.evaluate, args.standing_batches), indent=1))
        return 0
    args.set = set_overrides(args.set)
    args.out = args.out or f"runs/experiments/trivd_units_{args.trajectory}"
    units = ex.names_arg(args.units, UNITS, "--units")
    seeds = ex.seeds_arg(args.seeds)
    if args.steps < 1:
        raise SystemExit(f"--steps: expected an integer >= 1, got {args.steps}")
    plan = [(u, k, args) for k in seeds for u in units]
    print(table(ex.run_plan(run_one, plan, args.jobs, os.path.join(args.out, "results.json"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
