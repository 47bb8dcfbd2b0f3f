"""TrIVD-GAN-FP: transformation-based adversarial video prediction (Luc et al., 2020)."""

from gan_video.batchnorm import BN_MODES, ConditionalBatchNorm, reset_standing_stats
from gan_video.blocks import DBlock, GBlock, avg_pool_spatial, upsample_nearest
from gan_video.config import (
    DECOMPOSITIONS,
    FRAME_SAMPLING,
    RECURRENT_UNIT_NAMES,
    ModelConfig,
    TrainConfig,
    get_preset,
)
from gan_video.decompositions import SUB_DISCRIMINATOR_KINDS, sub_discriminator_input
from gan_video.discriminator import (
    Discriminator,
    DNetwork,
    MixedProjectionHead,
    mixed_projection,
)
from gan_video.ema import ema_update
from gan_video.generator import Encoder, Generator, sample_latents
from gan_video.losses import (
    discriminator_hinge_loss,
    generator_hinge_loss,
    orthogonal_regularization,
)
from gan_video.recurrent import (
    RECURRENT_UNITS,
    TSRU,
    ConvGRU,
    ConvLSTM,
    FactorizedHypernet,
    KTrajGRU,
    PixelwiseHypernet,
    adaptive_max_pool,
    make_recurrent_unit,
)
from gan_video.spectral_norm import (
    SNConv,
    SNLinear,
    SpectralState,
    prenormalize,
    refresh_spectral_vectors,
    spectral_normalize,
)
from gan_video.train_step import GANFunctions, make_gan

__all__ = [
    "BN_MODES",
    "DECOMPOSITIONS",
    "FRAME_SAMPLING",
    "RECURRENT_UNITS",
    "RECURRENT_UNIT_NAMES",
    "SUB_DISCRIMINATOR_KINDS",
    "TSRU",
    "ConditionalBatchNorm",
    "ConvGRU",
    "ConvLSTM",
    "DBlock",
    "DNetwork",
    "Discriminator",
    "Encoder",
    "FactorizedHypernet",
    "GANFunctions",
    "GBlock",
    "Generator",
    "KTrajGRU",
    "MixedProjectionHead",
    "ModelConfig",
    "PixelwiseHypernet",
    "SNConv",
    "SNLinear",
    "SpectralState",
    "TrainConfig",
    "adaptive_max_pool",
    "avg_pool_spatial",
    "discriminator_hinge_loss",
    "ema_update",
    "generator_hinge_loss",
    "get_preset",
    "make_gan",
    "make_recurrent_unit",
    "mixed_projection",
    "orthogonal_regularization",
    "prenormalize",
    "refresh_spectral_vectors",
    "reset_standing_stats",
    "sample_latents",
    "spectral_normalize",
    "sub_discriminator_input",
    "upsample_nearest",
]
