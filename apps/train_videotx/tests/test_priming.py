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

    def eval_batches(data_dir, split, *, batch_size, window, num_batches, conditioning):
        del data_dir, split, num_batches, conditioning
        yield clips(batch_size, window, 16), None

    def window_bits(graphdef, params, video, conditioning, num_prime_frames):
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
        lambda data_dir, split, n, num_frames, conditioning: (clips(n, num_frames, 16), None),
    )
    monkeypatch.setattr(evaluation, "_window_bits", window_bits)
    monkeypatch.setattr(evaluation, "continue_videos", continue_videos)
    monkeypatch.setattr(
        evaluation,
        "fvd_metrics",
        lambda real, fake, **kw: {"fvd": 0.0, "fvd_unrolled": 0.0, "fvd_windows": 1.0},
    )
    monkeypatch.setattr(evaluation, "write_grid", lambda *a, **k: [])
    monkeypatch.setattr(evaluation.Evaluator, "previous_frame_baseline", lambda self: None)
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


def test_bits_slide_the_window_over_longer_clips_scoring_each_frame_once(recorded, tmp_path):
    # An 8-frame window, 1 prime, frames 1..15 scored: windows at 0 (scores 1..7), 4 (8..11)
    # and 8 (12..15), as the sampler's stride of T // 2 continues a clip.
    config, _ = vtx_main.parse_args(["--config=kinetics600:tiny", "--config.eval.num_frames=16"])
    ev = _evaluator(config, tmp_path)
    assert ev.windows == [(0, 1), (4, 4), (8, 4)]
    recorded_bits = iter([3.0, 5.0, 7.0])
    evaluation._window_bits = lambda graphdef, params, video, cond, primed: next(recorded_bits)
    # bits/dim is the per-frame mean: 7 frames at 3, 4 at 5 and 4 at 7 bits.
    assert ev.bits_per_dim(params=None)["bits_per_dim"] == pytest.approx(
        (7 * 3 + 4 * 5 + 4 * 7) / 15
    )


@pytest.mark.parametrize(
    ("frames", "window", "primes", "stride"),
    [(16, 4, 1, 0), (16, 4, 1, 3), (16, 16, 1, 0), (20, 16, 10, 6), (30, 4, 1, 0), (5, 1, 1, 0)],
)
def test_scoring_windows_cover_every_frame_after_the_primes_once(frames, window, primes, stride):
    scored = []
    for start, primed in evaluation.scoring_windows(frames, window, primes, stride):
        assert 0 <= start and start + window <= frames and 0 <= primed < window
        scored += range(start + primed, start + window)
        if window > 1 and start + primed > 0:  # every scored frame has context before it
            assert primed >= 1
    assert scored == list(range(primes, frames))


def test_scoring_windows_reject_clips_shorter_than_the_window():
    with pytest.raises(ValueError, match="num_frames: expected >= the model window 8, got 6"):
        evaluation.scoring_windows(6, 8, 1)
    with pytest.raises(ValueError, match="num_prime_frames: expected an int in"):
        evaluation.scoring_windows(8, 8, 8)


@pytest.mark.parametrize(("arg", "window"), [("spatial", 4), ("single_frame", 16), (None, 16)])
def test_training_masks_one_frame_per_window_for_every_variant(arg, window):
    # "Conditioned on the first frame during training": a 4-frame spatial window masks 1 frame.
    from train_videotx.model import model_config, train_prime_frames

    spec = "--config=bair" + (f":{arg}" if arg else "")
    config, _ = vtx_main.parse_args([spec])
    assert model_config(config.model).video_shape[0] == window
    assert train_prime_frames(config, window) == 1
