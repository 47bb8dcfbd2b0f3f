"""`fvd REAL FAKE`: Fréchet (and kernel) video distance between two video sets.

Both inputs are checked (paths, formats, headers, enough clips) before anything is embedded;
videos are decoded once, in parallel threads, while the network embeds the previous batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from fvd import provenance as prov
from fvd.clips import SAMPLINGS, STARTS, ClipProtocol, find_sources, iter_clips, probe
from fvd.embedding import DEFAULT_BATCH_SIZE, ClipStream, check_video_shape
from fvd.frechet import frechet_distance, kernel_distance
from fvd.i3d import MIN_FRAMES, NUM_CLASSES
from fvd.statistics import FVDStatistics
from fvd.video_io import BadVideoError, load_array

EPILOG = """\
inputs (REAL and FAKE):
  a .npy/.npz array [N, T, H, W, 3] (uint8 0..255 unless --value-range says otherwise),
  a folder of video files (searched recursively; any format PyAV/FFmpeg reads) and/or of
  frame folders (a folder of .png/.jpg frames, sorted by name, is one video),
  or statistics written by --save-stats.

output:
  one line on stdout, e.g.
    FVD 123.4567, KVD 1.2345 (real 256 clips, fake 256 clips, 16 frames, stride 1, first)
  or a JSON object with --json; progress (clips/s) on stderr.

provenance:
  --save-stats records the clip protocol, the source and network resolutions, the value
  range, the I3D weights' SHA-256 and the package version. Two sets whose clip length,
  stride, start policy, network input size or network differ are not compared (error listing
  the differences) unless --allow-mismatch.

examples:
  fvd real/ fake/                                   # first 16 frames of every video
  fvd real/ fake/ --resolution 64                   # centre crop + resize to 64x64 first
  fvd kinetics/ fake.npy --max-videos 2048 --start random --seed 1
  fvd real/ fake/ --num-frames 16 --stride 8        # 16 frames spanning 121
  fvd real/ fake/ --save-stats stats/; fvd stats/real_stats.npz other_fake/
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default unless it is None, a switch, or the help already says it."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool) or "default" in action.help:
            return action.help
        return super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fvd",
        description="Fréchet Video Distance (Unterthiner et al. 2018) with the reference "
        "protocol: frames resized to 224x224 (TF1 bilinear), 0..255 -> [-1, 1], Kinetics-400 "
        "I3D logits; KVD (polynomial-kernel MMD^2) on the same logits.",
        epilog=EPILOG,
        formatter_class=lambda prog: _HelpFormatter(prog, max_help_position=32),
    )
    for name in ("real", "fake"):
        p.add_argument(name, help=f"{name} videos (see 'inputs' below)")
    clip = p.add_argument_group("clip protocol (recorded in the provenance)")
    clip.add_argument(
        "--num-frames", type=int, default=16, help=f"frames per clip (>= {MIN_FRAMES})"
    )
    clip.add_argument("--stride", type=int, default=1, help="take every STRIDE-th frame")
    clip.add_argument(
        "--start",
        choices=STARTS,
        default="first",
        help="first: clips from frame 0 on (consecutive when --clips-per-video > 1); random: "
        "uniform random start per clip, from --seed",
    )
    clip.add_argument("--clips-per-video", type=int, default=1, help="clips cut from each video")
    clip.add_argument(
        "--max-videos",
        type=int,
        default=None,
        help="use at most this many videos per set (default: all)",
    )
    clip.add_argument(
        "--sampling",
        choices=SAMPLINGS,
        default="random",
        help="which --max-videos videos: random (seeded) or the first in sorted order",
    )
    clip.add_argument("--seed", type=int, default=0, help="seed of --start random and --sampling")
    clip.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="centre-crop frames to a square and resize to this side before I3D's 224x224 "
        "resize (papers compare at 64); default: keep the source size",
    )
    clip.add_argument(
        "--no-recursive",
        dest="recursive",
        action="store_false",
        help="only read a folder and its direct subfolders",
    )
    clip.add_argument(
        "--value-range",
        type=float,
        nargs=2,
        default=(0.0, 255.0),
        metavar=("LO", "HI"),
        help="pixel range of array inputs, mapped linearly to 0..255 (videos decode to 0..255)",
    )
    run = p.add_argument_group("running")
    run.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="clips per I3D call"
    )
    run.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="videos decoded in parallel",
    )
    run.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="split each set into this many disjoint subsets and report the mean and the "
        "sample standard deviation (ddof 1) of their distances",
    )
    run.add_argument(
        "--xla-cache",
        metavar="DIR",
        default=os.environ.get("FVD_XLA_CACHE", os.path.join("~", ".cache", "fvd", "xla")),
        help="keep compiled I3D programs here, so later runs skip compiling (several seconds "
        "on a CPU); '' turns it off; the environment variable FVD_XLA_CACHE replaces it",
    )
    run.add_argument("--skip-bad", action="store_true", help="skip unreadable or short videos")
    run.add_argument("--save-stats", metavar="DIR", default=None, help="write real/fake .npz stats")
    run.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="compare sets made with different protocols (the differences are printed)",
    )
    run.add_argument("--json", action="store_true", help="print the result as one JSON object")
    run.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress line on stderr"
    )
    return p


@dataclasses.dataclass
class Side:
    """One input, checked and planned before anything is embedded."""

    desc: str
    path: str
    kind: str  # "stats" | "array" | "folder"
    protocol: ClipProtocol
    stats: FVDStatistics | None = None
    array: Any = None
    sources: list[Any] = dataclasses.field(default_factory=list)

    @property
    def expected_clips(self) -> int:
        if self.kind == "stats":
            return self.stats.n
        return len(self.sources) * self.protocol.clips_per_video


def _fail(message: str) -> None:
    raise ValueError(message)


def _plan(path: str, desc: str, protocol: ClipProtocol, args) -> Side:
    """Checks one input without embedding it: the path, its format, headers and clip count."""
    if not os.path.exists(path):
        _fail(f"{desc}: {path!r}: no such file or folder")
    if os.path.isdir(path):
        sources = protocol.select(find_sources(path, recursive=args.recursive))
        bad = [(s, why) for s in sources if (why := probe(s, protocol.frames_needed))]
        if bad and not args.skip_bad:
            raise BadVideoError(bad)
        for source, why in bad:
            print(f"fvd: skipping {source}: {why}", file=sys.stderr)
        unusable = {b for b, _ in bad}
        return Side(
            desc, path, "folder", protocol, sources=[s for s in sources if s not in unusable]
        )
    if not path.endswith((".npy", ".npz")):
        _fail(
            f"{desc}: {path!r}: expected a .npy/.npz file, statistics .npz or a folder of "
            f"videos, got a file with extension {os.path.splitext(path)[1]!r}"
        )
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            is_stats = {"n", "mean", "cov"} <= set(data.keys())
        if is_stats:
            stats = FVDStatistics.load(path)
            return Side(desc, path, "stats", protocol, stats=stats)
    videos = load_array(path)
    check_video_shape(videos, name=f"{desc} ({path})", min_videos=2)
    needed = protocol.frames_needed
    if videos.shape[1] < needed:
        _fail(
            f"{desc}: {path} has T={videos.shape[1]} frames, fewer than the {needed} needed "
            f"({protocol.describe()}; --num-frames={protocol.num_frames})"
        )
    return Side(
        desc, path, "array", protocol, array=videos, sources=protocol.select(range(videos.shape[0]))
    )


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="clip",
        file=sys.stderr,
        dynamic_ncols=True,
        disable=not enabled,
    )


def _clips(side: Side, args) -> Iterator[tuple[int, list[np.ndarray], tuple[int, ...]]]:
    if side.kind == "array":
        array = side.array

        def read(index, max_frames):
            return np.asarray(array[index, :max_frames])

        return iter_clips(side.sources, side.protocol, read=read, workers=args.workers)

    def skip(source, error):
        if not args.skip_bad:
            raise BadVideoError([(source, str(error).removeprefix(f"{source}: "))])
        print(f"fvd: skipping {source}: {error}", file=sys.stderr)

    return iter_clips(side.sources, side.protocol, workers=args.workers, on_error=skip)


def embed_side(side: Side, args) -> tuple[np.ndarray, dict[str, Any]]:
    """`([clips, 400] embeddings in source order, provenance)` of a video side.

    Each decoded clip is resized as it arrives, so clips of every frame size share full
    network batches (only the last one is padded); one batch runs while the next is decoded.
    """
    stream = ClipStream(
        batch_size=args.batch_size, value_range=tuple(args.value_range), name=side.desc
    )
    done: list[tuple[list[int], np.ndarray]] = []
    source_shapes, frame_shapes, videos = set(), set(), 0
    t0 = time.perf_counter()

    def collect(batches, bar):
        for orders, emb in batches:
            done.append((orders, emb))
            bar.update(len(orders))

    with _progress(side.expected_clips, side.desc, args.progress) as bar:
        for _, clips, source_shape in _clips(side, args):
            videos += 1
            source_shapes.add(source_shape)  # before any --resolution
            for clip in clips:
                frame_shapes.add(clip.shape)
                stream.add(clip)
                collect(stream.ready(in_flight=1), bar)
        collect(stream.close(), bar)
    order = stream.count
    embeddings = np.empty((order, NUM_CLASSES), np.float32)
    for orders, emb in done:
        embeddings[orders] = emb
    seconds = time.perf_counter() - t0
    if args.progress:
        rate = order / seconds if seconds > 0 else float("inf")
        print(
            f"fvd: {side.desc}: {order} clips in {seconds:.1f} s ({rate:.2f} clips/s, decoding "
            f"and network together)",
            file=sys.stderr,
        )
    record = prov.make(
        side.protocol,
        source=os.path.abspath(side.path),
        num_videos=videos,
        num_clips=order,
        source_sizes=prov.sizes(source_shapes),
        frame_sizes=prov.sizes(frame_shapes),
        value_range=tuple(args.value_range),
    )
    return embeddings, record


def _check_args(args) -> ClipProtocol:
    for flag in ("batch_size", "repeats", "workers"):
        value = getattr(args, flag)
        if value < 1:
            _fail(f"--{flag.replace('_', '-')}: expected an integer >= 1, got {value}")
    try:
        return ClipProtocol(
            num_frames=args.num_frames,
            stride=args.stride,
            start=args.start,
            clips_per_video=args.clips_per_video,
            seed=args.seed,
            max_videos=args.max_videos,
            sampling=args.sampling,
            resolution=args.resolution,
        )
    except ValueError as e:  # name the flag, not the field
        field = str(e).split(":")[0]
        raise ValueError(f"--{field.replace('_', '-')}{str(e)[len(field) :]}") from None


def _subsets(side: Side, emb, stats, repeats: int) -> list[tuple[FVDStatistics, Any]]:
    """`repeats` disjoint `(statistics, features)` of a video side (`compute` checked each has
    >= 2 clips); saved statistics stay fixed across repeats."""
    if side.kind == "stats" or repeats == 1:
        return [(stats, emb)] * repeats
    size = emb.shape[0] // repeats
    parts = [emb[i * size : (i + 1) * size] for i in range(repeats)]
    return [(FVDStatistics().update_embeddings(p), p) for p in parts]


def compute(args: argparse.Namespace) -> dict[str, Any]:
    """Checks both inputs, embeds them and returns the result as a dict (see `--json`)."""
    protocol = _check_args(args)
    pairs = (("real", args.real), ("fake", args.fake))
    sides = [_plan(path, desc, protocol, args) for desc, path in pairs]
    for side in sides:  # enough clips for --repeats, before any embedding
        n = side.expected_clips
        if side.kind != "stats" and n // args.repeats < 2:
            _fail(
                f"{side.desc}: {side.path!r} gives {n} clips ({len(side.sources)} usable videos x "
                f"{protocol.clips_per_video}); --repeats={args.repeats} needs >= "
                f"{2 * args.repeats}"
            )
    early = {s.desc: s.stats.provenance if s.kind == "stats" else _planned(s, args) for s in sides}
    _check_provenance(early, args, fields=[f for f in prov.COMPARED if f != "frame_sizes"])
    embedded = {}
    for side in sides:
        if side.kind == "stats":
            embedded[side.desc] = (side.stats.features, side.stats.provenance, side.stats)
            continue
        emb, record = embed_side(side, args)
        if emb.shape[0] // args.repeats < 2:  # fewer than planned: skipped while decoding
            _fail(f"{side.desc}: only {emb.shape[0]} clips could be read from {side.path!r}")
        stats = FVDStatistics().update_embeddings(emb)
        stats.provenance, stats.features = record, emb
        embedded[side.desc] = (emb, record, stats)
    records = {d: r for d, (_, r, _) in embedded.items()}
    mismatch = _check_provenance(records, args, fields=list(prov.COMPARED))
    if mismatch:  # --allow-mismatch
        print(f"fvd: warning: {mismatch}", file=sys.stderr)
    if args.save_stats:
        os.makedirs(args.save_stats, exist_ok=True)
        for side in sides:
            if side.kind != "stats":
                path = os.path.join(args.save_stats, f"{side.desc}_stats.npz")
                embedded[side.desc][2].save(path)
                print(f"fvd: wrote {path}", file=sys.stderr)
    subsets = [_subsets(s, *embedded[s.desc][::2], args.repeats) for s in sides]
    fvds, kvds = [], []
    for (sr, fr), (sf, ff) in zip(*subsets):
        fvds.append(frechet_distance(sr.mean, sr.cov, sf.mean, sf.cov))
        if fr is not None and ff is not None:
            kvds.append(kernel_distance(fr, ff))
    ddof = 1 if args.repeats > 1 else 0
    out: dict[str, Any] = {
        "fvd": float(np.mean(fvds)),
        "fvd_std": float(np.std(fvds, ddof=ddof)),
        "repeats": args.repeats,
        "real_clips": subsets[0][0][0].n,
        "fake_clips": subsets[1][0][0].n,
        "real": records["real"],
        "fake": records["fake"],
    }
    if kvds:
        out.update(kvd=float(np.mean(kvds)), kvd_std=float(np.std(kvds, ddof=ddof)))
    return out


def _planned(side: Side, args) -> dict[str, Any]:
    """What is known of a video side's provenance before decoding: its protocol and network."""
    return prov.make(
        side.protocol,
        source=side.path,
        num_videos=len(side.sources),
        num_clips=side.expected_clips,
        source_sizes=[],
        frame_sizes=[],
        value_range=tuple(args.value_range),
    )


def _check_provenance(records: dict[str, Any], args, *, fields: list[str]) -> str:
    """Refuses to compare sets made differently unless --allow-mismatch; returns the
    differences ("" when none or when a side has no provenance)."""
    if any(r is None for r in records.values()):
        return ""  # statistics without provenance: their load warned; nothing to compare
    diffs = prov.differences(records["real"], records["fake"], fields=fields)
    if not diffs:
        return ""
    text = "the two sets were made differently:\n  " + "\n  ".join(diffs)
    if not args.allow_mismatch:
        _fail(text + "\n(pass --allow-mismatch to compare them anyway)")
    return text


def format_line(result: dict[str, Any]) -> str:
    """The one result line."""
    record = result["real"] or result["fake"] or {}
    what = (
        f"{record.get('num_frames', '?')} frames, stride {record.get('frame_stride', '?')}, "
        f"{record.get('start', '?')}"
    )
    counts = f"real {result['real_clips']} clips, fake {result['fake_clips']} clips, {what}"
    kvd = "kvd" in result
    if result["repeats"] == 1:
        head = f"FVD {result['fvd']:.4f}" + (f", KVD {result['kvd']:.4f}" if kvd else "")
        return f"{head} ({counts})"
    head = f"FVD {result['fvd']:.4f} ± {result['fvd_std']:.4f}"
    if kvd:
        head += f", KVD {result['kvd']:.4f} ± {result['kvd_std']:.4f}"
    return (
        f"{head} (mean ± sample std, ddof 1, over {result['repeats']} disjoint subsets of {counts})"
    )


def run(args: argparse.Namespace) -> str:
    """The result line (or JSON text with `--json`) for parsed arguments."""
    result = compute(args)
    if args.json:
        return json.dumps(result, sort_keys=True)
    return format_line(result)


XLA_CACHE_MIN_COMPILE_SECS = 1.0  # programs compiling faster are not worth a file


def _use_xla_cache(directory: str) -> None:
    """JAX's persistent compilation cache in `directory` (programs compiling in >= 1 s).

    Takes effect even when this process already used a cache elsewhere (`main` called from
    Python after other JAX work): JAX opens its cache once, so it is reset when the folder
    changes.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    if jax.config.jax_compilation_cache_dir != directory:
        jax.config.update("jax_compilation_cache_dir", directory)
        compilation_cache.reset_cache()
    jax.config.update("jax_persistent_cache_min_compile_time_secs", XLA_CACHE_MIN_COMPILE_SECS)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit status (2 on bad input)."""
    args = _parser().parse_args(argv)
    if args.xla_cache:
        _use_xla_cache(os.path.expanduser(args.xla_cache))
    try:
        line = run(args)
    except (ValueError, TypeError, OSError) as e:  # bad input: a message, not a traceback
        print(f"fvd: error: {e}", file=sys.stderr)
        return 2
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
