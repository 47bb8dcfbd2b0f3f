"""Fréchet Video Distance and Inception Score with the Kinetics-400 I3D network, offline."""

from fvd.distance import fvd, kvd, video_statistics
from fvd.embedding import classify, embed, embed_async, kinetics400_labels
from fvd.frechet import COVARIANCE_EPS, frechet_distance, inception_score, kernel_distance
from fvd.i3d import MIN_FRAMES, InceptionI3d
from fvd.resize import resize_bilinear_tf1
from fvd.statistics import FVDStatistics
from fvd.tfhub import convert_tfhub_variables, load_tfhub_variables
from fvd.weights import NumpyOnlyUnpickler, UnsafePickleError, load_i3d_variables, load_numpy_pickle

__all__ = [
    "COVARIANCE_EPS",
    "MIN_FRAMES",
    "FVDStatistics",
    "InceptionI3d",
    "NumpyOnlyUnpickler",
    "UnsafePickleError",
    "classify",
    "convert_tfhub_variables",
    "embed",
    "embed_async",
    "frechet_distance",
    "fvd",
    "inception_score",
    "kernel_distance",
    "kinetics400_labels",
    "kvd",
    "load_i3d_variables",
    "load_numpy_pickle",
    "load_tfhub_variables",
    "resize_bilinear_tf1",
    "video_statistics",
]
