"""Dataset sources: tfds BAIR / UCF-101 / Moving MNIST and a folder + CSV (embedded sets: `data.embedded`)."""

from video_training.data.sources.bair import BairSource, balanced_split_index
from video_training.data.sources.base import VideoSource
from video_training.data.sources.folder import FolderSource
from video_training.data.sources.tfds_video import (
    TfdsVideoSource,
    moving_mnist_source,
    ucf101_source,
)

__all__ = [
    "BairSource",
    "FolderSource",
    "TfdsVideoSource",
    "VideoSource",
    "balanced_split_index",
    "moving_mnist_source",
    "ucf101_source",
]
