"""Prepared data round-trips; grain order is seeded and host-disjoint; folder sources skip bad files."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from standin import RandomVideos
from video_training import write_mp4
from video_training.data import (
    ClipSpec,
    decode_example,
    encode_example,
    load_info,
    make_loader,
    prepare,
    split_paths,
    trivd_transforms,
    vt_transforms,
)
from video_training.data.sources import FolderSource


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    ex = {
        "video": rng.integers(0, 256, (3, 5, 7, 3), dtype=np.uint8),
        "flow": rng.normal(size=(2, 5, 7, 2)).astype(np.float16),
        "label": 7,
        "score": 0.25,
        "name": "clip.mp4",
    }
    out = decode_example(encode_example(ex))
    np.testing.assert_array_equal(out["video"], ex["video"])
    np.testing.assert_array_equal(out["flow"], ex["flow"])
    assert out["flow"].dtype == np.float16
    assert int(out["label"]) == 7 and float(out["score"]) == 0.25 and out["name"] == "clip.mp4"
    assert "name" not in decode_example(encode_example(ex), keep_strings=False)
    with pytest.raises(TypeError, match="example\\['bad'\\]"):
        encode_example({"bad": [1, 2]})
    with pytest.raises(ValueError, match="VTR1"):
        decode_example(b"nope" + b"\0" * 8)


def test_prepared_data_round_trips(random_data_dir):
    source = RandomVideos()
    info = load_info(random_data_dir)
    assert info["splits"]["train"]["num_examples"] == 32
    assert info["splits"]["train"]["shapes"]["video"] == [8, 16, 16, 3]
    from array_record.python.array_record_module import ArrayRecordReader

    stored = {}
    for path in split_paths(random_data_dir, "train"):
        reader = ArrayRecordReader(path)
        for i in range(reader.num_records()):
            ex = decode_example(reader.read([i])[0])
            stored[ex["name"]] = ex
        reader.close()
    assert len(stored) == 32
    for ex in source.examples("train"):
        np.testing.assert_array_equal(stored[ex["name"]]["video"], ex["video"])
        assert int(stored[ex["name"]]["label"]) == ex["label"]


def test_prepare_cuts_videos_into_clips_with_preprocessing(tmp_path):
    class Wide:
        name, splits, preprocess, num_frames, size = "wide", ("train",), "vt", 4, 8

        def num_examples(self, split):
            return 2

        def examples(self, split):
            rng = np.random.default_rng(1)
            for i in range(2):
                yield {"video": rng.integers(0, 256, (10, 24, 40, 3), dtype=np.uint8), "label": i}

    vt = prepare(Wide(), str(tmp_path / "vt"), spec=ClipSpec(4, 8, "vt", stride=3), progress=False)
    assert vt["splits"]["train"]["num_examples"] == 2 * 3  # starts 0, 3, 6 of 10 frames
    assert vt["splits"]["train"]["shapes"]["video"] == [4, 8, 8, 3]
    tr = prepare(
        Wide(), str(tmp_path / "tr"), spec=ClipSpec(4, 8, "trivd", trivd_slack=1.5), progress=False
    )
    assert tr["splits"]["train"]["num_examples"] == 2 * 2
    assert tr["splits"]["train"]["shapes"]["video"] == [4, 8, 12, 3]  # width margin for RandomCrop


def _batches(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def test_grain_order_deterministic_for_seed_and_disjoint_across_hosts(random_data_dir):
    kw = {
        "global_batch_size": 4,
        "transforms": vt_transforms(4),
        "keys": ("video", "label"),
        "num_epochs": 1,
    }
    a = _batches(make_loader(random_data_dir, "train", seed=5, **kw), 8)
    b = _batches(make_loader(random_data_dir, "train", seed=5, **kw), 8)
    c = _batches(make_loader(random_data_dir, "train", seed=6, **kw), 8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["label"], y["label"])
        np.testing.assert_array_equal(x["video"], y["video"])  # random windows too
    order = [int(v) for x in a for v in x["label"]]
    assert order != [int(v) for x in c for v in x["label"]]
    assert sorted(order) == list(range(32))  # one epoch: every record once

    hosts = []
    for index in range(2):
        loader = make_loader(
            random_data_dir, "train", seed=5, process_index=index, process_count=2, **kw
        )
        batches = _batches(loader, 8)  # 16 records per host, 2 per batch
        assert all(x["video"].shape == (2, 4, 16, 16, 3) for x in batches)
        hosts.append({int(v) for x in batches for v in x["label"]})
    assert len(hosts[0]) == len(hosts[1]) == 16
    assert hosts[0].isdisjoint(hosts[1]) and hosts[0] | hosts[1] == set(range(32))


def test_worker_processes_and_iterator_state_resume(random_data_dir):
    # Batches are formed inside each worker, so the order depends on (seed, worker_count).
    kw = {
        "global_batch_size": 4,
        "seed": 2,
        "transforms": trivd_transforms(4, 12),
        "keys": ("video", "label"),
    }
    it = iter(make_loader(random_data_dir, "train", worker_count=1, **kw))
    uninterrupted = [next(it) for _ in range(3)]
    state = it.get_state()
    uninterrupted += [next(it) for _ in range(3)]
    del it
    resumed_it = iter(make_loader(random_data_dir, "train", worker_count=1, **kw))
    resumed_it.set_state(state)
    resumed = [next(resumed_it) for _ in range(3)]
    del resumed_it
    for x, y in zip(uninterrupted[3:], resumed, strict=True):
        np.testing.assert_array_equal(x["label"], y["label"])
        np.testing.assert_array_equal(x["video"], y["video"])
    labels = [int(v) for x in uninterrupted for v in x["label"]]
    assert len(set(labels[:24])) == 24  # 6 batches of 4 distinct records from 32
    v = uninterrupted[0]["video"]
    assert v.shape == (4, 4, 12, 12, 3) and v.dtype == np.float32
    assert v.min() >= -1.0 and v.max() <= 1.0 and v.min() < -0.9 and v.max() > 0.9


def test_batch_groups_stack_independent_batches_and_resume(random_data_dir):
    # [groups, b, ...]: the groups are the consecutive batches of a groups x b loader.
    kw = {"seed": 3, "transforms": vt_transforms(4), "keys": ("video", "label"), "num_epochs": 1}
    flat = _batches(make_loader(random_data_dir, "train", global_batch_size=6, **kw), 4)
    it = iter(make_loader(random_data_dir, "train", global_batch_size=3, batch_groups=2, **kw))
    grouped = [next(it) for _ in range(2)]
    state = it.get_state()
    grouped += [next(it) for _ in range(2)]
    for g, f in zip(grouped, flat, strict=True):
        assert g["video"].shape == (2, 3, 4, 16, 16, 3) and g["label"].shape == (2, 3)
        np.testing.assert_array_equal(g["label"].reshape(-1), f["label"])
        np.testing.assert_array_equal(g["video"].reshape(f["video"].shape), f["video"])
    labels = [int(v) for g in grouped for v in g["label"].reshape(-1)]
    assert len(set(labels)) == 24  # every group of every step holds different records
    resumed = iter(make_loader(random_data_dir, "train", global_batch_size=3, batch_groups=2, **kw))
    resumed.set_state(state)
    for g in grouped[2:]:
        np.testing.assert_array_equal(next(resumed)["label"], g["label"])


def test_loader_rejects_bad_arguments(random_data_dir):
    with pytest.raises(
        ValueError, match="global_batch_size=5 must be divisible by process_count=2"
    ):
        make_loader(random_data_dir, "train", global_batch_size=5, process_index=0, process_count=2)
    with pytest.raises(ValueError, match="split must be one of"):
        make_loader(random_data_dir, "validation", global_batch_size=2)
    with pytest.raises(FileNotFoundError, match="prepare-video-data"):
        make_loader(os.path.dirname(random_data_dir), "train", global_batch_size=2)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match=f"batch_groups: expected an int >= 1, got {bad!r}"):
            make_loader(random_data_dir, "train", global_batch_size=2, batch_groups=bad)
    with pytest.raises(ValueError, match="too few for 1 hosts x batch 16 x 3 groups"):
        make_loader(random_data_dir, "train", global_batch_size=16, batch_groups=3)


def test_folder_source_skips_and_reports_corrupt_and_missing_files(tmp_path, caplog):
    rng = np.random.default_rng(0)
    root = tmp_path / "videos"
    for name in ("a.mp4", "b.mp4"):
        write_mp4(str(root / name), rng.integers(0, 256, (12, 24, 32, 3), dtype=np.uint8), fps=10)
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + rng.bytes(500))
    with open(tmp_path / "index.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split"])
        w.writerows(
            [
                ["a.mp4", "walk", "train"],
                ["corrupt.mp4", "run", "train"],
                ["gone.mp4", "run", "train"],
                ["b.mp4", "run", "test"],
            ]
        )
    source = FolderSource(str(root), str(tmp_path / "index.csv"), num_frames=8, size=16)
    info = prepare(source, str(tmp_path / "out"), num_shards=1, progress=False)
    assert info["splits"]["train"]["num_examples"] == 1  # a.mp4: one 8-frame clip of 12
    assert info["splits"]["test"]["num_examples"] == 1
    skipped = dict(info["splits"]["train"]["skipped"])
    assert set(skipped) == {"corrupt.mp4", "gone.mp4"}
    assert "not found" in skipped["gone.mp4"]
    assert "skipping corrupt.mp4" in caplog.text
    assert source.label_names == ["run", "walk"]
    batch = next(iter(make_loader(str(tmp_path / "out"), "train", global_batch_size=1)))
    assert batch["video"].shape == (1, 8, 16, 16, 3) and int(batch["label"][0]) == 1


def test_prepare_command_line(tmp_path, capsys):
    from video_training.data.cli import main

    rng = np.random.default_rng(3)
    write_mp4(
        str(tmp_path / "v.mp4"), rng.integers(0, 256, (20, 30, 40, 3), dtype=np.uint8), fps=10
    )
    (tmp_path / "i.csv").write_text("path,label,split\nv.mp4,0,train\nmissing.mp4,1,train\n")
    argv = ["--source=folder", f"--root={tmp_path}", f"--csv={tmp_path / 'i.csv'}", f"--out={tmp_path / 'o'}",
            "--num_frames=8", "--size=16", "--preprocess=trivd", "--num_shards=1"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "train: 2 clips" in out and "skipped missing.mp4" in out
    assert load_info(str(tmp_path / "o"))["splits"]["train"]["shapes"]["video"] == [8, 16, 20, 3]


def test_clips_cut_per_frame_and_per_transition_arrays():
    from video_training.data import video_to_clips

    rng = np.random.default_rng(4)
    ex = {
        "video": rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8),
        "action": np.arange(10, dtype=np.float32)[:, None].repeat(4, 1),  # per frame
        "flow": np.arange(9, dtype=np.float32)[:, None, None, None]
        * np.ones((9, 8, 8, 2), np.float32),
        "label": 3,
    }
    clips = list(video_to_clips(ex, ClipSpec(4, 8, "none", stride=3)))
    assert [c["clip_start"] for c in clips] == [0, 3, 6]
    for c in clips:
        s = c["clip_start"]
        np.testing.assert_array_equal(c["video"], ex["video"][s : s + 4])
        np.testing.assert_array_equal(c["action"][:, 0], np.arange(s, s + 4))
        np.testing.assert_array_equal(c["flow"][:, 0, 0, 0], np.arange(s, s + 3))
        assert c["label"] == 3
    with pytest.raises(ValueError, match="'flow' needs preprocess='none'"):
        list(video_to_clips(ex, ClipSpec(4, 4, "vt")))
