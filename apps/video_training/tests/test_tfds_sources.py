"""tfds sources (BAIR original/balanced, UCF-101, Moving MNIST) against `tfds.testing.mock_data`."""

from __future__ import annotations

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from array_record.python.array_record_module import ArrayRecordReader
from video_training.data import (
    ClipSpec,
    decode_example,
    load_info,
    make_loader,
    prepare,
    split_paths,
)
from video_training.data.sources import (
    BairSource,
    balanced_split_index,
    moving_mnist_source,
    ucf101_source,
)
from video_training.data.sources.tfds_video import parse_percent_slice


def test_percent_slices_parse():
    assert parse_percent_slice("test[:90%]") == ("test", None, 90)
    assert parse_percent_slice("train") == ("train", None, None)
    with pytest.raises(ValueError, match="split must look like"):
        parse_percent_slice("train[:10]")


def test_balanced_split_index_follows_trivd_appendix_c1():
    cut = balanced_split_index(43_264)
    assert cut == 30_285  # first 70% train
    assert 43_264 - cut + 256 == 13_235  # rest of train + 256 test videos for evaluation
    with pytest.raises(ValueError, match="fraction"):
        balanced_split_index(10, 1.5)


def test_bair_original_and_balanced_splits(tmp_path):
    with tfds.testing.mock_data(num_examples=10):
        original = BairSource("original")
        originals = list(original.examples("test"))
        info = prepare(BairSource("balanced"), str(tmp_path / "bair"), num_shards=2, progress=False)
    first = originals[0]
    assert len(originals) == 10
    assert first["video"].shape == (30, 64, 64, 3) and first["video"].dtype == np.uint8
    assert first["action"].shape == (30, 4)
    # Balanced: train = first 70% of train (7 of 10); test = the other 3 + all 10 test videos.
    assert (
        info["splits"]["train"]["num_examples"] == 7
        and info["splits"]["test"]["num_examples"] == 13
    )
    assert info["splits"]["train"]["shapes"]["video"] == [30, 64, 64, 3]
    loader = make_loader(
        str(tmp_path / "bair"),
        "test",
        global_batch_size=13,
        keys=("video", "action"),
        shuffle=False,
    )
    batch = next(iter(loader))
    assert batch["video"].shape == (13, 30, 64, 64, 3) and batch["action"].shape == (13, 30, 4)
    origins = {}
    for split in ("train", "test"):
        origins[split] = set()
        for path in split_paths(str(tmp_path / "bair"), split):
            reader = ArrayRecordReader(path)
            origins[split] |= {decode_example(r)["origin"] for r in reader.read_all()}
            reader.close()
    assert origins["train"] == {f"train#{i}" for i in range(7)}
    assert origins["test"] == {f"train#{i}" for i in range(7, 10)} | {
        f"test#{i}" for i in range(10)
    }
    assert load_info(str(tmp_path / "bair"))["source"] == "bair_robot_pushing_small/balanced"


def test_ucf101_with_trivd_preprocessing(tmp_path):
    with tfds.testing.mock_data(num_examples=3):
        source = ucf101_source()
        ex = next(iter(source.examples("train")))
        info = prepare(
            source,
            str(tmp_path / "ucf"),
            spec=ClipSpec(2, 16, "trivd", max_clips_per_video=1),
            num_shards=1,
            progress=False,
        )
    assert ex["video"].shape[1:] == (256, 256, 3) and 0 <= ex["label"] < 101
    assert info["splits"]["train"]["num_examples"] == 3  # one clip per (mock) video
    assert info["splits"]["train"]["shapes"]["video"] == [2, 16, 20, 3]  # width margin for the crop


def test_moving_mnist_to_rgb(tmp_path):
    with tfds.testing.mock_data(num_examples=10):
        source = moving_mnist_source()
        counts = [sum(1 for _ in source.examples(s)) for s in ("train", "test")]
        ex = next(iter(source.examples("test")))
        info = prepare(source, str(tmp_path / "mm"), num_shards=1, progress=False)
    assert counts == [9, 1]  # test[:90%] / test[90%:] of tfds' single split
    assert ex["video"].shape == (20, 64, 64, 3)
    np.testing.assert_array_equal(ex["video"][..., 0], ex["video"][..., 2])  # grey repeated
    assert info["splits"]["train"]["shapes"]["video"] == [20, 64, 64, 3]
