"""Optional (`fvd[tfhub]`): the I3D variables converted from the TF-Hub module itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fvd.i3d import MIXED_WIDTHS
from fvd.weights import conform_variables

TFHUB_HANDLE = "https://tfhub.dev/deepmind/i3d-kinetics-400/1"
_SCOPE = "RGB/inception_i3d/"
_BRANCH_UNITS = (
    "Branch_0/Conv3d_0a_1x1",
    "Branch_1/Conv3d_0a_1x1",
    "Branch_1/Conv3d_0b_3x3",
    "Branch_2/Conv3d_0a_1x1",
    "Branch_2/Conv3d_0b_3x3",
    "Branch_3/Conv3d_0b_1x1",
)


def _tf_unit_name(flax_path: str) -> str:
    """TF scope of a Unit3D; DeepMind's graph misnames one Mixed_5b unit (`0a_3x3`)."""
    if flax_path == "Mixed_5b/Branch_2/Conv3d_0b_3x3":
        return "Mixed_5b/Branch_2/Conv3d_0a_3x3"
    return flax_path


def _units() -> list[tuple[str, tuple[str, ...], bool]]:
    """`(tf_scope, flax_key_path, has_batch_norm)` for every Unit3D of the network."""
    units = [(name, (name,), True) for name in ("Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3")]
    for block in MIXED_WIDTHS:
        units += [(_tf_unit_name(f"{block}/{u}"), (block, u), True) for u in _BRANCH_UNITS]
    units.append(("Logits/Conv3d_0c_1x1", ("Logits/Conv3d_0c_1x1",), False))
    return units


def _put(tree: dict, path: tuple[str, ...], leaf: str, value: np.ndarray) -> None:
    for key in path:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def convert_tfhub_variables(tf_variables: Mapping[str, Any]) -> dict[str, Any]:
    """Maps TF-Hub/Sonnet variable names to the `InceptionI3d` variable tree.

    Args:
      tf_variables: `{name: array}` as in the hub module, e.g.
        `RGB/inception_i3d/Mixed_3b/Branch_1/Conv3d_0b_3x3/conv_3d/w:0` (the `RGB/inception_i3d/`
        prefix and the `:0` suffix are optional).

    Returns:
      `{"params": ..., "batch_stats": ...}` checked by `fvd.weights.conform_variables`.

    Raises:
      ValueError: a variable is missing, or left over after the conversion.
    """
    tf_vars = {}
    for name, value in tf_variables.items():
        key = name.split(_SCOPE, 1)[-1].removesuffix(":0")
        tf_vars[key] = np.asarray(value)
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        if name not in tf_vars:
            raise ValueError(f"TF-Hub I3D variable {name!r} is missing")
        used.add(name)
        return tf_vars[name]

    params: dict = {}
    batch_stats: dict = {}
    for scope, path, has_bn in _units():
        _put(params, (*path, "Conv_0"), "kernel", take(f"{scope}/conv_3d/w"))
        if has_bn:  # Sonnet BatchNorm(scale=False): beta plus moving statistics, all [1,1,1,1,C]
            _put(params, (*path, "BatchNorm_0"), "bias", take(f"{scope}/batch_norm/beta").ravel())
            _put(
                batch_stats, (*path, "BatchNorm_0"), "mean", take(f"{scope}/batch_norm/moving_mean")
            )
            _put(
                batch_stats,
                (*path, "BatchNorm_0"),
                "var",
                take(f"{scope}/batch_norm/moving_variance"),
            )
        else:
            _put(params, (*path, "Conv_0"), "bias", take(f"{scope}/conv_3d/b"))
    extra = sorted(set(tf_vars) - used)
    if extra:
        raise ValueError(f"unexpected TF-Hub I3D variables: {extra[:5]} ({len(extra)} in all)")
    return conform_variables({"params": params, "batch_stats": batch_stats})


def load_tfhub_variables(handle: str = TFHUB_HANDLE) -> dict[str, Any]:
    """Downloads (or reads from the TF-Hub cache) the I3D module and converts its variables.

    Needs `pip install fvd[tfhub]` and network access to tfhub.dev (or `TFHUB_CACHE_DIR`
    holding the module, or a local module directory as `handle`).

    Returns:
      The same tree as `fvd.load_i3d_variables()`, usable as `fvd.embed(..., variables=...)`.
    """
    try:
        import tensorflow_hub as hub
    except ImportError as e:
        raise ImportError("load_tfhub_variables needs the extra: pip install 'fvd[tfhub]'") from e
    module = hub.load(handle)
    return convert_tfhub_variables({v.name: v.numpy() for v in module.variables})
