"""Compile for TPUs and NVIDIA GPUs you do not have: compile-only devices and compile reports."""

from compile_targets.report import (
    CompileReport,
    abstract,
    abstract_like,
    compile_for,
    format_bytes,
    short_error,
)
from compile_targets.targets import (
    GPU_TARGETS,
    TPU_EXAMPLES,
    Target,
    TargetUnavailableError,
    get_target,
    prefer_cpu_host,
)

__all__ = [
    "GPU_TARGETS",
    "TPU_EXAMPLES",
    "CompileReport",
    "Target",
    "TargetUnavailableError",
    "abstract",
    "abstract_like",
    "compile_for",
    "format_bytes",
    "get_target",
    "prefer_cpu_host",
    "short_error",
]
