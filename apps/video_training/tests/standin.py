"""A tiny stand-in model (conv autoencoder with cross-replica BN) and a training driver for subprocess tests."""

from __future__ import annotations

import argparse
import json
import os
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from video_training import CrossReplicaBatchNorm

FRAMES, SIZE = 4, 16


class StandInAutoencoder(nn.Module):
    """Denoising conv autoencoder on frames: conv -> cross-replica BN -> relu -> deconv."""

    axis_name: str | None = None

    @nn.compact
    def __call__(self, video, train: bool = True):
        b, t, h, w, c = video.shape
        x = video.reshape(b * t, h, w, c)
        x = nn.Conv(8, (3, 3), strides=(2, 2), use_bias=False)(
            x
        )  # BN follows: a bias would get zero gradient
        x = CrossReplicaBatchNorm(axis_name=self.axis_name)(x, use_running_average=not train)
        x = nn.relu(x)
        x = nn.ConvTranspose(c, (3, 3), strides=(2, 2))(x)
        return x.reshape(b, t, h, w, c)


def make_fns(learning_rate: float = 1e-2, axis_name: str | None = None):
    """Returns `(init_fn, update_fn)` with the Trainer's contract."""
    model = StandInAutoencoder(axis_name=axis_name)
    tx = optax.adam(learning_rate)

    def init_fn(rng):
        variables = model.init(rng, jnp.zeros((2, FRAMES, SIZE, SIZE, 3)), train=False)
        params = variables["params"]
        return {
            "params": params,
            "batch_stats": variables["batch_stats"],
            "opt_state": tx.init(params),
            "step": jnp.zeros((), jnp.int32),
        }

    def update_fn(state, rng, batch):
        video = batch["video"]
        noisy = video + 0.1 * jax.random.normal(rng, video.shape)  # uses the step's rng

        def loss_fn(params):
            out, updates = model.apply(
                {"params": params, "batch_stats": state["batch_stats"]},
                noisy,
                mutable=["batch_stats"],
            )
            return jnp.mean(jnp.square(out - video)), updates

        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        upd, opt_state = tx.update(grads, state["opt_state"], state["params"])
        new = {
            "params": optax.apply_updates(state["params"], upd),
            "batch_stats": updates["batch_stats"],
            "opt_state": opt_state,
            "step": state["step"] + 1,
        }
        return new, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    return init_fn, update_fn


class RandomVideos:
    """A `VideoSource` of random uint8 videos `[8, SIZE, SIZE, 3]` (seeded per index)."""

    name = "random_videos"
    splits = ("train", "test")
    preprocess = "none"
    num_frames = 8
    size = SIZE

    def __init__(self, counts=(32, 8), seed=0):
        self.counts = dict(zip(self.splits, counts, strict=True))
        self.seed = seed

    def num_examples(self, split):
        return self.counts[split]

    def examples(self, split):
        for i in range(self.counts[split]):
            rng = np.random.default_rng([self.seed, self.splits.index(split), i])
            yield {
                "video": rng.integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8),
                "label": i,
                "name": f"{split}{i}",
            }


def main(argv=None):
    """Trains the stand-in on a prepared dataset, appending `{"step", "loss"}` lines to --losses."""
    p = argparse.ArgumentParser()
    p.add_argument("--data_dir", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--losses", required=True)
    p.add_argument("--num_steps", type=int, default=12)
    p.add_argument("--checkpoint_every", type=int, default=4)
    p.add_argument("--kill_at", type=int, default=0, help="SIGKILL itself after this step")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--worker_count", type=int, default=0)
    p.add_argument("--coordinator", default=None)
    p.add_argument("--num_processes", type=int, default=1)
    p.add_argument("--process_id", type=int, default=0)
    args = p.parse_args(argv)

    from video_training import PeriodicHook, Trainer, TrainerConfig, initialize_distributed
    from video_training.data import make_loader, trivd_transforms

    if args.coordinator:
        initialize_distributed(
            args.coordinator, args.num_processes, args.process_id, cpu_collectives="gloo"
        )
    init_fn, update_fn = make_fns()
    cfg = TrainerConfig(
        workdir=args.workdir,
        num_steps=args.num_steps,
        log_every=1,
        checkpoint_every=args.checkpoint_every,
        metrics_backend="jsonl",
    )
    trainer = Trainer(cfg, init_fn=init_fn, update_fn=update_fn)
    loader = make_loader(
        args.data_dir,
        "train",
        global_batch_size=args.batch_size,
        seed=3,
        transforms=trivd_transforms(FRAMES, SIZE),
        keys=("video",),
        worker_count=args.worker_count,
    )
    data_iter = iter(loader)

    def record(step, state, metrics):
        with open(args.losses, "a") as f:
            f.write(json.dumps({"step": step, "loss": metrics["loss"], "pid": os.getpid()}) + "\n")
        if step == args.kill_at:
            trainer.checkpointer.wait()  # the step-`checkpoint_every` save is complete on disk
            os.kill(os.getpid(), 9)

    result = trainer.train(data_iter, hooks=[PeriodicHook(1, record)])
    trainer.close()
    print(
        json.dumps(
            {"start_step": result.start_step, "step": result.step, "process": jax.process_index()}
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
