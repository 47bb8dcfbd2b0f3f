"""`tiny_config`'s width, depth and context-kernel knobs (the CPU experiments' model sizes)."""

from __future__ import annotations

import ar_video
import pytest


def test_default_is_unchanged():
    c = ar_video.tiny_config()
    assert (c.hidden_size, c.embedding_size, c.head_dim) == (32, 16, 8)
    assert [(layer.block_shape, layer.num_heads) for layer in c.encoder_layers] == [
        ((2, 2, 4), 2),
        ((1, 4, 4), 2),
    ]
    assert c.context_kernel == c.subscale_factor


def test_width_depth_and_kernel():
    c = ar_video.tiny_config(
        video_shape=(8, 16, 16),
        subscale_factor=(8, 1, 1),
        hidden_size=64,
        num_layers=5,
        context_kernel=(6, 1, 1),
    )
    assert (c.hidden_size, c.embedding_size, c.context_kernel) == (64, 32, (6, 1, 1))
    assert len(c.encoder_layers) == len(c.decoder_layers) == 5
    assert [layer.block_shape for layer in c.encoder_layers] == [
        (1, 8, 16),
        (1, 16, 16),
        (1, 8, 16),
        (1, 16, 16),
        (1, 8, 16),
    ]
    assert {layer.num_heads for layer in c.encoder_layers} == {4}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_size": 40}, "hidden_size must be a positive multiple of 16, got 40"),
        ({"hidden_size": 0}, "hidden_size must be a positive multiple of 16, got 0"),
        ({"num_layers": 0}, "num_layers must be >= 1, got 0"),
    ],
)
def test_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ar_video.tiny_config(**kwargs)
