"""Metric writers (clu: TensorBoard + console) and a progress line with step, steps/s, ETA and losses."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

log = logging.getLogger(__name__)


class JsonlWriter:
    """Fallback writer (console log + `metrics.jsonl`) used when clu's TensorBoard writer is missing.

    clu's `metric_writers` imports TensorFlow and `tensorboard`; install the `[tfds]` extra (or
    `tensorboard`) to get TensorBoard event files. Implements the clu `MetricWriter` subset the
    trainer uses.
    """

    def __init__(self, logdir: str | None):
        self._file = None
        if logdir is not None:
            os.makedirs(logdir, exist_ok=True)
            self._file = open(os.path.join(logdir, "metrics.jsonl"), "a")  # noqa: SIM115

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        values = {k: float(np.asarray(v)) for k, v in scalars.items()}
        log.info("[%d] %s", step, ", ".join(f"{k}={v:.6g}" for k, v in values.items()))
        if self._file:
            self._file.write(json.dumps({"step": step, **values}) + "\n")

    def write_images(self, step: int, images: Mapping[str, Any]) -> None:
        log.info("[%d] images: %s", step, {k: np.shape(v) for k, v in images.items()})

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        log.info("hparams: %s", dict(hparams))

    def flush(self) -> None:
        if self._file:
            self._file.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


def create_writer(logdir: str | None, *, backend: str = "auto", asynchronous: bool = True) -> Any:
    """clu `create_default_writer` (TensorBoard + logging) on process 0, logging elsewhere.

    Args:
      logdir: where event files (or `metrics.jsonl`) go.
      backend: "clu" (TensorBoard; needs tensorflow + tensorboard), "jsonl" (console +
        `metrics.jsonl`, no TensorFlow import) or "auto" (clu when tensorboard is installed).
      asynchronous: clu writes in a background thread.
    """
    if backend not in ("auto", "clu", "jsonl"):
        raise ValueError(f"backend must be 'auto', 'clu' or 'jsonl', got {backend!r}")
    if backend == "auto":
        backend = "clu" if importlib.util.find_spec("tensorboard") else "jsonl"
        if backend == "jsonl":
            log.warning("tensorboard not installed: writing metrics.jsonl instead of TensorBoard")
    if backend == "jsonl":
        return JsonlWriter(logdir if jax.process_index() == 0 else None)
    from clu import metric_writers

    return metric_writers.create_default_writer(
        logdir, just_logging=jax.process_index() > 0, asynchronous=asynchronous
    )


def format_duration(seconds: float) -> str:
    """`3725.0` -> `"1:02:05"`."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressLine:
    """One console line: `step 120/1000 | 3.41 steps/s | ETA 0:04:18 | loss 0.123`.

    Args:
      total_steps: final step (for the ETA).
      start_step: the step training (re)started from, so a resumed run's rate is right.
      stream: where to print (stdout); only process 0 prints.
    """

    def __init__(self, total_steps: int, start_step: int = 0, stream: Any = None):
        self.total, self.start = total_steps, start_step
        self.stream = stream or sys.stdout
        self._t0 = time.perf_counter()
        self._last_step, self._last_time = start_step, self._t0

    def format(self, step: int, metrics: Mapping[str, Any]) -> str:
        now = time.perf_counter()
        rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
        self._last_step, self._last_time = step, now
        overall = (step - self.start) / max(now - self._t0, 1e-9)
        eta = (self.total - step) / overall if overall > 0 else float("inf")
        values = " ".join(f"{k} {float(np.asarray(v)):.4g}" for k, v in metrics.items())
        eta_s = format_duration(eta) if np.isfinite(eta) else "?"
        return f"step {step}/{self.total} | {rate:.2f} steps/s | ETA {eta_s} | {values}"

    def update(self, step: int, metrics: Mapping[str, Any]) -> str:
        line = self.format(step, metrics)
        if jax.process_index() == 0:
            print(line, file=self.stream, flush=True)
        return line
