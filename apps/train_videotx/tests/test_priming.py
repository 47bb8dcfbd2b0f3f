"""Which frames are primes where: the training mask, held-out bits/dim and the continuations."""

from __future__ import annotations

import types

import numpy as np
import pytest
from train_videotx import evaluation
from train_videotx import main as vtx_main


@pytest.fixture
def recorded(monkeypatch):
    """Evaluator with the model, data and FVD replaced by recorders of what they are given."""
    seen: dict[str, list] = {"bits_primes": [], "bits_window": [], "prime": []}
    rng = np.random.default_rng(0)

    def clips(num_videos, num_frames, size):
        return rng.integers(0, 256, (num_videos, num_frames, size, size, 3), dtype=np.uint8)

    def eval_batches(data_dir, split, *, batch_size, window, num_batches):
        del data_dir, split, num_batches
        yield clips(batch_size, window, 16)

    def window_bits(graphdef, params, video, num_prime_frames):
        seen["bits_primes"].append(num_prime_frames)
        seen["bits_window"].append(video.shape[1])
        return 1.0

    def continue_videos(model, key, prime, *, num_frames, **kwargs):
        seen["prime"].append(np.asarray(prime))
        extra = clips(prime.shape[0], num_frames - prime.shape[1], prime.shape[2])
        return np.concatenate([prime, extra], axis=1)

    monkeypatch.setattr(evaluation.vtx_data, "eval_batches", eval_batches)
    monkeypatch.setattr(
        evaluation.vtx_data,
        "heldout_clips",
        lambda data_dir, split, n, num_frames: clips(n, num_frames, 16),
    )
    monkeypatch.setattr(evaluation, "_window_bits", window_bits)
    monkeypatch.setattr(evaluation, "continue_videos", continue_videos)
    monkeypatch.setattr(
        evaluation,
        "fvd_metrics",
        lambda real, fake, **kw: {"fvd": 0.0, "fvd_unrolled": 0.0, "fvd_windows": 1.0},
    )
    monkeypatch.setattr(evaluation, "write_grid", lambda *a, **k: [])
    return seen


def _evaluator(config, tmp_path):
    setup = types.SimpleNamespace(
        vt_config=types.SimpleNamespace(video_shape=config.model.video_shape),
        graphdef=None,
        model=lambda params: None,
    )
    return evaluation.Evaluator(setup, config, str(tmp_path / "data"), str(tmp_path))


def test_kinetics_scores_after_one_prime_and_continues_five(recorded, tmp_path):
    config, _ = vtx_main.parse_args(["--config=kinetics600:tiny", "--config.fvd.num_videos=2"])
    ev = _evaluator(config, tmp_path)
    ev.bits_per_dim(params=None)
    ev.samples(params=None, step=0)
    ev.fvd(params=None, step=0)
    assert recorded["bits_primes"] == [1]  # only the first frame is excluded from bits/dim
    assert [p.shape[1] for p in recorded["prime"]] == [5, 5]  # samples, then FVD


def test_each_priming_follows_its_own_field(recorded, tmp_path):
    config, _ = vtx_main.parse_args(
        [
            "--config=kinetics600:tiny",
            "--config.num_prime_frames=2",
            "--config.eval.num_prime_frames=3",
            "--config.sample.num_prime_frames=4",
            "--config.fvd.num_prime_frames=6",
            "--config.fvd.num_videos=2",
        ]
    )
    ev = _evaluator(config, tmp_path)
    ev.bits_per_dim(params=None)
    ev.samples(params=None, step=0)
    ev.fvd(params=None, step=0)
    assert recorded["bits_primes"] == [3] and recorded["bits_window"] == [8]
    assert [p.shape[1] for p in recorded["prime"]] == [4, 6]


def test_bits_primes_beyond_the_window_shift_the_scored_window(recorded, tmp_path):
    # 10 primes, an 8-frame window: the window starts 3 frames in and 7 of its frames are primes.
    config, _ = vtx_main.parse_args(
        ["--config=kinetics600:tiny", "--config.eval.num_prime_frames=10"]
    )
    _evaluator(config, tmp_path).bits_per_dim(params=None)
    assert recorded["bits_primes"] == [7] and recorded["bits_window"] == [8]
