"""The Video Transformer and its train state built from a ConfigDict, and restored from a workdir."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import ar_video
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx
from video_training import Checkpointer, make_mesh, replicated

CONFIG_FILE = "config.json"


def enable_compilation_cache(path: str) -> None:
    """Points JAX's persistent compilation cache at `path` (no-op for "" or the current dir)."""
    from jax.experimental.compilation_cache import compilation_cache

    if not path:
        return
    path = os.path.abspath(path)
    if jax.config.jax_compilation_cache_dir != path:
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
        compilation_cache.reset_cache()  # the cache state is decided at the first compile


def model_config(model: ml_collections.ConfigDict) -> ar_video.VideoTransformerConfig:
    """`config.model` -> `ar_video.VideoTransformerConfig` (section 4.1 or the tiny CPU model)."""
    if model.variant == "tiny":
        cfg = ar_video.tiny_config(
            first_slice_decoder=model.first_slice_decoder,
            video_shape=tuple(model.video_shape),
            subscale_factor=tuple(model.subscale_factor),
            attention_implementation=model.attention_implementation,
            hidden_size=int(model.get("hidden_size", 32)),
            num_layers=int(model.get("num_layers", 2)),
        )
    else:
        cfg = ar_video.paper_config(
            model.variant, model.size, first_slice_decoder=model.first_slice_decoder
        )
        cfg = dataclasses.replace(cfg, attention_implementation=model.attention_implementation)
    return dataclasses.replace(
        cfg,
        dtype=model.dtype,
        remat=bool(model.get("remat", False)),
        conditioning_size=int(model.get("conditioning_size", 0)),
    )


def make_optimizer(opt: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """RMSProp (section 4.1) from `config.optimizer`."""
    return ar_video.make_optimizer(
        opt.learning_rate, opt.decay, opt.momentum, opt.eps, initial_scale=opt.initial_scale
    )


def prime_frames_in_window(num_prime_frames: int, window: int) -> int:
    """Primed frames inside one model window of `window` frames: at most `window - 1`."""
    if num_prime_frames < 0:
        raise ValueError(f"num_prime_frames must be >= 0, got {num_prime_frames}")
    return min(int(num_prime_frames), window - 1)


def train_prime_frames(config: ml_collections.ConfigDict, window: int) -> int:
    """Frames whose training loss is masked in one model window: `num_prime_frames`, <= T - 1."""
    return prime_frames_in_window(config.num_prime_frames, window)


@dataclasses.dataclass
class Setup:
    """What training and sampling share: the model's graph and functions building its state."""

    vt_config: ar_video.VideoTransformerConfig
    graphdef: nnx.GraphDef
    optimizer: optax.GradientTransformation

    def init_fn(self, rng: jax.Array) -> dict[str, Any]:
        """`{"params", "opt_state", "step"}` from freshly initialised weights (run under jit)."""
        model = ar_video.VideoTransformer(self.vt_config, rngs=nnx.Rngs(rng))
        return ar_video.init_train_state(model, self.optimizer)[1]

    def model(self, params: Any) -> ar_video.VideoTransformer:
        """Rebuilds the module from `state["params"]`."""
        return nnx.merge(self.graphdef, params)


def make_setup(config: ml_collections.ConfigDict) -> Setup:
    """Builds the graph (no weights are materialised) and the optimiser of `config`."""
    vt_config = model_config(config.model)
    abstract = nnx.eval_shape(lambda: ar_video.VideoTransformer(vt_config, rngs=nnx.Rngs(0)))
    graphdef, _ = nnx.split(abstract)
    return Setup(vt_config, graphdef, make_optimizer(config.optimizer))


def save_config(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Writes `workdir/config.json` (read back by `sample-videotx`)."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
        f.write(config.to_json_best_effort(indent=1))


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run in `workdir` was trained with (lists back to tuples)."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is workdir={workdir!r} a train-videotx run?")
    with open(path) as f:
        raw = json.load(f)

    def tuples(x):
        if isinstance(x, dict):
            return {k: tuples(v) for k, v in x.items()}
        return tuple(x) if isinstance(x, list) else x

    return ml_collections.ConfigDict(tuples(raw))


def restore_params(setup: Setup, workdir: str, step: int | None = None) -> tuple[Any, int]:
    """Loads `state["params"]` of the newest (or the given) checkpoint in `workdir/checkpoints`,
    or the parameters of a shipped model folder (`pretrained.py`: params.npz).

    Returns:
      `(params, step)`.
    """
    import orbax.checkpoint as ocp

    from train_videotx import pretrained

    if pretrained.is_exported(workdir):  # a shipped model: parameters only
        abstract = jax.eval_shape(setup.init_fn, jax.random.key(0))["params"]
        return pretrained.load(abstract, workdir, step)

    ckpt = Checkpointer(
        os.path.join(workdir, "checkpoints"), handle_sigterm=False, async_save=False
    )
    try:
        steps = ckpt.manager.all_steps()
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {ckpt.directory}")
        step = max(steps) if step is None else int(step)
        if step not in steps:
            raise ValueError(f"step={step} has no checkpoint; available: {sorted(steps)}")
        sharding = replicated(make_mesh())
        state = jax.eval_shape(setup.init_fn, jax.random.key(0))
        key_data = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0)))
        tree = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
            {"state": state, "rng": key_data},
        )
        restored = ckpt.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(tree))
        )
    finally:
        ckpt.close()
    params = restored["state"]["state"]["params"]
    return jax.tree.map(jnp.asarray, params), step
