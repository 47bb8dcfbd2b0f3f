"""The Video Transformer (Weissenborn et al., 2020): a subscale autoregressive video model."""

from ar_video.channel_heads import ChannelHeads, log_likelihood
from ar_video.config import (
    NUM_CHANNELS,
    NUM_VALUES,
    LayerConfig,
    VideoTransformerConfig,
    layer_schedule,
    paper_config,
    tiny_config,
)
from ar_video.layers import TransformerLayer
from ar_video.model import (
    VideoTransformer,
    bits_per_dim,
    channels_to_video,
    negative_log_likelihood,
    slice_loss_mask,
    video_to_channels,
)
from ar_video.sampling import sample, sample_window
from ar_video.slice_decoder import SliceDecoder, causal_conv_mask
from ar_video.slice_encoder import SliceEncoder
from ar_video.train_step import (
    init_train_state,
    make_optimizer,
    make_train_step,
    slice_batch_loss,
)

__all__ = [
    "NUM_CHANNELS",
    "NUM_VALUES",
    "ChannelHeads",
    "LayerConfig",
    "SliceDecoder",
    "SliceEncoder",
    "TransformerLayer",
    "VideoTransformer",
    "VideoTransformerConfig",
    "bits_per_dim",
    "causal_conv_mask",
    "channels_to_video",
    "init_train_state",
    "layer_schedule",
    "log_likelihood",
    "make_optimizer",
    "make_train_step",
    "negative_log_likelihood",
    "paper_config",
    "sample",
    "sample_window",
    "slice_batch_loss",
    "slice_loss_mask",
    "tiny_config",
    "video_to_channels",
]
