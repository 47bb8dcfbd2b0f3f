"""Restricted unpickler, bundled I3D weights and the TF-Hub name conversion."""

import importlib.util
import os
import pickle
import socket

import fvd
import jax
import numpy as np
import pytest
from fvd import UnsafePickleError, load_numpy_pickle
from fvd.weights import conform_variables, expected_variables_shape


class _RunsCommand:
    """Unpickling this would call os.system (the classic pickle exploit)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_rejects_os_system(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"params": {"w": np.ones(3)}, "evil": _RunsCommand(marker)})
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system"):
        load_numpy_pickle(payload)
    assert not marker.exists()
    # The unrestricted unpickler would have run it: the payload is a real exploit.
    pickle.loads(payload)
    assert marker.exists()


def test_rejects_builtins_and_object_arrays():
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        load_numpy_pickle(pickle.dumps([_CallsEval()]))
    with pytest.raises(UnsafePickleError, match="object-dtype"):
        load_numpy_pickle(pickle.dumps(np.array([1, "a"], dtype=object)))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_loads_numpy_pickle(protocol):
    k1, k2 = jax.random.split(jax.random.key(protocol))
    tree = {
        "params": {"a": np.asarray(jax.random.normal(k1, (2, 3, 4))), "s": np.float32(2.5)},
        "stats": [np.asarray(jax.random.randint(k2, (5,), 0, 9)).astype(np.int16)],
    }
    got = load_numpy_pickle(pickle.dumps(tree, protocol=protocol))
    np.testing.assert_array_equal(got["params"]["a"], tree["params"]["a"])
    np.testing.assert_array_equal(got["stats"][0], tree["stats"][0])
    assert got["stats"][0].dtype == np.int16 and got["params"]["s"] == np.float32(2.5)


def test_bundled_weights_match_model():
    variables = fvd.load_i3d_variables()
    leaves = jax.tree.leaves(variables)
    assert len(leaves) == 230 and sum(x.size for x in leaves) == 12_704_544
    shapes = jax.tree.map(lambda x: x.shape, variables)
    assert shapes == jax.tree.map(lambda s: s.shape, expected_variables_shape())
    assert shapes["batch_stats"]["Mixed_4b"]["Branch_1/Conv3d_0b_3x3"]["BatchNorm_0"]["var"] == (
        208,
    )
    assert all(np.all(np.isfinite(x)) for x in leaves)
    var = variables["batch_stats"]["Conv3d_1a_7x7"]["BatchNorm_0"]["var"]
    assert np.all(var > 0) and np.std(var) > 0  # genuine statistics, not an initialiser


def test_conform_variables_rejects_wrong_trees():
    variables = jax.tree.map(np.copy, fvd.load_i3d_variables())
    del variables["params"]["Mixed_3c"]["Branch_0/Conv3d_0a_1x1"]
    with pytest.raises(ValueError, match="missing.*Mixed_3c"):
        conform_variables(variables)
    variables = jax.tree.map(np.copy, fvd.load_i3d_variables())
    variables["params"]["Conv3d_1a_7x7"]["Conv_0"]["kernel"] = np.ones((3, 7, 7, 3, 64))
    with pytest.raises(ValueError, match=r"Conv3d_1a_7x7.*expected shape \(7, 7, 7, 3, 64\)"):
        conform_variables(variables)


def _to_tfhub_names(variables):
    """Inverse of the conversion, written out independently: TF-Hub names and layouts."""
    out = {}
    prefix = "RGB/inception_i3d/"
    for path, value in jax.tree_util.tree_leaves_with_path(variables):
        keys = [k.key for k in path]
        collection, unit, layer, leaf = keys[0], "/".join(keys[1:-2]), keys[-2], keys[-1]
        unit = unit.replace("Mixed_5b/Branch_2/Conv3d_0b_3x3", "Mixed_5b/Branch_2/Conv3d_0a_3x3")
        if layer == "Conv_0":
            name = f"{unit}/conv_3d/{'w' if leaf == 'kernel' else 'b'}"
        elif collection == "params":
            name, value = f"{unit}/batch_norm/beta", value.reshape(1, 1, 1, 1, -1)
        else:
            stat = {"mean": "moving_mean", "var": "moving_variance"}[leaf]
            name, value = f"{unit}/batch_norm/{stat}", value.reshape(1, 1, 1, 1, -1)
        out[f"{prefix}{name}:0"] = value
    return out


def test_tfhub_conversion_round_trip():
    variables = fvd.load_i3d_variables()
    tf_vars = _to_tfhub_names(variables)
    assert "RGB/inception_i3d/Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w:0" in tf_vars
    converted = fvd.convert_tfhub_variables(tf_vars)
    jax.tree.map(np.testing.assert_array_equal, converted, variables)
    tf_vars["RGB/inception_i3d/Extra/conv_3d/w:0"] = np.ones(1)
    with pytest.raises(ValueError, match="unexpected TF-Hub I3D variables"):
        fvd.convert_tfhub_variables(tf_vars)


def _hub_reachable() -> bool:
    try:
        socket.create_connection(("tfhub.dev", 443), timeout=3).close()
        return True
    except OSError:
        return False


def test_tfhub_module_matches_bundled_weights():
    # Reachability first: importing tensorflow_hub (TensorFlow) alone costs ~40 s here.
    if not _hub_reachable():
        pytest.skip("tfhub.dev cannot be reached (offline)")
    if importlib.util.find_spec("tensorflow_hub") is None:
        pytest.skip("the fvd[tfhub] extra is not installed")
    converted = fvd.load_tfhub_variables()
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        converted,
        fvd.load_i3d_variables(),
    )
