"""Frozen model and training hyper-parameters for TrIVD-GAN-FP, with tiny/medium/large presets."""

from __future__ import annotations

import dataclasses

__all__ = ["DECOMPOSITIONS", "RECURRENT_UNIT_NAMES", "ModelConfig", "TrainConfig", "get_preset"]

RECURRENT_UNIT_NAMES = ("convgru", "convlstm", "k_trajgru", "tsru_c", "tsru_p", "tsru_s", "ptsru")
# The units that warp their hidden state with per-pixel kernels (report `warp_weights`).
WARPING_UNITS = ("k_trajgru", "tsru_c", "tsru_p", "tsru_s", "ptsru")

# Sub-discriminator inputs per decomposition (Table 1).
DECOMPOSITIONS: dict[str, tuple[str, ...]] = {
    "clip": ("clV",),
    "downsampled": ("dV",),
    "cropped": ("crV",),
    "cropped_downsampled": ("crV", "dV"),
    "mocogan": ("F", "clV"),
    "dvd_gan_fp": ("F", "dV"),
    "dvd_gan_fp_faster": ("dF", "crV"),
    "dvd_gan_fp_stronger": ("dF", "crV", "dV"),
}


ACTIVATION_DTYPES = ("float32", "bfloat16")
FRAME_SAMPLING = ("predicted", "all")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of G, E and D.

    Generator channel schedule (`g_channel_multipliers = (m0, m1, m2, m3)`, times `g_ch`):
    the linear embedding gives `resolution/8` features with `m0 ch`; stage i (i = 0, 1, 2)
    runs its recurrent unit with input and hidden width `m_i ch`, then a per-frame conv to
    `m_{i+1} ch` and two G blocks at `m_{i+1} ch`, the second upsampling x2. The default
    (8, 8, 4, 2) gives, at 64x64: 8x8x8ch -> 16x16x8ch -> 32x32x4ch -> 64x64x2ch -> RGB.

    Discriminator (and encoder) channels: block j outputs `d_channel_multipliers[j] * d_ch`.

    Attributes:
      resolution: frame size H = W (divisible by 8).
      num_cond_frames: conditioning frames given to G (5 on Kinetics, 1 on BAIR).
      num_pred_frames: frames G predicts (11 on Kinetics, 15 on BAIR).
      channels: image channels.
      g_ch: generator channel multiplier (48 medium, 92, 120 large).
      d_ch: discriminator and encoder channel multiplier.
      g_channel_multipliers: see above.
      d_channel_multipliers: 5 per-block multipliers of the BigGAN D.
      z_dim: latent size (128).
      class_dim: class-embedding size (128).
      num_classes: 0 for the unconditional dummy zero class.
      recurrent_unit: one of RECURRENT_UNIT_NAMES.
      warp_size: k of warp kernels (3).
      num_warp_kernels: N of the factorized basis (9).
      min_warp_side: a warping `recurrent_unit` runs only on the stages whose maps are at
        least this many pixels on a side; the smaller maps get a ConvGRU. 0 (default, the
        paper): every stage warps. Not in the paper: at 64 px its stages are 8x8, 16x16 and
        32x32, while at 16 px frames they are 2x2, 4x4 and 8x8, where a 3x3 kernel spans the
        coarse maps; 8 keeps warps on maps of the paper's smallest size.
      decomposition: one of DECOMPOSITIONS.
      num_sampled_frames: K frames judged by the frame discriminators (8).
      frame_sampling: where F and dF take their K frames: "predicted" (default: among the
        predicted frames of real and fake clips alike; the frame D "assesses single frame
        content", and a real conditioning frame inside a fake clip would be a fake label D
        can never learn) or "all" (among all T frames, conditioning ones included).
      downsample_factor: s (2).
      bn_axis_name: mapped axis for cross-replica BN inside shard_map/pmap (None under jit).
      dtype: activation dtype, "float32" or "bfloat16" (the paper does not say which it used;
        bf16 activations are TPU practice). Parameters, optimizer state, batch-norm statistics,
        the spectral norm's power iteration and the losses stay float32.
      remat: recompute in the backward pass instead of storing: every recurrent step, G block
        and sub-discriminator keeps only its inputs (less memory, about one more forward pass
        of compute; the same values).
    """

    resolution: int = 64
    num_cond_frames: int = 5
    num_pred_frames: int = 11
    channels: int = 3
    g_ch: int = 48
    d_ch: int = 48
    g_channel_multipliers: tuple[int, int, int, int] = (8, 8, 4, 2)
    d_channel_multipliers: tuple[int, int, int, int, int] = (1, 2, 4, 8, 16)
    z_dim: int = 128
    class_dim: int = 128
    num_classes: int = 0
    recurrent_unit: str = "tsru_p"
    warp_size: int = 3
    num_warp_kernels: int = 9
    min_warp_side: int = 0
    decomposition: str = "dvd_gan_fp_stronger"
    num_sampled_frames: int = 8
    frame_sampling: str = "predicted"
    downsample_factor: int = 2
    bn_axis_name: str | None = None
    dtype: str = "float32"
    remat: bool = False

    def __post_init__(self):
        if self.dtype not in ACTIVATION_DTYPES:
            raise ValueError(f"dtype must be one of {ACTIVATION_DTYPES}, got {self.dtype!r}")
        if not isinstance(self.remat, bool):
            raise TypeError(f"remat must be a bool, got {self.remat!r}")
        if self.resolution % 8 or self.resolution < 8:
            raise ValueError(f"resolution must be a positive multiple of 8, got {self.resolution}")
        if self.recurrent_unit not in RECURRENT_UNIT_NAMES:
            raise ValueError(
                f"recurrent_unit must be one of {RECURRENT_UNIT_NAMES}, got {self.recurrent_unit!r}"
            )
        if not isinstance(self.min_warp_side, int) or isinstance(self.min_warp_side, bool):
            raise TypeError(f"min_warp_side must be an int >= 0, got {self.min_warp_side!r}")
        if self.min_warp_side < 0:
            raise ValueError(f"min_warp_side must be an int >= 0, got {self.min_warp_side}")
        finest = self.stage_sides[-1]
        if self.recurrent_unit in WARPING_UNITS and self.min_warp_side > finest:
            raise ValueError(
                f"min_warp_side must be <= {finest} (the finest stage's side, resolution / 2, "
                f"so that some stage warps), got {self.min_warp_side}"
            )
        if self.decomposition not in DECOMPOSITIONS:
            raise ValueError(
                f"decomposition must be one of {tuple(DECOMPOSITIONS)}, got {self.decomposition!r}"
            )
        if len(self.g_channel_multipliers) != 4:
            raise ValueError(
                f"g_channel_multipliers needs 4 entries, got {self.g_channel_multipliers}"
            )
        if len(self.d_channel_multipliers) != 5:
            raise ValueError(
                f"d_channel_multipliers needs 5 entries, got {self.d_channel_multipliers}"
            )
        if self.num_cond_frames < 1 or self.num_pred_frames < 1:
            raise ValueError(
                f"num_cond_frames and num_pred_frames must be >= 1, got "
                f"{self.num_cond_frames}, {self.num_pred_frames}"
            )
        if self.frame_sampling not in FRAME_SAMPLING:
            raise ValueError(
                f"frame_sampling must be one of {FRAME_SAMPLING}, got {self.frame_sampling!r}"
            )
        available = self.num_frames - self.first_sampled_frame
        if not 1 <= self.num_sampled_frames <= available:
            raise ValueError(
                f"num_sampled_frames must be in [1, {available}] (frame_sampling="
                f"{self.frame_sampling!r}), got {self.num_sampled_frames}"
            )
        if self.resolution % (8 * self.downsample_factor):
            raise ValueError(
                f"resolution {self.resolution} must be divisible by 8 * downsample_factor "
                f"({self.downsample_factor})"
            )

    @property
    def stage_sides(self) -> tuple[int, int, int]:
        """Map side of each of G's three recurrent stages, coarse to fine (H/8, H/4, H/2)."""
        return tuple(self.resolution // 8 * 2**i for i in range(3))

    def stage_units(self) -> tuple[str, ...]:
        """The recurrent unit of each of G's three stages, coarse to fine (see min_warp_side)."""
        warps = self.recurrent_unit in WARPING_UNITS
        return tuple(
            "convgru" if warps and side < self.min_warp_side else self.recurrent_unit
            for side in self.stage_sides
        )

    @property
    def first_sampled_frame(self) -> int:
        """First frame the frame discriminators may sample (see `frame_sampling`)."""
        return self.num_cond_frames if self.frame_sampling == "predicted" else 0

    @property
    def num_frames(self) -> int:
        """Frames D sees: conditioning + predicted."""
        return self.num_cond_frames + self.num_pred_frames

    @property
    def cond_dim(self) -> int:
        """Width of G's conditioning vector [z; class embedding] (256)."""
        return self.z_dim + self.class_dim


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation hyper-parameters (appendix E).

    Attributes:
      g_lr: generator Adam learning rate (1e-4).
      d_lr: discriminator Adam learning rate (5e-4).
      b1: Adam beta1 (0).
      b2: Adam beta2 (0.999).
      d_steps: discriminator updates per generator update (2).
      ortho_weight: orthogonal-regularisation weight on G (1e-4).
      ema_decay: decay of the EMA of G's weights (0.9999).
      ema_start: step at which the EMA starts from the current weights (20000).
      recon_weight: weight of a mean squared error between G's predicted frames and the
        real continuation (frames in [-1, 1]) added to G's adversarial loss. 0: the paper
        (TrIVD-GAN-FP has no reconstruction loss); > 0 is a GAN + L2 hybrid in the manner of
        Mathieu et al. 2016, not the paper's method.
    """

    g_lr: float = 1e-4
    d_lr: float = 5e-4
    b1: float = 0.0
    b2: float = 0.999
    d_steps: int = 2
    ortho_weight: float = 1e-4
    ema_decay: float = 0.9999
    ema_start: int = 20_000
    recon_weight: float = 0.0

    def __post_init__(self):
        if self.d_steps < 1:
            raise ValueError(f"d_steps must be >= 1, got {self.d_steps}")
        if not self.recon_weight >= 0.0:
            raise ValueError(f"recon_weight must be >= 0, got {self.recon_weight}")
        if not 0.0 <= self.ema_decay <= 1.0:
            raise ValueError(f"ema_decay must be in [0, 1], got {self.ema_decay}")


def get_preset(name: str, **overrides) -> ModelConfig:
    """Returns a named ModelConfig.

    Args:
      name: "tiny" (16x16, 2 -> 3 frames, ch 4; runs on a CPU), "tiny32" (32x32),
        "medium" (64x64, 5 -> 11, ch 48) or "large" (ch 120).
      **overrides: fields to replace.
    """
    presets = {
        "tiny": ModelConfig(
            resolution=16,
            num_cond_frames=2,
            num_pred_frames=3,
            g_ch=4,
            d_ch=4,
            z_dim=8,
            class_dim=8,
            num_sampled_frames=2,
        ),
        "tiny32": ModelConfig(
            resolution=32,
            num_cond_frames=2,
            num_pred_frames=4,
            g_ch=8,
            d_ch=8,
            z_dim=16,
            class_dim=16,
            num_sampled_frames=4,
        ),
        "medium": ModelConfig(g_ch=48, d_ch=48),
        "large": ModelConfig(g_ch=120, d_ch=120),
    }
    if name not in presets:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {name!r}")
    return dataclasses.replace(presets[name], **overrides)
