"""`sample-videotx`: continuations from a trained checkpoint, primed on held-out clips or a video file."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import jax
import ml_collections
import numpy as np
from video_training import ConfigError, cli, shipped

from train_videotx import pretrained

USAGE_EXAMPLES = f"""examples:
  sample-videotx --workdir=runs/default_tiny                 # primed on held-out clips
  sample-videotx --pretrained --video=me.mp4                 # the shipped model, no training
  sample-videotx --workdir=runs/default_tiny --video=me.mp4 --num_samples=8 --temperature=1.0
  sample-videotx --config=bair --num_samples=16 --compile_only --topology=v5e:2x2

{cli.COMPILE_ONLY_USAGE}
"""


def _parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        prog="sample-videotx",
        description=__doc__,
        epilog=USAGE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--workdir", default=None, help="a train-videotx run (config.json, checkpoints/)"
    )
    p.add_argument(
        "--pretrained",
        nargs="?",
        const=pretrained.DEFAULT,
        default=None,
        help="sample from a model shipped with the app instead of --workdir (default_tiny: "
        "the no-flag train-videotx run's model, 16x16 frames)",
    )
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
    p.add_argument("--video", default=None, help="prime on this video file (any format PyAV reads)")
    p.add_argument(
        "--conditioning",
        default=None,
        help=(
            "with --video for a conditioned model (e.g. bair:action): a .npy [F, C] float array, "
            "one stored row per frame from --start_frame on (e.g. BAIR actions, shifted by "
            "data.conditioning_shift as in training), F >= --num_frames"
        ),
    )
    p.add_argument(
        "--start_frame", "--start-frame", type=int, default=0, help="first prime frame in --video"
    )
    p.add_argument("--split", default=None, help="held-out split to prime on (default: eval split)")
    p.add_argument("--num_samples", "--num-samples", type=int, default=4)
    p.add_argument("--temperature", type=float, default=None, help="default: the config's (0.9)")
    p.add_argument(
        "--num_frames",
        "--num-frames",
        type=int,
        default=None,
        help="frames per video (with primes)",
    )
    p.add_argument(
        "--num_prime_frames",
        "--num-prime-frames",
        type=int,
        default=None,
        help="default: the config's sample.num_prime_frames",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output path without extension")
    p.add_argument("--formats", default="gif,mp4", help="comma-separated: gif, mp4")
    p.add_argument("--fps", type=float, default=8.0)
    return p


def default_primes(config) -> int:
    """The run's `sample.num_prime_frames` (runs made before it existed: `num_prime_frames`)."""
    return int(config.sample.get("num_prime_frames", config.num_prime_frames))


def load_prime_video(path: str, *, start_frame: int, num_frames: int, size: int) -> np.ndarray:
    """`[num_frames, size, size, 3]` uint8 from a user's video: centre crop + Lanczos (section 4.3).

    Raises:
      ConfigError: a negative `start_frame`, or a file that is missing, undecodable or short.
    """
    from video_training.data import vt_spatial

    if start_frame < 0:
        raise ConfigError(f"--start_frame: expected an integer >= 0, got {start_frame}")
    frames = cli.decode_video_arg(path, max_frames=start_frame + num_frames)[start_frame:]
    if frames.shape[0] < num_frames:
        raise ConfigError(
            f"--video={path!r} has {frames.shape[0] + start_frame} frames: need start_frame + "
            f"num_prime_frames = {start_frame} + {num_frames} = {start_frame + num_frames}"
        )
    return vt_spatial(frames, size)


def load_conditioning(path: str, *, num_frames: int, size: int, shift: int) -> np.ndarray:
    """`[num_frames, size]` float32 model conditioning from a `.npy` of stored rows per frame.

    Raises:
      ConfigError: a missing or unreadable file, or an array of the wrong shape.
    """
    from train_videotx.data import shift_rows

    try:
        rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--conditioning={path!r}: expected a readable .npy file ({e})") from e
    if rows.ndim != 2 or rows.shape[0] < num_frames or rows.shape[1] != size:
        raise ConfigError(
            f"--conditioning={path!r}: expected an array of shape [F >= {num_frames}, {size}] "
            f"(one row per frame, model.conditioning_size={size}), got {rows.shape}"
        )
    if not np.issubdtype(rows.dtype, np.number):
        raise ConfigError(f"--conditioning={path!r}: expected numbers, got dtype {rows.dtype}")
    return shift_rows(rows[:num_frames], shift)


def check_args(
    args: argparse.Namespace,
) -> tuple[ml_collections.ConfigDict, np.ndarray | None, np.ndarray | None]:
    """Checks the run folder and every flag, and decodes `--video`, before a model is built.

    Returns:
      `(run config, [num_samples, P, H, W, 3] uint8 primes from --video or None,
      [num_samples, F, C] float32 conditioning from --conditioning or None)`.

    Raises:
      ConfigError: naming the flag, what it accepts and the value given.
    """
    from train_videotx.model import load_config

    if args.num_samples < 1:
        raise ConfigError(f"--num_samples: expected an integer >= 1, got {args.num_samples}")
    for flag, value in (("--temperature", args.temperature), ("--fps", args.fps)):
        if value is not None and not value > 0:
            raise ConfigError(f"{flag}: expected a number > 0, got {value}")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if not formats or not set(formats) <= {"gif", "mp4"}:
        raise ConfigError(
            f"--formats: expected a comma-separated list of gif, mp4, got {args.formats!r}"
        )
    args.workdir = shipped.resolve_folder(
        args.workdir, args.pretrained, pretrained.PRETRAINED_DIR, "train-videotx"
    )
    if not pretrained.is_exported(args.workdir):
        cli.check_run_folder(args.workdir, trained_by="train-videotx", step=args.step)
    config = load_config(args.workdir)
    num_prime = default_primes(config) if args.num_prime_frames is None else args.num_prime_frames
    num_frames = args.num_frames or config.sample.num_frames
    if num_prime < 1:
        raise ConfigError(
            f"--num_prime_frames: expected an integer >= 1 to continue a video, got {num_prime}"
        )
    if num_frames <= num_prime:
        raise ConfigError(
            f"--num_frames={num_frames} must exceed num_prime_frames={num_prime}; "
            f"expected an integer > {num_prime}"
        )
    size = int(config.model.get("conditioning_size", 0))
    if args.conditioning and not (size and args.video):
        raise ConfigError(
            f"--conditioning={args.conditioning!r} is for --video with a conditioned model; "
            f"this run has model.conditioning_size={size}"
            + ("" if args.video else " and no --video was given (held-out clips bring theirs)")
        )
    if not args.video:
        return config, None, None
    if size and not args.conditioning:
        raise ConfigError(
            f"--video: this run is conditioned on {config.data.conditioning_key!r} "
            f"(model.conditioning_size={size}), which a video file does not carry; expected "
            f"--conditioning=FILE.npy with [F >= {num_frames}, {size}] rows, got none"
        )
    cond = None
    if size:
        cond = load_conditioning(
            args.conditioning,
            num_frames=num_frames,
            size=size,
            shift=int(config.data.get("conditioning_shift", 1)),
        )
        cond = np.repeat(cond[None], args.num_samples, axis=0)
    prime = load_prime_video(
        args.video, start_frame=args.start_frame, num_frames=num_prime, size=config.data.size
    )
    return config, np.repeat(prime[None], args.num_samples, axis=0), cond


def run(args: argparse.Namespace) -> tuple[np.ndarray, list[str]]:
    """Samples as `args` asks; returns `([N, F, H, W, 3] uint8 samples, written paths)`.

    Raises:
      ConfigError: from `check_args`, before the model is built or restored.
    """
    from train_videotx import data as vtx_data
    from train_videotx.evaluation import continue_videos, write_grid
    from train_videotx.model import enable_compilation_cache, make_setup, restore_params

    config, prime, conditioning = check_args(args)
    enable_compilation_cache(config.get("compilation_cache_dir", ""))
    setup = make_setup(config)
    params, step = restore_params(setup, args.workdir, args.step)
    num_prime = default_primes(config) if args.num_prime_frames is None else args.num_prime_frames
    num_frames = args.num_frames or config.sample.num_frames
    temperature = config.sample.temperature if args.temperature is None else args.temperature
    if prime is not None:
        shown = []
    else:
        split = args.split or config.data.eval_split
        vtx_data.ensure_prepared(config.data)  # shipped models: their data, prepared once
        real, conditioning = vtx_data.heldout_clips(
            config.data.dir,
            split,
            args.num_samples,
            num_frames,
            vtx_data.conditioning_transform(config.data),
        )
        prime, shown = real[:, :num_prime], [real]
    samples = continue_videos(
        setup.model(params),
        jax.random.key(args.seed),
        prime,
        num_frames=num_frames,
        temperature=temperature,
        window_stride=config.sample.window_stride,
        conditioning=conditioning,
    )
    name = f"sample_step{step}_seed{args.seed}"
    if args.pretrained is not None:  # not inside the installed package
        out = args.out or os.path.join("runs", "samples", f"pretrained_{args.pretrained}_{name}")
    else:
        out = args.out or os.path.join(args.workdir, "samples", name)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    paths = write_grid(
        out,
        np.concatenate([*shown, samples]),
        num_prime,
        columns=args.num_samples,
        formats=formats,
        fps=args.fps,
    )
    return samples, paths


def compile_only(argv: list[str], request: cli.CompileRequest) -> int:
    """`--compile_only`: the sampling loop of a run's config (`--workdir`) or of any config
    (`--config=NAME[:ARG]` and overrides), for `--num_samples` videos, compiled for a target."""
    from train_videotx.compile_only import sample_report
    from train_videotx.configs import CONFIG_DIR, validate
    from train_videotx.model import load_config

    parser = cli.ArgumentParser(prog="sample-videotx --compile_only")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--num_samples", "--num-samples", type=int, default=4)
    args, rest = parser.parse_known_args(argv)
    if args.num_samples < 1:
        raise ConfigError(f"--num_samples: expected an integer >= 1, got {args.num_samples}")
    if args.workdir:
        cli.check_run_folder(args.workdir, trained_by="train-videotx")
        config = load_config(args.workdir)
    else:
        config, rest = cli.parse_config_flags(
            rest, config_dir=CONFIG_DIR, default="default:tiny", validate=validate
        )
    if rest:
        raise ConfigError(
            f"unrecognized arguments: {' '.join(rest)}; with --compile_only expected "
            "--workdir=RUN or --config=NAME[:ARG] [--config.FIELD=VALUE ...], --num_samples=N"
        )
    return cli.run_compile_only(
        lambda: sample_report(config, request.topology, args.num_samples), request
    )


@cli.command("sample-videotx")
def main(argv: list[str]) -> int:
    """Samples from a run; exit status 2 on a bad flag, run folder or video file."""
    argv, compile_request = cli.pop_compile_only(argv)
    if compile_request:
        return compile_only(argv, compile_request)
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    _, paths = run(args)
    for path in paths:
        print(f"samples: {os.path.abspath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
