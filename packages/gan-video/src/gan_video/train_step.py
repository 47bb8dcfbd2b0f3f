"""Pure functional TrIVD-GAN-FP training step: two D updates then one G update (appendix E)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from gan_video.config import ModelConfig, TrainConfig
from gan_video.discriminator import Discriminator
from gan_video.ema import ema_update
from gan_video.generator import Generator
from gan_video.losses import (
    discriminator_hinge_loss,
    generator_hinge_loss,
    orthogonal_regularization,
)

__all__ = ["GANFunctions", "as_rbg_key", "make_gan"]

TrainState = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class GANFunctions:
    """Static halves of G and D plus the pure functions that use them.

    Attributes:
      g_graphdef: graph definition of the Generator (merge with state["g"] parts).
      d_graphdef: graph definition of the Discriminator.
      init: `init(key) -> state`, a plain pytree
        `{"g": {"params", "rest"}, "d": {"params", "rest"}, "g_opt", "d_opt", "ema", "step"}`.
      train_step: `train_step(state, rng, batch) -> (state, metrics)`; jit it (donating
        state) and shard `batch` along its first axis for data parallelism.
      generate: `generate(g_params, g_rest, cond_frames, z, labels=None, bn_mode="train")
        -> (frames, aux, new_g_rest)`; pass `state["ema"]` as params for EMA sampling.
    """

    g_graphdef: Any
    d_graphdef: Any
    init: Callable[..., TrainState]
    train_step: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
    generate: Callable[..., Any]


def as_rbg_key(key: jax.Array) -> jax.Array:
    """Derives an "rbg" PRNG key from any key.

    RngBitGenerator-based keys compile far faster than threefry on CPU (threefry's unrolled
    rounds cost ~1 s of XLA compile per distinct random op shape) and are the fast choice
    on TPU; the derivation is deterministic in `key`.
    """
    if jax.random.key_impl(key) == jax.random.key_impl(jax.random.key(0, impl="rbg")):
        return key
    return jax.random.wrap_key_data(jax.random.bits(key, (4,), jnp.uint32), impl="rbg")


def _split(module: nnx.Module):
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    return graphdef, params, rest


def make_gan(model_config: ModelConfig, train_config: TrainConfig | None = None) -> GANFunctions:
    """Builds the pure init / train-step / generate functions for a configuration.

    Args:
      model_config: architecture.
      train_config: optimisation hyper-parameters.

    Returns:
      GANFunctions. `batch` for the train step is `{"video": [B, Tc + Tp, H, W, C] in
      [-1, 1], optionally "label": [B] int}`; a video with a leading `d_steps` axis
      (`[d_steps, B, ...]`) gives each D update its own real batch (otherwise every D
      update reuses the same real clips with fresh latents and crops).
    """
    mc, tc = model_config, train_config or TrainConfig()
    g_graphdef, _, _ = _split(nnx.eval_shape(lambda: Generator(mc, rngs=nnx.Rngs(0))))
    d_graphdef, _, _ = _split(nnx.eval_shape(lambda: Discriminator(mc, rngs=nnx.Rngs(0))))
    g_tx = optax.adam(tc.g_lr, b1=tc.b1, b2=tc.b2)
    d_tx = optax.adam(tc.d_lr, b1=tc.b1, b2=tc.b2)

    def init(key: jax.Array) -> TrainState:
        kg, kd = jax.random.split(as_rbg_key(key))
        _, g_params, g_rest = _split(Generator(mc, rngs=nnx.Rngs(kg)))
        _, d_params, d_rest = _split(Discriminator(mc, rngs=nnx.Rngs(kd)))
        return {
            "g": {"params": g_params, "rest": g_rest},
            "d": {"params": d_params, "rest": d_rest},
            "g_opt": g_tx.init(g_params),
            "d_opt": d_tx.init(d_params),
            "ema": jax.tree.map(jnp.copy, g_params),
            "step": jnp.zeros((), jnp.int32),
        }

    def generate(g_params, g_rest, cond_frames, z, labels=None, bn_mode="train"):
        g = nnx.merge(g_graphdef, g_params, g_rest, copy=True)
        if bn_mode != "train":
            g = nnx.view(g, bn_mode=bn_mode, update_spectral=False)
        frames, aux = g(cond_frames, z, labels)
        _, _, new_rest = _split(g)
        return frames, aux, new_rest

    def run_d(d_params, d_rest, video, labels, key, num_groups=1):
        d = nnx.merge(d_graphdef, d_params, d_rest, copy=True)
        out = d(video, labels, key, num_groups=num_groups)
        _, _, new_rest = _split(d)
        return out, new_rest

    def train_step(state: TrainState, rng: jax.Array, batch: dict[str, jax.Array]):
        video = batch["video"]
        per_step_real = video.ndim == 6
        b = video.shape[1] if per_step_real else video.shape[0]
        clip = (mc.num_frames, mc.resolution, mc.resolution, mc.channels)
        if video.shape[-4:] != clip or (per_step_real and video.shape[0] < tc.d_steps):
            raise ValueError(
                f"batch['video'] must be [B, *{clip}] or [d_steps={tc.d_steps}, B, *{clip}], "
                f"got {video.shape}"
            )
        labels = batch.get("label")
        if labels is None:
            labels = jnp.zeros((b,), jnp.int32)
        if per_step_real and labels.ndim == 1:
            labels = jnp.broadcast_to(labels, (video.shape[0], b))
        rng = jax.random.fold_in(as_rbg_key(rng), state["step"])
        keys = jax.random.split(rng, 2 * tc.d_steps + 2)
        tcond = mc.num_cond_frames
        g_params, g_rest = state["g"]["params"], state["g"]["rest"]
        d_params, d_rest = state["d"]["params"], state["d"]["rest"]
        d_opt = state["d_opt"]

        def d_update(carry, xs):
            g_rest, d_params, d_rest, d_opt = carry
            kz, kd, real, y = xs
            z = jax.random.normal(kz, (b, mc.z_dim))
            fake, _, g_rest = generate(g_params, g_rest, real[:, :tcond], z, y)
            fake_clip = jnp.concatenate([real[:, :tcond], jax.lax.stop_gradient(fake)], 1)
            both = jnp.concatenate([real, fake_clip], axis=0)  # [2B, T, H, W, C]
            both_y = jnp.concatenate([y, y], axis=0)

            def d_loss_fn(dp):
                out, new_rest = run_d(dp, d_rest, both, both_y, kd, num_groups=2)
                loss = sum(discriminator_hinge_loss(o[0], o[1]) for o in out.values())
                real_score = jnp.mean(jnp.stack([jnp.mean(o[0]) for o in out.values()]))
                fake_score = jnp.mean(jnp.stack([jnp.mean(o[1]) for o in out.values()]))
                return loss, (new_rest, real_score, fake_score)

            (d_loss, (d_rest, real_score, fake_score)), d_grads = jax.value_and_grad(
                d_loss_fn, has_aux=True
            )(d_params)
            updates, d_opt = d_tx.update(d_grads, d_opt, d_params)
            d_params = optax.apply_updates(d_params, updates)
            scores = {"d_loss": d_loss, "d_real": real_score, "d_fake": fake_score}
            return (g_rest, d_params, d_rest, d_opt), scores

        # The D updates share one compiled body (lax.scan over the d_steps updates).
        d_keys = keys[: 2 * tc.d_steps].reshape(tc.d_steps, 2)
        if per_step_real:
            reals, ys = video[: tc.d_steps], labels[: tc.d_steps]
        else:
            reals = jnp.broadcast_to(video, (tc.d_steps, *video.shape))
            ys = jnp.broadcast_to(labels, (tc.d_steps, b))
        (g_rest, d_params, d_rest, d_opt), d_metrics = jax.lax.scan(
            d_update, (g_rest, d_params, d_rest, d_opt), (d_keys[:, 0], d_keys[:, 1], reals, ys)
        )
        metrics = {k: v[-1] for k, v in d_metrics.items()}

        real = video[-1] if per_step_real else video
        y = labels[-1] if per_step_real else labels
        cond_frames = real[:, :tcond]
        z = jax.random.normal(keys[-2], (b, mc.z_dim))

        def g_loss_fn(gp):
            fake, _, new_g_rest = generate(gp, g_rest, cond_frames, z, y)
            clip = jnp.concatenate([cond_frames, fake], axis=1)
            # D's spectral-norm state is not advanced by G updates.
            out, _ = run_d(d_params, d_rest, clip, y, keys[-1])
            adv = sum(generator_hinge_loss(o) for o in out.values())
            ortho = orthogonal_regularization(gp)
            loss = adv + tc.ortho_weight * ortho
            # Reported at every weight (the prediction error of the G update's batch).
            recon = jnp.mean(jnp.square(fake.astype(jnp.float32) - real[:, tcond:]))
            if tc.recon_weight:
                loss = loss + tc.recon_weight * recon
            return loss, (new_g_rest, adv, ortho, recon)

        (g_loss, (g_rest, g_adv, ortho, recon)), g_grads = jax.value_and_grad(
            g_loss_fn, has_aux=True
        )(g_params)
        updates, g_opt = g_tx.update(g_grads, state["g_opt"], g_params)
        g_params = optax.apply_updates(g_params, updates)
        step = state["step"] + 1
        ema = ema_update(state["ema"], g_params, step, decay=tc.ema_decay, start_step=tc.ema_start)
        metrics.update(g_loss=g_loss, g_adv=g_adv, ortho_reg=ortho, g_recon=recon)
        new_state = {
            "g": {"params": g_params, "rest": g_rest},
            "d": {"params": d_params, "rest": d_rest},
            "g_opt": g_opt,
            "d_opt": d_opt,
            "ema": ema,
            "step": step,
        }
        return new_state, metrics

    return GANFunctions(g_graphdef, d_graphdef, init, train_step, generate)
