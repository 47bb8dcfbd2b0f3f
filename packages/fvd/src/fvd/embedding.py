"""I3D embeddings of videos (the FVD reference protocol), jitted and sharded over devices."""

from __future__ import annotations

import functools
import importlib.resources
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from fvd.i3d import INPUT_SIZE, MIN_FRAMES, NUM_CLASSES, InceptionI3d
from fvd.resize import resize_bilinear_tf1
from fvd.weights import load_i3d_variables

DEFAULT_BATCH_SIZE = 16
_PRECISIONS = {
    None: None,
    "default": jax.lax.Precision.DEFAULT,
    "high": jax.lax.Precision.HIGH,
    "highest": jax.lax.Precision.HIGHEST,
}


@functools.cache
def kinetics400_labels() -> tuple[str, ...]:
    """The 400 Kinetics class names in the order of the I3D logits."""
    text = importlib.resources.files("fvd").joinpath("kinetics400_labels.txt").read_text("utf-8")
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(labels) != NUM_CLASSES:
        raise RuntimeError(f"kinetics400_labels.txt has {len(labels)} labels, expected 400")
    return labels


def check_video_shape(videos: Any, *, name: str = "videos", min_videos: int = 1) -> tuple:
    """Validates a video batch's static shape: `[N >= min_videos, T >= 9, H, W, 3]`.

    Returns:
      The shape as a tuple.

    Raises:
      ValueError: wrong rank, not 3 channels, too few frames or videos, or empty frames.
      TypeError: not an array of real numbers.
    """
    shape, dtype = getattr(videos, "shape", None), getattr(videos, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"{name} must be an array [N, T, H, W, 3], got {type(videos).__name__}")
    if not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)):
        raise TypeError(f"{name} must hold real numbers, got dtype {dtype}")
    if len(shape) != 5:
        raise ValueError(
            f"{name} must have rank 5 [N, T, H, W, 3], got rank {len(shape)} with shape {shape}"
        )
    n, t, h, w, c = shape
    if c != 3:
        raise ValueError(f"{name} must have 3 (RGB) channels in the last axis, got {c} ({shape})")
    if t < MIN_FRAMES:
        raise ValueError(
            f"{name} must have at least {MIN_FRAMES} frames (I3D shrinks time 8x before a "
            f"2-step pool), got T={t} ({shape})"
        )
    if h < 1 or w < 1:
        raise ValueError(f"{name} frames must be non-empty, got H={h}, W={w}")
    if n < min_videos:
        raise ValueError(f"{name} must contain at least {min_videos} videos, got N={n}")
    return tuple(shape)


def _as_precision(precision: Any) -> Any:
    if isinstance(precision, jax.lax.Precision):
        return precision
    if precision not in _PRECISIONS:
        raise ValueError(
            f"precision must be one of {list(_PRECISIONS)} or lax.Precision, got {precision!r}"
        )
    return _PRECISIONS[precision]


@functools.cache
def _mesh() -> Mesh:
    return Mesh(np.asarray(jax.local_devices()), ("batch",))


def _preprocess(videos: jax.Array, lo: float, hi: float) -> tuple[jax.Array, ...]:
    """`videos [B, T, H, W, 3] -> (x [B, T, 224, 224, 3] in [-1, 1], min, max, finite)`."""
    if jnp.issubdtype(videos.dtype, jnp.integer):  # checked without a float copy
        f32 = jnp.float32
        checks = (jnp.min(videos).astype(f32), jnp.max(videos).astype(f32), jnp.bool_(True))
    else:
        x = videos.astype(jnp.float32)
        checks = (jnp.min(x), jnp.max(x), jnp.all(jnp.isfinite(x)))
    x = videos  # the default range resizes the input's dtype (see resize_bilinear_tf1)
    if (lo, hi) != (0.0, 255.0):
        x = (videos.astype(jnp.float32) - lo) * (255.0 / (hi - lo))
    if x.shape[2:4] != (INPUT_SIZE, INPUT_SIZE):
        x = resize_bilinear_tf1(x, (INPUT_SIZE, INPUT_SIZE))  # [B, T, 224, 224, 3]
    return (x.astype(jnp.float32) / 127.5 - 1.0, *checks)  # the reference's 2 * x / 255 - 1


@functools.cache
def _preprocess_fn(value_range: tuple[float, float]):
    """Jitted `_preprocess` of batches sharded over the local devices.

    Kept apart from the network so that I3D compiles once per `[B, T]`, whatever the input size.
    """
    mesh = _mesh()
    batch, replicated = NamedSharding(mesh, P("batch")), NamedSharding(mesh, P())
    return jax.jit(
        functools.partial(_preprocess, lo=value_range[0], hi=value_range[1]),
        in_shardings=batch,
        out_shardings=(batch, replicated, replicated, replicated),
    )


@functools.cache
def _clip_preprocess_fn(value_range: tuple[float, float]):
    """Jitted `_preprocess` of one clip `[1, T, H, W, 3]` on the default device."""
    return jax.jit(functools.partial(_preprocess, lo=value_range[0], hi=value_range[1]))


@functools.cache
def _i3d_fn(dtype: Any, precision: Any):
    """Jitted `(variables, x [B, T, 224, 224, 3]) -> logits [B, 400]` float32."""
    mesh = _mesh()
    # XLA:CPU runs the RGB stem ~3x faster as frame-wise 2D convolutions (same logits up to
    # float summation order); accelerators keep the 3D convolution their libraries tune.
    cpu = mesh.devices.flat[0].platform == "cpu"
    model = InceptionI3d(dtype=dtype, precision=precision, frame_stem=cpu)
    batch, replicated = NamedSharding(mesh, P("batch")), NamedSharding(mesh, P())
    return jax.jit(model.apply, in_shardings=(replicated, batch), out_shardings=batch)


@functools.cache
def _default_device_variables():
    return jax.device_put(load_i3d_variables(), NamedSharding(_mesh(), P()))


def _check_value_range(value_range: Sequence[float]) -> tuple[float, float]:
    if len(value_range) != 2 or not float(value_range[0]) < float(value_range[1]):
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    return float(value_range[0]), float(value_range[1])


def _check_values(x: np.ndarray, lo: float, hi: float, name: str) -> None:
    """Raises ValueError for NaN/Inf or values outside `[lo, hi]`."""
    if jnp.issubdtype(x.dtype, jnp.floating) and not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or Inf")
    _check_range(float(np.min(x)), float(np.max(x)), x.dtype, lo, hi, name)


def _check_range(vmin: float, vmax: float, dtype: Any, lo: float, hi: float, name: str) -> None:
    """Values outside `[lo, hi]`, or float videos in [0, 1] / [-1, 1] read as 0..255: errors."""
    if vmin < lo or vmax > hi:
        raise ValueError(
            f"{name} has values in [{vmin:g}, {vmax:g}], outside the declared "
            f"value_range=({lo:g}, {hi:g})"
        )
    if jnp.issubdtype(dtype, jnp.floating) and hi > 1.0 and vmax <= 1.0:
        # A [0, 1] float video under the default 0..255 range would embed almost black frames
        # and give a plausible-looking, wrong FVD.
        raise ValueError(
            f"{name} is float with values in [{vmin:g}, {vmax:g}] but value_range=({lo:g}, "
            f"{hi:g}): pass value_range=(0, 1) (or (-1, 1)) for such videos, or uint8 0..255"
        )


def embed_async(
    videos: Any,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    value_range: Sequence[float] = (0, 255),
    dtype: Any = jnp.float32,
    precision: Any = "highest",
    variables: Any = None,
    name: str = "videos",
    pad_to: int | None = None,
):
    """Dispatches the embedding without waiting; see `embed`. Returns a `finish()` callable.

    `finish()` blocks, checks the values (finite, within `value_range`) and returns the
    `[N, 400]` float32 numpy logits. Until then the device works while the host continues
    (e.g. generating the next batch). `name` labels errors; `pad_to` pads every chunk to at
    least this many videos, so that a short last batch of a stream reuses the compiled I3D.
    """
    shape = check_video_shape(videos, name=name)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    lo, hi = _check_value_range(value_range)
    preprocess = _preprocess_fn((lo, hi))
    network = _i3d_fn(jnp.dtype(dtype), _as_precision(precision))
    mesh = _mesh()
    sharding = NamedSharding(mesh, P("batch"))
    if variables is None:
        variables = _default_device_variables()
    else:
        variables = jax.device_put(variables, NamedSharding(mesh, P()))
    n, ndev = shape[0], mesh.size
    dtype_in = videos.dtype
    # Fixed padded batch (one compilation); small inputs use a smaller multiple of ndev.
    step = min(batch_size, n)
    padded = math.ceil(max(step, pad_to or 0) / ndev) * ndev
    pending = []
    for start in range(0, n, step):
        chunk = videos[start : start + step]
        count = chunk.shape[0]
        if not isinstance(chunk, jax.Array):  # host arrays: check before any device work
            chunk = np.asarray(chunk)
            _check_values(chunk, lo, hi, f"{name}[{start}:{start + count}]")
        if count < padded:  # repeat the last video: keeps min/max checks exact
            pad = [(0, padded - count)] + [(0, 0)] * 4
            xp = jnp if isinstance(chunk, jax.Array) else np
            chunk = xp.pad(chunk, pad, mode="edge")
        x, *checks = preprocess(jax.device_put(chunk, sharding))
        pending.append((start, count, network(variables, x), *checks))

    def finish() -> np.ndarray:
        out = np.empty((n, NUM_CLASSES), np.float32)
        for start, count, logits, vmin, vmax, finite in pending:
            # Device arrays are checked here, after the fact, to keep dispatch asynchronous.
            what = f"{name}[{start}:{start + count}]"
            if not bool(finite):
                raise ValueError(f"{what} contains NaN or Inf")
            _check_range(float(vmin), float(vmax), dtype_in, lo, hi, what)
            out[start : start + count] = np.asarray(logits)[:count]
        return out

    return finish


def embed(
    videos: Any,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    value_range: Sequence[float] = (0, 255),
    dtype: Any = jnp.float32,
    precision: Any = "highest",
    variables: Any = None,
) -> np.ndarray:
    """Kinetics-400 I3D logits of videos, following the FVD reference protocol.

    Each frame is resized to 224x224 with TF1 `resize_bilinear` (no half-pixel centres),
    mapped from `value_range` to [-1, 1], and the I3D logits are averaged over time.

    Args:
      videos: `[N, T, H, W, 3]` numpy or jax array, `T >= 9` (`fvd.MIN_FRAMES`); the
        reference protocol uses T = 16.
      batch_size: videos per jitted call (split over all local devices).
      value_range: `(low, high)` of the pixel values; the reference uses (0, 255).
      dtype: computation dtype (float32 reproduces the reference; bfloat16 is faster).
      precision: convolution precision: "highest" (full f32, default), "high", "default"
        (TF32 on recent NVIDIA GPUs) or None (platform default).
      variables: I3D variables to use instead of the bundled Kinetics-400 weights (e.g.
        `fvd.load_tfhub_variables()`).

    Returns:
      `[N, 400]` float32 logits.

    Raises:
      ValueError: bad rank/channels/frames, NaN/Inf or values outside `value_range`.
    """
    return embed_async(
        videos,
        batch_size=batch_size,
        value_range=value_range,
        dtype=dtype,
        precision=precision,
        variables=variables,
    )()


def classify(videos: Any, *, top_k: int = 5, **embed_kwargs: Any) -> list[list[tuple[str, float]]]:
    """Top-k Kinetics-400 actions of each video.

    Args:
      videos: `[N, T, H, W, 3]` (see `embed`).
      top_k: number of classes per video.
      **embed_kwargs: forwarded to `embed` (`value_range`, `batch_size`, ...).

    Returns:
      For each video, `top_k` `(label, probability)` pairs sorted by decreasing probability.
    """
    if not isinstance(top_k, int) or not 1 <= top_k <= NUM_CLASSES:
        raise ValueError(f"top_k must be an int in [1, {NUM_CLASSES}], got {top_k!r}")
    logits = embed(videos, **embed_kwargs).astype(np.float64)  # [N, 400]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = kinetics400_labels()
    order = np.argsort(-probs, axis=1)[:, :top_k]
    return [[(labels[j], float(p[j])) for j in row] for p, row in zip(probs, order)]


class ClipStream:
    """Embeds clips of any frame sizes, given one at a time, in full network batches.

    Each clip is resized to 224x224 as it arrives (one compiled resize per frame size), so
    clips of different sizes share a network batch; only the last batch is padded, to the
    next power of two.
    Dispatch is asynchronous: `add` returns while the device works; `ready()` collects the
    finished batches (keeping `in_flight` running), `close()` the rest. Value checks (finite,
    within `value_range`) run on the device and are raised when a batch is collected.

    Args:
      batch_size: clips per network call.
      value_range: `(low, high)` of the pixel values.
      dtype, precision, variables: as for `embed`.
      name: labels errors: `name[label]` with each clip's `label` (its index by default).
    """

    def __init__(
        self,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        value_range: Sequence[float] = (0, 255),
        dtype: Any = jnp.float32,
        precision: Any = "highest",
        variables: Any = None,
        name: str = "videos",
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self._range = _check_value_range(value_range)
        self._preprocess = _clip_preprocess_fn(self._range)
        self._network = _i3d_fn(jnp.dtype(dtype), _as_precision(precision))
        mesh = _mesh()
        self._sharding = NamedSharding(mesh, P("batch"))
        self._padded = math.ceil(batch_size / mesh.size) * mesh.size
        self._variables = (
            _default_device_variables()
            if variables is None
            else jax.device_put(variables, NamedSharding(mesh, P()))
        )
        self.batch_size, self.name = batch_size, name
        self._waiting: list[tuple[Any, Any, Any]] = []  # (label, x [1, T, 224, 224, 3], checks)
        self._running: list[tuple[list, Any]] = []  # (per-clip (label, dtype, checks), logits)
        self._shape: tuple | None = None
        self.count = 0

    def add(self, clip: Any, label: Any = None) -> None:
        """Queues one `[T, H, W, 3]` clip (T and the dtype's kind fixed by the first clip)."""
        label = self.count if label is None else label
        shape = check_video_shape(clip[None], name=f"{self.name}[{label}]")
        if self._shape is not None and shape[1] != self._shape[1]:
            raise ValueError(
                f"{self.name}[{label}] has {shape[1]} frames, the stream's clips {self._shape[1]}"
            )
        self._shape = shape
        x, *checks = self._preprocess(jax.device_put(np.asarray(clip)[None]))
        self._waiting.append((label, clip.dtype, x, checks))
        self.count += 1
        if len(self._waiting) == self.batch_size:
            self._dispatch()

    def _dispatch(self) -> None:
        items, self._waiting = self._waiting, []
        xs = [x for _, _, x, _ in items]
        # A short last batch is padded to the next power of two (a multiple of the devices),
        # not to batch_size: at most log2(batch_size) more compilations, instead of running
        # the network on up to batch_size - 1 copies (4 clips at batch 16: 4x the work).
        ndev = self._sharding.mesh.size
        size = min(self._padded, math.ceil((1 << (len(xs) - 1).bit_length()) / ndev) * ndev)
        xs += [xs[-1]] * (size - len(xs))
        batch = jax.device_put(jnp.concatenate(xs), self._sharding)
        meta = [(label, dtype, checks) for label, dtype, _, checks in items]
        self._running.append((meta, self._network(self._variables, batch)))

    def ready(self, in_flight: int = 1) -> list[tuple[list, np.ndarray]]:
        """`[(labels, [n, 400] logits), ...]` of the batches finished beyond `in_flight`."""
        out = []
        lo, hi = self._range
        while len(self._running) > in_flight:
            meta, logits = self._running.pop(0)
            for label, dtype, (vmin, vmax, finite) in meta:
                what = f"{self.name}[{label}]"
                if not bool(finite):
                    raise ValueError(f"{what} contains NaN or Inf")
                _check_range(float(vmin), float(vmax), dtype, lo, hi, what)
            out.append(([label for label, _, _ in meta], np.asarray(logits)[: len(meta)]))
        return out

    def close(self) -> list[tuple[list, np.ndarray]]:
        """Dispatches the last (padded) batch and returns every batch not yet collected."""
        if self._waiting:
            self._dispatch()
        return self.ready(0)
