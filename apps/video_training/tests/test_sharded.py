"""With 8 simulated host devices, a sharded step equals the one-device step (cross-replica BN included)."""

from __future__ import annotations

import json
import os

from conftest import TESTS_DIR, run_python


def test_sharded_step_matches_single_device_step():
    proc = run_python(
        [os.path.join(TESTS_DIR, "sharded_check.py")],
        env_extra={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"},
    )
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["shards_1"] == [1, 1] and r["shards_8"] == [8, 8]  # the batch really was split
    assert r["step_8"] == 2
    for a, b in zip(r["losses_1"], r["losses_8"], strict=True):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), r
    assert r["losses_1"][0] != r["losses_1"][1]
    assert r["max_state_diff"] <= 1e-5 * max(1.0, r["state_scale"]), r
    # Per-step stacked batches ([2, B, ...], examples on axis 1): same split, same result.
    assert r["grouped_shards_8"] == [8, 8], r
    for a, b in zip(r["grouped_losses_1"], r["grouped_losses_8"], strict=True):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), r
    assert r["grouped_losses_1"][0] != r["grouped_losses_1"][1], r
    # shard_map: pmean'd moments equal the global ones; per-device BN statistics do not.
    assert r["moments_diff"] < 1e-4, r
    assert r["bn_cross_diff"] < 1e-4, r
    assert r["bn_local_diff"] > 1e-2, r
