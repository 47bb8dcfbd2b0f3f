"""A generic data-parallel training loop composing mesh, checkpoints, metrics and the NaN guard."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from video_training.checkpoint import Checkpointer
from video_training.mesh import batch_sharding, host_to_global, make_mesh, replicated
from video_training.metrics import ProgressLine, create_writer
from video_training.nan_guard import NonFiniteLossError, check_metrics, tree_is_finite

log = logging.getLogger(__name__)

State = Any  # a pytree with an integer scalar at state["step"]
InitFn = Callable[[jax.Array], State]
UpdateFn = Callable[[State, jax.Array, Any], tuple[State, Mapping[str, jax.Array]]]


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Loop settings (the apps fill these from their ConfigDicts).

    Attributes:
      workdir: checkpoints go to `workdir/checkpoints`, metrics to `workdir`.
      num_steps: total updates; a resumed run continues up to this number.
      seed: base RNG seed; step `s` uses `fold_in(train_rng, s)`.
      log_every: metrics/progress-line period.
      checkpoint_every: checkpoint period (plus the last step and SIGTERM).
      keep_checkpoints: newest checkpoints kept.
      eval_every: `eval_fn` period (0: never).
      check_finite_every: NaN/Inf check period on the step's metrics (0: only at checkpoints).
        Each check fetches the metrics to the host (a sync); raise it for very fast steps.
      async_checkpoints: write checkpoints in the background.
      model_parallelism: size of the mesh's `model` axis.
      metrics_backend: "auto", "clu" or "jsonl" (see `create_writer`).
    """

    workdir: str
    num_steps: int
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    eval_every: int = 0
    check_finite_every: int = 1
    async_checkpoints: bool = True
    model_parallelism: int = 1
    metrics_backend: str = "auto"

    def __post_init__(self):
        for name in ("num_steps", "log_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class PeriodicHook:
    """Calls `fn(step, state, metrics)` every `every` steps (samples, FVD, ...).

    `fn` may return a dict of scalars, written to the metric writer. `state` is donated to the
    next step, so the hook must finish with it (e.g. `jax.device_get`) before returning.
    """

    every: int
    fn: Callable[[int, State, Mapping[str, float]], Mapping[str, float] | None]


@dataclasses.dataclass
class StepFunctions:
    """The jitted pieces of a sharded training loop (what `Trainer` runs, and `--compile_only`
    lowers for other hardware)."""

    abstract_state: Any
    state_sharding: Any
    init_rng: jax.Array
    train_rng: jax.Array
    step_fn: Callable[..., Any]  # (state, rng, batch) -> (state, metrics), not yet jitted
    jit_kwargs: dict[str, Any]  # shardings and donation for `jax.jit(step_fn, **jit_kwargs)`


def step_functions(
    init_fn: InitFn,
    update_fn: UpdateFn,
    mesh: Mesh,
    *,
    seed: int = 0,
    state_sharding: Callable[[Any], Any] | None = None,
    batch_axis: int = 0,
) -> StepFunctions:
    """Shapes, shardings and the step of a training loop on `mesh` (see `Trainer`)."""
    base = jax.random.key(seed)
    init_rng, train_rng = jax.random.split(base)
    abstract = jax.eval_shape(init_fn, init_rng)
    if not isinstance(abstract, Mapping) or "step" not in abstract:
        raise ValueError("init_fn must return a dict-like state with a scalar integer 'step'")
    shardings = (
        state_sharding(abstract)
        if state_sharding
        else jax.tree.map(lambda _: replicated(mesh), abstract)
    )
    repl = replicated(mesh)

    def step_fn(state, rng, batch):
        return update_fn(state, jax.random.fold_in(rng, state["step"]), batch)

    return StepFunctions(
        abstract_state=abstract,
        state_sharding=shardings,
        init_rng=init_rng,
        train_rng=train_rng,
        step_fn=step_fn,
        jit_kwargs={
            "in_shardings": (shardings, repl, batch_sharding(mesh, batch_axis)),
            "out_shardings": (shardings, repl),
            "donate_argnums": (0,),
        },
    )


def under_mesh(fn: Callable[..., Any], mesh: Mesh) -> Callable[..., Any]:
    """`fn` called with `mesh` as the current mesh, so kernels can run per shard while tracing."""

    def call(*args, **kwargs):
        with jax.set_mesh(mesh):
            return fn(*args, **kwargs)

    return call


@dataclasses.dataclass
class TrainResult:
    """What `Trainer.train` ends with."""

    state: State
    step: int
    start_step: int
    preempted: bool
    last_metrics: dict[str, float]


class Trainer:
    """Initialises (or resumes) a sharded train state and runs `update_fn` over a data iterator.

    Contract:
      * `init_fn(rng) -> state`: builds the full train state (parameters, optimiser state,
        `state["step"] = 0` int32). Run once under `jax.jit(out_shardings=...)` on the mesh, so
        large states are born sharded; shapes come from `jax.eval_shape`.
      * `update_fn(state, rng, batch) -> (new_state, metrics)`: one step; must increment
        `state["step"]`. The trainer jits it with the state donated and passes
        `rng = fold_in(train_rng, state["step"])`, so a resumed run draws the same randomness.
        `batch` is the global batch (pytree of arrays sharded over `data`).
      * The data iterator yields host-local numpy batches (`make_loader`); its state is
        checkpointed with the model when it is a grain iterator.

    Args:
      config: `TrainerConfig`.
      init_fn, update_fn: see above.
      mesh: default `make_mesh(config.model_parallelism)` over all devices.
      state_sharding: `abstract_state -> pytree of NamedSharding` (default: replicated).
      batch_axis: the axis of the examples in each batch, split over `data` (1 for batches
        stacked per step, `[groups, B, ...]` from `make_loader(batch_groups=...)`).
      writer: metric writer (default `create_writer(workdir, backend=config.metrics_backend)`).
    """

    def __init__(
        self,
        config: TrainerConfig,
        *,
        init_fn: InitFn,
        update_fn: UpdateFn,
        mesh: Mesh | None = None,
        state_sharding: Callable[[Any], Any] | None = None,
        batch_axis: int = 0,
        writer: Any = None,
    ):
        self.config = config
        self.mesh = mesh or make_mesh(config.model_parallelism)
        self.init_fn, self.update_fn = init_fn, update_fn
        fns = step_functions(
            init_fn,
            update_fn,
            self.mesh,
            seed=config.seed,
            state_sharding=state_sharding,
            batch_axis=batch_axis,
        )
        self.batch_axis = batch_axis
        self.init_rng, self.train_rng = fns.init_rng, fns.train_rng
        self.abstract_state = fns.abstract_state
        self.state_sharding = fns.state_sharding
        # Pallas kernels run per shard of the current mesh: trace under this one.
        self._init = under_mesh(jax.jit(init_fn, out_shardings=self.state_sharding), self.mesh)
        self._step = under_mesh(jax.jit(fns.step_fn, **fns.jit_kwargs), self.mesh)
        self._finite = jax.jit(tree_is_finite)
        self.writer = writer or create_writer(config.workdir, backend=config.metrics_backend)
        self.checkpointer = Checkpointer(
            os.path.join(config.workdir, "checkpoints"),
            every=config.checkpoint_every,
            keep=config.keep_checkpoints,
            async_save=config.async_checkpoints,
        )

    def _abstract_tree(self) -> dict[str, Any]:
        state = jax.tree.map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
            self.abstract_state,
            self.state_sharding,
        )
        key_data = jax.random.key_data(self.train_rng)
        rng = jax.ShapeDtypeStruct(key_data.shape, key_data.dtype, sharding=replicated(self.mesh))
        return {"state": state, "rng": rng}

    def _global_rng_data(self) -> jax.Array:
        """The train RNG's key data as a replicated global array (savable on every host)."""
        data = np.asarray(jax.device_get(jax.random.key_data(self.train_rng)))
        return jax.make_array_from_callback(
            data.shape, replicated(self.mesh), lambda idx: data[idx]
        )

    def init_or_restore(self, data_iter: Any = None) -> tuple[State, int]:
        """Restores the newest checkpoint (state, RNG and `data_iter` position) or initialises."""
        restorable = data_iter if hasattr(data_iter, "get_state") else None
        restored = self.checkpointer.restore_latest(self._abstract_tree(), restorable)
        if restored is None:
            return self._init(self.init_rng), 0
        step, tree = restored
        self.train_rng = jax.random.wrap_key_data(tree["rng"])
        if int(tree["state"]["step"]) != step:
            raise ValueError(f"checkpoint {step} holds state['step']={int(tree['state']['step'])}")
        return tree["state"], step

    def train(
        self,
        data_iter: Iterator[Any],
        *,
        hooks: Sequence[PeriodicHook] = (),
        eval_fn: Callable[[State, int], Mapping[str, float]] | None = None,
    ) -> TrainResult:
        """Runs until `config.num_steps`, SIGTERM, or a non-finite loss.

        Raises:
          NonFiniteLossError: naming the step and metric; the newest checkpoint (written only
            after its step's values were checked finite) stays on disk.
        """
        cfg = self.config
        state, start = self.init_or_restore(data_iter)
        if start:
            log.info("resuming from step %d", start)
        checkpointable = data_iter if hasattr(data_iter, "get_state") else None
        if checkpointable is None:
            log.warning(
                "data iterator has no get_state(): a resumed run will not continue its stream"
            )
        progress = ProgressLine(cfg.num_steps, start)
        last_good = self.checkpointer.latest_step()
        host_metrics: dict[str, float] = {}
        preempted = False
        try:
            for step in range(start, cfg.num_steps):
                batch = host_to_global(next(data_iter), self.mesh, self.batch_axis)
                state, metrics = self._step(state, self.train_rng, batch)
                done = step + 1
                is_last = done == cfg.num_steps
                check = cfg.check_finite_every and done % cfg.check_finite_every == 0
                logging_now = done % cfg.log_every == 0 or is_last
                due_hooks = [h for h in hooks if done % h.every == 0]
                if check or logging_now or due_hooks:
                    host_metrics = _to_host(metrics)
                if check:
                    check_metrics(done, host_metrics, last_good, self.checkpointer.directory)
                if logging_now:
                    self.writer.write_scalars(done, host_metrics)
                    progress.update(done, host_metrics)
                for hook in due_hooks:
                    extra = hook.fn(done, state, host_metrics)
                    if extra:
                        self.writer.write_scalars(done, extra)
                if eval_fn is not None and cfg.eval_every and done % cfg.eval_every == 0:
                    eval_metrics = eval_fn(state, done)
                    self.writer.write_scalars(
                        done, {f"eval/{k}": v for k, v in eval_metrics.items()}
                    )
                if self.checkpointer.should_save(done, last_step=is_last):
                    # Only finite steps reach disk, so the newest checkpoint is always a good one.
                    if not check:
                        host_metrics = _to_host(metrics)
                        check_metrics(done, host_metrics, last_good, self.checkpointer.directory)
                    if not bool(self._finite(state)):
                        where = self.checkpointer.directory
                        raise NonFiniteLossError(
                            done, "train state", float("nan"), last_good, where
                        )
                    tree = {"state": state, "rng": self._global_rng_data()}
                    self.checkpointer.save(done, tree, checkpointable)
                    last_good = done
                    if not is_last and self.checkpointer.preempted():
                        preempted = True
                        log.warning("stopping after SIGTERM at step %d (checkpoint saved)", done)
                        break
        finally:
            self.checkpointer.wait()
            self.writer.flush()
        done = int(jax.device_get(state["step"]))
        return TrainResult(state, done, start, preempted, host_metrics)

    def close(self) -> None:
        """Waits for checkpoints and releases the SIGTERM handler."""
        self.checkpointer.close()
        if hasattr(self.writer, "close"):
            self.writer.close()


def _to_host(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(np.asarray(v)) for k, v in jax.device_get(dict(metrics)).items()}


def count_params(tree: Any) -> int:
    """Number of scalars in a pytree of arrays."""
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))
