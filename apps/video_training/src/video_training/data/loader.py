"""Reading prepared clips with grain: per-host shards, seeded shuffling, worker processes, checkpointable state."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import grain.python as grain
import jax

from video_training.data.prepare import split_paths
from video_training.data.records import decode_example


@dataclasses.dataclass(frozen=True)
class Decode(grain.MapTransform):
    """ArrayRecord bytes -> dict of numpy arrays (string metadata dropped so examples batch).

    Attributes:
      keys: keep only these keys (None: every numeric field).
    """

    keys: Sequence[str] | None = None

    def map(self, record: bytes) -> dict[str, Any]:
        ex = decode_example(record, keep_strings=False)
        if self.keys is not None:
            missing = set(self.keys) - set(ex)
            if missing:
                raise KeyError(f"keys {sorted(missing)} not in record (has {sorted(ex)})")
            ex = {k: ex[k] for k in self.keys}
        return ex


@dataclasses.dataclass(frozen=True)
class SplitGroups(grain.MapTransform):
    """A batch `[groups * b, ...]` -> `[groups, b, ...]` (each group an independent batch)."""

    groups: int

    def map(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.reshape(self.groups, -1, *v.shape[1:]) for k, v in batch.items()}


def make_loader(
    data_dir: str,
    split: str,
    *,
    global_batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    num_epochs: int | None = None,
    transforms: Sequence[Any] = (),
    keys: Sequence[str] | None = None,
    worker_count: int = 0,
    worker_buffer_size: int = 2,
    process_index: int | None = None,
    process_count: int | None = None,
    batch_groups: int = 1,
) -> grain.DataLoader:
    """A grain `DataLoader` over one split of a prepared dataset.

    Each host reads the disjoint contiguous shard `process_index` of `process_count` of the
    record indices (the `ShardByJaxProcess` rule), shuffles it with `seed` every epoch, applies
    `transforms` (grain `MapTransform`/`RandomMapTransform`, seeded per record), and batches
    `global_batch_size // process_count` examples. `iter(loader)` returns an iterator with
    `get_state()` / `set_state()`; `Checkpointer` stores that state with the train state.

    Args:
      data_dir: output folder of `prepare`.
      split: split name in `dataset_info.json`.
      global_batch_size: batch over all hosts; must divide by `process_count`.
      seed: shuffling and random-transform seed (same on every host).
      shuffle: shuffle record order (False for ordered evaluation).
      num_epochs: None repeats forever.
      transforms: read-time preprocessing, e.g. `trivd_transforms(16, 64)`.
      keys: fields to keep (e.g. ("video", "label")); None keeps all numeric fields.
      worker_count: grain worker processes (0 = in-process). Scripts using workers need an
        `if __name__ == "__main__":` guard.
      worker_buffer_size: batches prefetched per worker.
      process_index, process_count: default `jax.process_index()` / `jax.process_count()`;
        override to simulate hosts.
      batch_groups: > 1 yields that many independent batches per step, stacked on a new
        leading axis (e.g. a fresh real batch for each of a GAN's discriminator updates).

    Returns:
      A `grain.DataLoader` yielding dicts of `[global_batch_size // process_count, ...]` arrays
      (`[batch_groups, global_batch_size // process_count, ...]` when `batch_groups > 1`).
    """
    if isinstance(batch_groups, bool) or not isinstance(batch_groups, int) or batch_groups < 1:
        raise ValueError(f"batch_groups: expected an int >= 1, got {batch_groups!r}")
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    if not 0 <= index < count:
        raise ValueError(f"process_index must be in [0, {count}), got {index}")
    if global_batch_size % count:
        raise ValueError(
            f"global_batch_size={global_batch_size} must be divisible by process_count={count}"
        )
    if worker_count > 0:
        from absl import flags

        if (
            not flags.FLAGS.is_parsed()
        ):  # grain workers read absl flags; use defaults outside absl.app
            flags.FLAGS.mark_as_parsed()
    source = grain.ArrayRecordDataSource(split_paths(data_dir, split))
    per_host = global_batch_size // count
    if len(source) // count < per_host * batch_groups:
        raise ValueError(
            f"split {split!r} has {len(source)} records: too few for {count} hosts x batch "
            f"{per_host}" + (f" x {batch_groups} groups" if batch_groups > 1 else "")
        )
    sampler = grain.IndexSampler(
        num_records=len(source),
        shard_options=grain.ShardOptions(shard_index=index, shard_count=count, drop_remainder=True),
        shuffle=shuffle,
        num_epochs=num_epochs,
        seed=seed,
    )
    operations = [
        Decode(keys),
        *transforms,
        grain.Batch(per_host * batch_groups, drop_remainder=True),
    ]
    if batch_groups > 1:
        operations.append(SplitGroups(batch_groups))
    return grain.DataLoader(
        data_source=source,
        sampler=sampler,
        operations=operations,
        worker_count=worker_count,
        worker_buffer_size=worker_buffer_size,
    )
