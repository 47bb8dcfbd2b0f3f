"""Every experiment config builds valid model/train configs; command-line overrides apply."""

from __future__ import annotations

import os

import gan_video
import numpy as np
import pytest
from train_trivd import data
from train_trivd.configs import CONFIG_DIR
from train_trivd.main import DEFAULT_CONFIG, parse_args, resolve_config
from train_trivd.train import model_config, train_config
from video_training import load_config_file

CONFIGS = {
    "embedded": (None, "tiny"),
    "kinetics600": (None, "medium"),
    "bair": (None, "original"),
    "ucf101": (None,),
}


@pytest.mark.parametrize("name,arg", [(n, a) for n, args in CONFIGS.items() for a in args])
def test_every_config_builds(name, arg):
    spec = os.path.join(CONFIG_DIR, f"{name}.py") + (f":{arg}" if arg else "")
    cfg = load_config_file(spec)
    mc, tc = model_config(cfg), train_config(cfg)
    assert isinstance(mc, gan_video.ModelConfig) and isinstance(tc, gan_video.TrainConfig)
    assert cfg.name.startswith(name)
    assert cfg.data.batch_size >= 1 and cfg.num_steps >= 1


def test_paper_frame_counts_and_hyper_parameters():
    k600 = model_config(load_config_file(resolve_config("kinetics600")))
    assert (k600.num_cond_frames, k600.num_pred_frames, k600.g_ch) == (5, 11, 120)
    bair_cfg = load_config_file(resolve_config("bair"))
    bair = model_config(bair_cfg)
    assert (bair.num_cond_frames, bair.num_pred_frames, bair.g_ch, bair.d_ch) == (1, 15, 48, 92)
    assert (bair_cfg.train.g_lr, bair_cfg.train.d_lr) == (2e-5, 3e-5)
    default = model_config(load_config_file(resolve_config("embedded")))
    assert (default.recurrent_unit, default.decomposition) == ("tsru_p", "dvd_gan_fp_stronger")


def test_default_is_the_tiny_embedded_config():
    cfg, workdir = parse_args([])
    assert DEFAULT_CONFIG == "embedded:tiny" and cfg.name == "embedded_tiny"
    assert workdir == os.path.join("runs", "embedded_tiny")
    assert cfg.data.kind == "camera_motion"
    assert cfg.eval.fvd_num_clips == 0  # I3D on a CPU is opt-in for the tiny run


def test_overrides_are_typed_and_typos_fail():
    cfg, workdir = parse_args(
        [
            "--config=embedded:tiny",
            "--config.model.g_ch=8",
            "--config.eval.truncation=0.5",
            "--config.model.recurrent_unit=convgru",
            "--config.model.g_channel_multipliers=(4, 4, 2, 1)",
            "--workdir=/tmp/somewhere",
        ]
    )
    assert workdir == "/tmp/somewhere"
    mc = model_config(cfg)
    assert mc.g_ch == 8 and mc.recurrent_unit == "convgru"
    assert mc.g_channel_multipliers == (4, 4, 2, 1)
    assert cfg.eval.truncation == 0.5
    with pytest.raises(KeyError, match="g_chh"):
        parse_args(["--config.model.g_chh=8"])
    with pytest.raises(ValueError, match="recurrent_unit"):
        model_config(parse_args(["--config.model.recurrent_unit=lstm"])[0])
    with pytest.raises(ValueError, match="embedded config arg"):
        parse_args(["--config=embedded:huge"])


def test_min_warp_side_reaches_the_model_and_is_validated():
    from video_training import ConfigError

    assert model_config(parse_args([])[0]).stage_units() == ("tsru_p",) * 3  # the paper's
    mc = model_config(parse_args(["--config.model.min_warp_side=8"])[0])
    assert mc.min_warp_side == 8 and mc.stage_units() == ("convgru", "convgru", "tsru_p")
    with pytest.raises(ConfigError, match="model.min_warp_side: expected an integer >= 0.*-1"):
        parse_args(["--config.model.min_warp_side=-1"])
    # Configs saved before the field (the shipped generators') build with every stage warping.
    cfg = parse_args([])[0]
    del cfg.model["min_warp_side"]
    assert model_config(cfg).min_warp_side == 0


def test_config_names_resolve_to_package_files():
    assert resolve_config("bair:original") == os.path.join(CONFIG_DIR, "bair.py") + ":original"
    assert resolve_config("my/dir/exp.py:x") == "my/dir/exp.py:x"


def test_prepared_data_without_a_folder_explains_what_to_do():
    cfg = load_config_file(resolve_config("ucf101"))
    with pytest.raises(ValueError, match="prepare-video-data"):
        data.data_dir(cfg)


@pytest.mark.parametrize("fresh", [True, False])
def test_train_batches_carry_one_real_batch_per_d_update(fresh, tmp_path):
    # What the loader yields is what the compiled step is given: [d_steps, B, ...] or [B, ...].
    from train_trivd.compile_only import batch_spec

    cfg = load_config_file(f"{CONFIG_DIR}/embedded.py:tiny")
    cfg.data.root = str(tmp_path)
    cfg.data.fresh_real_batches = fresh
    cfg.data.use_labels = True
    clip = (5, 16, 16, 3)
    lead = (2, 4) if fresh else (4,)
    batch = next(iter(data.train_loader(cfg, data.data_dir(cfg))))
    spec = batch_spec(cfg, model_config(cfg))
    assert batch["video"].shape == spec["video"].shape == (*lead, *clip)
    assert batch["label"].shape == spec["label"].shape == lead
    if fresh:
        assert not np.array_equal(batch["video"][0], batch["video"][1])


def test_paper_configs_draw_a_fresh_real_batch_per_d_update():
    for name in ("kinetics600", "bair", "ucf101", "embedded"):
        assert load_config_file(resolve_config(name)).data.fresh_real_batches is True, name


def test_camera_trajectory_is_validated_and_renders_its_own_set(tmp_path):
    from train_trivd.configs import validate
    from video_training import ConfigError
    from video_training.data import make_loader

    cfg = load_config_file(f"{CONFIG_DIR}/embedded.py:tiny")
    cfg.data.update(root=str(tmp_path), camera_trajectory="wavy")
    with pytest.raises(ConfigError, match="data.camera_trajectory.*'wavy'"):
        validate(cfg)
    cfg.data.update(camera_trajectory="linear", num_train=8, num_test=2)
    validate(cfg)
    linear = data.data_dir(cfg)
    assert linear.endswith("_linear" + os.sep + "camera_motion")
    cfg.data.camera_trajectory = "smooth"
    assert data.data_dir(cfg) == linear.replace("_linear", "")  # the old folder name
    batch = next(iter(make_loader(linear, "train", global_batch_size=8, seed=0)))
    steps = np.diff(batch["trajectory"].astype(np.float64), axis=1)  # [8, T - 1, 3]
    np.testing.assert_allclose(steps, np.broadcast_to(steps[:, :1], steps.shape), atol=1e-4)


def test_augment_is_validated_and_changes_only_training_clips(tmp_path):
    from train_trivd.configs import validate
    from video_training import ConfigError

    with pytest.raises(ConfigError, match="data.augment: expected a bool.*'yes'"):
        parse_args(["--config.data.augment=yes"])
    assert parse_args(["--config.data.augment=true"])[0].data.augment is True
    cfg = load_config_file(f"{CONFIG_DIR}/embedded.py:tiny")
    cfg.data.update(root=str(tmp_path), fresh_real_batches=False, num_train=8, num_test=2)
    assert cfg.data.augment is False
    plain = next(iter(data.train_loader(cfg, data.data_dir(cfg))))["video"]
    cfg.data.augment = True
    validate(cfg)
    augmented = next(iter(data.train_loader(cfg, data.data_dir(cfg))))["video"]
    assert plain.shape == augmented.shape == (4, 5, 16, 16, 3)
    # Same clips and crops (the seeded order does not depend on the flag), each one flipped,
    # transposed and/or colour-permuted: the sorted values of every clip are unchanged.
    np.testing.assert_array_equal(
        np.sort(plain.reshape(4, -1), axis=1), np.sort(augmented.reshape(4, -1), axis=1)
    )
    assert not np.array_equal(plain, augmented)
    evals = data.eval_clips(cfg, data.data_dir(cfg), 2)  # evaluation is never augmented
    cfg.data.augment = False
    np.testing.assert_array_equal(
        evals[0]["video"], data.eval_clips(cfg, data.data_dir(cfg), 2)[0]["video"]
    )


def test_photo_pool_is_validated_and_changes_only_training_clips(tmp_path):
    from video_training import ConfigError

    with pytest.raises(ConfigError, match="data.camera_photo_pool: expected one of.*'web'"):
        parse_args(["--config.data.camera_photo_pool=web"])
    cfg = load_config_file(f"{CONFIG_DIR}/embedded.py:tiny")
    cfg.data.update(root=str(tmp_path), fresh_real_batches=False, num_train=8, num_test=2)
    assert cfg.data.camera_photo_pool == "photos"
    photos_dir = data.data_dir(cfg)
    plain = next(iter(data.train_loader(cfg, photos_dir)))["video"]
    cfg.data.camera_photo_pool = "photos+video_frames"
    pool_dir = data.data_dir(cfg)
    assert pool_dir != photos_dir and "_photos_video_frames" in pool_dir
    assert not np.array_equal(plain, next(iter(data.train_loader(cfg, pool_dir)))["video"])
    np.testing.assert_array_equal(  # the held-out clips: the same 2 photos, the same paths
        data.eval_clips(cfg, photos_dir, 2)[0]["video"],
        data.eval_clips(cfg, pool_dir, 2)[0]["video"],
    )


def test_test_stills_split_is_validated_and_added_to_a_folder_rendered_without_it(tmp_path):
    import json

    from video_training import ConfigError

    with pytest.raises(ConfigError, match="data.eval_split: expected one of .*test_stills"):
        parse_args(["--config.data.eval_split=test_stills"])  # the default pool has none
    cfg, _ = parse_args(
        [
            "--config.data.camera_photo_pool=photos+video_frames",
            "--config.data.eval_split=test_stills",
        ]
    )
    assert cfg.data.eval_split == "test_stills"
    cfg = load_config_file(f"{CONFIG_DIR}/embedded.py:tiny")
    cfg.data.update(root=str(tmp_path), num_train=8, num_test=2)
    cfg.data.camera_photo_pool = "photos+video_frames"
    directory = data.data_dir(cfg)
    # A folder rendered before the split existed: only the split is rendered into it.
    info_path = os.path.join(directory, "dataset_info.json")
    with open(info_path) as f:
        info = json.load(f)
    stills = info["splits"].pop("test_stills")
    assert stills["num_examples"] == 32
    for name in os.listdir(directory):
        if name.startswith("test_stills-"):
            os.remove(os.path.join(directory, name))
    with open(info_path, "w") as f:
        json.dump(info, f)
    kept = {n: os.stat(os.path.join(directory, n)).st_mtime_ns for n in os.listdir(directory)}
    kept.pop("dataset_info.json")
    assert data.data_dir(cfg) == directory
    with open(info_path) as f:
        assert json.load(f)["splits"]["test_stills"]["num_examples"] == 32
    for name, mtime in kept.items():  # train and test are not rendered again
        assert os.stat(os.path.join(directory, name)).st_mtime_ns == mtime, name
    cfg.data.eval_split = "test_stills"
    batches = data.eval_clips(cfg, directory, 32)
    videos = np.concatenate([b["video"] for b in batches])
    assert videos.shape == (32, 5, 16, 16, 3) and "flow" in batches[0]
    cfg.data.eval_split = "test"
    assert not np.array_equal(videos[:2], data.eval_clips(cfg, directory, 2)[0]["video"])
