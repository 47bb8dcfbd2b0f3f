"""Video datasets (prepared once, read with grain) and training infrastructure shared by the apps."""

from video_training.batchnorm import CrossReplicaBatchNorm, batch_moments, normalize
from video_training.checkpoint import Checkpointer, load_tree, save_tree
from video_training.config import (
    ConfigError,
    ConfigNotFoundError,
    UnknownFieldError,
    apply_override,
    check_choice,
    check_field,
    check_int,
    check_number,
    define_config_flag,
    get_field,
    load_config_file,
    parse_config_args,
)
from video_training.mesh import (
    DATA_AXIS,
    MODEL_AXIS,
    batch_sharding,
    host_to_global,
    initialize_distributed,
    make_mesh,
    replicated,
)
from video_training.metrics import JsonlWriter, ProgressLine, create_writer
from video_training.nan_guard import NonFiniteLossError, check_metrics, tree_is_finite
from video_training.trainer import PeriodicHook, Trainer, TrainerConfig, TrainResult, count_params
from video_training.video_io import (
    GRID_MIN_SIZE,
    flow_grid,
    sample_grid,
    to_uint8,
    write_gif,
    write_mp4,
)

__all__ = [
    "DATA_AXIS",
    "GRID_MIN_SIZE",
    "MODEL_AXIS",
    "Checkpointer",
    "ConfigError",
    "ConfigNotFoundError",
    "CrossReplicaBatchNorm",
    "JsonlWriter",
    "NonFiniteLossError",
    "PeriodicHook",
    "ProgressLine",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "UnknownFieldError",
    "apply_override",
    "batch_moments",
    "batch_sharding",
    "check_choice",
    "check_field",
    "check_int",
    "check_metrics",
    "check_number",
    "count_params",
    "create_writer",
    "define_config_flag",
    "flow_grid",
    "get_field",
    "host_to_global",
    "initialize_distributed",
    "load_config_file",
    "load_tree",
    "make_mesh",
    "normalize",
    "parse_config_args",
    "replicated",
    "sample_grid",
    "save_tree",
    "to_uint8",
    "tree_is_finite",
    "write_gif",
    "write_mp4",
]
