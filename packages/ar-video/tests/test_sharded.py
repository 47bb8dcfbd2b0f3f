"""A train step with the batch sharded over 4 simulated devices equals the one-device step."""

import json
import os
import subprocess
import sys
from pathlib import Path


def test_sharded_train_step_matches_one_device():
    # Also with gradient accumulation (`num_microbatches=2`) on the sharded batch.
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    env = dict(os.environ, XLA_FLAGS=flags)
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("sharded_step_check.py"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["num_shards"] == 4  # the batch really was split
    assert abs(r["loss_one"] - r["loss_sharded"]) <= 1e-5 * abs(r["loss_one"]), r
    assert r["max_update"] > 1e-4, r  # the step moved the parameters ...
    assert r["max_param_diff"] <= 1e-5, r  # ... identically on one device and on four
    # Two accumulated micro-batches of the sharded batch: the same loss and the same update.
    assert abs(r["loss_one"] - r["loss_microbatched"]) <= 1e-5 * abs(r["loss_one"]), r
    assert r["max_param_diff_microbatched"] <= 1e-5, r
