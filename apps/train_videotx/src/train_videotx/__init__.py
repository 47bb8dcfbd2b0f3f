"""Training (`train-videotx`) and sampling (`sample-videotx`) apps for the Video Transformer."""

import importlib

_EXPORTS = {
    "RunSummary": "train_videotx.train",
    "train": "train_videotx.train",
    "Evaluator": "train_videotx.evaluation",
    "continue_videos": "train_videotx.evaluation",
    "fvd_metrics": "train_videotx.evaluation",
    "model_config": "train_videotx.model",
    "restore_params": "train_videotx.model",
}

__all__ = [
    "Evaluator",
    "RunSummary",
    "continue_videos",
    "fvd_metrics",
    "model_config",
    "restore_params",
    "train",
]


def __getattr__(name):
    # Lazy: `train-videotx --help` and config parsing do not import JAX.
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'train_videotx' has no attribute {name!r}")
