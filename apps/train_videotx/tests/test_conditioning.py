"""Action conditioning (section 3.2, #13 VT-4): a prepared dataset with per-frame actions feeds
the train loader, held-out bits/dim, continuations and `sample-videotx`, each frame paired with
the action `data.conditioning_shift` frames before it."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_videotx import data as vtx_data
from train_videotx import evaluation
from train_videotx import main as vtx_main
from train_videotx import sample as vtx_sample
from vtx_test_utils import tiny_args

FRAMES, SIZE, ACTIONS = 11, 8, 4


class ActionClips:
    """Clips whose frame `f` of video `v` has pixel (0, 0, 0) = 20 * f and every other pixel
    random, and whose `action[f] = (v, f, random, random)`: windows and rows can be matched."""

    name = "action_clips"
    splits = ("train", "test")
    preprocess = "none"
    num_frames = FRAMES
    size = SIZE

    def __init__(self, seed: int = 0, action_scale: float = 1.0):
        self.seed, self.action_scale = seed, action_scale

    def num_examples(self, split):
        return 8 if split == "train" else 4

    def examples(self, split):
        rng = np.random.default_rng(0 if split == "train" else 1)  # same videos for any seed
        actions = np.random.default_rng(self.seed)
        for v in range(self.num_examples(split)):
            video = rng.integers(0, 256, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
            video[:, 0, 0, 0] = 20 * np.arange(FRAMES)
            action = np.zeros((FRAMES, ACTIONS), np.float32)
            action[:, 0], action[:, 1] = v, np.arange(FRAMES)
            action[:, 2:] = self.action_scale * actions.normal(size=(FRAMES, 2))
            yield {"video": video, "action": action, "label": 0}


def prepare_clips(path, **kwargs) -> str:
    from video_training.data import prepare
    from video_training.data.prepare import ClipSpec

    prepare(
        ActionClips(**kwargs),
        str(path),
        spec=ClipSpec(FRAMES, SIZE, "none"),
        num_shards=1,
        progress=False,
    )
    return str(path)


@pytest.fixture(scope="module")
def action_data(tmp_path_factory):
    return prepare_clips(tmp_path_factory.mktemp("actions") / "data")


def _config(data_dir, *extra):
    config, _ = vtx_main.parse_args(
        [
            *tiny_args(data_dir, "unused", 1),
            "--config.data.conditioning_key=action",
            f"--config.model.conditioning_size={ACTIONS}",
            *extra,
        ]
    )
    return config


def _frame_index(video):
    return video[..., 0, 0, 0].astype(np.int64) // 20  # [B, T] source frame of each frame


@pytest.mark.parametrize("shift", [1, 0, 3])
def test_train_windows_carry_the_actions_of_their_frames(action_data, shift):
    config = _config(action_data, f"--config.data.conditioning_shift={shift}")
    loader = vtx_data.train_loader(
        action_data, config.data, window=4, num_slices=8, batch_size=4, seed=3
    )
    starts = set()
    for batch, _ in zip(iter(loader), range(6)):
        cond = batch["conditioning"]
        assert cond.dtype == np.float32 and cond.shape == (4, 4, ACTIONS)
        frames = _frame_index(batch["video"])
        starts |= set(frames[:, 0].tolist())
        source = frames - shift  # the stored row each frame must carry
        np.testing.assert_array_equal(np.where(source >= 0, source, 0), cond[..., 1])
        assert (cond[source < 0] == 0).all()
        # One video per example: the row's video id is constant along the window, and a
        # shifted row past the clip start is never taken from another clip.
        assert (cond[..., 0][source >= 0] == np.repeat(cond[:, -1:, 0], 4, 1)[source >= 0]).all()
    assert len(starts) > 2  # the windows start at different frames: the check is not vacuous


def test_heldout_clips_and_eval_batches_carry_their_actions(action_data):
    config = _config(action_data)
    cond_fn = vtx_data.conditioning_transform(config.data)
    video, cond = vtx_data.heldout_clips(action_data, "test", 6, 9, cond_fn)  # 4 stored, cycled
    assert video.shape == (6, 9, SIZE, SIZE, 3) and cond.shape == (6, 9, ACTIONS)
    np.testing.assert_array_equal(cond[:, 1:, 1], np.tile(np.arange(8), (6, 1)))
    assert (cond[:, 0] == 0).all()  # frame 0 of a clip: no action before it
    np.testing.assert_array_equal(cond[:, 1, 0], [0, 1, 2, 3, 0, 1])
    plain, none = vtx_data.heldout_clips(action_data, "test", 6, 9)
    np.testing.assert_array_equal(plain, video)
    assert none is None
    batches = list(
        vtx_data.eval_batches(
            action_data, "test", batch_size=2, window=7, num_batches=0, conditioning=cond_fn
        )
    )
    assert [v.shape[0] for v, _ in batches] == [2, 2]
    for v, c in batches:
        assert c.shape == (v.shape[0], 7, ACTIONS)
        np.testing.assert_array_equal(c[:, 1:, 1], _frame_index(v)[:, :-1])


def test_stored_conditioning_is_checked_against_the_config(action_data, tmp_path):
    config = _config(action_data)
    vtx_data.check_conditioning(action_data, config.data, ACTIONS)
    with pytest.raises(ValueError, match=r"expected one row of .* \[11, 6\].* got \[11, 4\]"):
        vtx_data.check_conditioning(action_data, config.data, 6)
    config.data.conditioning_key = "endeffector_pos"
    with pytest.raises(ValueError, match="'endeffector_pos'.* stores no such array .*'action'"):
        vtx_data.check_conditioning(action_data, config.data, ACTIONS)
    config.data.conditioning_key = ""
    with pytest.raises(ValueError, match="set both .* or neither"):
        vtx_data.check_conditioning(action_data, config.data, ACTIONS)
    vtx_data.check_conditioning(action_data, config.data, 0)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--config.model.conditioning_size=0", "data.conditioning_key: expected a stored"),
        ("--config.data.conditioning_shift=11", r"conditioning_shift: expected an int in \[0, "),
        ("--config.data.conditioning_shift=-1", "conditioning_shift: expected an integer >= 0"),
    ],
)
def test_bad_conditioning_config_is_refused_before_any_work(flag, message):
    from video_training import ConfigError

    with pytest.raises(ConfigError, match=message):
        _config("unused", flag)


def test_continuations_get_the_rows_of_their_frames(monkeypatch):
    import types

    import ar_video

    seen = {}

    def fake_sample(model, key, prime, *, num_frames, conditioning, **kwargs):
        seen["conditioning"] = np.asarray(conditioning)
        b = prime.shape[0]
        return np.zeros((b, num_frames, *prime.shape[2:]), np.uint8)

    monkeypatch.setattr(ar_video, "sample", fake_sample)
    model = types.SimpleNamespace(config=types.SimpleNamespace(video_shape=(4, 8, 8)))
    cond = np.arange(2 * 9 * 3, dtype=np.float32).reshape(2, 9, 3) + 1
    prime = np.zeros((2, 5, 8, 8, 3), np.uint8)  # 5 primes, 3 fit the 4-frame window
    evaluation.continue_videos(model, None, prime, num_frames=9, conditioning=cond)
    np.testing.assert_array_equal(seen["conditioning"], cond[:, 2:])  # the frames it samples
    evaluation.continue_videos(model, None, prime[:, :1], num_frames=3, conditioning=cond[:, :3])
    assert seen["conditioning"].shape == (2, 4, 3)  # padded to the window with zeros
    np.testing.assert_array_equal(seen["conditioning"][:, :3], cond[:, :3])
    assert (seen["conditioning"][:, 3] == 0).all()
    with pytest.raises(ValueError, match=r"conditioning: expected \[B=2, num_frames=9, C\]"):
        evaluation.continue_videos(model, None, prime, num_frames=9, conditioning=cond[:, :8])


@pytest.fixture(scope="module")
def conditioned_run(action_data, tmp_path_factory):
    """Two steps of the tiny model conditioned on the actions, then the evaluator's parts."""
    from train_videotx.train import train

    root = tmp_path_factory.mktemp("conditioned")
    config, _ = vtx_main.parse_args(
        [
            *tiny_args(action_data, str(root / "run"), 2),
            "--config.data.conditioning_key=action",
            f"--config.model.conditioning_size={ACTIONS}",
            f"--config.compilation_cache_dir={root / 'cache'}",
        ]
    )
    summary = train(config)
    return {"config": config, "summary": summary, "root": root}


def test_a_conditioned_run_trains_evaluates_and_samples(conditioned_run, action_data):
    from train_videotx.model import make_setup, restore_params

    summary, config = conditioned_run["summary"], conditioned_run["config"]
    assert summary.step == 2 and np.isfinite(summary.metrics["eval/bits_per_dim"])
    assert summary.samples and all(os.path.exists(p) for p in summary.samples)
    # Held-out bits/dim reads the actions: the same clips under other actions score otherwise.
    setup = make_setup(config)
    params, _ = restore_params(setup, summary.workdir)
    other = prepare_clips(conditioned_run["root"] / "other", seed=5, action_scale=30.0)
    workdir = str(conditioned_run["root"] / "eval")
    own = evaluation.Evaluator(setup, config, action_data, workdir).bits_per_dim(params)
    moved = evaluation.Evaluator(setup, config, other, workdir).bits_per_dim(params)
    assert own["bits_per_dim"] == pytest.approx(summary.metrics["eval/bits_per_dim"], rel=1e-6)
    assert abs(own["bits_per_dim"] - moved["bits_per_dim"]) > 1e-4


def test_sample_videotx_needs_actions_for_a_video_file(conditioned_run, tmp_path, capsys):
    from video_training import write_mp4

    workdir = conditioned_run["summary"].workdir
    video = write_mp4(
        str(tmp_path / "me.mp4"),
        np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8),
        fps=8,
    )
    base = [f"--workdir={workdir}", f"--video={video}", "--num_samples=2", "--num_frames=6"]
    assert vtx_sample.main(base) == 2
    err = capsys.readouterr().err
    assert "conditioned on 'action'" in err and "expected --conditioning=FILE.npy" in err
    short = tmp_path / "short.npy"
    np.save(short, np.zeros((5, ACTIONS), np.float32))
    assert vtx_sample.main([*base, f"--conditioning={short}"]) == 2
    assert "expected an array of shape [F >= 6, 4]" in capsys.readouterr().err
    actions = tmp_path / "actions.npy"
    np.save(actions, np.random.default_rng(1).normal(size=(6, ACTIONS)).astype(np.float32))
    out = tmp_path / "grid"
    assert vtx_sample.main([*base, f"--conditioning={actions}", f"--out={out}"]) == 0
    assert os.path.exists(f"{out}.gif")
    # Held-out priming brings each clip's own actions: no flag needed.
    held = [f"--workdir={workdir}", "--num_samples=2", "--num_frames=6", f"--out={out}_held"]
    assert vtx_sample.main(held) == 0
    assert vtx_sample.main([*held, f"--conditioning={actions}"]) == 2
    assert "no --video was given" in capsys.readouterr().err


def test_compile_spec_and_step_take_the_conditioning():
    import ar_video
    import jax
    from train_videotx.compile_only import batch_spec
    from train_videotx.model import make_setup, train_prime_frames

    config, _ = vtx_main.parse_args(["--config=bair:action_tiny"])
    setup = make_setup(config)
    spec = batch_spec(config, setup.vt_config)
    assert spec["conditioning"].shape == (config.batch_size, 8, ACTIONS)
    step = ar_video.make_train_step(
        setup.graphdef, setup.optimizer, num_prime_frames=train_prime_frames(config, 8)
    )
    state = jax.eval_shape(setup.init_fn, jax.random.key(0))
    out_state, _ = jax.eval_shape(step, state, spec)
    assert jax.tree.structure(out_state) == jax.tree.structure(state)
    del spec["conditioning"]
    with pytest.raises(ValueError, match="conditioning of shape .* is required"):
        jax.eval_shape(step, state, spec)
