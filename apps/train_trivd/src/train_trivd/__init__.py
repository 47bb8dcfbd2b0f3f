"""Training (`train-trivd`) and sampling (`sample-trivd`) entrypoints for TrIVD-GAN-FP."""

from train_trivd.evaluate import Evaluator, Predictor, fvd_frames, motion_image
from train_trivd.motion import end_point_error, motion_field, true_flow_for_predictions
from train_trivd.train import load_run_config, model_config, train_and_evaluate, train_config

__all__ = [
    "Evaluator",
    "Predictor",
    "end_point_error",
    "fvd_frames",
    "load_run_config",
    "model_config",
    "motion_field",
    "motion_image",
    "train_and_evaluate",
    "train_config",
    "true_flow_for_predictions",
]
