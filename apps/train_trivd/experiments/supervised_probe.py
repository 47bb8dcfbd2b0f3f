"""Can TrIVD-GAN-FP's generator represent the continuation at all? A supervised probe (issue #15).

A diagnostic, not the paper's method: the generator of `recurrent_units.py`'s runs (same
config, same clips, same optimizer) trained alone on the mean squared error between its
predicted frames and the true continuation, instead of the GAN loss, then evaluated exactly
as the GAN runs are (raw weights, no EMA; standing statistics, truncated latents): MSE/PSNR
against copying the last frame and, for warping units, the motion field's EPE against the
true flow and zero flow, on the held-out photos' clips, on as many training clips and, with the
photo pool, on the 32 test_stills clips. If even this does not beat copy-last, the GAN runs
could not have; if it does, what the GAN runs lack is the training signal (steps, batch), not
capacity.
No ground-truth flow is used: only frames, as the GAN's D sees them.

  python3 -m uv run python apps/train_trivd/experiments/supervised_probe.py
  python3 -m uv run python apps/train_trivd/experiments/supervised_probe.py --units tsru_p \\
      --seeds 0 --steps 500

Writes `<out>/<unit>_seed<k>/` (config.json, metrics.jsonl, eval/, eval_train/eval/ and, with
the photo pool, eval_test_stills/eval/ sample grids and motion fields, result.json) and
`<out>/results.json`; prints a Markdown table. A run whose result.json exists is read, not
retrained (runs are short: no checkpoints). `--export NAME` also writes the trained generator
as a shipped model (`sample-trivd --pretrained NAME`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

EXPERIMENTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, EXPERIMENTS)

import recurrent_units  # the GAN runs' flags, so both runs use one config

FIELDS = recurrent_units.FIELDS


def _config(unit: str, seed: int, steps: int, workdir: str, args):
    from train_trivd.main import parse_args

    argv = recurrent_units.overrides(unit, seed, steps, workdir, args.trajectory, args.set)
    # One real batch per step ([B, ...], not [d_steps, B, ...]): there is no D to feed.
    argv.append("--config.data.fresh_real_batches=False")
    config, workdir = parse_args(argv)
    return config, workdir


def run_one(unit: str, seed: int, args) -> dict:
    """Trains G on MSE for `args.steps` steps, evaluates it; returns the table row."""
    import jax
    import jax.numpy as jnp
    import optax
    from gan_video.losses import orthogonal_regularization
    from train_trivd import data
    from train_trivd.evaluate import Evaluator
    from train_trivd.main import configure_jax
    from train_trivd.train import model_config, save_config, train_config

    name = f"{unit}_seed{seed}"
    workdir = os.path.join(args.out, name)
    result_path = os.path.join(workdir, "result.json")
    if os.path.exists(result_path):
        if args.export:
            raise SystemExit(
                f"--export: {workdir} holds a finished run whose weights were not kept;"
                " train again with another --out"
            )
        with open(result_path) as f:
            return json.load(f)
    config, workdir = _config(unit, seed, args.steps, workdir, args)
    configure_jax(config)
    os.makedirs(workdir, exist_ok=True)
    save_config(config, workdir)
    mc, tc = model_config(config), train_config(config)
    import gan_video

    gan = gan_video.make_gan(mc, tc)
    directory = data.data_dir(config, progress=True)
    state = jax.jit(gan.init)(jax.random.key(config.seed))
    tx = optax.adam(tc.g_lr * args.lr_scale, b1=tc.b1, b2=tc.b2)
    ncond = mc.num_cond_frames

    def loss_fn(params, rest, video, key):
        z = jax.random.normal(key, (video.shape[0], mc.z_dim))
        pred, _, new_rest = gan.generate(params, rest, video[:, :ncond], z)
        mse = jnp.mean((pred - video[:, ncond:]) ** 2)
        return mse + tc.ortho_weight * orthogonal_regularization(params), (new_rest, mse)

    @jax.jit
    def step_fn(params, rest, opt, video, key):
        grads, (rest, mse) = jax.grad(loss_fn, has_aux=True)(params, rest, video, key)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), rest, opt, mse

    params, rest = state["g"]["params"], state["g"]["rest"]
    opt = tx.init(params)
    loader = iter(data.train_loader(config, directory))
    key = jax.random.key(config.seed + 1)
    start, last_mse = time.time(), None
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    with open(metrics_path, "w") as mf:
        for step in range(1, args.steps + 1):
            video = jnp.asarray(next(loader)["video"])
            params, rest, opt, mse = step_fn(
                params, rest, opt, video, jax.random.fold_in(key, step)
            )
            if step % max(args.steps // 20, 1) == 0 or step == args.steps:
                row = {"step": step, "train_mse": float(mse), "seconds": time.time() - start}
                mf.write(json.dumps(row) + "\n")
                mf.flush()
                last_mse = row["train_mse"]
                print(f"[{name}] step {step} train mse {float(mse):.5f}", flush=True)
    wall = time.time() - start
    config.eval.use_ema = False  # no EMA was kept
    eval_state = {"g": {"params": params, "rest": rest}, "ema": params}

    def evaluate(clips_config, folder):
        evaluator = Evaluator(
            gan,
            mc,
            config.eval,
            data.eval_clips(clips_config, directory, config.eval.num_clips),
            folder,
            standing_source=lambda: data.standing_batches(config, directory),
        )
        return evaluator(eval_state, args.steps), evaluator.last_paths

    metrics, paths = evaluate(config, workdir)
    # The same evaluation on the first training clips (images seen in training: the gap to the
    # held-out photos is what the model fails to carry over to new photos) and, with the photo
    # pool, on the test_stills clips (unseen frames of the pool's videos).
    extra = {
        split: recurrent_units.evaluate_split(
            gan, mc, config, eval_state, args.steps, split, os.path.join(workdir, f"eval_{split}")
        )
        for split in recurrent_units.extra_splits(config)
    }
    row = {"run": name, "unit": unit, "seed": seed, "steps": args.steps}
    row["trajectory"] = args.trajectory
    row["lr"] = tc.g_lr * args.lr_scale
    row["overrides"] = list(args.set)
    row["wall_seconds"] = round(wall)
    row["train_mse_last"] = last_mse
    row.update({k: metrics.get(k) for k in FIELDS})
    recurrent_units.extra_columns(row, extra)
    row["files"] = {k: os.path.abspath(v) for k, v in paths.items()}
    if args.export:
        row["exported"] = export(config, params, rest, args, metrics, extra)
    with open(result_path + ".tmp", "w") as f:
        json.dump(row, f, indent=1, default=float)
    os.replace(result_path + ".tmp", result_path)
    print(f"[{time.strftime('%H:%M:%S')}] done {name}: {row}", flush=True)
    return row


def export(config, params, rest, args, metrics: dict, extra: dict) -> str:
    """Writes the trained generator as a shipped model `train_trivd/pretrained/<args.export>`
    (`video_training.shipped` format, as `python -m train_trivd.pretrained` writes a GAN run's
    EMA generator): its weights stand in for the EMA weights (use_ema: sampling reads them);
    about.json records the evaluations above, the held-out photos' as "eval/*" (what
    `sample-trivd --pretrained` users and the shipped-model test read)."""
    from train_trivd import pretrained
    from video_training import shipped

    evaluation = {"step": args.steps, **{f"eval/{k}": float(v) for k, v in metrics.items()}}
    for split, values in extra.items():
        evaluation.update(pretrained.extra_evaluation_keys(split, values))
    command = " ".join(sys.argv) if sys.argv and sys.argv[0] else "supervised_probe.py ..."
    return shipped.write(
        os.path.join(pretrained.PRETRAINED_DIR, args.export),
        {"ema": params, "rest": rest},
        pretrained.shipped_config(config),
        step=args.steps,
        evaluations=[evaluation],
        made_by=[
            (
                "supervised probe: the TrIVD-GAN-FP generator trained on the mean squared error"
                " of its predictions (no discriminator), not the paper's adversarial training"
            ),
            f"python3 -m uv run python {command}",
        ],
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--units", default="tsru_p,convgru", help="comma-separated")
    p.add_argument("--seeds", default="0", help="comma-separated ints (default: 0)")
    p.add_argument("--steps", type=int, default=2000, help="G updates per run (default: 2000)")
    p.add_argument(
        "--lr-scale",
        type=float,
        default=1.0,
        help="multiplies the config's G learning rate (default: 1, the GAN runs' 1e-4)",
    )
    p.add_argument("--trajectory", default="linear", choices=("linear", "smooth"))
    recurrent_units.add_set_flag(p)
    p.add_argument("--out", default="runs/experiments/trivd_supervised_probe")
    p.add_argument(
        "--export",
        metavar="NAME",
        help="also write the trained generator as the shipped model NAME"
        " (train_trivd/pretrained/NAME; one unit and one seed only)",
    )
    args = p.parse_args(argv)
    from video_training import experiments as ex

    units = ex.names_arg(args.units, recurrent_units.UNITS, "--units")
    seeds = ex.seeds_arg(args.seeds)
    if args.steps < 1:
        raise SystemExit(f"--steps: expected an integer >= 1, got {args.steps}")
    if args.lr_scale <= 0:
        raise SystemExit(f"--lr-scale: expected a number > 0, got {args.lr_scale}")
    args.set = recurrent_units.set_overrides(args.set)
    if args.export and len(units) * len(seeds) != 1:
        raise SystemExit(f"--export: expected one unit and one seed, got {units} x {seeds}")
    rows = [run_one(u, k, args) for k in seeds for u in units]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1, default=float)
    print(recurrent_units.table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
