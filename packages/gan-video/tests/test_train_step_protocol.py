"""What one train step does (appendix E, BigGAN-style): recorded from inside the compiled step.

The generator and discriminator are subclassed with `jax.debug.callback` recorders, so the test
sees every call's inputs, parameters and outputs in the order the step runs them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gan_video import TrainConfig, get_preset, orthogonal_regularization
from gan_video import train_step as train_step_module
from gan_video.discriminator import Discriminator
from gan_video.generator import Generator

# One sub-discriminator and 1 -> 2 frames keep the compile short; the step is the same code.
CFG = get_preset("tiny", decomposition="downsampled", num_cond_frames=1, num_pred_frames=2)
TRAIN = TrainConfig(d_steps=2, ortho_weight=0.5, recon_weight=3.0)
CALLS: list[tuple[str, dict[str, np.ndarray]]] = []


def _first_param(module) -> jax.Array:
    from flax import nnx

    return jax.tree.leaves(nnx.state(module, nnx.Param))[0]


class RecordingGenerator(Generator):
    def __call__(self, cond_frames, z, labels=None):
        frames, aux = super().__call__(cond_frames, z, labels)
        record = lambda c, zz, f: CALLS.append(("G", {"cond": c, "z": zz, "frames": f}))
        jax.debug.callback(record, cond_frames, z, frames)
        return frames, aux


class RecordingDiscriminator(Discriminator):
    def __call__(self, video, labels, key, *, num_groups=1):
        kind = "D_update" if num_groups == 2 else "D_for_G"
        record = lambda v, p: CALLS.append((kind, {"video": v, "param": p}))
        jax.debug.callback(record, video, _first_param(self))
        return super().__call__(video, labels, key, num_groups=num_groups)


@pytest.fixture(scope="module")
def recorded():
    mp = pytest.MonkeyPatch()
    mp.setattr(train_step_module, "Generator", RecordingGenerator)
    mp.setattr(train_step_module, "Discriminator", RecordingDiscriminator)
    try:
        gan = train_step_module.make_gan(CFG, TRAIN)
        state = gan.init(jax.random.key(0))
        shape = (TRAIN.d_steps, 3, CFG.num_frames, CFG.resolution, CFG.resolution, 3)
        video = jax.random.uniform(jax.random.key(1), shape, minval=-1.0)
        CALLS.clear()
        new_state, metrics = jax.jit(gan.train_step)(state, jax.random.key(2), {"video": video})
        jax.block_until_ready(new_state)
        jax.effects_barrier()
        calls = list(CALLS)
    finally:
        mp.undo()
    return state, np.asarray(video), new_state, metrics, calls


def test_d_updates_d_steps_times_each_on_its_own_real_batch(recorded):
    _, video, _, _, calls = recorded
    kinds = [k for k, _ in calls]
    # Per D update: G makes the fake, D scores [real; fake]; then G's update queries D once.
    assert kinds == ["G", "D_update"] * TRAIN.d_steps + ["G", "D_for_G"], kinds
    d_inputs = [c["video"] for k, c in calls if k == "D_update"]
    b = video.shape[1]
    for i, both in enumerate(d_inputs):
        np.testing.assert_array_equal(both[:b], video[i])  # a fresh real batch per update
    assert not np.array_equal(d_inputs[0][:b], d_inputs[1][:b])


def test_fake_clips_are_real_conditioning_then_generator_output(recorded):
    _, video, _, _, calls = recorded
    tc, b = CFG.num_cond_frames, video.shape[1]
    g_calls = [c for k, c in calls if k == "G"]
    d_inputs = [c["video"] for k, c in calls if k == "D_update"]
    for i, both in enumerate(d_inputs):
        fake = both[b:]
        np.testing.assert_array_equal(g_calls[i]["cond"], video[i][:, :tc])
        np.testing.assert_array_equal(fake[:, :tc], video[i][:, :tc])
        np.testing.assert_array_equal(fake[:, tc:], g_calls[i]["frames"])
    g_clip = next(c["video"] for k, c in calls if k == "D_for_G")
    np.testing.assert_array_equal(g_clip[:, :tc], video[-1][:, :tc])
    np.testing.assert_array_equal(g_clip[:, tc:], g_calls[-1]["frames"])


def test_every_generator_pass_draws_fresh_latents(recorded):
    _, _, _, _, calls = recorded
    zs = [c["z"] for k, c in calls if k == "G"]
    assert len(zs) == TRAIN.d_steps + 1
    for i in range(len(zs)):
        for j in range(i):
            assert not np.allclose(zs[i], zs[j]), (i, j)


def test_generator_step_uses_the_updated_discriminator(recorded):
    state, _, new_state, _, calls = recorded
    seen = [c["param"] for k, c in calls if k.startswith("D")]
    before = np.asarray(_first_param_of(state["d"]["params"]))
    after = np.asarray(_first_param_of(new_state["d"]["params"]))
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(seen[0], before)  # the first D update starts from the state
    assert not np.array_equal(seen[1], seen[0])  # the second sees the first's update
    np.testing.assert_array_equal(seen[-1], after)  # G's loss uses D after both updates


def _first_param_of(params):
    return jax.tree.leaves(params)[0]


def test_regularisers_enter_the_generator_loss_with_their_weights(recorded):
    state, video, _, metrics, calls = recorded
    ortho = float(orthogonal_regularization(state["g"]["params"]))
    assert ortho > 0
    np.testing.assert_allclose(float(metrics["ortho_reg"]), ortho, rtol=1e-5)
    # The reconstruction term: MSE between the G update's frames and the real continuation.
    g_frames = [c["frames"] for k, c in calls if k == "G"][-1]
    recon = float(np.mean((g_frames - video[-1][:, CFG.num_cond_frames :]) ** 2))
    assert recon > 0
    np.testing.assert_allclose(float(metrics["g_recon"]), recon, rtol=1e-5)
    np.testing.assert_allclose(
        float(metrics["g_loss"]),
        float(metrics["g_adv"]) + TRAIN.ortho_weight * ortho + TRAIN.recon_weight * recon,
        rtol=1e-5,
    )


def test_train_config_rejects_a_negative_reconstruction_weight():
    with pytest.raises(ValueError, match="recon_weight must be >= 0, got -1"):
        TrainConfig(recon_weight=-1.0)


def test_step_takes_one_shared_batch_and_rejects_too_few_groups():
    # A [B, ...] video (the app's data.fresh_real_batches=False) is shared by the D updates.
    video = jnp.zeros((2, CFG.num_frames, CFG.resolution, CFG.resolution, 3))
    gan = train_step_module.make_gan(CFG, TRAIN)
    state = jax.eval_shape(gan.init, jax.random.key(0))
    out, _ = jax.eval_shape(gan.train_step, state, jax.random.key(0), {"video": video})
    assert out["step"].shape == ()
    with pytest.raises(ValueError, match=r"\[d_steps=2, B"):
        jax.eval_shape(gan.train_step, state, jax.random.key(0), {"video": video[None]})
