"""Config files and command-line overrides: every experiment builds a valid model configuration."""

from __future__ import annotations

import ar_video
import jax.numpy as jnp
import numpy as np
import pytest
from train_videotx import main as vtx_main
from train_videotx.evaluation import (
    frechet_from_embeddings,
    fvd_metrics,
    fvd_over_trials,
    window_starts,
)
from train_videotx.model import make_optimizer, model_config

ALL = [
    ("default.py", None),
    ("default.py", "tiny"),
    ("bair.py", None),
    ("bair.py", "spatial"),
    ("bair.py", "single_frame"),
    ("bair.py", "large"),
    ("bair.py", "tiny"),
    ("bair.py", "action"),
    ("bair.py", "action_tiny"),
    ("kinetics600.py", None),
    ("kinetics600.py", "large"),
    ("kinetics600.py", "tiny"),
    ("moving_mnist.py", None),
    ("moving_mnist.py", "tiny"),
]


@pytest.mark.parametrize(("name", "arg"), ALL)
def test_every_config_builds_its_model(name, arg):
    spec = name if arg is None else f"{name}:{arg}"
    config, rest = vtx_main.parse_args([f"--config={spec}"])
    assert rest == []
    vt = model_config(config.model)
    assert isinstance(vt, ar_video.VideoTransformerConfig)
    assert vt.video_shape[1:] == (config.data.size, config.data.size)
    assert config.sample.num_frames <= config.data.num_frames
    assert config.optimizer.decay == 0.95 and config.optimizer.momentum == 0.9
    if not (arg or "").endswith("tiny"):
        # The paper's RMSProp with TensorFlow 1's start: the first update from the optimizer
        # the app builds is lr * g / sqrt(decay * 1 + (1 - decay) * g^2 + eps), momentum at 0.
        g = np.array([3.0, -0.02, 1e-4], np.float32)
        opt = make_optimizer(config.optimizer)
        update, _ = opt.update({"w": jnp.asarray(g)}, opt.init({"w": jnp.zeros(3)}))
        expected = -2e-5 * g / np.sqrt(0.95 + 0.05 * g.astype(np.float64) ** 2 + 1e-10)
        np.testing.assert_allclose(update["w"], expected, rtol=1e-5)
    primes = (
        config.num_prime_frames,
        config.eval.num_prime_frames,
        config.fvd.num_prime_frames,
        config.sample.num_prime_frames,
    )
    if name == "kinetics600.py":
        # Section 4.1: trained with the first frame masked, bits/dim over the 15 frames after
        # 1 prime; FVD continuations (Table 1b) primed on 5.
        assert primes == (1, 1, 5, 5) and vt.first_slice_decoder_layers is not None
    if name == "bair.py":
        assert primes == (1, 1, 1, 1)
    if arg == "large":
        assert vt.hidden_size == 2048
    # Action conditioning (section 3.2): BAIR's 4 action features per frame, nothing else.
    conditioned = arg in ("action", "action_tiny")
    assert vt.conditioning_size == (4 if conditioned else 0)
    assert config.data.conditioning_key == ("action" if conditioned else "")


def test_no_flags_is_the_tiny_default_and_overrides_apply():
    config, _ = vtx_main.parse_args([])
    assert config.name == "default_tiny" and config.model.variant == "tiny"
    config, _ = vtx_main.parse_args(
        [
            "--config=configs/bair.py:tiny",  # resolved to the packaged file
            "--config.batch_size=3",
            "--config.model.video_shape=(4, 16, 16)",
            "--config.fvd.enabled=false",
            "--config.sample.temperature=1.1",
        ]
    )
    assert config.name == "bair_tiny" and config.batch_size == 3
    assert model_config(config.model).video_shape == (4, 16, 16)
    assert config.fvd.enabled is False and config.sample.temperature == 1.1


def test_bad_overrides_and_configs_raise():
    with pytest.raises(KeyError, match="batch_sise"):
        vtx_main.parse_args(["--config.batch_sise=3"])
    with pytest.raises(ValueError, match="batch_size"):
        vtx_main.parse_args(["--config.batch_size=many"])
    with pytest.raises(ValueError, match="arg must be"):
        vtx_main.parse_args(["--config=bair.py:huge"])
    with pytest.raises(FileNotFoundError):
        vtx_main.parse_args(["--config=nonexistent.py"])
    config, _ = vtx_main.parse_args(["--config.model.video_shape=(4, 8, 5)"])
    with pytest.raises(ValueError, match="subscale_factor"):
        model_config(config.model)


def test_fvd_windows_first_and_unrolled():
    import numpy as np

    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (5, 6, 4, 4, 3), dtype=np.uint8)
    fake = rng.integers(0, 256, (4, 6, 4, 4, 3), dtype=np.uint8)
    calls = []

    def embed(videos):  # a cheap stand-in for I3D: per-frame colour means, [N, 3 * window]
        calls.append(videos.shape)
        return videos.astype(np.float64).mean(axis=(2, 3)).reshape(videos.shape[0], -1)

    cache = {}
    out = fvd_metrics(real, fake, window=4, stride=1, embed_fn=embed, real_embeddings=cache)
    assert window_starts(6, 4, 1) == [0, 1, 2] and sorted(cache) == [0, 1, 2]
    per_window = [
        frechet_from_embeddings(embed(real[:, s : s + 4]), embed(fake[:, s : s + 4]))
        for s in range(3)
    ]
    assert out["fvd"] == pytest.approx(per_window[0])
    assert out["fvd_unrolled"] == pytest.approx(np.mean(per_window))
    assert out["fvd_windows"] == 3 and len(set(per_window)) == 3
    calls.clear()
    fvd_metrics(real, fake, window=4, stride=2, embed_fn=embed, real_embeddings=cache)
    assert len(calls) == 2  # real embeddings of windows 0 and 2 came from the cache
    same = fvd_metrics(real, real, window=6, embed_fn=embed)
    assert abs(same["fvd"]) < 1e-4 * out["fvd"]  # sqrtm round-off of rank-deficient fits
    with pytest.raises(ValueError, match=">= 2 videos"):
        fvd_metrics(real[:1], fake, window=4, embed_fn=embed)


def test_fvd_mean_and_std_over_trials():
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (5, 6, 4, 4, 3), dtype=np.uint8)
    fakes = [rng.integers(0, 256, (4, 6, 4, 4, 3), dtype=np.uint8) for _ in range(3)]
    embedded = []

    def embed(videos):
        embedded.append(videos)
        return videos.astype(np.float64).mean(axis=(2, 3)).reshape(videos.shape[0], -1)

    drawn = []

    def sample(trial):  # a new draw of continuations per trial
        drawn.append(trial)
        return fakes[trial]

    out = fvd_over_trials(real, sample, 3, window=4, stride=1, embed_fn=embed)
    assert drawn == [0, 1, 2]
    # Each window of the real set is embedded once, not once per trial: 3 + 3 x 3 calls.
    assert sum(e.shape[0] == 5 for e in embedded) == 3
    per = [fvd_metrics(real, f, window=4, stride=1, embed_fn=embed) for f in fakes]
    first = [p["fvd"] for p in per]
    unrolled = [p["fvd_unrolled"] for p in per]
    assert len(set(first)) == 3
    assert out["fvd"] == pytest.approx(np.mean(first))
    assert out["fvd_std"] == pytest.approx(np.std(first, ddof=1))
    assert out["fvd_unrolled"] == pytest.approx(np.mean(unrolled))
    assert out["fvd_unrolled_std"] == pytest.approx(np.std(unrolled, ddof=1))
    assert (out["fvd_windows"], out["fvd_trials"]) == (3, 3)
    one = fvd_over_trials(real, sample, 1, window=4, embed_fn=embed)
    assert one["fvd_std"] == 0.0 and one["fvd"] == pytest.approx(first[0])
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match=f"num_trials: expected an int >= 1, got {bad!r}"):
            fvd_over_trials(real, sample, bad, window=4, embed_fn=embed)


def test_paper_configs_report_fvd_over_20_trials():
    for name in ("bair", "kinetics600"):
        config, _ = vtx_main.parse_args([f"--config={name}"])
        assert config.fvd.num_trials == 20, name
