"""Frozen configurations of the Video Transformer (paper section 4.1) and a tiny CPU variant."""

from __future__ import annotations

import dataclasses
import math

import subscale

Shape3 = tuple[int, int, int]

NUM_CHANNELS = subscale.NUM_CHANNELS  # Nc = 6: coarse R, G, B then fine R, G, B (section 3.3).
NUM_VALUES = subscale.NUM_VALUES  # Nv = 16 values per 4-bit channel.

# Section 4.1 block schedules (t, h, w) for layers 1-4; layers 5-8 repeat them in reverse.
SLICE_BLOCKS: tuple[Shape3, ...] = ((4, 8, 4), (4, 4, 8), (1, 32, 4), (1, 4, 32))
SINGLE_FRAME_BLOCKS: tuple[Shape3, ...] = ((1, 8, 16), (1, 16, 8), (1, 2, 64), (1, 64, 2))

VARIANTS = ("spatiotemporal", "spatial", "single_frame")
SIZES = ("base", "large")


def _check_shape3(value, name: str) -> Shape3:
    """Returns `value` as three positive ints or raises a ValueError naming `name`."""
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be three ints, got {value!r}") from None
    if len(out) != 3 or any(v < 1 for v in out):
        raise ValueError(f"{name} must be three positive ints, got {value!r}")
    return out  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class LayerConfig:
    """One block-local self-attention layer (Eqs. 2-6).

    Attributes:
      block_shape: `(t, h, w)` extent of the attention blocks; must divide the slice shape.
      num_heads: number of attention heads `na`.
    """

    block_shape: Shape3
    num_heads: int

    def __post_init__(self):
        object.__setattr__(self, "block_shape", _check_shape3(self.block_shape, "block_shape"))
        if int(self.num_heads) < 1:
            raise ValueError(f"num_heads must be >= 1, got {self.num_heads}")


def layer_schedule(blocks: tuple[Shape3, ...], heads: tuple[int, int]) -> tuple[LayerConfig, ...]:
    """Layers 1-4 use `blocks`, layers 5-8 the same blocks reversed (section 4.1).

    Args:
      blocks: the four block shapes of layers 1-4.
      heads: `(heads of layers 1-4, heads of layers 5-8)`.

    Returns:
      Eight `LayerConfig`s.
    """
    first = tuple(LayerConfig(b, heads[0]) for b in blocks)
    last = tuple(LayerConfig(b, heads[1]) for b in reversed(blocks))
    return first + last


@dataclasses.dataclass(frozen=True)
class VideoTransformerConfig:
    """Hyper-parameters of the subscale Video Transformer (sections 3 and 4.1).

    Attributes:
      video_shape: `(T, H, W)` of the modelled video window.
      subscale_factor: `s = (st, sh, sw)`; slices are `(T/st, H/sh, W/sw)`.
      context_kernel: `k`, kernel of the encoder's strided context convolution.
      hidden_size: `d`.
      embedding_size: `de`.
      head_dim: `da`, the per-head query/key/value size.
      encoder_layers: one `LayerConfig` per encoder layer (non-causal).
      decoder_layers: one `LayerConfig` per decoder layer (causal).
      first_slice_decoder_layers: if not None, a separate unconditioned decoder (with its own
        channel heads) models slice `(0, 0, 0)` without the encoder (Kinetics, section 4.3).
      conditioning_size: per-frame auxiliary features concatenated in the encoder (0: none).
      dtype: activation dtype (`"float32"` or `"bfloat16"`); parameters stay float32.
      attention_implementation: passed to `block_attention.block_attention`.
      remat: recompute each Transformer layer in the backward pass instead of storing its
        activations (training memory; the same values).
    """

    video_shape: Shape3
    subscale_factor: Shape3
    context_kernel: Shape3
    hidden_size: int
    embedding_size: int
    head_dim: int
    encoder_layers: tuple[LayerConfig, ...]
    decoder_layers: tuple[LayerConfig, ...]
    first_slice_decoder_layers: tuple[LayerConfig, ...] | None = None
    conditioning_size: int = 0
    dtype: str = "float32"
    attention_implementation: str = "auto"
    remat: bool = False

    def __post_init__(self):
        for name in ("video_shape", "subscale_factor", "context_kernel"):
            object.__setattr__(self, name, _check_shape3(getattr(self, name), name))
        if any(n % s for n, s in zip(self.video_shape, self.subscale_factor)):
            raise ValueError(
                f"subscale_factor={self.subscale_factor} must divide video_shape={self.video_shape}"
            )
        for name in ("hidden_size", "embedding_size", "head_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.conditioning_size < 0:
            raise ValueError(f"conditioning_size must be >= 0, got {self.conditioning_size}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        stacks = {"encoder_layers": self.encoder_layers, "decoder_layers": self.decoder_layers}
        if self.first_slice_decoder_layers is not None:
            stacks["first_slice_decoder_layers"] = self.first_slice_decoder_layers
        for name, layers in stacks.items():
            if not layers:
                raise ValueError(f"{name} must hold at least one LayerConfig, got {layers!r}")
            for i, layer in enumerate(layers):
                if not isinstance(layer, LayerConfig):
                    raise TypeError(f"{name}[{i}] must be a LayerConfig, got {type(layer)}")
                if any(n % b for n, b in zip(self.slice_shape, layer.block_shape)):
                    raise ValueError(
                        f"{name}[{i}].block_shape={layer.block_shape} must divide the "
                        f"slice shape {self.slice_shape}"
                    )

    @property
    def slice_shape(self) -> Shape3:
        """`(T/st, H/sh, W/sw)`."""
        return tuple(n // s for n, s in zip(self.video_shape, self.subscale_factor))

    @property
    def num_slices(self) -> int:
        """`S = st * sh * sw`."""
        return math.prod(self.subscale_factor)

    @property
    def slice_offsets(self) -> list[Shape3]:
        """Slice offsets `(a, b, c)` in generation order."""
        return subscale.slice_order(self.subscale_factor)


def paper_config(
    variant: str = "spatiotemporal", size: str = "base", *, first_slice_decoder: bool = False
) -> VideoTransformerConfig:
    """The exact section 4.1 configurations.

    Args:
      variant: `"spatiotemporal"` (s = (4, 2, 2) on 16x64x64, k = s), `"spatial"`
        (s = (1, 2, 2) on 4x64x64, k = s) or `"single_frame"` (s = (16, 1, 1) on 16x64x64,
        k = (6, 1, 1)).
      size: `"base"` (d = 512, de = 128, 8 heads of 128; 46M parameters) or `"large"`
        (d = 2048, 16 heads in the last 4 encoder and decoder layers; 373M parameters).
      first_slice_decoder: add the Kinetics 16-layer first-slice decoder (section 4.3).

    Returns:
      A `VideoTransformerConfig`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if variant == "spatiotemporal":
        video, factor, kernel, blocks = (16, 64, 64), (4, 2, 2), (4, 2, 2), SLICE_BLOCKS
    elif variant == "spatial":
        video, factor, kernel, blocks = (4, 64, 64), (1, 2, 2), (1, 2, 2), SLICE_BLOCKS
    else:
        video, factor, kernel, blocks = (16, 64, 64), (16, 1, 1), (6, 1, 1), SINGLE_FRAME_BLOCKS
    hidden, heads = (512, (8, 8)) if size == "base" else (2048, (8, 16))
    layers = layer_schedule(blocks, heads)
    return VideoTransformerConfig(
        video_shape=video,
        subscale_factor=factor,
        context_kernel=kernel,
        hidden_size=hidden,
        embedding_size=128,
        head_dim=128,
        encoder_layers=layers,
        decoder_layers=layers,
        # Twice as deep as the subscale decoder since it needs no encoder (section 4.3).
        first_slice_decoder_layers=layers + layers if first_slice_decoder else None,
    )


def tiny_config(
    *,
    first_slice_decoder: bool = False,
    conditioning_size: int = 0,
    video_shape: Shape3 = (4, 8, 8),
    subscale_factor: Shape3 = (2, 2, 2),
    attention_implementation: str = "auto",
    hidden_size: int = 32,
    num_layers: int = 2,
    context_kernel: Shape3 | None = None,
) -> VideoTransformerConfig:
    """A small model for CPUs: by default two layers on 4x8x8 videos (slices of 2x4x4).

    Args:
      first_slice_decoder, conditioning_size, attention_implementation: as in
        `VideoTransformerConfig`.
      video_shape: `(T, H, W)` window.
      subscale_factor: `s`; must divide `video_shape`.
      hidden_size: `d`, a multiple of 16; `d / 16` heads of 8 features, `de = d / 2`.
      num_layers: layers per stack (encoder and decoder), alternating blocks of
        `(t, h / 2, w)` and `(1, h, w)` of the slice `(t, h, w)`, as the paper's schedule does.
      context_kernel: the encoder's context kernel `k` (None: `k = s`).
    """
    if hidden_size < 16 or hidden_size % 16:
        raise ValueError(f"hidden_size must be a positive multiple of 16, got {hidden_size}")
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if any(n % s for n, s in zip(video_shape, subscale_factor)):
        raise ValueError(
            f"subscale_factor={tuple(subscale_factor)} must divide video_shape={tuple(video_shape)}"
        )
    slice_shape = tuple(n // s for n, s in zip(video_shape, subscale_factor))
    t, h, w = slice_shape
    heads = hidden_size // 16
    pattern = (LayerConfig((t, max(h // 2, 1), w), heads), LayerConfig((1, h, w), heads))
    layers = tuple(pattern[i % 2] for i in range(num_layers))
    return VideoTransformerConfig(
        video_shape=video_shape,
        subscale_factor=subscale_factor,
        context_kernel=subscale_factor if context_kernel is None else context_kernel,
        hidden_size=hidden_size,
        embedding_size=hidden_size // 2,
        head_dim=8,
        encoder_layers=layers,
        decoder_layers=layers,
        first_slice_decoder_layers=layers if first_slice_decoder else None,
        conditioning_size=conditioning_size,
        attention_implementation=attention_implementation,
    )
