"""Two processes on localhost (`jax.distributed.initialize`, gloo CPU collectives) train two steps."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from conftest import TESTS_DIR


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_run_trains_two_steps(random_data_dir, tmp_path):
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=TESTS_DIR)
    env.pop("XLA_FLAGS", None)
    procs = []
    for pid in range(2):
        args = [
            os.path.join(TESTS_DIR, "standin.py"),
            "--data_dir", random_data_dir,
            "--workdir", str(tmp_path / "run"),
            "--losses", str(tmp_path / f"losses{pid}.jsonl"),
            "--num_steps", "2",
            "--checkpoint_every", "2",
            "--coordinator", f"127.0.0.1:{port}",
            "--num_processes", "2",
            "--process_id", str(pid),
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(
                [sys.executable, *args],
                env=env,
                cwd=TESTS_DIR,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err[-4000:]
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert sorted(o["process"] for o in outs) == [0, 1]
    assert all(o["step"] == 2 and o["start_step"] == 0 for o in outs)
    losses = []
    for pid in range(2):
        with open(tmp_path / f"losses{pid}.jsonl") as f:
            losses.append([json.loads(line)["loss"] for line in f])
    # Each host fed a different half of the global batch; the loss is the global one on both.
    assert len(losses[0]) == 2 and losses[0] == losses[1]
    assert (tmp_path / "run" / "checkpoints" / "2").is_dir()
