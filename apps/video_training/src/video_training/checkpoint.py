"""Orbax checkpoints of train state, RNG and data-iterator state: periodic, keep-last-K, SIGTERM, resume."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import grain.python as grain
import jax
import numpy as np
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


class Checkpointer:
    """Saves `{"state", "rng"}` plus the grain iterator state under `<directory>/<step>/`.

    Usage (what `Trainer` does):

        ckpt = Checkpointer(workdir + "/checkpoints", every=1000, keep=3)
        restored = ckpt.restore_latest(abstract_tree, data_iter)   # None on a fresh run
        ...
        if ckpt.should_save(step):
            ckpt.save(step, tree, data_iter)

    A SIGTERM (preemption notice) sets `preemption_requested`; `should_save` then returns True
    so the loop saves and stops. Incomplete saves (killed mid-write) are never restored:
    Orbax writes to a temporary directory and renames it on success.

    Args:
      directory: checkpoint root (created if missing).
      every: save period in steps.
      keep: number of newest checkpoints kept.
      async_save: write in a background thread (the train loop continues).
      handle_sigterm: install the SIGTERM handler (main thread only).
    """

    def __init__(
        self,
        directory: str,
        *,
        every: int = 1000,
        keep: int = 3,
        async_save: bool = True,
        handle_sigterm: bool = True,
    ):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory, self.every = os.path.abspath(directory), every
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, create=True, enable_async_checkpointing=async_save
            ),
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "data": grain.PyGrainCheckpointHandler(),
            },
        )
        self.preemption_requested = False
        self._previous_handler = None
        if handle_sigterm:
            try:
                self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
            except ValueError:  # not the main thread
                log.warning("SIGTERM handler not installed (not in the main thread)")

    def _on_sigterm(self, signum, frame) -> None:
        log.warning("SIGTERM received: saving a checkpoint at the end of this step, then stopping")
        self.preemption_requested = True

    def preempted(self) -> bool:
        """Whether any process received SIGTERM (agreed across processes in multi-host runs)."""
        flag = self.preemption_requested
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            flag = bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))
        return flag

    def should_save(self, step: int, *, last_step: bool = False) -> bool:
        """True every `every` steps, at the last step, and after SIGTERM."""
        return step % self.every == 0 or last_step or self.preempted()

    def latest_step(self) -> int | None:
        """Newest complete checkpoint step, or None."""
        return self.manager.latest_step()

    def save(self, step: int, tree: Any, data_iter: Any = None) -> None:
        """Saves `tree` (pytree of arrays) and, if given, the grain iterator's position."""
        items = {"state": ocp.args.StandardSave(tree)}
        if data_iter is not None:
            items["data"] = grain.PyGrainCheckpointSave(data_iter)
        self.manager.save(step, args=ocp.args.Composite(**items), force=True)

    def restore_latest(self, abstract_tree: Any, data_iter: Any = None) -> tuple[int, Any] | None:
        """Restores the newest checkpoint into `abstract_tree`'s shapes/shardings.

        Args:
          abstract_tree: pytree of `jax.ShapeDtypeStruct` with `.sharding` (from `eval_shape`).
          data_iter: grain iterator whose state is restored in place (None: skipped).

        Returns:
          `(step, tree)`, or None if there is no checkpoint.
        """
        step = self.latest_step()
        if step is None:
            return None
        items = {"state": ocp.args.StandardRestore(abstract_tree)}
        if data_iter is not None:
            items["data"] = grain.PyGrainCheckpointRestore(data_iter)
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        log.info("restored checkpoint at step %d from %s", step, self.directory)
        return step, restored["state"]

    def wait(self) -> None:
        """Blocks until background saves are on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        """Finishes pending saves and restores the previous SIGTERM handler."""
        self.manager.wait_until_finished()
        self.manager.close()
        if self._previous_handler is not None:
            try:
                signal.signal(signal.SIGTERM, self._previous_handler)
            except ValueError:
                pass
            self._previous_handler = None


def _tree_key(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def save_tree(tree: Any, path: str) -> None:
    """Writes every array leaf of `tree` to the `.npz` file `path`, keyed by its tree path.

    For small exported models (parameters without optimizer state); written to a temporary
    file first and renamed, so `path` is never half written.
    """
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    arrays = {_tree_key(p): np.asarray(jax.device_get(v)) for p, v in leaves}
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_tree(abstract: Any, path: str) -> Any:
    """Reads a `save_tree` file into the structure of `abstract` (shapes and dtypes of its leaves).

    Raises:
      ValueError: a leaf of `abstract` is missing from the file or stored with another shape.
    """
    with np.load(path) as stored:
        leaves, treedef = jax.tree_util.tree_flatten_with_path(abstract)
        out = []
        for p, leaf in leaves:
            key = _tree_key(p)
            if key not in stored:
                raise ValueError(f"{path} has no array {key!r}: saved from another model?")
            value = stored[key]
            if value.shape != tuple(leaf.shape):
                raise ValueError(
                    f"{path}: {key!r} has shape {value.shape}, the model expects "
                    f"{tuple(leaf.shape)}"
                )
            out.append(jax.numpy.asarray(value, dtype=leaf.dtype))
    return jax.tree_util.tree_unflatten(treedef, out)
