"""`sample-trivd`: continuations from a train-trivd run or a shipped generator, for dataset clips or a video file."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from video_training import ConfigError, cli, shipped

from train_trivd import pretrained

__all__ = ["load_clips_from_video", "main", "restore_state"]

log = logging.getLogger(__name__)


def restore_state(gan: Any, workdir: str, step: int | None = None) -> tuple[Any, int]:
    """Restores the train state of `<workdir>/checkpoints` (newest, or `step`) on one device.

    Returns:
      `(state, step)`.
    """
    import jax
    import orbax.checkpoint as ocp
    from video_training import Checkpointer

    ckpt = Checkpointer(
        os.path.join(workdir, "checkpoints"), async_save=False, handle_sigterm=False
    )
    try:
        step = ckpt.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {ckpt.directory}")
        sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])

        def abstract(x):
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

        key_data = jax.random.key_data(jax.random.key(0))
        tree = {
            "state": jax.tree.map(abstract, jax.eval_shape(gan.init, jax.random.key(0))),
            "rng": abstract(key_data),
        }
        restored = ckpt.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(tree))
        )
    finally:
        ckpt.close()
    return restored["state"]["state"], step


def load_clips_from_video(path: str, size: int, num_frames: int, start: int = 0) -> np.ndarray:
    """Decodes `num_frames` frames from `start` (fewer if the file ends), centre-cropped to size.

    Returns:
      `[1, t, size, size, 3]` float32 in [-1, 1], `t <= num_frames`.

    Raises:
      ConfigError: the file is missing or FFmpeg cannot decode it.
    """
    from video_training.data import to_symmetric, vt_spatial

    video = cli.decode_video_arg(path, max_frames=start + num_frames)[start:]
    return to_symmetric(vt_spatial(video, size))[None]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = cli.ArgumentParser(
        prog="sample-trivd",
        description=__doc__,
        epilog=cli.COMPILE_ONLY_USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workdir", default=None, help="train-trivd run folder (config + checkpoints)")
    p.add_argument(
        "--pretrained",
        nargs="?",
        const=pretrained.DEFAULT,
        default=None,
        help="sample from a generator shipped with the app instead of --workdir (default: "
        f"{pretrained.DEFAULT}, 16x16 frames, 2 conditioning -> 3 predicted)",
    )
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default newest)")
    p.add_argument("--video", default=None, help="condition on this video file (PyAV) instead")
    p.add_argument("--start", type=int, default=0, help="first frame used from --video")
    p.add_argument("--num-clips", type=int, default=4, help="dataset clips to condition on")
    p.add_argument("--num-samples", type=int, default=2, help="continuations per clip")
    p.add_argument(
        "--truncation",
        type=float,
        default=None,
        help="latent truncation threshold (0: zero latent, <0: none; default: the config's)",
    )
    p.add_argument(
        "--standing-batches",
        type=int,
        default=None,
        help="batches of training clips for the standing statistics (default: the config's)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="prepared clips of the run's dataset, for the standing statistics (default: the "
        "run config's data.data_dir)",
    )
    p.add_argument("--raw-weights", action="store_true", help="use G's weights, not the EMA")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-mp4", action="store_true", help="write GIFs only")
    p.add_argument(
        "--out",
        default=None,
        help="output folder (default <workdir>/samples; with --pretrained "
        "runs/samples/pretrained_<name>)",
    )
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> tuple[Any, int, np.ndarray | None]:
    """Checks the flags and the run folder, and decodes `--video`, before a model is built.

    Returns:
      `(run config, checkpoint step, [1, t, H, W, 3] clips from --video or None)`.

    Raises:
      ConfigError: naming the flag, what it accepts and the value given.
    """
    from train_trivd.train import load_run_config, model_config

    for flag, value in (("--num-samples", args.num_samples), ("--num-clips", args.num_clips)):
        if value < 1:
            raise ConfigError(f"{flag}: expected an integer >= 1, got {value}")
    if args.start < 0:
        raise ConfigError(f"--start: expected an integer >= 0, got {args.start}")
    if args.standing_batches is not None and args.standing_batches < 0:
        raise ConfigError(
            f"--standing-batches: expected an integer >= 0, got {args.standing_batches}"
        )
    args.workdir = shipped.resolve_folder(
        args.workdir, args.pretrained, pretrained.PRETRAINED_DIR, "train-trivd"
    )
    if pretrained.is_exported(args.workdir):
        try:
            step = shipped.saved_step(args.workdir, args.step)
        except ValueError as e:
            raise ConfigError(f"--step: {e}") from None
        if args.raw_weights:
            raise ConfigError(
                f"--raw-weights: {args.workdir} is a shipped generator, which holds its EMA "
                "weights only; expected no --raw-weights"
            )
    else:
        step = cli.check_run_folder(args.workdir, trained_by="train-trivd", step=args.step)
    config = load_run_config(args.workdir)
    if args.data_dir:
        config.data.data_dir = args.data_dir
    if config.data.kind == "prepared" and not os.path.isdir(config.data.data_dir or ""):
        # G's standing statistics are averaged over training clips: a --video alone (or copies
        # of it) would give statistics of one clip.
        raise ConfigError(
            "--data-dir: expected the prepared clips of the run's dataset (the standing "
            f"statistics are computed over its training clips), got {config.data.data_dir!r}"
        )
    if not args.video:
        return config, step, None
    mc = model_config(config)
    clips = load_clips_from_video(args.video, mc.resolution, mc.num_frames, args.start)
    if clips.shape[1] < mc.num_cond_frames:
        raise ConfigError(
            f"--video={args.video!r} has {clips.shape[1]} frames from --start={args.start}; "
            f"expected at least num_cond_frames={mc.num_cond_frames}"
        )
    return config, step, clips


def compile_only(argv: list[str], request: cli.CompileRequest) -> int:
    """`--compile_only`: G's sampling pass of a run's config (`--workdir`) or of any config
    (`--config=NAME[:ARG]` and overrides) for `--num-clips` x `--num-samples` clips."""
    from train_trivd.compile_only import sample_report
    from train_trivd.configs import CONFIG_DIR, validate
    from train_trivd.train import load_run_config

    parser = cli.ArgumentParser(prog="sample-trivd --compile_only")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--num-clips", "--num_clips", type=int, default=4)
    parser.add_argument("--num-samples", "--num_samples", type=int, default=2)
    args, rest = parser.parse_known_args(argv)
    for flag, value in (("--num-clips", args.num_clips), ("--num-samples", args.num_samples)):
        if value < 1:
            raise ConfigError(f"{flag}: expected an integer >= 1, got {value}")
    if args.workdir:
        cli.check_run_folder(args.workdir, trained_by="train-trivd")
        config = load_run_config(args.workdir)
    else:
        config, rest = cli.parse_config_flags(
            rest,
            config_dir=CONFIG_DIR,
            default="embedded:tiny",
            validate=functools.partial(validate, needs_data=False),
        )
    if rest:
        raise ConfigError(
            f"unrecognized arguments: {' '.join(rest)}; with --compile_only expected "
            "--workdir=RUN or --config=NAME[:ARG] [--config.FIELD=VALUE ...], --num-clips=N, "
            "--num-samples=N"
        )
    count = args.num_clips * args.num_samples
    return cli.run_compile_only(lambda: sample_report(config, request.topology, count), request)


@cli.command("sample-trivd")
def main(argv: list[str]) -> int:
    """Samples from a run; exit status 2 on a bad flag, run folder or video file."""
    argv, compile_request = cli.pop_compile_only(argv)
    if compile_request:
        return compile_only(argv, compile_request)
    args = parse_args(argv)
    config, step, clips = check_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import gan_video
    import jax

    from train_trivd import data
    from train_trivd.evaluate import Predictor, truncation_value, write_outputs
    from train_trivd.main import configure_jax
    from train_trivd.motion import motion_field
    from train_trivd.train import model_config, train_config

    configure_jax(config)  # same XLA flags as training, so its compiled samplers are reused
    mc = model_config(config)
    tc, size = mc.num_cond_frames, mc.resolution
    gan = gan_video.make_gan(mc, train_config(config))
    if pretrained.is_exported(args.workdir):
        state, step = pretrained.load_state(gan, args.workdir, step)
    else:
        state, step = restore_state(gan, args.workdir, step)
    params = state["g"]["params"] if args.raw_weights else state["ema"]

    directory = data.data_dir(config)
    standing_source = data.standing_batches(config, directory)
    if clips is not None:
        source = os.path.basename(args.video)
    else:
        eval_config = config.copy_and_resolve_references()
        eval_config.eval.batch_size = args.num_clips
        clips = data.eval_clips(eval_config, directory, args.num_clips)[0]["video"]
        source = f"{directory}:{config.data.eval_split}"
    cond = np.repeat(clips[:, :tc], args.num_samples, axis=0)  # [clips * samples, Tc, H, W, 3]
    predictor = Predictor(gan, mc)
    key = jax.random.key(args.seed)
    standing = (
        config.eval.standing_batches if args.standing_batches is None else args.standing_batches
    )
    rest = predictor.standing_rest(
        params,
        state["g"]["rest"],
        standing_source,
        standing,
        key,
        spectral_iterations=config.eval.get("spectral_iterations", 0),
    )
    trunc = truncation_value(config.eval.truncation if args.truncation is None else args.truncation)
    pred, warps = predictor.predict(params, rest, cond, jax.random.fold_in(key, 1), trunc)
    videos = np.concatenate([cond, pred], axis=1)
    flows = np.asarray(motion_field(warps, size)) if warps else None
    if args.pretrained is not None:  # not inside the installed package
        out = args.out or os.path.join("runs", "samples", f"pretrained_{args.pretrained}")
    else:
        out = args.out or os.path.join(args.workdir, "samples")
    tag = f"step_{step:07d}_trunc_{'none' if trunc is None else f'{trunc:g}'}"
    paths = write_outputs(out, tag, videos, tc, flows, mp4=not args.no_mp4)
    if clips.shape[1] > tc:  # the real continuation, for comparison
        from video_training import GRID_MIN_SIZE, sample_grid, write_gif

        grid = sample_grid(clips, tc, min_size=GRID_MIN_SIZE)
        paths["ground_truth"] = write_gif(os.path.join(out, f"ground_truth_{tag}.gif"), grid)
    print(f"sample-trivd: step {step}, {clips.shape[0]} clip(s) from {source} x {args.num_samples}")
    for name, path in paths.items():
        print(f"  {name:13s}{os.path.abspath(path)}")
    if flows is None:
        print(f"  (no motion fields: recurrent unit {mc.recurrent_unit!r} does not warp)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
