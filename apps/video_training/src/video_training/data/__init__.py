"""Video data: prepare sources once into ArrayRecord clips, read them with grain."""

from video_training.data.decode import VideoDecodeError, decode_video
from video_training.data.embedded import (
    CameraMotionSource,
    SkvideoClipsSource,
    build_embedded,
    detect_shot_cuts,
    render_camera_motion,
)
from video_training.data.loader import Decode, make_loader
from video_training.data.prepare import (
    ClipSpec,
    load_info,
    prepare,
    split_paths,
    video_to_clips,
    write_split,
)
from video_training.data.preprocess import (
    CenterCrop,
    RandomCrop,
    RandomSymmetry,
    RandomWindow,
    ToSymmetric,
    resize_smallest_side,
    to_symmetric,
    trivd_spatial,
    trivd_transforms,
    vt_spatial,
    vt_transforms,
)
from video_training.data.records import decode_example, encode_example

__all__ = [
    "CameraMotionSource",
    "CenterCrop",
    "ClipSpec",
    "Decode",
    "RandomCrop",
    "RandomSymmetry",
    "RandomWindow",
    "SkvideoClipsSource",
    "ToSymmetric",
    "VideoDecodeError",
    "build_embedded",
    "decode_example",
    "decode_video",
    "detect_shot_cuts",
    "encode_example",
    "load_info",
    "make_loader",
    "prepare",
    "render_camera_motion",
    "resize_smallest_side",
    "split_paths",
    "to_symmetric",
    "trivd_spatial",
    "trivd_transforms",
    "video_to_clips",
    "vt_spatial",
    "vt_transforms",
    "write_split",
]
